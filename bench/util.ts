/** Shared by the benchmarks: medians and timing one process run. */
import { spawnSync } from "node:child_process";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall-clock milliseconds of one run; throws if it fails (a broken run is not a timing). */
export function timeRun(exe: string, args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(exe, args, { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`${exe} ${args.join(" ")} failed`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
