/**
 * What a runtime built from an interpreter on this machine is made of, as one digest for its
 * cache key: a change to any input — the interpreter, libpython, a file of the standard library
 * (lib-dynload included), a shared library the loader would pick up (a security update of
 * OpenSSL changes the package database and the loader's cache), or pyport itself — gives a new
 * key, so a stale runtime is never reused. Files are compared by path, size, mtime and inode:
 * package managers replace files, they do not edit them in place.
 */
import { ifExists } from "../util/fs.js";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";
import type { PythonProbe } from "../python/probe.js";
import { nativeAsset, packageRoot } from "../util/assets.js";
import { walkTree } from "../util/fs.js";
import { PYPORT_VERSION } from "../version.js";

/** Files whose change means the machine's shared libraries may have changed. */
const SYSTEM_LIBRARY_STATE = [
  "/etc/ld.so.cache",
  "/var/lib/dpkg/status",
  "/var/lib/rpm/rpmdb.sqlite",
  "/lib/apk/db/installed",
];

async function statLine(file: string): Promise<string> {
  try {
    const st = await fsp.stat(file);
    return `${file}\0${st.size}\0${st.mtimeMs}\0${st.ino}\n`;
  } catch (err) {
    if (!hasErrno(err, "ENOENT") && !hasErrno(err, "ENOTDIR") && !hasErrno(err, "EACCES"))
      throw err;
    return `${file}\0-\n`;
  }
}

/** Stat lines of every file below `dir`, sorted (site-packages and bytecode caches left out). */
async function treeLines(dir: string): Promise<string[]> {
  const skip = (_: string, e: { name: string }) =>
    e.name === "site-packages" || e.name === "dist-packages" || e.name === "__pycache__";
  const files: string[] = [];
  try {
    for await (const e of walkTree(dir, { skip })) if (!e.dirent.isDirectory()) files.push(e.full);
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR")) return [];
    throw err;
  }
  return Promise.all(files.map(statLine));
}

let pyportDigest: string | undefined;

/** pyport's own part of every runtime: its version, relocation code, Python helpers and launcher. */
export async function pyportFingerprint(): Promise<string> {
  if (pyportDigest) return pyportDigest;
  const hash = createHash("sha256").update(PYPORT_VERSION);
  const root = packageRoot();
  const runtimeCode = path.dirname(new URL(import.meta.url).pathname);
  for (const dir of [runtimeCode, path.join(root, "python")]) {
    for (const name of (await fsp.readdir(dir)).sort())
      if (/\.(js|py)$/.test(name)) hash.update(await fsp.readFile(path.join(dir, name)));
  }
  try {
    hash.update(await fsp.readFile(nativeAsset("launcher")));
  } catch (err) {
    if (!hasErrno(err, "ENOENT")) throw err;
    hash.update("no native launcher");
  }
  return (pyportDigest = hash.digest("hex"));
}

/** The digest of everything a runtime made from the interpreter `interpreter` is made of. */
export async function hostSourceFingerprint(
  interpreter: string,
  probe: PythonProbe,
): Promise<string> {
  const hash = createHash("sha256").update(`${probe.versionFull}\n`);
  hash.update(await statLine(await fsp.realpath(interpreter)));
  const libdir = typeof probe.vars.LIBDIR === "string" ? probe.vars.LIBDIR : undefined;
  if (libdir)
    for (const name of (await ifExists(fsp.readdir(libdir), [] as string[])).sort())
      if (/^libpython/.test(name)) hash.update(await statLine(path.join(libdir, name)));
  const dirs = [...new Set([probe.paths.stdlib, probe.paths.platstdlib].filter(Boolean))];
  for (const lines of await Promise.all(dirs.map(treeLines))) for (const l of lines) hash.update(l);
  for (const l of await Promise.all(SYSTEM_LIBRARY_STATE.map(statLine))) hash.update(l);
  return hash.digest("hex");
}
