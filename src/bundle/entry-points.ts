/**
 * Launchers for a project's entry points: each `console_scripts`/`gui_scripts` entry of the
 * installed distribution becomes `bin/<name>`, a native launcher (see runtime/launcher.ts)
 * that runs the bundle's interpreter — isolated (-I) unless the project opts out — with
 * `sys.argv[0]` set to the launcher's own path as invoked.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { ifExists } from "../util/fs.js";
import { PyportError } from "../errors.js";
import { writeLauncher, type LaunchSpec } from "../runtime/launcher.js";
import type { RuntimeManifest } from "../runtime/manifest.js";

export interface EntryPoint {
  name: string;
  /** `module:attr.path` */
  target: string;
  gui: boolean;
}

const normalise = (n: string) => n.toLowerCase().replace(/[-_.]+/g, "_");

/** Parses entry_points.txt (INI): the console and GUI scripts. */
function parseEntryPoints(text: string): EntryPoint[] {
  const out: EntryPoint[] = [];
  let section = "";
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1].trim();
      continue;
    }
    if (section !== "console_scripts" && section !== "gui_scripts") continue;
    const m = /^([^=\s]+)\s*=\s*([\w.]+)\s*:\s*([\w.]+)/.exec(line);
    if (m) out.push({ name: m[1], target: `${m[2]}:${m[3]}`, gui: section === "gui_scripts" });
  }
  return out;
}

/** The Python code a launcher runs: argv[0] becomes the launcher path, then the entry point is called. */
function entryCode(target: string): string {
  const [mod, attrs] = target.split(":");
  const [first, ...rest] = attrs.split(".");
  return `import sys;sys.argv.pop(0);from ${mod} import ${first} as _e;sys.exit(_e${rest.map((r) => `.${r}`).join("")}())`;
}

export async function writeEntryLaunchers(opts: {
  bundle: string;
  site: string;
  project: string;
  manifest: RuntimeManifest;
  isolated: boolean;
  optimize: 0 | 1 | 2;
}): Promise<EntryPoint[]> {
  const { bundle, site, project, manifest } = opts;
  const distInfo = (await fsp.readdir(site)).find(
    (d) =>
      d.endsWith(".dist-info") &&
      normalise(d.replace(/-[^-]+\.dist-info$/, "")) === normalise(project),
  );
  if (!distInfo)
    throw new PyportError(
      "E_BUILD",
      `pip installed no distribution named ${project} into ${site}`,
      { hint: "Check [project] name in pyproject.toml." },
    );
  const text = await ifExists(
    fsp.readFile(path.join(site, distInfo, "entry_points.txt"), "utf8"),
    "",
  );
  const entries = parseEntryPoints(text);
  const ver = manifest.python.version.split(".").slice(0, 2).join(".");
  const flags = [
    ...(opts.isolated ? ["-I"] : []),
    ...(opts.optimize ? [opts.optimize === 1 ? "-O" : "-OO"] : []),
  ];
  const bundled = manifest.libc.mode === "bundled";
  const loader = bundled
    ? (await fsp.readdir(path.join(bundle, "libexec"))).find((f) =>
        /^ld-linux.*\.so\.\d$|^ld64\.so\.\d$/.test(f),
      )
    : undefined;
  for (const e of entries) {
    const spec: LaunchSpec = bundled
      ? {
          exec: `../libexec/python${ver}`,
          loader: `../libexec/${loader}`,
          libpath: "../libexec",
          argv0: `python${ver}`,
          args: [...flags, "-c", entryCode(e.target), "{self}"],
        }
      : { exec: `python${ver}`, args: [...flags, "-c", entryCode(e.target), "{self}"] };
    const dest = path.join(bundle, "bin", e.name);
    await fsp.rm(dest, { force: true });
    await writeLauncher(dest, spec);
  }
  return entries;
}
