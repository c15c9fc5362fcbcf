/**
 * Build configuration: `pyproject.toml` (`[project]` + `[tool.pyport]`) or, for projects
 * without one, `pyport.toml` (the same keys at top level, plus `name`/`version`). Every error
 * names the file, the line and the key, and suggests the closest valid key or value.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { PyportError } from "../errors.js";
import type { LibcMode } from "../runtime/closure.js";
import { checkSpecifier } from "../python/specifier.js";
import { PROFILES, type Profile } from "../runtime/profile.js";
import { closest, ConfigReader } from "./config-reader.js";
import { readServices, type ServiceSpec } from "./service-spec.js";

export const FORMATS = ["dir", "tar.gz", "tar.zst", "onefile", "oci", "oci-archive"] as const;
const RESOURCES = ["filesystem", "zip-stdlib"] as const;
export type Format = (typeof FORMATS)[number];

export interface BuildConfig {
  projectDir: string;
  /** The file the settings came from (for messages). */
  configFile: string;
  name: string;
  version: string;
  /** Python source: an X.Y version or interpreter path, or an archive path/URL (+ sha256). */
  python?: string;
  archive?: string;
  sha256?: string;
  libc: LibcMode;
  profile: Profile;
  formats: Format[];
  include: string[];
  exclude: string[];
  /**
   * pycOnly: the project and its dependencies ship sourceless .pyc. stdlibSources: the standard
   * library keeps its .py sources (undefined: only with the full profile).
   */
  bytecode: { optimize: 0 | 1 | 2; pycOnly: boolean; stdlibSources?: boolean };
  /** `zip-stdlib`: the pure-Python stdlib as .pyc in lib/pythonXY.zip (smaller, no stdlib sources). */
  resources: (typeof RESOURCES)[number];
  /** Extra arguments for `pip install` (e.g. --no-index, --find-links DIR). */
  pipArgs: string[];
  /** A requirements file (relative to the project) installed first, e.g. with --require-hashes. */
  requirements?: string;
  /** Launchers run Python isolated (-I: no PYTHONPATH, no user site); false is the escape hatch. */
  isolated: boolean;
  /** Keep pip (and ensurepip) in the bundle; by default they are removed after the install. */
  keepPip: boolean;
  /** The console script a onefile runs (default: the only one, or the one named like the project). */
  entry?: string;
  /** zstd level of the onefile payload (1–19). */
  onefileLevel?: number;
  /**
   * Console and GUI script names from a static `[project.scripts]`/`[project.gui-scripts]`;
   * undefined when they are only known after the install (setup.py, `dynamic`, pyport.toml).
   */
  declaredScripts?: string[];
  /** `[tool.pyport.service]` / `[tool.pyport.services.<name>]`: how the app runs as a service. */
  services: ServiceSpec[];
  /** pyport.toml: a script (a top-level .py file) the project's launcher runs as __main__. */
  script?: string;
  /** `[project] requires-python`: which interpreters may build it when none is configured. */
  requiresPython?: string;
  /** `[project.urls]` Source, Repository or Homepage: the image's source label. */
  sourceUrl?: string;
  /** An OCI layout or archive the image is built on (needed with libc = "system"). */
  baseImage?: string;
}

/** PEP 508 project names: letters, digits, `.`, `_`, `-`; starting and ending alphanumeric. */
const PROJECT_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;
/** PEP 440 versions (public and local), as packaging's VERSION_PATTERN accepts them. */
const VERSION =
  /^v?(\d+!)?\d+(\.\d+)*([-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?((-\d+)|([-_.]?(post|rev|r)[-_.]?\d*))?([-_.]?dev[-_.]?\d*)?(\+[a-z0-9]+([-_.][a-z0-9]+)*)?$/i;

/** The script names of a static [project.scripts] + [project.gui-scripts], or undefined. */
function staticScripts(
  project: Record<string, unknown>,
  fromPyproject: boolean,
): string[] | undefined {
  if (!fromPyproject) return undefined;
  const dynamic = Array.isArray(project.dynamic) ? (project.dynamic as unknown[]) : [];
  if (dynamic.includes("scripts") || dynamic.includes("gui-scripts")) return undefined;
  const names: string[] = [];
  for (const key of ["scripts", "gui-scripts"]) {
    const t = project[key];
    if (t && typeof t === "object" && !Array.isArray(t)) names.push(...Object.keys(t));
  }
  return names;
}

/** The project's source URL from `[project.urls]` (Source, Repository, then Homepage). */
function sourceUrl(urls: unknown): string | undefined {
  if (!urls || typeof urls !== "object") return undefined;
  const byKey = new Map(Object.entries(urls).map(([k, v]) => [k.toLowerCase(), v as unknown]));
  for (const k of ["source", "repository", "homepage"]) {
    const v = byKey.get(k);
    if (typeof v === "string") return v;
  }
  return undefined;
}

const TOOL_KEYS = [
  "python",
  "archive",
  "sha256",
  "libc",
  "profile",
  "formats",
  "include",
  "exclude",
  "bytecode",
  "resources",
  "pip-args",
  "requirements",
  "isolated",
  "keep-pip",
  "entry",
  "onefile-level",
  "service",
  "services",
  "base-image",
] as const;
const BYTECODE_KEYS = ["optimize", "pyc-only", "stdlib-sources"] as const;

function readToml(file: string): { text: string; data: Record<string, unknown> } {
  const text = fs.readFileSync(file, "utf8");
  try {
    return { text, data: parseToml(text) as Record<string, unknown> };
  } catch (err) {
    if (err instanceof TomlError) {
      throw new PyportError(
        "E_CONFIG",
        `${file}:${err.line}:${err.column}: invalid TOML: ${err.message.split("\n")[0]}`,
        { hint: "Fix the syntax at that line (TOML: https://toml.io)." },
      );
    }
    throw err;
  }
}

/** Loads the project's configuration. `projectDir` must hold pyproject.toml or pyport.toml. */
export function loadConfig(projectDir: string): BuildConfig {
  const dir = path.resolve(projectDir);
  const pyproject = path.join(dir, "pyproject.toml");
  const standalone = path.join(dir, "pyport.toml");
  let file: string;
  let table: string;
  let project: Record<string, unknown>;
  let tool: Record<string, unknown>;
  let text: string;
  if (fs.existsSync(pyproject)) {
    file = pyproject;
    const t = readToml(file);
    text = t.text;
    project = (t.data.project as Record<string, unknown>) ?? {};
    tool =
      ((t.data.tool as Record<string, unknown> | undefined)?.pyport as Record<string, unknown>) ??
      {};
    table = "tool.pyport";
  } else if (fs.existsSync(standalone)) {
    file = standalone;
    const t = readToml(file);
    text = t.text;
    const { name, version, ...rest } = t.data;
    project = { name, version };
    tool = rest;
    table = "";
  } else {
    throw new PyportError("E_CONFIG", `${dir} has neither pyproject.toml nor pyport.toml`, {
      hint: "Run pyport build in a Python project directory, or pass it: pyport build path/to/project",
    });
  }
  const r = new ConfigReader(file, text, table);
  const projectReader = new ConfigReader(file, text, table ? "project" : "");
  const name =
    projectReader.string(project, "name") ??
    projectReader.fail("name", "missing", 'Every project needs a name: name = "myapp"');
  if (!PROJECT_NAME.test(name))
    projectReader.fail(
      "name",
      `${JSON.stringify(name)} is not a valid project name`,
      "PEP 508: letters, digits, '.', '_' and '-', starting and ending with a letter or digit.",
    );
  const version = projectReader.string(project, "version") ?? "0";
  if (!VERSION.test(version))
    projectReader.fail(
      "version",
      `${JSON.stringify(version)} is not a valid version`,
      'PEP 440: for example "1.0", "2.1.3rc1", "0.4.dev2" or "1.0+local.1".',
    );

  r.knownKeys(tool, table ? TOOL_KEYS : [...TOOL_KEYS, "name", "version", "script"]);
  const bytecode = (tool.bytecode ?? {}) as Record<string, unknown>;
  if (typeof bytecode !== "object" || Array.isArray(bytecode))
    r.fail(
      "bytecode",
      "expected a table",
      "Example: bytecode = { optimize = 1, pyc-only = false }",
    );
  r.knownKeys(bytecode, BYTECODE_KEYS, "bytecode");
  const optimize = bytecode.optimize ?? 0;
  if (optimize !== 0 && optimize !== 1 && optimize !== 2)
    return r.fail(
      "bytecode",
      `optimize must be 0, 1 or 2, got ${JSON.stringify(optimize)}`,
      "0 keeps asserts and docstrings; 1 drops asserts; 2 also drops docstrings.",
    );
  const pycOnly = bytecode["pyc-only"] ?? false;
  if (typeof pycOnly !== "boolean")
    return r.fail(
      "bytecode",
      `pyc-only must be true or false, got ${JSON.stringify(pycOnly)}`,
      "pyc-only = true ships .pyc files without their .py sources.",
    );
  const stdlibSources = bytecode["stdlib-sources"];
  if (stdlibSources !== undefined && typeof stdlibSources !== "boolean") {
    return r.fail(
      "bytecode",
      `stdlib-sources must be true or false, got ${JSON.stringify(stdlibSources)}`,
      "stdlib-sources = true keeps the standard library's .py files, so tracebacks through it show source lines (+2.3 MB in a tar.gz).",
    );
  }
  const isolated = tool.isolated ?? true;
  if (typeof isolated !== "boolean")
    return r.fail(
      "isolated",
      `expected true or false, got ${JSON.stringify(isolated)}`,
      "isolated = false lets launchers honour PYTHONPATH and the user site.",
    );
  const keepPip = tool["keep-pip"] ?? false;
  if (typeof keepPip !== "boolean")
    return r.fail(
      "keep-pip",
      `expected true or false, got ${JSON.stringify(keepPip)}`,
      "keep-pip = true keeps pip in the bundle (10 MiB).",
    );
  const onefileLevel = tool["onefile-level"];
  if (
    onefileLevel !== undefined &&
    !(
      Number.isInteger(onefileLevel) &&
      (onefileLevel as number) >= 1 &&
      (onefileLevel as number) <= 19
    )
  ) {
    return r.fail(
      "onefile-level",
      `expected an integer from 1 to 19, got ${JSON.stringify(onefileLevel)}`,
      "zstd level of the onefile payload: 19 (default) is smallest; lower levels build faster. Unpacking speed is the same.",
    );
  }
  const formats = (r.strings(tool, "formats") ?? ["dir"]).map((f) => {
    if ((FORMATS as readonly string[]).includes(f)) return f as Format;
    const near = closest(f, FORMATS);
    return r.fail(
      "formats",
      `${JSON.stringify(f)} is not a format`,
      `${near ? `Did you mean "${near}"? ` : ""}Use any of: ${FORMATS.join(", ")}.`,
    );
  });
  const cfg: BuildConfig = {
    projectDir: dir,
    configFile: file,
    name,
    version,
    python: r.string(tool, "python"),
    archive: r.string(tool, "archive"),
    sha256: r.string(tool, "sha256"),
    libc: r.oneOf(tool, "libc", ["system", "bundled"] as const) ?? "system",
    profile: r.oneOf(tool, "profile", PROFILES) ?? "default",
    formats,
    include: r.strings(tool, "include") ?? [],
    exclude: r.strings(tool, "exclude") ?? [],
    bytecode: { optimize, pycOnly, stdlibSources },
    resources: r.oneOf(tool, "resources", RESOURCES) ?? "filesystem",
    pipArgs: r.strings(tool, "pip-args") ?? [],
    requirements: r.string(tool, "requirements"),
    isolated,
    keepPip,
    entry: r.string(tool, "entry"),
    onefileLevel: onefileLevel as number | undefined,
    declaredScripts: staticScripts(project, table !== ""),
    services: readServices(tool, {
      file,
      text,
      table,
      project: name,
      scripts: staticScripts(project, table !== ""),
    }),
    baseImage: r.string(tool, "base-image"),
    sourceUrl: sourceUrl(project.urls),
    requiresPython: projectReader.string(project, "requires-python"),
    script: table ? undefined : r.string(tool, "script"),
  };
  if (cfg.script && !/^[A-Za-z_][A-Za-z0-9_]*\.py$/.test(cfg.script))
    r.fail(
      "script",
      `${JSON.stringify(cfg.script)} is not a top-level module file`,
      'Name a .py file in the project directory whose name is an identifier: script = "app.py".',
    );
  if (cfg.requiresPython) {
    const line = text.split("\n").findIndex((l) => /^\s*requires-python\s*=/.test(l)) + 1;
    checkSpecifier(cfg.requiresPython, `${file}${line ? `:${line}` : ""}: project.requires-python`);
  }
  if (cfg.python && cfg.archive)
    r.fail(
      "archive",
      "python and archive are both set",
      'Choose one Python source: python = "3.12" (an installed interpreter) or archive = "URL" with sha256.',
    );
  if (cfg.requirements && !fs.existsSync(path.join(dir, cfg.requirements)))
    r.fail(
      "requirements",
      `${cfg.requirements} does not exist in ${dir}`,
      "Give a path relative to the project directory.",
    );
  return cfg;
}
