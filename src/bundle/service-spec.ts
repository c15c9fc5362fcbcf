/**
 * The service spec: `[tool.pyport.service]` (one service, named like the project) or
 * `[tool.pyport.services.<name>]` (several) — what `pyport run` starts and supervises, and what
 * an OCI image's config carries. Validated like the rest of the configuration: every error
 * names the file, the line and the key. Durations are seconds (a number) or "500ms", "10s", "2m".
 */
import { PyportError } from "../errors.js";
import { closest, ConfigReader } from "./config-reader.js";

export const RESTART_POLICIES = ["no", "on-failure", "always"] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export interface ServicePort {
  port: number;
  protocol: "tcp" | "udp";
}

export interface HealthCheck {
  /** An HTTP path, fetched from 127.0.0.1 on the service's first TCP port; 2xx/3xx is healthy. */
  http?: string;
  /** Or a command (relative paths are inside the bundle); exit 0 is healthy. */
  command?: string[];
  intervalMs: number;
  timeoutMs: number;
  /** Failures in a row before the service counts as unhealthy. */
  retries: number;
}

export interface ServiceSpec {
  name: string;
  /** A console script of the project (bin/<entry> in the bundle)… */
  entry?: string;
  /** …or a command: its first word is a path inside the bundle (bin/python3) or a program. */
  command?: string[];
  args: string[];
  env: Record<string, string>;
  ports: ServicePort[];
  health?: HealthCheck;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  restart: RestartPolicy;
  /** The working directory, relative to the bundle (default: the bundle's root). */
  workdir?: string;
}

const SERVICE_KEYS = [
  "entry",
  "command",
  "args",
  "env",
  "ports",
  "health",
  "stop-signal",
  "stop-timeout",
  "restart",
  "workdir",
] as const;
const HEALTH_KEYS = ["http", "command", "interval", "timeout", "retries"] as const;
const SIGNALS = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL"];

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => !!v && typeof v === "object" && !Array.isArray(v);

/** Milliseconds of a duration value, or undefined when it is not one. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.round(v * 1000);
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)$/.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60000));
}

function duration(r: ConfigReader, t: Table, key: string, sub: string, fallback: number): number {
  if (t[key] === undefined) return fallback;
  const ms = parseDuration(t[key]);
  if (ms === undefined)
    r.fail(
      sub ? `${sub}.${key}` : key,
      `${JSON.stringify(t[key])} is not a duration`,
      `Use seconds (${key} = 10) or a string with a unit: "500ms", "10s", "2m".`,
    );
  return ms;
}

/** A command as an array, or a string split on spaces. */
function commandOf(r: ConfigReader, t: Table, key: string, sub: string): string[] | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  const words = typeof v === "string" ? v.trim().split(/\s+/) : v;
  if (!Array.isArray(words) || !words.length || words.some((w) => typeof w !== "string" || !w))
    r.fail(
      sub ? `${sub}.${key}` : key,
      `expected a command (an array of strings), got ${JSON.stringify(v)}`,
      `Example: ${key} = ["bin/python3", "-m", "myapp"]`,
    );
  return words as string[];
}

function readPorts(r: ConfigReader, t: Table): ServicePort[] {
  const v = t.ports ?? [];
  const bad = (what: unknown): never =>
    r.fail(
      "ports",
      `${JSON.stringify(what)} is not a port`,
      'Example: ports = [8080, "5353/udp"] (a number 1–65535, optionally "/tcp" or "/udp").',
    );
  if (!Array.isArray(v)) return bad(v);
  return v.map((p) => {
    const m =
      typeof p === "number" ? [String(p), String(p)] : /^(\d+)(?:\/(tcp|udp))?$/.exec(String(p));
    if (typeof p !== "number" && typeof p !== "string") return bad(p);
    const port = m ? Number(m[1]) : NaN;
    if (!m || !Number.isInteger(port) || port < 1 || port > 65535) return bad(p);
    return { port, protocol: (m[2] === "udp" ? "udp" : "tcp") as ServicePort["protocol"] };
  });
}

function readHealth(r: ConfigReader, t: Table): HealthCheck | undefined {
  const h = t.health;
  if (h === undefined) return undefined;
  if (!isTable(h))
    return r.fail(
      "health",
      "expected a table",
      'Example: health = { http = "/health", interval = "10s", timeout = "2s" }',
    );
  r.knownKeys(h, HEALTH_KEYS, "health");
  const http = r.string(h, "http");
  const command = commandOf(r, h, "command", "health");
  if (!http === !command)
    r.fail(
      "health",
      http ? "http and command are both set" : "needs http or command",
      'Choose one: health = { http = "/health" } or health = { command = ["bin/check"] }.',
    );
  if (http && !http.startsWith("/"))
    r.fail("health.http", `${JSON.stringify(http)} is not a path`, 'Example: http = "/health"');
  const retries = h.retries ?? 3;
  if (!Number.isInteger(retries) || (retries as number) < 1)
    r.fail("health.retries", `expected a whole number ≥ 1, got ${JSON.stringify(retries)}`, "");
  if (http && !readPorts(r, t).some((p) => p.protocol === "tcp"))
    r.fail("health", "an HTTP health check needs a TCP port", "Add one: ports = [8080].");
  return {
    http,
    command,
    intervalMs: duration(r, h, "interval", "health", 10_000),
    timeoutMs: duration(r, h, "timeout", "health", 2_000),
    retries: retries as number,
  };
}

function readService(r: ConfigReader, t: Table, name: string, scripts?: string[]): ServiceSpec {
  r.knownKeys(t, SERVICE_KEYS);
  const entry = r.string(t, "entry");
  const command = commandOf(r, t, "command", "");
  if (entry && command)
    r.fail("command", "entry and command are both set", "Choose one way to start the service.");
  if (entry && scripts && !scripts.includes(entry)) {
    const near = closest(entry, scripts);
    r.fail(
      "entry",
      `${JSON.stringify(entry)} is not a console script of the project`,
      `${near ? `Did you mean "${near}"? ` : ""}[project.scripts] has: ${scripts.join(", ") || "none"}.`,
    );
  }
  const env = t.env ?? {};
  if (!isTable(env) || Object.values(env).some((v) => typeof v !== "string"))
    r.fail(
      "env",
      `expected a table of strings, got ${JSON.stringify(env)}`,
      'Example: env = { LOG_LEVEL = "info" }',
    );
  const stopSignal = (r.string(t, "stop-signal") ?? "SIGTERM").toUpperCase();
  const signal = stopSignal.startsWith("SIG") ? stopSignal : `SIG${stopSignal}`;
  if (!SIGNALS.includes(signal))
    r.fail(
      "stop-signal",
      `${JSON.stringify(t["stop-signal"])} is not a signal pyport forwards`,
      `Use one of: ${SIGNALS.join(", ")}.`,
    );
  return {
    name,
    entry,
    command,
    args: r.strings(t, "args") ?? [],
    env: { ...(env as Record<string, string>) },
    ports: readPorts(r, t),
    health: readHealth(r, t),
    stopSignal: signal as NodeJS.Signals,
    stopTimeoutMs: duration(r, t, "stop-timeout", "", 10_000),
    restart: r.oneOf(t, "restart", RESTART_POLICIES) ?? "on-failure",
    workdir: r.string(t, "workdir"),
  };
}

/**
 * The services of `tool` (`[tool.pyport]`, or the top level of pyport.toml when `table` is "").
 * `scripts`: the project's declared console scripts, when known, to check `entry` against.
 */
export function readServices(
  tool: Table,
  where: { file: string; text: string; table: string; project: string; scripts?: string[] },
): ServiceSpec[] {
  const prefix = where.table ? `${where.table}.` : "";
  const reader = (table: string) => new ConfigReader(where.file, where.text, `${prefix}${table}`);
  const top = new ConfigReader(where.file, where.text, where.table);
  const out: ServiceSpec[] = [];
  const { service, services } = tool;
  if (service !== undefined) {
    if (!isTable(service))
      return top.fail(
        "service",
        "expected a table",
        'Example: [tool.pyport.service] entry = "app"',
      );
    out.push(readService(reader("service"), service, where.project, where.scripts));
  }
  if (services !== undefined) {
    if (!isTable(services))
      return top.fail(
        "services",
        "expected a table of services",
        "Example: [tool.pyport.services.web]",
      );
    for (const [name, t] of Object.entries(services)) {
      const key = `services.${name}`;
      if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name))
        top.fail(
          key,
          `${JSON.stringify(name)} is not a service name`,
          "Use letters, digits, - and _.",
        );
      if (!isTable(t)) return top.fail(key, "expected a table", `Example: [${prefix}${key}]`);
      if (out.some((s) => s.name === name))
        top.fail(key, `a service named ${JSON.stringify(name)} is already defined`, "Rename one.");
      out.push(readService(reader(key), t, name, where.scripts));
    }
  }
  return out;
}

/** The default service of a project without a spec: its console script, nothing else. */
export function defaultService(name: string): ServiceSpec {
  return {
    name,
    args: [],
    env: {},
    ports: [],
    stopSignal: "SIGTERM",
    stopTimeoutMs: 10_000,
    restart: "on-failure",
  };
}

/**
 * The command that starts `spec` inside the bundle: its `command`, or `bin/<entry>`, where the
 * entry defaults to the project's only console script (or the one named like the project).
 */
export function serviceCommand(
  spec: ServiceSpec,
  scripts: readonly string[],
  project: string,
): string[] {
  if (spec.command) return spec.command;
  const names = [...scripts];
  const entry = spec.entry ?? (names.length === 1 ? names[0] : names.find((n) => n === project));
  if (!entry || !names.includes(entry))
    throw new PyportError(
      "E_BUILD",
      entry
        ? `the service ${spec.name} runs ${JSON.stringify(entry)}, which is not a console script of ${project} (it has: ${names.join(", ") || "none"})`
        : `the service ${spec.name} needs an entry: ${project} has ${names.length ? `several console scripts (${names.join(", ")})` : "no console script"}`,
      {
        hint: 'Set entry = "NAME" (a [project.scripts] name) or command = [...] in the service table.',
      },
    );
  return [`bin/${entry}`];
}
