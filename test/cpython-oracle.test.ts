/**
 * CPython's own regression tests as the oracle for runtimes: a `--profile full` runtime from each
 * source (a pyenv build, Debian's python3, a python-build-standalone-layout archive), in both
 * libc modes, is moved to a path with spaces and runs a subset of `python -m test` there. Any
 * failure fails the test; a source without the `test` package is a skip that says so.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import type { FoundPython } from "../src/python/discover.js";
import {
  distroPython,
  pyportAsync,
  runAsync,
  sharedPythons,
  skipPart,
  tmpDir,
  useTestCache,
} from "./helpers.js";
import { fullArchive } from "./pbs-fixture.js";

useTestCache();

const MODULES = [
  "test_site",
  "test_sysconfig",
  "test_venv",
  "test_subprocess",
  "test_getpath",
  "test_ctypes",
  "test_sqlite3",
  "test_ssl",
  "test_zlib",
  "test_lzma",
  "test_tarfile",
];

type Source = { name: string; args: () => Promise<string[] | string> };

const sources: Source[] = [
  {
    name: "pyenv",
    args: async () => {
      const p = (await sharedPythons()).find((x) => x.probe.minor === 12);
      return p ? ["--python", p.path] : "no pyenv CPython 3.12 with a shared libpython";
    },
  },
  {
    name: "debian",
    args: async () => {
      const p = await distroPython();
      return p ? ["--python", p.path] : "no distribution (Debian) python3 on this machine";
    },
  },
  {
    name: "pbs-layout",
    args: async () => {
      const p: FoundPython | undefined = (await sharedPythons()).find((x) => x.probe.minor === 11);
      if (!p) return "no pyenv CPython 3.11 to build the python-build-standalone-layout archive";
      return ["--archive", await fullArchive(p, { withTests: true })];
    },
  },
];

interface Manifest {
  python: { version: string };
}

/**
 * Runs CPython's tests in `runtime`: the modules of MODULES its test package has. Resolves to the
 * regrtest output, and to the modules the source lacks (all of them: no test package).
 */
async function runOracle(
  runtime: string,
): Promise<{ missing: string[]; code?: number; out: string }> {
  const manifest = JSON.parse(
    fs.readFileSync(path.join(runtime, "PYPORT.json"), "utf8"),
  ) as Manifest;
  const ver = manifest.python.version.split(".").slice(0, 2).join(".");
  const testDir = path.join(runtime, "lib", `python${ver}`, "test");
  const has = (m: string) =>
    fs.existsSync(path.join(testDir, `${m}.py`)) || fs.existsSync(path.join(testDir, m));
  const present = fs.existsSync(path.join(testDir, "libregrtest")) ? MODULES.filter(has) : [];
  const missing = MODULES.filter((m) => !present.includes(m));
  if (present.length === 0) return { missing, out: "" };
  const cwd = tmpDir("oracle-cwd");
  const env: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin", HOME: cwd, TMPDIR: cwd, LANG: "C.UTF-8" };
  const r = await runAsync(
    path.join(runtime, "bin/python3"),
    ["-m", "test", "-j2", "--timeout", "600", ...present],
    { env, cwd, timeout: 900_000 },
  );
  return { missing, code: r.code ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

describe(
  "CPython's own tests pass in moved --profile full runtimes",
  { timeout: 3_600_000, concurrency: 2 },
  () => {
    for (const source of sources)
      for (const libc of ["system", "bundled"] as const)
        test(`${source.name}, libc ${libc}`, async (t) => {
          const args = await source.args();
          if (typeof args === "string") return skipPart(t, args);
          const made = path.join(tmpDir(`oracle-${source.name}-${libc}`), "made");
          const create = await pyportAsync([
            "runtime",
            "create",
            ...args,
            "--profile",
            "full",
            "--libc",
            libc,
            "--out",
            made,
            "--quiet",
          ]);
          assert.equal(create.code, 0, create.stderr);
          const runtime = path.join(path.dirname(made), `a moved ${source.name} runtime`);
          fs.renameSync(made, runtime);
          const result = await runOracle(runtime);
          fs.rmSync(path.dirname(made), { recursive: true, force: true });
          if (result.missing.length === MODULES.length)
            return skipPart(t, "this source has no test package (Debian: libpython3.X-testsuite)");
          if (result.missing.length > 0)
            await skipPart(t, `not in this source's test package: ${result.missing.join(", ")}`);
          assert.equal(result.code, 0, `python -m test failed:\n${result.out.slice(-6000)}`);
          assert.match(result.out, /Tests result: SUCCESS/);
        });
  },
);
