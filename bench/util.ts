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

/**
 * Runs `a` and `b` in `n` adjacent pairs, alternating which goes first (the second of a pair
 * tends to profit from the first's warm caches). Returns both medians and the median of the
 * per-pair ratios a/b, which drifts least when the machine's load changes during the run.
 */
export function pairedTimes(
  a: () => number,
  b: () => number,
  n: number,
): { a: number; b: number; ratio: number } {
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) {
    let x: number;
    let y: number;
    if (i % 2) {
      y = b();
      x = a();
    } else {
      x = a();
      y = b();
    }
    as.push(x);
    bs.push(y);
    ratios.push(x / y);
  }
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}
