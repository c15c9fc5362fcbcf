/**
 * One Python worker process (python/host_worker.py, started by python/host_boot.py). The
 * protocol runs on fds 3 (to Python) and 4 (from Python); the worker's stdout and stderr go to
 * the host's streams or an `onOutput` callback, and the last few KiB of stderr are kept for
 * crash reports. Calls are written as they
 * come (pipelined) and answered by id. When the process exits, every unanswered call is rejected
 * with WorkerCrashedError at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { bucketDir, BUCKETS } from "../store/cache.js";
import { pythonAsset } from "../util/assets.js";
import { decodeFrame, encodeFrame, FrameReader, KIND, warmUp } from "./codec.js";
import { PythonError, WorkerCrashedError, type PythonErrorInfo } from "./errors.js";

export type OutputHandler = (output: { stream: "stdout" | "stderr"; text: string; worker: number }) => void;

export interface WorkerOptions {
  python: string;
  index: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  path: string[];
  preload: string[];
  memoryLimitMb?: number;
  /** Coroutine calls a worker runs at once. */
  concurrency?: number;
  /** Microseconds the worker polls for the next call before sleeping, while calls come back to back. */
  spinUs?: number;
  onOutput?: OutputHandler;
}

/** An unanswered call. Streams get `item` for each value, then `resolve(undefined)` when done. */
export interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  item?: (value: unknown) => void;
}

const STDERR_TAIL = 4096;

let codePrefix: string | undefined;
/** Where host_boot.py caches the worker's compiled code: the cache's host bucket, by source hash. */
function workerCodePrefix(): string {
  codePrefix ??= path.join(bucketDir(BUCKETS.host), createHash("sha256").update(fs.readFileSync(pythonAsset("host_worker.py"))).digest("hex").slice(0, 24));
  return codePrefix;
}

export class Worker {
  readonly pending = new Map<number, Pending>();
  stderrTail = "";
  exited = false;
  readonly done: Promise<void>;
  /** Called once when the process is gone (after every pending call was rejected). */
  onExit?: () => void;
  private readonly child: ChildProcess;
  private readonly toPython: Writable;
  private readonly frames = new FrameReader();
  private readyWaiter?: { resolve: () => void; reject: (e: Error) => void };
  /** Frames written since the current cork began (0: not corked). */
  private corked = 0;

  private constructor(readonly opts: WorkerOptions) {
    const args = ["-I", pythonAsset("host_boot.py"), pythonAsset("host_worker.py"), workerCodePrefix(), "3", "4"];
    for (const p of opts.path) args.push("--path", p);
    for (const m of opts.preload) args.push("--preload", m);
    if (opts.memoryLimitMb) args.push("--memory-mb", String(opts.memoryLimitMb));
    if (opts.concurrency) args.push("--concurrency", String(opts.concurrency));
    if (opts.spinUs) args.push("--spin-us", String(opts.spinUs));
    this.child = spawn(opts.python, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] });
    warmUp(); // while the interpreter starts
    this.toPython = this.child.stdio[3] as Writable;
    this.toPython.on("error", () => undefined); // EPIPE when the worker dies: reported by the exit handler
    const fromPython = this.child.stdio[4] as Readable;
    fromPython.on("data", (chunk: Buffer) => this.onData(chunk));
    fromPython.on("error", () => undefined);
    const forward = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const text = chunk.toString();
      if (stream === "stderr") this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      if (opts.onOutput) opts.onOutput({ stream, text, worker: opts.index });
      else (stream === "stdout" ? process.stdout : process.stderr).write(chunk);
    };
    this.child.stdout!.on("data", forward("stdout"));
    this.child.stderr!.on("data", forward("stderr"));
    const stderrEnded = new Promise<void>((r) => this.child.stderr!.on("close", r));
    this.done = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
        if (this.exited) return;
        this.exited = true;
        // Give stderr a moment to drain so the crash report has the last words (bounded: a
        // grandchild may hold the pipe open).
        void Promise.race([stderrEnded, new Promise((r) => setTimeout(r, 30))]).then(() => {
          const why = spawnError ? `could not start ${opts.python}: ${spawnError.message}` : signal ? `killed by ${signal}` : `exited with code ${code}`;
          const err = new WorkerCrashedError(`Python worker ${opts.index} (pid ${this.child.pid ?? "?"}) ${why}${this.stderrTail ? `; stderr ends with:\n${this.stderrTail.trimEnd().split("\n").slice(-8).join("\n")}` : ""}`, code, signal, this.stderrTail);
          this.readyWaiter?.reject(err);
          for (const p of this.pending.values()) p.reject(err);
          this.pending.clear();
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
          fromPython.destroy();
          this.toPython.destroy();
          this.onExit?.();
          resolve();
        });
      };
      this.child.on("exit", (code, signal) => finish(code, signal));
      this.child.on("error", (err) => finish(null, null, err));
    });
  }

  /** Starts a worker and waits until it has preloaded its modules and said it is ready. */
  static async start(opts: WorkerOptions): Promise<Worker> {
    const w = new Worker(opts);
    await new Promise<void>((resolve, reject) => (w.readyWaiter = { resolve, reject }));
    return w;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private onData(chunk: Buffer): void {
    const from = KIND.fromPython;
    for (const body of this.frames.push(chunk)) {
      const { kind, id, value } = decodeFrame(body);
      if (kind === from.ready) {
        const waiter = this.readyWaiter;
        this.readyWaiter = undefined;
        const error = (value as { error?: PythonErrorInfo }).error;
        if (error) {
          waiter?.reject(new PythonError(error));
          this.kill();
        } else waiter?.resolve();
        continue;
      }
      const p = this.pending.get(id);
      if (!p) continue; // a call whose caller gave up on it
      if (kind === from.item) {
        p.item?.(value);
        continue;
      }
      this.pending.delete(id);
      if (kind === from.err) p.reject(new PythonError(value as PythonErrorInfo));
      else p.resolve(kind === from.ok ? value : undefined);
    }
  }

  /** Sends a call (a stream when `credit` is given: it may send that many items); its reply settles `pending`. */
  send(id: number, target: string, args: unknown[], kwargs: Record<string, unknown>, pending: Pending, credit?: number): void {
    if (this.exited) throw new WorkerCrashedError(`Python worker ${this.opts.index} has exited`, null, null, this.stderrTail);
    const to = KIND.toPython;
    const parts = credit === undefined ? encodeFrame(to.call, id, [target, args, kwargs]) : encodeFrame(to.stream, id, [target, args, kwargs, credit]); // may throw TypeError: then nothing was sent
    this.pending.set(id, pending);
    this.write(parts);
  }

  /**
   * Writes are corked until the end of the current tick, so calls made together leave in one
   * writev — or every 64 frames, so the worker can start on a long burst while the rest is encoded.
   */
  private write(parts: Uint8Array[], then?: () => void): void {
    if (!this.corked) {
      this.toPython.cork();
      process.nextTick(() => {
        if (this.corked) this.toPython.uncork();
        this.corked = 0;
      });
    } else if (this.corked % 64 === 0) {
      this.toPython.uncork();
      this.toPython.cork();
    }
    this.corked++;
    parts.forEach((p, i) => this.toPython.write(p, i === parts.length - 1 ? then : undefined));
  }

  /** Lets a stream send `n` more items. */
  credit(id: number, n: number): void {
    if (!this.exited) this.write(encodeFrame(KIND.toPython.credit, id, n));
  }

  /**
   * Stops a call: the worker cancels its task, or — for code running on its thread — raises
   * KeyboardInterrupt on the SIGINT that follows the cancel message.
   */
  cancel(id: number): void {
    if (this.exited) return;
    this.write(encodeFrame(KIND.toPython.cancel, id), () => {
      if (!this.exited) this.child.kill("SIGINT");
    });
  }

  /** Forgets a call whose caller gave up on it; a late reply is dropped. */
  forget(id: number): void {
    this.pending.delete(id);
  }

  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }

  /** Asks the worker to exit after its current work; kills it if it has not within `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.exited) return this.done;
    this.toPython.end(Buffer.concat(encodeFrame(KIND.toPython.exit, 0))); // end() uncorks
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.done;
    clearTimeout(timer);
  }
}
