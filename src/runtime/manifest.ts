/** `PYPORT.json`: what a runtime is made of and where every file not from CPython came from. */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import type { GraftedLibrary, LibcMode } from "./closure.js";
import type { Profile } from "./profile.js";

export const MANIFEST_FILE = "PYPORT.json";
export const MANIFEST_SCHEMA = 1;

export interface RuntimeManifest {
  schema: typeof MANIFEST_SCHEMA;
  kind: "runtime";
  pyport: string;
  python: {
    version: string;
    soabi: string | null;
    abiflags: string;
    linkMode: "shared" | "static";
    machine: string;
  };
  source: {
    kind: "host" | "archive";
    /** The interpreter (host) or archive path/URL it was made from. */
    location: string;
    sha256?: string;
    /** Its installation prefix on the build machine: never expected inside the runtime. */
    buildPrefix: string;
  };
  libc: {
    mode: LibcMode;
    /** Highest GLIBC_x.y any file needs (system mode: the host must provide it). */
    glibcFloor?: string;
    floorSetBy: string[];
    /** Bundled mode: the glibc version shipped in libexec/. */
    bundledGlibc?: string;
    /** Bundled mode: how bin/python3 starts the loader (native static launcher, or sh script). */
    launcher?: "native" | "sh";
  };
  profile: Profile;
  stripped: boolean;
  /** Bytes dropped by the profile, per group. */
  dropped: Record<string, number>;
  /** The interpreter users run, and the ELF binary behind it. */
  interpreter: string;
  realInterpreter: string;
  grafted: GraftedLibrary[];
  unresolved: { file: string; soname: string }[];
  terminfoFrom?: string;
  pip: boolean;
  warnings: string[];
}

/**
 * The manifest of the runtime or bundle `dir`. Missing: E_NOT_FOUND, or undefined with
 * `optional`. Unreadable JSON or another schema: E_CONFIG naming the file (never swallowed).
 */
export async function readManifest(dir: string): Promise<RuntimeManifest>;
export async function readManifest(
  dir: string,
  opts: { optional: true },
): Promise<RuntimeManifest | undefined>;
export async function readManifest(
  dir: string,
  opts: { optional?: boolean } = {},
): Promise<RuntimeManifest | undefined> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR")) {
      if (opts.optional) return undefined;
      throw new PyportError("E_NOT_FOUND", `${dir} is not a pyport runtime (no ${MANIFEST_FILE})`, {
        hint: "Pass the directory given to `pyport runtime create --out`.",
      });
    }
    throw err;
  }
  let m: RuntimeManifest;
  try {
    m = JSON.parse(text) as RuntimeManifest;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new PyportError("E_CONFIG", `${file} is not valid JSON: ${err.message}`, {
      hint: "The file was damaged or edited; recreate the runtime or bundle with pyport.",
    });
  }
  if (m.schema !== MANIFEST_SCHEMA) {
    throw new PyportError(
      "E_CONFIG",
      `${file}: manifest schema ${m.schema} is not supported (expected ${MANIFEST_SCHEMA})`,
      {
        hint: "Recreate the runtime with this version of pyport.",
      },
    );
  }
  return m;
}
