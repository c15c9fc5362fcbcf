/** Errors of the Node host API. Every one is an `Error`; `instanceof` and `name` both work. */

export interface PythonFrame {
  file: string;
  line: number | null;
  name: string;
}

/** The wire form of a Python exception (python/host_worker.py describe_error). */
export interface PythonErrorInfo {
  type: string;
  message: string;
  traceback: string;
  frames: PythonFrame[];
  cause: PythonErrorInfo | null;
}

/** An exception raised by the Python code a call ran. */
export class PythonError extends Error {
  override name = "PythonError";
  /** `ValueError`, or `package.module.Class` for non-builtin exceptions. */
  readonly pythonType: string;
  /** The exception's own message (`str(exc)`). */
  readonly pythonMessage: string;
  /** Python's formatted traceback, as `traceback.format_exception` prints it. */
  readonly traceback: string;
  readonly frames: PythonFrame[];

  constructor(info: PythonErrorInfo, callSite?: CallSite | string) {
    const cause = info.cause ? new PythonError(info.cause) : undefined;
    super(info.message ? `${info.type}: ${info.message}` : info.type, cause ? { cause } : undefined);
    this.pythonType = info.type;
    this.pythonMessage = info.message;
    this.traceback = info.traceback;
    this.frames = info.frames;
    // The Python traceback first, then where the call was made in JS.
    const py = info.traceback.trimEnd().split("\n").map((l) => `    ${l}`).join("\n");
    const site = callSite ? String(callSite) : "";
    this.stack = `${this.name}: ${this.message}\n  Python traceback:\n${py}${site ? `\n${site}` : ""}`;
  }
}

/** The worker process running the call died (segfault, `os._exit`, killed, out of memory). */
export class WorkerCrashedError extends Error {
  override name = "WorkerCrashedError";
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    /** The last lines the worker wrote to stderr. */
    readonly stderrTail: string,
  ) {
    super(message);
  }
}

/** The call's `timeoutMs` passed; the call was interrupted (KeyboardInterrupt in the worker). */
export class CallTimeoutError extends Error {
  override name = "CallTimeoutError";
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/** The call's `signal` was aborted; the call was interrupted. `cause` is the signal's reason. */
export class AbortError extends Error {
  override name = "AbortError";
}

/** Where a host API call was made: captured cheaply now, formatted only if an error needs it. */
export class CallSite {
  private readonly holder: { stack?: string } = {};
  constructor(fn: (...args: never[]) => unknown) {
    Error.captureStackTrace(this.holder, fn);
  }
  /** The stack lines (without a message line). */
  toString(): string {
    return (this.holder.stack ?? "").split("\n").slice(1).join("\n");
  }
}
