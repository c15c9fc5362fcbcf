/**
 * The audited tree: every file (relative path, mode, size), symlinks resolved inside the tree,
 * the ELF files scanned, and the scripts' shebang lines. Reads each candidate once; never
 * follows a link out of the tree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { walkTree } from "../util/fs.js";
import { readElfRegionsSync } from "../elf/file.js";
import { isElf } from "../elf/read.js";
import { hasErrno, PyportError } from "../errors.js";
import { scanElf, type ElfScan } from "./elf-scan.js";

export interface TreeFile {
  rel: string;
  /** Mode and size come from stat; files that can be neither ELF nor a script are not stat'ed (-1). */
  mode: number;
  size: number;
}

/** Extensions of files that are never ELF objects or executable scripts worth checking. */
const DATA_FILE =
  /\.(pyc|py|pyi|h|txt|json|csv|md|rst|html?|css|js|png|svg|ico|gif|jpe?g|typed|cfg|toml|ini|xml|pem|dat|mo|po|pxd|pyx|f90|c|cc|cpp|hpp|tcl|msg|enc)$/i;

export interface Tree {
  root: string;
  files: TreeFile[];
  /** Symlink → its target resolved inside the tree (relative), or null when it escapes or dangles. */
  links: Map<string, string | null>;
  elves: ElfScan[];
  /** Files that failed to parse as ELF despite the magic: rel → reason. */
  badElves: Map<string, string>;
  shebangs: Map<string, string>;
}

const LIBRARY_NAME = /\.so(?:\.[\w.]+)?$/;

/** The stats are synchronous on purpose: thousands of small stat calls are several times faster without the thread pool round trip. */
async function walk(root: string, out: TreeFile[], links: string[]): Promise<void> {
  for await (const { rel, full, dirent: e } of walkTree(root)) {
    if (e.isSymbolicLink()) links.push(rel);
    else if (e.isFile()) {
      // Thousands of .py/.pyc files: skip their stat unless a bin/ script could be one of them.
      if (DATA_FILE.test(e.name) && !/(^|\/)(bin|libexec)\/[^/]+$/.test(rel)) {
        out.push({ rel, mode: -1, size: -1 });
        continue;
      }
      const st = fs.statSync(full);
      out.push({ rel, mode: st.mode & 0o7777, size: st.size });
    }
  }
}

/** Resolves a symlink inside the tree (following chains), or null if it leaves the tree or dangles. */
function resolveLink(root: string, rel: string): string | null {
  try {
    const real = fs.realpathSync(path.join(root, rel));
    const realRoot = fs.realpathSync(root);
    const inside = path.relative(realRoot, real);
    return inside.startsWith("..") || path.isAbsolute(inside)
      ? null
      : inside.split(path.sep).join("/");
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ELOOP")) return null; // dangling or looping
    throw err;
  }
}

export async function readTree(root: string): Promise<Tree> {
  const st = fs.statSync(root, { throwIfNoEntry: false });
  if (!st?.isDirectory())
    throw new PyportError("E_USAGE", `${root} is not a directory`, {
      hint: "Give a runtime or bundle directory, or a .tar.gz/.tar.zst archive of one.",
    });
  const files: TreeFile[] = [];
  const linkRels: string[] = [];
  await walk(root, files, linkRels);
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const links = new Map<string, string | null>();
  for (const l of linkRels.sort()) links.set(l, resolveLink(root, l));

  const elves: ElfScan[] = [];
  const badElves = new Map<string, string>();
  const shebangs = new Map<string, string>();
  let scratch = Buffer.alloc(0);
  for (const f of files) {
    const executable = f.mode > 0 && (f.mode & 0o111) !== 0;
    if (f.size < 4 || (!executable && !LIBRARY_NAME.test(f.rel))) continue;
    const fd = fs.openSync(path.join(root, f.rel), "r");
    try {
      const head = Buffer.allocUnsafe(Math.min(f.size, 512));
      fs.readSync(fd, head, 0, head.length, 0);
      if (isElf(head)) {
        if (scratch.length < f.size) scratch = Buffer.allocUnsafe(f.size);
        try {
          elves.push(scanElf(f.rel, readElfRegionsSync(fd, f.size, scratch)));
        } catch (err) {
          badElves.set(f.rel, (err as Error).message);
        }
      } else if (head[0] === 0x23 && head[1] === 0x21) {
        shebangs.set(f.rel, head.toString("latin1").split("\n")[0].slice(2).trim());
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return { root, files, links, elves, badElves, shebangs };
}
