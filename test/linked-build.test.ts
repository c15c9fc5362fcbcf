/**
 * Builds link the cached runtime and dependencies instead of copying them; a bundle file changed
 * in place (which changes the cache through the link) never reaches the next build, and
 * PYPORT_NO_LINKS=1 gives independent copies. pyport's wheel installer refuses a member that
 * climbs out of the target, and installs `.data` scripts and data where pip would.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { pythonAsset } from "../src/util/assets.js";
import { pyport, REPO, run, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

describe("linked builds", { timeout: 600_000 }, () => {
  let python: string | undefined;
  let project = "";
  before(async () => {
    python = (await sharedPython())?.path;
    project = path.join(tmpDir("linked-project"), "hello");
    fs.cpSync(path.join(REPO, "examples/hello"), project, { recursive: true });
  });

  const buildInto = (out: string, env: NodeJS.ProcessEnv = process.env) => {
    const r = pyport(["build", project, "--python", python!, "--format", "dir", "--out", out], env);
    assert.equal(r.code, 0, r.stderr);
    const bundle = path.join(out, "hello");
    const osPy = fs
      .readdirSync(path.join(bundle, "lib"))
      .filter((d) => /^python3\.\d+$/.test(d))
      .map((d) => path.join(bundle, "lib", d, "os.py"))[0];
    return { bundle, osPy, stderr: r.stderr };
  };

  test("a bundle file changed in place does not reach the next build; PYPORT_NO_LINKS copies", (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const first = buildInto(tmpDir("linked-1"));
    assert.ok(fs.statSync(first.osPy).nlink >= 2, "os.py is a hard link into the cache");
    const pristine = fs.readFileSync(first.osPy, "utf8");

    fs.appendFileSync(first.osPy, "\nraise SystemExit('changed in place')\n");
    const second = buildInto(tmpDir("linked-2"));
    assert.match(second.stderr, /was changed in place/);
    assert.equal(fs.readFileSync(second.osPy, "utf8"), pristine);
    const hello = run(path.join(second.bundle, "bin/hello"), []);
    assert.equal(hello.code, 0, hello.stderr);
    assert.match(fs.readFileSync(first.osPy, "utf8"), /changed in place/, "the user's edit stays");

    const third = buildInto(tmpDir("linked-3"), { ...process.env, PYPORT_NO_LINKS: "1" });
    assert.doesNotMatch(third.stderr, /changed in place/);
    assert.equal(fs.statSync(third.osPy).nlink, 1, "an independent copy");
    assert.equal(fs.readFileSync(third.osPy, "utf8"), pristine);
  });

  test("the wheel installer refuses a climbing member and places .data like pip", (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const runtime = path.join(tmpDir("linked-rt"), "rt");
    const made = pyport(["runtime", "create", "--python", python, "--out", runtime]);
    assert.equal(made.code, 0, made.stderr);
    const py = path.join(runtime, "bin/python3");
    const wheels = tmpDir("linked-wheels");
    const makeWheel = (name: string, members: Record<string, string>) => {
      const file = path.join(wheels, `${name}-1.0-py3-none-any.whl`);
      const all = {
        ...members,
        [`${name}-1.0.dist-info/METADATA`]: `Metadata-Version: 2.1\nName: ${name}\nVersion: 1.0\n`,
        [`${name}-1.0.dist-info/WHEEL`]:
          "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        [`${name}-1.0.dist-info/RECORD`]: "",
      };
      const r = run(py, [
        "-I",
        "-c",
        "import json, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n  for n, d in json.loads(sys.argv[2]).items(): z.writestr(n, d)",
        file,
        JSON.stringify(all),
      ]);
      assert.equal(r.code, 0, r.stderr);
      return file;
    };

    const evil = makeWheel("evil", {
      "evil/__init__.py": "",
      "evil-1.0.data/data/../../../../escaped.txt": "out",
    });
    const refused = run(py, ["-I", pythonAsset("install_wheel.py"), evil]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing the member/);
    assert.ok(!fs.existsSync(path.join(path.dirname(runtime), "escaped.txt")));
    const site = run(py, ["-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]);
    assert.ok(!fs.existsSync(path.join(site.stdout.trim(), "evil")), "nothing written");

    const good = makeWheel("good", {
      "good/__init__.py": "def main():\n    print('good main')\n",
      "good-1.0.data/scripts/good-tool": "#!python\nprint('tool ran')\n",
      "good-1.0.data/data/share/good/notes.txt": "notes\n",
      "good-1.0.dist-info/entry_points.txt": "[console_scripts]\ngood = good:main\n",
    });
    const ok = run(py, ["-I", pythonAsset("install_wheel.py"), good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(run(path.join(runtime, "bin/good-tool"), []).stdout, "tool ran\n");
    assert.equal(run(path.join(runtime, "bin/good"), []).stdout, "good main\n");
    assert.equal(fs.readFileSync(path.join(runtime, "share/good/notes.txt"), "utf8"), "notes\n");
    const shown = run(py, ["-I", "-m", "pip", "show", "-f", "good"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /\.\.\/\.\.\/\.\.\/bin\/good-tool/);
    const removed = run(py, ["-I", "-m", "pip", "uninstall", "-y", "good"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!fs.existsSync(path.join(runtime, "bin/good-tool")), "pip uninstalls it from RECORD");
  });
});
