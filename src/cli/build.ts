/** `pyport build`: a Python project → a relocatable bundle directory and/or reproducible archives. */
import * as path from "node:path";
import { FORMATS, type Format } from "../bundle/config.js";
import { PyportError } from "../errors.js";
import { PROFILES } from "../runtime/profile.js";
import { oneOf, parse } from "./args.js";
import { cliReporter, mib } from "./output.js";

const BUILD_USAGE = `Usage: pyport build [PROJECT_DIR | SCRIPT.py [-r REQUIREMENTS]] [--out DIR]
                    [--format dir,tar.gz,tar.zst,onefile,oci,oci-archive]
                    [--entry NAME] [--python P] [--base-image DIR[:REF]]
                    [--libc system|bundled] [--profile default|full|minimal] [--no-audit] [--json]
                    [--force]
                    [--find-links D] [--index-url U] [--no-index] [--only-binary SPEC]

Builds the project (pyproject.toml with [project] and [tool.pyport], or pyport.toml) into a
bundle that runs from any directory: a portable runtime, the project and its dependencies
installed with the runtime's own pip (your pip configuration applies), a launcher bin/<name> per
entry point, hash-checked bytecode, LICENSES.md + licenses/ + sbom.cdx.json, audited. Archives
are reproducible (sorted, uid/gid 0, fixed mtime: SOURCE_DATE_EPOCH or 2000-01-01).
A failed or interrupted build leaves nothing in --out. An existing output is replaced only
when pyport wrote it; outputs never replace, contain or sit inside the project (but its dist/).

A script (SCRIPT.py, with its requirements file) is built on its own — nothing else from its
directory — into a bundle whose bin/<name> runs it as __main__; outputs go to its dist/.
A pyport.toml project without pyproject.toml or setup.py is installed as its top-level modules
and packages (script = "app.py" in pyport.toml gives it a launcher that runs that script).

Options (flags override [tool.pyport]):
  -r, --requirements F a requirements file installed first (overrides requirements)
  --out DIR            where outputs go (default: PROJECT_DIR/dist)
  --format LIST        comma-separated: dir, tar.gz, tar.zst, onefile, oci, oci-archive
                       (default: dir)
                       onefile: one executable <name>-<version>-linux-<arch>; the first run
                       verifies it and unpacks into the cache, later runs just exec
                       oci: an OCI image layout <name>-<version>-linux-<arch>.oci (tagged
                       with the version; oci-archive: the same as one .oci.tar). With
                       --libc bundled it is FROM scratch; layers: runtime, packages, your
                       code; the SBOM is attached as a referrer. Push it: pyport push
  --base-image L       the OCI layout (DIR or DIR:REF) or archive an image with
                       --libc system is built on (it must provide glibc)
  --entry NAME         the console script a onefile runs (default: the only one, or the
                       one named like the project)
  --python P           X.Y or an interpreter path (default: [tool.pyport] python, else the
                       newest Python 3.8+ found)
  --libc MODE          system (default) or bundled (ships glibc; runs without one)
  --profile P          default, full or minimal (what the runtime drops; default and minimal
                       also ship the standard library as .pyc only, see stdlib-sources)
  --no-audit           skip the audit that otherwise fails the build on errors
  --force              replace existing outputs that pyport did not write (an output that
                       pyport wrote before is replaced without it; the project directory
                       never is)
  --find-links D, --index-url U, --no-index, --only-binary SPEC
                       passed to pip install (after [tool.pyport] pip-args)
  --json               print {"outputs": [{"format","path","sha256","bytes"}], …}

[tool.pyport] keys: python, archive, sha256, libc, profile, formats, include, exclude,
bytecode = { optimize = 0|1|2, pyc-only = bool, stdlib-sources = bool }, resources =
"filesystem"|"zip-stdlib", pip-args, requirements, isolated, keep-pip, entry,
onefile-level = 1..19 (zstd level of the onefile payload; default 19), base-image,
[tool.pyport.service] (or [tool.pyport.services.NAME]): how \`pyport run\` and the image run
it — see \`pyport run --help\`.
stdlib-sources = true keeps the standard library's .py files (stdlib tracebacks then show
source lines; ~2.3 MB more in a tar.gz); pyc-only = true ships your project and its
dependencies without sources too.
Example: pyport build examples/hello --format dir,tar.gz --out /tmp/out`;

export async function buildCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: "string" },
      format: { type: "string" },
      python: { type: "string" },
      libc: { type: "string" },
      profile: { type: "string" },
      "no-audit": { type: "boolean" },
      force: { type: "boolean" },
      "find-links": { type: "string", multiple: true },
      "index-url": { type: "string" },
      "no-index": { type: "boolean" },
      "only-binary": { type: "string" },
      json: { type: "boolean" },
      quiet: { type: "boolean" },
      entry: { type: "string" },
      "base-image": { type: "string" },
      requirements: { type: "string", short: "r" },
    },
    BUILD_USAGE,
  );
  if (values.help) {
    process.stdout.write(BUILD_USAGE + "\n");
    return 0;
  }
  if (positionals.length > 1)
    throw new PyportError("E_USAGE", "pyport build takes at most one project directory", {
      hint: "Example: pyport build examples/hello",
    });
  const formats = values.format
    ?.split(",")
    .map((f) => oneOf("--format", f.trim(), FORMATS, "dir") as Format);
  const libc =
    values.libc === undefined
      ? undefined
      : oneOf("--libc", values.libc, ["system", "bundled"] as const, "system");
  const profile =
    values.profile === undefined
      ? undefined
      : oneOf("--profile", values.profile, PROFILES, "default");
  const pipArgs = [
    ...((values["find-links"] as unknown as string[] | undefined) ?? []).flatMap((d) => [
      "--find-links",
      d,
    ]),
    ...(values["index-url"] ? ["--index-url", values["index-url"]] : []),
    ...(values["no-index"] ? ["--no-index"] : []),
    ...(values["only-binary"] ? ["--only-binary", values["only-binary"]] : []),
  ];
  const { build } = await import("../bundle/build.js");
  const reporter = cliReporter({ quiet: values.quiet || values.json });
  if (values["no-audit"])
    process.stderr.write("pyport: --no-audit: the bundle will not be audited\n");
  const r = await build({
    projectDir: positionals[0] ?? ".",
    out: values.out,
    formats,
    python: values.python,
    libc,
    profile,
    pipArgs,
    entry: values.entry,
    baseImage: values["base-image"],
    requirements: values.requirements && path.resolve(values.requirements),
    audit: !values["no-audit"],
    force: values.force,
    reporter,
  });
  if (values.json) {
    process.stdout.write(
      JSON.stringify(
        {
          name: r.name,
          version: r.version,
          outputs: r.outputs,
          entryPoints: r.entryPoints,
          sizes: r.sizes,
          audit: r.audit && {
            floors: r.audit.floors,
            runsOn: r.audit.runsOn.map((x) => x.label),
            findings: r.audit.findings,
          },
          ms: r.ms,
        },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  process.stdout.write(`built ${r.name} ${r.version} in ${(r.ms / 1000).toFixed(1)} s\n`);
  for (const o of r.outputs)
    process.stdout.write(
      `  ${o.format.padEnd(7)} ${o.path}  ${mib(o.bytes)}  sha256 ${o.sha256.slice(0, 16)}…\n`,
    );
  const onefile = r.outputs.find((o) => o.format === "onefile");
  for (const o of r.outputs.filter((x) => x.image))
    process.stdout.write(
      `image ${o.image!.digest} (tag ${o.image!.ref}; layers ${o.image!.layers.map((l) => `${l.group} ${mib(l.size)}`).join(", ")}); push it: pyport push ${o.path} REGISTRY/REPO:TAG\n`,
    );
  if (onefile)
    process.stdout.write(
      `run the onefile: ${onefile.path} (PYPORT_ONEFILE_COMMAND=info ${onefile.path} describes it)\n`,
    );
  if (r.entryPoints.length) {
    const dir = r.outputs.find((o) => o.format === "dir");
    process.stdout.write(
      `run it: ${r.entryPoints.map((e) => (dir ? path.join(dir.path, "bin", e.name) : `<bundle>/bin/${e.name}`)).join(", ")}\n`,
    );
  }
  process.stdout.write(
    `size by package: ${r.sizes
      .slice(0, 6)
      .map((s) => `${s.name} ${mib(s.bytes)}`)
      .join(", ")}\n`,
  );
  if (r.audit) {
    const warnings = r.audit.findings.filter((f) => f.severity === "warning").length;
    process.stdout.write(
      `audit: runs on ${r.audit.runsOn
        .filter((x) => x.from)
        .map((x) => x.label)
        .join(", ")}; ${warnings} warning(s) (pyport audit <bundle> for details)\n`,
    );
  }
  return 0;
}
