import { spawn } from "node:child_process";

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** Receives the output as it comes, a chunk at a time (it is collected all the same). */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
}

/** Runs a program without a shell and collects its output. Never rejects on a non-zero exit. */
export function execFile(
  file: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => {
      out.push(b);
      options.onOutput?.("stdout", b.toString("utf8"));
    });
    child.stderr.on("data", (b: Buffer) => {
      err.push(b);
      options.onOutput?.("stderr", b.toString("utf8"));
    });
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.on("error", () => undefined); // the child may exit before reading its input
    child.stdin.end(options.input ?? "");
  });
}

/** Shortest useful description of a failed run, for error messages. */
export function describeFailure(file: string, args: readonly string[], r: ExecResult): string {
  const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  const excerpt = failureExcerpt([r.stderr, r.stdout].filter(Boolean).join("\n"));
  return `${file} ${args.join(" ")} ${how}${excerpt ? `:\n${excerpt}` : ""}`;
}

/** Where a tool's output states its cause: pip's ERROR lines, a traceback, an "error:" line. */
const CAUSE =
  /^(ERROR:|error:|\s*× |Traceback \(most recent call last\)|\s*\S*(Error|Exception): |\s*ModuleNotFoundError)/;

/**
 * The part of a failed tool's output that holds the cause: from the first line that states an
 * error (up to 30 lines), then the last lines; just the last 15 lines when nothing states one.
 */
export function failureExcerpt(output: string): string {
  const lines = output.trimEnd().split("\n");
  const first = lines.findIndex((l) => CAUSE.test(l));
  if (first < 0) return lines.slice(-15).join("\n").trim();
  const head = lines.slice(first, first + 30);
  const restStart = Math.max(first + 30, lines.length - 5);
  const tail = lines.slice(restStart);
  const skipped = restStart - (first + 30);
  return [...head, ...(skipped > 0 ? [`  … (${skipped} lines)`] : []), ...tail].join("\n").trim();
}

/**
 * The environment for running a runtime's Python on behalf of the user: PYTHON* variables and
 * VIRTUAL_ENV are dropped (they would redirect it), the user site is off; PIP_* variables are
 * kept only when `keepPip` (pip installs honour the user's pip configuration).
 */
export function pythonEnv(opts: { keepPip?: boolean } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("PYTHON") || k === "VIRTUAL_ENV" || (k.startsWith("PIP_") && !opts.keepPip))
      continue;
    env[k] = v;
  }
  return { ...env, PYTHONNOUSERSITE: "1" };
}
