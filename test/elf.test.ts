/** ELF reader and editor against readelf (the oracle), on the machine's real binaries. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { editDynamic } from "../src/elf/edit.js";
import { readElf } from "../src/elf/read.js";
import { distroPython, run, sharedPython, tmpDir } from "./helpers.js";

function readelfDynamic(file: string) {
  const out = run("readelf", ["-dW", file]).stdout;
  const grab = (re: RegExp) => [...out.matchAll(re)].map((m) => m[1]);
  return {
    needed: grab(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g),
    soname: grab(/\(SONAME\)\s+Library soname: \[([^\]]+)\]/g)[0],
    runpath: grab(/\(RUNPATH\)\s+Library runpath: \[([^\]]*)\]/g)[0],
    rpath: grab(/\(RPATH\)\s+Library rpath: \[([^\]]*)\]/g)[0],
  };
}

function readelfVersionNeeds(file: string): Map<string, string[]> {
  const out = run("readelf", ["-VW", file]).stdout;
  const map = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of out.split("\n")) {
    const f = /File: (\S+)\s+Cnt:/.exec(line);
    if (f) {
      current = f[1];
      map.set(current, []);
      continue;
    }
    const n = /Name: (\S+)\s+Flags:/.exec(line);
    if (n && current) map.get(current)!.push(n[1]);
  }
  return map;
}

async function realBinaries(): Promise<string[]> {
  const files = [
    "/bin/ls",
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
  ].filter((f) => fs.existsSync(f));
  const shared = await sharedPython();
  const distro = await distroPython();
  if (shared) files.push(shared.path);
  if (distro) files.push(distro.path);
  return files.map((f) => fs.realpathSync(f));
}

test("reader agrees with readelf on NEEDED, SONAME, RUNPATH and version needs", async () => {
  const files = await realBinaries();
  assert.ok(files.length >= 3, "expected at least three real ELF files on this machine");
  for (const file of files) {
    const elf = readElf(fs.readFileSync(file));
    const oracle = readelfDynamic(file);
    assert.deepEqual(elf.needed, oracle.needed, file);
    assert.equal(elf.soname, oracle.soname, file);
    assert.equal(elf.runpath, oracle.runpath, file);
    const needs = readelfVersionNeeds(file);
    assert.deepEqual(
      new Map(elf.versionNeeds.map((n) => [n.file, [...n.versions].sort()])),
      new Map([...needs].map(([k, v]) => [k, [...v].sort()])),
      file,
    );
  }
});

test("reads ELF32 and big-endian objects built by the machine's assembler and linker", () => {
  const dir = tmpDir("elf32");
  const src = path.join(dir, "a.s");
  fs.writeFileSync(src, ".globl f\nf:\n  ret\n");
  const as = run("as", ["--32", "-o", path.join(dir, "a.o"), src]);
  if (as.code !== 0) return assert.fail(`as --32 failed: ${as.stderr}`);
  const so = path.join(dir, "lib32.so");
  const ld = run("ld", [
    "-m",
    "elf_i386",
    "-shared",
    "-soname",
    "libthirtytwo.so.1",
    "-rpath",
    "/some/where",
    "--enable-new-dtags",
    "-o",
    so,
    path.join(dir, "a.o"),
  ]);
  assert.equal(ld.code, 0, ld.stderr);
  const elf = readElf(fs.readFileSync(so));
  assert.equal(elf.bits, 32);
  assert.equal(elf.machine, "x86");
  assert.equal(elf.soname, "libthirtytwo.so.1");
  assert.equal(elf.runpath, "/some/where");
  const edited = path.join(dir, "edited.so");
  fs.writeFileSync(
    edited,
    editDynamic(fs.readFileSync(so), {
      runpath: "$ORIGIN/a/much/longer/run/path/than/before",
      soname: "librenamed.so.2",
    }),
  );
  const oracle = readelfDynamic(edited);
  assert.equal(oracle.runpath, "$ORIGIN/a/much/longer/run/path/than/before");
  assert.equal(oracle.soname, "librenamed.so.2");
});

test("big-endian: a byte-swapped view of the same structures reads the same", (t) => {
  // Build a big-endian ELF64 with the cross linker when the machine has one; otherwise say so.
  const ld = ["powerpc64-linux-gnu-ld", "s390x-linux-gnu-ld"].find(
    (l) => run("sh", ["-c", `command -v ${l}`]).code === 0,
  );
  if (!ld)
    return t.skip("no big-endian cross linker (apt-get install binutils-powerpc64-linux-gnu)");
  const dir = tmpDir("elfbe");
  const as = ld.replace(/-ld$/, "-as");
  fs.writeFileSync(path.join(dir, "a.s"), ".globl f\nf:\n  nop\n");
  assert.equal(run(as, ["-o", path.join(dir, "a.o"), path.join(dir, "a.s")]).code, 0);
  const so = path.join(dir, "libbe.so");
  const r = run(ld, [
    "-shared",
    "-soname",
    "libbe.so.7",
    "-rpath",
    "/x/y",
    "--enable-new-dtags",
    "-o",
    so,
    path.join(dir, "a.o"),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const elf = readElf(fs.readFileSync(so));
  assert.equal(elf.littleEndian, false);
  assert.equal(elf.soname, "libbe.so.7");
  assert.equal(elf.runpath, "/x/y");
  const edited = path.join(dir, "edited.so");
  fs.writeFileSync(
    edited,
    editDynamic(fs.readFileSync(so), { runpath: "$ORIGIN/../lib/with/a/longer/path" }),
  );
  assert.equal(readElf(fs.readFileSync(edited)).runpath, "$ORIGIN/../lib/with/a/longer/path");
  const oracle = run(ld.replace(/-ld$/, "-readelf"), ["-d", edited]).stdout;
  assert.match(oracle, /Library runpath: \[\$ORIGIN\/\.\.\/lib\/with\/a\/longer\/path\]/);
});

test("adds a RUNPATH to Debian's interpreter (no RUNPATH entry, no spare room) and it still runs", async (t) => {
  const distro = await distroPython();
  if (!distro) return t.skip("no distribution python3 with static libpython on this machine");
  const dir = tmpDir("elfdeb");
  const copy = path.join(dir, "python3");
  fs.writeFileSync(copy, editDynamic(fs.readFileSync(distro.path), { runpath: "$ORIGIN/../lib" }), {
    mode: 0o755,
  });
  const oracle = readelfDynamic(copy);
  assert.equal(oracle.runpath, "$ORIGIN/../lib");
  assert.deepEqual(oracle.needed, readelfDynamic(distro.path).needed);
  const r = run(copy, ["-c", "print(6*7)"]);
  assert.equal(r.stdout.trim(), "42", r.stderr);
});

test("rewrites a long RUNPATH in place, converts RPATH, renames NEEDED and SONAME, removes RUNPATH", async (t) => {
  const shared = await sharedPython();
  if (!shared) return t.skip("no Python with a shared libpython on this machine");
  const dir = tmpDir("elfpie");
  const exe = path.join(dir, "python");
  const orig = fs.readFileSync(shared.path);
  const libdir = String(shared.probe.vars.LIBDIR);

  fs.writeFileSync(exe, editDynamic(orig, { runpath: libdir }), { mode: 0o755 });
  assert.equal(readelfDynamic(exe).runpath, libdir);
  assert.equal(run(exe, ["-c", "print('ok')"]).stdout.trim(), "ok");

  fs.writeFileSync(exe, editDynamic(orig, { rpath: libdir + "/../lib/." }), { mode: 0o755 });
  const asRpath = readelfDynamic(exe);
  assert.equal(asRpath.rpath, libdir + "/../lib/.");
  assert.equal(asRpath.runpath, undefined);
  assert.equal(run(exe, ["-c", "print('ok')"]).stdout.trim(), "ok");

  const libpython = readElf(orig).needed.find((n) => n.startsWith("libpython"))!;
  fs.symlinkSync(path.join(libdir, libpython), path.join(dir, "libpy-renamed.so"));
  fs.writeFileSync(
    exe,
    editDynamic(orig, { runpath: "$ORIGIN", replaceNeeded: { [libpython]: "libpy-renamed.so" } }),
    { mode: 0o755 },
  );
  assert.ok(readelfDynamic(exe).needed.includes("libpy-renamed.so"));
  assert.equal(run(exe, ["-c", "print('renamed')"]).stdout.trim(), "renamed");

  const lib = path.join(dir, "libcopy.so");
  fs.writeFileSync(
    lib,
    editDynamic(fs.readFileSync(path.join(libdir, libpython)), {
      soname: "libpython-a-much-longer-soname-than-before.so.1",
    }),
  );
  assert.equal(readelfDynamic(lib).soname, "libpython-a-much-longer-soname-than-before.so.1");

  fs.writeFileSync(exe, editDynamic(orig, { runpath: null }), { mode: 0o755 });
  assert.equal(readelfDynamic(exe).runpath, undefined);
  assert.notEqual(
    run(exe, ["-c", "pass"], { env: { PATH: "/usr/bin:/bin" } }).code,
    0,
    "without RUNPATH the interpreter cannot find libpython",
  );
});

test("rejects what is not ELF, and truncated ELF, with E_ELF", () => {
  assert.throws(() => readElf(Buffer.from("#!/bin/sh\necho hi\n")), { code: "E_ELF" });
  const ls = fs.readFileSync(fs.realpathSync("/bin/ls"));
  assert.throws(() => readElf(ls.subarray(0, 100)), { code: "E_ELF" });
});
