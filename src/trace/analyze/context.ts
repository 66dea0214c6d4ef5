/**
 * The analysis context: the trace indexed once (listing samples, GPUs, events by key and pid,
 * the baseline end) and the small lookups every part of the analysis shares, so that no part
 * scans the whole trace again for them.
 */
import type { Trace } from '../read.js';
import type { TraceEvent, TraceGpu, TraceHeader, TraceQueue, TraceSample } from '../schema.js';
import { groupBy } from './series.js';
import type { AnalyzeOptions } from './types.js';

/** Everything the analysis needs about the trace, indexed once. */
export interface Ctx {
  trace: Trace;
  opts: Required<AnalyzeOptions>;
  /** samples that list queues, in order */
  listing: TraceSample[];
  gpuById: Map<string, TraceGpu>;
  gpuByNode: Map<number, TraceGpu>;
  eventsByKey: Map<string, TraceEvent[]>;
  eventsByPid: Map<number, TraceEvent[]>;
  baselineEndNs: number | null;
}

export const DEFAULTS: Required<AnalyzeOptions> = { stableShare: 0.95, edgeSamples: 1, minSamples: 2, maxListed: 50 };

/** A sample lists every queue when sysfs was readable; otherwise only when it read debugfs. */
export function listsQueues(s: TraceSample, header: TraceHeader): boolean {
  return s.debugfs || header.readable.includes('sysfs');
}

export function buildCtx(trace: Trace, opts: Required<AnalyzeOptions>): Ctx {
  const baseline = trace.markers.find((m) => m.marker === 'baseline-end');
  return {
    trace,
    opts,
    listing: trace.samples.filter((s) => listsQueues(s, trace.header)),
    gpuById: new Map(trace.header.gpus.map((g) => [g.gpuId, g])),
    gpuByNode: new Map(trace.header.gpus.map((g) => [g.node, g])),
    eventsByKey: groupBy(trace.events, (e) => e.key),
    eventsByPid: groupBy(trace.events, (e) => e.pid),
    baselineEndNs: baseline ? baseline.t_ns : null,
  };
}

export const isCompute = (q: Pick<TraceQueue, 'type'>): boolean => q.type === 'compute' || q.type === 'diq';

export function gpuOf(ctx: Ctx, q: Pick<TraceQueue, 'gpuId' | 'node'>): TraceGpu | null {
  return (q.gpuId !== null ? ctx.gpuById.get(q.gpuId) : undefined) ?? (q.node !== null ? ctx.gpuByNode.get(q.node) : undefined) ?? null;
}
