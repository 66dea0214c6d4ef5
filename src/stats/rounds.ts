/**
 * Repeated, interleaved measurements. Anything gpucolo compares (the phases of a scenario, the
 * mechanisms of `probe priority`, the methods of `distributed compare`) runs in rounds: every
 * variant once per round, in an order rotated from round to round, so that slow drift on the host
 * (another job starting, thermal throttling, a cache warming up) reaches every variant alike
 * instead of landing on whichever ran last. What is reported next to the pooled figures is the
 * spread between rounds.
 */
import { outOfRange } from '../errors.js';

/**
 * The order of round `round` (0-based): the list rotated left by `round` places, so round 0 runs
 * a, b, c, round 1 b, c, a, round 2 c, a, b; over n rounds every item runs in every position once.
 */
export function rotatedOrder<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  if (n === 0) return [];
  if (!Number.isInteger(round) || round < 0) throw outOfRange(`round must be an integer >= 0 (got ${round})`);
  const k = round % n;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** min / median / max of one figure over the rounds that produced it. */
export interface RoundSpread {
  min: number;
  median: number;
  max: number;
  /** rounds with a value (rounds where the figure was unknown are left out, not taken as 0) */
  n: number;
}

/** The spread of the known values; null when no round produced one. */
export function roundSpread(values: readonly (number | null | undefined)[]): RoundSpread | null {
  const known = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const m = known.length >> 1;
  const median = known.length % 2 ? known[m] : (known[m - 1] + known[m]) / 2;
  return { min: known[0], median, max: known[known.length - 1], n: known.length };
}

/** max / min of a spread (1 = every round agreed); null when unknown or min <= 0. */
export function spreadRatio(s: RoundSpread | null): number | null {
  return s && s.min > 0 ? s.max / s.min : null;
}
