/**
 * The components of a runtime or bundle and their licences: CPython itself, each library
 * grafted by pyport (from PYPORT.json, licence from the Debian copyright file it copied) and
 * each installed Python distribution (`*.dist-info/METADATA`: License-Expression, else licence
 * classifiers, else the License field; licence files from License-File).
 */
import { hasErrno } from "../errors.js";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { RuntimeManifest } from "../runtime/manifest.js";
import {
  classifierLicense,
  copyleftOf,
  formatExpression,
  ids,
  isKnownId,
  parseExpression,
  type Copyleft,
  type Expr,
} from "./spdx.js";
import type { Tree } from "./tree.js";

export interface Component {
  name: string;
  version?: string;
  kind: "interpreter" | "library" | "distribution";
  /** SPDX expression, normalised. */
  license: string;
  /** Where the licence was read from (METADATA field, classifier, copyright file…). */
  licenseSource: string;
  licenseKnown: boolean;
  copyleft: Copyleft;
  /** Licence texts inside the tree (relative paths). */
  licenseFiles: string[];
  /** The file whose sha256 identifies the component (interpreter binary, library, RECORD). */
  hashedFile?: string;
  sha256?: string;
  /** Path inside the tree (dist-info directory, library file). */
  path: string;
  expr: Expr;
}

async function sha256Of(root: string, rel: string): Promise<string | undefined> {
  try {
    return createHash("sha256")
      .update(fs.readFileSync(path.join(root, rel)))
      .digest("hex"); // sync: many small files
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "EISDIR")) return undefined;
    throw err;
  }
}

function make(
  partial: Omit<Component, "license" | "licenseKnown" | "copyleft" | "expr">,
  licenseText: string,
): Component {
  const expr = parseExpression(licenseText);
  return {
    ...partial,
    expr,
    license: formatExpression(expr),
    licenseKnown: ids(expr).every(isKnownId),
    copyleft: copyleftOf(expr),
  };
}

/** Parses RFC 822-style METADATA headers (continuation lines folded; the body ignored). */
function parseMetadata(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if (/^[ \t]/.test(line) && last) {
      const list = out.get(last)!;
      list[list.length - 1] += "\n" + line.trim();
      continue;
    }
    const i = line.indexOf(":");
    if (i <= 0) continue;
    last = line.slice(0, i).trim().toLowerCase();
    out.set(last, [...(out.get(last) ?? []), line.slice(i + 1).trim()]);
  }
  return out;
}

/**
 * A licence from free text: a short name or expression is taken as is; a full text is
 * recognised by its wording, and only when exactly one licence's wording is present.
 */
function licenseFromText(text: string): string | undefined {
  const t = text.trim();
  if (!t || /^(unknown|none|unlicensed|n\/a)$/i.test(t)) return undefined;
  if (t.length <= 80 && !t.includes("\n")) return t;
  const found = new Set<string>();
  if (/Permission is hereby granted, free of charge/i.test(t)) found.add("MIT");
  if (/Apache License/i.test(t) && /Version 2\.0/i.test(t)) found.add("Apache-2.0");
  if (/Redistribution and use in source and binary forms/i.test(t))
    found.add(
      /Neither the name|names of its contributors/i.test(t) ? "BSD-3-Clause" : "BSD-2-Clause",
    );
  if (/GNU LESSER GENERAL PUBLIC LICENSE|GNU Lesser General Public License/.test(t))
    found.add(/version 3/i.test(t) ? "LGPL-3.0-or-later" : "LGPL-2.1-or-later");
  if (/GNU AFFERO GENERAL PUBLIC LICENSE|GNU Affero General Public License/.test(t))
    found.add("AGPL-3.0-or-later");
  if (/GNU GENERAL PUBLIC LICENSE|GNU General Public License/.test(t))
    found.add(/version 3/i.test(t) ? "GPL-3.0-or-later" : "GPL-2.0-or-later");
  return found.size === 1 ? [...found][0] : undefined;
}

type Hasher = (rel: string) => Promise<string | undefined>;

async function distribution(
  root: string,
  distInfo: string,
  files: ReadonlySet<string>,
  hash: Hasher,
): Promise<Component | undefined> {
  let meta: Map<string, string[]>;
  try {
    meta = parseMetadata(fs.readFileSync(path.join(root, distInfo, "METADATA"), "utf8"));
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  const name = meta.get("name")?.[0] ?? path.basename(distInfo).replace(/-[^-]+\.dist-info$/, "");
  const licenseFiles = (meta.get("license-file") ?? [])
    .map((f) => [`${distInfo}/licenses/${f}`, `${distInfo}/${f}`].find((c) => files.has(c)))
    .filter((f): f is string => f !== undefined);
  for (const f of files)
    if (
      f.startsWith(`${distInfo}/`) &&
      /\/(LICEN[CS]E|COPYING|NOTICE)[^/]*$/i.test(f) &&
      !licenseFiles.includes(f)
    )
      licenseFiles.push(f);
  let license: string | undefined;
  let source = "";
  const expression = meta.get("license-expression")?.[0];
  const classified = (meta.get("classifier") ?? [])
    .map(classifierLicense)
    .filter((l): l is string => l !== undefined);
  const field = licenseFromText(meta.get("license")?.[0] ?? "");
  // A precise field beats the classifiers (often just "BSD License"); a vague one does not.
  if (expression) [license, source] = [expression, "METADATA License-Expression"];
  else if (field && ids(parseExpression(field)).every(isKnownId))
    [license, source] = [field, "METADATA License"];
  else if (classified.length)
    [license, source] = [[...new Set(classified)].join(" OR "), "METADATA classifier"];
  else if (field) [license, source] = [field, "METADATA License"];
  const hashedFile = files.has(`${distInfo}/RECORD`)
    ? `${distInfo}/RECORD`
    : `${distInfo}/METADATA`;
  return make(
    {
      name,
      version: meta.get("version")?.[0],
      kind: "distribution",
      licenseSource: license ? source : "none declared",
      licenseFiles,
      hashedFile,
      sha256: await hash(hashedFile),
      path: distInfo,
    },
    license ?? "NOASSERTION",
  );
}

/**
 * The licence of a Debian copyright file (DEP-5) for the library `soname`: the License of the
 * paragraph whose Files patterns name the library's own source directory (`libuuid/*` for
 * libuuid.so.1 — one copyright file covers a whole source package, util-linux's programs under
 * GPL and its libraries under BSD or LGPL), else of the `Files: *` paragraph.
 */
function debianCopyrightLicense(
  text: string,
  soname: string,
): { license: string; files: string } | undefined {
  if (!/^Format:/m.test(text)) return undefined;
  const stem = soname.replace(/\.so(\..*)?$/, "");
  const dirs = new Set([stem, stem.replace(/^lib/, "")]);
  let fallback: { license: string; files: string } | undefined;
  for (const para of text.split(/\n\s*\n/)) {
    // Files: may continue on indented lines.
    const files = /^Files:((?:.*)(?:\n[ \t]+.*)*)/m.exec(para)?.[1].trim().split(/\s+/) ?? [];
    const license = /^License:\s*(.+)$/m.exec(para)?.[1].trim();
    if (!license || !files.length) continue;
    if (files.some((f) => dirs.has(f.split("/")[0]) && f.includes("/")))
      return { license, files: files.join(" ") };
    if (files.includes("*")) fallback ??= { license, files: "*" };
  }
  return fallback;
}

/** `hashes: false` skips the sha256 of each component (SBOM material; tens of MiB to read). */
export async function collectComponents(
  tree: Tree,
  manifest: RuntimeManifest | undefined,
  opts: { hashes?: boolean } = {},
): Promise<Component[]> {
  const hash: Hasher =
    opts.hashes === false ? async () => undefined : (rel) => sha256Of(tree.root, rel);
  const files = new Set(tree.files.map((f) => f.rel));
  const out: Component[] = [];
  const stdlib = tree.files.find((f) => /^lib\/python3\.\d+\/os\.py$/.test(f.rel));
  if (manifest || stdlib) {
    const ver = manifest?.python.version ?? stdlib!.rel.split("/")[1].slice("python".length);
    const licenseFile = [
      "licenses/python.LICENSE.txt",
      `lib/python${ver.split(".").slice(0, 2).join(".")}/LICENSE.txt`,
    ].find((f) => files.has(f));
    const interp = manifest?.realInterpreter;
    out.push(
      make(
        {
          name: "CPython",
          version: ver,
          kind: "interpreter",
          licenseSource: "CPython licence (PSF-2.0)",
          licenseFiles: licenseFile ? [licenseFile] : [],
          hashedFile: interp,
          sha256: interp ? await hash(interp) : undefined,
          path: interp ?? "lib",
        },
        "PSF-2.0",
      ),
    );
  }
  for (const g of manifest?.grafted ?? []) {
    if (g.soname.startsWith("libpython")) continue; // part of CPython
    let license: string | undefined;
    let source = g.license
      ? `Debian copyright of ${g.package ?? g.soname}`
      : "no licence text found on the build machine";
    if (g.license) {
      const text = fs.existsSync(path.join(tree.root, g.license))
        ? fs.readFileSync(path.join(tree.root, g.license), "utf8")
        : "";
      const dep5 = debianCopyrightLicense(text, g.soname);
      license = dep5?.license;
      if (dep5) source = `Debian copyright of ${g.package ?? g.soname} (Files: ${dep5.files})`;
      else if ((license = licenseFromText(text.slice(0, 20000))))
        source = `wording of the copyright file of ${g.package ?? g.soname}`;
      else
        source =
          "copyright file is not machine-readable (DEP-5) and its wording was not recognised";
    }
    out.push(
      make(
        {
          name: g.package ?? g.soname,
          version: g.packageVersion,
          kind: "library",
          licenseSource: source,
          licenseFiles: g.license ? [g.license] : [],
          hashedFile: g.file,
          sha256: await hash(g.file),
          path: g.file,
        },
        license ?? "NOASSERTION",
      ),
    );
  }
  const distInfos = new Set<string>();
  for (const f of tree.files) {
    const m = /^(.*\.dist-info)\/METADATA$/.exec(f.rel);
    if (m) distInfos.add(m[1]);
  }
  for (const d of [...distInfos].sort()) {
    const c = await distribution(tree.root, d, files, hash);
    if (c) out.push(c);
  }
  // One entry per library package even when several of its sonames were grafted.
  const seenLibraries = new Set<string>();
  return out.filter((c) => {
    if (c.kind !== "library") return true;
    const key = `${c.name}|${c.version ?? ""}`;
    if (seenLibraries.has(key)) return false;
    seenLibraries.add(key);
    return true;
  });
}
