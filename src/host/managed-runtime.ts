/**
 * Runs in a worker thread (node:worker_threads): finds the newest CPython 3.8+ on this machine
 * and makes (or finds) its portable runtime in pyport's cache, then posts
 * `{ interpreter }` or `{ error: { code, message, hint } }`. The runtime builder does synchronous
 * file work for seconds on a cold cache; in a thread it never stalls the host's event loop (an
 * Electron main process stays responsive).
 */
import { parentPort } from "node:worker_threads";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { discoverPythons } from "../python/discover.js";
import { cachedRuntime } from "../runtime/create.js";

async function managedInterpreter(): Promise<string> {
  const found = (await discoverPythons())
    .filter((p) => p.probe.major === 3 && p.probe.minor >= 8)
    .sort((a, b) => b.probe.minor - a.probe.minor)[0];
  if (!found)
    throw new PyportError(
      "E_NOT_FOUND",
      "no CPython 3.8+ found on this machine to build a runtime from",
      { hint: "Pass { python: '<runtime dir or interpreter path>' } to Python.start." },
    );
  const { dir } = await cachedRuntime({ source: { python: found.path } });
  return path.join(dir, "bin", "python3");
}

managedInterpreter().then(
  (interpreter) => parentPort!.postMessage({ interpreter }),
  (err: unknown) => {
    const e = err as PyportError;
    parentPort!.postMessage({
      error: {
        code: e instanceof PyportError ? e.code : "E_INTERNAL",
        message: String(e?.message ?? err),
        hint: e instanceof PyportError ? e.hint : undefined,
      },
    });
  },
);
