/**
 * Queue-usage analysis of a trace (a gpucolo JSONL trace or converted plain dumps): answers the
 * questions of the original queue-usage experiment — how many queues a model creates, what they
 * are, where they land in hardware (MQD -> HQD per XCC), whether the set is stable, when queues
 * appear and go relative to the program's start and stop, whether co-located models share
 * anything — and says how good the sampling behind those answers was.
 *
 * Every figure is computed from the trace; when the trace cannot support a figure the field is
 * null and a note or caveat says why. The rules used are written into `report.rules`.
 *
 * This is the module's entry: other modules import from here, not from the files behind it.
 */
export { analyzeTrace } from './report.js';
export { QUEUE_USAGE_SCHEMA } from './types.js';
export type {
  AnalyzeOptions,
  Priority,
  StabilityVerdict,
  QueueUsageReport,
  ReportInput,
  ReportRules,
  OverallUsage,
  QueueSetChange,
  ProcessUsage,
  PriorityChange,
  QueueUsage,
  QueueTiming,
  MappingMismatch,
  QueueMapping,
  TimeRef,
  ProcessLifecycle,
  GpuHqdUsage,
  CoexistenceConflict,
  Coexistence,
  SamplingQuality,
} from './types.js';
export { runs, mode, type Run } from './series.js';
export { listsQueues } from './context.js';
export { sameQueueState, sameSampleState, mapChanged } from './unchanged-samples.js';
export { slotSignature } from './mapping.js';
export { hasHqdData } from './gpus.js';
