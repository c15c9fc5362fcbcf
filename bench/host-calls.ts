/**
 * bench/host-calls: pyport's host API against other Node↔Python bridges, side by side in one run:
 * python-shell (JSON lines over stdio) and pythonia (out of process), node-calls-python (in
 * process, the reference), and the physical floor — a bare one-byte ping-pong with a Python
 * process over a pipe, interleaved in blocks with pyport's own sequential calls. Each bridge is
 * measured in a fresh Node process, in rounds that alternate the bridges; medians over rounds
 * are printed with ratios (absolute times drift with the machine's load).
 *
 * Peers live in bench/host-peers (npm install there); missing ones are reported and skipped.
 * All bridges run the same interpreter: the pyenv CPython that node-calls-python was built
 * against if found, else the newest one pyport discovers.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { openArenaFiles } from "../src/host/arena.js";
import { Python } from "../src/host/index.js"; // the light entry point: what an app that only calls Python loads
import { median } from "./util.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEERS = path.resolve(HERE, "../../bench/host-peers");
const MOD = path.join(PEERS, "bench_mod.py");
/** python-shell runs a script that speaks its JSON lines protocol itself. */
const SHELL_SCRIPT = path.join(PEERS, "pyshell_server.py");
const SEQ = 2000;
const PIPELINED = 5000;
const BIG = 8 << 20;
/** Fresh Node processes per bridge that only measure start-up to the first result (interpreter start-up alone varies by ±10 ms here). */
const STARTS = 20;
/** Child mode `node host-calls.js PEER PYTHON startup`: measure start-up only. */
const STARTUP_ONLY = process.argv[4] === "startup";

/** The physical floor: a Python process echoing one byte at a time over a pipe. */
async function pingPong(python: string) {
  const child = spawn(python, ["-I", path.join(PEERS, "pingpong.py")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const one = Buffer.of(1);
  let wake: () => void = () => undefined;
  child.stdout.on("data", () => wake());
  const ping = {
    once: () =>
      new Promise<void>((resolve) => {
        wake = resolve;
        child.stdin.write(one);
      }),
    close: async () => {
      child.stdin.end();
      await once(child, "exit");
    },
  };
  for (let i = 0; i < 200; i++) await ping.once();
  return ping;
}

/** The transport floor for the 8 MiB round trip: the raw bytes through the same kind of shared files pyport uses, no protocol. */
async function rawBigRoundTrip(python: string): Promise<{ firstMs: number; warmMs: number }> {
  const files = openArenaFiles();
  if (!files) throw new Error("no shared files could be made for the transport floor");
  const [toFile, fromFile] = files;
  const child = spawn(python, ["-I", path.join(PEERS, "bigecho.py"), String(BIG)], {
    stdio: ["ignore", "inherit", "inherit", "pipe", "pipe", toFile, fromFile],
  });
  let done: () => void = () => undefined;
  (child.stdio[4] as NodeJS.ReadableStream).on("data", () => done());
  const input = bigInput();
  const toPython = child.stdio[3] as NodeJS.WritableStream;
  const result = await timeBig(
    async () => {
      const echoed = new Promise<void>((resolve) => (done = resolve));
      fs.writeSync(toFile, input, 0, BIG, 0);
      toPython.write("x");
      await echoed;
      const out = Buffer.allocUnsafeSlow(BIG);
      fs.readSync(fromFile, out, 0, BIG, 0);
      return out;
    },
    (out) => out.length === BIG && (out as Uint8Array)[BIG - 1] === 255,
  );
  toPython.end();
  await once(child, "exit");
  files.forEach((fd) => fs.closeSync(fd));
  return result;
}

interface Figures {
  /** pyport only: the bare ping-pong and pyport's sequential calls, interleaved in blocks. */
  floorUs?: number;
  seqInterleavedUs?: number;
  /** pyport only: from SIGKILL of a busy worker to the rejection of its call. */
  crashMs?: number;
  startupMs?: number;
  seqUs?: number;
  pipelinedUs?: number;
  /** Warm: see timeBig. */
  bigMs?: number | string;
  bigFirstMs?: number;
  /** pyport only: rawBigRoundTrip, measured right after pyport's own. */
  bigFloorMs?: number;
  bigFloorFirstMs?: number;
}

const us = (t0: bigint, n: number) => Number(process.hrtime.bigint() - t0) / 1e3 / n;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Round trips of 8 MiB before the timed ones (see timeBig). */
const BIG_WARM = 10;

/**
 * The 8 MiB round trip: the first one, then the median of 10 after BIG_WARM warm-up ones. The
 * first ~8 in a process are slower for every bridge: each result is fresh memory until Node's
 * GC has freed earlier ones for the allocator to reuse, and fresh memory costs ~3.5 ms per 8 MiB
 * on this VM (page allocation and zeroing).
 */
async function timeBig(
  roundTrip: () => Promise<Uint8Array | string>,
  check: (r: Uint8Array | string) => boolean,
): Promise<{ firstMs: number; warmMs: number }> {
  const times: number[] = [];
  for (let i = 0; i < BIG_WARM + 10; i++) {
    const t = process.hrtime.bigint();
    const r = await roundTrip();
    times.push(ms(t));
    if (!check(r)) throw new Error("8 MiB round trip came back wrong");
  }
  return { firstMs: times[0], warmMs: median(times.slice(BIG_WARM)) };
}

/**
 * Runs `calls` sequentially then pipelined, the same way for every bridge. Each pattern is
 * warmed up first (V8 optimises each bridge's code path after a few thousand calls), then
 * pipelined bursts are timed in 3 rounds (median).
 */
async function rates(
  call: (i: number) => Promise<unknown>,
): Promise<{ seqUs: number; pipelinedUs: number }> {
  for (let i = 0; i < 1000; i++) await call(i);
  let t = process.hrtime.bigint();
  for (let i = 0; i < SEQ; i++) await call(i);
  const seqUs = us(t, SEQ);
  const burst = () => Promise.all(Array.from({ length: PIPELINED }, (_, i) => call(i)));
  await burst();
  const rounds: number[] = [];
  for (let r = 0; r < 3; r++) {
    t = process.hrtime.bigint();
    await burst();
    rounds.push(us(t, PIPELINED));
  }
  return { seqUs, pipelinedUs: median(rounds) };
}

const bigInput = () => new Uint8Array(BIG).map((_, i) => i & 255);

const runners: Record<string, (python: string) => Promise<Figures>> = {
  async pyport(python) {
    const t0 = process.hrtime.bigint();
    const py = await Python.start({ python, path: [PEERS] });
    await py.call("bench_mod:echo", [1]);
    const startupMs = ms(t0);
    if (STARTUP_ONLY) return { startupMs };
    const r = await rates((i) => py.call("bench_mod:echo", [i]));
    // The floor, interleaved with pyport's sequential calls in blocks, so both see the same load.
    const ping = await pingPong(python);
    const call = () => py.call("bench_mod:echo", [1]);
    let [floorNs, seqNs] = [0n, 0n];
    for (let block = 0; block < 10; block++) {
      let t = process.hrtime.bigint();
      for (let i = 0; i < SEQ / 10; i++) await ping.once();
      floorNs += process.hrtime.bigint() - t;
      t = process.hrtime.bigint();
      for (let i = 0; i < SEQ / 10; i++) await call();
      seqNs += process.hrtime.bigint() - t;
    }
    await ping.close();
    const floorUs = Number(floorNs) / 1e3 / SEQ;
    const seqInterleavedUs = Number(seqNs) / 1e3 / SEQ;
    const input = bigInput();
    const big = await timeBig(
      () => py.call<Uint8Array>("bench_mod:identity", [input]),
      (out) => out.length === BIG && (out as Uint8Array)[BIG - 1] === 255,
    );
    const bigFloor = await rawBigRoundTrip(python);
    const crashes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const pid = await py.call<number>("os:getpid");
      const call = py.call("time:sleep", [30]).catch(() => process.hrtime.bigint());
      await new Promise((res) => setTimeout(res, 50));
      const t = process.hrtime.bigint();
      process.kill(pid, "SIGKILL");
      crashes.push(Number(((await call) as bigint) - t) / 1e6);
    }
    await py.close();
    return {
      startupMs,
      ...r,
      bigMs: big.warmMs,
      bigFirstMs: big.firstMs,
      bigFloorMs: bigFloor.warmMs,
      bigFloorFirstMs: bigFloor.firstMs,
      crashMs: median(crashes),
      floorUs,
      seqInterleavedUs,
    };
  },

  async "python-shell"(python) {
    interface Shell {
      on(event: "message", fn: (m: { id: number; result: unknown }) => void): void;
      send(m: unknown): void;
      end(cb: () => void): void;
    }
    const { PythonShell } = createRequire(path.join(PEERS, "package.json"))("python-shell") as {
      PythonShell: new (script: string, opts: object) => Shell;
    };
    const t0 = process.hrtime.bigint();
    const shell = new PythonShell(SHELL_SCRIPT, {
      pythonPath: python,
      pythonOptions: ["-I", "-u"],
      mode: "json",
    });
    const waiting = new Map<number, (v: unknown) => void>();
    shell.on("message", (m: { id: number; result: unknown }) => {
      waiting.get(m.id)!(m.result);
      waiting.delete(m.id);
    });
    let next = 0;
    const call = (fn: string, arg: unknown) =>
      new Promise<unknown>((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        shell.send({ id, fn, arg });
      });
    await call("echo", 1);
    const startupMs = ms(t0);
    if (STARTUP_ONLY) return { startupMs };
    const r = await rates((i) => call("echo", i));
    const input = Buffer.from(bigInput());
    const bigMs = (
      await timeBig(
        async () =>
          Buffer.from((await call("identity", input.toString("base64"))) as string, "base64"),
        (out) => out.length === BIG,
      )
    ).warmMs;
    await new Promise<void>((res) => shell.end(res));
    return { startupMs, ...r, bigMs };
  },

  async pythonia(python) {
    process.env.PYTHON_BIN = python;
    const t0 = process.hrtime.bigint();
    const { python: py } = (await import(
      createRequire(path.join(PEERS, "package.json")).resolve("pythonia")
    )) as {
      python: ((m: string) => Promise<Record<string, (...a: unknown[]) => Promise<unknown>>>) & {
        exit(): void;
      };
    };
    const mod = await py(MOD);
    await mod.echo(1);
    const startupMs = ms(t0);
    if (STARTUP_ONLY) return { startupMs };
    const r = await rates((i) => mod.echo(i));
    let bigMs: number | string;
    try {
      const input = Buffer.from(bigInput());
      bigMs = (
        await timeBig(
          async () => (await mod.identity(input)) as Uint8Array,
          (out) => (out as Uint8Array).length === BIG,
        )
      ).warmMs;
    } catch (err) {
      bigMs = `n/a (${String(err).split("\n")[0].slice(0, 60)})`;
    }
    py.exit();
    return { startupMs, ...r, bigMs };
  },

  async "node-calls-python"() {
    const ncp = createRequire(path.join(PEERS, "package.json"))("node-calls-python") as {
      interpreter: {
        import(p: string): Promise<unknown>;
        call(m: unknown, f: string, ...a: unknown[]): Promise<unknown>;
      };
    };
    const t0 = process.hrtime.bigint();
    const py = ncp.interpreter;
    const mod = await py.import(MOD);
    await py.call(mod, "echo", 1);
    const startupMs = ms(t0);
    if (STARTUP_ONLY) return { startupMs };
    const r = await rates((i) => py.call(mod, "echo", i));
    let bigMs: number | string;
    try {
      const input = Buffer.from(bigInput());
      bigMs = (
        await timeBig(
          async () => (await py.call(mod, "identity", input)) as Uint8Array,
          (out) => (out as Uint8Array).length === BIG,
        )
      ).warmMs;
    } catch (err) {
      bigMs = `n/a (${String(err).split("\n")[0].slice(0, 60)})`;
    }
    return { startupMs, ...r, bigMs };
  },
};

/** The interpreter node-calls-python's addon links against, so every bridge runs the same one. */
async function benchPython(): Promise<string> {
  const addon = path.join(
    PEERS,
    "node_modules/node-calls-python/build/Release/nodecallspython.node",
  );
  if (fs.existsSync(addon)) {
    const lib = /libpython[\d.]+\.so[.\d]* => (\S+)/.exec(
      spawnSync("ldd", [addon], { encoding: "utf8" }).stdout,
    )?.[1];
    if (lib) {
      const exe = path.join(path.dirname(path.dirname(lib)), "bin", "python3");
      if (fs.existsSync(exe)) return exe;
    }
  }
  const { discoverPythons } = await import("../src/python/discover.js");
  const found = (await discoverPythons()).sort((a, b) => b.probe.minor - a.probe.minor)[0];
  if (!found) throw new Error("no interpreter found");
  return found.path;
}

/** pyport's start-up against each out-of-process peer's, round by round (children of one round run back to back). */
function comparePairedStarts(starts: Map<string, Figures[]>, interpreter: string): void {
  const ours = (starts.get("pyport") ?? []).map((f) => f.startupMs!);
  for (const peer of ["python-shell", "pythonia"]) {
    const theirs = (starts.get(peer) ?? []).map((f) => f.startupMs!);
    if (!ours.length || ours.length !== theirs.length) continue;
    const ahead = ours.filter((x, i) => x < theirs[i]).length;
    console.log(
      `start-up with ${interpreter}, paired with ${peer}'s in the same round: pyport ahead in ${ahead} of ${ours.length}, by a median of ${median(ours.map((x, i) => theirs[i] - x)).toFixed(1)} ms`,
    );
  }
}

/** Median time to load a module in a fresh Node process (what an app pays before its first call). */
function importMs(specifier: string, how: "import" | "require"): number {
  const load =
    how === "import"
      ? `await import(${JSON.stringify(specifier)})`
      : `createRequire(${JSON.stringify(path.join(PEERS, "package.json"))})(${JSON.stringify(specifier)})`;
  const code = `import { createRequire } from "node:module"; const t = process.hrtime.bigint(); ${load}; console.log(Number(process.hrtime.bigint() - t) / 1e6);`;
  const times = Array.from({ length: 7 }, () =>
    Number(
      spawnSync(process.execPath, ["--input-type=module", "-e", code], { encoding: "utf8" }).stdout,
    ),
  );
  return median(times);
}

function installed(peer: string): boolean {
  return peer === "pyport" || fs.existsSync(path.join(PEERS, "node_modules", peer));
}

export async function hostCallsBench(): Promise<void> {
  const python = await benchPython();
  console.log(
    `# host-calls — ${python}; ${SEQ} sequential and ${PIPELINED} pipelined echo calls, 8 MiB bytes round trip (median of 10 after ${BIG_WARM} warm-up ones); medians of 3 runs; start-up: median of ${STARTS} fresh Node processes per bridge`,
  );
  const peers = Object.keys(runners).filter((p) => {
    if (installed(p)) return true;
    console.log(`${p}: SKIPPED (not installed: run npm install in bench/host-peers)`);
    return false;
  });
  /**
   * Runs rounds of fresh child processes, alternating the order of the bridges, with a pause after
   * each: a child's processes may still be exiting, which would slow the next one down.
   */
  const measure = (rounds: number, mode: string[], interpreter = python, bridges = peers) => {
    const results = new Map<string, Figures[]>();
    for (let round = 0; round < rounds; round++) {
      for (const peer of round % 2 ? [...bridges].reverse() : bridges) {
        const r = spawnSync(
          process.execPath,
          [fileURLToPath(import.meta.url), peer, interpreter, ...mode],
          { encoding: "utf8", timeout: 600_000 },
        );
        const line = r.stdout.trim().split("\n").pop() ?? "";
        if (r.status !== 0 || !line.startsWith("{")) {
          console.log(
            `${peer}: FAILED (${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")})`,
          );
          continue;
        }
        results.set(peer, [...(results.get(peer) ?? []), JSON.parse(line) as Figures]);
        spawnSync("sleep", ["0.3"]);
      }
    }
    return results;
  };
  const results = measure(3, []);
  const starts = measure(STARTS, ["startup"]);
  // The same interpreter as a pyport runtime: no build-machine site-packages, whose .pth files run
  // on every interpreter start (here one imports certifi, pathlib and re: ~19 ms).
  const { cachedRuntime } = await import("../src/runtime/create.js");
  const runtimePython = path.join(
    (await cachedRuntime({ source: { python } })).dir,
    "bin",
    "python3",
  );
  const runtimeStarts = measure(
    STARTS,
    ["startup"],
    runtimePython,
    peers.filter((p) => p !== "node-calls-python"),
  ); // in-process: its own libpython
  const med = (peer: string, key: keyof Figures): number | string | undefined => {
    const xs = ((key === "startupMs" ? starts : results).get(peer) ?? []).map((f) => f[key]);
    if (!xs.length || xs[0] === undefined) return undefined;
    return typeof xs[0] === "string" ? xs[0] : median(xs as number[]);
  };
  const fmt = (v: number | string | undefined, unit: string) =>
    v === undefined ? "-" : typeof v === "string" ? v : `${v.toFixed(1)} ${unit}`;
  console.log(
    [
      "bridge",
      "start-up to 1st result",
      "sequential /call",
      "pipelined /call",
      "8 MiB round trip",
    ].join(" | "),
  );
  for (const peer of peers) {
    console.log(
      [
        peer,
        fmt(med(peer, "startupMs"), "ms"),
        fmt(med(peer, "seqUs"), "µs"),
        fmt(med(peer, "pipelinedUs"), "µs"),
        fmt(med(peer, "bigMs"), "ms"),
      ].join(" | "),
    );
  }
  const floor = med("pyport", "floorUs") as number | undefined;
  const seq = med("pyport", "seqInterleavedUs") as number | undefined;
  const pipe = med("pyport", "pipelinedUs") as number | undefined;
  const shellPipe = med("python-shell", "pipelinedUs") as number | undefined;
  if (floor && seq)
    console.log(
      `bare one-byte ping-pong ${floor.toFixed(1)} µs vs pyport sequential ${seq.toFixed(1)} µs, interleaved = ${(seq / floor).toFixed(2)}x the floor (target <= 1.15)`,
    );
  if (pipe && shellPipe)
    console.log(
      `pyport pipelined = ${(pipe / shellPipe).toFixed(2)}x python-shell's (target <= 0.5)`,
    );
  const big = med("pyport", "bigMs");
  const start = med("pyport", "startupMs");
  const num = (key: keyof Figures) => {
    const v = med("pyport", key);
    return typeof v === "number" ? v.toFixed(1) : "-";
  };
  if (typeof big === "number")
    console.log(
      `pyport 8 MiB round trip ${big.toFixed(1)} ms warm (target <= 10; the first one ${num("bigFirstMs")} ms) vs ${num("bigFloorMs")} ms (first ${num("bigFloorFirstMs")}) for the raw bytes through the same kind of shared files, no protocol`,
    );
  if (typeof start === "number")
    console.log(`pyport start-up to first result ${start.toFixed(1)} ms (target <= 60)`);
  comparePairedStarts(starts, "the build machine's interpreter");
  console.log(`start-up with a pyport runtime of the same Python (${runtimePython}):`);
  for (const peer of peers) {
    const xs = (runtimeStarts.get(peer) ?? []).map((f) => f.startupMs!);
    if (xs.length) console.log(`  ${peer} ${median(xs).toFixed(1)} ms`);
  }
  comparePairedStarts(runtimeStarts, "the pyport runtime");
  const host = path.resolve(HERE, "../src/host/index.js");
  const whole = path.resolve(HERE, "../src/index.js");
  const shellImport = installed("python-shell")
    ? `, python-shell ${importMs("python-shell", "require").toFixed(1)} ms`
    : "";
  console.log(
    `module load in a fresh Node process (median of 7): pyport/host ${importMs(host, "import").toFixed(1)} ms, pyport (everything) ${importMs(whole, "import").toFixed(1)} ms${shellImport}`,
  );
  const crash = med("pyport", "crashMs");
  if (typeof crash === "number")
    console.log(
      `pyport worker killed mid-call -> call rejected in ${crash.toFixed(1)} ms (target < 100)`,
    );
}

// Child mode: `node host-calls.js PEER PYTHON` measures one bridge and prints its figures as JSON.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [peer, python] = process.argv.slice(2);
  // Every bridge starts from the same quiet state: module loading leaves background compilation
  // and GC work behind, which would otherwise compete with the first interpreter start-up.
  await new Promise((r) => setTimeout(r, 200));
  const figures = await runners[peer](python);
  process.stdout.write(`\n${JSON.stringify(figures)}\n`);
  process.exit(0); // some bridges keep handles open
}
