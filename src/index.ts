/**
 * pyport's library API. The CLI is a thin layer over these same functions: every command parses
 * its flags into the options of one of them (heavy modules are loaded lazily there, so
 * `pyport --help` stays fast), and a library user can do everything the CLI does.
 */
export { PyportError, type ErrorCode } from "./errors.js";
export type { Reporter } from "./util/reporter.js";
export {
  createRuntime,
  type CreateRuntimeOptions,
  type CreateRuntimeResult,
} from "./runtime/create.js";
export {
  runDoctor,
  type DoctorReport,
  type DoctorCheck,
  type DoctorOptions,
} from "./runtime/doctor.js";
export { runtimeInfo, type RuntimeInfo } from "./runtime/info.js";
export { readManifest, type RuntimeManifest } from "./runtime/manifest.js";
export type { LibcMode, GraftedLibrary } from "./runtime/closure.js";
export { type Profile, PROFILES } from "./runtime/profile.js";
export type { RuntimeSource } from "./runtime/sources.js";
export { discoverPythons, resolvePython, type FoundPython } from "./python/discover.js";
export { probePython, type PythonProbe } from "./python/probe.js";
export { cacheRoot } from "./store/buckets.js";
export {
  listCache,
  pruneCache,
  type CacheEntry,
  type PruneOptions,
  type PruneResult,
} from "./store/cache.js";
export {
  build,
  onefileEntry,
  type BuildOptions,
  type BuildOutput,
  type BuildResult,
} from "./bundle/build.js";
export { loadConfig, FORMATS, type BuildConfig, type Format } from "./bundle/config.js";
export {
  readOnefile,
  verifyOnefile,
  writeOnefile,
  type OnefileInfo,
  type OnefileMeta,
} from "./onefile/onefile.js";
export { readElf, type ElfFile } from "./elf/read.js";
export { readDynamicSymbols } from "./elf/symbols.js";
export { editDynamic, type DynamicEdit } from "./elf/edit.js";
export { extractArchive } from "./archive/extract.js";
export { audit, auditFailed, type AuditOptions, type AuditReport } from "./audit/audit.js";
export type { Finding } from "./audit/findings.js";
export { cycloneDx } from "./audit/sbom.js";
export { formatAudit } from "./audit/report.js";
export { getPolicy, POLICY_NAMES, type Policy } from "./audit/policy.js";
export * from "./host/index.js";
export {
  Engine,
  engineHandler,
  prometheusMetrics,
  type EngineHost,
  type EngineOptions,
  type TriggerConfig,
  type TriggerInfo,
} from "./engine/index.js";
export { push, type PushEvent, type PushOptions, type PushResult } from "./oci/push.js";
export {
  parseReference,
  storedCredentials,
  type Credentials,
  type ImageReference,
} from "./oci/registry.js";
export { writeImage, type ImageInput, type ImageResult } from "./oci/image.js";
export type { ServiceSpec, HealthCheck, RestartPolicy } from "./bundle/service-spec.js";
export {
  Supervisor,
  exitStatus,
  type RunnableService,
  type SupervisorOptions,
} from "./service/supervisor.js";
export { bundleFor, bundleServices, selectServices } from "./service/run.js";
