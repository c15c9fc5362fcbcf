/**
 * Starting a host worker's process: python/host_boot.py with the worker's options as arguments
 * (or forked by a fork server, fork-server.ts), the arena files (arena.ts) on fds 5 and 6 when
 * they can be made, and its nice value.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { bucketDir, BUCKETS } from "../store/buckets.js";
import { pythonAsset } from "../util/assets.js";
import { PYPORT_VERSION } from "../version.js";
import { openArenaFiles } from "./arena.js";
import { spawnWorkerProcess, type WorkerProcess } from "./process.js";
import type { WorkerOptions } from "./worker.js";

export interface Launched {
  proc: WorkerProcess;
  /** The arena files the worker has on fds 5 and 6, or null when it has none. */
  arena: [number, number] | null;
}

/** How python starts pyport's host code (python/host_boot.py); the worker's arguments follow. */
export function bootArgs(): string[] {
  // The worker's compiled code is cached in the host bucket (python/host_cache.py names the file).
  return ["-I", pythonAsset("host_boot.py"), bucketDir(BUCKETS.host), PYPORT_VERSION];
}

/**
 * Starts a worker's process (forked by opts.forkServer when that serves it and is ready), before
 * anything else of the Worker is set up: the interpreter takes tens of ms to start, and
 * everything done here delays it.
 */
export function launch(opts: WorkerOptions): Launched {
  const args = ["3", "4"];
  for (const p of opts.path) args.push("--path", p);
  for (const m of opts.preload) args.push("--preload", m);
  if (opts.memoryLimitMb) args.push("--memory-mb", String(opts.memoryLimitMb));
  if (opts.concurrency) args.push("--concurrency", String(opts.concurrency));
  if (opts.spinUs) args.push("--spin-us", String(opts.spinUs));
  if (opts.replyEach) args.push("--reply-each", "1");
  const arena = openArenaFiles();
  if (arena) args.push("--arena", "5,6");
  try {
    const where = { cwd: opts.cwd, env: opts.env ?? process.env };
    const proc =
      (opts.forkServer?.serves(opts)
        ? opts.forkServer.fork(args.slice(2), arena ?? [], where)
        : null) ??
      spawnWorkerProcess(opts.python, [...bootArgs(), ...args], { ...where, inherit: arena ?? [] });
    if (opts.nice && proc.pid !== undefined) {
      try {
        os.setPriority(proc.pid, opts.nice);
      } catch {
        // it exited already: onExit reports that
      }
    }
    return { proc, arena };
  } catch (err) {
    arena?.forEach((fd) => fs.closeSync(fd));
    throw err;
  }
}
