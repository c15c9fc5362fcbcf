/**
 * Both ways of making a venv work from a runtime, in both libc modes, after the runtime has moved
 * to a path with a space: `python -m venv --copies` and `venv.create()` (whose default is copies).
 * pip in such a venv is checked by CPython's own test_venv (test_with_pip), which the oracle
 * (cpython-oracle.test.ts) runs in every source and libc mode. A copied interpreter of a
 * system-libc runtime needs libpython beside it (the venv hook copies it); a copied launcher of
 * a bundled-libc runtime finds the runtime through pyvenv.cfg's home. An interpreter file copied
 * out of the runtime alone starts with LD_LIBRARY_PATH naming the runtime's lib/ (as CPython's
 * test_zippath_from_non_installed_posix does), and a venv made from it starts without it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { pyport, run, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

describe("venvs with copies", { timeout: 600_000 }, () => {
  let python: string | undefined;
  before(async () => {
    python = (await sharedPython())?.path;
  });

  for (const libc of ["system", "bundled"] as const) {
    test(`libc ${libc}: venv --copies and venv.create() start and import ssl and sqlite3; so does a venv of an interpreter copied out alone`, async (t) => {
      if (!python) return skipPart(t, "no CPython with a shared libpython found");
      const made = path.join(tmpDir(`venv-${libc}`), "made");
      const r = pyport(["runtime", "create", "--python", python, "--libc", libc, "--out", made]);
      assert.equal(r.code, 0, r.stderr);
      const runtime = path.join(path.dirname(made), "moved runtime");
      fs.renameSync(made, runtime);
      const rtPython = path.join(runtime, "bin/python3");

      const copies = path.join(tmpDir(`venv-copies-${libc}`), "v");
      const mk = run(rtPython, ["-m", "venv", "--copies", "--without-pip", copies]);
      assert.equal(mk.code, 0, mk.stderr);
      assert.ok(
        !fs.lstatSync(path.join(copies, "bin/python")).isSymbolicLink(),
        "a copy, not a link",
      );
      const api = path.join(tmpDir(`venv-api-${libc}`), "v");
      const mkApi = run(rtPython, ["-c", `import venv; venv.create(${JSON.stringify(api)})`]);
      assert.equal(mkApi.code, 0, mkApi.stderr);

      for (const venv of [copies, api]) {
        const out = run(path.join(venv, "bin/python"), [
          "-c",
          "import sys, ssl, sqlite3; print(sys.prefix); print(sys.base_prefix)",
        ]);
        assert.equal(out.code, 0, `${venv}: ${out.stderr}`);
        assert.deepEqual(out.stdout.trim().split("\n"), [venv, runtime]);
      }

      const alone = tmpDir(`venv-alone-${libc}`);
      fs.mkdirSync(path.join(alone, "bin"));
      fs.mkdirSync(path.join(alone, "lib"));
      fs.copyFileSync(fs.realpathSync(rtPython), path.join(alone, "bin/python3"));
      fs.chmodSync(path.join(alone, "bin/python3"), 0o755);
      const stdlib = fs
        .readdirSync(path.join(runtime, "lib"))
        .find((n) => /^python3\.\d+$/.test(n));
      assert.ok(stdlib, "the runtime has lib/python3.X");
      fs.symlinkSync(path.join(runtime, "lib", stdlib), path.join(alone, "lib", stdlib));
      const fromAlone = path.join(alone, "venv");
      const env = { PATH: "/usr/bin:/bin", LD_LIBRARY_PATH: path.join(runtime, "lib") };
      const mkAlone = run(
        path.join(alone, "bin/python3"),
        ["-m", "venv", "--without-pip", fromAlone],
        { env },
      );
      assert.equal(mkAlone.code, 0, mkAlone.stderr);
      const out = run(
        path.join(fromAlone, "bin/python"),
        ["-c", "import sys; print(sys.base_prefix)"],
        {
          env: { PATH: "/usr/bin:/bin" },
        },
      );
      assert.equal(
        out.code,
        0,
        `a venv of the copied interpreter, no LD_LIBRARY_PATH: ${out.stderr}`,
      );
      assert.equal(out.stdout.trim(), alone);
    });
  }
});
