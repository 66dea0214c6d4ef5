/**
 * Scenarios: the `scenario` namespace of the package entry (src/index.ts, README "## Library").
 *
 * A curated list, not the area's modules whole: what a library user needs to load a scenario (a
 * file, a canned name, or YAML text), run it, and know the vocabulary and schema ids of the files.
 * The drivers, the round scheduler, the quality and host-watch helpers, the zod schema objects and
 * the JSON-schema builder (the package ships schema/*.json) stay in their modules. Code inside
 * gpucolo imports those modules directly, never this file, so a name here is only ever here for
 * library users: adding one is a public API change (test/api-surface.test.ts).
 */
export { SCENARIO_SCHEMA, MECHANISMS, MODELS } from './schema.js';
export type { Scenario, ScenarioInput, Task, Arrival, Slo, ProbeWorkload, TorchWorkload, SuccessRow, Form, Mechanism } from './schema.js';
export { loadScenario, parseScenario, cannedScenarios } from './load.js';
export { runScenario } from './runner.js';
export type { RunScenarioOptions, RunScenarioResult, RunEvent } from './runner.js';
// the types of RunScenarioOptions' injection points (hostLoad, gpuSharing)
export type { HostLoadFactory, GpuSharingCheck, GpuSharing, WatchContext } from './host-watch.js';
export { RESULTS_SCHEMA } from './types.js';
export type { Results, PhaseResult, PhaseRound, RoundTask, TaskResult, TaskSamples, LatencySummaryMs, SloVerdict, SuccessVerdict, PhaseStatus, PreemptionLatency } from './types.js';
