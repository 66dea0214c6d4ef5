/**
 * SLO verdicts of one task in one phase, from its summaries. A verdict is true/false only when the
 * numbers can decide it; otherwise pass is null and `detail` says why (too few samples for the
 * percentile, no deadline, a standalone phase has no throughput share), so a report never shows a
 * pass or a failure that the sample cannot back.
 */
import type { DeadlineCount, LatencySummaryMs, SloVerdict } from './types.js';
import { checkLatencies, formatMs, REPORTED_PERCENTILES } from './latency.js';
import { minSamplesFor } from './percentiles.js';
import { outOfRange } from '../errors.js';

/** The SLO parts of a task (what the scenario's `slo` gives after parsing; `below` in ns). */
export interface SloBounds {
  percentile?: number;
  below?: number;
  maxMissRatio?: number;
  minThroughputShare?: number;
}

export interface SloContext {
  latency: LatencySummaryMs;
  /** co-run throughput / standalone throughput; null in standalone phases */
  throughputShare: number | null;
  deadline: DeadlineCount | null;
  /** why throughputShare is null, for the verdict's detail (default "standalone phase") */
  shareReason?: string;
}

/** 0.3 -> "30%", 0.0025 -> "0.25%" (three significant digits, no trailing zeros). */
export function formatShare(x: number): string {
  return `${Number((x * 100).toPrecision(3))}%`;
}

/** "P99", "P99.9", "P50" */
export function percentileLabel(p: number): string {
  return `P${p}`;
}

const REPORTED_LIST = REPORTED_PERCENTILES.map((r) => r.p).join(', ');

function percentileVerdict(p: number, belowNs: number, latency: LatencySummaryMs): SloVerdict {
  const label = percentileLabel(p);
  const boundMs = belowNs / 1e6;
  const text = `${label} < ${formatMs(boundMs)} ms`;
  const reported = REPORTED_PERCENTILES.find((r) => r.p === p);
  if (!reported) return { text, pass: null, detail: `${label} is not among the reported percentiles (${REPORTED_LIST})` };
  const value = latency[reported.key];
  if (value === null || latency.n === 0 || latency.unsupported.includes(reported.key)) {
    return { text, pass: null, detail: `not enough samples for ${label} (n=${latency.n}, needs >= ${minSamplesFor(p)})` };
  }
  if ((latency.censoredAtOrAbove ?? []).includes(reported.key)) {
    // a censored value at or below this rank: the figure is only a lower bound of the truth, so
    // it can prove a miss (the truth is at least as large) but never a pass
    const what = `${label} >= ${formatMs(value)} ms, a lower bound (${latency.censored ?? 0} of n=${latency.n} requests unfinished when the phase stopped waiting)`;
    return value >= boundMs ? { text, pass: false, detail: what } : { text, pass: null, detail: `inconclusive: ${what}` };
  }
  let detail = `${label} ${formatMs(value)} ms`;
  const ci = reported.key === 'p99' ? latency.ci99 : null;
  detail += ci ? ` (CI ${formatMs(ci[0])}-${formatMs(ci[1])} ms, n=${latency.n})` : ` (n=${latency.n})`;
  if (ci && ci[0] < boundMs && boundMs <= ci[1]) detail += '; the bound lies inside the CI';
  return { text, pass: value < boundMs, detail };
}

function missVerdict(maxMissRatio: number, deadline: DeadlineCount | null): SloVerdict {
  const text = `deadline misses <= ${formatShare(maxMissRatio)}`;
  if (!deadline) return { text, pass: null, detail: 'no deadline (needs frames or batch arrivals)' };
  if (deadline.total === 0) return { text, pass: null, detail: 'no requests issued' };
  return {
    text,
    pass: deadline.ratio <= maxMissRatio,
    detail: `${deadline.missed} of ${deadline.total} missed the ${formatMs(deadline.ms)} ms deadline (${formatShare(deadline.ratio)})`,
  };
}

function shareVerdict(minShare: number, share: number | null, reason: string): SloVerdict {
  const text = `throughput >= ${formatShare(minShare)} of standalone`;
  if (share === null) return { text, pass: null, detail: reason };
  return { text, pass: share >= minShare, detail: `throughput ${formatShare(share)} of standalone` };
}

/**
 * One verdict per SLO part given, in the order percentile, misses, throughput share. Percentile
 * bounds are strict (P99 < 50 ms); miss ratio and throughput share are inclusive. Only the
 * percentiles a LatencySummaryMs carries (50, 90, 95, 99, 99.9) can be judged.
 */
export function sloVerdicts(slo: SloBounds, ctx: SloContext): SloVerdict[] {
  const out: SloVerdict[] = [];
  if (slo.percentile !== undefined && slo.below !== undefined) out.push(percentileVerdict(slo.percentile, slo.below, ctx.latency));
  if (slo.maxMissRatio !== undefined) out.push(missVerdict(slo.maxMissRatio, ctx.deadline));
  if (slo.minThroughputShare !== undefined) out.push(shareVerdict(slo.minThroughputShare, ctx.throughputShare, ctx.shareReason ?? 'standalone phase'));
  return out;
}

/**
 * Requests that missed their deadline: completed ones slower than it, plus every issued request
 * that never completed (a dropped frame is a miss, not a gap in the data). ratio = missed / issued
 * (0 when nothing was issued); `ms` is the deadline itself.
 */
export function deadlineMisses(
  latencyNs: ArrayLike<number>,
  issued: number,
  deadlineNs: number,
): { ms: number; missed: number; total: number; ratio: number } {
  if (!Number.isInteger(issued) || issued < 0) throw outOfRange(`issued must be an integer >= 0 (got ${issued})`);
  if (!(deadlineNs > 0) || !Number.isFinite(deadlineNs)) throw outOfRange(`deadline must be finite and > 0 ns (got ${deadlineNs})`);
  if (latencyNs.length > issued) throw outOfRange(`${latencyNs.length} requests completed but only ${issued} were issued`);
  checkLatencies(latencyNs);
  let late = 0;
  for (let i = 0; i < latencyNs.length; i++) if (latencyNs[i] > deadlineNs) late++;
  const missed = late + (issued - latencyNs.length);
  return { ms: deadlineNs / 1e6, missed, total: issued, ratio: issued === 0 ? 0 : missed / issued };
}
