/**
 * Runs services of a bundle in the foreground, as `pyport run` does: each service is a child
 * process in its own process group, its output lines prefixed with the time and its name (or
 * passed through untouched with `raw`), restarted by its policy with a bounded exponential
 * back-off (0.5 s doubling to 30 s; reset after 10 s of running), its health checked and its
 * transitions reported. `stop()` sends each service its stop signal and, after its stop
 * timeout, SIGKILL to its group. The result is the exit status of the service (or, with
 * several, the first non-zero one): its code, or 128 + the signal number.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Writable } from "node:stream";
import type { ServiceSpec } from "../bundle/service-spec.js";
import { checkHealth } from "./health.js";

export interface RunnableService extends ServiceSpec {
  /** The command inside the bundle (bundle-relative first word), as the manifest records it. */
  command: string[];
}

export interface SupervisorOptions {
  bundle: string;
  services: RunnableService[];
  /** Arguments appended to every service's (from `pyport run … -- ARGS`). */
  extraArgs?: string[];
  raw?: boolean;
  stdout?: Writable;
  stderr?: Writable;
  /** Back-off bounds (tests shorten them). */
  backoff?: { firstMs: number; maxMs: number; resetAfterMs: number };
}

const DEFAULT_BACKOFF = { firstMs: 500, maxMs: 30_000, resetAfterMs: 10_000 };

function clock(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** The exit status a shell would report: the code, or 128 + the signal's number. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

/** The program to start: bundle-relative paths resolved, bare names found in the bundle's bin/ first. */
function program(bundle: string, word: string): string {
  if (path.isAbsolute(word)) return word;
  if (word.includes("/")) return path.join(bundle, word);
  const inBundle = path.join(bundle, "bin", word);
  return fs.existsSync(inBundle) ? inBundle : word;
}

class Supervised {
  private child?: ChildProcess;
  private stopping = false;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private health?: NodeJS.Timeout;
  private healthy?: boolean;
  private failures = 0;
  status = 0;
  readonly done: Promise<number>;
  private finish!: (status: number) => void;

  constructor(
    private readonly spec: RunnableService,
    private readonly opts: SupervisorOptions & { width: number },
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  private say(message: string): void {
    const err = this.opts.stderr ?? process.stderr;
    err.write(
      this.opts.raw
        ? `pyport: ${this.spec.name}: ${message}\n`
        : `${clock()} ${this.spec.name.padEnd(this.opts.width)} * ${message}\n`,
    );
  }

  private pipe(from: NodeJS.ReadableStream, to: Writable): void {
    if (this.opts.raw) {
      from.on("data", (d: Buffer) => to.write(d));
      return;
    }
    const rl = readline.createInterface({ input: from, crlfDelay: Infinity });
    rl.on("line", (line) =>
      to.write(`${clock()} ${this.spec.name.padEnd(this.opts.width)} | ${line}\n`),
    );
  }

  start(): void {
    const [first, ...rest] = this.spec.command;
    const args = [...rest, ...this.spec.args, ...(this.opts.extraArgs ?? [])];
    const cwd = path.join(this.opts.bundle, this.spec.workdir ?? ".");
    const started = Date.now();
    const child = spawn(program(this.opts.bundle, first), args, {
      cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a terminal's Ctrl-C reaches pyport, which forwards it
    });
    this.child = child;
    this.pipe(child.stdout!, this.opts.stdout ?? process.stdout);
    this.pipe(child.stderr!, this.opts.stderr ?? process.stderr);
    let spawnFailed = false;
    child.on("error", (err) => {
      spawnFailed = true;
      this.say(`cannot start ${first}: ${err.message}`);
    });
    child.on("spawn", () => {
      this.say(`started (pid ${child.pid}): ${[first, ...args].join(" ")}`);
      this.watchHealth();
    });
    child.on("close", (code, signal) => {
      clearTimeout(this.health);
      this.healthy = undefined;
      this.failures = 0;
      const status = spawnFailed ? 127 : exitStatus(code, signal);
      this.status = status;
      if (spawnFailed) return this.finish(status); // a missing program does not appear by retrying
      const how = signal ? `was killed by ${signal}` : `exited with ${code ?? 127}`;
      const { restart } = this.spec;
      const again =
        !this.stopping && (restart === "always" || (restart === "on-failure" && status !== 0));
      if (!again) {
        this.say(how);
        this.finish(status);
        return;
      }
      const b = this.opts.backoff ?? DEFAULT_BACKOFF;
      if (Date.now() - started >= b.resetAfterMs) this.attempt = 0;
      const delay = Math.min(b.firstMs * 2 ** this.attempt++, b.maxMs);
      this.say(
        `${how}; restarting in ${(delay / 1000).toFixed(1)} s (restart = ${restart}, attempt ${this.attempt})`,
      );
      this.timer = setTimeout(() => this.start(), delay);
    });
  }

  private watchHealth(): void {
    const h = this.spec.health;
    if (!h) return;
    const port = this.spec.ports.find((p) => p.protocol === "tcp")?.port;
    const tick = async () => {
      const child = this.child;
      const result = await checkHealth(h, { bundle: this.opts.bundle, port, env: this.spec.env });
      const ended = !child || child.exitCode !== null || child.signalCode !== null;
      if (this.child !== child || this.stopping || ended) return;
      if (result.ok) {
        this.failures = 0;
        if (this.healthy !== true) this.say(this.healthy === false ? "healthy again" : "healthy");
        this.healthy = true;
      } else if (++this.failures >= h.retries && this.healthy !== false) {
        this.say(`unhealthy: ${result.reason} (${this.failures} failed check(s) in a row)`);
        this.healthy = false;
      }
      this.health = setTimeout(() => void tick(), h.intervalMs);
    };
    // The first check comes soon after the start; then one per interval.
    this.health = setTimeout(() => void tick(), Math.min(h.intervalMs, 500));
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.timer);
    clearTimeout(this.health);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.finish(this.status);
      return;
    }
    this.say(
      `stopping (${this.spec.stopSignal}, SIGKILL after ${this.spec.stopTimeoutMs / 1000} s)`,
    );
    child.kill(this.spec.stopSignal);
    const kill = setTimeout(() => {
      this.say(`did not stop within ${this.spec.stopTimeoutMs / 1000} s; killing it`);
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, this.spec.stopTimeoutMs);
    void this.done.then(() => clearTimeout(kill));
  }
}

export class Supervisor {
  private readonly running: Supervised[];

  constructor(opts: SupervisorOptions) {
    const width = Math.max(...opts.services.map((s) => s.name.length));
    this.running = opts.services.map((s) => new Supervised(s, { ...opts, width }));
  }

  /** Starts every service; resolves with the exit status when all have ended. */
  async run(): Promise<number> {
    for (const s of this.running) s.start();
    const statuses = await Promise.all(this.running.map((s) => s.done));
    return statuses.find((s) => s !== 0) ?? 0;
  }

  /** Stops every service (its stop signal, then SIGKILL after its timeout). */
  stop(): void {
    for (const s of this.running) s.stop();
  }
}
