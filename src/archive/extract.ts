/**
 * Safe extraction of a tar archive into a directory that pyport just created (never into an
 * existing tree). The policy never lets a write go through a link the archive made:
 * - names are relative with no `..` (after pax and GNU long-name headers are applied);
 * - no entry of any kind (file, directory, symlink, hard link) may be stored below a name the
 *   archive makes a symlink, whichever comes first in the archive;
 * - a name is one kind only: a symlink never replaces a file or directory, a file never replaces
 *   a directory or sits below a file (a file may replace an earlier file, as tar does);
 * - a hard link must name a regular file stored earlier, by its exact name (no link traversal);
 * - a symlink's target must be relative and resolve inside the destination, following every
 *   symlink of the archive as the kernel would (`a -> .` then `a/a/x -> ../..` is refused both
 *   for being below `a` and for escaping);
 * - devices, FIFOs and unknown types are refused.
 * Files and directories are written first, then hard links, then symlinks, so nothing is ever
 * written through a link.
 *
 * `strict` is for onefile payloads: the archive must follow pyport's strict tar profile
 * (tar-read.ts), and the rules are the onefile stub's own, so `pyport audit` sees exactly the
 * tree the stub extracts: names with no empty or "." component, a directory entry before
 * anything inside it, no name twice (but directories), symlinks pointing inside by leading ".."
 * only, modes from the executable bit alone. Modes are normalised: no setuid/setgid/sticky bits, nothing group- or
 * world-writable. Every refusal is E_UNSAFE_ARCHIVE; a malformed archive is E_ARCHIVE.
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
function normaliseEntryName(name: string): string | { error: string } {
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
 * walk leaves the root or takes more than 40 link expansions in all (a loop, as ELOOP).
 */
function resolveInside(
  dir: readonly string[],
  target: string,
  links: ReadonlyMap<string, string>,
  budget = { expansions: 40 },
): string[] | null {
  if (target.startsWith("/")) return null;
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
      if (--budget.expansions < 0) return null;
      const resolved = resolveInside(stack.slice(0, -1), link, links, budget);
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

type Kind = "file" | "dir" | "symlink" | "hardlink";

/** The proper prefixes of `a/b/c`: `a`, `a/b`. */
function* parents(name: string): Generator<string> {
  for (let i = name.indexOf("/"); i >= 0; i = name.indexOf("/", i + 1)) yield name.slice(0, i);
}

/** The onefile stub's name rule: relative, no empty, "." or ".." component (trailing "/" dropped). */
function strictName(raw: string): string | { error: string } {
  let name = raw;
  while (name.length > 1 && name.endsWith("/")) name = name.slice(0, -1);
  if (name === ".") return "";
  if (name === "" || name.startsWith("/"))
    return { error: `absolute or empty path ${JSON.stringify(raw)}` };
  if (name.split("/").some((c) => c === "" || c === "." || c === ".."))
    return { error: `path with an empty, '.' or '..' component ${JSON.stringify(raw)}` };
  return name;
}

/** The onefile stub's symlink rule: relative, its ".." only leading and no more than its depth. */
function strictLinkOk(name: string, target: string): boolean {
  if (target === "" || target.startsWith("/")) return false;
  let depth = name.split("/").length - 1;
  let leading = true;
  for (const c of target.split("/")) {
    if (c === "..") {
      if (!leading || --depth < 0) return false;
    } else if (c !== "" && c !== ".") leading = false;
  }
  return true;
}

export interface ExtractOptions {
  reporter?: Reporter;
  /** pyport's strict profile and the onefile stub's rules (for onefile payloads). */
  strict?: boolean;
}

/** Extracts `archive` (tar, tar.gz, tar.zst) into `dest`, which must not exist yet. */
export async function extractArchive(
  archive: string,
  dest: string,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const { reporter, strict = false } = opts;
  await fsp.mkdir(dest, { mode: 0o755 }); // throws EEXIST: we never extract over an existing tree
  const kinds = new Map<string, Kind>(); // every name the archive defines, implicit parents as "dir"
  const explicitDirs = new Set<string>();
  const links = new Map<string, string>();
  const hardlinks: { name: string; target: string }[] = [];
  const dirs: { full: string; mode: number; mtime: number }[] = [];
  let files = 0;
  let bytes = 0;

  /** Records `name` as `kind`, refusing names below a symlink or a file, and kind changes. */
  const claim = (name: string, kind: Kind) => {
    for (const p of parents(name)) {
      const k = kinds.get(p);
      if (k === "symlink" || k === "hardlink")
        unsafe(
          archive,
          `entry ${name} is stored below the ${k === "symlink" ? "symlink" : "hard link"} ${p}`,
        );
      if (k === "file") unsafe(archive, `entry ${name} is stored below the file ${p}`);
      if (k === undefined) kinds.set(p, "dir");
    }
    if (strict && kinds.get(name) === "file" && kind === "file")
      unsafe(archive, `${name} is stored twice`);
    if (strict)
      for (const p of parents(name))
        if (!explicitDirs.has(p))
          unsafe(archive, `${name} comes before a directory entry for ${p}`);
    if (strict && kind === "dir") explicitDirs.add(name);
    const before = kinds.get(name);
    if (before !== undefined && !(before === kind && (kind === "file" || kind === "dir")))
      unsafe(archive, `${name} is stored twice, as a ${before} and as a ${kind}`);
    kinds.set(name, kind);
  };

  for await (const e of readTar(await decompressedChunks(archive), { strict })) {
    const name = strict ? strictName(e.name) : normaliseEntryName(e.name);
    if (typeof name !== "string") unsafe(archive, name.error);
    if (name === "") {
      if (e.kind === "dir") continue; // the archive's root, "./"
      unsafe(archive, `a ${e.kind} entry without a name`);
    }
    if (e.kind === "other")
      unsafe(
        archive,
        `unsupported entry type '${e.typeflag}' (device, FIFO or unknown) at ${name}`,
      );
    claim(name, e.kind);
    const full = path.join(dest, name);
    if (e.kind === "symlink") {
      if (e.linkname === "" || e.linkname.startsWith("/"))
        unsafe(archive, `symlink ${name} -> ${JSON.stringify(e.linkname)} is absolute or empty`);
      if (strict && !strictLinkOk(name, e.linkname))
        unsafe(
          archive,
          `symlink ${name} -> ${e.linkname} points outside (or has '..' after a name)`,
        );
      links.set(name, e.linkname);
      continue;
    }
    if (e.kind === "hardlink") {
      const t = normaliseEntryName(e.linkname);
      if (typeof t !== "string") unsafe(archive, `hardlink ${name} -> ${t.error}`);
      if (kinds.get(t) !== "file")
        unsafe(archive, `hardlink ${name} -> ${t} does not name a regular file stored before it`);
      hardlinks.push({ name, target: t });
      continue;
    }
    await fsp.mkdir(e.kind === "dir" ? full : path.dirname(full), { recursive: true, mode: 0o755 });
    if (e.kind === "dir") {
      dirs.push({ full, mode: strict ? 0o755 : safeMode(e.mode, true), mtime: e.mtime });
      continue;
    }
    await fsp.rm(full, { force: true }); // an earlier file of the same name (never a directory)
    const mode = strict ? (e.mode & 0o111 ? 0o755 : 0o644) : safeMode(e.mode, false);
    await pipeline(Readable.from(e.data!), createWriteStream(full, { mode, flags: "wx" }));
    await fsp.chmod(full, mode);
    await fsp.utimes(full, e.mtime, e.mtime);
    files++;
    bytes += e.size;
    reporter?.progress?.("extract", files);
  }

  // A symlink that comes after entries below its name was not known when they were claimed.
  for (const name of kinds.keys())
    for (const p of parents(name))
      if (links.has(p)) unsafe(archive, `entry ${name} is stored below the symlink ${p}`);
  for (const [name, target] of links) {
    const dir = name.split("/").slice(0, -1);
    if (resolveInside(dir, target, links) === null)
      unsafe(archive, `symlink ${name} -> ${target} points outside the archive`);
  }
  for (const h of hardlinks) {
    const full = path.join(dest, h.name);
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
    await fsp.rm(full, { force: true });
    await fsp.link(path.join(dest, h.target), full);
    files++;
  }
  for (const [name, target] of links) {
    const full = path.join(dest, name);
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
    await fsp.symlink(target, full);
  }
  // Directory modes last, deepest first, so read-only directories do not block extraction.
  for (const d of dirs.reverse()) {
    await fsp.chmod(d.full, d.mode);
    await fsp.utimes(d.full, d.mtime, d.mtime);
  }
  return { files, bytes };
}
