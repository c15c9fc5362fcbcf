/**
 * `--format onefile`: one real build of examples/hello (bundled libc), then the file is run the
 * ways users run it — first and warm runs, twenty at once, killed mid-extraction, corrupted,
 * truncated, as another user with an unwritable HOME, from a noexec or read-only cache, in the
 * busybox-only chroot and in a root holding nothing but the file — and managed through
 * PYPORT_ONEFILE_COMMAND, `pyport cache prune` and `pyport audit`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { build, onefileEntry } from "../src/bundle/build.js";
import { readOnefile, verifyOnefile } from "../src/onefile/onefile.js";
import { packageRoot } from "../src/util/assets.js";
import { tryLock } from "../src/store/lock.js";
import {
  busyboxRoot,
  isRoot,
  pyport,
  run,
  sharedPython,
  skipPart,
  tmpDir,
  useTestCache,
} from "./helpers.js";

useTestCache();
const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples");
const BUCKET = "onefile-v1";

let onefile: string | undefined; // the built file (never run in place by tests that corrupt it)
let dirBundle: string | undefined;
let skipReason = "";

before(async () => {
  const python = (await sharedPython())?.path;
  if (!python) return void (skipReason = "no CPython with a shared libpython found");
  if (!fs.existsSync(path.join(packageRoot(), "dist", "native", `onefile-${process.arch}`)))
    return void (skipReason = "the onefile stub was not built (install gcc libc6-dev libzstd-dev)");
  const out = tmpDir("onefile-build");
  fs.chmodSync(out, 0o755); // other users run it in the HOME fallback test
  const r = await build({
    projectDir: path.join(EXAMPLES, "hello"),
    out,
    python,
    libc: "bundled",
    formats: ["dir", "onefile"],
  });
  dirBundle = r.outputs.find((o) => o.format === "dir")!.path;
  onefile = r.outputs.find((o) => o.format === "onefile")!.path;
});

function ready(t: { skip: (m: string) => void }): boolean {
  if (onefile) return true;
  t.skip(skipReason);
  return false;
}

/** A fresh cache directory and the environment that selects it. */
function freshCache(extra: NodeJS.ProcessEnv = {}): { cache: string; env: NodeJS.ProcessEnv } {
  const cache = tmpDir("onefile-cache");
  return {
    cache,
    env: {
      ...process.env,
      PYPORT_CACHE: cache,
      PYPORT_ONEFILE_COMMAND: "",
      PYPORT_ONEFILE_VERBOSE: "",
      ...extra,
    },
  };
}

const entries = (cache: string) =>
  fs.existsSync(path.join(cache, BUCKET)) ? fs.readdirSync(path.join(cache, BUCKET)).sort() : [];
const completeDirs = (cache: string) =>
  entries(cache).filter((e) => fs.existsSync(path.join(cache, BUCKET, e, ".pyport-complete")));

function copyOf(file: string, tag: string): string {
  const dir = tmpDir(tag);
  const dest = path.join(dir, "hello");
  fs.copyFileSync(file, dest);
  fs.chmodSync(dest, 0o755);
  return dest;
}

describe("onefile", () => {
  test("format: stub + zstd payload + metadata + trailer; the payload is the directory bundle", async (t) => {
    if (!ready(t)) return;
    const info = (await readOnefile(onefile!))!;
    assert.ok(info, "trailer found");
    assert.deepEqual(
      [info.meta.name, info.meta.version, info.meta.entry],
      ["hello", "1.0.0", "bin/hello"],
    );
    const stub = fs.readFileSync(
      path.join(packageRoot(), "dist", "native", `onefile-${process.arch}`),
    );
    const head = Buffer.alloc(stub.length);
    const fd = fs.openSync(onefile!, "r");
    fs.readSync(fd, head, 0, stub.length, 0);
    fs.closeSync(fd);
    assert.ok(head.equals(stub), "the file starts with the stub");
    assert.equal(info.payloadOffset, stub.length);
    await verifyOnefile(onefile!, info);
    assert.equal(fs.statSync(onefile!).mode & 0o777, 0o755);

    const dest = path.join(tmpDir("onefile-x"), "bundle");
    const r = run(onefile!, [], {
      env: { ...process.env, PYPORT_ONEFILE_COMMAND: `extract ${dest}` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      run("diff", ["-r", "--no-dereference", dirBundle!, dest]).code,
      0,
      "extract DIR gives the same tree as the dir format",
    );
    assert.equal(
      run(path.join(dest, "bin", "hello"), ["--version"]).stdout.trim(),
      "hello 1.0.0",
      "the extracted bundle runs as a plain directory bundle",
    );
    const again = run(onefile!, [], {
      env: { ...process.env, PYPORT_ONEFILE_COMMAND: "extract" },
      cwd: undefined,
    });
    assert.notEqual(again.code, 0, "extract without DIR is a usage error");
    const exists = run(onefile!, [dest], {
      env: { ...process.env, PYPORT_ONEFILE_COMMAND: "extract" },
    });
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /refusing to extract into an existing path/);
  });

  test("first run extracts (temp dir, rename, marker); warm runs pass argv, stdio, exit codes and signals", async (t) => {
    if (!ready(t)) return;
    const { cache, env } = freshCache({ PYPORT_ONEFILE_VERBOSE: "1" });
    const first = run(onefile!, ["--where"], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /extracted hello 1\.0\.0 to /);
    assert.match(first.stdout, new RegExp(`^argv0=${onefile}$`, "m"), "sys.argv[0] is the onefile");
    assert.match(
      first.stdout,
      new RegExp(`^onefile=${onefile}$`, "m"),
      "PYPORT_ONEFILE is the onefile",
    );
    const info = (await readOnefile(onefile!))!;
    const key = `hello-${info.sha256}`;
    assert.match(
      first.stdout,
      new RegExp(`^prefix=${path.join(cache, BUCKET, key)}$`, "m"),
      "extracted under a name holding the hash",
    );
    assert.deepEqual(entries(cache), [key, `${key}.lock`], "no temp dir left");
    assert.equal(
      fs.statSync(path.join(cache, BUCKET)).mode & 0o777,
      0o700,
      "the bucket pyport-onefile creates is private",
    );

    const warm = run(onefile!, ["--where"], { env });
    assert.equal(warm.stderr, "", "a warm run extracts nothing");
    assert.equal(warm.stdout, first.stdout);

    // Everything passes through exactly as with the directory bundle's launcher.
    const direct = path.join(dirBundle!, "bin", "hello");
    for (const args of [
      ["--version"],
      ["Ünïcode name", "--exit", "0"],
      ["--exit", "42"],
      ["--bogus"],
    ]) {
      const a = run(onefile!, args, { env });
      const b = run(direct, args);
      assert.deepEqual(
        [a.code, a.stdout, a.stderr.replace(/^usage: hello/m, "")],
        [b.code, b.stdout, b.stderr.replace(/^usage: hello/m, "")],
        args.join(" "),
      );
    }
    assert.equal(
      run(onefile!, ["--echo-stdin"], { env, input: "one\ntwo\n" }).stdout,
      "one\ntwo\n",
    );
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const child = spawn(onefile!, ["--echo-stdin"], { env, stdio: ["pipe", "ignore", "pipe"] });
      await new Promise((r) => setTimeout(r, 500));
      child.kill(sig);
      const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
        child.on("close", (c, s) => r([c, s])),
      );
      assert.deepEqual([code, signal], [null, sig], `${sig} ends the app as a signal death`);
    }
  });

  test("twenty simultaneous first runs all succeed and extract exactly once", async (t) => {
    if (!ready(t)) return;
    const { cache, env } = freshCache({ PYPORT_ONEFILE_VERBOSE: "1" });
    const runs = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
            const child = spawn(onefile!, [`n${i}`], { env });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d));
            child.stderr.on("data", (d: Buffer) => (stderr += d));
            child.on("close", (code) => resolve({ code, stdout, stderr }));
          }),
      ),
    );
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Hello, n${i}!`));
    });
    assert.equal(
      runs.filter((r) => /extracted hello/.test(r.stderr)).length,
      1,
      "exactly one run extracted",
    );
    assert.equal(completeDirs(cache).length, 1);
    assert.deepEqual(
      entries(cache).filter((e) => e.startsWith(".tmp-")),
      [],
    );
  });

  test("a run killed mid-extraction leaves nothing taken for complete; the next run recovers", async (t) => {
    if (!ready(t)) return;
    let killedMidway = false;
    for (let attempt = 0; attempt < 10 && !killedMidway; attempt++) {
      const { cache, env } = freshCache();
      const child = spawn(onefile!, ["--version"], { env, stdio: "ignore" });
      const exited = new Promise((r) => child.on("close", r));
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !entries(cache).some((e) => e.startsWith(".tmp-")))
        await new Promise((r) => setImmediate(r));
      child.kill("SIGKILL");
      await exited;
      if (completeDirs(cache).length) continue; // finished before the kill landed: try again
      killedMidway = entries(cache).some((e) => e.startsWith(".tmp-"));
      if (!killedMidway) continue;
      const next = run(onefile!, ["--version"], { env });
      assert.equal(next.code, 0, next.stderr);
      assert.equal(next.stdout.trim(), "hello 1.0.0");
      assert.equal(completeDirs(cache).length, 1);
      assert.deepEqual(
        entries(cache).filter((e) => e.startsWith(".tmp-")),
        [],
        "the dead run's temp dir was removed",
      );
    }
    assert.ok(killedMidway, "could not kill a run during extraction in 10 attempts");

    // Renamed into place but killed before the marker: discarded and extracted again.
    const { cache, env } = freshCache();
    const info = (await readOnefile(onefile!))!;
    const half = path.join(cache, BUCKET, `hello-${info.sha256}`);
    fs.mkdirSync(path.join(half, "bin"), { recursive: true });
    fs.writeFileSync(path.join(half, "bin", "hello"), "#!/bin/sh\necho stale\n", { mode: 0o755 });
    const r = run(onefile!, ["--version"], { env });
    assert.equal(r.stdout.trim(), "hello 1.0.0", r.stderr);
  });

  test("a corrupted, truncated or appended-to file fails clearly before anything is extracted", async (t) => {
    if (!ready(t)) return;
    const info = (await readOnefile(onefile!))!;
    const corrupted = copyOf(onefile!, "onefile-bad");
    const fd = fs.openSync(corrupted, "r+");
    const b = Buffer.alloc(1);
    const at = info.payloadOffset + Math.floor(info.payloadSize / 2);
    fs.readSync(fd, b, 0, 1, at);
    fs.writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, at);
    fs.closeSync(fd);
    const truncated = copyOf(onefile!, "onefile-trunc");
    fs.truncateSync(truncated, fs.statSync(truncated).size - 4096);
    const appended = copyOf(onefile!, "onefile-app");
    fs.appendFileSync(appended, "junk");
    for (const [file, message] of [
      [
        corrupted,
        /is corrupted: payload sha256 is [0-9a-f]{64}, the trailer says [0-9a-f]{64}[\s\S]*nothing was extracted/,
      ],
      [truncated, /no onefile trailer: it is truncated or damaged/],
      [appended, /no onefile trailer/],
    ] as const) {
      const { cache, env } = freshCache();
      const r = run(file, ["--version"], { env });
      assert.equal(r.code, 127, file);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
      assert.deepEqual(
        entries(cache).filter((e) => !e.endsWith(".lock")),
        [],
        "nothing extracted",
      );
    }
    const verify = run(corrupted, [], {
      env: { ...process.env, PYPORT_ONEFILE_COMMAND: "verify" },
    });
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /corrupted/);
    const audit = pyport(["audit", corrupted]);
    assert.equal(audit.code, 2);
    assert.match(audit.stderr, /corrupted onefile: sha256 mismatch/);
    const cut = pyport(["audit", truncated]);
    assert.equal(cut.code, 2);
    assert.match(cut.stderr, /corrupted onefile: its trailer is missing or damaged/);
  });

  test("an unwritable HOME falls back to a private 0700 directory; one owned by another user is refused", async (t) => {
    if (!ready(t)) return;
    if (!isRoot) return t.skip("onefile HOME fallback test needs root (to run as another user)");
    const nobody = 65534;
    const tmp = tmpDir("onefile-tmp");
    fs.chmodSync(tmp, 0o1777);
    const env = { PATH: process.env.PATH, HOME: "/nonexistent/home", TMPDIR: tmp };
    const r = run(onefile!, ["--where"], { env, uid: nobody, gid: nobody });
    assert.equal(r.code, 0, r.stderr);
    const fallback = path.join(tmp, `pyport-${nobody}`);
    const st = fs.statSync(fallback);
    assert.deepEqual([st.uid, st.mode & 0o777], [nobody, 0o700]);
    assert.match(r.stdout, new RegExp(`^prefix=${fallback}/${BUCKET}/hello-[0-9a-f]{64}$`, "m"));
    assert.equal(
      run(onefile!, ["--version"], { env, uid: nobody, gid: nobody }).stdout.trim(),
      "hello 1.0.0",
      "warm run from the fallback",
    );

    const hostile = tmpDir("onefile-hostile");
    fs.chmodSync(hostile, 0o1777);
    fs.mkdirSync(path.join(hostile, `pyport-${nobody}`), { mode: 0o700 }); // owned by root
    const refused = run(onefile!, ["--version"], {
      env: { ...env, TMPDIR: hostile },
      uid: nobody,
      gid: nobody,
    });
    assert.equal(refused.code, 127);
    assert.match(refused.stderr, /refusing to use .*pyport-65534: it is owned by another user/);
    assert.match(refused.stderr, /set PYPORT_CACHE/);
  });

  test("a noexec cache is explained; a full disk leaves nothing behind; a read-only cache after extraction is fine", async (t) => {
    if (!ready(t)) return;
    if (!isRoot) return t.skip("onefile mount tests need root");
    const noexec = tmpDir("onefile-noexec");
    execFileSync("mount", ["-t", "tmpfs", "-o", "noexec,size=200m", "tmpfs", noexec]);
    try {
      const r = run(onefile!, ["--version"], { env: { ...process.env, PYPORT_CACHE: noexec } });
      assert.equal(r.code, 127);
      assert.match(r.stderr, /mounted noexec, so the unpacked program cannot run from it/);
      assert.match(r.stderr, /set PYPORT_CACHE to a directory on a filesystem that allows exec/);
    } finally {
      execFileSync("umount", [noexec]);
    }

    // A full disk mid-extraction: a clear message, and the half-written temp dir is removed.
    const full = tmpDir("onefile-full");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", full]);
    try {
      const r = run(onefile!, ["--version"], { env: { ...process.env, PYPORT_CACHE: full } });
      assert.equal(r.code, 127);
      assert.match(r.stderr, /no space left while extracting/);
      assert.deepEqual(
        entries(full).filter((e) => !e.endsWith(".lock")),
        [],
        "nothing half-written left",
      );
    } finally {
      execFileSync("umount", [full]);
    }

    const { cache, env } = freshCache();
    assert.equal(run(onefile!, ["--version"], { env }).code, 0);
    const marker = path.join(cache, BUCKET, completeDirs(cache)[0], ".pyport-complete");
    const old = new Date(Date.now() - 3 * 86_400_000);
    fs.utimesSync(marker, old, old); // a warm run would now like to record use: it must not need to
    execFileSync("mount", ["--bind", cache, cache]);
    try {
      execFileSync("mount", ["-o", "remount,bind,ro", cache]);
      const r = run(onefile!, ["--version"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "hello 1.0.0");
    } finally {
      execFileSync("umount", [cache]);
    }
    assert.ok(
      fs.statSync(marker).mtimeMs < Date.now() - 2 * 86_400_000,
      "nothing was written on the read-only mount",
    );
    assert.equal(run(onefile!, ["--version"], { env }).code, 0);
    assert.ok(
      fs.statSync(marker).mtimeMs > Date.now() - 60_000,
      "a writable warm run records use (for prune)",
    );
  });

  test("runs in the busybox-only chroot and in a root holding nothing but the file and /tmp", async (t) => {
    if (!ready(t)) return;
    if (!isRoot) return t.skip("onefile chroot tests need root");
    const empty = tmpDir("onefile-empty");
    fs.mkdirSync(path.join(empty, "tmp"), { mode: 0o1777 });
    fs.chmodSync(path.join(empty, "tmp"), 0o1777);
    fs.copyFileSync(onefile!, path.join(empty, "hello"));
    fs.chmodSync(path.join(empty, "hello"), 0o755);
    const roots: [string, string][] = [["empty", empty]];
    const bb = busyboxRoot(tmpDir("onefile-nothing"));
    if (bb) {
      fs.copyFileSync(onefile!, path.join(bb, "bin", "hello"));
      fs.chmodSync(path.join(bb, "bin", "hello"), 0o755);
      roots.push(["busybox", bb]);
    } else
      await skipPart(t, "busybox-static is not installed: busybox chroot test of onefile not run");
    const chroot = execFileSync("sh", ["-c", "command -v chroot"], { encoding: "utf8" }).trim(); // the env below has no sbin
    for (const [label, root] of roots) {
      const exe = label === "empty" ? "/hello" : "/bin/hello";
      // No /proc, no HOME: the stub finds itself from argv[0] and falls back to /tmp/pyport-0.
      const env = { PATH: "/bin" };
      const r = run(chroot, [root, exe, "--where"], { env });
      assert.equal(r.code, 0, `${label}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^argv0=${exe}$`, "m"), label);
      assert.match(r.stdout, /^prefix=\/tmp\/pyport-0\/onefile-v1\/hello-[0-9a-f]{64}$/m, label);
      assert.equal(run(chroot, [root, exe, "ssl"], { env }).code, 0, label);
      if (label === "busybox") {
        const viaPath = run(
          chroot,
          [root, "/bin/sh", "-c", "cd /tmp && hello --version && echo in | hello --echo-stdin"],
          { env },
        );
        assert.equal(viaPath.stdout, "hello 1.0.0\nin\n", viaPath.stderr);
      }
    }
  });

  test("PYPORT_ONEFILE_COMMAND info and clean; app arguments are never taken", async (t) => {
    if (!ready(t)) return;
    const { cache, env } = freshCache();
    const info = run(onefile!, ["--version"], { env: { ...env, PYPORT_ONEFILE_COMMAND: "info" } });
    assert.equal(info.code, 0, info.stderr);
    const sha = (await readOnefile(onefile!))!.sha256;
    assert.match(info.stdout, /^app +hello 1\.0\.0 \(entry bin\/hello\)$/m);
    assert.match(info.stdout, new RegExp(`^sha256 +${sha}$`, "m"));
    assert.match(
      info.stdout,
      new RegExp(`^cache +${path.join(cache, BUCKET)}/hello-${sha} \\(not extracted yet\\)$`, "m"),
    );
    assert.equal(run(onefile!, ["--version"], { env }).stdout.trim(), "hello 1.0.0");
    assert.match(
      run(onefile!, [], { env: { ...env, PYPORT_ONEFILE_COMMAND: "info" } }).stdout,
      /\(extracted\)$/m,
    );
    const clean = run(onefile!, [], { env: { ...env, PYPORT_ONEFILE_COMMAND: "clean" } });
    assert.equal(clean.code, 0, clean.stderr);
    assert.deepEqual(completeDirs(cache), []);
    const unknown = run(onefile!, [], { env: { ...env, PYPORT_ONEFILE_COMMAND: "frobnicate" } });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /use info, verify, "extract DIR" or clean/);
    // Flags that look like management commands go to the app.
    assert.match(run(onefile!, ["--help"], { env }).stdout, /^usage: hello/m);
  });

  test("pyport cache prune removes extractions unused for N days", async (t) => {
    if (!ready(t)) return;
    const { cache, env } = freshCache();
    assert.equal(run(onefile!, ["--version"], { env }).code, 0);
    const [dir] = completeDirs(cache);
    const prune = (days: string) =>
      pyport(["cache", "prune", "--bucket", BUCKET, "--older-than", days, "--json"], env);
    assert.deepEqual(JSON.parse(prune("5").stdout).removed, [], "recently used: kept");
    const old = new Date(Date.now() - 10 * 86_400_000);
    fs.utimesSync(path.join(cache, BUCKET, dir, ".pyport-complete"), old, old);
    const removed = JSON.parse(prune("5").stdout).removed as { key: string }[];
    assert.deepEqual(
      removed.map((e) => e.key),
      [dir],
    );
    assert.deepEqual(entries(cache), [], "the extraction and its lock file are gone");
    assert.equal(
      run(onefile!, ["--version"], { env }).stdout.trim(),
      "hello 1.0.0",
      "the next run unpacks again",
    );
  });

  test("prune and clean leave the extraction of a running onefile alone", async (t) => {
    if (!ready(t)) return;
    const { cache, env } = freshCache();
    const child = spawn(onefile!, ["--echo-stdin"], { env, stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise((r) => child.on("exit", r));
    // Wait until the app runs: it holds its extraction's lock (shared) while it does.
    let dir: string | undefined;
    for (let i = 0; i < 400 && !dir; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const [d] = completeDirs(cache);
      if (!d) continue;
      const probe = await tryLock(path.join(cache, BUCKET, `${d}.lock`));
      if (probe) await probe.release();
      else dir = d;
    }
    assert.ok(dir, "the running onefile holds its extraction's lock");
    const pruned = JSON.parse(
      pyport(["cache", "prune", "--bucket", BUCKET, "--older-than", "0", "--json"], env).stdout,
    );
    assert.deepEqual(pruned.removed, []);
    assert.deepEqual(
      pruned.inUse.map((e: { key: string }) => e.key),
      [dir],
    );
    const clean = run(onefile!, [], { env: { ...env, PYPORT_ONEFILE_COMMAND: "clean" } });
    assert.match(clean.stdout, /in use by a running hello; not removed/);
    assert.deepEqual(completeDirs(cache), [dir]);
    child.stdin.end("bye");
    await exited;
    const after = JSON.parse(
      pyport(["cache", "prune", "--bucket", BUCKET, "--older-than", "0", "--json"], env).stdout,
    );
    assert.deepEqual(
      after.removed.map((e: { key: string }) => e.key),
      [dir],
    );
  });

  test("pyport audit reads a onefile without running it", async (t) => {
    if (!ready(t)) return;
    const r = pyport(["audit", onefile!, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.kind, "bundle");
    assert.deepEqual(report.onefile, {
      sha256: (await readOnefile(onefile!))!.sha256,
      entry: "bin/hello",
    });
    assert.equal(report.libc.mode, "bundled");
    assert.match(
      pyport(["audit", onefile!]).stdout,
      /^audit of .* \(onefile running bin\/hello, payload sha256 [0-9a-f]{16}… verified; bundle, libc bundled/m,
    );
    assert.deepEqual(
      report.findings.filter((f: { severity: string }) => f.severity === "error"),
      [],
    );
  });

  test("the console script a onefile runs: configured, only, or named like the project", () => {
    const ep = (name: string) => ({ name, target: "m:f", gui: false });
    const cfg = (entry?: string) => ({ name: "app", entry }) as Parameters<typeof onefileEntry>[1];
    assert.equal(onefileEntry([ep("tool")], cfg()), "tool");
    assert.equal(onefileEntry([ep("x"), ep("app")], cfg()), "app");
    assert.equal(onefileEntry([ep("x"), ep("y")], cfg("y")), "y");
    assert.throws(
      () => onefileEntry([ep("x"), ep("y")], cfg()),
      /several console scripts \(x, y\)/,
    );
    assert.throws(() => onefileEntry([], cfg()), /declares none/);
    assert.throws(
      () => onefileEntry([ep("x")], cfg("z")),
      /not a console script of app \(it has: x\)/,
    );
  });
});
