/**
 * Priority hints that reach the hardware (AMD), issue 4: HIP -> KFD priority mapping, verifying a
 * process's queues against the fixture host tree (examples/kfd-mi300x: pid 41872 has a normal
 * (pipe 1 / queue 7) and a high (pipe 2 / queue 11) AQL queue, both mapped, and an SDMA-XGMI
 * queue; pid 42117 one normal queue that is not mapped), planning UPDATE_QUEUE arguments, and the
 * error paths of the ioctl wrappers (no /dev/kfd here: a regular file and a missing path stand in).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { snapshot } from '../src/kfd/snapshot.js';
import {
  GPU_MAX_HW_QUEUES,
  expectedKfdPriority,
  pipePriorityOf,
  planKfdPriority,
  verifyOwnQueues,
  type KfdPriorityPlanOk,
  type KfdPriorityPlanRefused,
} from '../src/kfd/priority.js';
import { parseQueueSnapshot, queueSnapshotSelf, updateQueue, updateQueueArgs, type QueueSnapshotEntry, type UpdateQueueOptions } from '../src/kfd/ioctl.js';
import { GpucoloError } from '../src/errors.js';
import { IMPLS, ROOT, nativeLoaded } from './helpers/impls.js';

const HOST = path.join(ROOT, 'examples/kfd-mi300x');
const ROOTS = { sysfsRoot: path.join(HOST, 'sys'), debugfsRoot: path.join(HOST, 'sys/kernel/debug'), procRoot: path.join(HOST, 'proc') };
const NO_DEBUGFS = { ...ROOTS, debugfsRoot: path.join(HOST, 'no-such-debugfs') };
const POOLING = /^matched by level counts, not stream by stream: HIP pools streams onto at most GPU_MAX_HW_QUEUES=4 KFD queues per priority/;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-kfd-prio-'));
const REGULAR = path.join(tmp, 'not-kfd');
fs.writeFileSync(REGULAR, 'a regular file stands in for /dev/kfd\n');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What the debug queue snapshot of pid 41872 would say (KFD's own ids and rings). */
function debugEntries(over: Partial<QueueSnapshotEntry>[] = []): QueueSnapshotEntry[] {
  const base: QueueSnapshotEntry[] = [
    { validBytes: 64, queueId: 0, gpuId: 31774, queueType: 2, type: 'compute-aql', ringBase: '0x7f3a8c200000', ringSize: 1048576 },
    { validBytes: 64, queueId: 1, gpuId: 31774, queueType: 2, type: 'compute-aql', ringBase: '0x7f3a8b800000', ringSize: 1048576 },
    { validBytes: 64, queueId: 2, gpuId: 31774, queueType: 3, type: 'sdma-xgmi', ringBase: '0x7f3a8a000000', ringSize: 1048576 },
  ];
  return base.map((e, i) => ({ ...e, ...(over[i] ?? {}) }));
}

const refused = (p: ReturnType<typeof planKfdPriority>): KfdPriorityPlanRefused => {
  expect(p.ok).toBe(false);
  return p as KfdPriorityPlanRefused;
};
const planned = (p: ReturnType<typeof planKfdPriority>): KfdPriorityPlanOk => {
  if (!p.ok) throw new Error(`refused: ${p.refusal}: ${p.reason}`);
  return p;
};

// ---------------------------------------------------------------------------------- mapping

describe('expectedKfdPriority (docs/queue-model.md#priorities)', () => {
  it('maps HIP priorities to KFD queue and pipe priorities per ROCr generation', () => {
    expect(expectedKfdPriority('high', 'old')).toEqual({ queue: 15, pipe: 2 });
    expect(expectedKfdPriority('high', 'new')).toEqual({ queue: 11, pipe: 2 });
    expect(expectedKfdPriority('high')).toEqual({ queue: 11, pipe: 2 });
    for (const g of ['old', 'new'] as const) {
      expect(expectedKfdPriority('normal', g)).toEqual({ queue: 7, pipe: 1 });
      expect(expectedKfdPriority('low', g)).toEqual({ queue: 0, pipe: 0 });
    }
    expect(() => expectedKfdPriority('urgent' as 'high')).toThrow(RangeError);
    expect(GPU_MAX_HW_QUEUES).toBe(4);
  });

  it('pipe priority follows pipe_priority_map[]: 0-6 low, 7-10 medium, 11-15 high', () => {
    expect([0, 6, 7, 10, 11, 15].map(pipePriorityOf)).toEqual([0, 0, 1, 1, 2, 2]);
    for (const level of ['high', 'normal', 'low'] as const) {
      const p = expectedKfdPriority(level);
      expect(pipePriorityOf(p.queue)).toBe(p.pipe);
    }
  });
});

// ---------------------------------------------------------------------------------- verify

describe.each(IMPLS)('verifyOwnQueues on examples/kfd-mi300x (%s parsers)', (impl) => {
  const so = { ...ROOTS, impl };

  it('normal and high streams: queues exist with those priorities and are mapped', () => {
    const r = verifyOwnQueues({
      pid: 41872,
      expected: [
        { stream: 'decode', level: 'normal' },
        { stream: 'prefill-a', level: 'high' },
        { stream: 'prefill-b', level: 'high' },
      ],
      snapshotOptions: so,
    });
    expect(r.checkable).toBe(true);
    expect(r.reason).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.queues.map((q) => [q.qid, q.type, q.priority && [q.priority.pipe, q.priority.queue], q.activeHqds, q.mapped])).toEqual([
      [0, 'compute', [1, 7], 4, true],
      [1, 'compute', [2, 11], 4, true],
      [2, 'sdma-xgmi', null, 0, true],
    ]);
    // the HQD slots of the high queue: pipe 1 queue 2 on every XCC
    expect(r.queues[1].hqds.map((h) => [h.inst, h.pipe, h.queue, h.active])).toEqual([
      [0, 1, 2, true],
      [1, 1, 2, true],
      [2, 1, 2, true],
      [3, 1, 2, true],
    ]);
    expect(r.queueLines).toEqual([
      'qid 0 compute (AQL) on gpu 7c1e: pipe priority 1, queue priority 7 (normal); HQDs inst0/pipe0/queue2, inst1/pipe0/queue2, inst2/pipe0/queue2, inst3/pipe0/queue2',
      'qid 1 compute (AQL) on gpu 7c1e: pipe priority 2, queue priority 11 (high); HQDs inst0/pipe1/queue2, inst1/pipe1/queue2, inst2/pipe1/queue2, inst3/pipe1/queue2',
      'qid 2 sdma-xgmi on gpu 7c1e: no queue priority (SDMA); SDMA engine 2 RLC 0',
    ]);
    expect(r.verdicts.map((v) => [v.level, v.streams, v.expected, v.qids, v.maxQueues, v.exists, v.mapped, v.ok])).toEqual([
      ['high', ['prefill-a', 'prefill-b'], { pipe: 2, queue: [11, 15] }, [1], 2, true, true, true],
      ['normal', ['decode'], { pipe: 1, queue: [7] }, [0], 1, true, true, true],
    ]);
    expect(r.verdicts[0].line).toBe('high (streams prefill-a, prefill-b): ok — pid 41872 has 1 KFD queue with pipe priority 2: queue 1 (queue priority 11, mapped on 4 HQDs)');
    expect(r.verdicts[1].line).toBe('normal (stream decode): ok — pid 41872 has 1 KFD queue with pipe priority 1: queue 0 (queue priority 7, mapped on 4 HQDs)');
    // pooling: two high streams on one queue is not a mismatch, and the report says why
    expect(r.notes[0]).toMatch(POOLING);
    expect(r.notes).toContain('high: 2 stream(s) asked, 1 KFD queue(s) carry it — streams can share a queue, so this alone is no mismatch');
    expect(r.lines).toEqual([...r.verdicts.map((v) => v.line), ...r.notes]);
  });

  it('a level without a queue of that pipe priority is a plain mismatch line', () => {
    const r = verifyOwnQueues({ pid: 41872, expected: [{ stream: 'bulk', level: 'low' }], snapshotOptions: so });
    expect(r.ok).toBe(false);
    expect(r.verdicts).toHaveLength(1);
    expect(r.verdicts[0]).toMatchObject({ level: 'low', exists: false, mapped: null, ok: false, qids: [] });
    expect(r.verdicts[0].line).toBe(
      'low (stream bulk): MISMATCH — asked for low, but no KFD queue of pid 41872 has pipe priority 0 — the runtime may ignore HIP low; its compute queues: queue 0 pipe 1/queue 7, queue 1 pipe 2/queue 11',
    );
    // the queues nobody asked for are named
    expect(r.notes).toContain('KFD queues at levels nobody asked for: queue 0 (normal), queue 1 (high) — the runtime\'s own queues, or other streams');
  });

  it('high with a pid whose queues have no pipe priority 2 says the runtime may map or ignore it', () => {
    const r = verifyOwnQueues({ pid: 42117, expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: so });
    expect(r.verdicts[0].line).toBe(
      'high (stream hp): MISMATCH — asked for high, but no KFD queue of pid 42117 has pipe priority 2 — the runtime may map HIP high to 11 (new ROCr) or ignore it; its compute queues: queue 0 pipe 1/queue 7',
    );
  });

  it('the ROCr generation narrows high to 15 (old) or 11 (new)', () => {
    const old = verifyOwnQueues({ pid: 41872, rocrGeneration: 'old', expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: so });
    expect(old.ok).toBe(false);
    expect(old.verdicts[0]).toMatchObject({ expected: { pipe: 2, queue: [15] }, exists: false, qids: [1] });
    expect(old.verdicts[0].line).toBe(
      'high (stream hp): MISMATCH — asked for high (queue priority 15), but pid 41872\'s queues at pipe priority 2 have queue priority 11 — this runtime maps HIP high to 11 (new ROCr)',
    );
    const cur = verifyOwnQueues({ pid: 41872, rocrGeneration: 'new', expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: so });
    expect(cur.ok).toBe(true);
    expect(cur.verdicts[0].expected).toEqual({ pipe: 2, queue: [11] });
  });

  it('a queue with the right priority but no active HQD is reported as not mapped', () => {
    const r = verifyOwnQueues({ pid: 42117, expected: [{ stream: 's', level: 'normal' }], snapshotOptions: so });
    expect(r.ok).toBe(false);
    expect(r.verdicts[0]).toMatchObject({ exists: true, mapped: false, ok: false, qids: [0] });
    expect(r.verdicts[0].line).toMatch(/^normal \(stream s\): NOT MAPPED — pid 42117 has 1 KFD queue with pipe priority 1: queue 0 \(queue priority 7, not mapped\); none holds an active HQD now/);
    expect(r.queueLines).toEqual(['qid 0 compute (AQL) on gpu 7c1e: pipe priority 1, queue priority 7 (normal); no HQD']);
  });

  it('missing debugfs: priorities cannot be checked; the sysfs queues are still listed', () => {
    const r = verifyOwnQueues({ pid: 41872, expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: { ...NO_DEBUGFS, impl } });
    expect(r.checkable).toBe(false);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^priorities cannot be checked without root and a KFD debugfs: .*no-such-debugfs\/kfd\/mqds could not be read \(ENOENT: not in the recorded tree/);
    expect(r.verdicts[0]).toMatchObject({ exists: null, mapped: null, ok: false });
    expect(r.verdicts[0].line).toBe(`high (stream hp): not checked — ${r.reason}`);
    expect(r.queues.map((q) => [q.qid, q.type, q.priority, q.mapped])).toEqual([
      [0, 'compute', null, null],
      [1, 'compute', null, null],
      [2, 'sdma-xgmi', null, null],
    ]);
    expect(r.queueLines[0]).toBe('qid 0 compute on gpu 7c1e: priority unknown; HQDs unknown');
  });

  it('root-only debugfs (EACCES) says priorities cannot be checked without root', () => {
    // as root here every file is readable: take the sysfs half and mark debugfs as denied
    const snap = snapshot({ ...ROOTS, impl, pids: [41872], sources: ['sysfs'] });
    for (const s of ['mqds', 'hqds', 'rls'] as const) Object.assign(snap.sources[s], { skipped: false, ok: false, code: 'EACCES' });
    const r = verifyOwnQueues({ pid: 41872, expected: [{ stream: 'hp', level: 'high' }], snapshot: snap });
    expect(r.checkable).toBe(false);
    expect(r.reason).toBe(`priorities cannot be checked without root: ${path.join(ROOTS.debugfsRoot, 'kfd/mqds')} is root-only (EACCES); run with sudo`);
    // debugfs not asked for at all
    const sysOnly = verifyOwnQueues({ pid: 41872, expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: { ...so, sources: ['sysfs'] } });
    expect(sysOnly.reason).toMatch(/^priorities cannot be checked: debugfs was not read/);
  });

  it('a pid without KFD queues', () => {
    const r = verifyOwnQueues({ pid: 99999, expected: [{ stream: 's', level: 'normal' }], snapshotOptions: so });
    expect(r.queues).toEqual([]);
    expect(r.verdicts[0].line).toBe('normal (stream s): MISMATCH — asked for normal, but no KFD queue of pid 99999 has pipe priority 1 — HIP normal is ROCr\'s default (queue priority 7, pipe 1); it has no compute queue');
    expect(r.notes).toContain('pid 99999 has no KFD process in sysfs or debugfs: it has not opened /dev/kfd yet');
    // this process: the container hint
    const self = verifyOwnQueues({ expected: [{ stream: 's', level: 'normal' }], snapshotOptions: so });
    expect(self.pid).toBe(process.pid);
    expect(self.notes.some((n) => n.includes('in a container (KFD lists host pids: pass pid)'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------- plan

describe('planKfdPriority on examples/kfd-mi300x', () => {
  const own = { pid: 41872, selfPid: 41872, snapshotOptions: ROOTS };

  it('refuses another process: the ioctl only reaches the caller\'s own queues', () => {
    const p = refused(planKfdPriority({ pid: 41872, queueId: 1, priority: 15, snapshotOptions: ROOTS }));
    expect(p.refusal).toBe('not-own-pid');
    expect(p.reason).toBe(
      `pid 41872 is not gpucolo (pid ${process.pid}): AMDKFD_IOC_UPDATE_QUEUE acts only on the calling process's own queues (the kernel refuses another process's /dev/kfd fd with EBADF)`,
    );
    expect(refused(planKfdPriority({ ...own, pid: 42117, queueId: 0, priority: 11 })).refusal).toBe('not-own-pid');
  });

  it('refuses priorities outside 0..15 and unknown queues', () => {
    for (const priority of [16, -1, 1.5, Number.NaN]) expect(refused(planKfdPriority({ ...own, queueId: 1, priority })).refusal).toBe('bad-priority');
    const p = refused(planKfdPriority({ ...own, queueId: 9, priority: 11 }));
    expect(p.refusal).toBe('no-such-queue');
    expect(p.reason).toBe('pid 41872 has no KFD queue 9; its queues: 0 (compute), 1 (compute), 2 (sdma-xgmi)');
    expect(refused(planKfdPriority({ ...own, queueId: -3, priority: 11 })).refusal).toBe('no-such-queue');
  });

  it('refuses SDMA queues and PM4 queues', () => {
    const p = refused(planKfdPriority({ ...own, queueId: 2, priority: 11 }));
    expect(p.refusal).toBe('not-compute');
    expect(p.reason).toMatch(/^queue 2 is an SDMA queue \(sdma-xgmi\): SDMA MQDs carry no queue priority/);
    const pm4 = refused(planKfdPriority({ ...own, queueId: 1, priority: 11, debugSnapshot: debugEntries([{}, { type: 'compute-pm4', queueType: 0 }]) }));
    expect(pm4.refusal).toBe('pm4-queue');
    expect(pm4.reason).toMatch(/pm4_target_xcc, which no snapshot shows/);
  });

  it('several compute queues: the sysfs id <-> MQD pairing is by creation order, so the ring is not taken from it', () => {
    const p = refused(planKfdPriority({ ...own, queueId: 1, priority: 15 }));
    expect(p.refusal).toBe('ambiguous-queue-id');
    expect(p.reason).toBe(
      'queue id 1 was paired with its MQD by creation order (pid 41872 has 2 compute queues on gpu 7c1e): KFD reuses freed ids, so the ring base 0x7f3a8b800000 may belong to another queue; a debug queue snapshot (queueSnapshotSelf({ acceptSideEffects: true })) gives ids and rings directly',
    );
  });

  it('with a debug queue snapshot: KFD\'s own queue id and ring, cross-checked with sysfs', () => {
    const p = planned(planKfdPriority({ ...own, queueId: 1, priority: 15, debugSnapshot: { entries: debugEntries() } }));
    expect(p.args).toEqual({ queueId: 1, ringBase: '0x7f3a8b800000', ringSize: 1048576, percentage: 100, priority: 15, pm4TargetXcc: 0 });
    expect(p.from).toEqual({ ringBase: 'debug-snapshot', ringSize: 'debug-snapshot', queueId: 'debug-snapshot' });
    expect(p.gpuId).toBe('7c1e');
    expect(p.current).toEqual({ pipe: 2, queue: 11 });
    expect(p.after).toEqual({ pipe: 2, queue: 15 });
    expect(p.noop).toBe(false);
    expect(p.cautions).toContain('under the hardware scheduler the kernel preempts every user queue of every process on gpu 7c1e while it rewrites the MQD');
    expect(p.cautions.some((c) => c.startsWith('UPDATE_QUEUE replaces ring base, ring size, percentage and priority together'))).toBe(true);

    // the debug snapshot disagrees with the creation-order pairing: it wins, and says so
    const swapped = debugEntries([{ queueId: 1 }, { queueId: 0 }]);
    const q = planned(planKfdPriority({ ...own, queueId: 1, priority: 11, debugSnapshot: swapped }));
    expect(q.args.ringBase).toBe('0x7f3a8c200000');
    expect(q.cautions).toContain(
      'the sysfs/mqds join paired queue 1 with the MQD of ring 0x7f3a8b800000 (ring 0x7f3a8c200000 is the MQD it gave queue 0); the debug snapshot\'s queue id is KFD\'s own and wins',
    );

    // without sysfs or debugfs at all, the debug snapshot alone is enough
    const bare = planned(
      planKfdPriority({ pid: 41872, selfPid: 41872, queueId: 0, priority: 0, snapshotOptions: { sysfsRoot: '/nonexistent', debugfsRoot: '/nonexistent', procRoot: '/nonexistent' }, debugSnapshot: debugEntries() }),
    );
    expect(bare.args).toMatchObject({ queueId: 0, ringBase: '0x7f3a8c200000', ringSize: 1048576, priority: 0 });
    expect(bare.gpuId).toBe('7c1e');
    expect(bare.current).toBeNull();
    expect(bare.after).toEqual({ pipe: 0, queue: 0 });
  });

  it('refuses when the debug snapshot and sysfs disagree, or the snapshot carries no ring', () => {
    const p = refused(planKfdPriority({ ...own, queueId: 1, priority: 15, debugSnapshot: debugEntries([{}, { ringSize: 4096 }]) }));
    expect(p.refusal).toBe('inconsistent');
    expect(p.reason).toBe('queue 1: sysfs says ring size 1048576, the debug snapshot 4096 — the queue changed between the reads; take both again');
    const short: QueueSnapshotEntry[] = [{ validBytes: 48, queueId: 1, gpuId: 31774 }];
    const s = refused(planKfdPriority({ ...own, queueId: 1, priority: 15, debugSnapshot: short }));
    expect(s.refusal).toBe('ring-base-unknown');
    expect(s.reason).toBe('the debug snapshot entry of queue 1 has no ring (KFD returned 48-byte entries)');
    const odd = refused(planKfdPriority({ ...own, queueId: 1, priority: 15, debugSnapshot: debugEntries([{}, { ringSize: 1000 }]) }));
    expect(odd.refusal).toBe('inconsistent');
  });

  it('one compute queue: ring base from the MQD, size from sysfs', () => {
    const p = planned(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: ROOTS }));
    expect(p.args).toEqual({ queueId: 0, ringBase: '0x7f51d2400000', ringSize: 1048576, percentage: 100, priority: 11, pm4TargetXcc: 0 });
    expect(p.from).toEqual({ ringBase: 'mqds', ringSize: 'sysfs', queueId: 'sysfs+mqds (unique)' });
    expect(p.current).toEqual({ pipe: 1, queue: 7 });
    expect(p.after).toEqual({ pipe: 2, queue: 11 });
    // the queue is not mapped: the plan warns that percentage 100 re-activates it
    expect(p.cautions).toContain("queue 0 holds no active HQD now: percentage 100 makes it active again if the runtime had deactivated it (ROCr's Suspend sets percentage 0)");
    const same = planned(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 7, snapshotOptions: ROOTS }));
    expect(same.noop).toBe(true);
  });

  it('without debugfs the ring base cannot be recovered, and the plan says so', () => {
    const p = refused(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: NO_DEBUGFS }));
    expect(p.refusal).toBe('ring-base-unknown');
    expect(p.reason).toMatch(/^the ring base of queue 0 is only in its MQD \(debugfs, root\) or a debug queue snapshot: .*no-such-debugfs\/kfd\/mqds could not be read \(ENOENT\); pass debugSnapshot/);
    const sysOnly = refused(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: { ...ROOTS, sources: ['sysfs'] } }));
    expect(sysOnly.reason).toMatch(/could not be read \(not asked for\)/);
    // and without sysfs, queue ids are not visible either
    const none = refused(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: { ...NO_DEBUGFS, sysfsRoot: '/nonexistent' } }));
    expect(none.refusal).toBe('no-such-queue');
    expect(none.reason).toMatch(/^queue ids are not visible: .* could not be read \(ENOENT\) and no debug queue snapshot was given$/);
  });
});

// ---------------------------------------------------------------------------------- ioctl wrappers

const caught = (fn: () => unknown): Record<string, unknown> & Error => {
  try {
    fn();
  } catch (e) {
    return e as Record<string, unknown> & Error;
  }
  throw new Error('did not throw');
};

describe('queueSnapshotSelf needs acceptSideEffects: true (before anything else)', () => {
  it('refuses without it', () => {
    for (const opts of [undefined, {}, { acceptSideEffects: false }, { acceptSideEffects: 'yes' }]) {
      const e = caught(() => queueSnapshotSelf(opts as never));
      expect(e).toBeInstanceOf(GpucoloError);
      expect(e.code).toBe('ESIDEEFFECTS');
      expect(e.hint).toMatch(/preempts every queue of every process on the GPU/);
    }
  });
});

describe.runIf(nativeLoaded)('updateQueue / queueSnapshotSelf error paths (native)', () => {
  const args: UpdateQueueOptions = { queueId: 1, ringBase: '0x7f3a8b800000', ringSize: 1048576, percentage: 100, priority: 15 };

  it('updateQueueArgs: the 24 bytes that would be sent', () => {
    const sent = updateQueueArgs({ ...args, pm4TargetXcc: 2 });
    expect(sent).toMatchObject({ queueId: 1, ringBase: '0x7f3a8b800000', ringSize: 1048576, percentage: 100, pm4TargetXcc: 2, queuePercentageWord: 100 + (2 << 8), priority: 15, request: 0x40184b07 });
    expect(Buffer.from(sent.bytes).toString('hex')).toBe('0000808b3a7f0000' + '01000000' + '00001000' + '64020000' + '0f000000');
    // the same from a bigint and a number
    const fromString = updateQueueArgs(args).bytes;
    expect(updateQueueArgs({ ...args, ringBase: 0x7f3a8b800000n }).bytes).toEqual(fromString);
    expect(updateQueueArgs({ ...args, ringBase: 0x7f3a8b800000 }).bytes).toEqual(fromString);
    // a plan's args go straight in
    const plan = planned(planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: ROOTS }));
    expect(updateQueueArgs(plan.args)).toMatchObject({ queueId: 0, ringBase: '0x7f51d2400000', ringSize: 1048576, percentage: 100, priority: 11 });
  });

  it('updateQueueArgs refuses what the kernel would refuse, before any system call', () => {
    const cases: [Partial<UpdateQueueOptions>, string, RegExp][] = [
      [{ priority: 16 }, 'EINVAL', /queue priority 16 is above KFD_MAX_QUEUE_PRIORITY \(15\): the kernel answers EINVAL$/],
      [{ percentage: 101 }, 'EINVAL', /percentage 101 is above KFD_MAX_QUEUE_PERCENTAGE/],
      [{ ringSize: 1000 }, 'EINVAL', /ring size 1000 is neither 0 nor a power of two/],
      [{ ringBase: 0xffff800000000000n }, 'EFAULT', /not a user-space address/],
      [{ ringBase: '0x7f3a8b800010' }, 'EINVAL', /not 256-byte aligned: refused by gpucolo, not the kernel/],
      [{ pm4TargetXcc: 256 }, 'EINVAL', /pm4_target_xcc 256 does not fit/],
    ];
    for (const [over, code, msg] of cases) {
      for (const fn of [updateQueueArgs, updateQueue]) {
        const e = caught(() => fn({ ...args, ...over, devPath: REGULAR }));
        expect(e).toBeInstanceOf(GpucoloError);
        expect(e).toMatchObject({ code, phase: 'arguments', op: 'UPDATE_QUEUE', syscall: undefined, path: undefined });
        expect(e.errno).toBe(code === 'EFAULT' ? -14 : -22);
        expect(e.message).toMatch(msg);
        expect(e.hint).toMatch(/nothing was sent to the kernel/);
      }
    }
    expect(caught(() => updateQueueArgs({ ...args, ringBase: 'not an address' })).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(caught(() => updateQueueArgs({ ...args, ringBase: -1 })).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(caught(() => updateQueueArgs({ ...args, queueId: -1 }))).toBeInstanceOf(RangeError);
    expect(caught(() => updateQueueArgs({ ...args, priority: '15' as unknown as number }))).toBeInstanceOf(TypeError);
  });

  it('updateQueue on a regular file: ENOTTY from ioctl, in Node\'s shape, with a hint', () => {
    const e = caught(() => updateQueue({ ...args, devPath: REGULAR }));
    expect(e).toBeInstanceOf(GpucoloError);
    expect(e).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl', path: REGULAR, op: 'UPDATE_QUEUE', phase: 'syscall' });
    expect(e.message).toBe(`updateQueue: ENOTTY: inappropriate ioctl for device, ioctl '${REGULAR}'`);
    expect(e.hint).toBe('not a KFD device: devPath must be /dev/kfd');
  });

  it('updateQueue on a missing device: ENOENT from open', () => {
    const e = caught(() => updateQueue({ ...args, devPath: path.join(tmp, 'kfd') }));
    expect(e).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: path.join(tmp, 'kfd'), phase: 'syscall' });
    expect(e.hint).toMatch(/^\/dev\/kfd is missing/);
  });

  it('queueSnapshotSelf: ENOTTY at DBG_TRAP_ENABLE on a regular file, ENOENT on a missing path; nothing left enabled', () => {
    const e = caught(() => queueSnapshotSelf({ devPath: REGULAR, acceptSideEffects: true }));
    expect(e).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl', path: REGULAR, op: 'DBG_TRAP_ENABLE', phase: 'syscall', debugEnabled: false, debugDisabled: false });
    expect(e.message).toMatch(/^queueSnapshotSelf: ENOTTY/);
    expect(e.hint).toBe('not a KFD device: devPath must be /dev/kfd');
    const m = caught(() => queueSnapshotSelf({ devPath: path.join(tmp, 'kfd'), acceptSideEffects: true }));
    expect(m).toMatchObject({ code: 'ENOENT', syscall: 'open', debugEnabled: false });
  });

  it('parseQueueSnapshot: 64-byte entries and a smaller negotiated size', () => {
    const entry = (i: number, stride: number): Buffer => {
      const b = Buffer.alloc(64);
      b.writeBigUInt64LE(0n, 0);
      b.writeBigUInt64LE(0x7f3a8c200000n + BigInt(i << 24), 8);
      b.writeBigUInt64LE(0x7f3a9d4f2000n, 16);
      b.writeBigUInt64LE(0x7f3a9d4f2080n, 24);
      b.writeBigUInt64LE(0x7f3a00000000n, 32);
      b.writeUInt32LE(i, 40);
      b.writeUInt32LE(31774, 44);
      b.writeUInt32LE(1048576, 48);
      b.writeUInt32LE(2, 52);
      b.writeUInt32LE(0x2b5000, 56);
      const out = Buffer.alloc(stride, 0xee);
      b.copy(out, 0, 0, Math.min(stride, 64));
      return out;
    };
    const full = parseQueueSnapshot(Buffer.concat([entry(0, 64), entry(1, 64)]), 64);
    expect(full.error).toBeUndefined();
    expect(full.entries[1]).toEqual({
      validBytes: 64,
      queueId: 1,
      gpuId: 31774,
      queueType: 2,
      type: 'compute-aql',
      ringBase: '0x7f3a8d200000',
      ringSize: 1048576,
      writePointerAddress: '0x7f3a9d4f2000',
      readPointerAddress: '0x7f3a9d4f2080',
      ctxSaveRestoreAddress: '0x7f3a00000000',
      ctxSaveRestoreSize: 0x2b5000,
      exceptionStatus: '0x0',
    });
    const small = parseQueueSnapshot(Buffer.concat([entry(0, 48), entry(1, 48)]), 48);
    expect(small.entries.map((e) => [e.queueId, e.gpuId, e.ringBase, e.ringSize, e.type])).toEqual([
      [0, 31774, '0x7f3a8c200000', undefined, undefined],
      [1, 31774, '0x7f3a8d200000', undefined, undefined],
    ]);
    // such an entry cannot feed a plan
    expect(refused(planKfdPriority({ pid: 41872, selfPid: 41872, queueId: 1, priority: 15, snapshotOptions: ROOTS, debugSnapshot: small.entries })).refusal).toBe('ring-base-unknown');
    const big = parseQueueSnapshot(Buffer.concat([entry(0, 80), entry(1, 80), Buffer.alloc(5)]), 80);
    expect(big.entries.map((e) => [e.validBytes, e.queueId, e.ringSize])).toEqual([
      [64, 0, 1048576],
      [64, 1, 1048576],
    ]);
    expect(big.error).toBe('5 trailing byte(s) after 2 entries of 80 bytes ignored');
  });
});

describe('without the native core (GPUCOLO_NATIVE=0)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('the ioctl wrappers throw ENONATIVE; verify and plan work on the TS parsers', async () => {
    vi.stubEnv('GPUCOLO_NATIVE', '0');
    vi.resetModules();
    const io = await import('../src/kfd/ioctl.js');
    const prio = await import('../src/kfd/priority.js');
    const args = { queueId: 1, ringBase: '0x7f3a8b800000', ringSize: 1048576, percentage: 100, priority: 15, devPath: REGULAR };
    for (const fn of [() => io.updateQueue(args), () => io.updateQueueArgs(args), () => io.queueSnapshotSelf({ devPath: REGULAR, acceptSideEffects: true })]) {
      const e = caught(fn);
      expect(e.code).toBe('ENONATIVE');
      expect(e.message).toMatch(/native core not available: native core disabled by GPUCOLO_NATIVE=0/);
    }
    // refusing side effects needs no native core
    expect(caught(() => io.queueSnapshotSelf({} as never)).code).toBe('ESIDEEFFECTS');
    const r = prio.verifyOwnQueues({ pid: 41872, expected: [{ stream: 'hp', level: 'high' }], snapshotOptions: ROOTS });
    expect(r.ok).toBe(true);
    const plan = prio.planKfdPriority({ pid: 42117, selfPid: 42117, queueId: 0, priority: 11, snapshotOptions: ROOTS });
    expect(plan.ok).toBe(true);
  });
});
