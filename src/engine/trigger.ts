/**
 * One trigger at run time: its own Python workers (a plugin never runs in the host, and never
 * shares a process with another trigger's plugin), a bounded queue, the error behaviour (log,
 * bounded retries with exponential backoff and jitter, disable after N consecutive failures),
 * deadlines and a memory limit per invocation, and its schedule's timer.
 */
import * as path from "node:path";
import { CallTimeoutError, PythonError, WorkerCrashedError } from "../host/errors.js";
import type { Python } from "../host/python.js";
import type { HostFunctions } from "../host/worker.js";
import { PyportError } from "../errors.js";
import type { PluginEnvironment } from "./environments.js";
import type { WorkerRequest } from "./spare.js";
import { nextFire, parseSpec, type TriggerSpec } from "./spec.js";

export interface TriggerConfig {
  name: string;
  /** A `.py` file or a directory with `__init__.py`, in the plugin directory. */
  plugin: string;
  /** `table:<name>`, `all_tables`, `every:<duration>`, `cron:<6 fields>` or `request:<path>`. */
  spec: string;
  /** `dict[str, str]` for the plugin, or InfluxDB's `k=v,k2=v2` form. */
  args?: Record<string, string> | string;
  disabled?: boolean;
  /** The database whose writes fire the trigger, and that `write()` goes to; none: every database, writes to "default". */
  database?: string;
  /** Run up to `concurrency` invocations at once, each in its own worker process (default: one at a time). */
  runAsync?: boolean;
  concurrency?: number;
  /** Deadline per invocation (default 30 000 ms): the call is interrupted, then its worker killed. */
  timeoutMs?: number;
  /** Address-space limit of the trigger's workers. */
  memoryMb?: number;
  errorBehavior?: "log" | "retry" | "disable";
  /** For `retry`: attempts in all (default 3), the first pause (default 200 ms), the longest (default 10 s). */
  retry?: { maxAttempts?: number; baseMs?: number; maxMs?: number };
  /** For `disable`: consecutive failures before the trigger is disabled (default 1). */
  disableAfter?: number;
  /** Invocations waiting at most (default 1000); more are dropped (a request gets 503). */
  maxQueue?: number;
}

export interface TriggerStats {
  invocations: number;
  errors: number;
  dropped: number;
  queued: number;
  /** Invocations in flight: running, or sent ahead to a worker (SENT_AHEAD). */
  running: number;
  consecutiveFailures: number;
  /** Seconds each finished invocation took (for the latency histogram). */
  durations: number[];
}

export type Job =
  | { kind: "writes"; payload: unknown[] }
  | { kind: "schedule"; payload: number }
  | { kind: "request"; payload: Record<string, unknown> };

export interface Invocation {
  /** Lines written with write()/write_to_db(), per database. */
  writes: [string, string[]][];
  response: { status: number; headers: [string, string][]; body: Uint8Array } | null;
}

export interface TriggerContext {
  pluginDir: string;
  /** The interpreter `plugin` runs on, its environment made or brought up to date. */
  environment: (plugin: string) => Promise<PluginEnvironment>;
  /** Starts the trigger's workers (spare.ts). */
  startWorkers: (req: WorkerRequest) => Promise<Python>;
  hostFunctions: (trigger: string) => HostFunctions;
  log: (trigger: string, level: "info" | "warn" | "error", message: string) => void;
  deliver: (writes: [string, string[]][]) => Promise<void>;
  onDisabled: (trigger: string) => void;
  /** Workers idle this long are stopped; the next invocation starts them again. */
  idleMs: number;
}

/** Worker deaths in a row after which invocations wait (1: replacements never start in a burst). */
const CRASH_LOOP = 1;
/**
 * Invocations sent ahead to each worker (with errorBehavior "log"; retry and disable keep one,
 * so a failure is handled before the next invocation runs). A worker still runs one at a time,
 * in order, answering each before it starts the next (replyEach), and the next is already in
 * its input when the last ends: no process wake-up per invocation, the largest cost of a quick
 * one. A deadline counts from when the invocation starts; when the worker dies, those it had
 * not started run again on its replacement.
 */
const SENT_AHEAD = 4;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a trigger's configuration; returns its parsed spec and args. */
export function checkTrigger(cfg: TriggerConfig): {
  spec: TriggerSpec;
  args: Record<string, string>;
} {
  if (!NAME.test(cfg.name ?? ""))
    throw new PyportError("E_USAGE", `trigger name ${JSON.stringify(cfg.name)} is not valid`, {
      hint: "Use letters, digits, '.', '_' and '-' (at most 128), starting with a letter or digit.",
    });
  const plugin = cfg.plugin ?? "";
  if (!plugin || path.isAbsolute(plugin) || plugin.split("/").includes(".."))
    throw new PyportError(
      "E_USAGE",
      `trigger ${cfg.name}: plugin ${JSON.stringify(plugin)} must be a name inside the plugin directory`,
      {
        hint: 'Example: plugin: "summarise.py" (a file) or "reporter" (a directory with __init__.py).',
      },
    );
  for (const [key, value] of [
    ["timeoutMs", cfg.timeoutMs],
    ["memoryMb", cfg.memoryMb],
    ["concurrency", cfg.concurrency],
    ["disableAfter", cfg.disableAfter],
    ["maxQueue", cfg.maxQueue],
  ] as const)
    if (value !== undefined && !(Number.isFinite(value) && value > 0))
      throw new PyportError(
        "E_USAGE",
        `trigger ${cfg.name}: ${key} must be a positive number, got ${value}`,
      );
  if (cfg.errorBehavior !== undefined && !["log", "retry", "disable"].includes(cfg.errorBehavior))
    throw new PyportError(
      "E_USAGE",
      `trigger ${cfg.name}: errorBehavior must be log, retry or disable`,
    );
  return { spec: parseSpec(cfg.spec), args: parseArgs(cfg.args) };
}

/** `k=v,k2=v2` (InfluxDB's trigger arguments) or an object → `dict[str, str]`. */
export function parseArgs(args: TriggerConfig["args"]): Record<string, string> {
  if (args === undefined) return {};
  if (typeof args !== "string")
    return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)]));
  const out: Record<string, string> = {};
  for (const part of args.split(",").filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0)
      throw new PyportError(
        "E_USAGE",
        `trigger argument ${JSON.stringify(part)} is not key=value`,
        {
          hint: "Example: window=1h,threshold=90",
        },
      );
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** A failure as the log shows it: Python's traceback, or how the worker died. */
export function describeFailure(err: unknown): string {
  if (err instanceof PythonError)
    return err.traceback.trimEnd() || `${err.pythonType}: ${err.pythonMessage}`;
  if (err instanceof WorkerCrashedError) return `the plugin's worker died: ${err.message}`;
  if (err instanceof CallTimeoutError)
    return `timed out after ${err.timeoutMs} ms (interrupted; its worker is replaced if it does not stop)`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

interface Queued {
  job: Job;
  resolve: (r: Invocation) => void;
  reject: (e: unknown) => void;
}

export class TriggerRuntime {
  readonly spec: TriggerSpec;
  readonly args: Record<string, string>;
  /** The plugin's full path. */
  private readonly pluginPath: string;
  readonly stats: TriggerStats = {
    invocations: 0,
    errors: 0,
    dropped: 0,
    queued: 0,
    running: 0,
    consecutiveFailures: 0,
    durations: [],
  };
  private python?: Promise<Python>;
  /** The environment the current workers run in. */
  private env?: PluginEnvironment;
  private readonly queue: Queued[] = [];
  private timer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private closed = false;
  /** Invocations in a row whose worker died (crash-loop back-off). */
  private crashes = 0;
  /** Set when a worker died: the workers run at nice 10 until they next stop for idleness. */
  private demoted = false;

  constructor(
    readonly config: TriggerConfig,
    private readonly ctx: TriggerContext,
  ) {
    ({ spec: this.spec, args: this.args } = checkTrigger(config));
    this.pluginPath = path.join(ctx.pluginDir, config.plugin);
    this.schedule();
  }

  get enabled(): boolean {
    return !this.config.disabled && !this.closed;
  }

  private get limit(): number {
    return this.config.runAsync ? (this.config.concurrency ?? 4) : 1;
  }

  /** Invocations in flight at most: `limit` running, the rest sent ahead (SENT_AHEAD). */
  private get inFlightLimit(): number {
    return this.limit * ((this.config.errorBehavior ?? "log") === "log" ? SENT_AHEAD : 1);
  }

  /** Queues an invocation; false (and counted as dropped) when the queue is full or the trigger is off. */
  submit(job: Job): Promise<Invocation> | false {
    if (!this.enabled || this.queue.length >= (this.config.maxQueue ?? 1000)) {
      this.stats.dropped++;
      return false;
    }
    return new Promise<Invocation>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.stats.queued = this.queue.length;
      this.pump();
    });
  }

  private pump(): void {
    while (this.stats.running < this.inFlightLimit && this.queue.length) {
      const q = this.queue.shift()!;
      this.stats.queued = this.queue.length;
      this.stats.running++;
      void this.runWithPolicy(q.job)
        .then(q.resolve, q.reject)
        .finally(() => {
          this.stats.running--;
          this.pump();
          if (!this.stats.running && !this.queue.length) this.armIdle();
        });
    }
  }

  /** Stops the workers once they have been idle for `idleMs` (they start again on demand). */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.stats.running || this.queue.length || !this.python) return;
      this.stopWorkers();
      this.demoted = false;
    }, this.ctx.idleMs);
    this.idleTimer.unref();
  }

  /** Lets the workers finish what they run, then stops them; the next invocation starts new ones. */
  private stopWorkers(): void {
    const py = this.python;
    this.python = undefined;
    void py?.then(
      (p) => p.close(),
      () => undefined,
    );
  }

  private startPython(env: PluginEnvironment): Promise<Python> {
    const started = this.ctx.startWorkers({
      env,
      workers: this.limit,
      memoryMb: this.config.memoryMb,
      nice: this.demoted ? 10 : undefined,
      binding: {
        hostFunctions: this.ctx.hostFunctions(this.config.name),
        onOutput: ({ stream, text }) => {
          for (const line of text.split("\n").filter(Boolean))
            this.ctx.log(this.config.name, stream === "stderr" ? "warn" : "info", line);
        },
      },
    });
    started.catch(() => (this.python = undefined)); // the next invocation tries again
    return started;
  }

  private async invoke(job: Job): Promise<Invocation> {
    const env = await this.ctx.environment(this.config.plugin);
    if (this.closed) throw new PyportError("E_USAGE", `trigger ${this.config.name} was stopped`);
    if (this.env && (env.python !== this.env.python || env.generation !== this.env.generation))
      this.stopWorkers(); // packages changed: new workers import them
    this.env = env;
    const py = await (this.python ??= this.startPython(env));
    return py.call<Invocation>(
      "pyport_engine:invoke",
      [
        this.config.name,
        this.pluginPath,
        job.kind,
        job.payload,
        this.args,
        this.config.database ?? "default",
      ],
      {},
      { timeoutMs: this.config.timeoutMs ?? 30_000 },
    );
  }

  private async runWithPolicy(job: Job): Promise<Invocation> {
    const retry = this.config.errorBehavior === "retry" ? (this.config.retry ?? {}) : undefined;
    const attempts = retry ? (retry.maxAttempts ?? 3) : 1;
    for (let attempt = 1; ; attempt++) {
      await this.crashBackoff();
      // Stopped during a back-off or retry pause: no new worker may start after close().
      if (this.closed) throw new PyportError("E_USAGE", `trigger ${this.config.name} was stopped`);
      const started = performance.now();
      this.stats.invocations++;
      try {
        const result = await this.invoke(job);
        this.crashes = 0;
        this.stats.durations.push((performance.now() - started) / 1000);
        if (this.stats.durations.length > 10_000) this.stats.durations.splice(0, 5_000);
        this.stats.consecutiveFailures = 0;
        if (result.writes.length) await this.ctx.deliver(result.writes);
        return result;
      } catch (err) {
        if (err instanceof WorkerCrashedError && !err.started && !this.closed) {
          // Sent ahead and never started: the worker died running an earlier invocation.
          this.stats.invocations--;
          attempt--;
          continue;
        }
        this.crashes = err instanceof WorkerCrashedError ? this.crashes + 1 : 0;
        if (this.crashes && !this.demoted) {
          // Its replacements start at nice 10: the CPU goes to healthy triggers first.
          this.demoted = true;
          this.stopWorkers();
        }
        this.stats.errors++;
        this.stats.consecutiveFailures++;
        const last = attempt >= attempts || this.closed;
        this.ctx.log(
          this.config.name,
          "error",
          `${job.kind} invocation failed${attempts > 1 ? ` (attempt ${attempt} of ${attempts})` : ""}: ${describeFailure(err)}`,
        );
        if (!last) {
          const base = retry!.baseMs ?? 200;
          const pause =
            Math.min(retry!.maxMs ?? 10_000, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
          await new Promise((r) => setTimeout(r, pause));
          continue;
        }
        if (
          this.config.errorBehavior === "disable" &&
          this.stats.consecutiveFailures >= (this.config.disableAfter ?? 1)
        ) {
          this.ctx.log(
            this.config.name,
            "error",
            `disabled after ${this.stats.consecutiveFailures} consecutive failure(s)`,
          );
          this.ctx.onDisabled(this.config.name);
        }
        throw err;
      }
    }
  }

  /**
   * A worker that keeps dying costs a process start per invocation, CPU taken from every other
   * trigger, and starts in a burst hurt their latency most. After a death the next invocation
   * waits 100 ms, doubling with each death in a row up to 5 s (its queue fills meanwhile, and
   * overflow is dropped as usual), until one ends otherwise.
   * (From its first death on, a trigger's new workers start at nice 10: see runWithPolicy.)
   */
  private async crashBackoff(): Promise<void> {
    if (this.crashes < CRASH_LOOP) return;
    const pause = Math.min(5_000, 100 * 2 ** (this.crashes - CRASH_LOOP));
    const warn = (message: string) => this.ctx.log(this.config.name, "warn", message);
    if (this.crashes === CRASH_LOOP)
      warn(
        `the plugin's worker died; the next invocation waits ${pause} ms before a new worker starts (doubling, up to 5 s, while workers keep dying)`,
      );
    else if (pause === 5_000)
      warn(
        `the plugin's worker died ${this.crashes} times in a row; invocations now wait up to ${pause} ms before a new worker starts`,
      );
    await new Promise((r) => setTimeout(r, pause));
  }

  /** Arms the timer of an `every:` or `cron:` trigger for its next firing. */
  private schedule(): void {
    if (this.spec.kind !== "every" && this.spec.kind !== "cron") return;
    if (!this.enabled) return;
    const at = nextFire(this.spec, Date.now());
    if (at === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const queued = this.submit({ kind: "schedule", payload: at });
        if (queued)
          queued.catch(() => undefined); // logged by runWithPolicy
        else
          this.ctx.log(
            this.config.name,
            "warn",
            `scheduled call at ${new Date(at).toISOString()} dropped: the queue is full`,
          );
        this.schedule();
      },
      Math.max(0, at - Date.now()),
    );
  }

  /** Stops the timer, lets running invocations finish, then stops the workers. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.idleTimer);
    for (const q of this.queue.splice(0))
      q.reject(new PyportError("E_USAGE", `trigger ${this.config.name} was stopped`));
    const py = await this.python?.catch(() => undefined);
    await py?.close({ timeoutMs: opts.timeoutMs ?? 10_000 });
  }
}
