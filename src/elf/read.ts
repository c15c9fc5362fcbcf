/**
 * A read-only view of an ELF file (ELF32/ELF64, little/big endian), following the System V gABI
 * and the GNU symbol-versioning extension (https://refspecs.linuxfoundation.org/LSB_5.0.0/).
 * Works on a Buffer; never executes or maps anything.
 */
import * as C from "./constants.js";
import { PyportError } from "../errors.js";

export interface Segment {
  index: number;
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface Section {
  index: number;
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface DynamicEntry {
  tag: number;
  value: number;
}

export interface VersionNeed {
  /** The soname the versions are needed from, e.g. `libc.so.6`. */
  file: string;
  versions: string[];
}

export interface DynamicSymbol {
  name: string;
  /** Version name bound to the symbol (e.g. `GLIBC_2.27`), if any. */
  version?: string;
  /** True for an undefined symbol (one this object imports). */
  undefined: boolean;
}

export interface ElfFile {
  bits: 32 | 64;
  littleEndian: boolean;
  type: number;
  machine: string;
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  segments: Segment[];
  sections: Section[];
  interpreter?: string;
  /** File offset and size of the dynamic section as located by PT_DYNAMIC. */
  dynamicOffset?: number;
  dynamicSize?: number;
  dynamic: DynamicEntry[];
  /** File offset of the dynamic string table. */
  dynstrOffset?: number;
  dynstrSize?: number;
  needed: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  versionNeeds: VersionNeed[];
  versionDefs: string[];
}

/** True when the buffer starts with the ELF magic. */
export function isElf(buf: Uint8Array): boolean {
  return (
    buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46
  );
}

/** A small cursor over the file honouring its class and byte order. */
class ElfView {
  readonly dv: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly bits: 32 | 64,
    readonly le: boolean,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(o: number): number {
    return this.dv.getUint8(o);
  }
  u16(o: number): number {
    return this.dv.getUint16(o, this.le);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, this.le);
  }
  u64(o: number): number {
    return Number(this.dv.getBigUint64(o, this.le));
  }
  /** An address/offset-sized word (Elf32_Addr or Elf64_Addr). */
  word(o: number): number {
    return this.bits === 64 ? this.u64(o) : this.u32(o);
  }
  setU16(o: number, v: number): void {
    this.dv.setUint16(o, v, this.le);
  }
  setU32(o: number, v: number): void {
    this.dv.setUint32(o, v, this.le);
  }
  setWord(o: number, v: number): void {
    if (this.bits === 64) this.dv.setBigUint64(o, BigInt(v), this.le);
    else this.dv.setUint32(o, v, this.le);
  }
  /** Signed dynamic tag (d_tag is Elf64_Sxword / Elf32_Sword). */
  tag(o: number): number {
    return this.bits === 64
      ? Number(this.dv.getBigInt64(o, this.le))
      : this.dv.getInt32(o, this.le);
  }
  setTag(o: number, v: number): void {
    if (this.bits === 64) this.dv.setBigInt64(o, BigInt(v), this.le);
    else this.dv.setInt32(o, v, this.le);
  }
  cstring(o: number, limit = this.buf.length): string {
    let end = o;
    while (end < limit && this.buf[end] !== 0) end++;
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + o, end - o).toString("latin1");
  }
  get dynEntSize(): number {
    return this.bits === 64 ? 16 : 8;
  }
}

function fail(message: string): never {
  throw new PyportError("E_ELF", message);
}

export function viewOf(buf: Uint8Array): ElfView {
  if (!isElf(buf)) fail("not an ELF file (bad magic)");
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) fail(`unknown ELF class ${cls}`);
  if (data !== 1 && data !== 2) fail(`unknown ELF data encoding ${data}`);
  return new ElfView(buf, cls === 2 ? 64 : 32, data === 1);
}

/** Segment (program header) at index i. Layout differs between ELF32 and ELF64. */
export function readSegment(v: ElfView, phoff: number, phentsize: number, i: number): Segment {
  const o = phoff + i * phentsize;
  if (v.bits === 64) {
    return {
      index: i,
      type: v.u32(o),
      flags: v.u32(o + 4),
      offset: v.u64(o + 8),
      vaddr: v.u64(o + 16),
      filesz: v.u64(o + 32),
      memsz: v.u64(o + 40),
      align: v.u64(o + 48),
    };
  }
  return {
    index: i,
    type: v.u32(o),
    offset: v.u32(o + 4),
    vaddr: v.u32(o + 8),
    filesz: v.u32(o + 16),
    memsz: v.u32(o + 20),
    flags: v.u32(o + 24),
    align: v.u32(o + 28),
  };
}

/** Serialises a segment into program header slot i. */
export function writeSegment(
  v: ElfView,
  phoff: number,
  phentsize: number,
  s: Segment,
  i: number,
): void {
  const o = phoff + i * phentsize;
  v.setU32(o, s.type);
  if (v.bits === 64) {
    v.setU32(o + 4, s.flags);
    v.setWord(o + 8, s.offset);
    v.setWord(o + 16, s.vaddr);
    v.setWord(o + 24, s.vaddr); // p_paddr mirrors p_vaddr on Linux
    v.setWord(o + 32, s.filesz);
    v.setWord(o + 40, s.memsz);
    v.setWord(o + 48, s.align);
  } else {
    v.setWord(o + 4, s.offset);
    v.setWord(o + 8, s.vaddr);
    v.setWord(o + 12, s.vaddr);
    v.setWord(o + 16, s.filesz);
    v.setWord(o + 20, s.memsz);
    v.setU32(o + 24, s.flags);
    v.setWord(o + 28, s.align);
  }
}

/** File offset of a virtual address, through the PT_LOAD segments; undefined if unmapped. */
export function vaddrToOffset(segments: readonly Segment[], addr: number): number | undefined {
  for (const s of segments) {
    if (s.type === C.PT_LOAD && addr >= s.vaddr && addr < s.vaddr + s.filesz)
      return s.offset + (addr - s.vaddr);
  }
  return undefined;
}

function readSections(
  v: ElfView,
  shoff: number,
  shentsize: number,
  shnum: number,
  shstrndx: number,
): Section[] {
  if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > v.buf.length) return [];
  const is64 = v.bits === 64;
  const at = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      nameOff: v.u32(o),
      type: v.u32(o + 4),
      addr: is64 ? v.u64(o + 16) : v.u32(o + 12),
      offset: is64 ? v.u64(o + 24) : v.u32(o + 16),
      size: is64 ? v.u64(o + 32) : v.u32(o + 20),
      link: is64 ? v.u32(o + 40) : v.u32(o + 24),
      entsize: is64 ? v.u64(o + 56) : v.u32(o + 36),
    };
  };
  const names = shstrndx < shnum ? at(shstrndx) : undefined;
  const out: Section[] = [];
  for (let index = 0; index < shnum; index++) {
    const { nameOff, ...rest } = at(index);
    const nameAt = names ? names.offset + nameOff : v.buf.length;
    out.push({ index, name: nameAt < v.buf.length ? v.cstring(nameAt) : "", ...rest });
  }
  return out;
}

/** Parses headers, the dynamic section and symbol-version tables. Throws E_ELF on malformed input. */
export function readElf(buf: Uint8Array): ElfFile {
  const v = viewOf(buf);
  if (buf.length < (v.bits === 64 ? 64 : 52)) fail("truncated ELF header");
  const is64 = v.bits === 64;
  const type = v.u16(16);
  const machineNo = v.u16(18);
  const entry = v.word(24);
  const phoff = is64 ? v.u64(32) : v.u32(28);
  const shoff = is64 ? v.u64(40) : v.u32(32);
  const base = is64 ? 52 : 40;
  const phentsize = v.u16(base + 2);
  const phnum = v.u16(base + 4);
  const shentsize = v.u16(base + 6);
  const shnum = v.u16(base + 8);
  const shstrndx = v.u16(base + 10);
  if (phnum > 0 && phoff + phnum * phentsize > buf.length)
    fail("program header table lies outside the file");

  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) segments.push(readSegment(v, phoff, phentsize, i));
  const sections = readSections(v, shoff, shentsize, shnum, shstrndx);

  const elf: ElfFile = {
    bits: v.bits,
    littleEndian: v.le,
    type,
    machine: C.EM_NAMES[machineNo] ?? `machine-${machineNo}`,
    entry,
    phoff,
    phentsize,
    phnum,
    shoff,
    shentsize,
    shnum,
    segments,
    sections,
    dynamic: [],
    needed: [],
    versionNeeds: [],
    versionDefs: [],
  };

  const interp = segments.find((s) => s.type === C.PT_INTERP);
  if (interp && interp.offset + interp.filesz <= buf.length)
    elf.interpreter = v.cstring(interp.offset, interp.offset + interp.filesz);

  const dyn = segments.find((s) => s.type === C.PT_DYNAMIC);
  if (!dyn) return elf;
  if (dyn.offset + dyn.filesz > buf.length) fail("dynamic segment lies outside the file");
  elf.dynamicOffset = dyn.offset;
  elf.dynamicSize = dyn.filesz;
  for (let o = dyn.offset; o + v.dynEntSize <= dyn.offset + dyn.filesz; o += v.dynEntSize) {
    const tag = v.tag(o);
    if (tag === C.DT_NULL) break;
    elf.dynamic.push({ tag, value: v.word(o + v.dynEntSize / 2) });
  }
  const get = (tag: number) => elf.dynamic.find((e) => e.tag === tag)?.value;
  const strtabAddr = get(C.DT_STRTAB);
  if (strtabAddr === undefined) return elf;
  const strOff = vaddrToOffset(segments, strtabAddr);
  if (strOff === undefined)
    fail(`DT_STRTAB address 0x${strtabAddr.toString(16)} is not in a loaded segment`);
  elf.dynstrOffset = strOff;
  elf.dynstrSize = get(C.DT_STRSZ) ?? 0;
  const str = (off: number) => {
    if (off >= elf.dynstrSize!)
      fail(`dynamic string offset ${off} outside DT_STRSZ ${elf.dynstrSize}`);
    return v.cstring(strOff + off, strOff + elf.dynstrSize!);
  };
  for (const e of elf.dynamic) {
    if (e.tag === C.DT_NEEDED) elf.needed.push(str(e.value));
    else if (e.tag === C.DT_SONAME) elf.soname = str(e.value);
    else if (e.tag === C.DT_RPATH) elf.rpath = str(e.value);
    else if (e.tag === C.DT_RUNPATH) elf.runpath = str(e.value);
  }
  readVersionNeeds(v, elf, str, get(C.DT_VERNEED), get(C.DT_VERNEEDNUM) ?? 0);
  readVersionDefs(v, elf, str, get(C.DT_VERDEF), get(C.DT_VERDEFNUM) ?? 0);
  return elf;
}

/** Elf_Verneed / Elf_Vernaux chains (both 16-byte-field layouts are identical in ELF32/64). */
function readVersionNeeds(
  v: ElfView,
  elf: ElfFile,
  str: (o: number) => string,
  addr: number | undefined,
  count: number,
): void {
  if (addr === undefined) return;
  let o = vaddrToOffset(elf.segments, addr);
  if (o === undefined) fail("DT_VERNEED is not in a loaded segment");
  for (let i = 0; i < count && o !== undefined; i++) {
    const cnt = v.u16(o + 2);
    const file = str(v.u32(o + 4));
    const versions: string[] = [];
    let a = o + v.u32(o + 8);
    for (let j = 0; j < cnt; j++) {
      versions.push(str(v.u32(a + 8)));
      const next = v.u32(a + 12);
      if (next === 0) break;
      a += next;
    }
    elf.versionNeeds.push({ file, versions });
    const next = v.u32(o + 12);
    if (next === 0) break;
    o += next;
  }
}

function readVersionDefs(
  v: ElfView,
  elf: ElfFile,
  str: (o: number) => string,
  addr: number | undefined,
  count: number,
): void {
  if (addr === undefined) return;
  let o = vaddrToOffset(elf.segments, addr);
  if (o === undefined) fail("DT_VERDEF is not in a loaded segment");
  for (let i = 0; i < count && o !== undefined; i++) {
    const aux = o + v.u32(o + 12);
    elf.versionDefs.push(str(v.u32(aux)));
    const next = v.u32(o + 16);
    if (next === 0) break;
    o += next;
  }
}

/**
 * The NT_GNU_ABI_TAG note (`.note.ABI-tag`): the oldest kernel a glibc build supports, e.g.
 * "3.2.0" for libc.so.6. Undefined when the file has no such note or it is not for Linux.
 */
export function readAbiTag(buf: Uint8Array, elf: ElfFile): string | undefined {
  const v = viewOf(buf);
  for (const seg of elf.segments) {
    if (seg.type !== C.PT_NOTE || seg.offset + seg.filesz > buf.length) continue;
    const align = seg.align >= 8 ? 8 : 4;
    const pad = (n: number) => Math.ceil(n / align) * align;
    for (let o = seg.offset; o + 12 <= seg.offset + seg.filesz;) {
      const namesz = v.u32(o);
      const descsz = v.u32(o + 4);
      const type = v.u32(o + 8);
      const name = v.cstring(o + 12, o + 12 + namesz);
      const desc = o + 12 + pad(namesz);
      if (
        name === "GNU" &&
        type === 1 /* NT_GNU_ABI_TAG */ &&
        descsz >= 16 &&
        v.u32(desc) === 0 /* Linux */
      ) {
        return `${v.u32(desc + 4)}.${v.u32(desc + 8)}.${v.u32(desc + 12)}`;
      }
      o = desc + pad(descsz);
    }
  }
  return undefined;
}
