/**
 * Plugin environments with real pip and the machine's wheel index: the engine's venv (install
 * streams pip's output and fails with pip's exit code; running triggers see new packages), a
 * plugin's own requirements.txt venv (installed on first use, again when the file changes), a
 * venv left by another runtime (rebuilt from its record, logged, no crash), and the numpy
 * example plugin. PIP_RETRIES=0 is set as a user would: the engine honours pip's configuration.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { Engine } from "../src/engine/engine.js";
import { PipFailure } from "../src/engine/venv.js";
import {
  sharedPython,
  sharedPythons,
  skipPart,
  tmpDir,
  useTestCache,
  PLUGIN_EXAMPLES,
} from "./helpers.js";

useTestCache();
process.env.PIP_RETRIES ??= "0"; // an unreachable default index fails at once, not after 5 retries
const EXAMPLES = PLUGIN_EXAMPLES;

/** Serves `engine`'s request triggers; returns a fetch for them and a stop function. */
async function serve(engine: Engine) {
  const server = http.createServer((req, res) => {
    void engine.handleRequest(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end("no such trigger");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3/engine/`;
  return {
    get: async (p: string) => {
      const r = await fetch(base + p);
      return { status: r.status, body: await r.text() };
    },
    stop: () => server.close(),
  };
}

const VERSIONS = `
import importlib.metadata as m

def process_request(influxdb3_local, query_parameters, request_headers, request_body, args=None):
    out = {}
    for name in ("six", "idna"):
        try:
            out[name] = m.version(name)
        except m.PackageNotFoundError:
            out[name] = None
    return out
`;

describe("plugin environments", () => {
  let python: string | undefined;
  before(async () => {
    python = (await sharedPython())?.path;
  });

  test("install streams pip's output, fails with pip's exit code, and running triggers import new packages", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython here");
    const dir = tmpDir("env-engine");
    const plugins = path.join(dir, "plugins");
    fs.mkdirSync(plugins);
    fs.writeFileSync(
      path.join(plugins, "uses_six.py"),
      "import six\n\ndef process_request(influxdb3_local, q, h, b, args=None):\n    return {'six': six.__version__}\n",
    );
    const venv = path.join(dir, "venv");
    const engine = await Engine.start({ pluginDir: plugins, runtime: python, virtualEnv: venv });
    const web = await serve(engine);
    try {
      await engine.createTrigger({ name: "six", plugin: "uses_six.py", spec: "request:six" });
      assert.equal((await web.get("six")).status, 500);
      assert.match(
        engine
          .logs({ trigger: "six", level: "error" })
          .map((e) => e.message)
          .join("\n"),
        /Traceback[\s\S]*ModuleNotFoundError: No module named 'six'/,
      );
      const output: string[] = [];
      await engine.install(["six"], (_stream, text) => void output.push(text));
      assert.match(output.join(""), /Successfully installed six-/);
      const r = await web.get("six");
      assert.equal(r.status, 200, r.body);
      assert.match(JSON.parse(r.body).six, /^\d+\.\d+/);
      // Packages went into the venv, not into the runtime, and are recorded for a rebuild.
      const record = JSON.parse(fs.readFileSync(path.join(venv, ".pyport-venv.json"), "utf8"));
      assert.deepEqual(record.requirements, ["six"]);
      assert.equal(record.base, fs.realpathSync(python));

      const failed = await engine.install({ packages: ["pyport-no-such-package-here"] }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(failed instanceof PipFailure, String(failed));
      assert.equal(failed.exitCode, 1);
      assert.match(failed.message, /exit code 1[\s\S]*pyport-no-such-package-here/);
      assert.deepEqual(
        JSON.parse(fs.readFileSync(path.join(venv, ".pyport-venv.json"), "utf8")).requirements,
        ["six"],
        "a failed install is not recorded",
      );
      assert.equal(
        (await web.get("six")).status,
        200,
        "the trigger still works after a failed install",
      );
    } finally {
      web.stop();
      await engine.close();
    }
  });

  test("a plugin's own requirements.txt gets its own venv, installed on first use and again when it changes", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython here");
    const dir = tmpDir("env-own");
    const plugins = path.join(dir, "plugins");
    fs.mkdirSync(path.join(plugins, "own"), { recursive: true });
    fs.writeFileSync(path.join(plugins, "own", "__init__.py"), VERSIONS);
    fs.writeFileSync(path.join(plugins, "own", "requirements.txt"), "six  # first\n");
    fs.writeFileSync(path.join(plugins, "shared.py"), VERSIONS);
    const engine = await Engine.start({ pluginDir: plugins, runtime: python });
    const web = await serve(engine);
    try {
      await engine.createTrigger({ name: "own", plugin: "own", spec: "request:own" });
      await engine.createTrigger({ name: "shared", plugin: "shared.py", spec: "request:shared" });
      let r = await web.get("own");
      assert.equal(r.status, 200, r.body);
      assert.ok(JSON.parse(r.body).six, r.body);
      assert.equal(JSON.parse(r.body).idna, null);
      assert.deepEqual(JSON.parse((await web.get("shared")).body), { six: null, idna: null });
      assert.ok(fs.existsSync(path.join(plugins, ".venvs", "own", "pyvenv.cfg")));
      assert.ok(fs.existsSync(path.join(plugins, ".venv", "pyvenv.cfg")));

      fs.writeFileSync(path.join(plugins, "own", "requirements.txt"), "six\nidna\n");
      r = await web.get("own");
      assert.equal(r.status, 200, r.body);
      assert.ok(JSON.parse(r.body).idna, `idna installed after the change: ${r.body}`);
      assert.match(
        engine
          .logs({ trigger: "engine" })
          .map((e) => e.message)
          .join("\n"),
        /installing .*requirements\.txt/,
      );
    } finally {
      web.stop();
      await engine.close();
    }
  });

  test("a venv made for another runtime is rebuilt from its record, with a log line, not a crash", async (t) => {
    const pythons = await sharedPythons();
    const [a, b] = pythons.filter(
      (p, i) => pythons.findIndex((q) => q.probe.minor === p.probe.minor) === i,
    );
    if (!a || !b) return skipPart(t, "needs two CPython minor versions with a shared libpython");
    const dir = tmpDir("env-stale");
    const plugins = path.join(dir, "plugins");
    fs.mkdirSync(plugins);
    fs.writeFileSync(path.join(plugins, "versions.py"), VERSIONS);
    const trigger = { name: "v", plugin: "versions.py", spec: "request:v" };
    const first = await Engine.start({ pluginDir: plugins, runtime: a.path });
    await first.install({ packages: ["six"] });
    await first.close();

    const second = await Engine.start({ pluginDir: plugins, runtime: b.path });
    const web = await serve(second);
    try {
      await second.createTrigger(trigger);
      const r = await web.get("v");
      assert.equal(r.status, 200, r.body);
      assert.ok(JSON.parse(r.body).six, `six reinstalled from the record: ${r.body}`);
      const log = second
        .logs({ trigger: "engine" })
        .map((e) => e.message)
        .join("\n");
      assert.match(log, new RegExp(`made for .*Python ${a.probe.major}\\.${a.probe.minor}`));
      assert.match(log, /rebuilding it .* with its 1 recorded requirement/);
      const cfg = fs.readFileSync(path.join(plugins, ".venv", "pyvenv.cfg"), "utf8");
      assert.match(cfg, new RegExp(`version\\S* = ${b.probe.major}\\.${b.probe.minor}\\.`));
    } finally {
      web.stop();
      await second.close();
    }
  });

  test("the numpy example plugin installs numpy from the wheel index into its own venv", async (t) => {
    const py311 = await sharedPython(["3.11"]);
    if (!py311 || py311.probe.minor !== 11)
      return skipPart(t, "the wheel index has numpy for CPython 3.11 only, and there is none here");
    const dir = tmpDir("env-numpy");
    fs.cpSync(path.join(EXAMPLES, "percentiles"), path.join(dir, "percentiles"), {
      recursive: true,
      filter: (src) => !src.includes("__pycache__"),
    });
    const engine = await Engine.start({ pluginDir: dir, runtime: py311.path });
    const web = await serve(engine);
    try {
      await engine.createTrigger({ name: "p", plugin: "percentiles", spec: "request:p" });
      const r = await web.get("p?x=1&x=2&x=3&x=4&x=5&p=50&p=100");
      if (r.status !== 200) {
        const log = engine.logs({ level: "error" }).map((e) => e.message);
        if (log.some((m) => /No matching distribution found for numpy/.test(m)))
          return skipPart(t, "numpy is not in this machine's pip index");
        assert.fail(`${r.status} ${r.body}\n${log.join("\n")}`);
      }
      const body = JSON.parse(r.body);
      assert.deepEqual(body.percentiles, { p50: 3, p100: 5 });
      assert.match(body.numpy, /^\d+\.\d+/);
    } finally {
      web.stop();
      await engine.close();
    }
  });
});
