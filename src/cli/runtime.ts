import * as path from "node:path";
import { PyportError } from "../errors.js";
import { oneOf, parse, parseOneTarget } from "./args.js";
import { cliReporter, EXIT_FAILED, mib, table } from "./output.js";

const RUNTIME_USAGE = `pyport runtime create|doctor|info ...

pyport runtime create (--python P | --archive A [--sha256 H]) --out DIR [options]
  Makes a portable CPython runtime in DIR; its interpreter is DIR/bin/python3. The runtime runs
  from any directory, through symlinks, and on other Linux machines (see --libc).

  --python P        an interpreter on this machine: a path, or a version such as 3.12, looked up
                    on PATH (pyenv shims mean pyenv's versions), in pyenv, then /usr/bin and
                    /usr/local/bin; the choice is printed
  --archive A       a python-build-standalone archive (install_only[_stripped] .tar.gz, or
                    full .tar.zst): a local path or an http(s) URL
  --sha256 H        the archive's sha256; required for URLs unless a SHA256SUMS file sits next
                    to it. Verified before anything is extracted or run
  --libc MODE       system (default): use the target's glibc; the runtime's glibc floor is
                    recorded (see 'runtime info'). bundled: ship the loader and glibc too, so it
                    runs on any Linux kernel >= 3.2, even in a root with no libc
  --profile P       default (drops tests, tkinter/idlelib/turtle, static libpython,
                    help() topics, and the deprecated lib2to3, nis and crypt), full (keeps
                    everything), minimal (also drops headers, config dir, ensurepip,
                    distutils)
  --strip / --no-strip
                    strip debug information from ELF files (default: all profiles but full)
  --force           replace DIR if it exists and is not empty
  --json            print the runtime's manifest (PYPORT.json) as JSON
  --quiet           no progress output

pyport runtime doctor DIR [--json]
  Runs checks inside the runtime (compression, ctypes, hashlib, sqlite3 FTS5/R*Tree, ssl,
  curses, readline, subprocess, venv, pip, build-path leaks). Exit code 1 if any check fails.

pyport runtime info DIR [--json]
  Version, source, libc mode and glibc floor, size, grafted libraries.

Examples:
  pyport runtime create --python 3.12 --out ./py312
  pyport runtime create --archive cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz --libc bundled --out ./py
  ./py312/bin/python3 -c 'import sys; print(sys.prefix)'`;

export async function runtimeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "create") return create(rest);
  if (sub === "doctor") return doctor(rest);
  if (sub === "info") return info(rest);
  process.stdout.write(RUNTIME_USAGE + "\n");
  if (sub === undefined || sub === "--help" || sub === "-h") return sub === undefined ? 2 : 0;
  throw new PyportError("E_USAGE", `unknown runtime command ${JSON.stringify(sub)}`, {
    hint: "Use: pyport runtime create|doctor|info",
  });
}

async function create(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      python: { type: "string" },
      archive: { type: "string" },
      sha256: { type: "string" },
      libc: { type: "string" },
      profile: { type: "string" },
      strip: { type: "boolean" },
      "no-strip": { type: "boolean" },
      out: { type: "string", short: "o" },
      force: { type: "boolean" },
      json: { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
    },
    RUNTIME_USAGE,
  );
  if (values.help) {
    process.stdout.write(RUNTIME_USAGE + "\n");
    return 0;
  }
  if (!values.python === !values.archive)
    throw new PyportError("E_USAGE", "give exactly one of --python or --archive", {
      hint: "Example: pyport runtime create --python 3.12 --out ./py312",
    });
  if (values.sha256 && !values.archive)
    throw new PyportError("E_USAGE", "--sha256 goes with --archive");
  if (!values.out)
    throw new PyportError("E_USAGE", "--out DIR is required", {
      hint: "Example: pyport runtime create --python 3.12 --out ./py312",
    });
  if (values.strip && values["no-strip"])
    throw new PyportError("E_USAGE", "--strip and --no-strip contradict each other");
  const { createRuntime } = await import("../runtime/create.js");
  const { PROFILES } = await import("../runtime/profile.js");
  const started = Date.now();
  const result = await createRuntime({
    source: values.python
      ? { python: values.python as string }
      : { archive: values.archive as string, sha256: values.sha256 as string | undefined },
    out: values.out as string,
    libc: oneOf(
      "--libc",
      values.libc as string | undefined,
      ["system", "bundled"] as const,
      "system",
    ),
    profile: oneOf("--profile", values.profile as string | undefined, PROFILES, "default"),
    strip: values.strip ? true : values["no-strip"] ? false : undefined,
    force: values.force === true,
    reporter: cliReporter({ quiet: values.quiet === true || values.json === true }),
  });
  if (values.json) {
    process.stdout.write(
      JSON.stringify(
        { out: result.out, cached: result.cached, manifest: result.manifest },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  const m = result.manifest;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `created ${result.out} (Python ${m.python.version}, libc ${m.libc.mode}${m.libc.mode === "system" && m.libc.glibcFloor ? `, needs glibc >= ${m.libc.glibcFloor}` : ""}${m.libc.bundledGlibc ? `, bundles glibc ${m.libc.bundledGlibc}` : ""}) in ${secs} s${result.cached ? " from the cache" : ""}\n` +
      `run it: ${path.join(result.out, "bin", "python3")}\n`,
  );
  return 0;
}

async function doctor(argv: string[]): Promise<number> {
  const args = parseOneTarget(argv, { json: { type: "boolean" } }, RUNTIME_USAGE, {
    command: "runtime doctor",
    example: "pyport runtime doctor ./py312",
  });
  if (!args) return 0;
  const { values } = args;
  const { runDoctor } = await import("../runtime/doctor.js");
  const report = await runDoctor(args.target);
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else {
    process.stdout.write(`Python ${report.python} at ${report.prefix}\n`);
    process.stdout.write(
      table([
        ["CHECK", "STATUS", "DETAIL"],
        ...report.checks.map((c) => [c.name, c.status.toUpperCase(), c.detail]),
      ]),
    );
    const failed = report.checks.filter((c) => c.status === "fail").length;
    process.stdout.write(failed ? `${failed} check(s) failed\n` : "all checks passed\n");
  }
  return report.ok ? 0 : EXIT_FAILED;
}

async function info(argv: string[]): Promise<number> {
  const args = parseOneTarget(argv, { json: { type: "boolean" } }, RUNTIME_USAGE, {
    command: "runtime info",
    example: "pyport runtime info ./py312",
  });
  if (!args) return 0;
  const { values } = args;
  const { runtimeInfo } = await import("../runtime/info.js");
  const r = await runtimeInfo(args.target);
  if (values.json) {
    process.stdout.write(
      JSON.stringify({ dir: r.dir, bytes: r.bytes, ...r.manifest }, null, 2) + "\n",
    );
    return 0;
  }
  const m = r.manifest;
  const rows = [
    [
      "python",
      `${m.python.version} (${m.python.soabi ?? "?"}, ${m.python.linkMode} libpython, ${m.python.machine})`,
    ],
    [
      "source",
      `${m.source.kind} ${m.source.location}${m.source.sha256 ? ` sha256 ${m.source.sha256}` : ""}`,
    ],
    [
      "libc",
      m.libc.mode === "system"
        ? `system; needs glibc >= ${m.libc.glibcFloor ?? "?"} (set by ${m.libc.floorSetBy.slice(0, 3).join(", ")})`
        : `bundled glibc ${m.libc.bundledGlibc ?? "?"}`,
    ],
    ["profile", `${m.profile}${m.stripped ? ", stripped" : ""}`],
    ["size", mib(r.bytes)],
    ["pip", m.pip ? "installed" : "absent"],
    [
      "grafted",
      m.grafted.length
        ? m.grafted
            .map((g) => `${g.soname}${g.package ? ` (${g.package} ${g.packageVersion})` : ""}`)
            .join("\n")
        : "none",
    ],
  ];
  if (m.warnings.length) rows.push(["warnings", m.warnings.join("\n")]);
  for (const [k, v] of rows) {
    const [first, ...more] = v.split("\n");
    process.stdout.write(
      `${k.padEnd(9)} ${first}\n${more.map((x) => `${" ".repeat(10)}${x}\n`).join("")}`,
    );
  }
  return 0;
}
