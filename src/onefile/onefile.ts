/**
 * Single-file executables: `<stub> <payload> <metadata> <trailer>` (docs/onefile-format.md).
 * The stub (native/onefile.c, built by `npm run build`) verifies, extracts once into the cache
 * and execs; this module writes the file and reads it back (for `pyport audit`) without ever
 * running the stub.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { PyportError } from "../errors.js";
import { nativeAsset } from "../util/assets.js";
import { treeSize } from "../util/fs.js";
import { writeTarArchive } from "../archive/tar-write.js";

const TRAILER_SIZE = 64;
export const TRAILER_MAGIC = "PYONEF";
const FORMAT_VERSION = "01";
const COMPRESSION_ZSTD = 1;
/** zstd decompresses at the same speed at every level, so the level only trades build time for size. */
export const DEFAULT_ONEFILE_LEVEL = 19;

/** The stub built for this machine's architecture; throws E_TOOL (saying what to install) when missing. */
export function onefileStub(): string {
  const p = nativeAsset("onefile");
  if (fs.existsSync(p)) return p;
  throw new PyportError(
    "E_TOOL",
    "--format onefile needs the native onefile stub, which was not built with pyport",
    {
      hint: "Install a C compiler with static libc and libzstd (apt-get install gcc libc6-dev libzstd-dev), then run npm run build in pyport.",
    },
  );
}

export interface OnefileMeta {
  name: string;
  version: string;
  /** The launcher to run, relative to the bundle root (e.g. `bin/hello`). */
  entry: string;
  unpackedBytes: number;
}

export interface OnefileInfo {
  meta: OnefileMeta;
  payloadOffset: number;
  payloadSize: number;
  metaSize: number;
  /** sha256 of payload + metadata, as the trailer records it. */
  sha256: string;
}

function encodeMeta(m: OnefileMeta): Buffer {
  for (const [k, v] of Object.entries(m))
    if (String(v).includes("\n")) throw new Error(`onefile metadata ${k} contains a newline`);
  return Buffer.from(
    `name ${m.name}\nversion ${m.version}\nentry ${m.entry}\nunpacked-bytes ${m.unpackedBytes}\nformat ${FORMAT_VERSION}\n`,
  );
}

/**
 * Writes the single-file executable `dest` (mode 0755) for the bundle directory `bundle`.
 * `tmpDir` holds the intermediate payload. Returns the sha256 the trailer records.
 */
export async function writeOnefile(opts: {
  bundle: string;
  dest: string;
  tmpDir: string;
  meta: Omit<OnefileMeta, "unpackedBytes">;
  level?: number;
}): Promise<string> {
  const stub = onefileStub();
  if (!/^[A-Za-z0-9._+-]+$/.test(opts.meta.name))
    throw new PyportError(
      "E_BUILD",
      `project name ${JSON.stringify(opts.meta.name)} cannot name a cache directory`,
      { hint: "Use letters, digits, '.', '_', '+' and '-'." },
    );
  const payload = path.join(opts.tmpDir, "onefile-payload.tar.zst");
  await writeTarArchive(opts.bundle, "", payload, "zstd", opts.level ?? DEFAULT_ONEFILE_LEVEL);
  const meta = { ...opts.meta, unpackedBytes: await treeSize(opts.bundle) };
  const sha = await assembleOnefile({ stub, payload, meta, dest: opts.dest });
  await fsp.rm(payload, { force: true });
  return sha;
}

/**
 * Writes `dest` (mode 0755) from the stub, a zstd-compressed tar payload (pyport's strict tar
 * profile: src/archive/tar-read.ts) and the metadata. Returns the sha256 the trailer records.
 */
export async function assembleOnefile(opts: {
  stub: string;
  payload: string;
  meta: OnefileMeta;
  dest: string;
}): Promise<string> {
  const meta = encodeMeta(opts.meta);
  const stubBytes = (await fsp.stat(opts.stub)).size;
  const payloadSize = (await fsp.stat(opts.payload)).size;

  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(opts.payload)) hash.update(chunk as Buffer);
  const sha = hash.update(meta).digest();

  const trailer = Buffer.alloc(TRAILER_SIZE);
  trailer.writeBigUInt64LE(BigInt(stubBytes), 0);
  trailer.writeBigUInt64LE(BigInt(payloadSize), 8);
  trailer.writeUInt32LE(meta.length, 16);
  trailer.writeUInt32LE(COMPRESSION_ZSTD, 20);
  sha.copy(trailer, 24);
  trailer.write(TRAILER_MAGIC + FORMAT_VERSION, 56, "latin1");

  const out = fs.createWriteStream(opts.dest, { mode: 0o755 });
  await pipeline(async function* () {
    yield* fs.createReadStream(opts.stub);
    yield* fs.createReadStream(opts.payload);
    yield meta;
    yield trailer;
  }, out);
  await fsp.chmod(opts.dest, 0o755);
  return sha.toString("hex");
}

function corrupt(file: string, what: string): never {
  throw new PyportError("E_ARCHIVE", `${file}: ${what}`, {
    hint: "Download or build the file again.",
  });
}

/** Reads the trailer and metadata of a onefile; undefined when `file` is not one. */
export async function readOnefile(file: string): Promise<OnefileInfo | undefined> {
  const h = await fsp.open(file, "r");
  try {
    const size = (await h.stat()).size;
    if (size < TRAILER_SIZE) return undefined;
    const t = Buffer.alloc(TRAILER_SIZE);
    await h.read(t, 0, TRAILER_SIZE, size - TRAILER_SIZE);
    if (t.toString("latin1", 56, 62) !== TRAILER_MAGIC) return undefined;
    if (t.toString("latin1", 62, 64) !== FORMAT_VERSION)
      corrupt(
        file,
        `onefile format ${t.toString("latin1", 62, 64)} is newer than this pyport understands`,
      );
    const payloadOffset = Number(t.readBigUInt64LE(0));
    const payloadSize = Number(t.readBigUInt64LE(8));
    const metaSize = t.readUInt32LE(16);
    if (t.readUInt32LE(20) !== COMPRESSION_ZSTD) corrupt(file, "unknown payload compression");
    if (payloadOffset + payloadSize + metaSize + TRAILER_SIZE !== size)
      corrupt(
        file,
        "the sizes in the onefile trailer do not match the file (truncated, or data appended)",
      );
    const metaBuf = Buffer.alloc(metaSize);
    await h.read(metaBuf, 0, metaSize, payloadOffset + payloadSize);
    const fields = new Map(
      metaBuf
        .toString()
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)] as const),
    );
    const meta: OnefileMeta = {
      name: fields.get("name") ?? "",
      version: fields.get("version") ?? "",
      entry: fields.get("entry") ?? "",
      unpackedBytes: Number(fields.get("unpacked-bytes") ?? 0),
    };
    return {
      meta,
      payloadOffset,
      payloadSize,
      metaSize,
      sha256: t.subarray(24, 56).toString("hex"),
    };
  } finally {
    await h.close();
  }
}

/** Checks the sha256 of payload + metadata against the trailer; throws E_ARCHIVE on mismatch. */
export async function verifyOnefile(file: string, info: OnefileInfo): Promise<void> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file, {
    start: info.payloadOffset,
    end: info.payloadOffset + info.payloadSize + info.metaSize - 1,
  }))
    hash.update(chunk as Buffer);
  const got = hash.digest("hex");
  if (got !== info.sha256)
    corrupt(
      file,
      `corrupted onefile: sha256 mismatch (the payload's is ${got}, the trailer says ${info.sha256})`,
    );
}

/** Copies the verified payload of a onefile to `dest` (a .tar.zst), for the safe extractor. */
export async function copyPayload(file: string, info: OnefileInfo, dest: string): Promise<void> {
  await pipeline(
    fs.createReadStream(file, {
      start: info.payloadOffset,
      end: info.payloadOffset + info.payloadSize - 1,
    }),
    fs.createWriteStream(dest, { mode: 0o600 }),
  );
}
