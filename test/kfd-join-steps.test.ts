/**
 * Steps of the queue join (src/kfd/join.ts) read alone: each on a small hand-made state, where
 * test/kfd-join.test.ts holds the whole join to its result.
 */
import { describe, expect, it } from 'vitest';
import { countHqdSlots, matchQidGroup, newJoinState, pasidOwners, type Work } from '../src/kfd/join.js';
import type { HqdNode, HqdSlot, Hqds, KfdProcQueue, KfdProcs, Mqds } from '../src/kfd/types.js';

const slot = (kind: HqdSlot['kind'], inst: number, active: boolean | null, pipe = 0, queue = 0): HqdSlot => ({
  kind,
  inst,
  instPrinted: true,
  mec: null,
  pipe,
  queue,
  line: 1,
  firstAddress: 0,
  registers: new Uint32Array(0),
  active,
  mqdAddress: null,
  vmid: null,
  pipePriority: null,
  queuePriority: null,
  ringBase: null,
  busy: null,
});

const dbgWork = (pid: number, order: number, mqdAddress: string): Work => ({
  pid,
  order,
  mqd: null,
  q: {
    qid: null,
    qidMatch: 'unmatched',
    source: 'debugfs',
    type: 'compute',
    aql: true,
    gpuId: '7c1e',
    node: 2,
    sizeBytes: 4096,
    priority: null,
    doorbell: null,
    ringBase: null,
    mqdAddresses: [mqdAddress],
    hqds: [],
    sdma: null,
    inRunlist: null,
    mqdsLine: order + 1,
  },
});

const sysQueue = (qid: number): KfdProcQueue => ({ qid, typeCode: 0, type: 'compute', sizeBytes: null, gpuId: 0x7c1e });

describe('countHqdSlots', () => {
  it('counts CP slots per Inst in the order first seen, HIQ apart, and active SDMA RLCs', () => {
    const node: HqdNode = {
      node: 2,
      gpuId: '7c1e',
      line: 1,
      stopped: false,
      slots: [slot('hiq', 1, true), slot('cp', 1, true), slot('cp', 1, false), slot('cp', 0, true), slot('sdma', 0, true), slot('sdma', 1, false)],
    };
    const { xcc, sdma } = countHqdSlots(node);
    expect([...xcc.keys()]).toEqual([1, 0]);
    expect(xcc.get(1)).toEqual({ inst: 1, cpSlots: 2, activeCp: 1, hiqActive: true });
    expect(xcc.get(0)).toEqual({ inst: 0, cpSlots: 1, activeCp: 1, hiqActive: false });
    expect(sdma).toBe(1);
  });

  it('gives null where a slot was cut before its active bit', () => {
    const node: HqdNode = { node: 2, gpuId: '7c1e', line: 1, stopped: false, slots: [slot('cp', 0, null), slot('cp', 0, true), slot('hiq', 0, null), slot('sdma', 0, null)] };
    const { xcc, sdma } = countHqdSlots(node);
    expect(xcc.get(0)).toEqual({ inst: 0, cpSlots: 2, activeCp: null, hiqActive: null });
    expect(sdma).toBeNull();
  });
});

describe('matchQidGroup', () => {
  const hqds = { nodes: [{ node: 2, gpuId: '7c1e', line: 1, stopped: false, slots: [] }] } as unknown as Hqds;
  const procs = { procs: [] } as unknown as KfdProcs;

  it('pairs by history first, then the oldest by creation order, and lists the sysfs queue left over', () => {
    const st = newJoinState({ hqds, procs });
    const older = dbgWork(10, 0, '0xa000');
    const newer = dbgWork(10, 1, '0xb000');
    const g = { sys: [sysQueue(5), sysQueue(2), sysQueue(7)], dbg: [newer, older] };
    matchQidGroup(st, 10, '7c1e|compute', g, new Map([['mqd:0xb000', 7]]));
    expect([newer.q.qid, newer.q.qidMatch, newer.q.source]).toEqual([7, 'history', 'debugfs+sysfs']);
    expect([older.q.qid, older.q.qidMatch]).toEqual([2, 'creation-order']);
    expect(st.warnings).toEqual(['process 10: 3 compute queue(s) on gpu 7c1e in sysfs but 2 in mqds (created or destroyed between the reads?)']);
    expect(st.work.map((w) => [w.pid, w.order, w.q.qid, w.q.qidMatch, w.q.source, w.q.node])).toEqual([
      [10, Number.MAX_SAFE_INTEGER - 1024 + 5, 5, 'sysfs-only', 'sysfs', 2],
    ]);
    expect(st.byPid.get(10)).toEqual(st.work);
  });

  it("calls one queue on each side 'unique' and warns about nothing", () => {
    const st = newJoinState({ hqds, procs });
    const w = dbgWork(10, 0, '0xa000');
    matchQidGroup(st, 10, '7c1e|compute', { sys: [sysQueue(3)], dbg: [w] }, undefined);
    expect([w.q.qid, w.q.qidMatch, w.q.sizeBytes]).toEqual([3, 'unique', 4096]);
    expect(st.warnings).toEqual([]);
    expect(st.work).toEqual([]);
  });
});

describe('pasidOwners', () => {
  it('takes a real PASID from the mqds header, then from sysfs where the header gave none', () => {
    const mqds = {
      processes: [
        { pid: 100, pasidField: '0x8001', line: 1, queues: [] },
        { pid: 200, pasidField: '200', line: 5, queues: [] },
      ],
    } as unknown as Mqds;
    const procs = {
      procs: [
        { pid: 300, pasid: 0x8001, queues: [], gpus: [] },
        { pid: 200, pasid: 7, queues: [], gpus: [] },
        { pid: 400, pasid: 0, queues: [], gpus: [] },
      ],
    } as unknown as KfdProcs;
    expect([...pasidOwners({ mqds, procs })]).toEqual([
      [0x8001, 100],
      [7, 200],
    ]);
  });
});
