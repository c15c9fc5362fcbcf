/** `pyport run BUNDLE|PROJECT [SERVICE] [--all] [--raw] [-- ARGS…]`: a service in the foreground. */
import { PyportError } from "../errors.js";
import { parse } from "./args.js";
import { cliReporter } from "./output.js";

const RUN_USAGE = `Usage: pyport run BUNDLE|PROJECT [SERVICE] [--all] [--raw] [-- ARGS…]

Runs a service in the foreground, supervised. BUNDLE is a directory pyport build wrote (its
manifest carries the services); a PROJECT directory is built first (into its dist/). The
service is the one named, the only one, or with --all every service of the project, each
restarted on its own. ARGS after -- are appended to the service's arguments.

What it does:
  - prefixes each output line with the time and the service's name (--raw: passes output
    through untouched);
  - restarts the service by its restart policy (no, on-failure, always) with a bounded
    exponential back-off (0.5 s doubling to 30 s, reset after 10 s of running);
  - checks its health (an HTTP path on its first port, or a command) and reports each
    transition (healthy, unhealthy, healthy again);
  - on SIGINT/SIGTERM sends the service its stop signal, and SIGKILL after its stop timeout;
  - exits with the service's exit status (128 + N when killed by signal N).

The service spec ([tool.pyport.service], or [tool.pyport.services.NAME] for several):
  entry = "NAME"            a console script of the project (default: the only one), or
  command = ["bin/python3", "-m", "app"]   (paths are inside the bundle)
  args = ["--port", "8080"]     env = { KEY = "value" }     workdir = "data"
  ports = [8080, "5353/udp"]
  health = { http = "/health", interval = "10s", timeout = "2s", retries = 3 }
           or { command = ["bin/check"], … }
  stop-signal = "SIGTERM"   stop-timeout = "10s"   restart = "on-failure"
The same spec is the OCI image's entrypoint, args, env, ports and stop signal.

Example: pyport run examples/webapp`;

export async function runCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const extraArgs = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parse(
    dash >= 0 ? argv.slice(0, dash) : argv,
    { all: { type: "boolean" }, raw: { type: "boolean" }, quiet: { type: "boolean" } },
    RUN_USAGE,
  );
  if (values.help) {
    process.stdout.write(RUN_USAGE + "\n");
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2)
    throw new PyportError(
      "E_USAGE",
      "pyport run takes a bundle or project, and optionally a service",
      {
        hint: "Example: pyport run examples/webapp (or pyport run dist/webapp web -- --port 9000)",
      },
    );
  if (values.all && positionals[1])
    throw new PyportError("E_USAGE", "--all runs every service; do not name one too", {
      hint: "Drop the service name or --all.",
    });
  const { bundleFor, bundleServices, selectServices } = await import("../service/run.js");
  const { Supervisor } = await import("../service/supervisor.js");
  const bundle = await bundleFor(positionals[0], cliReporter({ quiet: values.quiet }));
  const services = selectServices(await bundleServices(bundle), positionals[1], !!values.all);
  const supervisor = new Supervisor({ bundle, services, extraArgs, raw: values.raw });
  const onSignal = () => supervisor.stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await supervisor.run();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
