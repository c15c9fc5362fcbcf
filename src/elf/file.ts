import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as C from "./constants.js";
import { editDynamic, type DynamicEdit } from "./edit.js";
import { isElf, readElf, readSegment, viewOf, type ElfFile } from "./read.js";
import { writeFileAtomic } from "../util/fs.js";
import { PyportError } from "../errors.js";

/** Reads and parses an ELF file; errors name the file. */
export async function readElfFile(file: string): Promise<{ elf: ElfFile; buf: Buffer }> {
  const buf = await fsp.readFile(file);
  try {
    return { elf: readElf(buf), buf };
  } catch (err) {
    if (err instanceof PyportError)
      throw new PyportError("E_ELF", `${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** True when the file starts with the ELF magic (reads 4 bytes). */
export async function isElfFile(file: string): Promise<boolean> {
  const handle = await fsp.open(file, "r");
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && isElf(head);
  } finally {
    await handle.close();
  }
}

/** Applies a dynamic-section edit to a file atomically, keeping its mode. Returns true if changed. */
export async function editElfFile(file: string, edit: DynamicEdit): Promise<boolean> {
  const buf = await fsp.readFile(file);
  let out: Buffer;
  try {
    out = editDynamic(buf, edit);
  } catch (err) {
    if (err instanceof PyportError)
      throw new PyportError("E_ELF", `${file}: ${err.message}`, { cause: err });
    throw err;
  }
  if (out.equals(buf)) return false;
  const { mode } = await fsp.stat(file);
  await writeFileAtomic(file, out, mode & 0o7777);
  await fsp.chmod(file, mode & 0o7777);
  return true;
}

const SHT_STRTAB = 3;
const SHT_DYNAMIC = 6;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const SHF_ALLOC = 2;
const VERSION_SECTIONS = new Set([0x6ffffffd, 0x6ffffffe, 0x6fffffff]); // verdef, verneed, versym
const SPARSE_ABOVE = 1 << 20;

/**
 * Loads what `readElf` and `readDynamicSymbols` look at — headers, section table, section
 * names, dynamic symbols and strings, version records, PT_DYNAMIC/PT_INTERP/PT_NOTE — without
 * reading code and data. Files up to 1 MiB, and files without section headers, are read whole.
 * The returned buffer has the file's size; bytes outside those regions are unspecified, so it is
 * for reading only (never pass it to the editor). With `scratch`, the result may be a view of it:
 * parse it before the next call.
 */
export function readElfRegionsSync(fd: number, size: number, scratch?: Buffer): Buffer {
  // Reusing one scratch buffer across files spares allocating (and collecting) tens of MiB per library.
  const buf =
    scratch && scratch.length >= size ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
  const fill = (off: number, len: number) => {
    const end = Math.min(size, off + len);
    for (let at = Math.max(0, off); at < end;) {
      const n = fs.readSync(fd, buf, at, end - at, at);
      if (n <= 0) break;
      at += n;
    }
  };
  if (size <= SPARSE_ABOVE) {
    fill(0, size);
    return buf;
  }
  fill(0, 65536);
  const v = viewOf(buf);
  const is64 = v.bits === 64;
  const base = is64 ? 52 : 40;
  const phoff = is64 ? v.u64(32) : v.u32(28);
  const shoff = is64 ? v.u64(40) : v.u32(32);
  const [phentsize, phnum, shentsize, shnum, shstrndx] = [2, 4, 6, 8, 10].map((o) =>
    v.u16(base + o),
  );
  if (shnum === 0 || shoff + shnum * shentsize > size) {
    fill(0, size);
    return buf;
  }
  fill(phoff, phnum * phentsize);
  fill(shoff, shnum * shentsize);
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    const type = v.u32(o + 4);
    const flags = is64 ? v.u64(o + 8) : v.u32(o + 8);
    const off = is64 ? v.u64(o + 24) : v.u32(o + 16);
    const sz = is64 ? v.u64(o + 32) : v.u32(o + 20);
    const wanted =
      i === shstrndx ||
      type === SHT_DYNSYM ||
      type === SHT_DYNAMIC ||
      type === SHT_NOTE ||
      VERSION_SECTIONS.has(type) ||
      (type === SHT_STRTAB && (flags & SHF_ALLOC) !== 0);
    if (wanted) fill(off, sz);
  }
  for (let i = 0; i < phnum; i++) {
    const s = readSegment(v, phoff, phentsize, i);
    if (s.type === C.PT_DYNAMIC || s.type === C.PT_INTERP || s.type === C.PT_NOTE)
      fill(s.offset, s.filesz);
  }
  return buf;
}
