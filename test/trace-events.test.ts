/**
 * EventDeriver (src/trace/events.ts) on hand-made samples: slots a sample did not read (hqds null)
 * stay as they were, the same slot rows again make no event, moved slots and priorities do, and a
 * new process object with the same content makes none.
 */
import { describe, expect, it } from 'vitest';
import { EventDeriver } from '../src/trace/events.js';
import type { TraceQueue, TraceSample } from '../src/trace/schema.js';

type Hqds = TraceQueue['hqds'];

function queue(hqds: Hqds, priority: { pipe: number; queue: number } | null): TraceQueue {
  return {
    key: '7/q0',
    qid: 0,
    type: 'compute',
    gpuId: '7c1e',
    node: 2,
    priority: priority && { ...priority, level: 'normal' },
    mqd: '0x1000',
    hqds,
    sdma: null,
    inRunlist: true,
  };
}

let seq = 0;
function sample(hqds: Hqds, priority: { pipe: number; queue: number } | null): TraceSample {
  seq++;
  // a fresh object graph every time, as SampleAssembler makes for a joined sample
  return {
    kind: 'sample',
    t_ns: seq * 1e6,
    seq,
    intended_ns: seq * 1e6,
    read_ns: 0,
    parse_ns: 0,
    missed: 0,
    join_ns: 0,
    debugfs: hqds !== null,
    processes: [{ pid: 7, nsPid: null, queues: [queue(hqds && hqds.map((h) => [...h] as [number, number, number, number | null]), priority)] }],
    unmatchedHqds: [],
    issues: [],
  };
}

const names = (d: EventDeriver, s: TraceSample): string[] =>
  d.update(s).map((e) => `${e.event}${e.inst !== undefined ? ` ${e.inst}/${e.pipe}/${e.queue}` : ''}`);

describe('EventDeriver', () => {
  it('derives slot and priority events only from what a sample read', () => {
    const d = new EventDeriver();
    const a: Hqds = [
      [0, 1, 2, 1],
      [1, 1, 2, 0],
    ];
    const moved: Hqds = [
      [0, 1, 2, 0],
      [1, 1, 2, 1],
    ];
    expect(names(d, sample(a, { pipe: 1, queue: 7 }))).toEqual([]); // the baseline
    expect(names(d, sample(a, { pipe: 1, queue: 7 }))).toEqual([]); // same content, new objects
    expect(names(d, sample(null, null))).toEqual([]); // hqds and priority not read: nothing changed
    expect(names(d, sample(a, { pipe: 1, queue: 7 }))).toEqual([]); // read again, as before the gap
    expect(names(d, sample(moved, { pipe: 1, queue: 7 }))).toEqual(['hqd-unmapped 0/1/2', 'hqd-mapped 1/1/2']);
    expect(names(d, sample(null, null))).toEqual([]);
    expect(names(d, sample(moved, { pipe: 2, queue: 11 }))).toEqual(['priority-changed']);
    // an active bit that is unknown (null) is not active: the slot is unmapped
    expect(names(d, sample([[0, 1, 2, 0], [1, 1, 2, null]], { pipe: 2, queue: 11 }))).toEqual(['hqd-unmapped 1/1/2']);
    expect(names(d, sample(a, { pipe: 2, queue: 11 }))).toEqual(['hqd-mapped 0/1/2']);
  });
});
