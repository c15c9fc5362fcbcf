/**
 * A fork server (python/host_forkserver.py): one interpreter that has imported what the workers
 * of one environment import (interpreter, pyport's worker code, the `preload` modules) and forks
 * each new worker from there. A forked worker costs about a millisecond of CPU where a new
 * interpreter costs tens, so a plugin that crashes in a loop barely takes CPU from the others,
 * and forked workers share the server's memory pages until they write to them.
 *
 * Contract: the workers started through a server have its interpreter, working directory,
 * environment, `path` and `preload` (Python.start's `forkServer` option checks all but the
 * environment). Needs the native addon (`npm run build`): ForkServer.start returns null without
 * it. A server that is still starting, failed to start, or died forks nothing: fork() returns
 * null and the caller spawns the worker as usual. A forked worker behaves as a spawned one (fds,
 * exit code and signal, stderr tail, nice value, memory limit) except that it shares the
 * server's hash seed. If the server dies, its workers' exits can no longer be reported: they
 * count as exited (with an unknown status) and are replaced.
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
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Directories put first on `sys.path`, as for the workers. */
  path?: string[];
  /** Modules the server imports before it forks anything, as the workers would. */
  preload?: string[];
  /** Called once if the server stops or fails while not closed, with the reason. */
  onStop?: (reason: string) => void;
}

/** The fork reply errors that mean the server is stuck or gone (anything else fails one fork). */
const BROKEN = new Set(["ETIMEDOUT", "EPIPE", "ECONNRESET", "EIO", "EBADF"]);
const STDERR_TAIL = 2048;

export class ForkServer {
  private state: "starting" | "ready" | "stopped" = "starting";
  private stderrTail = "";
  /** Resolves true once the server forks workers, false if it never will. */
  readonly ready: Promise<boolean>;
  private constructor(
    private readonly native: HostAddon,
    readonly pid: number,
    private control: number,
    private readonly opts: ForkServerOptions,
    sockets: { notes: net.Socket; stdout: net.Socket; stderr: net.Socket; exited: net.Socket },
  ) {
    let line = "";
    this.ready = new Promise<boolean>((resolve) => {
      // The first line says whether the server is ready; the stream's end before it, that it died.
      sockets.notes.on("data", (d: Buffer) => {
        line += d.toString("utf8");
        if (!line.includes("\n") || this.state !== "starting") return;
        sockets.notes.unref();
        if (line.startsWith("ready")) {
          this.state = "ready";
          resolve(true);
        } else {
          this.stop(`could not import its preloads: ${line.slice(6).trim()}`);
          resolve(false);
        }
      });
      sockets.notes.on("close", () => {
        resolve(false);
        this.stop(
          `exited before it was ready${this.stderrTail ? `: ${this.stderrTail.trim()}` : ""}`,
        );
      });
      sockets.exited.on("close", () => {
        native.reap(pid);
        this.stop(`exited${this.stderrTail ? `: ${this.stderrTail.trim()}` : ""}`);
      });
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

  /** Starts a server, or returns null when the native addon is not built. */
  static start(opts: ForkServerOptions): ForkServer | null {
    const native = process.env.PYPORT_HOST_SPAWN === "node" ? null : hostAddon();
    if (!native) return null;
    let python: string;
    let fds: [number, number, number, number, number, number];
    opts = { ...opts, path: (opts.path ?? []).map((p) => path.resolve(p)) };
    const args = [...bootArgs(), "--fork-server"];
    for (const p of opts.path!) args.push("--path", p);
    for (const m of opts.preload ?? []) args.push("--preload", m);
    try {
      python = givenInterpreter(opts.python); // as Python.start resolves it
      fds = native.spawnWorker(
        python,
        [python, ...args],
        envList(opts.env ?? process.env),
        opts.cwd ?? null,
        [],
      );
    } catch {
      return null; // the workers' own spawn reports why python cannot start
    }
    const [pid, control, notes, stdout, stderr, exited] = fds;
    const socket = (fd: number) => new net.Socket({ fd, readable: true, writable: false });
    return new ForkServer(
      native,
      pid,
      control,
      { ...opts, python },
      {
        notes: socket(notes),
        stdout: socket(stdout),
        stderr: socket(stderr),
        exited: socket(exited),
      },
    );
  }

  /** Whether workers with these options may come from this server (see the contract above). */
  serves(w: { python: string; cwd?: string; path: string[]; preload: string[] }): boolean {
    const same = (a: string[], b: string[] | undefined) =>
      a.length === (b ?? []).length && a.every((x, i) => x === b![i]);
    return (
      w.python === this.opts.python &&
      w.cwd === this.opts.cwd &&
      same(w.path, this.opts.path) &&
      same(w.preload, this.opts.preload)
    );
  }

  /**
   * A worker forked with host_worker.py's `args` (after the two fds; --path is left out, the
   * server has it) and `inherit` on its fds 5 and up; null when the server cannot fork it now.
   */
  fork(args: string[], inherit: number[]): WorkerProcess | null {
    if (this.state !== "ready") return null;
    const argv: string[] = [];
    for (let i = 0; i < args.length; i += 2)
      if (args[i] !== "--path") argv.push(args[i], args[i + 1]);
    const request = Buffer.from(JSON.stringify({ op: "fork", argv, fds: 5 + inherit.length }));
    try {
      const fds = this.native.forkWorker(this.control, request, inherit);
      return nativeProcess(fds, (pid) => this.send({ op: "reap", pid }));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (BROKEN.has(code)) {
        this.stop(`stopped answering (${(err as Error).message})`);
        this.kill();
      }
      return null;
    }
  }

  /** Forks no more; the server leaves once the workers it forked have exited. */
  close(): void {
    if (this.state === "stopped") return;
    this.send({ op: "close" });
    this.stop();
  }

  private send(message: object): void {
    if (this.control < 0) return; // stopped: the server reaps by itself, or is gone
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

  /** Forks no more and lets go of the control socket (its end tells the server to leave). */
  private stop(reason?: string): void {
    if (this.state === "stopped") return;
    this.state = "stopped";
    fs.closeSync(this.control);
    this.control = -1;
    if (reason) this.opts.onStop?.(reason);
  }

  private kill(): void {
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}
