/**
 * Run Python from Node: `const py = await Python.start(); await py.call("math:sqrt", [2])`.
 *
 * A pool of worker processes (python/host_worker.py) started with a pyport runtime or bundle,
 * an interpreter given by path, or — when none is given — a portable runtime pyport builds in its
 * cache from the newest CPython on the machine. Never a silent PATH lookup.
 */
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { AbortError, atCallSite, raiseAtCallSite } from "./errors.js";
import type { ForkServer } from "./fork-server.js";
import { givenInterpreter, managedInterpreter } from "./interpreter.js";
import { InFlight, supervise } from "./supervise.js";
import { Worker, type HostFunctions, type OutputHandler, type Pending } from "./worker.js";

export interface StartOptions {
  /** A pyport runtime or bundle directory, or an interpreter's path. Default: a runtime pyport manages. */
  python?: string;
  /** Worker processes (default 1). Calls go to the least busy one. */
  workers?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Directories put first on `sys.path`. */
  path?: string[];
  /** Modules imported when each worker starts; start() then waits for them. */
  preload?: string[];
  /** Coroutine calls each worker runs at once (default 1). Plain functions always run one at a time. */
  concurrency?: number;
  /** Address-space limit per worker (RLIMIT_AS); allocations beyond it raise MemoryError. */
  memoryLimitMb?: number;
  /** Receives the workers' stdout/stderr; default: written to this process's stdout/stderr. */
  onOutput?: OutputHandler;
  /**
   * Polling instead of sleeping, to skip a process wake-up (~15–100 µs) per call. While calls
   * arrive back to back (each within this many µs of the previous reply), a worker polls for the
   * next call for up to this long, yielding the CPU between polls. While replies come back within
   * this many µs, this process polls for the reply to a lone call for up to a few times their
   * usual latency (never more than this), blocking its event loop meanwhile — only when calls in
   * flight are all on one worker, and only with the native poll `npm run build` compiles. Costs
   * CPU only in back-to-back phases. Default 200; 0 turns both off.
   */
  spinUs?: number;
  /** After a deadline or abort, how long an interrupted call may take to stop before its worker is killed and replaced (default 2000 ms). */
  graceMs?: number;
  /**
   * Functions Python code may call back: `import pyport_host; pyport_host.call("name", 1, x=2)`
   * (or `pyport_host.functions.name(1, x=2)`) runs `hostFunctions.name(1, { x: 2 })` here and
   * returns its (awaited) value, converted as call results are; a throw raises
   * `pyport_host.HostError` in Python with the error's `name`, `message` and `stack`. The Python
   * caller waits for the answer (from a coroutine too: it blocks that worker's event loop).
   */
  hostFunctions?: HostFunctions;
  /** The workers' nice value (1–19: they yield the CPU to others), set as each starts. */
  nice?: number;
  /**
   * For workers whose calls are plain functions (run one at a time, in the order sent): each
   * reply leaves before the worker starts its next call, instead of quick replies being written
   * together. Then calls can be sent ahead safely: a call's `timeoutMs` (and the grace period
   * after it) counts from when the calls sent before it on its worker have answered, and when
   * a worker dies, the calls it had not started fail with a WorkerCrashedError whose `started`
   * is false (they had no effect). Default false.
   */
  replyEach?: boolean;
  /**
   * Workers (and their replacements) are forked by this server when it is ready and was started
   * with the same `python`, `path` and `preload`, else spawned as usual; `cwd` and `env` are set
   * in each worker after the fork. See ForkServer (fork-server.ts); the caller closes it.
   */
  forkServer?: ForkServer;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface StreamOptions extends CallOptions {
  /** Items Python may produce ahead of the consumer (default 16). */
  highWaterMark?: number;
}

/** What takeSettlers took from the promise made last (one executor for every call: no closure per call). */
const settlers = {
  resolve: (() => undefined) as (value: never) => void,
  reject: (() => undefined) as (err: Error) => void,
};
function takeSettlers(resolve: (value: never) => void, reject: (err: Error) => void): void {
  settlers.resolve = resolve;
  settlers.reject = reject;
}

const DEFAULT_SPIN_US = 200;
const DEFAULT_GRACE_MS = 2000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

export class Python {
  private readonly slots: (Worker | Promise<Worker> | undefined)[];
  private readonly load: number[];
  private closing = false;
  /** How long an interrupted call, or a worker asked to exit, may take before it is killed. */
  private readonly graceMs: number;

  private constructor(
    /** The interpreter the workers run. */
    readonly executable: string,
    private readonly opts: StartOptions,
    workers: Worker[],
  ) {
    this.slots = workers;
    this.load = workers.map(() => 0);
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    workers.forEach((w, i) => this.watch(w, i));
  }

  /**
   * Starts the workers. Resolves once their processes exist — calls made meanwhile run as soon as
   * each interpreter is up — or, with `preload`, once every worker has imported those modules
   * (rejecting with the PythonError of an import that failed).
   */
  static async start(opts: StartOptions = {}): Promise<Python> {
    const count = opts.workers ?? 1;
    if (!Number.isInteger(count) || count < 1)
      throw new PyportError("E_USAGE", `workers must be a positive integer, got ${count}`);
    if (
      opts.spinUs !== undefined &&
      !(Number.isInteger(opts.spinUs) && opts.spinUs >= 0 && opts.spinUs <= 100_000)
    ) {
      throw new PyportError(
        "E_USAGE",
        `spinUs must be an integer from 0 to 100000, got ${opts.spinUs}`,
        { hint: "0 turns polling off; the default is 200 (µs)." },
      );
    }
    if (opts.graceMs !== undefined && !(Number.isFinite(opts.graceMs) && opts.graceMs >= 0)) {
      throw new PyportError(
        "E_USAGE",
        `graceMs must be a number of milliseconds, 0 or more, got ${opts.graceMs}`,
        { hint: `The default is ${DEFAULT_GRACE_MS}.` },
      );
    }
    // With an interpreter given, the workers are spawned before this function first yields.
    const executable =
      opts.python === undefined ? await managedInterpreter() : givenInterpreter(opts.python);
    const starting: Promise<Worker>[] = [];
    for (let i = 0; i < count; i++)
      starting.push(Worker.start(Python.workerOptions(executable, opts, i)));
    const started = await Promise.allSettled(starting);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      for (const s of started) if (s.status === "fulfilled") s.value.kill();
      throw failed.reason;
    }
    return new Python(
      executable,
      opts,
      started.map((s) => (s as PromiseFulfilledResult<Worker>).value),
    );
  }

  private static workerOptions(python: string, opts: StartOptions, index: number) {
    // cwd, env, memoryLimitMb, concurrency, onOutput, hostFunctions and nice pass as given.
    return {
      ...opts,
      python,
      index,
      path: (opts.path ?? []).map((p) => path.resolve(p)),
      preload: opts.preload ?? [],
      spinUs: opts.spinUs ?? DEFAULT_SPIN_US,
    };
  }

  /** A dead worker's slot is emptied; the next call that needs it starts a replacement. */
  private watch(w: Worker, index: number): void {
    w.onExit = () => {
      if (this.slots[index] === w) this.slots[index] = undefined;
    };
  }

  private async worker(index: number): Promise<Worker> {
    const slot = this.slots[index];
    if (slot && !(slot instanceof Worker && slot.exited)) return slot;
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

  /** The least busy worker slot, by calls and streams assigned and not yet settled; counts this one. */
  private pickSlot(): number {
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[best]) best = i;
    this.load[best]++;
    return best;
  }

  /** The worker of `slot` (started if needed), and a once-only release of the slot's count. */
  private async acquire(slot: number): Promise<{ w: Worker; release: () => void }> {
    let released = false;
    const release = () => {
      if (!released) [released, this.load[slot]] = [true, this.load[slot] - 1];
    };
    try {
      return { w: await this.worker(slot), release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private checkOpen(opts: CallOptions): void {
    if (this.closing)
      throw new PyportError("E_USAGE", "this Python was closed", {
        hint: "Start a new one with Python.start().",
      });
    if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs >= 0)) {
      throw new PyportError(
        "E_USAGE",
        `timeoutMs must be a number of milliseconds, 0 or more, got ${opts.timeoutMs}`,
      );
    }
    if (opts.signal?.aborted)
      throw new AbortError("the call was aborted before it started", { cause: opts.signal.reason });
  }

  /**
   * Calls `target` ("package.module:attr.path") with `args` and `kwargs`; awaits coroutines.
   * Rejects with PythonError, WorkerCrashedError, CallTimeoutError or AbortError (and with
   * TypeError for a value that cannot be sent: then nothing was sent).
   */
  call<T = unknown>(
    target: string,
    args: unknown[] = [],
    kwargs: Record<string, unknown> = {},
    opts: CallOptions = {},
  ): Promise<T> {
    let answer: Promise<T>;
    try {
      this.checkOpen(opts);
      const slot = this.pickSlot();
      const live = this.slots[slot];
      // The common case stays synchronous up to the write: no awaits before the call is sent.
      answer =
        live instanceof Worker && !live.exited
          ? this.dispatch<T>(live, slot, target, args, kwargs, opts)
          : this.startThenDispatch<T>(slot, target, args, kwargs, opts);
    } catch (err) {
      answer = Promise.reject(err);
    }
    // Not an async function: awaiting in one costs ~1 µs a call. V8's async stack traces follow
    // this promise chain too, to the caller's await.
    return answer.then(undefined, raiseAtCallSite);
  }

  private async startThenDispatch<T>(
    slot: number,
    target: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    opts: CallOptions,
  ): Promise<T> {
    let w: Worker;
    try {
      w = await this.worker(slot);
    } catch (err) {
      this.load[slot]--;
      throw err;
    }
    return this.dispatch<T>(w, slot, target, args, kwargs, opts);
  }

  private dispatch<T>(
    w: Worker,
    slot: number,
    target: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    opts: CallOptions,
  ): Promise<T> {
    const id = w.nextCallId();
    const answer = new Promise<T>(takeSettlers);
    const call = new InFlight(this.load, slot, settlers.resolve, settlers.reject);
    if (opts.timeoutMs !== undefined || opts.signal)
      call.ctl = supervise(w, id, target, opts, this.graceMs, (err) => call.giveUp(err));
    try {
      w.send(id, target, args, kwargs, call);
    } catch (err) {
      call.reject(err as Error);
    }
    return answer;
  }

  /**
   * Iterates over what `target` returns — a generator, async generator or other iterable —
   * pulling at most `highWaterMark` (default 16) items ahead of the consumer. Leaving the loop
   * early stops the generator in Python. `timeoutMs` and `signal` bound the whole stream.
   */
  async *stream<T = unknown>(
    target: string,
    args: unknown[] = [],
    kwargs: Record<string, unknown> = {},
    opts: StreamOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    this.checkOpen(opts);
    const window = Math.max(2, opts.highWaterMark ?? 16);
    const { w, release } = await this.acquire(this.pickSlot());
    const id = w.nextCallId();
    const queue: unknown[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const end = (err?: Error) => {
      if (ended) return;
      [ended, failure] = [true, err];
      wake?.();
    };
    const ctl = supervise(w, id, target, opts, this.graceMs, end);
    const pending: Pending = {
      item: (v) => (queue.push(v), wake?.()),
      resolve: () => (ctl.finished(), end()),
      reject: (e) => (ctl.finished(), end(e)),
    };
    let consumed = 0;
    try {
      try {
        w.send(id, target, args, kwargs, pending, window);
      } catch (err) {
        ctl.finished();
        ended = true;
        throw err;
      }
      for (;;) {
        if (queue.length) {
          const v = queue.shift() as T;
          if (++consumed >= window / 2 && !ended) {
            w.credit(id, consumed);
            consumed = 0;
          }
          yield v;
          continue;
        }
        if (failure) throw atCallSite(failure, this.stream);
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      release();
      if (!ended) {
        ended = true;
        ctl.stop(); // the consumer left early: stop the generator
      }
    }
  }

  /** Process ids of the live workers. */
  get pids(): number[] {
    return this.slots
      .filter((s): s is Worker => s instanceof Worker && !s.exited)
      .map((s) => s.pid!);
  }

  /**
   * Lets in-flight calls finish, for at most `timeoutMs` (default 30 s), then stops the workers
   * (killing any that do not exit within `graceMs`). A call still running at the deadline is
   * rejected with WorkerCrashedError saying so, and its worker is killed. Afterwards nothing of
   * this Python keeps the Node process alive.
   */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0))
      throw new PyportError(
        "E_USAGE",
        `close: timeoutMs must be a number of milliseconds, 0 or more, got ${timeoutMs}`,
        { hint: `The default is ${DEFAULT_CLOSE_TIMEOUT_MS}.` },
      );
    this.closing = true;
    const workers = await Promise.all(
      this.slots.map((s) => Promise.resolve(s).catch(() => undefined)),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
    try {
      await Promise.all(
        workers.map(async (w) => {
          if (!w) return;
          if ((await Promise.race([w.drained(), deadline])) === "late") {
            w.kill(`was stopped by close() after ${timeoutMs} ms with calls still running`);
            await w.done;
            return;
          }
          await w.shutdown(this.graceMs);
        }),
      );
    } finally {
      clearTimeout(timer);
    }
  }
}
