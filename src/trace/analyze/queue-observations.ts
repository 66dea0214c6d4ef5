/**
 * Collects what the samples showed of each queue of one process (sightings, qids, priorities,
 * HQD and SDMA lists) in one pass, so the per-queue figures are derived without walking the
 * samples again.
 */
import type { TraceQueue, TraceSample } from '../schema.js';
import type { ProcPoint } from './process-points.js';
import type { Priority } from './types.js';

/** Accumulates one queue's observations over the process's points. */
export interface QueueObs {
  key: string;
  last: TraceQueue;
  /** how often each type was seen ('unknown' = its sysfs type file could not be read) */
  types: Map<string, number>;
  qids: Set<number>;
  seen: TraceSample[];
  /** index into the process points of every sighting (to find gaps and the samples around) */
  idx: number[];
  priorities: { sample: TraceSample; p: Priority }[];
  hqds: { sample: TraceSample; hqds: NonNullable<TraceQueue['hqds']> }[];
  sdma: { sample: TraceSample; sdma: NonNullable<TraceQueue['sdma']> }[];
}

/**
 * `hqdsKnown` says whether a sample's HQD list of a queue is complete (knowledge.ts): a list from a
 * cut or appended dump, or missing the queue's node or an XCC, is not an observation of where the
 * queue was mapped.
 */
export function observeQueues(points: ProcPoint[], hqdsKnown: (s: TraceSample, q: TraceQueue) => boolean = (_s, q) => q.hqds !== null): QueueObs[] {
  const obs = new Map<string, QueueObs>();
  points.forEach((p, i) => {
    for (const q of p.queues) {
      let o = obs.get(q.key);
      if (!o) obs.set(q.key, (o = { key: q.key, last: q, types: new Map(), qids: new Set(), seen: [], idx: [], priorities: [], hqds: [], sdma: [] }));
      o.last = q;
      o.types.set(q.type, (o.types.get(q.type) ?? 0) + 1);
      if (q.qid !== null) o.qids.add(q.qid);
      o.seen.push(p.sample);
      o.idx.push(i);
      if (q.priority) o.priorities.push({ sample: p.sample, p: q.priority });
      if (q.hqds !== null && hqdsKnown(p.sample, q)) o.hqds.push({ sample: p.sample, hqds: q.hqds });
      if (q.sdma) o.sdma.push({ sample: p.sample, sdma: q.sdma });
    }
  });
  return [...obs.values()];
}

/**
 * The queue's type: the one seen most often, a known one before 'unknown' (a sample that caught
 * the queue while its sysfs files were being removed cannot read its type).
 */
export function queueType(o: QueueObs): string {
  let best = o.last.type;
  let n = -1;
  for (const [t, c] of o.types) {
    if (t === 'unknown') continue;
    if (c > n) [best, n] = [t, c];
  }
  return best;
}
