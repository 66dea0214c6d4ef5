/**
 * Training experiments (default, mutation, parallel modes): config files, planning, supervised
 * runs with retries, timeouts and energy, results and summaries. Import only this file.
 */
export * from './types.js';
export {
  DEFAULT_TIMEOUT_S,
  MODES,
  defaultModelsPath,
  experimentFileSchema,
  loadExperiment,
  loadModels,
  modelsFileSchema,
  nameFromFile,
  parseExperiment,
  parseModels,
} from './config.js';
export type { ExperimentFile, ExperimentFormat, ExperimentSpec, HyperparameterSpec, ModelEntry, ModelsFile, Mode } from './config.js';
export { buildArgv } from './command.js';
export { extractMetrics, extractMetricsBounded, METRIC_MATCH_TIMEOUT_MS } from './metrics.js';
export type { BoundedMetrics, BoundedOptions, RefusedMetric } from './metrics.js';
export { missingRepoDirs, planRuns, sanitizeId } from './plan.js';
export { summaryCsv, summaryMarkdown } from './summary.js';
export { DEFAULT_GRACE_MS, attemptLog, jobSucceeded, runJob, runWithRetries } from './job.js';
export type { AttemptsResult, RetryOptions, RunJobOptions } from './job.js';
export { BackgroundLoop } from './background.js';
export type { BackgroundOptions, StartWait } from './background.js';
export { governorFiles, readGovernors, setGovernor } from './governor.js';
export type { GovernorOptions, GovernorSetting } from './governor.js';
export {
  CPU_CSV_HEADER,
  GPU_CSV_HEADER,
  energyMetrics,
  estimateNote,
  startEnergyRecording,
  unavailableEnergyMetrics,
  writeEnergyCsv,
} from './energy-metrics.js';
export type { EnergyRecorder, EnergyRecording, EnergyRecordingOptions, LabelledRecording } from './energy-metrics.js';
export { LAYOUTS, NOTES_BACKGROUND_NOTE, NOTES_COMBINED_NOTE, NOTES_SUCCESS_TEXT, compactTimestamp, experimentSupervisor, loadExperimentPlan, notesNames, notesTimestamp, perfStatText, runExperiment } from './runner.js';
export type { Layout, NotesNames, ExperimentEvent, ExperimentPhase, ExperimentRunOptions, ExperimentRunReport, LoadOptions, LoadedExperiment } from './runner.js';
