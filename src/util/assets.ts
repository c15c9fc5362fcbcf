import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The package root (the directory holding pyport's package.json), found from this module. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json")) || !existsSync(path.join(dir, "python"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error("pyport: cannot find the package root from " + import.meta.url);
    dir = up;
  }
  root = dir;
  return dir;
}

/** Path of a native part `npm run build` compiles for this machine's architecture (scripts/build-native.mjs); it may not exist. */
export function nativeAsset(name: string, suffix = ""): string {
  return path.join(packageRoot(), "dist", "native", `${name}-${process.arch}${suffix}`);
}

/** Path of a Python helper script shipped in the package's `python/` directory. */
export function pythonAsset(name: string): string {
  return path.join(packageRoot(), "python", name);
}
