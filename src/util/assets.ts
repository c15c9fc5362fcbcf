import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The package root (the directory holding pyport's package.json), found from this module. */
export function packageRoot(): string {
  if (root) return root;
  // Where the build puts this module (dist/src/util/): one check instead of a walk up. The
  // first URL parse in a process costs ~0.3 ms (import.meta.dirname does one too), which would
  // delay the first worker's start: a plain file: URL is read directly.
  const url = import.meta.url;
  const here = path.dirname(/^file:\/\/\/[^?#]*$/.test(url) ? decodeURIComponent(url.slice(7)) : fileURLToPath(url));
  const built = path.resolve(here, "../../..");
  if (existsSync(path.join(built, "python", "host_boot.py"))) return (root = built);
  let dir = here;
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
