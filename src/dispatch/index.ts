/** Dispatch: the measurement engines' JS facade (native, or pure-TS worker_threads), backends, priority microbenchmarks. */
export { runDispatch, listBackends, dispatchSpecSchema, specError } from './run.js';
export type { DispatchRun, DispatchSpecInput, StreamLaunches, RunDispatchOptions } from './run.js';
export { chooseEngine, envEngine, engineLabel, probeChoice, DISPATCH_ENGINE_ENV } from './engine-choice.js';
export type { EngineChoice, ProbeChoice } from './engine-choice.js';
export { startTsDispatch, tsCpuBackendInfo, tsComputeUnits, createSchedule, TS_BACKEND_NOTE } from './ts-engine/index.js';
export type { TsEngineOptions, TsDispatchResult, TsBlockTrace, TsEngineDebug, TsEngineTuning, Schedule } from './ts-engine/index.js';
export { probeLatency, probePriority } from './probes.js';
export type { Backend, LatencyProbeOptions, LatencyProbeResult, PriorityProbeOptions, PriorityProbeResult, CoRunResult } from './probes.js';
export { kfdCheck, kfdPresent, expectedLevels } from './kfd-check.js';
export type { KfdCheckOptions, KfdCheckResult, KfdSetResult } from './kfd-check.js';
