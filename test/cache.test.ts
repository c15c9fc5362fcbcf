/** The cache: atomic materialisation, concurrency, crash recovery, locks, verified downloads. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { test } from "node:test";
import { COMPLETE_MARKER, listCache, materialize, pruneCache } from "../src/store/cache.js";
import { downloadVerified, sha256FromSums } from "../src/store/download.js";
import { withLock } from "../src/store/lock.js";
import type { PyportError } from "../src/errors.js";
import { pyport, tmpDir } from "./helpers.js";

test("concurrent materialisations build once and all see a complete entry", async () => {
  const root = tmpDir("cache");
  let builds = 0;
  const build = async (tmp: string) => {
    builds++;
    await new Promise((r) => setTimeout(r, 50));
    fs.writeFileSync(path.join(tmp, "data"), "x");
  };
  const results = await Promise.all(
    Array.from({ length: 10 }, () => materialize({ bucket: "t-v1", key: "k", build, root })),
  );
  assert.equal(builds, 1);
  for (const r of results) assert.ok(fs.existsSync(path.join(r.dir, COMPLETE_MARKER)));
});

test("a failed build leaves nothing; an incomplete leftover is rebuilt", async () => {
  const root = tmpDir("cache");
  await assert.rejects(
    materialize({
      bucket: "t-v1",
      key: "k",
      root,
      build: async () => Promise.reject(new Error("boom")),
    }),
    /boom/,
  );
  // Only the lock file stays (lock files are removed by prune, under the lock: see lock.ts).
  assert.deepEqual(fs.readdirSync(path.join(root, "t-v1")), ["k.lock"]);
  fs.mkdirSync(path.join(root, "t-v1", "k2"), { recursive: true }); // as if killed before the rename
  fs.writeFileSync(path.join(root, "t-v1", "k2", "half"), "");
  const r = await materialize({
    bucket: "t-v1",
    key: "k2",
    root,
    build: async (tmp) => fs.writeFileSync(path.join(tmp, "full"), ""),
  });
  assert.ok(r.built);
  assert.deepEqual(fs.readdirSync(r.dir).sort(), [COMPLETE_MARKER, "full"].sort());
});

const LOCK_MODULE = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "../src/store/lock.js",
);

/** A node child that runs `body` (an async function body with `withLock`, `file`, `fs` in scope). */
function lockChild(file: string, body: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const script = `import { withLock, acquireLock } from ${JSON.stringify(LOCK_MODULE)};
import * as fs from "node:fs";
const file = ${JSON.stringify(file)};
await (async () => { ${body} })();`;
  return spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
    env,
  });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve(out.split("\n")[0]);
    });
    child.on("exit", (code) => reject(new Error(`child exited (${code}) before a line: ${out}`)));
  });
}

test("a lock whose holder was SIGKILLed is free at once; an empty lock file is no obstacle", async () => {
  const dir = tmpDir("lock");
  const file = path.join(dir, "x.lock");
  const holder = lockChild(
    file,
    `const l = await acquireLock(file); console.log("held"); setInterval(() => {}, 1000);`,
  );
  assert.equal(await firstLine(holder), "held");
  await assert.rejects(
    withLock(file, { timeoutMs: 200 }, async () => 0),
    (err: PyportError) => {
      assert.equal(err.code, "E_LOCK_TIMEOUT");
      assert.ok(
        err.message.includes(file) && err.message.includes(`pid ${holder.pid}`),
        err.message,
      );
      return true;
    },
  );
  const exited = new Promise((r) => holder.on("exit", r));
  holder.kill("SIGKILL");
  await exited;
  assert.equal(await withLock(file, { timeoutMs: 2000 }, async () => 7), 7);
  const empty = path.join(dir, "empty.lock");
  fs.writeFileSync(empty, ""); // as if killed between creating the file and writing a pid
  assert.equal(await withLock(empty, { timeoutMs: 2000 }, async () => 8), 8);
});

test("waiting for a lock sleeps instead of spinning", async () => {
  const file = path.join(tmpDir("lock"), "x.lock");
  const holder = lockChild(
    file,
    `await acquireLock(file); console.log("held"); setInterval(() => {}, 1000);`,
  );
  await firstLine(holder);
  const before = process.cpuUsage();
  await assert.rejects(
    withLock(file, { timeoutMs: 1000 }, async () => 0),
    { code: "E_LOCK_TIMEOUT" },
  );
  const used = process.cpuUsage(before);
  holder.kill("SIGKILL");
  // A busy wait burns about a second of CPU in that second; sleeping between tries, a few ms.
  assert.ok(used.user + used.system < 300_000, `waiting used ${used.user + used.system} µs of CPU`);
});

test("20 concurrent processes (half with the addon, half with flock(1)): one holder at a time, all get it", async () => {
  const dir = tmpDir("lock");
  const file = path.join(dir, "x.lock");
  const inside = path.join(dir, "inside");
  const log = path.join(dir, "log");
  const body = `await withLock(file, {}, async () => {
    fs.writeFileSync(${JSON.stringify(inside)}, String(process.pid), { flag: "wx" }); // EEXIST: two inside at once
    fs.appendFileSync(${JSON.stringify(log)}, "in\\n");
    await new Promise((r) => setTimeout(r, 15));
    fs.rmSync(${JSON.stringify(inside)});
  });`;
  const tool = { ...process.env, PYPORT_LOCK_WITH: "flock-tool" };
  const children = Array.from({ length: 20 }, (_, i) =>
    lockChild(file, body, i % 2 ? tool : process.env),
  );
  const codes = await Promise.all(children.map((c) => new Promise((r) => c.on("exit", r))));
  assert.deepEqual(codes, Array(20).fill(0));
  assert.equal(fs.readFileSync(log, "utf8"), "in\n".repeat(20));
});

test("list and prune: unused entries and leftovers go, recent ones and locked ones stay", async () => {
  const root = tmpDir("cache");
  await materialize({ bucket: "a-v1", key: "keep", root, build: async () => undefined });
  const old = await materialize({ bucket: "a-v1", key: "old", root, build: async () => undefined });
  const busy = await materialize({
    bucket: "a-v1",
    key: "busy",
    root,
    build: async () => undefined,
  });
  const past = new Date(Date.now() - 40 * 86_400_000);
  for (const d of [old.dir, busy.dir]) fs.utimesSync(path.join(d, COMPLETE_MARKER), past, past);
  fs.mkdirSync(path.join(root, "a-v1", "broken")); // incomplete, fresh: a dead process's leftover
  fs.mkdirSync(path.join(root, "a-v1", ".tmp-gone-999999999-1")); // a dead builder's temp dir
  // A build in progress: its temp dir, old, under a lock held by a live process.
  const building = path.join(root, "a-v1", `.tmp-wip-${process.pid}-1`);
  fs.mkdirSync(building);
  fs.utimesSync(building, past, past);
  const holders = ["busy", "wip"].map((k) =>
    lockChild(
      path.join(root, "a-v1", `${k}.lock`),
      `await acquireLock(file); console.log("held"); setInterval(() => {}, 1000);`,
    ),
  );
  await Promise.all(holders.map(firstLine));
  try {
    const { removed, inUse } = await pruneCache({ root, olderThanDays: 30 });
    assert.deepEqual(removed.map((e) => e.key).sort(), [".tmp-gone-999999999-1", "broken", "old"]);
    assert.deepEqual(
      inUse.map((e) => e.key).sort(),
      [".tmp-wip-" + process.pid + "-1", "busy"].sort(),
    );
    assert.ok(fs.existsSync(building) && fs.existsSync(busy.dir));
    assert.ok(fs.existsSync(path.join(root, "a-v1", "busy.lock")), "a held lock file stays");
    assert.ok(
      !fs.existsSync(path.join(root, "a-v1", "old.lock")),
      "the removed entry's lock went with it",
    );
  } finally {
    for (const h of holders) h.kill("SIGKILL");
  }
  assert.deepEqual(
    (await listCache(root)).map((e) => e.key).sort(),
    [".tmp-wip-" + process.pid + "-1", "busy", "keep"].sort(),
  );
});

test("downloads are verified by sha256; a mismatch caches nothing; SHA256SUMS over HTTP proves nothing", async () => {
  process.env.PYPORT_CACHE = tmpDir("dlcache");
  const body = Buffer.from("pretend archive ".repeat(1000));
  const sha = createHash("sha256").update(body).digest("hex");
  const server = http.createServer((req, res) => {
    if (req.url === "/d/a.tar.gz") res.end(body);
    else if (req.url === "/d/SHA256SUMS") res.end(`${sha}  a.tar.gz\n`);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/d/a.tar.gz`;
  try {
    await assert.rejects(sha256FromSums(url), (err: PyportError) => {
      assert.equal(err.code, "E_USAGE");
      assert.match(err.message, /plain HTTP: a SHA256SUMS from the same server proves nothing/);
      assert.match(err.hint ?? "", /--sha256/);
      return true;
    });
    const wrong = "0".repeat(64);
    await assert.rejects(downloadVerified(url, wrong), { code: "E_CHECKSUM" });
    assert.ok(!fs.existsSync(path.join(process.env.PYPORT_CACHE, "downloads-v1", wrong)));
    assert.ok(
      !fs.existsSync(path.join(process.env.PYPORT_CACHE, "downloads-v1", `${wrong}.partial`)),
    );
    const file = await downloadVerified(url, sha);
    assert.deepEqual(fs.readFileSync(file), body);
    await assert.rejects(
      downloadVerified(url.replace("a.tar.gz", "missing.tar.gz"), sha.replace(/^./, "f")),
      { code: "E_DOWNLOAD" },
    );
  } finally {
    server.close();
  }
});

/** A server that serves `body` with Range support, breaking off or stalling as `plan` says per request. */
async function flakyServer(body: Buffer, plan: ("cut" | "stall" | "ok" | "no-range")[]) {
  const ranges: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    ranges.push(req.headers.range);
    const step = plan.shift() ?? "ok";
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = m && step !== "no-range" ? Number(m[1]) : 0;
    const part = body.subarray(from);
    res.writeHead(from ? 206 : 200, {
      "content-length": part.length,
      ...(from ? { "content-range": `bytes ${from}-${body.length - 1}/${body.length}` } : {}),
    });
    if (step === "cut") {
      // Half, then the connection breaks — after a pause, so the client has read that half (a
      // body stream that errors drops what it had buffered but not yet handed over).
      res.write(part.subarray(0, part.length >> 1), () =>
        setTimeout(() => res.socket?.destroy(), 100),
      );
    } else if (step === "stall")
      res.write(part.subarray(0, 1000)); // then nothing, ever
    else res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/a.tar.gz`;
  return { server, url, ranges };
}

test("a download that breaks off is retried and resumed from where it stopped", async () => {
  process.env.PYPORT_CACHE = tmpDir("dlcache");
  const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
  const sha = createHash("sha256").update(body).digest("hex");
  const { server, url, ranges } = await flakyServer(body, ["cut", "cut", "ok"]);
  try {
    const file = await downloadVerified(url, sha, { retryPauseMs: 10 });
    assert.deepEqual(fs.readFileSync(file), body);
    assert.equal(ranges.length, 3, JSON.stringify(ranges));
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? "", /^bytes=[1-9]\d*-$/, "the second attempt resumes");
    assert.ok(
      Number(/\d+/.exec(ranges[2]!)![0]) > Number(/\d+/.exec(ranges[1]!)![0]),
      JSON.stringify(ranges),
    );
  } finally {
    server.close();
  }
});

test("a stalled server times out; the next run resumes the partial download (or restarts if Range is ignored)", async () => {
  process.env.PYPORT_CACHE = tmpDir("dlcache");
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) % 256));
  const sha = createHash("sha256").update(body).digest("hex");
  const stalling = await flakyServer(body, ["stall", "stall"]);
  try {
    await assert.rejects(
      downloadVerified(stalling.url, sha, { timeoutMs: 300, attempts: 2, retryPauseMs: 10 }),
      (err: PyportError) => {
        assert.equal(err.code, "E_DOWNLOAD");
        assert.match(err.message, /no data for/);
        return true;
      },
    );
    assert.equal(stalling.ranges.length, 2, "bounded: two attempts");
  } finally {
    stalling.server.closeAllConnections();
    stalling.server.close();
  }
  const partial = path.join(process.env.PYPORT_CACHE, "downloads-v1", `${sha}.partial`);
  assert.equal(fs.statSync(partial).size, 2000, "what arrived is kept for the next run");
  const good = await flakyServer(body, ["ok"]);
  try {
    assert.deepEqual(fs.readFileSync(await downloadVerified(good.url, sha)), body);
    assert.deepEqual(good.ranges, ["bytes=2000-"]);
  } finally {
    good.server.close();
  }
  process.env.PYPORT_CACHE = tmpDir("dlcache");
  fs.mkdirSync(path.join(process.env.PYPORT_CACHE, "downloads-v1"), { recursive: true });
  fs.writeFileSync(path.join(process.env.PYPORT_CACHE, "downloads-v1", `${sha}.partial`), "stale!");
  const ignoring = await flakyServer(body, ["no-range"]);
  try {
    assert.deepEqual(fs.readFileSync(await downloadVerified(ignoring.url, sha)), body);
  } finally {
    ignoring.server.close();
  }
});

test("pyport cache dir|list|prune through the CLI", () => {
  const root = tmpDir("clicache");
  const env = { ...process.env, PYPORT_CACHE: root };
  assert.equal(pyport(["cache", "dir"], env).stdout.trim(), root);
  assert.match(pyport(["cache", "list"], env).stdout, /is empty/);
  fs.mkdirSync(path.join(root, "runtimes-v1", ".tmp-dead-999999999-5"), { recursive: true });
  const ask = pyport(["cache", "prune"], env);
  assert.equal(ask.code, 2);
  assert.match(ask.stderr, /needs --older-than DAYS/);
  assert.ok(fs.existsSync(path.join(root, "runtimes-v1", ".tmp-dead-999999999-5")));
  // A dead process's leftover goes whatever its age (this one is seconds old).
  assert.match(pyport(["cache", "prune", "--older-than", "30"], env).stdout, /removed 1 entries/);
  const bad = pyport(["cache", "prune", "--older-than", "soon"], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a number of days/);
});
