/**
 * An advisory lock file created with O_EXCL, holding the owner's pid. A lock whose owner is no
 * longer alive is stale and taken over. Waiting is bounded: on timeout the error names the lock
 * file and the holder so the user can act.
 */
import * as fsp from "node:fs/promises";
import { hasErrno, PyportError } from "../errors.js";

export interface LockOptions {
  timeoutMs?: number;
  pollMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !hasErrno(err, "ESRCH");
  }
}

async function tryAcquire(file: string): Promise<{ ok: true } | { ok: false; holder?: number }> {
  try {
    const h = await fsp.open(file, "wx", 0o644);
    await h.writeFile(`${process.pid}\n`);
    await h.close();
    return { ok: true };
  } catch (err) {
    if (!hasErrno(err, "EEXIST")) throw err;
  }
  let holder: number | undefined;
  try {
    holder = Number.parseInt(await fsp.readFile(file, "utf8"), 10);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return { ok: false }; // released meanwhile: retry at once
    throw err;
  }
  if (Number.isInteger(holder) && holder! > 0 && !alive(holder!)) {
    await fsp.rm(file, { force: true }); // stale: its owner died
    return { ok: false };
  }
  return { ok: false, holder: Number.isInteger(holder) ? holder : undefined };
}

/** Runs `fn` while holding the lock file `file`; always releases it. */
export async function withLock<T>(
  file: string,
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const poll = opts.pollMs ?? 100;
  const start = Date.now();
  for (;;) {
    const r = await tryAcquire(file);
    if (r.ok) break;
    if (Date.now() - start > timeout) {
      throw new PyportError(
        "E_LOCK_TIMEOUT",
        `timed out after ${Math.round(timeout / 1000)} s waiting for lock ${file}${r.holder ? ` held by pid ${r.holder}` : ""}`,
        {
          hint: `Another pyport process is working on the same cache entry. Wait for it to finish; if no pyport process is running, delete ${file}.`,
        },
      );
    }
    if (r.holder !== undefined) await new Promise((res) => setTimeout(res, poll));
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(file, { force: true });
  }
}
