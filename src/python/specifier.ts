/**
 * PEP 440 version specifiers (`requires-python = ">=3.9,<3.13"`) evaluated against interpreter
 * versions: the operators ==, !=, <=, >=, <, >, ~= and ===, and `.*` wildcards for == and !=.
 * Release segments only (an interpreter's pre-release tag is ignored), which is what
 * requires-python needs.
 */
import { PyportError } from "../errors.js";

const CLAUSE = /^(===|==|!=|<=|>=|~=|<|>)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?$/;

function release(v: string): number[] {
  return (/^\d+(\.\d+)*/.exec(v.trim())?.[0] ?? "0").split(".").map(Number);
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

const prefixMatch = (v: number[], p: number[]) => p.every((x, i) => (v[i] ?? 0) === x);

function satisfiesClause(version: number[], clause: string): boolean {
  const m = CLAUSE.exec(clause.trim());
  if (!m) throw new Error(clause);
  const [, op, raw, wildcard] = m;
  const spec = raw.split(".").map(Number);
  if (wildcard) {
    if (op !== "==" && op !== "!=") throw new Error(clause);
    return prefixMatch(version, spec) === (op === "==");
  }
  const c = compare(version, spec);
  switch (op) {
    case "==":
    case "===":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<=":
      return c <= 0;
    case ">=":
      return c >= 0;
    case "<":
      return c < 0;
    case ">":
      return c > 0;
    default: // ~=: >= spec and the same release up to the last-but-one segment
      if (spec.length < 2) throw new Error(clause);
      return c >= 0 && prefixMatch(version, spec.slice(0, -1));
  }
}

/** Throws E_CONFIG (naming `where`) when `spec` is not a valid specifier set. */
export function checkSpecifier(spec: string, where: string): void {
  for (const clause of spec.split(",")) {
    try {
      satisfiesClause([3, 0], clause);
    } catch {
      throw new PyportError(
        "E_CONFIG",
        `${where}: ${JSON.stringify(clause.trim())} is not a version specifier`,
        {
          hint: 'PEP 440: for example ">=3.9", ">=3.9,<3.13", "~=3.11" or "==3.12.*".',
        },
      );
    }
  }
}

/** Whether `version` (e.g. "3.12.1") satisfies every clause of `spec` (e.g. ">=3.9,<3.13"). */
export function satisfies(version: string, spec: string): boolean {
  const v = release(version);
  return spec
    .split(",")
    .filter((c) => c.trim())
    .every((c) => satisfiesClause(v, c));
}
