/**
 * Trigger specs, as InfluxDB 3's processing engine writes them: `table:<name>`, `all_tables`,
 * `every:<duration>` (fired at multiples of the duration since the Unix epoch, at most a year),
 * `cron:<seconds minutes hours day-of-month month day-of-week>`, `request:<path>` (served at
 * `/api/v3/engine/<path>`). Pure: parsing and the next firing time.
 */
import { PyportError } from "../errors.js";

export type TriggerSpec =
  | { kind: "table"; table: string }
  | { kind: "all_tables" }
  | { kind: "every"; ms: number }
  | { kind: "cron"; cron: Cron }
  | { kind: "request"; path: string };

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};
const YEAR_MS = 365 * 86_400_000;

function bad(spec: string, why: string, hint: string): never {
  throw new PyportError("E_USAGE", `trigger spec ${JSON.stringify(spec)}: ${why}`, { hint });
}

/** `10s`, `5m`, `1h30m`, `2d` → milliseconds. */
export function parseDuration(text: string): number | undefined {
  let total = 0;
  let rest = text.trim();
  if (!rest) return undefined;
  while (rest) {
    const m = /^(\d+)(ms|min|s|m|h|d|w)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

export function parseSpec(spec: string): TriggerSpec {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? "" : spec.slice(colon + 1);
  const forms =
    "Use table:<name>, all_tables, every:<duration> (10s, 5m, 1h), cron:<6 fields, seconds first> or request:<path>.";
  switch (kind) {
    case "all_tables":
      if (arg) bad(spec, "all_tables takes no argument", forms);
      return { kind: "all_tables" };
    case "table":
      if (!arg) bad(spec, "no table name", "Example: table:cpu");
      return { kind: "table", table: arg };
    case "every": {
      const ms = parseDuration(arg);
      if (!ms)
        bad(
          spec,
          `${JSON.stringify(arg)} is not a duration`,
          "Example: every:10s, every:5m, every:1h",
        );
      if (ms > YEAR_MS) bad(spec, "the duration is more than a year", "Use at most every:365d.");
      return { kind: "every", ms };
    }
    case "cron":
      return { kind: "cron", cron: parseCron(arg, spec) };
    case "request":
      if (!/^[A-Za-z0-9._~/-]+$/.test(arg) || arg.startsWith("/") || arg.includes(".."))
        bad(
          spec,
          "the path must be relative, with letters, digits, '.', '_', '~', '-' and '/'",
          "Example: request:hello/world",
        );
      return { kind: "request", path: arg };
    default:
      return bad(spec, `unknown kind ${JSON.stringify(kind)}`, forms);
  }
}

/** A parsed cron expression: the allowed values of each field. */
export interface Cron {
  seconds: Set<number>;
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Both day fields restricted: a day matches if either does (cron's rule). */
  dayOr: boolean;
}

const FIELDS: [string, number, number][] = [
  ["second", 0, 59],
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day of month", 1, 31],
  ["month", 1, 12],
  ["day of week", 0, 7],
];
const NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};

function cronField(
  text: string,
  [what, lo, hi]: [string, number, number],
  spec: string,
): Set<number> {
  const out = new Set<number>();
  const num = (s: string) => {
    const v = NAMES[s.toLowerCase()] ?? (/^\d+$/.test(s) ? Number(s) : NaN);
    if (!(v >= lo && v <= hi))
      bad(
        spec,
        `${what} ${JSON.stringify(s)} is not in ${lo}-${hi}`,
        "Fields: seconds minutes hours day-of-month month day-of-week.",
      );
    return v;
  };
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!(Number.isInteger(step) && step > 0))
      bad(spec, `bad step in ${JSON.stringify(part)}`, "Example: */15");
    let from: number, to: number;
    if (range === "*" || range === "?") [from, to] = [lo, hi];
    else if (range.includes("-")) [from, to] = range.split("-").map(num) as [number, number];
    else [from, to] = [num(range), stepText === undefined ? num(range) : hi];
    for (let v = from; v <= to; v += step) out.add(what === "day of week" && v === 7 ? 0 : v);
  }
  return out;
}

export function parseCron(expr: string, spec = `cron:${expr}`): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 6)
    bad(
      spec,
      `a cron expression has 6 fields (seconds first), this one has ${parts.length}`,
      "Example: cron:0 */5 * * * * (every 5 minutes, at second 0)",
    );
  const [seconds, minutes, hours, days, months, weekdays] = parts.map((p, i) =>
    cronField(p, FIELDS[i], spec),
  );
  const restricted = (p: string) => p !== "*" && p !== "?";
  return {
    seconds,
    minutes,
    hours,
    days,
    months,
    weekdays,
    dayOr: restricted(parts[3]) && restricted(parts[5]),
  };
}

/** The first time (ms, UTC) strictly after `after` that `cron` matches; undefined if none within 5 years. */
export function nextCron(cron: Cron, after: number): number | undefined {
  const d = new Date(Math.floor(after / 1000) * 1000 + 1000);
  const limit = after + 5 * YEAR_MS;
  while (d.getTime() <= limit) {
    const dayOk = cron.dayOr
      ? cron.days.has(d.getUTCDate()) || cron.weekdays.has(d.getUTCDay())
      : cron.days.has(d.getUTCDate()) && cron.weekdays.has(d.getUTCDay());
    if (!cron.months.has(d.getUTCMonth() + 1) || !dayOk) {
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCDate(d.getUTCDate() + 1);
    } else if (!cron.hours.has(d.getUTCHours())) {
      d.setUTCMinutes(0, 0, 0);
      d.setUTCHours(d.getUTCHours() + 1);
    } else if (!cron.minutes.has(d.getUTCMinutes())) {
      d.setUTCSeconds(0, 0);
      d.setUTCMinutes(d.getUTCMinutes() + 1);
    } else if (!cron.seconds.has(d.getUTCSeconds())) {
      d.setUTCSeconds(d.getUTCSeconds() + 1, 0);
    } else return d.getTime();
  }
  return undefined;
}

/** The next firing time strictly after `after` for a schedule spec (every: aligned to the epoch). */
export function nextFire(spec: TriggerSpec, after: number): number | undefined {
  if (spec.kind === "every") return (Math.floor(after / spec.ms) + 1) * spec.ms;
  if (spec.kind === "cron") return nextCron(spec.cron, after);
  return undefined;
}
