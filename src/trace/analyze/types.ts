/**
 * The shape of the queue-usage report (schema gpucolo.queue-usage/1) and the analysis options.
 * Kept apart from the code that fills it in so that readers of the JSON (report-md, perfetto,
 * study) can see the whole contract in one place.
 */
import type { CountStats, Distribution } from '../../stats/index.js';
import type { TraceIssue, TraceOrigin } from '../read.js';
import type { TraceGpu, TraceHeader, TraceQueue } from '../schema.js';
import type { Run } from './series.js';

export const QUEUE_USAGE_SCHEMA = 'gpucolo.queue-usage/1';

export interface AnalyzeOptions {
  /** share of the considered samples that must show the process's most common queue set (default 0.95) */
  stableShare?: number;
  /** samples ignored at a window end that is a lifecycle change (default 1) */
  edgeSamples?: number;
  /** fewest considered samples for a stability verdict (default 2) */
  minSamples?: number;
  /** longest list kept (changes, mismatches, conflicts); the rest is counted in *Omitted (default 50) */
  maxListed?: number;
}

export type Priority = NonNullable<TraceQueue['priority']>;
export type StabilityVerdict = 'stable' | 'unstable' | 'too-few-samples' | 'no-queues';

export interface QueueUsageReport {
  schema: typeof QUEUE_USAGE_SCHEMA;
  gpucoloVersion: string;
  input: ReportInput;
  /** the rules behind every verdict and derived figure, in words, and their parameters */
  rules: ReportRules;
  overall: OverallUsage;
  processes: ProcessUsage[];
  /** per GPU node: active HQD slots per XCC */
  gpus: GpuHqdUsage[];
  /** null unless at least two processes held queues */
  coexistence: Coexistence | null;
  sampling: SamplingQuality;
}

export interface ReportInput {
  path: string;
  format: TraceOrigin['format'];
  times: TraceOrigin['times'];
  costsMeasured: boolean;
  traceSchema: string;
  tracerVersion: string;
  startedAt: string;
  host: TraceHeader['host'];
  sampler: TraceHeader['sampler'];
  impl: TraceHeader['impl'];
  sources: TraceHeader['sources'];
  readable: TraceHeader['readable'];
  intervalNs: number;
  debugfsIntervalNs: number;
  target: TraceHeader['target'];
  gpus: TraceGpu[];
  /** t_ns of the first and last sample */
  firstSampleNs: number | null;
  lastSampleNs: number | null;
  /** the footer was written (the tracer finished); null for dumps, which have no footer */
  complete: boolean | null;
  endedBy: string | null;
  /** conversion assumptions (dumps) and other remarks about the input */
  notes: string[];
}

export interface ReportRules {
  stableShare: number;
  edgeSamples: number;
  minSamples: number;
  queueListSamples: string;
  window: string;
  stable: string;
  setChanges: string;
  mapping: string;
  slotChange: string;
  xccDistribution: string;
  lifecycle: string;
  coexistence: string;
  percentiles: string;
}

export interface OverallUsage {
  processes: number;
  processesWithQueues: number;
  distinctQueues: number;
  /** total queues of all processes in each sample that lists queues */
  queueCount: CountStats;
  /** what the samples up to the 'baseline-end' marker showed; null without that marker */
  baseline: { endNs: number; samples: number; maxQueues: number | null; pidsWithQueues: number[] } | null;
}

export interface QueueSetChange {
  t_ns: number;
  seq: number;
  added: string[];
  removed: string[];
}

export interface ProcessUsage {
  pid: number;
  nsPid: number | null;
  /** named by the trace's target (pids mode) or by a marker */
  targeted: boolean;
  presentAtBaseline: boolean;
  firstSeenNs: number;
  lastSeenNs: number;
  /** process-started event; null when the process existed when the trace began */
  startedNs: number | null;
  /** process-exited event, else the first sample without it; null when it outlived the trace */
  exitedNs: number | null;
  samplesPresent: number;
  queueCount: {
    /** every sample that lists queues while the process was present */
    whilePresent: CountStats;
    /** the considered samples of the stability window */
    steady: CountStats;
    runs: Run<number>[];
    runsOmitted: number;
  };
  queueSet: {
    verdict: StabilityVerdict;
    /** share of considered samples showing the most common set; null without considered samples */
    share: number | null;
    window: { fromNs: number; toNs: number; samples: number } | null;
    considered: number;
    /** the most common set of queue keys among the considered samples */
    modal: string[];
    distinctSets: number;
    changed: boolean;
    changes: QueueSetChange[];
    changesOmitted: number;
  };
  /** every queue key seen, in order of appearance */
  keys: string[];
  queues: QueueUsage[];
  lifecycle: ProcessLifecycle;
}

export interface PriorityChange {
  t_ns: number;
  seq: number;
  from: Priority;
  to: Priority;
}

export interface QueueUsage {
  key: string;
  pid: number;
  /** KFD queue ids seen for this key (sysfs); empty without sysfs */
  qids: number[];
  type: string;
  gpuId: string | null;
  node: number | null;
  firstSeenNs: number;
  lastSeenNs: number;
  samplesPresent: number;
  /** times the queue vanished and came back under the same key */
  gaps: number;
  /** when it was created: the queue-created event, else the first sample showing it; null if it predates the trace */
  createdNs: number | null;
  /** queue-destroyed event, else the first sample without it; null while it lived at the end */
  destroyedNs: number | null;
  presentAtEnd: boolean;
  /** destroyed - created; null when either end is outside the trace (see observedNs) */
  lifetimeNs: number | null;
  /** last seen - first seen: a lower bound of the lifetime */
  observedNs: number;
  priority: { initial: Priority | null; final: Priority | null; changes: PriorityChange[] };
  /** compute queues with HQD data */
  mapping: QueueMapping | null;
  /** SDMA queues: the engine/RLC they were seen on */
  sdma: { rlcs: string[]; samples: number; activeSamples: number } | null;
  timing: QueueTiming;
}

export interface QueueTiming {
  /** createdNs - the process's start reference */
  createdAfterStartNs: number | null;
  /** the created time is only known to lie within this many ns before it (sampling gap) */
  createdResolutionNs: number | null;
  destroyedAfterStopNs: number | null;
  destroyedAfterExitNs: number | null;
  destroyedResolutionNs: number | null;
}

export interface MappingMismatch {
  t_ns: number;
  seq: number;
  kind: 'partial' | 'split-slots' | 'inst-out-of-range' | 'duplicate-inst';
  detail: string;
}

export interface QueueMapping {
  /** XCCs of the queue's GPU from the trace header; null when the GPU is not in the header */
  numXcc: number | null;
  /** samples with HQD data for this queue */
  samples: number;
  /** number of XCCs with an active HQD slot of this queue, per sample */
  activeXccs: CountStats & { histogram: Record<string, number> };
  /** samples active on exactly numXcc XCCs */
  fullyMappedSamples: number;
  unmappedSamples: number;
  /** every sample with active slots had the same (pipe, queue) on all of them; null if never mapped */
  sameSlotOnAllXccs: boolean | null;
  /** slot history: "pipe/queue" when one slot on all XCCs, else "inst:pipe/queue ...", or "unmapped" */
  slots: Run<string>[];
  slotsOmitted: number;
  /** distinct mapped slot signatures */
  slotsUsed: string[];
  slotChanges: number;
  mismatches: MappingMismatch[];
  mismatchesOmitted: number;
}

export interface TimeRef {
  kind: 'command-started' | 'process-started' | 'stop-signal' | 'command-exited' | 'process-exited';
  t_ns: number;
}

export interface ProcessLifecycle {
  startRef: TimeRef | null;
  stopRef: TimeRef | null;
  exitRef: TimeRef | null;
  /** creation times of queues made during the trace, grouped by the sample that showed them */
  creationBatches: { t_ns: number; afterStartNs: number | null; queues: string[] }[];
  firstQueueAfterStartNs: number | null;
  lastQueueAfterStartNs: number | null;
  /** the last queue-destroyed time when every queue was destroyed within the trace */
  allDestroyedNs: number | null;
  allDestroyedAfterStopNs: number | null;
  allDestroyedAfterExitNs: number | null;
  queuesAtEnd: number;
}

export interface GpuHqdUsage {
  /** null: node unknown (a GPU a plain dump showed in mqds only); nothing is counted for it */
  node: number | null;
  gpuId: string;
  numXcc: number;
  /** samples with HQD data that showed this node */
  samples: number;
  /** per XCC over the samples that showed it (`samples`): an XCC a dump did not show is unknown there, not 0 active */
  perXcc: { inst: number; samples: number; active: CountStats }[];
  /** active slots of no queue in the trace */
  unmatched: CountStats;
  /** samples in which not every XCC read had the same number of active slots */
  unbalancedSamples: number;
  /** Inst numbers seen that are >= numXcc */
  instsOutOfRange: number[];
}

export interface CoexistenceConflict {
  t_ns: number;
  seq: number;
  kind: 'queue' | 'hqd-slot' | 'sdma-rlc';
  /** the shared thing: "gpu|mqd", "node|inst/pipe/queue", "gpu|engine/rlc" */
  what: string;
  holders: string[];
}

export interface Coexistence {
  pids: number[];
  /** samples in which at least two of them held queues */
  samplesTogether: number;
  queuesDisjoint: boolean;
  hqdSlotsDisjoint: boolean;
  sdmaDisjoint: boolean;
  conflicts: CoexistenceConflict[];
  conflictsOmitted: number;
  /** KFD queue ids used by several processes at once (normal: ids are per process) */
  qidsShared: number[];
  /** in every sample together: distinct queues on the device == sum of per-process counts */
  totalEqualsSum: boolean;
  totalMismatches: { t_ns: number; seq: number; total: number; sum: number }[];
  steadyCounts: { pid: number; count: number | null }[];
  sameSteadyCount: boolean | null;
}

export interface SamplingQuality {
  samples: number;
  debugfsSamples: number;
  /** samples that list queues (see rules.queueListSamples) */
  queueListSamples: number;
  /** debugfs samples whose mqds / hqds text was not whole (cut, appended twice, broken): their queue list / HQD data is unknown */
  incompleteSamples: { mqds: number; hqds: number };
  spanNs: number | null;
  /** actual - intended; null when the input has no intended times (dumps) */
  jitterNs: Distribution | null;
  costs: {
    read: Distribution;
    /** over the samples that parsed debugfs text only; null when none did */
    parse: Distribution | null;
    /** debugfs samples that parsed (parse_ns > 0) */
    parsedSamples: number;
    /** debugfs samples that parsed nothing because no debugfs file had changed (parse_ns 0) */
    unchangedSamples: number;
    join: Distribution;
    debugfsRead: Distribution | null;
    sysfsRead: Distribution | null;
    /** of read + parse: wall time inside file-system calls (the kernel's side); null in traces that do not record it */
    io: Distribution | null;
    /** the sampling thread's CPU per sample (read and parse: its own work plus the system time of its reads); null when not recorded */
    readCpu: Distribution | null;
    /** sum of read CPU over the span, as a share of one core (0.01 = 1%); null when not recorded */
    readCpuShare: number | null;
    /**
     * gpucolo's whole CPU (sampling thread + JS thread: objects, join, events, the record) over the
     * span, from the samples' running totals, as a share of one core; null when not recorded
     */
    cpuShare: number | null;
    /**
     * gpucolo's own work over the same span: cpuShare less the wall time its samples spent in
     * file-system calls (the kernel's side of the reads), as a share of one core; null unless
     * every sample of the span records both, or where the calls took longer than the CPU (reads
     * that waited: own work cannot be told apart then)
     */
    ownShare: number | null;
  } | null;
  /** why jitter/costs are null */
  unmeasured: string | null;
  missedIntervals: number;
  footerMissedIntervals: number | null;
  seqGaps: number;
  sampleIssues: { samples: number; total: number; top: { message: string; count: number }[] };
  traceIssues: TraceIssue[];
  traceIssuesOmitted: number;
  sourceChanges: { t_ns: number; marker: string; source: string | null; detail: string | null }[];
  /** the footer was written; null for dumps */
  complete: boolean | null;
  endedBy: string | null;
}
