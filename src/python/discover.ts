/**
 * Finds CPython interpreters on the build machine: `PATH`, pyenv's versions
 * (`$PYENV_ROOT` or `~/.pyenv`), and the usual prefixes. Nothing is hard-coded to one machine.
 */
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { isElfFile } from "../elf/file.js";
import { pathExists } from "../util/fs.js";
import { probePython, shortVersion, type PythonProbe } from "./probe.js";

export interface FoundPython {
  /** The real interpreter binary (symlinks and pyenv shims resolved). */
  path: string;
  /** Where it was found: "PATH", "pyenv", "prefix". */
  origin: string;
  probe: PythonProbe;
}

const VERSION_RE = /^(\d+)\.(\d+)$/;

function pyenvRoot(): string {
  return process.env.PYENV_ROOT || path.join(os.homedir(), ".pyenv");
}

async function candidates(): Promise<{ file: string; origin: string }[]> {
  const out: { file: string; origin: string }[] = [];
  const scan = async (dir: string, origin: string) => {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (err) {
      if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR") || hasErrno(err, "EACCES")) return;
      throw err;
    }
    for (const n of names.sort())
      if (/^python3\.\d+$/.test(n)) out.push({ file: path.join(dir, n), origin });
  };
  const scanPyenv = async () => {
    let versions: string[] = [];
    try {
      versions = await fsp.readdir(path.join(pyenvRoot(), "versions"));
    } catch (err) {
      if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR") || hasErrno(err, "EACCES")) return; // no pyenv
      throw err;
    }
    // Highest patch first, so `3.11` picks 3.11.9 over 3.11.2.
    versions.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    for (const v of versions) await scan(path.join(pyenvRoot(), "versions", v, "bin"), "pyenv");
  };
  let pyenvScanned = false;
  for (const dir of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    if (path.basename(dir) === "shims" && dir.includes("pyenv")) {
      // pyenv's shims are scripts: at their place in PATH, look at pyenv's real interpreters.
      if (!pyenvScanned) await scanPyenv();
      pyenvScanned = true;
      continue;
    }
    await scan(dir, "PATH");
  }
  if (!pyenvScanned) await scanPyenv();
  for (const dir of ["/usr/bin", "/usr/local/bin", "/opt/python/bin"]) await scan(dir, "prefix");
  return out;
}

/** Every distinct CPython 3 interpreter found, probed (unrunnable candidates are skipped). */
export async function discoverPythons(): Promise<FoundPython[]> {
  const seen = new Set<string>();
  const out: FoundPython[] = [];
  for (const c of await candidates()) {
    let real: string;
    try {
      real = await fsp.realpath(c.file);
    } catch (err) {
      if (hasErrno(err, "ENOENT") || hasErrno(err, "ELOOP") || hasErrno(err, "EACCES")) continue;
      throw err;
    }
    if (seen.has(real) || !(await isElfFile(real))) continue;
    seen.add(real);
    try {
      out.push({ path: real, origin: c.origin, probe: await probePython(real) });
    } catch {
      /* not runnable here (broken install, other architecture): skip */
    }
  }
  return out;
}

/**
 * Resolves `--python`: an existing path is used as is; `X.Y` picks the first match in the search
 * order (PATH — where pyenv's shims stand for pyenv's versions — then pyenv, then prefixes),
 * preferring the highest patch version within pyenv.
 */
export async function resolvePython(spec: string): Promise<FoundPython> {
  const m = VERSION_RE.exec(spec);
  if (!m) {
    if (!(await pathExists(spec))) {
      throw new PyportError("E_NOT_FOUND", `no interpreter at ${spec}`, {
        hint: "Pass a path to a python3 binary, or a version such as 3.12.",
      });
    }
    const probe = await probePython(spec);
    return { path: await fsp.realpath(probe.realExecutable), origin: "path", probe };
  }
  const all = await discoverPythons();
  const matches = all.filter((p) => shortVersion(p.probe) === spec);
  if (matches.length === 0) {
    const have = [...new Set(all.map((p) => shortVersion(p.probe)))].sort().join(", ") || "none";
    throw new PyportError(
      "E_NOT_FOUND",
      `no Python ${spec} found on PATH, in pyenv (${pyenvRoot()}/versions) or in /usr/bin, /usr/local/bin`,
      {
        hint: `Versions found: ${have}. Pass --python with an interpreter path, or --archive with a python-build-standalone archive.`,
      },
    );
  }
  return matches[0];
}
