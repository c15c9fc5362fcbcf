/** Dynamic symbols of an ELF file and the string-table references of its dynamic section. */
import * as C from "./constants.js";
import { vaddrToOffset, viewOf, type DynamicSymbol, type ElfFile } from "./read.js";

/**
 * Every string reference into the dynamic string table, as offsets: dynamic entries, dynamic
 * symbols and version records. The editor uses it to know whether a string may be overwritten
 * in place (strings that share a tail, i.e. end at the same NUL, must not be).
 */
export function dynstrReferences(buf: Uint8Array, elf: ElfFile): number[] {
  const v = viewOf(buf);
  const refs: number[] = [];
  for (const e of elf.dynamic) if (C.STRING_TAGS.has(e.tag)) refs.push(e.value);
  const dynsym = elf.sections.find((s) => s.type === 11 /* SHT_DYNSYM */);
  const symAddr = elf.dynamic.find((e) => e.tag === C.DT_SYMTAB)?.value;
  if (dynsym && dynsym.entsize > 0) {
    for (
      let o = dynsym.offset;
      o + dynsym.entsize <= dynsym.offset + dynsym.size;
      o += dynsym.entsize
    )
      refs.push(v.u32(o));
  } else if (symAddr !== undefined) {
    // No section headers: conservatively treat the whole string table as referenced.
    return [-1];
  }
  const walk = (tag: number, countTag: number, isNeed: boolean) => {
    const addr = elf.dynamic.find((e) => e.tag === tag)?.value;
    const count = elf.dynamic.find((e) => e.tag === countTag)?.value ?? 0;
    let o = addr === undefined ? undefined : vaddrToOffset(elf.segments, addr);
    for (let i = 0; i < count && o !== undefined; i++) {
      if (isNeed) {
        refs.push(v.u32(o + 4));
        let a = o + v.u32(o + 8);
        for (let j = 0; j < v.u16(o + 2); j++) {
          refs.push(v.u32(a + 8));
          if (v.u32(a + 12) === 0) break;
          a += v.u32(a + 12);
        }
        if (v.u32(o + 12) === 0) break;
        o += v.u32(o + 12);
      } else {
        let a = o + v.u32(o + 12);
        for (let j = 0; j < v.u16(o + 6); j++) {
          refs.push(v.u32(a));
          if (v.u32(a + 4) === 0) break;
          a += v.u32(a + 4);
        }
        if (v.u32(o + 16) === 0) break;
        o += v.u32(o + 16);
      }
    }
  };
  walk(C.DT_VERNEED, C.DT_VERNEEDNUM, true);
  walk(C.DT_VERDEF, C.DT_VERDEFNUM, false);
  return refs;
}

/**
 * Dynamic symbols with their bound versions (DT_VERSYM indexes into verneed/verdef records).
 * Needs section headers for the symbol count; returns [] for stripped-of-sections files.
 */
export function readDynamicSymbols(
  buf: Uint8Array,
  elf: ElfFile,
  opts: { versionedImportsOnly?: boolean } = {},
): DynamicSymbol[] {
  const v = viewOf(buf);
  const dynsym = elf.sections.find((s) => s.type === 11);
  if (!dynsym || dynsym.entsize === 0 || elf.dynstrOffset === undefined) return [];
  const versionNames = new Map<number, string>();
  const collect = (tag: number, countTag: number, isNeed: boolean) => {
    const addr = elf.dynamic.find((e) => e.tag === tag)?.value;
    const count = elf.dynamic.find((e) => e.tag === countTag)?.value ?? 0;
    let o = addr === undefined ? undefined : vaddrToOffset(elf.segments, addr);
    for (let i = 0; i < count && o !== undefined; i++) {
      if (isNeed) {
        let a = o + v.u32(o + 8);
        for (let j = 0; j < v.u16(o + 2); j++) {
          versionNames.set(v.u16(a + 6), v.cstring(elf.dynstrOffset! + v.u32(a + 8)));
          if (v.u32(a + 12) === 0) break;
          a += v.u32(a + 12);
        }
        if (v.u32(o + 12) === 0) break;
        o += v.u32(o + 12);
      } else {
        versionNames.set(v.u16(o + 4), v.cstring(elf.dynstrOffset! + v.u32(o + v.u32(o + 12))));
        if (v.u32(o + 16) === 0) break;
        o += v.u32(o + 16);
      }
    }
  };
  collect(C.DT_VERNEED, C.DT_VERNEEDNUM, true);
  collect(C.DT_VERDEF, C.DT_VERDEFNUM, false);
  const versymAddr = elf.dynamic.find((e) => e.tag === C.DT_VERSYM)?.value;
  const versymOff = versymAddr === undefined ? undefined : vaddrToOffset(elf.segments, versymAddr);
  const out: DynamicSymbol[] = [];
  const n = Math.floor(dynsym.size / dynsym.entsize);
  for (let i = 1; i < n; i++) {
    const o = dynsym.offset + i * dynsym.entsize;
    const shndx = v.bits === 64 ? v.u16(o + 6) : v.u16(o + 14);
    const verIndex = versymOff === undefined ? 0 : v.u16(versymOff + i * 2) & 0x7fff;
    if (opts.versionedImportsOnly && (shndx !== 0 || verIndex <= 1)) continue;
    const name = v.cstring(elf.dynstrOffset + v.u32(o));
    out.push({
      name,
      undefined: shndx === 0,
      version: verIndex > 1 ? versionNames.get(verIndex) : undefined,
    });
  }
  return out;
}
