/**
 * Hand-made tar archives for attack tests: any name, type, link target, pax record or GNU
 * long-name header, byte for byte, with nothing normalised (unlike tarfile or pyport's writer).
 */

export interface CraftEntry {
  name: string;
  /** "0" file, "5" dir, "2" symlink, "1" hard link, or any other typeflag. */
  type?: string;
  data?: string | Buffer;
  link?: string;
  mode?: number;
  /** pax records to put in an 'x' header before this entry. */
  pax?: Record<string, string>;
  /** Put the name (and link) in GNU 'L' ('K') headers instead of the ustar fields. */
  gnuLong?: boolean;
  /** Override the size field (the data written is still `data`). */
  sizeField?: string;
  /** The ustar prefix field (names longer than 100 bytes). */
  prefix?: string;
  /** Changes the header's bytes before its checksum is computed. */
  mutate?: (h: Buffer) => void;
}

function field(h: Buffer, off: number, len: number, value: string): void {
  Buffer.from(value, "utf8").copy(h, off, 0, len);
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

export function header(
  name: string,
  type: string,
  size: number,
  opts: {
    link?: string;
    mode?: number;
    sizeField?: string;
    prefix?: string;
    mutate?: (h: Buffer) => void;
  } = {},
): Buffer {
  const h = Buffer.alloc(512);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(opts.mode ?? 0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, opts.sizeField ?? octal(size, 12));
  field(h, 136, 12, octal(946684800, 12));
  field(h, 148, 8, "        ");
  field(h, 156, 1, type);
  field(h, 157, 100, opts.link ?? "");
  field(h, 257, 6, "ustar\0");
  field(h, 263, 2, "00");
  if (opts.prefix) field(h, 345, 155, opts.prefix);
  opts.mutate?.(h);
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, octal(sum, 7) + " ");
  return h;
}

function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

export function paxBody(records: Record<string, string>): Buffer {
  let out = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (Buffer.byteLength(`${len}${body}`) !== len) len = Buffer.byteLength(`${len}${body}`);
    out += `${len}${body}`;
  }
  return Buffer.from(out, "utf8");
}

/** The bytes of a tar archive holding `entries`, ended by two zero blocks (unless `noEnd`). */
export function craftTar(entries: CraftEntry[], opts: { noEnd?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? "0";
    const data = Buffer.from(e.data ?? "");
    if (e.pax) {
      const body = paxBody(e.pax);
      parts.push(header("PaxHeader", "x", body.length), padded(body));
    }
    let name = e.name;
    let link = e.link;
    if (e.gnuLong) {
      const n = Buffer.from(name + "\0");
      parts.push(header("././@LongLink", "L", n.length), padded(n));
      name = name.slice(0, 99);
      if (link !== undefined) {
        const l = Buffer.from(link + "\0");
        parts.push(header("././@LongLink", "K", l.length), padded(l));
        link = link.slice(0, 99);
      }
    }
    parts.push(
      header(name, type, data.length, {
        link,
        mode: e.mode,
        sizeField: e.sizeField,
        prefix: e.prefix,
        mutate: e.mutate,
      }),
    );
    if (data.length) parts.push(padded(data));
  }
  if (!opts.noEnd) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
