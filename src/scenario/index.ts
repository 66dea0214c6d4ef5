/** Scenarios: files, arrival processes, the probe and torch drivers, the runner. */
export { scenarioSchema, SCENARIO_SCHEMA, MECHANISMS, MODELS, DEFAULT_ROUNDS, deadlineNs } from './schema.js';
export type { Scenario, ScenarioInput, Task, Arrival, Slo, ProbeWorkload, TorchWorkload, SuccessRow, Form, Mechanism } from './schema.js';
export { loadScenario, parseScenario, cannedScenarios, CANNED_DIR } from './load.js';
export { arrivalTimes, seededRandom } from './arrivals.js';
export { runProbePhase, probeMechanismProblem } from './probe-driver.js';
export { runTorchPhase } from './torch-driver.js';
export { runScenario, planRun } from './runner.js';
export type { RunScenarioOptions, RunScenarioResult, RunEvent } from './runner.js';
export { RESULTS_SCHEMA } from './types.js';
export type { Results, PhaseResult, PhaseRound, RoundTask, TaskResult, TaskSamples, LatencySummaryMs, SloVerdict, SuccessVerdict, PhaseStatus } from './types.js';
export { phaseSpecs, runSchedule } from './rounds.js';
export type { PhaseSpec, PlannedRun } from './rounds.js';
export { kfdGpuSharing } from './host-watch.js';
export type { HostLoadFactory, GpuSharingCheck, GpuSharing, WatchContext } from './host-watch.js';
export { scheduledDurationNs, closedLoopDurationNs, CLOSED_LOOP_CAP } from './min-samples.js';
export { scenarioQuality, ARRIVALS_BEHIND, DRIFT_MARGIN } from './quality.js';
export { scenarioJsonSchema } from './json-schema.js';
