/**
 * Worker start-up for triggers, with one spare: an interpreter started ahead of need (with the
 * engine's modules loaded) that the next trigger to start a single worker takes over, so a cold
 * plugin's first invocation pays for importing the plugin, not for starting Python. The spare is
 * bound to its trigger when taken — host functions and output go through a binding set then —
 * and a new spare starts in the background. It is kept only for the environment (interpreter
 * and package generation) it was started in, and never for a trigger with a memory limit or a
 * nice value (both are set when a worker starts).
 *
 * Workers are forked by a fork server per environment (src/host/fork-server.ts) once it is
 * ready: a replacement for a crashed worker then costs ~4 ms of CPU instead of ~65 ms, which
 * is what keeps a crash-looping plugin from taking the CPU other triggers need.
 */
import { ForkServer } from "../host/fork-server.js";
import { Python, type StartOptions } from "../host/python.js";
import type { HostFunctions } from "../host/worker.js";
import type { PluginEnvironment } from "./environments.js";

export interface WorkerBinding {
  hostFunctions: HostFunctions;
  onOutput: NonNullable<StartOptions["onOutput"]>;
}

export interface WorkerRequest {
  env: PluginEnvironment;
  workers: number;
  memoryMb?: number;
  /** A nice value (a crash-looping trigger's workers yield the CPU to the others). */
  nice?: number;
  binding: WorkerBinding;
}

/** The host functions pyport_engine.py calls; a spare forwards them to its binding. */
const ENGINE_FUNCTIONS = ["log", "cache_put", "cache_get", "cache_delete", "write", "query", "fn"];

interface Spare {
  key: string;
  started: Promise<Python>;
  bind: (b: WorkerBinding) => void;
}

export class WorkerStarter {
  private spare?: Spare;
  private closed = false;
  /** Fork servers by environment key (null: none can run here, without the native addon). */
  private readonly servers = new Map<string, ForkServer | null>();

  /**
   * @param options what every worker starts with (engine path, environment variables)
   * @param log where a fork server's problems are reported
   */
  constructor(
    private readonly options: (env: PluginEnvironment) => StartOptions,
    private readonly log: (level: "warn", message: string) => void = () => undefined,
  ) {}

  /**
   * The fork server for an environment's workers, started on first need (workers are spawned
   * while it starts). One per interpreter: a new package generation replaces the old one.
   */
  private forkServer(env: PluginEnvironment): ForkServer | undefined {
    const key = WorkerStarter.key(env);
    if (this.closed) return undefined;
    if (this.servers.has(key)) return this.servers.get(key) ?? undefined;
    for (const [k, old] of this.servers)
      if (k.startsWith(`${env.python}\0`)) {
        old?.close();
        this.servers.delete(k);
      }
    const o = this.options(env);
    const server = ForkServer.start({
      python: o.python ?? env.python,
      cwd: o.cwd,
      env: o.env,
      path: o.path,
      preload: o.preload,
      onProblem: (message) => this.log("warn", `the fork server for ${env.python} ${message}`),
    });
    this.servers.set(key, server);
    return server ?? undefined;
  }

  private static key(env: PluginEnvironment): string {
    return `${env.python}\0${env.generation}`;
  }

  private launch(env: PluginEnvironment, workers: number, memoryMb?: number, nice?: number): Spare {
    let bound: WorkerBinding | undefined;
    const hostFunctions: HostFunctions = {};
    for (const name of ENGINE_FUNCTIONS)
      hostFunctions[name] = (...args: unknown[]) => {
        if (!bound) throw new Error("this worker is not bound to a trigger yet");
        return bound.hostFunctions[name](...args);
      };
    const started = Python.start({
      ...this.options(env),
      forkServer: this.forkServer(env),
      workers,
      memoryLimitMb: memoryMb,
      nice,
      hostFunctions,
      onOutput: (o) => bound?.onOutput(o),
    });
    return { key: WorkerStarter.key(env), started, bind: (b) => (bound = b) };
  }

  /** Workers for a trigger: the spare when it fits, else started now. Refills the spare. */
  start(req: WorkerRequest): Promise<Python> {
    const fits =
      req.workers === 1 &&
      !req.memoryMb &&
      !req.nice &&
      this.spare?.key === WorkerStarter.key(req.env);
    const taken = fits ? this.spare! : this.launch(req.env, req.workers, req.memoryMb, req.nice);
    if (fits) this.spare = undefined;
    taken.bind(req.binding);
    if (!this.closed && (!this.spare || this.spare.key !== WorkerStarter.key(req.env))) {
      this.discard();
      const next = this.launch(req.env, 1);
      next.started.catch(() => {
        if (this.spare === next) this.spare = undefined;
      });
      this.spare = next;
    }
    return taken.started;
  }

  private discard(): void {
    const old = this.spare;
    this.spare = undefined;
    void old?.started.then(
      (p) => p.close(),
      () => undefined,
    );
  }

  /** Stops the spare and the fork servers (each leaves once its workers have); no new one starts. */
  async close(): Promise<void> {
    this.closed = true;
    for (const server of this.servers.values()) server?.close();
    const old = this.spare;
    this.spare = undefined;
    const py = await old?.started.catch(() => undefined);
    await py?.close();
  }
}
