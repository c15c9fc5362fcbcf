/**
 * Python → Node calls: user code in a worker calls `pyport_host.call(name, *args, **kwargs)`
 * (python/host_channel.py HostCalls); the worker sends HOST_CALL and waits for HOST_OK or
 * HOST_ERR with the same id (protocol.ts).
 */
import { KIND } from "./protocol.js";

/** Host functions by name: called with Python's args (then its kwargs as one object, if any). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- called with whatever Python sends
export type HostFunctions = Record<string, (...args: any[]) => unknown>;

/** A JS error as Python's HostError gets it. */
export function describeJsError(err: unknown): { name: string; message: string; stack: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack ?? "" };
  return { name: "Error", message: String(err), stack: "" };
}

/**
 * Runs the host function a HOST_CALL names, with its args (and its kwargs as one more argument
 * when there are any), and answers `answer(HOST_OK, value)` or `answer(HOST_ERR, error)`. The
 * Python caller waits for the answer; other calls to that worker wait too.
 */
export function runHostCall(
  functions: HostFunctions,
  [name, args, kwargs]: [string, unknown[], object],
  answer: (kind: number, value: unknown) => void,
): void {
  if (!Object.hasOwn(functions, name) || typeof functions[name] !== "function") {
    const known = Object.keys(functions).join(", ") || "none";
    answer(KIND.toPython.hostErr, {
      name: "LookupError",
      message: `no host function ${JSON.stringify(name)} (registered: ${known})`,
      stack: "",
    });
    return;
  }
  const extra = Object.keys(kwargs).length ? [kwargs] : [];
  new Promise((resolve) => resolve(functions[name](...args, ...extra))).then(
    (v) => answer(KIND.toPython.hostOk, v === undefined ? null : v),
    (err: unknown) => answer(KIND.toPython.hostErr, describeJsError(err)),
  );
}
