/** Flag parsing shared by the commands: node's parseArgs with errors that say what to do. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { PyportError } from "../errors.js";

export type Options = NonNullable<ParseArgsConfig["options"]>;

const HELP = { help: { type: "boolean", short: "h" } } as const;

export interface Parsed<T extends Options> {
  values: { [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean : string } & {
    help?: boolean;
  };
  positionals: string[];
}

export function parse<T extends Options>(argv: string[], options: T, usage: string): Parsed<T> {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, ...HELP },
      allowPositionals: true,
      strict: true,
    }) as unknown as Parsed<T>;
  } catch (err) {
    throw new PyportError(
      "E_USAGE",
      (err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ""),
      { hint: `Usage: ${usage.split("\n")[0]}  (see --help)` },
    );
  }
}

export function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new PyportError("E_USAGE", `${flag} ${JSON.stringify(value)} is not valid`, {
    hint: `Use one of: ${allowed.join(", ")}.`,
  });
}

/**
 * Parses `<command> DIR [--json]`-shaped arguments. Prints the usage and returns undefined for
 * --help; otherwise requires exactly one positional, with an example in the error.
 */
export function parseOneTarget<T extends Options>(
  argv: string[],
  options: T,
  usage: string,
  what: { command: string; example: string },
): { values: Parsed<T>["values"]; target: string } | undefined {
  const { values, positionals } = parse(argv, options, usage);
  if (values.help) {
    process.stdout.write(usage + "\n");
    return undefined;
  }
  if (positionals.length !== 1)
    throw new PyportError(
      "E_USAGE",
      `${what.command} takes exactly one ${positionals.length ? "target" : "target; none was given"}`,
      { hint: `Example: ${what.example}` },
    );
  return { values, target: positionals[0] };
}
