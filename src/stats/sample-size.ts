/**
 * How many samples a percentile needs, and what a smaller sample makes of it. A P99 from 105
 * requests is the 2nd largest value: it exists, but nothing bounds it, and two such values differ
 * by chance far more than a reader expects. The report says so with the numbers, and with the
 * duration a phase would need at the task's rate (`gpucolo run --duration` / `--min-samples`).
 */
import { confidenceRanks, minSamplesFor } from './percentiles.js';
import { outOfRange } from '../errors.js';

const ciCache = new Map<number, number>();

/**
 * Smallest n for which percentile p (0..100) has a 95% confidence interval from order statistics
 * (confidenceRanks): P50 6, P90 36, P95 72, P99 368, P99.9 5662. Both bounds must be observed
 * values, so the upper one needs enough values above the percentile's rank.
 */
export function minSamplesForCi(p: number): number {
  if (!(p > 0 && p < 100)) throw outOfRange(`percentile must be in (0, 100) (got ${p})`);
  const hit = ciCache.get(p);
  if (hit !== undefined) return hit;
  // the answer is near (a few) / (1 - q); search upwards from a lower bound, then cache
  let n = Math.max(2, minSamplesFor(p));
  while (!confidenceRanks(n, p / 100)) n++;
  ciCache.set(p, n);
  return n;
}

/** Which value from the top percentile p is among n values (1 = the maximum), by nearest rank. */
export function rankFromTop(n: number, p: number): number {
  if (!Number.isInteger(n) || n < 1) throw outOfRange(`n must be an integer >= 1 (got ${n})`);
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n - 1e-9)));
  return n - rank + 1;
}

/** 1 -> "1st", 2 -> "2nd", 13 -> "13th", 22 -> "22nd" */
export function ordinal(k: number): string {
  const mod100 = k % 100;
  const suffix = mod100 >= 11 && mod100 <= 13 ? 'th' : k % 10 === 1 ? 'st' : k % 10 === 2 ? 'nd' : k % 10 === 3 ? 'rd' : 'th';
  return `${k}${suffix}`;
}

export interface PercentileSampleSize {
  p: number;
  n: number;
  /** the sample supports a CI of this percentile */
  hasCi: boolean;
  /** samples needed for a CI */
  needForCi: number;
  /** "P99 is the 2nd largest value, no CI (a CI needs n >= 368)" or "P99 has a 95% CI" */
  text: string;
}

/** What n samples make of percentile p, in one line. */
export function percentileSampleSize(n: number, p = 99): PercentileSampleSize {
  const needForCi = minSamplesForCi(p);
  const label = `P${p}`;
  if (n < 1) return { p, n, hasCi: false, needForCi, text: `no samples: no ${label}` };
  const hasCi = n >= needForCi;
  if (hasCi) return { p, n, hasCi, needForCi, text: `${label} has a 95% CI (n=${n})` };
  const k = rankFromTop(n, p);
  const which = k === 1 ? 'the largest value' : `the ${ordinal(k)} largest value`;
  return { p, n, hasCi, needForCi, text: `n=${n}: ${label} is ${which}, no CI (a CI needs n >= ${needForCi})` };
}

/**
 * Seconds of measurement per round that give `samples` in total over `rounds` rounds at
 * `ratePerS` requests per second (rounded up to whole seconds); null when the rate is unknown or 0.
 */
export function secondsForSamples(samples: number, ratePerS: number, rounds = 1): number | null {
  if (!(ratePerS > 0) || !Number.isFinite(ratePerS) || !(rounds >= 1)) return null;
  return Math.ceil(samples / rounds / ratePerS);
}
