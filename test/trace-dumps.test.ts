/** Directories of plain `cat` dumps (the shell-loop experiments) read as traces and analyzed. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeTrace } from '../src/trace/analyze/index.js';
import { classifyDumpName, readDumpDir, stampSeconds } from '../src/trace/dumps.js';
import { loadTrace } from '../src/trace/read.js';
import { DEBUGFS, IMPLS, ROOT } from './helpers/impls.js';
import { synthHqds, synthMqds, type SynthQueue, type SynthScenario } from './helpers/kfd-synth.js';
import { makeTree } from './helpers/tree.js';

const MQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'utf8');
const HQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'utf8');
const CLI = path.join(ROOT, 'dist/cli/cli.js');

/** The mqds text without the block of one process (what the dump shows once it exited). */
function withoutProcess(text: string, pid: number): string {
  const blocks = text.split(/^(?=Process \d+ PASID)/m);
  return blocks.filter((b) => !b.startsWith(`Process ${pid} `)).join('');
}

const IDLE: SynthScenario = {
  nodes: [{ node: 2, gpuId: 0x7c1e, numXcc: 4 }],
  pids: [],
  queues: [],
  header: 'dkms',
  instPrinted: true,
  mapProcessDwords: 21,
  sdmaQuirk: true,
};
const IDLE_HQDS = synthHqds(IDLE);

/** baseline (idle), snapshots 1-3 = fixture, 4 = fixture without pid 42117, final = idle; unix stamps 10 s apart. */
function fixtureRun(stamp: (i: number) => string = (i) => `_${1738650000 + (i - 1) * 10}`): string {
  const files: Record<string, string> = { 'baseline_mqd.txt': '', 'baseline_hqd.txt': IDLE_HQDS, 'final_mqd.txt': '', 'final_hqd.txt': IDLE_HQDS, 'snapshot_ps_1.txt': 'python3' };
  for (let i = 1; i <= 4; i++) {
    files[`snapshot_mqd_${i}${stamp(i)}.txt`] = i === 4 ? withoutProcess(MQDS, 42117) : MQDS;
    files[`snapshot_hqd_${i}${stamp(i)}.txt`] = HQDS;
  }
  return makeTree(files, 'gpucolo-dumps-');
}

describe('dump file names', () => {
  it('classifies baseline, snapshots with and without stamps, final; ignores the rest', () => {
    expect(classifyDumpName('baseline_mqd.txt')).toEqual({ kind: 'mqd', role: 'baseline', index: -1, unixSeconds: null });
    expect(classifyDumpName('snapshot_hqd_3_1738650020.txt')).toEqual({ kind: 'hqd', role: 'snapshot', index: 3, unixSeconds: 1738650020 });
    expect(classifyDumpName('snapshot_mqd_12.txt')).toEqual({ kind: 'mqd', role: 'snapshot', index: 12, unixSeconds: null });
    expect(classifyDumpName('snapshot_mqd_2_20260204_101510.txt')?.unixSeconds).toBe(Date.UTC(2026, 1, 4, 10, 15, 10) / 1000);
    expect(classifyDumpName('final_hqd.txt')?.role).toBe('final');
    expect(classifyDumpName('snapshot_ps_1_1738650000.txt')).toBeNull();
    expect(classifyDumpName('model_output.log')).toBeNull();
    expect(stampSeconds('20260204_101500')! - stampSeconds('20260204_101430')!).toBe(30);
  });
});

describe('readDumpDir on the fixture dumps', () => {
  it('converts to the trace shape: header, samples with times from the names, baseline marker', () => {
    const t = readDumpDir(fixtureRun());
    expect(t.origin).toMatchObject({ format: 'dumps', times: 'file-names', costsMeasured: false });
    expect(t.header).toMatchObject({ schema: 'gpucolo.trace/1', sampler: 'ts-timer', target: { mode: 'all', pids: [] }, sources: ['debugfs'], intervalNs: 10e9 });
    expect(t.header.gpus).toEqual([{ node: 2, gpuId: '7c1e', name: '', gfxTarget: null, numXcc: 4 }]);
    expect(t.samples.map((s) => s.t_ns)).toEqual([0, 10e9, 20e9, 30e9, 40e9, 50e9]);
    expect(t.samples.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(t.markers).toEqual([{ kind: 'marker', t_ns: 0, marker: 'baseline-end' }]);
    expect(t.footer).toBeNull();
    expect(t.origin.notes.join('\n')).toMatch(/baseline time not recorded/);
  });

  it('queues keyed by the XCC0 MQD address, mapped on 4 XCCs at pipe0/queue2 and pipe1/queue2, plus the SDMA queue', () => {
    const s1 = readDumpDir(fixtureRun()).samples[1];
    const p1 = s1.processes.find((p) => p.pid === 41872)!;
    expect(p1.queues.map((q) => q.key)).toEqual(['41872/mqd0x712000', '41872/mqd0x71e000', '41872/sdma0x7f3a8a000000']);
    expect(p1.queues[0]).toMatchObject({ qid: null, type: 'compute', gpuId: '7c1e', node: 2, mqd: '0x712000', priority: { pipe: 1, queue: 7, level: 'normal' } });
    expect(p1.queues[0].hqds).toEqual([
      [0, 0, 2, 1],
      [1, 0, 2, 1],
      [2, 0, 2, 1],
      [3, 0, 2, 1],
    ]);
    expect(p1.queues[1].hqds!.map((h) => `${h[0]}/${h[1]}/${h[2]}/${h[3]}`)).toEqual(['0/1/2/1', '1/1/2/1', '2/1/2/1', '3/1/2/1']);
    expect(p1.queues[2]).toMatchObject({ type: 'sdma', sdma: [2, 0, 1], mqd: null });
    const p2 = s1.processes.find((p) => p.pid === 42117)!;
    expect(p2.queues).toMatchObject([{ key: '42117/mqd0x72a000', hqds: [] }]);
    expect(s1.unmatchedHqds).toEqual([]);
  });

  it('derives lifecycle events from the dumps (pid 42117 gone at snapshot 4, all gone in the final dump)', () => {
    const t = readDumpDir(fixtureRun());
    const ev = (name: string) => t.events.filter((e) => e.event === name).map((e) => [e.pid, e.key ?? null, e.t_ns]);
    expect(ev('process-started')).toEqual([
      [41872, null, 10e9],
      [42117, null, 10e9],
    ]);
    expect(ev('process-exited')).toEqual([
      [42117, null, 40e9],
      [41872, null, 50e9],
    ]);
    expect(ev('queue-destroyed')).toContainEqual([42117, '42117/mqd0x72a000', 40e9]);
    expect(ev('queue-created')).toHaveLength(4);
  });

  it('analysis answers the experiment: counts, stability, 1 MQD -> 4 HQDs on the same slot, per-XCC spread', () => {
    const r = analyzeTrace(readDumpDir(fixtureRun()));
    expect(r.overall.baseline).toMatchObject({ maxQueues: 0, pidsWithQueues: [] });
    const p = r.processes.find((x) => x.pid === 41872)!;
    expect(p.queueCount.whilePresent).toEqual({ samples: 4, min: 3, avg: 3, max: 3 });
    expect(p.queueSet).toMatchObject({ verdict: 'stable', considered: 2, share: 1, changed: false });
    expect(p.exitedNs).toBe(50e9);
    const [q0, q1, sd] = p.queues;
    expect(q0.mapping).toMatchObject({ numXcc: 4, samples: 4, fullyMappedSamples: 4, sameSlotOnAllXccs: true, slotsUsed: ['0/2'], slotChanges: 0, mismatches: [] });
    expect(q0.mapping!.activeXccs).toMatchObject({ min: 4, max: 4 });
    expect(q1.mapping!.slotsUsed).toEqual(['1/2']);
    expect(sd.sdma).toEqual({ rlcs: ['2/0'], samples: 4, activeSamples: 4 });
    expect(q0).toMatchObject({ createdNs: 10e9, destroyedNs: 50e9, lifetimeNs: 40e9 });
    const idle = r.processes.find((x) => x.pid === 42117)!;
    expect(idle.queues[0].mapping).toMatchObject({ unmappedSamples: 3, sameSlotOnAllXccs: null, slotsUsed: [] });
    expect(idle.exitedNs).toBe(40e9);
    expect(r.gpus[0].perXcc.map((x) => [x.inst, x.active.min, x.active.max])).toEqual([
      [0, 0, 2],
      [1, 0, 2],
      [2, 0, 2],
      [3, 0, 2],
    ]);
    expect(r.gpus[0].samples).toBe(6);
    expect(r.coexistence).toMatchObject({ pids: [41872, 42117], samplesTogether: 3, queuesDisjoint: true, hqdSlotsDisjoint: true, totalEqualsSum: true });
    expect(r.sampling).toMatchObject({ jitterNs: null, costs: null, unmeasured: expect.stringMatching(/plain cat dumps/) });
    expect(r.input.complete).toBeNull();
  });

  it('both parser paths give the same trace', () => {
    const dir = fixtureRun();
    const [a, ...rest] = IMPLS.map((impl) => readDumpDir(dir, { impl }));
    for (const b of rest) {
      expect(b.samples).toEqual(a.samples);
      expect(b.events).toEqual(a.events);
    }
  });
});

describe('readDumpDir variants', () => {
  it('names without stamps: snapshot i at i x 10 s (assumed, and said so)', () => {
    const t = readDumpDir(fixtureRun(() => ''));
    expect(t.origin.times).toBe('assumed-interval');
    expect(t.samples.map((s) => s.t_ns)).toEqual([0, 10e9, 20e9, 30e9, 40e9, 50e9]);
    expect(t.origin.notes.join('\n')).toMatch(/no times: snapshot i placed at i x 10 s/);
  });

  it('YYYYmmdd_HHMMSS stamps: differences in seconds, median step as the interval', () => {
    const stamps = ['', '20260204_101500', '20260204_101510', '20260204_101530', '20260204_101540'];
    const t = readDumpDir(fixtureRun((i) => `_${stamps[i]}`));
    expect(t.header.intervalNs).toBe(10e9);
    expect(t.samples.map((s) => s.t_ns)).toEqual([0, 10e9, 20e9, 40e9, 50e9, 60e9]);
    expect(t.header.startedAt).toBe('2026-02-04T10:14:50.000Z');
  });

  it('an hqds dump without its mqds dump is skipped; an mqds dump alone has no HQD data', () => {
    const dir = makeTree({ 'snapshot_mqd_1.txt': MQDS, 'snapshot_hqd_1.txt': HQDS, 'snapshot_mqd_2.txt': MQDS, 'snapshot_hqd_3.txt': HQDS });
    const t = readDumpDir(dir);
    expect(t.samples).toHaveLength(2);
    expect(t.origin.notes).toContain('snapshot 3 has an hqds dump but no mqds dump: skipped (queues unknown)');
    expect(t.samples[1].processes[0].queues[0].hqds).toBeNull();
    expect(t.samples[1].issues).toContain('no hqds dump for this point: HQD slots unknown');
    const r = analyzeTrace(t);
    expect(r.processes[0].queues[0].mapping!.samples).toBe(1);
    expect(r.gpus[0].samples).toBe(1);
  });

  it('removing a process block between dumps changes the count; a slot move and an 8-XCC GPU are seen', () => {
    const q = (over: Partial<SynthQueue>): SynthQueue => ({ pid: 7, kind: 'compute', gpu: 0, mqd: 0x700000, ring: 0x7f0000000000, doorbell: 0x1000, priority: 7, slot: [0, 2], ...over });
    const sc = (queues: SynthQueue[]): SynthScenario => ({ ...IDLE, nodes: [{ node: 2, gpuId: 0x1111, numXcc: 2 }, { node: 3, gpuId: 0x2222, numXcc: 8 }], pids: [...new Set(queues.map((x) => x.pid))], queues });
    const a = q({});
    const b = q({ pid: 8, gpu: 1, mqd: 0x800000, slot: [2, 4], priority: 12 });
    const moved = { ...a, slot: [3, 7] as [number, number] };
    const snaps = [sc([a, b]), sc([a, b]), sc([moved, b]), sc([moved])];
    const files: Record<string, string> = {};
    snaps.forEach((s, i) => {
      files[`snapshot_mqd_${i + 1}.txt`] = synthMqds(s);
      files[`snapshot_hqd_${i + 1}.txt`] = synthHqds(s);
    });
    const t = readDumpDir(makeTree(files));
    expect(t.header.gpus.map((g) => [g.node, g.gpuId, g.numXcc])).toEqual([
      [2, '1111', 2],
      [3, '2222', 8],
    ]);
    const r = analyzeTrace(t);
    const ma = r.processes.find((p) => p.pid === 7)!.queues[0].mapping!;
    expect(ma).toMatchObject({ numXcc: 2, slotsUsed: ['0/2', '3/7'], slotChanges: 1, fullyMappedSamples: 4 });
    const pb = r.processes.find((p) => p.pid === 8)!;
    expect(pb.queues[0].mapping).toMatchObject({ numXcc: 8, fullyMappedSamples: 3, mismatches: [] });
    expect(pb.queues[0].priority.final).toEqual({ pipe: 2, queue: 12, level: 'high' });
    expect(pb.exitedNs).toBe(40e9);
    expect(r.gpus.map((g) => g.perXcc.length)).toEqual([2, 8]);
  });

  describe('bad directories give one clear error', () => {
    it('no dumps', () => {
      const dir = makeTree({ 'notes.txt': 'x' });
      expect(() => readDumpDir(dir)).toThrow(expect.objectContaining({ code: 'EBADTRACE', message: `${dir}: not a dump directory: no KFD dumps (baseline_mqd.txt, snapshot_mqd_<i>[_<ts>].txt, ...)` }));
    });
    it('only hqds dumps', () => {
      const dir = makeTree({ 'snapshot_hqd_1.txt': HQDS });
      expect(() => readDumpDir(dir)).toThrow(expect.objectContaining({ code: 'EBADTRACE', message: expect.stringMatching(/only hqds dumps/) }));
    });
    it('a missing directory', async () => {
      const dir = path.join(makeTree({}), 'nope');
      await expect(loadTrace(dir)).rejects.toMatchObject({ code: 'ENOENT', message: `cannot read ${dir} (ENOENT)` });
    });
    it('an unreadable dump file', () => {
      const dir = makeTree({ 'snapshot_hqd_1.txt': HQDS });
      fs.symlinkSync(path.join(dir, 'gone.txt'), path.join(dir, 'snapshot_mqd_1.txt'));
      expect(() => readDumpDir(dir)).toThrow(expect.objectContaining({ code: 'ENOENT', message: `cannot read ${path.join(dir, 'snapshot_mqd_1.txt')} (ENOENT)` }));
    });
  });
});

describe('gpucolo analyze <dump-dir>', () => {
  it('prints the summary of a dump directory', () => {
    const r = spawnSync(process.execPath, [CLI, 'analyze', fixtureRun()], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/: 6 sample\(s\) over 50 s, every 10 s, sources debugfs\n/);
    expect(r.stdout).toContain('Process 41872: queues min/avg/max 3 / 3 / 3 (n=4); set stable (100% of 2)');
    expect(r.stdout).toMatch(/\n {2}41872\/mqd0x712000 +compute +7c1e +normal 1\/7 +4\/4 +0\/2 /);
    expect(r.stdout).toMatch(/\n {2}42117\/mqd0x72a000 +compute +7c1e +normal 1\/7 +0\/4 +unmapped /);
  });
});
