/**
 * For the native-vs-TS snapshot join tests (test/kfd-snapshot-native*.test.ts): a sysfs view of a
 * synthesized scenario that agrees with debugfs only in part (queues missing on either side,
 * unknown types, sizes and GPUs, extra processes, PASIDs, wrong num_xcc), and the comparison.
 */
import { expect } from 'vitest';
import { SYSFS_QUEUE_TYPES } from '../../src/kfd/build.js';
import { joinDumps, type DumpFiles, type JoinDumpsOptions } from '../../src/kfd/snapshot.js';
import type { GpuInfo, KfdProc, KfdProcs, Topology } from '../../src/kfd/types.js';
import type { SynthScenario } from './kfd-synth.js';

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function gpuInfo(numXcc: number): GpuInfo {
  return {
    gfxTarget: 'gfx942',
    gfxTargetVersion: 90402,
    numXcc,
    numXccReported: true,
    simdCount: 1216,
    computeUnits: 304,
    vendorId: 4098,
    deviceId: 29857,
    drmRenderMinor: 128,
    maxEngineClockMhz: 2100,
    numSdmaEngines: 2,
    numSdmaXgmiEngines: 14,
    numSdmaQueuesPerEngine: 8,
    numCpQueues: 24,
  };
}

/** Topology and proc views of scenario s, perturbed by seed. */
export function randomSysfs(s: SynthScenario, seed: number): { topology: Topology; procs: KfdProcs } {
  const rnd = rng(seed * 7919 + 13);
  const gpus = s.nodes.filter(() => rnd(6) !== 0);
  const topology: Topology = {
    path: 'ts',
    issues: [],
    nodes: [
      { node: 0, gpuId: 0, gpuIdHex: '0', name: 'cpu', isGpu: false, properties: {}, gpu: null },
      ...gpus.map((n) => ({
        node: rnd(5) === 0 ? n.node + 10 : n.node,
        gpuId: n.gpuId,
        gpuIdHex: n.gpuId.toString(16),
        name: `gpu${n.node}`,
        isGpu: true,
        properties: {},
        gpu: gpuInfo(rnd(4) === 0 ? 1 + rnd(8) : n.numXcc),
      })),
    ],
  };
  const procs: KfdProc[] = [];
  const pids = [...s.pids.filter(() => rnd(5) !== 0), ...(rnd(3) === 0 ? [9000 + rnd(100)] : [])];
  for (const pid of pids) {
    const mine = s.queues.filter((q) => q.pid === pid && rnd(6) !== 0);
    let qid = rnd(3);
    const queues = mine.map((q) => {
      // -1: the type file was unreadable
      const typeCode = rnd(15) === 0 ? -1 : q.kind === 'sdma' ? [1, 4, 5][rnd(3)] : rnd(8) === 0 ? 3 : 0;
      return {
        qid: (qid += 1 + rnd(2)),
        typeCode,
        type: SYSFS_QUEUE_TYPES[typeCode] ?? 'unknown',
        sizeBytes: rnd(5) === 0 ? null : 4096 << rnd(8),
        gpuId: rnd(10) === 0 ? null : s.nodes[q.gpu].gpuId,
      };
    });
    if (rnd(4) === 0) queues.push({ qid: qid + 5, typeCode: 0, type: 'compute', sizeBytes: 65536, gpuId: s.nodes[rnd(s.nodes.length)].gpuId });
    procs.push({ pid, pasid: [0, null, 0x8000 + rnd(16)][rnd(3)], queues, gpus: [] });
  }
  return { topology, procs: { path: 'ts', procs, issues: [] } };
}

/** Native and TS joinDumps agree: the result (key order included), the mqds pids, every file's issues. */
export function expectSameJoin(dumps: DumpFiles, opts: Omit<JoinDumpsOptions, 'impl'> = {}): void {
  const n = joinDumps(dumps, { ...opts, impl: 'native' });
  const t = joinDumps(dumps, { ...opts, impl: 'ts' });
  // the string first: cheap, and it checks the key order that toStrictEqual ignores
  if (JSON.stringify(n.joined) !== JSON.stringify(t.joined)) expect(n.joined).toStrictEqual(t.joined);
  expect(JSON.stringify(n.joined)).toBe(JSON.stringify(t.joined));
  expect(n.mqdsPids).toEqual(t.mqdsPids);
  for (const f of ['mqds', 'hqds', 'rls'] as const) {
    const pick = (p: (typeof n.parsed)[typeof f]) => p && { issues: p.issues, suppressed: p.suppressed };
    expect(pick(n.parsed[f])).toEqual(pick(t.parsed[f]));
  }
}
