/**
 * The plugin engine with real plugins in real Python workers: the example plugins (table writes,
 * a scheduled reporter with the cache, an HTTP endpoint), query/write_sync/host functions, and
 * hostile plugins — raise, infinite loop, segfault, os._exit, memory bomb, retry storm, huge log
 * volume — each of which affects only its own invocation.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Engine } from "../src/engine/engine.js";
import { nextFire, parseSpec } from "../src/engine/spec.js";
import { hostAddon } from "../src/util/addon.js";
import {
  sharedPython,
  skipPart,
  tmpDir,
  useTestCache,
  PLUGIN_EXAMPLES,
  PLUGIN_FIXTURES,
} from "./helpers.js";

useTestCache();
const EXAMPLES = PLUGIN_EXAMPLES;
const FIXTURES = PLUGIN_FIXTURES;

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

test("trigger specs parse like InfluxDB's; schedules fire at epoch-aligned times and cron times", () => {
  assert.deepEqual(parseSpec("table:cpu"), { kind: "table", table: "cpu" });
  assert.deepEqual(parseSpec("all_tables"), { kind: "all_tables" });
  assert.deepEqual(parseSpec("every:1h30m"), { kind: "every", ms: 5_400_000 });
  assert.deepEqual(parseSpec("request:a/b"), { kind: "request", path: "a/b" });
  const t = Date.UTC(2026, 0, 1, 10, 7, 13, 500);
  assert.equal(nextFire(parseSpec("every:10s"), t), Date.UTC(2026, 0, 1, 10, 7, 20));
  assert.equal(nextFire(parseSpec("every:1h"), t), Date.UTC(2026, 0, 1, 11, 0, 0));
  assert.equal(nextFire(parseSpec("cron:30 */15 * * * *"), t), Date.UTC(2026, 0, 1, 10, 15, 30));
  assert.equal(nextFire(parseSpec("cron:0 0 9 * * mon"), t), Date.UTC(2026, 0, 5, 9, 0, 0)); // 2026-01-05 is a Monday
  assert.equal(nextFire(parseSpec("cron:0 0 0 29 feb *"), t), Date.UTC(2028, 1, 29));
  for (const bad of [
    "every:soon",
    "cron:* * *",
    "cron:99 * * * * *",
    "request:../x",
    "tables",
    "every:400d",
  ])
    assert.throws(() => parseSpec(bad), { code: "E_USAGE" }, bad);
});

describe("the engine with real plugins", () => {
  let engine: Engine | undefined;
  let server: http.Server | undefined;
  let base = "";
  const written: { database: string; lines: string[] }[] = [];

  before(async () => {
    if (!python) return;
    engine = await Engine.start({
      pluginDir: EXAMPLES,
      runtime: python,
      virtualEnv: path.join(tmpDir("engine-venv"), "venv"), // the examples directory stays clean
      host: {
        write: (database, lines) => void written.push({ database, lines }),
        query: (sql, params) => [{ sql, x: params.x }],
        functions: { double: (n: number) => n * 2 },
      },
    });
    server = http.createServer((req, res) => {
      void engine!.handleRequest(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end("no such trigger");
      });
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.close();
    await engine?.close();
  });

  test("a table trigger summarises writes; lines reach the host after the call returns", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({ name: "sum", plugin: "summarise.py", spec: "table:cpu" });
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      host: "a",
      value: i,
      time: 1_700_000_000_000_000_000n + BigInt(i),
    }));
    const r = await engine.write("db", [
      { table_name: "cpu", rows },
      { table_name: "mem", rows: [{ value: 1 }] },
    ]);
    assert.deepEqual(r, [{ trigger: "sum", ok: true }]);
    await engine.createTrigger({
      name: "only-db2",
      plugin: "summarise.py",
      spec: "table:cpu",
      database: "db2",
    });
    assert.deepEqual(
      (await engine.write("db", [{ table_name: "cpu", rows: [] }])).map((x) => x.trigger),
      ["sum"],
      "a trigger of another database does not fire",
    );
    assert.deepEqual(
      (await engine.write("db2", [{ table_name: "cpu", rows: [] }])).map((x) => x.trigger),
      ["sum", "only-db2"],
    );
    await engine.deleteTrigger("only-db2");
    written.length = 0;
    await engine.write("db", [
      { table_name: "cpu", rows },
      { table_name: "mem", rows: [{ value: 1 }] },
    ]);
    assert.deepEqual(written.at(-1), {
      database: "default",
      lines: ["write_summary,table=cpu rows=1000i,sum=499500.0,min=0.0,max=999.0"],
    });
    assert.match(engine.logs({ trigger: "sum" }).at(-1)!.message, /summarised 1 table batch/);
  });

  test("a request trigger: JSON, repeated keys, the method, bytes both ways, 404 elsewhere", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({ name: "stats", plugin: "stats_http.py", spec: "request:stats" });
    const get = await fetch(`${base}/api/v3/engine/stats?x=1&x=2&x=6`);
    assert.equal(get.status, 200);
    assert.match(get.headers.get("content-type")!, /application\/json/);
    const body = (await get.json()) as { n: number; first: string; mean: number };
    assert.deepEqual([body.n, body.first, body.mean], [3, "1", 3]);
    const bytes = new Uint8Array([0, 255, 1, 254, 10, 13]);
    const post = await fetch(`${base}/api/v3/engine/stats`, { method: "POST", body: bytes });
    assert.equal(post.status, 200);
    assert.equal(post.headers.get("content-length"), "6", "a known length, not chunked");
    assert.equal(post.headers.get("transfer-encoding"), null);
    assert.deepEqual(new Uint8Array(await post.arrayBuffer()), bytes);
    assert.equal((await fetch(`${base}/api/v3/engine/nothing-here`)).status, 404);
  });

  test("query, write_sync, host functions and the global cache from a plugin", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    const dir = tmpDir("plugins");
    fs.copyFileSync(path.join(FIXTURES, "bulk.py"), path.join(dir, "bulk.py"));
    const e2 = await Engine.start({
      pluginDir: dir,
      runtime: python,
      host: {
        query: (sql, params) => [{ sql, x: params.x }],
        functions: { double: (n: number) => n * 2 },
      },
    });
    try {
      await e2.createTrigger({ name: "b", plugin: "bulk.py", spec: "request:b" });
      const s = http.createServer((req, res) => void e2.handleRequest(req, res));
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      const res = await fetch(
        `http://127.0.0.1:${(s.address() as AddressInfo).port}/api/v3/engine/b`,
      );
      s.close();
      assert.deepEqual(await res.json(), {
        rows: [{ sql: "SELECT * FROM t WHERE x > $x", x: 1 }],
        twice: 42,
        global: null,
      });
      assert.deepEqual(e2.recentWrites(), [{ database: "default", line: "sync ok=true" }]);
    } finally {
      await e2.close();
    }
  });

  test("a scheduled trigger fires on time and keeps its state in the cache", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({ name: "rep", plugin: "reporter", spec: "every:1s" });
    // Polls the writes, not the logs: a report's log line arrives while its invocation runs,
    // its write only when the invocation has returned.
    const reported = () => written.flatMap((w) => w.lines).filter((l) => l.startsWith("reporter "));
    for (let i = 0; i < 100 && reported().length < 2; i++)
      await new Promise((r) => setTimeout(r, 50));
    await engine.disableTrigger("rep");
    const reports = reported();
    const said = engine.logs({ trigger: "rep" }).map((e) => `${e.level}: ${e.message}`);
    assert.ok(reports.length >= 2, [...reports, ...said].join("\n"));
    assert.match(reports[0], /^reporter calls=1i \d+000000000$/, "at a whole second");
    assert.match(reports[1], /^reporter calls=2i,gap_seconds=1\.0 \d+000000000$/);
  });
});

describe("hostile plugins affect only their own invocation", () => {
  let engine: Engine | undefined;
  const dir = tmpDir("hostile");
  before(async () => {
    if (!python) return;
    for (const f of ["hostile.py", "bulk.py"])
      fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
    fs.copyFileSync(path.join(EXAMPLES, "summarise.py"), path.join(dir, "summarise.py"));
    // Workers see the environment of their start (a spare starts ahead of need).
    process.env.PYPORT_FLAKY_FILE = path.join(dir, "flaky-count");
    engine = await Engine.start({
      pluginDir: dir,
      runtime: python,
      stateDir: path.join(dir, "state"),
    });
    await engine.createTrigger({ name: "healthy", plugin: "summarise.py", spec: "table:ok" });
  });
  after(() => engine?.close());

  const ok = () => engine!.write("db", [{ table_name: "ok", rows: [{ value: 1 }] }]);

  for (const [how, extra, pattern] of [
    ["raise", {}, /Traceback \(most recent call last\)[\s\S]*ZeroDivisionError: division by zero/],
    ["segv", {}, /worker died: .*killed by SIGSEGV/],
    ["exit", {}, /worker died: .*exited with code 7/],
    ["loop", { timeoutMs: 500 }, /timed out after 500 ms/],
    ["memory", { memoryMb: 300 }, /MemoryError/],
  ] as const) {
    test(`${how}: logged with its cause; the healthy trigger and later calls work`, async (t) => {
      if (!engine) return t.skip("no CPython with a shared libpython found");
      await engine.createTrigger({
        name: how,
        plugin: "hostile.py",
        spec: `table:${how}`,
        args: `how=${how}`,
        ...extra,
      });
      const [r] = await engine.write("db", [{ table_name: how, rows: [{}] }]);
      assert.equal(r.ok, false);
      assert.match(engine.logs({ trigger: how, level: "error" }).at(-1)!.message, pattern);
      assert.deepEqual(await ok(), [{ trigger: "healthy", ok: true }]);
      await engine.updateTrigger(how, { args: "how=none" });
      assert.deepEqual(
        await engine.write("db", [{ table_name: how, rows: [{}] }]),
        [{ trigger: how, ok: true }],
        "a new worker serves the next call",
      );
    });
  }

  test("retry is bounded, with backoff; disable waits for N consecutive failures", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({
      name: "flaky",
      plugin: "hostile.py",
      spec: "table:flaky",
      args: "how=flaky",
      errorBehavior: "retry",
      retry: { maxAttempts: 3, baseMs: 10 },
    });
    assert.deepEqual(await engine.write("db", [{ table_name: "flaky", rows: [] }]), [
      { trigger: "flaky", ok: true },
    ]);
    const failures = engine.logs({ trigger: "flaky", level: "error" }).map((e) => e.message);
    assert.equal(failures.length, 2);
    assert.match(failures[1], /attempt 2 of 3[\s\S]*RuntimeError: flaky failure 2/);
    await engine.createTrigger({
      name: "storm",
      plugin: "hostile.py",
      spec: "table:storm",
      args: "how=raise",
      errorBehavior: "retry",
      retry: { maxAttempts: 4, baseMs: 5 },
    });
    await engine.write("db", [{ table_name: "storm", rows: [] }]);
    assert.equal(
      engine.logs({ trigger: "storm", level: "error" }).length,
      4,
      "exactly maxAttempts, then given up",
    );
    await engine.createTrigger({
      name: "off",
      plugin: "hostile.py",
      spec: "table:off",
      args: "how=raise",
      errorBehavior: "disable",
      disableAfter: 2,
    });
    await engine.write("db", [{ table_name: "off", rows: [] }]);
    assert.equal(engine.listTriggers().find((x) => x.name === "off")!.disabled, undefined);
    await engine.write("db", [{ table_name: "off", rows: [] }]);
    for (let i = 0; i < 50 && !engine.listTriggers().find((x) => x.name === "off")!.disabled; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.listTriggers().find((x) => x.name === "off")!.disabled, true);
    assert.deepEqual(
      await engine.write("db", [{ table_name: "off", rows: [] }]),
      [],
      "a disabled trigger does not fire",
    );
  });

  test("invocations sent ahead run once each, in order; a crash fails only its own", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    const file = path.join(dir, "in-order");
    await engine.createTrigger({
      name: "ahead",
      plugin: "hostile.py",
      spec: "table:ahead",
      args: { how: "in_order", file },
    });
    await engine.write("db", [{ table_name: "ahead", rows: [{ n: -1 }] }]); // a worker is up
    // Eight writes at once: several are in the worker's input when the fourth one kills it.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        engine!.write("db", [{ table_name: "ahead", rows: [n === 3 ? { crash: true } : { n }] }]),
      ),
    );
    assert.deepEqual(
      results.map((r) => r[0].ok),
      [true, true, true, false, true, true, true, true],
    );
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    assert.deepEqual(
      lines.map((l) => Number(l.split(" ")[0])),
      [-1, 0, 1, 2, 4, 5, 6, 7],
      "each ran once, in order",
    );
    const pids = lines.map((l) => l.split(" ")[1]);
    assert.equal(pids[3], pids[0], "before the crash: the first worker");
    assert.notEqual(pids[4], pids[0], "after it: its replacement");
    const failures = engine.logs({ trigger: "ahead", level: "error" });
    assert.equal(failures.length, 1, "one failure logged: the crash");
    assert.match(failures[0].message, /exited with code 5/);
    await engine.deleteTrigger("ahead");
  });

  test("a crash loop backs off and forks the trigger's new workers at nice 10", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({
      name: "crashy",
      plugin: "hostile.py",
      spec: "table:crashy",
      args: { how: "crash4", file: path.join(dir, "crash-count") },
    });
    const results: boolean[] = [];
    const started = Date.now();
    for (let i = 0; i < 5; i++)
      results.push((await engine.write("db", [{ table_name: "crashy", rows: [] }]))[0].ok);
    assert.deepEqual(results, [false, false, false, false, true]);
    assert.ok(
      Date.now() - started >= 1500,
      "the 2nd to 5th calls waited 100, 200, 400 and 800 ms first",
    );
    const log = engine
      .logs({ trigger: "crashy" })
      .map((e) => e.message)
      .join("\n");
    assert.match(log, /worker died; the next invocation waits 100 ms/);
    assert.match(log, /^nice 10, forked (True|False)$/m);
    // The replacements come from the engine's fork server (a fork costs ~4 ms of CPU, a new
    // interpreter ~65 ms): that is what keeps a crash loop from taking the others' CPU.
    if (hostAddon() && process.env.PYPORT_HOST_SPAWN !== "node")
      assert.match(log, /^nice 10, forked True$/m);
    else await skipPart(t, "host addon not built: workers are spawned, not forked");
    await engine.deleteTrigger("crashy");
  });

  test("huge log volume and a plugin writing 1 000 000 lines", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    await engine.createTrigger({
      name: "noisy",
      plugin: "hostile.py",
      spec: "table:noisy",
      args: "how=logs",
    });
    assert.deepEqual(await engine.write("db", [{ table_name: "noisy", rows: [] }]), [
      { trigger: "noisy", ok: true },
    ]);
    assert.equal(engine.logs({ trigger: "noisy" }).length, 10_000, "the log is a bounded ring");
    await engine.createTrigger({
      name: "bulk",
      plugin: "bulk.py",
      spec: "table:bulk",
      args: "lines=1000000",
    });
    assert.deepEqual(await engine.write("db", [{ table_name: "bulk", rows: [] }]), [
      { trigger: "bulk", ok: true },
    ]);
    const lines = engine.recentWrites().filter((w) => w.line.startsWith("bulk,"));
    assert.equal(
      lines.at(-1)!.line,
      'bulk,k=a\\ b\\,c\\=d i=999999i,s="q\\"\\\\"',
      "escaped as line protocol",
    );
  });

  test("hot reload: an edited plugin runs its new code on the next invocation; triggers persist", async (t) => {
    if (!engine) return t.skip("no CPython with a shared libpython found");
    const file = path.join(dir, "reload.py");
    const version = (n: number) =>
      `def process_writes(influxdb3_local, table_batches, args=None):\n    influxdb3_local.info("version ${n}")\n`;
    fs.writeFileSync(file, version(1));
    await engine.createTrigger({ name: "reload", plugin: "reload.py", spec: "table:reload" });
    await engine.write("db", [{ table_name: "reload", rows: [] }]);
    fs.writeFileSync(file, version(2) + "# longer\n");
    await engine.write("db", [{ table_name: "reload", rows: [] }]);
    assert.deepEqual(
      engine.logs({ trigger: "reload" }).map((e) => e.message),
      ["version 1", "version 2"],
    );
    const again = await Engine.start({
      pluginDir: dir,
      runtime: python,
      stateDir: path.join(dir, "state"),
    });
    try {
      assert.ok(again.listTriggers().some((x) => x.name === "reload" && x.spec === "table:reload"));
    } finally {
      await again.close();
    }
  });
});

test("idle workers stop after idleMs and start again on demand", async (t) => {
  if (!python) return t.skip("no CPython with a shared libpython found");
  const dir = tmpDir("idle");
  fs.writeFileSync(
    path.join(dir, "pid.py"),
    "import os\ndef process_writes(influxdb3_local, table_batches, args=None):\n    influxdb3_local.info(os.getpid())\n",
  );
  const engine = await Engine.start({ pluginDir: dir, runtime: python, idleMs: 200 });
  try {
    await engine.createTrigger({ name: "pid", plugin: "pid.py", spec: "all_tables" });
    const pidOf = async () => {
      await engine.write("db", [{ table_name: "x", rows: [] }]);
      return Number(engine.logs({ trigger: "pid" }).at(-1)!.message);
    };
    const first = await pidOf();
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(first); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(first), false, "the idle worker stopped");
    const second = await pidOf();
    assert.notEqual(second, first, "a new worker served the next invocation");
  } finally {
    await engine.close();
  }
});

test("when the engine's fork server dies, it is logged, invocations go on, and a new one forks", async (t) => {
  if (!python) return t.skip("no CPython with a shared libpython found");
  if (!hostAddon() || process.env.PYPORT_HOST_SPAWN === "node")
    return t.skip("host addon not built: the engine spawns its workers, there is no fork server");
  const dir = tmpDir("forks");
  fs.writeFileSync(
    path.join(dir, "parent.py"),
    "import os\ndef process_writes(influxdb3_local, table_batches, args=None):\n" +
      "    with open('/proc/%d/cmdline' % os.getppid(), 'rb') as f:\n" +
      "        forked = b'--fork-server' in f.read()\n" +
      "    influxdb3_local.info('%d %s' % (os.getppid(), forked))\n" +
      "    if table_batches[0]['rows']:\n        os._exit(4)\n",
  );
  const engine = await Engine.start({ pluginDir: dir, runtime: python });
  try {
    await engine.createTrigger({ name: "p", plugin: "parent.py", spec: "all_tables" });
    /** The parent of the worker that ran an invocation (then dies when `crash`). */
    const parent = async (crash = false) => {
      await engine.write("db", [{ table_name: "x", rows: crash ? [{ crash: 1 }] : [] }]);
      const said = engine
        .logs({ trigger: "p" })
        .filter((e) => /^\d+ (True|False)$/.test(e.message));
      const [pid, forked] = said.at(-1)!.message.split(" ");
      return { pid: Number(pid), forked: forked === "True" };
    };
    // Crashes until a worker comes from the server (the first may predate it).
    let first = await parent(true);
    for (let i = 0; i < 5 && !first.forked; i++) first = await parent(true);
    assert.ok(first.forked, "workers are forked once the server is up");
    process.kill(first.pid, "SIGKILL");
    const said = () => engine.logs({ trigger: "engine", level: "warn" }).map((e) => e.message);
    for (let i = 0; i < 100 && !said().length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(said().join("\n"), /the fork server for .* exited; starting it again \(1 of 3\)/);
    const after = await parent();
    assert.notEqual(after.pid, first.pid, "invocations go on");
    let next = await parent(true);
    for (let i = 0; i < 5 && !(next.forked && next.pid !== first.pid); i++)
      next = await parent(true);
    assert.ok(next.forked && next.pid !== first.pid, "a new server forks later workers");
  } finally {
    await engine.close();
  }
});
