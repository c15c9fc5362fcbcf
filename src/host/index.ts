/**
 * `pyport/host`: the Node host API alone (run Python from Node), without loading the runtime
 * builder, the bundler or the audit — a fast import for apps that only call Python.
 */
export { Python, type StartOptions, type CallOptions, type StreamOptions } from "./python.js";
export { ForkServer, type ForkServerOptions } from "./fork-server.js";
export {
  PythonError,
  WorkerCrashedError,
  CallTimeoutError,
  AbortError,
  type PythonFrame,
} from "./errors.js";
export type { HostFunctions, OutputHandler } from "./worker.js";
