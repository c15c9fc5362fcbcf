/** `pyport engine serve|test`: the plugin engine behind an HTTP server, or one plugin run once. */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { PyportError } from "../errors.js";
import { parse } from "./args.js";

export const ENGINE_USAGE = `Usage: pyport engine serve --plugin-dir D [--host 127.0.0.1] [--port 8181]
                           [--token T] [--state-dir D] [--runtime R] [--host-module M.mjs]
                           [--virtual-env-location D]
       pyport engine test PLUGIN (--table T --rows FILE.json | --schedule [TIME] |
                          --request [--method M] [--query k=v]... [--body FILE])
                          [--args k=v,...] [--runtime R] [--host-module M.mjs] [--json]

Runs InfluxDB 3 processing-engine plugins (process_writes, process_scheduled_call,
process_request), each trigger in its own Python worker processes (docs/engine.md).

serve   an HTTP server on loopback (--host 0.0.0.0 to listen elsewhere):
          /api/v3/engine/<path>   request triggers
          /health, /metrics       liveness, Prometheus text
          /api/v3/engine-admin/   triggers, write, logs — Authorization: Bearer <token>
        The token is --token, else $PYPORT_ENGINE_TOKEN, else a random one printed at start.
        --state-dir keeps trigger definitions across restarts. --host-module names an ES module
        exporting query(sql, params, database), write(database, lines) and/or functions;
        without write, written lines are kept in memory (the last 10 000).
test    runs PLUGIN (a .py file or a plugin directory) once in a fresh worker and prints its
        logs, writes, response and error (with the traceback); nothing persists. Exit 1 if the
        plugin failed.
          --table T --rows FILE.json   process_writes with the rows of FILE (a JSON array)
          --schedule [TIME]            process_scheduled_call at TIME (ISO 8601; default now)
          --request                    process_request (--method, --query k=v, --body FILE)
--runtime R   a pyport runtime or bundle directory, or an interpreter (default: pyport's own).
--virtual-env-location D   the engine's virtualenv (default PLUGIN-DIR/.venv, made on first use).
Example: pyport engine test examples/plugins/summarise.py --table cpu --rows rows.json

A running server is managed with 'pyport engine trigger|install|logs' (see
'pyport engine trigger --help').`;

interface HostModule {
  query?: (sql: string, params: Record<string, unknown>, database: string | null) => unknown[];
  write?: (database: string, lines: string[]) => void;
  functions?: Record<string, (...args: unknown[]) => unknown>;
}

async function hostModule(file: string | undefined): Promise<HostModule | undefined> {
  if (!file) return undefined;
  if (!fs.existsSync(file))
    throw new PyportError("E_NOT_FOUND", `--host-module ${file} does not exist`, {
      hint: "An ES module (.mjs) exporting query, write and/or functions.",
    });
  return (await import(pathToFileURL(path.resolve(file)).href)) as HostModule;
}

export async function engineCommand(argv: string[]): Promise<number> {
  if (["trigger", "install", "logs"].includes(argv[0]))
    return (await import("./engine-client.js")).engineClientCommand(argv);
  const { values, positionals } = parse(
    argv,
    {
      "plugin-dir": { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      token: { type: "string" },
      "state-dir": { type: "string" },
      runtime: { type: "string" },
      "host-module": { type: "string" },
      "virtual-env-location": { type: "string" },
      table: { type: "string" },
      rows: { type: "string" },
      schedule: { type: "boolean" },
      request: { type: "boolean" },
      method: { type: "string" },
      query: { type: "string", multiple: true },
      body: { type: "string" },
      args: { type: "string" },
      json: { type: "boolean" },
    },
    ENGINE_USAGE,
  );
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    process.stdout.write(ENGINE_USAGE + "\n");
    return values.help ? 0 : 2;
  }
  const { Engine } = await import("../engine/engine.js");
  const host = await hostModule(values["host-module"]);
  if (sub === "test") {
    const plugin = rest[0];
    if (!plugin || !fs.existsSync(plugin))
      throw new PyportError(
        "E_USAGE",
        `pyport engine test needs a plugin file or directory${plugin ? `: ${plugin} does not exist` : ""}`,
        {
          hint: "Example: pyport engine test examples/plugins/summarise.py --table cpu --rows rows.json",
        },
      );
    const modes = [
      values.table !== undefined,
      values.schedule === true,
      values.request === true,
    ].filter(Boolean).length;
    if (modes !== 1)
      throw new PyportError(
        "E_USAGE",
        "choose one of --table T --rows FILE, --schedule [TIME] or --request",
        {
          hint: "Example: --table cpu --rows rows.json",
        },
      );
    const pluginDir = path.dirname(path.resolve(plugin));
    const venv = path.join(pluginDir, ".venv");
    const engine = await Engine.start({
      pluginDir,
      runtime: values.runtime,
      // The plugin directory's venv when there is one; test makes none.
      virtualEnv: fs.existsSync(path.join(venv, "pyvenv.cfg")) ? venv : false,
      host,
    });
    try {
      let tableBatches;
      if (values.table !== undefined) {
        if (!values.rows)
          throw new PyportError(
            "E_USAGE",
            "--table needs --rows FILE.json (a JSON array of row objects)",
          );
        const rows = JSON.parse(fs.readFileSync(values.rows, "utf8")) as unknown;
        if (!Array.isArray(rows))
          throw new PyportError(
            "E_USAGE",
            `--rows ${values.rows} must hold a JSON array of row objects`,
          );
        tableBatches = [{ table_name: values.table, rows }];
      }
      const time = rest[1] ? new Date(rest[1]) : undefined;
      if (time && Number.isNaN(time.getTime()))
        throw new PyportError("E_USAGE", `--schedule ${rest[1]} is not an ISO 8601 time`);
      const query: Record<string, string[]> = {};
      for (const kv of (values.query as unknown as string[] | undefined) ?? []) {
        const eq = kv.indexOf("=");
        (query[eq < 0 ? kv : kv.slice(0, eq)] ??= []).push(eq < 0 ? "" : kv.slice(eq + 1));
      }
      const r = await engine.test({
        plugin: path.basename(path.resolve(plugin)),
        kind: values.table !== undefined ? "writes" : values.schedule ? "schedule" : "request",
        tableBatches,
        time,
        args: values.args,
        request: {
          method: values.method,
          query,
          body: values.body ? new Uint8Array(fs.readFileSync(values.body)) : undefined,
        },
      });
      const body = r.response ? Buffer.from(r.response.body).toString("utf8") : undefined;
      if (values.json)
        process.stdout.write(
          JSON.stringify({ ...r, response: r.response && { ...r.response, body } }, null, 2) + "\n",
        );
      else {
        for (const l of r.logs)
          process.stdout.write(`${l.level.toUpperCase().padEnd(5)} ${l.message}\n`);
        for (const w of r.writes) process.stdout.write(`WRITE ${w.database}: ${w.line}\n`);
        if (r.response)
          process.stdout.write(
            `RESPONSE ${r.response.status} ${JSON.stringify(Object.fromEntries(r.response.headers))}\n${body}\n`,
          );
        if (r.error) process.stdout.write(`FAILED\n${r.error}\n`);
      }
      return r.ok ? 0 : 1;
    } finally {
      await engine.close();
    }
  }
  if (sub === "serve") {
    if (!values["plugin-dir"])
      throw new PyportError("E_USAGE", "pyport engine serve needs --plugin-dir D", {
        hint: "Example: pyport engine serve --plugin-dir examples/plugins",
      });
    const port = Number(values.port ?? "8181");
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new PyportError("E_USAGE", `--port ${values.port} is not a port number`);
    const { randomBytes } = await import("node:crypto");
    const http = await import("node:http");
    const { engineHandler } = await import("../engine/server.js");
    const token =
      values.token ?? process.env.PYPORT_ENGINE_TOKEN ?? randomBytes(18).toString("base64url");
    const engine = await Engine.start({
      pluginDir: values["plugin-dir"],
      runtime: values.runtime,
      stateDir: values["state-dir"],
      virtualEnv: values["virtual-env-location"],
      host,
      onLog: (e) =>
        process.stderr.write(`${e.time.toISOString()} ${e.trigger} ${e.level}: ${e.message}\n`),
    });
    const server = http.createServer(engineHandler(engine, token));
    const bind = values.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) =>
      server.once("error", reject).listen(port, bind, resolve),
    );
    const actual = (server.address() as { port: number }).port;
    process.stdout.write(
      `pyport engine: listening on http://${bind}:${actual} (plugins in ${path.resolve(values["plugin-dir"])})\n`,
    );
    if (!values.token && !process.env.PYPORT_ENGINE_TOKEN)
      process.stdout.write(`pyport engine: admin token ${token}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    server.close();
    await engine.close();
    return 0;
  }
  throw new PyportError("E_USAGE", `unknown engine command ${JSON.stringify(sub)}`, {
    hint: "Use: pyport engine serve|test|trigger|install|logs",
  });
}
