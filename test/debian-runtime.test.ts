/**
 * A runtime made from Debian's python3 is a normal install: pip present (from Debian's
 * python3-pip-whl wheel), every sysconfig path and prefix variable under the runtime,
 * `site-packages` where pip and venv expect it — checked after moving it to a path with a space.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { distroPython, pyport, run, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

describe("a runtime from Debian's python3", { timeout: 300_000 }, () => {
  let runtime = "";
  let why: string | undefined;
  before(async () => {
    const p = await distroPython();
    if (!p) {
      why = "no distribution (Debian) python3 on this machine";
      return;
    }
    if (
      !fs.existsSync(
        path.join(p.probe.prefix, "lib", `python${p.probe.major}.${p.probe.minor}`, "sysconfig.py"),
      )
    )
      why = "the distribution python has no sysconfig.py to read";
    const made = path.join(tmpDir("debian-rt"), "made");
    const r = pyport(["runtime", "create", "--python", p.path, "--out", made]);
    assert.equal(r.code, 0, r.stderr);
    runtime = path.join(path.dirname(made), "moved runtime");
    fs.renameSync(made, runtime);
  });

  test("sysconfig's paths and prefix variables lie under the runtime", (t) => {
    if (why) return skipPart(t, why);
    const r = run(path.join(runtime, "bin/python3"), [
      "-c",
      "import json, sysconfig; print(json.dumps([sysconfig.get_paths(), sysconfig.get_config_vars(), sysconfig.get_default_scheme()]))",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [paths, vars, scheme] = JSON.parse(r.stdout) as [
      Record<string, string>,
      Record<string, unknown>,
      string,
    ];
    assert.equal(scheme, "posix_prefix");
    for (const [k, v] of Object.entries(paths)) assert.ok(v.startsWith(runtime), `${k} = ${v}`);
    assert.match(paths.purelib, /\/lib\/python3\.\d+\/site-packages$/);
    for (const k of ["prefix", "exec_prefix", "INCLUDEDIR", "SCRIPTDIR", "LIBDEST", "datarootdir"])
      if (typeof vars[k] === "string")
        assert.ok((vars[k] as string).startsWith(runtime), `${k} = ${String(vars[k])}`);
  });

  test("pip is present and installs into site-packages; venv works with pip", (t) => {
    if (why) return skipPart(t, why);
    const manifest = JSON.parse(fs.readFileSync(path.join(runtime, "PYPORT.json"), "utf8")) as {
      pip: boolean;
      warnings: string[];
    };
    if (!manifest.pip) {
      assert.match(
        manifest.warnings.join("\n"),
        /has no pip wheel on this machine: the runtime has no pip \(apt-get install python3-pip-whl\)/,
      );
      return skipPart(t, "python3-pip-whl is not installed: the runtime says it has no pip");
    }
    const python = path.join(runtime, "bin/python3");
    const install = run(python, ["-m", "pip", "install", "--disable-pip-version-check", "six"], {
      env: { ...process.env, PIP_RETRIES: "0" },
    });
    assert.equal(install.code, 0, install.stderr);
    const where = run(python, ["-c", "import six; print(six.__file__)"]);
    assert.equal(
      where.stdout.trim(),
      path.join(
        runtime,
        "lib",
        path.basename(path.dirname(path.dirname(where.stdout.trim()))),
        "site-packages",
        "six.py",
      ),
    );
    const venv = path.join(tmpDir("debian-venv"), "v");
    assert.equal(run(python, ["-m", "venv", venv]).code, 0);
    const pip = run(path.join(venv, "bin/python"), ["-m", "pip", "--version"]);
    assert.equal(pip.code, 0, pip.stderr);
    assert.match(
      pip.stdout,
      new RegExp(
        `from ${venv.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}/lib/python3\\.\\d+/site-packages/pip`,
      ),
    );
    const doctor = pyport(["runtime", "doctor", runtime]);
    assert.equal(doctor.code, 0, doctor.stdout);
    assert.match(doctor.stdout, /pip\s+OK/);
  });
});
