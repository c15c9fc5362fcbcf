/**
 * `npm run bench host-coldstart`: the longest event-loop stall while a managed runtime is built
 * on a cold cache — `Python.start()` without `python` (the build runs in a worker thread) against
 * the same build run on the main thread (`cachedRuntime`, what start() did before) — each in a
 * fresh Node process with its own empty cache, sampled with perf_hooks' event-loop delay monitor.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const DIST = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Runs `imports` (module loading, not measured), then `body` under the event-loop delay monitor. */
function measure(imports: string, body: string): { maxStallMs: number; totalMs: number } {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-cold-"));
  const script = `import { monitorEventLoopDelay } from "node:perf_hooks";
${imports}
const h = monitorEventLoopDelay({ resolution: 5 });
h.enable();
const t0 = performance.now();
${body}
const totalMs = performance.now() - t0;
h.disable();
process.stdout.write(JSON.stringify({ maxStallMs: h.max / 1e6, totalMs }));`;
  try {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, PYPORT_CACHE: cache },
    });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

export async function hostColdstartBench(): Promise<void> {
  const host = JSON.stringify(path.join(DIST, "src/host/index.js"));
  const create = JSON.stringify(path.join(DIST, "src/runtime/create.js"));
  const discover = JSON.stringify(path.join(DIST, "src/python/discover.js"));
  console.log(
    "\n== host cold start: longest event-loop stall while the managed runtime is built ==",
  );
  for (let round = 1; round <= 2; round++) {
    const thread = measure(
      `const { Python } = await import(${host});`,
      `const py = await Python.start();
await py.call("builtins:len", [[1, 2]]);
await py.close();`,
    );
    const main = measure(
      `const { cachedRuntime } = await import(${create});
const { discoverPythons } = await import(${discover});`,
      `const found = (await discoverPythons()).filter((p) => p.probe.major === 3 && p.probe.minor >= 8).sort((a, b) => b.probe.minor - a.probe.minor)[0];
await cachedRuntime({ source: { python: found.path } });`,
    );
    console.log(
      `round ${round}: Python.start() (thread): longest stall ${thread.maxStallMs.toFixed(1)} ms over ${(thread.totalMs / 1000).toFixed(1)} s; ` +
        `the same build on the main thread: ${main.maxStallMs.toFixed(1)} ms over ${(main.totalMs / 1000).toFixed(1)} s ` +
        `(${(main.maxStallMs / thread.maxStallMs).toFixed(0)}× longer)`,
    );
  }
}
