/** gpucolo's public API: everything the CLI does is available here. */
export * from './kfd/index.js';
export { doctor, DOCTOR_SCHEMA } from './doctor.js';
export type { DoctorReport, DoctorOptions } from './doctor.js';
export { loadNative, nativeReport, NATIVE_ABI } from './native.js';
export type { Impl, NativeReport, NativeLoadError, PluginProbe } from './native.js';
export { GpucoloError } from './errors.js';
export { VERSION } from './version.js';
export * from './trace/index.js';
export * from './stats/index.js';
export { Supervisor } from './runners/supervisor/index.js';
export type { ChildSpec, ExitInfo, SupervisedChild, SupervisorOptions } from './runners/supervisor/index.js';
export * from './dispatch/index.js';
export * as scenario from './scenario/index.js';
export { loadScenario, runScenario, runTorchPhase, runProbePhase } from './scenario/index.js';
export { renderCharts, renderMarkdown, compareResults, loadResults } from './report/index.js';
export * as energy from './energy/index.js';
export { startSampling, probeEnergySources } from './energy/index.js';
