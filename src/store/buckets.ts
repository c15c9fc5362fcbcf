/**
 * Where pyport's cache lives and the names of its buckets: the part of the cache (cache.ts) that
 * needs no I/O, kept apart so that `pyport/host` can name its bucket without loading the rest.
 * A bucket name carries its format version (`runtimes-v1`), so a format change never reads old
 * entries.
 */
import * as os from "node:os";
import * as path from "node:path";

export const BUCKETS = {
  downloads: "downloads-v1",
  archives: "archives-v1",
  runtimes: "runtimes-v1",
  probes: "probes-v1",
  wheels: "wheels-v1",
  /** A project's build requirements (pip install --target), per requirements, Python and pip options. */
  buildEnvs: "build-envs-v1",
  /** Installed dependencies of a build (bundle-relative files), per resolution inputs: bundle/deps-cache.ts. */
  deps: "deps-v1",
  /** The host worker's compiled code, one file per version of its sources and Python version: python/host_cache.py. */
  host: "host-v1",
  /** Written by onefile stubs (native/onefile.c BUCKET), not by pyport itself; their locks are flock files. */
  onefile: "onefile-v1",
} as const;

/** `$PYPORT_CACHE`, else `$XDG_CACHE_HOME/pyport`, else `~/.cache/pyport`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PYPORT_CACHE) return path.resolve(env.PYPORT_CACHE);
  const xdg =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)
      ? env.XDG_CACHE_HOME
      : path.join(os.homedir(), ".cache");
  return path.join(xdg, "pyport");
}

export function bucketDir(bucket: string, root = cacheRoot()): string {
  return path.join(root, bucket);
}
