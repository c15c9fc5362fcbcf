/**
 * Sourceless bytecode: turns a compiled tree into one that ships `foo.pyc` beside where
 * `foo.py` was, without the source. CPython's SourcelessFileLoader imports such a `.pyc` at any
 * optimisation level; tracebacks through it show file and line but no source text.
 */
import { walkTree } from "../util/fs.js";
import * as fs from "node:fs";
import * as path from "node:path";

export interface SourcelessOptions {
  /** The optimisation level whose cached bytecode replaces the source (0, 1 or 2). */
  optimize: 0 | 1 | 2;
  /** Keep the source (and its cached bytecode) of files or directories with these paths relative to the tree. */
  keep?: (rel: string) => boolean;
}

/** `foo.cpython-312.pyc` at level 0, `foo.cpython-312.opt-1.pyc` at level 1, …: the cached file for `foo` at that level, if any. */
function cachedFor(
  cacheEntries: readonly string[],
  stem: string,
  optimize: number,
): string | undefined {
  const suffix = optimize === 0 ? ".pyc" : `.opt-${optimize}.pyc`;
  return cacheEntries.find(
    (e) =>
      e.startsWith(`${stem}.`) &&
      e.endsWith(suffix) &&
      e.slice(stem.length + 1, -suffix.length).indexOf(".") === -1,
  );
}

/**
 * For each `foo.py` under `root` with bytecode — a legacy `foo.pyc` beside it, or a cached one in
 * `__pycache__/` at the given level (moved beside it) — removes the source. Sources without
 * bytecode (they failed to compile) stay. `__pycache__/` directories are emptied of everything
 * but the kept files' bytecode, and removed when empty. Returns the bytes of source removed.
 */
export async function dropSources(root: string, opts: SourcelessOptions): Promise<number> {
  let removed = 0;
  // Synchronous calls on purpose: thousands of small renames and unlinks, where per-call
  // thread-pool round trips cost several times the work.
  const visit = (dir: string, rel: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true });
    const cacheDir = path.join(dir, "__pycache__");
    const cache = entries.some((e) => e.name === "__pycache__" && e.isDirectory())
      ? fs.readdirSync(cacheDir)
      : [];
    const keptStems = new Set<string>();
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) continue; // each directory is visited on its own (below)
      if (!e.isFile() || !e.name.endsWith(".py")) continue;
      const stem = e.name.slice(0, -3);
      const source = path.join(dir, e.name);
      if (opts.keep?.(childRel)) {
        keptStems.add(stem);
        continue;
      }
      const cached = cachedFor(cache, stem, opts.optimize);
      if (cached) fs.renameSync(path.join(cacheDir, cached), `${source}c`);
      else if (!fs.existsSync(`${source}c`)) continue;
      removed += fs.statSync(source).size;
      fs.rmSync(source);
    }
    if (cache.length === 0) return;
    let left = 0;
    for (const c of fs.readdirSync(cacheDir)) {
      if (keptStems.has(c.split(".")[0])) left++;
      else fs.rmSync(path.join(cacheDir, c), { recursive: true, force: true });
    }
    if (left === 0) fs.rmdirSync(cacheDir);
  };
  // Kept directories and bytecode caches are not walked into.
  const skip = (rel: string, e: { name: string; isDirectory(): boolean }) =>
    e.isDirectory() && (e.name === "__pycache__" || opts.keep?.(rel) === true);
  const dirs = [{ full: root, rel: "" }];
  for await (const e of walkTree(root, { skip })) if (e.dirent.isDirectory()) dirs.push(e);
  for (const d of dirs) visit(d.full, d.rel);
  return removed;
}
