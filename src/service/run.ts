/**
 * What `pyport run` runs: a bundle directory (its manifest carries the services), or a project
 * directory, built first into its `dist/` (a `dir` bundle) — then the service asked for, the
 * only one, or all of them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { build } from "../bundle/build.js";
import { defaultService, serviceCommand } from "../bundle/service-spec.js";
import { PyportError } from "../errors.js";
import { readManifest } from "../runtime/manifest.js";
import type { Reporter } from "../util/reporter.js";
import type { RunnableService } from "./supervisor.js";

interface BundleApp {
  name: string;
  entryPoints: { name: string }[];
  services?: RunnableService[];
}

/** The bundle directory for `target`: itself, or the bundle built from the project it holds. */
export async function bundleFor(target: string, reporter?: Reporter): Promise<string> {
  const dir = path.resolve(target);
  if (fs.existsSync(path.join(dir, "PYPORT.json"))) return dir;
  if (
    fs.existsSync(path.join(dir, "pyproject.toml")) ||
    fs.existsSync(path.join(dir, "pyport.toml"))
  ) {
    const r = await build({ projectDir: dir, formats: ["dir"], reporter });
    return r.outputs.find((o) => o.format === "dir")!.path;
  }
  throw new PyportError("E_NOT_FOUND", `${dir} is neither a bundle nor a Python project`, {
    hint: "Give a bundle directory (pyport build's dir output) or a project with pyproject.toml or pyport.toml.",
  });
}

/** The services of the bundle: from its manifest, or its console script when it has no spec. */
export async function bundleServices(bundle: string): Promise<RunnableService[]> {
  const manifest = (await readManifest(bundle)) as unknown as { kind?: string; app?: BundleApp };
  const app = manifest.app;
  if (manifest.kind !== "bundle" || !app)
    throw new PyportError("E_USAGE", `${bundle} is a runtime, not a bundle of an application`, {
      hint: "Build the application first: pyport build PROJECT.",
    });
  if (app.services?.length) return app.services;
  const service = defaultService(app.name);
  const names = app.entryPoints.map((e) => e.name);
  return [{ ...service, command: serviceCommand(service, names, app.name) }];
}

/** The services to run: the one named, all (`all`), or the only one. */
export function selectServices(
  services: RunnableService[],
  name: string | undefined,
  all: boolean,
): RunnableService[] {
  const names = services.map((s) => s.name).join(", ");
  if (all) return services;
  if (name) {
    const s = services.find((x) => x.name === name);
    if (!s)
      throw new PyportError("E_USAGE", `no service named ${JSON.stringify(name)}`, {
        hint: `The bundle's services: ${names}.`,
      });
    return [s];
  }
  if (services.length > 1)
    throw new PyportError("E_USAGE", `the bundle has several services (${names}); which one?`, {
      hint: "Name one (pyport run BUNDLE web) or run them all with --all.",
    });
  return services;
}
