/**
 * Cache entries used through hard links. A build links the cached runtime and cached
 * dependencies into its tree instead of copying them (no file data is written, so a warm build
 * spends milliseconds where a copy spent seconds), falling back to copies across filesystems or
 * when PYPORT_NO_LINKS=1. A link shares its file with the cache, so:
 * - pyport writes into a build tree only by replacing files (a temp file, then a rename), and
 *   pip, compileall and the stdlib zipper do the same;
 * - an entry records the state of its files (size, mode, mtime) when first used, and is checked
 *   before every use: an entry changed in place through a link (say, an editor writing into a
 *   bundle's file) is discarded and rebuilt, never shipped changed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { hasErrno } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { COMPLETE_MARKER } from "./cache.js";

export const STATE_FILE = ".pyport-files";

/** Regular files under `dir` (not the entry's own marker files): "rel\tsize\tmode\tmtime" lines. */
function fileStates(dir: string): string {
  const lines: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && (e.name === COMPLETE_MARKER || e.name === STATE_FILE)) continue;
      const full = path.join(abs, e.name);
      if (e.isDirectory()) walk(full, childRel);
      else if (e.isFile()) {
        const st = fs.lstatSync(full);
        lines.push(`${childRel}\t${st.size}\t${st.mode}\t${st.mtimeMs}`);
      }
    }
  };
  walk(dir, "");
  return lines.sort().join("\n") + "\n";
}

/**
 * True when the files of cache entry `dir` are as they were when it was first used (recording
 * that state now if this is the first use); false when one was changed, added or removed.
 */
export async function entryUnchanged(dir: string): Promise<boolean> {
  const now = fileStates(dir);
  let recorded: string;
  try {
    recorded = fs.readFileSync(path.join(dir, STATE_FILE), "utf8");
  } catch (err) {
    if (!hasErrno(err, "ENOENT")) throw err;
    await writeFileAtomic(path.join(dir, STATE_FILE), now);
    return true;
  }
  return recorded === now;
}

/** Removes a cache entry (renamed aside first, so no reader sees it half-removed). */
export function discardEntry(dir: string): void {
  const aside = `${dir}.discard-${process.pid}-${Date.now()}`;
  try {
    fs.renameSync(dir, aside);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    throw err;
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

/** Whether links are allowed at all (PYPORT_NO_LINKS=1 asks for independent copies). */
export function linksAllowed(): boolean {
  return process.env.PYPORT_NO_LINKS !== "1";
}

/**
 * Puts the tree `src` (a cache entry: symlinks in it are relative and stay inside it) into
 * `dest`, merging with what `dest` has: files hard-linked, or copied with their mode and
 * timestamps when links are not possible (another filesystem) or not allowed; a file already
 * in `dest` is replaced. Returns how many files were linked and copied.
 */
export function linkTree(
  src: string,
  dest: string,
  skip: (rel: string) => boolean = () => false,
): { linked: number; copied: number } {
  const counts = { linked: 0, copied: 0 };
  let link = linksAllowed();
  const place = (s: string, d: string) => {
    if (link) {
      try {
        fs.linkSync(s, d);
        counts.linked++;
        return;
      } catch (err) {
        if (hasErrno(err, "EEXIST")) {
          fs.unlinkSync(d);
          return place(s, d);
        }
        if (!["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EACCES"].some((c) => hasErrno(err, c)))
          throw err;
        link = false; // this filesystem pair does not link: copy the rest
      }
    }
    fs.rmSync(d, { force: true });
    fs.copyFileSync(s, d);
    const st = fs.statSync(s);
    fs.chmodSync(d, (st.mode & 0o755) | 0o600);
    fs.utimesSync(d, st.atime, st.mtime);
    counts.copied++;
  };
  const walk = (abs: string, out: string, rel: string) => {
    fs.mkdirSync(out, { recursive: true, mode: 0o755 });
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (skip(childRel)) continue;
      const s = path.join(abs, e.name);
      const d = path.join(out, e.name);
      if (e.isDirectory()) walk(s, d, childRel);
      else if (e.isSymbolicLink()) {
        fs.rmSync(d, { force: true });
        fs.symlinkSync(fs.readlinkSync(s), d);
      } else if (e.isFile()) place(s, d);
    }
  };
  walk(src, dest, "");
  return counts;
}
