/**
 * Runtime profiles: what each drops from the stdlib, and debug-info stripping.
 *  - full:    nothing dropped, nothing stripped.
 *  - default: test suites and test extension modules, static libpython archives, GUI parts
 *             (tkinter, idlelib, turtle, turtledemo: they drag in Tcl/Tk and X11 libraries),
 *             -O/-OO bytecode (.opt-1/.opt-2.pyc; compiled on demand), help()'s topic texts
 *             (pydoc_data), and the deprecated lib2to3, nis and crypt (PEP 594; gone in 3.13):
 *             nis and crypt pull in libnsl, libtirpc, Kerberos and libcrypt, which also raise
 *             the glibc floor.
 *             And the `readline` module when it links GNU readline (GPL-3.0-or-later: a vendor of
 *             proprietary software may not ship it with the app); one built on libedit (BSD,
 *             as python-build-standalone's) stays. `full` keeps it.
 *  - minimal: default, plus ensurepip, the C headers and config dir (no C extension builds),
 *             distutils, and man pages.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { execFile } from "../util/exec.js";
import { readElfFile } from "../elf/file.js";
import { ifExists, treeSize, walkTree } from "../util/fs.js";

export type Profile = "full" | "default" | "minimal";
export const PROFILES: readonly Profile[] = ["full", "default", "minimal"];

interface DropRule {
  /** Group name used in the size report. */
  group: string;
  /** Matches a runtime-relative path with the stdlib prefix `lib/pythonX.Y/` removed. */
  test: (stdlibRel: string) => boolean;
}

/** A top-level stdlib module file: `name.py` and its cached bytecode. */
const moduleFile = (r: string, name: string) =>
  r === `${name}.py` || (r.startsWith(`__pycache__/${name}.`) && r.endsWith(".pyc"));

const TESTS: DropRule = {
  group: "tests",
  test: (r) =>
    r === "test" ||
    (/\/tests?$/.test(r) && !r.startsWith("site-packages/")) ||
    /^lib-dynload\/(_test|_xxtest|xxlimited|xxsubtype|_ctypes_test)/.test(r),
};
const STATIC_LIBS: DropRule = {
  group: "static libpython",
  test: (r) => /^config-[^/]+\/libpython[^/]*\.a$/.test(r),
};
const GUI: DropRule = {
  group: "gui (tkinter, idlelib, turtle)",
  test: (r) =>
    /^(tkinter|idlelib|turtledemo)(\/|$)/.test(r) ||
    moduleFile(r, "turtle") ||
    /^lib-dynload\/_tkinter/.test(r),
};
// -O/-OO bytecode: rarely used, twice the size of the plain .pyc; Python compiles it on demand.
const OPT_PYC: DropRule = {
  group: "optimised bytecode (.opt-1/.opt-2.pyc)",
  test: (r) => /\/__pycache__\/[^/]+\.opt-[12]\.pyc$|^__pycache__\/[^/]+\.opt-[12]\.pyc$/.test(r),
};
const DEV: DropRule = {
  group: "build support (config dir)",
  test: (r) => /^config-[^/]+(\/|$)/.test(r),
};
// ensurepip is removed only after it has installed pip (runtime/create.ts).
const DEPRECATED: DropRule = {
  group: "help() topics and deprecated modules (pydoc_data, lib2to3, nis, crypt)",
  test: (r) =>
    /^(lib2to3|pydoc_data)(\/|$)/.test(r) ||
    moduleFile(r, "crypt") ||
    /^lib-dynload\/(nis|_crypt)\./.test(r),
};
const DISTUTILS: DropRule = { group: "distutils", test: (r) => /^distutils(\/|$)/.test(r) };

const RULES: Record<Profile, DropRule[]> = {
  full: [],
  default: [TESTS, STATIC_LIBS, GUI, OPT_PYC, DEPRECATED],
  minimal: [TESTS, STATIC_LIBS, GUI, OPT_PYC, DEPRECATED, DEV, DISTUTILS],
};

export interface PruneReport {
  profile: Profile;
  /** bytes dropped per group */
  dropped: Record<string, number>;
}

/** Removes what the profile drops from a staged runtime and reports the sizes. */
export async function pruneRuntime(
  root: string,
  stdlibRel: string,
  profile: Profile,
): Promise<PruneReport> {
  const report: PruneReport = { profile, dropped: {} };
  const rules = RULES[profile];
  if (rules.length === 0) return report;
  const stdlib = path.join(root, stdlibRel);
  // What a rule drops is not walked into; it is removed after the walk.
  const drops: { full: string; dir: boolean; group: string }[] = [];
  const skip = (rel: string, e: { name: string; isDirectory(): boolean }) => {
    const rule = rules.find((x) => x.test(rel));
    if (rule) drops.push({ full: path.join(stdlib, rel), dir: e.isDirectory(), group: rule.group });
    return rule !== undefined;
  };
  for await (const _ of walkTree(stdlib, { skip })) void _;
  for (const d of drops) {
    const bytes = d.dir ? await treeSize(d.full) : (await fsp.lstat(d.full)).size;
    report.dropped[d.group] = (report.dropped[d.group] ?? 0) + bytes;
    await fsp.rm(d.full, { recursive: true, force: true });
  }
  const gpl = await dropGnuReadline(stdlib);
  if (gpl) report.dropped[GNU_READLINE] = gpl;
  if (profile === "minimal") {
    const bytes = await dropBuildSupport(root);
    if (bytes) report.dropped["headers and man pages"] = bytes;
  }
  return report;
}

/** The size-report group of the readline module dropped for its licence. */
export const GNU_READLINE = "readline module (links GNU readline, GPL-3.0-or-later)";

/** Removes `lib-dynload/readline*.so` when it needs libreadline; returns the bytes removed. */
async function dropGnuReadline(stdlib: string): Promise<number> {
  const dynload = path.join(stdlib, "lib-dynload");
  let bytes = 0;
  for (const name of await ifExists(fsp.readdir(dynload), [] as string[])) {
    if (!/^readline\..*so$/.test(name)) continue;
    const file = path.join(dynload, name);
    const { elf } = await readElfFile(file);
    if (!elf.needed.some((n) => n.startsWith("libreadline"))) continue;
    bytes += (await fsp.stat(file)).size;
    await fsp.rm(file);
  }
  return bytes;
}

/**
 * Removes C headers, pkg-config files and man pages — needed only to build extension modules
 * (or to read man pages) — from a runtime or bundle. Returns the bytes removed.
 */
export async function dropBuildSupport(root: string): Promise<number> {
  let bytes = 0;
  for (const sub of ["include", "share/man", "lib/pkgconfig"]) {
    const p = path.join(root, sub);
    bytes += await ifExists(treeSize(p), 0);
    await fsp.rm(p, { recursive: true, force: true });
  }
  return bytes;
}

/**
 * Strips debug information and the static symbol table (`strip --strip-unneeded`: dynamic
 * symbols, and symbols relocations need, stay) from ELF files that carry `.debug_*` or
 * `.symtab` sections. Runs before pyport edits dynamic sections. Returns bytes saved. Needs
 * binutils' strip on the build machine.
 */
export async function stripDebugInfo(root: string, elfRels: readonly string[]): Promise<number> {
  let saved = 0;
  for (const rel of elfRels) {
    const file = path.join(root, rel);
    const { elf } = await readElfFile(file);
    if (!elf.sections.some((s) => s.name.startsWith(".debug_") || s.name === ".symtab")) continue;
    const before = (await fsp.stat(file)).size;
    let r;
    try {
      r = await execFile("strip", ["--strip-unneeded", "--preserve-dates", file]);
    } catch (err) {
      throw new PyportError(
        "E_RELOCATE",
        `cannot run strip for ${rel}: ${(err as Error).message}`,
        {
          hint: "Install binutils (apt-get install binutils), or pass --no-strip.",
        },
      );
    }
    if (r.code !== 0)
      throw new PyportError("E_RELOCATE", `strip failed on ${rel}: ${r.stderr.trim()}`);
    saved += before - (await fsp.stat(file)).size;
  }
  return saved;
}
