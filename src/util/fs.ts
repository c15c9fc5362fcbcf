import { createHash, randomBytes } from "node:crypto";
import { createReadStream, type Dirent } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";

/** sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** `p`'s value, or `fallback` when the path does not exist (ENOENT, ENOTDIR); other errors propagate. */
export async function ifExists<T, F>(p: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await p;
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR")) return fallback;
    throw err;
  }
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR")) return false;
    throw err;
  }
}

/** A fresh sibling name for temp output next to `target` (same filesystem, so rename is atomic). */
export function siblingTemp(target: string, tag: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
}

/** Writes a file atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const tmp = siblingTemp(file, "write");
  const handle = await fsp.open(tmp, "wx", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes `file` as a new file (a temp, then a rename; no fsync) keeping the old file's mode:
 * never through the old file's inode, which in a build tree may be a hard link into the cache.
 */
export async function replaceFile(file: string, data: string | Uint8Array): Promise<void> {
  const mode = await fsp.stat(file).then(
    (st) => st.mode & 0o7777,
    () => 0o644,
  );
  const tmp = siblingTemp(file, "write");
  try {
    await fsp.writeFile(tmp, data, { mode, flag: "wx" });
    await fsp.chmod(tmp, mode);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** One entry of a tree walk: its path relative to the root (with `/`), its full path, its dirent. */
export interface TreeEntry {
  rel: string;
  full: string;
  dirent: Dirent;
}

/**
 * pyport's one tree walker: every entry below `root`, depth first, sorted by name (byte order), a
 * directory before its contents. Symlinks are listed, never followed. `skip(rel, dirent)` leaves
 * an entry out (and, for a directory, everything below it).
 */
export async function* walkTree(
  root: string,
  opts: { skip?: (rel: string, dirent: Dirent) => boolean } = {},
  rel = "",
): AsyncGenerator<TreeEntry> {
  const entries = await fsp.readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const dirent of entries) {
    const r = rel ? `${rel}/${dirent.name}` : dirent.name;
    if (opts.skip?.(r, dirent)) continue;
    yield { rel: r, full: path.join(root, r), dirent };
    if (dirent.isDirectory()) yield* walkTree(root, opts, r);
  }
}

/** Total size in bytes of the regular files below `dir` (links are not followed). */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const file of await walkFiles(dir)) total += (await fsp.lstat(file)).size;
  return total;
}

/** Every non-directory entry below `dir` (files and symlinks), full paths, in walkTree's order. */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walkTree(dir)) if (!e.dirent.isDirectory()) out.push(e.full);
  return out;
}

/** Replaces `target` by `source` (a finished directory), as close to atomic as POSIX allows. */
export async function replaceDir(source: string, target: string): Promise<void> {
  try {
    await fsp.rename(source, target);
    return;
  } catch (err) {
    if (!hasErrno(err, "ENOTEMPTY") && !hasErrno(err, "EEXIST")) throw err;
  }
  const old = siblingTemp(target, "old");
  await fsp.rename(target, old);
  await fsp.rename(source, target);
  await fsp.rm(old, { recursive: true, force: true });
}
