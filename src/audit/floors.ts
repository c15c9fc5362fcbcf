/**
 * Symbol-version floors: for each namespace (GLIBC, GLIBCXX, …) the highest version the tree
 * needs from libraries outside it, with the files and symbols that set it; policy violations
 * per (file, node); and the mapping of floors to distribution releases (data/distros.json).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../util/assets.js";
import { compareVersions } from "../runtime/libc.js";
import type { ElfScan } from "./elf-scan.js";
import type { Finding } from "./findings.js";
import {
  isNumericVersion,
  nodeViolation,
  splitNode,
  type Namespace,
  type Policy,
} from "./policy.js";
import type { Resolution } from "./resolve.js";

export interface Floor {
  version: string;
  setBy: { path: string; symbols: string[] }[];
}

export type Floors = Partial<Record<Namespace, Floor>>;

/** Version uses that the system must satisfy: needed from a library not resolved inside the tree. */
function externalUses(scans: readonly ElfScan[], resolution: Resolution) {
  const out: { rel: string; soname: string; node: string; symbols: string[] }[] = [];
  for (const scan of scans) {
    const inside = resolution.inside.get(scan.rel);
    for (const u of scan.uses) if (!inside?.has(u.soname)) out.push({ rel: scan.rel, ...u });
  }
  return out;
}

export function computeFloors(
  scans: readonly ElfScan[],
  resolution: Resolution,
  policy: Policy,
): { floors: Floors; findings: Finding[] } {
  const floors: Floors = {};
  const findings: Finding[] = [];
  for (const use of externalUses(scans, resolution)) {
    const split = splitNode(use.node);
    if (!split) continue;
    const { ns, version } = split;
    const shown = use.symbols.length
      ? use.symbols
          .slice(0, 4)
          .map((s) => `${s}@${use.node}`)
          .join(", ") + (use.symbols.length > 4 ? ` (+${use.symbols.length - 4} more)` : "")
      : use.node;
    if (version === "PRIVATE") {
      findings.push({
        severity: "error",
        code: "PRIVATE_SYMBOL",
        path: use.rel,
        message: `uses private ${ns} symbols (${shown}) from ${use.soname}`,
        hint: "Private symbols change between releases: it runs only with the exact C library it was built against. Rebuild it, or use --libc bundled.",
      });
      continue;
    }
    const why = nodeViolation(policy, ns, version);
    if (why) {
      findings.push({
        severity: "error",
        code: "POLICY_VERSION",
        path: use.rel,
        message: `needs ${shown} from ${use.soname}: ${why}`,
        hint: `Rebuild it on an older base (e.g. a ${policy.name} build image), take a wheel built for that platform, or ship the C library with --libc bundled.`,
      });
    }
    if (!isNumericVersion(version)) continue;
    const cur = floors[ns];
    const c = cur ? compareVersions(version, cur.version) : 1;
    if (c > 0) floors[ns] = { version, setBy: [{ path: use.rel, symbols: use.symbols }] };
    else if (c === 0) {
      const entry = cur!.setBy.find((s) => s.path === use.rel);
      if (entry) entry.symbols = [...new Set([...entry.symbols, ...use.symbols])].sort();
      else cur!.setBy.push({ path: use.rel, symbols: use.symbols });
    }
  }
  return { floors, findings };
}

interface Release {
  version: string;
  codename?: string;
  glibc: string;
  glibcxx?: string;
  cxxabi?: string;
  gcc?: string;
}
interface Family {
  family: string;
  aka?: string;
  source: string;
  releases: Release[];
}

let table: Family[] | undefined;
export function distroTable(): Family[] {
  return (table ??= (
    JSON.parse(readFileSync(path.join(packageRoot(), "data", "distros.json"), "utf8")) as {
      families: Family[];
    }
  ).families);
}

export interface RunsOn {
  family: string;
  /** Oldest listed release that satisfies every floor (undefined: none does). */
  from?: string;
  /** Newest listed release that does not, and why. */
  notOn?: { version: string; reason: string };
  label: string;
}

/** Why a release cannot run something with these floors, or undefined if it can. */
function shortfall(r: Release, floors: Floors): string | undefined {
  const checks: [Namespace, string | undefined, string][] = [
    ["GLIBC", r.glibc, "glibc"],
    ["GLIBCXX", r.glibcxx, "libstdc++ GLIBCXX"],
    ["CXXABI", r.cxxabi, "libstdc++ CXXABI"],
  ];
  for (const [ns, has, what] of checks) {
    const need = floors[ns]?.version;
    if (need && has && compareVersions(need, has) > 0) return `${what} ${has} < ${need}`;
  }
  const gcc = floors.GCC?.version;
  if (gcc && r.gcc && parseInt(gcc, 10) > parseInt(r.gcc, 10))
    return `libgcc_s from GCC ${parseInt(r.gcc, 10)} < GCC_${gcc}`;
  return undefined;
}

export function runsOn(floors: Floors): RunsOn[] {
  return distroTable().map((fam) => {
    let from: string | undefined;
    let notOn: RunsOn["notOn"];
    for (const r of fam.releases) {
      const why = shortfall(r, floors);
      if (why) {
        notOn = { version: r.version, reason: why };
        from = undefined;
      } else from ??= r.version;
    }
    const label = from ? `${fam.family} >= ${from}` : `not on any listed ${fam.family} release`;
    return { family: fam.family, from, notOn, label };
  });
}
