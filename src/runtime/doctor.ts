/**
 * `runtime doctor`: runs the shipped checks (`python/doctor.py`) inside a runtime and returns
 * their results. The script goes in on stdin, so the same call works through a wrapper that
 * runs the runtime elsewhere (a chroot, another root filesystem) where pyport's files are absent.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { pythonAsset } from "../util/assets.js";
import { describeFailure, execFile } from "../util/exec.js";
import { readManifest } from "./manifest.js";

export interface DoctorCheck {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
}

export interface DoctorReport {
  python: string;
  prefix: string;
  checks: DoctorCheck[];
  ok: boolean;
}

export interface DoctorOptions {
  /**
   * Turns the interpreter command into the one actually run, e.g. to run it in a chroot:
   * `(argv) => ["chroot", root, ...argv]` with `interpreter` given as seen inside the root.
   */
  wrap?: (argv: string[]) => string[];
  /** The interpreter path to run (default: `<dir>/bin/python3`). */
  interpreter?: string;
  env?: NodeJS.ProcessEnv;
}

export async function runDoctor(dir: string, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const manifest = await readManifest(dir);
  const script = await fsp.readFile(pythonAsset("doctor.py"), "utf8");
  const interpreter = opts.interpreter ?? path.join(dir, manifest.interpreter);
  const argv = (opts.wrap ?? ((a) => a))([interpreter, "-I", "-", manifest.source.buildPrefix]);
  const env = opts.env ?? {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/",
    TERM: "xterm",
  };
  const r = await execFile(argv[0], argv.slice(1), { input: script, env, timeoutMs: 120_000 });
  let parsed: Omit<DoctorReport, "ok">;
  try {
    parsed = JSON.parse(r.stdout) as Omit<DoctorReport, "ok">;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new PyportError(
      "E_DOCTOR",
      `the runtime's interpreter did not run: ${describeFailure(argv[0], argv.slice(1), r)}`,
      {
        hint:
          manifest.libc.mode === "system" && manifest.libc.glibcFloor
            ? `This runtime needs glibc ≥ ${manifest.libc.glibcFloor} on the host; recreate it with --libc bundled to carry its own.`
            : undefined,
      },
    );
  }
  return { ...parsed, ok: parsed.checks.every((c) => c.status !== "fail") };
}
