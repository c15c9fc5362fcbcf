/**
 * bench/build: build time from a cold and a warm cache (hello, numpy-report); hello's size per
 * profile and format; start-up of `bin/hello --version` vs the same module run by the bundle's
 * bare interpreter, interleaved in one run (only ratios count on a shared machine).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { build } from "../src/bundle/build.js";
import type { Format } from "../src/bundle/config.js";
import { discoverPythons } from "../src/python/discover.js";
import type { Profile } from "../src/runtime/profile.js";
import { median, timeRun } from "./util.js";

const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples");
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
/** Decimal megabytes too, where a target is stated in MB. */
const mbAndMib = (n: number) => `${(n / 1e6).toFixed(2)} MB (${mib(n)})`;

async function timedBuild(
  project: string,
  python: string,
  formats: Format[],
  profile: Profile = "default",
) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-build-"));
  const t = Date.now();
  const r = await build({
    projectDir: path.join(EXAMPLES, project),
    out,
    python,
    formats,
    profile,
  });
  return { ms: Date.now() - t, r };
}

export async function buildBench(): Promise<void> {
  const pythons = await discoverPythons();
  const pick = (minor: number) =>
    pythons.find((p) => p.probe.major === 3 && p.probe.minor === minor && p.probe.ensurepip.wheels);
  const py = pick(12) ?? pick(11) ?? pythons[0];
  if (!py) throw new Error("no interpreter found");
  console.log(`# build — Python ${py.probe.version} at ${py.path}`);

  process.env.PYPORT_CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-cache-"));
  const cold = await timedBuild("hello", py.path, ["dir"]);
  const warm = await timedBuild("hello", py.path, ["dir"]);
  console.log(
    `hello: cold cache ${(cold.ms / 1000).toFixed(1)} s, warm rebuild ${(warm.ms / 1000).toFixed(1)} s (target <= 1.5 s)`,
  );

  const np = pick(11);
  if (np) {
    try {
      const c = await timedBuild("numpy-report", np.path, ["dir"]);
      const w = await timedBuild("numpy-report", np.path, ["dir"]);
      console.log(
        `numpy-report (Python ${np.probe.version}): cold ${(c.ms / 1000).toFixed(1)} s, warm ${(w.ms / 1000).toFixed(1)} s (target <= 3 s), bundle ${mib(w.r.outputs[0].bytes)}`,
      );
    } catch (err) {
      console.log(`numpy-report: SKIPPED (${String(err).split("\n")[0]})`);
    }
  } else console.log("numpy-report: SKIPPED (no Python 3.11: the index's numpy wheels are cp311)");

  for (const profile of ["default", "minimal", "full"] as Profile[]) {
    const { r } = await timedBuild("hello", py.path, ["dir", "tar.gz", "tar.zst"], profile);
    const bytes = (f: string) => r.outputs.find((o) => o.format === f)!.bytes;
    console.log(
      `hello --profile ${profile}: dir ${mib(bytes("dir"))}, tar.gz ${mbAndMib(bytes("tar.gz"))}${profile === "default" ? " (target <= 12 MB)" : ""}, tar.zst ${mib(bytes("tar.zst"))}`,
    );
  }

  const zipped = await build({
    projectDir: path.join(EXAMPLES, "hello"),
    out: fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-build-")),
    python: py.path,
    formats: ["dir", "tar.gz"],
    resources: "zip-stdlib",
  });
  console.log(
    `hello --resources zip-stdlib (default profile): dir ${mib(zipped.outputs[0].bytes)}, tar.gz ${mib(zipped.outputs[1].bytes)}`,
  );
  const imports = [
    "-I",
    "-c",
    "import json, email.message, asyncio, http.server, argparse, logging, decimal",
  ];
  const fsTimes: number[] = [];
  const zipTimes: number[] = [];
  for (let i = 0; i < 30; i++) {
    fsTimes.push(timeRun(path.join(warm.r.outputs[0].path, "bin", "python3"), imports));
    zipTimes.push(timeRun(path.join(zipped.outputs[0].path, "bin", "python3"), imports));
  }
  console.log(
    `import json, email, asyncio, http.server, argparse, logging, decimal — median of 30 interleaved: filesystem ${median(fsTimes).toFixed(2)} ms | zip-stdlib ${median(zipTimes).toFixed(2)} ms → ratio ${(median(zipTimes) / median(fsTimes)).toFixed(3)}`,
  );

  const bundle = warm.r.outputs[0].path;
  const hello = path.join(bundle, "bin", "hello");
  const bare = path.join(bundle, "bin", "python3");
  const viaLauncher = () => timeRun(hello, ["--version"]);
  const viaModule = () => timeRun(bare, ["-I", "-m", "hello.cli", "--version"]);
  const viaCode = () =>
    timeRun(bare, [
      "-I",
      "-c",
      "import sys;sys.argv.pop(0);from hello.cli import main as _e;sys.exit(_e())",
      "hello",
      "--version",
    ]);
  const [a, b, c]: number[][] = [[], [], []];
  for (let i = 0; i < 5; i++) for (const warmUp of [viaLauncher, viaModule, viaCode]) warmUp();
  for (let i = 0; i < 60; i++) {
    a.push(viaLauncher());
    b.push(viaModule());
    c.push(viaCode());
  }
  console.log(
    `start-up, median of 60 interleaved: bin/hello --version ${median(a).toFixed(2)} ms | bin/python3 -I -m hello.cli --version ${median(b).toFixed(2)} ms → ratio ${(median(a) / median(b)).toFixed(3)} (target <= 1.05) | ` +
      `bin/python3 -I -c <the launcher's own code> ${median(c).toFixed(2)} ms → ratio ${(median(a) / median(c)).toFixed(3)} (the launcher's own cost)`,
  );
}
