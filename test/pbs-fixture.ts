/**
 * Builds python-build-standalone-layout archives from a local interpreter (the internet is not
 * reachable here): `install_only` (.tar.gz, `python/bin/python3`) and `full` (.tar.zst with
 * `python/PYTHON.json` and `python/install/`), relinked with `$ORIGIN/../lib` as PBS ships them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { editElfFile, readElfFile } from "../src/elf/file.js";
import { findElfFiles, originRelative } from "../src/runtime/closure.js";
import type { FoundPython } from "../src/python/discover.js";
import { run, tmpDir } from "./helpers.js";

function must(r: { code: number | null; stderr: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
}

async function stagePrefix(py: FoundPython, dest: string, withTests = false): Promise<void> {
  const ver = `${py.probe.major}.${py.probe.minor}`;
  const prefix = py.probe.prefix;
  fs.mkdirSync(dest, { recursive: true });
  const members = [`bin/python${ver}`, "lib", "include"].filter((m) =>
    fs.existsSync(path.join(prefix, m)),
  );
  const tar = run("sh", [
    "-c",
    `tar -C "$1" -cf - --exclude="./lib/python${ver}/site-packages/*" --exclude="lib/python${ver}/site-packages/*" ${withTests ? "" : `--exclude="lib/python${ver}/test"`} $2 | tar -C "$3" -xf -`,
    "sh",
    prefix,
    members.join(" "),
    dest,
  ]);
  must(tar, "copying the prefix");
  fs.symlinkSync(`python${ver}`, path.join(dest, "bin", "python3"));
  for (const rel of await findElfFiles(dest)) {
    const { elf } = await readElfFile(path.join(dest, rel));
    if (elf.dynamicOffset === undefined) continue; // object files and static archives
    await editElfFile(path.join(dest, rel), { runpath: originRelative(path.dirname(rel), "lib") });
  }
}

export async function installOnlyArchive(py: FoundPython): Promise<string> {
  const dir = tmpDir("pbs");
  await stagePrefix(py, path.join(dir, "python"));
  const archive = path.join(
    dir,
    `cpython-${py.probe.version}-x86_64-unknown-linux-gnu-install_only.tar.gz`,
  );
  must(run("tar", ["-C", dir, "-czf", archive, "python"]), "tar czf");
  fs.rmSync(path.join(dir, "python"), { recursive: true });
  return archive;
}

/** A `full` archive; `withTests` keeps the `test` package, as PBS's full archives have it. */
export async function fullArchive(
  py: FoundPython,
  opts: { withTests?: boolean } = {},
): Promise<string> {
  const dir = tmpDir("pbsfull");
  const ver = `${py.probe.major}.${py.probe.minor}`;
  await stagePrefix(py, path.join(dir, "python", "install"), opts.withTests);
  const meta = {
    version: "8",
    target_triple: "x86_64-unknown-linux-gnu",
    python_tag: `cp${py.probe.major}${py.probe.minor}`,
    python_version: py.probe.version,
    python_exe: `install/bin/python${ver}`,
    python_stdlib: `install/lib/python${ver}`,
  };
  fs.writeFileSync(path.join(dir, "python", "PYTHON.json"), JSON.stringify(meta, null, 2));
  const archive = path.join(
    dir,
    `cpython-${py.probe.version}-x86_64-unknown-linux-gnu-pgo-full.tar.zst`,
  );
  must(
    run("sh", ["-c", `tar -C "$1" -cf - python | zstd -q -T0 -3 -o "$2"`, "sh", dir, archive]),
    "tar | zstd",
  );
  fs.rmSync(path.join(dir, "python"), { recursive: true });
  return archive;
}
