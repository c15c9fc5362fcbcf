/**
 * Projects that are not packages. `pyport build app.py [-r requirements.txt]` builds a script:
 * it becomes a small `pyport.toml` project in a private temp dir (the script, the requirements
 * file, `script = "app.py"`), so only those files are installed, never the rest of the script's
 * directory. A `pyport.toml` project without `pyproject.toml`, `setup.py` or `setup.cfg` gets a
 * generated `pyproject.toml` in the build's copy of it: setuptools, its top-level modules and
 * packages, and — with `script` — a console script named like the project that runs the script
 * as `__main__` (runpy), so `bin/<name>` behaves like `python app.py`.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PyportError } from "../errors.js";

/** The module name a script is installed as (`my-tool.py` → `my_tool`). */
export function scriptModule(script: string): string {
  const stem = path.basename(script).replace(/\.py$/, "");
  const name = stem.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** A project name for a script (`my_tool.py` → `my-tool`). */
function projectName(script: string): string {
  return (
    path
      .basename(script)
      .replace(/\.py$/, "")
      .replace(/[^A-Za-z0-9.]+/g, "-")
      .replace(/^[-.]+|[-.]+$/g, "") || "app"
  );
}

/**
 * A temp project for `script` (and `requirements`): returns its directory and a cleanup. The
 * caller builds it with `out` defaulting to the script's own `dist/`.
 */
export async function scriptProject(
  script: string,
  requirements?: string,
): Promise<{ projectDir: string; defaultOut: string; cleanup: () => Promise<void> }> {
  const file = path.resolve(script);
  if (!fs.existsSync(file))
    throw new PyportError("E_NOT_FOUND", `${file} does not exist`, {
      hint: "Give the path of a Python script, e.g. pyport build app.py -r requirements.txt",
    });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "pyport-script-"));
  const module = scriptModule(file);
  await fsp.copyFile(file, path.join(dir, `${module}.py`));
  const lines = [
    `name = ${JSON.stringify(projectName(file))}`,
    'version = "0"',
    `script = ${JSON.stringify(`${module}.py`)}`,
  ];
  if (requirements) {
    const req = path.resolve(requirements);
    if (!fs.existsSync(req))
      throw new PyportError("E_NOT_FOUND", `the requirements file ${req} does not exist`, {
        hint: "Give the path of a requirements file (-r requirements.txt).",
      });
    await fsp.copyFile(req, path.join(dir, "requirements.txt"));
    lines.push('requirements = "requirements.txt"');
  }
  await fsp.writeFile(path.join(dir, "pyport.toml"), lines.join("\n") + "\n");
  return {
    projectDir: dir,
    defaultOut: path.join(path.dirname(file), "dist"),
    cleanup: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

/** Names never installed from a project's top level (build output, environments, tests). */
const NOT_CODE = new Set(["setup", "conftest", "build", "dist", "venv", "tests", "test", "docs"]);

/**
 * Writes `pyproject.toml` into `source` (the build's copy of a pyport.toml project) when it has
 * no build configuration of its own. Returns whether it wrote one.
 */
export async function synthesizePyproject(
  source: string,
  project: { name: string; version: string; script?: string },
): Promise<boolean> {
  for (const f of ["pyproject.toml", "setup.py", "setup.cfg"])
    if (fs.existsSync(path.join(source, f))) return false;
  const modules: string[] = [];
  const packages: string[] = [];
  for (const e of await fsp.readdir(source, { withFileTypes: true })) {
    if (e.isFile() && /^[A-Za-z_][A-Za-z0-9_]*\.py$/.test(e.name)) {
      const m = e.name.slice(0, -3);
      if (!NOT_CODE.has(m)) modules.push(m);
    } else if (
      e.isDirectory() &&
      !NOT_CODE.has(e.name) &&
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(e.name) &&
      fs.existsSync(path.join(source, e.name, "__init__.py"))
    )
      packages.push(e.name);
  }
  const scripts: string[] = [];
  if (project.script) {
    const module = project.script.replace(/\.py$/, "");
    if (!modules.includes(module))
      throw new PyportError(
        "E_CONFIG",
        `script ${JSON.stringify(project.script)} is not a top-level module of the project`,
        {
          hint: 'Name a .py file in the project directory whose name is an identifier: script = "app.py".',
        },
      );
    await fsp.writeFile(
      path.join(source, "_pyport_script.py"),
      `"""Runs ${project.script} as __main__ (written by pyport for a script build)."""\nimport runpy\n\n\ndef main():\n    runpy.run_module(${JSON.stringify(module)}, run_name="__main__", alter_sys=True)\n`,
    );
    modules.push("_pyport_script");
    scripts.push(`[project.scripts]\n${JSON.stringify(project.name)} = "_pyport_script:main"\n`);
  }
  const list = (xs: string[]) =>
    `[${xs
      .sort()
      .map((x) => JSON.stringify(x))
      .join(", ")}]`;
  await fsp.writeFile(
    path.join(source, "pyproject.toml"),
    `# Written by pyport: the project has no build configuration of its own.
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = ${JSON.stringify(project.name)}
version = ${JSON.stringify(project.version)}

${scripts.join("")}
[tool.setuptools]
py-modules = ${list(modules)}
${
  packages.length
    ? `\n[tool.setuptools.packages.find]\ninclude = ${list(packages.flatMap((p) => [p, `${p}.*`]))}\n`
    : "packages = []\n"
}`,
  );
  return true;
}
