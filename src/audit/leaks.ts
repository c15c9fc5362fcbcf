/**
 * Build-machine paths that leaked into a runtime or bundle: in the files that commonly carry
 * them (shebangs, `_sysconfigdata_*.py`, `Makefile`, `.pc`, `.pth`, `RECORD`,
 * `direct_url.json`, `pyvenv.cfg`) and in ELF RPATH/RUNPATH entries that are not
 * `$ORIGIN`-relative. A leaked path is one under a known build prefix, or under a per-user or
 * temporary directory that will not exist (or will hold something else) on the target.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Finding } from "./findings.js";
import type { Tree } from "./tree.js";

const CARRIERS = [
  /(^|\/)_sysconfigdata_[^/]*\.py$/,
  /^lib\/python3\.\d+\/config-[^/]+\/Makefile$/,
  /\.pc$/,
  /\.pth$/,
  /\.dist-info\/RECORD$/,
  /\.dist-info\/direct_url\.json$/,
  /(^|\/)pyvenv\.cfg$/,
];

/** Absolute paths under per-user, temporary or CI build directories (also inside file:// URLs). */
const SUSPECT =
  /(?<=^|[\s'"=:,(\[/])\/(?:home\/[^/\s'"]+|root|tmp|var\/tmp|build|builds|install|__w|github\/workspace|opt\/hostedtoolcache)(?:\/[^\s'",;:)\]}]*)?/g;

/** Interpreters a shebang may name on any Linux. */
const PORTABLE_SHEBANG = /^(\/bin\/sh|\/bin\/bash|\/usr\/bin\/env (?!python)\S+)(\s|$)/;

function scanText(text: string, buildPaths: readonly string[]): string[] {
  const hits = new Set<string>();
  for (const p of buildPaths) {
    let i = text.indexOf(p);
    while (i >= 0 && hits.size < 20) {
      const end = text.slice(i).search(/[\s'",;:)\]}]/);
      hits.add(end < 0 ? text.slice(i) : text.slice(i, i + end));
      i = text.indexOf(p, i + p.length);
    }
  }
  for (const m of text.matchAll(SUSPECT)) {
    if (hits.size >= 20) break;
    hits.add(m[0]);
  }
  return [...hits];
}

export async function findLeaks(tree: Tree, buildPaths: readonly string[]): Promise<Finding[]> {
  const out: Finding[] = [];
  const prefixes = buildPaths.filter((p) => p && !["/", "/usr", "/usr/local"].includes(p));

  for (const f of tree.files) {
    if (!CARRIERS.some((re) => re.test(f.rel))) continue;
    const text = fs.readFileSync(path.join(tree.root, f.rel), "utf8");
    if (text.length > 8 * 1024 * 1024) continue;
    const hits = scanText(text, prefixes);
    if (f.rel.endsWith("pyvenv.cfg") && /^home\s*=\s*\//m.test(text))
      hits.unshift(/^home\s*=\s*(.*)$/m.exec(text)![1]);
    if (hits.length === 0) continue;
    out.push({
      severity: "warning",
      code: "LEAK_PATH",
      path: f.rel,
      message: `mentions build-machine path${hits.length > 1 ? "s" : ""} ${hits.slice(0, 3).join(", ")}${hits.length > 3 ? ` (+${hits.length - 3} more)` : ""}`,
      hint: f.rel.endsWith("pyvenv.cfg")
        ? "A venv is bound to the interpreter it was made with; ship a pyport runtime instead of a venv."
        : "Rebuild with pyport (it rewrites these files to runtime-relative paths), or remove the file if nothing reads it at run time.",
    });
  }

  // Scripts users run live in a bin/ directory; shebangs of library modules are never used.
  for (const [rel, line] of tree.shebangs) {
    if (!/(^|\/)bin\/[^/]+$/.test(rel) || PORTABLE_SHEBANG.test(line) || !line.startsWith("/"))
      continue;
    out.push({
      severity: "warning",
      code: "LEAK_SHEBANG",
      path: rel,
      message: `shebang #!${line.slice(0, 120)} names an interpreter ${line.startsWith("/usr/bin/env") ? "looked up on the target's PATH" : "at a fixed path"}, not the one shipped here`,
      hint: "Use a relocatable launcher (pyport writes `#!/bin/sh` + exec of the runtime's python relative to the script).",
    });
  }

  for (const scan of tree.elves) {
    for (const [tag, value] of [
      ["RPATH", scan.elf.rpath],
      ["RUNPATH", scan.elf.runpath],
    ] as const) {
      const bad = (value ?? "")
        .split(":")
        .filter((e) => e && !/^\$(?:ORIGIN|\{ORIGIN\})(?=\/|$)/.test(e));
      if (bad.length === 0) continue;
      out.push({
        severity: "warning",
        code: "LEAK_RPATH",
        path: scan.rel,
        message: `${tag} has absolute entr${bad.length > 1 ? "ies" : "y"} ${bad.join(":")}: the loader searches ${bad.length > 1 ? "them" : "it"} on the target too`,
        hint: `Make it $ORIGIN-relative (pyport runtime create does this), or drop it; an absolute ${tag} lets whatever lives there on the target be loaded.`,
      });
    }
  }
  return out;
}
