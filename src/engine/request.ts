/**
 * Serves `/api/v3/engine/<path>` for the request trigger of that path (exact match) from any
 * Node HTTP server; resolves false, writing nothing, when no trigger has the path. A full
 * queue answers 503; a failed plugin 500 (its traceback goes to the log, not to the client).
 * The plugin sees the method, every value of a repeated query key, the headers and the body.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Invocation, TriggerRuntime } from "./trigger.js";

const MAX_BODY = 10 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

export async function serveRequest(
  find: (path: string) => TriggerRuntime | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const url = new URL(req.url ?? "/", "http://engine.invalid");
  const prefix = "/api/v3/engine/";
  if (!url.pathname.startsWith(prefix)) return false;
  const sub = url.pathname.slice(prefix.length);
  const t = find(sub);
  if (!t || !t.enabled) return false;
  const chunks: Buffer[] = [];
  // A request without a body (no length, or 0, and not chunked) is not read: nothing would come.
  const hasBody =
    req.headers["transfer-encoding"] !== undefined ||
    (req.headers["content-length"] ?? "0") !== "0";
  let size = 0;
  if (hasBody)
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) {
        res
          .writeHead(413, { "content-type": "application/json" })
          .end('{"error":"request body over 10 MiB"}');
        return true;
      }
      chunks.push(chunk);
    }
  const query: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    headers[k] = Array.isArray(v) ? v.join(", ") : (v ?? "");
  const queued = t.submit({
    kind: "request",
    payload: {
      method: req.method ?? "GET",
      path: sub,
      query,
      headers,
      body: chunks.length ? new Uint8Array(Buffer.concat(chunks)) : EMPTY,
    },
  });
  if (!queued) {
    res
      .writeHead(503, { "content-type": "application/json", "retry-after": "1" })
      .end('{"error":"the trigger\'s queue is full"}');
    return true;
  }
  let result: Invocation;
  try {
    result = await queued;
  } catch (err) {
    const type = (err as { pythonType?: string }).pythonType ?? (err as Error).name;
    res
      .writeHead(500, { "content-type": "application/json" })
      .end(JSON.stringify({ error: `the plugin failed (${type}); see the engine's log` }));
    return true;
  }
  const r = result.response!;
  const body = Buffer.from(r.body);
  const out = r.headers.flat();
  // A known length instead of chunked encoding, unless the plugin framed the body itself.
  const framed = r.headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
  if (!framed && r.status !== 204 && r.status !== 304)
    out.push("content-length", String(body.length));
  res.writeHead(r.status, out).end(body);
  return true;
}
