/** Arguments for running python/compile_tree.py (bytecode with root-relative recorded paths). */
import { pythonAsset } from "../util/assets.js";

export interface CompileOptions {
  /** Recorded source paths are made relative to this directory. */
  root: string;
  mode: "timestamp" | "checked-hash" | "unchecked-hash";
  optimize?: 0 | 1 | 2;
  /** Write foo.pyc beside foo.py (sourceless distribution) instead of __pycache__/. */
  legacy?: boolean;
  /** Regex of paths not to compile (directories only). */
  exclude?: string;
  targets: string[];
}

export function compileArgs(o: CompileOptions): string[] {
  return [
    "-I",
    pythonAsset("compile_tree.py"),
    o.root,
    o.mode,
    String(o.optimize ?? 0),
    o.legacy ? "1" : "0",
    o.exclude ?? "",
    ...o.targets,
  ];
}
