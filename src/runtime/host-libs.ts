/**
 * Finds shared libraries on the build host the way the dynamic loader would (ld.so(8)):
 * DT_RPATH (when there is no DT_RUNPATH), DT_RUNPATH, the ld.so cache, then the default
 * directories. A candidate is accepted only if its ELF class and machine match the importer.
 * Also answers "which Debian package owns this file" for provenance.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { readElfFile } from "../elf/file.js";
import type { ElfFile } from "../elf/read.js";
import { execFile } from "../util/exec.js";
import { pathExists } from "../util/fs.js";

let ldCache: Map<string, string[]> | undefined;

/** soname → paths, from `ldconfig -p` (empty when ldconfig is unavailable). */
async function ldconfigCache(): Promise<Map<string, string[]>> {
  if (ldCache) return ldCache;
  ldCache = new Map();
  for (const bin of ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]) {
    try {
      const r = await execFile(bin, ["-p"]);
      if (r.code !== 0) continue;
      for (const line of r.stdout.split("\n")) {
        const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/.exec(line);
        if (m) ldCache.set(m[1], [...(ldCache.get(m[1]) ?? []), m[3]]);
      }
      break;
    } catch {
      /* try the next name */
    }
  }
  return ldCache;
}

const DEFAULT_DIRS = ["/lib64", "/usr/lib64", "/lib", "/usr/lib"];

function expandOrigin(entry: string, originDir: string): string {
  return entry.replace(/\$(?:ORIGIN|\{ORIGIN\})/g, originDir);
}

export interface Importer {
  elf: ElfFile;
  /** Directory of the importing file at its original (pre-copy) location, for $ORIGIN. */
  originDir: string;
}

async function matches(candidate: string, importer: ElfFile): Promise<boolean> {
  try {
    const { elf } = await readElfFile(candidate);
    return (
      elf.bits === importer.bits &&
      elf.machine === importer.machine &&
      elf.littleEndian === importer.littleEndian
    );
  } catch {
    return false;
  }
}

/** Resolves `soname` for `importer` on this host; returns the real path or undefined. */
export async function findHostLibrary(
  soname: string,
  importer: Importer,
): Promise<string | undefined> {
  const dirs: string[] = [];
  const { elf, originDir } = importer;
  const split = (s?: string) =>
    s
      ? s
          .split(":")
          .filter(Boolean)
          .map((e) => expandOrigin(e, originDir))
      : [];
  if (!elf.runpath) dirs.push(...split(elf.rpath));
  dirs.push(...split(elf.runpath));
  for (const dir of dirs) {
    const p = path.join(dir, soname);
    if ((await pathExists(p)) && (await matches(p, elf))) return fsp.realpath(p);
  }
  for (const p of (await ldconfigCache()).get(soname) ?? []) {
    if (await matches(p, elf)) return fsp.realpath(p);
  }
  const multiarch =
    elf.machine === "x86_64"
      ? "x86_64-linux-gnu"
      : elf.machine === "aarch64"
        ? "aarch64-linux-gnu"
        : elf.machine === "x86"
          ? "i386-linux-gnu"
          : "";
  const defaults = multiarch
    ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`, ...DEFAULT_DIRS]
    : DEFAULT_DIRS;
  for (const dir of defaults) {
    const p = path.join(dir, soname);
    if ((await pathExists(p)) && (await matches(p, elf))) return fsp.realpath(p);
  }
  return undefined;
}

export interface PackageInfo {
  name: string;
  version: string;
  copyright?: string;
}

const dpkgCache = new Map<string, PackageInfo | undefined>();

/** The Debian package owning `file` (tries the usrmerge aliases too), or undefined. */
export async function owningPackage(file: string): Promise<PackageInfo | undefined> {
  if (dpkgCache.has(file)) return dpkgCache.get(file);
  const aliases = new Set([file]);
  if (file.startsWith("/usr/lib/")) aliases.add(file.slice(4));
  if (file.startsWith("/lib/")) aliases.add("/usr" + file);
  let info: PackageInfo | undefined;
  for (const alias of aliases) {
    let r;
    try {
      r = await execFile("dpkg-query", ["-S", alias]);
    } catch {
      break; // no dpkg on this host
    }
    if (r.code !== 0) continue;
    const pkg = r.stdout.split("\n")[0].split(":")[0].trim();
    const v = await execFile("dpkg-query", ["-W", "-f", "${Version}", pkg]);
    const copyright = `/usr/share/doc/${pkg}/copyright`;
    info = {
      name: pkg,
      version: v.stdout.trim(),
      copyright: (await pathExists(copyright)) ? copyright : undefined,
    };
    break;
  }
  dpkgCache.set(file, info);
  return info;
}
