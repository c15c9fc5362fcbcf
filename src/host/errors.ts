/**
 * Errors of the Node host API. Every one is an `Error`; `instanceof`, `name` and a stable `code`
 * (like PyportError's, for scripts and logs) all work: E_PYTHON_RAISED, E_WORKER_CRASHED,
 * E_CALL_TIMEOUT, E_ABORTED. Bad arguments to the host API are PyportError E_USAGE.
 */

export type HostErrorCode = "E_PYTHON_RAISED" | "E_WORKER_CRASHED" | "E_CALL_TIMEOUT" | "E_ABORTED";

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
  readonly code: HostErrorCode = "E_PYTHON_RAISED";
  /** `ValueError`, or `package.module.Class` for non-builtin exceptions. */
  readonly pythonType: string;
  /** The exception's own message (`str(exc)`). */
  readonly pythonMessage: string;
  /** Python's formatted traceback, as `traceback.format_exception` prints it. */
  readonly traceback: string;
  readonly frames: PythonFrame[];

  /** The wire form, to re-raise this error where the caller awaits it (see `atCallSite`). */
  readonly info: PythonErrorInfo;

  /** `above`: the host API function whose frame (and everything it called) the JS stack leaves out. */
  constructor(info: PythonErrorInfo, above?: (...args: never[]) => unknown) {
    const cause = info.cause ? new PythonError(info.cause) : undefined;
    super(
      info.message ? `${info.type}: ${info.message}` : info.type,
      cause ? { cause } : undefined,
    );
    this.pythonType = info.type;
    this.pythonMessage = info.message;
    this.traceback = info.traceback;
    this.frames = info.frames;
    this.info = info;
    // The Python traceback first, then the JS frames: created where the caller's await resumes,
    // V8's async stack traces make them the call site (`at async yourFunction`).
    if (above) Error.captureStackTrace(this, above);
    const js = (this.stack ?? "").split("\n").slice(1).join("\n");
    const py = info.traceback
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n");
    this.stack = `${this.name}: ${this.message}\n  Python traceback:\n${py}${js ? `\n${js}` : ""}`;
  }
}

/** The worker process running the call died (segfault, `os._exit`, killed, out of memory). */
export class WorkerCrashedError extends Error {
  override name = "WorkerCrashedError";
  readonly code: HostErrorCode = "E_WORKER_CRASHED";
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    /** The last lines the worker wrote to stderr. */
    readonly stderrTail: string,
    /**
     * False when the worker died before it started this call (it was queued behind the one
     * that was running): the call had no effect and can be sent again. Known only for workers
     * started with `replyEach`; true otherwise.
     */
    readonly started = true,
  ) {
    super(message);
  }
}

/** The call's `timeoutMs` passed; the call was interrupted (KeyboardInterrupt in the worker). */
export class CallTimeoutError extends Error {
  override name = "CallTimeoutError";
  readonly code: HostErrorCode = "E_CALL_TIMEOUT";
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
  readonly code: HostErrorCode = "E_ABORTED";
}

/**
 * Called where a host API call resumes in the caller's async chain: a PythonError (created in
 * an I/O callback, with no useful JS stack) is raised again there, so its stack shows the call
 * site. Free when nothing fails — unlike capturing a stack on every call.
 */
export function atCallSite(err: unknown, above: (...args: never[]) => unknown): unknown {
  return err instanceof PythonError ? new PythonError(err.info, above) : err;
}

/** A rejection handler for a host API call's promise: raises the error again with atCallSite, leaving itself out of the stack. */
export function raiseAtCallSite(err: unknown): never {
  throw atCallSite(err, raiseAtCallSite);
}
