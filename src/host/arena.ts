/**
 * Large byte values between the host and a worker travel through a shared file, not the socket:
 * the sender writes the bytes into the file with one pwrite and sends a small frame naming
 * where they are; the receiver reads them with one pread straight into the value it returns.
 * That is one copy on each side and no socket-buffer ping-pong (an 8 MiB round trip takes
 * about 7 ms instead of 10 here, and varies far less).
 *
 * Each direction has its own file, made here by the host without a name (nothing is left
 * behind, even after a crash) and inherited by the worker as a descriptor: an anonymous memory
 * file, or one in /dev/shm (memory) or the temporary directory, unlinked at once.
 *
 * Reuse: a writer appends at the end of its file; values are read in the order they were
 * written, and the reader reports, in a release frame, the offset it has read up to. When that
 * reaches the end of what was written, the writer starts again at offset 0, and shrinks the file
 * first if it grew past KEEP_BYTES. A value written for a frame that then failed to encode is
 * taken back (the writer rewinds); one the reader never read (its frame failed to decode) is
 * passed over by the next value read.
 * python/host_codec.py (Arena) is the other side: keep the two in step.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostAddon } from "../util/addon.js";

/** Byte values at least this long go through the arena. */
export const ARENA_MIN = 1 << 18;
/** A file larger than this is truncated once everything in it has been read (the memory is not kept). */
const KEEP_BYTES = 16 << 20;

let made = 0;
/**
 * Two read-write files without names (host → worker, worker → host), or null when none can be
 * made: anonymous memory files from the native addon when it was built, else files in /dev/shm
 * (or the temporary directory), each created under a fresh name with O_EXCL and mode 0600 —
 * never opening what another user put there, even in a world-writable directory — and unlinked
 * at once.
 */
export function openArenaFiles(): [number, number] | null {
  try {
    const pair = hostAddon()?.memfdPair();
    if (pair) return pair;
  } catch {
    // no memfd_create here (Linux before 3.17, or a seccomp filter): named files below
  }
  for (const dir of ["/dev/shm", os.tmpdir()]) {
    const fds: number[] = [];
    let named: string | undefined;
    try {
      for (let i = 0; i < 2; i++) {
        const file = path.join(
          dir,
          `pyport-arena-${process.pid}-${made++}-${Math.random().toString(36).slice(2, 10)}`,
        );
        fds.push(fs.openSync(file, "wx+", 0o600));
        named = file;
        fs.unlinkSync(file);
        named = undefined;
      }
      return [fds[0], fds[1]];
    } catch {
      fds.forEach((fd) => fs.closeSync(fd));
      if (named) fs.rmSync(named, { force: true });
    }
  }
  return null;
}

/** The sending side of one arena file. */
export class ArenaWriter {
  /** Where the next value goes. */
  end = 0;
  private size = 0;

  constructor(readonly fd: number) {}

  /** Writes `b` at the end of the file: its offset, or -1 when it could not be written (send it inline then). */
  put(b: Uint8Array): number {
    const at = this.end;
    try {
      for (let n = 0; n < b.length;) n += fs.writeSync(this.fd, b, n, b.length - n, at + n);
    } catch {
      return -1; // e.g. ENOSPC: the file may have grown, which the next truncation undoes
    }
    this.end += b.length;
    this.size = Math.max(this.size, this.end);
    return at;
  }

  /** Takes back what was put from offset `to` on: it will never be sent. */
  rewind(to: number): void {
    this.end = Math.min(this.end, to);
  }

  /** The reader has read everything before `offset`. */
  readUpTo(offset: number): void {
    if (offset < this.end) return;
    this.end = 0;
    if (this.size > KEEP_BYTES) {
      fs.ftruncateSync(this.fd, 0);
      this.size = 0;
    }
  }
}

/** The receiving side of one arena file: remembers how far it has read until that is reported. */
export class ArenaReader {
  readTo = 0;
  unreported = false;

  constructor(readonly fd: number) {}

  read(offset: number, length: number): Uint8Array {
    const out = Buffer.allocUnsafeSlow(length);
    for (let n = 0; n < length;) {
      const k = fs.readSync(this.fd, out, n, length - n, offset + n);
      if (k === 0)
        throw new Error(
          `host protocol: arena value at ${offset} (${length} bytes) runs past the end of the file`,
        );
      n += k;
    }
    this.readTo = offset + length;
    this.unreported = true;
    return new Uint8Array(out.buffer, out.byteOffset, length);
  }
}
