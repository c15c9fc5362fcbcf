/**
 * Edits the dynamic section of an ELF file: RPATH/RUNPATH, SONAME and NEEDED entries.
 *
 * Strategy, cheapest first:
 *  1. overwrite a string in place when the new one fits in the old one's bytes and no other
 *     reference shares its tail (dynamic string tables are suffix-merged by linkers);
 *  2. point at an identical string already in the table;
 *  3. otherwise append a new PT_LOAD segment at the end of the file holding a copy of the
 *     program header table (one entry longer, for the new segment itself), the grown string
 *     table and, if the dynamic section has no spare DT_NULL slot, the grown dynamic section.
 *     The new segment keeps the same vaddr-offset distance as the first PT_LOAD so that kernels
 *     computing AT_PHDR as `load_addr + e_phoff` still find the table; PT_PHDR, PT_DYNAMIC,
 *     DT_STRTAB/DT_STRSZ and the .dynstr/.dynamic section headers are updated to match.
 * The input buffer is never modified; a new Buffer is returned.
 */
import * as C from "./constants.js";
import { dynstrReferences } from "./symbols.js";
import { PyportError } from "../errors.js";
import {
  readElf,
  viewOf,
  writeSegment,
  type DynamicEntry,
  type ElfFile,
  type Segment,
} from "./read.js";

export interface DynamicEdit {
  /** Set DT_RUNPATH (an existing DT_RPATH entry is converted); null removes RPATH and RUNPATH. */
  runpath?: string | null;
  /** Set DT_RPATH (an existing DT_RUNPATH entry is converted); null removes RPATH and RUNPATH. */
  rpath?: string | null;
  soname?: string;
  /** Old soname → new soname for DT_NEEDED entries. */
  replaceNeeded?: Readonly<Record<string, string>>;
}

interface StringChange {
  entry: DynamicEntry;
  text: string;
}

const SHT_DYNAMIC = 6;

function fail(message: string): never {
  throw new PyportError("E_ELF", message);
}

function alignUp(n: number, a: number): number {
  return a <= 1 ? n : Math.ceil(n / a) * a;
}

/** Applies `edit` and returns the new file contents (the same bytes if nothing changes). */
export function editDynamic(input: Uint8Array, edit: DynamicEdit): Buffer {
  if (edit.runpath !== undefined && edit.rpath !== undefined)
    fail("set either runpath or rpath, not both");
  const buf = Buffer.from(input); // private copy
  const elf = readElf(buf);
  if (
    elf.dynamicOffset === undefined ||
    elf.dynstrOffset === undefined ||
    elf.dynstrSize === undefined
  ) {
    fail("the file has no dynamic section (a static executable cannot be given an RPATH)");
  }
  const entries: DynamicEntry[] = elf.dynamic.map((e) => ({ ...e }));
  const changes: StringChange[] = [];
  const strOf = (e: DynamicEntry) => cstringAt(buf, elf.dynstrOffset! + e.value);

  const searchPath =
    edit.runpath !== undefined
      ? { tag: C.DT_RUNPATH, value: edit.runpath }
      : edit.rpath !== undefined
        ? { tag: C.DT_RPATH, value: edit.rpath }
        : undefined;
  if (searchPath) {
    const existing = entries.filter((e) => e.tag === C.DT_RPATH || e.tag === C.DT_RUNPATH);
    for (const e of existing.slice(searchPath.value === null ? 0 : 1))
      entries.splice(entries.indexOf(e), 1);
    if (searchPath.value !== null) {
      const kept = existing[0] ?? pushEntry(entries, searchPath.tag);
      kept.tag = searchPath.tag;
      if (kept.value === -1 || strOf(kept) !== searchPath.value)
        changes.push({ entry: kept, text: searchPath.value });
    }
  }
  if (edit.soname !== undefined) {
    const e = entries.find((x) => x.tag === C.DT_SONAME) ?? pushEntry(entries, C.DT_SONAME);
    if (e.value === -1 || strOf(e) !== edit.soname) changes.push({ entry: e, text: edit.soname });
  }
  for (const [from, to] of Object.entries(edit.replaceNeeded ?? {})) {
    for (const e of entries)
      if (e.tag === C.DT_NEEDED && strOf(e) === from && from !== to)
        changes.push({ entry: e, text: to });
  }
  const entriesChanged =
    entries.length !== elf.dynamic.length || entries.some((e, i) => e.tag !== elf.dynamic[i].tag);
  if (changes.length === 0 && !entriesChanged) return buf;

  const appended = placeStrings(buf, elf, changes);
  return writeResult(buf, elf, entries, appended);
}

function pushEntry(entries: DynamicEntry[], tag: number): DynamicEntry {
  // New string entries go before the first non-NEEDED entry's end; order does not matter to ld.so.
  const e = { tag, value: -1 };
  entries.push(e);
  return e;
}

function cstringAt(buf: Buffer, off: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString("latin1", off, end < 0 ? buf.length : end);
}

/**
 * Resolves each change to a string offset: in place, reused, or appended. Returns the bytes to
 * append to the string table (empty when nothing must grow).
 */
function placeStrings(buf: Buffer, elf: ElfFile, changes: StringChange[]): Buffer {
  const base = elf.dynstrOffset!;
  const size = elf.dynstrSize!;
  const table = buf.subarray(base, base + size);
  const refs = dynstrReferences(buf, elf);
  const endOf = (off: number) => {
    const nul = table.indexOf(0, off);
    return nul < 0 ? size : nul;
  };
  const refEnds = new Map<number, number>(); // NUL position → number of references ending there
  for (const r of refs)
    if (r >= 0 && r < size) refEnds.set(endOf(r), (refEnds.get(endOf(r)) ?? 0) + 1);
  const everythingShared = refs.includes(-1);

  const extra: Buffer[] = [];
  let extraSize = 0;
  for (const c of changes) {
    const bytes = Buffer.from(c.text, "latin1");
    if (bytes.includes(0)) fail(`string contains a NUL byte: ${JSON.stringify(c.text)}`);
    const old = c.entry.value;
    if (!everythingShared && old >= 0 && old < size) {
      const end = endOf(old);
      if (end - old >= bytes.length && refEnds.get(end) === 1) {
        table.fill(0, old, end);
        bytes.copy(table, old);
        refEnds.delete(end);
        refEnds.set(old + bytes.length, 1);
        continue;
      }
    }
    const needle = Buffer.concat([bytes, Buffer.from([0])]);
    const found = table.indexOf(needle);
    if (found >= 0) {
      c.entry.value = found;
      continue;
    }
    c.entry.value = size + extraSize;
    extra.push(needle);
    extraSize += needle.length;
  }
  return Buffer.concat(extra);
}

function writeResult(
  buf: Buffer,
  elf: ElfFile,
  entries: DynamicEntry[],
  appendedStrings: Buffer,
): Buffer {
  const v = viewOf(buf);
  const ent = v.dynEntSize;
  const capacity = Math.floor(elf.dynamicSize! / ent);
  const moveStrings = appendedStrings.length > 0;
  const moveDynamic = entries.length + 1 > capacity;

  if (!moveStrings && !moveDynamic) {
    writeDynamic(v, elf.dynamicOffset!, entries, capacity);
    return buf;
  }

  const loads = elf.segments.filter((s) => s.type === C.PT_LOAD);
  if (loads.length === 0) fail("no PT_LOAD segment");
  const pageAlign = Math.max(...loads.map((s) => s.align), 0x1000);
  const delta = loads[0].vaddr - loads[0].offset;
  const vaddrEnd = Math.max(...loads.map((s) => s.vaddr + s.memsz));
  const offset = alignUp(Math.max(buf.length, vaddrEnd - delta), pageAlign);
  const vaddr = offset + delta;

  const phnum = elf.phnum + 1;
  const phSize = phnum * elf.phentsize;
  const strOff = phSize;
  const newStrSize = elf.dynstrSize! + appendedStrings.length;
  const dynOff = alignUp(strOff + (moveStrings ? newStrSize : 0), v.bits === 64 ? 8 : 4);
  const dynBytes = (entries.length + 1) * ent;
  const segSize = moveDynamic ? dynOff + dynBytes : strOff + (moveStrings ? newStrSize : 0);

  const out = Buffer.alloc(offset + segSize);
  buf.copy(out, 0);
  const ov = viewOf(out);

  if (moveStrings) {
    buf.copy(out, offset + strOff, elf.dynstrOffset!, elf.dynstrOffset! + elf.dynstrSize!);
    appendedStrings.copy(out, offset + strOff + elf.dynstrSize!);
    setEntry(entries, C.DT_STRTAB, vaddr + strOff);
    setEntry(entries, C.DT_STRSZ, newStrSize);
  }
  if (moveDynamic) writeDynamic(ov, offset + dynOff, entries, entries.length + 1);
  else writeDynamic(ov, elf.dynamicOffset!, entries, capacity);

  // New program header table: the old entries, PT_PHDR/PT_DYNAMIC updated, and the new PT_LOAD
  // inserted after the last PT_LOAD (the gABI wants PT_LOAD entries sorted by vaddr).
  const segs: Segment[] = elf.segments.map((s) => ({ ...s }));
  for (const s of segs) {
    if (s.type === C.PT_PHDR) Object.assign(s, { offset, vaddr, filesz: phSize, memsz: phSize });
    if (s.type === C.PT_DYNAMIC && moveDynamic)
      Object.assign(s, {
        offset: offset + dynOff,
        vaddr: vaddr + dynOff,
        filesz: dynBytes,
        memsz: dynBytes,
      });
  }
  const newLoad: Segment = {
    index: -1,
    type: C.PT_LOAD,
    flags: C.PF_R | C.PF_W,
    offset,
    vaddr,
    filesz: segSize,
    memsz: segSize,
    align: pageAlign,
  };
  const lastLoad = segs.map((s) => s.type).lastIndexOf(C.PT_LOAD);
  segs.splice(lastLoad + 1, 0, newLoad);
  segs.forEach((s, i) => writeSegment(ov, offset, elf.phentsize, s, i));
  if (ov.bits === 64) ov.setWord(32, offset);
  else ov.setWord(28, offset);
  ov.setU16(ov.bits === 64 ? 56 : 44, phnum);

  updateSectionHeaders(ov, elf, {
    dynstr: moveStrings
      ? { offset: offset + strOff, addr: vaddr + strOff, size: newStrSize }
      : undefined,
    dynamic: moveDynamic
      ? { offset: offset + dynOff, addr: vaddr + dynOff, size: dynBytes }
      : undefined,
  });
  return out;
}

function setEntry(entries: DynamicEntry[], tag: number, value: number): void {
  const e = entries.find((x) => x.tag === tag);
  if (!e) fail(`dynamic section lacks tag ${tag}`);
  e.value = value;
}

/** Writes entries then DT_NULL up to `slots` entries. */
function writeDynamic(
  v: ReturnType<typeof viewOf>,
  at: number,
  entries: DynamicEntry[],
  slots: number,
): void {
  const ent = v.dynEntSize;
  for (let i = 0; i < slots; i++) {
    const e = entries[i] ?? { tag: C.DT_NULL, value: 0 };
    v.setTag(at + i * ent, e.tag);
    v.setWord(at + i * ent + ent / 2, e.value);
  }
}

interface Placement {
  offset: number;
  addr: number;
  size: number;
}

function updateSectionHeaders(
  v: ReturnType<typeof viewOf>,
  elf: ElfFile,
  moved: { dynstr?: Placement; dynamic?: Placement },
): void {
  const dynamicSec = elf.sections.find((s) => s.type === SHT_DYNAMIC);
  const dynstrSec = dynamicSec
    ? elf.sections[dynamicSec.link]
    : elf.sections.find((s) => s.name === ".dynstr");
  const write = (index: number, p: Placement) => {
    const o = elf.shoff + index * elf.shentsize;
    if (v.bits === 64) {
      v.setWord(o + 16, p.addr);
      v.setWord(o + 24, p.offset);
      v.setWord(o + 32, p.size);
    } else {
      v.setWord(o + 12, p.addr);
      v.setWord(o + 16, p.offset);
      v.setWord(o + 20, p.size);
    }
  };
  if (moved.dynstr && dynstrSec) write(dynstrSec.index, moved.dynstr);
  if (moved.dynamic && dynamicSec) write(dynamicSec.index, moved.dynamic);
}
