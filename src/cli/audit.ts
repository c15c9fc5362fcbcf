/** `pyport audit`: portability and licence audit of a runtime, a bundle or an archive of one. */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { oneOf, parseOneTarget } from "./args.js";
import { EXIT_FAILED } from "./output.js";

const AUDIT_USAGE = `Usage: pyport audit <dir|archive> [--policy P] [--fail-on error|warning] [--deny IDS]
                    [--build-path P]... [--json] [--sbom cyclonedx --out FILE] [--verbose]

Checks that a runtime or bundle (a directory, or a .tar.gz/.tar.zst/.tar of one, read in a
private temp dir) will run elsewhere, and under which licences:
  - symbol-version floors (GLIBC, GLIBCXX, CXXABI, GCC, ZLIB, LIBATOMIC) of everything needed
    from outside, with the files and symbols that set each floor, and the distributions whose
    glibc/libstdc++ meet them;
  - every NEEDED library resolved inside (RPATH/RUNPATH/$ORIGIN as the loader does) or allowed
    as a system library by the policy;
  - leaked build-machine paths (shebangs, sysconfigdata, Makefile, .pc, .pth, RECORD,
    direct_url.json, pyvenv.cfg, RPATH/RUNPATH); executable stacks, TEXTREL, missing RELRO;
  - the licence of every component (CPython, grafted libraries, installed distributions).

Options:
  --policy P          auto (default: report only), glibc-X.Y (e.g. glibc-2.17, glibc-2.28),
                      manylinux_2_17 (manylinux2014), manylinux_2_24, manylinux_2_28,
                      manylinux_2_31, manylinux_2_37
  --fail-on LEVEL     exit 1 when a finding is at least this severe: error (default) or warning
  --deny IDS          comma-separated SPDX ids whose use is an error, e.g. GPL-3.0,AGPL-3.0
                      (an id without -only/-or-later matches both)
  --build-path P      also report this path as a leak (repeatable; PYPORT.json's build prefix
                      is always checked)
  --json              print the report as JSON (schema in README)
  --sbom cyclonedx    write a CycloneDX 1.5 JSON SBOM to --out FILE
  --verbose           list every finding, not the first 25 per severity

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
Example: pyport audit ./py312 --policy glibc-2.28 --deny GPL-3.0 --sbom cyclonedx --out sbom.json`;

export async function auditCommand(argv: string[]): Promise<number> {
  const args = parseOneTarget(
    argv,
    {
      policy: { type: "string" },
      "fail-on": { type: "string" },
      deny: { type: "string" },
      "build-path": { type: "string", multiple: true },
      json: { type: "boolean" },
      sbom: { type: "string" },
      out: { type: "string" },
      verbose: { type: "boolean" },
    },
    AUDIT_USAGE,
    { command: "audit", example: "pyport audit ./py312" },
  );
  if (!args) return 0;
  const { values } = args;
  const failOn = oneOf("--fail-on", values["fail-on"], ["error", "warning"] as const, "error");
  if (values.sbom !== undefined) {
    oneOf("--sbom", values.sbom, ["cyclonedx"] as const, "cyclonedx");
    if (!values.out)
      throw new PyportError("E_USAGE", "--sbom needs --out FILE", {
        hint: "Example: --sbom cyclonedx --out sbom.cdx.json",
      });
  } else if (values.out)
    throw new PyportError("E_USAGE", "--out is the SBOM file and needs --sbom cyclonedx", {
      hint: "Example: --sbom cyclonedx --out sbom.cdx.json",
    });
  const deny = (values.deny ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

  if (values.out) await checkSbomOut(path.resolve(values.out));
  const { audit, auditFailed } = await import("../audit/audit.js");
  const { getPolicy } = await import("../audit/policy.js");
  getPolicy(values.policy ?? "auto"); // a bad --policy is a usage error before any work
  const buildPaths = (values["build-path"] as unknown as string[] | undefined) ?? [];
  const report = await audit(args.target, {
    policy: values.policy,
    deny,
    buildPaths,
    hashes: values.json === true || values.sbom !== undefined,
  });
  if (values.sbom) {
    const { cycloneDx } = await import("../audit/sbom.js");
    const out = path.resolve(values.out!);
    await writeFileAtomic(
      out,
      JSON.stringify(
        cycloneDx(path.basename(path.resolve(args.target)), report.components),
        null,
        2,
      ) + "\n",
    );
    process.stderr.write(
      `pyport: wrote the CycloneDX SBOM (${report.components.length} components) to ${out}\n`,
    );
  }
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else {
    const { formatAudit } = await import("../audit/report.js");
    process.stdout.write(formatAudit(report, { verbose: values.verbose }));
  }
  return auditFailed(report, failOn) ? EXIT_FAILED : 0;
}

/** The SBOM file may be new or an earlier SBOM; a directory or any other file is refused. */
async function checkSbomOut(out: string): Promise<void> {
  let text: string;
  try {
    if ((await fsp.stat(out)).isDirectory())
      throw new PyportError("E_USAGE", `--out ${out} is a directory; it names the SBOM file`, {
        hint: "Example: --out sbom.cdx.json",
      });
    text = await fsp.readFile(out, "utf8");
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    throw err;
  }
  let isSbom = false;
  try {
    isSbom = (JSON.parse(text) as { bomFormat?: string }).bomFormat === "CycloneDX";
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  if (!isSbom)
    throw new PyportError(
      "E_EXISTS",
      `--out ${out} exists and is not a CycloneDX SBOM; refusing to overwrite it`,
      {
        hint: "Name a new file, or an SBOM an earlier audit wrote.",
      },
    );
}
