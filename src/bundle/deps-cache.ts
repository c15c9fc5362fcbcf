/**
 * Installed dependencies, cached: what `pip install` added to a bundle besides the project
 * itself is kept in the cache (`deps-v1/<key>/files`, bundle-relative paths), keyed by what
 * pip resolved from — the project's `Requires-Dist`, the requirements file, the runtime, pip's
 * options and configuration — so a rebuild with the same inputs copies them in and installs
 * only the project's own wheel (`pip install --no-deps`, no index access). Requirements that
 * name local paths, URLs or VCS checkouts are never cached (their content can change under the
 * same text), nor is an install that changed a file the runtime already had.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PYPORT_VERSION } from "../version.js";
import type { RuntimeManifest } from "../runtime/manifest.js";
import { BUCKETS, bucketDir } from "../store/buckets.js";
import { COMPLETE_MARKER, materialize, touchEntry } from "../store/cache.js";
import { discardEntry, entryUnchanged, linkTree } from "../store/linked-files.js";
import { execFile, pythonEnv } from "../util/exec.js";
import { ifExists, pathExists, walkTree } from "../util/fs.js";

/** Files of a tree: bundle-relative path → size and mtime (what "changed" means here). */
export type FileState = Map<string, string>;

export async function fileState(bundle: string): Promise<FileState> {
  const out: FileState = new Map();
  for await (const { rel, full, dirent } of walkTree(bundle)) {
    if (dirent.isDirectory()) continue;
    const st = await fsp.lstat(full);
    out.set(rel, `${st.size}:${st.mtimeMs}`);
  }
  return out;
}

/** A requirement whose content can change under the same text: a path, URL or VCS reference. */
const UNPINNABLE = /(^|\s)(-e|--editable)\s|@\s*\S+:|^\s*[./~]|file:|git\+|hg\+|svn\+|bzr\+/m;

const PIP_CONFIG_FILES = () => [
  "/etc/pip.conf",
  "/etc/xdg/pip/pip.conf",
  path.join(os.homedir(), ".config/pip/pip.conf"),
  path.join(os.homedir(), ".pip/pip.conf"),
  ...(process.env.PIP_CONFIG_FILE ? [process.env.PIP_CONFIG_FILE] : []),
];

/** The wheel's METADATA, read with the runtime's own Python. */
async function wheelMetadata(python: string, wheel: string): Promise<string> {
  const r = await execFile(
    python,
    [
      "-I",
      "-c",
      "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nn = [x for x in z.namelist() if x.count('/') == 1 and x.endswith('.dist-info/METADATA')][0]\nsys.stdout.write(z.read(n).decode())",
      wheel,
    ],
    { env: pythonEnv() },
  );
  if (r.code !== 0) throw new Error(`cannot read ${wheel}: ${r.stderr}`);
  return r.stdout;
}

/** The cache key of the dependencies, or undefined when they must not be cached. */
export async function depsKey(ctx: {
  python: string;
  wheel: string;
  requirementsText: string;
  manifest: RuntimeManifest;
  pipArgs: string[];
  /** The bundle's bytecode settings: the entry carries bytecode compiled with them. */
  bytecode: { optimize: number; pycOnly: boolean };
}): Promise<string | undefined> {
  const requires = (await wheelMetadata(ctx.python, ctx.wheel))
    .split("\n")
    .filter((l) => l.startsWith("Requires-Dist:"))
    .map((l) => l.slice("Requires-Dist:".length).trim())
    .sort();
  if ([ctx.requirementsText, ...requires].some((r) => UNPINNABLE.test(r))) return undefined;
  const pipConfig: string[] = [];
  for (const f of PIP_CONFIG_FILES()) pipConfig.push(await ifExists(fsp.readFile(f, "utf8"), ""));
  const m = ctx.manifest;
  return createHash("sha256")
    .update(
      JSON.stringify({
        pyport: PYPORT_VERSION,
        requires,
        requirements: ctx.requirementsText,
        python: [
          m.python.version,
          m.python.soabi,
          m.python.machine,
          m.libc.mode,
          m.source.location,
        ],
        pipArgs: ctx.pipArgs,
        bytecode: [ctx.bytecode.optimize, ctx.bytecode.pycOnly],
        pipEnv: Object.entries(process.env)
          .filter(([k]) => k.startsWith("PIP_"))
          .sort(),
        pipConfig,
      }),
    )
    .digest("hex")
    .slice(0, 32);
}

/**
 * Links (or copies) the cached dependencies of `key` into `bundle`; false when there are none,
 * or when the entry was changed in place through a link (it is then discarded).
 */
export async function restoreDeps(key: string, bundle: string): Promise<boolean> {
  const dir = path.join(bucketDir(BUCKETS.deps), key);
  if (!(await pathExists(path.join(dir, COMPLETE_MARKER)))) return false;
  if (!(await entryUnchanged(dir))) {
    discardEntry(dir);
    return false;
  }
  linkTree(path.join(dir, "files"), bundle);
  await touchEntry(dir);
  return true;
}

/**
 * Saves what the install added to `bundle` (compared with `before`), minus the project's own
 * files (`projectFiles`, bundle-relative), as the dependencies of `key`. Does nothing when the
 * install changed or removed a file that was there before.
 */
export async function saveDeps(
  key: string,
  bundle: string,
  before: FileState,
  projectFiles: Set<string>,
  /** Run on the entry's `files` dir (laid out as the bundle) before it is complete: bytecode. */
  finish?: (files: string) => Promise<void>,
): Promise<boolean> {
  const after = await fileState(bundle);
  for (const [rel, state] of before) if (after.get(rel) !== state) return false;
  const added = [...after.keys()].filter((rel) => !before.has(rel) && !projectFiles.has(rel));
  await materialize({
    bucket: BUCKETS.deps,
    key,
    build: async (tmp) => {
      await fsp.mkdir(path.join(tmp, "files"));
      for (const rel of added) {
        const dest = path.join(tmp, "files", rel);
        await fsp.mkdir(path.dirname(dest), { recursive: true });
        await fsp.cp(path.join(bundle, rel), dest, { verbatimSymlinks: true });
      }
      await finish?.(path.join(tmp, "files"));
    },
  });
  return true;
}
