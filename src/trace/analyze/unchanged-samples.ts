/**
 * Detects samples whose state did not change from the one before, so that per-sample results
 * can be reused instead of recomputed.
 *
 * Consecutive samples are nearly always identical. Comparing them number by number is far cheaper
 * than rebuilding sets and strings for each, so per-sample results are reused while nothing changed.
 */
import type { TraceQueue, TraceSample } from '../schema.js';

export function sameTuples(a: readonly (readonly (number | null)[])[] | null, b: readonly (readonly (number | null)[])[] | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/** Same hardware-relevant state: identity, placement and priority of one queue. */
export function sameQueueState(a: TraceQueue, b: TraceQueue): boolean {
  return (
    a.key === b.key &&
    a.qid === b.qid &&
    a.mqd === b.mqd &&
    a.gpuId === b.gpuId &&
    a.node === b.node &&
    sameTuples(a.hqds, b.hqds) &&
    sameTuples(a.sdma ? [a.sdma] : null, b.sdma ? [b.sdma] : null)
  );
}

/** Same processes, same queues in the same states, same unmatched HQDs, same debugfs flag. */
export function sameSampleState(a: TraceSample, b: TraceSample): boolean {
  if (a.debugfs !== b.debugfs || a.processes.length !== b.processes.length || !sameTuples(a.unmatchedHqds, b.unmatchedHqds)) return false;
  for (let i = 0; i < a.processes.length; i++) {
    const p = a.processes[i];
    const q = b.processes[i];
    if (p.pid !== q.pid || p.queues.length !== q.queues.length) return false;
    for (let j = 0; j < p.queues.length; j++) if (!sameQueueState(p.queues[j], q.queues[j])) return false;
  }
  return true;
}

/** f over the samples, computed again only when a sample's state differs from the one before. */
export function mapChanged<T>(samples: readonly TraceSample[], f: (s: TraceSample) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < samples.length; i++) {
    out.push(i > 0 && sameSampleState(samples[i - 1], samples[i]) ? out[i - 1] : f(samples[i]));
  }
  return out;
}
