/**
 * Where a runtime comes from: an interpreter installed on the build machine (`--python`), or a
 * python-build-standalone archive (`--archive`, local path or URL). Archives are verified by
 * sha256 before anything in them is extracted or run, then extracted safely into the cache.
 * PBS layouts: `install_only`/`install_only_stripped` (`python/bin/python3`) and `full`
 * (`python/PYTHON.json`, whose `python_exe` names the interpreter under `python/install/`).
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import { extractArchive } from "../archive/extract.js";
import { resolvePython } from "../python/discover.js";
import { probePython, type PythonProbe } from "../python/probe.js";
import { BUCKETS } from "../store/buckets.js";
import { materialize } from "../store/cache.js";
import { hostSourceFingerprint } from "./fingerprint.js";
import { checkSha256, downloadVerified, sha256FromSums } from "../store/download.js";
import { pathExists, sha256File } from "../util/fs.js";
import type { Reporter } from "../util/reporter.js";

export type RuntimeSource = { python: string } | { archive: string; sha256?: string };

export interface PreparedSource {
  kind: "host" | "archive";
  location: string;
  sha256?: string;
  interpreter: string;
  probe: PythonProbe;
  /** Stable identity for cache keys. */
  identity: string;
}

/** PYTHON.json fields pyport reads (python-build-standalone's documented distribution schema). */
interface PythonJson {
  version: string;
  python_exe: string;
  python_version?: string;
  python_tag?: string;
}

export async function prepareSource(
  source: RuntimeSource,
  reporter?: Reporter,
): Promise<PreparedSource> {
  if ("python" in source) {
    const found = await resolvePython(source.python);
    reporter?.note(`using Python ${found.probe.version} at ${found.path} (${found.origin})`);
    return {
      kind: "host",
      location: found.path,
      interpreter: found.path,
      probe: found.probe,
      identity: `host:${found.path}:${await hostSourceFingerprint(found.path, found.probe)}`,
    };
  }
  const { file, sha256 } = await fetchArchive(source.archive, source.sha256, reporter);
  const { dir } = await materialize({
    bucket: BUCKETS.archives,
    key: sha256,
    build: async (tmp) => {
      reporter?.step(`extracting ${path.basename(file)}`);
      await extractArchive(file, path.join(tmp, "x"), { reporter });
    },
  });
  const interpreter = await locateInterpreter(path.join(dir, "x"), source.archive);
  const probe = await probePython(interpreter);
  reporter?.note(`archive holds Python ${probe.version}`);
  return {
    kind: "archive",
    location: source.archive,
    sha256,
    interpreter,
    probe,
    identity: `archive:${sha256}`,
  };
}

/** Resolves the archive to a verified local file. URLs require a sha256 (given, or SHA256SUMS). */
async function fetchArchive(
  spec: string,
  given: string | undefined,
  reporter?: Reporter,
): Promise<{ file: string; sha256: string }> {
  const isUrl = /^https?:\/\//i.test(spec);
  if (isUrl) {
    let sha = given ? checkSha256(given, "--sha256") : await sha256FromSums(spec);
    if (!sha) {
      throw new PyportError("E_USAGE", `no sha256 for ${spec}`, {
        hint: "Pass --sha256 HEX, or publish a SHA256SUMS file next to the archive. pyport never runs unverified downloads.",
      });
    }
    sha = checkSha256(sha, "sha256");
    reporter?.step(`downloading ${spec}`);
    return { file: await downloadVerified(spec, sha, { reporter }), sha256: sha };
  }
  if (!(await pathExists(spec))) throw new PyportError("E_NOT_FOUND", `archive not found: ${spec}`);
  const actual = await sha256File(spec);
  if (given && checkSha256(given, "--sha256") !== actual) {
    throw new PyportError(
      "E_CHECKSUM",
      `sha256 mismatch for ${spec}: expected ${checkSha256(given, "--sha256")}, got ${actual}`,
      {
        hint: "The archive is not the one you expected; nothing was extracted.",
      },
    );
  }
  if (!given)
    reporter?.note(`archive sha256 ${actual} (no --sha256 given: recorded, not verified)`);
  return { file: path.resolve(spec), sha256: actual };
}

async function locateInterpreter(root: string, archive: string): Promise<string> {
  const top = path.join(root, "python");
  const pythonJson = path.join(top, "PYTHON.json");
  if (await pathExists(pythonJson)) {
    const meta = JSON.parse(await fsp.readFile(pythonJson, "utf8")) as PythonJson;
    if (
      typeof meta.python_exe !== "string" ||
      meta.python_exe.startsWith("/") ||
      meta.python_exe.split("/").includes("..")
    ) {
      throw new PyportError(
        "E_ARCHIVE",
        `${archive}: PYTHON.json has no usable python_exe (${JSON.stringify(meta.python_exe)})`,
      );
    }
    const exe = path.join(top, meta.python_exe);
    if (await pathExists(exe)) return exe;
    throw new PyportError(
      "E_ARCHIVE",
      `${archive}: PYTHON.json names ${meta.python_exe}, which the archive lacks`,
    );
  }
  for (const name of ["python3", "python"]) {
    const exe = path.join(top, "bin", name);
    if (await pathExists(exe)) return exe;
  }
  throw new PyportError(
    "E_ARCHIVE",
    `${archive} is not a python-build-standalone archive (no python/bin/python3 nor python/PYTHON.json)`,
    {
      hint: "Use an install_only, install_only_stripped or full archive from python-build-standalone.",
    },
  );
}
