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
import { ForkServer } from "../src/host/index.js";
import { hostAddon } from "../src/util/addon.js";
import { sharedPython, tmpDir, useTestCache } from "./helpers.js";

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
      assert.equal(parentOf(pid), server.pid!, "forked by the server");
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

  test("forked workers get their own cwd and environment; other paths mean spawned", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const server = start();
    assert.equal(await server.ready, true);
    const dir = tmpDir("fork-cwd");
    const own = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      forkServer: server,
      cwd: dir,
      env: { ...process.env, PYPORT_FORK_TEST: "mine" },
    });
    try {
      assert.equal(parentOf(own.pids[0]), server.pid);
      assert.deepEqual(await own.call("hostmod:cwd_and_env", ["PYPORT_FORK_TEST"]), [
        fs.realpathSync(dir),
        "mine",
      ]);
    } finally {
      await own.close();
    }
    const other = await Python.start({ python: interpreter, forkServer: server }); // no path
    try {
      assert.equal(parentOf(await other.call<number>("os:getpid")), process.pid);
    } finally {
      await other.close();
    }
  });

  test("a server that cannot import its preloads is never used", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const stops: string[] = [];
    const server = start({ preload: ["no_such_module_here"], onProblem: (m) => stops.push(m) });
    assert.equal(await server.ready, false);
    assert.match(
      stops.join("\n"),
      /could not import its preloads: ModuleNotFoundError.*; workers are spawned from now on/,
    );
    assert.equal(server.pid, undefined, "and it is not started again");
    const err = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      preload: ["no_such_module_here"],
      forkServer: server,
    }).catch((e: Error) => e);
    assert.ok(err instanceof PythonError, "the spawned worker reports the import error");
    assert.equal(err.pythonType, "ModuleNotFoundError");
  });

  test("a server that dies is started again, up to 3 times; its workers are replaced", async (t) => {
    const skip = missing();
    if (skip) return t.skip(skip);
    const problems: string[] = [];
    const server = start({ onProblem: (m) => problems.push(m) });
    assert.equal(await server.ready, true);
    const py = await Python.start({ python: interpreter, path: [FIXTURES], forkServer: server });
    try {
      let forked = await py.call<number>("hostmod:pid");
      for (let round = 1; round <= 4; round++) {
        const dead = server.pid!;
        assert.equal(parentOf(forked), dead, `round ${round}: forked by the server`);
        const running = py.call("hostmod:sleep", [5]).catch((e: Error) => e);
        await new Promise((r) => setTimeout(r, 50));
        process.kill(dead, "SIGKILL");
        const lost = await running;
        assert.ok(lost instanceof WorkerCrashedError, String(lost));
        assert.match(lost.message, /was lost: its exit status could not be read/);
        for (let i = 0; i < 100 && problems.length < round; i++)
          await new Promise((r) => setTimeout(r, 20));
        assert.match(
          problems[round - 1],
          round <= 3
            ? new RegExp(`^exited; starting it again \\(${round} of 3\\)`)
            : /^exited; workers are spawned from now on/,
        );
        // The worker counts as exited (nobody can report its status any more) and is replaced:
        // spawned, or forked by the new server if that is ready already.
        assert.ok(await gone(forked), "the orphaned worker left when its channel closed");
        const next = await py.call<number>("hostmod:pid");
        if (round <= 3) {
          assert.equal(await server.ready, true, "the new server is up");
          if (parentOf(next) !== server.pid)
            await py.call("hostmod:crash", ["exit"]).catch(() => undefined);
          forked = await py.call<number>("hostmod:pid");
        } else {
          assert.equal(server.pid, undefined);
          assert.equal(parentOf(next), process.pid, "spawned once the server gave up");
        }
      }
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
    const serverPid = server.pid!;
    assert.equal(parentOf(forked), serverPid);
    server.close();
    assert.equal(await py.call("hostmod:pid"), forked, "its workers still serve");
    const crash = await py.call("hostmod:crash", ["exit"]).catch((e: Error) => e);
    assert.equal((crash as WorkerCrashedError).exitCode, 3, "and their exits are still reported");
    const replacement = await py.call<number>("hostmod:pid");
    assert.equal(parentOf(replacement), process.pid, "the replacement is spawned, not forked");
    await py.close();
    assert.equal(await gone(serverPid, 300), false, "the server waits for its last worker");
    await stays.close();
    assert.ok(await gone(serverPid), "then leaves");
  });
});
