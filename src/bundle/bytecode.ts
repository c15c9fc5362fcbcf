/** A bundle's bytecode: hash-checked .pyc, sourceless where the plan says so. */
import * as fs from "node:fs";
import * as path from "node:path";
import { compileArgs } from "../python/compile.js";
import { run } from "./install.js";
import type { BundlePlan } from "./plan.js";
import { dropSources } from "./sourceless.js";

/** Hash-checked .pyc for everything installed (sourceless .pyc with pyc-only). */
export async function compileBytecode(
  python: string,
  site: string,
  bytecode: BundlePlan["bytecode"],
  bundle: string,
): Promise<void> {
  const optimize = bytecode.optimize;
  const stdlib = path.dirname(site);
  if (optimize > 0) {
    // Runtimes ship plain .pyc only: give the stdlib the optimisation level the launchers use.
    await run(
      python,
      compileArgs({
        root: bundle,
        mode: "unchecked-hash",
        optimize,
        exclude: "/site-packages/",
        targets: [stdlib],
      }),
      "compiling the standard library's bytecode",
    );
  }
  if (!fs.existsSync(site)) return;
  if (!bytecode.pycOnly) {
    await run(
      python,
      compileArgs({ root: bundle, mode: "checked-hash", optimize, targets: [site] }),
      "compiling bytecode",
    );
    return;
  }
  await run(
    python,
    compileArgs({ root: bundle, mode: "unchecked-hash", optimize, legacy: true, targets: [site] }),
    "compiling bytecode",
  );
  await dropSources(site, { optimize });
}

/**
 * The stdlib ships sourceless unless `stdlib-sources` (default: only with the full profile) —
 * except os.py, CPython's landmark for its prefix, and _sysconfigdata (the audit scans it for
 * build-machine paths). Runs after zip-stdlib, which compiles from the sources.
 */
export async function dropStdlibSources(
  stdlib: string,
  bytecode: BundlePlan["bytecode"],
): Promise<number> {
  if (bytecode.stdlibSources) return 0;
  const keep = (rel: string) =>
    rel === "os.py" || /^(site|dist)-packages$|^config-|^_sysconfigdata_.*\.py$/.test(rel);
  return dropSources(stdlib, { optimize: bytecode.optimize, keep });
}
