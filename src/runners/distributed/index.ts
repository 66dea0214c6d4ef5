/**
 * Distributed training runner: workloads/dist_train.py (ddp, hand-written all-reduce, parameter
 * server) launched by torchrun or by gpucolo's own direct rank launcher, supervised (process
 * groups, run registry, timeout, a failing rank stops the job), then compared and analyzed
 * (tables, performance_report.txt/.md, plots). Import only this file.
 */
export {
  DIST_RESULT_SCHEMA,
  DIST_RUN_SCHEMA,
  METHODS,
  PS_IMPLS,
  PS_TOPOLOGIES,
  distributedResultSchema,
  RESULT_FORMAT_TEXT,
  listResultFiles,
  loadAnyResult,
  loadDistributedResult,
  manifestFileName,
  methodOfFile,
  parseDistributedResult,
  resultFileName,
  scriptSeconds,
} from './schema.js';
export type { DistMethod, DistributedEpoch, DistributedResult, DistributedSummary, LoadedResult, PsImpl, PsTopologyName, ResultFormat } from './schema.js';
export {
  DEFAULT_PYTHON,
  LAUNCHERS,
  PROBE_CODE,
  TORCHRUN_BROKEN,
  chooseLauncher,
  defaultPython,
  defaultScriptPath,
  directRankEnv,
  freePort,
  parseEndpoint,
  probeTorchrun,
  torchrunArgv,
} from './launcher.js';
export type { ChooseLauncherOptions, LauncherChoice, LauncherName, LauncherRequest, TorchrunArgvOptions, TorchrunProbe } from './launcher.js';
export { DEFAULT_DIST_GRACE_MS, DEFAULT_EXIT_GRACE_MS, checkPorts, distributedSupervisor, logTail, runDistributed, trainArgs, validateRun } from './run.js';
export type { DistributedEvent, DistributedLaunchOptions, DistributedRunOptions, DistributedRunResult, DistributedTrainOptions, ProcessOutcome, ValidatedRun } from './run.js';
export { compareDistributed, roundDir } from './compare.js';
export type { DistributedCompareOptions, DistributedCompareResult } from './compare.js';
export { runRounds } from './rounds.js';
export type { RoundRun, RoundVariant, RoundsOutcome, RunRoundsOptions } from './rounds.js';
export {
  DIST_ROUNDS_SCHEMA,
  ROUNDS_FILES,
  ROUNDS_TOLERANCE,
  loadRoundsSummary,
  pairedRatios,
  qualityLines,
  roundsMarkdown,
  roundsQuality,
  roundsText,
  summarizeRounds,
  targetVerdict,
  writeRoundsReport,
} from './rounds-summary.js';
export type { DistFigures, DistRoundFigures, DistVariantSummary, DistributedRoundsSummary, TargetVerdict } from './rounds-summary.js';
export { reapedChildrenTicks, runHostLoadWindow, withReapedChildren } from './host-load.js';
export { AXIS_FORMATS, PLOT_NAMES, analyzeDistributed, barLabel, commRows, comparisonRows, loadResultsDir, plotSpecs, readLines, reportMarkdown, reportText, resultData, timeUnit, topologyLines } from './analyze.js';
export type { AnalyzeOptions, AnalyzedResult, CommRow, ComparisonRow, DistributedAnalysis, PsTopology, ResultData } from './analyze.js';
export { METHOD_DISPLAY, methodOfDisplayName, notesResultSchema, parseNotesResult, replaceElided } from './notes-format.js';
export type { NotesResult } from './notes-format.js';
