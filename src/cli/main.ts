#!/usr/bin/env node
/** pyport's command line: dispatches to one module per command, imported lazily. */
import { PYPORT_VERSION } from "../version.js";
import { EXIT_USAGE, reportError } from "./output.js";

const USAGE = `pyport ${PYPORT_VERSION} — ship Python anywhere

Usage: pyport <command> [options]

Commands:
  runtime create   make a portable CPython runtime from an interpreter or an archive
  runtime doctor   check that a runtime works on this machine
  runtime info     show what a runtime is made of
  build            build a Python project into a bundle that runs anywhere
  audit            will a runtime or bundle run elsewhere, and under which licences?
  python list      list the CPython interpreters pyport finds on this machine
  cache dir|list|prune
                   where pyport caches runtimes and downloads, and cleaning it
  run              run a bundle's or project's service in the foreground, supervised
  push             push an OCI image (build --format oci) to a registry
  engine serve|test|trigger|install|logs
                   run InfluxDB 3-style Python plugins on writes, schedules and requests

Run 'pyport <command> --help' for a command's options.
Exit codes: 0 ok, 1 checks failed, 2 usage or input error, 70 internal error.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(USAGE + "\n");
      return cmd === undefined ? EXIT_USAGE : 0;
    case "-V":
    case "--version":
      process.stdout.write(PYPORT_VERSION + "\n");
      return 0;
    case "runtime":
      return (await import("./runtime.js")).runtimeCommand(rest);
    case "build":
      return (await import("./build.js")).buildCommand(rest);
    case "audit":
      return (await import("./audit.js")).auditCommand(rest);
    case "cache":
      return (await import("./cache.js")).cacheCommand(rest);
    case "python":
      return (await import("./python.js")).pythonCommand(rest);
    case "run":
      return (await import("./run.js")).runCommand(rest);
    case "push":
      return (await import("./push.js")).pushCommand(rest);
    case "engine":
      return (await import("./engine.js")).engineCommand(rest);
    default:
      process.stderr.write(`pyport: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}\n`);
      return EXIT_USAGE;
  }
}

// A closed pipe (`pyport … | head`) is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.exitCode = reportError(err);
  },
);
