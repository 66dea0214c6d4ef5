/**
 * KFD checks inside `gpucolo probe priority` (issue 4): verifying the streams' KFD queue
 * priorities and --kfd-priority, against the example MI300X host tree (pid 41872: qid 0 normal
 * 1/7, qid 1 high 2/11, qid 2 SDMA-XGMI) standing in for gpucolo's own process. UPDATE_QUEUE is
 * replaced by a function that records its arguments and rewrites the tree's MQD priority, as the
 * kernel would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { expectedLevels, kfdCheck, probePriority } from '../src/dispatch/index.js';
import { snapshot } from '../src/kfd/snapshot.js';
import type { QueueSnapshotEntry, UpdateQueueOptions, UpdateQueueSent } from '../src/kfd/ioctl.js';
import { KfdTree, setMqdPriority } from './helpers/kfd-tree.js';
import { nativeLoaded } from './helpers/impls.js';

const PID = 41872;
const STREAMS = [
  { name: 'hp', highPriority: true },
  { name: 'lp0', highPriority: false },
];
const DEBUG: QueueSnapshotEntry[] = [
  { validBytes: 64, queueId: 0, gpuId: 31774, queueType: 2, type: 'compute-aql', ringBase: '0x7f3a8c200000', ringSize: 1048576 },
  { validBytes: 64, queueId: 1, gpuId: 31774, queueType: 2, type: 'compute-aql', ringBase: '0x7f3a8b800000', ringSize: 1048576 },
  { validBytes: 64, queueId: 2, gpuId: 31774, queueType: 3, type: 'sdma-xgmi', ringBase: '0x7f3a8a000000', ringSize: 1048576 },
];

let tree: KfdTree | null = null;
afterEach(() => {
  tree?.dispose();
  tree = null;
});

function setup(): { tree: KfdTree; roots: { sysfsRoot: string; debugfsRoot: string; procRoot: string }; sent: UpdateQueueOptions[]; update: (o: UpdateQueueOptions) => UpdateQueueSent } {
  const t = new KfdTree();
  tree = t;
  const roots = { sysfsRoot: t.sysfs, debugfsRoot: t.debugfs, procRoot: t.proc };
  const sent: UpdateQueueOptions[] = [];
  const update = (o: UpdateQueueOptions): UpdateQueueSent => {
    sent.push(o);
    const q = snapshot({ ...roots, pids: [PID] }).processes[0].queues.find((x) => x.qid === o.queueId)!;
    const pipe = o.priority <= 6 ? 0 : o.priority <= 10 ? 1 : 2;
    t.writeDebugfs('mqds', setMqdPriority(t.readDebugfs('mqds'), Number.parseInt(q.mqdAddresses[0], 16), pipe, o.priority));
    return o as unknown as UpdateQueueSent;
  };
  return { tree: t, roots, sent, update };
}

describe('expectedLevels', () => {
  it('gives HP high and LP low under stream-priority, Normal to all otherwise', () => {
    expect(expectedLevels('stream-priority', STREAMS).map((e) => e.level)).toEqual(['high', 'low']);
    for (const m of ['none', 'cu-mask', 'throttle', 'sm-partition'] as const) expect(expectedLevels(m, STREAMS).map((e) => e.level)).toEqual(['normal', 'normal']);
  });
});

describe('kfdCheck: verify', () => {
  it('under stream-priority: HP high is found and mapped, LP low is a plain mismatch', () => {
    const { roots } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: roots });
    expect(r.set).toBeNull();
    const high = r.verify.verdicts.find((v) => v.level === 'high')!;
    expect(high.ok).toBe(true);
    expect(high.qids).toEqual([1]);
    const low = r.verify.verdicts.find((v) => v.level === 'low')!;
    expect(low.ok).toBe(false);
    expect(low.line).toMatch(/MISMATCH — asked for low, but no KFD queue of pid 41872 has pipe priority 0/);
    expect(r.ok).toBe(false);
    expect(r.lines.some((l) => /qid 1 compute \(AQL\) on gpu 7c1e: pipe priority 2, queue priority 11/.test(l))).toBe(true);
  });

  it('under none: the Normal streams are on the normal queue; the high queue is noted as unasked', () => {
    const { roots } = setup();
    const r = kfdCheck({ mechanism: 'none', streams: STREAMS, pid: PID, snapshotOptions: roots });
    expect(r.ok).toBe(true);
    expect(r.verify.verdicts).toHaveLength(1);
    expect(r.verify.verdicts[0].qids).toEqual([0]);
    expect(r.lines.some((l) => /levels nobody asked for: queue 1 \(high\)/.test(l))).toBe(true);
  });

  it('says plainly that priorities cannot be checked without debugfs', () => {
    const { roots } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: { ...roots, debugfsRoot: `${roots.debugfsRoot}-missing` } });
    expect(r.ok).toBe(false);
    expect(r.verify.checkable).toBe(false);
    expect(r.lines[0]).toMatch(/not checked — priorities cannot be checked without root and a KFD debugfs/);
  });
});

describe('kfdCheck: --kfd-priority', () => {
  it('sets the HP queue with the debug snapshot ring and verifies the new MQD priority', () => {
    const { roots, sent, update } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: roots, kfdPriority: 13, update, allowDebugTrap: true, debugSnapshot: () => DEBUG });
    expect(sent).toEqual([{ queueId: 1, ringBase: '0x7f3a8b800000', ringSize: 1048576, percentage: 100, priority: 13, pm4TargetXcc: 0 }]);
    expect(r.set?.ok).toBe(true);
    expect(r.set?.lines[0]).toBe('--kfd-priority 13: 1 of 1 HP KFD queue(s) set');
    expect(r.set?.lines[1]).toMatch(/^queue 1: set to queue priority 13 \(pipe 2; was pipe 2\/queue 11; ring 0x7f3a8b800000 from debug-snapshot\)$/);
    const high = r.verify.verdicts.find((v) => v.level === 'high')!;
    expect(high.ok).toBe(true);
    expect(high.line).toMatch(/now at queue priority 13/);
  });

  it('a low priority moves the HP queue off pipe priority 2, and the check follows it there', () => {
    const { roots, update } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: roots, kfdPriority: 3, update, allowDebugTrap: true, debugSnapshot: () => DEBUG });
    expect(r.set?.applied).toEqual([1]);
    expect(r.verify.verdicts.find((v) => v.level === 'high')!.line).toMatch(/high \(HP, set by --kfd-priority\): ok — queue\(s\) 1 now at queue priority 3/);
    expect(r.verify.queues.find((q) => q.qid === 1)!.priority).toMatchObject({ pipe: 0, queue: 3 });
  });

  it('reports a verification mismatch when UPDATE_QUEUE "succeeds" but the MQD does not change', () => {
    const { roots, sent } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: roots, kfdPriority: 13, update: (o) => (sent.push(o), o as unknown as UpdateQueueSent), allowDebugTrap: true, debugSnapshot: () => DEBUG });
    expect(sent).toHaveLength(1);
    expect(r.ok).toBe(false);
    expect(r.verify.verdicts.find((v) => v.level === 'high')!.line).toMatch(/MISMATCH — UPDATE_QUEUE returned success but the MQDs do not show queue priority 13/);
  });

  it('refuses under mechanisms where HP has no level of its own, sending nothing', () => {
    const { roots, sent, update } = setup();
    const r = kfdCheck({ mechanism: 'none', streams: STREAMS, pid: PID, snapshotOptions: roots, kfdPriority: 13, update, allowDebugTrap: true, debugSnapshot: () => DEBUG });
    expect(sent).toHaveLength(0);
    expect(r.ok).toBe(false);
    expect(r.set?.lines[0]).toMatch(/not set — under none every stream is HIP Normal/);
  });

  it('without a debug snapshot, refuses the creation-order pairing rather than guessing the ring', () => {
    const { roots, sent, update } = setup();
    const r = kfdCheck({
      mechanism: 'stream-priority',
      streams: STREAMS,
      pid: PID,
      snapshotOptions: roots,
      kfdPriority: 13,
      update,
      allowDebugTrap: true,
      debugSnapshot: () => {
        throw Object.assign(new Error('/dev/kfd: no such file'), { code: 'ENOENT' });
      },
    });
    expect(sent).toHaveLength(0);
    expect(r.set?.ok).toBe(false);
    expect(r.set?.lines).toContainEqual(expect.stringMatching(/^debug queue snapshot unavailable \(\/dev\/kfd: no such file\)/));
    expect(r.set?.lines).toContainEqual(expect.stringMatching(/^queue 1: not set \(ambiguous-queue-id\)/));
  });

  it('without allowDebugTrap the debug snapshot is never taken: sysfs + mqds only, and the refusal names --allow-debug-trap', () => {
    const { roots, sent, update } = setup();
    let taken = 0;
    const r = kfdCheck({
      mechanism: 'stream-priority',
      streams: STREAMS,
      pid: PID,
      snapshotOptions: roots,
      kfdPriority: 13,
      update,
      debugSnapshot: () => {
        taken++;
        return DEBUG;
      },
    });
    expect(taken).toBe(0);
    expect(sent).toHaveLength(0);
    expect(r.set?.ok).toBe(false);
    expect(r.set?.lines).toContainEqual(expect.stringMatching(/^queue 1: not set \(ambiguous-queue-id\) — .*--allow-debug-trap would read the ring from the debug queue snapshot/));
    expect(r.set?.lines.at(-1)).toMatch(/^ring parameters from sysfs \+ mqds \(the debug queue snapshot is not used without --allow-debug-trap: it preempts every queue of every process on the GPU\)$/);
  });

  it('with allowDebugTrap the lines say where the ring came from and what DBG_TRAP did', () => {
    const { roots, update } = setup();
    const r = kfdCheck({ mechanism: 'stream-priority', streams: STREAMS, pid: PID, snapshotOptions: roots, kfdPriority: 13, update, allowDebugTrap: true, debugSnapshot: () => DEBUG });
    expect(r.set?.lines.at(-1)).toMatch(/^ring parameters from the debug queue snapshot \(--allow-debug-trap: DBG_TRAP refreshed the runlist and preempted every queue/);
  });

  it('a failing ioctl is one line, and the check goes on', () => {
    const { roots } = setup();
    const r = kfdCheck({
      mechanism: 'stream-priority',
      streams: STREAMS,
      pid: PID,
      snapshotOptions: roots,
      kfdPriority: 13,
      allowDebugTrap: true, debugSnapshot: () => DEBUG,
      update: () => {
        throw Object.assign(new Error('AMDKFD_IOC_UPDATE_QUEUE: EPERM'), { code: 'EPERM', hint: 'needs the queue owner' });
      },
    });
    expect(r.set?.applied).toEqual([]);
    expect(r.set?.lines[1]).toBe('queue 1: UPDATE_QUEUE failed: AMDKFD_IOC_UPDATE_QUEUE: EPERM (needs the queue owner)');
    expect(r.verify.verdicts.find((v) => v.level === 'high')!.line).toMatch(/ok — pid 41872 has 1 KFD queue with pipe priority 2/);
  });
});

describe.skipIf(!nativeLoaded)('probe priority with KFD checks (cpu backend, fixture tree as the process)', () => {
  it('runs the check inside each co-run and keeps its lines in the result', async () => {
    const { roots, sent, update } = setup();
    const r = await probePriority({
      backend: 'cpu',
      lpKernelNs: 1e6,
      lpStreams: 1,
      hpKernelNs: 50e3,
      hpRateHz: 100,
      mechanisms: ['none', 'stream-priority'],
      durationNs: 300e6,
      warmupNs: 100e6,
      kfd: { pid: PID, snapshotOptions: roots, kfdPriority: 12, update, allowDebugTrap: true, debugSnapshot: () => DEBUG },
    });
    expect(r.runs.map((x) => x.kfd?.mechanism)).toEqual(['none', 'stream-priority']);
    expect(r.runs[0].kfd?.set?.applied).toEqual([]);
    expect(r.runs[1].kfd?.set?.applied).toEqual([1]);
    expect(sent.map((s) => s.priority)).toEqual([12]);
    expect(r.runs[1].errors).toEqual([]);
  });
});
