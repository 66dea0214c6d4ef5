/** Binary decoding shared by both parser paths. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addr64,
  COMPUTE_HQD_REGS,
  COMPUTE_MQD_DWORDS,
  decodeComputeHqd,
  decodeComputeMqd,
  decodeGpuInfo,
  decodeMapProcess,
  decodeMapQueues,
  decodeSdmaHqd,
  decodeSdmaMqd,
  gfxTargetName,
  priorityLevel,
  SDMA_HQD_REGS,
  SDMA_MQD_DWORDS,
  topologyXccs,
} from '../src/kfd/decode.js';
import { readTopology } from '../src/index.js';
import { joinDumps, type DumpFiles } from '../src/kfd/snapshot.js';
import { parseRlsRaw } from '../src/kfd/parse.js';
import { DEBUGFS, nativeLoaded, SYSFS } from './helpers/impls.js';
import { expectSameJoin } from './helpers/kfd-snapshot-sysfs.js';

describe('decode', () => {
  it('the trace-relevant dword/register sets hold every dword a decoder reads, except busy-only pointers', () => {
    const cases: [string, ReadonlySet<number>, number, (w: Uint32Array) => object][] = [
      ['compute MQD', COMPUTE_MQD_DWORDS, 512, decodeComputeMqd],
      ['SDMA MQD', SDMA_MQD_DWORDS, 128, decodeSdmaMqd],
      ['SDMA MQD, older 130-dword struct', SDMA_MQD_DWORDS, 130, decodeSdmaMqd],
      ['compute HQD', COMPUTE_HQD_REGS, 56, decodeComputeHqd],
      ['SDMA RLC', SDMA_HQD_REGS, 16, decodeSdmaHqd],
    ];
    for (const [what, keep, n, decode] of cases) {
      fc.assert(
        fc.property(fc.uint32Array({ minLength: n, maxLength: n }), fc.uint32Array({ minLength: n, maxLength: n }), (a, b) => {
          // b takes a's value at every dword of the set: the decoded fields may differ in busy only
          const mixed = b.map((x, i) => (keep.has(i) ? a[i] : x));
          const { busy: _a, ...x } = decode(a) as { busy?: unknown };
          const { busy: _b, ...y } = decode(mixed) as { busy?: unknown };
          expect(y, what).toEqual(x);
        }),
        { numRuns: 200 },
      );
    }
  });

  it('addr64 equals the BigInt computation for every hi/lo/shift (fast path included)', () => {
    const ref = (lo: number, hi: number, sh: number): string => `0x${(((BigInt(hi) << 32n) | BigInt(lo)) << BigInt(sh)).toString(16)}`;
    for (const hi of [0, 1, 0x1fff, 0x2000, 0x1fffff, 0x200000, 0xffffffff]) {
      for (const sh of [0, 8]) expect(addr64(0xffffffff, hi, sh)).toBe(ref(0xffffffff, hi, sh));
    }
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.constantFrom(0, 8), (lo, hi, sh) => addr64(lo, hi, sh) === ref(lo, hi, sh)),
      { numRuns: 2000 },
    );
    expect(addr64(0x3a8c2000, 0x7f, 8)).toBe('0x7f3a8c200000');
  });

  it('gfx target names from gfx_target_version', () => {
    expect([90402, 90010, 90400, 90008, 110000, 100300, 0].map(gfxTargetName)).toEqual(['gfx942', 'gfx90a', 'gfx940', 'gfx908', 'gfx1100', 'gfx1030', null]);
  });

  it('priority levels follow pipe_priority_map', () => {
    expect([0, 1, 2].map((p) => priorityLevel(p, null))).toEqual(['low', 'normal', 'high']);
    expect([0, 6, 7, 10, 11, 15, 16].map((q) => priorityLevel(null, q))).toEqual(['low', 'low', 'normal', 'normal', 'high', 'high', null]);
    expect(priorityLevel(7, 3)).toBe('low');
  });

  it('MAP_QUEUES engine selection: compute, legacy sdma0/1, extended sdma2..15', () => {
    const mq = (dw1: number) => decodeMapQueues(Uint32Array.from([0xc005a200, dw1, 0, 0, 0, 0, 0]), 0, 7).engine;
    expect(mq(0x20000010)).toBe('compute');
    expect(mq((1 << 4) | (2 << 26) | (1 << 29))).toBe('sdma0');
    expect(mq((1 << 4) | (3 << 26) | (1 << 29))).toBe('sdma1');
    expect(mq(0x28000014)).toBe('sdma2');
    expect(mq((2 << 2) | (1 << 4) | (3 << 26))).toBe('sdma11');
  });

  it('busy compares rptr and wptr modulo the ring size from CP_HQD_PQ_CONTROL, not a fixed mask', () => {
    const regs = (queueSize: number, rptr: number, wptr: number): Uint32Array => {
      const r = new Uint32Array(56);
      r[2] = 1; // CP_HQD_ACTIVE
      r[10] = rptr;
      r[17] = queueSize; // QUEUE_SIZE: log2(ring dwords) - 1
      r[54] = wptr;
      return r;
    };
    // a 1024-dword ring (QUEUE_SIZE 9): wptr one lap ahead of rptr is the same place, empty
    expect(decodeComputeHqd(regs(9, 0x10, 0x410)).busy).toBe(false);
    expect(decodeComputeHqd(regs(9, 0x10, 0x418)).busy).toBe(true);
    // the fixture's 1 MiB rings (QUEUE_SIZE 0x11, 2^18 dwords)
    expect(decodeComputeHqd(regs(0x14014511, 0xa440, 0xa480)).busy).toBe(true);
    expect(decodeComputeHqd(regs(0x14014511, 0x100, 0x40100)).busy).toBe(false);
    // cut before CP_HQD_PQ_CONTROL or the WPTR: unknown
    expect(decodeComputeHqd(regs(9, 0x10, 0x18).subarray(0, 17)).busy).toBeNull();
    expect(decodeComputeHqd(regs(9, 0x10, 0x18).subarray(0, 54)).busy).toBeNull();
  });

  it('fields beyond the end of a cut block or slot are null, never 0', () => {
    const m = decodeComputeMqd(Uint32Array.from({ length: 130 }, (_, i) => (i === 0 ? 0xc0310800 : i === 128 ? 0x712000 : 0)));
    expect(m).toMatchObject({ headerOk: true, mqdAddress: '0x712000', cpHqdActive: null, pipePriority: null, ringBase: null, aql: null, doorbell: null });
    expect(decodeComputeMqd(new Uint32Array(129)).mqdAddress).toBeNull();
    expect(decodeSdmaMqd(new Uint32Array(100))).toMatchObject({ ringBase: '0x0', engine: null, rlc: null });
    expect(decodeSdmaMqd(new Uint32Array(1)).ringBase).toBeNull();
    expect(decodeComputeHqd(Uint32Array.from([0x712000, 0])).active).toBeNull();
    expect(decodeComputeHqd(Uint32Array.from([0x712000, 0, 0])).active).toBe(false);
    expect(decodeSdmaHqd(new Uint32Array(0)).active).toBeNull();
  });

  it('topology properties the file does not hold are null, not 0; num_xcc falls back to 1 only where that is the rule', () => {
    const g = decodeGpuInfo({ gpu_id: '31774', simd_per_cu: '4' });
    expect(g).toMatchObject({ gfxTarget: null, gfxTargetVersion: null, simdCount: null, computeUnits: null, vendorId: null, deviceId: null });
    expect(g).toMatchObject({ numSdmaEngines: null, numSdmaXgmiEngines: null, numSdmaQueuesPerEngine: null, numCpQueues: null });
    expect(g).toMatchObject({ numXcc: 1, numXccReported: false });
    // a printed 0 stays 0; a value that is not a number is unknown
    expect(decodeGpuInfo({ num_sdma_engines: '0', vendor_id: 'x' })).toMatchObject({ numSdmaEngines: 0, vendorId: null });
    const mi300 = { gfx_target_version: '90402', simd_count: '1216', simd_per_cu: '4', num_xcc: '8' };
    expect(decodeGpuInfo(mi300)).toMatchObject({ gfxTarget: 'gfx942', computeUnits: 304, numXcc: 8, numXccReported: true });
    expect(topologyXccs(decodeGpuInfo(mi300))).toBe(8);
    // no num_xcc: a kernel from before multi-XCC support, so one XCC (MI200, or a file without a target)...
    expect(topologyXccs(decodeGpuInfo({ gfx_target_version: '90010' }))).toBe(1);
    expect(topologyXccs(decodeGpuInfo({}))).toBe(1);
    // ...but a GC 9.4.x part's kernel always prints it: the file is damaged and the count unknown
    expect(topologyXccs(decodeGpuInfo({ gfx_target_version: '90402' }))).toBeNull();
  });

  it('MAP_QUEUES / MAP_PROCESS shorter than their layout: the missing dwords give null, never 0', () => {
    const ib = Uint32Array.from([0xc005a200, 0x20000010, 0x4008, 0x71e000, 0, 0x9d4f4038, 0x7f3a]);
    expect(decodeMapQueues(ib, 0, 7)).toMatchObject({ engine: 'compute', doorbell: 0x1002, mqdAddress: '0x71e000', wptrAddress: '0x7f3a9d4f4038' });
    // a header whose count makes the packet 4 dwords: dw4-6 are not the packet's
    expect(decodeMapQueues(ib, 0, 4)).toMatchObject({ engine: 'compute', queueSel: 1, doorbell: 0x1002, mqdAddress: null, wptrAddress: null });
    expect(decodeMapQueues(ib, 0, 2)).toMatchObject({ engine: 'compute', doorbell: null, mqdAddress: null });
    // and the end of the IB ends the packet too
    expect(decodeMapQueues(ib.subarray(0, 3), 0, 7)).toMatchObject({ doorbell: 0x1002, mqdAddress: null });
    expect(decodeMapQueues(ib.subarray(0, 1), 0, 7)).toMatchObject({ engine: null, engineSel: null, queueType: null, doorbell: null });
    const mp = Uint32Array.from([0xc013a100, 0x14008003, 0x3f9c4001, 0x80, 0x10002, 0x1118, 0, 0, 0, 0, 0, 0, 0, 0x400080]);
    expect(decodeMapProcess(mp, 0, 14)).toMatchObject({ pasid: 0x8003, numQueues: 1, numGws: 0, sdmaEnable: true, pageTableBase: '0x803f9c4001' });
    expect(decodeMapProcess(mp, 0, 5)).toMatchObject({ pasid: 0x8003, quantum: 10, shMemBases: 0x10002, shMemConfig: null, numQueues: null, numGws: null, sdmaEnable: null });
  });

  it('a compute block whose header is not the MQD header gives no field (not numbers read at the wrong offsets)', () => {
    const words = Uint32Array.from({ length: 512 }, (_, i) => (i === 0 ? 0xc0310800 : i === 128 ? 0x712000 : i === 133 ? 2 : i === 134 ? 15 : 0));
    expect(decodeComputeMqd(words)).toMatchObject({ headerOk: true, mqdAddress: '0x712000', pipePriority: 2, queuePriority: 15 });
    const bad = words.slice();
    bad[0] = 0xdeadbeef;
    const d = decodeComputeMqd(bad);
    expect(d.headerOk).toBe(false);
    for (const [k, v] of Object.entries(d)) if (k !== 'headerOk') expect(v, k).toBeNull();
  });

  it('the MQD VMID is CP_HQD_VMID bits 3:0, masked like the HQD register (IB_VMID and VQID sit above)', () => {
    const words = Uint32Array.from({ length: 512 }, (_, i) => (i === 0 ? 0xc0310800 : i === 131 ? 0x00070305 : 0));
    expect(decodeComputeMqd(words).vmid).toBe(5);
    const regs = new Uint32Array(56);
    regs[3] = 0x00070305;
    expect(decodeComputeHqd(regs).vmid).toBe(5);
  });

  it('SDMA engine/RLC ids: dw126/127 of the 128-dword struct, dw128/129 of the older 130-dword one, null for other lengths', () => {
    const at = (n: number, ids: number) => Uint32Array.from({ length: n }, (_, i) => (i === ids ? 2 : i === ids + 1 ? 1 : 0));
    expect(decodeSdmaMqd(at(128, 126))).toMatchObject({ engine: 2, rlc: 1 });
    expect(decodeSdmaMqd(at(130, 128))).toMatchObject({ engine: 2, rlc: 1 });
    expect(decodeSdmaMqd(at(129, 126))).toMatchObject({ engine: null, rlc: null });
    expect(decodeSdmaMqd(at(127, 126))).toMatchObject({ engine: null, rlc: null });
  });
});

describe.skipIf(!nativeLoaded)('damaged MQD headers and short runlist packets in the join (TS = native)', () => {
  const read = (f: string): string => fs.readFileSync(path.join(DEBUGFS, 'kfd', f), 'latin1');
  const dumps = (mqds: string, rls: string): DumpFiles => ({ mqds: Buffer.from(mqds, 'latin1'), hqds: Buffer.from(read('hqds'), 'latin1'), rls: Buffer.from(rls, 'latin1') });
  /** the fixture's text with line `n` (1-based) passed through f */
  const patchLine = (text: string, n: number, f: (l: string) => string): string =>
    text
      .split('\n')
      .map((l, i) => (i === n - 1 ? f(l) : l))
      .join('\n');

  it('a compute queue whose XCC0 block has a wrong header: fields null, no HQD or runlist match, one warning', () => {
    const mqds = read('mqds');
    const line = mqds.split('\n').findIndex((l) => l.includes('Compute queue on device')) + 2;
    const d = dumps(
      patchLine(mqds, line, (l) => l.replace('c0310800', 'c0310801')),
      read('rls'),
    );
    expectSameJoin(d);
    const r = joinDumps(d, { impl: 'ts' }).joined;
    expect(r.warnings.filter((w) => w.includes('not the compute MQD header'))).toEqual([
      `pid 41872: queue at mqds line ${line - 1}: MQD block 0 has header 0xc0310801, not the compute MQD header 0xc0310800: its fields are unknown`,
    ]);
    const q = r.processes.flatMap((p) => p.queues).find((x) => x.mqdsLine === line - 1)!;
    expect(q).toMatchObject({ priority: null, doorbell: null, ringBase: null, aql: null, sizeBytes: null });
    expect(q.mqdAddresses[0]).toBeNull();
  });

  it('an SDMA MQD in the older 130-dword layout still matches its RLC by engine and RLC id', () => {
    const mqds = read('mqds').split('\n');
    const last = mqds.findIndex((l) => l.startsWith('    000001e0:')); // the SDMA block's last line
    mqds[last] = mqds[last].replace(/00000002 00000000$/, '00000000 00000000');
    mqds.splice(last + 1, 0, '    00000200: 00000002 00000000');
    const d = dumps(mqds.join('\n'), read('rls'));
    expectSameJoin(d);
    const sdma = joinDumps(d, { impl: 'ts' }).joined.processes.flatMap((p) => p.queues).find((q) => q.type === 'sdma')!;
    expect(sdma.sdma).toMatchObject({ engine: 2, rlc: 0, matchedBy: 'engine-rlc' });
  });

  it('a GC 9.4.x node whose properties lack num_xcc: the node XCC count is unknown, not the 1 of older kernels', () => {
    const d = dumps(read('mqds'), read('rls'));
    const topo = readTopology({ sysfsRoot: SYSFS, impl: 'ts' });
    const gpu = topo.nodes.find((n) => n.gpu)!;
    expect(joinDumps(d, { impl: 'ts', topology: topo }).joined.nodes.find((n) => n.gpuId === gpu.gpuIdHex)!.numXcc).toBe(gpu.gpu!.numXcc);
    const { num_xcc: _, ...props } = gpu.properties;
    const cut = { ...topo, nodes: topo.nodes.map((n) => (n === gpu ? { ...n, properties: props, gpu: decodeGpuInfo(props) } : n)) };
    expect(cut.nodes.find((n) => n === gpu || n.gpuId === gpu.gpuId)!.gpu).toMatchObject({ gfxTarget: 'gfx942', numXcc: 1, numXccReported: false });
    expectSameJoin(d, { topology: cut });
    expect(joinDumps(d, { impl: 'ts', topology: cut }).joined.nodes.find((n) => n.gpuId === gpu.gpuIdHex)!.numXcc).toBeNull();
  });

  it('a MAP_QUEUES cut to 4 dwords by its header count: its MQD address is null and matches nothing', () => {
    const rls = read('rls');
    const line = rls.split('\n').findIndex((l) => l.startsWith('  000000e0: c005a200')) + 1;
    const d = dumps(read('mqds'), patchLine(rls, line, (l) => l.replace('c005a200', 'c002a200')));
    expectSameJoin(d);
    const r = joinDumps(d, { impl: 'ts' }).joined;
    expect(r.unmatchedRunlistQueues).toContainEqual({ gpuId: '7c1e', pasid: 0x8002, engine: 'compute', doorbell: 0x1000, mqdAddress: null });
  });

  it('the parsers name a MAP_QUEUES / MAP_PROCESS shorter than its layout (a warning, the packet kept)', () => {
    const rls = read('rls');
    const mq = rls.split('\n').findIndex((l) => l.startsWith('  000000e0: c005a200')) + 1;
    const cut = patchLine(rls, mq, (l) => l.replace('c005a200', 'c002a200'));
    for (const impl of ['ts', 'native'] as const) {
      const raw = parseRlsRaw(cut, impl);
      const w = raw.issues.filter((i) => i.severity === 'warning' && /MAP_QUEUES packet has 4 dwords, its layout needs 7/.test(i.message));
      expect(w, impl).toHaveLength(1);
      expect(w[0].line).toBe(mq);
      expect(parseRlsRaw(rls, impl).issues.filter((i) => /its layout needs/.test(i.message)), impl).toEqual([]);
    }
  });
});
