/**
 * Runs the shipped probe script (`python/probe.py`) with an interpreter and returns what it
 * reports. Results are cached per interpreter realpath + size + mtime in `probes-v1`.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { BUCKETS, bucketDir } from "../store/buckets.js";
import { pythonAsset } from "../util/assets.js";
import { describeFailure, execFile } from "../util/exec.js";
import { writeFileAtomic } from "../util/fs.js";

/** Bump when python/probe.py reports more: cached probes of older versions are then not reused. */
const PROBE_SCRIPT_VERSION = 2;

export interface PythonProbe {
  schema: 1;
  implementation: string;
  version: string;
  versionFull: string;
  major: number;
  minor: number;
  executable: string;
  realExecutable: string;
  prefix: string;
  basePrefix: string;
  execPrefix: string;
  platlibdir: string;
  abiflags: string;
  platform: string;
  machine: string;
  byteorder: string;
  pointerBits: number;
  libc: [string, string];
  paths: Record<string, string>;
  vars: Record<string, string | number | null>;
  sysconfigdata: string | null;
  stdlibLicense: string;
  ensurepip: { present: boolean; wheels: boolean; error?: string };
  venv: boolean;
  pip: boolean;
  sysPath: string[];
}

/** `3.11` for a probe. */
export function shortVersion(p: Pick<PythonProbe, "major" | "minor">): string {
  return `${p.major}.${p.minor}`;
}

/** Runs the probe; `useCache: false` bypasses the probe cache (used for freshly built runtimes). */
export async function probePython(
  interpreter: string,
  opts: { useCache?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<PythonProbe> {
  let real: string;
  let key: string | undefined;
  try {
    real = await fsp.realpath(interpreter);
    const st = await fsp.stat(real);
    key = createHash("sha256")
      .update(`${PROBE_SCRIPT_VERSION}\0${real}\0${st.size}\0${st.mtimeMs}\0${interpreter}`)
      .digest("hex")
      .slice(0, 32);
  } catch (err) {
    if (hasErrno(err, "ENOENT"))
      throw new PyportError("E_NOT_FOUND", `interpreter not found: ${interpreter}`);
    throw err;
  }
  const cacheFile = path.join(bucketDir(BUCKETS.probes), `${key}.json`);
  if (opts.useCache !== false) {
    try {
      return JSON.parse(await fsp.readFile(cacheFile, "utf8")) as PythonProbe;
    } catch (err) {
      if (!hasErrno(err, "ENOENT") && !(err instanceof SyntaxError)) throw err;
    }
  }
  const args = ["-I", "-S", pythonAsset("probe.py")];
  let r;
  try {
    r = await execFile(interpreter, args, {
      env: { ...(opts.env ?? process.env), PYTHONDONTWRITEBYTECODE: "1" },
      timeoutMs: 60_000,
    });
  } catch (err) {
    throw new PyportError("E_PYTHON", `cannot run ${interpreter}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (r.code !== 0)
    throw new PyportError(
      "E_PYTHON",
      `probing ${interpreter} failed: ${describeFailure(interpreter, args, r)}`,
    );
  let probe: PythonProbe;
  try {
    probe = JSON.parse(r.stdout) as PythonProbe;
  } catch (err) {
    throw new PyportError(
      "E_PYTHON",
      `${interpreter} printed no probe JSON (is it a CPython?): ${r.stdout.slice(0, 200)}`,
      { cause: err },
    );
  }
  if (probe.implementation !== "cpython")
    throw new PyportError(
      "E_PYTHON",
      `${interpreter} is ${probe.implementation}; pyport makes runtimes from CPython only`,
    );
  if (opts.useCache !== false) {
    await fsp.mkdir(path.dirname(cacheFile), { recursive: true });
    await writeFileAtomic(cacheFile, JSON.stringify(probe));
  }
  return probe;
}
