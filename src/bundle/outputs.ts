/**
 * Where a build may write. Checked before any work starts and again just before the outputs
 * are moved into place:
 * - `--out` must be a directory (or not exist yet);
 * - an output is never the project directory, never contains it, and lies inside it only
 *   under its `dist/`;
 * - an existing output is replaced only when pyport wrote it: a directory whose `PYPORT.json`
 *   says it is a bundle of this project, or a file listed with its sha256 in
 *   `<out>/.pyport-outputs.json` (the record of what pyport wrote there, updated after each
 *   build). Anything else is refused unless `force` — and the project is refused even then.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { PROJECT_ANNOTATION } from "../oci/image.js";
import { readManifest } from "../runtime/manifest.js";
import { sha256File, writeFileAtomic } from "../util/fs.js";

const OUTPUT_RECORD = ".pyport-outputs.json";

interface OutputRecord {
  version: 1;
  /** File name in `--out` → sha256 of what pyport wrote. */
  files: Record<string, string>;
}

/** True when `inner` is `outer` or lies below it (both absolute, resolved). */
export function isWithin(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

async function lstatOrNull(p: string) {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return null;
    throw err;
  }
}

async function readRecord(out: string): Promise<OutputRecord> {
  const file = path.join(out, OUTPUT_RECORD);
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    if (hasErrno(err, "ENOENT") || hasErrno(err, "ENOTDIR")) return { version: 1, files: {} };
    throw err;
  }
  try {
    const r = JSON.parse(text) as OutputRecord;
    if (r.version === 1 && r.files && typeof r.files === "object") return r;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return { version: 1, files: {} }; // unreadable: nothing counts as pyport's
}

/**
 * Whether the directory `dir` is a bundle pyport built for the project `name` (a damaged
 * manifest: no), or an OCI image layout pyport wrote for it.
 */
async function isOurBundle(dir: string, name: string): Promise<boolean> {
  const index = await fsp.readFile(path.join(dir, "index.json"), "utf8").catch(() => undefined);
  if (index !== undefined) {
    try {
      const i = JSON.parse(index) as { annotations?: Record<string, string> };
      return i.annotations?.[PROJECT_ANNOTATION] === name;
    } catch {
      return false;
    }
  }
  try {
    const m = (await readManifest(dir, { optional: true })) as
      { kind?: string; app?: { name?: string } } | undefined;
    return m?.kind === "bundle" && m.app?.name === name;
  } catch (err) {
    if (err instanceof PyportError && err.code === "E_CONFIG") return false;
    throw err;
  }
}

export interface OutputCheck {
  projectDir: string;
  out: string;
  /** The project's name (a bundle directory is recognised by it). */
  name: string;
  /** Output names inside `out`, each with whether it is a directory. */
  outputs: { name: string; dir: boolean }[];
  force?: boolean;
}

/** Throws E_USAGE / E_EXISTS when the build may not write its outputs where asked. */
export async function checkOutputs(c: OutputCheck): Promise<void> {
  const project = path.resolve(c.projectDir);
  const out = path.resolve(c.out);
  const outStat = await lstatOrNull(out);
  if (outStat && !outStat.isDirectory())
    throw new PyportError("E_USAGE", `--out ${out} is an existing file, not a directory`, {
      hint: "Name a directory for the outputs (it is created when missing).",
    });
  const dist = path.join(project, "dist");
  const record = await readRecord(out);
  for (const o of c.outputs) {
    const target = path.join(out, o.name);
    if (isWithin(project, target))
      throw new PyportError(
        "E_USAGE",
        `the output ${target} would replace the project directory ${project}${target === project ? "" : ", which is inside it"}`,
        {
          hint: `Write outputs elsewhere: --out ${dist} (the default) or a directory outside the project.`,
        },
      );
    if (isWithin(target, project) && !isWithin(target, dist))
      throw new PyportError(
        "E_USAGE",
        `the output ${target} would be written inside the project ${project}, outside its dist/`,
        { hint: `Use --out ${dist} (the default) or a directory outside the project.` },
      );
    const st = await lstatOrNull(target);
    if (!st || c.force) continue;
    const ours = o.dir
      ? st.isDirectory() && (await isOurBundle(target, c.name))
      : st.isFile() && record.files[o.name] === (await sha256File(target));
    if (!ours)
      throw new PyportError(
        "E_EXISTS",
        `${target} exists and was not written by pyport (or was changed since); refusing to replace it`,
        { hint: "Move it away, choose another --out, or pass --force to replace it." },
      );
  }
}

/** Records the files pyport just wrote into `out` (their sha256), so a later build may replace them. */
export async function recordOutputs(
  out: string,
  files: { name: string; sha256: string }[],
): Promise<void> {
  if (!files.length) return;
  const record = await readRecord(out);
  for (const f of files) record.files[f.name] = f.sha256;
  await writeFileAtomic(path.join(out, OUTPUT_RECORD), JSON.stringify(record, null, 2) + "\n");
}
