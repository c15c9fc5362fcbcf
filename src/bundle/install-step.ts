/**
 * The build's install step: the requirements file, then the project's wheel (a generated
 * pyproject.toml for projects without one) and its dependencies, with the runtime's own pip;
 * pip's "No matching distribution" is explained with the Pythons the index has wheels for.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import type { RuntimeManifest } from "../runtime/manifest.js";
import { compileArgs } from "../python/compile.js";
import { pythonAsset } from "../util/assets.js";
import { pathExists } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";
import { depsKey, fileState, restoreDeps, saveDeps } from "./deps-cache.js";
import { copyProject, projectWheel, run, sitePackages } from "./install.js";
import { explainMissing, missingRequirement } from "./pip-diagnose.js";
import type { BundlePlan } from "./plan.js";
import { synthesizePyproject } from "./script.js";

/** The requirements file, then the project's wheel and its dependencies, with the runtime's pip. */
export async function stepInstall(
  plan: BundlePlan,
  ctx: { bundle: string; tmp: string; manifest: RuntimeManifest; reporter?: Reporter },
): Promise<void> {
  const python = path.join(ctx.bundle, "bin", "python3");
  const pipBase = [
    "-I",
    "-m",
    "pip",
    "install",
    "--no-warn-script-location",
    "--disable-pip-version-check",
    "--no-compile",
    ...plan.install.pipArgs,
  ];
  // pip's "No matching distribution" becomes which Pythons the index has wheels for.
  const explained = async (p: Promise<void>) => {
    try {
      await p;
    } catch (err) {
      const missing = err instanceof PyportError ? missingRequirement(err.message) : undefined;
      if (!missing) throw err;
      ctx.reporter?.note(
        `pip found no distribution for ${missing}; asking the index which Pythons it has wheels for`,
      );
      const why = await explainMissing(python, missing, {
        version: ctx.manifest.python.version,
        machine: ctx.manifest.python.machine,
        pipArgs: plan.install.pipArgs,
      });
      if (!why) throw err;
      throw new PyportError("E_PIP", why, {
        hint: "Choose a Python the index has wheels for ([tool.pyport] python or --python), or add a wheel for this one to the index.",
      });
    }
  };
  ctx.reporter?.step(`building the wheel of ${plan.name}`);
  // From a copy: build backends write build/ and *.egg-info into the source tree otherwise.
  const source = path.join(ctx.tmp, "source");
  await copyProject(plan.projectDir, source, plan.out);
  if (
    await synthesizePyproject(source, {
      name: plan.name,
      version: plan.version,
      script: plan.install.script,
    })
  )
    ctx.reporter?.note(
      `${plan.name} has no pyproject.toml or setup.py: pyport wrote one that installs its top-level modules and packages${plan.install.script ? ` and runs ${plan.install.script} as bin/${plan.name}` : ""}`,
    );
  const wheel = await projectWheel(python, source, ctx.manifest, plan.install.pipArgs);
  const { requirements } = plan.install;
  const requirementsFile = requirements && path.resolve(plan.projectDir, requirements);
  const key = await depsKey({
    python,
    wheel,
    requirementsText: requirementsFile ? await fsp.readFile(requirementsFile, "utf8") : "",
    manifest: ctx.manifest,
    pipArgs: plan.install.pipArgs,
    bytecode: plan.bytecode,
  }).catch(() => undefined);
  if (key && (await restoreDeps(key, ctx.bundle))) {
    ctx.reporter?.step(
      `installing ${plan.name}; its dependencies come from the cache (same requirements, runtime and pip settings)`,
    );
    await installProjectWheel(python, wheel);
    return;
  }
  const before = key ? await fileState(ctx.bundle) : undefined;
  if (requirementsFile) {
    ctx.reporter?.step(`installing ${requirements}`);
    await explained(
      run(python, [...pipBase, "-r", requirementsFile], `pip install -r ${requirements}`, {
        keepPip: true,
        cwd: plan.projectDir,
      }),
    );
  }
  ctx.reporter?.step(`installing ${plan.name} and its dependencies with the runtime's pip`);
  await explained(
    run(python, [...pipBase, wheel], `pip install ${plan.projectDir}`, {
      keepPip: true,
      cwd: source,
    }),
  );
  if (key && before) {
    const site = sitePackages(ctx.bundle, ctx.manifest);
    const distInfo = path.join(
      site,
      `${path.basename(wheel).split("-").slice(0, 2).join("-")}.dist-info`,
    );
    const record = await fsp.readFile(path.join(distInfo, "RECORD"), "utf8").catch(() => "");
    const own = new Set(
      record
        .split("\n")
        .map((l) => l.split(",")[0])
        .filter(Boolean)
        .map((f) => path.relative(ctx.bundle, path.resolve(site, f))),
    );
    // The dependencies' bytecode is compiled once, into the cache entry, as the bundle's
    // bytecode step would (paths relative to the bundle): warm builds find it up to date.
    const precompile = async (files: string) => {
      const target = path.join(files, path.relative(ctx.bundle, site));
      if (plan.bytecode.pycOnly || !(await pathExists(target))) return;
      await run(
        python,
        compileArgs({
          root: files,
          mode: "checked-hash",
          optimize: plan.bytecode.optimize,
          targets: [target],
        }),
        "compiling the dependencies' bytecode",
      );
    };
    if (record) await saveDeps(key, ctx.bundle, before, own, precompile);
  }
  await installProjectWheel(python, wheel);
}

/**
 * The project's wheel alone, installed by pyport's installer: what pip would do, without pip's
 * start-up; after pip installed the dependencies (and the project, which this replaces), so cold
 * and warm builds give the same files.
 */
async function installProjectWheel(python: string, wheel: string): Promise<void> {
  await run(python, ["-I", pythonAsset("install_wheel.py"), wheel], `installing ${wheel}`);
}
