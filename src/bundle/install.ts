/**
 * Installing a project into a bundle: the runtime's source, a copy of the project (exactly what
 * pip would see), its wheel (built once per source tree, cached), pip runs with the runtime's own
 * pip, libraries that wheels expect from the system (bundled libc), and pip's removal afterwards.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { parse as parseToml } from "smol-toml";
import { resolveNeeded } from "../audit/resolve.js";
import { readTree } from "../audit/tree.js";
import { PyportError } from "../errors.js";
import { discoverPythons } from "../python/discover.js";
import { satisfies } from "../python/specifier.js";
import { describeGraft, type GraftedLibrary } from "../runtime/closure.js";
import { findHostLibrary } from "../runtime/host-libs.js";
import type { RuntimeManifest } from "../runtime/manifest.js";
import type { RuntimeSource } from "../runtime/sources.js";
import { BUCKETS } from "../store/buckets.js";
import { materialize, touchEntry } from "../store/cache.js";
import { pythonAsset } from "../util/assets.js";
import { describeFailure, execFile, pythonEnv } from "../util/exec.js";
import { treeSize, walkFiles } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";
import type { BundlePlan } from "./plan.js";

/** The tag in the names of a build's private temp dirs (`.<out>.pyport-build-<pid>-…`). */
export const TEMP_TAG = "pyport-build";

/**
 * The configured source, else the newest Python 3.8+ on this machine that can install pip and
 * satisfies the project's requires-python.
 */
export async function sourceOf(
  source: BundlePlan["source"],
  reporter?: Reporter,
): Promise<RuntimeSource> {
  if (source.archive) return { archive: source.archive, sha256: source.sha256 };
  if (source.python) return { python: source.python };
  const withPip = (await discoverPythons()).filter(
    (p) =>
      p.probe.major === 3 &&
      p.probe.minor >= 8 &&
      p.probe.ensurepip.present &&
      p.probe.ensurepip.wheels,
  );
  const spec = source.requiresPython;
  const usable = spec ? withPip.filter((p) => satisfies(p.probe.version, spec)) : withPip;
  usable.sort((a, b) => b.probe.minor - a.probe.minor);
  if (!usable[0]) {
    const found = [...new Set(withPip.map((p) => p.probe.version))].join(", ");
    throw new PyportError(
      "E_NOT_FOUND",
      spec && withPip.length
        ? `no Python on this machine satisfies requires-python ${JSON.stringify(spec)} (found: ${found})`
        : "no Python 3.8+ with ensurepip found on this machine",
      {
        hint: 'Install a matching Python, or set [tool.pyport] python = "3.12" (or an interpreter path), or archive = "<python-build-standalone URL>" with sha256.',
      },
    );
  }
  reporter?.note(
    `no Python source configured: using Python ${usable[0].probe.version} at ${usable[0].path}, the newest${spec ? ` that satisfies requires-python ${JSON.stringify(spec)}` : ""} (set [tool.pyport] python to choose)`,
  );
  return { python: usable[0].path };
}

export async function run(
  python: string,
  args: string[],
  what: string,
  opts: { keepPip?: boolean; cwd?: string; env?: Record<string, string> } = {},
): Promise<void> {
  const r = await execFile(python, args, {
    env: { ...pythonEnv({ keepPip: opts.keepPip }), ...opts.env },
    cwd: opts.cwd,
  });
  if (r.code !== 0)
    throw new PyportError("E_BUILD", `${what} failed: ${describeFailure("python3", args, r)}`, {
      hint: "Read pip's message above; fix the project or pass pip options with [tool.pyport] pip-args.",
    });
}

/** The site-packages directory of the bundle's runtime. */
export function sitePackages(bundle: string, m: RuntimeManifest): string {
  const [maj, min] = m.python.version.split(".");
  return path.join(bundle, "lib", `python${maj}.${min}`, "site-packages");
}

/** Never part of what pip installs from the project: VCS data and caches, at any depth. */
const SKIP_ANYWHERE = new Set([".git", ".hg", ".svn", "__pycache__"]);
/** Build output and environments, skipped only at the project's top level (a package may be named `build`). */
const SKIP_AT_TOP = new Set(["build", "dist", ".venv", "venv", "node_modules", ".tox", ".nox"]);

/**
 * Copies the project source for installing, without VCS data, build output or `out` itself.
 * Top-level entries are copied one by one: the build's temp dir may lie inside the project
 * (beside its dist/), and a copy of the whole project would then contain itself.
 */
export async function copyProject(from: string, to: string, out: string): Promise<void> {
  const root = path.resolve(from);
  const keep = (src: string) => {
    const name = path.basename(src);
    const top = path.dirname(path.resolve(src)) === root;
    return (
      path.resolve(src) !== out &&
      !SKIP_ANYWHERE.has(name) &&
      !(top && SKIP_AT_TOP.has(name)) &&
      !name.endsWith(".egg-info") &&
      !name.startsWith(`.${path.basename(out)}.${TEMP_TAG}`)
    );
  };
  await fsp.mkdir(to, { recursive: true });
  for (const name of await fsp.readdir(root)) {
    const src = path.join(root, name);
    if (keep(src)) await fsp.cp(src, path.join(to, name), { recursive: true, filter: keep });
  }
}

/**
 * Bundled libc: libraries that installed wheels expect from the system (libstdc++, libgcc_s …,
 * allowed by manylinux policies) are copied from the build machine into libexec/, which the
 * bundled loader searches for every object — the target may have no libraries at all.
 */
export async function graftForWheels(
  bundle: string,
  reporter?: Reporter,
): Promise<GraftedLibrary[]> {
  const added: GraftedLibrary[] = [];
  // Until nothing new is grafted: a grafted library may need another (libstdc++ → libgcc_s).
  for (let grafted = true; grafted;) {
    grafted = false;
    const tree = await readTree(bundle);
    const byRel = new Map(tree.elves.map((e) => [e.rel, e]));
    for (const miss of resolveNeeded(tree, ["libexec"]).outside) {
      const dest = path.join(bundle, "libexec", miss.soname);
      if (fs.existsSync(dest)) continue;
      const importer = byRel.get(miss.importer)!;
      const source = await findHostLibrary(miss.soname, {
        elf: importer.elf,
        originDir: path.dirname(path.join(bundle, miss.importer)),
      });
      if (!source) continue; // the audit reports it
      await fsp.copyFile(source, dest);
      await fsp.chmod(dest, 0o755);
      reporter?.note(`grafted ${miss.soname} from ${source} (needed by ${miss.importer})`);
      added.push(
        await describeGraft(bundle, miss.soname, path.join("libexec", miss.soname), source),
      );
      grafted = true;
    }
  }
  return added;
}

/** sha256 over the project copy's files (paths, modes, contents), in a stable order. */
async function treeKey(dir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const file of await walkFiles(dir)) {
    const st = await fsp.lstat(file);
    hash.update(`${path.relative(dir, file)}\0${st.mode & 0o111 ? "x" : "-"}\0`);
    hash.update(st.isSymbolicLink() ? await fsp.readlink(file) : await fsp.readFile(file));
  }
  return hash.digest("hex");
}

/** The project's [build-system]: requirements (sorted), backend and backend-path (PEP 517/518). */
interface BuildSystem {
  requires: string[];
  backend: string;
  backendPath: string[];
}

/** The project's [build-system] from pyproject.toml; PEP 517's fallback when it names no `requires`. */
async function buildSystem(source: string): Promise<BuildSystem> {
  const text = await fsp.readFile(path.join(source, "pyproject.toml"), "utf8").catch(() => "");
  const legacy = { requires: ["setuptools>=40.8.0"], backend: LEGACY_BACKEND, backendPath: [] };
  let table: Record<string, unknown> | undefined;
  try {
    table = (parseToml(text) as { "build-system"?: Record<string, unknown> })["build-system"];
  } catch {
    return legacy; // an unreadable pyproject.toml: pip reports it when it builds
  }
  const strings = (v: unknown) =>
    Array.isArray(v) && v.every((r) => typeof r === "string") ? (v as string[]) : undefined;
  const requires = strings(table?.requires);
  if (!requires) return legacy;
  return {
    requires: [...requires].sort(),
    backend: typeof table?.["build-backend"] === "string" ? table["build-backend"] : LEGACY_BACKEND,
    backendPath: strings(table?.["backend-path"]) ?? [],
  };
}

/** PEP 517's fallback for a project without `build-backend`. */
const LEGACY_BACKEND = "setuptools.build_meta:__legacy__";

/**
 * The project's build requirements installed once per (requirements, Python, pip options) into
 * the cache, so a rebuild after a code change does not resolve and install them again (pip's
 * isolated build does, every time).
 */
async function buildEnv(
  python: string,
  source: string,
  requires: string[],
  m: RuntimeManifest,
  pipArgs: string[],
): Promise<string> {
  const key = createHash("sha256")
    .update(JSON.stringify({ requires, python: m.python.version, soabi: m.python.soabi, pipArgs }))
    .digest("hex")
    .slice(0, 32);
  const { dir } = await materialize({
    bucket: BUCKETS.buildEnvs,
    key,
    build: (tmp) =>
      run(
        python,
        ["-I", "-m", "pip", "install", "--disable-pip-version-check", ...pipArgs].concat([
          "--target",
          tmp,
          ...requires,
        ]),
        `installing the build requirements (${requires.join(", ")})`,
        { keepPip: true, cwd: source },
      ),
  });
  await touchEntry(dir);
  return dir;
}

/**
 * The project's wheel, built once per (source tree, Python, pip options) into the cache: a warm
 * rebuild of an unchanged project skips the build backend. A changed project is built without
 * build isolation against the cached build requirements (buildEnv); should that fail (a backend
 * that asks for more at build time), pip's isolated build runs instead.
 */
export async function projectWheel(
  python: string,
  source: string,
  m: RuntimeManifest,
  pipArgs: string[],
): Promise<string> {
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        tree: await treeKey(source),
        python: m.python.version,
        soabi: m.python.soabi,
        pipArgs,
      }),
    )
    .digest("hex")
    .slice(0, 32);
  const wheelArgs = ["-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", ...pipArgs];
  const { dir } = await materialize({
    bucket: BUCKETS.wheels,
    key,
    build: async (tmp) => {
      const { requires, backend, backendPath } = await buildSystem(source);
      const env = await buildEnv(python, source, requires, m, pipArgs).catch(() => undefined);
      if (env) {
        try {
          // The backend called directly: pip's start-up and metadata step were most of the time.
          return await run(
            python,
            ["-s", pythonAsset("build_wheel.py"), backend, tmp, ...backendPath],
            "building the project's wheel",
            { cwd: source, env: { PYTHONPATH: env } },
          );
        } catch {
          await fsp.rm(tmp, { recursive: true, force: true });
          await fsp.mkdir(tmp, { recursive: true });
        }
        try {
          // -s, not -I: the backend must see PYTHONPATH (pip's hook subprocesses inherit it).
          return await run(
            python,
            ["-s", ...wheelArgs, "--no-build-isolation", "-w", tmp, source],
            "building the project's wheel",
            { keepPip: true, cwd: source, env: { PYTHONPATH: env } },
          );
        } catch {
          await fsp.rm(tmp, { recursive: true, force: true });
          await fsp.mkdir(tmp, { recursive: true });
        }
      }
      await run(python, ["-I", ...wheelArgs, "-w", tmp, source], "building the project's wheel", {
        keepPip: true,
        cwd: source,
      });
    },
  });
  await touchEntry(dir);
  const wheel = (await fsp.readdir(dir)).find((f) => f.endsWith(".whl"));
  if (!wheel)
    throw new PyportError("E_BUILD", `pip wheel produced no wheel for ${source}`, {
      hint: "Check the project's [build-system].",
    });
  return path.join(dir, wheel);
}

/**
 * Removes setuptools (with pkg_resources and its distutils shim), which ensurepip installs into
 * older runtimes (3.11: 7.7 MiB) although only builds need it — unless a distribution in the
 * bundle requires it (Requires-Dist) or the requirements file names it. Returns the bytes removed.
 */
export async function removeSetuptools(site: string, requirementsText = ""): Promise<number> {
  const entries = await fsp.readdir(site);
  const dist = entries.find((e) => /^setuptools-[^-]+\.dist-info$/.test(e));
  if (!dist) return 0;
  if (/^\s*(setuptools|pkg[-_]resources)\b/im.test(requirementsText)) return 0;
  for (const e of entries) {
    if (!e.endsWith(".dist-info") || e === dist) continue;
    const meta = await fsp.readFile(path.join(site, e, "METADATA"), "utf8").catch(() => "");
    if (/^Requires-Dist:\s*(setuptools|pkg[-_]resources)\b/im.test(meta)) return 0;
  }
  let bytes = 0;
  for (const e of entries) {
    if (
      e === dist ||
      /^(setuptools|pkg_resources|_distutils_hack)$/.test(e) ||
      e === "distutils-precedence.pth"
    ) {
      const full = path.join(site, e);
      const st = await fsp.lstat(full);
      bytes += st.isDirectory() ? await treeSize(full) : st.size;
      await fsp.rm(full, { recursive: true, force: true });
    }
  }
  return bytes;
}

/** Removes pip and ensurepip from a bundle: an application does not install packages at run time. */
export async function removePip(bundle: string, site: string): Promise<void> {
  for (const e of await fsp.readdir(site))
    if (e === "pip" || /^pip-[^-]+\.dist-info$/.test(e))
      await fsp.rm(path.join(site, e), { recursive: true, force: true });
  for (const e of await fsp.readdir(path.join(bundle, "bin")))
    if (/^pip(3(\.\d+)?)?$/.test(e)) await fsp.rm(path.join(bundle, "bin", e), { force: true });
  await fsp.rm(path.join(path.dirname(site), "ensurepip"), { recursive: true, force: true });
}
