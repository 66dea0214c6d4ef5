/**
 * Distributed training: the `distributed` namespace of the package entry (src/index.ts, README
 * "## Library"). workloads/dist_train.py (ddp, hand-written all-reduce, parameter server) launched
 * by torchrun or by gpucolo's own direct rank launcher, supervised, compared over rounds and
 * analyzed (tables, performance_report.txt/.md, plots).
 *
 * A curated list, not the area's modules whole: what a library user needs to run, compare and
 * analyze, to read the result files (either format) and the rounds summary, and the vocabulary and
 * schema ids of the options and files. The launcher's probes and argv builders, the supervisor,
 * the rounds engine, the report formatters and plot specs and the zod schema objects stay in their
 * modules. Code inside gpucolo imports those modules directly, never this file, so a name here is
 * only ever here for library users: adding one is a public API change (test/api-surface.test.ts).
 */
export { DIST_RESULT_SCHEMA, DIST_RUN_SCHEMA, METHODS, PS_IMPLS, PS_TOPOLOGIES, listResultFiles, loadAnyResult, loadDistributedResult, parseDistributedResult } from './schema.js';
export type { DistMethod, DistributedEpoch, DistributedResult, DistributedSummary, LoadedResult, PsImpl, PsTopologyName, ResultFormat } from './schema.js';
export type { NotesResult } from './notes-format.js';
export { LAUNCHERS } from './launcher.js';
export type { LauncherChoice, LauncherName, LauncherRequest } from './launcher.js';
export { runDistributed } from './run.js';
export type { DistributedEvent, DistributedLaunchOptions, DistributedRunOptions, DistributedRunResult, DistributedTrainOptions, ProcessOutcome } from './run.js';
export { compareDistributed } from './compare.js';
export type { DistributedCompareOptions, DistributedCompareResult } from './compare.js';
export type { RoundRun } from './rounds.js';
export { DIST_ROUNDS_SCHEMA, loadRoundsSummary } from './rounds-summary.js';
export type { DistFigures, DistRoundFigures, DistVariantSummary, DistributedRoundsSummary } from './rounds-summary.js';
export { analyzeDistributed } from './analyze.js';
export type { AnalyzeOptions, AnalyzedResult, CommRow, ComparisonRow, DistributedAnalysis, PsTopology, ResultData } from './analyze.js';
