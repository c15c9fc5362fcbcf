/**
 * bench/audit: files per second auditing a runtime with numpy and scipy installed from the
 * configured package index (thousands of files, ~100 ELF objects), side by side with a loop that
 * runs `readelf -V -d` once per ELF file — the shell-script way of getting the same facts.
 * Both are measured in the same run, interleaved (only ratios count on a shared machine).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { audit } from "../src/audit/audit.js";
import { discoverPythons } from "../src/python/discover.js";
import { createRuntime } from "../src/runtime/create.js";
import { median } from "./util.js";

export async function auditBench(): Promise<void> {
  // scipy wheels on this machine's index are cp311 only; any 3.11 works.
  const py = (await discoverPythons()).find((p) => p.probe.major === 3 && p.probe.minor === 11);
  if (!py) {
    console.log("# audit — SKIPPED: no Python 3.11 found (the index's scipy wheels are cp311)");
    return;
  }
  process.env.PYPORT_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-cache-"));
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyport-bench-audit-")), "rt");
  await createRuntime({ source: { python: py.path }, out });
  const pip = spawnSync(
    path.join(out, "bin", "python3"),
    ["-m", "pip", "install", "--no-cache-dir", "-q", "numpy", "scipy"],
    { encoding: "utf8" },
  );
  if (pip.status !== 0) {
    console.log(
      `# audit — SKIPPED: numpy/scipy could not be installed from the package index: ${pip.stderr.trim().split("\n").pop()}`,
    );
    return;
  }

  const first = await audit(out);
  const elves = first.stats.elfFiles;
  const elfPaths: string[] = [];
  const collect = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) collect(p);
      else if (e.isFile() && fs.statSync(p).size > 64) {
        const fd = fs.openSync(p, "r");
        const head = Buffer.alloc(4);
        fs.readSync(fd, head, 0, 4, 0);
        fs.closeSync(fd);
        if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) elfPaths.push(p);
      }
    }
  };
  collect(out);
  let bundleBytes = 0;
  const sizeOf = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) sizeOf(path.join(dir, e.name));
      else if (e.isFile()) bundleBytes += fs.statSync(path.join(dir, e.name)).size;
    }
  };
  sizeOf(out);

  const ours: number[] = [];
  const hashed: number[] = [];
  const readelf: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t = process.hrtime.bigint();
    await audit(out);
    ours.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    await audit(out, { hashes: true });
    hashed.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    for (const f of elfPaths) spawnSync("readelf", ["-V", "-d", f], { stdio: "ignore" });
    readelf.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const a = median(ours);
  const r = median(readelf);
  console.log(
    `# audit — Python ${py.probe.version} runtime + numpy + scipy: ${first.stats.files} files, ${elves} ELF, ${(bundleBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  console.log(
    `full audit (floors, resolution, leaks, licences of ${first.components.length} components): median ${a.toFixed(0)} ms of 5 (target <= 2000 ms) = ${((first.stats.files / a) * 1000).toFixed(0)} files/s`,
  );
  console.log(
    `the same with each component's sha256 (what --json and --sbom add): median ${median(hashed).toFixed(0)} ms`,
  );
  console.log(
    `readelf -V -d loop over the ${elfPaths.length} ELF files only: median ${r.toFixed(0)} ms = ${((elfPaths.length / r) * 1000).toFixed(0)} ELF files/s`,
  );
  console.log(
    `ELF files/s, audit vs readelf loop: ${(elves / a / (elfPaths.length / r)).toFixed(1)}x (target >= 10x); all files/s vs the loop's ELF files/s: ${(first.stats.files / a / (elfPaths.length / r)).toFixed(1)}x`,
  );
  console.log(
    `findings: ${["error", "warning", "info"].map((s) => `${first.findings.filter((f) => f.severity === s).length} ${s}`).join(", ")}; floors ${JSON.stringify(first.floors)}`,
  );
}
