/**
 * `npm run bench engine`: the plugin engine, side by side in one run on 127.0.0.1, with one load
 * generator (wrk: apt-get install wrk) for every server:
 * - request-trigger throughput and p50/p99 latency for a trivial handler, against the same
 *   handler as a Flask app under gunicorn (2 sync workers) and as a FastAPI app under uvicorn
 *   with uvloop and httptools (uvicorn[standard]) — both installed from the machine's package
 *   index into a venv of the same CPython — and a bare Node `http` server (the front's limit);
 * - table-trigger rows/s for a plugin summing a field over 1,000-row batches;
 * - a trivial invocation's overhead (engine.test-free: sequential table writes of one row);
 * - cold start of an idle plugin (first invocation of a new trigger);
 * - memory of ten idle plugins (RSS, and PSS with shared pages split among processes);
 * - p99 of a healthy request trigger while another trigger's plugin crashes in a loop, under wrk
 *   and at a steady rate (open-load.ts);
 * - what replacing a crashed worker costs the machine, forked (the engine's way) or spawned.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Engine } from "../src/engine/engine.js";
import { ForkServer, Python } from "../src/host/index.js";
import { engineHandler } from "../src/engine/server.js";
import { discoverPythons } from "../src/python/discover.js";

const DURATION = process.env.PYPORT_BENCH_SECONDS ?? "8";

interface Load {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

/** wrk against `url`: requests/s and latency percentiles (its --latency table). Async: the
 * servers under test may live in this process. */
async function wrk(url: string, connections = 32, seconds = DURATION): Promise<Load> {
  const child = spawn("wrk", ["-t2", `-c${connections}`, `-d${seconds}s`, "--latency", url]);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  if (code !== 0) throw new Error(`wrk failed (${code}): ${out}`);
  const ms = (s: string) => {
    const m = /([\d.]+)(us|ms|s)/.exec(s)!;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
  const p50 = ms(/\n\s+50%\s+(\S+)/.exec(out)![1]);
  const p99 = ms(/\n\s+99%\s+(\S+)/.exec(out)![1]);
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50ms: p50, p99ms: p99, errors };
}

const OPEN_LOAD = fileURLToPath(new URL("./open-load.js", import.meta.url));

/** Latencies (ms) of `seconds` of open-loop load at `rate` req/s on `base + path` (open-load.ts). */
async function openLoad(
  base: string,
  urlPath: string,
  rate: number,
  seconds: number,
): Promise<{ latencies: number[]; failed: number }> {
  const url = new URL(base + urlPath);
  const child = spawn(process.execPath, [
    OPEN_LOAD,
    url.port,
    url.pathname,
    String(rate),
    String(seconds),
  ]);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  if (code !== 0) throw new Error(`open-load failed (${code})`);
  return JSON.parse(out) as { latencies: number[]; failed: number };
}

/** One second of load first (JITs, caches and lazy imports warm up alike on every server). */
async function warmThenWrk(url: string): Promise<Load> {
  await wrk(url, 32, "1");
  return wrk(url);
}

function show(name: string, l: Load, ref?: Load): void {
  console.log(
    `${name.padEnd(44)} ${l.rps.toFixed(0).padStart(7)} req/s  p50 ${l.p50ms.toFixed(2)} ms  p99 ${l.p99ms.toFixed(2)} ms` +
      (ref ? `  (${(l.rps / ref.rps).toFixed(2)}× its throughput)` : "") +
      (l.errors ? `  ${l.errors} errors` : ""),
  );
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} never answered`);
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A venv of `python` with the peers, from the machine's package index; undefined if pip fails. */
function peerVenv(python: string, dir: string): string | undefined {
  const venv = path.join(dir, "venv");
  if (spawnSync(python, ["-m", "venv", venv]).status !== 0) return undefined;
  const pip = spawnSync(
    path.join(venv, "bin", "pip"),
    ["install", "-q", "flask", "gunicorn", "fastapi", "uvicorn[standard]"],
    {
      encoding: "utf8",
    },
  );
  if (pip.status !== 0) {
    console.log(
      `peers skipped: pip could not install flask, gunicorn, fastapi, uvicorn[standard]:\n${pip.stderr.slice(-600)}`,
    );
    return undefined;
  }
  return venv;
}

/** RSS and PSS (KiB) of this process and every process below it, from /proc. */
function treeMemory(): { rss: number; pss: number; self: number; processes: number } {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const mine = [process.pid];
  for (let i = 0; i < mine.length; i++)
    for (const [pid, ppid] of parent) if (ppid === mine[i]) mine.push(pid);
  const field = (pid: number, file: string, name: string) => {
    try {
      const text = fs.readFileSync(`/proc/${pid}/${file}`, "utf8");
      return Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  let rss = 0;
  let pss = 0;
  for (const pid of mine) {
    rss += field(pid, "status", "VmRSS");
    pss += field(pid, "smaps_rollup", "Pss");
  }
  return { rss, pss, self: field(process.pid, "status", "VmRSS"), processes: mine.length };
}

export async function engineBench(): Promise<void> {
  console.log(
    "\n== engine: request triggers vs Flask/gunicorn and FastAPI/uvicorn; table triggers; isolation ==",
  );
  if (spawnSync("wrk", ["--version"]).error)
    return console.log("skipped: wrk is not installed (apt-get install wrk)");
  const found = (await discoverPythons()).find((p) => p.probe.major === 3 && p.probe.minor === 11);
  if (!found)
    return console.log("skipped: no CPython 3.11 here (the package index has the peers for 3.11)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-engine-"));
  const children: ChildProcess[] = [];
  try {
    const plugins = path.join(dir, "plugins");
    fs.mkdirSync(plugins);
    fs.writeFileSync(
      path.join(plugins, "trivial.py"),
      'def process_request(influxdb3_local, query_parameters, request_headers, request_body, args=None):\n    return "hi"\n',
    );
    fs.writeFileSync(
      path.join(plugins, "sum.py"),
      "def process_writes(influxdb3_local, table_batches, args=None):\n    for b in table_batches:\n        s = 0.0\n        for r in b['rows']:\n            s += r['value']\n        influxdb3_local.write(LineBuilder('sums').float64_field('sum', s))\n",
    );
    fs.writeFileSync(
      path.join(plugins, "crash.py"),
      "import os\ndef process_writes(influxdb3_local, table_batches, args=None):\n    os._exit(3)\n",
    );
    fs.writeFileSync(
      path.join(dir, "flask_app.py"),
      'from flask import Flask\napp = Flask(__name__)\n@app.route("/hi")\ndef hi():\n    return "hi"\n',
    );
    fs.writeFileSync(
      path.join(dir, "fastapi_app.py"),
      'from fastapi import FastAPI\nfrom fastapi.responses import PlainTextResponse\napp = FastAPI()\n@app.get("/hi", response_class=PlainTextResponse)\ndef hi():\n    return "hi"\n',
    );

    const bare = http.createServer((_, res) => res.end("hi"));
    await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;

    let written = 0;
    const engine = await Engine.start({
      pluginDir: plugins,
      runtime: found.path,
      host: { write: (_, lines) => void (written += lines.length) },
    });
    await engine.createTrigger({ name: "trivial", plugin: "trivial.py", spec: "request:hi" });
    await engine.createTrigger({
      name: "trivial2",
      plugin: "trivial.py",
      spec: "request:hi2",
      runAsync: true,
      concurrency: 2,
    });
    const front = http.createServer(engineHandler(engine, "bench-token"));
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
    const engineBase = `http://127.0.0.1:${(front.address() as AddressInfo).port}/api/v3/engine`;
    await fetch(`${engineBase}/hi`);
    await fetch(`${engineBase}/hi2`);

    const venv = peerVenv(found.path, dir);
    let flask: Load | undefined;
    let fastapi: Load | undefined;
    if (venv) {
      const gport = await freePort();
      children.push(
        spawn(
          path.join(venv, "bin", "gunicorn"),
          ["-w", "2", "-b", `127.0.0.1:${gport}`, "flask_app:app"],
          { cwd: dir, stdio: "ignore" },
        ),
      );
      const uport = await freePort();
      children.push(
        spawn(
          path.join(venv, "bin", "uvicorn"),
          [
            "fastapi_app:app",
            "--port",
            String(uport),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
          ],
          {
            cwd: dir,
            stdio: "ignore",
          },
        ),
      );
      await waitFor(`http://127.0.0.1:${gport}/hi`);
      await waitFor(`http://127.0.0.1:${uport}/hi`);
      flask = await warmThenWrk(`http://127.0.0.1:${gport}/hi`);
      fastapi = await warmThenWrk(`http://127.0.0.1:${uport}/hi`);
    }
    const node = await warmThenWrk(bareUrl);
    const one = await warmThenWrk(`${engineBase}/hi`);
    const two = await warmThenWrk(`${engineBase}/hi2`);
    show("bare Node http (the front's limit)", node);
    if (flask) show("Flask under gunicorn, 2 sync workers", flask);
    if (fastapi) show("FastAPI under uvicorn (uvloop, httptools)", fastapi);
    show("pyport engine, 1 worker", one, flask);
    show("pyport engine, runAsync 2 workers", two, flask);
    if (fastapi)
      console.log(
        `  vs FastAPI/uvicorn: 1 worker ${(one.rps / fastapi.rps).toFixed(2)}×, 2 workers ${(two.rps / fastapi.rps).toFixed(2)}× throughput; p99 ${one.p99ms.toFixed(2)} / ${two.p99ms.toFixed(2)} vs ${fastapi.p99ms.toFixed(2)} ms`,
      );

    // Table triggers: 1,000-row batches summed.
    await engine.createTrigger({ name: "sum", plugin: "sum.py", spec: "table:m" });
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      host: "a",
      value: i * 0.5,
      time: 1_700_000_000_000_000_000n + BigInt(i),
    }));
    await engine.write("db", [{ table_name: "m", rows }]);
    let t = performance.now();
    const batches = 200;
    for (let i = 0; i < batches; i++) await engine.write("db", [{ table_name: "m", rows }]);
    const secs = (performance.now() - t) / 1000;
    console.log(
      `table trigger summing a field: ${((batches * 1000) / secs).toFixed(0)} rows/s (${batches} batches of 1,000, one after another)`,
    );

    // A trivial invocation's overhead: sequential one-row writes.
    const tiny = [{ table_name: "m", rows: [{ value: 1 }] }];
    for (let i = 0; i < 200; i++) await engine.write("db", tiny);
    t = performance.now();
    for (let i = 0; i < 2000; i++) await engine.write("db", tiny);
    console.log(
      `trivial invocation (one-row write, sequential): ${((performance.now() - t) / 2000).toFixed(3)} ms each`,
    );

    // Cold start of an idle plugin: a new trigger's first invocation, after a pause (an idle
    // engine has its spare worker ready), and with a memory limit (no spare: a worker is forked
    // by the engine's fork server, or spawned without the native addon).
    const coldStart = async (name: string, memoryMb?: number) => {
      await new Promise((r) => setTimeout(r, 300));
      await engine.createTrigger({ name, plugin: "sum.py", spec: `table:${name}`, memoryMb });
      const started = performance.now();
      await engine.write("db", [{ table_name: name, rows: [{ value: 1 }] }]);
      return performance.now() - started;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const colds: number[] = [];
    const limited: number[] = [];
    for (let i = 0; i < 5; i++) colds.push(await coldStart(`cold${i}`));
    for (let i = 0; i < 5; i++) limited.push(await coldStart(`coldmem${i}`, 512));
    console.log(
      `cold start of an idle plugin (first invocation of a new trigger): median ${median(colds).toFixed(1)} ms of 5; ` +
        `with memoryMb (no spare: a new worker): ${median(limited).toFixed(1)} ms`,
    );

    // Memory: ten more triggers, each invoked once and then idle (their workers stay up).
    const before = treeMemory();
    for (let i = 0; i < 10; i++) {
      await engine.createTrigger({ name: `idle${i}`, plugin: "sum.py", spec: `table:idle${i}` });
      await engine.write("db", [{ table_name: `idle${i}`, rows: [{ value: 1 }] }]);
    }
    const withIdle = treeMemory();
    console.log(
      `10 idle plugins (a worker each): +${((withIdle.rss - before.rss) / 1024).toFixed(0)} MiB RSS, ` +
        `+${((withIdle.pss - before.pss) / 1024).toFixed(0)} MiB PSS (shared pages split); ` +
        `${withIdle.processes - before.processes} processes more; the engine's own process ${(withIdle.self / 1024).toFixed(0)} MiB RSS`,
    );

    // Isolation: the healthy trigger's p99 while another plugin crashes in a loop (each storm a
    // new trigger, so each starts with the back-off's shortest waits). First under wrk, which
    // saturates both cores: a 5 s p99 then moves by ±50% between runs, so three quiet and three
    // disturbed runs alternate and their medians are compared.
    const crashLoop = async (name: string) => {
      await engine.createTrigger({ name, plugin: "crash.py", spec: `table:${name}` });
      let crashing = true;
      let crashes = 0;
      const loop = (async () => {
        while (crashing) {
          await engine.write("db", [{ table_name: name, rows: [] }]);
          crashes++;
        }
      })();
      return async () => {
        crashing = false;
        await loop;
        await engine.deleteTrigger(name);
        return crashes;
      };
    };
    const quiet: Load[] = [];
    const disturbed: Load[] = [];
    const crashCounts: number[] = [];
    for (let round = 0; round < 3; round++) {
      quiet.push(await wrk(`${engineBase}/hi`));
      const stop = await crashLoop(`crash${round}`);
      disturbed.push(await wrk(`${engineBase}/hi`));
      crashCounts.push(await stop());
    }
    const p99s = (l: Load[]) => l.map((x) => x.p99ms.toFixed(1)).join(", ");
    const quietP99 = median(quiet.map((l) => l.p99ms));
    const disturbedP99 = median(disturbed.map((l) => l.p99ms));
    console.log(
      `engine, 1 worker, under wrk: p99 undisturbed ${p99s(quiet)} ms; while another plugin crashed (${crashCounts.join(", ")} times in 5 s) ${p99s(disturbed)} ms`,
    );
    console.log(
      `  healthy trigger's p99 under the crash loop: ${(disturbedP99 / quietP99).toFixed(2)}× its undisturbed p99 (medians of 3 alternating runs; target <= 1.2×)`,
    );
    // Then at a steady rate, as a service runs: open-loop load (bench/open-load.ts) in six
    // alternating quiet and disturbed 4 s windows, and the p99 of all quiet requests against the
    // p99 of all disturbed ones. The rate is a fifth of the capacity wrk measured above: requests
    // that arrive one by one cost the engine 2-3× the CPU of wrk's back-to-back ones (each wakes
    // the front and the worker), so half of wrk's figure already saturates both cores.
    const rate = Math.round(one.rps / 5);
    const calm: number[] = [];
    const stormy: number[] = [];
    let failed = 0;
    const stormCrashes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const q = await openLoad(engineBase, "/hi", rate, 4);
      const stop = await crashLoop(`steady${round}`);
      const d = await openLoad(engineBase, "/hi", rate, 4);
      stormCrashes.push(await stop());
      calm.push(...q.latencies);
      stormy.push(...d.latencies);
      failed += q.failed + d.failed;
    }
    const pct = (xs: number[], p: number) =>
      xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
    console.log(
      `engine, 1 worker, ${rate} req/s steady: p50/p99 undisturbed ${pct(calm, 0.5).toFixed(2)}/${pct(calm, 0.99).toFixed(2)} ms; ` +
        `while another plugin crashed (${stormCrashes.join(", ")} times in 4 s) ${pct(stormy, 0.5).toFixed(2)}/${pct(stormy, 0.99).toFixed(2)} ms` +
        (failed ? `; ${failed} requests failed` : ""),
    );
    console.log(
      `  healthy trigger's p99 under the crash loop: ${(pct(stormy, 0.99) / pct(calm, 0.99)).toFixed(2)}× its undisturbed p99 (${calm.length} requests each; target <= 1.2×)`,
    );
    await replacementCost(found.path);
    console.log(`(${written} lines written by plugins during the bench)`);
    front.close();
    bare.close();
    await engine.close();
  } finally {
    for (const c of children) c.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Machine-wide CPU time so far (ms), from /proc/stat: user, nice, system, irq and softirq, in
 * USER_HZ ticks (100 per second in Linux's /proc ABI).
 */
function machineCpuMs(): number {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) * 10;
}

/**
 * What replacing a crashed worker costs: a worker that runs the engine's module dies with
 * os._exit, and the next call starts its replacement — forked by a fork server (the engine's
 * way) or spawned as a new interpreter — in alternating blocks of 20, wall time and the whole
 * machine's CPU per replacement.
 */
async function replacementCost(python: string): Promise<void> {
  const base = { python, preload: ["json", "datetime", "pickle", "importlib.util"] };
  const server = ForkServer.start(base);
  if (!server || !(await server.ready)) {
    server?.close();
    return console.log(
      "replacing a crashed worker: skipped (no fork server: the addon is not built)",
    );
  }
  const results: Record<string, { wall: number[]; cpu: number[] }> = {
    forked: { wall: [], cpu: [] },
    spawned: { wall: [], cpu: [] },
  };
  for (let round = 0; round < 2; round++)
    for (const how of ["forked", "spawned"] as const) {
      const py = await Python.start({ ...base, forkServer: how === "forked" ? server : undefined });
      await py.call("os:getpid");
      const cpu = machineCpuMs();
      const started = performance.now();
      for (let i = 0; i < 20; i++) {
        await py.call("os:_exit", [1]).catch(() => undefined);
        await py.call("os:getpid");
      }
      results[how].wall.push((performance.now() - started) / 20);
      results[how].cpu.push((machineCpuMs() - cpu) / 20);
      await py.close();
    }
  server.close();
  const show = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
  const { forked, spawned } = results;
  console.log(
    `replacing a crashed worker (2 alternating blocks of 20): forked ${show(forked.wall)} ms, ` +
      `${show(forked.cpu)} ms of CPU each; spawned ${show(spawned.wall)} ms, ${show(spawned.cpu)} ms of CPU each`,
  );
}
