/**
 * Acceptance for portable runtimes: real interpreters from three sources, relocated and checked
 * with `doctor` from a moved path with spaces, through a symlink, in a busybox-only chroot
 * (bundled libc) and in a Debian bullseye root (glibc 2.31).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { createRuntime } from "../src/runtime/create.js";
import { runDoctor, type DoctorReport } from "../src/runtime/doctor.js";
import { readManifest } from "../src/runtime/manifest.js";
import { compareVersions } from "../src/runtime/libc.js";
import type { FoundPython } from "../src/python/discover.js";
import {
  bullseyeRoot,
  busyboxRoot,
  distroPython,
  isRoot,
  pyport,
  pyportAsync,
  run,
  sharedPython,
  sharedPythons,
  tmpDir,
  useTestCache,
  withProc,
  skipPart,
} from "./helpers.js";
import { fullArchive, installOnlyArchive } from "./pbs-fixture.js";

useTestCache();

function assertHealthy(report: DoctorReport, where: string): void {
  const failed = report.checks.filter((c) => c.status === "fail");
  assert.deepEqual(failed, [], `${where}: failing doctor checks`);
  assert.ok(report.checks.length >= 11, `${where}: expected every check to run`);
}

/** Moves a runtime to a path with spaces and checks it there, directly and through a symlink. */
async function checkMovedAndLinked(out: string, tag: string): Promise<string> {
  const movedParent = path.join(tmpDir(tag), "moved dir with spaces");
  fs.mkdirSync(movedParent);
  const moved = path.join(movedParent, "rt");
  fs.renameSync(out, moved);
  assertHealthy(await runDoctor(moved), `${tag} moved`);
  const linkDir = tmpDir(`${tag}-link`);
  const link = path.join(linkDir, "py");
  fs.symlinkSync(path.join(moved, "bin", "python3"), link);
  assertHealthy(await runDoctor(moved, { interpreter: link }), `${tag} through a symlink`);
  return moved;
}

let shared: FoundPython | undefined;
let distro: FoundPython | undefined;
before(async () => {
  shared = await sharedPython();
  distro = await distroPython();
});

describe("runtime from a pyenv-style build (shared libpython)", () => {
  let systemRt: string | undefined;

  test("system libc: doctor passes moved and through a symlink; provenance is recorded", async (t) => {
    if (!shared) return t.skip("no CPython with a shared libpython found (install one with pyenv)");
    const out = path.join(tmpDir("pyenv"), "rt");
    const r = await createRuntime({ source: { python: shared.path }, out });
    const m = r.manifest;
    assert.equal(m.libc.mode, "system");
    assert.equal(m.python.linkMode, "shared");
    assert.match(m.libc.glibcFloor ?? "", /^2\.\d+$/);
    const libpython = m.grafted.find((g) => g.soname.startsWith("libpython"));
    assert.ok(
      libpython &&
        fs.realpathSync(libpython.source).startsWith(fs.realpathSync(shared.probe.prefix)),
      "libpython grafted from the source prefix",
    );
    for (const g of m.grafted.filter((x) => x.package))
      assert.ok(g.license && fs.existsSync(path.join(out, g.license)), `licence of ${g.soname}`);
    assert.ok(fs.existsSync(path.join(out, "licenses", "python.LICENSE.txt")));
    systemRt = await checkMovedAndLinked(out, "pyenv");
  });

  test("a C extension builds against the moved runtime with pip install of a local source tree", async (t) => {
    if (!systemRt) return t.skip("needs the runtime of the previous test");
    const py = path.join(systemRt, "bin", "python3");
    const src = tmpDir("cext");
    fs.writeFileSync(
      path.join(src, "spam.c"),
      '#include <Python.h>\nstatic PyObject *add(PyObject *s, PyObject *a) { long x, y; if (!PyArg_ParseTuple(a, "ll", &x, &y)) return NULL; return PyLong_FromLong(x + y); }\nstatic PyMethodDef m[] = {{"add", add, METH_VARARGS, ""}, {0}};\nstatic struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "spam", 0, -1, m};\nPyMODINIT_FUNC PyInit_spam(void) { return PyModule_Create(&d); }\n',
    );
    fs.writeFileSync(
      path.join(src, "setup.py"),
      'from setuptools import setup, Extension\nsetup(name="spam", version="1.0", ext_modules=[Extension("spam", ["spam.c"])])\n',
    );
    const r = run(py, ["-m", "pip", "install", "--no-cache-dir", src]);
    if (
      r.code !== 0 &&
      /No matching distribution found for setuptools|Could not find a version/.test(
        r.stdout + r.stderr,
      )
    ) {
      return t.skip(
        "setuptools is not available from the configured package index: C extension build not tested",
      );
    }
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(run(py, ["-c", "import spam; print(spam.add(40, 2))"]).stdout.trim(), "42");
    const inc = run(py, [
      "-c",
      "import sysconfig; print(sysconfig.get_config_var('INCLUDEPY'))",
    ]).stdout.trim();
    assert.ok(inc.startsWith(systemRt), `INCLUDEPY ${inc} lies inside the runtime`);
  });

  test("bundled libc: doctor passes in a chroot holding only busybox-static and the runtime", async (t) => {
    if (!shared) return t.skip("no CPython with a shared libpython found");
    const out = path.join(tmpDir("bundled"), "rt");
    const r = await createRuntime({ source: { python: shared.path }, out, libc: "bundled" });
    assert.equal(r.manifest.libc.mode, "bundled");
    assert.ok(fs.existsSync(path.join(out, "libexec", "libc.so.6")));
    // No LD_LIBRARY_PATH leaks into non-Python children.
    const child = run(path.join(out, "bin", "python3"), [
      "-c",
      "import os, subprocess; print(repr(os.environ.get('LD_LIBRARY_PATH'))); subprocess.run(['sh', '-c', 'echo child:$LD_LIBRARY_PATH:'], check=True)",
    ]);
    assert.equal(child.stdout, "None\nchild::\n", child.stderr);
    assertHealthy(await runDoctor(out), "bundled, in place");
    if (!isRoot)
      return t.skip(
        "not root: the busybox chroot test of the bundled-libc runtime needs chroot and mount",
      );
    const root = busyboxRoot(out);
    if (!root)
      return t.skip(
        "busybox-static is not installed (apt-get install busybox-static): chroot test not run",
      );
    assert.ok(
      !fs.existsSync(path.join(root, "lib")) && !fs.existsSync(path.join(root, "usr")),
      "the root has no libc of its own",
    );
    const report = await withProc(root, () =>
      runDoctor(out, { interpreter: "/rt/bin/python3", wrap: (argv) => ["chroot", root, ...argv] }),
    );
    assertHealthy(report, "busybox chroot");
    assert.equal(report.prefix, "/rt");
    if ((await readManifest(out)).libc.launcher === "native") {
      // An empty root: no shell, no libc, no /proc — only the runtime.
      const empty = tmpDir("empty-root");
      fs.mkdirSync(path.join(empty, "rt"));
      assert.equal(run("cp", ["-a", `${out}/.`, path.join(empty, "rt")]).code, 0);
      const code =
        "import sys, ssl, sqlite3, subprocess; print(subprocess.run([sys.executable, '-c', 'print(6*7)'], capture_output=True, text=True).stdout.strip(), sys.executable)";
      const r = run("chroot", [empty, "/rt/bin/python3", "-c", code]);
      assert.equal(r.stdout.trim(), "42 /rt/bin/python3", r.stderr);
    } else
      await skipPart(
        t,
        "no native launcher was built (no C compiler): the empty-root test of a bundled runtime was not run",
      );
    bundledForBullseye = out;
  });

  let bundledForBullseye: string | undefined;
  test("bullseye root (glibc 2.31): bundled passes; system runs iff its recorded floor allows", async (t) => {
    if (!shared || !systemRt) return t.skip("needs the runtimes of the previous tests");
    if (!isRoot)
      return t.skip("not root: the bullseye chroot test needs debootstrap, chroot and mount");
    const root = bullseyeRoot();
    if (!root)
      return t.skip(
        "no bullseye root could be made (debootstrap missing or the Debian mirror unreachable)",
      );
    const target = tmpDir("bullseye-rt");
    fs.rmSync(target, { recursive: true });
    const inRoot = (rt: string, name: string) => {
      const dest = path.join(root, "opt", name);
      fs.rmSync(dest, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      assert.equal(run("cp", ["-a", `${rt}/.`, dest]).code === 0 || fs.existsSync(dest), true);
      return `/opt/${name}`;
    };
    const rootGlibc = run("chroot", [root, "ldd", "--version"]).stdout.match(
      /(\d+\.\d+)\s*$/m,
    )?.[1];
    assert.equal(rootGlibc, "2.31");
    await withProc(root, async () => {
      if (bundledForBullseye) {
        const p = inRoot(bundledForBullseye, "bundled");
        assertHealthy(
          await runDoctor(bundledForBullseye, {
            interpreter: `${p}/bin/python3`,
            wrap: (a) => ["chroot", root, ...a],
          }),
          "bullseye bundled",
        );
      }
      const floor = (await readManifest(systemRt!)).libc.glibcFloor!;
      const p = inRoot(systemRt!, "system");
      const r = run("chroot", [root, `${p}/bin/python3`, "-c", "print('ran')"]);
      if (compareVersions(floor, rootGlibc!) <= 0) {
        assert.equal(r.stdout.trim(), "ran", r.stderr);
        assertHealthy(
          await runDoctor(systemRt!, {
            interpreter: `${p}/bin/python3`,
            wrap: (a) => ["chroot", root, ...a],
          }),
          "bullseye system",
        );
      } else {
        assert.notEqual(r.code, 0, `floor ${floor} > 2.31, yet the interpreter ran`);
        const needed = [...r.stderr.matchAll(/GLIBC_(\d+\.\d+)/g)].map((m) => m[1]);
        assert.ok(needed.length > 0, `expected a GLIBC_x.y error, got: ${r.stderr}`);
        for (const v of needed)
          assert.ok(
            compareVersions(v, floor) <= 0 && compareVersions(v, "2.31") > 0,
            `loader wants GLIBC_${v}; recorded floor ${floor}`,
          );
      }
    });
  });
});

describe("every shared-libpython build 3.8–3.13 on this machine", () => {
  test("minimal profile: doctor passes from a moved path with spaces", async (t) => {
    const builds = (await sharedPythons()).filter(
      (p) => p.probe.minor <= 13 && p.path !== shared?.path,
    );
    const minors = builds.map((p) => `3.${p.probe.minor}`);
    const missing = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"].filter(
      (v) => !minors.includes(v) && v !== `3.${shared?.probe.minor}`,
    );
    if (missing.length)
      await skipPart(
        t,
        `no shared-libpython build of ${missing.join(", ")} here (install with pyenv): not tested`,
      );
    for (const py of builds) {
      await t.test(`Python ${py.probe.version}`, async () => {
        const out = path.join(tmpDir(`py3${py.probe.minor}`), "rt");
        await createRuntime({ source: { python: py.path }, out, profile: "minimal" });
        const movedParent = path.join(tmpDir(`py3${py.probe.minor}`), "moved dir");
        fs.mkdirSync(movedParent);
        fs.renameSync(out, path.join(movedParent, "rt"));
        assertHealthy(
          await runDoctor(path.join(movedParent, "rt")),
          `Python ${py.probe.version} moved`,
        );
      });
    }
  });
});

describe("runtime from a distribution interpreter (static libpython, no RPATH)", () => {
  test("system libc: doctor passes moved and through a symlink", async (t) => {
    if (!distro)
      return t.skip(
        "no distribution python3.X under /usr with a static libpython (Debian: apt-get install python3)",
      );
    const out = path.join(tmpDir("distro"), "rt");
    const r = await createRuntime({ source: { python: distro.path }, out });
    assert.equal(r.manifest.python.linkMode, "static");
    assert.ok(
      r.manifest.grafted.some((g) => g.soname.startsWith("libexpat")),
      "libexpat grafted for pyexpat/the interpreter",
    );
    await checkMovedAndLinked(out, "distro");
  });
});

describe("runtime from python-build-standalone archives", () => {
  test("install_only .tar.gz from a loopback URL: plain HTTP needs a pinned --sha256", async (t) => {
    if (!shared)
      return t.skip("no CPython with a shared libpython to build the archive fixture from");
    const archive = await installOnlyArchive(shared);
    const bytes = fs.readFileSync(archive);
    const sha = createHash("sha256").update(bytes).digest("hex");
    const name = path.basename(archive);
    const server = http.createServer((req, res) => {
      if (req.url === `/dist/${name}`)
        res.writeHead(200, { "content-length": bytes.length }).end(bytes);
      else if (req.url === "/dist/SHA256SUMS") res.end(`${sha}  ${name}\n`);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dist/${name}`;
      const out = path.join(tmpDir("pbs-url"), "rt");
      // A SHA256SUMS from the same plain-HTTP server proves nothing: refused, nothing created.
      const unpinned = await pyportAsync(["runtime", "create", "--archive", url, "--out", out]);
      assert.equal(unpinned.code, 2, unpinned.stderr);
      assert.match(unpinned.stderr, /plain HTTP: a SHA256SUMS from the same server proves nothing/);
      assert.ok(!fs.existsSync(out));
      const cli = await pyportAsync([
        "runtime",
        "create",
        "--archive",
        url,
        "--sha256",
        sha,
        "--out",
        out,
        "--json",
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const m = JSON.parse(cli.stdout).manifest;
      assert.equal(m.source.kind, "archive");
      assert.equal(m.source.sha256, sha);
      await checkMovedAndLinked(out, "pbs-url");
      const wrong = await pyportAsync([
        "runtime",
        "create",
        "--archive",
        url,
        "--sha256",
        "1".repeat(64),
        "--out",
        path.join(tmpDir("pbs-bad"), "rt"),
      ]);
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, /sha256 mismatch/);
    } finally {
      server.close();
    }
  });

  test("full .tar.zst with PYTHON.json from a local path", async (t) => {
    if (!shared)
      return t.skip("no CPython with a shared libpython to build the archive fixture from");
    if (run("sh", ["-c", "command -v zstd"]).code !== 0)
      return t.skip("zstd is not installed (apt-get install zstd)");
    const archive = await fullArchive(shared);
    const out = path.join(tmpDir("pbs-full"), "rt");
    const r = await createRuntime({ source: { archive }, out, profile: "minimal" });
    assert.equal(r.manifest.profile, "minimal");
    assert.ok(!fs.existsSync(path.join(out, "include")), "minimal drops the headers");
    await checkMovedAndLinked(out, "pbs-full");
  });
});

describe("runtime create: errors and the CLI", () => {
  test("refuses a non-empty --out without --force, and names it", async (t) => {
    if (!shared) return t.skip("no CPython with a shared libpython found");
    const out = tmpDir("busy");
    fs.writeFileSync(path.join(out, "keep.txt"), "mine");
    const r = pyport(["runtime", "create", "--python", shared.path, "--out", out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exists and is not empty/);
    assert.match(r.stderr, /--force/);
    assert.equal(fs.readFileSync(path.join(out, "keep.txt"), "utf8"), "mine");
  });

  test("usage errors say what to do; info and doctor work from the CLI", async (t) => {
    const both = pyport(["runtime", "create", "--python", "3", "--archive", "x", "--out", "y"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one of --python or --archive/);
    const unknown = pyport(["runtime", "create", "--python", "2.1", "--out", tmpDir("x")]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no Python 2\.1 found[\s\S]*Versions found/);
    if (!shared) return t.skip("no CPython with a shared libpython found");
    const out = path.join(tmpDir("cli"), "rt");
    assert.equal(
      pyport(["runtime", "create", "--python", shared.path, "--out", out, "--quiet"]).code,
      0,
    );
    const info = JSON.parse(pyport(["runtime", "info", out, "--json"]).stdout);
    assert.equal(info.python.version, shared.probe.version);
    assert.ok(info.bytes > 10_000_000);
    const doctor = pyport(["runtime", "doctor", out]);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /all checks passed/);
    const notRt = pyport(["runtime", "info", tmpDir("empty")]);
    assert.equal(notRt.code, 2);
    assert.match(notRt.stderr, /is not a pyport runtime/);
  });
});
