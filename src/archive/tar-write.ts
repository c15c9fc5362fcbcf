/**
 * Reproducible tar archives: entries sorted by path, uid/gid 0 with empty owner names, modes
 * normalised (0755 for directories and executables, 0644 otherwise), one fixed mtime
 * (SOURCE_DATE_EPOCH, else 2000-01-01), ustar headers with a pax record only for names that do
 * not fit. Compressed with gzip (level 9, no name/time in the header) or with the `zstd` tool.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";
import { PyportError } from "../errors.js";
import { walkTree } from "../util/fs.js";

const DEFAULT_EPOCH = 946684800; // 2000-01-01T00:00:00Z

/** The mtime of every archive entry: SOURCE_DATE_EPOCH, else 2000-01-01. */
export function archiveEpoch(): number {
  const e = process.env.SOURCE_DATE_EPOCH;
  return e && /^\d+$/.test(e) ? Number(e) : DEFAULT_EPOCH;
}

/** One archive member; a file's bytes come from `data` when set, else from the file `full`. */
export interface TarEntry {
  name: string;
  kind: "file" | "dir" | "symlink";
  mode: number;
  size: number;
  link?: string;
  full: string;
  data?: Buffer;
}
type Entry = TarEntry;

/** The entries of `root` as `prefix/…` (or its bare contents with prefix ""), sorted by name. */
export async function collectTree(root: string, prefix: string): Promise<Entry[]> {
  const out: Entry[] = [];
  if (prefix) out.push({ name: `${prefix}/`, kind: "dir", mode: 0o755, size: 0, full: root });
  for await (const { rel, full, dirent } of walkTree(root)) {
    const name = prefix ? `${prefix}/${rel}` : rel;
    if (dirent.isSymbolicLink())
      out.push({
        name,
        kind: "symlink",
        mode: 0o777,
        size: 0,
        link: await fsp.readlink(full),
        full,
      });
    else if (dirent.isDirectory())
      out.push({ name: `${name}/`, kind: "dir", mode: 0o755, size: 0, full });
    else if (dirent.isFile()) {
      const st = await fsp.lstat(full);
      out.push({ name, kind: "file", mode: st.mode & 0o111 ? 0o755 : 0o644, size: st.size, full });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, e: Entry, mtime: number, typeflag: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write(octal(e.mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(mtime, 12), 136);
  h.write("        ", 148);
  h.write(typeflag, 156);
  if (e.link) h.write(e.link, 157, 100, "utf8");
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148);
  return h;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (`${len}${body}`.length !== len) len = `${len}${body}`.length;
  return `${len}${body}`;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** The tar stream of `entries` (in the order given), each with `mtime`, uid/gid 0. */
export async function* tarChunks(entries: Iterable<Entry>, mtime: number): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const typeflag = e.kind === "dir" ? "5" : e.kind === "symlink" ? "2" : "0";
    const records: string[] = [];
    if (Buffer.byteLength(e.name) > 100) records.push(paxRecord("path", e.name));
    if (e.link && Buffer.byteLength(e.link) > 100) records.push(paxRecord("linkpath", e.link));
    if (records.length) {
      const body = Buffer.from(records.join(""));
      yield header(
        "././@PaxHeader",
        { ...e, mode: 0o644, link: undefined },
        mtime,
        "x",
        body.length,
      );
      yield body;
      yield pad(body.length);
    }
    yield header(
      Buffer.byteLength(e.name) > 100 ? e.name.slice(0, 99) : e.name,
      e,
      mtime,
      typeflag,
      e.kind === "file" ? e.size : 0,
    );
    if (e.kind === "file" && e.data) {
      yield e.data;
      yield pad(e.size);
    } else if (e.kind === "file") {
      const handle = await fsp.open(e.full, "r");
      try {
        for await (const chunk of handle.createReadStream({ autoClose: false }))
          yield chunk as Buffer;
      } finally {
        await handle.close();
      }
      yield pad(e.size);
    }
  }
  yield Buffer.alloc(1024);
}

/**
 * Writes `root` as `prefix/…` (or, with prefix "", as its bare contents) into `dest` (.tar.gz,
 * .tar.zst or a plain .tar), reproducibly. `zstdLevel` defaults to 19.
 */
export async function writeTarArchive(
  root: string,
  prefix: string,
  dest: string,
  compression: "gzip" | "zstd" | "none",
  zstdLevel = 19,
): Promise<void> {
  const source = Readable.from(tarChunks(await collectTree(root, prefix), archiveEpoch()));
  if (compression === "none") {
    await pipeline(source, fs.createWriteStream(dest, { mode: 0o644 }));
    return;
  }
  if (compression === "gzip") {
    await pipeline(
      source,
      zlib.createGzip({ level: 9 }),
      fs.createWriteStream(dest, { mode: 0o644 }),
    );
    return;
  }
  const child = spawn("zstd", ["-q", `-${zstdLevel}`, "-T0", "--no-progress", "-o", dest], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  try {
    await pipeline(source, child.stdin);
  } catch (err) {
    child.kill();
    await exited.catch(() => undefined);
    throw err;
  }
  const code = await exited.catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT")
      throw new PyportError(
        "E_TOOL",
        "the tar.zst format needs the zstd tool, which is not installed",
        { hint: "Install it (apt-get install zstd), or use --format tar.gz." },
      );
    throw err;
  });
  if (code !== 0)
    throw new PyportError("E_TOOL", `zstd failed (exit ${code}): ${stderr.trim()}`, {
      hint: "Check free disk space, or use --format tar.gz.",
    });
}
