/**
 * A streaming reader for POSIX tar (ustar, pax extended headers, GNU long names), as written by
 * GNU tar, bsdtar and Python's tarfile. Yields one entry at a time; the caller must consume
 * `data` (when present) before asking for the next entry.
 *
 * `strict` reads the one profile pyport writes for onefile payloads, exactly as the onefile
 * stub's reader does (native/onefile.c, "tar extraction"), so `pyport audit` sees the tree the
 * stub would extract — and both refuse whatever they could read differently:
 * - every header is ustar ("ustar\0" "00") with an empty prefix field and a valid checksum;
 *   numeric fields are octal digits, then NULs or spaces only (no base-256, no leading spaces);
 * - types: file ('0' or NUL), directory ('5'), symlink ('2'), and a pax header ('x') whose
 *   records are only `path` and `linkpath`, followed by the entry it describes;
 * - names and link targets are valid UTF-8 without NUL; only files carry data;
 * - the archive ends with a zero block, and only zeros follow it.
 */
import { PyportError } from "../errors.js";

export type EntryKind = "file" | "dir" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  name: string;
  kind: EntryKind;
  /** Raw typeflag, for error messages about unsupported kinds. */
  typeflag: string;
  mode: number;
  mtime: number;
  size: number;
  linkname: string;
  /** File content, in chunks (only for kind "file"). */
  data?: AsyncIterable<Buffer>;
}

class Puller {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.chunks.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        this.length += r.value.length;
      }
    }
  }

  /** Up to n bytes (fewer only at end of stream). */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(out.length);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  /** The next chunk of at most n bytes, without concatenating (for file bodies). */
  async next(n: number): Promise<Buffer> {
    if (this.length === 0) await this.fill(1);
    if (!this.chunks.length) return Buffer.alloc(0);
    const first = this.chunks[0];
    const out = first.subarray(0, Math.min(n, first.length));
    if (out.length === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(out.length);
    this.length -= out.length;
    return out;
  }
}

function corrupt(message: string): never {
  throw new PyportError("E_ARCHIVE", `not a valid tar archive: ${message}`, {
    hint: "The file may be truncated or corrupt; download it again and check its sha256.",
  });
}

function str(block: Buffer, off: number, len: number): string {
  const end = block.indexOf(0, off);
  return block.toString("utf8", off, end < 0 || end > off + len ? off + len : end);
}

function octal(block: Buffer, off: number, len: number): number {
  if (block[off] & 0x80) {
    // GNU base-256 for large values
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + block[i];
    return v;
  }
  const s = str(block, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) corrupt(`bad numeric field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

/** The strict numeric field: octal digits, then only NULs or spaces; an empty field is 0. */
function strictOctal(block: Buffer, off: number, len: number, what: string): number {
  let i = off;
  let v = 0;
  while (i < off + len && block[i] >= 0x30 && block[i] <= 0x37) v = v * 8 + (block[i++] - 0x30);
  for (; i < off + len; i++)
    if (block[i] !== 0 && block[i] !== 0x20) corrupt(`bad ${what} field (pyport's strict profile)`);
  return v;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
function strictText(bytes: Buffer, what: string): string {
  if (bytes.includes(0)) refuse(`${what} contains a NUL byte`);
  try {
    return utf8.decode(bytes);
  } catch {
    return refuse(`${what} is not valid UTF-8`);
  }
}

function refuse(message: string): never {
  throw new PyportError("E_UNSAFE_ARCHIVE", `refused by pyport's strict tar profile: ${message}`, {
    hint: "A onefile payload is written by pyport; this one was made or altered by something else.",
  });
}

function checksumOk(block: Buffer, strict: boolean): boolean {
  const stored = strict ? strictOctal(block, 148, 8, "checksum") : octal(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  return sum === stored;
}

/** pax records, strictly: `<len> <key>=<value>\n` with an exact decimal length. */
function parsePaxStrict(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const digits = sp < 0 ? "" : data.toString("latin1", i, sp);
    if (!/^[1-9][0-9]*$/.test(digits)) refuse("bad pax record length");
    const end = i + Number(digits);
    if (end > data.length || sp + 1 > end - 1 || data[end - 1] !== 0x0a) refuse("bad pax record");
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    const key = eq < 0 ? "" : rec.toString("latin1", 0, eq);
    if (key !== "path" && key !== "linkpath") refuse(`pax record ${JSON.stringify(key)}`);
    if (key in out) refuse(`pax record ${key} given twice`);
    out[key] = strictText(rec.subarray(eq + 1), `pax ${key}`);
    i = end;
  }
  return out;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.toString("utf8", i, sp), 10);
    if (!(len > 0)) corrupt("bad pax record length");
    const rec = data.toString("utf8", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const KINDS: Record<string, EntryKind> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "5": "dir",
  "2": "symlink",
  "1": "hardlink",
};

export interface ReadTarOptions {
  /** pyport's onefile payload profile (see the top of this file). */
  strict?: boolean;
}

export async function* readTar(
  source: AsyncIterable<Uint8Array>,
  opts: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const strict = opts.strict ?? false;
  const p = new Puller(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let paxPending = false;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await p.take(512);
    if (block.length === 0) {
      if (strict) refuse("the archive has no end-of-archive block");
      return; // end of stream without end blocks: accepted, as GNU tar does
    }
    if (block.length < 512) corrupt("truncated header block");
    if (block.every((b) => b === 0)) {
      if (!strict) return;
      if (paxPending) refuse("a pax header is not followed by an entry");
      for (let rest = await p.take(1 << 16); rest.length; rest = await p.take(1 << 16))
        if (rest.some((b) => b !== 0)) refuse("data after the end-of-archive block");
      return;
    }
    if (!checksumOk(block, strict)) corrupt("header checksum mismatch");
    const typeflag = String.fromCharCode(block[156]);
    if (strict) {
      if (block.toString("latin1", 257, 265) !== "ustar\x0000")
        refuse("a header that is not ustar");
      if (block[345] !== 0) refuse("a ustar prefix field");
      if (!["0", "\0", "5", "2", "x"].includes(typeflag))
        refuse(`entry type ${JSON.stringify(typeflag)}`);
      if (typeflag === "x" && paxPending) refuse("two pax headers in a row");
    }
    const size = strict ? strictOctal(block, 124, 12, "size") : octal(block, 124, 12);
    const padded = Math.ceil(size / 512) * 512;

    if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
      if (strict && size > 65536) refuse("a pax header over 64 KiB");
      const body = await p.take(padded);
      if (body.length < padded) corrupt("truncated extended header");
      const content = body.subarray(0, size);
      if (typeflag === "x") pax = strict ? parsePaxStrict(content) : parsePax(content);
      else if (typeflag === "L") longName = str(content, 0, content.length);
      else if (typeflag === "K") longLink = str(content, 0, content.length);
      paxPending = typeflag === "x";
      continue; // global pax headers ('g') carry nothing pyport uses
    }
    paxPending = false;

    const ustar = block.toString("latin1", 257, 262) === "ustar";
    const prefix = ustar ? str(block, 345, 155) : "";
    const field = (off: number, len: number, what: string) => {
      if (!strict) return str(block, off, len);
      const end = block.indexOf(0, off);
      return strictText(block.subarray(off, end < 0 || end > off + len ? off + len : end), what);
    };
    const baseName = () => field(0, 100, "name");
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${baseName()}` : baseName());
    const linkname = pax.linkpath ?? longLink ?? field(157, 100, "link name");
    const realSize = pax.size !== undefined ? Number(pax.size) : size;
    const realPadded = Math.ceil(realSize / 512) * 512;
    const mtime = strict
      ? strictOctal(block, 136, 12, "mtime")
      : pax.mtime !== undefined
        ? Math.floor(Number(pax.mtime))
        : octal(block, 136, 12);
    pax = {};
    longName = longLink = undefined;

    const kind = KINDS[typeflag] ?? "other";
    if (strict && kind !== "file" && size !== 0) refuse(`${name}: a ${kind} entry with data`);
    const entry: TarEntry = {
      name,
      kind,
      typeflag,
      mode: strict ? strictOctal(block, 100, 8, "mode") : octal(block, 100, 8),
      mtime,
      size: realSize,
      linkname,
    };
    if (kind === "file") {
      let consumed = false;
      entry.data = (async function* () {
        let left = realSize;
        while (left > 0) {
          const chunk = await p.next(Math.min(left, 1 << 20));
          if (chunk.length === 0) corrupt(`truncated data for ${name}`);
          left -= chunk.length;
          yield chunk;
        }
        consumed = true;
      })();
      yield entry;
      if (!consumed) for await (const _ of entry.data) void _;
      const pad = await p.take(realPadded - realSize);
      if (pad.length < realPadded - realSize) corrupt(`truncated padding after ${name}`);
    } else {
      yield entry;
      const skip = await p.take(realPadded);
      if (skip.length < realPadded) corrupt(`truncated data after ${name}`);
    }
  }
}
