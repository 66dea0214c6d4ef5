/**
 * Sysfs-only samples assembled per process (src/trace/assemble-sysfs.ts) against a whole join of
 * the same tables, on random sequences: processes come and go, queues are created and destroyed,
 * ids are reused with other types, the proc directory becomes unreadable for a sample, a filter
 * keeps some pids only. Every sample must be the same as a fresh assembler makes it.
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NativeSample } from '../src/native.js';
import { readTopology } from '../src/kfd/parse.js';
import type { ProcsRaw, ReadIssue } from '../src/kfd/raw.js';
import { SampleAssembler } from '../src/trace/assemble.js';
import { EventDeriver } from '../src/trace/events.js';
import { EXAMPLE } from './helpers/kfd-tree.js';

const topology = readTopology({ sysfsRoot: path.join(EXAMPLE, 'sys'), impl: 'ts' });
const procRoot = path.join(EXAMPLE, 'proc');

/** pid -> qid -> [type, gpu id] */
type Tree = Map<number, Map<number, [number, number]>>;

function tables(tree: Tree, unreadable: boolean): ProcsRaw {
  if (unreadable) {
    const dir = '/sys/class/kfd/kfd/proc';
    const issue: ReadIssue = { path: dir, severity: 'error', message: `cannot read ${dir} (EACCES)`, code: 'EACCES' };
    return { procs: new Float64Array(), queues: new Float64Array(), metrics: new Float64Array(), issues: [issue] };
  }
  const procs: number[] = [];
  const queues: number[] = [];
  [...tree.keys()]
    .sort((a, b) => a - b)
    .forEach((pid, row) => {
      const qs = [...tree.get(pid)!.entries()].sort((a, b) => a[0] - b[0]);
      procs.push(pid, 0x8000 + pid, queues.length / 5, qs.length, 0, 0);
      for (const [qid, [type, gpu]] of qs) queues.push(row, qid, type, 4096, gpu);
    });
  return { procs: Float64Array.from(procs), queues: Float64Array.from(queues), metrics: new Float64Array(), issues: [] };
}

const sample = (seq: number, procs: ProcsRaw): NativeSample => ({ seq, intendedNs: seq, actualNs: seq, readNs: 0, parseNs: 0, missed: 0, dropped: 0, procs });

const step = fc.record({
  pid: fc.integer({ min: 100, max: 108 }),
  qid: fc.integer({ min: 0, max: 5 }),
  op: fc.constantFrom('add-queue', 'add-queue', 'remove-queue', 'remove-process', 'unreadable', 'nothing'),
  type: fc.constantFrom(0, 1, 2, 7),
  gpu: fc.constantFrom(31774, 31774, 4242),
});

describe('per-process assembly of sysfs-only samples', () => {
  for (const filtered of [false, true]) {
    it(`equals a whole join at every step${filtered ? ', with a pid filter' : ''}`, () => {
      const keep = filtered ? (pid: number) => pid % 2 === 0 : undefined;
      fc.assert(
        fc.property(fc.array(step, { minLength: 5, maxLength: 40 }), (steps) => {
          const tree: Tree = new Map();
          const a = new SampleAssembler({ topology, procRoot, impl: 'ts', keep });
          // events from repeated process objects (skipped) and from fresh ones (compared) agree
          const dA = new EventDeriver();
          const dB = new EventDeriver();
          steps.forEach((s, seq) => {
            if (s.op === 'add-queue') {
              if (!tree.has(s.pid)) tree.set(s.pid, new Map());
              tree.get(s.pid)!.set(s.qid, [s.type, s.gpu]);
            } else if (s.op === 'remove-queue') tree.get(s.pid)?.delete(s.qid);
            else if (s.op === 'remove-process') tree.delete(s.pid);
            const raw = sample(seq, tables(tree, s.op === 'unreadable'));
            const sa = a.assemble(raw);
            const sb = new SampleAssembler({ topology, procRoot, impl: 'ts', keep }).assemble(raw);
            const { join_ns: _a, ...got } = sa;
            const { join_ns: _b, ...want } = sb;
            expect(got).toEqual(want);
            expect(dA.update(sa)).toEqual(dB.update(sb));
          });
        }),
        { numRuns: Number(process.env.GPUCOLO_FUZZ_RUNS ?? 150) },
      );
    });
  }

  it('an unchanged process keeps its trace process (the same object); a changed one gets a new one', () => {
    const tree: Tree = new Map([
      [100, new Map([[0, [0, 31774]]])],
      [101, new Map([[0, [1, 31774]]])],
    ]);
    const a = new SampleAssembler({ topology, procRoot, impl: 'ts' });
    const first = a.assemble(sample(0, tables(tree, false)));
    tree.get(101)!.set(1, [0, 31774]);
    const second = a.assemble(sample(1, tables(tree, false)));
    expect(second.processes[0]).toBe(first.processes[0]);
    expect(second.processes[1]).not.toBe(first.processes[1]);
    expect(second.processes[1].queues.map((q) => q.key)).toEqual(['101/q0', '101/q1']);
  });
});
