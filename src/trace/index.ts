/** The queue tracer: sampling, recording, events, reading traces and plain dumps, analysis, exports. */
export { runTrace, MIN_INTERVAL_NS, MAX_INTERVAL_NS, debugfsEvery, effectiveTailNs } from './tracer.js';
export type { TraceOptions, TraceResult } from './tracer.js';
export { startSampler } from './sampler.js';
export type { Sampler, SamplerOptions, RawSample } from './sampler.js';
export { EventDeriver } from './events.js';
export { TraceRecorder, TraceWriteError } from './recorder.js';
export { ListenError, TraceExporter, httpUrl, parseListen, requestPath } from './exporter.js';
export * from './schema.js';
export { readTrace, loadTrace, traceHeaderSchema } from './read.js';
export type { Trace, TraceIssue, TraceOrigin, ReadTraceOptions } from './read.js';
export { readDumpDir, classifyDumpName, DEFAULT_DUMP_INTERVAL_NS } from './dumps.js';
export { queueKey } from './assemble.js';
export type { DumpFile, ReadDumpDirOptions } from './dumps.js';
export { analyzeTrace, QUEUE_USAGE_SCHEMA, slotSignature } from './analyze/index.js';
export type {
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
} from './analyze/index.js';
export { renderMarkdown, writeMarkdownReport, writeFileAtomic, fmtCount, fmtDist, fmtNs, fmtPriority, fmtT } from './report-md.js';
export { toPerfetto, writePerfetto, GPU_PID_BASE, MARKERS_PID } from './perfetto.js';
export type { ChromeTrace, ChromeTraceEvent } from './perfetto.js';
export { runStudy, compareRuns, studyProcesses, studyCriteria, STUDY_SCHEMA, DEFAULT_TOLERANCE, DEFAULT_IDENTIFY_WITHIN_NS } from './study.js';
export type { StudyOptions, StudyReport, StudyRun, StudyProcess, StudyAspect, StudyCriteria, StudyVerdicts, StudyConclusions, Verdict } from './study.js';
