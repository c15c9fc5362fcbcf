/**
 * Safe extraction of a tar archive into a directory that pyport just created (never into an
 * existing tree). Rejected, with E_UNSAFE_ARCHIVE: absolute names, `..` components, symlinks
 * and hardlinks whose target resolves outside the destination (following the archive's own
 * links, as the kernel would), entries stored below a symlink, devices and FIFOs.
 * Modes are normalised: no setuid/setgid/sticky bits, nothing group- or world-writable.
 * Symlinks and hardlinks are created last, after every regular file and directory.
 */
import { createWriteStream } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { PyportError } from "../errors.js";
import type { Reporter } from "../util/reporter.js";
import { decompressedChunks } from "./decompress.js";
import { readTar } from "./tar-read.js";

function unsafe(archive: string, message: string): never {
  throw new PyportError("E_UNSAFE_ARCHIVE", `${archive}: ${message}`, {
    hint: "pyport refuses archives that could write outside their destination. Use an archive from a trusted source.",
  });
}

/** Normalises an entry name to `a/b/c`, or returns an error description. */
export function normaliseEntryName(name: string): string | { error: string } {
  if (name.startsWith("/")) return { error: `absolute path ${JSON.stringify(name)}` };
  const parts: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") return { error: `path with '..' ${JSON.stringify(name)}` };
    parts.push(c);
  }
  return parts.join("/");
}

/**
 * Resolves `target` (a link's content) from the directory `dir` (components) the way the kernel
 * would, following links recorded in `links`. Returns the resolved components, or null when the
 * walk leaves the root or loops.
 */
export function resolveInside(
  dir: readonly string[],
  target: string,
  links: ReadonlyMap<string, string>,
  depth = 0,
): string[] | null {
  if (target.startsWith("/") || depth > 40) return null;
  let stack = [...dir];
  for (const c of target.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (stack.length === 0) return null;
      stack.pop();
      continue;
    }
    stack.push(c);
    const link = links.get(stack.join("/"));
    if (link !== undefined) {
      const resolved = resolveInside(stack.slice(0, -1), link, links, depth + 1);
      if (resolved === null) return null;
      stack = resolved;
    }
  }
  return stack;
}

function safeMode(mode: number, isDir: boolean): number {
  const m = mode & 0o755; // drops setuid/setgid/sticky and group/world write
  return isDir ? m | 0o700 : m | 0o600;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

/** Extracts `archive` (tar, tar.gz, tar.zst) into `dest`, which must not exist yet. */
export async function extractArchive(
  archive: string,
  dest: string,
  reporter?: Reporter,
): Promise<ExtractResult> {
  await fsp.mkdir(dest, { mode: 0o755 }); // throws EEXIST: we never extract over an existing tree
  const links = new Map<string, string>();
  const hardlinks: { name: string; target: string }[] = [];
  const written = new Set<string>();
  const dirs: { full: string; mode: number; mtime: number }[] = [];
  let files = 0;
  let bytes = 0;

  for await (const e of readTar(await decompressedChunks(archive))) {
    const name = normaliseEntryName(e.name);
    if (typeof name !== "string") unsafe(archive, name.error);
    if (name === "") continue;
    const full = path.join(dest, name);
    if (e.kind === "other")
      unsafe(
        archive,
        `unsupported entry type '${e.typeflag}' (device, FIFO or unknown) at ${name}`,
      );
    if (e.kind === "symlink") {
      links.set(name, e.linkname);
      continue;
    }
    if (e.kind === "hardlink") {
      const t = normaliseEntryName(e.linkname);
      if (typeof t !== "string") unsafe(archive, `hardlink ${name} -> ${t.error}`);
      hardlinks.push({ name, target: t });
      continue;
    }
    await fsp.mkdir(e.kind === "dir" ? full : path.dirname(full), { recursive: true, mode: 0o755 });
    written.add(name);
    if (e.kind === "dir") {
      dirs.push({ full, mode: safeMode(e.mode, true), mtime: e.mtime });
      continue;
    }
    await fsp.rm(full, { force: true });
    await pipeline(
      Readable.from(e.data!),
      createWriteStream(full, { mode: safeMode(e.mode, false), flags: "wx" }),
    );
    await fsp.chmod(full, safeMode(e.mode, false));
    await fsp.utimes(full, e.mtime, e.mtime);
    files++;
    bytes += e.size;
    reporter?.progress?.("extract", files);
  }

  // Nothing may be stored below a symlink: writing through it could leave the destination.
  for (const name of written) {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join("/")))
        unsafe(archive, `entry ${name} is stored below the symlink ${parts.slice(0, i).join("/")}`);
    }
  }
  for (const [name, target] of links) {
    const dir = name.split("/").slice(0, -1);
    if (resolveInside(dir, target, links) === null)
      unsafe(archive, `symlink ${name} -> ${target} points outside the archive`);
    if (written.has(name))
      unsafe(archive, `symlink ${name} replaces a file or directory of the same name`);
  }
  for (const [name, target] of links) {
    const full = path.join(dest, name);
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
    await fsp.symlink(target, full);
  }
  for (const h of hardlinks) {
    const resolved = resolveInside([], h.target, links);
    if (resolved === null || !written.has(resolved.join("/")))
      unsafe(
        archive,
        `hardlink ${h.name} -> ${h.target} does not name a regular file of the archive`,
      );
    const full = path.join(dest, h.name);
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
    await fsp.link(path.join(dest, resolved.join("/")), full);
    files++;
  }
  // Directory modes last, deepest first, so read-only directories do not block extraction.
  for (const d of dirs.reverse()) {
    await fsp.chmod(d.full, d.mode);
    await fsp.utimes(d.full, d.mtime, d.mtime);
  }
  return { files, bytes };
}
