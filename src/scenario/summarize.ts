/**
 * Turns what the drivers measured into the results contract: TaskSamples -> TaskResult per task
 * and phase, fairness of a co-run phase, and the scenario's success rows judged across the
 * co-run phases. The statistics themselves live in src/stats; this file only composes them with
 * the scenario's meaning (deadlines from arrivals, shares of the standalone run, priorities).
 */
import {
  cdfPoints,
  deadlineMisses,
  flagged,
  formatMs,
  formatShare,
  jainIndex,
  minSamplesFor,
  nearestRank,
  REPORTED_PERCENTILES,
  sloVerdicts,
  summarizeLatencyMs,
  type PercentileKey,
  type Quality,
  type QualityWarning,
} from '../stats/index.js';
import { outOfRange } from '../errors.js';
import { deadlineNs, type SuccessRow, type Task } from './schema.js';
import type { PhaseResult, PreemptionLatency, SuccessVerdict, TaskResult, TaskSamples } from './types.js';

/**
 * One task's result in one phase. `standalone` is the same task's result from its standalone
 * phase (absent in that phase itself): it gives throughputShare and slowdownP99, which stay null
 * without it or when the standalone figure is 0. busyShare is Σ service time / measured time; it
 * can exceed 1 when a task's requests overlap on the device (closed loop with concurrency > 1).
 * A phase that measured no time (measuredNs 0) reports throughput 0 and busyShare 0. `phase` only
 * words the throughput-share SLO's detail when there is no share (a co-run whose standalone
 * phase failed is not a "standalone phase").
 */
export function taskResult(
  samples: TaskSamples,
  task: Task,
  opts: { workload: string; standalone?: TaskResult | null; /** default: corun when `standalone` is given */ phase?: PhaseResult['kind'] },
): TaskResult {
  if (samples.task !== task.name) throw outOfRange(`samples of task "${samples.task}" given for task "${task.name}"`, 'ERR_INVALID_ARG_VALUE');
  const { measuredNs } = samples;
  if (!(measuredNs >= 0) || !Number.isFinite(measuredNs)) throw outOfRange(`measuredNs must be finite and >= 0 (got ${measuredNs})`);
  const completed = samples.latencyNs.length;
  const censoredNs = samples.censoredNs ?? new Float64Array(0);
  const latencyMs = summarizeLatencyMs(samples.latencyNs, censoredNs);
  // completions during the drain after the window are real latencies but not the window's
  // throughput: an overloaded open-loop task would otherwise show its offered rate as throughput
  const inWindow = completed - Math.min(completed, samples.completedAfterEnd ?? 0);
  const throughput = measuredNs > 0 ? inWindow / (measuredNs / 1e9) : 0;
  const standalone = opts.standalone ?? null;
  const throughputShare = standalone && standalone.throughput > 0 ? throughput / standalone.throughput : null;
  const sp99 = standalone?.latencyMs.p99 ?? null;
  const slowdownP99 = sp99 !== null && sp99 > 0 && latencyMs.p99 !== null ? latencyMs.p99 / sp99 : null;
  const d = deadlineNs(task.arrival);
  const deadline = d === null ? null : deadlineMisses(samples.latencyNs, samples.issued, d);
  let busyNs = 0;
  for (let i = 0; i < samples.serviceNs.length; i++) busyNs += samples.serviceNs[i];
  const kind = opts.phase ?? (standalone ? 'corun' : 'standalone');
  const shareReason = kind === 'standalone' ? 'standalone phase' : standalone ? 'standalone throughput is 0: no share to compare' : 'no standalone result to compare with';
  const result: TaskResult = {
    name: task.name,
    priority: task.priority,
    workload: opts.workload,
    requests: { issued: samples.issued, completed, errors: samples.errors, censored: censoredNs.length },
    latencyMs,
    throughput,
    throughputShare,
    slowdownP99,
    deadline,
    busyShare: measuredNs > 0 ? busyNs / measuredNs : 0,
    slo: task.slo ? sloVerdicts(task.slo, { latency: latencyMs, throughputShare, deadline, shareReason }) : [],
    cdf: cdfPoints(censoredNs.length ? concat(samples.latencyNs, censoredNs) : samples.latencyNs),
    submitLagMs: lagSummaryMs(samples.submitLagNs),
  };
  if (samples.error !== undefined) result.error = samples.error;
  return result;
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** P50 / P99 / max of the load generator's lateness, ms; null when it was not measured. */
export function lagSummaryMs(lagNs: Float64Array | undefined): TaskResult['submitLagMs'] {
  if (!lagNs || lagNs.length === 0) return null;
  const sorted = Float64Array.from(lagNs).sort();
  const ms = (v: number | null): number | null => (v === null ? null : v / 1e6);
  return { n: sorted.length, p50: ms(nearestRank(sorted as unknown as number[], 50)), p99: ms(nearestRank(sorted as unknown as number[], 99)), max: ms(sorted[sorted.length - 1]) };
}

/**
 * Positive weights for Jain's index from scenario priorities (integers, higher = more important,
 * possibly 0 or negative): weight = 1 + rank of the priority among the distinct priorities in
 * ascending order, so the lowest priority weighs 1, the next 2, and so on; equal priorities weigh
 * the same. Rank-based rather than the raw numbers because priorities are an order, not a
 * magnitude (priorities 1 and 100 mean "more important", not "100 times the share").
 */
export function priorityWeights(priorities: number[]): number[] {
  for (const p of priorities) if (!Number.isFinite(p)) throw outOfRange(`priority ${p} is not a finite number`);
  const distinct = [...new Set(priorities)].sort((a, b) => a - b);
  return priorities.map((p) => 1 + distinct.indexOf(p));
}

/**
 * Jain's index over the tasks' throughput shares weighted by priority (1 = each task keeps a
 * share proportional to its weight). Null with fewer than 2 tasks, when a share is unknown, or
 * when every share is 0.
 */
export function phaseFairness(tasks: TaskResult[]): number | null {
  if (tasks.length < 2) return null;
  const shares: number[] = [];
  for (const t of tasks) {
    if (t.throughputShare === null) return null;
    shares.push(t.throughputShare);
  }
  return jainIndex(shares, priorityWeights(tasks.map((t) => t.priority)));
}

type Metric = SuccessRow['metric'];
type PhaseCheck = SuccessVerdict['phases'][number];

const isLatencyMetric = (m: Metric): m is PercentileKey => REPORTED_PERCENTILES.some((r) => r.key === m);

/** A share bound of a success row; the schema keeps these in 0..1, anything else cannot be judged. */
function shareBound(b: number): number | null {
  return b >= 0 && b <= 1 ? b : null;
}

interface RowSpec {
  text: string;
  /** bound in the unit of the value (ms for latency metrics, 0..1 otherwise); null if unusable */
  bound: number | null;
  dir: 'below' | 'above';
  /** below 0 of a share: only exactly 0 passes (nothing can be below 0) */
  exactZero: boolean;
}

function rowSpec(row: SuccessRow): RowSpec {
  const dir = row.below !== undefined ? 'below' : 'above';
  const raw = row.below ?? row.above;
  if (raw === undefined) throw outOfRange('a success row needs below or above', 'ERR_INVALID_ARG_VALUE');
  const m = row.metric;
  if (isLatencyMetric(m)) {
    const label = REPORTED_PERCENTILES.find((r) => r.key === m)!.label;
    const bound = raw / 1e6;
    return { text: row.label ?? `${row.task} ${label} ${dir === 'below' ? '<' : '>'} ${formatMs(bound)} ms`, bound, dir, exactZero: false };
  }
  if (m === 'missed') {
    const bound = Number.isInteger(raw) && raw >= 0 ? raw : null;
    const exactZero = dir === 'below' && bound === 0;
    return { text: row.label ?? `${row.task} deadline misses ${exactZero ? '= 0' : `${dir === 'below' ? '<' : '>'} ${raw}`}`, bound, dir, exactZero };
  }
  const bound = shareBound(raw);
  const exactZero = dir === 'below' && bound === 0;
  // (missed rows are handled above)
  const op = exactZero ? '=' : dir === 'below' ? '<' : '>';
  const what = m === 'utilisation' ? 'GPU utilisation' : m === 'throughputShare' ? `${row.task} throughput share` : `${row.task} missRatio`;
  const shown = bound === null ? String(raw) : formatShare(bound);
  return { text: row.label ?? `${what} ${op} ${shown}`, bound, dir, exactZero };
}

/**
 * The quality warning that makes a verdict on (phase, task) inconclusive, if any: one naming the
 * phase (and the task, or no task), one naming no phase (the whole run), and for figures taken
 * against the task's standalone run (throughput share) one naming that standalone phase.
 */
export function verdictFlag(q: Quality | undefined, phase: string, task: string | undefined, againstStandalone: boolean): QualityWarning | undefined {
  if (!q) return undefined;
  const own = flagged(q, phase, task);
  if (own) return own;
  return againstStandalone && task !== undefined ? flagged(q, `standalone:${task}`, task) : undefined;
}

/** "inconclusive: <code>: <message>" for a verdict a warning leaves undecided. */
export function inconclusiveText(w: QualityWarning): string {
  return `inconclusive: ${w.code}${w.round !== undefined ? ` (round ${w.round})` : ''}: ${w.message}`;
}

/**
 * SLO verdicts after the quality check: a pass or fail on a figure a warning names becomes
 * undecided (null) with "inconclusive: <warning>" as its detail. A share SLO also depends on the
 * task's standalone phase.
 */
export function sloAfterQuality(t: TaskResult, phase: string, q: Quality | undefined): TaskResult['slo'] {
  return t.slo.map((v) => {
    if (v.pass === null) return v;
    const w = verdictFlag(q, phase, t.name, /of standalone/.test(v.text));
    return w ? { ...v, pass: null, detail: `${inconclusiveText(w)} (was ${v.pass ? 'PASS' : 'FAIL'}: ${v.detail})` } : v;
  });
}

/** The row's value in one phase with a one-line detail; value null (or unsupported) when it cannot be judged. */
function rowValue(row: SuccessRow, phase: PhaseResult): { value: number | null; supported: boolean; detail: string; lowerBound?: boolean } {
  const m = row.metric;
  if (m === 'utilisation') {
    const u = phase.utilisation;
    return u.value === null
      ? { value: null, supported: false, detail: `utilisation unavailable${u.reason ? `: ${u.reason}` : ''}` }
      : { value: u.value, supported: true, detail: `GPU utilisation ${formatShare(u.value)} (${u.source})` };
  }
  const t = phase.tasks.find((x) => x.name === row.task);
  if (!t) return { value: null, supported: false, detail: `task "${row.task}" has no result in this phase` };
  if (isLatencyMetric(m)) {
    const r = REPORTED_PERCENTILES.find((x) => x.key === m)!;
    const value = t.latencyMs[m];
    if (value === null || t.latencyMs.unsupported.includes(m)) {
      return { value, supported: false, detail: `not enough samples for ${r.label} (n=${t.latencyMs.n}, needs >= ${minSamplesFor(r.p)})` };
    }
    if ((t.latencyMs.censoredAtOrAbove ?? []).includes(m)) {
      return { value, supported: true, lowerBound: true, detail: `${r.label} >= ${formatMs(value)} ms, a lower bound (${t.latencyMs.censored ?? 0} of n=${t.latencyMs.n} requests unfinished when the phase stopped waiting)` };
    }
    return { value, supported: true, detail: `${r.label} ${formatMs(value)} ms (n=${t.latencyMs.n})` };
  }
  if (m === 'throughputShare') {
    return t.throughputShare === null
      ? { value: null, supported: false, detail: 'no standalone throughput to compare with' }
      : { value: t.throughputShare, supported: true, detail: `throughput ${formatShare(t.throughputShare)} of standalone` };
  }
  const d = t.deadline;
  if (!d) return { value: null, supported: false, detail: 'no deadline (needs frames or batch arrivals)' };
  if (d.total === 0) return { value: null, supported: false, detail: 'no requests issued' };
  if (m === 'missed') {
    // every issued request counts: one that never finished missed its deadline too
    const unfinished = t.requests.issued - t.requests.completed;
    const slowest = t.latencyMs.max;
    return {
      value: d.missed,
      supported: true,
      detail: `${d.missed} of ${d.total} missed the ${formatMs(d.ms)} ms deadline${unfinished > 0 ? ` (${unfinished} never finished)` : ''}${slowest !== null ? `; slowest ${(t.latencyMs.censoredAtOrAbove ?? []).includes('max') ? '>=' : ''}${formatMs(slowest)} ms` : ''}`,
    };
  }
  return { value: d.ratio, supported: true, detail: `${d.missed} of ${d.total} missed the ${formatMs(d.ms)} ms deadline (${formatShare(d.ratio)})` };
}

/**
 * Judges each success row in every co-run phase that ran (status ok or partial). A row passes when
 * at least one phase (mechanism) meets it, fails when every judged phase misses it, and is null
 * when no phase could judge it (too few samples, no standalone, no deadline, no utilisation).
 * `best` is the judged phase with the lowest value (below rows) or the highest (above rows); the
 * first such phase on ties. Bounds are strict, except a share "below 0%" which means exactly 0.
 *
 * With `quality`, a phase whose figure a warning names is not judged: "inconclusive: <warning>"
 * (verdictFlag: the phase and task, the whole run, and for throughput shares the task's standalone
 * phase). A latency that is a censored lower bound can fail a "below" row (the truth is at least
 * as large) but never pass it, and can pass an "above" row but never fail it. When every phase is
 * undecided for such a reason the row says why in `inconclusive`.
 */
/** One success row judged in one phase (co-run, or a standalone phase as a reference). */
function judge(row: SuccessRow, spec: RowSpec, phase: PhaseResult, quality: Quality | undefined): PhaseCheck {
  const v = rowValue(row, phase);
  if (spec.bound === null) return { phase: phase.name, value: v.value, pass: null, detail: `bound ${row.below ?? row.above} is not a ${row.metric === 'missed' ? 'whole number' : 'share (0..1)'}; ${v.detail}` };
  if (!v.supported || v.value === null) return { phase: phase.name, value: v.value, pass: null, detail: v.detail };
  const w = verdictFlag(quality, phase.name, row.task, row.metric === 'throughputShare');
  if (w) return { phase: phase.name, value: v.value, pass: null, detail: `${inconclusiveText(w)}; value: ${v.detail}` };
  const pass = spec.exactZero ? v.value === 0 : spec.dir === 'below' ? v.value < spec.bound : v.value > spec.bound;
  if (v.lowerBound && pass === (spec.dir === 'below')) return { phase: phase.name, value: v.value, pass: null, detail: `inconclusive: ${v.detail}` };
  return { phase: phase.name, value: v.value, pass, detail: v.detail };
}

const ran = (p: PhaseResult): boolean => p.status === 'ok' || p.status === 'partial';

/**
 * The design notes' reference columns of a row: the task's standalone phase (baseline) and native
 * sharing (corun:none), judged like any phase (a flagged figure is inconclusive, never a pass).
 * They are shown beside the mechanisms, not counted: corun:none stays one of the judged co-runs.
 */
function referenceOf(row: SuccessRow, spec: RowSpec, phases: PhaseResult[], checks: PhaseCheck[], quality: Quality | undefined): NonNullable<SuccessVerdict['reference']> {
  const sa = row.task !== undefined ? phases.find((p) => p.kind === 'standalone' && p.name === `standalone:${row.task}` && ran(p)) : undefined;
  const standalone = row.metric === 'throughputShare' || row.metric === 'utilisation' ? null : sa ? judge(row, spec, sa, quality) : null;
  return { standalone, native: checks.find((c) => c.phase === 'corun:none') ?? null };
}

export function successVerdicts(rows: SuccessRow[], phases: PhaseResult[], quality?: Quality): SuccessVerdict[] {
  const coruns = phases.filter((p) => p.kind === 'corun' && ran(p));
  return rows.map((row) => {
    const spec = rowSpec(row);
    const checks: PhaseCheck[] = coruns.map((phase) => judge(row, spec, phase, quality));
    let best: { phase: string; value: number } | null = null;
    for (const c of checks) {
      if (c.pass === null || c.value === null) continue;
      if (!best || (spec.dir === 'below' ? c.value < best.value : c.value > best.value)) best = { phase: c.phase, value: c.value };
    }
    const judged = checks.filter((c) => c.pass !== null);
    const pass = judged.length === 0 ? null : judged.some((c) => c.pass === true);
    const undecided = checks.find((c) => c.pass === null && c.detail.startsWith('inconclusive: '));
    return {
      row: spec.text,
      phases: checks,
      pass,
      best: best ? best.phase : null,
      ...(pass === null && undecided ? { inconclusive: `${undecided.phase}: ${undecided.detail.slice('inconclusive: '.length)}` } : {}),
      reference: referenceOf(row, spec, phases, checks, quality),
    };
  });
}

/**
 * The preemption-latency row (the design notes' "抢占延迟"): how long the highest-priority task
 * waits behind lower-priority work in each co-run phase, as the P99 it gains over its standalone
 * P99 (ms; a difference of percentiles, requests are not paired) and as a number of LP kernels:
 * the longest LP kernel, measured as the LP task's standalone P50 divided by its kernels per
 * request (probe form; the torch form does not know its kernels, so only ms). Null with a single
 * priority level. A figure a quality warning names, or a P99 the sample cannot support, is given
 * but marked inconclusive.
 */
export function preemptionLatency(tasks: Task[], phases: PhaseResult[], form: 'probe' | 'torch', quality?: Quality): PreemptionLatency | null {
  if (tasks.length < 2) return null;
  const top = Math.max(...tasks.map((t) => t.priority));
  const hps = tasks.filter((t) => t.priority === top);
  const lps = tasks.filter((t) => t.priority < top);
  if (hps.length !== 1 || lps.length === 0) return null;
  const hp = hps[0];
  const standaloneOf = (name: string): TaskResult | null => {
    const p = phases.find((x) => x.kind === 'standalone' && x.name === `standalone:${name}` && ran(x));
    return p?.tasks.find((t) => t.name === name) ?? null;
  };
  const usable = (t: TaskResult | null | undefined, key: 'p50' | 'p99'): number | null =>
    t && t.latencyMs[key] !== null && !t.latencyMs.unsupported.includes(key) && !(t.latencyMs.censoredAtOrAbove ?? []).includes(key) ? t.latencyMs[key] : null;
  const sa = standaloneOf(hp.name);
  const standaloneP99Ms = usable(sa, 'p99');
  let lpKernelMs: number | null = null;
  let lpKernelSource = 'torch form: kernels per request unknown, wait given in ms only';
  if (form === 'probe') {
    const per = lps.map((t) => {
      const p50 = usable(standaloneOf(t.name), 'p50');
      return p50 === null ? null : { task: t.name, ms: p50 / (t.probe?.kernels ?? 1) };
    });
    const known = per.filter((x): x is { task: string; ms: number } => x !== null && x.ms > 0);
    if (known.length) {
      const longest = known.reduce((a, b) => (b.ms > a.ms ? b : a));
      lpKernelMs = longest.ms;
      lpKernelSource = `${longest.task}: standalone P50 / ${lps.find((t) => t.name === longest.task)!.probe?.kernels ?? 1} kernel(s) per request${known.length < lps.length ? ' (some LP task has no usable standalone P50)' : ''}`;
    } else lpKernelSource = 'no LP task has a usable standalone P50';
  }
  const coruns = phases.filter((p) => p.kind === 'corun' && ran(p));
  const saFlag = verdictFlag(quality, `standalone:${hp.name}`, hp.name, false);
  return {
    hpTask: hp.name,
    lpTasks: lps.map((t) => t.name),
    standaloneP99Ms,
    lpKernelMs,
    lpKernelSource,
    phases: coruns.map((phase) => {
      const t = phase.tasks.find((x) => x.name === hp.name);
      const p99Ms = usable(t, 'p99');
      if (p99Ms === null || standaloneP99Ms === null) {
        const why = !t ? `${hp.name} has no result in this phase` : p99Ms === null ? `${hp.name} P99 not usable here (n=${t.latencyMs.n})` : `${hp.name} has no usable standalone P99`;
        return { phase: phase.name, p99Ms, addedP99Ms: null, lpKernels: null, detail: why, inconclusive: why };
      }
      const addedP99Ms = p99Ms - standaloneP99Ms;
      const lpKernels = lpKernelMs !== null ? addedP99Ms / lpKernelMs : null;
      const detail = `P99 ${formatMs(p99Ms)} ms vs ${formatMs(standaloneP99Ms)} ms standalone: ${addedP99Ms >= 0 ? '+' : ''}${formatMs(addedP99Ms)} ms${lpKernels !== null ? ` (${lpKernels.toFixed(1)} LP kernels of ${formatMs(lpKernelMs!)} ms)` : ''}`;
      const w = verdictFlag(quality, phase.name, hp.name, false) ?? saFlag;
      return { phase: phase.name, p99Ms, addedP99Ms, lpKernels, detail, ...(w ? { inconclusive: inconclusiveText(w) } : {}) };
    }),
  };
}
