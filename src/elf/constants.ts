/** ELF constants used by pyport, from the System V gABI (https://www.sco.com/developers/gabi/). */
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_PHDR = 6;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const ET_EXEC = 2;
export const ET_DYN = 3;

export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_STRTAB = 5;
export const DT_SYMTAB = 6;
export const DT_STRSZ = 10;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_TEXTREL = 22;
export const DT_FLAGS = 30;
export const DT_RUNPATH = 29;
export const DT_GNU_HASH = 0x6ffffef5;
export const DT_HASH = 4;
export const DT_VERSYM = 0x6ffffff0;
export const DT_FLAGS_1 = 0x6ffffffb;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;

/** Dynamic tags whose value is an offset into the dynamic string table. */
export const STRING_TAGS: ReadonlySet<number> = new Set([
  DT_NEEDED,
  DT_SONAME,
  DT_RPATH,
  DT_RUNPATH,
]);

export const EM_NAMES: Readonly<Record<number, string>> = {
  3: "x86",
  8: "mips",
  20: "ppc",
  21: "ppc64",
  22: "s390",
  40: "arm",
  62: "x86_64",
  183: "aarch64",
  243: "riscv",
};
