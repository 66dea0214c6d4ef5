/**
 * Builds gpucolo traces by hand for tests: record constructors with sensible defaults and a
 * writer that puts them into a JSONL file. Events are derived from the samples with the
 * recorder's own EventDeriver, so hand-made traces carry the events a real one would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventDeriver } from '../../src/trace/events.js';
import {
  TRACE_SCHEMA,
  type TraceEvent,
  type TraceFooter,
  type TraceHeader,
  type TraceMarker,
  type TraceProcess,
  type TraceQueue,
  type TraceSample,
} from '../../src/trace/schema.js';

export const GPU = { node: 2, gpuId: '7c1e', name: 'ip discovery', gfxTarget: 'gfx942', numXcc: 4 };

export function header(over: Partial<TraceHeader> = {}): TraceHeader {
  return {
    kind: 'header',
    t_ns: 0,
    schema: TRACE_SCHEMA,
    gpucoloVersion: '0.1.0',
    startedAt: '2026-02-04T10:00:00.000Z',
    monotonicOriginNs: '123456789000',
    host: { hostname: 'mi308x', kernel: '6.8.0' },
    gpus: [GPU],
    sources: ['sysfs', 'debugfs'],
    readable: ['sysfs', 'debugfs'],
    intervalNs: 100e6,
    debugfsIntervalNs: 100e6,
    roots: { sysfs: '/sys', debugfs: '/sys/kernel/debug', proc: '/proc' },
    impl: 'ts',
    sampler: 'native-thread',
    target: { mode: 'command', pids: [], command: ['python3', 'model.py'] },
    options: { durationNs: null, baselineNs: 200e6, tailNs: 200e6, stopAfterNs: null },
    ...over,
  };
}

/** A compute queue mapped on `xccs` XCCs (all on slot pipe/queue) unless `active` says otherwise per XCC. */
export function compute(
  key: string,
  opts: { qid?: number | null; mqd: string; slot?: [number, number] | null; active?: number[]; prio?: [number, number]; xccs?: number },
): TraceQueue {
  const xccs = opts.xccs ?? 4;
  const [pipe, queue] = opts.prio ?? [1, 7];
  const slot = opts.slot === undefined ? null : opts.slot;
  return {
    key,
    qid: opts.qid === undefined ? null : opts.qid,
    type: 'compute',
    gpuId: GPU.gpuId,
    node: GPU.node,
    priority: { pipe, queue, level: (['low', 'normal', 'high'] as const)[pipe] },
    mqd: opts.mqd,
    hqds: slot === null ? [] : Array.from({ length: xccs }, (_, i) => [i, slot[0], slot[1], opts.active ? opts.active[i] : 1] as [number, number, number, number]),
    sdma: null,
    inRunlist: slot !== null,
  };
}

export function sdma(key: string, opts: { qid?: number | null; engine: number; rlc: number; active?: boolean }): TraceQueue {
  return {
    key,
    qid: opts.qid === undefined ? null : opts.qid,
    type: 'sdma-xgmi',
    gpuId: GPU.gpuId,
    node: GPU.node,
    priority: null,
    mqd: null,
    hqds: [],
    sdma: [opts.engine, opts.rlc, opts.active === false ? 0 : 1],
    inRunlist: true,
  };
}

export function sample(seq: number, t_ns: number, processes: TraceProcess[], over: Partial<TraceSample> = {}): TraceSample {
  return {
    kind: 'sample',
    t_ns,
    seq,
    intended_ns: t_ns,
    read_ns: 1000,
    parse_ns: 500,
    join_ns: 200,
    debugfs: true,
    missed: 0,
    processes,
    unmatchedHqds: [],
    issues: [],
    ...over,
  };
}

export function proc(pid: number, queues: TraceQueue[]): TraceProcess {
  return { pid, nsPid: null, queues };
}

export function marker(marker: TraceMarker['marker'], t_ns: number, over: Partial<TraceMarker> = {}): TraceMarker {
  return { kind: 'marker', t_ns, marker, ...over };
}

export function footer(t_ns: number, over: Partial<TraceFooter> = {}): TraceFooter {
  return { kind: 'footer', t_ns, samples: 0, events: 0, missedIntervals: 0, endedBy: 'command-exit', ...over };
}

/** Events a recorder would write for these samples. */
export function deriveEvents(samples: TraceSample[]): TraceEvent[] {
  const d = new EventDeriver();
  return samples.flatMap((s) => d.update(s));
}

/** Header, then samples/events/markers merged by time (events right after their sample), then the footer. */
export function records(h: TraceHeader, samples: TraceSample[], markers: TraceMarker[] = [], foot: TraceFooter | null = null): object[] {
  const events = deriveEvents(samples);
  const body: { t: number; order: number; r: object }[] = [];
  samples.forEach((s, i) => body.push({ t: s.t_ns, order: i * 3, r: s }));
  for (const e of events) body.push({ t: e.t_ns, order: samples.findIndex((s) => s.seq === e.sample) * 3 + 1, r: e });
  for (const m of markers) body.push({ t: m.t_ns, order: Infinity, r: m });
  body.sort((a, b) => a.t - b.t || a.order - b.order);
  const out: object[] = [h, ...body.map((b) => b.r)];
  if (foot) out.push({ ...foot, samples: samples.length, events: events.length });
  return out;
}

export function tmpDir(prefix = 'gpucolo-trace-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes records as JSON Lines (plus optional raw text at the end, e.g. a truncated line); returns the path. */
export function writeJsonl(recs: object[], opts: { tail?: string; dir?: string; name?: string } = {}): string {
  const file = path.join(opts.dir ?? tmpDir(), opts.name ?? 'trace.jsonl');
  fs.writeFileSync(file, recs.map((r) => `${JSON.stringify(r)}\n`).join('') + (opts.tail ?? ''));
  return file;
}

/**
 * The reference scenario (100 ms sampling, 30 samples, seq = index):
 *  - seq 0-1 baseline (no process); 'baseline-end' at t(1); 'command-started' (pid 100) at 150 ms
 *  - pid 100 queue count per sample: 0 (seq 2), 2 (seq 3: q0,q1), 3 (seq 4-25: + sdma q2),
 *    2 (seq 26, q2 gone), 0 (seq 27), absent from seq 28 on (exited)
 *    q0: compute, slot pipe 0/queue 2 on 4 XCCs, only 3 XCCs active at seq 12, priority 1/7 -> 2/11 at seq 15
 *    q1: compute, slot 1/2 until seq 9, 3/5 from seq 10 on
 *  - 'stop-signal' at t(25) + 50 ms, 'command-exited' at t(27) + 50 ms
 *  - pid 200: one compute queue q0 (slot 2/3) from seq 5 to the end (alive)
 *  - jitter t - intended = (seq % 5) us; read_ns = 1000 + seq; seq 20 reports 2 missed intervals
 */
export const STEP = 100e6;
export const tOf = (seq: number): number => seq * STEP + (seq % 5) * 1000;

export function lifecycleSamples(): TraceSample[] {
  const out: TraceSample[] = [];
  for (let seq = 0; seq < 30; seq++) {
    const procs: TraceProcess[] = [];
    if (seq >= 2 && seq <= 27) {
      const qs: TraceQueue[] = [];
      if (seq >= 3 && seq <= 26) {
        qs.push(
          compute('100/q0', {
            qid: 0,
            mqd: '0x712000',
            slot: [0, 2],
            active: seq === 12 ? [1, 1, 1, 0] : undefined,
            prio: seq >= 15 ? [2, 11] : [1, 7],
          }),
        );
        qs.push(compute('100/q1', { qid: 1, mqd: '0x71e000', slot: seq >= 10 ? [3, 5] : [1, 2] }));
      }
      if (seq >= 4 && seq <= 25) qs.push(sdma('100/q2', { qid: 2, engine: 2, rlc: 0 }));
      procs.push(proc(100, qs));
    }
    if (seq >= 5) procs.push(proc(200, [compute('200/q0', { qid: 0, mqd: '0x72a000', slot: [2, 3] })]));
    out.push(sample(seq, tOf(seq), procs, { intended_ns: seq * STEP, read_ns: 1000 + seq, missed: seq === 20 ? 2 : 0 }));
  }
  return out;
}

export function lifecycleMarkers(): TraceMarker[] {
  return [
    marker('baseline-start', 0),
    marker('baseline-end', tOf(1)),
    marker('command-started', 150e6, { pid: 100, pgid: 100, argv: ['python3', 'model.py'] }),
    marker('stop-signal', tOf(25) + 50e6, { pid: 100, signal: 'SIGTERM' }),
    marker('command-exited', tOf(27) + 50e6, { pid: 100, code: 0, signal: null }),
  ];
}

export function lifecycleRecords(): object[] {
  return records(header(), lifecycleSamples(), lifecycleMarkers(), footer(tOf(29) + 1000));
}
