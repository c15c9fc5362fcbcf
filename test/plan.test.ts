/** planBundle decides everything a build does, as data, without touching the file system. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BuildConfig } from "../src/bundle/config.js";
import { planBundle, plannedOutputs } from "../src/bundle/plan.js";

function config(over: Partial<BuildConfig> = {}): BuildConfig {
  return {
    projectDir: "/nonexistent/app",
    configFile: "/nonexistent/app/pyproject.toml",
    name: "app",
    version: "2.0",
    libc: "system",
    profile: "default",
    formats: ["dir"],
    include: [],
    exclude: [],
    bytecode: { optimize: 0, pycOnly: false },
    resources: "filesystem",
    pipArgs: ["--only-binary", ":all:"],
    services: [],
    isolated: true,
    keepPip: false,
    ...over,
  };
}

test("outputs, their names and the tools they need follow the formats and the machine", () => {
  const plan = planBundle(
    config({ formats: ["dir", "tar.zst", "onefile"] }),
    {},
    { machine: "aarch64" },
  );
  assert.deepEqual(plan.outputs, [
    { format: "dir", name: "app", dir: true },
    { format: "tar.zst", name: "app-2.0-linux-aarch64.tar.zst", dir: false },
    { format: "onefile", name: "app-2.0-linux-aarch64", dir: false },
  ]);
  assert.deepEqual(plan.needs, { zstd: true, onefileStub: true });
  assert.equal(plan.onefile?.level, 19);
  assert.equal(plan.out, "/nonexistent/app/dist");
  assert.deepEqual(
    plannedOutputs(plan, "x86_64").map((o) => o.name),
    ["app", "app-2.0-linux-x86_64.tar.zst", "app-2.0-linux-x86_64"],
  );
  const gz = planBundle(config({ formats: ["tar.gz"] }), {}, { machine: "x86_64" });
  assert.deepEqual(gz.needs, { zstd: false, onefileStub: false });
  assert.equal(gz.onefile, undefined);
});

test("overrides win over the configuration, which is left as it was", () => {
  const cfg = config({ python: "3.11" });
  const before = JSON.stringify(cfg);
  const plan = planBundle(
    cfg,
    {
      python: "/opt/py/bin/python3",
      libc: "bundled",
      profile: "full",
      pipArgs: ["--no-index"],
      out: "/tmp/o",
      audit: false,
      formats: ["tar.gz"],
    },
    { machine: "x86_64" },
  );
  assert.deepEqual(plan.source, { python: "/opt/py/bin/python3" });
  assert.equal(plan.libc, "bundled");
  assert.deepEqual(plan.install.pipArgs, ["--only-binary", ":all:", "--no-index"]);
  assert.equal(plan.out, "/tmp/o");
  assert.equal(plan.audit, false);
  assert.equal(plan.bytecode.stdlibSources, true, "the full profile keeps stdlib sources");
  assert.equal(JSON.stringify(cfg), before, "the configuration is not mutated");
});

test("pruning and bytecode: pip goes unless kept; stdlib sources only when asked or with full", () => {
  const plan = planBundle(
    config({ keepPip: true, bytecode: { optimize: 2, pycOnly: true }, resources: "zip-stdlib" }),
    {},
    { machine: "x86_64" },
  );
  assert.equal(plan.prune.removePip, false);
  assert.deepEqual(plan.bytecode, { optimize: 2, pycOnly: true, stdlibSources: false });
  assert.equal(plan.launchers.optimize, 2);
  assert.equal(plan.zipStdlib, true);
  const keep = planBundle(
    config({ bytecode: { optimize: 0, pycOnly: false, stdlibSources: true } }),
    {},
    { machine: "x86_64" },
  );
  assert.equal(keep.bytecode.stdlibSources, true);
  assert.equal(keep.prune.removePip, true);
});

test("a onefile entry that is not a declared script fails at planning", () => {
  const cfg = config({ formats: ["onefile"], declaredScripts: ["app", "tool"] });
  assert.equal(planBundle(cfg, {}, { machine: "x86_64" }).onefile?.entry, undefined);
  assert.throws(
    () => planBundle(cfg, { entry: "nope" }, { machine: "x86_64" }),
    /"nope" is not a console script of app \(it has: app, tool\)/,
  );
  assert.throws(
    () =>
      planBundle(config({ formats: ["onefile"], declaredScripts: [] }), {}, { machine: "x86_64" }),
    /declares none/,
  );
});
