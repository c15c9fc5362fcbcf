/**
 * When pip finds no distribution for a requirement, say why in the user's terms: which Python
 * this build uses, and for which Pythons the index does have wheels of it (asked with
 * `pip download --only-binary=:all: --python-version 3.N` for the other CPython 3 versions,
 * honouring the user's pip configuration and pip-args).
 */
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { execFile, pythonEnv } from "../util/exec.js";

const NO_MATCH = /No matching distribution found for (\S+)/;
const MINORS = [8, 9, 10, 11, 12, 13, 14];

/** The requirement pip found no distribution for, from its output. */
export function missingRequirement(output: string): string | undefined {
  return NO_MATCH.exec(output)?.[1];
}

/**
 * `"numpy: the index has wheels for cp311 only; this build uses Python 3.13 (cp313, x86_64) —
 * set python = \"3.11\""`, or undefined when no other Python has wheels either.
 */
export async function explainMissing(
  python: string,
  requirement: string,
  ctx: { version: string; machine: string; pipArgs: string[] },
): Promise<string | undefined> {
  const [major, minor] = ctx.version.split(".").map(Number);
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pyport-pip-probe-"));
  try {
    const found = await Promise.all(
      MINORS.filter((m) => m !== minor).map(async (m) => {
        const r = await execFile(
          python,
          ["-I", "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
            .concat(["--only-binary=:all:", "--python-version", `${major}.${m}`, ...ctx.pipArgs])
            .concat(["--dest", path.join(scratch, String(m)), requirement]),
          { env: { ...pythonEnv({ keepPip: true }), PIP_RETRIES: "0" }, timeoutMs: 120_000 },
        );
        return r.code === 0 ? m : undefined;
      }),
    );
    const ok = found.filter((m): m is number => m !== undefined);
    if (!ok.length) return undefined;
    const tags = ok.map((m) => `cp${major}${m}`);
    const best = `${major}.${ok[ok.length - 1]}`;
    return `${requirement}: the index has wheels for ${tags.join(", ")}${ok.length === 1 ? " only" : ""}; this build uses Python ${ctx.version} (cp${major}${minor}, linux ${ctx.machine}) — set python = "${best}"`;
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
