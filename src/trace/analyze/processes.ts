/**
 * The usage of one process: assembles its queue set, queues and lifecycle from its points in the
 * samples. One entry of `report.processes`.
 */
import type { Trace } from '../read.js';
import { gpuOf, type Ctx } from './context.js';
import { queueHqdsKnown } from './knowledge.js';
import { exitTime, lifecycleRefs, processLifecycle } from './lifecycle.js';
import { pointsOf } from './process-points.js';
import { observeQueues } from './queue-observations.js';
import { queueUsage } from './queues.js';
import { queueCounts, queueSetVerdict } from './queue-set.js';
import type { ProcessUsage } from './types.js';

export function allPids(trace: Trace): number[] {
  const pids = new Set<number>();
  for (const s of trace.samples) for (const p of s.processes) pids.add(p.pid);
  return [...pids].sort((a, b) => a - b);
}

function isTargeted(trace: Trace, pid: number): boolean {
  return trace.header.target.pids.includes(pid) || trace.markers.some((m) => m.marker === 'command-started' && m.pid === pid);
}

export function processUsage(ctx: Ctx, pid: number): ProcessUsage | null {
  const points = pointsOf(ctx, pid);
  const present = points.filter((p) => p.present);
  if (present.length === 0) return null;
  const firstSeenNs = present[0].sample.t_ns;
  const exitedNs = exitTime(ctx, pid, points);
  const refs = lifecycleRefs(ctx, pid, firstSeenNs);
  const obs = observeQueues(points, (s, q) => queueHqdsKnown(s, q, q.node ?? gpuOf(ctx, q)?.node ?? null));
  const queues = obs.map((o) => queueUsage(ctx, pid, o, points, refs));
  return {
    pid,
    nsPid: present.find((p) => p.nsPid !== null)?.nsPid ?? null,
    targeted: isTargeted(ctx.trace, pid),
    presentAtBaseline: ctx.baselineEndNs !== null && firstSeenNs <= ctx.baselineEndNs,
    firstSeenNs,
    lastSeenNs: present[present.length - 1].sample.t_ns,
    startedNs: (ctx.eventsByPid.get(pid) ?? []).find((e) => e.event === 'process-started')?.t_ns ?? null,
    exitedNs,
    samplesPresent: present.length,
    queueCount: queueCounts(ctx, points, exitedNs !== null),
    queueSet: queueSetVerdict(ctx, points, exitedNs !== null),
    keys: obs.map((o) => o.key),
    queues,
    lifecycle: processLifecycle(queues, refs),
  };
}
