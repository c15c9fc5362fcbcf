/**
 * Worker start-up for triggers, with one spare: an interpreter started ahead of need (with the
 * engine's modules loaded) that the next trigger to start a single worker takes over, so a cold
 * plugin's first invocation pays for importing the plugin, not for starting Python. The spare is
 * bound to its trigger when taken — host functions and output go through a binding set then —
 * and a new spare starts in the background. It is kept only for the environment (interpreter
 * and package generation) it was started in, and never for a trigger with a memory limit or a
 * nice value (both are set when a worker starts).
 */
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

  /** @param options what every worker starts with (engine path, environment variables) */
  constructor(private readonly options: (env: PluginEnvironment) => StartOptions) {}

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

  /** Stops the spare; no new one starts. */
  async close(): Promise<void> {
    this.closed = true;
    const old = this.spare;
    this.spare = undefined;
    const py = await old?.started.catch(() => undefined);
    await py?.close();
  }
}
