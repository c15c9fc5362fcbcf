/** Safe extraction: one regression test per attack, plus corrupt and truncated archives. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { extractArchive } from "../src/archive/extract.js";
import { run, tmpDir } from "./helpers.js";

/** Writes a tar with Python's tarfile from a list of members (the machine's python3). */
function makeTar(file: string, members: object[], mode = "w:gz"): void {
  const script = `
import io, json, sys, tarfile
members = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], "${mode}") as tar:
    for m in members:
        info = tarfile.TarInfo(m["name"])
        info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[m.get("type", "file")]
        info.linkname = m.get("target", "")
        info.mode = m.get("mode", 0o644)
        data = m.get("data", "").encode()
        info.size = len(data) if info.type == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if info.size else None)
`;
  const r = run("python3", ["-c", script, file, JSON.stringify(members)]);
  assert.equal(r.code, 0, r.stderr);
}

async function rejects(members: object[], pattern: RegExp): Promise<void> {
  const dir = tmpDir("tar");
  const archive = path.join(dir, "evil.tar.gz");
  makeTar(archive, members);
  const dest = path.join(dir, "out");
  await assert.rejects(extractArchive(archive, dest), (err: Error & { code?: string }) => {
    assert.equal(err.code, "E_UNSAFE_ARCHIVE", err.message);
    assert.match(err.message, pattern);
    return true;
  });
  assert.ok(
    !fs.existsSync(path.join(dir, "pwned")),
    "nothing may be written outside the destination",
  );
}

test("extracts files, directories, internal symlinks and hardlinks, with safe modes", async () => {
  const dir = tmpDir("tar");
  const archive = path.join(dir, "ok.tar.gz");
  makeTar(archive, [
    { name: "python/bin", type: "dir", mode: 0o777 },
    { name: "python/bin/python3.12", data: "#!/bin/sh\n", mode: 0o4777 },
    { name: "python/bin/python3", type: "symlink", target: "python3.12" },
    { name: "python/lib/libx.so", type: "symlink", target: "../bin/python3.12" },
    { name: "python/bin/hard", type: "link", target: "python/bin/python3.12" },
  ]);
  const out = path.join(dir, "out");
  const r = await extractArchive(archive, out);
  assert.equal(r.files, 2);
  assert.equal(fs.readlinkSync(path.join(out, "python/bin/python3")), "python3.12");
  assert.equal(
    fs.statSync(path.join(out, "python/bin/python3.12")).mode & 0o7777,
    0o755,
    "setuid and world-write dropped",
  );
  assert.equal(fs.statSync(path.join(out, "python/bin")).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(path.join(out, "python/bin/hard"), "utf8"), "#!/bin/sh\n");
});

test("rejects an absolute member name", () =>
  rejects([{ name: "/tmp/pwned", data: "x" }], /absolute path/));
test("rejects '..' in a member name", () =>
  rejects([{ name: "a/../../pwned", data: "x" }], /'\.\.'/));
test("rejects a symlink pointing outside", () =>
  rejects([{ name: "link", type: "symlink", target: "../pwned" }], /points outside/));
test("rejects an absolute symlink", () =>
  rejects([{ name: "link", type: "symlink", target: "/etc/passwd" }], /is absolute/));
test("rejects a symlink chain that escapes through another link", () =>
  rejects(
    [
      { name: "a", type: "symlink", target: "." },
      { name: "b", type: "symlink", target: "a/.." },
    ],
    /b -> a\/\.\. points outside/,
  ));
test("rejects a file stored below a symlink", () =>
  rejects(
    [
      { name: "d", type: "symlink", target: "sub" },
      { name: "sub", type: "dir" },
      { name: "d/file", data: "x" },
    ],
    /below the symlink d/,
  ));
test("rejects a hardlink to a file outside the archive", () =>
  rejects([{ name: "h", type: "link", target: "../pwned" }], /hardlink/));
test("rejects FIFOs and devices", () =>
  rejects([{ name: "fifo", type: "fifo" }], /unsupported entry type/));

test("rejects a truncated archive with E_ARCHIVE", async () => {
  const dir = tmpDir("tar");
  const archive = path.join(dir, "ok.tar.gz");
  makeTar(archive, [{ name: "big", data: "y".repeat(100_000) }], "w:gz");
  const bytes = fs.readFileSync(archive);
  fs.writeFileSync(archive, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assert.rejects(extractArchive(archive, path.join(dir, "out")), { code: "E_ARCHIVE" });
});

test("rejects a header with a bad checksum", async () => {
  const dir = tmpDir("tar");
  const archive = path.join(dir, "plain.tar");
  makeTar(archive, [{ name: "f", data: "hello" }], "w");
  const bytes = fs.readFileSync(archive);
  bytes[0] ^= 0x20; // change the name, keep the stored checksum
  fs.writeFileSync(archive, bytes);
  await assert.rejects(extractArchive(archive, path.join(dir, "out")), /checksum/);
});

test("reads zstd-compressed archives", async (t) => {
  if (run("sh", ["-c", "command -v zstd"]).code !== 0)
    return t.skip("zstd is not installed (apt-get install zstd)");
  const dir = tmpDir("tar");
  makeTar(path.join(dir, "a.tar"), [{ name: "python/PYTHON.json", data: "{}" }], "w");
  assert.equal(
    run("zstd", ["-q", path.join(dir, "a.tar"), "-o", path.join(dir, "a.tar.zst")]).code,
    0,
  );
  await extractArchive(path.join(dir, "a.tar.zst"), path.join(dir, "out"));
  assert.equal(fs.readFileSync(path.join(dir, "out/python/PYTHON.json"), "utf8"), "{}");
});
