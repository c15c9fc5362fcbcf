/**
 * Choosing the interpreter: PEP 440 specifiers, `requires-python` honoured when no Python is
 * configured (against the interpreters really on this machine), and pip's "No matching
 * distribution" explained with the Pythons the index has wheels for.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { loadConfig } from "../src/bundle/config.js";
import { sourceOf } from "../src/bundle/install.js";
import { PyportError } from "../src/errors.js";
import { discoverPythons } from "../src/python/discover.js";
import { satisfies } from "../src/python/specifier.js";
import { pyport, REPO, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

describe("choosing the interpreter", { timeout: 300_000 }, () => {
  test("PEP 440 specifiers", () => {
    const cases: [string, string, boolean][] = [
      ["3.12.1", ">=3.8", true],
      ["3.12.1", ">=3.9,<3.12", false],
      ["3.11.7", ">=3.9,<3.12", true],
      ["3.11.7", "~=3.11", true],
      ["3.12.0", "~=3.11", true],
      ["3.12.0", "~=3.11.2", false],
      ["3.11.7", "~=3.11.2", true],
      ["3.12.1", "==3.12.*", true],
      ["3.13.0", "==3.12.*", false],
      ["3.12.1", "!=3.12.1", false],
      ["3.12.1", "!=3.12.*, >=3.8", false],
      ["3.10.0", "<=3.10", true],
      ["3.10.1", "<=3.10", false],
      ["3.10.0", "==3.10", true],
    ];
    for (const [version, spec, expected] of cases)
      assert.equal(satisfies(version, spec), expected, `${version} ${spec}`);
  });

  test("a bad requires-python names the file and line", () => {
    const dir = tmpDir("reqpy");
    fs.writeFileSync(
      path.join(dir, "pyproject.toml"),
      '[project]\nname = "x"\nversion = "1"\nrequires-python = ">=3.9 or so"\n',
    );
    assert.throws(
      () => loadConfig(dir),
      (err: unknown) =>
        err instanceof PyportError &&
        /pyproject\.toml:4: project\.requires-python: ">=3\.9 or so" is not a version specifier/.test(
          err.message,
        ),
    );
  });

  test("with no Python configured, the newest interpreter that satisfies requires-python", async (t) => {
    const usable = (await discoverPythons()).filter(
      (p) => p.probe.minor >= 8 && p.probe.ensurepip.present && p.probe.ensurepip.wheels,
    );
    const minors = [...new Set(usable.map((p) => p.probe.minor))].sort((a, b) => a - b);
    if (minors.length < 2) return skipPart(t, "needs two CPython minor versions with ensurepip");
    const newest = minors[minors.length - 1];
    const below = minors[minors.length - 2];
    const pathOf = (s: Awaited<ReturnType<typeof sourceOf>>) => ("python" in s ? s.python : "");
    const chosen = pathOf(await sourceOf({ requiresPython: `>=3.8,<3.${newest}` }));
    const probe = usable.find((p) => p.path === chosen);
    assert.equal(probe?.probe.minor, below, `picked ${chosen}`);
    const unconstrained = pathOf(await sourceOf({}));
    assert.equal(usable.find((p) => p.path === unconstrained)?.probe.minor, newest);
    await assert.rejects(
      sourceOf({ requiresPython: ">=4" }),
      /no Python on this machine satisfies requires-python ">=4" \(found: /,
    );
  });

  test("no wheel for this Python: the error says which Pythons the index has wheels for", async (t) => {
    // The machine's index has numpy wheels for one CPython version only (see the README).
    const py = await sharedPython(["3.12", "3.13"]);
    if (!py || py.probe.minor === 11) return skipPart(t, "needs a CPython other than 3.11");
    const dir = path.join(tmpDir("nowheel"), "numpy-report");
    fs.cpSync(path.join(REPO, "examples/numpy-report"), dir, {
      recursive: true,
      filter: (s) => path.basename(s) !== "dist",
    });
    const r = pyport(["build", dir, "--python", py.path, "--out", tmpDir("nowheel-out")], {
      ...process.env,
      PIP_RETRIES: "0",
    });
    if (/numpy/.test(r.stderr) && !/No matching distribution|the index has wheels/.test(r.stderr))
      assert.fail(r.stderr);
    if (r.code === 0)
      return skipPart(t, `the index has a numpy wheel for Python ${py.probe.version}`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `numpy: the index has wheels for cp3\\d+(, cp3\\d+)*( only)?; this build uses Python ${py.probe.version.replace(/\./g, "\\.")} \\(cp3${py.probe.minor}, linux \\S+\\) — set python = "3\\.\\d+"`,
      ),
    );
  });
});
