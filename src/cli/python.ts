import { PyportError } from "../errors.js";
import { parse } from "./args.js";
import { table } from "./output.js";

const USAGE = `pyport python list [--json]
  Lists the CPython interpreters found on PATH, in pyenv and in /usr/bin, /usr/local/bin, in the
  order 'runtime create --python X.Y' searches them, with their link mode and ensurepip state.`;

export async function pythonCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" } }, USAGE);
  if (values.help || positionals[0] !== "list") {
    process.stdout.write(USAGE + "\n");
    if (values.help) return 0;
    if (positionals[0] === undefined) return 2;
    throw new PyportError("E_USAGE", `unknown python command ${JSON.stringify(positionals[0])}`, {
      hint: "Use: pyport python list",
    });
  }
  const { discoverPythons } = await import("../python/discover.js");
  const found = await discoverPythons();
  if (values.json) {
    process.stdout.write(
      JSON.stringify(
        found.map((f) => ({
          path: f.path,
          origin: f.origin,
          version: f.probe.version,
          prefix: f.probe.prefix,
          ensurepip: f.probe.ensurepip,
          venv: f.probe.venv,
        })),
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  process.stdout.write(
    table([
      ["VERSION", "FOUND IN", "PATH", "ENSUREPIP"],
      ...found.map((f) => [
        f.probe.version,
        f.origin,
        f.path,
        f.probe.ensurepip.wheels ? "yes" : "no",
      ]),
    ]),
  );
  return 0;
}
