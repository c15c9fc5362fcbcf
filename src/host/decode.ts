/**
 * Frames from Python, with values in pyport's tags (protocol.ts TAG): the Python side is
 * python/host_codec.py's encoder.
 *
 * Python → JS: None → null, bool, int → number when a safe integer, else bigint, float, str,
 * bytes → Uint8Array (a view into the received data, or read from the arena), list and tuple →
 * array, dict with str keys → plain object, other dict → Map, set and frozenset → Set,
 * datetime → Date; the worker sends date and Decimal as strings and refuses every other type.
 */
import type { ArenaReader } from "./arena.js";
import { HEADER, TAG } from "./protocol.js";

/** Receives each frame: its kind, call id, and value (undefined for a frame without one). */
export type FrameHandler = (kind: number, id: number, value: unknown) => void;

/** Splits a byte stream into frames, decodes each and hands it to `onFrame`, in order. */
export class FrameReader {
  /** Received bytes not yet made into frames: a frame's start. */
  private chunks: Buffer[] = [];
  private have = 0;
  private readonly decoder: Decoder;

  constructor(
    arena: ArenaReader | undefined,
    private readonly onFrame: FrameHandler,
  ) {
    this.decoder = new Decoder(arena);
  }

  /** Adds received bytes; every frame they complete is decoded and handled before this returns. Throws on data that breaks the protocol. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.have) {
      this.chunks.push(chunk);
      this.have += chunk.length;
      if (this.have < 4) return;
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      if (this.have < 4 + this.chunks[0].readUInt32LE(0)) return; // wait for the rest: no copying meanwhile
      buf = Buffer.concat(this.chunks, this.have);
      this.chunks = [];
      this.have = 0;
    }
    let pos = 0;
    while (buf.length - pos >= 4) {
      const end = pos + 4 + buf.readUInt32LE(pos);
      if (end > buf.length) break;
      if (end < pos + HEADER) throw new Error(`host protocol: a frame of ${end - pos} bytes`);
      const kind = buf[pos + 4];
      const id = buf.readUInt32LE(pos + 5);
      const value = end > pos + HEADER ? this.decoder.value(buf, pos + HEADER, end) : undefined;
      pos = end;
      this.onFrame(kind, id, value);
    }
    if (pos < buf.length) {
      this.chunks = [buf.subarray(pos)];
      this.have = buf.length - pos;
    }
  }
}

/** Decodes the one value of a frame; reused for every frame. */
class Decoder {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;

  constructor(readonly arena: ArenaReader | undefined) {}

  /** The value in buf[start..end), which must fill it exactly. */
  value(buf: Buffer, start: number, end: number): unknown {
    this.buf = buf;
    this.pos = start;
    const v = decodeValue(this);
    if (this.pos !== end)
      throw new Error(`host protocol: ${end - this.pos} stray bytes after a value`);
    return v;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An i64 the sender knows is a safe integer: the halves combine exactly. */
  i64(): number {
    const v = this.buf.readInt32LE(this.pos + 4) * 4294967296 + this.buf.readUInt32LE(this.pos);
    this.pos += 8;
    return v;
  }

  f64(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  str(): string {
    const n = this.u32();
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function decodeValue(d: Decoder): unknown {
  const tag = d.buf[d.pos++];
  switch (tag) {
    case TAG.int:
      return d.i64(); // Python sends this tag for safe integers only
    case TAG.str:
      return d.str();
    case TAG.none:
      return null;
    case TAG.false:
      return false;
    case TAG.true:
      return true;
    case TAG.float:
      return d.f64();
    case TAG.bigint:
      return BigInt(d.str());
    case TAG.bytes: {
      const n = d.u32();
      const out = new Uint8Array(d.buf.buffer, d.buf.byteOffset + d.pos, n);
      d.pos += n;
      return out;
    }
    case TAG.bytesAt: {
      if (!d.arena) throw new Error("host protocol: a value in the arena, but there is none");
      const at = d.i64();
      return d.arena.read(at, d.u32());
    }
    case TAG.list: {
      const n = d.u32();
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = decodeValue(d);
      return out;
    }
    case TAG.object: {
      const n = d.u32();
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = d.str();
        const value = decodeValue(d);
        if (k === "__proto__")
          Object.defineProperty(out, k, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        else out[k] = value;
      }
      return out;
    }
    case TAG.map: {
      const n = d.u32();
      const out = new Map<unknown, unknown>();
      for (let i = 0; i < n; i++) {
        const k = decodeValue(d);
        out.set(k, decodeValue(d));
      }
      return out;
    }
    case TAG.set: {
      const n = d.u32();
      const out = new Set<unknown>();
      for (let i = 0; i < n; i++) out.add(decodeValue(d));
      return out;
    }
    case TAG.date:
      return new Date(d.f64());
    default:
      throw new Error(`host protocol: unknown tag ${tag} at byte ${d.pos - 1}`);
  }
}
