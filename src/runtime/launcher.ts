/**
 * Launchers: small files in `bin/` that start a program found relative to their own real
 * location. The native launcher (native/launcher.c, built by `npm run build` into
 * dist/native/) is a static executable that reads a spec appended to itself: it needs nothing
 * on the target (no /bin/sh, no libc) and costs a fraction of a millisecond. Where it was not
 * built (no C compiler), an equivalent POSIX sh script is written instead.
 *
 * Contract of both forms: the environment is not changed (the bundled loader gets
 * `--library-path` as an argument, so non-Python children never see LD_LIBRARY_PATH), nothing
 * is forked, and the launcher replaces itself with the program.
 */
import { existsSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { nativeAsset } from "../util/assets.js";
import { writeFileAtomic } from "../util/fs.js";

/** Paths are relative to the launcher's real directory. */
export interface LaunchSpec {
  exec: string;
  /** Run `exec` through this ELF loader (bundled libc). */
  loader?: string;
  /** The loader's `--library-path`. */
  libpath?: string;
  /** argv[0] of the program: "self" (the launcher as invoked) or a relative path; default `exec`. */
  argv0?: string;
  /** Fixed arguments before the user's; "{self}" is the launcher as invoked (absolute), "{dir}" its real directory. */
  args?: string[];
}

export type LauncherKind = "native" | "sh";

const MAGIC = Buffer.from("PYPLNCH1");

/** The native launcher built for this machine's architecture, if `npm run build` could build it. */
export function nativeLauncherPath(): string | undefined {
  const p = nativeAsset("launcher");
  return existsSync(p) ? p : undefined;
}

/** Which launcher kind `writeLauncher` will use (part of cache keys: a runtime built with one is not reused for the other). */
export function launcherKind(): LauncherKind {
  return nativeLauncherPath() && process.env.PYPORT_LAUNCHER !== "sh" ? "native" : "sh";
}

export function encodeSpec(spec: LaunchSpec): Buffer {
  const lines = [`exec ${spec.exec}`];
  if (spec.loader) lines.push(`loader ${spec.loader}`);
  if (spec.libpath) lines.push(`libpath ${spec.libpath}`);
  if (spec.argv0) lines.push(`argv0 ${spec.argv0}`);
  for (const a of spec.args ?? []) {
    if (a.includes("\n"))
      throw new Error(`launcher argument contains a newline: ${JSON.stringify(a)}`);
    lines.push(`arg ${a}`);
  }
  const body = Buffer.from(lines.join("\n") + "\n");
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([body, len, MAGIC]);
}

/** Reads the spec appended to a native launcher (undefined for sh launchers and other files). */
export function readSpec(file: string): LaunchSpec | undefined {
  const data = readFileSync(file);
  if (data.length < 12 || !data.subarray(data.length - 8).equals(MAGIC)) return undefined;
  const len = data.readUInt32LE(data.length - 12);
  const spec: LaunchSpec = { exec: "" };
  for (const line of data
    .subarray(data.length - 12 - len, data.length - 12)
    .toString()
    .split("\n")) {
    const i = line.indexOf(" ");
    if (i < 0) continue;
    const [key, value] = [line.slice(0, i), line.slice(i + 1)];
    if (key === "arg") (spec.args ??= []).push(value);
    else if (key === "exec" || key === "loader" || key === "libpath" || key === "argv0")
      spec[key] = value;
  }
  return spec;
}

/** Writes a launcher at `dest` (atomically, mode 0755) and says which kind it is. */
export async function writeLauncher(dest: string, spec: LaunchSpec): Promise<LauncherKind> {
  const kind = launcherKind();
  if (kind === "native") {
    const stub = await fsp.readFile(nativeLauncherPath()!);
    await writeFileAtomic(dest, Buffer.concat([stub, encodeSpec(spec)]), 0o755);
  } else {
    await writeFileAtomic(dest, shLauncher(spec), 0o755);
  }
  return kind;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The POSIX sh form of a spec: the fallback when no native launcher was built. */
function shLauncher(spec: LaunchSpec): string {
  const rel = (p: string) => (p.startsWith("/") ? shQuote(p) : `"$d"/${shQuote(p)}`);
  const argv0 = spec.argv0 === "self" ? '"$s"' : rel(spec.argv0 ?? spec.exec);
  const fixed = (spec.args ?? []).map((a) =>
    a === "{self}" ? '"$s"' : a === "{dir}" ? '"$d"' : shQuote(a),
  );
  const head = spec.loader
    ? [
        rel(spec.loader),
        ...(spec.libpath ? ["--library-path", rel(spec.libpath)] : []),
        "--argv0",
        argv0,
        rel(spec.exec),
      ]
    : [rel(spec.exec)];
  // Without a loader, sh's exec cannot set argv[0]; programs that need it get it from "$s" via args.
  return `#!/bin/sh
# pyport launcher (sh fallback; build pyport with a C compiler for the native one)
p=$0
while [ -h "$p" ]; do
  l=$(readlink "$p")
  case $l in /*) p=$l ;; *) p=\${p%/*}/$l ;; esac
done
case $p in */*) d=\${p%/*} ;; *) d=. ;; esac
case $0 in /*) s=$0 ;; *) s=$PWD/$0 ;; esac
exec ${[...head, ...fixed].join(" ")} "$@"
`;
}
