/**
 * Public InfluxDB 3 plugins, unmodified, in the engine: the WAL example (table writes and trigger
 * arguments), the schema validator (a JSON file found through PLUGIN_DIR, write_sync with
 * no_sync) and the signal generator (a schedule that keeps state in the cache between calls).
 * pyport ships none of their code: set PYPORT_INFLUXDB3_PLUGINS to a checkout of
 * github.com/influxdata/influxdb3_plugins to run these; without it they are skipped.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { Engine } from "../src/engine/engine.js";
import { sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();
const CHECKOUT = process.env.PYPORT_INFLUXDB3_PLUGINS;
const FILES = {
  wal: "examples/wal_plugin/wal_plugin.py",
  validator: "influxdata/schema_validator/schema_validator.py",
  schema: "influxdata/schema_validator/schema_validator_config.json",
  generator: "influxdata/signal_generator/signal_generator.py",
};

/** Why these tests cannot run here, or undefined when they can. */
function missing(): string | undefined {
  if (!CHECKOUT)
    return "PYPORT_INFLUXDB3_PLUGINS is not set (a checkout of influxdata/influxdb3_plugins)";
  const absent = Object.values(FILES).filter((f) => !fs.existsSync(path.join(CHECKOUT, f)));
  return absent.length ? `${CHECKOUT} lacks ${absent.join(", ")}` : undefined;
}

describe("public InfluxDB 3 plugins, unmodified", () => {
  let python: string | undefined;
  let plugins = "";
  const writes: { database: string; line: string }[] = [];
  let engine: Engine | undefined;

  before(async () => {
    // tomllib (schema_validator) needs 3.11 or later.
    python = (await sharedPython(["3.12", "3.11", "3.13"]))?.path;
    if (missing() || !python) return;
    plugins = tmpDir("influx-plugins");
    for (const f of Object.values(FILES))
      fs.copyFileSync(path.join(CHECKOUT!, f), path.join(plugins, path.basename(f)));
    engine = await Engine.start({
      pluginDir: plugins,
      runtime: python,
      host: {
        write: (database, lines) => lines.forEach((line) => writes.push({ database, line })),
      },
    });
  });

  const ready = (t: Parameters<typeof skipPart>[0]) => {
    const why = missing() ?? (python ? undefined : "no CPython 3.11+ with a shared libpython here");
    return why ? skipPart(t, why).then(() => false) : Promise.resolve(true);
  };

  test("wal_plugin.py: counts rows per table, doubling the table named in its arguments", async (t) => {
    if (!(await ready(t))) return;
    await engine!.createTrigger({
      name: "wal",
      plugin: "wal_plugin.py",
      spec: "all_tables",
      args: "double_count_table=cpu",
    });
    const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ v: i }));
    const r = await engine!.write("db", [
      { table_name: "cpu", rows: rows(3) },
      { table_name: "mem", rows: rows(2) },
    ]);
    assert.deepEqual(r, [{ trigger: "wal", ok: true }]);
    const lines = writes.filter((w) => w.line.startsWith("write_reports")).map((w) => w.line);
    assert.deepEqual(lines, [
      "write_reports,table_name=cpu row_count=6i",
      "write_reports,table_name=mem row_count=2i",
    ]);
    assert.ok(engine!.logs({ trigger: "wal" }).some((e) => e.message === "wal_plugin.py done"));
    await engine!.deleteTrigger("wal");
  });

  test("schema_validator.py: reads its schema through PLUGIN_DIR, writes accepted rows, logs rejected ones", async (t) => {
    if (!(await ready(t))) return;
    await engine!.createTrigger({
      name: "validate",
      plugin: "schema_validator.py",
      spec: "table:weather",
      args: { schema_file: "schema_validator_config.json", log_rejected: "true" },
    });
    writes.length = 0;
    const r = await engine!.write("db", [
      {
        table_name: "weather",
        rows: [
          { location: "us-east", station_id: "s1", temperature: 21.5, humidity: 40.0 },
          { location: "mars", station_id: "s2", temperature: 1.0, humidity: 2.0 },
          { location: "us-west", temperature: 3.0 },
        ],
      },
    ]);
    assert.deepEqual(r, [{ trigger: "validate", ok: true }]);
    assert.deepEqual(
      writes.map((w) => w.line),
      ["weather_clean,location=us-east,station_id=s1 temperature=21.5,humidity=40.0"],
    );
    const log = engine!
      .logs({ trigger: "validate" })
      .map((e) => `${e.level} ${e.message}`)
      .join("\n");
    assert.match(log, /warn .*REJECTED: weather - Tag 'location' value 'mars'/);
    assert.match(log, /warn .*REJECTED: weather - Required tag 'station_id' is missing/);
    assert.doesNotMatch(log, /^error/m);
    await engine!.deleteTrigger("validate");
  });

  test("signal_generator.py: a schedule that keeps its state in the cache writes points each second", async (t) => {
    if (!(await ready(t))) return;
    writes.length = 0;
    await engine!.createTrigger({
      name: "signal",
      plugin: "signal_generator.py",
      spec: "every:1s",
      args: { measurement: "sig", points_per_second: "2" },
    });
    const deadline = Date.now() + 15_000;
    while (writes.filter((w) => w.line.startsWith("sig")).length < 4 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await engine!.deleteTrigger("signal");
    const points = writes.filter((w) => w.line.startsWith("sig"));
    assert.ok(
      points.length >= 4,
      `points written: ${JSON.stringify(writes)}\n${engine!
        .logs()
        .map((e) => e.message)
        .join("\n")}`,
    );
    for (const p of points) assert.match(p.line, /^sig value=-?[\d.e+-]+ \d+$/);
    const log = engine!.logs({ trigger: "signal" }).map((e) => `${e.level} ${e.message}`);
    assert.ok(!log.some((l) => l.startsWith("error")), log.join("\n"));
    await engine!.close();
  });
});
