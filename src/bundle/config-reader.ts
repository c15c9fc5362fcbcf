/** Typed reading of one TOML table, with errors that name the file, the line and the key. */
import { PyportError } from "../errors.js";

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
  return d[a.length][b.length];
}

export function closest(word: string, options: readonly string[]): string | undefined {
  const best = [...options].sort((x, y) => distance(word, x) - distance(word, y))[0];
  return best !== undefined && distance(word, best) <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

/** 1-based line of `key` inside table `[table]` (or at top level when table is ""); 0 when unknown. */
function lineOfKey(text: string, table: string, key: string): number {
  const lines = text.split("\n");
  let current = "";
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(t);
    if (header) {
      current = header[1].replace(/\s*\.\s*/g, ".").replace(/"/g, "");
      // A key given as a table of its own: `[tool.pyport.services.web]`.
      if (current === (table ? `${table}.${key}` : key)) return i + 1;
      continue;
    }
    const m = /^("?)([A-Za-z0-9_.-]+)\1\s*=/.exec(t);
    if (!m) continue;
    const full = current ? `${current}.${m[2]}` : m[2];
    if (full === (table ? `${table}.${key}` : key)) return i + 1;
  }
  return 0;
}

/** Reads typed values from one table of a config file; every error names file, line and key. */
export class ConfigReader {
  constructor(
    readonly file: string,
    readonly text: string,
    readonly table: string,
  ) {}

  fail(key: string, message: string, hint: string): never {
    // A key inside an inline table (`bytecode = { optimize = 3 }`) is on its parent's line.
    let line = 0;
    for (let k = key; !line && k; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "")
      line = lineOfKey(this.text, this.table, k);
    const where = `${this.file}${line ? `:${line}` : ""}`;
    throw new PyportError(
      "E_CONFIG",
      `${where}: ${this.table ? `${this.table}.` : ""}${key}: ${message}`,
      { hint },
    );
  }

  string(obj: Record<string, unknown>, key: string): string | undefined {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "")
      this.fail(
        key,
        `expected a non-empty string, got ${JSON.stringify(v)}`,
        `Example: ${key} = "value"`,
      );
    return v;
  }

  strings(obj: Record<string, unknown>, key: string): string[] | undefined {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      this.fail(
        key,
        `expected an array of strings, got ${JSON.stringify(v)}`,
        `Example: ${key} = ["a", "b"]`,
      );
    return v as string[];
  }

  oneOf<T extends string>(
    obj: Record<string, unknown>,
    key: string,
    allowed: readonly T[],
  ): T | undefined {
    const v = this.string(obj, key);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) {
      const near = closest(v, allowed);
      this.fail(
        key,
        `${JSON.stringify(v)} is not valid`,
        `${near ? `Did you mean "${near}"? ` : ""}Use one of: ${allowed.join(", ")}.`,
      );
    }
    return v as T;
  }

  knownKeys(obj: Record<string, unknown>, allowed: readonly string[], sub = ""): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const near = closest(key, allowed);
      this.fail(
        sub ? `${sub}.${key}` : key,
        "unknown key",
        `${near ? `Did you mean "${near}"? ` : ""}Valid keys: ${allowed.join(", ")}.`,
      );
    }
  }
}
