/**
 * The engine's command line for real: `engine test` runs a plugin once; `engine serve` is a
 * loopback server with a token-guarded admin API; `engine trigger|install|logs` drive it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import {
  CLI,
  pyportAsync,
  run,
  sharedPython,
  tmpDir,
  useTestCache,
  PLUGIN_EXAMPLES,
  PLUGIN_FIXTURES,
} from "./helpers.js";

useTestCache();
process.env.PIP_RETRIES ??= "0"; // an unreachable default index fails at once, not after 5 retries
const EXAMPLES = PLUGIN_EXAMPLES;
const FIXTURES = PLUGIN_FIXTURES;

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

/** `pyport engine serve` on a free loopback port with the example plugins and a venv in a temp dir. */
async function startServe(extra: string[]) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      "engine",
      "serve",
      "--plugin-dir",
      EXAMPLES,
      "--port",
      "0",
      "--runtime",
      python!,
      "--virtual-env-location",
      path.join(tmpDir("serve-venv"), "venv"),
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  let out = "";
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      // Without --token, serve prints the token it made on a second line.
      if (out.split("\n").length > (extra.includes("--token") ? 1 : 2)) resolve(out.split("\n")[0]);
    });
    child.on("exit", (code) => reject(new Error(`serve exited (${code})`)));
  });
  return {
    base: /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(first)![1],
    /** Everything serve printed on stdout so far. */
    output: () => out,
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

describe("pyport engine test|serve|trigger|install|logs", () => {
  test("engine test runs a plugin once and prints its logs and writes; a failure exits 1 with the traceback", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const dir = tmpDir("engine-cli");
    fs.writeFileSync(path.join(dir, "rows.json"), JSON.stringify([{ value: 2 }, { value: 5 }]));
    const ok = run(process.execPath, [
      CLI,
      "engine",
      "test",
      path.join(EXAMPLES, "summarise.py"),
      "--table",
      "cpu",
      "--rows",
      path.join(dir, "rows.json"),
      "--runtime",
      python!,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^INFO {2}summarised 1 table batch\(es\)$/m);
    assert.match(
      ok.stdout,
      /^WRITE default: write_summary,table=cpu rows=2i,sum=7\.0,min=2\.0,max=5\.0$/m,
    );
    const bad = run(process.execPath, [
      CLI,
      "engine",
      "test",
      path.join(FIXTURES, "hostile.py"),
      "--request",
      "--args",
      "how=raise",
      "--runtime",
      python!,
      "--json",
    ]);
    assert.equal(bad.code, 1, bad.stderr);
    const r = JSON.parse(bad.stdout) as { ok: boolean; error: string };
    assert.equal(r.ok, false);
    assert.match(r.error, /Traceback[\s\S]*ZeroDivisionError/);
    const usage = run(process.execPath, [
      CLI,
      "engine",
      "test",
      path.join(EXAMPLES, "summarise.py"),
    ]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /choose one of --table/);
  });

  test("engine serve: loopback, token-guarded admin, request triggers, /health and /metrics", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const server = await startServe(["--token", "s3cret"]);
    try {
      const base = server.base;
      assert.deepEqual(await (await fetch(`${base}/health`)).json(), { status: "ok", triggers: 0 });
      const trigger = { name: "sum", plugin: "summarise.py", spec: "table:cpu" };
      const admin = `${base}/api/v3/engine-admin`;
      const post = (url: string, body: unknown, token?: string) =>
        fetch(url, {
          method: "POST",
          body: JSON.stringify(body),
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
      assert.equal((await post(`${admin}/triggers`, trigger)).status, 401);
      assert.equal((await post(`${admin}/triggers`, trigger, "wrong")).status, 401);
      assert.equal((await post(`${admin}/triggers`, trigger, "s3cret")).status, 201);
      assert.equal((await post(`${admin}/triggers`, trigger, "s3cret")).status, 409);
      assert.equal(
        (
          await post(
            `${admin}/triggers`,
            { name: "stats", plugin: "stats_http.py", spec: "request:stats" },
            "s3cret",
          )
        ).status,
        201,
      );
      const w = await post(
        `${admin}/write`,
        { database: "db", tables: [{ table_name: "cpu", rows: [{ value: 3 }] }] },
        "s3cret",
      );
      assert.deepEqual(await w.json(), [{ trigger: "sum", ok: true }]);
      const stats = await fetch(`${base}/api/v3/engine/stats?x=2&x=4`);
      assert.equal(((await stats.json()) as { mean: number }).mean, 3);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /^pyport_engine_invocations_total\{trigger="sum"\} 1$/m);
      assert.match(metrics, /^pyport_engine_invocation_seconds_count\{trigger="stats"\} 1$/m);
      const logs = await fetch(`${admin}/logs?trigger=sum`, {
        headers: { authorization: "Bearer s3cret" },
      });
      assert.match(JSON.stringify(await logs.json()), /summarised 1 table batch/);
    } finally {
      assert.equal(await server.stop(), 0, "SIGTERM stops the server and its workers cleanly");
    }
  });

  test("engine trigger|install|logs drive a running server; pip's exit code comes back", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const server = await startServe([]);
    try {
      const token = /admin token (\S+)/.exec(server.output())?.[1];
      assert.ok(token, `serve prints the token it made: ${server.output()}`);
      const env = { ...process.env, PYPORT_ENGINE_URL: server.base, PYPORT_ENGINE_TOKEN: token };
      const cli = (...args: string[]) => pyportAsync(["engine", ...args], env);
      let r = await cli(
        "trigger",
        "create",
        "sums",
        "--plugin",
        "summarise.py",
        "--spec",
        "table:cpu",
      );
      assert.equal(r.code, 0, r.stderr);
      r = await cli("trigger", "create", "sums", "--plugin", "summarise.py", "--spec", "table:cpu");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /409: a trigger named "sums" exists/);
      r = await cli("trigger", "create", "bad", "--plugin", "summarise.py", "--spec", "every:soon");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /every:soon/);
      r = await cli("trigger", "list");
      assert.match(
        r.stdout,
        /^sums {2}summarise\.py {2}table:cpu {2}0 invocations, 0 errors, 0 dropped$/m,
      );

      // logs --follow prints entries as they come.
      const follow = spawn(
        process.execPath,
        [CLI, "engine", "logs", "--follow", "--trigger", "sums"],
        {
          env,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let followed = "";
      const seen = new Promise<void>((resolve) =>
        follow.stdout.setEncoding("utf8").on("data", (d: string) => {
          followed += d;
          if (/summarised 1 table batch/.test(followed)) resolve();
        }),
      );
      await new Promise((res) => setTimeout(res, 700)); // past its first poll
      const w = await fetch(`${server.base}/api/v3/engine-admin/write`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ tables: [{ table_name: "cpu", rows: [{ value: 1 }] }] }),
      });
      assert.equal(w.status, 200);
      await seen;
      follow.kill("SIGINT");
      assert.match(followed, /^\S+Z sums info: summarised 1 table batch\(es\)$/m);

      r = await cli("install", "six");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Successfully installed six-/);
      r = await cli("install", "pyport-no-such-package-here");
      assert.equal(r.code, 1, "pip's exit code");
      assert.match(r.stderr, /No matching distribution found for pyport-no-such-package-here/);

      assert.equal((await cli("trigger", "disable", "sums")).code, 0);
      assert.match((await cli("trigger", "list")).stdout, /\(disabled\)/);
      assert.equal((await cli("trigger", "delete", "sums")).code, 0);
      assert.match((await cli("trigger", "list")).stdout, /^no triggers$/m);
      r = await cli("trigger", "delete", "sums");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /404/);
      r = await pyportAsync(["engine", "trigger", "list"], {
        ...env,
        PYPORT_ENGINE_TOKEN: "wrong",
      });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /401[\s\S]*--token/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
