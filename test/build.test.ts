/**
 * `pyport build` on the bundled examples: launchers that work moved, through symlinks and from
 * paths with spaces; stdio, exit codes and isolation; reproducible archives; interrupted builds;
 * configuration errors; bundles in the busybox-only chroot (bundled libc) and the bullseye root,
 * with the webapp answering HTTP from inside the chroot.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { build } from "../src/bundle/build.js";
import { loadConfig } from "../src/bundle/config.js";
import {
  bullseyeRoot,
  busyboxRoot,
  isRoot,
  pyport,
  run,
  sharedPython,
  tmpDir,
  useTestCache,
  withProc,
  skipPart,
} from "./helpers.js";

useTestCache();
const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples");

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("hello (system libc)", () => {
  let bundle: string | undefined;
  let firstTar: { path: string; sha256: string } | undefined;

  test("builds dir + tar.gz; the launcher works moved, via a symlink, from a path with spaces", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const out = tmpDir("build-hello");
    const cli = pyport([
      "build",
      path.join(EXAMPLES, "hello"),
      "--out",
      out,
      "--python",
      python,
      "--format",
      "dir,tar.gz",
      "--json",
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const r = JSON.parse(cli.stdout);
    assert.deepEqual(
      r.outputs.map((o: { format: string }) => o.format),
      ["dir", "tar.gz"],
    );
    for (const o of r.outputs)
      assert.ok(fs.existsSync(o.path) && o.sha256.length === 64 && o.bytes > 0);
    assert.deepEqual(
      fs
        .readdirSync(path.dirname(out))
        .filter((n) => n.startsWith(`.${path.basename(out)}.pyport-build`)),
      [],
      "no temp dir left",
    );
    assert.ok(
      !fs.existsSync(path.join(EXAMPLES, "hello", "build")),
      "the project source tree is not written to",
    );
    firstTar = r.outputs[1];

    const moved = path.join(tmpDir("build-moved"), "my apps", "hello");
    fs.mkdirSync(path.dirname(moved));
    fs.renameSync(r.outputs[0].path, moved);
    const hello = path.join(moved, "bin", "hello");
    assert.match(run(hello, ["pyport"]).stdout, /^Hello, pyport! \(Python 3\.\d+/);
    assert.equal(run(hello, ["--version"]).stdout.trim(), "hello 1.0.0");
    const where = run(hello, ["--where"], {
      env: { ...process.env, PYTHONPATH: "/nonexistent/injected" },
    }).stdout;
    assert.match(where, new RegExp(`^argv0=${hello}$`, "m"), "sys.argv[0] is the launcher");
    assert.match(where, new RegExp(`^prefix=${moved}$`, "m"));
    assert.match(where, /^isolated=1$/m);
    assert.equal(
      run(hello, ["--echo-stdin"], { input: "line one\nline two\n" }).stdout,
      "line one\nline two\n",
    );
    assert.equal(run(hello, ["--exit", "7"]).code, 7);
    const link = path.join(tmpDir("build-link"), "hi");
    fs.symlinkSync(hello, link);
    assert.match(run(link, ["--where"]).stdout, new RegExp(`^argv0=${link}$`, "m"));
    assert.match(
      run("sh", ["-c", "hi --where"], {
        env: { ...process.env, PATH: `${path.dirname(link)}:${process.env.PATH}` },
      }).stdout,
      new RegExp(`^prefix=${moved}$`, "m"),
    );

    // Signals reach the app: SIGTERM ends it as a signal death, not a launcher exit code.
    const child = spawn(hello, ["--echo-stdin"], { stdio: ["pipe", "ignore", "ignore"] });
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGTERM");
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on("close", (c, s) => r([c, s])),
    );
    assert.deepEqual([code, signal], [null, "SIGTERM"]);

    const licenses = fs.readFileSync(path.join(moved, "LICENSES.md"), "utf8");
    assert.match(licenses, /\| CPython \| 3\.\d+\.\d+ \| PSF-2\.0 /);
    assert.match(licenses, /\| hello \| 1\.0\.0 \| MIT /);
    const sbom = JSON.parse(fs.readFileSync(path.join(moved, "sbom.cdx.json"), "utf8"));
    assert.equal(sbom.specVersion, "1.5");
    assert.ok(!fs.existsSync(path.join(moved, "bin", "pip")), "pip is not shipped by default");

    // The default profile: the stdlib ships as sourceless .pyc (os.py, the prefix landmark,
    // stays), the app keeps its sources, and stdlib tracebacks still name file and line.
    const stdlib = path.join(
      moved,
      "lib",
      fs.readdirSync(path.join(moved, "lib")).find((d) => /^python3\.\d+$/.test(d))!,
    );
    assert.ok(
      fs.existsSync(path.join(stdlib, "json", "decoder.pyc")) &&
        !fs.existsSync(path.join(stdlib, "json", "decoder.py")),
      "stdlib is sourceless",
    );
    assert.ok(
      !fs.existsSync(path.join(stdlib, "json", "__pycache__")),
      "no __pycache__ left beside sourceless .pyc",
    );
    assert.ok(fs.existsSync(path.join(stdlib, "os.py")));
    assert.ok(
      fs.existsSync(path.join(stdlib, "site-packages", "hello", "cli.py")),
      "the app keeps its sources",
    );
    for (const gone of ["pydoc_data", "lib2to3", "crypt.py"])
      assert.ok(
        !fs.existsSync(path.join(stdlib, gone)),
        `${gone} is dropped by the default profile`,
      );
    const tb = run(path.join(moved, "bin", "python3"), ["-c", "import json; json.loads('x')"]);
    assert.match(
      tb.stderr,
      /File "lib\/python3\.\d+\/json\/decoder\.py", line \d+, in raw_decode\n/,
    );
    assert.match(tb.stderr, /JSONDecodeError: Expecting value/);
    bundle = moved;
  });

  test("two builds of the same inputs give byte-identical archives", async (t) => {
    if (!python || !firstTar) return t.skip("needs the previous build");
    const out = tmpDir("build-again");
    const r = await build({
      projectDir: path.join(EXAMPLES, "hello"),
      out,
      python,
      formats: ["tar.gz"],
    });
    assert.equal(r.outputs[0].sha256, firstTar.sha256, "tar.gz differs between two builds");
    const list = run("tar", ["-tvzf", r.outputs[0].path]).stdout.split("\n").filter(Boolean);
    assert.ok(
      list.every(
        (l) => /^([-d]rw[-x]r-[-x]r-[-x]|lrwxrwxrwx) 0\/0 /.test(l) && l.includes("2000-01-01"),
      ),
      list.find((l) => !l.includes("2000-01-01")),
    );
  });

  test("an interrupted build leaves nothing in --out, and the next build succeeds", async (t) => {
    if (!python || !bundle) return t.skip("needs the previous build");
    const out = tmpDir("build-killed");
    const child = spawn(
      process.execPath,
      [
        path.resolve(path.dirname(new URL(import.meta.url).pathname), "../src/cli/main.js"),
        "build",
        path.join(EXAMPLES, "hello"),
        "--out",
        out,
        "--python",
        python,
        "--quiet",
      ],
      { stdio: "ignore" },
    );
    // Kill it in the middle: once its temp dir holds the runtime.
    const deadline = Date.now() + 60_000;
    const temp = () =>
      fs
        .readdirSync(path.dirname(out))
        .find((n) => n.startsWith(`.${path.basename(out)}.pyport-build`));
    while (
      Date.now() < deadline &&
      !(temp() && fs.existsSync(path.join(path.dirname(out), temp()!, "hello", "bin")))
    )
      await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    assert.deepEqual(fs.readdirSync(out), [], "nothing half-written in --out");
    const r = await build({
      projectDir: path.join(EXAMPLES, "hello"),
      out,
      python,
      formats: ["dir"],
    });
    assert.equal(r.outputs.length, 1);
    assert.equal(temp(), undefined, "the dead build's temp dir was removed");
  });

  test("zip-stdlib: the stdlib loads from lib/pythonXY.zip; package data, pkgutil and __file__ still work", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const out = tmpDir("build-zip");
    const r = await build({
      projectDir: path.join(EXAMPLES, "hello"),
      out,
      python,
      formats: ["dir"],
      resources: "zip-stdlib",
    });
    const dir = r.outputs[0].path;
    const zip = fs.readdirSync(path.join(dir, "lib")).find((f) => /^python3\d+\.zip$/.test(f));
    assert.ok(zip, "lib/pythonXY.zip exists");
    const res = run(path.join(dir, "bin", "hello"), ["--resources"]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split("\n");
    assert.deepEqual(
      lines.slice(0, 3),
      Array(3).fill("Greetings from a data file inside the hello package."),
    );
    assert.match(lines[3], new RegExp(`json from ${dir}/lib/${zip}/json/__init__\\.pyc`));
    const py = path.join(dir, "bin", "python3");
    const venv = path.join(tmpDir("zip-venv"), "v");
    const mods = run(py, [
      "-c",
      `import asyncio, email.message, http.server, sqlite3, ssl, venv, subprocess, sys; venv.create(${JSON.stringify(venv)}, with_pip=False, symlinks=True); print(subprocess.run([${JSON.stringify(venv)} + "/bin/python", "-c", "print(42)"], capture_output=True, text=True).stdout.strip())`,
    ]);
    assert.equal(mods.stdout.trim(), "42", mods.stderr);
    assert.ok(
      !fs.existsSync(
        path.join(dir, "lib", `python${zip!.slice(6, 7)}.${zip!.slice(7, -4)}`, "json"),
      ),
      "zipped packages are gone from the filesystem",
    );
  });

  test("bytecode options and exclude globs: -OO sourceless .pyc, excluded files gone", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    const project = path.join(tmpDir("build-opts"), "hello");
    fs.cpSync(path.join(EXAMPLES, "hello"), project, { recursive: true });
    const toml = fs.readFileSync(path.join(project, "pyproject.toml"), "utf8");
    fs.writeFileSync(
      path.join(project, "pyproject.toml"),
      toml.replace(
        'formats = ["dir", "tar.gz"]',
        'formats = ["dir"]\nbytecode = { optimize = 2, pyc-only = true }\nexclude = ["lib/**/lib-dynload/_sqlite3*"]',
      ),
    );
    const r = await build({ projectDir: project, out: tmpDir("build-opts-out"), python });
    const dir = r.outputs[0].path;
    const pkg = fs.readdirSync(path.join(dir, "lib")).find((d) => d.startsWith("python3."))!;
    const hello = path.join(dir, "lib", pkg, "site-packages", "hello");
    assert.deepEqual(
      fs.readdirSync(hello).filter((f) => f.endsWith(".py")),
      [],
      "no .py sources",
    );
    assert.ok(fs.existsSync(path.join(hello, "cli.pyc")));
    assert.ok(
      !fs
        .readdirSync(path.join(dir, "lib", pkg, "lib-dynload"))
        .some((f) => f.startsWith("_sqlite3")),
      "excluded by glob",
    );
    const res = run(path.join(dir, "bin", "hello"), ["--where"]);
    assert.equal(res.code, 0, res.stderr);
    const doc = run(path.join(dir, "bin", "python3"), [
      "-OO",
      "-c",
      "import hello.cli; print(hello.cli.__doc__)",
    ]);
    assert.equal(doc.stdout.trim(), "None", "-OO bytecode drops docstrings");
    const stdlibDoc = run(path.join(dir, "bin", "python3"), [
      "-c",
      "import json.decoder; print(json.decoder.__doc__, json.decoder.__file__)",
    ]);
    assert.match(
      stdlibDoc.stdout.trim(),
      /^None \S+\/json\/decoder\.pyc$/,
      "the sourceless stdlib is the -OO bytecode",
    );
  });

  test("audit errors fail the build (exit 1, nothing written); --no-audit builds and says so", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    if (run("sh", ["-c", "command -v gcc"]).code !== 0)
      return t.skip("gcc is not installed (apt-get install gcc)");
    const project = path.join(tmpDir("build-broken"), "broken");
    fs.mkdirSync(path.join(project, "broken"), { recursive: true });
    fs.writeFileSync(
      path.join(project, "pyproject.toml"),
      '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "broken"\nversion = "1"\n[tool.setuptools.package-data]\nbroken = ["*.so"]\n',
    );
    fs.writeFileSync(path.join(project, "broken", "__init__.py"), "");
    const lib = path.join(project, "broken", "libneedsghost.so");
    const ghost = path.join(tmpDir("ghost"), "libghost.so");
    assert.equal(
      run("sh", [
        "-c",
        `echo 'int g(void){return 1;}' > ${ghost}.c && gcc -shared -fPIC -o ${ghost} ${ghost}.c && echo 'int g(void); int f(void){return g();}' > ${lib}.c && gcc -shared -fPIC -o ${lib} ${lib}.c -L${path.dirname(ghost)} -lghost && rm ${lib}.c`,
      ]).code,
      0,
    );
    const out = tmpDir("build-broken-out");
    const r = pyport(["build", project, "--out", out, "--python", python]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /UNRESOLVED_LIBRARY .*libneedsghost\.so: needs libghost\.so/);
    assert.deepEqual(fs.readdirSync(out), []);
    const skipped = pyport(["build", project, "--out", out, "--python", python, "--no-audit"]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /--no-audit: the bundle will not be audited/);
  });

  test("configuration errors name the file, line and key, and suggest the closest", async () => {
    const dir = tmpDir("build-badcfg");
    fs.writeFileSync(
      path.join(dir, "pyproject.toml"),
      '[project]\nname = "x"\nversion = "1"\n\n[tool.pyport]\nlibc = "system"\nformts = ["dir"]\n',
    );
    const r = pyport(["build", dir]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`${path.join(dir, "pyproject.toml")}:7: tool\\.pyport\\.formts: unknown key`),
    );
    assert.match(r.stderr, /Did you mean "formats"\?/);
    fs.writeFileSync(
      path.join(dir, "pyproject.toml"),
      '[project]\nname = "x"\n[tool.pyport]\nlibc = "bundeled"\n',
    );
    assert.throws(
      () => loadConfig(dir),
      /pyproject\.toml:4: tool\.pyport\.libc: "bundeled" is not valid[\s\S]*/,
    );
    try {
      loadConfig(dir);
    } catch (err) {
      assert.match((err as { hint: string }).hint, /Did you mean "bundled"\?/);
    }
    fs.writeFileSync(path.join(dir, "pyproject.toml"), '[project\nname = "x"\n');
    assert.throws(() => loadConfig(dir), /pyproject\.toml:1:\d+: invalid TOML/);
    fs.rmSync(path.join(dir, "pyproject.toml"));
    fs.writeFileSync(
      path.join(dir, "pyport.toml"),
      'name = "solo"\nprofile = "minimal"\nbytecode = { optimize = 3 }\n',
    );
    assert.throws(() => loadConfig(dir), /pyport\.toml:3: bytecode: optimize must be 0, 1 or 2/);
    fs.writeFileSync(
      path.join(dir, "pyport.toml"),
      'name = "solo"\nbytecode = { stdlib-source = true }\n',
    );
    assert.throws(
      () => loadConfig(dir),
      (e: Error & { hint?: string }) =>
        /pyport\.toml:2: bytecode\.stdlib-source: unknown key/.test(e.message) &&
        /Did you mean "stdlib-sources"\?/.test(e.hint ?? ""),
    );
    fs.writeFileSync(
      path.join(dir, "pyport.toml"),
      'name = "solo"\nbytecode = { stdlib-sources = true }\n',
    );
    assert.equal(loadConfig(dir).bytecode.stdlibSources, true);
  });
});

describe("bundled libc: hello and webapp in target roots", () => {
  test("busybox-only chroot and the bullseye root; the webapp answers HTTP from inside", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    if (!isRoot) return t.skip("not root: chroot tests of bundles not run");
    const out = tmpDir("build-bundled");
    const hello = await build({
      projectDir: path.join(EXAMPLES, "hello"),
      out,
      python,
      libc: "bundled",
      formats: ["dir"],
    });
    const webapp = await build({
      projectDir: path.join(EXAMPLES, "webapp"),
      out,
      python,
      libc: "bundled",
      formats: ["dir"],
    });
    const roots: [string, string][] = [];
    const bb = busyboxRoot(hello.outputs[0].path);
    if (bb) roots.push(["busybox", bb]);
    else
      await skipPart(t, "busybox-static is not installed: busybox chroot test of bundles not run");
    const bullseye = bullseyeRoot();
    if (bullseye) {
      fs.rmSync(path.join(bullseye, "rt"), { recursive: true, force: true });
      assert.equal(
        run("cp", ["-a", `${hello.outputs[0].path}/.`, path.join(bullseye, "rt")]).code,
        0,
      );
      roots.push(["bullseye", bullseye]);
    } else await skipPart(t, "no bullseye root could be made: bullseye test of bundles not run");
    for (const [name, root] of roots) {
      fs.rmSync(path.join(root, "webapp"), { recursive: true, force: true });
      assert.equal(
        run("cp", ["-a", `${webapp.outputs[0].path}/.`, path.join(root, "webapp")]).code,
        0,
      );
      await withProc(root, async () => {
        const r = run("chroot", [root, "/rt/bin/hello", "--where"]);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        assert.match(r.stdout, /^prefix=\/rt$/m, name);
        const port = 20000 + Math.floor(Math.random() * 20000);
        const server = spawn("chroot", [root, "/webapp/bin/webapp", "--port", String(port)], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        try {
          await new Promise<void>((resolve, reject) => {
            server.stdout.on(
              "data",
              (d: Buffer) => d.toString().includes("listening") && resolve(),
            );
            server.on("close", (c) => reject(new Error(`${name}: webapp exited ${c}`)));
          });
          const health = await httpGet(`http://127.0.0.1:${port}/health`);
          assert.equal(health.status, 200);
          assert.equal(JSON.parse(health.body).prefix, "/webapp");
        } finally {
          server.kill("SIGTERM");
          await new Promise((r) => server.on("close", r));
        }
      });
    }
  });
});

describe("numpy-report", () => {
  test("numpy from the package index works in the moved bundle", async (t) => {
    // The index here carries cp311 wheels: prefer 3.11, else whatever shared build exists.
    const py = (await sharedPython(["3.11", "3.12", "3.13", "3.10"]))?.path;
    if (!py) return t.skip("no CPython with a shared libpython found");
    const out = tmpDir("build-numpy");
    let r;
    try {
      r = await build({
        projectDir: path.join(EXAMPLES, "numpy-report"),
        out,
        python: py,
        formats: ["dir"],
      });
    } catch (err) {
      if (/No matching distribution|Could not find a version/.test(String(err)))
        return t.skip(
          "numpy is not available from the configured package index: numpy-report not tested",
        );
      throw err;
    }
    const moved = path.join(tmpDir("numpy-moved"), "report dir");
    fs.renameSync(r.outputs[0].path, moved);
    const res = run(path.join(moved, "bin", "numpy-report"), ["500"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^numpy \d+\.\d+\.\d+: n=500 mean=/);
    assert.ok(r.audit && r.audit.findings.every((f) => f.severity !== "error"));
    assert.ok(
      r.sizes.some((s) => s.name === "numpy"),
      "size report names numpy",
    );

    if (!isRoot) return skipPart(t, "not root: numpy-report not run in chroots");
    const bundled = await build({
      projectDir: path.join(EXAMPLES, "numpy-report"),
      out: tmpDir("build-numpy-bundled"),
      python: py,
      libc: "bundled",
      formats: ["dir"],
    });
    assert.match(
      fs.readFileSync(path.join(bundled.outputs[0].path, "LICENSES.md"), "utf8"),
      /\| libstdc\+\+6 \|/,
      "libraries grafted for wheels are in the licence record",
    );
    const roots: [string, string | undefined][] = [
      ["busybox", busyboxRoot(bundled.outputs[0].path)],
      ["bullseye", bullseyeRoot()],
    ];
    for (const [name, root] of roots) {
      if (!root) {
        await skipPart(t, `no ${name} root: numpy-report not run there`);
        continue;
      }
      if (name === "bullseye") {
        fs.rmSync(path.join(root, "rt"), { recursive: true, force: true });
        assert.equal(
          run("cp", ["-a", `${bundled.outputs[0].path}/.`, path.join(root, "rt")]).code,
          0,
        );
      }
      await withProc(root, async () => {
        const inRoot = run("chroot", [root, "/rt/bin/numpy-report", "200"]);
        assert.equal(inRoot.code, 0, `${name}: ${inRoot.stderr}`);
        assert.match(inRoot.stdout, /n=200 mean=/, name);
      });
    }
  });
});
