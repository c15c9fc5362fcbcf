/**
 * `createRuntime`: turns a CPython (host interpreter or archive) into a portable runtime.
 * The runtime is built once per (source, options) into the cache (`runtimes-v1`) — stage,
 * prune, graft, strip, relink, fix up, install pip, write PYPORT.json — and then copied to
 * `out` through a sibling temp directory and a rename, so `out` is never half-written.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { readElfFile } from "../elf/file.js";
import { compileArgs } from "../python/compile.js";
import { shortVersion } from "../python/probe.js";
import { BUCKETS } from "../store/buckets.js";
import { COMPLETE_MARKER, materialize, touchEntry } from "../store/cache.js";
import { discardEntry, entryUnchanged, linkTree, STATE_FILE } from "../store/linked-files.js";
import { describeFailure, execFile, pythonEnv } from "../util/exec.js";
import { pathExists, replaceDir, siblingTemp } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";
import { PYPORT_VERSION } from "../version.js";
import { applyRunpaths, graftLibraries, type LibcMode } from "./closure.js";
import {
  addTerminfo,
  buildPathMap,
  fixMakefiles,
  fixPkgconfig,
  fixShebangs,
  fixSysconfigdata,
  installMachineAdapters,
} from "./fixups.js";
import { copyTree, stageInterpreter } from "./layout.js";
import { launcherKind, writeLauncher, type LauncherKind } from "./launcher.js";
import { glibcFloor, providedGlibc } from "./libc.js";
import { MANIFEST_FILE, MANIFEST_SCHEMA, type RuntimeManifest } from "./manifest.js";
import { DEBIAN_WHEEL_DIR, isDebianPatched, undoDebianLayout } from "./debian.js";
import { GNU_READLINE, pruneRuntime, stripDebugInfo, type Profile } from "./profile.js";
import { pyportFingerprint } from "./fingerprint.js";
import { prepareSource, type PreparedSource, type RuntimeSource } from "./sources.js";

/** Bump when the runtime layout or build steps change: old cache entries are then not reused. */
const RUNTIME_FORMAT = 10;

export interface CreateRuntimeOptions {
  source: RuntimeSource;
  out: string;
  libc?: LibcMode;
  profile?: Profile;
  /** Strip debug info; default: every profile but `full`. */
  strip?: boolean;
  /** Replace an existing, non-empty `out`. */
  force?: boolean;
  /**
   * Hard-link the cached runtime's files into `out` instead of copying them (builds: their
   * trees are written only by replacing files; see store/linked-files.ts).
   */
  link?: boolean;
  reporter?: Reporter;
}

export interface CreateRuntimeResult {
  out: string;
  manifest: RuntimeManifest;
  /** True when the runtime came from the cache without being built. */
  cached: boolean;
}

export async function createRuntime(opts: CreateRuntimeOptions): Promise<CreateRuntimeResult> {
  const out = path.resolve(opts.out);
  await checkOut(out, opts.force === true);
  let { dir, built } = await cachedRuntime(opts);
  // Checked for copies too: a bundle's link may have changed the entry since.
  if (!(await entryUnchanged(dir))) {
    opts.reporter?.warn(
      `the cached runtime ${dir} was changed in place (through a hard link into a bundle?); rebuilding it`,
    );
    discardEntry(dir);
    ({ dir, built } = await cachedRuntime(opts));
  }

  opts.reporter?.step(`${opts.link ? "linking" : "copying"} the runtime to ${out}`);
  const tmp = siblingTemp(out, "create");
  try {
    const skip = (rel: string) => rel === COMPLETE_MARKER || rel === STATE_FILE;
    if (opts.link) linkTree(dir, tmp, skip);
    else await copyTree(dir, tmp, skip);
    await fsp.chmod(tmp, 0o755);
    await replaceDir(tmp, out);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const manifest = JSON.parse(
    await fsp.readFile(path.join(out, MANIFEST_FILE), "utf8"),
  ) as RuntimeManifest;
  // Said on every create, from the cache or not: what the profile left out for licensing.
  if (manifest.dropped[GNU_READLINE])
    opts.reporter?.note(
      "left out the readline module: it links GNU readline (GPL-3.0-or-later), which proprietary software may not ship; input() and the REPL work without line editing (--profile full keeps it)",
    );
  return { out, manifest, cached: !built };
}

/**
 * The runtime inside pyport's cache (built there first if needed): complete, relocatable and
 * runnable in place, but owned by the cache — `pyport cache prune` may remove it when unused.
 */
export async function cachedRuntime(
  opts: Omit<CreateRuntimeOptions, "out" | "force">,
): Promise<{ dir: string; built: boolean }> {
  const libc = opts.libc ?? "system";
  const profile = opts.profile ?? "default";
  const strip = opts.strip ?? profile !== "full";
  const source = await prepareSource(opts.source, opts.reporter);
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        RUNTIME_FORMAT,
        pyport: await pyportFingerprint(),
        id: source.identity,
        libc,
        profile,
        strip,
        launcher: libc === "bundled" ? launcherKind() : undefined,
      }),
    )
    .digest("hex")
    .slice(0, 32);
  const result = await materialize({
    bucket: BUCKETS.runtimes,
    key,
    build: (tmp) =>
      buildRuntime({ root: tmp, source, libc, profile, strip, reporter: opts.reporter }),
  });
  await touchEntry(result.dir);
  return result;
}

async function checkOut(out: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(out);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    if (hasErrno(err, "ENOTDIR"))
      throw new PyportError("E_USAGE", `--out ${out} is an existing file, not a directory`, {
        hint: "Name a directory for the runtime (it is created).",
      });
    throw err;
  }
  if (entries.length > 0 && !force) {
    throw new PyportError("E_EXISTS", `output directory ${out} exists and is not empty`, {
      hint: "Choose another --out, or pass --force to replace it.",
    });
  }
}

interface BuildContext {
  root: string;
  source: PreparedSource;
  libc: LibcMode;
  profile: Profile;
  strip: boolean;
  reporter?: Reporter;
}

async function buildRuntime(ctx: BuildContext): Promise<void> {
  const { root, source, reporter } = ctx;
  const probe = source.probe;
  const ver = shortVersion(probe);
  const stdlibRel = `lib/python${ver}`;
  const stdlib = path.join(root, stdlibRel);
  const warnings: string[] = [];

  reporter?.step(`copying Python ${probe.version} from ${probe.prefix}`);
  const staged = await stageInterpreter(probe, root);
  const { elf: interpElf } = await readElfFile(path.join(root, "bin", `python${ver}`));
  const linkMode = interpElf.needed.some((n) => n.startsWith("libpython")) ? "shared" : "static";

  reporter?.step(`applying the ${ctx.profile} profile`);
  const pruned = await pruneRuntime(root, stdlibRel, ctx.profile);
  const terminfoFrom = (await hasModule(stdlib, "_curses")) ? await addTerminfo(root) : undefined;

  let realInterpreter = `bin/python${ver}`;
  if (ctx.libc === "bundled") {
    await fsp.mkdir(path.join(root, "libexec"), { recursive: true });
    realInterpreter = `libexec/python${ver}`;
    await fsp.rename(path.join(root, "bin", `python${ver}`), path.join(root, realInterpreter));
    staged.dirs.set("libexec", staged.dirs.get("bin")!);
  }

  reporter?.step("resolving and grafting shared libraries");
  const closure = await graftLibraries({
    root,
    libc: ctx.libc,
    originDirOf: (rel) => staged.dirs.get(path.dirname(rel)) ?? path.dirname(rel),
    reporter,
  });
  for (const u of closure.unresolved)
    warnings.push(`${u.file} needs ${u.soname}, which the build machine does not have`);
  if (ctx.strip) {
    reporter?.step("stripping debug information");
    await stripDebugInfo(root, closure.elfRels);
  }
  const elfFiles = await applyRunpaths(root, closure);

  let bundledGlibc: string | undefined;
  let launcher: LauncherKind | undefined;
  if (ctx.libc === "bundled") {
    const loader = interpElf.interpreter ? path.basename(interpElf.interpreter) : undefined;
    if (!loader || !(await pathExists(path.join(root, "libexec", loader)))) {
      throw new PyportError(
        "E_RELOCATE",
        `cannot bundle the C library: the loader ${interpElf.interpreter ?? "(none: static binary?)"} was not grafted`,
      );
    }
    const libcElf = elfFiles.find((f) => f.rel === "libexec/libc.so.6");
    bundledGlibc = libcElf ? providedGlibc(libcElf.elf) : undefined;
    launcher = await writeLauncher(path.join(root, "bin", `python${ver}`), {
      exec: `../libexec/python${ver}`,
      loader: `../libexec/${loader}`,
      libpath: "../libexec",
      argv0: "self",
    });
    if (launcher === "sh")
      warnings.push(
        "no native launcher was built with pyport (no C compiler at install time): bin/python3 is a POSIX sh script and the target needs /bin/sh",
      );
  }
  for (const alias of ["python3", "python"])
    await fsp.symlink(`python${ver}`, path.join(root, "bin", alias));

  reporter?.step("fixing build paths, CA certificates and terminfo lookup");
  const map = buildPathMap(probe, ver);
  const debian = isDebianPatched(stdlib);
  const debianWheels = debian
    ? await undoDebianLayout(
        root,
        stdlib,
        (probe.vars.WHEEL_PKG_DIR as string | undefined) ?? DEBIAN_WHEEL_DIR,
      )
    : [];
  const changedPy = [
    ...(await fixSysconfigdata(stdlib, map, debian ? probe.prefix : undefined)),
    ...(await installMachineAdapters(stdlib)),
  ];
  await fixMakefiles(stdlib, map);
  await fixPkgconfig(root, map);

  const python = path.join(root, "bin", "python3");
  let pip = false;
  const pipWheel = debianWheels.some((w) => w.startsWith("pip-"));
  if (debian && !pipWheel)
    warnings.push(
      `Debian's ensurepip takes pip from ${String(probe.vars.WHEEL_PKG_DIR ?? DEBIAN_WHEEL_DIR)}, which has no pip wheel on this machine: the runtime has no pip (apt-get install python3-pip-whl)`,
    );
  else if (!debian && (!probe.ensurepip.present || !probe.ensurepip.wheels)) {
    warnings.push(
      `the source has no usable ensurepip${probe.ensurepip.error ? ` (${probe.ensurepip.error})` : ""}: the runtime has no pip`,
    );
  } else {
    reporter?.step("installing pip (ensurepip)");
    const r = await execFile(python, ["-I", "-m", "ensurepip", "--default-pip"], {
      env: pythonEnv(),
    });
    if (r.code === 0) pip = true;
    else
      warnings.push(
        `ensurepip failed, the runtime has no pip: ${describeFailure("python3", ["-m", "ensurepip"], r)}`,
      );
  }
  if (ctx.profile === "minimal")
    await fsp.rm(path.join(stdlib, "ensurepip"), { recursive: true, force: true });
  if (!probe.venv) warnings.push("the source has no venv module: `python -m venv` will not work");
  await fixShebangs(path.join(root, "bin"));

  // Hash-based .pyc files stay valid whatever the files' mtimes become (cp, tar, unzip on the
  // target), so start-up never pays for recompiling — or fails to cache on read-only media.
  reporter?.step("compiling the standard library (hash-based .pyc)");
  const stdlibArgs = compileArgs({
    root,
    mode: "unchecked-hash",
    exclude: "/site-packages/|/dist-packages/|/test/|/tests/|lib2to3/tests",
    targets: [stdlib],
  });
  const compiled = await execFile(python, stdlibArgs, { env: pythonEnv() });
  if (compiled.code !== 0 && changedPy.length) {
    // Some stdlib trees carry files that do not compile (bad test data): the fixed-up modules must.
    const fixed = await execFile(
      python,
      compileArgs({ root, mode: "unchecked-hash", targets: changedPy }),
      { env: pythonEnv() },
    );
    if (fixed.code !== 0)
      throw new PyportError(
        "E_RELOCATE",
        `compiling fixed-up modules failed: ${describeFailure("python3", ["-m", "compileall"], fixed)}`,
      );
  }

  const floor = glibcFloor(
    elfFiles.filter((f) => ctx.libc === "system" || !f.rel.startsWith("libexec/lib")),
  );
  const manifest: RuntimeManifest = {
    schema: MANIFEST_SCHEMA,
    kind: "runtime",
    pyport: PYPORT_VERSION,
    python: {
      version: probe.version,
      soabi: (probe.vars.SOABI as string) ?? null,
      abiflags: probe.abiflags,
      linkMode,
      machine: interpElf.machine,
    },
    source: {
      kind: source.kind,
      location: source.location,
      sha256: source.sha256,
      buildPrefix: probe.prefix,
    },
    libc: {
      mode: ctx.libc,
      glibcFloor: floor.version,
      floorSetBy: floor.setBy,
      bundledGlibc,
      launcher,
    },
    profile: ctx.profile,
    stripped: ctx.strip,
    dropped: pruned.dropped,
    interpreter: "bin/python3",
    realInterpreter,
    grafted: closure.grafted,
    unresolved: closure.unresolved,
    terminfoFrom,
    pip,
    warnings,
  };
  for (const w of warnings) reporter?.warn(w);
  await fsp.writeFile(path.join(root, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
}

async function hasModule(stdlib: string, name: string): Promise<boolean> {
  try {
    return (await fsp.readdir(path.join(stdlib, "lib-dynload"))).some((f) =>
      f.startsWith(`${name}.`),
    );
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return false;
    throw err;
  }
}
