/**
 * dropSources on a tree compiled by a real CPython: the bytecode of the chosen optimisation
 * level replaces each source, kept paths and sources that failed to compile stay, and the
 * result imports with no source present.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import { dropSources } from "../src/bundle/sourceless.js";
import { run, sharedPython, tmpDir } from "./helpers.js";

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

test("dropSources: level-1 bytecode replaces sources; kept paths and uncompilable files stay", async (t) => {
  if (!python) return t.skip("no CPython found");
  const root = tmpDir("sourceless");
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  write("pkg/__init__.py", '"""pkg doc"""\n');
  write("pkg/mod.py", "def f():\n    assert False, 'asserts are gone at -O'\n    return 41 + 1\n");
  write("pkg/broken.py", "def (:\n");
  write("keep.py", "X = 1\n");
  write("kept/inner.py", "Y = 2\n");
  for (const level of ["", "-O"])
    run(python, [...(level ? [level] : []), "-m", "compileall", "-q", root]);

  await dropSources(root, { optimize: 1, keep: (rel) => rel === "keep.py" || rel === "kept" });

  assert.deepEqual(fs.readdirSync(path.join(root, "pkg")).sort(), [
    "__init__.pyc",
    "broken.py",
    "mod.pyc",
  ]);
  assert.ok(
    fs.existsSync(path.join(root, "keep.py")) &&
      fs.existsSync(path.join(root, "kept", "inner.py")) &&
      fs.existsSync(path.join(root, "kept", "__pycache__")),
  );
  assert.deepEqual(
    fs
      .readdirSync(path.join(root, "__pycache__"))
      .map((f) => f.split(".")[0])
      .sort(),
    ["keep", "keep"],
    "only the kept file's bytecode remains",
  );
  // Level-1 bytecode was moved, so the assert is gone even without -O.
  const r = run(python, [
    "-c",
    "import sys; sys.path.insert(0, sys.argv[1]); import pkg.mod; print(pkg.mod.f(), pkg.mod.__file__.endswith('mod.pyc'))",
    root,
  ]);
  assert.equal(r.stdout.trim(), "42 True", r.stderr);
});
