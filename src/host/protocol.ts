/**
 * The host protocol between Node and a Python worker (python/host_worker.py, host_channel.py and
 * host_codec.py are the other side: keep the numbers in step). It runs on two dedicated
 * descriptors, one per direction.
 *
 * A frame is: u32 length (of what follows), u8 kind, u32 call id, then at most one value.
 * Values are encoded differently in each direction, each time in the form the receiver decodes
 * fastest:
 *
 * - To Python (encode.ts): CPython's marshal format (version 2+ types only), which the worker
 *   decodes with one `marshal.loads` call. marshal has no type for a date or for bytes waiting
 *   in the arena: those travel as placeholder tuples `(Ellipsis, PLACEHOLDER.*, …)` — no JS value
 *   encodes to Ellipsis — and a frame holding any has the RESTORE bit set in its kind, so the
 *   worker walks only those values to put the real ones in.
 * - From Python (decode.ts): pyport's own tags (TAG), which keep the distinctions JS needs
 *   (safe integer or bigint, str-keyed object or Map) and reject every other Python type.
 *
 * All integers are little-endian.
 */

/**
 * Frame kinds. RELEASE goes both ways: the receiver has read the arena up to this offset
 * (arena.ts). READY (id 0) carries the worker's pid; ERR with id 0 means a module to preload
 * failed to import. HOST_CALL (name, args, kwargs) is Python calling a host function, numbered
 * by the worker; the host answers HOST_OK value or HOST_ERR {name, message, stack} with its id.
 */
export const KIND = {
  toPython: {
    call: 1,
    stream: 2,
    credit: 3,
    cancel: 4,
    exit: 5,
    release: 6,
    hostOk: 7,
    hostErr: 8,
  },
  fromPython: { ok: 1, err: 2, item: 3, done: 4, ready: 5, release: 6, hostCall: 7 },
} as const;

/** Set in a to-Python frame's kind when its value holds placeholders. */
export const RESTORE = 0x80;

/** What a placeholder `(Ellipsis, kind, ...)` stands for. */
export const PLACEHOLDER = {
  /** (Ellipsis, 0, offset, length): bytes in the arena. */
  arenaBytes: 0,
  /** (Ellipsis, 1, ms): a Date, as milliseconds since the epoch (an aware UTC datetime in Python). */
  date: 1,
} as const;

/**
 * Value tags from Python. One tag byte, then a fixed-size or length-prefixed body:
 *
 *   0 None   1 False   2 True   3 int (i64: safe integers)   4 big int (u32 len, decimal ASCII)
 *   5 float (f64)   6 str (u32 len, UTF-8)   7 bytes (u32 len, raw)   8 list (u32 n, items)
 *   9 object with str keys (u32 n, then n × (u32 len, UTF-8 key, value))   10 Map (u32 n, n × (key, value))
 *   11 Set (u32 n, items)   12 Date (f64 ms since the epoch, UTC)
 *   13 bytes in the arena (i64 offset, u32 len; see arena.ts)
 */
export const TAG = {
  none: 0,
  false: 1,
  true: 2,
  int: 3,
  bigint: 4,
  float: 5,
  str: 6,
  bytes: 7,
  list: 8,
  object: 9,
  map: 10,
  set: 11,
  date: 12,
  bytesAt: 13,
} as const;

/** The bytes of a frame before its value: length, kind, id. */
export const HEADER = 9;
