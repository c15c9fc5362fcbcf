/**
 * The C library family: libraries that belong to glibc and must come from the same glibc build
 * as the loader. In system-libc mode they are never grafted (mixing a bundled libc with the host
 * loader fails); in bundled-libc mode they are all shipped together with the loader.
 */
import type { ElfFile } from "../elf/read.js";

const LIBC_FAMILY_RE =
  /^(?:ld-linux[-\w.]*\.so\.\d+|ld64\.so\.\d+|ld\.so\.\d+|lib(?:c|m|pthread|dl|rt|util|resolv|anl|mvec|BrokenLocale|thread_db|c_malloc_debug|nss_[a-z]+)\.so\.\d+)$/;

export function isLibcFamily(soname: string): boolean {
  return LIBC_FAMILY_RE.test(soname);
}

/** Compares dotted versions numerically: "2.9" < "2.17". */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface GlibcFloor {
  /** Highest GLIBC_x.y needed, e.g. "2.34"; undefined when nothing versioned is needed. */
  version?: string;
  /** Files (relative paths) that need exactly that version. */
  setBy: string[];
}

/** Highest `GLIBC_x.y` needed from the C library family over a set of ELF files. */
export function glibcFloor(files: readonly { rel: string; elf: ElfFile }[]): GlibcFloor {
  let best: string | undefined;
  let setBy: string[] = [];
  for (const { rel, elf } of files) {
    for (const need of elf.versionNeeds) {
      if (!isLibcFamily(need.file)) continue;
      for (const v of need.versions) {
        const m = /^GLIBC_(\d+(?:\.\d+)+)$/.exec(v);
        if (!m) continue;
        const c = best === undefined ? 1 : compareVersions(m[1], best);
        if (c > 0) {
          best = m[1];
          setBy = [rel];
        } else if (c === 0 && !setBy.includes(rel)) setBy.push(rel);
      }
    }
  }
  return { version: best, setBy };
}

/** The glibc version a libc.so.6 provides: its highest GLIBC_x.y version definition. */
export function providedGlibc(libc: ElfFile): string | undefined {
  let best: string | undefined;
  for (const d of libc.versionDefs) {
    const m = /^GLIBC_(\d+(?:\.\d+)+)$/.exec(d);
    if (m && (best === undefined || compareVersions(m[1], best) > 0)) best = m[1];
  }
  return best;
}
