/**
 * One health check of a service: an HTTP GET of its path on 127.0.0.1 and the service's first
 * TCP port (a 2xx or 3xx answer within the timeout is healthy), or a command run in the bundle
 * (exit 0 within the timeout is healthy).
 */
import * as http from "node:http";
import * as path from "node:path";
import type { HealthCheck } from "../bundle/service-spec.js";
import { execFile } from "../util/exec.js";

export interface HealthResult {
  ok: boolean;
  reason?: string;
}

function httpCheck(port: number, p: string, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: p, timeout: timeoutMs }, (res) => {
      res.resume();
      const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400;
      resolve(ok ? { ok } : { ok, reason: `GET ${p} answered ${res.statusCode}` });
    });
    req.on("timeout", () => {
      req.destroy();
      resolve({ ok: false, reason: `GET ${p} did not answer within ${timeoutMs} ms` });
    });
    req.on("error", (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, reason: `GET ${p} on port ${port}: ${err.code ?? err.message}` }),
    );
  });
}

export async function checkHealth(
  h: HealthCheck,
  ctx: { bundle: string; port?: number; env: Record<string, string> },
): Promise<HealthResult> {
  if (h.http) {
    if (ctx.port === undefined) return { ok: false, reason: "no TCP port to check" };
    return httpCheck(ctx.port, h.http, h.timeoutMs);
  }
  const [first, ...args] = h.command!;
  const file =
    first.includes("/") && !path.isAbsolute(first) ? path.join(ctx.bundle, first) : first;
  const r = await execFile(file, args, {
    cwd: ctx.bundle,
    env: { ...process.env, ...ctx.env },
    timeoutMs: h.timeoutMs,
  }).catch((err: Error) => ({ code: 127, signal: null, stdout: "", stderr: err.message }));
  if (r.code === 0) return { ok: true };
  const last = (r.stderr || r.stdout).trim().split("\n").pop();
  return {
    ok: false,
    reason: r.signal
      ? `${first} timed out after ${h.timeoutMs} ms`
      : `${first} exited with ${r.code}${last ? `: ${last}` : ""}`,
  };
}
