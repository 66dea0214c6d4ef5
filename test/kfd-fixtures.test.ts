/**
 * Both parser paths against the shared synthetic MI300 fixture, checked against the ground truth
 * in test/fixtures/kfd/README.upstream.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHqds, parseMqds, parseRls, readKfdProcs, readTopology } from '../src/index.js';
import { DEBUGFS, FIXTURES, IMPLS, SYSFS } from './helpers/impls.js';

const read = (f: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', f));

describe.each(IMPLS)('%s parsers on the MI300 (GC 9.4.3, 4 XCC) fixture', (impl) => {
  it('mqds: processes, queue kinds newest first, one MQD block per XCC', () => {
    const m = parseMqds(read('mqds'), { impl });
    expect(m.path).toBe(impl);
    expect(m.issues).toEqual([]);
    expect(m.partial).toBe(false);
    expect(m.lines).toBe(790);
    expect(m.processes.map((p) => [p.pid, p.pasidField])).toEqual([
      [41872, '41872'],
      [42117, '42117'],
    ]);
    const p1 = m.processes[0].queues;
    expect(p1.map((q) => q.type)).toEqual(['sdma', 'compute', 'compute']);
    expect(p1.every((q) => q.gpuId === '7c1e')).toBe(true);
    // compute: 4 XCC x 64 lines x 8 dwords; SDMA: 16 lines
    expect(p1[1].blocks.map((b) => b.words.length)).toEqual([512, 512, 512, 512]);
    expect(p1[0].blocks.map((b) => b.words.length)).toEqual([128]);
    expect(p1[0].extraSdmaCopies).toBe(0);
  });

  it('mqds: decoded MQD fields (address per XCC, priority, ring, doorbell, AQL)', () => {
    const m = parseMqds(read('mqds'), { impl });
    const [sdma, q1, q0] = m.processes[0].queues;
    expect(q0.blocks.map((b) => b.compute!.mqdAddress)).toEqual(['0x712000', '0x715000', '0x718000', '0x71b000']);
    expect(q0.blocks[0].compute).toMatchObject({
      headerOk: true,
      pipePriority: 1,
      queuePriority: 7,
      ringBase: '0x7f3a8c200000',
      ringSizeBytes: 1048576,
      doorbell: 0x1000,
      aql: true,
    });
    expect(q1.blocks[0].compute).toMatchObject({ mqdAddress: '0x71e000', pipePriority: 2, queuePriority: 11, doorbell: 0x1002 });
    // compute_current_logic_xcc_id = (xcc_start + xcc) % 4 with xcc_start 1
    expect(q1.blocks.map((b) => b.compute!.logicalXcc)).toEqual([1, 2, 3, 0]);
    expect(sdma.blocks[0].sdma).toEqual({
      ringBase: '0x7f3a8a000000',
      ringSizeBytes: 1048576,
      doorbell: 0x1188,
      engine: 2,
      rlc: 0,
      rptrAddress: '0x7f3a9d4f2080',
    });
    const inactive = m.processes[1].queues[0].blocks[0].compute!;
    expect(inactive).toMatchObject({ mqdAddress: '0x72a000', cpHqdActive: 0, vmid: 0 });
  });

  it('hqds: 4 XCC x (HIQ + 24 CP slots) + 64 SDMA RLCs, 8 active CP slots, 1 active RLC', () => {
    const h = parseHqds(read('hqds'), { impl });
    expect(h.issues).toEqual([]);
    expect(h.nodes).toHaveLength(1);
    const n = h.nodes[0];
    expect([n.node, n.gpuId, n.stopped]).toEqual([2, '7c1e', false]);
    const cp = n.slots.filter((s) => s.kind === 'cp');
    expect(cp).toHaveLength(96);
    expect(n.slots.filter((s) => s.kind === 'hiq').map((s) => [s.inst, s.mec, s.pipe, s.queue])).toEqual([
      [0, 2, 0, 0],
      [1, 2, 0, 0],
      [2, 2, 0, 0],
      [3, 2, 0, 0],
    ]);
    expect(n.slots.every((s) => s.kind === 'sdma' || s.registers.length === 56)).toBe(true);
    expect(n.slots.filter((s) => s.kind === 'sdma').every((s) => s.registers.length === 44)).toBe(true);
    const active = cp.filter((s) => s.active).map((s) => `${s.inst}/${s.pipe}/${s.queue}=${s.mqdAddress}`);
    expect(active).toEqual([
      '0/0/2=0x712000', '0/1/2=0x71e000',
      '1/0/2=0x715000', '1/1/2=0x721000',
      '2/0/2=0x718000', '2/1/2=0x724000',
      '3/0/2=0x71b000', '3/1/2=0x727000',
    ]);
    // value i of a CP slot == MQD dword 128+i: priorities at idx 5/6
    const busy = cp.find((s) => s.inst === 0 && s.pipe === 0 && s.queue === 2)!;
    expect([busy.pipePriority, busy.queuePriority, busy.vmid, busy.busy]).toEqual([1, 7, 3, true]);
    const idle = cp.find((s) => s.inst === 0 && s.pipe === 1 && s.queue === 2)!;
    expect([idle.pipePriority, idle.queuePriority, idle.busy]).toEqual([2, 11, false]);
    // per-XCC MMIO apertures, informational only
    expect([...new Set(cp.map((s) => s.firstAddress))]).toEqual([0xc914, 0xcc914, 0x10c914, 0x1cc914]);
    const sdma = n.slots.filter((s) => s.kind === 'sdma' && s.active);
    expect(sdma.map((s) => [s.pipe, s.queue, s.ringBase])).toEqual([[2, 0, '0x7f3a8a000000']]);
  });

  it('rls: 63 dwords, MAP_PROCESS x2 (aldebaran) and MAP_QUEUES x3 with decoded fields', () => {
    const r = parseRls(read('rls'), { impl });
    expect(r.issues).toEqual([]);
    const n = r.nodes[0];
    expect([n.node, n.gpuId, n.hasRunlist, n.ibDwords, n.chained]).toEqual([2, '7c1e', true, 63, false]);
    expect(n.packets.map((p) => [p.offset * 4, p.name, p.dwords])).toEqual([
      [0x00, 'MAP_PROCESS', 21],
      [0x54, 'MAP_PROCESS', 21],
      [0xa8, 'MAP_QUEUES', 7],
      [0xc4, 'MAP_QUEUES', 7],
      [0xe0, 'MAP_QUEUES', 7],
    ]);
    expect(n.processes.map((p) => [p.variant, p.pasid, p.quantum, p.numQueues, p.queues.length, p.sdmaEnable, p.shMemConfig])).toEqual([
      ['aldebaran', 0x8003, 10, 1, 0, true, 0x1118],
      ['aldebaran', 0x8002, 10, 3, 3, true, 0x1118],
    ]);
    expect(n.processes[1].queues).toEqual([
      { offset: 42, engine: 'sdma2', engineSel: 2, extendedEngineSel: 1, queueType: 0, queueSel: 1, doorbell: 0x1188, mqdAddress: '0x6e7000', wptrAddress: '0x7f3a9d4f2000' },
      { offset: 49, engine: 'compute', engineSel: 0, extendedEngineSel: 0, queueType: 0, queueSel: 1, doorbell: 0x1002, mqdAddress: '0x71e000', wptrAddress: '0x7f3a9d4f4038' },
      { offset: 56, engine: 'compute', engineSel: 0, extendedEngineSel: 0, queueType: 0, queueSel: 1, doorbell: 0x1000, mqdAddress: '0x712000', wptrAddress: '0x7f3a9d4f6038' },
    ]);
  });

  it('the commented .txt copies parse the same after their # lines, which are reported', () => {
    for (const [txt, plain, n] of [
      ['debugfs_kfd_mqds_gc943_4xcc.txt', 'mqds', 3],
      ['debugfs_kfd_hqds_gc943_4xcc.txt', 'hqds', 4],
    ] as const) {
      const withComments = fs.readFileSync(path.join(FIXTURES, txt));
      const parse = plain === 'mqds' ? parseMqds : parseHqds;
      const a = parse(withComments, { impl });
      expect(a.issues).toHaveLength(n);
      expect(a.issues.every((i) => i.message.startsWith('unrecognised line: "# SYNTHESIZED') || i.message.startsWith('unrecognised line: "#'))).toBe(true);
      expect(a.issues.map((i) => i.line)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      const stripped = withComments.toString('latin1').split('\n').filter((l) => !l.startsWith('#')).join('\n');
      const b = parse(stripped, { impl });
      expect(b.issues).toEqual([]);
      expect(JSON.stringify(a, (k, v) => (k === 'line' || k === 'issues' || k === 'partial' || k === 'lines' ? undefined : v))).toBe(
        JSON.stringify(b, (k, v) => (k === 'line' || k === 'issues' || k === 'partial' || k === 'lines' ? undefined : v)),
      );
    }
  });

  it('sysfs topology: node 2, gpu_id 31774 = 7c1e, gfx942, 4 XCC, 80 CUs, u64 values kept exact', () => {
    const t = readTopology({ sysfsRoot: SYSFS, impl });
    expect(t.issues).toEqual([]);
    expect(t.nodes).toHaveLength(1);
    const n = t.nodes[0];
    expect([n.node, n.gpuId, n.gpuIdHex, n.name, n.isGpu]).toEqual([2, 31774, '7c1e', 'ip discovery', true]);
    expect(n.gpu).toMatchObject({ gfxTarget: 'gfx942', gfxTargetVersion: 90402, numXcc: 4, computeUnits: 80, deviceId: 29858, numCpQueues: 120 });
    expect(n.properties.hive_id).toBe('6172618472385129985');
    expect(Object.keys(n.properties)).toHaveLength(38);
    expect(Object.keys(n.properties)[0]).toBe('cpu_cores_count');
    expect(Object.keys(n.properties).at(-1)).toBe('max_engine_clk_ccompute');
  });

  it('sysfs proc: queue files without newline, per-GPU stats and counters', () => {
    const p = readKfdProcs({ sysfsRoot: SYSFS, impl });
    expect(p.issues).toEqual([]);
    expect(p.procs.map((x) => x.pid)).toEqual([41872, 42117]);
    expect(p.procs[0]).toEqual({
      pid: 41872,
      pasid: 0,
      queues: [
        { qid: 0, typeCode: 0, type: 'compute', sizeBytes: 1048576, gpuId: 31774 },
        { qid: 1, typeCode: 0, type: 'compute', sizeBytes: 1048576, gpuId: 31774 },
        { qid: 2, typeCode: 4, type: 'sdma-xgmi', sizeBytes: 1048576, gpuId: 31774 },
      ],
      gpus: [{ gpuId: 31774, vramBytes: 17184063488, sdmaUs: 152340, evictedMs: 4, cuOccupancy: 38, faults: 0, pageIn: 0, pageOut: 0 }],
    });
    expect(readKfdProcs({ sysfsRoot: SYSFS, impl, pids: [42117, 999] }).procs.map((x) => x.pid)).toEqual([42117]);
  });
});
