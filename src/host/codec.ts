/**
 * The host protocol's value encoding (the Python side is python/host_worker.py; keep the tags in
 * step). One tag byte, then a fixed-size or length-prefixed body, all little-endian:
 *
 *   0 None/null   1 False   2 True   3 int (i64: safe integers)   4 big int (u32 len, decimal ASCII)
 *   5 float (f64)   6 str (u32 len, UTF-8)   7 bytes (u32 len, raw)   8 list (u32 n, items)
 *   9 object with str keys (u32 n, then n × (u32 len, UTF-8 key, value))   10 Map (u32 n, n × (key, value))
 *   11 Set (u32 n, items)   12 Date (f64 ms since the epoch, UTC)
 *   13 bytes in the arena (i64 offset, u32 len; see arena.ts): long byte values, when there is one
 *
 * JS → Python: null/undefined → None, boolean, safe integer → int, other number → float,
 * bigint → int, string, Uint8Array (Buffer too) → bytes, array → list, plain object → dict,
 * Map → dict, Set → set, Date → aware datetime (UTC). Anything else is a TypeError here.
 * Bytes are copied once into the frame (or the arena), never base64- or per-element encoded.
 */
import { ARENA_MIN, type ArenaReader, type ArenaWriter } from "./arena.js";

/** Frame kinds: a frame is u32 length (of what follows), u8 kind, u32 call id, then at most one value. */
export const KIND = {
  toPython: { call: 1, stream: 2, credit: 3, cancel: 4, exit: 5, release: 6 },
  fromPython: { ok: 1, err: 2, item: 3, done: 4, ready: 5, release: 6 },
} as const;

export const TAG = { none: 0, false: 1, true: 2, int: 3, bigint: 4, float: 5, str: 6, bytes: 7, list: 8, object: 9, map: 10, set: 11, date: 12, bytesAt: 13 } as const;

const NO_VALUE = Symbol("no value");

/**
 * Frames on their way to Python, encoded back to back into one buffer, so that the calls of one
 * tick leave in one write with no per-frame allocation. Large byte arrays become parts of their
 * own (never copied), or go through the arena when there is one. Regions handed out by `take()`
 * are never written again: a fresh buffer is started when the current one is full.
 */
export class FrameWriter {
  /** Values put into the arena while encoding the current frame. */
  private arenaPuts = 0;
  private parts: Uint8Array[] = [];
  private buf = Buffer.allocUnsafe(0);
  private pos = 0;
  /** Start of the region of `buf` not yet in `parts`. */
  private sealed = 0;
  /** Bytes of the frame being encoded, after its length prefix. */
  private length = 0;
  /** Frames encoded since the last take(). */
  count = 0;

  constructor(private readonly arena?: ArenaWriter) {}

  /** Appends one frame: length, kind, id, then the value if given. Throws TypeError for a value that cannot be sent, leaving no trace of the frame. */
  frame(kind: number, id: number, value: unknown = NO_VALUE): void {
    this.room(9);
    const [head, at, sealed, parts] = [this.buf, this.pos, this.sealed, this.parts.length];
    this.pos += 4;
    this.length = 0;
    this.arenaPuts = 0;
    this.u8(kind);
    this.u32(id);
    try {
      if (value !== NO_VALUE) encodeValue(this, value, 0);
    } catch (err) {
      [this.buf, this.pos, this.sealed, this.parts.length] = [head, at, sealed, parts];
      if (this.arenaPuts) this.arena!.release(this.arenaPuts); // written, but never to be read
      throw err;
    }
    head.writeUInt32LE(this.length, at);
    this.count++;
  }

  /** Everything encoded since the last call, to be written in order (empty when nothing is). */
  take(): Uint8Array[] {
    this.seal();
    const out = this.parts;
    this.parts = [];
    this.count = 0;
    return out;
  }

  private seal(): void {
    if (this.pos > this.sealed) this.parts.push(this.buf.subarray(this.sealed, this.pos));
    this.sealed = this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.seal();
    this.buf = Buffer.allocUnsafe(Math.max(n, 65536));
    this.pos = this.sealed = 0;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
    this.length += 1;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
    this.length += 4;
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    this.length += 8;
  }

  /** A safe integer as i64, in two 32-bit halves (exact for safe integers; no BigInt allocated). */
  i64(v: number): void {
    this.room(8);
    const hi = Math.floor(v / 4294967296);
    this.buf.writeUInt32LE(v - hi * 4294967296, this.pos);
    this.buf.writeInt32LE(hi, this.pos + 4);
    this.pos += 8;
    this.length += 8;
  }

  /** u32 byte length, then the UTF-8 of `s`. */
  str(s: string): void {
    this.room(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, "utf8");
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
    this.length += 4 + n;
  }

  /** A byte value: its tag, then the bytes inline, or where they are in the arena. */
  bytesValue(b: Uint8Array): void {
    const at = this.arena && b.length >= ARENA_MIN ? this.arena.put(b) : -1;
    if (at < 0) {
      this.u8(TAG.bytes);
      return this.bytes(b);
    }
    this.arenaPuts++;
    this.u8(TAG.bytesAt);
    this.i64(at);
    this.u32(b.length);
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    if (b.length < 16384) {
      this.room(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
    } else {
      this.seal();
      this.parts.push(b);
    }
    this.length += b.length;
  }
}

function describe(v: unknown): string {
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "object";
  return typeof v;
}

function encodeValue(w: FrameWriter, v: unknown, depth: number): void {
  if (depth > 200) throw new TypeError("cannot send a value nested more than 200 levels deep (a cycle?) to Python");
  if (v === null || v === undefined) return w.u8(TAG.none);
  switch (typeof v) {
    case "boolean":
      return w.u8(v ? TAG.true : TAG.false);
    case "number":
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        w.u8(TAG.int);
        return w.i64(v);
      }
      w.u8(TAG.float);
      return w.f64(v);
    case "bigint":
      w.u8(TAG.bigint);
      return w.str(v.toString());
    case "string":
      w.u8(TAG.str);
      return w.str(v);
    case "object":
      break;
    default:
      throw new TypeError(`cannot send a ${typeof v} to Python`);
  }
  if (v instanceof Uint8Array) return w.bytesValue(v);
  if (Array.isArray(v)) {
    w.u8(TAG.list);
    w.u32(v.length);
    for (const x of v) encodeValue(w, x, depth + 1);
    return;
  }
  if (v instanceof Map) {
    w.u8(TAG.map);
    w.u32(v.size);
    for (const [k, x] of v) {
      encodeValue(w, k, depth + 1);
      encodeValue(w, x, depth + 1);
    }
    return;
  }
  if (v instanceof Set) {
    w.u8(TAG.set);
    w.u32(v.size);
    for (const x of v) encodeValue(w, x, depth + 1);
    return;
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError("cannot send an invalid Date to Python");
    w.u8(TAG.date);
    return w.f64(v.getTime());
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot send a ${describe(v)} to Python (send plain objects, arrays, Map, Set, Date, Uint8Array, or primitives)`);
  }
  const keys = Object.keys(v);
  w.u8(TAG.object);
  w.u32(keys.length);
  for (const k of keys) {
    w.str(k);
    encodeValue(w, (v as Record<string, unknown>)[k], depth + 1);
  }
}

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly arena?: ArenaReader,
  ) {}

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

  str(): string {
    const n = this.u32();
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function decodeValue(r: Reader): unknown {
  const tag = r.buf[r.pos++];
  switch (tag) {
    case TAG.none:
      return null;
    case TAG.false:
      return false;
    case TAG.true:
      return true;
    case TAG.int:
      return r.i64(); // Python sends this tag for safe integers only
    case TAG.bigint:
      return BigInt(r.str());
    case TAG.float: {
      const v = r.buf.readDoubleLE(r.pos);
      r.pos += 8;
      return v;
    }
    case TAG.str:
      return r.str();
    case TAG.bytes: {
      const n = r.u32();
      const out = new Uint8Array(r.buf.buffer, r.buf.byteOffset + r.pos, n);
      r.pos += n;
      return out;
    }
    case TAG.bytesAt: {
      if (!r.arena) throw new Error("host protocol: a value in the arena, but there is none");
      const at = r.i64();
      return r.arena.read(at, r.u32());
    }
    case TAG.list: {
      const n = r.u32();
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = decodeValue(r);
      return out;
    }
    case TAG.object: {
      const n = r.u32();
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = r.str();
        const value = decodeValue(r);
        if (k === "__proto__") Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
        else out[k] = value;
      }
      return out;
    }
    case TAG.map: {
      const n = r.u32();
      const out = new Map<unknown, unknown>();
      for (let i = 0; i < n; i++) {
        const k = decodeValue(r);
        out.set(k, decodeValue(r));
      }
      return out;
    }
    case TAG.set: {
      const n = r.u32();
      const out = new Set<unknown>();
      for (let i = 0; i < n; i++) out.add(decodeValue(r));
      return out;
    }
    case TAG.date: {
      const v = r.buf.readDoubleLE(r.pos);
      r.pos += 8;
      return new Date(v);
    }
    default:
      throw new Error(`host protocol: unknown tag ${tag} at byte ${r.pos - 1}`);
  }
}

/** Kind, id and value of one frame body (without its length prefix). Byte values are views into `body`, or read from `arena`. */
export function decodeFrame(body: Buffer, arena?: ArenaReader): { kind: number; id: number; value: unknown } {
  const r = new Reader(body, arena);
  r.pos = 5;
  const value = body.length > 5 ? decodeValue(r) : undefined;
  if (r.pos !== body.length) throw new Error(`host protocol: ${body.length - r.pos} stray bytes after a value`);
  return { kind: body[0], id: body.readUInt32LE(1), value };
}

/** Splits a byte stream into frame bodies. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;

  /** Adds a chunk; returns every complete frame body now available. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.have < 4) break;
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0].readUInt32LE(0);
      if (this.have < 4 + len) break;
      let head = this.chunks[0];
      if (head.length < 4 + len) {
        head = Buffer.concat(this.chunks, this.have);
        this.chunks = [head];
      }
      out.push(head.subarray(4, 4 + len));
      const rest = head.subarray(4 + len);
      this.chunks[0] = rest;
      if (!rest.length) this.chunks.shift();
      this.have -= 4 + len;
    }
    return out;
  }
}

let warmed = false;
/**
 * Encodes and decodes one typical call frame, once per process: run while the first worker's
 * interpreter starts, it takes V8's first-run costs (~1 ms here) off the first real call.
 */
export function warmUp(): void {
  if (warmed) return;
  warmed = true;
  const w = new FrameWriter();
  w.frame(KIND.toPython.call, 0, ["module:function", [1, 2.5, "text", null, true, [1]], { key: "value" }]);
  for (const body of new FrameReader().push(Buffer.concat(w.take()))) decodeFrame(body);
}
