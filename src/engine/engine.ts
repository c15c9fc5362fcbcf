/**
 * The plugin engine: InfluxDB 3 processing-engine plugins, run by any Node host on its data
 * writes (`write`), on schedules and on HTTP requests (`handleRequest`), each trigger in its own
 * Python workers. Trigger definitions persist in `stateDir` (written atomically) and come back
 * after a restart. See docs/engine.md.
 */
import * as fsp from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import type { HostFunctions } from "../host/worker.js";
import { pythonAsset } from "../util/assets.js";
import { writeFileAtomic } from "../util/fs.js";
import { Environments } from "./environments.js";
import { WorkerStarter } from "./spare.js";
import { serveRequest } from "./request.js";
import type { InstallRequest, PipOutput } from "./venv.js";
import { EngineLog, PluginCache, type LogEntry, type LogQuery } from "./store.js";
import {
  checkTrigger,
  describeFailure,
  TriggerRuntime,
  type Invocation,
  type Job,
  type TriggerConfig,
  type TriggerContext,
  type TriggerStats,
} from "./trigger.js";

export interface EngineHost {
  /** Answers `influxdb3_local.query(sql, params, database)`: an array of row objects. */
  query?(
    sql: string,
    params: Record<string, unknown>,
    database: string | null,
  ): unknown[] | Promise<unknown[]>;
  /** Receives line-protocol lines written by plugins. Without it, the engine keeps the last ones (`recentWrites`). */
  write?(database: string, lines: string[]): void | Promise<void>;
  /** Functions plugins call as `influxdb3_local.host.<name>(...)`. */
  functions?: HostFunctions;
}

export interface EngineOptions {
  pluginDir: string;
  /** A pyport runtime or bundle directory, or an interpreter path; default: the runtime pyport manages. */
  runtime?: string;
  /**
   * The engine's virtualenv, layered on `runtime` (default `<pluginDir>/.venv`, made on first
   * use; rebuilt from its record when made for another runtime); false: plugins run on the
   * runtime itself. Plugins with their own requirements.txt get venvs in `.venvs/` beside it.
   */
  virtualEnv?: string | false;
  /** Where trigger definitions persist (`triggers.json`); default: not persisted. */
  stateDir?: string;
  host?: EngineHost;
  /** Log entries kept (default 10 000). */
  logCapacity?: number;
  onLog?: (e: LogEntry) => void;
  /** A trigger's workers stop after this long without an invocation (default 300 000 ms). */
  idleMs?: number;
}

export interface TriggerInfo extends TriggerConfig {
  stats: Omit<TriggerStats, "durations">;
}

export interface EngineTest {
  plugin: string;
  kind: "writes" | "schedule" | "request";
  tableBatches?: { table_name: string; rows: unknown[] }[];
  time?: Date;
  request?: {
    method?: string;
    path?: string;
    query?: Record<string, string[]>;
    headers?: Record<string, string>;
    body?: Uint8Array;
  };
  args?: TriggerConfig["args"];
  timeoutMs?: number;
  memoryMb?: number;
}

export interface EngineTestResult {
  ok: boolean;
  logs: LogEntry[];
  writes: { database: string; line: string }[];
  response?: Invocation["response"];
  /** The failure: Python's traceback, or how the worker died. */
  error?: string;
}

export interface WriteResult {
  trigger: string;
  ok: boolean;
  error?: string;
}

const STATE_FILE = "triggers.json";
const RECENT_WRITES = 10_000;

export class Engine {
  private readonly triggers = new Map<string, TriggerRuntime>();
  private readonly cache = new PluginCache();
  private readonly log: EngineLog;
  private readonly envs: Environments;
  private readonly starter: WorkerStarter;
  private readonly recent: { database: string; line: string }[] = [];
  private closed = false;
  private tests = 0;

  private constructor(private readonly opts: EngineOptions & { pluginDir: string }) {
    this.log = new EngineLog(opts.logCapacity ?? 10_000, opts.onLog);
    this.envs = new Environments(opts.pluginDir, opts.runtime, opts.virtualEnv, (level, message) =>
      this.log.add("engine", level, message),
    );
    this.starter = new WorkerStarter(
      (env) => ({
        python: env.python,
        // As InfluxDB's engine: plugins find their files through PLUGIN_DIR (or VIRTUAL_ENV's parent).
        env: {
          ...process.env,
          PLUGIN_DIR: opts.pluginDir,
          ...(env.venv ? { VIRTUAL_ENV: env.venv } : {}),
        },
        path: [path.dirname(pythonAsset("engine/pyport_engine.py"))],
        preload: ["pyport_engine"],
        graceMs: 1000,
        replyEach: true, // invocations are sent ahead (trigger.ts SENT_AHEAD)
      }),
      (level, message) => this.log.add("engine", level, message),
    );
  }

  static async start(opts: EngineOptions): Promise<Engine> {
    const pluginDir = path.resolve(opts.pluginDir);
    const st = await fsp.stat(pluginDir).catch(() => undefined);
    if (!st?.isDirectory())
      throw new PyportError("E_NOT_FOUND", `plugin directory ${pluginDir} does not exist`, {
        hint: "Pass the directory that holds your plugins (.py files or packages).",
      });
    const engine = new Engine({ ...opts, pluginDir });
    for (const cfg of await engine.loadState()) engine.add(cfg);
    return engine;
  }

  private get statePath(): string | undefined {
    return this.opts.stateDir && path.join(this.opts.stateDir, STATE_FILE);
  }

  private async loadState(): Promise<TriggerConfig[]> {
    const file = this.statePath;
    if (!file) return [];
    let text: string;
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (err) {
      if (hasErrno(err, "ENOENT")) return [];
      throw err;
    }
    try {
      return (JSON.parse(text) as { triggers: TriggerConfig[] }).triggers;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new PyportError("E_CONFIG", `${file} is not valid JSON: ${err.message}`, {
        hint: "Fix or remove the file (it holds the engine's trigger definitions).",
      });
    }
  }

  private async saveState(): Promise<void> {
    const file = this.statePath;
    if (!file) return;
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const triggers = [...this.triggers.values()].map((t) => t.config);
    await writeFileAtomic(file, JSON.stringify({ version: 1, triggers }, null, 2) + "\n");
  }

  private runtimeFor(cfg: TriggerConfig, overrides: Partial<TriggerContext> = {}): TriggerRuntime {
    return new TriggerRuntime(
      { ...cfg },
      {
        pluginDir: this.opts.pluginDir,
        environment: (plugin) => this.envs.environment(plugin),
        startWorkers: (req) => this.starter.start(req),
        hostFunctions: (name) => this.hostFunctionsFor(name),
        log: (trigger, level, message) => this.log.add(trigger, level, message),
        deliver: (writes) => this.deliver(writes),
        onDisabled: (name) => void this.disableTrigger(name),
        idleMs: this.opts.idleMs ?? 300_000,
        ...overrides,
      },
    );
  }

  private add(cfg: TriggerConfig): TriggerRuntime {
    const t = this.runtimeFor(cfg);
    this.triggers.set(cfg.name, t);
    return t;
  }

  /**
   * Runs `plugin` once, in a fresh worker, as a trigger of that kind would (nothing persists, no
   * trigger is created): its logs, its writes (not delivered to the host), its response or its
   * error with the traceback.
   */
  async test(opts: EngineTest): Promise<EngineTestResult> {
    this.checkOpen();
    const name = `test-${++this.tests}`;
    const writes: { database: string; line: string }[] = [];
    const logs: LogEntry[] = [];
    const log = (trigger: string, level: LogEntry["level"], message: string) =>
      void logs.push({ seq: logs.length + 1, time: new Date(), trigger, level, message });
    const t = this.runtimeFor(
      {
        name,
        plugin: opts.plugin,
        spec: "all_tables",
        args: opts.args,
        timeoutMs: opts.timeoutMs,
        memoryMb: opts.memoryMb,
      },
      {
        log,
        deliver: async (w) =>
          void w.forEach(([database, lines]) =>
            lines.forEach((line) => writes.push({ database, line })),
          ),
        hostFunctions: (n) => ({
          ...this.hostFunctionsFor(n),
          log: (level: LogEntry["level"], message: string) => log(n, level, message),
          write: (database: string, lines: string[]) =>
            void lines.forEach((line) => writes.push({ database, line })),
        }),
        onDisabled: () => undefined,
      },
    );
    try {
      const req = opts.request ?? {};
      const job: Job =
        opts.kind === "writes"
          ? { kind: "writes", payload: opts.tableBatches ?? [] }
          : opts.kind === "schedule"
            ? { kind: "schedule", payload: (opts.time ?? new Date()).getTime() }
            : {
                kind: "request",
                payload: {
                  method: req.method ?? "GET",
                  path: req.path ?? "test",
                  query: req.query ?? {},
                  headers: req.headers ?? {},
                  body: req.body ?? new Uint8Array(0),
                },
              };
      const run = t.submit(job);
      if (!run) throw new PyportError("E_INTERNAL", "the test invocation was not queued");
      const result = await run;
      return { ok: true, logs, writes, response: result.response ?? undefined };
    } catch (err) {
      return { ok: false, logs, writes, error: describeFailure(err) };
    } finally {
      await t.close();
    }
  }

  private hostFunctionsFor(trigger: string): HostFunctions {
    const host = this.opts.host ?? {};
    return {
      log: (level: LogEntry["level"], message: string) => this.log.add(trigger, level, message),
      cache_put: (scope: string, key: string, data: Uint8Array, ttl: number | null) =>
        this.cache.put(scope, key, data, ttl),
      cache_get: (scope: string, key: string) => this.cache.get(scope, key),
      cache_delete: (scope: string, key: string) => this.cache.delete(scope, key),
      write: (database: string, lines: string[]) => this.deliver([[database, lines]]),
      query: (sql: string, params: Record<string, unknown>, database: string | null) => {
        if (!host.query)
          throw new PyportError(
            "E_USAGE",
            "query() is not available: the engine's host has no query function",
            {
              hint: "Start the engine with host: { query(sql, params, database) { … } } (pyport engine serve --host-module).",
            },
          );
        return host.query(sql, params, database);
      },
      fn: (name: string, args: unknown[], kwargs: Record<string, unknown>) => {
        const fn = host.functions?.[name];
        if (typeof fn !== "function" || !Object.hasOwn(host.functions!, name))
          throw new PyportError("E_NOT_FOUND", `no host function ${JSON.stringify(name)}`);
        return fn(...args, ...(Object.keys(kwargs).length ? [kwargs] : []));
      },
    };
  }

  private async deliver(writes: [string, string[]][]): Promise<void> {
    for (const [database, lines] of writes) {
      if (!lines.length) continue;
      if (this.opts.host?.write) await this.opts.host.write(database, lines);
      else {
        for (const line of lines.slice(-RECENT_WRITES)) this.recent.push({ database, line });
        if (this.recent.length > RECENT_WRITES)
          this.recent.splice(0, this.recent.length - RECENT_WRITES);
      }
    }
  }

  /** Lines plugins wrote, when the engine has no host `write` (the last 10 000). */
  recentWrites(): { database: string; line: string }[] {
    return [...this.recent];
  }

  private get(name: string): TriggerRuntime {
    const t = this.triggers.get(name);
    if (!t) throw new PyportError("E_NOT_FOUND", `no trigger named ${JSON.stringify(name)}`);
    return t;
  }

  async createTrigger(cfg: TriggerConfig): Promise<TriggerInfo> {
    this.checkOpen();
    checkTrigger(cfg);
    if (this.triggers.has(cfg.name))
      throw new PyportError("E_EXISTS", `a trigger named ${JSON.stringify(cfg.name)} exists`, {
        hint: "Delete it first, update it, or choose another name.",
      });
    const plugin = path.join(this.opts.pluginDir, cfg.plugin);
    const st = await fsp.stat(plugin).catch(() => undefined);
    const ok = st?.isFile()
      ? plugin.endsWith(".py")
      : st?.isDirectory() &&
        (await fsp.stat(path.join(plugin, "__init__.py")).catch(() => undefined));
    if (!ok)
      throw new PyportError(
        "E_NOT_FOUND",
        `plugin ${cfg.plugin} is not a .py file or a package in ${this.opts.pluginDir}`,
      );
    this.add(cfg);
    await this.saveState();
    return this.info(cfg.name);
  }

  async updateTrigger(
    name: string,
    changes: Partial<Omit<TriggerConfig, "name">>,
  ): Promise<TriggerInfo> {
    const old = this.get(name);
    const cfg = { ...old.config, ...changes, name };
    checkTrigger(cfg);
    await old.close();
    this.add(cfg);
    await this.saveState();
    return this.info(name);
  }

  enableTrigger(name: string): Promise<TriggerInfo> {
    return this.updateTrigger(name, { disabled: false });
  }

  disableTrigger(name: string): Promise<TriggerInfo> {
    return this.updateTrigger(name, { disabled: true });
  }

  async deleteTrigger(name: string): Promise<void> {
    await this.get(name).close();
    this.triggers.delete(name);
    this.cache.clearScope(name);
    await this.saveState();
  }

  private info(name: string): TriggerInfo {
    const t = this.get(name);
    const { durations: _, ...stats } = t.stats;
    void _;
    return { ...t.config, stats };
  }

  listTriggers(): TriggerInfo[] {
    return [...this.triggers.keys()].map((n) => this.info(n));
  }

  /** Per-trigger figures for /metrics: counts and the invocation durations (seconds). */
  metrics(): { name: string; stats: TriggerStats }[] {
    return [...this.triggers.values()].map((t) => ({ name: t.config.name, stats: t.stats }));
  }

  logs(q?: LogQuery): LogEntry[] {
    return this.log.query(q);
  }

  /**
   * A write of `tableBatches` (`{ table_name, rows }`, as plugins see them) to `database`: fires
   * every enabled `table:<name>` trigger whose table is among them and every `all_tables`
   * trigger — of that database (a trigger without `database` fires for every database). Resolves when those invocations have finished (a full queue drops the batch: logged
   * and counted).
   */
  async write(
    database: string,
    tableBatches: { table_name: string; rows: unknown[] }[],
  ): Promise<WriteResult[]> {
    this.checkOpen();
    const runs: Promise<WriteResult>[] = [];
    for (const t of this.triggers.values()) {
      if (t.config.database !== undefined && t.config.database !== database) continue;
      const spec = t.spec;
      const batches =
        spec.kind === "all_tables"
          ? tableBatches
          : spec.kind === "table"
            ? tableBatches.filter((b) => b.table_name === spec.table)
            : [];
      if (!batches.length || !t.enabled) continue;
      const queued = t.submit({ kind: "writes", payload: batches });
      if (!queued) {
        this.log.add(
          t.config.name,
          "warn",
          `a write of ${batches.length} table batch(es) was dropped: the trigger's queue is full`,
        );
        runs.push(
          Promise.resolve({ trigger: t.config.name, ok: false, error: "dropped: queue full" }),
        );
        continue;
      }
      runs.push(
        queued.then(
          () => ({ trigger: t.config.name, ok: true }),
          (err: Error) => ({ trigger: t.config.name, ok: false, error: err.message }),
        ),
      );
    }
    return Promise.all(runs);
  }

  /**
   * Serves `/api/v3/engine/<path>` for the request trigger of that path (exact match) from any
   * Node HTTP server; resolves false, writing nothing, when no trigger has the path. A full
   * queue answers 503; a failed plugin 500 (its traceback goes to the log, not to the client).
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    return serveRequest(
      (sub) =>
        [...this.triggers.values()].find((t) => t.spec.kind === "request" && t.spec.path === sub),
      req,
      res,
    );
  }

  /**
   * `pip install` into the engine's virtualenv with the runtime's pip and the user's pip
   * configuration, pip's output streamed to `onOutput`. Rejects with a `PipFailure` (its
   * `exitCode` is pip's) when pip fails. Triggers on that venv restart their workers before
   * their next invocation, so new packages import.
   */
  async install(what: string[] | string | InstallRequest, onOutput?: PipOutput): Promise<void> {
    this.checkOpen();
    // A list is packages, a string a requirements file.
    const req: InstallRequest = Array.isArray(what)
      ? { packages: what }
      : typeof what === "string"
        ? { requirementsFile: what }
        : what;
    await this.envs.install(req, onOutput);
    const given = [
      ...(req.packages ?? []),
      ...(req.requirementsFile ? [`-r ${req.requirementsFile}`] : []),
    ];
    this.log.add("engine", "info", `installed ${given.join(" ")}`);
  }

  private checkOpen(): void {
    if (this.closed) throw new PyportError("E_USAGE", "this engine was closed");
  }

  /** Stops every trigger (running invocations may finish, up to `timeoutMs`); then the process can exit. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.closed = true;
    await Promise.all([
      ...[...this.triggers.values()].map((t) => t.close(opts)),
      this.starter.close(),
    ]);
  }
}
