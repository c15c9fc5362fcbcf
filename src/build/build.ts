/**
 * `build`: a Python project → a bundle that runs anywhere. Plan, then apply, all inside a
 * private sibling temp dir of `--out`; outputs are moved into `--out` only when everything
 * (install, launchers, bytecode, licences, audit, archives) has succeeded, so a failed or
 * interrupted build leaves nothing half-written there. Temp dirs of dead builds are removed by
 * the next one.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { audit, type AuditReport } from "../audit/audit.js";
import { resolveNeeded } from "../audit/resolve.js";
import { readTree } from "../audit/tree.js";
import { findHostLibrary } from "../runtime/host-libs.js";
import { cycloneDx } from "../audit/sbom.js";
import { hasErrno, PyportError } from "../errors.js";
import { compileArgs } from "../python/compile.js";
import { dropSources } from "./sourceless.js";
import { discoverPythons } from "../python/discover.js";
import { createRuntime } from "../runtime/create.js";
import { describeGraft, type GraftedLibrary, type LibcMode } from "../runtime/closure.js";
import { fixShebangs } from "../runtime/fixups.js";
import { MANIFEST_FILE, type RuntimeManifest } from "../runtime/manifest.js";
import { dropBuildSupport, type Profile } from "../runtime/profile.js";
import type { RuntimeSource } from "../runtime/sources.js";
import { describeFailure, execFile, pythonEnv } from "../util/exec.js";
import { BUCKETS } from "../store/buckets.js";
import { materialize, touchEntry } from "../store/cache.js";
import { pythonAsset } from "../util/assets.js";
import { replaceDir, sha256File, walkFiles } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";
import { loadConfig, type BuildConfig, type Format } from "./config.js";
import { writeEntryLaunchers, type EntryPoint } from "./entry-points.js";
import { writeLicenses } from "./licenses.js";
import { applyGlobs, dropLocalDirectUrls, refreshRecords, sizeByPackage } from "./prune.js";
import { DEFAULT_ONEFILE_LEVEL, onefileStub, writeOnefile } from "./onefile.js";
import { writeTarArchive } from "./tar-write.js";
import { checkOutputs, isWithin, recordOutputs } from "./outputs.js";
import { isProcessAlive } from "../util/process.js";

export interface BuildOptions {
  projectDir: string;
  out?: string;
  formats?: Format[];
  python?: string;
  resources?: BuildConfig["resources"];
  /** More pip install arguments (after [tool.pyport] pip-args), e.g. ["--no-index", "--find-links", "wheels/"]. */
  pipArgs?: string[];
  libc?: LibcMode;
  profile?: Profile;
  /** The console script a onefile runs (overrides [tool.pyport] entry). */
  entry?: string;
  /** Skip the audit (printed by the CLI); default: audit, and fail the build on errors. */
  audit?: boolean;
  /** Replace existing outputs that pyport did not write (never the project itself). */
  force?: boolean;
  reporter?: Reporter;
}

export interface BuildOutput {
  format: Format;
  path: string;
  /** File sha256 for archives; for `dir`, sha256 over the sorted (path, mode, content sha256) list. */
  sha256: string;
  bytes: number;
}

export interface BuildResult {
  name: string;
  version: string;
  outputs: BuildOutput[];
  entryPoints: EntryPoint[];
  sizes: { name: string; bytes: number }[];
  audit?: AuditReport;
  ms: number;
}

const TEMP_TAG = "pyport-build";

/** Removes `.<out>.pyport-build-<pid>-…` siblings left by builds whose process is gone. */
async function removeStaleTemps(out: string): Promise<void> {
  const parent = path.dirname(out);
  const prefix = `.${path.basename(out)}.${TEMP_TAG}-`;
  for (const name of await fsp.readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (pid !== process.pid && !isProcessAlive(pid))
      await fsp.rm(path.join(parent, name), { recursive: true, force: true });
  }
}

/** Removes `dir` and its parents up to `top` while they are empty (what a failed build created). */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  for (let d = dir; isWithin(d, top); d = path.dirname(d)) {
    try {
      await fsp.rmdir(d);
    } catch (err) {
      if (hasErrno(err, "ENOTEMPTY") || hasErrno(err, "EEXIST") || hasErrno(err, "ENOENT")) return;
      throw err;
    }
    if (d === top) return;
  }
}

/** The configured source, else the newest Python 3.8+ on this machine that can install pip. */
async function sourceOf(cfg: BuildConfig, reporter?: Reporter): Promise<RuntimeSource> {
  if (cfg.archive) return { archive: cfg.archive, sha256: cfg.sha256 };
  if (cfg.python) return { python: cfg.python };
  const usable = (await discoverPythons()).filter(
    (p) =>
      p.probe.major === 3 &&
      p.probe.minor >= 8 &&
      p.probe.ensurepip.present &&
      p.probe.ensurepip.wheels,
  );
  usable.sort((a, b) => b.probe.minor - a.probe.minor);
  if (!usable[0])
    throw new PyportError("E_NOT_FOUND", "no Python 3.8+ with ensurepip found on this machine", {
      hint: 'Set [tool.pyport] python = "3.12" (or an interpreter path), or archive = "<python-build-standalone URL>" with sha256.',
    });
  reporter?.note(
    `no Python source configured: using Python ${usable[0].probe.version} at ${usable[0].path} (set [tool.pyport] python to choose)`,
  );
  return { python: usable[0].path };
}

async function run(
  python: string,
  args: string[],
  what: string,
  opts: { keepPip?: boolean; cwd?: string } = {},
): Promise<void> {
  const r = await execFile(python, args, {
    env: pythonEnv({ keepPip: opts.keepPip }),
    cwd: opts.cwd,
  });
  if (r.code !== 0)
    throw new PyportError("E_BUILD", `${what} failed: ${describeFailure("python3", args, r)}`, {
      hint: "Read pip's message above; fix the project or pass pip options with [tool.pyport] pip-args.",
    });
}

/** The site-packages directory of the bundle's runtime. */
function sitePackages(bundle: string, m: RuntimeManifest): string {
  const [maj, min] = m.python.version.split(".");
  return path.join(bundle, "lib", `python${maj}.${min}`, "site-packages");
}

/** sha256 over the sorted (path, exec bit, content sha256) list of a directory, and its size. */
function dirDigest(dir: string): { sha256: string; bytes: number } {
  const hash = createHash("sha256");
  let bytes = 0;
  const walk = (rel: string) => {
    const entries = fs
      .readdirSync(path.join(dir, rel), { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(dir, r);
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) hash.update(`L ${r} ${fs.readlinkSync(full)}\n`);
      else {
        const data = fs.readFileSync(full);
        bytes += data.length;
        hash.update(
          `F ${r} ${fs.statSync(full).mode & 0o111 ? "x" : "-"} ${createHash("sha256").update(data).digest("hex")}\n`,
        );
      }
    }
  };
  walk("");
  return { sha256: hash.digest("hex"), bytes };
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const cfg = loadConfig(opts.projectDir);
  if (opts.python) [cfg.python, cfg.archive] = [opts.python, undefined];
  cfg.libc = opts.libc ?? cfg.libc;
  cfg.profile = opts.profile ?? cfg.profile;
  cfg.formats = opts.formats ?? cfg.formats;
  cfg.resources = opts.resources ?? cfg.resources;
  cfg.pipArgs = [...cfg.pipArgs, ...(opts.pipArgs ?? [])];
  const reporter = opts.reporter;
  cfg.entry = opts.entry ?? cfg.entry;
  if (cfg.formats.includes("onefile")) checkDeclaredEntry(cfg);
  if (cfg.formats.includes("onefile")) onefileStub(); // throws E_TOOL before any work when missing
  if (
    (cfg.formats.includes("tar.zst") || cfg.formats.includes("onefile")) &&
    (await execFile("zstd", ["--version"]).catch(() => ({ code: 127 }))).code !== 0
  ) {
    throw new PyportError(
      "E_TOOL",
      "the tar.zst and onefile formats need the zstd tool, which is not installed",
      { hint: "Install it (apt-get install zstd), or use --format tar.gz." },
    );
  }

  const out = path.resolve(opts.out ?? path.join(cfg.projectDir, "dist"));
  const outputNames = (machine: string) => {
    const base = `${cfg.name}-${cfg.version}-linux-${machine}`;
    return cfg.formats.map((f) =>
      f === "dir"
        ? { name: cfg.name, dir: true }
        : { name: f === "onefile" ? base : `${base}.${f}`, dir: false },
    );
  };
  const guard = { projectDir: cfg.projectDir, out, name: cfg.name, force: opts.force };
  await checkOutputs({ ...guard, outputs: outputNames(os.machine()) });
  // Created here only so the temp dir can sit beside it; removed again if the build fails.
  const created = await fsp.mkdir(out, { recursive: true });
  let succeeded = false;
  await removeStaleTemps(out);
  const tmp = path.join(
    path.dirname(out),
    `.${path.basename(out)}.${TEMP_TAG}-${process.pid}-${Date.now().toString(36)}`,
  );
  await fsp.mkdir(tmp, { mode: 0o700 });
  try {
    const bundle = path.join(tmp, cfg.name);
    reporter?.step(
      `runtime (${cfg.archive ? `archive ${cfg.archive}` : `Python ${cfg.python ?? "3"}`}, libc ${cfg.libc}, profile ${cfg.profile})`,
    );
    const { manifest } = await createRuntime({
      source: await sourceOf(cfg, reporter),
      out: bundle,
      libc: cfg.libc,
      profile: cfg.profile,
      reporter,
    });
    if (!manifest.pip)
      throw new PyportError(
        "E_BUILD",
        "the runtime has no pip, so the project cannot be installed",
        {
          hint: "Use a Python source with ensurepip (pyenv builds, python-build-standalone archives, Debian's python3 with python3-pip-whl).",
        },
      );
    const python = path.join(bundle, "bin", "python3");

    const pipBase = [
      "-I",
      "-m",
      "pip",
      "install",
      "--no-warn-script-location",
      "--disable-pip-version-check",
      "--no-compile",
      ...cfg.pipArgs,
    ];
    if (cfg.requirements) {
      reporter?.step(`installing ${cfg.requirements}`);
      await run(
        python,
        [...pipBase, "-r", path.join(cfg.projectDir, cfg.requirements)],
        `pip install -r ${cfg.requirements}`,
        { keepPip: true, cwd: cfg.projectDir },
      );
    }
    reporter?.step(`installing ${cfg.name} and its dependencies with the runtime's pip`);
    // From a copy: build backends write build/ and *.egg-info into the source tree otherwise.
    const source = path.join(tmp, "source");
    await copyProject(cfg.projectDir, source, out);
    const wheel = await projectWheel(python, source, manifest, cfg.pipArgs);
    await run(python, [...pipBase, wheel], `pip install ${cfg.projectDir}`, {
      keepPip: true,
      cwd: source,
    });

    const site = sitePackages(bundle, manifest);
    const graftedForWheels = cfg.libc === "bundled" ? await graftForWheels(bundle, reporter) : [];
    reporter?.step("writing launchers");
    const entryPoints = await writeEntryLaunchers({
      bundle,
      site,
      project: cfg.name,
      manifest,
      isolated: cfg.isolated,
      optimize: cfg.bytecode.optimize,
    });
    await fixShebangs(path.join(bundle, "bin"));
    await dropLocalDirectUrls(site);

    reporter?.step("pruning and compiling bytecode");
    if (!cfg.keepPip) {
      // Without pip nothing is built in the bundle: its C headers and pkg-config files go too.
      await removePip(bundle, site);
      await dropBuildSupport(bundle);
    }
    await applyGlobs(bundle, cfg.include, cfg.exclude);
    await refreshRecords(site);
    await compileBytecode(python, site, cfg, bundle);
    if (cfg.resources === "zip-stdlib") {
      reporter?.step("zipping the standard library");
      await run(
        python,
        ["-I", pythonAsset("zip_stdlib.py"), bundle, String(cfg.bytecode.optimize)],
        "zipping the standard library",
      );
    }
    const sourceBytes = await dropStdlibSources(path.dirname(site), cfg);
    if (sourceBytes)
      reporter?.note(
        `the standard library ships as bytecode only (${(sourceBytes / 2 ** 20).toFixed(1)} MiB of .py left out; bytecode.stdlib-sources = true keeps them)`,
      );

    reporter?.step("collecting licences");
    const bundleManifest = {
      ...manifest,
      kind: "bundle",
      grafted: [...manifest.grafted, ...graftedForWheels],
      app: { name: cfg.name, version: cfg.version, entryPoints },
    };
    await fsp.writeFile(
      path.join(bundle, MANIFEST_FILE),
      JSON.stringify(bundleManifest, null, 2) + "\n",
    );
    const components = await writeLicenses(bundle);
    await fsp.writeFile(
      path.join(bundle, "sbom.cdx.json"),
      JSON.stringify(cycloneDx(cfg.name, components), null, 2) + "\n",
    );

    let report: AuditReport | undefined;
    if (opts.audit !== false) {
      reporter?.step("auditing the bundle");
      report = await audit(bundle);
      const errors = report.findings.filter((f) => f.severity === "error");
      if (errors.length) {
        throw new PyportError(
          "E_AUDIT",
          `the audit found ${errors.length} error(s); nothing was written to ${out}:\n${errors
            .slice(0, 10)
            .map((f) => `  ${f.code} ${f.path}: ${f.message}`)
            .join("\n")}`,
          {
            hint: "Fix them (see `pyport audit` of the bundle for what to do), or build with --no-audit.",
          },
        );
      }
    }

    const outputs: BuildOutput[] = [];
    const base = `${cfg.name}-${cfg.version}-linux-${manifest.python.machine}`;
    if (cfg.formats.includes("onefile")) {
      const entry = onefileEntry(entryPoints, cfg);
      reporter?.step(
        `writing ${base} (onefile running bin/${entry}; zstd level ${cfg.onefileLevel ?? DEFAULT_ONEFILE_LEVEL})`,
      );
      const file = path.join(tmp, base);
      const sha256 = await writeOnefile({
        bundle,
        dest: file,
        tmpDir: tmp,
        meta: { name: cfg.name, version: cfg.version, entry: `bin/${entry}` },
        level: cfg.onefileLevel,
      });
      outputs.push({
        format: "onefile",
        path: path.join(out, base),
        sha256,
        bytes: (await fsp.stat(file)).size,
      });
    }
    for (const format of cfg.formats.filter((f) => f === "tar.gz" || f === "tar.zst")) {
      reporter?.step(`writing ${base}.${format}`);
      const file = path.join(tmp, `${base}.${format}`);
      await writeTarArchive(bundle, cfg.name, file, format === "tar.gz" ? "gzip" : "zstd");
      outputs.push({
        format,
        path: path.join(out, path.basename(file)),
        sha256: await sha256File(file),
        bytes: (await fsp.stat(file)).size,
      });
    }
    const sizes = await sizeByPackage(bundle, site);
    if (cfg.formats.includes("dir")) {
      const digest = dirDigest(bundle);
      outputs.unshift({ format: "dir", path: path.join(out, cfg.name), ...digest });
    }
    // Everything succeeded: check again (the tree may have changed meanwhile), then move the
    // outputs into place (each an atomic rename) and record what pyport wrote.
    await checkOutputs({ ...guard, outputs: outputNames(manifest.python.machine) });
    for (const o of outputs) {
      if (o.format === "dir") await replaceDir(bundle, o.path);
      else await fsp.rename(path.join(tmp, path.basename(o.path)), o.path);
    }
    await recordOutputs(
      out,
      outputs
        .filter((o) => o.format !== "dir")
        .map((o) => ({ name: path.basename(o.path), sha256: o.sha256 })),
    );
    succeeded = true;
    return {
      name: cfg.name,
      version: cfg.version,
      outputs,
      entryPoints,
      sizes,
      audit: report,
      ms: Date.now() - started,
    };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
    if (!succeeded && created !== undefined) await removeEmptyDirs(out, created);
  }
}

/** With `[project.scripts]` declared statically, a onefile's entry is checked before any work. */
function checkDeclaredEntry(cfg: BuildConfig): void {
  if (!cfg.declaredScripts) return; // only known once the project is installed
  onefileEntry(
    cfg.declaredScripts.map((name) => ({ name, target: "", gui: false })),
    cfg,
  );
}

/** The console script a onefile runs: the configured one, the only one, or the one named like the project. */
export function onefileEntry(entryPoints: EntryPoint[], cfg: BuildConfig): string {
  const names = entryPoints.map((e) => e.name);
  if (cfg.entry) {
    if (names.includes(cfg.entry)) return cfg.entry;
    throw new PyportError(
      "E_BUILD",
      `entry ${JSON.stringify(cfg.entry)} is not a console script of ${cfg.name} (it has: ${names.join(", ") || "none"})`,
      { hint: "Set [tool.pyport] entry (or --entry) to one of them." },
    );
  }
  if (names.length === 1) return names[0];
  const named = names.find((n) => n === cfg.name);
  if (named) return named;
  if (!names.length)
    throw new PyportError(
      "E_BUILD",
      `--format onefile needs a console script to run, and ${cfg.name} declares none`,
      { hint: 'Add one to pyproject.toml: [project.scripts] mytool = "mypackage.cli:main".' },
    );
  throw new PyportError(
    "E_BUILD",
    `${cfg.name} has several console scripts (${names.join(", ")}); which one should the onefile run?`,
    { hint: 'Set [tool.pyport] entry = "NAME" or pass --entry NAME.' },
  );
}

/** Never part of what pip installs from the project: VCS data and caches, at any depth. */
const SKIP_ANYWHERE = new Set([".git", ".hg", ".svn", "__pycache__"]);
/** Build output and environments, skipped only at the project's top level (a package may be named `build`). */
const SKIP_AT_TOP = new Set(["build", "dist", ".venv", "venv", "node_modules", ".tox", ".nox"]);

/** Copies the project source for installing, without VCS data, build output or `out` itself. */
async function copyProject(from: string, to: string, out: string): Promise<void> {
  await fsp.cp(from, to, {
    recursive: true,
    filter: (src) => {
      const name = path.basename(src);
      const top = path.dirname(path.resolve(src)) === path.resolve(from);
      return (
        path.resolve(src) !== out &&
        !SKIP_ANYWHERE.has(name) &&
        !(top && SKIP_AT_TOP.has(name)) &&
        !name.endsWith(".egg-info") &&
        !name.startsWith(`.${path.basename(out)}.${TEMP_TAG}`)
      );
    },
  });
}

/**
 * Bundled libc: libraries that installed wheels expect from the system (libstdc++, libgcc_s …,
 * allowed by manylinux policies) are copied from the build machine into libexec/, which the
 * bundled loader searches for every object — the target may have no libraries at all.
 */
async function graftForWheels(bundle: string, reporter?: Reporter): Promise<GraftedLibrary[]> {
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

/**
 * The project's wheel, built once per (source tree, Python, pip options) into the cache: a warm
 * rebuild of an unchanged project skips the build backend (seconds of isolated-env setup).
 */
async function projectWheel(
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
  const { dir } = await materialize({
    bucket: BUCKETS.wheels,
    key,
    build: (tmp) =>
      run(
        python,
        [
          "-I",
          "-m",
          "pip",
          "wheel",
          "--no-deps",
          "--disable-pip-version-check",
          ...pipArgs,
          "-w",
          tmp,
          source,
        ],
        "building the project's wheel",
        { keepPip: true, cwd: source },
      ),
  });
  await touchEntry(dir);
  const wheel = (await fsp.readdir(dir)).find((f) => f.endsWith(".whl"));
  if (!wheel)
    throw new PyportError("E_BUILD", `pip wheel produced no wheel for ${source}`, {
      hint: "Check the project's [build-system].",
    });
  return path.join(dir, wheel);
}

/** Removes pip and ensurepip from a bundle: an application does not install packages at run time. */
async function removePip(bundle: string, site: string): Promise<void> {
  for (const e of await fsp.readdir(site))
    if (e === "pip" || /^pip-[^-]+\.dist-info$/.test(e))
      await fsp.rm(path.join(site, e), { recursive: true, force: true });
  for (const e of await fsp.readdir(path.join(bundle, "bin")))
    if (/^pip(3(\.\d+)?)?$/.test(e)) await fsp.rm(path.join(bundle, "bin", e), { force: true });
  await fsp.rm(path.join(path.dirname(site), "ensurepip"), { recursive: true, force: true });
}

/** Hash-checked .pyc for everything installed (sourceless .pyc with pyc-only). */
async function compileBytecode(
  python: string,
  site: string,
  cfg: BuildConfig,
  bundle: string,
): Promise<void> {
  const optimize = cfg.bytecode.optimize;
  const stdlib = path.dirname(site);
  if (optimize > 0) {
    // Runtimes ship plain .pyc only: give the stdlib the optimisation level the launchers use.
    await run(
      python,
      compileArgs({
        root: bundle,
        mode: "unchecked-hash",
        optimize,
        exclude: "/site-packages/",
        targets: [stdlib],
      }),
      "compiling the standard library's bytecode",
    );
  }
  if (!fs.existsSync(site)) return;
  if (!cfg.bytecode.pycOnly) {
    await run(
      python,
      compileArgs({ root: bundle, mode: "checked-hash", optimize, targets: [site] }),
      "compiling bytecode",
    );
    return;
  }
  await run(
    python,
    compileArgs({ root: bundle, mode: "unchecked-hash", optimize, legacy: true, targets: [site] }),
    "compiling bytecode",
  );
  await dropSources(site, { optimize });
}

/**
 * The stdlib ships sourceless unless `stdlib-sources` (default: only with the full profile) —
 * except os.py, CPython's landmark for its prefix, and _sysconfigdata (the audit scans it for
 * build-machine paths). Runs after zip-stdlib, which compiles from the sources.
 */
async function dropStdlibSources(stdlib: string, cfg: BuildConfig): Promise<number> {
  if (cfg.bytecode.stdlibSources ?? cfg.profile === "full") return 0;
  const keep = (rel: string) =>
    rel === "os.py" || /^(site|dist)-packages$|^config-|^_sysconfigdata_.*\.py$/.test(rel);
  return dropSources(stdlib, { optimize: cfg.bytecode.optimize, keep });
}
