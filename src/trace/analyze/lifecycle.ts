/**
 * When a process starts, is told to stop and exits (from markers and events), and when its queues
 * appear and go relative to those references. Answers "when are queues created and destroyed
 * relative to the program's start and stop?".
 */
import { countStats } from '../../stats/index.js';
import type { Trace } from '../read.js';
import type { TraceEvent, TraceMarker } from '../schema.js';
import type { Ctx } from './context.js';
import { lastPresentIndex, type ProcPoint } from './process-points.js';
import { groupBy } from './series.js';
import type { ProcessLifecycle, QueueUsage, TimeRef } from './types.js';

/** The time references of one process; each is null when the trace does not show it. */
export interface LifecycleRefs {
  start: TimeRef | null;
  stop: TimeRef | null;
  exit: TimeRef | null;
}

function lastEvent(ctx: Ctx, pid: number, name: TraceEvent['event']): TraceEvent | null {
  const evs = (ctx.eventsByPid.get(pid) ?? []).filter((e) => e.event === name);
  return evs.length ? evs[evs.length - 1] : null;
}

/** process-exited event, else the first listing sample after the last one that showed the process. */
export function exitTime(ctx: Ctx, pid: number, points: ProcPoint[]): number | null {
  const ev = lastEvent(ctx, pid, 'process-exited');
  if (ev) return ev.t_ns;
  const last = lastPresentIndex(points);
  return last >= 0 && last < points.length - 1 ? points[last + 1].sample.t_ns : null;
}

function markersOf(trace: Trace, name: TraceMarker['marker']): TraceMarker[] {
  return trace.markers.filter((m) => m.marker === name);
}

function startRef(ctx: Ctx, pid: number, firstSeenNs: number): TimeRef | null {
  const started = markersOf(ctx.trace, 'command-started').filter((m) => m.t_ns <= firstSeenNs);
  if (started.length) return { kind: 'command-started', t_ns: started[started.length - 1].t_ns };
  const ev = (ctx.eventsByPid.get(pid) ?? []).find((e) => e.event === 'process-started');
  return ev ? { kind: 'process-started', t_ns: ev.t_ns } : null;
}

function stopRef(ctx: Ctx, start: TimeRef | null): TimeRef | null {
  const m = markersOf(ctx.trace, 'stop-signal').find((x) => start === null || x.t_ns >= start.t_ns);
  return m ? { kind: 'stop-signal', t_ns: m.t_ns } : null;
}

function exitRef(ctx: Ctx, pid: number, start: TimeRef | null): TimeRef | null {
  const m = markersOf(ctx.trace, 'command-exited').find((x) => start === null || x.t_ns >= start.t_ns);
  if (m) return { kind: 'command-exited', t_ns: m.t_ns };
  const ev = lastEvent(ctx, pid, 'process-exited');
  return ev ? { kind: 'process-exited', t_ns: ev.t_ns } : null;
}

/** The start, stop and exit references of a process first seen at firstSeenNs (see rules.lifecycle). */
export function lifecycleRefs(ctx: Ctx, pid: number, firstSeenNs: number): LifecycleRefs {
  const start = startRef(ctx, pid, firstSeenNs);
  return { start, stop: stopRef(ctx, start), exit: exitRef(ctx, pid, start) };
}

export const since = (t: number | null, ref: TimeRef | null): number | null => (t === null || ref === null ? null : t - ref.t_ns);

export function processLifecycle(queues: QueueUsage[], refs: LifecycleRefs): ProcessLifecycle {
  const created = groupBy(
    queues.filter((q) => q.createdNs !== null),
    (q) => q.createdNs!,
  );
  const creationBatches = [...created.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, qs]) => ({ t_ns: t, afterStartNs: since(t, refs.start), queues: qs.map((q) => q.key) }));
  const allGone = queues.length > 0 && queues.every((q) => q.destroyedNs !== null && !q.presentAtEnd);
  const allDestroyedNs = allGone ? countStats(queues.map((q) => q.destroyedNs!)).max : null;
  return {
    startRef: refs.start,
    stopRef: refs.stop,
    exitRef: refs.exit,
    creationBatches,
    firstQueueAfterStartNs: creationBatches.length ? creationBatches[0].afterStartNs : null,
    lastQueueAfterStartNs: creationBatches.length ? creationBatches[creationBatches.length - 1].afterStartNs : null,
    allDestroyedNs,
    allDestroyedAfterStopNs: since(allDestroyedNs, refs.stop),
    allDestroyedAfterExitNs: since(allDestroyedNs, refs.exit),
    queuesAtEnd: queues.filter((q) => q.presentAtEnd).length,
  };
}
