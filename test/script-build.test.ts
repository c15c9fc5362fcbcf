/**
 * Starting from a script: `pyport build app.py -r requirements.txt` builds only the script and
 * its requirements (nothing else from its directory) into a bundle whose launcher runs it as
 * __main__ with its arguments and exit code; a pyport.toml project without setup.py builds; and
 * setuptools, which only builds need, is left out of the bundle unless something requires it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { pyport, run, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

const env = { ...process.env, PIP_RETRIES: "0" };

describe("builds from a script", { timeout: 600_000 }, () => {
  let python: string | undefined;
  before(async () => {
    python = (await sharedPython(["3.11", "3.12", "3.13"]))?.path;
  });

  test("a script and its requirements file become a bundle that runs the script", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const dir = tmpDir("script");
    fs.writeFileSync(
      path.join(dir, "my-tool.py"),
      'import sys, six\nprint("ran as", __name__, sys.argv[1:], "six", six.__version__)\nsys.exit(3)\n',
    );
    fs.writeFileSync(path.join(dir, "requirements.txt"), "six\n");
    fs.writeFileSync(path.join(dir, "secrets.txt"), "not for the bundle\n");
    const r = pyport(
      [
        "build",
        path.join(dir, "my-tool.py"),
        "-r",
        path.join(dir, "requirements.txt"),
        "--python",
        python!,
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const bundle = path.join(dir, "dist", "my-tool");
    const out = run(path.join(bundle, "bin", "my-tool"), ["a", "b c"]);
    assert.equal(out.code, 3, out.stderr);
    assert.match(out.stdout, /^ran as __main__ \['a', 'b c'\] six \d/);
    const all = run("find", [bundle, "-name", "secrets.txt"]).stdout;
    assert.equal(all, "", "nothing else from the script's directory is installed");
    const site = run("sh", ["-c", `ls ${bundle}/lib/python3.*/site-packages`]).stdout;
    assert.doesNotMatch(
      site,
      /^setuptools|^pkg_resources|^_distutils_hack/m,
      "setuptools is left out",
    );
  });

  test("a pyport.toml project without setup.py builds, its script and package installed", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const dir = path.join(tmpDir("pyport-toml"), "proj");
    fs.mkdirSync(path.join(dir, "helpers"), { recursive: true });
    fs.writeFileSync(
      path.join(dir, "pyport.toml"),
      'name = "plain"\nversion = "2.0"\nscript = "main.py"\n',
    );
    fs.writeFileSync(path.join(dir, "helpers", "__init__.py"), "GREETING = 'hi from a package'\n");
    fs.writeFileSync(path.join(dir, "main.py"), "from helpers import GREETING\nprint(GREETING)\n");
    const r = pyport(["build", dir, "--python", python!, "--out", tmpDir("pyport-toml-out")], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /plain has no pyproject\.toml or setup\.py: pyport wrote one/);
    const bundle = path.join(r.stdout.match(/dir\s+(\S+)/)![1]);
    const out = run(path.join(bundle, "bin", "plain"), []);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, "hi from a package\n");
    assert.ok(
      !fs.existsSync(path.join(dir, "pyproject.toml")),
      "the project itself is not touched",
    );
  });

  test("a script that is not an identifier module, or missing, is a clear error", () => {
    const dir = tmpDir("bad-script");
    fs.writeFileSync(path.join(dir, "pyport.toml"), 'name = "x"\nscript = "my-app.py"\n');
    const r = pyport(["build", dir, "--out", tmpDir("bad-out")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pyport\.toml:2: script: "my-app\.py" is not a top-level module file/);
    const missing = pyport(["build", path.join(dir, "nope.py")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.py does not exist/);
  });
});
