/**
 * --min-samples K: how long phases run so that every task's pooled sample (all rounds together)
 * holds at least K requests. The rule, per task, the phase taking the longest its tasks need:
 *
 *  - scheduled arrivals (poisson, fixed-rate, frames, batch, replay): exact, before anything runs.
 *    The schedule is deterministic (seeded), so the duration is the one whose measured window
 *    holds ceil(K / rounds) arrivals in every round. Every arrival is in the sample (completed, or
 *    censored when unfinished), so the count is reached whatever the device does. A replay with
 *    fewer arrivals than that cannot reach it: its whole schedule is used, and the run says so.
 *  - closed loops: their rate is what the device gives, so it is measured. The first round runs
 *    at the scenario's duration; later rounds are lengthened from the rate measured so far
 *    (x1.1, since the rate varies) to make up the rest; if the pool is still short after the last
 *    round, one more run of the phase follows right away. Every run is capped at
 *    CLOSED_LOOP_CAP x the duration; a task still short then is a 'too-few-samples' warning.
 */
import { arrivalTimes, expectedArrivals } from './arrivals.js';
import type { Arrival } from './schema.js';

/** A closed-loop run is at most this many times the scenario's duration. */
export const CLOSED_LOOP_CAP = 10;
/** Closed-loop rates vary from run to run: ask for this much more than the measured rate says. */
const MARGIN = 1.1;

// float noise (2.2000000000000002 s) must not add a millisecond
const ceilMs = (ns: number): number => Math.ceil(ns / 1e6 - 1e-7) * 1e6;

/**
 * The measured duration (ns, whole ms) after `warmupNs` whose window holds at least `perRound`
 * scheduled arrivals; null for closed loops. `reachable` false: a replay has fewer arrivals than
 * that in its window, and the duration covers all of them.
 */
export function scheduledDurationNs(a: Arrival, warmupNs: number, perRound: number): { durationNs: number; reachable: boolean } | null {
  if (a.kind === 'closed-loop') return null;
  if (!(perRound >= 1)) return { durationNs: 0, reachable: true };
  // a span about twice what the rate says, doubled until it holds enough (or a replay ends)
  const rate = expectedArrivals(a, 1e9);
  let span = warmupNs + (a.kind === 'replay' ? Math.max(...a.times) + 1 : (2 * perRound * 1e9) / Math.max(rate, 1e-9) + 1e9);
  for (;;) {
    const times = arrivalTimes(a, span)!;
    let first = 0;
    while (first < times.length && times[first] < warmupNs) first++;
    const inWindow = times.length - first;
    if (inWindow >= perRound) return { durationNs: ceilMs(times[first + perRound - 1] - warmupNs + 1), reachable: true };
    if (a.kind === 'replay') return { durationNs: ceilMs(inWindow ? times[times.length - 1] - warmupNs + 1 : 0), reachable: false };
    span *= 2;
  }
}

/**
 * The duration of one more closed-loop run: the `need` requests still missing, spread over
 * `runsLeft` runs at `ratePerS`, x1.1, between `minNs` and `capNs` (whole ms). Null when the rate
 * is unknown (nothing measured yet).
 */
export function closedLoopDurationNs(o: { need: number; runsLeft: number; ratePerS: number; minNs: number; capNs: number }): number | null {
  if (!(o.ratePerS > 0) || !Number.isFinite(o.ratePerS)) return null;
  if (o.need <= 0) return o.minNs;
  const ns = ((o.need / Math.max(1, o.runsLeft)) * MARGIN * 1e9) / o.ratePerS;
  return ceilMs(Math.min(o.capNs, Math.max(o.minNs, ns)));
}
