import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;
/** Read once, when this module loads: the first import.meta access costs ~0.25 ms. */
const MODULE_URL = import.meta.url;

/** The package root (the directory holding pyport's package.json), found from this module. */
export function packageRoot(): string {
  if (root) return root;
  // Where the build puts this module (dist/src/util/): one check instead of a walk up. A plain
  // file: URL is read directly (the first URL parse in a process costs ~0.3 ms, and this runs
  // before the first worker is spawned).
  const file = /^file:\/\/\/[^?#]*$/.test(MODULE_URL)
    ? decodeURIComponent(MODULE_URL.slice(7))
    : fileURLToPath(MODULE_URL);
  const at = file.lastIndexOf("/dist/src/util/");
  if (at > 0 && existsSync(file.slice(0, at) + "/python/host_boot.py"))
    return (root = file.slice(0, at));
  let dir = path.dirname(file);
  while (!existsSync(path.join(dir, "package.json")) || !existsSync(path.join(dir, "python"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error("pyport: cannot find the package root from " + MODULE_URL);
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
