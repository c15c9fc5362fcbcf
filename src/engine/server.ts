/**
 * The engine's HTTP front, as `pyport engine serve` runs it (a library user may mount the same
 * handler in any Node server):
 *   /api/v3/engine/<path>        request triggers (no token: these are the plugins' own API)
 *   GET  /health                 {"status": "ok", "triggers": N}
 *   GET  /metrics                Prometheus text: invocations, errors, drops, queue depth and an
 *                                invocation latency histogram, per trigger
 *   /api/v3/engine-admin/…       admin, with `Authorization: Bearer <token>`:
 *     GET triggers · POST triggers (a trigger's JSON) · DELETE triggers/<name>
 *     POST triggers/<name>/enable|disable · POST write {database, tables: [{table_name, rows}]}
 *     GET logs?trigger=&level=&limit=&after=<seq>
 *     POST install {packages?: [...], requirements?: "<requirements.txt text>"}: pip's output as
 *       NDJSON lines {stream, text}, then {exitCode, error?}
 */
import { timingSafeEqual } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { PyportError } from "../errors.js";
import type { Engine } from "./engine.js";
import type { LogEntry } from "./store.js";
import { PipFailure } from "./venv.js";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MAX_ADMIN_BODY = 64 * 1024 * 1024;

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value) + "\n");
}

function authorised(req: IncomingMessage, token: string): boolean {
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY) throw new PyportError("E_USAGE", "the request body is over 64 MiB");
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
  } catch (err) {
    throw new PyportError("E_USAGE", `the request body is not JSON: ${(err as Error).message}`);
  }
}

/** The per-trigger counters and gauges of /metrics: name, type, help, TriggerStats field. */
const SERIES = [
  [
    "pyport_engine_invocations_total",
    "counter",
    "Plugin invocations (retries included).",
    "invocations",
  ],
  ["pyport_engine_errors_total", "counter", "Failed invocations.", "errors"],
  ["pyport_engine_dropped_total", "counter", "Invocations dropped by a full queue.", "dropped"],
  ["pyport_engine_queue_depth", "gauge", "Invocations waiting.", "queued"],
] as const;

/** Prometheus text exposition of the engine's per-trigger figures. */
export function prometheusMetrics(engine: Engine): string {
  const rows = engine.metrics();
  const label = (name: string) => `trigger="${name.replace(/["\\\n]/g, "_")}"`;
  const out: string[] = [];
  for (const [metric, type, help, stat] of SERIES) {
    out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`);
    for (const { name, stats } of rows) out.push(`${metric}{${label(name)}} ${stats[stat]}`);
  }
  out.push(
    "# HELP pyport_engine_invocation_seconds Time of successful invocations (the last 10 000).",
    "# TYPE pyport_engine_invocation_seconds histogram",
  );
  for (const { name, stats } of rows) {
    let sum = 0;
    for (const d of stats.durations) sum += d;
    for (const le of BUCKETS)
      out.push(
        `pyport_engine_invocation_seconds_bucket{${label(name)},le="${le}"} ${stats.durations.filter((d) => d <= le).length}`,
      );
    out.push(
      `pyport_engine_invocation_seconds_bucket{${label(name)},le="+Inf"} ${stats.durations.length}`,
    );
    out.push(`pyport_engine_invocation_seconds_sum{${label(name)}} ${sum}`);
    out.push(`pyport_engine_invocation_seconds_count{${label(name)}} ${stats.durations.length}`);
  }
  return out.join("\n") + "\n";
}

interface InstallBody {
  packages?: string[];
  requirements?: string;
}

/** pip's output streamed as NDJSON lines, then `{exitCode}` (pip's, when it failed). */
async function install(engine: Engine, body: InstallBody, res: ServerResponse): Promise<void> {
  const packages = body?.packages ?? [];
  if (!Array.isArray(packages) || packages.some((p) => typeof p !== "string"))
    throw new PyportError("E_USAGE", 'install needs {"packages": ["name", ...]}');
  if (body.requirements !== undefined && typeof body.requirements !== "string")
    throw new PyportError(
      "E_USAGE",
      'install\'s "requirements" is the text of a requirements file',
    );
  let dir: string | undefined;
  let requirementsFile: string | undefined;
  if (body.requirements !== undefined) {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "pyport-install-"));
    requirementsFile = path.join(dir, "requirements.txt");
    await fsp.writeFile(requirementsFile, body.requirements);
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  const line = (v: unknown) => res.write(JSON.stringify(v) + "\n");
  try {
    await engine.install({ packages, requirementsFile }, (stream, text) => line({ stream, text }));
    line({ exitCode: 0 });
  } catch (err) {
    line({
      exitCode: err instanceof PipFailure ? err.exitCode : 1,
      error: (err as Error).message,
      hint: (err as PyportError).hint,
    });
  } finally {
    res.end();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The request handler for `engine`, its admin endpoints guarded by `token`. */
export function engineHandler(engine: Engine, token: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (await engine.handleRequest(req, res)) return;
      const url = new URL(req.url ?? "/", "http://engine.invalid");
      if (req.method === "GET" && url.pathname === "/health")
        return json(res, 200, { status: "ok", triggers: engine.listTriggers().length });
      if (req.method === "GET" && url.pathname === "/metrics") {
        res
          .writeHead(200, { "content-type": "text/plain; version=0.0.4" })
          .end(prometheusMetrics(engine));
        return;
      }
      const admin = "/api/v3/engine-admin/";
      if (!url.pathname.startsWith(admin))
        return json(res, 404, { error: `nothing at ${url.pathname}` });
      if (!authorised(req, token))
        return json(res, 401, { error: "admin endpoints need Authorization: Bearer <token>" });
      const parts = url.pathname.slice(admin.length).split("/").filter(Boolean);
      if (parts[0] === "triggers" && parts.length === 1 && req.method === "GET")
        return json(res, 200, engine.listTriggers());
      if (parts[0] === "triggers" && parts.length === 1 && req.method === "POST")
        return json(
          res,
          201,
          await engine.createTrigger(
            (await readJson(req)) as Parameters<Engine["createTrigger"]>[0],
          ),
        );
      if (parts[0] === "triggers" && parts.length === 2 && req.method === "DELETE") {
        await engine.deleteTrigger(decodeURIComponent(parts[1]));
        return json(res, 200, { deleted: decodeURIComponent(parts[1]) });
      }
      if (
        parts[0] === "triggers" &&
        parts.length === 3 &&
        req.method === "POST" &&
        (parts[2] === "enable" || parts[2] === "disable")
      ) {
        const name = decodeURIComponent(parts[1]);
        return json(
          res,
          200,
          parts[2] === "enable"
            ? await engine.enableTrigger(name)
            : await engine.disableTrigger(name),
        );
      }
      if (parts[0] === "write" && req.method === "POST") {
        const body = (await readJson(req)) as {
          database?: string;
          tables?: { table_name: string; rows: unknown[] }[];
        };
        if (!Array.isArray(body?.tables))
          throw new PyportError(
            "E_USAGE",
            'write needs {"database": "...", "tables": [{"table_name": "...", "rows": [...]}]}',
          );
        return json(res, 200, await engine.write(body.database ?? "default", body.tables));
      }
      if (parts[0] === "logs" && req.method === "GET") {
        const limit = url.searchParams.get("limit");
        const after = url.searchParams.get("after");
        return json(
          res,
          200,
          engine.logs({
            trigger: url.searchParams.get("trigger") ?? undefined,
            level: (url.searchParams.get("level") as LogEntry["level"] | null) ?? undefined,
            limit: limit ? Number(limit) : undefined,
            after: after ? Number(after) : undefined,
          }),
        );
      }
      if (parts[0] === "install" && req.method === "POST")
        return await install(engine, (await readJson(req)) as InstallBody, res);
      return json(res, 404, { error: `no admin endpoint ${req.method} ${url.pathname}` });
    } catch (err) {
      if (res.headersSent) return void res.end();
      if (err instanceof PyportError)
        return json(res, err.code === "E_NOT_FOUND" ? 404 : err.code === "E_EXISTS" ? 409 : 400, {
          error: err.message,
          hint: err.hint,
        });
      return json(res, 500, { error: (err as Error).message });
    }
  };
}
