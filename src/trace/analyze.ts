/**
 * Queue-usage analysis of a trace (a gpucolo JSONL trace or converted plain dumps): answers the
 * questions of the original queue-usage experiment — how many queues a model creates, what they
 * are, where they land in hardware (MQD -> HQD per XCC), whether the set is stable, when queues
 * appear and go relative to the program's start and stop, whether co-located models share
 * anything — and says how good the sampling behind those answers was.
 *
 * Every figure is computed from the trace; when the trace cannot support a figure the field is
 * null and a note or caveat says why. The rules used are written into `report.rules`.
 */
import { VERSION } from '../version.js';
import { PERCENTILE_RULE, countStats, distribution, type CountStats, type Distribution } from '../stats/index.js';
import type { Trace, TraceIssue, TraceOrigin } from './read.js';
import type { TraceEvent, TraceGpu, TraceHeader, TraceMarker, TraceQueue, TraceSample } from './schema.js';

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

/** Run-length encoding of a series: consecutive equal values become one run. */
export interface Run<T> {
  value: T;
  fromNs: number;
  /** time of the last sample of the run */
  toNs: number;
  samples: number;
}

export function runs<T>(points: readonly { t: number; value: T }[], same: (a: T, b: T) => boolean = (a, b) => a === b): Run<T>[] {
  const out: Run<T>[] = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (last && same(last.value, p.value)) {
      last.toNs = p.t;
      last.samples++;
    } else out.push({ value: p.value, fromNs: p.t, toNs: p.t, samples: 1 });
  }
  return out;
}

/** The most frequent value and how often it occurs (ties: the one seen first). */
export function mode<T>(values: readonly T[], id: (v: T) => string = String): { value: T; count: number } | null {
  const counts = new Map<string, { value: T; count: number }>();
  for (const v of values) {
    const k = id(v);
    const c = counts.get(k);
    if (c) c.count++;
    else counts.set(k, { value: v, count: 1 });
  }
  let best: { value: T; count: number } | null = null;
  for (const c of counts.values()) if (!best || c.count > best.count) best = c;
  return best;
}

// ------------------------------------------------------------------------------------ report types

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
  node: number;
  gpuId: string;
  numXcc: number;
  /** samples with HQD data */
  samples: number;
  perXcc: { inst: number; active: CountStats }[];
  /** active slots of no queue in the trace */
  unmatched: CountStats;
  /** samples in which not every XCC had the same number of active slots */
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
  spanNs: number | null;
  /** actual - intended; null when the input has no intended times (dumps) */
  jitterNs: Distribution | null;
  costs: { read: Distribution; parse: Distribution; join: Distribution; debugfsRead: Distribution | null; sysfsRead: Distribution | null } | null;
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

// ------------------------------------------------------------------------------------ rules

function rulesText(o: Required<AnalyzeOptions>): ReportRules {
  const pct = `${Math.round(o.stableShare * 1000) / 10}%`;
  return {
    stableShare: o.stableShare,
    edgeSamples: o.edgeSamples,
    minSamples: o.minSamples,
    queueListSamples: 'queue counts and sets use the samples that list queues: every sample when sysfs was readable, else the samples that read debugfs',
    window: `a process's window runs from the first sample showing one of its queues to the last sample showing the process; ${o.edgeSamples} sample(s) are dropped at an end that is a lifecycle change (queues appearing during the trace, the process exiting during the trace)`,
    stable: `stable = the most common set of queue keys appears in >= ${pct} of the considered window samples (at least ${o.minSamples}); fewer considered samples: too-few-samples`,
    setChanges: 'a set change is a sample whose queue keys differ from the previous sample that listed queues',
    mapping: "per compute queue and sample with HQD data: the XCCs with an active slot (CP_HQD_ACTIVE) holding the queue's MQD, checked against the GPU's numXcc from the trace header; partial = active on some but not all XCCs; split-slots = different (pipe, queue) on different XCCs",
    slotChange: 'a slot change is a mapped sample whose slot signature differs from the previous mapped sample (unmapped gaps in between do not count)',
    xccDistribution: 'active HQD slots per XCC count the queues in the trace plus unmatched active slots; in a trace of selected pids, other processes\' slots are not recorded',
    lifecycle: "start reference = the latest 'command-started' marker at or before the process was first seen, else its process-started event; stop/exit = the first 'stop-signal' / 'command-exited' marker after the start reference (exit falls back to the process-exited event). Created/destroyed times are those of the sample that first showed the change, so the true time lies up to one sampling gap earlier (the *ResolutionNs fields)",
    coexistence: 'for every sample in which two or more processes held queues: no MQD (gpu, address) in two processes, no active HQD slot (node, inst, pipe, queue) or SDMA RLC held by two queues, and distinct device queues == sum of per-process counts',
    percentiles: PERCENTILE_RULE,
  };
}

// ------------------------------------------------------------------------------------ helpers

/** Everything the analysis needs about the trace, indexed once. */
interface Ctx {
  trace: Trace;
  opts: Required<AnalyzeOptions>;
  /** samples that list queues, in order */
  listing: TraceSample[];
  gpuById: Map<string, TraceGpu>;
  gpuByNode: Map<number, TraceGpu>;
  eventsByKey: Map<string, TraceEvent[]>;
  eventsByPid: Map<number, TraceEvent[]>;
  baselineEndNs: number | null;
}

const DEFAULTS: Required<AnalyzeOptions> = { stableShare: 0.95, edgeSamples: 1, minSamples: 2, maxListed: 50 };

function groupBy<T, K>(items: readonly T[], key: (t: T) => K | undefined): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const it of items) {
    const k = key(it);
    if (k === undefined) continue;
    let l = out.get(k);
    if (!l) out.set(k, (l = []));
    l.push(it);
  }
  return out;
}

/** A sample lists every queue when sysfs was readable; otherwise only when it read debugfs. */
export function listsQueues(s: TraceSample, header: TraceHeader): boolean {
  return s.debugfs || header.readable.includes('sysfs');
}

/** Keeps at most `max` items and counts the rest. */
function capped<T>(items: T[], max: number): [T[], number] {
  return items.length > max ? [items.slice(0, max), items.length - max] : [items, 0];
}

function buildCtx(trace: Trace, opts: Required<AnalyzeOptions>): Ctx {
  const baseline = trace.markers.find((m) => m.marker === 'baseline-end');
  return {
    trace,
    opts,
    listing: trace.samples.filter((s) => listsQueues(s, trace.header)),
    gpuById: new Map(trace.header.gpus.map((g) => [g.gpuId, g])),
    gpuByNode: new Map(trace.header.gpus.map((g) => [g.node, g])),
    eventsByKey: groupBy(trace.events, (e) => e.key),
    eventsByPid: groupBy(trace.events, (e) => e.pid),
    baselineEndNs: baseline ? baseline.t_ns : null,
  };
}

const isCompute = (q: Pick<TraceQueue, 'type'>): boolean => q.type === 'compute' || q.type === 'diq';
const samePriority = (a: Priority, b: Priority): boolean => a.pipe === b.pipe && a.queue === b.queue;

function gpuOf(ctx: Ctx, q: Pick<TraceQueue, 'gpuId' | 'node'>): TraceGpu | null {
  return (q.gpuId !== null ? ctx.gpuById.get(q.gpuId) : undefined) ?? (q.node !== null ? ctx.gpuByNode.get(q.node) : undefined) ?? null;
}

// ------------------------------------------------------------------------------------ unchanged samples
// Consecutive samples are nearly always identical. Comparing them number by number is far cheaper
// than rebuilding sets and strings for each, so per-sample results are reused while nothing changed.

function sameTuples(a: readonly (readonly number[])[] | null, b: readonly (readonly number[])[] | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/** Same hardware-relevant state: identity, placement and priority of one queue. */
export function sameQueueState(a: TraceQueue, b: TraceQueue): boolean {
  return (
    a.key === b.key &&
    a.qid === b.qid &&
    a.mqd === b.mqd &&
    a.gpuId === b.gpuId &&
    a.node === b.node &&
    sameTuples(a.hqds, b.hqds) &&
    sameTuples(a.sdma ? [a.sdma] : null, b.sdma ? [b.sdma] : null)
  );
}

/** Same processes, same queues in the same states, same unmatched HQDs, same debugfs flag. */
export function sameSampleState(a: TraceSample, b: TraceSample): boolean {
  if (a.debugfs !== b.debugfs || a.processes.length !== b.processes.length || !sameTuples(a.unmatchedHqds, b.unmatchedHqds)) return false;
  for (let i = 0; i < a.processes.length; i++) {
    const p = a.processes[i];
    const q = b.processes[i];
    if (p.pid !== q.pid || p.queues.length !== q.queues.length) return false;
    for (let j = 0; j < p.queues.length; j++) if (!sameQueueState(p.queues[j], q.queues[j])) return false;
  }
  return true;
}

/** f over the samples, computed again only when a sample's state differs from the one before. */
export function mapChanged<T>(samples: readonly TraceSample[], f: (s: TraceSample) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < samples.length; i++) {
    out.push(i > 0 && sameSampleState(samples[i - 1], samples[i]) ? out[i - 1] : f(samples[i]));
  }
  return out;
}

// ------------------------------------------------------------------------------------ per process

/** One process in one listing sample (absent: the process was not listed). */
interface ProcPoint {
  sample: TraceSample;
  present: boolean;
  nsPid: number | null;
  queues: TraceQueue[];
}

function pointsOf(ctx: Ctx, pid: number): ProcPoint[] {
  return ctx.listing.map((sample) => {
    const p = sample.processes.find((x) => x.pid === pid);
    return { sample, present: !!p, nsPid: p?.nsPid ?? null, queues: p?.queues ?? [] };
  });
}

function allPids(trace: Trace): number[] {
  const pids = new Set<number>();
  for (const s of trace.samples) for (const p of s.processes) pids.add(p.pid);
  return [...pids].sort((a, b) => a - b);
}

function isTargeted(trace: Trace, pid: number): boolean {
  return trace.header.target.pids.includes(pid) || trace.markers.some((m) => m.marker === 'command-started' && m.pid === pid);
}

function keysOf(queues: readonly TraceQueue[]): string[] {
  return queues.map((q) => q.key).sort();
}

/** The window of the stability verdict and the samples considered in it (see rules.window). */
function stabilityWindow(ctx: Ctx, points: ProcPoint[], exited: boolean): { window: ProcPoint[]; considered: ProcPoint[] } {
  const firstQ = points.findIndex((p) => p.present && p.queues.length > 0);
  if (firstQ < 0) return { window: [], considered: [] };
  let last = points.length - 1;
  while (last >= 0 && !points[last].present) last--;
  const window = points.slice(firstQ, last + 1);
  const edge = ctx.opts.edgeSamples;
  const trimStart = firstQ > 0 ? edge : 0;
  const trimEnd = exited ? edge : 0;
  const considered = window.length > trimStart + trimEnd ? window.slice(trimStart, window.length - trimEnd) : [];
  return { window, considered };
}

function setChanges(points: ProcPoint[]): QueueSetChange[] {
  const out: QueueSetChange[] = [];
  let prev: Set<string> | null = null;
  for (const p of points) {
    const keys = new Set(p.queues.map((q) => q.key));
    if (prev !== null) {
      const added = [...keys].filter((k) => !prev!.has(k)).sort();
      const removed = [...prev].filter((k) => !keys.has(k)).sort();
      if (added.length || removed.length) out.push({ t_ns: p.sample.t_ns, seq: p.sample.seq, added, removed });
    }
    prev = keys;
  }
  return out;
}

/** The points from just before the process appeared to just after it vanished (creation and teardown show as changes). */
function changeSpan(points: ProcPoint[]): ProcPoint[] {
  const first = points.findIndex((p) => p.present);
  let last = points.length - 1;
  while (last >= 0 && !points[last].present) last--;
  return first < 0 ? [] : points.slice(Math.max(0, first - 1), last + 2);
}

function queueSetVerdict(ctx: Ctx, points: ProcPoint[], exited: boolean): ProcessUsage['queueSet'] {
  const { window, considered } = stabilityWindow(ctx, points, exited);
  const [changes, changesOmitted] = capped(setChanges(changeSpan(points)), ctx.opts.maxListed);
  const sets = considered.map((p) => keysOf(p.queues));
  const top = mode(sets, (s) => s.join(' '));
  const distinctSets = new Set(sets.map((s) => s.join(' '))).size;
  const verdict: StabilityVerdict =
    window.length === 0 ? 'no-queues' : considered.length < ctx.opts.minSamples ? 'too-few-samples' : top!.count / considered.length >= ctx.opts.stableShare ? 'stable' : 'unstable';
  return {
    verdict,
    share: considered.length && top ? top.count / considered.length : null,
    window: window.length ? { fromNs: window[0].sample.t_ns, toNs: window[window.length - 1].sample.t_ns, samples: window.length } : null,
    considered: considered.length,
    modal: top ? top.value : [],
    distinctSets,
    changed: distinctSets > 1,
    changes,
    changesOmitted,
  };
}

function queueCounts(ctx: Ctx, points: ProcPoint[], exited: boolean): ProcessUsage['queueCount'] {
  const present = points.filter((p) => p.present);
  const { considered } = stabilityWindow(ctx, points, exited);
  const [r, runsOmitted] = capped(
    runs(present.map((p) => ({ t: p.sample.t_ns, value: p.queues.length }))),
    ctx.opts.maxListed,
  );
  return {
    whilePresent: countStats(present.map((p) => p.queues.length)),
    steady: countStats(considered.map((p) => p.queues.length)),
    runs: r,
    runsOmitted,
  };
}

function lastEvent(ctx: Ctx, pid: number, name: TraceEvent['event']): TraceEvent | null {
  const evs = (ctx.eventsByPid.get(pid) ?? []).filter((e) => e.event === name);
  return evs.length ? evs[evs.length - 1] : null;
}

/** process-exited event, else the first listing sample after the last one that showed the process. */
function exitTime(ctx: Ctx, pid: number, points: ProcPoint[]): number | null {
  const ev = lastEvent(ctx, pid, 'process-exited');
  if (ev) return ev.t_ns;
  let last = points.length - 1;
  while (last >= 0 && !points[last].present) last--;
  return last >= 0 && last < points.length - 1 ? points[last + 1].sample.t_ns : null;
}

// ------------------------------------------------------------------------------------ lifecycle refs

function markersOf(trace: Trace, name: TraceMarker['marker']): TraceMarker[] {
  return trace.markers.filter((m) => m.marker === name);
}

function startRef(ctx: Ctx, pid: number, firstSeenNs: number): TimeRef | null {
  const started = markersOf(ctx.trace, 'command-started').filter((m) => m.t_ns <= firstSeenNs);
  if (started.length) return { kind: 'command-started', t_ns: started[started.length - 1].t_ns };
  const ev = (ctx.eventsByPid.get(pid) ?? []).find((e) => e.event === 'process-started');
  return ev ? { kind: 'process-started', t_ns: ev.t_ns } : null;
}

function stopRef(ctx: Ctx, start: TimeRef | null): TimeRef | null {
  const m = markersOf(ctx.trace, 'stop-signal').find((x) => start === null || x.t_ns >= start.t_ns);
  return m ? { kind: 'stop-signal', t_ns: m.t_ns } : null;
}

function exitRef(ctx: Ctx, pid: number, start: TimeRef | null): TimeRef | null {
  const m = markersOf(ctx.trace, 'command-exited').find((x) => start === null || x.t_ns >= start.t_ns);
  if (m) return { kind: 'command-exited', t_ns: m.t_ns };
  const ev = lastEvent(ctx, pid, 'process-exited');
  return ev ? { kind: 'process-exited', t_ns: ev.t_ns } : null;
}

const since = (t: number | null, ref: TimeRef | null): number | null => (t === null || ref === null ? null : t - ref.t_ns);

// ------------------------------------------------------------------------------------ per queue

/** Accumulates one queue's observations over the process's points. */
interface QueueObs {
  key: string;
  last: TraceQueue;
  qids: Set<number>;
  seen: TraceSample[];
  /** index into the process points of every sighting (to find gaps and the samples around) */
  idx: number[];
  priorities: { sample: TraceSample; p: Priority }[];
  hqds: { sample: TraceSample; hqds: NonNullable<TraceQueue['hqds']> }[];
  sdma: { sample: TraceSample; sdma: NonNullable<TraceQueue['sdma']> }[];
}

function observeQueues(points: ProcPoint[]): QueueObs[] {
  const obs = new Map<string, QueueObs>();
  points.forEach((p, i) => {
    for (const q of p.queues) {
      let o = obs.get(q.key);
      if (!o) obs.set(q.key, (o = { key: q.key, last: q, qids: new Set(), seen: [], idx: [], priorities: [], hqds: [], sdma: [] }));
      o.last = q;
      if (q.qid !== null) o.qids.add(q.qid);
      o.seen.push(p.sample);
      o.idx.push(i);
      if (q.priority) o.priorities.push({ sample: p.sample, p: q.priority });
      if (q.hqds !== null) o.hqds.push({ sample: p.sample, hqds: q.hqds });
      if (q.sdma) o.sdma.push({ sample: p.sample, sdma: q.sdma });
    }
  });
  return [...obs.values()];
}

function priorityHistory(o: QueueObs): QueueUsage['priority'] {
  const changes: PriorityChange[] = [];
  let prev: Priority | null = null;
  for (const { sample, p } of o.priorities) {
    if (prev && !samePriority(prev, p)) changes.push({ t_ns: sample.t_ns, seq: sample.seq, from: prev, to: p });
    prev = p;
  }
  return { initial: o.priorities[0]?.p ?? null, final: prev, changes };
}

/** Slot signature of one sample: "pipe/queue" (one slot on every active XCC), "inst:pipe/queue ...", or "unmapped". */
export function slotSignature(hqds: readonly (readonly number[])[]): string {
  const active = hqds.filter((h) => h[3] === 1).slice().sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  if (active.length === 0) return 'unmapped';
  const slots = new Set(active.map((h) => `${h[1]}/${h[2]}`));
  if (slots.size === 1) return [...slots][0];
  return active.map((h) => `${h[0]}:${h[1]}/${h[2]}`).join(' ');
}

/** What is wrong with one sample's HQD list of a queue (time-less: the caller adds when). */
function mismatchesOf(hqds: readonly (readonly number[])[], numXcc: number | null): Omit<MappingMismatch, 't_ns' | 'seq'>[] {
  const active = hqds.filter((h) => h[3] === 1);
  if (active.length === 0) return [];
  const out: Omit<MappingMismatch, 't_ns' | 'seq'>[] = [];
  const insts = active.map((h) => h[0]);
  const distinct = [...new Set(insts)].sort((a, b) => a - b);
  if (distinct.length !== insts.length) out.push({ kind: 'duplicate-inst', detail: `two active slots on one XCC (inst ${insts.join(',')})` });
  const slots = new Set(active.map((h) => `${h[1]}/${h[2]}`));
  if (slots.size > 1) out.push({ kind: 'split-slots', detail: `different slots on different XCCs: ${slotSignature(hqds)}` });
  if (numXcc !== null) {
    const outside = distinct.filter((i) => i >= numXcc);
    if (outside.length) out.push({ kind: 'inst-out-of-range', detail: `inst ${outside.join(',')} but the GPU has ${numXcc} XCC(s)` });
    const inside = distinct.filter((i) => i < numXcc);
    if (inside.length < numXcc) out.push({ kind: 'partial', detail: `active on ${inside.length} of ${numXcc} XCCs (inst ${inside.join(',') || 'none'})` });
  }
  return out;
}

function countSlotChanges(signatures: string[]): number {
  let changes = 0;
  let prev: string | null = null;
  for (const s of signatures) {
    if (s === 'unmapped') continue;
    if (prev !== null && s !== prev) changes++;
    prev = s;
  }
  return changes;
}

/** What one sample's HQD list says about a queue (computed once per distinct list). */
interface HqdReading {
  activeXccs: number;
  signature: string;
  mismatches: Omit<MappingMismatch, 't_ns' | 'seq'>[];
}

function readHqds(hqds: readonly (readonly number[])[], numXcc: number | null): HqdReading {
  return {
    activeXccs: new Set(hqds.filter((h) => h[3] === 1).map((h) => h[0])).size,
    signature: slotSignature(hqds),
    mismatches: mismatchesOf(hqds, numXcc),
  };
}

function queueMapping(ctx: Ctx, o: QueueObs): QueueMapping | null {
  if (!isCompute(o.last) || o.hqds.length === 0) return null;
  const numXcc = gpuOf(ctx, o.last)?.numXcc ?? null;
  const readings: HqdReading[] = [];
  o.hqds.forEach(({ hqds }, i) => readings.push(i > 0 && sameTuples(o.hqds[i - 1].hqds, hqds) ? readings[i - 1] : readHqds(hqds, numXcc)));
  const counts = readings.map((r) => r.activeXccs);
  const histogram: Record<string, number> = {};
  for (const c of counts) histogram[c] = (histogram[c] ?? 0) + 1;
  const signatures = readings.map((r) => r.signature);
  const mapped = [...new Set(signatures.filter((x) => x !== 'unmapped'))];
  const [slots, slotsOmitted] = capped(
    runs(o.hqds.map(({ sample }, i) => ({ t: sample.t_ns, value: signatures[i] }))),
    ctx.opts.maxListed,
  );
  const [mismatches, mismatchesOmitted] = capped(
    o.hqds.flatMap(({ sample }, i) => readings[i].mismatches.map((m) => ({ t_ns: sample.t_ns, seq: sample.seq, ...m }))),
    ctx.opts.maxListed,
  );
  return {
    numXcc,
    samples: o.hqds.length,
    activeXccs: { ...countStats(counts), histogram },
    fullyMappedSamples: numXcc === null ? 0 : counts.filter((c) => c === numXcc).length,
    unmappedSamples: counts.filter((c) => c === 0).length,
    sameSlotOnAllXccs: mapped.length === 0 ? null : mapped.every((x) => !x.includes(':')),
    slots,
    slotsOmitted,
    slotsUsed: mapped,
    slotChanges: countSlotChanges(signatures),
    mismatches,
    mismatchesOmitted,
  };
}

function sdmaUsage(o: QueueObs): QueueUsage['sdma'] {
  if (o.sdma.length === 0) return null;
  return {
    rlcs: [...new Set(o.sdma.map(({ sdma }) => `${sdma[0]}/${sdma[1]}`))],
    samples: o.sdma.length,
    activeSamples: o.sdma.filter(({ sdma }) => sdma[2] === 1).length,
  };
}

function countGaps(idx: number[]): number {
  let gaps = 0;
  for (let i = 1; i < idx.length; i++) if (idx[i] !== idx[i - 1] + 1) gaps++;
  return gaps;
}

/** Created/destroyed times: events when the recorder wrote them, else the samples around the sightings. */
function queueEnds(ctx: Ctx, o: QueueObs, points: ProcPoint[]): { created: number | null; createdRes: number | null; destroyed: number | null; destroyedRes: number | null } {
  const evs = ctx.eventsByKey.get(o.key) ?? [];
  const firstIdx = o.idx[0];
  const lastIdx = o.idx[o.idx.length - 1];
  const before = firstIdx > 0 ? points[firstIdx - 1].sample.t_ns : null;
  const after = lastIdx < points.length - 1 ? points[lastIdx + 1].sample.t_ns : null;
  const createdEv = evs.find((e) => e.event === 'queue-created');
  const destroyedEv = [...evs].reverse().find((e) => e.event === 'queue-destroyed' && e.t_ns >= o.seen[o.seen.length - 1].t_ns);
  // a queue present in the first listing sample predates the trace: its creation is unknown
  const created = createdEv ? createdEv.t_ns : before !== null ? o.seen[0].t_ns : null;
  const destroyed = destroyedEv ? destroyedEv.t_ns : after;
  return {
    created,
    createdRes: created !== null && before !== null ? created - before : null,
    destroyed,
    destroyedRes: destroyed !== null ? destroyed - o.seen[o.seen.length - 1].t_ns : null,
  };
}

function queueUsage(ctx: Ctx, pid: number, o: QueueObs, points: ProcPoint[], refs: { start: TimeRef | null; stop: TimeRef | null; exit: TimeRef | null }): QueueUsage {
  const ends = queueEnds(ctx, o, points);
  const firstSeenNs = o.seen[0].t_ns;
  const lastSeenNs = o.seen[o.seen.length - 1].t_ns;
  return {
    key: o.key,
    pid,
    qids: [...o.qids].sort((a, b) => a - b),
    type: o.last.type,
    gpuId: o.last.gpuId,
    node: o.last.node ?? gpuOf(ctx, o.last)?.node ?? null,
    firstSeenNs,
    lastSeenNs,
    samplesPresent: o.seen.length,
    gaps: countGaps(o.idx),
    createdNs: ends.created,
    destroyedNs: ends.destroyed,
    presentAtEnd: o.idx[o.idx.length - 1] === points.length - 1,
    lifetimeNs: ends.created !== null && ends.destroyed !== null ? ends.destroyed - ends.created : null,
    observedNs: lastSeenNs - firstSeenNs,
    priority: priorityHistory(o),
    mapping: queueMapping(ctx, o),
    sdma: sdmaUsage(o),
    timing: {
      createdAfterStartNs: since(ends.created, refs.start),
      createdResolutionNs: ends.createdRes,
      destroyedAfterStopNs: since(ends.destroyed, refs.stop),
      destroyedAfterExitNs: since(ends.destroyed, refs.exit),
      destroyedResolutionNs: ends.destroyedRes,
    },
  };
}

function processLifecycle(queues: QueueUsage[], refs: { start: TimeRef | null; stop: TimeRef | null; exit: TimeRef | null }): ProcessLifecycle {
  const created = groupBy(
    queues.filter((q) => q.createdNs !== null),
    (q) => q.createdNs!,
  );
  const creationBatches = [...created.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, qs]) => ({ t_ns: t, afterStartNs: since(t, refs.start), queues: qs.map((q) => q.key) }));
  const allGone = queues.length > 0 && queues.every((q) => q.destroyedNs !== null && !q.presentAtEnd);
  const allDestroyedNs = allGone ? countStats(queues.map((q) => q.destroyedNs!)).max : null;
  return {
    startRef: refs.start,
    stopRef: refs.stop,
    exitRef: refs.exit,
    creationBatches,
    firstQueueAfterStartNs: creationBatches.length ? creationBatches[0].afterStartNs : null,
    lastQueueAfterStartNs: creationBatches.length ? creationBatches[creationBatches.length - 1].afterStartNs : null,
    allDestroyedNs,
    allDestroyedAfterStopNs: since(allDestroyedNs, refs.stop),
    allDestroyedAfterExitNs: since(allDestroyedNs, refs.exit),
    queuesAtEnd: queues.filter((q) => q.presentAtEnd).length,
  };
}

function processUsage(ctx: Ctx, pid: number): ProcessUsage | null {
  const points = pointsOf(ctx, pid);
  const present = points.filter((p) => p.present);
  if (present.length === 0) return null;
  const firstSeenNs = present[0].sample.t_ns;
  const exitedNs = exitTime(ctx, pid, points);
  const start = startRef(ctx, pid, firstSeenNs);
  const refs = { start, stop: stopRef(ctx, start), exit: exitRef(ctx, pid, start) };
  const obs = observeQueues(points);
  const queues = obs.map((o) => queueUsage(ctx, pid, o, points, refs));
  return {
    pid,
    nsPid: present.find((p) => p.nsPid !== null)?.nsPid ?? null,
    targeted: isTargeted(ctx.trace, pid),
    presentAtBaseline: ctx.baselineEndNs !== null && firstSeenNs <= ctx.baselineEndNs,
    firstSeenNs,
    lastSeenNs: present[present.length - 1].sample.t_ns,
    startedNs: (ctx.eventsByPid.get(pid) ?? []).find((e) => e.event === 'process-started')?.t_ns ?? null,
    exitedNs,
    samplesPresent: present.length,
    queueCount: queueCounts(ctx, points, exitedNs !== null),
    queueSet: queueSetVerdict(ctx, points, exitedNs !== null),
    keys: obs.map((o) => o.key),
    queues,
    lifecycle: processLifecycle(queues, refs),
  };
}

// ------------------------------------------------------------------------------------ GPUs

/** An issue saying that this sample has no hqds content (unreadable file, missing dump). */
const HQDS_MISSING = /\bhqds\b.*\b(cannot read|unreadable|not read|EACCES|EPERM|ENOENT|EIO)\b|\bno hqds\b/i;

/**
 * A sample carries HQD data when it read debugfs, no compute queue in it lacks hqds and no issue
 * says hqds was missing (a sample without queues cannot show it otherwise).
 */
export function hasHqdData(s: TraceSample): boolean {
  return s.debugfs && s.processes.every((p) => p.queues.every((q) => !isCompute(q) || q.hqds !== null)) && !s.issues.some((m) => HQDS_MISSING.test(m));
}

/** Active HQD slots per node and inst in one sample. */
function activeSlotsPerXcc(ctx: Ctx, s: TraceSample): { known: Map<number, Map<number, number>>; unmatched: Map<number, number> } {
  const known = new Map<number, Map<number, number>>();
  const bump = (node: number, inst: number): void => {
    let m = known.get(node);
    if (!m) known.set(node, (m = new Map()));
    m.set(inst, (m.get(inst) ?? 0) + 1);
  };
  for (const p of s.processes) {
    for (const q of p.queues) {
      const node = q.node ?? gpuOf(ctx, q)?.node;
      if (node === undefined || q.hqds === null) continue;
      for (const h of q.hqds) if (h[3] === 1) bump(node, h[0]);
    }
  }
  const unmatched = new Map<number, number>();
  for (const [node, inst] of s.unmatchedHqds) {
    bump(node, inst);
    unmatched.set(node, (unmatched.get(node) ?? 0) + 1);
  }
  return { known, unmatched };
}

function gpuUsage(ctx: Ctx): GpuHqdUsage[] {
  const samples = ctx.trace.samples.filter(hasHqdData);
  const perSample = mapChanged(samples, (s) => activeSlotsPerXcc(ctx, s));
  return ctx.trace.header.gpus.map((g) => {
    const seenInsts = new Set<number>();
    for (const ps of perSample) for (const inst of ps.known.get(g.node)?.keys() ?? []) seenInsts.add(inst);
    const insts = [...new Set([...Array.from({ length: g.numXcc }, (_, i) => i), ...seenInsts])].sort((a, b) => a - b);
    const countsAt = (ps: (typeof perSample)[number], inst: number): number => ps.known.get(g.node)?.get(inst) ?? 0;
    const inRange = insts.filter((i) => i < g.numXcc);
    return {
      node: g.node,
      gpuId: g.gpuId,
      numXcc: g.numXcc,
      samples: samples.length,
      perXcc: insts.map((inst) => ({ inst, active: countStats(perSample.map((ps) => countsAt(ps, inst))) })),
      unmatched: countStats(perSample.map((ps) => ps.unmatched.get(g.node) ?? 0)),
      unbalancedSamples: perSample.filter((ps) => new Set(inRange.map((i) => countsAt(ps, i))).size > 1).length,
      instsOutOfRange: insts.filter((i) => i >= g.numXcc),
    };
  });
}

// ------------------------------------------------------------------------------------ coexistence

/** Device identity of a queue: its MQD on its GPU when known, else its key. */
function deviceIdentity(q: TraceQueue): string {
  return q.mqd !== null ? `${q.gpuId ?? '?'}|${q.mqd}` : `key|${q.key}`;
}

type Conflict = Omit<CoexistenceConflict, 't_ns' | 'seq'>;

function conflictsIn(ctx: Ctx, s: TraceSample, pids: Set<number>): Conflict[] {
  const holders = new Map<string, { kind: CoexistenceConflict['kind']; who: Set<string> }>();
  const hold = (kind: CoexistenceConflict['kind'], what: string, who: string): void => {
    let h = holders.get(`${kind}|${what}`);
    if (!h) holders.set(`${kind}|${what}`, (h = { kind, who: new Set() }));
    h.who.add(who);
  };
  for (const p of s.processes) {
    if (!pids.has(p.pid)) continue;
    for (const q of p.queues) {
      if (q.mqd !== null) hold('queue', `${q.gpuId ?? '?'}|${q.mqd}`, q.key);
      const node = q.node ?? gpuOf(ctx, q)?.node ?? '?';
      for (const h of q.hqds ?? []) if (h[3] === 1) hold('hqd-slot', `${node}|${h[0]}/${h[1]}/${h[2]}`, q.key);
      if (q.sdma && q.sdma[2] === 1) hold('sdma-rlc', `${q.gpuId ?? '?'}|${q.sdma[0]}/${q.sdma[1]}`, q.key);
    }
  }
  const out: Conflict[] = [];
  for (const [id, h] of holders) {
    if (h.who.size > 1) out.push({ kind: h.kind, what: id.slice(h.kind.length + 1), holders: [...h.who].sort() });
  }
  return out;
}

function sharedQids(s: TraceSample, pids: Set<number>): number[] {
  const owners = new Map<number, Set<number>>();
  for (const p of s.processes) {
    if (!pids.has(p.pid)) continue;
    for (const q of p.queues) {
      if (q.qid === null) continue;
      let o = owners.get(q.qid);
      if (!o) owners.set(q.qid, (o = new Set()));
      o.add(p.pid);
    }
  }
  return [...owners.entries()].filter(([, o]) => o.size > 1).map(([qid]) => qid);
}

/** What one sample says about processes sharing the device. */
interface TogetherFindings {
  conflicts: Conflict[];
  qids: number[];
  /** distinct device queues */
  total: number;
  /** sum of per-process counts */
  sum: number;
}

function togetherFindings(ctx: Ctx, s: TraceSample, pids: Set<number>): TogetherFindings {
  const mine = s.processes.filter((p) => pids.has(p.pid));
  return {
    conflicts: conflictsIn(ctx, s, pids),
    qids: sharedQids(s, pids),
    total: new Set(mine.flatMap((p) => p.queues.map(deviceIdentity))).size,
    sum: mine.reduce((a, p) => a + p.queues.length, 0),
  };
}

function coexistence(ctx: Ctx, processes: ProcessUsage[]): Coexistence | null {
  const withQueues = processes.filter((p) => p.queues.length > 0);
  if (withQueues.length < 2) return null;
  const pids = new Set(withQueues.map((p) => p.pid));
  const together = ctx.listing.filter((s) => s.processes.filter((p) => pids.has(p.pid) && p.queues.length > 0).length >= 2);
  const findings = mapChanged(together, (s) => togetherFindings(ctx, s, pids));
  const at = (i: number) => ({ t_ns: together[i].t_ns, seq: together[i].seq });
  const conflicts = findings.flatMap((f, i) => f.conflicts.map((c) => ({ ...at(i), ...c })));
  const qids = new Set(findings.flatMap((f) => f.qids));
  const totalMismatches = findings.flatMap((f, i) => (f.total === f.sum ? [] : [{ ...at(i), total: f.total, sum: f.sum }]));
  const steadyCounts = withQueues.map((p) => ({ pid: p.pid, count: p.queueSet.considered ? p.queueSet.modal.length : null }));
  const known = steadyCounts.filter((c) => c.count !== null);
  const [listed, conflictsOmitted] = capped(conflicts, ctx.opts.maxListed);
  const [mismatchList] = capped(totalMismatches, ctx.opts.maxListed);
  return {
    pids: [...pids],
    samplesTogether: together.length,
    queuesDisjoint: !conflicts.some((c) => c.kind === 'queue'),
    hqdSlotsDisjoint: !conflicts.some((c) => c.kind === 'hqd-slot'),
    sdmaDisjoint: !conflicts.some((c) => c.kind === 'sdma-rlc'),
    conflicts: listed,
    conflictsOmitted,
    qidsShared: [...qids].sort((a, b) => a - b),
    totalEqualsSum: totalMismatches.length === 0,
    totalMismatches: mismatchList,
    steadyCounts,
    sameSteadyCount: known.length < 2 ? null : new Set(known.map((c) => c.count)).size === 1,
  };
}

// ------------------------------------------------------------------------------------ overall

function overall(ctx: Ctx, processes: ProcessUsage[]): OverallUsage {
  const total = (s: TraceSample): number => s.processes.reduce((a, p) => a + p.queues.length, 0);
  let baseline: OverallUsage['baseline'] = null;
  if (ctx.baselineEndNs !== null) {
    const end = ctx.baselineEndNs;
    const bs = ctx.listing.filter((s) => s.t_ns <= end);
    const pidsWithQueues = new Set(bs.flatMap((s) => s.processes.filter((p) => p.queues.length > 0).map((p) => p.pid)));
    baseline = { endNs: end, samples: bs.length, maxQueues: countStats(bs.map(total)).max, pidsWithQueues: [...pidsWithQueues].sort((a, b) => a - b) };
  }
  return {
    processes: processes.length,
    processesWithQueues: processes.filter((p) => p.queues.length > 0).length,
    distinctQueues: processes.reduce((a, p) => a + p.queues.length, 0),
    queueCount: countStats(ctx.listing.map(total)),
    baseline,
  };
}

// ------------------------------------------------------------------------------------ sampling

function topMessages(samples: TraceSample[], max: number): { message: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const s of samples) for (const m of s.issues) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([message, count]) => ({ message, count }));
}

function seqGaps(samples: TraceSample[]): number {
  let gaps = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i].seq !== samples[i - 1].seq + 1) gaps++;
  return gaps;
}

function costs(samples: TraceSample[]): SamplingQuality['costs'] {
  const dbg = samples.filter((s) => s.debugfs);
  const sys = samples.filter((s) => !s.debugfs);
  return {
    read: distribution(samples.map((s) => s.read_ns)),
    parse: distribution(samples.map((s) => s.parse_ns)),
    join: distribution(samples.map((s) => s.join_ns)),
    debugfsRead: dbg.length && sys.length ? distribution(dbg.map((s) => s.read_ns)) : null,
    sysfsRead: dbg.length && sys.length ? distribution(sys.map((s) => s.read_ns)) : null,
  };
}

function sampling(ctx: Ctx): SamplingQuality {
  const { trace } = ctx;
  const s = trace.samples;
  const measured = trace.origin.costsMeasured;
  const [traceIssues, traceIssuesOmitted] = capped(trace.issues, ctx.opts.maxListed);
  return {
    samples: s.length,
    debugfsSamples: s.filter((x) => x.debugfs).length,
    queueListSamples: ctx.listing.length,
    spanNs: s.length ? s[s.length - 1].t_ns - s[0].t_ns : null,
    jitterNs: measured ? distribution(s.map((x) => x.t_ns - x.intended_ns)) : null,
    costs: measured ? costs(s) : null,
    unmeasured: measured ? null : 'plain cat dumps record no intended times and no read/parse costs',
    missedIntervals: s.reduce((a, x) => a + x.missed, 0),
    footerMissedIntervals: trace.footer?.missedIntervals ?? null,
    seqGaps: seqGaps(s),
    sampleIssues: { samples: s.filter((x) => x.issues.length).length, total: s.reduce((a, x) => a + x.issues.length, 0), top: topMessages(s, 10) },
    traceIssues,
    traceIssuesOmitted,
    sourceChanges: trace.markers
      .filter((m) => m.marker === 'source-lost' || m.marker === 'source-back' || m.marker === 'interrupted')
      .map((m) => ({ t_ns: m.t_ns, marker: m.marker, source: m.source ?? null, detail: m.detail ?? null })),
    complete: completeness(trace),
    endedBy: trace.footer?.endedBy ?? null,
  };
}

const completeness = (trace: Trace): boolean | null => (trace.origin.format === 'dumps' ? null : trace.footer !== null);

function inputOf(trace: Trace): ReportInput {
  const h = trace.header;
  const s = trace.samples;
  const notes = [...trace.origin.notes];
  if (trace.origin.format === 'jsonl' && !trace.footer) notes.push('no footer: the tracer did not finish (killed or crashed); the trace is a valid prefix');
  if (trace.footer?.error) notes.push(`the tracer ended with an error: ${trace.footer.error}`);
  return {
    path: trace.origin.path,
    format: trace.origin.format,
    times: trace.origin.times,
    costsMeasured: trace.origin.costsMeasured,
    traceSchema: h.schema,
    tracerVersion: h.gpucoloVersion,
    startedAt: h.startedAt,
    host: h.host,
    sampler: h.sampler,
    impl: h.impl,
    sources: h.sources,
    readable: h.readable,
    intervalNs: h.intervalNs,
    debugfsIntervalNs: h.debugfsIntervalNs,
    target: h.target,
    gpus: h.gpus,
    firstSampleNs: s.length ? s[0].t_ns : null,
    lastSampleNs: s.length ? s[s.length - 1].t_ns : null,
    complete: completeness(trace),
    endedBy: trace.footer?.endedBy ?? null,
    notes,
  };
}

/** Analyzes a trace (readTrace / readDumpDir) into a QueueUsageReport. */
export function analyzeTrace(trace: Trace, options: AnalyzeOptions = {}): QueueUsageReport {
  const opts = { ...DEFAULTS, ...options };
  const ctx = buildCtx(trace, opts);
  const processes = allPids(trace)
    .map((pid) => processUsage(ctx, pid))
    .filter((p): p is ProcessUsage => p !== null);
  return {
    schema: QUEUE_USAGE_SCHEMA,
    gpucoloVersion: VERSION,
    input: inputOf(trace),
    rules: rulesText(opts),
    overall: overall(ctx, processes),
    processes,
    gpus: gpuUsage(ctx),
    coexistence: coexistence(ctx, processes),
    sampling: sampling(ctx),
  };
}
