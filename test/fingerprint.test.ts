/**
 * A runtime made from this machine's interpreter is cached under a key of everything that goes
 * into it: a changed stdlib file, libpython, the interpreter or the machine's library state gives
 * a new key; what is not copied (site-packages, bytecode caches) does not.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { hostSourceFingerprint, pyportFingerprint } from "../src/runtime/fingerprint.js";
import type { PythonProbe } from "../src/python/probe.js";
import { sharedPython, tmpDir } from "./helpers.js";

function fakeInstall() {
  const root = tmpDir("fingerprint");
  const files = [
    "bin/python3.12",
    "lib/libpython3.12.so.1.0",
    "lib/python3.12/os.py",
    "lib/python3.12/json/decoder.py",
    "lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
    "lib/python3.12/site-packages/somepkg/__init__.py",
    "lib/python3.12/__pycache__/os.cpython-312.pyc",
  ];
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), f);
  }
  const stdlib = path.join(root, "lib/python3.12");
  const probe = {
    versionFull: "3.12.1",
    vars: { LIBDIR: path.join(root, "lib") },
    paths: { stdlib, platstdlib: stdlib },
  } as unknown as PythonProbe;
  return { root, probe, python: path.join(root, "bin/python3.12") };
}

test("the key changes with the stdlib, lib-dynload, libpython and the interpreter; not with site-packages", async () => {
  const { root, probe, python } = fakeInstall();
  const key = () => hostSourceFingerprint(python, probe);
  let last = await key();
  assert.equal(await key(), last, "stable");
  const later = new Date(Date.now() + 60_000);
  for (const f of [
    "lib/python3.12/json/decoder.py",
    "lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
    "lib/libpython3.12.so.1.0",
    "bin/python3.12",
  ]) {
    fs.utimesSync(path.join(root, f), later, later);
    const now = await key();
    assert.notEqual(now, last, `${f} changed`);
    last = now;
  }
  fs.writeFileSync(path.join(root, "lib/python3.12/new_module.py"), "x = 1\n");
  assert.notEqual(await key(), last, "a new stdlib file");
  last = await key();
  fs.writeFileSync(path.join(root, "lib/python3.12/site-packages/somepkg/__init__.py"), "changed");
  fs.writeFileSync(path.join(root, "lib/python3.12/__pycache__/os.cpython-312.pyc"), "changed");
  assert.equal(await key(), last, "site-packages and bytecode caches are not part of a runtime");
  assert.match(await pyportFingerprint(), /^[0-9a-f]{64}$/);
});

test("the key of a real interpreter", async (t) => {
  const found = await sharedPython();
  if (!found) return t.skip("no CPython with a shared libpython found");
  const key = await hostSourceFingerprint(found.path, found.probe);
  assert.equal(await hostSourceFingerprint(found.path, found.probe), key);
});
