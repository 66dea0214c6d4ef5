/**
 * Arrival processes of scenario tasks as intended arrival times (ns from the phase start), shared
 * by the probe driver (handed to the native engine as a `list` arrival) and the torch driver
 * (the orchestrator sends each request at its intended time and measures from it).
 * Closed-loop tasks have no schedule: the driver keeps `concurrency` requests outstanding.
 */
import { outOfRange } from '../errors.js';
import type { Arrival } from './schema.js';

/** mulberry32: small, seeded, good enough for exponential gaps (not for cryptography) */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Most arrivals one task may schedule in a phase (a guard against rate typos: 1e6/s for an hour). */
export const MAX_ARRIVALS = 5_000_000;

/** About how many arrivals `a` schedules in [0, spanNs) (the mean for Poisson; 0 for closed-loop). */
export function expectedArrivals(a: Arrival, spanNs: number): number {
  switch (a.kind) {
    case 'closed-loop':
      return 0;
    case 'fixed-rate':
    case 'poisson':
      return (a.rate * spanNs) / 1e9;
    case 'frames':
      return (a.fps * spanNs) / 1e9;
    case 'batch':
      return spanNs / a.period;
    case 'replay':
      return a.times.length;
  }
}

/**
 * Intended arrival times in [0, spanNs), ascending; null for closed-loop. Poisson: exponential gaps
 * from `seed` (the same seed gives the same schedule in every phase, so phases see the same load).
 */
export function arrivalTimes(a: Arrival, spanNs: number): Float64Array | null {
  const out: number[] = [];
  const push = (t: number): boolean => {
    if (t >= spanNs) return false;
    if (out.length >= MAX_ARRIVALS) throw outOfRange(`more than ${MAX_ARRIVALS} arrivals in one phase: lower the rate or the duration`);
    out.push(t);
    return true;
  };
  switch (a.kind) {
    case 'closed-loop':
      return null;
    case 'fixed-rate':
    case 'frames': {
      const period = 1e9 / (a.kind === 'frames' ? a.fps : a.rate);
      for (let i = 0; push(Math.round(i * period)); i++);
      break;
    }
    case 'batch':
      for (let i = 0; push(i * a.period); i++);
      break;
    case 'poisson': {
      const rnd = seededRandom(a.seed);
      const mean = 1e9 / a.rate;
      let t = 0;
      // first arrival after one gap, like every other
      for (;;) {
        t += -Math.log(1 - rnd()) * mean;
        if (!push(Math.round(t))) break;
      }
      break;
    }
    case 'replay':
      for (const t of [...a.times].sort((x, y) => x - y)) if (!push(t)) break;
      break;
  }
  return Float64Array.from(out);
}
