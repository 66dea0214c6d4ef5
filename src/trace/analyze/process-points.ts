/**
 * One process seen through the samples that list queues: a point per sample, present or not.
 * The per-process parts (queue set, queues, lifecycle) all walk these points, so absence is as
 * visible to them as presence.
 */
import type { TraceQueue, TraceSample } from '../schema.js';
import type { Ctx } from './context.js';

/** One process in one listing sample (absent: the process was not listed). */
export interface ProcPoint {
  sample: TraceSample;
  present: boolean;
  nsPid: number | null;
  queues: TraceQueue[];
}

/** Index of the last point that shows the process; -1 when none does. */
export function lastPresentIndex(points: readonly ProcPoint[]): number {
  let last = points.length - 1;
  while (last >= 0 && !points[last].present) last--;
  return last;
}

export function pointsOf(ctx: Ctx, pid: number): ProcPoint[] {
  return ctx.listing.map((sample) => {
    const p = sample.processes.find((x) => x.pid === pid);
    return { sample, present: !!p, nsPid: p?.nsPid ?? null, queues: p?.queues ?? [] };
  });
}
