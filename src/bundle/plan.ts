/**
 * The plan of a build: every decision `build` makes from the configuration, the caller's
 * overrides and the runtime's machine, as data — which runtime, what to install, the launchers,
 * what to prune, the bytecode, the outputs and their names. Pure: no file system, no processes,
 * so every decision is testable on its own; `applyPlan` (build.ts) does the I/O.
 */
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { DEFAULT_ONEFILE_LEVEL } from "../onefile/onefile.js";
import type { LibcMode } from "../runtime/closure.js";
import type { Profile } from "../runtime/profile.js";
import type { BuildConfig, Format } from "./config.js";
import type { ServiceSpec } from "./service-spec.js";

const OUTPUT_SUFFIX: Partial<Record<Format, string>> = {
  onefile: "",
  oci: ".oci",
  "oci-archive": ".oci.tar",
};

/** What the caller (CLI flags, library options) overrides in the project's configuration. */
export interface BuildOverrides {
  out?: string;
  formats?: Format[];
  python?: string;
  resources?: BuildConfig["resources"];
  pipArgs?: string[];
  libc?: LibcMode;
  profile?: Profile;
  entry?: string;
  audit?: boolean;
  force?: boolean;
  /** A requirements file installed first (relative to the project, or absolute). */
  requirements?: string;
  /** An OCI layout (`DIR` or `DIR:REF`) the image is built on. */
  baseImage?: string;
}

export interface PlannedOutput {
  format: Format;
  /** The name inside `out`: the project's name for `dir`, `<name>-<version>-linux-<machine>[.ext]` else. */
  name: string;
  dir: boolean;
}

export interface BundlePlan {
  name: string;
  version: string;
  projectDir: string;
  out: string;
  force: boolean;
  /**
   * The configured Python source; none: the newest suitable Python on the machine that
   * satisfies `requiresPython`.
   */
  source: { python?: string; archive?: string; sha256?: string; requiresPython?: string };
  libc: LibcMode;
  profile: Profile;
  install: { requirements?: string; pipArgs: string[]; script?: string };
  launchers: { isolated: boolean; optimize: 0 | 1 | 2 };
  prune: { removePip: boolean; include: string[]; exclude: string[] };
  bytecode: { optimize: 0 | 1 | 2; pycOnly: boolean; stdlibSources: boolean };
  zipStdlib: boolean;
  audit: boolean;
  /** Set when a onefile is among the outputs. */
  onefile?: { entry?: string; declaredScripts?: string[]; level: number };
  formats: Format[];
  /** The services of the project (recorded in the manifest; the first one is the image's). */
  services: ServiceSpec[];
  sourceUrl?: string;
  /** Set when an OCI image is among the outputs. */
  image?: { base?: string };
  /** The outputs for the machine the plan was made for (the runtime's may differ: plannedOutputs). */
  outputs: PlannedOutput[];
  /** Tools the plan needs before it starts: zstd (tar.zst, onefile), the onefile stub. */
  needs: { zstd: boolean; onefileStub: boolean };
}

/** The outputs of `plan`'s formats for a runtime of `machine`, in the order of the formats. */
export function plannedOutputs(
  plan: Pick<BundlePlan, "name" | "version" | "formats">,
  machine: string,
): PlannedOutput[] {
  const base = `${plan.name}-${plan.version}-linux-${machine}`;
  return plan.formats.map((format) =>
    format === "dir"
      ? { format, name: plan.name, dir: true }
      : { format, name: base + (OUTPUT_SUFFIX[format] ?? `.${format}`), dir: format === "oci" },
  );
}

/** The plan for `cfg` with `overrides`, for a runtime of `machine` (x86_64, aarch64, …). */
export function planBundle(
  cfg: BuildConfig,
  overrides: BuildOverrides,
  runtime: { machine: string },
): BundlePlan {
  const formats = overrides.formats ?? cfg.formats;
  const profile = overrides.profile ?? cfg.profile;
  const source = overrides.python
    ? { python: overrides.python }
    : {
        python: cfg.python,
        archive: cfg.archive,
        sha256: cfg.sha256,
        requiresPython: cfg.requiresPython,
      };
  const plan: BundlePlan = {
    name: cfg.name,
    version: cfg.version,
    projectDir: cfg.projectDir,
    out: path.resolve(overrides.out ?? path.join(cfg.projectDir, "dist")),
    force: overrides.force ?? false,
    source,
    libc: overrides.libc ?? cfg.libc,
    profile,
    install: {
      requirements: overrides.requirements ?? cfg.requirements,
      script: cfg.script,
      pipArgs: [...cfg.pipArgs, ...(overrides.pipArgs ?? [])],
    },
    launchers: { isolated: cfg.isolated, optimize: cfg.bytecode.optimize },
    prune: { removePip: !cfg.keepPip, include: cfg.include, exclude: cfg.exclude },
    bytecode: {
      optimize: cfg.bytecode.optimize,
      pycOnly: cfg.bytecode.pycOnly,
      stdlibSources: cfg.bytecode.stdlibSources ?? profile === "full",
    },
    zipStdlib: (overrides.resources ?? cfg.resources) === "zip-stdlib",
    audit: overrides.audit ?? true,
    onefile: formats.includes("onefile")
      ? {
          entry: overrides.entry ?? cfg.entry,
          declaredScripts: cfg.declaredScripts,
          level: cfg.onefileLevel ?? DEFAULT_ONEFILE_LEVEL,
        }
      : undefined,
    formats,
    services: cfg.services,
    sourceUrl: cfg.sourceUrl,
    image:
      formats.includes("oci") || formats.includes("oci-archive")
        ? { base: overrides.baseImage ?? cfg.baseImage }
        : undefined,
    outputs: [],
    needs: {
      zstd: formats.includes("tar.zst") || formats.includes("onefile"),
      onefileStub: formats.includes("onefile"),
    },
  };
  plan.outputs = plannedOutputs(plan, runtime.machine);
  if (plan.image && plan.libc === "system" && !plan.image.base)
    throw new PyportError(
      "E_USAGE",
      `an OCI image of ${plan.name} with libc = "system" needs a base image that provides glibc`,
      {
        hint: "Build with --libc bundled (a FROM-scratch image that needs nothing), or give a base: --base-image DIR[:REF] (an OCI layout, e.g. from skopeo copy docker://debian:12-slim oci:DIR:12).",
      },
    );
  if (plan.onefile?.declaredScripts)
    // Declared statically: a wrong entry fails now, before any work.
    onefileEntry(
      plan.onefile.declaredScripts.map((name) => ({ name })),
      { name: plan.name, entry: plan.onefile.entry },
    );
  return plan;
}

/** The console script a onefile runs: the configured one, the only one, or the one named like the project. */
export function onefileEntry(
  entryPoints: readonly { name: string }[],
  project: { name: string; entry?: string },
): string {
  const names = entryPoints.map((e) => e.name);
  if (project.entry) {
    if (names.includes(project.entry)) return project.entry;
    throw new PyportError(
      "E_BUILD",
      `entry ${JSON.stringify(project.entry)} is not a console script of ${project.name} (it has: ${names.join(", ") || "none"})`,
      { hint: "Set [tool.pyport] entry (or --entry) to one of them." },
    );
  }
  if (names.length === 1) return names[0];
  const named = names.find((n) => n === project.name);
  if (named) return named;
  if (!names.length)
    throw new PyportError(
      "E_BUILD",
      `--format onefile needs a console script to run, and ${project.name} declares none`,
      { hint: 'Add one to pyproject.toml: [project.scripts] mytool = "mypackage.cli:main".' },
    );
  throw new PyportError(
    "E_BUILD",
    `${project.name} has several console scripts (${names.join(", ")}); which one should the onefile run?`,
    { hint: 'Set [tool.pyport] entry = "NAME" or pass --entry NAME.' },
  );
}
