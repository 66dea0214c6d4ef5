/**
 * Latency summaries for results.json: the reported percentiles in milliseconds with the P99
 * confidence interval, and a down-sampled empirical CDF for charts. Both come from the exact
 * per-request arrays (order statistics via quantiles()), never from a histogram, so every figure
 * is a latency that was actually observed.
 */
import type { LatencySummaryMs } from './types.js';
import { confidenceRanks, quantiles } from './percentiles.js';
import { outOfRange } from '../errors.js';

/** The percentiles a LatencySummaryMs carries, with their field names and display labels. */
export const REPORTED_PERCENTILES = [
  { p: 50, key: 'p50', label: 'P50' },
  { p: 90, key: 'p90', label: 'P90' },
  { p: 95, key: 'p95', label: 'P95' },
  { p: 99, key: 'p99', label: 'P99' },
  { p: 99.9, key: 'p999', label: 'P99.9' },
] as const;

export type PercentileKey = (typeof REPORTED_PERCENTILES)[number]['key'];

const NS_PER_MS = 1e6;

/**
 * Throws a RangeError naming the first value that is not a finite latency >= 0. A negative or NaN
 * latency means a clock or driver bug; summarising it would print plausible-looking nonsense.
 */
export function checkLatencies(latencyNs: ArrayLike<number>, what = 'latency'): void {
  for (let i = 0; i < latencyNs.length; i++) {
    const v = latencyNs[i];
    if (!(v >= 0) || !Number.isFinite(v)) throw outOfRange(`${what}[${i}] is ${v}: latencies must be finite and >= 0 ns`);
  }
}

/** Milliseconds for display: three significant digits below 1000 ms ("41.2", "0.123", "50"), whole ms above. */
export function formatMs(ms: number): string {
  return String(Math.abs(ms) >= 1000 ? Math.round(ms) : Number(ms.toPrecision(3)));
}

/**
 * P50/P90/P95/P99/P99.9, max and mean in ms from per-request latencies in ns. `unsupported` names
 * the percentiles the sample is too small for (n < 1/(1-p): the "percentile" would just be the
 * maximum); with n = 0 every figure is null and every percentile is unsupported.
 *
 * `censoredNs`: requests that never completed while the driver waited for them, each at its age
 * when the driver stopped waiting: a lower bound of its latency (MLPerf LoadGen counts unfinished
 * queries the same way). They are part of the sample (n counts them), so an overloaded phase shows
 * a large P99 instead of one computed from the lucky requests that finished. A figure whose rank
 * lies at or above the lowest-ranked censored value can only be a lower bound of the truth (a
 * censored request may really sit anywhere above its recorded age), so such figures are listed in
 * `censoredAtOrAbove` (with `max` and `mean` as soon as anything is censored), and a CI whose upper
 * rank is censored is dropped (its upper end would be a lower bound too). Figures below that rank
 * are exact: every censored request is above them whatever its true latency.
 */
export function summarizeLatencyMs(latencyNs: ArrayLike<number>, censoredNs: ArrayLike<number> = []): LatencySummaryMs {
  checkLatencies(latencyNs);
  checkLatencies(censoredNs, 'censored');
  const all = new Float64Array(latencyNs.length + censoredNs.length);
  for (let i = 0; i < latencyNs.length; i++) all[i] = latencyNs[i];
  let minCensored = Infinity;
  for (let i = 0; i < censoredNs.length; i++) {
    all[latencyNs.length + i] = censoredNs[i];
    minCensored = Math.min(minCensored, censoredNs[i]);
  }
  const s = quantiles(all, REPORTED_PERCENTILES.map((r) => r.p));
  const n = s.n;
  // rank (1-based) of the lowest censored value with exact values placed before equal censored
  // ones (a censored value only grows, so a tie with an exact value does not make that exact)
  let firstCensoredRank = Infinity;
  if (censoredNs.length > 0) {
    let below = 0;
    for (let i = 0; i < latencyNs.length; i++) if (latencyNs[i] <= minCensored) below++;
    firstCensoredRank = below + 1;
  }
  const ms = (v: number | null): number | null => (v === null ? null : v / NS_PER_MS);
  const at = (i: number) => s.quantiles[i];
  const lowerBound = (p: number): boolean => n > 0 && rankOf(p, n) >= firstCensoredRank;
  const ci = (i: number): [number, number] | null => {
    const q = at(i);
    if (!q.ci) return null;
    const ranks = confidenceRanks(n, q.p / 100);
    if (ranks && ranks[1] >= firstCensoredRank) return null;
    return [q.ci[0] / NS_PER_MS, q.ci[1] / NS_PER_MS];
  };
  const censoredAtOrAbove: string[] = REPORTED_PERCENTILES.filter((r) => lowerBound(r.p)).map((r) => r.key);
  if (censoredNs.length > 0) censoredAtOrAbove.push('max', 'mean');
  return {
    n,
    p50: ms(at(0).value),
    p90: ms(at(1).value),
    p95: ms(at(2).value),
    p99: ms(at(3).value),
    p999: ms(at(4).value),
    max: ms(s.max),
    mean: ms(s.mean),
    ci50: ci(0),
    ci99: ci(3),
    unsupported: REPORTED_PERCENTILES.filter((_, i) => !at(i).supported).map((r) => r.key),
    censored: censoredNs.length,
    censoredAtOrAbove,
  };
}

/** The nearest rank (1-based) of percentile p among n values, as quantiles() takes it. */
function rankOf(p: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil((p / 100) * n - 1e-9)));
}

/**
 * The exact empirical CDF as [latency ms, fraction of requests <= it], ascending, with at most
 * `maxPoints` points. Ties collapse to one point carrying the highest rank (the CDF's value at
 * that latency). When there are more distinct latencies than `maxPoints`, points are taken evenly
 * by rank (so evenly in fraction), always keeping the minimum and the maximum: the chart's ends
 * are real, and the tail beyond the last kept point is bounded by the max.
 */
export function cdfPoints(latencyNs: ArrayLike<number>, maxPoints = 200): [number, number][] {
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw outOfRange(`maxPoints must be an integer >= 2 (got ${maxPoints})`);
  checkLatencies(latencyNs);
  const sorted = Float64Array.from(latencyNs).sort();
  const n = sorted.length;
  const distinct: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && sorted[i + 1] === sorted[i]) continue; // keep the last rank of a run of ties
    distinct.push([sorted[i] / NS_PER_MS, (i + 1) / n]);
  }
  const m = distinct.length;
  if (m <= maxPoints) return distinct;
  const out: [number, number][] = [];
  // m > maxPoints, so these indices are strictly increasing, from 0 to m-1
  for (let j = 0; j < maxPoints; j++) out.push(distinct[Math.round((j * (m - 1)) / (maxPoints - 1))]);
  return out;
}
