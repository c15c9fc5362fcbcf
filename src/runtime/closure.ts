/**
 * Library closure of a staged runtime: every NEEDED of every ELF file is resolved, first inside
 * the runtime, then on the build host as the loader would; what is missing from the runtime is
 * grafted (copied) into `lib/` — or, for the C library family in bundled-libc mode, into
 * `libexec/` — and each file's RUNPATH is rewritten to `$ORIGIN`-relative directories.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { readElfFile, editElfFile } from "../elf/file.js";
import type { ElfFile } from "../elf/read.js";
import { walkFiles } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";
import { isElfFile } from "../elf/file.js";
import { findHostLibrary, owningPackage } from "./host-libs.js";
import { isLibcFamily } from "./libc.js";

export type LibcMode = "system" | "bundled";

/** The rest of glibc's family that a bundled-libc runtime carries besides what its files need. */
const BUNDLED_LIBC_EXTRAS = [
  "libc.so.6",
  "libm.so.6",
  "libpthread.so.0",
  "libdl.so.2",
  "librt.so.1",
  "libutil.so.1",
  "libresolv.so.2",
  "libanl.so.1",
  "libmvec.so.1",
  "libnss_files.so.2",
  "libnss_dns.so.2",
];

export interface GraftedLibrary {
  soname: string;
  /** Path inside the runtime, relative to its root. */
  file: string;
  /** Real path on the build host it was copied from. */
  source: string;
  package?: string;
  packageVersion?: string;
  /** Licence text copied into the runtime (relative path), when the host has one. */
  license?: string;
}

export interface ElfInRuntime {
  rel: string;
  elf: ElfFile;
}

export interface ClosureResult {
  grafted: GraftedLibrary[];
  unresolved: { file: string; soname: string }[];
  /** Every ELF file of the runtime, grafted ones included. */
  elfRels: string[];
  /** New RUNPATH per file (null: remove RPATH/RUNPATH); files not listed stay as they are. */
  runpaths: Map<string, string | null>;
}

export interface ClosureOptions {
  root: string;
  libc: LibcMode;
  /** Original directory of a staged file (for `$ORIGIN` in its original RPATH/RUNPATH). */
  originDirOf: (rel: string) => string;
  reporter?: Reporter;
}

/** Relative paths of the ELF files below `root`, sorted. */
export async function findElfFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const file of await walkFiles(root)) {
    const st = await fsp.lstat(file);
    if (st.isFile() && st.size > 64 && (await isElfFile(file))) out.push(path.relative(root, file));
  }
  return out;
}

export async function graftLibraries(opts: ClosureOptions): Promise<ClosureResult> {
  const { root } = opts;
  const queue = await findElfFiles(root);
  const provided = new Map<string, string>(); // soname → rel path in runtime
  for (const rel of queue) {
    const dir = path.dirname(rel);
    if (dir === "lib" || dir === "libexec") provided.set(path.basename(rel), rel);
  }
  const parsed = new Map<string, ElfFile>();
  const origin = new Map<string, string>();
  const grafted: GraftedLibrary[] = [];
  const unresolved: { file: string; soname: string }[] = [];
  const searchDirs = new Map<string, Set<string>>();

  // Bundled libc: the whole family ships, not only what the interpreter needs, because
  // manylinux wheels installed later link the pre-2.34 split (libpthread.so.0, libdl.so.2, …) and
  // glibc itself dlopens NSS modules (users, hosts) from the loader's library path.
  const pending = opts.libc === "bundled" ? [...BUNDLED_LIBC_EXTRAS] : [];
  const addExtra = async (soname: string) => {
    const importer = parsed.get(queue[0]);
    if (provided.has(soname) || !importer) return;
    const source = await findHostLibrary(soname, {
      elf: importer,
      originDir: opts.originDirOf(queue[0]),
    });
    if (!source) return; // not part of this glibc build (e.g. libmvec off x86)
    const dest = path.join("libexec", soname);
    await fsp.copyFile(source, path.join(root, dest));
    await fsp.chmod(path.join(root, dest), 0o755);
    provided.set(soname, dest);
    origin.set(dest, path.dirname(source));
    queue.push(dest);
    grafted.push(await describeGraft(root, soname, dest, source));
  };
  for (let i = 0; i < queue.length || pending.length; i++) {
    if (i === queue.length) {
      await addExtra(pending.shift()!);
      i--; // process what was added (if anything) at this index
      continue;
    }
    const rel = queue[i];
    const { elf } = await readElfFile(path.join(root, rel));
    parsed.set(rel, elf);
    for (const need of elf.needed) {
      const libcFamily = isLibcFamily(need);
      if (libcFamily && opts.libc === "system") continue;
      if (!provided.has(need)) {
        const originDir = origin.get(rel) ?? opts.originDirOf(rel);
        const source = await findHostLibrary(need, { elf, originDir });
        if (!source) {
          unresolved.push({ file: rel, soname: need });
          continue;
        }
        const dest = path.join(libcFamily ? "libexec" : "lib", need);
        await fsp.mkdir(path.join(root, path.dirname(dest)), { recursive: true });
        await fsp.copyFile(source, path.join(root, dest));
        await fsp.chmod(path.join(root, dest), 0o755);
        opts.reporter?.note(`grafted ${need} from ${source}`);
        provided.set(need, dest);
        origin.set(dest, path.dirname(source));
        queue.push(dest);
        grafted.push(await describeGraft(root, need, dest, source));
      }
      if (!libcFamily) {
        const set = searchDirs.get(rel) ?? new Set<string>();
        set.add(path.dirname(provided.get(need)!));
        searchDirs.set(rel, set);
      }
    }
  }

  const runpaths = new Map<string, string | null>();
  for (const rel of queue) {
    const dirs = [...(searchDirs.get(rel) ?? [])].sort();
    const elf = parsed.get(rel)!;
    const runpath = dirs.map((d) => originRelative(path.dirname(rel), d)).join(":");
    if (runpath && (elf.runpath !== runpath || elf.rpath)) runpaths.set(rel, runpath);
    else if (!runpath && (elf.runpath || elf.rpath)) runpaths.set(rel, null); // a build path that serves no purpose here
  }
  return { grafted, unresolved, elfRels: queue, runpaths };
}

/**
 * Applies the RUNPATH plan of `graftLibraries` (after any stripping, which rewrites files) and
 * returns every ELF file of the runtime, re-read.
 */
export async function applyRunpaths(root: string, closure: ClosureResult): Promise<ElfInRuntime[]> {
  const out: ElfInRuntime[] = [];
  for (const rel of closure.elfRels) {
    const file = path.join(root, rel);
    if (closure.runpaths.has(rel)) await editElfFile(file, { runpath: closure.runpaths.get(rel)! });
    out.push({ rel, elf: (await readElfFile(file)).elf });
  }
  return out;
}

/** `$ORIGIN`-relative form of directory `to` as seen from directory `from` (both runtime-relative). */
export function originRelative(from: string, to: string): string {
  const r = path.posix.relative(from, to);
  return r === "" ? "$ORIGIN" : `$ORIGIN/${r}`;
}

/** Provenance of a grafted file (owning package and version) and its licence text, copied into `licenses/`. */
export async function describeGraft(
  root: string,
  soname: string,
  file: string,
  source: string,
): Promise<GraftedLibrary> {
  const pkg = await owningPackage(source);
  const g: GraftedLibrary = {
    soname,
    file,
    source,
    package: pkg?.name,
    packageVersion: pkg?.version,
  };
  if (pkg?.copyright) {
    const license = path.join("licenses", `${pkg.name}.copyright`);
    await fsp.mkdir(path.join(root, "licenses"), { recursive: true });
    await fsp.copyFile(pkg.copyright, path.join(root, license));
    g.license = license;
  }
  return g;
}
