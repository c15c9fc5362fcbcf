/** `pyport/engine`: run InfluxDB 3 processing-engine plugins from any Node host. */
export {
  Engine,
  type EngineHost,
  type EngineOptions,
  type TriggerInfo,
  type WriteResult,
  type EngineTest,
  type EngineTestResult,
} from "./engine.js";
export { engineHandler, prometheusMetrics } from "./server.js";
export type { TriggerConfig } from "./trigger.js";
export { PipFailure, type InstallRequest, type PipOutput } from "./venv.js";
export type { LogEntry, LogQuery } from "./store.js";
export { parseSpec, parseDuration, nextFire, type TriggerSpec } from "./spec.js";
