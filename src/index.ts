/**
 * gpucolo's public API: what `import ... from 'gpucolo'` gives (README "## Library").
 *
 * Every name here is deliberate: test/api-surface.test.ts holds the list of run-time names, so a
 * change to this file is a change to that list and to the README's Library section. Helpers the
 * commands use internally stay in their modules; no `export *` of a whole area here. The four
 * namespaces (scenario, experiment, distributed, energy) are `export * as` of their barrels, and
 * each barrel is itself a curated list of named exports (its members are in the same test), not
 * its area's modules whole.
 */

// ---- the package: version, errors, native core, doctor
export { VERSION } from './version.js';
export { GpucoloError } from './errors.js';
export { nativeReport } from './native.js';
export type { Impl, NativeReport, NativeLoadError, PluginProbe } from './native.js';
export { doctor } from './doctor.js';
export type { DoctorReport, DoctorOptions } from './doctor.js';

// ---- KFD: parsers, sysfs readers, the queue model, snapshots (gpucolo queues), priorities
export {
  parseMqds,
  parseHqds,
  parseRls,
  parseMqdsRaw,
  parseHqdsRaw,
  parseRlsRaw,
  readTopology,
  readKfdProcs,
  joinQueues,
  snapshot,
  verifyOwnQueues,
  planKfdPriority,
  updateQueue,
} from './kfd/index.js';
export type {
  JoinInput,
  JoinResult,
  QidMatch,
  SnapshotHqd,
  SnapshotNode,
  SnapshotProcess,
  SnapshotQueue,
  SnapshotSdmaSlot,
  SnapshotXcc,
  UnmatchedHqd,
  QueueSnapshot,
  SnapshotIssue,
  SnapshotOptions,
  SourceName,
  SourceStatus,
  UpdateQueueOptions,
  UpdateQueueSent,
  KfdIoctlError,
  HipPriority,
  RocrGeneration,
  KfdPriority,
  ExpectedStream,
  VerifyOwnQueuesOptions,
  OwnQueue,
  LevelVerdict,
  OwnQueuesReport,
  PlanKfdPriorityOptions,
  PlanRefusal,
  KfdPriorityPlan,
  KfdPriorityPlanOk,
  KfdPriorityPlanRefused,
  MqdsRaw,
  HqdsRaw,
  RlsRaw,
  TopologyRaw,
  ProcsRaw,
  ReadIssue,
  ParseIssue,
  Severity,
} from './kfd/index.js';
export type * from './kfd/types.js';

// ---- dispatch: runs, backends, probes (gpucolo probe), the KFD check
export { runDispatch, listBackends, DispatchError, probeLatency, probePriority, kfdCheck } from './dispatch/index.js';
export type {
  DispatchRun,
  DispatchSpecInput,
  StreamLaunches,
  RunDispatchOptions,
  ClockCheck,
  Backend,
  LatencyProbeOptions,
  LatencyProbeResult,
  PriorityProbeOptions,
  PriorityProbeResult,
  CoRunResult,
  SkippedCoRun,
  ClockSummary,
  KfdCheckOptions,
  KfdCheckResult,
  KfdSetResult,
} from './dispatch/index.js';

// ---- trace: record (gpucolo trace), read, analyze (gpucolo analyze), export, study
export {
  runTrace,
  readTrace,
  loadTrace,
  readDumpDir,
  analyzeTrace,
  renderMarkdown as renderTraceMarkdown,
  toPerfetto,
  writePerfetto,
  runStudy,
} from './trace/index.js';
export type {
  TraceOptions,
  TraceResult,
  Trace,
  TraceIssue,
  TraceOrigin,
  ReadTraceOptions,
  DumpFile,
  ReadDumpDirOptions,
  AnalyzeOptions,
  QueueUsageReport,
  ReportInput,
  ReportRules,
  OverallUsage,
  ProcessUsage,
  QueueUsage,
  QueueMapping,
  QueueTiming,
  QueueSetChange,
  MappingMismatch,
  PriorityChange,
  ProcessLifecycle,
  TimeRef,
  GpuHqdUsage,
  Coexistence,
  CoexistenceConflict,
  SamplingQuality,
  StabilityVerdict,
  Run,
  ChromeTrace,
  ChromeTraceEvent,
  StudyOptions,
  StudyReport,
  StudyRun,
  StudyProcess,
  StudyAspect,
  StudyCriteria,
  StudyVerdicts,
  StudyConclusions,
} from './trace/index.js';
export type * from './trace/schema.js';

// ---- scenarios (gpucolo run) and their reports (report.md, charts, gpucolo compare)
export * as scenario from './scenario/index.js';
export { loadScenario, runScenario } from './scenario/index.js';
export type {
  Scenario,
  ScenarioInput,
  RunScenarioOptions,
  RunScenarioResult,
  RunEvent,
  Results,
  PhaseResult,
  TaskResult,
} from './scenario/index.js';
export { renderMarkdown, renderCharts, compareResults, loadResults } from './report/index.js';
export type { ChartLink, ChartFile, RenderOptions, Comparison, CompareRow, CompareMissing, CompareSuccess, MetricPair, LatencyPair, P99Change } from './report/index.js';

// ---- tune (gpucolo tune)
export { tuneScenario } from './tune/index.js';
export type { TuneOptions, TuneEvent, TuneRunResult, TuneResult } from './tune/index.js';

// ---- runners: experiments, distributed training, staged pipelines
export * as experiment from './runners/experiment/index.js';
export { loadExperimentPlan, runExperiment } from './runners/experiment/index.js';
export type { ExperimentEvent, ExperimentRunOptions, ExperimentRunReport, LoadOptions, LoadedExperiment } from './runners/experiment/index.js';
export * as distributed from './runners/distributed/index.js';
export { runDistributed, compareDistributed, analyzeDistributed } from './runners/distributed/index.js';
export type {
  DistributedEvent,
  DistributedRunOptions,
  DistributedRunResult,
  DistributedCompareOptions,
  DistributedCompareResult,
  DistributedAnalysis,
  DistributedResult,
} from './runners/distributed/index.js';
export { runStaged, planStaged, planPipeline, loadPipeline } from './runners/staged/index.js';
export type { RunStagedOptions, StagedEvent, StagedReport, Strategy, StrategyChoice, RemainingWork, Pipeline, PipelineInput, Plan, PlanInput } from './runners/staged/index.js';

// ---- statistics
export { quantiles, quantileOf, distribution, confidenceRanks, summarizeLatencyMs, jainIndex, minSamplesForCi, percentileSampleSize } from './stats/index.js';
export type { Quantile, QuantileSummary, Distribution, LatencySummaryMs, SloVerdict, DeadlineCount, PercentileSampleSize } from './stats/index.js';

// ---- energy: utilisation, power, energy and temperature
export * as energy from './energy/index.js';
export { startSampling, probeEnergySources } from './energy/index.js';
export type { EnergyOptions, SamplingOptions, EnergySampling } from './energy/index.js';
export type { EnergySourceName, EnergySourceProbe, EnergyDevice, EnergySample, SamplingSummary, SourceSummary } from './energy/index.js';
