/** `pyport/engine`: run InfluxDB 3 processing-engine plugins from any Node host. */
export {
  Engine,
  type EngineHost,
  type EngineOptions,
  type TriggerInfo,
  type WriteResult,
} from "./engine.js";
export type { TriggerConfig } from "./trigger.js";
export type { LogEntry, LogQuery } from "./store.js";
export { parseSpec, parseDuration, nextFire, type TriggerSpec } from "./spec.js";
