/**
 * pyport's content-addressed cache. Layout: `<root>/<bucket>/<key>/` (buckets.ts names the root
 * and the buckets; a bucket name carries its format version). An entry is
 * complete only when its marker file exists: entries are built in a temp directory, the marker
 * is written last, and the directory is renamed into place under a lock.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";
import { pathExists, treeSize, ifExists } from "../util/fs.js";
import { isProcessAlive } from "../util/process.js";
import { tryLock, withLock } from "./lock.js";

import { bucketDir, cacheRoot } from "./buckets.js";

export const COMPLETE_MARKER = ".pyport-complete";

export interface MaterializeOptions {
  bucket: string;
  key: string;
  /** Fills `tmpDir` (an empty directory on the same filesystem). Throwing discards it. */
  build: (tmpDir: string) => Promise<void>;
  root?: string;
  lockTimeoutMs?: number;
}

/** True when a cache entry directory exists and carries its completion marker. */
async function isComplete(dir: string): Promise<boolean> {
  return pathExists(path.join(dir, COMPLETE_MARKER));
}

/**
 * Returns the directory of a complete cache entry, building it first if needed. Safe against
 * concurrent callers (double-checked under a lock) and against crashes (a directory without
 * its marker is discarded and rebuilt).
 */
export async function materialize(
  opts: MaterializeOptions,
): Promise<{ dir: string; built: boolean }> {
  const bucket = bucketDir(opts.bucket, opts.root);
  const dir = path.join(bucket, opts.key);
  if (await isComplete(dir)) return { dir, built: false };
  await fsp.mkdir(bucket, { recursive: true, mode: 0o755 });
  return withLock(
    path.join(bucket, `${opts.key}.lock`),
    { timeoutMs: opts.lockTimeoutMs },
    async () => {
      if (await isComplete(dir)) return { dir, built: false };
      await fsp.rm(dir, { recursive: true, force: true }); // an incomplete leftover
      const tmp = path.join(bucket, `.tmp-${opts.key}-${process.pid}-${Date.now()}`);
      await fsp.mkdir(tmp, { mode: 0o755 });
      try {
        await opts.build(tmp);
        await fsp.writeFile(path.join(tmp, COMPLETE_MARKER), new Date().toISOString() + "\n");
        await fsp.rename(tmp, dir);
      } catch (err) {
        await fsp.rm(tmp, { recursive: true, force: true });
        throw err;
      }
      return { dir, built: true };
    },
  );
}

export interface CacheEntry {
  bucket: string;
  key: string;
  path: string;
  bytes: number;
  complete: boolean;
  /** Last time the entry was used (the marker's mtime, touched on use), or its own mtime. */
  lastUsed: Date;
}

/** Records that an entry was used now (prune keeps recently used entries). */
export async function touchEntry(dir: string): Promise<void> {
  const now = new Date();
  try {
    await fsp.utimes(path.join(dir, COMPLETE_MARKER), now, now);
  } catch (err) {
    if (
      !hasErrno(err, "ENOENT") &&
      !hasErrno(err, "EROFS") &&
      !hasErrno(err, "EACCES") &&
      !hasErrno(err, "EPERM")
    )
      throw err;
  }
}

export async function listCache(root = cacheRoot()): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  let buckets: string[];
  try {
    buckets = (await fsp.readdir(root)).sort();
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return [];
    throw err;
  }
  for (const bucket of buckets) {
    const bdir = path.join(root, bucket);
    if (!(await fsp.stat(bdir)).isDirectory()) continue;
    for (const key of (await fsp.readdir(bdir)).sort()) {
      if (key.endsWith(".lock")) continue;
      const p = path.join(bdir, key);
      const st = await fsp.lstat(p);
      const complete = st.isDirectory() ? await isComplete(p) : st.isFile();
      const marker =
        complete && st.isDirectory() ? await fsp.stat(path.join(p, COMPLETE_MARKER)) : st;
      out.push({
        bucket,
        key,
        path: p,
        bytes: st.isDirectory() ? await treeSize(p) : st.size,
        complete,
        lastUsed: marker.mtime,
      });
    }
  }
  return out;
}

export interface PruneOptions {
  root?: string;
  /** Remove complete entries not used for this many days (0: every entry not in use). */
  olderThanDays: number;
  /** Only this bucket. */
  bucket?: string;
  dryRun?: boolean;
}

export interface PruneResult {
  removed: CacheEntry[];
  /** Entries that would have gone but are in use (locked by a build or a running onefile). */
  inUse: CacheEntry[];
}

/** The cache key a temp dir belongs to: `.tmp-<key>-<pid>-<time>` (materialize) or `.tmp-<key>-<pid>` (onefile stubs). */
function tempOwner(name: string): { key: string; pid: number } | undefined {
  const m = /^\.tmp-(.+)-(\d+)-(\d+)$/.exec(name) ?? /^\.tmp-(.+)-(\d+)$/.exec(name);
  return m ? { key: m[1], pid: Number(m[2]) } : undefined;
}

/**
 * Removes entries unused for `olderThanDays`, and leftovers of dead processes (temp dirs,
 * incomplete entries, lock files of removed entries) whatever their age. Each removal happens
 * under the entry's lock, taken without waiting: an entry being built, or the extraction of a
 * onefile that is running (it holds a shared lock while it runs), is left alone and reported in
 * `inUse`. A lock file is removed only by its holder (see lock.ts for why that is safe).
 */
export async function pruneCache(opts: PruneOptions): Promise<PruneResult> {
  const result: PruneResult = { removed: [], inUse: [] };
  const cutoff = Date.now() - opts.olderThanDays * 86_400_000;
  const root = opts.root ?? cacheRoot();
  for (const e of await listCache(root)) {
    if (opts.bucket && e.bucket !== opts.bucket) continue;
    if (e.complete && e.lastUsed.getTime() >= cutoff) continue;
    const temp = tempOwner(e.key);
    if (temp && isProcessAlive(temp.pid) && temp.pid !== process.pid) continue; // being built
    const partial = e.key.endsWith(".partial"); // an interrupted download (download.ts)
    const owner = temp ? temp.key : partial ? e.key.slice(0, -".partial".length) : e.key;
    const lockFile = path.join(root, e.bucket, `${owner}.lock`);
    const lock = await tryLock(lockFile);
    if (!lock) {
      result.inUse.push(e);
      continue;
    }
    try {
      if (!opts.dryRun) await fsp.rm(e.path, { recursive: true, force: true });
    } finally {
      if (!opts.dryRun && !temp && !partial) await lock.releaseAndRemove();
      else await lock.release();
    }
    result.removed.push(e);
  }
  // Lock files whose entry is gone (a stub or build that failed before creating it).
  for (const bucket of await ifExists(fsp.readdir(root), [] as string[])) {
    if (opts.bucket && bucket !== opts.bucket) continue;
    const bdir = path.join(root, bucket);
    for (const name of await ifExists(fsp.readdir(bdir), [] as string[])) {
      if (!name.endsWith(".lock") || (await pathExists(path.join(bdir, name.slice(0, -5)))))
        continue;
      const lock = await tryLock(path.join(bdir, name));
      if (!lock) continue;
      if (opts.dryRun || (await pathExists(path.join(bdir, name.slice(0, -5)))))
        await lock.release();
      else await lock.releaseAndRemove();
    }
  }
  return result;
}
