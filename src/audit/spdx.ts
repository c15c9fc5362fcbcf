/**
 * SPDX licence expressions: parsing (AND / OR / WITH / parentheses), normalising the names that
 * Python metadata and Debian copyright files use, the copyleft class of an expression, and
 * deny-list matching. Unknown names become `LicenseRef-…` and are reported as unknown.
 */

export type Copyleft = "strong" | "weak" | false;

export type Expr = { id: string } | { op: "AND" | "OR"; left: Expr; right: Expr };

/** Names seen in the wild → SPDX ids (lower-cased keys). */
const ALIASES: Record<string, string> = {
  mit: "MIT",
  "mit license": "MIT",
  expat: "MIT",
  "the mit license": "MIT",
  bsd: "LicenseRef-BSD",
  "bsd license": "LicenseRef-BSD",
  "new bsd": "BSD-3-Clause",
  "new bsd license": "BSD-3-Clause",
  "modified bsd": "BSD-3-Clause",
  "bsd-3-clause": "BSD-3-Clause",
  "bsd 3-clause": "BSD-3-Clause",
  "3-clause bsd": "BSD-3-Clause",
  "bsd-2-clause": "BSD-2-Clause",
  "simplified bsd": "BSD-2-Clause",
  "apache 2.0": "Apache-2.0",
  "apache-2": "Apache-2.0",
  "apache 2": "Apache-2.0",
  "apache license 2.0": "Apache-2.0",
  "apache license, version 2.0": "Apache-2.0",
  "apache software license": "Apache-2.0",
  "apache-2.0": "Apache-2.0",
  asl2: "Apache-2.0",
  psf: "PSF-2.0",
  "psf license": "PSF-2.0",
  "psf-2.0": "PSF-2.0",
  "python software foundation license": "PSF-2.0",
  "python-2.0": "Python-2.0",
  isc: "ISC",
  "isc license": "ISC",
  "isc license (iscl)": "ISC",
  zlib: "Zlib",
  "zlib/libpng": "Zlib",
  "zlib/libpng license": "Zlib",
  "mpl-2.0": "MPL-2.0",
  "mpl 2.0": "MPL-2.0",
  "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
  unlicense: "Unlicense",
  "the unlicense (unlicense)": "Unlicense",
  "public-domain": "LicenseRef-public-domain",
  pd: "LicenseRef-public-domain",
  "mit-x11": "X11",
  x11: "X11",
  "mit/x11": "X11",
  "public domain": "LicenseRef-public-domain",
  "cc0-1.0": "CC0-1.0",
  "0bsd": "0BSD",
  gpl: "GPL-2.0-or-later",
  "gpl-2": "GPL-2.0-only",
  "gpl-2+": "GPL-2.0-or-later",
  "gpl-3": "GPL-3.0-only",
  "gpl-3+": "GPL-3.0-or-later",
  gplv2: "GPL-2.0-only",
  "gplv2+": "GPL-2.0-or-later",
  gplv3: "GPL-3.0-only",
  "gplv3+": "GPL-3.0-or-later",
  lgpl: "LGPL-2.1-or-later",
  "lgpl-2": "LGPL-2.0-only",
  "lgpl-2+": "LGPL-2.0-or-later",
  "lgpl-2.1": "LGPL-2.1-only",
  "lgpl-2.1+": "LGPL-2.1-or-later",
  "lgpl-3": "LGPL-3.0-only",
  "lgpl-3+": "LGPL-3.0-or-later",
  lgplv3: "LGPL-3.0-only",
  "lgplv3+": "LGPL-3.0-or-later",
  "agpl-3": "AGPL-3.0-only",
  "agpl-3+": "AGPL-3.0-or-later",
  agplv3: "AGPL-3.0-only",
  openssl: "OpenSSL",
  "bzip2-1.0.6": "bzip2-1.0.6",
  "bzip2-1.0.8": "bzip2-1.0.6",
  "gfdl-1.3+": "GFDL-1.3-or-later",
};

/** Trove classifiers (the part after "License :: OSI Approved :: ") → SPDX. */
const CLASSIFIERS: Record<string, string> = {
  "MIT License": "MIT",
  "BSD License": "LicenseRef-BSD",
  "Apache Software License": "Apache-2.0",
  "ISC License (ISCL)": "ISC",
  "Python Software Foundation License": "PSF-2.0",
  "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
  "The Unlicense (Unlicense)": "Unlicense",
  "zlib/libpng License": "Zlib",
  "GNU General Public License (GPL)": "GPL-2.0-or-later",
  "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
  "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
  "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
  "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
  "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
  "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
  "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
  "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
  "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
  "GNU Affero General Public License v3": "AGPL-3.0-only",
  "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
  "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
};

const SPDX_ID = /^[A-Za-z0-9][A-Za-z0-9.+-]*$/;
/** Ids the audit knows; anything else normalises to LicenseRef-… and is "unknown". */
const KNOWN = new Set([
  ...Object.values(ALIASES),
  ...Object.values(CLASSIFIERS),
  "BSD-3-Clause",
  "BSD-2-Clause",
  "Apache-2.0",
  "MIT",
  "ISC",
  "Zlib",
  "0BSD",
  "CC0-1.0",
  "GPL-2.0-only",
  "GPL-2.0-or-later",
  "GPL-3.0-only",
  "GPL-3.0-or-later",
  "LGPL-2.0-only",
  "LGPL-2.0-or-later",
  "LGPL-2.1-only",
  "LGPL-2.1-or-later",
  "LGPL-3.0-only",
  "LGPL-3.0-or-later",
  "AGPL-3.0-only",
  "AGPL-3.0-or-later",
  "MPL-2.0",
  "EPL-2.0",
  "PSF-2.0",
  "Python-2.0",
  "Unlicense",
  "OpenSSL",
  "BSL-1.0",
  "Artistic-2.0",
  "CDDL-1.0",
  "EUPL-1.2",
  "HPND",
  "MIT-CMU",
  "X11",
  "curl",
  "libtiff",
  "NCSA",
  "bzip2-1.0.6",
  "Unicode-DFS-2016",
  "GFDL-1.3-or-later",
]);

export function classifierLicense(classifier: string): string | undefined {
  const m = /^License :: (?:OSI Approved :: )?(.+)$/.exec(classifier.trim());
  return m ? CLASSIFIERS[m[1].trim()] : undefined;
}

/** One licence name → an SPDX id (possibly LicenseRef-…). */
function normaliseId(name: string): string {
  const t = name.trim();
  if (t === "NOASSERTION") return t;
  const alias = ALIASES[t.toLowerCase()];
  if (alias) return alias;
  if (KNOWN.has(t)) return t;
  const plus = /^(L?GPL|AGPL)-(\d\.\d)\+$/.exec(t);
  if (plus) return `${plus[1]}-${plus[2]}-or-later`;
  const bare = /^(L?GPL|AGPL)-(\d\.\d)$/.exec(t);
  if (bare) return `${bare[1]}-${bare[2]}-only`;
  return SPDX_ID.test(t) && !/^LicenseRef-/.test(t)
    ? `LicenseRef-${t}`
    : t.startsWith("LicenseRef-")
      ? t
      : `LicenseRef-${t.replace(/[^A-Za-z0-9.-]+/g, "-")}`;
}

export function isKnownId(id: string): boolean {
  return KNOWN.has(id) && id !== "LicenseRef-BSD" && id !== "NOASSERTION";
}

/** Parses an SPDX expression; also accepts Debian's `A or B` / `A and B` and `,` as AND. */
export function parseExpression(text: string): Expr {
  const tokens = text
    .replace(/([()])/g, " $1 ")
    .replace(/,/g, " AND ")
    .split(/\s+/)
    .filter(Boolean);
  let i = 0;
  const peek = () => tokens[i]?.toUpperCase();
  const primary = (): Expr => {
    if (tokens[i] === "(") {
      i++;
      const e = orExpr();
      if (tokens[i] === ")") i++;
      return e;
    }
    const words: string[] = [];
    while (i < tokens.length && !["AND", "OR", ")", "("].includes(peek()!)) {
      if (peek() === "WITH") {
        i += 2; // an exception narrows the licence; the base licence decides copyleft and deny
        continue;
      }
      words.push(tokens[i++]);
    }
    return { id: normaliseId(words.join(" ") || "NOASSERTION") };
  };
  const andExpr = (): Expr => {
    let left = primary();
    while (peek() === "AND") {
      i++;
      left = { op: "AND", left, right: primary() };
    }
    return left;
  };
  const orExpr = (): Expr => {
    let left = andExpr();
    while (peek() === "OR") {
      i++;
      left = { op: "OR", left, right: andExpr() };
    }
    return left;
  };
  return orExpr();
}

export function formatExpression(e: Expr, parent?: "AND" | "OR"): string {
  if ("id" in e) return e.id;
  const s = `${formatExpression(e.left, e.op)} ${e.op} ${formatExpression(e.right, e.op)}`;
  return parent && parent !== e.op ? `(${s})` : s;
}

export function ids(e: Expr): string[] {
  return "id" in e ? [e.id] : [...ids(e.left), ...ids(e.right)];
}

function idCopyleft(id: string): Copyleft {
  if (/^(A?GPL|EUPL|OSL|CC-BY-SA|GFDL)-/.test(id)) return "strong";
  if (/^(LGPL|MPL|EPL|CDDL|CPL)-/.test(id)) return "weak";
  return false;
}

const RANK = { false: 0, weak: 1, strong: 2 } as const;
const rank = (c: Copyleft) => RANK[String(c) as keyof typeof RANK];

/** The copyleft class the recipient must honour: the least restrictive OR branch, the most restrictive AND part. */
export function copyleftOf(e: Expr): Copyleft {
  if ("id" in e) return idCopyleft(e.id);
  const a = copyleftOf(e.left);
  const b = copyleftOf(e.right);
  if (e.op === "OR") return rank(a) <= rank(b) ? a : b;
  return rank(a) >= rank(b) ? a : b;
}

/**
 * True when the expression cannot be used without a denied licence. A deny entry matches an
 * id exactly, or, written without `-only`/`-or-later`, both of those forms.
 */
export function isDenied(e: Expr, deny: readonly string[]): boolean {
  if ("id" in e)
    return deny.some((d) => e.id === d || e.id === `${d}-only` || e.id === `${d}-or-later`);
  const a = isDenied(e.left, deny);
  const b = isDenied(e.right, deny);
  return e.op === "OR" ? a && b : a || b;
}
