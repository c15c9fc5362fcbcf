/**
 * The bundle's licence record: `LICENSES.md` (every component with its licence, copyleft class
 * and licence files) and `licenses/` (the runtime's texts, plus each installed distribution's
 * licence files copied under `licenses/<name>/`).
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { collectComponents, type Component } from "../audit/components.js";
import { replaceFile } from "../util/fs.js";
import { readTree } from "../audit/tree.js";
import { MANIFEST_FILE, type RuntimeManifest } from "../runtime/manifest.js";

export async function writeLicenses(bundle: string): Promise<Component[]> {
  const manifest = JSON.parse(
    await fsp.readFile(path.join(bundle, MANIFEST_FILE), "utf8"),
  ) as RuntimeManifest;
  const components = await collectComponents(await readTree(bundle), manifest);
  const lines = [
    "# Licences",
    "",
    "Components of this bundle and their licences (SPDX). Texts are in `licenses/`.",
    "",
    "| component | version | licence | copyleft | texts |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const c of components) {
    const texts: string[] = [];
    for (const f of c.licenseFiles) {
      if (f.startsWith("licenses/")) texts.push(f);
      else {
        const dest = path.join("licenses", c.name, path.basename(f));
        await fsp.mkdir(path.join(bundle, path.dirname(dest)), { recursive: true });
        await fsp.rm(path.join(bundle, dest), { force: true }); // never write through a link
        await fsp.copyFile(path.join(bundle, f), path.join(bundle, dest));
        texts.push(dest);
      }
    }
    lines.push(
      `| ${c.name} | ${c.version ?? ""} | ${c.license}${c.licenseKnown ? "" : " (unverified)"} | ${c.copyleft || "no"} | ${texts.join(", ") || "none found"} |`,
    );
  }
  await replaceFile(path.join(bundle, "LICENSES.md"), lines.join("\n") + "\n");
  return components;
}
