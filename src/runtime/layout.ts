/**
 * Copies an interpreter's installation into the runtime layout (python-build-standalone
 * `install_only` compatible): bin/python3.X, lib/python3.X (stdlib with lib-dynload and the
 * config dir), include/python3.X, lib/pkgconfig. Works from the probe's paths, so a pyenv
 * prefix, Debian's split /usr layout and an extracted archive are handled alike.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno } from "../errors.js";
import { pathExists } from "../util/fs.js";
import { shortVersion, type PythonProbe } from "../python/probe.js";

export interface StagedFrom {
  /** runtime-relative directory → the original directory it was copied from */
  dirs: Map<string, string>;
}

/**
 * Never copied from a source's stdlib: third-party packages of the build machine, and the
 * PEP 668 marker of a distribution's system Python (a runtime is not managed by apt).
 */
const SKIP_IN_STDLIB = new Set(["site-packages", "dist-packages", "EXTERNALLY-MANAGED"]);

/**
 * Copies a tree, keeping timestamps (cached .pyc files stay valid) and symlinks that stay inside
 * the copied tree; a symlink pointing outside it is replaced by a copy of its target.
 */
export async function copyTree(
  src: string,
  dest: string,
  skip: (rel: string) => boolean,
  rel = "",
): Promise<void> {
  copyTreeSync(src, dest, skip, rel);
}

/**
 * Synchronous on purpose: a runtime is thousands of small files, and per-file thread-pool round
 * trips made the asynchronous copy several times slower.
 */
function copyTreeSync(
  src: string,
  dest: string,
  skip: (rel: string) => boolean,
  rel: string,
): void {
  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const childRel = rel ? `${rel}/${e.name}` : e.name;
    if (skip(childRel)) continue;
    const s = path.join(src, e.name);
    const d = path.join(dest, e.name);
    if (e.isDirectory()) {
      copyTreeSync(s, d, skip, childRel);
    } else if (e.isSymbolicLink()) {
      const target = fs.readlinkSync(s);
      const resolved = path.resolve(path.dirname(s), target);
      const rootOfCopy = path.resolve(
        src,
        ...rel
          .split("/")
          .filter(Boolean)
          .map(() => ".."),
      );
      if (!path.isAbsolute(target) && !path.relative(rootOfCopy, resolved).startsWith("..")) {
        fs.symlinkSync(target, d);
      } else {
        let st;
        try {
          st = fs.statSync(s);
        } catch (err) {
          if (hasErrno(err, "ENOENT")) continue; // dangling link on the build machine: nothing to ship
          throw err;
        }
        if (st.isDirectory()) copyTreeSync(s, d, skip, childRel);
        else copyFileSyncPreserving(s, d);
      }
    } else if (e.isFile()) {
      copyFileSyncPreserving(s, d);
    }
  }
}

function copyFileSyncPreserving(src: string, dest: string): void {
  fs.copyFileSync(src, dest);
  const st = fs.statSync(src);
  fs.chmodSync(dest, (st.mode & 0o755) | 0o600);
  fs.utimesSync(dest, st.atime, st.mtime);
}

async function copyFilePreserving(src: string, dest: string): Promise<void> {
  copyFileSyncPreserving(src, dest);
}

/** Fills `root` with the interpreter described by `probe`. */
export async function stageInterpreter(probe: PythonProbe, root: string): Promise<StagedFrom> {
  const ver = shortVersion(probe);
  const dirs = new Map<string, string>();
  const bin = path.join(root, "bin");
  await fsp.mkdir(bin, { recursive: true });
  await copyFilePreserving(probe.realExecutable, path.join(bin, `python${ver}`));
  dirs.set("bin", path.dirname(probe.realExecutable));

  const stdlib = `lib/python${ver}`;
  await copyTree(probe.paths.stdlib, path.join(root, stdlib), (rel) => SKIP_IN_STDLIB.has(rel));
  await fsp.mkdir(path.join(root, stdlib, "site-packages"), { recursive: true });
  dirs.set(stdlib, probe.paths.stdlib);
  if (
    probe.paths.platstdlib &&
    probe.paths.platstdlib !== probe.paths.stdlib &&
    (await pathExists(path.join(probe.paths.platstdlib, "lib-dynload")))
  ) {
    await copyTree(
      path.join(probe.paths.platstdlib, "lib-dynload"),
      path.join(root, stdlib, "lib-dynload"),
      () => false,
    );
  }
  dirs.set(`${stdlib}/lib-dynload`, path.join(probe.paths.stdlib, "lib-dynload"));

  const include = `include/python${ver}${probe.abiflags}`;
  if (await pathExists(probe.paths.include)) {
    await copyTree(probe.paths.include, path.join(root, include), () => false);
    await resolveMultiarchPyconfig(probe, path.join(root, include, "pyconfig.h"));
  }

  // Shared libpython and pkg-config files live in LIBDIR (prefix/lib, or /usr/lib/<multiarch>).
  const libdir = String(probe.vars.LIBDIR ?? "");
  dirs.set("lib", libdir);
  for (const name of ["python3.pc", `python-${ver}.pc`, `python-${ver}-embed.pc`]) {
    const pc = path.join(libdir, "pkgconfig", name);
    if (await pathExists(pc)) {
      await fsp.mkdir(path.join(root, "lib", "pkgconfig"), { recursive: true });
      await copyFilePreserving(pc, path.join(root, "lib", "pkgconfig", name));
    }
  }
  if (await pathExists(probe.stdlibLicense)) {
    await fsp.mkdir(path.join(root, "licenses"), { recursive: true });
    await fsp.copyFile(probe.stdlibLicense, path.join(root, "licenses", "python.LICENSE.txt"));
  }
  return { dirs };
}

/**
 * Debian's include/python3.X/pyconfig.h only includes `<MULTIARCH/python3.X/pyconfig.h>`;
 * a runtime carries the real file instead so C extensions build without /usr/include.
 */
async function resolveMultiarchPyconfig(probe: PythonProbe, file: string): Promise<void> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    throw err;
  }
  const multiarch = probe.vars.MULTIARCH;
  if (!multiarch || !text.includes(`<${multiarch}/`)) return;
  const m = new RegExp(`<(${multiarch}/python[^>]*/pyconfig\\.h)>`).exec(text);
  if (!m) return;
  for (const inc of ["/usr/include", "/usr/local/include"]) {
    const real = path.join(inc, m[1]);
    if (await pathExists(real)) {
      await fsp.rm(file);
      await copyFilePreserving(real, file);
      return;
    }
  }
}
