/**
 * Plugin environments. Each is a virtualenv layered on a read-only runtime: made with
 * `python -m venv --without-pip`, filled by the runtime's own pip (`pip --python <venv>`) run with
 * the user's pip configuration. `.pyport-venv.json` in the venv records the interpreter it was
 * made for and every requirement installed, so a venv left by another runtime (an upgrade, a
 * moved runtime) is rebuilt from that record instead of failing at import time. Work on one venv
 * runs under a lock file beside it, so two engines sharing a plugin directory take turns.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { PyportError } from "../errors.js";
import { withLock } from "../store/lock.js";
import { execFile, failureExcerpt, pythonEnv } from "../util/exec.js";
import { ifExists, replaceDir, siblingTemp, writeFileAtomic } from "../util/fs.js";

export interface VenvRecord {
  version: 1;
  /** The base interpreter's real path and version when the venv was made. */
  base: string;
  pythonVersion: string;
  /** Requirement specifiers installed (`pip install` arguments), in order. */
  requirements: string[];
  /** For a plugin's own venv: the sha256 of the requirements.txt last installed. */
  requirementsSha256?: string;
}

export type PipOutput = (stream: "stdout" | "stderr", text: string) => void;

export interface InstallRequest {
  packages?: string[];
  /** A requirements file (its lines are recorded, so a rebuild installs them again). */
  requirementsFile?: string;
}

const RECORD = ".pyport-venv.json";

/** Requirement lines of a requirements file: comments and blank lines dropped, options kept. */
function requirementLines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
}

async function interpreterFacts(python: string): Promise<{ base: string; version: string }> {
  const r = await execFile(python, ["-I", "-c", "import sys; print(sys.version.split()[0])"], {
    env: pythonEnv(),
  });
  if (r.code !== 0)
    throw new PyportError("E_PYTHON", `${python} does not run: ${failureExcerpt(r.stderr)}`);
  return { base: await fsp.realpath(python), version: r.stdout.trim() };
}

export class PluginVenv {
  private queue: Promise<unknown> = Promise.resolve();
  private checked?: Promise<string>;

  /**
   * @param dir where the venv lives
   * @param basePython the runtime's interpreter (resolved on first use)
   * @param log where rebuilds and installs are reported
   */
  constructor(
    readonly dir: string,
    private readonly basePython: () => Promise<string>,
    private readonly log: (level: "info" | "warn" | "error", message: string) => void,
  ) {}

  private readonly logOutput: PipOutput = (stream, text) => {
    for (const line of text.split("\n"))
      if (line.trim()) this.log(stream === "stderr" ? "warn" : "info", line);
  };

  /** The venv's interpreter path (bin/python3, a link into the runtime). */
  get python(): string {
    return path.join(this.dir, "bin", "python3");
  }

  /** Runs `fn` after every earlier operation on this venv, under its lock file. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      await fsp.mkdir(path.dirname(this.dir), { recursive: true });
      return withLock(`${this.dir}.lock`, {}, fn);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async readRecord(): Promise<VenvRecord | undefined> {
    const text = await ifExists(fsp.readFile(path.join(this.dir, RECORD), "utf8"), undefined);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as VenvRecord;
    } catch {
      this.log("warn", `${path.join(this.dir, RECORD)} is not valid JSON; the venv is rebuilt`);
      return undefined;
    }
  }

  private async writeRecord(dir: string, record: VenvRecord): Promise<void> {
    await writeFileAtomic(path.join(dir, RECORD), JSON.stringify(record, null, 2) + "\n");
  }

  /**
   * Makes sure the venv exists and was made for the current runtime (memoised: checked once per
   * PluginVenv, and again after `invalidate`). A venv of another runtime is rebuilt from its
   * record beside the old one, which stays until the new one is complete.
   */
  ready(): Promise<string> {
    this.checked ??= this.serial(() => this.ensure()).catch((err: unknown) => {
      this.checked = undefined; // the next use tries again
      throw err;
    });
    return this.checked;
  }

  private async ensure(): Promise<string> {
    const python = await this.basePython();
    const facts = await interpreterFacts(python);
    const record = await this.readRecord();
    const cfg = await ifExists(fsp.readFile(path.join(this.dir, "pyvenv.cfg"), "utf8"), undefined);
    if (record && cfg && record.base === facts.base && record.pythonVersion === facts.version)
      return this.python;
    if (cfg && !record) {
      // A venv pyport did not make (the user's own): adopted when it is of this interpreter.
      const home = /^home\s*=\s*(.*)$/m.exec(cfg)?.[1]?.trim();
      const realHome = home && (await ifExists(fsp.realpath(home), undefined));
      const ver = /^version(?:_info)?\s*=\s*(.*)$/m.exec(cfg)?.[1]?.trim();
      if (realHome === path.dirname(facts.base) && ver === facts.version) {
        await this.writeRecord(this.dir, {
          version: 1,
          base: facts.base,
          pythonVersion: facts.version,
          requirements: [],
        });
        return this.python;
      }
    }
    // A plugin's own venv is refilled from its requirements.txt (syncRequirements), not from here.
    const requirements = record?.requirementsSha256 ? [] : (record?.requirements ?? []);
    if (cfg)
      this.log(
        "warn",
        `the virtualenv ${this.dir} was made for ${record ? `${record.base} (Python ${record.pythonVersion})` : "another interpreter"}; ` +
          `rebuilding it for ${facts.base} (Python ${facts.version})` +
          (requirements.length
            ? ` with its ${requirements.length} recorded requirement(s)`
            : record
              ? ""
              : "; packages installed without pyport are not known and must be installed again"),
      );
    const tmp = siblingTemp(this.dir, "build");
    try {
      await this.create(python, tmp);
      if (requirements.length) {
        // Recorded lines are requirement-file lines; installed as one file, options included.
        const file = path.join(tmp, ".pyport-requirements.txt");
        await fsp.writeFile(file, requirements.join("\n") + "\n");
        await this.pip(python, tmp, ["-r", file], this.logOutput);
      }
      await this.writeRecord(tmp, {
        version: 1,
        base: facts.base,
        pythonVersion: facts.version,
        requirements,
      });
      await replaceDir(tmp, this.dir);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return this.python;
  }

  private async create(python: string, dir: string): Promise<void> {
    const r = await execFile(python, ["-I", "-m", "venv", "--without-pip", dir], {
      env: pythonEnv(),
    });
    if (r.code !== 0)
      throw new PyportError(
        "E_PYTHON",
        `could not make a virtualenv with ${python}: ${failureExcerpt(r.stderr || r.stdout)}`,
        { hint: "The runtime needs its venv module (every pyport runtime has it)." },
      );
  }

  /** The runtime's pip, installing `args` into the venv at `dir`; fails with pip's exit code. */
  private async pip(
    python: string,
    dir: string,
    args: string[],
    onOutput?: PipOutput,
  ): Promise<void> {
    const argv = [
      "-I",
      "-m",
      "pip",
      "--python",
      path.join(dir, "bin", "python3"),
      "install",
      "--disable-pip-version-check",
      ...args,
    ];
    const r = await execFile(python, argv, { env: pythonEnv({ keepPip: true }), onOutput });
    if (r.code === 0) return;
    const missing = /No module named pip/.test(r.stderr);
    throw new PipFailure(
      r.code ?? 1,
      missing
        ? `${python} has no pip, so packages cannot be installed into ${dir}`
        : `pip install ${args.join(" ")} failed with exit code ${r.code ?? r.signal}:\n${failureExcerpt(r.stderr || r.stdout)}`,
      missing ? "Use a runtime with pip (pyport runtime create keeps it by default)." : undefined,
    );
  }

  /**
   * `pip install` of `packages` and/or a requirements file into the venv (made first if need
   * be); pip's output goes to `onOutput` as it comes. Recorded on success, so a rebuild installs
   * it again. Fails with a PipFailure carrying pip's exit code.
   */
  install(req: InstallRequest, onOutput?: PipOutput): Promise<void> {
    const packages = req.packages ?? [];
    if (!packages.length && !req.requirementsFile)
      return Promise.reject(
        new PyportError("E_USAGE", "install needs packages or a requirements file", {
          hint: "Example: engine.install({ packages: ['requests'] }) or { requirementsFile: 'requirements.txt' }",
        }),
      );
    return this.ready().then(() =>
      this.serial(async () => {
        const lines = req.requirementsFile
          ? requirementLines(await fsp.readFile(req.requirementsFile, "utf8"))
          : [];
        const args = [...packages];
        if (req.requirementsFile) args.push("-r", path.resolve(req.requirementsFile));
        await this.pip(await this.basePython(), this.dir, args, onOutput);
        const record = (await this.readRecord())!;
        record.requirements = [...record.requirements, ...packages, ...lines];
        await this.writeRecord(this.dir, record);
      }),
    );
  }

  /**
   * For a plugin's own venv: installs `requirementsFile` when its content differs from the one
   * last installed. True when it installed (the plugin's workers must restart).
   */
  syncRequirements(requirementsFile: string): Promise<boolean> {
    return this.ready().then(() =>
      this.serial(async () => {
        const text = await fsp.readFile(requirementsFile, "utf8");
        const sha = createHash("sha256").update(text).digest("hex");
        const record = (await this.readRecord())!;
        if (record.requirementsSha256 === sha) return false;
        this.log("info", `installing ${requirementsFile} into ${this.dir}`);
        await this.pip(await this.basePython(), this.dir, ["-r", requirementsFile], this.logOutput);
        await this.writeRecord(this.dir, {
          ...record,
          requirements: requirementLines(text),
          requirementsSha256: sha,
        });
        return true;
      }),
    );
  }
}

/** pip failed: `exitCode` is pip's. */
export class PipFailure extends PyportError {
  constructor(
    readonly exitCode: number,
    message: string,
    hint?: string,
  ) {
    super("E_PIP", message, { hint });
  }
}
