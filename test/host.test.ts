/**
 * The Node host API against real Python workers: lossless types both ways, Python tracebacks,
 * output isolation, crash recovery, deadlines and aborts, the pool, clean shutdown, and the
 * interpreter choice (a managed runtime by default, never PATH).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  AbortError,
  CallTimeoutError,
  Python,
  PythonError,
  WorkerCrashedError,
} from "../src/index.js";
import { ARENA_MIN } from "../src/host/arena.js";
import { CallTable } from "../src/host/calls.js";
import { statPath } from "../src/host/process.js";
import { hostAddon } from "../src/util/addon.js";
import { PYPORT_VERSION } from "../src/version.js";
import { sharedPython, tmpDir, useTestCache, skipPart } from "./helpers.js";

useTestCache();
const FIXTURES = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "../../test/fixtures/host",
);
const M = "hostmod";

let interpreter: string | undefined;
let py: Python | undefined;
const output: { stream: string; text: string }[] = [];

before(async () => {
  interpreter = (await sharedPython())?.path;
  if (!interpreter) return; // each test skips, naming the reason
  py = await Python.start({
    python: interpreter,
    path: [FIXTURES],
    onOutput: (o) => output.push(o),
  });
});
after(() => py?.close());

function ready(t: { skip: (m: string) => void }): boolean {
  if (py) return true;
  t.skip("no CPython with a shared libpython found");
  return false;
}

describe("host: types", () => {
  test("Python values arrive as documented JS values", async (t) => {
    if (!ready(t)) return;
    const s = await py!.call<Record<string, unknown>>(`${M}:samples`);
    assert.equal(s.none, null);
    assert.equal(s.t, true);
    assert.equal(s.small, Number.MAX_SAFE_INTEGER);
    assert.equal(s.big, 2n ** 70n, "2**70 is a bigint, not -1 or a rounded number");
    assert.equal(s.neg_big, -(2n ** 64n));
    assert.equal(s.float, 1.5);
    assert.ok(Number.isNaN(s.nan));
    assert.equal(s.inf, Infinity);
    assert.equal(s.str, "héllo \u2603");
    for (const k of ["bytes", "bytearray", "memoryview"]) assert.ok(s[k] instanceof Uint8Array, k);
    assert.deepEqual([...(s.bytes as Uint8Array)], [0, 1, 255]);
    assert.deepEqual(s.tuple, [1, "a"]);
    assert.ok(s.int_keys instanceof Map);
    assert.deepEqual(
      [...(s.int_keys as Map<unknown, unknown>).entries()],
      [
        [1, "one"],
        [[2, 3], "pair"],
      ],
    );
    assert.deepEqual(s.set, new Set([1, 2]));
    assert.deepEqual(s.frozenset, new Set(["x"]));
    assert.equal((s.datetime as Date).toISOString(), "2024-05-06T07:08:09.123Z");
    assert.equal(
      (s.naive as Date).toISOString(),
      "2024-05-06T07:08:09.000Z",
      "naive datetimes are taken as UTC",
    );
    assert.equal(s.date, "2024-05-06");
    assert.equal(s.decimal, "1.10");
  });

  test("JS values arrive as documented Python values and round-trip", async (t) => {
    if (!ready(t)) return;
    const values = [
      null,
      true,
      0,
      -5,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 32,
      -(2 ** 32) - 1,
      1.25,
      -0.5,
      2n ** 80n,
      -(2n ** 80n),
      "ß✓",
      new Uint8Array([1, 2, 3]),
      [1, [2, "x"]],
      { a: { b: null } },
      new Map<unknown, unknown>([
        [1, "x"],
        ["k", 2],
      ]),
      new Set([1, "a"]),
      new Date("2020-01-02T03:04:05.678Z"),
    ];
    const types = await py!.call<string[]>(`${M}:types_of`, values);
    assert.deepEqual(types, [
      "NoneType",
      "bool",
      "int",
      "int",
      "int",
      "int",
      "int",
      "int",
      "float",
      "float",
      "int",
      "int",
      "str",
      "bytes",
      "list",
      "dict",
      "dict",
      "set",
      "datetime",
    ]);
    for (const v of values) assert.deepEqual(await py!.call(`${M}:identity`, [v]), v, String(v));
    assert.deepEqual(
      await py!.call(`${M}:types_of`, [Buffer.from("x")]),
      ["bytes"],
      "a Buffer is accepted",
    );
    assert.deepEqual(await py!.call(`${M}:echo`, [1], { key: "v" }), {
      args: [1],
      kwargs: { key: "v" },
    });
    const big = new Uint8Array(8 << 20).map((_, i) => i & 255);
    const back = await py!.call<Uint8Array>(`${M}:identity`, [big]);
    assert.equal(back.length, big.length);
    assert.ok(
      Buffer.from(back.buffer, back.byteOffset, back.length).equals(Buffer.from(big)),
      "8 MiB of bytes round-trip intact",
    );
    // Long strings travel inline (long bytes go through the arena): the worker reuses its receive
    // buffer for large frames, so send a smaller one after the 8 MiB frame, then a larger one.
    for (const size of [300 << 10, 9 << 20]) {
      const value = "é".repeat(size / 2) + String(size);
      const [echoed, tail] = await py!.call<[string, string]>(`${M}:identity`, [[value, "tail"]]);
      assert.ok(echoed === value, `a string of ${size} bytes after a larger frame`);
      assert.equal(tail, "tail");
    }
  });

  test("long byte values go through the shared arena, which is reused from its start and shrunk", async (t) => {
    if (!ready(t)) return;
    const sizes = await py!.call<number[]>(`${M}:arena_sizes`);
    assert.equal(sizes.length, 2, "the worker has arena files (on fds 5 and 6)");
    const MiB = 1 << 20;
    const values = [ARENA_MIN, 300 << 10, 3 * MiB, MiB, 5 * MiB].map((n, k) =>
      new Uint8Array(n).map((_, i) => (i * (k + 3)) & 255),
    );
    const echoed = await Promise.all(values.map((v) => py!.call<Uint8Array>(`${M}:identity`, [v]))); // one tick: side by side in the arena
    echoed.forEach((e, k) =>
      assert.ok(
        Buffer.from(e).equals(Buffer.from(values[k])),
        `value ${k} (${values[k].length} bytes) intact`,
      ),
    );
    assert.deepEqual(await py!.call(`${M}:filled`, [2 * MiB, 9]), new Uint8Array(2 * MiB).fill(9));
    // Over 16 MiB: once read, both files are truncated; the next value is written at offset 0.
    const huge = new Uint8Array(20 * MiB).fill(3);
    assert.equal((await py!.call<Uint8Array>(`${M}:identity`, [huge])).length, 20 * MiB);
    assert.deepEqual(
      await py!.call(`${M}:arena_sizes`),
      [0, 0],
      "files that grew past 16 MiB are truncated",
    );
    for (let i = 0; i < 3; i++) await py!.call(`${M}:identity`, [new Uint8Array(MiB)]);
    assert.deepEqual(
      await py!.call(`${M}:arena_sizes`),
      [MiB, MiB],
      "released space is reused from offset 0",
    );
    // A frame that fails after its bytes went into the arena releases them on either side.
    await assert.rejects(
      py!.call(`${M}:identity`, [[new Uint8Array(MiB), () => 1]]),
      /cannot send a function/,
    );
    await assert.rejects(
      py!.call(`${M}:filled_then_unsendable`, [MiB]),
      (e: PythonError) => e.pythonType === "TypeError",
    );
    assert.deepEqual(
      await py!.call(`${M}:identity`, [new Uint8Array(MiB).fill(1)]),
      new Uint8Array(MiB).fill(1),
    );
    assert.deepEqual(
      await py!.call(`${M}:arena_sizes`),
      [MiB, MiB],
      "values of failed frames do not hold their space",
    );
  });

  test("JS values arrive in Python as exactly these objects, on every Python 3.8+", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const { sharedPythons } = await import("./helpers.js");
    const date = new Date("2020-01-02T03:04:05.678Z");
    const pyDate = "datetime.datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)";
    const cases: [unknown, string][] = [
      [
        [
          2 ** 31 - 1,
          2 ** 31,
          -(2 ** 31),
          -(2 ** 31) - 1,
          2 ** 53 - 1,
          -(2 ** 53 - 1),
          32768,
          2 ** 45,
        ],
        "[2147483647, 2147483648, -2147483648, -2147483649, 9007199254740991, -9007199254740991, 32768, 35184372088832]",
      ],
      [
        [2n ** 80n, -(2n ** 80n), 5n, -(2n ** 31n)],
        "[1208925819614629174706176, -1208925819614629174706176, 5, -2147483648]",
      ],
      [
        // 64-bit bigints take a fast path (two u32 halves): its edges, and just past it.
        [
          2n ** 31n,
          2n ** 45n + 1n,
          2n ** 60n + 12345n,
          1_700_000_000_000_000_123n,
          2n ** 64n - 1n,
          -(2n ** 64n) + 1n,
          32768n ** 3n,
          2n ** 64n,
        ],
        "[2147483648, 35184372088833, 1152921504606859321, 1700000000000000123, 18446744073709551615, -18446744073709551615, 35184372088832, 18446744073709551616]",
      ],
      [
        ["x".repeat(31) + "é", "a".repeat(32), "a".repeat(33)],
        "['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxé', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']",
      ],
      [[-0, 0.5, NaN, -Infinity, 2 ** 60], "[-0.0, 0.5, nan, -inf, 1.152921504606847e+18]"],
      [["", "é✓😀", "\u0000"], "['', 'é✓😀', '\\x00']"],
      [
        [new Uint8Array([0, 255]), Buffer.from(""), undefined, null, true, false],
        "[b'\\x00\\xff', b'', None, None, True, False]",
      ],
      [{ a: [1, { b: [] }], "": {} }, "{'a': [1, {'b': []}], '': {}}"],
      [
        new Map<unknown, unknown>([
          [[1, [2]], "tuple key"],
          [new Set([3]), "frozenset key"],
          [date, "date key"],
        ]),
        `{(1, (2,)): 'tuple key', frozenset({3}): 'frozenset key', ${pyDate}: 'date key'}`,
      ],
      [new Set([[1, 2]]), "{(1, 2)}"],
      [[date, { when: date }, new Set([date])], `[${pyDate}, {'when': ${pyDate}}, {${pyDate}}]`],
    ];
    for (const found of await sharedPythons()) {
      const p = await Python.start({ python: found.path, path: [FIXTURES] });
      try {
        for (const [value, expected] of cases) {
          assert.equal(
            await p.call(`${M}:python_repr`, [value]),
            `(${expected},) []`,
            `${found.probe.version}: ${expected}`,
          );
        }
        assert.equal(
          await p.call(`${M}:python_repr`, [], { x: 1, y: "z" }),
          "() [('x', 1), ('y', 'z')]",
          `${found.probe.version}: kwargs`,
        );
        const big = new Uint8Array(ARENA_MIN + 1).fill(5);
        const [arena, inline] = await p.call<[Uint8Array, Uint8Array]>(`${M}:identity`, [
          [big, new Uint8Array(3)],
        ]);
        assert.ok(
          Buffer.from(arena).equals(Buffer.from(big)) && inline.length === 3,
          `${found.probe.version}: bytes through the arena`,
        );
      } finally {
        await p.close();
      }
    }
  });

  test("a call whose arguments Python cannot build is rejected with its error; the worker lives on and frees its arena space", async (t) => {
    if (!ready(t)) return;
    const pid = await py!.call(`${M}:pid`);
    const unhashable = new Map([[{ a: 1 }, "a dict as a dict key"]]);
    await assert.rejects(
      py!.call(`${M}:identity`, [unhashable]),
      (e: PythonError) => e.pythonType === "TypeError" && /unhashable type: 'dict'/.test(e.message),
    );
    const MiB = 1 << 20;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        py!.call(`${M}:identity`, [[new Uint8Array(MiB), unhashable]]),
        (e: PythonError) => e.pythonType === "TypeError",
      );
      assert.equal(
        (await py!.call<Uint8Array>(`${M}:identity`, [new Uint8Array(MiB).fill(i)]))[0],
        i,
      );
    }
    const [toPython] = await py!.call<number[]>(`${M}:arena_sizes`);
    assert.ok(
      toPython <= 2 * MiB,
      `the arena file does not grow with values that were never read: ${toPython} bytes`,
    );
    assert.equal(await py!.call(`${M}:pid`), pid, "the same worker");
  });

  test("random nested values round-trip through Python unchanged (seeded)", async (t) => {
    if (!ready(t)) return;
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const leaf = (): unknown =>
      pick([
        () => null,
        () => rand() < 0.5,
        () =>
          pick([
            0,
            1,
            -1,
            2 ** 31 - 1,
            2 ** 31,
            -(2 ** 31),
            -(2 ** 31) - 1,
            2 ** 53 - 1,
            -(2 ** 53 - 1),
            Math.floor(rand() * 2 ** 40) - 2 ** 39,
          ]),
        () => pick([0.5, -1.25, 1e300, -1e-300, Infinity, -Infinity, rand() * 1e6]),
        () =>
          pick([
            2n ** 64n,
            -(2n ** 63n) - 1n,
            2n ** 200n + 7n,
            (rand() < 0.5 ? -1n : 1n) *
              (BigInt(Math.floor(rand() * 2 ** 50)) * 2n ** 70n +
                BigInt(Math.floor(rand() * 2 ** 50))),
          ]),
        () => pick(["", "plain", "é✓😀", "a\u0000b", "x".repeat(70_000)]),
        () => new Uint8Array(Math.floor(rand() * 40)).map(() => Math.floor(rand() * 256)),
        () => new Date(Math.floor(rand() * 2e12)),
      ])();
    const value = (depth: number): unknown => {
      if (depth > 3 || rand() < 0.4) return leaf();
      const n = Math.floor(rand() * 5);
      return pick([
        () => Array.from({ length: n }, () => value(depth + 1)),
        () => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value(depth + 1)])),
        // not empty and not only str keys: such a dict comes back as a plain object, by design
        () =>
          new Map<unknown, unknown>(
            Array.from({ length: n + 1 }, (_, i): [unknown, unknown] => [
              pick<unknown>([i, -i - 0.5, [i, "t"]]),
              value(depth + 1),
            ]),
          ),
        () => new Set(Array.from({ length: n }, (_, i) => pick<unknown>([i, `s${i}`, [i]]))),
      ])();
    };
    const values = Array.from({ length: 300 }, () => value(0));
    const back = await Promise.all(values.map((v) => py!.call(`${M}:identity`, [v])));
    values.forEach((v, i) => assert.deepEqual(back[i], v, `value ${i}`));
  });

  test("an object's keys are written once per frame and arrive as one shared str each", async (t) => {
    if (!ready(t)) return;
    const long = "k".repeat(40);
    const rows = Array.from({ length: 50 }, (_, i) => ({
      host: `h${i}`,
      value: i,
      "é✓": i,
      [long]: i,
      host2: { host: i },
    }));
    assert.deepEqual(await py!.call(`${M}:identity`, [rows]), rows);
    // ASCII keys up to 32 characters are shared; others are written in full each time.
    assert.deepEqual(await py!.call(`${M}:shared_keys`, [rows]), [true, true, false, false, true]);
    // Past 4096 distinct keys in one frame, keys are written in full: still right.
    const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`c${i}`, i]));
    assert.deepEqual(await py!.call(`${M}:identity`, [[wide, wide, { c4999: "last", c0: 0 }]]), [
      wide,
      wide,
      { c4999: "last", c0: 0 },
    ]);
  });

  test("unsupported types fail loudly on both sides, naming the type", async (t) => {
    if (!ready(t)) return;
    await assert.rejects(
      py!.call(`${M}:unsendable`),
      (e: PythonError) =>
        e.pythonType === "TypeError" && /cannot send a object to JavaScript/.test(e.message),
    );
    await assert.rejects(py!.call(`${M}:identity`, [() => 1]), /cannot send a function to Python/);
    await assert.rejects(
      py!.call(`${M}:identity`, [new (class Point {})()]),
      /cannot send a Point to Python/,
    );
    assert.equal(await py!.call(`${M}:identity`, [1]), 1, "the worker is fine afterwards");
  });

  test("a value that cannot be sent leaves no trace in the calls sent beside it in the same tick", async (t) => {
    if (!ready(t)) return;
    const big = new Uint8Array(100_000).fill(7); // large bytes travel as parts of their own
    const before = py!.call<Uint8Array>(`${M}:identity`, [big]);
    const bad = py!.call(`${M}:identity`, [[big, "x".repeat(30_000), () => 1]]); // fails after parts were split off
    const after = py!.call<[number, Uint8Array]>(`${M}:identity`, [[1, big.subarray(0, 20_000)]]);
    await assert.rejects(bad, /cannot send a function to Python/);
    assert.deepEqual(await before, big);
    const [one, bytes] = await after;
    assert.equal(one, 1);
    assert.deepEqual(bytes, big.subarray(0, 20_000));
  });
});

describe("host: errors and isolation", () => {
  test("PythonError carries type, message, traceback, frames, the cause chain and the JS call site", async (t) => {
    if (!ready(t)) return;
    async function loadSettings() {
      return await py!.call(`${M}:chained`);
    }
    let err: PythonError | undefined;
    try {
      await loadSettings();
    } catch (e) {
      err = e as PythonError;
    }
    assert.ok(err, "should reject");
    assert.ok(err instanceof PythonError && err instanceof Error);
    assert.equal(err.pythonType, "ValueError");
    assert.equal(err.message, "ValueError: could not load config");
    assert.match(
      err.traceback,
      /Traceback \(most recent call last\):[\s\S]*hostmod\.py", line \d+, in chained/,
    );
    assert.doesNotMatch(err.traceback, /host_worker\.py/, "the worker's own frames are not shown");
    assert.deepEqual(
      err.frames.map((f) => f.name),
      ["chained"],
    );
    assert.ok(err.frames[0].file.endsWith("hostmod.py") && typeof err.frames[0].line === "number");
    const cause = err.cause as PythonError;
    assert.ok(cause instanceof PythonError);
    assert.equal(cause.pythonType, "KeyError");
    assert.match(
      err.stack!,
      /Python traceback:\n {4}Traceback[\s\S]*in chained[\s\S]*\n {4}at async loadSettings \(.*host\.test\.js:\d+/,
      "the Python traceback, then the JS call site",
    );
    await assert.rejects(
      py!.call("no_such_module_xyz:f"),
      (e: PythonError) => e.pythonType === "ModuleNotFoundError",
    );
    await assert.rejects(
      py!.call("bad target"),
      (e: PythonError) =>
        e.pythonType === "ValueError" && /package\.module:attr\.path/.test(e.message),
    );
  });

  test("print() and raw fd 1/2 writes go to onOutput, never into the protocol", async (t) => {
    if (!ready(t)) return;
    output.length = 0;
    assert.equal(await py!.call(`${M}:noisy`, [21]), 42);
    await new Promise((r) => setTimeout(r, 100));
    const text = (s: string) =>
      output
        .filter((o) => o.stream === s)
        .map((o) => o.text)
        .join("");
    assert.match(text("stdout"), /printed to stdout 21\nraw fd 1 write\n/);
    assert.match(text("stderr"), /raw fd 2 write/);
  });
});

describe("host: Python calls the host's functions", () => {
  test("values both ways, kwargs, async functions, errors as HostError, unknown names", async (t) => {
    if (!interpreter) return t.skip("no CPython with a shared libpython found");
    const seen: unknown[] = [];
    const p = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      workers: 2,
      hostFunctions: {
        echo: (...args: unknown[]) => (seen.push(args), args),
        later: async (ms: number, value: unknown) => {
          await new Promise((r) => setTimeout(r, ms));
          return value;
        },
        fails: () => {
          throw new TypeError("not today");
        },
        rejects: async () => Promise.reject(new RangeError("too far")),
        unsendable: () => () => 1,
        nothing: () => undefined,
      },
    });
    try {
      const big = 2n ** 80n;
      const date = new Date("2024-05-06T07:08:09.010Z");
      const bytes = new Uint8Array([0, 1, 254, 255]);
      const map = new Map<unknown, unknown>([[[1, 2], "tuple key"]]);
      assert.deepEqual(await p.call(`${M}:ask_host`, ["echo", 1, big, "é", bytes, date, map]), [
        1,
        big,
        "é",
        bytes,
        date,
        map,
      ]);
      assert.deepEqual(await p.call(`${M}:ask_host`, ["echo", 1], { flag: true, n: 2 }), [
        1,
        { flag: true, n: 2 },
      ]);
      assert.deepEqual(seen[1], [1, { flag: true, n: 2 }], "kwargs arrive as one last object");
      assert.equal(await p.call(`${M}:ask_host_attr`, ["later", 30, "waited"]), "waited");
      assert.equal(await p.call(`${M}:ask_host_async`, ["later", 5, 7]), 7);
      assert.equal(await p.call(`${M}:ask_host`, ["nothing"]), null);
      assert.deepEqual(await p.call(`${M}:ask_host_catching`, ["fails"]), [
        "TypeError",
        "not today",
        true,
      ]);
      assert.deepEqual(await p.call(`${M}:ask_host_catching`, ["rejects"]), [
        "RangeError",
        "too far",
        true,
      ]);
      const unsendable = (await p.call(`${M}:ask_host_catching`, ["unsendable"])) as string[];
      assert.equal(unsendable[0], "TypeError");
      await assert.rejects(p.call(`${M}:ask_host`, ["nope"]), (err: PythonError) => {
        assert.equal(err.pythonType, "pyport_host.HostError");
        assert.match(
          err.pythonMessage,
          /LookupError: no host function "nope" \(registered: echo, later/,
        );
        assert.match(err.traceback, /ask_host/);
        return true;
      });
      // Calls that arrive while a worker waits for the host run after the answer, in order.
      const pid = await p.call<number>(`${M}:pid`);
      const results = await Promise.all([
        p.call(`${M}:ask_host`, ["later", 50, "first"]),
        ...Array.from({ length: 20 }, (_, i) => p.call(`${M}:identity`, [i])),
      ]);
      assert.deepEqual(results, ["first", ...Array.from({ length: 20 }, (_, i) => i)]);
      assert.ok(p.pids.includes(pid), "no worker was replaced");
    } finally {
      await p.close();
    }
  });
});

describe("host: crashes, deadlines, aborts", () => {
  // Hangs fail through the test's own timeout; the latency itself is measured in bench/host-calls.
  test(
    "a worker that dies rejects its calls with WorkerCrashedError, and is replaced",
    { timeout: 60_000 },
    async (t) => {
      if (!ready(t)) return;
      for (const how of ["exit", "segv", "kill"]) {
        const before = py!.pids[0];
        const inflight = [py!.call(`${M}:crash`, [how]), py!.call(`${M}:identity`, [1])];
        const results = await Promise.allSettled(inflight);
        for (const r of results)
          assert.ok(r.status === "rejected" && r.reason instanceof WorkerCrashedError, how);
        const err = (results[0] as PromiseRejectedResult).reason as WorkerCrashedError;
        if (how === "exit") assert.deepEqual([err.exitCode, err.signal], [3, null]);
        if (how === "segv") assert.equal(err.signal, "SIGSEGV");
        if (how === "kill") assert.equal(err.signal, "SIGKILL");
        assert.match(err.stderrTail, new RegExp(`about to crash: ${how}`));
        assert.equal(await py!.call(`${M}:identity`, ["again"]), "again", "later calls succeed");
        assert.notEqual(py!.pids[0], before, "on a new worker");
      }
    },
  );

  test("a worker killed from outside mid-call: the call is rejected, not left hanging", async (t) => {
    if (!ready(t)) return;
    // The latency itself (target: under 100 ms) is measured by bench/host-calls.
    const pid = await py!.call<number>(`${M}:pid`);
    const call = py!.call(`${M}:sleep`, [30]);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid, "SIGKILL");
    await assert.rejects(
      call,
      (e: WorkerCrashedError) => e instanceof WorkerCrashedError && e.signal === "SIGKILL",
    );
  });

  test(
    "a deadline interrupts the call (KeyboardInterrupt) and the worker lives on",
    { timeout: 20_000 },
    async (t) => {
      if (!ready(t)) return;
      const pid = await py!.call(`${M}:pid`);
      await assert.rejects(
        py!.call(`${M}:sleep`, [30], {}, { timeoutMs: 300 }),
        (e: CallTimeoutError) => e instanceof CallTimeoutError && e.timeoutMs === 300,
      );
      assert.equal(await py!.call(`${M}:identity`, [5]), 5);
      assert.equal(await py!.call(`${M}:pid`), pid, "interrupted, not killed");
      for (const timeoutMs of [-1, NaN]) {
        await assert.rejects(
          py!.call(`${M}:identity`, [1], {}, { timeoutMs }),
          /timeoutMs must be a number of milliseconds, 0 or more/,
        );
        await assert.rejects(async () => {
          for await (const x of py!.stream(`${M}:agen`, [1], {}, { timeoutMs })) void x;
        }, /timeoutMs must be/);
      }
    },
  );

  test("a call that ignores the interrupt is killed after the grace period; its worker is replaced", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      graceMs: 300,
      onOutput: () => undefined,
    });
    try {
      const pid = await p.call(`${M}:pid`);
      await assert.rejects(p.call(`${M}:stubborn`, [30], {}, { timeoutMs: 200 }), CallTimeoutError);
      await new Promise((r) => setTimeout(r, 700));
      assert.notEqual(await p.call(`${M}:pid`), pid);
    } finally {
      await p.close();
    }
  });

  test("an AbortSignal interrupts the call with AbortError", async (t) => {
    if (!ready(t)) return;
    const ac = new AbortController();
    const call = py!.call(`${M}:sleep`, [30], {}, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("user cancelled")), 200);
    await assert.rejects(
      call,
      (e: AbortError) => e instanceof AbortError && (e.cause as Error).message === "user cancelled",
    );
    await assert.rejects(
      py!.call(`${M}:identity`, [1], {}, { signal: AbortSignal.abort() }),
      AbortError,
    );
    assert.equal(await py!.call(`${M}:identity`, [2]), 2);
  });

  test("coroutine functions are awaited in the worker", async (t) => {
    if (!ready(t)) return;
    assert.equal(await py!.call(`${M}:coro`, [41]), 42);
    await assert.rejects(
      py!.call(`${M}:coro`, [1], { delay: 30 }, { timeoutMs: 200 }),
      CallTimeoutError,
    );
    assert.equal(
      await py!.call(`${M}:coro`, [1]),
      2,
      "the event loop survives an interrupted coroutine",
    );
  });

  test("replyEach: calls sent ahead count their deadline from their start, and a crash fails only the running one as started", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      replyEach: true,
      graceMs: 200,
      onOutput: () => undefined,
    });
    try {
      const pid = await p.call(`${M}:pid`);
      // Behind a 600 ms call, a 300 ms deadline has not started: the queued call succeeds.
      const [slow, quick] = await Promise.all([
        p.call(`${M}:sleep`, [0.6]),
        p.call(`${M}:identity`, ["after"], {}, { timeoutMs: 300 }),
      ]);
      assert.deepEqual([slow, quick], ["slept", "after"]);
      // Aborting a queued call does not start its grace period: the running call is not killed.
      const ac = new AbortController();
      const running = p.call(`${M}:sleep`, [0.6]);
      const queued = p.call(`${M}:identity`, [1], {}, { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(queued, AbortError);
      assert.equal(
        await running,
        "slept",
        "the running call finished; grace (200 ms) did not kill it",
      );
      assert.equal(await p.call(`${M}:pid`), pid, "same worker");
      // A crash: the running call failed (started), the two sent after it never started.
      const results = await Promise.allSettled([
        p.call(`${M}:identity`, ["done before"]),
        p.call(`${M}:crash`, ["exit"]),
        p.call(`${M}:identity`, [2]),
        p.call(`${M}:identity`, [3]),
      ]);
      assert.deepEqual(results[0], { status: "fulfilled", value: "done before" });
      const started = results
        .slice(1)
        .map((r) =>
          r.status === "rejected" && r.reason instanceof WorkerCrashedError ? r.reason.started : r,
        );
      assert.deepEqual(started, [true, false, false]);
      assert.match(
        ((results[2] as PromiseRejectedResult).reason as Error).message,
        /before this call started/,
      );
    } finally {
      await p.close();
    }
  });

  test("without replyEach a crash fails every call in flight as started", async (t) => {
    if (!ready(t)) return;
    const results = await Promise.allSettled([
      py!.call(`${M}:crash`, ["exit"]),
      py!.call(`${M}:identity`, [2]),
    ]);
    for (const r of results)
      assert.ok(r.status === "rejected" && (r.reason as WorkerCrashedError).started === true);
  });

  test("memoryLimitMb turns a runaway allocation into MemoryError", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({ python: interpreter, path: [FIXTURES], memoryLimitMb: 300 });
    try {
      assert.equal(await p.call(`${M}:allocate`, [10]), 10 << 20);
      await assert.rejects(
        p.call(`${M}:allocate`, [1000]),
        (e: PythonError) => e.pythonType === "MemoryError",
      );
    } finally {
      await p.close();
    }
  });
});

describe("host: pool, options, shutdown", () => {
  test("workers: N run calls side by side; one worker's crash leaves the others' calls alone", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({
      python: interpreter,
      workers: 3,
      path: [FIXTURES],
      onOutput: () => undefined,
    });
    try {
      assert.equal(new Set(p.pids).size, 3);
      const windows = await Promise.all(
        [0, 1, 2].map(() => p.call<[number, number, number]>(`${M}:timed_sleep`, [0.5])),
      );
      assert.equal(new Set(windows.map((w) => w[0])).size, 3, "one call per worker");
      assert.ok(
        Math.max(...windows.map((w) => w[1])) < Math.min(...windows.map((w) => w[2])),
        "the three calls overlapped in time",
      );
      const slow = [p.call(`${M}:sleep`, [0.8]), p.call(`${M}:sleep`, [0.8])];
      const crash = p.call(`${M}:crash`, ["exit"]);
      await assert.rejects(crash, WorkerCrashedError);
      assert.deepEqual(
        await Promise.all(slow),
        ["slept", "slept"],
        "the other workers' calls complete",
      );
    } finally {
      await p.close();
    }
  });

  test("preload, cwd and env reach the worker; a failing preload rejects start with its PythonError", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const cwd = tmpDir("host-cwd");
    const p = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      preload: [M],
      cwd,
      env: { ...process.env, HOST_TEST_VAR: "v1" },
    });
    try {
      assert.deepEqual(await p.call(`${M}:cwd_and_env`, ["HOST_TEST_VAR"]), [
        fs.realpathSync(cwd),
        "v1",
      ]);
    } finally {
      await p.close();
    }
    await assert.rejects(
      Python.start({ python: interpreter, preload: ["no_such_module_xyz"] }),
      (e: PythonError) => e.pythonType === "ModuleNotFoundError",
    );
  });

  test("the interpreter: a runtime dir, a path, or a managed runtime; never a PATH lookup", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    await assert.rejects(
      Python.start({ python: "python3" }),
      /not a path; pyport does not search PATH/,
    );
    await assert.rejects(Python.start({ python: "/nonexistent/python3" }), /does not exist/);
    await assert.rejects(Python.start({ python: tmpDir("host-empty") }), /without bin\/python3/);
    const managed = await Python.start({ path: [FIXTURES] });
    try {
      assert.match(
        managed.executable,
        /runtimes-v1\/[0-9a-f]{32}\/bin\/python3$/,
        "a runtime in pyport's cache",
      );
      assert.equal(await managed.call(`${M}:identity`, ["ok"]), "ok");
      const runtimeDir = path.dirname(path.dirname(managed.executable));
      const fromDir = await Python.start({ python: runtimeDir, path: [FIXTURES] });
      assert.equal(await fromDir.call("sys:getrecursionlimit"), 1000);
      await fromDir.close();
    } finally {
      await managed.close();
    }
  });

  test("both ways of starting workers (posix_spawn through the addon, and Node's spawn) behave alike", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const dir = tmpDir("host-spawn");
    const notExecutable = path.join(dir, "python3");
    fs.writeFileSync(notExecutable, "", { mode: 0o644 });
    const quits = path.join(dir, "quits");
    fs.writeFileSync(quits, "#!/bin/sh\necho 'no Python here' >&2\nexit 3\n", { mode: 0o755 });
    const index = path.resolve(
      path.dirname(new URL(import.meta.url).pathname),
      "../src/host/index.js",
    );
    const script = `import { Python } from ${JSON.stringify(index)};
const out = {};
const py = await Python.start({ python: ${JSON.stringify(interpreter)}, path: [${JSON.stringify(FIXTURES)}], cwd: ${JSON.stringify(dir)}, onOutput: () => undefined });
out.pid = py.pids[0];
out.cwd = await py.call("os:getcwd");
out.exit = await py.call("hostmod:crash", ["exit"]).catch((e) => [e.name, e.exitCode, e.signal, e.stderrTail.includes("about to crash")]);
const pid = await py.call("os:getpid");
const sleeping = py.call("time:sleep", [30]);
process.kill(pid, "SIGKILL");
out.kill = await sleeping.catch((e) => [e.name, e.exitCode, e.signal]);
out.pids = [out.pid, pid];
await py.close();
out.notExecutable = await Python.start({ python: ${JSON.stringify(notExecutable)} }).then(() => "started", (e) => e.message);
const q = await Python.start({ python: ${JSON.stringify(quits)}, onOutput: () => undefined });
out.quits = await q.call("os:getpid").catch((e) => [e.name, e.message]);
await q.close();
process.stdout.write(JSON.stringify(out));`;
    const modes = [["node", { ...process.env, PYPORT_HOST_SPAWN: "node" }]] as [
      string,
      NodeJS.ProcessEnv,
    ][];
    if (hostAddon()) modes.push(["posix_spawn", { ...process.env, PYPORT_HOST_SPAWN: "" }]);
    else await skipPart(t, "host addon not built: posix_spawn not tested, only Node's spawn");
    for (const [mode, env] of modes) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        encoding: "utf8",
        env,
        timeout: 30_000,
      });
      assert.equal(r.status, 0, `${mode}: ${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.equal(out.cwd, fs.realpathSync(dir), `${mode}: cwd`);
      assert.deepEqual(out.exit, ["WorkerCrashedError", 3, null, true], `${mode}: os._exit(3)`);
      assert.deepEqual(out.kill, ["WorkerCrashedError", null, "SIGKILL"], `${mode}: SIGKILL`);
      for (const pid of out.pids)
        assert.throws(() => process.kill(pid, 0), /ESRCH/, `${mode}: worker ${pid} was reaped`);
      assert.match(
        out.notExecutable,
        /could not start .*python3: .*(EACCES|permission denied)/i,
        `${mode}: a file that is not executable`,
      );
      assert.equal(out.quits[0], "WorkerCrashedError", mode);
      assert.match(
        out.quits[1],
        /exited with code 3 before it was ready; stderr ends with:\nno Python here/,
        `${mode}: an interpreter that quits at once`,
      );
    }
  });

  test("close({ timeoutMs }) does not wait forever for a call that never returns", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({ python: interpreter, path: [FIXTURES] });
    const [pid] = p.pids;
    const stuck = p.call(`${M}:sleep`, [3600]);
    const outcome = stuck.then(
      () => "resolved",
      (err: Error) => err,
    );
    await assert.rejects(p.close({ timeoutMs: -1 }), { code: "E_USAGE" });
    await p.close({ timeoutMs: 200 });
    const err = await outcome;
    assert.ok(err instanceof WorkerCrashedError, String(err));
    assert.match(err.message, /was stopped by close\(\) after 200 ms with calls still running/);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, "the worker is gone");
  });

  test("after close() the Node process exits on its own: no handles, no zombies", (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const index = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../src/index.js");
    const script = `import { Python } from ${JSON.stringify(index)};
const py = await Python.start({ python: ${JSON.stringify(interpreter)}, workers: 2 });
const pids = py.pids;
const slow = py.call("time:sleep", [0.3]);
await py.close();
await slow;
process.stdout.write(JSON.stringify(pids));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr);
    for (const pid of JSON.parse(r.stdout) as number[])
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
  });
});

describe("host: streams and async concurrency", () => {
  test("stream() iterates generators and async generators", async (t) => {
    if (!ready(t)) return;
    const got: unknown[] = [];
    for await (const x of py!.stream(`${M}:gen`, [5])) got.push(x);
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    const agot: unknown[] = [];
    for await (const x of py!.stream(`${M}:agen`, [3])) agot.push(x);
    assert.deepEqual(agot, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    const list: unknown[] = [];
    for await (const x of py!.stream("builtins:range", [3])) list.push(x);
    assert.deepEqual(list, [0, 1, 2], "any iterable");
  });

  test("backpressure: Python runs at most highWaterMark items ahead; leaving early closes the generator", async (t) => {
    if (!ready(t)) return;
    for (const target of ["gen", "agen"]) {
      await py!.call(`${M}:reset`);
      let seen = 0;
      for await (const x of py!.stream(`${M}:${target}`, [1000], {}, { highWaterMark: 4 })) {
        void x;
        if (++seen === 3) {
          await new Promise((r) => setTimeout(r, 300)); // a slow consumer
          const mid = await py!.call<{ produced: number }>(`${M}:produced`);
          assert.ok(
            mid.produced <= 3 + 4,
            `${target}: produced ${mid.produced} while the consumer held 3`,
          );
        }
        if (seen === 10) break;
      }
      await new Promise((r) => setTimeout(r, 100));
      const after = await py!.call<{ produced: number; closed: string[] }>(`${M}:produced`);
      assert.ok(after.produced <= 10 + 4, `${target}: ${after.produced}`);
      assert.deepEqual(after.closed, [target], `${target}: its finally ran`);
    }
  });

  test("an exception inside the generator ends the stream with PythonError after the items before it", async (t) => {
    if (!ready(t)) return;
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const x of py!.stream(`${M}:gen`, [10], { fail_at: 3 })) got.push(x);
      })(),
      (e: PythonError) => e.pythonType === "RuntimeError" && /failed at 3/.test(e.message),
    );
    assert.deepEqual(got, [0, 1, 2]);
    await assert.rejects(
      (async () => {
        for await (const x of py!.stream(`${M}:identity`, [5])) void x;
      })(),
      (e: PythonError) => e.pythonType === "TypeError" && /not an iterator/.test(e.message),
    );
    await assert.rejects(
      (async () => {
        for await (const x of py!.stream(`${M}:agen`, [100], { delay: 0.1 }, { timeoutMs: 300 }))
          void x;
      })(),
      CallTimeoutError,
    );
    assert.equal(await py!.call(`${M}:identity`, [3]), 3);
  });

  test("concurrency: N coroutine calls run at once in one worker", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({ python: interpreter, path: [FIXTURES], concurrency: 4 });
    try {
      assert.deepEqual(
        await Promise.all([1, 2, 3, 4].map((i) => p.call(`${M}:coro`, [i], { delay: 0.01 }))),
        [2, 3, 4, 5],
      );
      const windows = await Promise.all(
        [0, 1, 2, 3].map(() => p.call<[number, number, number]>(`${M}:timed_coro`, [0.3])),
      );
      assert.equal(new Set(windows.map((w) => w[0])).size, 1, "all in one worker");
      assert.ok(
        Math.max(...windows.map((w) => w[1])) < Math.min(...windows.map((w) => w[2])),
        "the four coroutines overlapped in time",
      );
      const serial = await Python.start({ python: interpreter, path: [FIXTURES] });
      try {
        const w2 = await Promise.all(
          [0, 1].map(() => serial.call<[number, number, number]>(`${M}:timed_coro`, [0.2])),
        );
        assert.ok(
          w2[1][1] >= w2[0][2] - 0.005,
          "with the default concurrency of 1 they run one after the other",
        );
      } finally {
        await serial.close();
      }
    } finally {
      await p.close();
    }
  });
});

describe("host: polling for quick replies", () => {
  test("the native poll reads what is there, times out on nothing, sees the end of stream, rejects bad arguments", async (t) => {
    const pollRead = hostAddon()?.pollRead;
    if (!pollRead) {
      return t.skip(
        "host addon not built (npm run build needs a C compiler): replies are only awaited in the event loop",
      );
    }
    // The shell closes its stdout after cat but stays alive: once a child exits, Node resumes and
    // drains its stdout itself, which would race the poll below for the end of stream.
    const cat = spawn("sh", ["-c", "cat; exec >&-; exec sleep 60"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    const fd = (cat.stdout as unknown as { _handle: { fd: number } })._handle.fd;
    const buf = Buffer.alloc(16);
    assert.equal(pollRead(fd, buf, 0, 2000), -1, "nothing to read within the budget");
    cat.stdin.write("abc");
    let n = -1;
    for (let i = 0; i < 100 && n === -1; i++) n = pollRead(fd, buf, 4, 50_000);
    assert.equal(n, 3);
    assert.equal(buf.toString("latin1", 4, 7), "abc", "read at the offset");
    cat.stdin.end();
    await once(cat.stdin, "finish");
    // -1 also when a yield shows the CPU is shared, so keep polling, as for the data above.
    n = -1;
    for (let i = 0; i < 100 && n === -1; i++) n = pollRead(fd, buf, 0, 50_000);
    assert.equal(n, 0, "end of stream");
    assert.throws(() => pollRead(fd, buf, 16, 10), TypeError, "offset past the buffer");
    assert.throws(() => pollRead(fd, buf, 0, -1), TypeError, "negative budget");
    cat.stdout.destroy();
    cat.kill();
    await once(cat, "exit");
  });

  test("the addon's stat and memfd agree with Node's fs", (t) => {
    const native = hostAddon();
    if (!native) {
      t.skip("host addon not built: fs.statSync and named arena files are used");
      return t.skip("host addon not built");
    }
    const dir = tmpDir("host-stat");
    const file = path.join(dir, "f");
    fs.writeFileSync(file, "12345");
    for (const p of [file, dir]) {
      const st = fs.statSync(p);
      assert.deepEqual(
        statPath(p),
        {
          isDirectory: st.isDirectory(),
          dev: st.dev,
          ino: st.ino,
          size: st.size,
          mtimeMs: Math.trunc(st.mtimeMs),
        },
        p,
      );
    }
    assert.equal(statPath(path.join(dir, "missing")), null);
    assert.equal(statPath(path.join(file, "below-a-file")), null, "ENOTDIR is 'no such file' too");
    const [a, b] = native.memfdPair();
    fs.writeSync(a, Buffer.from("arena"), 0, 5, 0);
    assert.equal(fs.fstatSync(a).size, 5);
    assert.match(
      fs.readlinkSync(`/proc/self/fd/${b}`),
      /^\/memfd:pyport-arena/,
      "an anonymous memory file, named nowhere",
    );
    fs.closeSync(a);
    fs.closeSync(b);
  });

  test("back-to-back calls mixing quick and slow replies, alone and beside another worker's calls, all come back right", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({
      python: interpreter,
      workers: 2,
      path: [FIXTURES],
      spinUs: 5000,
      onOutput: () => undefined,
    });
    try {
      for (let i = 0; i < 60; i++) {
        // quick (echo), slower than the polling budget (sleep 10 ms), and a stream in between
        assert.deepEqual(await p.call(`${M}:echo`, [i]), { args: [i], kwargs: {} });
        if (i % 10 === 0) assert.equal(await p.call(`${M}:sleep`, [0.01]), "slept");
        if (i % 20 === 0) {
          const items: unknown[] = [];
          for await (const v of p.stream(`${M}:gen`, [3])) items.push(v);
          assert.equal(items.length, 3);
        }
      }
      // calls on both workers at once (no polling then: it would hold up the other worker's replies)
      const both = await Promise.all([
        p.call(`${M}:sleep`, [0.05]),
        ...Array.from({ length: 20 }, (_, i) => p.call(`${M}:echo`, [i])),
      ]);
      assert.equal(both[0], "slept");
      assert.deepEqual(both[20], { args: [19], kwargs: {} });
    } finally {
      await p.close();
    }
  });
});

describe("host: the table of calls in flight", () => {
  test("finds every call in flight, including slow ones overtaken by more calls than its ring holds", () => {
    const table = new CallTable<string>();
    table.set(1, "slow");
    // Calls answered out of order: those with ids divisible by 3 stay in flight.
    for (let id = 2; id <= 200_000; id++) {
      table.set(id, `call ${id}`);
      if (id > 10 && id % 3) assert.ok(table.delete(id - 9), `call ${id - 9} answered`);
    }
    assert.equal(
      table.get(1),
      "slow",
      "a call overtaken by 200 000 others (the ring holds at most 65 536)",
    );
    assert.equal(table.get(6), "call 6", "an old one that was never answered");
    assert.equal(table.get(5), undefined, "one that was");
    assert.equal(table.get(199_999), "call 199999");
    assert.equal(table.get(200_001), undefined);
    assert.equal(table.delete(6), true);
    assert.equal(table.delete(6), false, "gone once deleted");
    const before = table.size;
    assert.ok(table.delete(1) && table.size === before - 1);
    const rest = table.takeAll();
    assert.equal(rest.length, before - 1);
    assert.equal(new Set(rest).size, rest.length, "each call once");
    assert.equal(table.size, 0);
    assert.equal(table.get(199_999), undefined);
  });
});

describe("host: replies to a burst", () => {
  test("quick calls' replies are not held back behind a call to a target that was slow or never called", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const p = await Python.start({
      python: interpreter,
      path: [FIXTURES],
      onOutput: () => undefined,
    });
    // Each reply's arrival (Date.now) against the end of the sleep in the same burst (Python's
    // time.time, the same clock): a reply held back with the sleep's would arrive after it.
    const burst = async (sleep: number) => {
      const arrived = Array.from({ length: 20 }, (_, i) =>
        p.call(`${M}:echo`, [i]).then(() => Date.now() / 1000),
      );
      const [, , end] = await p.call<[number, number, number]>(`${M}:timed_sleep`, [sleep]);
      return { arrived: await Promise.all(arrived), end };
    };
    try {
      const first = await burst(0.3); // timed_sleep never called before
      assert.ok(
        Math.max(...first.arrived) < first.end,
        "every echo reply arrived while the sleep was still running",
      );
      const again = await burst(0.2); // timed_sleep was slow last time
      assert.ok(
        Math.max(...again.arrived) < again.end,
        "again, now that timed_sleep is known to be slow",
      );
    } finally {
      await p.close();
    }
  });
});

describe("host: sys.path", () => {
  test("pyport/host resolves to the host API (the package's light entry point)", () => {
    const root = path.resolve(FIXTURES, "../../..");
    const code =
      'import { Python, PythonError, AbortError } from "pyport/host"; console.log(typeof Python, typeof PythonError, typeof AbortError);';
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(r.stdout.trim(), "function function function", r.stderr);
  });

  test("the worker's compiled code is cached per Python version; a corrupt cache file is compiled again", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const bucket = path.join(process.env.PYPORT_CACHE!, "host-v1");
    const tag = spawnSync(interpreter, ["-c", "import sys; print(sys.implementation.cache_tag)"], {
      encoding: "utf8",
    }).stdout.trim();
    const stamps = ["host_codec.py", "host_channel.py", "host_worker.py"].map((name) => {
      const st = fs.statSync(path.resolve(FIXTURES, "../../../python", name));
      return `${st.dev}-${st.ino}-${st.size}-${Math.trunc(st.mtimeMs)}`;
    });
    const file = path.join(bucket, `${PYPORT_VERSION}-${stamps.join("-")}-${tag}.bin`);
    assert.ok(
      fs.existsSync(file),
      `the first start cached the worker's code, under a name for this version of its sources: ${fs.readdirSync(bucket).join(", ")}`,
    );
    fs.writeFileSync(file, "not marshal data");
    const p = await Python.start({ python: interpreter, path: [FIXTURES], spinUs: 0 });
    try {
      assert.equal(await p.call(`${M}:identity`, [7]), 7);
    } finally {
      await p.close();
    }
    assert.notEqual(
      fs.readFileSync(file, "utf8"),
      "not marshal data",
      "rewritten after the corrupt read",
    );
    await assert.rejects(
      Python.start({ python: interpreter, spinUs: -1 }),
      /spinUs must be an integer from 0 to 100000/,
    );
    await assert.rejects(
      Python.start({ python: interpreter, graceMs: -1 }),
      /graceMs must be a number of milliseconds/,
    );
  });

  test("path entries come first and pyport's own helper scripts never shadow user modules (-I), on every Python", async (t) => {
    if (!interpreter) return t.skip("no interpreter");
    const { sharedPythons } = await import("./helpers.js");
    for (const found of await sharedPythons()) {
      const p = await Python.start({ python: found.path, path: [FIXTURES] });
      try {
        const sysPath = await p.call<string[]>("sys:__dict__.get", ["path"]);
        assert.equal(sysPath[0], FIXTURES, `${found.probe.version}: path entries come first`);
        assert.ok(
          !sysPath.some((d) => d && fs.existsSync(path.join(d, "host_worker.py"))),
          `${found.probe.version}: ${sysPath.join(":")}`,
        );
        assert.equal(
          await p.call("sys:modules.get", ["host_worker"]),
          null,
          `${found.probe.version}: the worker is not an importable module`,
        );
      } finally {
        await p.close();
      }
    }
  });
});
