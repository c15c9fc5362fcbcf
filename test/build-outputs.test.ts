/**
 * A build never loses the user's files: outputs never replace, contain or sit inside the project
 * (but its dist/), an existing output is replaced only when pyport wrote it, careless arguments
 * are usage errors that leave nothing behind, and the bundle holds exactly what pip installs
 * from the project (a package named `build` or `dist` is not skipped).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { CLI, run, sharedPython, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

function pyportIn(cwd: string, args: string[]) {
  return run(process.execPath, [CLI, ...args], { cwd });
}

/** A flat setuptools project with subpackages named like the folders build tools skip. */
function makeProject(parent: string, name = "flatapp"): string {
  const dir = path.join(parent, name);
  const files: Record<string, string> = {
    "pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "${name}"
version = "1.0"

[project.scripts]
${name} = "${name}.cli:main"

[tool.setuptools.packages.find]
include = ["${name}*"]

[tool.setuptools.package-data]
"*" = ["*.txt"]
`,
    [`${name}/__init__.py`]: "",
    [`${name}/cli.py`]: "def main():\n    print('flat')\n",
    [`${name}/build/__init__.py`]: "X = 1\n",
    [`${name}/build/steps.py`]: "Y = 2\n",
    [`${name}/dist/__init__.py`]: "",
    [`${name}/venv/__init__.py`]: "",
    [`${name}/node_modules/__init__.py`]: "",
    [`${name}/node_modules/data.txt`]: "kept\n",
    "notes.txt": "the user's notes\n",
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

function snapshot(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((rel) => {
      const full = path.join(dir, rel);
      return fs.statSync(full).isFile() ? `${rel}:${fs.readFileSync(full, "utf8")}` : rel;
    })
    .sort();
}

describe("build outputs never destroy the user's files", () => {
  test("--out . next to the project is refused; the project is untouched (exit 2)", () => {
    const parent = tmpDir("flat");
    const project = makeProject(parent);
    const before = snapshot(project);
    const r = pyportIn(parent, ["build", "flatapp", "--out", "."]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /would replace the project directory/);
    assert.deepEqual(snapshot(project), before);
  });

  test("build . --out . is refused: outputs may be inside the project only under dist/", () => {
    const project = makeProject(tmpDir("flat"));
    const before = snapshot(project);
    const r = pyportIn(project, ["build", ".", "--out", "."]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /inside the project .*outside its dist\//);
    const r2 = pyportIn(project, ["build", ".", "--out", "src/out"]);
    assert.equal(r2.code, 2, r2.stderr);
    assert.deepEqual(snapshot(project), before);
  });

  test("an output that would contain the project is refused", () => {
    const parent = tmpDir("flat");
    const project = makeProject(path.join(parent, "flatapp"), "flatapp"); // flatapp/flatapp
    const r = pyportIn(parent, ["build", project, "--out", "."]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /would replace the project directory .*inside it/);
    assert.ok(fs.existsSync(path.join(project, "pyproject.toml")));
  });

  test("--out naming an existing file is a usage error; the file is untouched", () => {
    const parent = tmpDir("flat");
    makeProject(parent);
    fs.writeFileSync(path.join(parent, "out"), "mine\n");
    const r = pyportIn(parent, ["build", "flatapp", "--out", "out"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is an existing file, not a directory/);
    assert.equal(fs.readFileSync(path.join(parent, "out"), "utf8"), "mine\n");
  });

  test("an existing output pyport did not write is refused, and nothing is created", () => {
    const parent = tmpDir("flat");
    makeProject(parent);
    fs.mkdirSync(path.join(parent, "out", "flatapp"), { recursive: true });
    fs.writeFileSync(path.join(parent, "out", "flatapp", "mine.txt"), "mine\n");
    const r = pyportIn(parent, ["build", "flatapp", "--out", "out"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /was not written by pyport/);
    assert.match(r.stderr, /--force/);
    assert.deepEqual(fs.readdirSync(path.join(parent, "out", "flatapp")), ["mine.txt"]);
    assert.deepEqual(fs.readdirSync(path.join(parent, "out")), ["flatapp"], "no temp dir left");
  });

  test("a onefile whose entry is not a declared script fails before any work; no --out left", () => {
    const parent = tmpDir("flat");
    makeProject(parent);
    const r = pyportIn(parent, [
      "build",
      "flatapp",
      "--out",
      "new/out",
      "--format",
      "onefile",
      "--entry",
      "nope",
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /"nope" is not a console script of flatapp \(it has: flatapp\)/);
    assert.ok(!fs.existsSync(path.join(parent, "new")));
  });

  test("a project name or version that is not PEP 508 / PEP 440 is a config error with its line", () => {
    const project = makeProject(tmpDir("flat"));
    const file = path.join(project, "pyproject.toml");
    const text = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, text.replace('name = "flatapp"', 'name = "../evil"'));
    let r = pyportIn(project, ["build", "."]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /pyproject\.toml:6: project\.name: "\.\.\/evil" is not a valid project name/,
    );
    fs.writeFileSync(file, text.replace('version = "1.0"', 'version = "1.0/../../x"'));
    r = pyportIn(project, ["build", "."]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pyproject\.toml:7: project\.version: .* is not a valid version/);
  });
});

describe("a real build of a project with packages named build, dist, venv, node_modules", () => {
  let parent = "";
  let out = "";
  test("the bundle holds exactly what pip installs from the project", async (t) => {
    if (!python) return t.skip("no CPython with a shared libpython found");
    parent = tmpDir("lossless");
    const project = makeProject(parent);
    out = path.join(parent, "out");
    const r = pyportIn(parent, [
      "build",
      "flatapp",
      "--out",
      out,
      "--python",
      python,
      "--format",
      "dir,tar.gz",
      "--no-audit",
    ]);
    assert.equal(r.code, 0, r.stderr);
    // pip's own install of the same project, with the same interpreter.
    const target = path.join(parent, "pip-target");
    const pip = run(python, [
      "-m",
      "pip",
      "install",
      "--no-compile",
      "--disable-pip-version-check",
      "--target",
      target,
      project,
    ]);
    assert.equal(pip.code, 0, pip.stderr);
    const site = fs
      .readdirSync(path.join(out, "flatapp", "lib"))
      .find((d) => d.startsWith("python3"))!;
    const list = (root: string) =>
      (fs.readdirSync(root, { recursive: true }) as string[])
        .filter((rel) => !rel.includes("__pycache__") && fs.statSync(path.join(root, rel)).isFile())
        .sort();
    const ours = list(path.join(out, "flatapp", "lib", site, "site-packages", "flatapp"));
    const pips = list(path.join(target, "flatapp"));
    assert.deepEqual(ours, pips);
    for (const f of [
      "build/steps.py",
      "dist/__init__.py",
      "venv/__init__.py",
      "node_modules/data.txt",
    ])
      assert.ok(ours.includes(f), `${f} is in the bundle`);
    const hello = run(path.join(out, "flatapp", "bin", "flatapp"), []);
    assert.equal(hello.stdout, "flat\n");
  });

  test("a second build replaces what pyport wrote; a changed archive needs --force", (t) => {
    if (!python || !out) return t.skip("the first build did not run");
    const again = [
      "build",
      "flatapp",
      "--out",
      out,
      "--python",
      python!,
      "--format",
      "dir,tar.gz",
      "--no-audit",
    ];
    let r = pyportIn(parent, again);
    assert.equal(r.code, 0, r.stderr);
    const tar = fs.readdirSync(out).find((f) => f.endsWith(".tar.gz"))!;
    fs.appendFileSync(path.join(out, tar), "changed by the user");
    r = pyportIn(parent, again);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /was not written by pyport \(or was changed since\)/);
    r = pyportIn(parent, [...again, "--force"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      !fs.readFileSync(path.join(out, tar)).toString("latin1").endsWith("changed by the user"),
    );
  });
});
