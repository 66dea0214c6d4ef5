/** Dispatch: the native measurement engine's JS facade, backends, priority microbenchmarks. */
export { runDispatch, listBackends, dispatchSpecSchema, specError } from './run.js';
export type { DispatchRun, DispatchSpecInput, StreamLaunches } from './run.js';
export { probeLatency, probePriority } from './probes.js';
export type { Backend, LatencyProbeOptions, LatencyProbeResult, PriorityProbeOptions, PriorityProbeResult, CoRunResult } from './probes.js';
export { kfdCheck, kfdPresent, expectedLevels } from './kfd-check.js';
export type { KfdCheckOptions, KfdCheckResult, KfdSetResult } from './kfd-check.js';
