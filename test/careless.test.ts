/**
 * Ordinary mistakes, tried as a careless user would: each is a clear message with exit code 2,
 * found before any long work, and leaves nothing behind.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as zlib from "node:zlib";
import { pyport, run, tmpDir } from "./helpers.js";

test("audit of an empty or zero-byte archive is an error, not a clean audit", (t) => {
  const dir = tmpDir("careless");
  const files: Record<string, Buffer> = {
    "zero.tar.gz": Buffer.alloc(0),
    "zero.tar": Buffer.alloc(0),
    "empty.tar.gz": zlib.gzipSync(Buffer.alloc(1024)),
    "empty.tar": Buffer.alloc(1024),
  };
  if (run("sh", ["-c", "command -v zstd"]).code === 0) files["zero.tar.zst"] = Buffer.alloc(0);
  else t.diagnostic("zstd is not installed: the .tar.zst case is not run");
  for (const [name, bytes] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), bytes);
    const r = pyport(["audit", path.join(dir, name)]);
    assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /empty archive|nothing to audit|not a valid tar/, name);
  }
});

test("audit of a directory with no Python and no ELF file is an error", () => {
  const dir = tmpDir("careless");
  fs.writeFileSync(path.join(dir, "notes.txt"), "hello\n");
  const r = pyport(["audit", dir]);
  assert.equal(r.code, 2, r.stdout);
  assert.match(r.stderr, /has nothing to audit/);
  assert.doesNotMatch(r.stdout, /runs on/);
});

test("--out naming an existing file: runtime create and audit --sbom refuse it untouched", () => {
  const dir = tmpDir("careless");
  const file = path.join(dir, "mine.txt");
  fs.writeFileSync(file, "mine\n");
  const r = pyport(["runtime", "create", "--python", "3", "--out", file]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /is an existing file, not a directory/);
  const a = pyport(["audit", dir, "--sbom", "cyclonedx", "--out", file]);
  assert.equal(a.code, 2, a.stderr);
  assert.match(a.stderr, /is not a CycloneDX SBOM; refusing to overwrite it/);
  const d = pyport(["audit", dir, "--sbom", "cyclonedx", "--out", dir]);
  assert.equal(d.code, 2, d.stderr);
  assert.match(d.stderr, /is a directory; it names the SBOM file/);
  assert.equal(fs.readFileSync(file, "utf8"), "mine\n");
});

test("an ELF file that is not a onefile is named as such", () => {
  const r = pyport(["audit", process.execPath]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /is an ELF executable, not a pyport onefile/);
});
