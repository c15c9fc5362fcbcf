/**
 * Run Python from Node: `const py = await Python.start(); await py.call("math:sqrt", [2])`.
 *
 * A pool of worker processes (python/host_worker.py) started with a pyport runtime or bundle,
 * an interpreter given by path, or — when none is given — a portable runtime pyport builds in its
 * cache from the newest CPython on the machine. Never a silent PATH lookup.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { discoverPythons } from "../python/discover.js";
import { cachedRuntime } from "../runtime/create.js";
import { AbortError, CallTimeoutError, callSite } from "./errors.js";
import { Worker, type OutputHandler, type Pending } from "./worker.js";

export interface StartOptions {
  /** A pyport runtime or bundle directory, or an interpreter's path. Default: a runtime pyport manages. */
  python?: string;
  /** Worker processes (default 1). Calls go to the least busy one. */
  workers?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Directories put first on `sys.path`. */
  path?: string[];
  /** Modules imported when each worker starts. */
  preload?: string[];
  /** Address-space limit per worker (RLIMIT_AS); allocations beyond it raise MemoryError. */
  memoryLimitMb?: number;
  /** Receives the workers' stdout/stderr; default: written to this process's stdout/stderr. */
  onOutput?: OutputHandler;
  /** After a deadline or abort, how long an interrupted call may take to stop before its worker is killed and replaced (default 2000 ms). */
  graceMs?: number;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

async function resolveInterpreter(python: string | undefined): Promise<string> {
  if (python === undefined) {
    const found = (await discoverPythons()).filter((p) => p.probe.major === 3 && p.probe.minor >= 8).sort((a, b) => b.probe.minor - a.probe.minor)[0];
    if (!found) throw new PyportError("E_NOT_FOUND", "no CPython 3.8+ found on this machine to build a runtime from", { hint: "Pass { python: '<runtime dir or interpreter path>' } to Python.start." });
    const { dir } = await cachedRuntime({ source: { python: found.path } });
    return path.join(dir, "bin", "python3");
  }
  if (!python.includes("/")) {
    throw new PyportError("E_USAGE", `python: ${JSON.stringify(python)} is not a path; pyport does not search PATH`, { hint: "Give a pyport runtime or bundle directory, or an interpreter path such as /usr/bin/python3.12." });
  }
  const st = fs.statSync(python, { throwIfNoEntry: false });
  if (!st) throw new PyportError("E_NOT_FOUND", `python: ${python} does not exist`, { hint: "Give a pyport runtime or bundle directory, or an interpreter path." });
  if (!st.isDirectory()) return path.resolve(python);
  const exe = path.join(python, "bin", "python3");
  if (!fs.existsSync(exe)) throw new PyportError("E_NOT_FOUND", `python: ${python} is a directory without bin/python3`, { hint: "Give a pyport runtime or bundle directory (made by pyport runtime create or pyport build)." });
  return path.resolve(exe);
}

export class Python {
  private readonly slots: (Worker | Promise<Worker> | undefined)[];
  private nextId = 1;
  private closing = false;

  private constructor(
    /** The interpreter the workers run. */
    readonly executable: string,
    private readonly opts: StartOptions,
    workers: Worker[],
  ) {
    this.slots = workers;
    workers.forEach((w, i) => this.watch(w, i));
  }

  /** Starts the workers and waits until each has preloaded its modules. */
  static async start(opts: StartOptions = {}): Promise<Python> {
    const count = opts.workers ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new PyportError("E_USAGE", `workers must be a positive integer, got ${count}`);
    const executable = await resolveInterpreter(opts.python);
    const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => Worker.start(Python.workerOptions(executable, opts, i))));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      for (const s of started) if (s.status === "fulfilled") s.value.kill();
      throw failed.reason;
    }
    return new Python(executable, opts, started.map((s) => (s as PromiseFulfilledResult<Worker>).value));
  }

  private static workerOptions(python: string, opts: StartOptions, index: number) {
    return { python, index, cwd: opts.cwd, env: opts.env, path: (opts.path ?? []).map((p) => path.resolve(p)), preload: opts.preload ?? [], memoryLimitMb: opts.memoryLimitMb, onOutput: opts.onOutput };
  }

  /** A dead worker's slot is emptied; the next call that needs it starts a replacement. */
  private watch(w: Worker, index: number): void {
    w.onExit = () => {
      if (this.slots[index] === w) this.slots[index] = undefined;
    };
  }

  private async worker(index: number): Promise<Worker> {
    const slot = this.slots[index];
    if (slot) return slot;
    const starting = Worker.start(Python.workerOptions(this.executable, this.opts, index)).then(
      (w) => {
        this.slots[index] = w;
        this.watch(w, index);
        return w;
      },
      (err) => {
        this.slots[index] = undefined;
        throw err;
      },
    );
    this.slots[index] = starting;
    return starting;
  }

  /** The least busy live worker (a slot being restarted counts as idle). */
  private pick(): number {
    let best = 0;
    let load = Infinity;
    this.slots.forEach((s, i) => {
      const n = s instanceof Worker ? s.pending.size : 0;
      if (n < load) [best, load] = [i, n];
    });
    return best;
  }

  /**
   * Calls `target` ("package.module:attr.path") with `args` and `kwargs`; awaits coroutines.
   * Rejects with PythonError, WorkerCrashedError, CallTimeoutError or AbortError.
   */
  async call<T = unknown>(target: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<T> {
    const site = callSite(1);
    if (this.closing) throw new PyportError("E_USAGE", "this Python was closed", { hint: "Start a new one with Python.start()." });
    if (opts.signal?.aborted) throw new AbortError("the call was aborted before it started", { cause: opts.signal.reason });
    const id = this.nextId++;
    const w = await this.worker(this.pick());
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      const pending: Pending = {
        resolve: (v) => {
          cleanup();
          clearTimeout(graceTimer);
          resolve(v as T);
        },
        reject: (e) => {
          cleanup();
          clearTimeout(graceTimer);
          reject(e);
        },
        callSite: site,
      };
      // A deadline or abort: reject now, interrupt the call if it is running, and replace the
      // worker if it does not stop within the grace period.
      const giveUp = (err: Error) => {
        cleanup();
        const running = w.isRunning(id);
        if (running) {
          w.interrupt();
          graceTimer = setTimeout(() => w.kill(), this.opts.graceMs ?? 2000);
          // The interrupted call's reply (KeyboardInterrupt) ends the grace period.
          pending.resolve = () => clearTimeout(graceTimer);
          pending.reject = () => clearTimeout(graceTimer);
        } else w.forget(id);
        reject(err);
      };
      const onAbort = () => giveUp(new AbortError(`call to ${target} was aborted`, { cause: opts.signal?.reason }));
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => giveUp(new CallTimeoutError(`call to ${target} did not finish within ${opts.timeoutMs} ms`, opts.timeoutMs!)), opts.timeoutMs);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        w.send(id, target, args, kwargs, pending);
      } catch (err) {
        cleanup();
        reject(err);
      }
    });
  }

  /** Process ids of the live workers. */
  get pids(): number[] {
    return this.slots.filter((s): s is Worker => s instanceof Worker && !s.exited).map((s) => s.pid!);
  }

  /**
   * Lets in-flight calls finish, then stops the workers (killing any that do not exit within
   * `graceMs`). Afterwards nothing of this Python keeps the Node process alive.
   */
  async close(): Promise<void> {
    this.closing = true;
    const workers = await Promise.all(this.slots.map((s) => Promise.resolve(s).catch(() => undefined)));
    await Promise.all(
      workers.map(async (w) => {
        if (!w) return;
        await Promise.allSettled([...w.pending.values()].map((p) => new Promise((r) => {
          const [res, rej] = [p.resolve, p.reject];
          p.resolve = (v) => (res(v), r(undefined));
          p.reject = (e) => (rej(e), r(undefined));
        })));
        await w.shutdown(this.opts.graceMs ?? 2000);
      }),
    );
  }
}

