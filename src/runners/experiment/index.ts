/**
 * Training experiments (default, mutation, parallel modes): the `experiment` namespace of the
 * package entry (src/index.ts, README "## Library").
 *
 * A curated list, not the area's modules whole: what a library user needs to read and plan the
 * experiment and models files, run the plan (supervised, with retries, timeouts and energy), know
 * the result schema id, and match a log's metrics the way the runner does. The job runner,
 * background loops, governors, energy recording, the notes layout's names and texts, the
 * summaries' formatters and the zod schema objects stay in their modules. Code inside gpucolo
 * imports those modules directly, never this file, so a name here is only ever here for library
 * users: adding one is a public API change (test/api-surface.test.ts).
 */
export type { HyperValue, Hyperparameters, JobOutcome, EnergyMetrics, ForegroundResult, BackgroundInfo, ExperimentResult, JobSpec, PlannedRun } from './types.js';
export { EXPERIMENT_RESULT_SCHEMA } from './types.js';
export { MODES, defaultModelsPath, loadExperiment, loadModels, parseExperiment, parseModels } from './config.js';
export type { ExperimentFile, ExperimentFileInput, ExperimentFormat, ExperimentSpec, HyperparameterSpec, ModelEntry, ModelsFile, ModelsFileInput, Mode } from './config.js';
export { planRuns } from './plan.js';
export type { PlanOptions } from './plan.js';
export { extractMetrics, extractMetricsBounded } from './metrics.js';
export type { BoundedMetrics, BoundedOptions, RefusedMetric } from './metrics.js';
export { LAYOUTS, loadExperimentPlan, runExperiment } from './runner.js';
export type { Layout, ExperimentEvent, ExperimentPhase, ExperimentRunOptions, ExperimentRunReport, LoadOptions, LoadedExperiment } from './runner.js';
