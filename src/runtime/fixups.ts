/**
 * Fix-ups that make a staged runtime behave like a normal install wherever it lands:
 * build-machine paths in `_sysconfigdata_*.py`, `config-X.Y/Makefile` and `*.pc` are made
 * relative to the runtime's own location; scripts in `bin/` get a relocatable shebang;
 * `ssl` learns where the target machine keeps CA certificates; `curses` finds the runtime's
 * terminfo database.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";
import { pythonAsset } from "../util/assets.js";
import { pathExists, replaceFile } from "../util/fs.js";
import type { PythonProbe } from "../python/probe.js";

const TOKEN = "@@PYPORT_PREFIX@@";
const SYSTEM_PREFIXES = new Set(["/", "/usr", "/usr/local"]);

/** Old absolute path → runtime-relative replacement, longest first. */
export type PathMap = [from: string, to: string][];

/**
 * What each build-machine directory of the source becomes inside the runtime (relative to the
 * runtime root). The bare prefix is mapped only when it is not a system prefix: `/usr` also
 * prefixes compilers and tools that a runtime does not contain.
 */
export function buildPathMap(probe: PythonProbe, ver: string): PathMap {
  const pairs: [string, string][] = [];
  const add = (from: unknown, to: string) => {
    if (typeof from === "string" && from.startsWith("/") && from.length > 1)
      pairs.push([from.replace(/\/+$/, ""), to]);
  };
  const include = `include/python${ver}${probe.abiflags}`;
  add(probe.paths.stdlib, `lib/python${ver}`);
  add(probe.paths.platstdlib, `lib/python${ver}`);
  add(probe.paths.include, include);
  add(probe.paths.platinclude, include);
  add(probe.vars.INCLUDEPY, include);
  add(probe.vars.CONFINCLUDEPY, include);
  if (probe.vars.MULTIARCH)
    add(`/usr/include/${probe.vars.MULTIARCH}/python${ver}${probe.abiflags}`, include);
  // The source build tree: sysconfig itself uses the config dir (LIBPL) as srcdir when installed.
  const libpl = probe.vars.LIBPL;
  if (typeof libpl === "string" && libpl.startsWith(`${probe.prefix}/`)) {
    for (const v of [probe.vars.abs_builddir, probe.vars.abs_srcdir]) {
      if (typeof v === "string" && !v.startsWith(`${probe.prefix}/`))
        add(v, path.relative(probe.prefix, libpl));
    }
  }
  add(probe.vars.LIBDIR, "lib");
  add(probe.vars.BINDIR, "bin");
  for (const p of [
    probe.prefix,
    probe.basePrefix,
    probe.execPrefix,
    probe.vars.prefix,
    probe.vars.exec_prefix,
  ]) {
    if (typeof p === "string" && !SYSTEM_PREFIXES.has(p.replace(/\/+$/, "") || "/")) add(p, "");
  }
  const seen = new Set<string>();
  return pairs
    .filter(([f]) => !seen.has(f) && seen.add(f))
    .sort((a, b) => b[0].length - a[0].length);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Replaces each mapped path (at a path boundary) by `prefixExpr` + "/" + its replacement. */
function rewritePaths(text: string, map: PathMap, prefixExpr: string): string {
  if (map.length === 0) return text;
  // A path starts a word, follows `=`, `:`, `,`, `.` or a quote, or is glued to -I/-L/-R.
  const re = new RegExp(
    `(?<=^|[\\s'"=:,(.]|-[ILR])(${map.map(([f]) => escapeRegExp(f)).join("|")})(?=[/\\s'":;,)]|$)`,
    "gm",
  );
  const to = new Map(map);
  return text.replace(re, (m) => {
    const rel = to.get(m)!;
    return rel ? `${prefixExpr}/${rel}` : prefixExpr;
  });
}

/**
 * Drops `-L<libdir>`, `-Wl,-rpath,<libdir>` and `-I<prefix>/include` flags that point at the
 * source's own install (pyenv adds them): extensions do not link libpython on Linux, such an
 * rpath would bake the runtime's current location into every extension, and the flags break
 * compiler command lines once the runtime sits in a path with spaces.
 */
function dropSelfLinkFlags(text: string, map: PathMap): string {
  const libdirs = map.filter(([, to]) => to === "lib").map(([from]) => escapeRegExp(from));
  const prefixes = map.filter(([, to]) => to === "").map(([from]) => escapeRegExp(from));
  if (libdirs.length === 0) return text;
  const lib = `(?:${libdirs.join("|")})`;
  let out = text.replace(
    new RegExp(` ?(?:-L|-Wl,-rpath,|-Wl,-rpath=|-Wl,-R)${lib}/?(?=[\\s'"]|$)`, "gm"),
    "",
  );
  if (prefixes.length)
    out = out.replace(new RegExp(` ?-I(?:${prefixes.join("|")})/include/?(?=[\\s'"]|$)`, "gm"), "");
  return out;
}

/**
 * Makes `_sysconfigdata_*.py` compute paths from its own location at import time. `systemPrefix`
 * (a distribution's /usr, which the path map cannot rewrite wholesale): variables whose value is
 * that prefix or a path below it (`prefix`, `INCLUDEDIR`, `SCRIPTDIR`, `WHEEL_PKG_DIR`…) move
 * under the runtime too; lists of paths and compiler flags stay.
 */
export async function fixSysconfigdata(
  stdlibDir: string,
  map: PathMap,
  systemPrefix?: string,
): Promise<string[]> {
  const changed: string[] = [];
  for (const name of await fsp.readdir(stdlibDir)) {
    if (!/^_sysconfigdata_.*\.py$/.test(name)) continue;
    const file = path.join(stdlibDir, name);
    const original = await fsp.readFile(file, "utf8");
    if (original.includes(TOKEN)) continue;
    let body = rewritePaths(dropSelfLinkFlags(original, map), map, TOKEN);
    if (systemPrefix) {
      const quoted = systemPrefix.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      body = body.replace(
        new RegExp(`^(\\s*'\\w+': )'${quoted}((?:/[^'\\s:]*)?)'`, "gm"),
        (_m, key: string, rest: string) => `${key}'${TOKEN}${rest}'`,
      );
    }
    // python-build-standalone bakes its build tool paths (/tools/...) into CC and friends.
    body = body.replace(
      /'\/tools\/[^' ]*\/bin\/(clang\+\+|clang|gcc|g\+\+|cc|c\+\+)(?=[ '])/g,
      (_m, tool: string) =>
        `'${tool.startsWith("clang++") || tool === "g++" || tool === "c++" ? "c++" : "cc"}`,
    );
    const header = [
      "# Made relocatable by pyport: build-machine paths are replaced at import time",
      "# by the location of the runtime that contains this file.",
      "import os as _pyport_os",
      "_pyport_prefix = _pyport_os.path.dirname(_pyport_os.path.dirname(_pyport_os.path.dirname(_pyport_os.path.realpath(__file__))))",
      "",
    ].join("\n");
    const footer = [
      "",
      "build_time_vars = {",
      `    _k: (_v.replace(${JSON.stringify(TOKEN)}, _pyport_prefix) if isinstance(_v, str) else _v)`,
      "    for _k, _v in build_time_vars.items()",
      "}",
      "del _pyport_os, _pyport_prefix",
      "",
    ].join("\n");
    await replaceFile(file, header + body + footer);
    changed.push(file);
  }
  return changed;
}

/** `config-X.Y/Makefile`: paths become `$(PYPORT_PREFIX)/…`, computed from the Makefile's location. */
export async function fixMakefiles(stdlibDir: string, map: PathMap): Promise<void> {
  for (const name of await fsp.readdir(stdlibDir)) {
    if (!name.startsWith("config-")) continue;
    const file = path.join(stdlibDir, name, "Makefile");
    if (!(await pathExists(file))) continue;
    const text = await fsp.readFile(file, "utf8");
    if (text.includes("PYPORT_PREFIX")) continue;
    const header =
      "# pyport: the runtime root, three levels above this Makefile\nPYPORT_PREFIX := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)\n";
    await replaceFile(file, header + rewritePaths(text, map, "$(PYPORT_PREFIX)"));
  }
}

/** `lib/pkgconfig/*.pc`: `prefix=${pcfiledir}/../..` and every other path relative to it. */
export async function fixPkgconfig(root: string, map: PathMap): Promise<void> {
  const dir = path.join(root, "lib", "pkgconfig");
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    throw err;
  }
  for (const name of names.filter((n) => n.endsWith(".pc"))) {
    const file = path.join(dir, name);
    let text = await fsp.readFile(file, "utf8");
    text = text.replace(/^prefix=.*$/m, "prefix=${pcfiledir}/../..");
    text = text.replace(/^exec_prefix=\/.*$/m, "exec_prefix=${prefix}");
    const lines = text
      .split("\n")
      .map((l) => (l.startsWith("prefix=") ? l : rewritePaths(l, map, "${prefix}")));
    await replaceFile(file, lines.join("\n"));
  }
}

/** The shebang that finds `python3` next to the script, wherever the directory is moved. */
const RELOCATABLE_SHEBANG =
  "#!/bin/sh\n" +
  `'''exec' "$(dirname -- "$(realpath -- "$0")")"/'python3' "$0" "$@"\n` +
  "' '''\n";

/** Rewrites `#!…python…` shebangs of scripts in `bin/` to the relocatable form. */
export async function fixShebangs(binDir: string): Promise<string[]> {
  const changed: string[] = [];
  for (const name of await fsp.readdir(binDir)) {
    const file = path.join(binDir, name);
    const st = await fsp.lstat(file);
    if (!st.isFile()) continue;
    const head = Buffer.alloc(256);
    const h = await fsp.open(file, "r");
    const { bytesRead } = await h.read(head, 0, 256, 0);
    await h.close();
    const first = head.subarray(0, bytesRead).toString("latin1").split("\n")[0];
    if (!/^#!\s*\S*python[\d.]*\b/.test(first)) continue;
    const text = await fsp.readFile(file, "utf8");
    await replaceFile(file, RELOCATABLE_SHEBANG + text.slice(text.indexOf("\n") + 1));
    changed.push(file);
  }
  return changed;
}

/** Installs the runtime adapter module and hooks it into `ssl`, `venv` and `curses`. */
export async function installMachineAdapters(stdlibDir: string): Promise<string[]> {
  await fsp.copyFile(pythonAsset("_pyport_runtime.py"), path.join(stdlibDir, "_pyport_runtime.py"));
  const changed = [path.join(stdlibDir, "_pyport_runtime.py")];
  const hooks: [string, string][] = [
    [
      "ssl.py",
      "\n# pyport: load the CA certificates of the machine this runtime runs on.\nimport _pyport_runtime\n_pyport_runtime.patch_ssl(__import__(__name__))\ndel _pyport_runtime\n",
    ],
    [
      "venv/__init__.py",
      "\n# pyport: a venv made with copies finds the runtime's libpython.\nimport _pyport_runtime\n_pyport_runtime.patch_venv(EnvBuilder)\ndel _pyport_runtime\n",
    ],
    [
      "curses/__init__.py",
      "\n# pyport: make the runtime's terminfo database visible to ncurses.\nimport _pyport_runtime\n_pyport_runtime.add_terminfo()\ndel _pyport_runtime\n",
    ],
  ];
  for (const [rel, hook] of hooks) {
    const file = path.join(stdlibDir, rel);
    if (!(await pathExists(file))) continue;
    const text = await fsp.readFile(file, "utf8");
    if (text.includes("_pyport_runtime")) continue;
    await replaceFile(file, text + hook);
    changed.push(file);
  }
  return changed;
}

/** Common terminal descriptions copied when the runtime carries no terminfo of its own. */
const TERMINALS = [
  "dumb",
  "linux",
  "vt100",
  "vt220",
  "xterm",
  "xterm-256color",
  "xterm-color",
  "screen",
  "screen-256color",
  "tmux",
  "tmux-256color",
  "rxvt",
  "ansi",
];

/**
 * Gives the runtime a small terminfo database (from the build host) so curses works on targets
 * that have none, e.g. minimal containers. Returns the host directory used, if any.
 */
export async function addTerminfo(root: string): Promise<string | undefined> {
  const dest = path.join(root, "share", "terminfo");
  if (await pathExists(dest)) return undefined;
  for (const src of ["/usr/share/terminfo", "/lib/terminfo", "/etc/terminfo"]) {
    if (!(await pathExists(src))) continue;
    let copied = 0;
    for (const term of TERMINALS) {
      const rel = path.join(term[0], term);
      const file = path.join(src, rel);
      if (!(await pathExists(file))) continue;
      await fsp.mkdir(path.join(dest, term[0]), { recursive: true });
      await fsp.copyFile(await fsp.realpath(file), path.join(dest, rel));
      copied++;
    }
    if (copied) return src;
  }
  return undefined;
}
