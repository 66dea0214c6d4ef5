/**
 * The usage of one queue: identity, presence, created/destroyed times and their resolution,
 * priority history, SDMA engine, and (via mapping.ts) its HQD mapping.
 */
import { gpuOf, type Ctx } from './context.js';
import { since, type LifecycleRefs } from './lifecycle.js';
import { queueMapping } from './mapping.js';
import type { ProcPoint } from './process-points.js';
import { queueType, type QueueObs } from './queue-observations.js';
import type { Priority, PriorityChange, QueueUsage } from './types.js';

const samePriority = (a: Priority, b: Priority): boolean => a.pipe === b.pipe && a.queue === b.queue;

function priorityHistory(o: QueueObs): QueueUsage['priority'] {
  const changes: PriorityChange[] = [];
  let prev: Priority | null = null;
  for (const { sample, p } of o.priorities) {
    if (prev && !samePriority(prev, p)) changes.push({ t_ns: sample.t_ns, seq: sample.seq, from: prev, to: p });
    prev = p;
  }
  return { initial: o.priorities[0]?.p ?? null, final: prev, changes };
}

function sdmaUsage(o: QueueObs): QueueUsage['sdma'] {
  if (o.sdma.length === 0) return null;
  return {
    rlcs: [...new Set(o.sdma.map(({ sdma }) => `${sdma[0]}/${sdma[1]}`))],
    samples: o.sdma.length,
    activeSamples: o.sdma.filter(({ sdma }) => sdma[2] === 1).length,
  };
}

function countGaps(idx: number[]): number {
  let gaps = 0;
  for (let i = 1; i < idx.length; i++) if (idx[i] !== idx[i - 1] + 1) gaps++;
  return gaps;
}

/** Created/destroyed times: events when the recorder wrote them, else the samples around the sightings. */
function queueEnds(ctx: Ctx, o: QueueObs, points: ProcPoint[]): { created: number | null; createdRes: number | null; destroyed: number | null; destroyedRes: number | null } {
  const evs = ctx.eventsByKey.get(o.key) ?? [];
  const firstIdx = o.idx[0];
  const lastIdx = o.idx[o.idx.length - 1];
  const before = firstIdx > 0 ? points[firstIdx - 1].sample.t_ns : null;
  const after = lastIdx < points.length - 1 ? points[lastIdx + 1].sample.t_ns : null;
  const createdEv = evs.find((e) => e.event === 'queue-created');
  const destroyedEv = [...evs].reverse().find((e) => e.event === 'queue-destroyed' && e.t_ns >= o.seen[o.seen.length - 1].t_ns);
  // a queue present in the first listing sample predates the trace: its creation is unknown
  const created = createdEv ? createdEv.t_ns : before !== null ? o.seen[0].t_ns : null;
  const destroyed = destroyedEv ? destroyedEv.t_ns : after;
  return {
    created,
    createdRes: created !== null && before !== null ? created - before : null,
    destroyed,
    destroyedRes: destroyed !== null ? destroyed - o.seen[o.seen.length - 1].t_ns : null,
  };
}

export function queueUsage(ctx: Ctx, pid: number, o: QueueObs, points: ProcPoint[], refs: LifecycleRefs): QueueUsage {
  const ends = queueEnds(ctx, o, points);
  const firstSeenNs = o.seen[0].t_ns;
  const lastSeenNs = o.seen[o.seen.length - 1].t_ns;
  return {
    key: o.key,
    pid,
    qids: [...o.qids].sort((a, b) => a - b),
    type: queueType(o),
    gpuId: o.last.gpuId,
    node: o.last.node ?? gpuOf(ctx, o.last)?.node ?? null,
    firstSeenNs,
    lastSeenNs,
    samplesPresent: o.seen.length,
    gaps: countGaps(o.idx),
    createdNs: ends.created,
    destroyedNs: ends.destroyed,
    presentAtEnd: o.idx[o.idx.length - 1] === points.length - 1,
    lifetimeNs: ends.created !== null && ends.destroyed !== null ? ends.destroyed - ends.created : null,
    observedNs: lastSeenNs - firstSeenNs,
    priority: priorityHistory(o),
    mapping: queueMapping(ctx, o),
    sdma: sdmaUsage(o),
    timing: {
      createdAfterStartNs: since(ends.created, refs.start),
      createdResolutionNs: ends.createdRes,
      destroyedAfterStopNs: since(ends.destroyed, refs.stop),
      destroyedAfterExitNs: since(ends.destroyed, refs.exit),
      destroyedResolutionNs: ends.destroyedRes,
    },
  };
}
