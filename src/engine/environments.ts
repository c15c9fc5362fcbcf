/**
 * Which interpreter runs a plugin: the engine's virtualenv (default `<plugin-dir>/.venv`), or the
 * plugin's own when the plugin is a directory with a requirements.txt (installed on first use
 * and again whenever that file changes), all layered on one read-only runtime. A generation
 * number per environment tells a trigger when its workers must restart to see new packages.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { givenInterpreter, managedInterpreter } from "../host/interpreter.js";
import { PluginVenv, type InstallRequest, type PipOutput } from "./venv.js";

export interface PluginEnvironment {
  python: string;
  /** The virtualenv's directory (exported to plugins as VIRTUAL_ENV, as InfluxDB does). */
  venv?: string;
  /** Changes whenever packages were installed into this environment. */
  generation: number;
}

interface OwnVenv {
  venv: PluginVenv;
  /** mtime and size of the requirements.txt last synced. */
  stamp?: string;
  generation: number;
}

export class Environments {
  private base?: Promise<string>;
  private readonly shared?: PluginVenv;
  private sharedGeneration = 0;
  private readonly own = new Map<string, OwnVenv>();
  private readonly ownRoot: string;

  /**
   * @param pluginDir the engine's plugin directory
   * @param runtime a runtime/bundle directory or interpreter; default: the runtime pyport manages
   * @param virtualEnv the engine's venv directory, or false to run on the runtime itself
   */
  constructor(
    private readonly pluginDir: string,
    private readonly runtime: string | undefined,
    virtualEnv: string | false | undefined,
    private readonly log: (level: "info" | "warn" | "error", message: string) => void,
  ) {
    const dir =
      virtualEnv === false ? undefined : path.resolve(virtualEnv ?? path.join(pluginDir, ".venv"));
    if (dir) this.shared = new PluginVenv(dir, () => this.basePython(), log);
    this.ownRoot = path.join(dir ? path.dirname(dir) : pluginDir, ".venvs");
  }

  /** The runtime's interpreter (resolved once). */
  basePython(): Promise<string> {
    this.base ??= this.runtime
      ? Promise.resolve().then(() => givenInterpreter(this.runtime!))
      : managedInterpreter();
    this.base.catch(() => (this.base = undefined));
    return this.base;
  }

  /**
   * The environment `plugin` runs in, made or brought up to date first. Cheap when nothing
   * changed: one stat of the plugin's requirements.txt.
   */
  async environment(plugin: string): Promise<PluginEnvironment> {
    // Only a plugin directory can have a requirements.txt (no stat, no exception, for a file).
    const requirements = plugin.endsWith(".py")
      ? undefined
      : path.join(this.pluginDir, plugin, "requirements.txt");
    const st = requirements ? fs.statSync(requirements, { throwIfNoEntry: false }) : undefined;
    if (!requirements || !st?.isFile()) {
      if (!this.shared) return { python: await this.basePython(), generation: 0 };
      return {
        python: await this.shared.ready(),
        venv: this.shared.dir,
        generation: this.sharedGeneration,
      };
    }
    let own = this.own.get(plugin);
    if (!own) {
      own = {
        venv: new PluginVenv(path.join(this.ownRoot, plugin), () => this.basePython(), this.log),
        generation: 0,
      };
      this.own.set(plugin, own);
    }
    const stamp = `${st.mtimeMs}:${st.size}`;
    if (own.stamp !== stamp) {
      await own.venv.ready();
      if (await own.venv.syncRequirements(requirements)) own.generation++;
      own.stamp = stamp;
    }
    return { python: own.venv.python, venv: own.venv.dir, generation: own.generation };
  }

  /** pip install into the engine's venv; triggers on it restart their workers afterwards. */
  async install(req: InstallRequest, onOutput?: PipOutput): Promise<void> {
    if (!this.shared)
      throw new PyportError(
        "E_USAGE",
        "this engine runs without a virtualenv (virtualEnv: false)",
        {
          hint: "Start the engine with a virtualEnv directory to install packages.",
        },
      );
    try {
      await this.shared.install(req, onOutput);
    } finally {
      this.sharedGeneration++; // pip may have changed the venv even when it failed
    }
  }
}
