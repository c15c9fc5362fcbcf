/**
 * bench/onefile: the single-file executable of examples/hello against its directory bundle and
 * its tar.gz, all from one build and interleaved in one run (only ratios count on a shared machine):
 * warm start-up (`hello --version`) vs the directory bundle's launcher; first run (verify, unpack
 * into an empty cache, run `--version`) vs a bare `tar -xzf` of the tar.gz; file sizes.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { build } from "../src/bundle/build.js";
import { discoverPythons } from "../src/python/discover.js";
import { median, pairedTimes, timeRun } from "./util.js";

const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples");
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function timed(exe: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(exe, args, { stdio: "ignore", env });
  if (r.status !== 0) throw new Error(`${exe} ${args.join(" ")} failed`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export async function onefileBench(): Promise<void> {
  const pythons = await discoverPythons();
  const pick = (minor: number) =>
    pythons.find((p) => p.probe.major === 3 && p.probe.minor === minor && p.probe.ensurepip.wheels);
  const py = pick(12) ?? pick(11) ?? pythons[0];
  if (!py) throw new Error("no interpreter found");
  console.log(`# onefile — examples/hello, Python ${py.probe.version}`);
  process.env.PYPORT_CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-cache-"));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-onefile-"));
  const r = await build({
    projectDir: path.join(EXAMPLES, "hello"),
    out,
    python: py.path,
    formats: ["dir", "tar.gz", "tar.zst", "onefile"],
  });
  const get = (f: string) => r.outputs.find((o) => o.format === f)!;
  const [dir, tgz, tzst, one] = [get("dir"), get("tar.gz"), get("tar.zst"), get("onefile")];
  console.log(
    `size: onefile ${mib(one.bytes)} = ${(one.bytes / tgz.bytes).toFixed(2)}x the tar.gz (${mib(tgz.bytes)}); tar.zst ${mib(tzst.bytes)}; unpacked ${mib(dir.bytes)}`,
  );

  // First run: a fresh cache each time vs tar -xzf into a fresh directory (removal not timed).
  const firstRuns: number[] = [];
  const untars: number[] = [];
  for (let i = 0; i < 7; i++) {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-ofc-"));
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-untar-"));
    firstRuns.push(timed(one.path, ["--version"], { ...process.env, PYPORT_CACHE: cache }));
    untars.push(timed("tar", ["-xzf", tgz.path, "-C", dest], process.env));
    fs.rmSync(cache, { recursive: true, force: true });
    fs.rmSync(dest, { recursive: true, force: true });
  }
  const [first, untar] = [median(firstRuns), median(untars)];
  console.log(
    `first run (verify + unpack + hello --version): ${first.toFixed(0)} ms vs tar -xzf alone ${untar.toFixed(0)} ms = ${(first / untar).toFixed(2)}x (target <= 1.3)`,
  );

  // Warm start-up, interleaved with the directory bundle's own launcher.
  const launcher = path.join(dir.path, "bin", "hello");
  timeRun(one.path, ["--version"]);
  const p = pairedTimes(
    () => timeRun(one.path, ["--version"]),
    () => timeRun(launcher, ["--version"]),
    100,
  );
  console.log(
    `warm start-up: onefile ${p.a.toFixed(1)} ms vs directory bundle ${p.b.toFixed(1)} ms; median paired ratio ${p.ratio.toFixed(3)} (target <= 1.05)`,
  );
}
