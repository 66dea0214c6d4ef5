/**
 * Requests a phase did not see finish, and how late the load generator was. Both drivers use these.
 *
 * Censoring: a request issued in the measured window that has not completed when the driver stops
 * waiting (the phase end plus a bounded drain) is not dropped from the latency sample. It is kept
 * at its age at that moment, a lower bound of its latency: dropping it would leave only the lucky
 * requests that finished, so a phase that cannot keep up would show a small P99 (MLPerf LoadGen
 * counts unfinished queries the same way). src/stats/latency.ts summarizeLatencyMs then marks the
 * figures that are lower bounds.
 */
import type { NativeDispatchStreamResult } from '../native.js';

/** Ages (ns) at `stopNs` of requests intended at `intendedNs` (same clock); never negative. */
export function censoredAges(intendedNs: readonly number[] | Float64Array, stopNs: number): Float64Array {
  const out = new Float64Array(intendedNs.length);
  for (let i = 0; i < intendedNs.length; i++) out[i] = Math.max(0, stopNs - intendedNs[i]);
  return out;
}

/**
 * How late the engine's submitter was for each measured launch of a scheduled stream, ns: submit -
 * the moment it could first submit, max(intended, completion of the launch that made room:
 * `inflight` launches earlier). Waiting for room is the device being behind (it shows in latency);
 * what is left is the submitting thread not getting a core in time, i.e. the host.
 */
export function generatorLagNs(raw: Pick<NativeDispatchStreamResult, 'intendedNs' | 'submitNs' | 'completeNs' | 'warmup'>, inflight: number): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < raw.submitNs.length; i++) {
    if (raw.warmup[i]) continue;
    let could = raw.intendedNs[i];
    if (i >= inflight) {
      const freed = raw.completeNs[i - inflight];
      if (freed > could) could = freed;
    }
    out.push(Math.max(0, raw.submitNs[i] - could));
  }
  return Float64Array.from(out);
}
