import * as fsp from "node:fs/promises";
import { editDynamic, type DynamicEdit } from "./edit.js";
import { isElf, readElf, type ElfFile } from "./read.js";
import { writeFileAtomic } from "../util/fs.js";
import { PyportError } from "../errors.js";

/** Reads and parses an ELF file; errors name the file. */
export async function readElfFile(file: string): Promise<{ elf: ElfFile; buf: Buffer }> {
  const buf = await fsp.readFile(file);
  try {
    return { elf: readElf(buf), buf };
  } catch (err) {
    if (err instanceof PyportError) throw new PyportError("E_ELF", `${file}: ${err.message}`, { cause: err });
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
    if (err instanceof PyportError) throw new PyportError("E_ELF", `${file}: ${err.message}`, { cause: err });
    throw err;
  }
  if (out.equals(buf)) return false;
  const { mode } = await fsp.stat(file);
  await writeFileAtomic(file, out, mode & 0o7777);
  await fsp.chmod(file, mode & 0o7777);
  return true;
}
