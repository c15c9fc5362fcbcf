/**
 * `build`: a Python project → a bundle that runs anywhere. `planBundle` (plan.ts) decides, then
 * `applyPlan` does it step by step, all inside a private sibling temp dir of `--out`; outputs are
 * moved into `--out` only when everything (install, launchers, bytecode, licences, audit,
 * archives) has succeeded, so a failed or interrupted build leaves nothing half-written there.
 * Temp dirs of dead builds are removed by the next one.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { writeTarArchive } from "../archive/tar-write.js";
import { audit, type AuditReport } from "../audit/audit.js";
import { cycloneDx } from "../audit/sbom.js";
import { hasErrno, PyportError } from "../errors.js";
import type { Component } from "../audit/components.js";
import type { ImageResult } from "../oci/image.js";
import { splitImageRef } from "../oci/layout.js";
import { onefileStub, writeOnefile } from "../onefile/onefile.js";
import { createRuntime } from "../runtime/create.js";
import { fixShebangs } from "../runtime/fixups.js";
import { MANIFEST_FILE, type RuntimeManifest } from "../runtime/manifest.js";
import { dropBuildSupport } from "../runtime/profile.js";
import { pythonAsset } from "../util/assets.js";
import { execFile } from "../util/exec.js";
import { ifExists, replaceDir, replaceFile, sha256File, walkTree } from "../util/fs.js";
import { isProcessAlive } from "../util/process.js";
import type { Reporter } from "../util/reporter.js";
import { compileBytecode, dropStdlibSources } from "./bytecode.js";
import { loadConfig, type Format } from "./config.js";
import { writeEntryLaunchers, type EntryPoint } from "./entry-points.js";
import {
  graftForWheels,
  removePip,
  removeSetuptools,
  run,
  sitePackages,
  sourceOf,
  TEMP_TAG,
} from "./install.js";
import { writeImageOutputs } from "./image-output.js";
import { stepInstall } from "./install-step.js";
import { scriptProject } from "./script.js";
import { writeLicenses } from "./licenses.js";
import { checkOutputs, isWithin, recordOutputs } from "./outputs.js";
import {
  onefileEntry,
  planBundle,
  plannedOutputs,
  type BuildOverrides,
  type BundlePlan,
} from "./plan.js";
import { serviceCommand } from "./service-spec.js";
import { applyGlobs, dropLocalDirectUrls, refreshRecords, sizeByPackage } from "./prune.js";

export { onefileEntry } from "./plan.js";

export interface BuildOptions extends BuildOverrides {
  projectDir: string;
  reporter?: Reporter;
}

export interface BuildOutput {
  format: Format;
  path: string;
  /**
   * File sha256 for archives; for `dir`, sha256 over the sorted (path, mode, content sha256)
   * list; for `oci`, the image manifest's sha256 (the image digest).
   */
  sha256: string;
  bytes: number;
  /** OCI outputs: the image digest, its tag in the layout, its layers and the SBOM artifact. */
  image?: {
    digest: string;
    ref: string;
    layers: ImageResult["layers"];
    sbom: { digest: string; artifactType: string };
  };
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

/** sha256 over the sorted (path, exec bit, content sha256) list of a directory, and its size. */
async function dirDigest(dir: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const { rel, full, dirent } of walkTree(dir)) {
    if (dirent.isDirectory()) continue;
    if (dirent.isSymbolicLink()) hash.update(`L ${rel} ${await fsp.readlink(full)}\n`);
    else {
      const data = await fsp.readFile(full);
      bytes += data.length;
      const exec = (await fsp.stat(full)).mode & 0o111 ? "x" : "-";
      hash.update(`F ${rel} ${exec} ${createHash("sha256").update(data).digest("hex")}\n`);
    }
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** Builds the project: loads its configuration, plans, checks what the plan needs, applies it. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  if (opts.projectDir.endsWith(".py")) {
    // A script: built as a small project of its own (script.ts), outputs beside the script.
    const s = await scriptProject(opts.projectDir, opts.requirements);
    try {
      return await build({
        ...opts,
        projectDir: s.projectDir,
        requirements: undefined,
        out: opts.out ?? s.defaultOut,
      });
    } finally {
      await s.cleanup();
    }
  }
  const started = Date.now();
  const plan = planBundle(loadConfig(opts.projectDir), opts, { machine: os.machine() });
  if (plan.needs.onefileStub) onefileStub(); // throws E_TOOL before any work when missing
  if (plan.image?.base) splitImageRef(plan.image.base); // a missing base image: E_NOT_FOUND now
  if (
    plan.needs.zstd &&
    (await ifExists(execFile("zstd", ["--version"]), { code: 127 })).code !== 0
  )
    throw new PyportError(
      "E_TOOL",
      "the tar.zst and onefile formats need the zstd tool, which is not installed",
      { hint: "Install it (apt-get install zstd), or use --format tar.gz." },
    );
  await checkOutputs(outputGuard(plan, plan.outputs));
  const result = await applyPlan(plan, opts.reporter);
  return { ...result, ms: Date.now() - started };
}

function outputGuard(plan: BundlePlan, outputs: BundlePlan["outputs"]) {
  return {
    projectDir: plan.projectDir,
    out: plan.out,
    name: plan.name,
    force: plan.force,
    outputs,
  };
}

/** Carries out `plan`: every step in a private temp dir beside `plan.out`, then the outputs. */
export async function applyPlan(
  plan: BundlePlan,
  reporter?: Reporter,
): Promise<Omit<BuildResult, "ms">> {
  const out = plan.out;
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
    const bundle = path.join(tmp, plan.name);
    const manifest = await stepRuntime(plan, bundle, reporter);
    const site = sitePackages(bundle, manifest);
    await stepInstall(plan, { bundle, tmp, manifest, reporter });
    const grafted = plan.libc === "bundled" ? await graftForWheels(bundle, reporter) : [];
    reporter?.step("writing launchers");
    const entryPoints = await writeEntryLaunchers({
      bundle,
      site,
      project: plan.name,
      manifest,
      isolated: plan.launchers.isolated,
      optimize: plan.launchers.optimize,
    });
    await fixShebangs(path.join(bundle, "bin"));
    await dropLocalDirectUrls(site);
    await stepPruneAndCompile(plan, { bundle, site, reporter });
    reporter?.step("collecting licences");
    const bundleManifest = {
      ...manifest,
      kind: "bundle",
      grafted: [...manifest.grafted, ...grafted],
      app: {
        name: plan.name,
        version: plan.version,
        entryPoints,
        services: plan.services.map((svc) => ({
          ...svc,
          command: serviceCommand(
            svc,
            entryPoints.map((e) => e.name),
            plan.name,
          ),
        })),
      },
    };
    await replaceFile(
      path.join(bundle, MANIFEST_FILE),
      JSON.stringify(bundleManifest, null, 2) + "\n",
    );
    const components = await writeLicenses(bundle);
    await replaceFile(
      path.join(bundle, "sbom.cdx.json"),
      JSON.stringify(cycloneDx(plan.name, components), null, 2) + "\n",
    );
    const report = plan.audit ? await stepAudit(plan, bundle, reporter) : undefined;
    const outputs = await stepOutputs(plan, {
      bundle,
      site,
      tmp,
      manifest,
      entryPoints,
      components,
      reporter,
    });
    const sizes = await sizeByPackage(bundle, site);
    // Everything succeeded: check again (the tree may have changed meanwhile), then move the
    // outputs into place (each an atomic rename) and record what pyport wrote.
    await checkOutputs(outputGuard(plan, plannedOutputs(plan, manifest.python.machine)));
    for (const o of outputs) {
      if (o.format === "dir") await replaceDir(bundle, o.path);
      else if (o.format === "oci") await replaceDir(path.join(tmp, path.basename(o.path)), o.path);
      else await fsp.rename(path.join(tmp, path.basename(o.path)), o.path);
    }
    await recordOutputs(
      out,
      outputs
        .filter((o) => o.format !== "dir" && o.format !== "oci")
        .map((o) => ({ name: path.basename(o.path), sha256: o.sha256 })),
    );
    succeeded = true;
    return { name: plan.name, version: plan.version, outputs, entryPoints, sizes, audit: report };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
    if (!succeeded && created !== undefined) await removeEmptyDirs(out, created);
  }
}

/** The portable runtime, created into the bundle directory (from pyport's cache). */
async function stepRuntime(
  plan: BundlePlan,
  bundle: string,
  reporter?: Reporter,
): Promise<RuntimeManifest> {
  const { source } = plan;
  reporter?.step(
    `runtime (${source.archive ? `archive ${source.archive}` : `Python ${source.python ?? "3"}`}, libc ${plan.libc}, profile ${plan.profile})`,
  );
  const { manifest } = await createRuntime({
    source: await sourceOf(source, reporter),
    out: bundle,
    libc: plan.libc,
    profile: plan.profile,
    link: true,
    reporter,
  });
  if (!manifest.pip)
    throw new PyportError("E_BUILD", "the runtime has no pip, so the project cannot be installed", {
      hint: "Use a Python source with ensurepip (pyenv builds, python-build-standalone archives, Debian's python3 with python3-pip-whl).",
    });
  return manifest;
}

/** pip's removal, the include/exclude globs, bytecode, the zipped stdlib, stdlib sources. */
async function stepPruneAndCompile(
  plan: BundlePlan,
  ctx: { bundle: string; site: string; reporter?: Reporter },
): Promise<void> {
  const { bundle, site, reporter } = ctx;
  const python = path.join(bundle, "bin", "python3");
  reporter?.step("pruning and compiling bytecode");
  if (plan.prune.removePip) {
    // Without pip nothing is built in the bundle: its C headers and pkg-config files go too.
    await removePip(bundle, site);
    await dropBuildSupport(bundle);
    const requirements = plan.install.requirements
      ? await fsp.readFile(path.resolve(plan.projectDir, plan.install.requirements), "utf8")
      : "";
    const setuptools = await removeSetuptools(site, requirements);
    if (setuptools)
      reporter?.note(
        `left out setuptools and pkg_resources (${(setuptools / 2 ** 20).toFixed(1)} MiB): only builds need them, and nothing in the bundle requires them`,
      );
  }
  await applyGlobs(bundle, plan.prune.include, plan.prune.exclude);
  await refreshRecords(site);
  await compileBytecode(python, site, plan.bytecode, bundle);
  if (plan.zipStdlib) {
    reporter?.step("zipping the standard library");
    await run(
      python,
      ["-I", pythonAsset("zip_stdlib.py"), bundle, String(plan.bytecode.optimize)],
      "zipping the standard library",
    );
  }
  const sourceBytes = await dropStdlibSources(path.dirname(site), plan.bytecode);
  if (sourceBytes)
    reporter?.note(
      `the standard library ships as bytecode only (${(sourceBytes / 2 ** 20).toFixed(1)} MiB of .py left out; bytecode.stdlib-sources = true keeps them)`,
    );
}

/** `pyport audit` of the bundle; its errors fail the build. */
async function stepAudit(
  plan: BundlePlan,
  bundle: string,
  reporter?: Reporter,
): Promise<AuditReport> {
  reporter?.step("auditing the bundle");
  const report = await audit(bundle);
  const errors = report.findings.filter((f) => f.severity === "error");
  if (errors.length)
    throw new PyportError(
      "E_AUDIT",
      `the audit found ${errors.length} error(s); nothing was written to ${plan.out}:\n${errors
        .slice(0, 10)
        .map((f) => `  ${f.code} ${f.path}: ${f.message}`)
        .join("\n")}`,
      {
        hint: "Fix them (see `pyport audit` of the bundle for what to do), or build with --no-audit.",
      },
    );
  return report;
}

/** The onefile and archives, written into the temp dir; the directory's digest. */
async function stepOutputs(
  plan: BundlePlan,
  ctx: {
    bundle: string;
    site: string;
    tmp: string;
    manifest: RuntimeManifest;
    entryPoints: EntryPoint[];
    components: Component[];
    reporter?: Reporter;
  },
): Promise<BuildOutput[]> {
  const { bundle, tmp, reporter } = ctx;
  const outputs: BuildOutput[] = [];
  const machine = ctx.manifest.python.machine;
  const image = plan.image ? await writeImageOutputs(plan, { ...ctx, machine }) : undefined;
  for (const o of plannedOutputs(plan, machine)) {
    const file = path.join(tmp, o.name);
    if (image && (o.format === "oci" || o.format === "oci-archive")) {
      const { manifest, ref, layers, sbom } = image.image;
      const source = o.format === "oci" ? image.layout : image.archive!;
      await fsp.rename(source, file);
      const size = o.format === "oci" ? await dirDigest(file) : undefined;
      outputs.push({
        format: o.format,
        path: path.join(plan.out, o.name),
        sha256: o.format === "oci" ? manifest.digest.slice(7) : await sha256File(file),
        bytes: size ? size.bytes : (await fsp.stat(file)).size,
        image: {
          digest: manifest.digest,
          ref,
          layers,
          sbom: { digest: sbom.digest, artifactType: sbom.artifactType! },
        },
      });
      continue;
    }
    if (o.format === "dir") {
      outputs.push({
        format: "dir",
        path: path.join(plan.out, o.name),
        ...(await dirDigest(bundle)),
      });
      continue;
    }
    if (o.format === "onefile") {
      const entry = onefileEntry(ctx.entryPoints, { name: plan.name, entry: plan.onefile!.entry });
      reporter?.step(
        `writing ${o.name} (onefile running bin/${entry}; zstd level ${plan.onefile!.level})`,
      );
      await writeOnefile({
        bundle,
        dest: file,
        tmpDir: tmp,
        meta: { name: plan.name, version: plan.version, entry: `bin/${entry}` },
        level: plan.onefile!.level,
      });
    } else {
      reporter?.step(`writing ${o.name}`);
      await writeTarArchive(bundle, plan.name, file, o.format === "tar.gz" ? "gzip" : "zstd");
    }
    outputs.push({
      format: o.format,
      path: path.join(plan.out, o.name),
      sha256: await sha256File(file),
      bytes: (await fsp.stat(file)).size,
    });
  }
  // The directory first, then the rest in the order of the formats (as --json reports them).
  return [
    ...outputs.filter((o) => o.format === "dir"),
    ...outputs.filter((o) => o.format !== "dir"),
  ];
}
