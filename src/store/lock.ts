/**
 * Cache locks: flock(2) on `<entry>.lock`, the same lock files and protocol as the onefile stub
 * (native/onefile.c lock_entry). The kernel releases a lock when its holder dies, however it
 * died, so there are no stale locks to detect and no takeover races. Waiting sleeps between tries
 * (5 ms growing to 100 ms), never spins, and is bounded: on timeout the error names the lock file
 * and the pid written into it by the holder.
 *
 * A lock file may be removed by its exclusive holder (cache prune): whoever then gets the lock
 * of the removed file sees that the path no longer names it, and locks the new file instead.
 *
 * flock comes from pyport's addon (native/host.c). Without it (no C compiler when pyport was
 * built), a `sh` child opens the file, locks it with util-linux's flock(1) and holds it until
 * released; the stat of its descriptor gives the same check. `PYPORT_LOCK_WITH=flock-tool`
 * chooses that path even with the addon (tests use it to run both side by side).
 */
import { ifExists } from "../util/fs.js";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import * as fsp from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { hasErrno, PyportError } from "../errors.js";
import { hostAddon } from "../util/addon.js";

export interface LockOptions {
  timeoutMs?: number;
  /** A shared lock (readers, running onefiles) instead of an exclusive one. */
  shared?: boolean;
}

export interface HeldLock {
  readonly file: string;
  /** Removes the lock file (only while held exclusively), then releases the lock. */
  releaseAndRemove(): Promise<void>;
  release(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

async function sameFile(file: string, dev: number, ino: number): Promise<boolean> {
  try {
    const st = await fsp.stat(file);
    return st.dev === dev && st.ino === ino;
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return false;
    throw err;
  }
}

/** One try with the addon: a held lock, null when busy, "retry" when the file was replaced. */
async function tryNative(
  file: string,
  shared: boolean,
  flockNb: (fd: number, exclusive: number) => boolean,
): Promise<HeldLock | null | "retry"> {
  const { O_RDWR, O_CREAT, O_NOFOLLOW } = fsConstants;
  const handle = await fsp.open(file, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
  let held = false;
  try {
    if (!flockNb(handle.fd, shared ? 0 : 1)) return null;
    const st = await handle.stat();
    if (!(await sameFile(file, st.dev, st.ino))) return "retry";
    held = true;
  } finally {
    if (!held) await handle.close();
  }
  if (!shared) {
    await handle.truncate(0);
    await handle.write(`${process.pid}\n`, 0);
  }
  return {
    file,
    release: () => handle.close(),
    async releaseAndRemove() {
      await fsp.rm(file, { force: true });
      await handle.close();
    },
  };
}

/** One try without the addon: a `sh` child that holds the lock with flock(1) until released. */
async function tryWithFlockTool(file: string, shared: boolean): Promise<HeldLock | null | "retry"> {
  // Exit 127: no flock(1) (without this check its "command not found" would look like a held
  // lock, waited on until the timeout); 2: the lock file cannot be opened; 75: someone holds it.
  const script =
    'command -v flock >/dev/null || exit 127; exec 9<>"$1" || exit 2; flock -n ' +
    (shared ? "-s" : "-x") +
    ' 9 || exit 75; stat -L -c "%d %i" /dev/fd/9 || exit 2; exec cat >/dev/null';
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(
    "sh",
    ["-c", script, "sh", file],
    {
      stdio: ["pipe", "pipe", "ignore"],
    },
  );
  const first = await new Promise<{ line?: string; code?: number | null }>((resolve) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve({ line: out.split("\n")[0] });
    });
    child.on("error", () => resolve({ code: 127 }));
    child.on("exit", (code) => resolve({ code }));
  });
  const release = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.stdin.end();
    });
  if (first.line === undefined) {
    if (first.code === 75) return null;
    if (first.code === 2)
      throw new PyportError("E_TOOL", `cannot open the lock file ${file}`, {
        hint: "Check that the cache directory is writable (PYPORT_CACHE chooses another).",
      });
    throw new PyportError("E_TOOL", `cannot lock ${file}: flock(1) is not available`, {
      hint: "Install util-linux's flock, or rebuild pyport with a C compiler (npm run build).",
    });
  }
  const [dev, ino] = first.line.split(" ").map(Number);
  if (!(await sameFile(file, dev, ino))) {
    await release();
    return "retry";
  }
  return {
    file,
    release,
    async releaseAndRemove() {
      await fsp.rm(file, { force: true });
      await release();
    },
  };
}

/** One attempt: the lock, or null when someone else holds it. */
export async function tryLock(file: string, opts: LockOptions = {}): Promise<HeldLock | null> {
  const native = process.env.PYPORT_LOCK_WITH === "flock-tool" ? null : hostAddon();
  for (;;) {
    const r = native
      ? await tryNative(file, opts.shared ?? false, native.flockNb)
      : await tryWithFlockTool(file, opts.shared ?? false);
    if (r !== "retry") return r;
  }
}

/** Waits for the lock (sleeping between tries) until `timeoutMs`. */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<HeldLock> {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const start = Date.now();
  for (let sleep = 5; ; sleep = Math.min(100, sleep * 1.5)) {
    const lock = await tryLock(file, opts);
    if (lock) return lock;
    if (Date.now() - start > timeout) {
      const holder = (await ifExists(fsp.readFile(file, "utf8"), "")).trim();
      throw new PyportError(
        "E_LOCK_TIMEOUT",
        `timed out after ${Math.round(timeout / 1000)} s waiting for lock ${file}${/^\d+$/.test(holder) ? ` held by pid ${holder}` : ""}`,
        {
          hint: "Another pyport process (or a running onefile) is using the same cache entry. Wait for it to finish; the lock is released when it exits.",
        },
      );
    }
    await new Promise((res) => setTimeout(res, sleep));
  }
}

/** Runs `fn` while holding the lock `file` exclusively; always releases it. */
export async function withLock<T>(
  file: string,
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(file, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
