/**
 * Latency summaries for results.json: the reported percentiles in milliseconds with the P99
 * confidence interval, and a down-sampled empirical CDF for charts. Both come from the exact
 * per-request arrays (order statistics via quantiles()), never from a histogram, so every figure
 * is a latency that was actually observed.
 */
import type { LatencySummaryMs } from '../scenario/types.js';
import { quantiles } from './percentiles.js';

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
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${what}[${i}] is ${v}: latencies must be finite and >= 0 ns`);
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
 */
export function summarizeLatencyMs(latencyNs: ArrayLike<number>): LatencySummaryMs {
  checkLatencies(latencyNs);
  const s = quantiles(latencyNs, REPORTED_PERCENTILES.map((r) => r.p));
  const ms = (v: number | null): number | null => (v === null ? null : v / NS_PER_MS);
  const at = (i: number) => s.quantiles[i];
  const p99 = at(3);
  return {
    n: s.n,
    p50: ms(at(0).value),
    p90: ms(at(1).value),
    p95: ms(at(2).value),
    p99: ms(p99.value),
    p999: ms(at(4).value),
    max: ms(s.max),
    mean: ms(s.mean),
    ci99: p99.ci ? [p99.ci[0] / NS_PER_MS, p99.ci[1] / NS_PER_MS] : null,
    unsupported: REPORTED_PERCENTILES.filter((_, i) => !at(i).supported).map((r) => r.key),
  };
}

/**
 * The exact empirical CDF as [latency ms, fraction of requests <= it], ascending, with at most
 * `maxPoints` points. Ties collapse to one point carrying the highest rank (the CDF's value at
 * that latency). When there are more distinct latencies than `maxPoints`, points are taken evenly
 * by rank (so evenly in fraction), always keeping the minimum and the maximum: the chart's ends
 * are real, and the tail beyond the last kept point is bounded by the max.
 */
export function cdfPoints(latencyNs: ArrayLike<number>, maxPoints = 200): [number, number][] {
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new RangeError(`maxPoints must be an integer >= 2 (got ${maxPoints})`);
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
