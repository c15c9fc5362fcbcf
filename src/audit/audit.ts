/**
 * `audit`: will this runtime or bundle run on that machine, and under which licences?
 * Opens the target (a directory, or a tar archive extracted into a private temp dir that is
 * removed afterwards), scans every ELF file, resolves its libraries as the loader would,
 * computes symbol-version floors against a policy, maps them to distributions, looks for leaked
 * build paths and weak hardening, and lists every component with its licence.
 */
import { ifExists } from "../util/fs.js";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { extractArchive } from "../archive/extract.js";
import {
  copyPayload,
  readOnefile,
  TRAILER_MAGIC,
  verifyOnefile,
  type OnefileInfo,
} from "../onefile/onefile.js";
import { PyportError } from "../errors.js";
import { readManifest, type RuntimeManifest } from "../runtime/manifest.js";
import { collectComponents, type Component } from "./components.js";
import { SEVERITY_RANK, type Finding } from "./findings.js";
import { computeFloors, runsOn, type Floors, type RunsOn } from "./floors.js";
import { findLeaks } from "./leaks.js";
import { getPolicy } from "./policy.js";
import { resolveNeeded } from "./resolve.js";
import { isDenied } from "./spdx.js";
import { readTree, type Tree } from "./tree.js";

const AUDIT_SCHEMA = 1;

export interface AuditOptions {
  /** `auto` (default), `glibc-X.Y`, or a manylinux policy name. */
  policy?: string;
  /** SPDX ids whose use is an error (`GPL-3.0` also matches `-only` and `-or-later`). */
  deny?: string[];
  /** Extra build-machine paths to look for (the manifest's build prefix is always included). */
  buildPaths?: string[];
  /** Compute each component's sha256 (for SBOMs and JSON consumers); default false. */
  hashes?: boolean;
}

export interface AuditReport {
  schema: number;
  target: string;
  kind: "runtime" | "bundle" | "directory";
  /** Set when the target was a onefile executable: its payload's sha256 (verified) and entry. */
  onefile?: { sha256: string; entry: string };
  policy: string;
  libc: { mode: "system" | "bundled"; kernelFloor?: string };
  floors: Record<string, string>;
  floorDetails: Floors;
  runsOn: RunsOn[];
  findings: Finding[];
  components: Omit<Component, "expr">[];
  stats: { files: number; elfFiles: number; bytes: number; ms: number };
}

async function isDirectory(p: string): Promise<boolean> {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * A file that is an ELF executable but has no readable onefile trailer: a damaged onefile (its
 * stub names the trailer's magic) is reported as one, anything else as not auditable.
 */
async function refuseBrokenOnefile(target: string): Promise<void> {
  const h = await fsp.open(target, "r");
  const head = Buffer.alloc(4 << 20);
  let n: number;
  try {
    ({ bytesRead: n } = await h.read(head, 0, head.length, 0));
  } finally {
    await h.close();
  }
  if (n < 4 || head.readUInt32BE(0) !== 0x7f454c46) return; // not ELF: read it as a tar
  if (head.subarray(0, n).includes(TRAILER_MAGIC))
    throw new PyportError(
      "E_ARCHIVE",
      `${target}: corrupted onefile: its trailer is missing or damaged (the file was truncated or altered)`,
      { hint: "Download or build the file again." },
    );
  throw new PyportError("E_USAGE", `${target} is an ELF executable, not a pyport onefile`, {
    hint: "Give a runtime or bundle directory, a .tar.gz/.tar.zst archive of one, or a onefile executable.",
  });
}

/** Runs `fn` on the target's directory: the target itself, or its archive extracted privately. */
async function withTargetDir<T>(
  target: string,
  fn: (dir: string, onefile?: OnefileInfo) => Promise<T>,
): Promise<T> {
  if (await isDirectory(target)) return fn(target);
  const st = await ifExists(fsp.stat(target), undefined);
  if (!st?.isFile())
    throw new PyportError("E_USAGE", `${target} does not exist`, {
      hint: "Give a runtime or bundle directory, a .tar.gz/.tar.zst archive of one, or a onefile executable.",
    });
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "pyport-audit-"));
  try {
    const dest = path.join(tmp, "t");
    let archive = target;
    // A onefile: verified here, never run; its payload is a tar.zst of the bundle.
    const onefile = await readOnefile(target);
    if (!onefile) await refuseBrokenOnefile(target);
    if (onefile) {
      await verifyOnefile(target, onefile);
      archive = path.join(tmp, "payload.tar.zst");
      await copyPayload(target, onefile, archive);
    }
    try {
      await extractArchive(archive, dest, { strict: onefile !== undefined });
    } catch (err) {
      if (err instanceof PyportError) throw err;
      throw new PyportError(
        "E_ARCHIVE",
        `${target} is neither a directory nor a readable tar archive: ${(err as Error).message}`,
        {
          hint: "pyport audit reads directories, .tar, .tar.gz and .tar.zst archives, and onefile executables.",
        },
      );
    }
    // An archive of one top-level directory is audited as that directory.
    const top = await fsp.readdir(dest);
    if (!top.length)
      throw new PyportError(
        "E_ARCHIVE",
        `${target} is an empty archive: there is nothing to audit`,
        {
          hint: "Give a runtime or bundle directory, a .tar.gz/.tar.zst archive of one, or a onefile executable.",
        },
      );
    const root =
      top.length === 1 && (await isDirectory(path.join(dest, top[0])))
        ? path.join(dest, top[0])
        : dest;
    return await fn(root, onefile);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** A CPython install without pyport's manifest: bin/python3* or lib/python3.X/. */
async function looksLikePython(dir: string): Promise<boolean> {
  const names = async (sub: string) => ifExists(fsp.readdir(path.join(dir, sub)), [] as string[]);
  return (
    (await names("bin")).some((n) => /^python3/.test(n)) ||
    (await names("lib")).some((n) => /^python3\.\d+$/.test(n))
  );
}

export async function audit(target: string, opts: AuditOptions = {}): Promise<AuditReport> {
  const policy = getPolicy(opts.policy ?? "auto");
  const started = Date.now();
  return withTargetDir(target, async (dir, onefile) => {
    const manifest = await readManifest(dir, { optional: true });
    const tree = await readTree(dir);
    if (!manifest && !tree.elves.length && !(await looksLikePython(dir)))
      throw new PyportError(
        "E_USAGE",
        `${target} has nothing to audit: no PYPORT.json, no bin/python3 or lib/python3.X/, no ELF file`,
        {
          hint: "Give a runtime or bundle directory, a .tar.gz/.tar.zst archive of one, or a onefile executable.",
        },
      );
    const findings: Finding[] = [];
    const bundledLibc = isBundledLibc(tree, manifest);

    for (const [rel, reason] of tree.badElves)
      findings.push({
        severity: "warning",
        code: "BAD_ELF",
        path: rel,
        message: `has the ELF magic but cannot be parsed: ${reason}`,
        hint: "A truncated or corrupted file: rebuild or remove it.",
      });

    const resolution = resolveNeeded(tree, bundledLibc ? ["libexec"] : []);
    for (const miss of resolution.outside) {
      // A bundled-libc tree is meant for roots with no libraries at all: nothing may come from outside.
      if (policy.systemLibs.has(miss.soname) && !bundledLibc) continue;
      findings.push({
        severity: "error",
        code: "UNRESOLVED_LIBRARY",
        path: miss.importer,
        message: bundledLibc
          ? `needs ${miss.soname}, which is not inside (searching ${searchSummary(tree, miss.importer)} and libexec/); a bundled-libc tree must carry every library`
          : `needs ${miss.soname}, which is neither inside (searching ${searchSummary(tree, miss.importer)}) nor a system library under the ${policy.name} policy`,
        hint: `Ship ${miss.soname} inside (pyport grafts a runtime's libraries into lib/; for a wheel, use one that bundles it, e.g. repaired with auditwheel), or install it on every target.`,
      });
    }

    const { floors, findings: floorFindings } = computeFloors(tree.elves, resolution, policy);
    findings.push(...floorFindings);
    const kernelFloor = bundledLibc ? tree.elves.find((e) => e.abiTag)?.abiTag : undefined;
    if (bundledLibc) {
      findings.push({
        severity: "info",
        code: "BUNDLED_LIBC",
        path: "libexec",
        message: `carries its own C library${kernelFloor ? `; needs Linux kernel >= ${kernelFloor}` : ""}: the host's glibc version does not matter`,
        hint: "Nothing to do.",
      });
    }
    findings.push(...hardening(tree));
    findings.push(
      ...(await findLeaks(tree, [manifest?.source.buildPrefix ?? "", ...(opts.buildPaths ?? [])])),
    );

    const components = await collectComponents(tree, manifest, { hashes: opts.hashes === true });
    for (const c of components) {
      if (opts.deny?.length && isDenied(c.expr, opts.deny)) {
        findings.push({
          severity: "error",
          code: "LICENSE_DENIED",
          path: c.path,
          message: `${c.name}${c.version ? ` ${c.version}` : ""} is licensed ${c.license}, which --deny forbids`,
          hint: "Remove the component or replace it; if another licence applies to you, record it and drop it from --deny.",
        });
      } else if (!c.licenseKnown) {
        findings.push({
          severity: "warning",
          code: "LICENSE_UNKNOWN",
          path: c.path,
          message: `${c.name}${c.version ? ` ${c.version}` : ""}: licence ${c.license === "NOASSERTION" ? "not declared" : `"${c.license}" not recognised`} (${c.licenseSource})`,
          hint:
            c.kind === "distribution"
              ? "Check its licence files by hand; ask upstream to declare License-Expression (PEP 639)."
              : `Check ${c.licenseFiles[0] ?? "its upstream licence"} by hand and record the result.`,
        });
      }
    }

    findings.sort(
      (a, b) =>
        SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
        a.code.localeCompare(b.code) ||
        a.path.localeCompare(b.path),
    );
    const floorVersions = Object.fromEntries(
      Object.entries(floors).map(([ns, f]) => [ns, f!.version]),
    );
    return {
      schema: AUDIT_SCHEMA,
      target,
      kind: manifest?.kind === "runtime" ? "runtime" : manifest ? "bundle" : "directory",
      ...(onefile && { onefile: { sha256: onefile.sha256, entry: onefile.meta.entry } }),
      policy: policy.name,
      libc: { mode: bundledLibc ? "bundled" : "system", kernelFloor },
      floors: floorVersions,
      floorDetails: floors,
      runsOn: bundledLibc ? runsOn({ ...floors, GLIBC: undefined }) : runsOn(floors),
      findings,
      components: components.map(({ expr: _expr, ...rest }) => rest),
      stats: {
        files: tree.files.length,
        elfFiles: tree.elves.length,
        bytes: tree.files.reduce((n, f) => n + Math.max(f.size, 0), 0),
        ms: Date.now() - started,
      },
    };
  });
}

function isBundledLibc(tree: Tree, manifest: RuntimeManifest | undefined): boolean {
  if (manifest?.libc?.mode) return manifest.libc.mode === "bundled";
  return tree.elves.some(
    (e) => e.rel.startsWith("libexec/") && e.elf.soname?.startsWith("libc.so"),
  );
}

function searchSummary(tree: Tree, rel: string): string {
  const e = tree.elves.find((x) => x.rel === rel)!.elf;
  const parts = [
    e.rpath && !e.runpath ? `RPATH ${e.rpath}` : "",
    e.runpath ? `RUNPATH ${e.runpath}` : "",
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : "no RPATH/RUNPATH";
}

function hardening(tree: Tree): Finding[] {
  const out: Finding[] = [];
  for (const s of tree.elves) {
    if (s.execStack === true)
      out.push({
        severity: "warning",
        code: "EXEC_STACK",
        path: s.rel,
        message: "asks for an executable stack (PT_GNU_STACK is RWX)",
        hint: "Rebuild with -Wl,-z,noexecstack; glibc 2.41+ refuses to dlopen such libraries by default.",
      });
    else if (s.execStack === "missing")
      out.push({
        severity: "warning",
        code: "EXEC_STACK",
        path: s.rel,
        message: "has no PT_GNU_STACK header: the stack may be executable",
        hint: "Rebuild with -Wl,-z,noexecstack.",
      });
    if (s.textrel)
      out.push({
        severity: "warning",
        code: "TEXTREL",
        path: s.rel,
        message: "has text relocations (DT_TEXTREL)",
        hint: "Rebuild with -fPIC; text relocations break under SELinux and W^X policies.",
      });
    if (!s.relro && s.elf.dynamicOffset !== undefined)
      out.push({
        severity: "warning",
        code: "NO_RELRO",
        path: s.rel,
        message: "has no PT_GNU_RELRO segment",
        hint: "Rebuild with -Wl,-z,relro (and -z,now for full RELRO).",
      });
  }
  return out;
}

/** Exit status for a report: 1 when any finding is at or above `failOn`. */
export function auditFailed(report: AuditReport, failOn: "error" | "warning"): boolean {
  return report.findings.some((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK[failOn]);
}
