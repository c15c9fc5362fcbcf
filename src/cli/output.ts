/** Rendering for the CLI: the reporter (stderr), errors and exit codes. */
import { CHECK_FAILURES, PyportError } from "../errors.js";
import type { Reporter } from "../util/reporter.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1; // the command ran and found problems (doctor failures)
export const EXIT_USAGE = 2; // bad input: flags, paths, checksums
const EXIT_INTERNAL = 70;

/** Progress on stderr: a redrawn line on a TTY, plain lines otherwise; silent with --quiet. */
export function cliReporter(opts: { quiet?: boolean } = {}): Reporter {
  const tty = process.stderr.isTTY === true;
  let lastDraw = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) process.stderr.write("\r\x1b[K");
    drawn = false;
  };
  const line = (s: string) => {
    clear();
    process.stderr.write(s + "\n");
  };
  return {
    step: (m) => !opts.quiet && line(`pyport: ${m}`),
    note: (m) => !opts.quiet && line(`  ${m}`),
    warn: (m) => line(`pyport: warning: ${m}`),
    progress: (task, done, total) => {
      if (opts.quiet || !tty) return;
      const now = Date.now();
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      const amount = total
        ? `${Math.floor((100 * done) / total)}% of ${mib(total)}`
        : task.startsWith("download")
          ? mib(done)
          : `${done}`;
      process.stderr.write(`\r\x1b[K  ${task}: ${amount}`);
      drawn = true;
    },
  };
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Prints an error the way a user can act on it and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof PyportError) {
    process.stderr.write(`pyport: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    if (CHECK_FAILURES.has(err.code)) return EXIT_FAILED;
    if (!err.isUserError && err.cause)
      process.stderr.write(`  cause: ${String((err.cause as Error).stack ?? err.cause)}\n`);
    return err.isUserError ? EXIT_USAGE : EXIT_INTERNAL;
  }
  process.stderr.write(
    `pyport: internal error: ${(err as Error)?.stack ?? String(err)}\n  This is a bug in pyport; please report it with the command you ran.\n`,
  );
  return EXIT_INTERNAL;
}

/** Prints rows as aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows
      .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  "))
      .join("\n") + "\n"
  );
}
