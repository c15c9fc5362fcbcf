/**
 * A fork server (python/host_forkserver.py): one interpreter that has imported what the workers
 * of one environment import (interpreter, pyport's worker code, the `preload` modules) and forks
 * each new worker from there. A forked worker costs about a millisecond of CPU where a new
 * interpreter costs tens, so a plugin that crashes in a loop barely takes CPU from the others,
 * and forked workers share the server's memory pages until they write to them.
 *
 * Contract: the workers started through a server have its interpreter, `path` and `preload`
 * (Python.start's `forkServer` option checks); each gets its own working directory and
 * environment, set after the fork — so what Python reads from the environment only at start-up
 * (the locale's encodings; PYTHON* variables, which `-I` ignores anyway) is the server's.
 * Needs the native addon (`npm run build`): ForkServer.start returns null without it. While the
 * server starts, or once it has failed or been closed, fork() returns null and the caller spawns
 * the worker as usual. A server process that dies after it was ready is started again (up to
 * MAX_RESTARTS times); its workers' exits can no longer be reported, so they count as exited
 * (with an unknown status) and are replaced. A forked worker behaves as a spawned one (fds, exit
 * code and signal, stderr tail, nice value, memory limit) except that it shares the server's
 * hash seed.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { hostAddon, type HostAddon } from "../util/addon.js";
import { givenInterpreter } from "./interpreter.js";
import { bootArgs } from "./launch.js";
import { envList, nativeProcess, type WorkerProcess } from "./process.js";

export interface ForkServerOptions {
  python: string;
  /** Directories put first on `sys.path`, as for the workers. */
  path?: string[];
  /** Modules the server imports before it forks anything, as the workers would. */
  preload?: string[];
  /** The server's own working directory and environment (each worker gets its own). */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Told when the server stops other than by close(): what happened and what follows. */
  onProblem?: (message: string) => void;
}

/** Times a server process that died after it was ready is started again. */
export const MAX_RESTARTS = 3;
/** The fork reply errors that mean the server is stuck or gone (anything else fails one fork). */
const BROKEN = new Set(["ETIMEDOUT", "EPIPE", "ECONNRESET", "EIO", "EBADF"]);
const STDERR_TAIL = 2048;
/** The largest fork request the addon sends (bytes; most of it is the environment). */
const MAX_REQUEST = 60_000;

export class ForkServer {
  private proc?: ServerProcess;
  private restarts = 0;
  private closed = false;

  private constructor(
    private readonly native: HostAddon,
    private readonly opts: ForkServerOptions,
  ) {
    this.launch();
  }

  /** Starts a server, or returns null when the native addon is not built. */
  static start(opts: ForkServerOptions): ForkServer | null {
    const native = process.env.PYPORT_HOST_SPAWN === "node" ? null : hostAddon();
    if (!native) return null;
    let python: string;
    try {
      python = givenInterpreter(opts.python); // as Python.start resolves it
    } catch {
      return null; // the workers' own start reports why
    }
    const paths = (opts.path ?? []).map((p) => path.resolve(p));
    return new ForkServer(native, { ...opts, python, path: paths });
  }

  /** Resolves true once the current server process forks workers, false if it never will. */
  get ready(): Promise<boolean> {
    return this.proc?.ready ?? Promise.resolve(false);
  }

  /** The current server process's pid (undefined when there is none). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Whether workers with these options may come from this server (see the contract above). */
  serves(w: { python: string; path: string[]; preload: string[] }): boolean {
    const same = (a: string[], b: string[] | undefined) =>
      a.length === (b ?? []).length && a.every((x, i) => x === b![i]);
    return (
      w.python === this.opts.python &&
      same(w.path, this.opts.path) &&
      same(w.preload, this.opts.preload)
    );
  }

  /**
   * A worker forked with host_worker.py's `args` (after the two fds; --path is left out, the
   * server has it), `inherit` on its fds 5 and up, in `where`'s working directory and
   * environment; null when the server cannot fork it now.
   */
  fork(
    args: string[],
    inherit: number[],
    where: { cwd?: string; env: NodeJS.ProcessEnv },
  ): WorkerProcess | null {
    const proc = this.proc;
    if (!proc?.isReady) return null;
    const argv: string[] = [];
    for (let i = 0; i < args.length; i += 2)
      if (args[i] !== "--path") argv.push(args[i], args[i + 1]);
    const request = Buffer.from(
      JSON.stringify({ op: "fork", argv, fds: 5 + inherit.length, cwd: where.cwd, env: where.env }),
    );
    if (request.length > MAX_REQUEST) return null; // an environment too large to send: spawned
    try {
      const fds = this.native.forkWorker(proc.control, request, inherit);
      return nativeProcess(fds, (pid) => proc.send({ op: "reap", pid }));
    } catch (err) {
      if (BROKEN.has((err as NodeJS.ErrnoException).code ?? ""))
        proc.kill(`stopped answering (${(err as Error).message})`);
      return null;
    }
  }

  /** Forks no more; the server leaves once the workers it forked have exited. */
  close(): void {
    this.closed = true;
    this.proc?.close();
  }

  private launch(): void {
    const proc = ServerProcess.spawn(this.native, this.opts);
    this.proc = proc ?? undefined;
    if (!proc) return this.opts.onProblem?.("could not be started; workers are spawned instead");
    proc.onDeath = (reason, wasReady) => {
      if (this.proc !== proc) return;
      this.proc = undefined;
      if (this.closed) return;
      const again = wasReady && this.restarts < MAX_RESTARTS;
      this.opts.onProblem?.(
        `${reason}; ` +
          (again
            ? `starting it again (${++this.restarts} of ${MAX_RESTARTS}); workers are spawned meanwhile`
            : "workers are spawned from now on"),
      );
      if (again) this.launch();
    };
  }
}

/** One server process: its control socket, its first line (ready or not), its end. */
class ServerProcess {
  isReady = false;
  /** Called once when it has exited, failed to start, or was killed (not after close()). */
  onDeath?: (reason: string, wasReady: boolean) => void;
  readonly ready: Promise<boolean>;
  private stderrTail = "";
  private dead = false;

  private constructor(
    readonly pid: number,
    /** The control socket (fd 3 on the server's side); -1 once let go. */
    public control: number,
    sockets: { notes: net.Socket; stdout: net.Socket; stderr: net.Socket; exited: net.Socket },
    reap: () => void,
  ) {
    let line = "";
    const tail = () => (this.stderrTail ? `: ${this.stderrTail.trim()}` : "");
    this.ready = new Promise<boolean>((resolve) => {
      // The first line says whether the server is ready; the stream's end before it, that it died.
      sockets.notes.on("data", (d: Buffer) => {
        line += d.toString("utf8");
        if (!line.includes("\n") || this.isReady || this.dead) return;
        sockets.notes.unref();
        if (line.startsWith("ready")) {
          this.isReady = true;
          resolve(true);
        } else {
          resolve(false);
          this.die(`could not import its preloads: ${line.slice(6).trim()}`);
        }
      });
      sockets.notes.on("close", () => {
        resolve(false);
        if (!this.isReady) this.die(`exited before it was ready${tail()}`);
      });
    });
    sockets.exited.on("close", () => {
      reap();
      this.die(`exited${tail()}`);
    });
    sockets.stderr.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString("utf8")).slice(-STDERR_TAIL);
    });
    sockets.stdout.resume();
    sockets.exited.resume(); // its end is the news (the status itself is not needed)
    // The workers' own handles keep this process alive, never the server's (but for its first
    // line: ready can be awaited).
    for (const s of [sockets.stdout, sockets.stderr, sockets.exited]) s.unref();
    for (const s of Object.values(sockets)) s.on("error", () => undefined); // "close" follows
  }

  static spawn(native: HostAddon, opts: ForkServerOptions): ServerProcess | null {
    const args = [...bootArgs(), "--fork-server"];
    for (const p of opts.path ?? []) args.push("--path", p);
    for (const m of opts.preload ?? []) args.push("--preload", m);
    let fds: [number, number, number, number, number, number];
    try {
      fds = native.spawnWorker(
        opts.python,
        [opts.python, ...args],
        envList(opts.env ?? process.env),
        opts.cwd ?? null,
        [],
      );
    } catch {
      return null;
    }
    const [pid, control, notes, stdout, stderr, exited] = fds;
    const socket = (fd: number) => new net.Socket({ fd, readable: true, writable: false });
    const sockets = {
      notes: socket(notes),
      stdout: socket(stdout),
      stderr: socket(stderr),
      exited: socket(exited),
    };
    return new ServerProcess(pid, control, sockets, () => native.reap(pid));
  }

  /** Sends one message (4-byte length, JSON); nothing once the control socket was let go. */
  send(message: object): void {
    if (this.control < 0) return;
    const body = Buffer.from(JSON.stringify(message));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(body.length);
    try {
      // A few bytes on a socket the server reads whenever it is idle: never a partial write.
      fs.writeSync(this.control, Buffer.concat([head, body]));
    } catch {
      // gone: its exit is being reported
    }
  }

  /** Forks no more; the server reaps by itself and leaves once its workers have exited. */
  close(): void {
    this.send({ op: "close" });
    this.onDeath = undefined;
    this.letGo();
  }

  /** Kills a server that stopped answering; its exit then reports `reason`. */
  kill(reason: string): void {
    this.die(reason);
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    const wasReady = this.isReady;
    this.isReady = false;
    this.letGo();
    this.onDeath?.(reason, wasReady);
  }

  private letGo(): void {
    if (this.control < 0) return;
    fs.closeSync(this.control);
    this.control = -1;
    this.isReady = false;
  }
}
