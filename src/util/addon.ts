/**
 * pyport's Node addon (native/host.c), built by `npm run build` when a C compiler is present:
 * the host's fast spawn and poll, forks through a fork server, anonymous memory files, stat, and
 * flock for the cache's locks.
 */
import { nativeAsset } from "./assets.js";

export type PollRead = (fd: number, buffer: Buffer, offset: number, budgetUs: number) => number;
export type SpawnNative = (
  file: string,
  argv: string[],
  envp: string[],
  cwd: string | null,
  inherit: number[],
) => [number, number, number, number, number, number];
export interface HostAddon {
  pollRead: PollRead;
  spawnWorker: SpawnNative;
  reap: (pid: number) => void;
  /** A worker forked by a fork server (src/host/fork-server.ts): as spawnWorker's result. */
  forkWorker: (
    controlFd: number,
    request: Buffer,
    inherit: number[],
  ) => [number, number, number, number, number, number];
  memfdPair: () => [number, number];
  statPath: (path: string) => [number, number, number, number, number] | null;
  /** flock(2) without blocking: true when taken, false when another holder has it (EWOULDBLOCK). */
  flockNb: (fd: number, exclusive: number) => boolean;
}

let addon: HostAddon | null | undefined;
/**
 * The native part (native/host.c), or null when it was not built. Loaded with process.dlopen:
 * require's resolution costs ~1.5 ms on first use, which would delay the first worker's start.
 */
export function hostAddon(): HostAddon | null {
  if (addon === undefined) {
    const module = { exports: {} as HostAddon };
    try {
      process.dlopen(module, nativeAsset("host", ".node"));
      addon = module.exports;
    } catch {
      addon = null;
    }
  }
  return addon;
}
