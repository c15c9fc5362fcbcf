/** Streams the decompressed bytes of a file, choosing gzip, zstd or none by its magic bytes. */
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { PyportError } from "../errors.js";

export type Compression = "gzip" | "zstd" | "none";

async function detectCompression(file: string): Promise<Compression> {
  const h = await fsp.open(file, "r");
  try {
    const head = Buffer.alloc(4);
    await h.read(head, 0, 4, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
    if (head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
    return "none";
  } finally {
    await h.close();
  }
}

async function* zstdChunks(source: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
  const ready: Uint8Array[] = [];
  const d = new Decompress((chunk) => ready.push(chunk));
  for await (const chunk of source) {
    try {
      d.push(chunk);
    } catch (err) {
      throw new PyportError("E_ARCHIVE", `corrupt zstd stream: ${(err as Error).message}`, {
        cause: err,
      });
    }
    while (ready.length) yield ready.shift()!;
  }
  try {
    d.push(new Uint8Array(0), true);
  } catch (err) {
    throw new PyportError("E_ARCHIVE", `truncated zstd stream: ${(err as Error).message}`, {
      cause: err,
    });
  }
  while (ready.length) yield ready.shift()!;
}

async function* gzipChunks(file: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of createReadStream(file).pipe(createGunzip())) yield chunk as Buffer;
  } catch (err) {
    throw new PyportError(
      "E_ARCHIVE",
      `corrupt or truncated gzip stream: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Decompressed content of `file` as chunks. */
export async function decompressedChunks(file: string): Promise<AsyncIterable<Uint8Array>> {
  const kind = await detectCompression(file);
  if (kind === "gzip") return gzipChunks(file);
  if (kind === "zstd") return zstdChunks(createReadStream(file) as AsyncIterable<Buffer>);
  return createReadStream(file) as AsyncIterable<Buffer>;
}
