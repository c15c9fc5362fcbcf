/**
 * Frames to Python, with values in CPython's marshal format (protocol.ts), which the worker
 * decodes in C with one `marshal.loads` — no Python code runs per value.
 *
 * JS → Python: null/undefined → None, boolean, safe integer → int, other number → float,
 * bigint → int, string → str, Uint8Array (Buffer too) → bytes, array → list, plain object → dict,
 * Map → dict, Set → set, Date → aware datetime (UTC). Map keys and Set items are made hashable:
 * arrays become tuples and Sets frozensets. Anything else is a TypeError here, naming the type.
 * Bytes are copied once into the frame (or the arena), never base64- or per-element encoded.
 *
 * The marshal subset written (CPython Python/marshal.c, version 4, readable by Python 3.4 and
 * later):
 *   'N' None  'T' True  'F' False  'i' i32  'l' long (i32 signed count n, |n| u16 digits base 2**15,
 *   least significant first)  'g' f64  'u' str (u32 len, UTF-8)  'z' short ASCII str (u8 len)
 *   's' bytes (u32 len)  '[' list, '(' tuple, '<' set, '>' frozenset (u32 n, items)
 *   ')' tuple (u8 n, items)  '{' dict (key, value pairs, then '0')  '.' Ellipsis (placeholders only)
 *   A plain object's keys: the first time in a frame 'Z' (interned short ASCII) with FLAG_REF
 *   (0x80), which marshal numbers in the order it reads them; after that 'r' (u32 that number),
 *   the same str object again. A batch of rows sends each column name once.
 */
import { ARENA_MIN, type ArenaWriter } from "./arena.js";
import { HEADER, PLACEHOLDER, RESTORE } from "./protocol.js";

const M = {
  null: 0x30,
  none: 0x4e,
  true: 0x54,
  false: 0x46,
  int: 0x69,
  long: 0x6c,
  float: 0x67,
  str: 0x75,
  shortAscii: 0x7a,
  internedShortAscii: 0x5a,
  ref: 0x72,
  bytes: 0x73,
  list: 0x5b,
  tuple: 0x28,
  smallTuple: 0x29,
  dict: 0x7b,
  set: 0x3c,
  frozenset: 0x3e,
  ellipsis: 0x2e,
} as const;

const MAX_DEPTH = 200;
/** Strings up to this long are tried as ASCII first. */
const SHORT_STR = 32;
const TWO_POW_64 = 1n << 64n;
const SCRATCH = new DataView(new ArrayBuffer(8));
const INT32 = 2 ** 31;
/** Byte arrays at least this long become parts of their own (never copied) when they go inline. */
const OWN_PART = 16384;
/** marshal's flag on a type byte: the object joins the frame's reference list. */
const FLAG_REF = 0x80;
/** Distinct keys per frame given a reference; keys beyond it are written in full each time. */
const MAX_KEY_REFS = 4096;

function describe(v: unknown): string {
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "object";
  return typeof v;
}

/**
 * Frames on their way to Python, encoded back to back into one buffer, so that the calls of one
 * tick leave in one write with no per-frame allocation. Large byte arrays become parts of their
 * own (never copied), or go through the arena when there is one. Regions handed out by `take()`
 * are never written again: a fresh buffer is started when the current one is full.
 */
export class FrameWriter {
  /** Frames encoded since the last take(). */
  count = 0;
  private parts: Uint8Array[] = [];
  private buf = Buffer.allocUnsafe(0);
  private pos = 0;
  /** Start of the region of `buf` not yet in `parts`. */
  private sealed = 0;
  /** Bytes of the frame being encoded, after its length prefix. */
  private length = 0;
  /** Placeholders written in the current frame. */
  private placeholders = 0;
  /** Where the current frame starts (begin), to finish it or leave no trace of it. */
  private frameBuf = this.buf;
  private frameAt = 0;
  private frameSealed = 0;
  private frameParts = 0;
  private frameArenaEnd = 0;
  /** The current frame's plain-object keys already written, by reference number. */
  private keyRefs = new Map<string, number>();

  constructor(private readonly arena?: ArenaWriter) {}

  /** Appends a frame whose value, if given, is any sendable value. */
  frame(kind: number, id: number, value?: unknown): void {
    this.begin(kind, id);
    try {
      if (value !== undefined) this.value(value, 0, false);
    } catch (err) {
      this.abandon();
      throw err;
    }
    this.end();
  }

  /** Appends a call (or, with `credit`, a stream): the tuple (target, args, kwargs[, credit]). */
  call(
    kind: number,
    id: number,
    target: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    credit?: number,
  ): void {
    this.begin(kind, id);
    try {
      this.u8(M.smallTuple);
      this.u8(credit === undefined ? 3 : 4);
      this.value(target, 0, false);
      this.value(args, 0, false);
      this.value(kwargs, 0, false);
      if (credit !== undefined) this.value(credit, 0, false);
    } catch (err) {
      this.abandon();
      throw err;
    }
    this.end();
  }

  /** Everything encoded since the last call, to be written in order (empty when nothing is). */
  take(): Uint8Array[] {
    this.seal();
    const out = this.parts;
    this.parts = [];
    this.count = 0;
    return out;
  }

  /** Starts a frame: its header, with the length left to end(). */
  private begin(kind: number, id: number): void {
    this.room(HEADER);
    this.frameBuf = this.buf;
    this.frameAt = this.pos;
    this.frameSealed = this.sealed;
    this.frameParts = this.parts.length;
    this.frameArenaEnd = this.arena?.end ?? 0;
    this.pos += 4;
    this.length = this.placeholders = 0;
    this.keyRefs.clear();
    this.u8(kind);
    this.u32(id);
  }

  private end(): void {
    this.frameBuf.writeUInt32LE(this.length, this.frameAt);
    if (this.placeholders) this.frameBuf[this.frameAt + 4] |= RESTORE;
    this.count++;
  }

  /** Leaves no trace of the frame begun: a value in it could not be sent. */
  private abandon(): void {
    [this.buf, this.pos, this.sealed, this.parts.length] = [
      this.frameBuf,
      this.frameAt,
      this.frameSealed,
      this.frameParts,
    ];
    this.arena?.rewind(this.frameArenaEnd); // written, but never to be read
  }

  /** `key`: inside a Map key or a Set item, where Python needs hashable values. */
  private value(v: unknown, depth: number, key: boolean): void {
    if (depth > MAX_DEPTH)
      throw new TypeError(
        `cannot send a value nested more than ${MAX_DEPTH} levels deep (a cycle?) to Python`,
      );
    switch (typeof v) {
      case "number":
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.int(v);
        this.u8(M.float);
        return this.f64(v);
      case "string":
        if (this.shortAscii(v, M.shortAscii)) return;
        this.u8(M.str);
        return this.str(v);
      case "boolean":
        return this.u8(v ? M.true : M.false);
      case "bigint":
        return this.bigint(v);
      case "undefined":
        return this.u8(M.none);
      case "object":
        if (v === null) return this.u8(M.none);
        break;
      default:
        throw new TypeError(`cannot send a ${typeof v} to Python`);
    }
    if (Array.isArray(v)) return this.items(key ? M.tuple : M.list, v, v.length, depth, key);
    if (v instanceof Uint8Array) return this.bytesValue(v);
    if (v instanceof Map) {
      this.u8(M.dict);
      for (const [k, x] of v) {
        this.value(k, depth + 1, true);
        this.value(x, depth + 1, key);
      }
      return this.u8(M.null);
    }
    if (v instanceof Set) return this.items(key ? M.frozenset : M.set, v, v.size, depth, true);
    if (v instanceof Date) {
      if (Number.isNaN(v.getTime())) throw new TypeError("cannot send an invalid Date to Python");
      this.placeholder(PLACEHOLDER.date, 3);
      this.u8(M.float);
      return this.f64(v.getTime());
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(
        `cannot send a ${describe(v)} to Python (send plain objects, arrays, Map, Set, Date, Uint8Array, or primitives)`,
      );
    }
    this.u8(M.dict);
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      this.key(k);
      this.value((v as Record<string, unknown>)[k], depth + 1, key);
    }
    this.u8(M.null);
  }

  /** A plain object's key: a reference to its first writing in this frame when it has one. */
  private key(k: string): void {
    const ref = this.keyRefs.get(k);
    if (ref !== undefined) {
      this.u8(M.ref);
      return this.u32(ref);
    }
    if (this.keyRefs.size < MAX_KEY_REFS && this.shortAscii(k, M.internedShortAscii | FLAG_REF)) {
      this.keyRefs.set(k, this.keyRefs.size);
      return;
    }
    this.u8(M.str);
    this.str(k);
  }

  /** Writes `s` with type byte `type` and a u8 length when it is ASCII and short; false if not. */
  private shortAscii(s: string, type: number): boolean {
    if (s.length > SHORT_STR) return false;
    this.room(2 + s.length);
    const buf = this.buf;
    const at = this.pos + 2;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      buf[at + i] = c;
    }
    buf[this.pos] = type;
    buf[this.pos + 1] = s.length;
    this.pos += 2 + s.length;
    this.length += 2 + s.length;
    return true;
  }

  private items(
    type: number,
    items: Iterable<unknown>,
    n: number,
    depth: number,
    key: boolean,
  ): void {
    this.u8(type);
    this.u32(n);
    for (const x of items) this.value(x, depth + 1, key);
  }

  /** The start of a placeholder tuple `(Ellipsis, kind, ...)` of `n` items. */
  private placeholder(kind: number, n: number): void {
    this.placeholders++;
    this.u8(M.smallTuple);
    this.u8(n);
    this.u8(M.ellipsis);
    this.int(kind);
  }

  /** A safe integer: i32 when it fits, else a long. */
  private int(v: number): void {
    if (v >= -INT32 && v < INT32) {
      this.u8(M.int);
      this.room(4);
      this.buf.writeInt32LE(v, this.pos);
      this.pos += 4;
      this.length += 4;
      return;
    }
    const digits: number[] = [];
    for (let a = Math.abs(v); a > 0; a = Math.floor(a / 32768)) digits.push(a % 32768);
    this.long(v < 0, digits);
  }

  private bigint(v: bigint): void {
    if (v >= -2147483648n && v < 2147483648n) return this.int(Number(v));
    const a = v < 0n ? -v : v;
    if (a < TWO_POW_64) {
      // One native store, then 15-bit digits from two u32 halves (nanosecond timestamps).
      SCRATCH.setBigUint64(0, a, true);
      const lo = SCRATCH.getUint32(0, true);
      const hi = SCRATCH.getUint32(4, true);
      const mid = (lo >>> 30) | ((hi & 0x0fffffff) << 2);
      const digits = [lo & 0x7fff, (lo >>> 15) & 0x7fff, mid & 0x7fff, mid >>> 15, hi >>> 28];
      while (digits[digits.length - 1] === 0) digits.pop();
      return this.long(v < 0n, digits);
    }
    const digits: number[] = [];
    for (let b = a; b > 0n; b >>= 15n) digits.push(Number(b & 32767n));
    this.long(v < 0n, digits);
  }

  /** marshal's long: the digit count, negative for a negative number, then the digits. */
  private long(negative: boolean, digits: number[]): void {
    this.u8(M.long);
    this.room(4 + 2 * digits.length);
    this.buf.writeInt32LE(negative ? -digits.length : digits.length, this.pos);
    this.pos += 4;
    for (const d of digits) {
      this.buf.writeUInt16LE(d, this.pos);
      this.pos += 2;
    }
    this.length += 4 + 2 * digits.length;
  }

  /** A byte value: inline, or — when long and there is an arena — a placeholder naming where it is. */
  private bytesValue(b: Uint8Array): void {
    const at = this.arena && b.length >= ARENA_MIN ? this.arena.put(b) : -1;
    if (at < 0) {
      this.u8(M.bytes);
      return this.bytes(b);
    }
    this.placeholder(PLACEHOLDER.arenaBytes, 4);
    this.int(at);
    this.int(b.length);
  }

  private bytes(b: Uint8Array): void {
    this.u32(b.length);
    if (b.length < OWN_PART) {
      this.room(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
    } else {
      this.seal();
      this.parts.push(b);
    }
    this.length += b.length;
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

  private u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
    this.length += 1;
  }

  private u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
    this.length += 4;
  }

  private f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    this.length += 8;
  }

  /** u32 byte length, then the UTF-8 of `s`. */
  private str(s: string): void {
    this.room(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, "utf8");
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
    this.length += 4 + n;
  }
}
