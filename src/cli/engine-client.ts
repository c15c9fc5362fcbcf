/** `pyport engine trigger|install|logs`: talk to a running `pyport engine serve` over its admin API. */
import * as fs from "node:fs";
import { PyportError } from "../errors.js";
import { parse } from "./args.js";

export const CLIENT_USAGE = `Usage: pyport engine trigger create NAME --plugin P --spec S [--args k=v,...]
                           [--database D] [--error-behavior log|retry|disable]
                           [--timeout-ms N] [--memory-mb N] [--run-async] [--disabled]
       pyport engine trigger list [--json]
       pyport engine trigger enable|disable|delete NAME
       pyport engine install (-r FILE | PKG...)
       pyport engine logs [--trigger T] [--level info|warn|error] [--limit N] [--follow]

Talks to a running 'pyport engine serve':
  --url URL     the server (default $PYPORT_ENGINE_URL, else http://127.0.0.1:8181)
  --token T     its admin token (default $PYPORT_ENGINE_TOKEN)
install runs the runtime's pip into the engine's virtualenv, printing pip's output as it comes,
and exits with pip's exit code. logs --follow prints new entries until interrupted.
Specs: table:<name>, all_tables, every:<duration>, cron:<6 fields>, request:<path>.
Example: pyport engine trigger create sums --plugin summarise.py --spec table:cpu`;

interface Client {
  call(method: string, route: string, body?: unknown): Promise<Response>;
}

function client(url: string | undefined, token: string | undefined): Client {
  const base = (url ?? process.env.PYPORT_ENGINE_URL ?? "http://127.0.0.1:8181").replace(/\/$/, "");
  const bearer = token ?? process.env.PYPORT_ENGINE_TOKEN;
  if (!bearer)
    throw new PyportError("E_USAGE", "the engine's admin API needs its token", {
      hint: "Pass --token T or set PYPORT_ENGINE_TOKEN (serve prints the token it made at start).",
    });
  return {
    async call(method, route, body) {
      let res: Response;
      try {
        res = await fetch(`${base}/api/v3/engine-admin/${route}`, {
          method,
          headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new PyportError(
          "E_NOT_FOUND",
          `no engine answers at ${base}: ${(err as Error).cause ?? (err as Error).message}`,
          {
            hint: "Start one with 'pyport engine serve --plugin-dir D', or pass --url.",
          },
        );
      }
      if (res.ok) return res;
      const text = await res.text();
      let detail: { error?: string; hint?: string } = {};
      try {
        detail = JSON.parse(text) as typeof detail;
      } catch {
        detail = { error: text.trim() };
      }
      throw new PyportError(
        res.status === 404 ? "E_NOT_FOUND" : res.status === 409 ? "E_EXISTS" : "E_USAGE",
        `the engine answered ${res.status}: ${detail.error ?? res.statusText}`,
        { hint: res.status === 401 ? "Check --token or PYPORT_ENGINE_TOKEN." : detail.hint },
      );
    },
  };
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new PyportError("E_USAGE", `${flag} must be a positive whole number, got ${v}`);
  return n;
}

interface LogLine {
  seq: number;
  time: string;
  trigger: string;
  level: string;
  message: string;
}

const printLog = (e: LogLine) =>
  process.stdout.write(`${e.time} ${e.trigger} ${e.level}: ${e.message}\n`);

export async function engineClientCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      url: { type: "string" },
      token: { type: "string" },
      plugin: { type: "string" },
      spec: { type: "string" },
      args: { type: "string" },
      database: { type: "string" },
      "error-behavior": { type: "string" },
      "timeout-ms": { type: "string" },
      "memory-mb": { type: "string" },
      "run-async": { type: "boolean" },
      disabled: { type: "boolean" },
      requirements: { type: "string", short: "r" },
      trigger: { type: "string" },
      level: { type: "string" },
      limit: { type: "string" },
      follow: { type: "boolean", short: "f" },
      json: { type: "boolean" },
    },
    CLIENT_USAGE,
  );
  if (values.help) {
    process.stdout.write(CLIENT_USAGE + "\n");
    return 0;
  }
  const [sub, action, ...rest] = positionals;
  const api = client(values.url, values.token);
  if (sub === "trigger") {
    if (action === "list") {
      const triggers = (await (await api.call("GET", "triggers")).json()) as {
        name: string;
        plugin: string;
        spec: string;
        disabled?: boolean;
        stats: { invocations: number; errors: number; dropped: number };
      }[];
      if (values.json) process.stdout.write(JSON.stringify(triggers, null, 2) + "\n");
      else if (!triggers.length) process.stdout.write("no triggers\n");
      else
        for (const t of triggers)
          process.stdout.write(
            `${t.name}  ${t.plugin}  ${t.spec}${t.disabled ? "  (disabled)" : ""}  ` +
              `${t.stats.invocations} invocations, ${t.stats.errors} errors, ${t.stats.dropped} dropped\n`,
          );
      return 0;
    }
    const name = rest[0] ?? "";
    if (!name || rest.length > 1)
      throw new PyportError(
        "E_USAGE",
        `pyport engine trigger ${action ?? ""} needs one trigger NAME`,
        {
          hint: "Example: pyport engine trigger create sums --plugin summarise.py --spec table:cpu",
        },
      );
    if (action === "create") {
      if (!values.plugin || !values.spec)
        throw new PyportError("E_USAGE", "trigger create needs --plugin P and --spec S", {
          hint: "Example: pyport engine trigger create sums --plugin summarise.py --spec table:cpu",
        });
      const t = await api.call("POST", "triggers", {
        name,
        plugin: values.plugin,
        spec: values.spec,
        args: values.args,
        database: values.database,
        errorBehavior: values["error-behavior"],
        timeoutMs: positiveInt("--timeout-ms", values["timeout-ms"]),
        memoryMb: positiveInt("--memory-mb", values["memory-mb"]),
        runAsync: values["run-async"],
        disabled: values.disabled,
      });
      await t.body?.cancel();
      process.stdout.write(`created trigger ${name}\n`);
      return 0;
    }
    if (action === "enable" || action === "disable") {
      await (
        await api.call("POST", `triggers/${encodeURIComponent(name)}/${action}`)
      ).body?.cancel();
      process.stdout.write(`${action}d trigger ${name}\n`);
      return 0;
    }
    if (action === "delete") {
      await (await api.call("DELETE", `triggers/${encodeURIComponent(name)}`)).body?.cancel();
      process.stdout.write(`deleted trigger ${name}\n`);
      return 0;
    }
    throw new PyportError("E_USAGE", `unknown trigger command ${JSON.stringify(action ?? "")}`, {
      hint: "Use: pyport engine trigger create|list|enable|disable|delete",
    });
  }
  if (sub === "install") {
    const packages = positionals.slice(1);
    if (!packages.length && !values.requirements)
      throw new PyportError("E_USAGE", "pyport engine install needs packages or -r FILE", {
        hint: "Example: pyport engine install requests  or  pyport engine install -r requirements.txt",
      });
    const requirements = values.requirements && fs.readFileSync(values.requirements, "utf8");
    const res = await api.call("POST", "install", { packages, requirements });
    let exitCode = 1;
    let pending = "";
    const handle = (line: string) => {
      if (!line.trim()) return;
      const m = JSON.parse(line) as {
        stream?: string;
        text?: string;
        exitCode?: number;
        error?: string;
        hint?: string;
      };
      if (m.text !== undefined)
        (m.stream === "stderr" ? process.stderr : process.stdout).write(m.text);
      if (m.exitCode !== undefined) {
        exitCode = m.exitCode;
        if (m.error)
          process.stderr.write(`pyport: ${m.error}\n${m.hint ? `hint: ${m.hint}\n` : ""}`);
      }
    };
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      pending += Buffer.from(chunk).toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop()!;
      lines.forEach(handle);
    }
    handle(pending);
    return exitCode;
  }
  if (sub === "logs") {
    const level = values.level;
    if (level !== undefined && !["info", "warn", "error"].includes(level))
      throw new PyportError("E_USAGE", `--level ${level} is not info, warn or error`);
    const query = (after?: number) => {
      const q = new URLSearchParams();
      if (values.trigger) q.set("trigger", values.trigger);
      if (level) q.set("level", level);
      if (values.limit && after === undefined)
        q.set("limit", String(positiveInt("--limit", values.limit)));
      if (after !== undefined) q.set("after", String(after));
      return `logs?${q}`;
    };
    let entries = (await (await api.call("GET", query())).json()) as LogLine[];
    entries.forEach(printLog);
    if (!values.follow) return 0;
    let last = entries.at(-1)?.seq ?? 0;
    let stopped = false;
    const stop = () => (stopped = true);
    process.once("SIGINT", stop).once("SIGTERM", stop);
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 500));
      entries = (await (await api.call("GET", query(last))).json()) as LogLine[];
      entries.forEach(printLog);
      last = entries.at(-1)?.seq ?? last;
    }
    return 0;
  }
  throw new PyportError("E_USAGE", `unknown engine command ${JSON.stringify(sub ?? "")}`);
}
