/** The cache: atomic materialisation, concurrency, crash recovery, locks, verified downloads. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { test } from "node:test";
import { COMPLETE_MARKER, listCache, materialize, pruneCache } from "../src/store/cache.js";
import { downloadVerified, sha256FromSums } from "../src/store/download.js";
import { withLock } from "../src/store/lock.js";
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
  assert.deepEqual(fs.readdirSync(path.join(root, "t-v1")), []);
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

test("a lock held by a live process times out with a message naming the lock and holder", async () => {
  const dir = tmpDir("lock");
  const file = path.join(dir, "x.lock");
  fs.writeFileSync(file, `${process.ppid}\n`); // a live process that is not us
  await assert.rejects(
    withLock(file, { timeoutMs: 300, pollMs: 50 }, async () => 1),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, "E_LOCK_TIMEOUT");
      assert.ok(err.message.includes(file) && err.message.includes(String(process.ppid)));
      assert.match(err.hint ?? "", /delete/);
      return true;
    },
  );
  fs.writeFileSync(file, "999999999\n"); // a dead owner: stale, taken over
  assert.equal(await withLock(file, { timeoutMs: 300 }, async () => 7), 7);
});

test("list and prune: incomplete leftovers and unused entries go, recent ones stay", async () => {
  const root = tmpDir("cache");
  await materialize({ bucket: "a-v1", key: "keep", root, build: async () => undefined });
  const old = await materialize({ bucket: "a-v1", key: "old", root, build: async () => undefined });
  const past = new Date(Date.now() - 40 * 86_400_000);
  fs.utimesSync(path.join(old.dir, COMPLETE_MARKER), past, past);
  fs.mkdirSync(path.join(root, "a-v1", "broken"));
  const removed = await pruneCache({ root, olderThanDays: 30 });
  assert.deepEqual(removed.map((e) => e.key).sort(), ["broken", "old"]);
  assert.deepEqual(
    (await listCache(root)).map((e) => e.key),
    ["keep"],
  );
});

test("downloads are verified by sha256; a mismatch caches nothing; SHA256SUMS is honoured", async () => {
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
    assert.equal(await sha256FromSums(url), sha);
    const wrong = "0".repeat(64);
    await assert.rejects(downloadVerified(url, wrong), { code: "E_CHECKSUM" });
    assert.ok(!fs.existsSync(path.join(process.env.PYPORT_CACHE, "downloads-v1", wrong)));
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

test("pyport cache dir|list|prune through the CLI", () => {
  const root = tmpDir("clicache");
  const env = { ...process.env, PYPORT_CACHE: root };
  assert.equal(pyport(["cache", "dir"], env).stdout.trim(), root);
  assert.match(pyport(["cache", "list"], env).stdout, /is empty/);
  fs.mkdirSync(path.join(root, "runtimes-v1", ".tmp-dead"), { recursive: true });
  const past = new Date(Date.now() - 2 * 3_600_000);
  fs.utimesSync(path.join(root, "runtimes-v1", ".tmp-dead"), past, past);
  assert.match(pyport(["cache", "prune"], env).stdout, /removed 1 entries/);
  const bad = pyport(["cache", "prune", "--older-than", "soon"], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a number of days/);
});
