/**
 * Exports a trace as Chrome trace-event JSON, the format the Perfetto UI (ui.perfetto.dev) and
 * chrome://tracing open: {"traceEvents": [...], "displayTimeUnit": "ms"}, times in microseconds.
 *
 * Tracks:
 *  - one track (pid = the real pid) per traced process; a thread per queue showing the queue's
 *    lifetime as a span with nested spans for its active periods (active HQD slots, or the SDMA
 *    RLC it was running on); a 'queues' counter; instants for process/queue lifecycle events.
 *  - one track per GPU node (pid GPU_PID_BASE + index) with a thread per HQD slot (inst/pipe/queue)
 *    showing which queue held the slot when.
 *  - one 'markers' track (pid 0) with global instants for the tracer's markers.
 * hqd-mapped/-unmapped events are not repeated as instants: the slot spans show them.
 */
import { analyzeTrace, hasHqdData, listsQueues, mapChanged, sameQueueState, slotSignature, type QueueUsage, type QueueUsageReport } from './analyze/index.js';
import type { Trace } from './read.js';
import { writeFileAtomic } from './report-md.js';
import type { TraceGpu, TraceQueue, TraceSample } from './schema.js';

export interface ChromeTraceEvent {
  name: string;
  ph: 'M' | 'X' | 'i' | 'C';
  /** microseconds since the trace's t_ns 0 */
  ts: number;
  pid: number;
  tid: number;
  /** X: duration in microseconds */
  dur?: number;
  /** i: scope, 'g' global or 'p' process */
  s?: 'g' | 'p';
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, string>;
}

export const MARKERS_PID = 0;
/** above any Linux pid (pid_max <= 2^22), so GPU tracks never collide with a process track */
export const GPU_PID_BASE = 10_000_000;

const us = (ns: number): number => ns / 1000;

/** A span of one state: the state holds from `from` until the next point that changes it. */
interface Interval {
  state: string;
  from: number;
  to: number;
}

/** Turns state observations (null = nothing) into intervals; the last one closes at endNs. */
export function timeline(points: readonly { t: number; state: string | null }[], endNs: number): Interval[] {
  const out: Interval[] = [];
  let open: { state: string; from: number } | null = null;
  for (const p of points) {
    if (open && open.state === p.state) continue;
    if (open) out.push({ ...open, to: p.t });
    open = p.state === null ? null : { state: p.state, from: p.t };
  }
  if (open) out.push({ ...open, to: Math.max(open.from, endNs) });
  return out;
}

function meta(name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index', pid: number, tid: number, value: string | number): ChromeTraceEvent {
  const args = typeof value === 'string' ? { name: value } : { sort_index: value };
  return { name, ph: 'M', ts: 0, pid, tid, args };
}

function span(name: string, pid: number, tid: number, fromNs: number, toNs: number, cat: string, args?: Record<string, unknown>): ChromeTraceEvent {
  return { name, ph: 'X', ts: us(fromNs), dur: us(Math.max(0, toNs - fromNs)), pid, tid, cat, ...(args ? { args } : {}) };
}

function instant(name: string, pid: number, tid: number, tNs: number, scope: 'g' | 'p', cat: string, args?: Record<string, unknown>): ChromeTraceEvent {
  return { name, ph: 'i', s: scope, ts: us(tNs), pid, tid, cat, ...(args ? { args } : {}) };
}

/** What a queue was doing in one sample that read its hardware state: a slot signature, an RLC, or null. */
function activeState(q: TraceQueue): string | null | undefined {
  if (q.hqds !== null && q.hqds.length > 0) {
    const sig = slotSignature(q.hqds);
    return sig === 'unmapped' ? null : `active ${sig.includes(':') ? sig : `pipe ${sig.replace('/', ' queue ')}`}`;
  }
  if (q.sdma) return q.sdma[2] === 1 ? `active sdma ${q.sdma[0]}/${q.sdma[1]}` : null;
  // sysfs-only sample: nothing known about the hardware state
  if (q.hqds === null) return undefined;
  return null;
}

function queueThread(hqdSamples: readonly TraceSample[], q: QueueUsage, pid: number, tid: number, endOfTrace: number): ChromeTraceEvent[] {
  const from = q.createdNs ?? q.firstSeenNs;
  const to = q.destroyedNs ?? endOfTrace;
  const label = `${q.type} ${q.key}`;
  const out = [meta('thread_name', pid, tid, label), meta('thread_sort_index', pid, tid, tid)];
  out.push(span(label, pid, tid, from, to, 'queue', { key: q.key, qids: q.qids, gpuId: q.gpuId, priority: q.priority.final }));
  const points: { t: number; state: string | null }[] = [];
  let prev: { q: TraceQueue | undefined; state: string | null | undefined } | null = null;
  for (const s of hqdSamples) {
    if (s.t_ns < from || s.t_ns > to) continue;
    const mine = s.processes.find((p) => p.pid === pid)?.queues.find((x) => x.key === q.key);
    // the state string is rebuilt only when the queue's hardware state changed
    const same: boolean = prev !== null && (mine === prev.q || (mine !== undefined && prev.q !== undefined && sameQueueState(mine, prev.q)));
    const state: string | null | undefined = same ? prev!.state : mine ? activeState(mine) : null;
    prev = { q: mine, state };
    if (state !== undefined) points.push({ t: s.t_ns, state });
  }
  for (const iv of timeline(points, to)) out.push(span(iv.state, pid, tid, iv.from, Math.min(iv.to, to), 'active'));
  return out;
}

function processTrack(trace: Trace, hqdSamples: readonly TraceSample[], report: QueueUsageReport, endOfTrace: number): ChromeTraceEvent[] {
  const out: ChromeTraceEvent[] = [];
  for (const p of report.processes) {
    out.push(meta('process_name', p.pid, 0, `pid ${p.pid}${p.nsPid !== null ? ` (ns pid ${p.nsPid})` : ''}`), meta('process_sort_index', p.pid, 0, p.pid));
    out.push(meta('thread_name', p.pid, 0, 'process'));
    const tidOf = new Map(p.queues.map((q, i) => [q.key, i + 1]));
    p.queues.forEach((q, i) => out.push(...queueThread(hqdSamples, q, p.pid, i + 1, endOfTrace)));
    let last: number | null = null;
    // only samples that list queues: a sysfs-less trace's in-between samples know nothing of them
    for (const s of trace.samples.filter((x) => listsQueues(x, trace.header))) {
      const proc = s.processes.find((x) => x.pid === p.pid);
      const n = proc ? proc.queues.length : 0;
      if ((proc || last !== null) && n !== last) out.push({ name: 'queues', ph: 'C', ts: us(s.t_ns), pid: p.pid, tid: 0, args: { queues: n } });
      if (proc || last !== null) last = n;
    }
    for (const e of trace.events) {
      if (e.pid !== p.pid || e.event === 'hqd-mapped' || e.event === 'hqd-unmapped') continue;
      const tid = e.key !== undefined ? (tidOf.get(e.key) ?? 0) : 0;
      const args: Record<string, unknown> = { sample: e.sample };
      if (e.key !== undefined) args.key = e.key;
      if (e.from !== undefined) args.from = e.from;
      if (e.to !== undefined) args.to = e.to;
      out.push(instant(e.event, p.pid, tid, e.t_ns, 'p', 'lifecycle', args));
    }
  }
  return out;
}

const slotTid = (inst: number, pipe: number, queue: number): number => 1 + inst * 10000 + pipe * 100 + queue;

/** Holder of every active HQD slot ("inst/pipe/queue") of one GPU in one sample (a GPU of unknown node: its queues only). */
function slotHolders(s: TraceSample, gpu: TraceGpu, knownGpus: ReadonlySet<string>): Map<string, string> {
  const held = new Map<string, string>();
  const node = gpu.node;
  for (const p of s.processes) {
    for (const q of p.queues) {
      // by gpu_id; by node only where the gpu_id is not one of the header's GPUs
      const mine = q.gpuId === gpu.gpuId || (node !== null && q.node === node && (q.gpuId === null || !knownGpus.has(q.gpuId)));
      if (!mine) continue;
      for (const h of q.hqds ?? []) if (h[3] === 1) held.set(`${h[0]}/${h[1]}/${h[2]}`, q.key);
    }
  }
  if (node !== null) for (const [n, inst, pp, qq] of s.unmatchedHqds) if (n === node) held.set(`${inst}/${pp}/${qq}`, 'unmatched (MQD not in mqds)');
  return held;
}

/** Per GPU node: for every HQD slot ever active, which queue held it when. */
function gpuTracks(trace: Trace, hqdSamples: TraceSample[], endOfTrace: number): ChromeTraceEvent[] {
  const out: ChromeTraceEvent[] = [];
  const knownGpus = new Set(trace.header.gpus.map((g) => g.gpuId));
  trace.header.gpus.forEach((g, gi) => {
    const pid = GPU_PID_BASE + gi;
    out.push(meta('process_name', pid, 0, `GPU node ${g.node ?? '?'} (gpu_id ${g.gpuId}, ${g.numXcc} XCC)`), meta('process_sort_index', pid, 0, GPU_PID_BASE + gi));
    const held = mapChanged(hqdSamples, (s) => slotHolders(s, g, knownGpus));
    const slots = [...new Set(held.flatMap((h, i) => (i > 0 && h === held[i - 1] ? [] : [...h.keys()])))];
    for (const slot of slots) {
      const [inst, pipe, queue] = slot.split('/').map(Number);
      const tid = slotTid(inst, pipe, queue);
      out.push(meta('thread_name', pid, tid, `XCC ${inst} pipe ${pipe} queue ${queue}`), meta('thread_sort_index', pid, tid, tid));
      const iv = timeline(
        held.map((h, i) => ({ t: hqdSamples[i].t_ns, state: h.get(slot) ?? null })),
        endOfTrace,
      );
      for (const x of iv) out.push(span(x.state, pid, tid, x.from, x.to, 'hqd', { slot }));
    }
  });
  return out;
}

function markerTrack(trace: Trace): ChromeTraceEvent[] {
  const out = [meta('process_name', MARKERS_PID, 0, 'gpucolo markers'), meta('process_sort_index', MARKERS_PID, 0, -1)];
  for (const m of trace.markers) {
    const { kind: _k, t_ns: _t, marker, ...rest } = m;
    out.push(instant(marker, MARKERS_PID, 0, m.t_ns, 'g', 'marker', rest));
  }
  return out;
}

/** Metadata first, then per track in time order, parents before the spans nested in them. */
function ordered(events: ChromeTraceEvent[]): ChromeTraceEvent[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => {
      const ma = a.e.ph === 'M' ? 0 : 1;
      const mb = b.e.ph === 'M' ? 0 : 1;
      return ma - mb || a.e.pid - b.e.pid || a.e.tid - b.e.tid || a.e.ts - b.e.ts || (b.e.dur ?? 0) - (a.e.dur ?? 0) || a.i - b.i;
    })
    .map((x) => x.e);
}

/** The Chrome trace-event object for a trace (pass its report when already analyzed). */
export function toPerfetto(trace: Trace, report: QueueUsageReport = analyzeTrace(trace)): ChromeTrace {
  const endOfTrace = trace.samples.reduce((m, s) => Math.max(m, s.t_ns), trace.footer?.t_ns ?? 0);
  const hqdSamples = trace.samples.filter(hasHqdData);
  const events = [...markerTrack(trace), ...processTrack(trace, hqdSamples, report, endOfTrace), ...gpuTracks(trace, hqdSamples, endOfTrace)];
  return {
    traceEvents: ordered(events),
    displayTimeUnit: 'ms',
    otherData: {
      source: trace.origin.path,
      format: trace.origin.format,
      startedAt: trace.header.startedAt,
      tracerVersion: trace.header.gpucoloVersion,
    },
  };
}

/** Writes the Perfetto JSON of a trace to `file` atomically (temp file + rename). */
export function writePerfetto(trace: Trace, file: string): ChromeTrace {
  const out = toPerfetto(trace);
  writeFileAtomic(file, JSON.stringify(out));
  return out;
}
