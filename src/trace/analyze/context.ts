/**
 * The analysis context: the trace indexed once (listing samples, GPUs, events by key and pid,
 * the baseline end) and the small lookups every part of the analysis shares, so that no part
 * scans the whole trace again for them.
 */
import { EventDeriver } from '../events.js';
import type { Trace } from '../read.js';
import type { TraceEvent, TraceGpu, TraceHeader, TraceQueue, TraceSample } from '../schema.js';
import { knowledgeOf } from './knowledge.js';
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

/**
 * A sample lists every queue when sysfs was readable (queue ids); otherwise only when it read
 * debugfs and its mqds text was whole: a cut dump lacks the queues after the cut, and a queue cut
 * before its MQD address has no identity, so such a sample says nothing about which queues exist.
 */
export function listsQueues(s: TraceSample, header: TraceHeader): boolean {
  return header.readable.includes('sysfs') || (s.debugfs && knowledgeOf(s).mqdsWhole);
}

/**
 * The recorded events, minus what samples that do not list queues made up: a queue or process
 * missing from a cut dump shows as destroyed there and created again in the next sample. Events
 * of such a run of samples and of the sample after it are replaced by the changes between the
 * listing samples around the run (none when the run is at an end of the trace).
 */
function listedEvents(trace: Trace, lists: (s: TraceSample) => boolean): TraceEvent[] {
  const samples = trace.samples;
  if (!samples.some((s) => s.debugfs && !lists(s))) return trace.events;
  const drop = new Set<number>();
  const added: TraceEvent[] = [];
  let i = 0;
  while (i < samples.length) {
    if (!(samples[i].debugfs && !lists(samples[i]))) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < samples.length && !lists(samples[j + 1])) j++;
    for (let k = i; k <= j; k++) drop.add(samples[k].seq);
    let prev = i - 1;
    while (prev >= 0 && !lists(samples[prev])) prev--;
    const next = j + 1 < samples.length ? j + 1 : -1;
    if (next >= 0) {
      drop.add(samples[next].seq);
      if (prev >= 0) {
        const d = new EventDeriver();
        d.update(samples[prev]);
        added.push(...d.update(samples[next]));
      }
    }
    i = j + 1;
  }
  return [...trace.events.filter((e) => !drop.has(e.sample)), ...added].sort((a, b) => a.t_ns - b.t_ns || a.sample - b.sample);
}

export function buildCtx(trace: Trace, opts: Required<AnalyzeOptions>): Ctx {
  const baseline = trace.markers.find((m) => m.marker === 'baseline-end');
  const lists = (s: TraceSample): boolean => listsQueues(s, trace.header);
  const events = listedEvents(trace, lists);
  return {
    trace,
    opts,
    listing: trace.samples.filter(lists),
    gpuById: new Map(trace.header.gpus.map((g) => [g.gpuId, g])),
    gpuByNode: new Map(trace.header.gpus.flatMap((g) => (g.node !== null ? [[g.node, g] as const] : []))),
    eventsByKey: groupBy(events, (e) => e.key),
    eventsByPid: groupBy(events, (e) => e.pid),
    baselineEndNs: baseline ? baseline.t_ns : null,
  };
}

export const isCompute = (q: Pick<TraceQueue, 'type'>): boolean => q.type === 'compute' || q.type === 'diq';

export function gpuOf(ctx: Ctx, q: Pick<TraceQueue, 'gpuId' | 'node'>): TraceGpu | null {
  return (q.gpuId !== null ? ctx.gpuById.get(q.gpuId) : undefined) ?? (q.node !== null ? ctx.gpuByNode.get(q.node) : undefined) ?? null;
}
