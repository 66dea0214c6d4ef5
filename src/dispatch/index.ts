/** Dispatch: the measurement engines' JS facade (native, or pure-TS worker_threads), backends, priority microbenchmarks. */
export { runDispatch, listBackends, dispatchSpecSchema, specError, clockCheck, DispatchError } from './run.js';
export type { DispatchRun, DispatchSpecInput, StreamLaunches, RunDispatchOptions, ClockCheck } from './run.js';
export { reservedUnits, mechanismProblem, blocksPerCuAt, residentThreadsPerCu, streamShare, fillReport, fillText, sizeStreams } from './fill.js';
export type { StreamShare, FillReport, SizeOutcome } from './fill.js';
export { chooseEngine, envEngine, engineLabel, probeChoice, DISPATCH_ENGINE_ENV } from './engine-choice.js';
export type { EngineChoice, ProbeChoice } from './engine-choice.js';
export { startTsDispatch, tsCpuBackendInfo, tsComputeUnits, createSchedule, TS_BACKEND_NOTE } from './ts-engine/index.js';
export type { TsEngineOptions, TsDispatchResult, TsBlockTrace, TsEngineDebug, TsEngineTuning, Schedule } from './ts-engine/index.js';
export { probeLatency, probePriority } from './probes.js';
export type { Backend, LatencyProbeOptions, LatencyProbeResult, PriorityProbeOptions, PriorityProbeResult, CoRunResult, SkippedCoRun, ClockSummary } from './probes.js';
export { kfdCheck, kfdPresent, expectedLevels } from './kfd-check.js';
export type { KfdCheckOptions, KfdCheckResult, KfdSetResult } from './kfd-check.js';
export { detectMps, MPS_DEFAULT_PIPE_DIR } from './mps.js';
export type { MpsStatus, MpsDetectOptions } from './mps.js';
