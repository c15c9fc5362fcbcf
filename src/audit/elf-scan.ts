/**
 * What the audit needs from one ELF file: its dynamic entries, the version nodes it needs from
 * each library together with the symbols bound to each node, and hardening properties
 * (executable stack, text relocations, RELRO).
 */
import * as C from "../elf/constants.js";
import { readAbiTag, readElf, type ElfFile } from "../elf/read.js";
import { readDynamicSymbols } from "../elf/symbols.js";

const DF_TEXTREL = 0x4;

export interface VersionUse {
  /** The library the node is needed from (verneed file), e.g. `libc.so.6`. */
  soname: string;
  /** The node, e.g. `GLIBC_2.27`. */
  node: string;
  /** Undefined symbols bound to the node (empty when the file has no section headers). */
  symbols: string[];
}

export interface ElfScan {
  rel: string;
  elf: ElfFile;
  uses: VersionUse[];
  /** True: PT_GNU_STACK is executable; "missing": no PT_GNU_STACK (the kernel may default to executable). */
  execStack: boolean | "missing";
  textrel: boolean;
  relro: boolean;
  /** NT_GNU_ABI_TAG kernel version (set on libc.so.6). */
  abiTag?: string;
}

export function scanElf(rel: string, buf: Uint8Array): ElfScan {
  const elf = readElf(buf);
  const nodeFile = new Map<string, string>();
  for (const need of elf.versionNeeds) for (const v of need.versions) nodeFile.set(v, need.file);
  const bySymbol = new Map<string, string[]>();
  if (elf.versionNeeds.length > 0) {
    for (const sym of readDynamicSymbols(buf, elf, { versionedImportsOnly: true })) {
      if (!sym.undefined || !sym.version || !nodeFile.has(sym.version)) continue;
      const list = bySymbol.get(sym.version) ?? [];
      list.push(sym.name);
      bySymbol.set(sym.version, list);
    }
  }
  const uses: VersionUse[] = [];
  for (const need of elf.versionNeeds) {
    for (const node of need.versions)
      uses.push({ soname: need.file, node, symbols: (bySymbol.get(node) ?? []).sort() });
  }
  const stack = elf.segments.find((s) => s.type === C.PT_GNU_STACK);
  const flags = elf.dynamic.find((e) => e.tag === C.DT_FLAGS)?.value ?? 0;
  const dynamic = elf.dynamicOffset !== undefined;
  return {
    rel,
    elf,
    uses,
    execStack: stack ? (stack.flags & C.PF_X) !== 0 : dynamic ? "missing" : false,
    textrel: elf.dynamic.some((e) => e.tag === C.DT_TEXTREL) || (flags & DF_TEXTREL) !== 0,
    relro: elf.segments.some((s) => s.type === C.PT_GNU_RELRO),
    abiTag: elf.soname?.startsWith("libc.so") ? readAbiTag(buf, elf) : undefined,
  };
}
