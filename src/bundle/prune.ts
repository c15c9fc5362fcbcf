/**
 * Bundle pruning by globs, dropping install records that point at the build machine, and the
 * size report by top-level package.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { walkFiles, ifExists, replaceFile } from "../util/fs.js";

/** A glob (`**` any depth, `*` within a segment, `?` one char) as a regex over relative paths. */
function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** Deletes files matching an exclude glob unless an include glob matches them too. */
export async function applyGlobs(
  bundle: string,
  include: readonly string[],
  exclude: readonly string[],
): Promise<number> {
  if (exclude.length === 0) return 0;
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  let removed = 0;
  for (const file of await walkFiles(bundle)) {
    const rel = path.relative(bundle, file);
    if (exc.some((r) => r.test(rel)) && !inc.some((r) => r.test(rel))) {
      await fsp.rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

/** Removes `direct_url.json` records of local installs (they name the build machine's source path). */
export async function dropLocalDirectUrls(site: string): Promise<void> {
  for (const d of await ifExists(fsp.readdir(site), [] as string[])) {
    if (!d.endsWith(".dist-info")) continue;
    const file = path.join(site, d, "direct_url.json");
    const text = await ifExists(fsp.readFile(file, "utf8"), undefined);
    if (!text || !/"url"\s*:\s*"file:/.test(text)) continue;
    await fsp.rm(file);
    const record = path.join(site, d, "RECORD");
    const lines = (await ifExists(fsp.readFile(record, "utf8"), "")).split("\n");
    await replaceFile(
      record,
      lines.filter((l) => !l.startsWith(`${d}/direct_url.json,`)).join("\n"),
    );
  }
}

async function sizeOf(p: string): Promise<number> {
  const st = await fsp.lstat(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const f of await walkFiles(p)) n += (await fsp.lstat(f)).size;
  return n;
}

/** Bytes per top-level package in site-packages (dist-info folded into its package), plus the runtime. */
export async function sizeByPackage(
  bundle: string,
  site: string,
): Promise<{ name: string; bytes: number }[]> {
  const sizes = new Map<string, number>();
  let siteTotal = 0;
  for (const e of await ifExists(fsp.readdir(site), [] as string[])) {
    const name = e
      .replace(/-[^-]+\.dist-info$/, "")
      .replace(/\.(py|pth|so)$/, "")
      .replace(/\.cpython-.*$/, "");
    const bytes = await sizeOf(path.join(site, e));
    siteTotal += bytes;
    sizes.set(name, (sizes.get(name) ?? 0) + bytes);
  }
  const total = await sizeOf(bundle);
  return [
    { name: "(runtime: interpreter, stdlib, libraries)", bytes: total - siteTotal },
    ...[...sizes].map(([name, bytes]) => ({ name, bytes })),
  ].sort((a, b) => b.bytes - a.bytes);
}

/**
 * Brings RECORD entries for files outside site-packages (scripts in bin/, which pyport replaced
 * with launchers or relocatable shebangs) up to date: new sha256 and size, or dropped if gone.
 */
export async function refreshRecords(site: string): Promise<void> {
  for (const d of await ifExists(fsp.readdir(site), [] as string[])) {
    if (!d.endsWith(".dist-info")) continue;
    const record = path.join(site, d, "RECORD");
    const text = await ifExists(fsp.readFile(record, "utf8"), undefined);
    if (text === undefined) continue;
    const out: string[] = [];
    for (const line of text.split("\n")) {
      const rel = line.split(",")[0];
      if (!rel.startsWith("../")) {
        out.push(line);
        continue;
      }
      const data = await ifExists(fsp.readFile(path.join(site, rel)), undefined);
      if (!data) continue;
      out.push(
        `${rel},sha256=${createHash("sha256").update(data).digest("base64url")},${data.length}`,
      );
    }
    await replaceFile(record, out.join("\n"));
  }
}
