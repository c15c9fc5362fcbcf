import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";

/** sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
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

/** Total size in bytes of the regular files below `dir` (links are not followed). */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const file of await walkFiles(dir)) total += (await fsp.lstat(file)).size;
  return total;
}

/** Every non-directory entry below `dir` (files and symlinks), depth first, sorted by name. */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(full)));
    else out.push(full);
  }
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
