/**
 * Early stopping of a tuning trial, after MLPerf LoadGen's idea: an SLO of the form "at most a
 * share q of the requests may be over a bound" (P99 < 50 ms: q = 1% of requests at or over 50 ms;
 * a deadline miss ratio r: q = r) is judged from n requests of which k were over, with a one-sided
 * binomial test at the given confidence:
 *
 *  - met:    P(X <= k | n, q) <= alpha: so few overs are unlikely if the true share were q (or
 *            more), so it is below q;
 *  - missed: P(X >= k | n, q) <= alpha: so many overs are unlikely if the true share were q (or
 *            less), so it is above q;
 *  - undecided otherwise: the sample cannot tell yet (more requests may).
 *
 * alpha = 1 - confidence. Requests the sample cannot place (unfinished ones whose age at the stop
 * is still below the bound: censored lower bounds) count as over when testing "met" and as not
 * over when testing "missed", so neither verdict leans on a guess.
 *
 * The test needs no assumption about the latency distribution: only that requests are over the
 * bound independently with one probability, the same assumption the order-statistic confidence
 * intervals of src/stats/percentiles.ts make.
 */
import { outOfRange } from '../errors.js';

export type Decision = 'met' | 'missed' | 'undecided';

/** The default confidence: the 95% the project's confidence intervals use (src/stats/percentiles.ts). */
export const DEFAULT_CONFIDENCE = 0.95;

export interface TailSample {
  /** requests in the sample (completed + censored) */
  n: number;
  /** requests certainly over the bound */
  over: number;
  /** requests that may or may not be over it (censored below the bound); default 0 */
  unknown?: number;
}

export interface TailDecision {
  decision: Decision;
  /** P(X <= over + unknown | n, q): the chance of so few overs at a true share of q */
  pFewer: number;
  /** P(X >= over | n, q): the chance of so many overs at a true share of q */
  pMore: number;
}

function checkProbability(name: string, x: number, open = false): void {
  const ok = open ? x > 0 && x < 1 : x >= 0 && x <= 1;
  if (!ok || !Number.isFinite(x)) throw outOfRange(`${name} must be in ${open ? '(0, 1)' : '[0, 1]'} (got ${x})`);
}

/**
 * P(X <= k) for X ~ binomial(n, q), summed in logs from 0 up: the first terms underflow for a
 * large n (0.99^100000), the sum picks up where they stop underflowing.
 */
export function binomialCdf(k: number, n: number, q: number): number {
  if (!Number.isInteger(n) || n < 0) throw outOfRange(`n must be an integer >= 0 (got ${n})`);
  checkProbability('q', q);
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (q === 0) return 1;
  if (q === 1) return 0;
  let lp = n * Math.log1p(-q);
  const step = Math.log(q) - Math.log1p(-q);
  let acc = 0;
  for (let j = 0; j <= k; j++) {
    acc += Math.exp(lp);
    lp += Math.log((n - j) / (j + 1)) + step;
  }
  return Math.min(1, acc);
}

/** P(X >= k) for X ~ binomial(n, q). */
export function binomialSf(k: number, n: number, q: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  return Math.max(0, 1 - binomialCdf(k - 1, n, q));
}

/** Whether the share of requests over the bound is clearly below `q`, clearly above it, or not yet known. */
export function tailDecision(s: TailSample, q: number, confidence = DEFAULT_CONFIDENCE): TailDecision {
  checkProbability('confidence', confidence, true);
  checkProbability('q', q);
  const unknown = s.unknown ?? 0;
  for (const [name, v] of [['n', s.n], ['over', s.over], ['unknown', unknown]] as const) {
    if (!Number.isInteger(v) || v < 0) throw outOfRange(`${name} must be an integer >= 0 (got ${v})`);
  }
  if (s.over + unknown > s.n) throw outOfRange(`over + unknown (${s.over} + ${unknown}) is more than n (${s.n})`);
  const alpha = 1 - confidence;
  const pFewer = binomialCdf(s.over + unknown, s.n, q);
  const pMore = binomialSf(s.over, s.n, q);
  // with q = 0 a single over proves the miss; "met" can never be proven (pFewer is 1)
  const decision: Decision = s.n > 0 && pMore <= alpha ? 'missed' : s.n > 0 && pFewer <= alpha ? 'met' : 'undecided';
  return { decision, pFewer, pMore };
}

/** The share of requests a percentile SLO allows over its bound: P99 -> 0.01. */
export function allowedOverShare(percentile: number): number {
  if (!(percentile > 0 && percentile < 100)) throw outOfRange(`percentile must be in (0, 100) (got ${percentile})`);
  return Math.round((1 - percentile / 100) * 1e12) / 1e12;
}

/**
 * The fewest requests that can prove "met" with `over` of them over the bound: P99 at 95% needs
 * 299 with none over, 473 with one. Infinity when q is 0 (nothing proves a zero-tolerance SLO).
 */
export function samplesToMeet(q: number, confidence = DEFAULT_CONFIDENCE, over = 0): number {
  checkProbability('q', q);
  if (q === 0) return Number.POSITIVE_INFINITY;
  const alpha = 1 - confidence;
  // binomialCdf(over, n, q) falls with n: double, then bisect
  let hi = Math.max(1, over + 1);
  while (binomialCdf(over, hi, q) > alpha) hi *= 2;
  let lo = Math.max(over, Math.floor(hi / 2));
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (binomialCdf(over, mid, q) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}
