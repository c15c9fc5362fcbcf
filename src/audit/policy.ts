/**
 * Audit policies: which symbol-version nodes and which system libraries a target host provides.
 * A policy is a set of allowed version nodes per namespace (as the manylinux policies are
 * written), not a maximum: a node that the platform never defined (e.g. GLIBC_2.19 on x86_64)
 * or a private one (GLIBC_PRIVATE) is outside every policy. The node lists are those of x86_64
 * (the manylinux policy data published with auditwheel, https://github.com/pypa/auditwheel).
 */
import { PyportError } from "../errors.js";
import { compareVersions } from "../runtime/libc.js";

const NAMESPACES = ["GLIBC", "GLIBCXX", "CXXABI", "GCC", "ZLIB", "LIBATOMIC"] as const;
export type Namespace = (typeof NAMESPACES)[number];

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/** Every node each namespace has defined on x86_64, oldest first. */
const KNOWN_NODES: Record<Namespace, readonly string[]> = {
  GLIBC: [
    "2.2.5",
    "2.2.6",
    "2.3",
    "2.3.2",
    "2.3.3",
    "2.3.4",
    ...range("2.", 4, 18),
    ...range("2.", 22, 43),
    "ABI_DT_RELR",
  ],
  GLIBCXX: ["3.4", ...range("3.4.", 1, 33)],
  CXXABI: ["1.3", ...range("1.3.", 1, 16), "TM_1", "FLOAT128"],
  GCC: [
    "3.0",
    "3.3",
    "3.3.1",
    "3.4",
    "3.4.2",
    "3.4.4",
    "4.0.0",
    "4.2.0",
    "4.3.0",
    "4.7.0",
    "4.8.0",
    "7.0.0",
    "12.0.0",
    "13.0.0",
    "14.0.0",
  ],
  ZLIB: [
    "1.2.0",
    "1.2.0.2",
    "1.2.0.8",
    "1.2.2",
    "1.2.2.3",
    "1.2.2.4",
    "1.2.3.3",
    "1.2.3.4",
    "1.2.3.5",
    "1.2.5.1",
    "1.2.5.2",
    "1.2.7.1",
    "1.2.9",
    "1.2.12",
    "1.3.1",
  ],
  LIBATOMIC: ["1.0", "1.1", "1.2"],
};

/** System libraries a manylinux host is expected to provide (the policies' lib_whitelist). */
const MANYLINUX_LIBS = [
  "libatomic.so.1",
  "libgcc_s.so.1",
  "libstdc++.so.6",
  "libm.so.6",
  "libmvec.so.1",
  "libanl.so.1",
  "libdl.so.2",
  "librt.so.1",
  "libc.so.6",
  "libnsl.so.1",
  "libutil.so.1",
  "libpthread.so.0",
  "libX11.so.6",
  "libXext.so.6",
  "libXrender.so.1",
  "libICE.so.6",
  "libSM.so.6",
  "libGL.so.1",
  "libgobject-2.0.so.0",
  "libgthread-2.0.so.0",
  "libglib-2.0.so.0",
  "libresolv.so.2",
  "libexpat.so.1",
  "libz.so.1",
];
/** The loader is always the system's (or the bundle's, with bundled libc). */
const LOADERS = ["ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux-aarch64.so.1"];

export interface Policy {
  name: string;
  description: string;
  /** Highest allowed numeric node per namespace; a missing namespace is not restricted. */
  max: Partial<Record<Namespace, string>>;
  /** Non-numeric nodes allowed per namespace (e.g. CXXABI TM_1). */
  extra: Partial<Record<Namespace, readonly string[]>>;
  systemLibs: ReadonlySet<string>;
  /** `auto` checks nothing against versions; it reports the floors and where they run. */
  restrictsVersions: boolean;
}

interface ManylinuxRow {
  glibc: string;
  glibcxx: string;
  cxxabi: string;
  gcc: string;
  zlib: string;
  atomic?: string;
  extra: Partial<Record<Namespace, readonly string[]>>;
}

const MANYLINUX: Record<string, ManylinuxRow> = {
  manylinux_2_17: {
    glibc: "2.17",
    glibcxx: "3.4.19",
    cxxabi: "1.3.7",
    gcc: "4.8.0",
    zlib: "1.2.5.2",
    extra: { CXXABI: ["TM_1"] },
  },
  manylinux_2_24: {
    glibc: "2.24",
    glibcxx: "3.4.22",
    cxxabi: "1.3.10",
    gcc: "4.8.0",
    zlib: "1.2.5.2",
    atomic: "1.2",
    extra: { CXXABI: ["TM_1", "FLOAT128"] },
  },
  manylinux_2_28: {
    glibc: "2.28",
    glibcxx: "3.4.24",
    cxxabi: "1.3.11",
    gcc: "7.0.0",
    zlib: "1.2.9",
    atomic: "1.2",
    extra: { CXXABI: ["TM_1", "FLOAT128"] },
  },
  manylinux_2_31: {
    glibc: "2.31",
    glibcxx: "3.4.28",
    cxxabi: "1.3.12",
    gcc: "7.0.0",
    zlib: "1.2.9",
    atomic: "1.2",
    extra: { CXXABI: ["TM_1", "FLOAT128"] },
  },
  manylinux_2_37: {
    glibc: "2.37",
    glibcxx: "3.4.30",
    cxxabi: "1.3.13",
    gcc: "12.0.0",
    zlib: "1.2.12",
    atomic: "1.2",
    extra: { CXXABI: ["TM_1", "FLOAT128"], GLIBC: ["ABI_DT_RELR"] },
  },
};
const ALIASES: Record<string, string> = { manylinux2014: "manylinux_2_17" };

export const POLICY_NAMES = [
  "auto",
  "glibc-X.Y",
  ...Object.keys(MANYLINUX),
  ...Object.keys(ALIASES),
];

export function getPolicy(name: string): Policy {
  const systemLibs = new Set([...MANYLINUX_LIBS, ...LOADERS]);
  if (name === "auto") {
    return {
      name,
      description: "no version limit: report the floors and where they run",
      max: {},
      extra: {},
      systemLibs,
      restrictsVersions: false,
    };
  }
  const glibc = /^glibc-(\d+\.\d+)$/.exec(name);
  if (glibc) {
    return {
      name,
      description: `hosts with glibc >= ${glibc[1]}`,
      max: { GLIBC: glibc[1] },
      extra: {},
      systemLibs,
      restrictsVersions: true,
    };
  }
  const row = MANYLINUX[ALIASES[name] ?? name];
  if (!row) {
    throw new PyportError("E_USAGE", `unknown audit policy ${JSON.stringify(name)}`, {
      hint: `Use one of: auto, glibc-2.17 (any glibc-X.Y), ${[...Object.keys(MANYLINUX), ...Object.keys(ALIASES)].join(", ")}.`,
    });
  }
  return {
    name,
    description: `the ${ALIASES[name] ?? name} platform (glibc ${row.glibc}, GLIBCXX ${row.glibcxx})`,
    max: {
      GLIBC: row.glibc,
      GLIBCXX: row.glibcxx,
      CXXABI: row.cxxabi,
      GCC: row.gcc,
      ZLIB: row.zlib,
      LIBATOMIC: row.atomic ?? "0",
    },
    extra: row.extra,
    systemLibs,
    restrictsVersions: true,
  };
}

/** Splits a version node name into its namespace and version: "GLIBC_2.27" → ["GLIBC", "2.27"]. */
export function splitNode(node: string): { ns: Namespace; version: string } | undefined {
  const i = node.indexOf("_");
  if (i < 0) return undefined;
  const ns = node.slice(0, i) as Namespace;
  return NAMESPACES.includes(ns) ? { ns, version: node.slice(i + 1) } : undefined;
}

export function isNumericVersion(v: string): boolean {
  return /^\d+(?:\.\d+)*$/.test(v);
}

/** Why a node is outside the policy, or undefined when it is allowed. */
export function nodeViolation(policy: Policy, ns: Namespace, version: string): string | undefined {
  if (!policy.restrictsVersions) return undefined;
  const max = policy.max[ns];
  if (max === undefined) return undefined;
  if (!isNumericVersion(version)) {
    return policy.extra[ns]?.includes(version)
      ? undefined
      : `${ns}_${version} is not a public node of ${policy.name}`;
  }
  if (compareVersions(version, max) > 0)
    return `${ns}_${version} is newer than ${policy.name} allows (${ns}_${max})`;
  if (!KNOWN_NODES[ns].includes(version))
    return `${ns}_${version} is not a node this platform defines`;
  return undefined;
}
