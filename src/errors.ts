/**
 * The one error class pyport throws on purpose. `code` is stable (scripts may match on it);
 * `message` names the offending path/URL/value; `hint` says what to do about it.
 * User errors (bad input, missing file, checksum mismatch) exit with code 2 from the CLI;
 * anything else is an internal error and exits with code 70.
 */
export type ErrorCode =
  | "E_USAGE"
  | "E_CONFIG"
  | "E_NOT_FOUND"
  | "E_EXISTS"
  | "E_CHECKSUM"
  | "E_ARCHIVE"
  | "E_UNSAFE_ARCHIVE"
  | "E_DOWNLOAD"
  | "E_LOCK_TIMEOUT"
  | "E_ELF"
  | "E_PYTHON"
  | "E_RELOCATE"
  | "E_DOCTOR"
  | "E_TOOL"
  | "E_BUILD"
  | "E_AUDIT"
  | "E_PIP"
  | "E_REGISTRY"
  | "E_SERVICE"
  | "E_INTERNAL";

const USER_ERRORS: ReadonlySet<ErrorCode> = new Set([
  "E_USAGE",
  "E_CONFIG",
  "E_NOT_FOUND",
  "E_EXISTS",
  "E_CHECKSUM",
  "E_ARCHIVE",
  "E_UNSAFE_ARCHIVE",
  "E_DOWNLOAD",
  "E_LOCK_TIMEOUT",
  "E_PYTHON",
  "E_TOOL",
  "E_BUILD",
  "E_PIP",
  "E_REGISTRY",
  "E_SERVICE",
]);

/** Errors that mean "the checks ran and failed" (exit 1), not bad input (2) or a bug (70). */
export const CHECK_FAILURES: ReadonlySet<ErrorCode> = new Set(["E_AUDIT"]);

export class PyportError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PyportError";
    this.code = code;
    this.hint = options.hint;
  }

  get isUserError(): boolean {
    return USER_ERRORS.has(this.code);
  }
}

/** True when `err` is a Node system error with the given errno code (ENOENT, EEXIST, …). */
export function hasErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as NodeJS.ErrnoException).code === code;
}
