/**
 * bench/runtime-startup: interpreter start-up through portable runtimes vs the source
 * interpreter, measured interleaved in one run (the machine is shared: only ratios count);
 * creation time from a cold and a warm cache; runtime size per profile vs the source install.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRuntime } from "../src/runtime/create.js";
import { discoverPythons } from "../src/python/discover.js";
import { readElfFile } from "../src/elf/file.js";
import { treeSize } from "../src/util/fs.js";
import { median, timeRun } from "./util.js";

export async function runtimeStartupBench(): Promise<void> {
  const pythons = await discoverPythons();
  let source;
  for (const p of pythons) {
    if (
      `${p.probe.major}.${p.probe.minor}` === "3.12" &&
      (await readElfFile(p.path)).elf.needed.some((n) => n.startsWith("libpython"))
    )
      source = p;
  }
  source ??= pythons[0];
  if (!source) throw new Error("no interpreter found");
  process.env.PYPORT_CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-cache-"));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-"));
  console.log(`# runtime-startup — source: Python ${source.probe.version} at ${source.path}`);

  let t = Date.now();
  const sys = await createRuntime({
    source: { python: source.path },
    out: path.join(work, "system"),
  });
  const cold = (Date.now() - t) / 1000;
  t = Date.now();
  await createRuntime({ source: { python: source.path }, out: path.join(work, "system-warm") });
  const warm = (Date.now() - t) / 1000;
  const bundled = await createRuntime({
    source: { python: source.path },
    out: path.join(work, "bundled"),
    libc: "bundled",
  });
  console.log(
    `create: cold cache ${cold.toFixed(1)} s (target ≤ 30 s), warm cache ${warm.toFixed(2)} s (target ≤ 2 s)`,
  );

  const rounds = Number(process.env.BENCH_ROUNDS ?? 40);
  for (const [label, args] of [
    ["-S -c pass (no site: identical work)", ["-S", "-c", "pass"]],
    ["-I -c pass (with site; the runtime's site-packages holds only pip)", ["-I", "-c", "pass"]],
  ] as const) {
    const samples: Record<string, number[]> = { source: [], system: [], bundled: [] };
    const exes: Record<string, string> = {
      source: source.path,
      system: path.join(sys.out, "bin/python3"),
      bundled: path.join(bundled.out, "bin/python3"),
    };
    for (const exe of Object.values(exes)) timeRun(exe, [...args]); // warm the page cache
    for (let i = 0; i < rounds; i++)
      for (const k of Object.keys(exes)) samples[k].push(timeRun(exes[k], [...args]));
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    console.log(`start-up ${label}, median of ${rounds} interleaved runs:`);
    console.log(
      `  source ${m.source.toFixed(2)} ms | system ${m.system.toFixed(2)} ms → ratio ${(m.system / m.source).toFixed(3)} (target ≤ 1.05) | bundled ${m.bundled.toFixed(2)} ms → ratio ${(m.bundled / m.source).toFixed(3)} (target ≤ 1.10)`,
    );
  }

  const sourceSize = await treeSize(source.probe.prefix);
  console.log(
    `size: source install ${(sourceSize / 1048576).toFixed(1)} MiB (${source.probe.prefix}, incl. its site-packages)`,
  );
  for (const profile of ["full", "default", "minimal"] as const) {
    const r =
      profile === "default"
        ? sys
        : await createRuntime({
            source: { python: source.path },
            out: path.join(work, profile),
            profile,
          });
    console.log(
      `  runtime --profile ${profile}: ${((await treeSize(r.out)) / 1048576).toFixed(1)} MiB${r.manifest.stripped ? " (stripped)" : ""}`,
    );
  }
  console.log(
    `  runtime --libc bundled (default profile): ${((await treeSize(bundled.out)) / 1048576).toFixed(1)} MiB`,
  );
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(process.env.PYPORT_CACHE, { recursive: true, force: true });
}
