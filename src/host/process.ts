/**
 * Starting a worker process: with native/host.c's spawnWorker (posix_spawn, ~0.4 ms) when the
 * addon was built, else with Node's child_process.spawn (a fork of this process, 1.5–4 ms).
 * Either way the worker has /dev/null on fd 0, its stdout and stderr on pipes, the protocol on
 * fds 3 (to it) and 4 (from it), and the descriptors in `inherit` on fds 5 and up.
 * `PYPORT_HOST_SPAWN=node` uses Node's spawn even when the addon is there.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { hostAddon, type HostAddon } from "../util/addon.js";

export interface WorkerProcess {
  /** undefined when it could not be started (onExit then reports why). */
  readonly pid: number | undefined;
  readonly toPython: Writable;
  readonly fromPython: Readable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The descriptor fromPython reads, for pollRead. */
  readonly fromFd: number | undefined;
  /** Sends a signal, unless the process is known to be gone. */
  kill(signal: NodeJS.Signals): void;
  /**
   * Called once, when the process has exited or could not be started: always from a later turn
   * of the event loop, so the owner sets it right after the start.
   */
  onExit?: (code: number | null, signal: NodeJS.Signals | null, error?: Error) => void;
}

export interface SpawnOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  inherit: number[];
}

export interface PathStat {
  isDirectory: boolean;
  dev: number;
  ino: number;
  size: number;
  /** Whole milliseconds. */
  mtimeMs: number;
}

/**
 * stat(2) of `file`, or null when there is no such file. Through the addon when it was built:
 * fs.statSync's first use in a process costs ~0.3 ms, and the host stats files before it spawns
 * the first worker.
 */
export function statPath(file: string): PathStat | null {
  const native = hostAddon();
  if (native) {
    const s = native.statPath(file);
    return s && { isDirectory: s[0] === 1, dev: s[1], ino: s[2], size: s[3], mtimeMs: s[4] };
  }
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st
    ? {
        isDirectory: st.isDirectory(),
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtimeMs: Math.trunc(st.mtimeMs),
      }
    : null;
}

/** Starts `python` with `args`; never throws for a process that cannot start (onExit reports it). */
export function spawnWorkerProcess(
  python: string,
  args: string[],
  opts: SpawnOptions,
): WorkerProcess {
  const native = process.env.PYPORT_HOST_SPAWN === "node" ? null : hostAddon();
  if (native) {
    const started = spawnNative(native, python, args, opts);
    if (started) return started;
  }
  return spawnWithNode(python, args, opts);
}

let signalNames: Map<number, NodeJS.Signals> | undefined;
function signalName(n: number): NodeJS.Signals | null {
  signalNames ??= new Map(
    Object.entries(constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
  );
  return signalNames.get(n) ?? null;
}

/** `env` as "KEY=value" strings. */
export function envList(env: NodeJS.ProcessEnv): string[] {
  // Plain loops: this runs before the first worker exists, where every first use of a builtin
  // costs tens of µs.
  const envp: string[] = [];
  for (const k of Object.keys(env)) {
    const v = env[k];
    if (v !== undefined) envp.push(k + "=" + v);
  }
  return envp;
}

/** null when Node's spawn should do it: a working directory before glibc 2.29, or a NUL in a string (Node's error explains it). */
function spawnNative(
  native: HostAddon,
  python: string,
  args: string[],
  opts: SpawnOptions,
): WorkerProcess | null {
  const envp = envList(opts.env);
  for (const list of [args, envp, [python, opts.cwd ?? ""]])
    for (const s of list) if (s.indexOf("\0") >= 0) return null;
  let fds: [number, number, number, number, number, number];
  try {
    fds = native.spawnWorker(python, [python, ...args], envp, opts.cwd ?? null, opts.inherit);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOSYS") return null;
    const failed: WorkerProcess = {
      pid: undefined,
      toPython: nothing(),
      fromPython: nothing(),
      stdout: nothing(),
      stderr: nothing(),
      fromFd: undefined,
      kill: () => undefined,
    };
    process.nextTick(() => failed.onExit?.(null, null, err as Error));
    return failed;
  }
  return nativeProcess(fds, (pid) => native.reap(pid));
}

/**
 * A WorkerProcess on the descriptors the addon returned ([pid, to, from, stdout, stderr,
 * exited]). `reap(pid)` runs once the exit status has been read: until then the pid cannot be
 * reused, so kill() can never hit another process.
 */
export function nativeProcess(
  fds: [number, number, number, number, number, number],
  reap: (pid: number) => void,
): WorkerProcess {
  const [pid, to, from, out, errFd, exitFd] = fds;
  let gone = false;
  let proc: WorkerProcess;
  const status: Buffer[] = [];
  const exited = new net.Socket({ fd: exitFd, readable: true, writable: false });
  exited.on("data", (chunk: Buffer) => status.push(chunk));
  exited.on("error", () => undefined); // then "close" follows, reporting an unknown status
  exited.on("close", () => {
    const s = Buffer.concat(status);
    const [code, signal] = s.length >= 8 ? [s.readInt32LE(0), s.readInt32LE(4)] : [-1, 0];
    if (s.length < 8) {
      // Nobody can report its exit any more (a fork server died): it may still run, unreaped
      // (so its pid is its own); it must not outlive its Worker.
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    gone = true;
    reap(pid); // only now may the pid be reused: kill() below can never hit another process
    proc.onExit?.(code >= 0 ? code : null, signal ? signalName(signal) : null);
  });
  return (proc = {
    pid,
    toPython: new net.Socket({ fd: to, readable: false, writable: true }),
    fromPython: new net.Socket({ fd: from, readable: true, writable: false }),
    stdout: new net.Socket({ fd: out, readable: true, writable: false }),
    stderr: new net.Socket({ fd: errFd, readable: true, writable: false }),
    fromFd: from,
    kill: (signal) => {
      try {
        if (!gone) process.kill(pid, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err; // reaped by someone else: gone all the same
      }
    },
  });
}

function spawnWithNode(python: string, args: string[], opts: SpawnOptions): WorkerProcess {
  const child = spawn(python, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", ...opts.inherit],
  });
  child.on("exit", (code, signal) => proc.onExit?.(code, signal));
  child.on("error", (err) => proc.onExit?.(null, null, err));
  const fromPython = child.stdio[4] as Readable;
  const proc: WorkerProcess = {
    pid: child.pid,
    toPython: child.stdio[3] as Writable,
    fromPython,
    stdout: child.stdout!,
    stderr: child.stderr!,
    fromFd: (fromPython as unknown as { _handle?: { fd?: number } })._handle?.fd,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  return proc;
}

/** A stream with nothing in it, for a process that never started. */
function nothing(): net.Socket {
  const s = new net.Socket();
  s.destroy();
  return s;
}
