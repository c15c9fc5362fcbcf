/**
 * The fork server (src/host/fork-server.ts, python/host_forkserver.py) against real Python:
 * forked workers behave as spawned ones (exit codes, signals, stderr, memory limit, nice, arena,
 * host functions, reaping), a server that cannot import its preloads is never used, a server
 * that dies leaves working fallbacks, and a closed server leaves once its workers have.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Python, PythonError, WorkerCrashedError } from "../src/index.js";
import { ARENA_MIN } from "../src/host/arena.js";
import { ForkServer } from "../src/host/fork-server.js";
import { hostAddon } from "../src/util/addon.js";
import { sharedPython, useTestCache } from "./helpers.js";

useTestCache();
const FIXTURES = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "../../test/fixtures/host",
);

let interpreter: string | undefined;
before(async () => {
  interpreter = (await sharedPython())?.path;
});

/** The reason the tests cannot run here, or undefined. */
function missing(): string | undefined {
  if (!hostAddon()) return "host addon not built (npm run build needs a C compiler)";
  if (!interpreter) return "no CPython with a shared libpython found";
  return undefined;
}

function parentOf(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
}

async function gone(pid: number, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20)))
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
  return false;
}

describe("fork server", () => {
  const servers: ForkServer[] = [];
  const start = (opts: Partial<Parameters<typeof ForkServer.start>[0]> = {}) => {
    const s = ForkServer.start({ python: interpreter!, path: [FIXTURES], ...opts });
    assert.ok(s, "the addon is built: a server starts");
    servers.push(s);
    return s;
  };
  after(() => servers.forEach((s) => s.close()));

  test("forked workers behave as spawned ones, and their replacements are forked too", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const server = start({ preload: ["hostmod"] });
    assert.equal(await server.ready, true);
    const outputs: string[] = [];
    const py = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      preload: ["hostmod"],
      forkServer: server,
      workers: 2,
      hostFunctions: { twice: (x: unknown) => Number(x) * 2 },
      onOutput: (o) => outputs.push(o.text),
    });
    try {
      const pid = await py.call<number>("hostmod:pid");
      assert.equal(parentOf(pid), server.pid, "forked by the server");
      assert.equal(await py.call("hostmod:ask_host", ["twice", 21]), 42, "host functions work");
      const big = await py.call<Buffer>("hostmod:filled", [ARENA_MIN * 2, 7]);
      assert.equal(big.length, ARENA_MIN * 2, "a value through the arena files");
      const seeds = await Promise.all([0, 1].map(() => py.call<number>("random:random")));
      assert.equal(new Set(seeds).size, 2, "each fork has its own random state");

      const exit = await py.call("hostmod:crash", ["exit"]).catch((e: Error) => e);
      assert.ok(exit instanceof WorkerCrashedError, String(exit));
      assert.equal(exit.exitCode, 3);
      assert.match(exit.stderrTail, /about to crash: exit/);
      const segv = await py.call("hostmod:crash", ["segv"]).catch((e: Error) => e);
      assert.ok(segv instanceof WorkerCrashedError, String(segv));
      assert.equal(segv.signal, "SIGSEGV");
      const replacement = await py.call<number>("hostmod:pid");
      assert.equal(parentOf(replacement), server.pid, "the replacement is forked too");
      assert.ok(await gone(pid), "the crashed workers were reaped");
    } finally {
      await py.close();
    }

    const limited = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      preload: ["hostmod"],
      forkServer: server,
      memoryLimitMb: 300,
      nice: 7,
    });
    try {
      const pid = await limited.call<number>("hostmod:pid");
      assert.equal(parentOf(pid), server.pid);
      assert.equal(await limited.call("os:getpriority", [0, 0]), 7, "the nice value");
      const bomb = await limited.call("hostmod:allocate", [1024]).catch((e: Error) => e);
      assert.ok(bomb instanceof PythonError && bomb.pythonType === "MemoryError", String(bomb));
    } finally {
      await limited.close();
    }
  });

  test("workers with other options than the server's are spawned", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const server = start();
    assert.equal(await server.ready, true);
    const py = await Python.start({ python: interpreter, forkServer: server }); // no path
    try {
      assert.equal(parentOf(await py.call<number>("os:getpid")), process.pid);
    } finally {
      await py.close();
    }
  });

  test("a server that cannot import its preloads is never used", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const stops: string[] = [];
    const server = start({ preload: ["no_such_module_here"], onStop: (r) => stops.push(r) });
    assert.equal(await server.ready, false);
    assert.match(stops.join("\n"), /could not import its preloads: ModuleNotFoundError/);
    const err = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      preload: ["no_such_module_here"],
      forkServer: server,
    }).catch((e: Error) => e);
    assert.ok(err instanceof PythonError, "the spawned worker reports the import error");
    assert.equal(err.pythonType, "ModuleNotFoundError");
  });

  test("when the server dies, its workers are replaced by spawned ones", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const stops: string[] = [];
    const server = start({ onStop: (r) => stops.push(r) });
    assert.equal(await server.ready, true);
    const py = await Python.start({ python: interpreter, path: [FIXTURES], forkServer: server });
    try {
      const forked = await py.call<number>("hostmod:pid");
      assert.equal(parentOf(forked), server.pid);
      process.kill(server.pid, "SIGKILL");
      for (let i = 0; i < 100 && !stops.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(stops.join("\n"), /exited/);
      const spawned = await py.call<number>("hostmod:pid");
      assert.notEqual(spawned, forked);
      assert.equal(parentOf(spawned), process.pid, "spawned once the server is gone");
      assert.ok(await gone(forked), "the orphaned worker left when its channel closed");
    } finally {
      await py.close();
    }
  });

  test("a closed server forks no more and leaves once its workers have exited", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const server = start();
    assert.equal(await server.ready, true);
    const quiet = { onOutput: () => undefined };
    const py = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      forkServer: server,
      ...quiet,
    });
    const stays = await Python.start({ python: interpreter, path: [FIXTURES], forkServer: server });
    const forked = await py.call<number>("hostmod:pid");
    assert.equal(parentOf(forked), server.pid);
    server.close();
    assert.equal(await py.call("hostmod:pid"), forked, "its workers still serve");
    const crash = await py.call("hostmod:crash", ["exit"]).catch((e: Error) => e);
    assert.equal((crash as WorkerCrashedError).exitCode, 3, "and their exits are still reported");
    const replacement = await py.call<number>("hostmod:pid");
    assert.equal(parentOf(replacement), process.pid, "the replacement is spawned, not forked");
    await py.close();
    assert.equal(await gone(server.pid, 300), false, "the server waits for its last worker");
    await stays.close();
    assert.ok(await gone(server.pid), "then leaves");
  });
});
