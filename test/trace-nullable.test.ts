/**
 * Unknown stays unknown in the trace format (issue 17 follow-ups of the damaged-dump work): a slot
 * cut before CP_HQD_ACTIVE is recorded with active null (not 0), a queue whose MQD block ends
 * before its address gets a real key (not `<pid>/mqdnull`), the join's warnings reach the sample's
 * issues, a GPU of unknown node has node null (not -1), and the reader takes all of them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SnapshotQueue } from '../src/kfd/join.js';
import { analyzeTrace } from '../src/trace/analyze/index.js';
import { compactQueue, queueKey } from '../src/trace/assemble.js';
import { readDumpDir } from '../src/trace/dumps.js';
import { toPerfetto } from '../src/trace/perfetto.js';
import { readTrace } from '../src/trace/read.js';
import type { TraceRecord, TraceSample } from '../src/trace/schema.js';
import { runTrace } from '../src/trace/tracer.js';
import { renderSummary } from '../src/cli/analyze.js';
import { renderMarkdown } from '../src/trace/report-md.js';
import { DEBUGFS, IMPLS } from './helpers/impls.js';
import { cutHqdSlot, cutMqdAtDword, dropNodeSection } from './helpers/kfd-synth.js';
import { KfdTree } from './helpers/kfd-tree.js';
import { GPU, compute, footer, header, proc, records, sample, writeJsonl } from './helpers/trace-build.js';
import { makeTree } from './helpers/tree.js';

const MQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'latin1');
const HQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'latin1');

const trees: KfdTree[] = [];
afterEach(() => {
  while (trees.length) trees.pop()!.dispose();
});

function snapshotQueue(over: Partial<SnapshotQueue>): SnapshotQueue {
  return {
    qid: null,
    qidMatch: 'no-sysfs',
    source: 'debugfs',
    type: 'compute',
    aql: null,
    gpuId: '7c1e',
    node: 2,
    sizeBytes: null,
    priority: null,
    doorbell: null,
    ringBase: null,
    mqdAddresses: [],
    hqds: [],
    sdma: null,
    inRunlist: null,
    mqdsLine: 19,
    ...over,
  };
}

describe('compactQueue and queueKey', () => {
  it('an HQD or SDMA slot whose active flag was not read is recorded with null, not 0', () => {
    const q = compactQueue(
      7,
      snapshotQueue({
        mqdAddresses: ['0x712000'],
        hqds: [
          { inst: 0, pipe: 0, queue: 2, active: true, busy: null, xcc: 0 },
          { inst: 1, pipe: 0, queue: 2, active: false, busy: null, xcc: 1 },
          { inst: 2, pipe: 0, queue: 2, active: null, busy: null, xcc: 2 },
        ],
      }),
      true,
    );
    expect(q.hqds).toEqual([
      [0, 0, 2, 1],
      [1, 0, 2, 0],
      [2, 0, 2, null],
    ]);
    const s = compactQueue(7, snapshotQueue({ type: 'sdma', ringBase: '0x7f00', sdma: { engine: 1, rlc: 3, active: null, busy: null, matchedBy: 'engine-rlc' } }), true);
    expect(s.sdma).toEqual([1, 3, null]);
    const on = compactQueue(7, snapshotQueue({ type: 'sdma', ringBase: '0x7f00', sdma: { engine: 1, rlc: 3, active: true, busy: null, matchedBy: 'engine-rlc' } }), true);
    expect(on.sdma).toEqual([1, 3, 1]);
  });

  it('a queue without an MQD address is keyed by its doorbell, ring or mqds line, never mqdnull', () => {
    expect(queueKey(7, snapshotQueue({ qid: 3, mqdAddresses: [null] }))).toBe('7/q3');
    expect(queueKey(7, snapshotQueue({ mqdAddresses: ['0x712000'], doorbell: 4488 }))).toBe('7/mqd0x712000');
    expect(queueKey(7, snapshotQueue({ mqdAddresses: [null, '0x715000'], doorbell: 4488 }))).toBe('7/db4488');
    expect(queueKey(7, snapshotQueue({ mqdAddresses: [null], ringBase: '0x7f3a00000000' }))).toBe('7/compute0x7f3a00000000');
    expect(queueKey(7, snapshotQueue({ mqdAddresses: [null] }))).toBe('7/compute@line19');
    // SDMA: the ring first, as before (its MQD holds no address of its own)
    expect(queueKey(7, snapshotQueue({ type: 'sdma', ringBase: '0x7f3a8a000000', doorbell: 4488 }))).toBe('7/sdma0x7f3a8a000000');
    expect(queueKey(7, snapshotQueue({ type: 'sdma', doorbell: 4488 }))).toBe('7/db4488');
    for (const impl of IMPLS) {
      // the fixture's first compute queue cut at dword 40 of its XCC0 block: no address read
      const dir = makeTree({ 'snapshot_mqd_1_1738650000.txt': cutMqdAtDword(MQDS, 1, 0, 40), 'snapshot_hqd_1_1738650000.txt': HQDS }, 'gpucolo-nokey-');
      const t = readDumpDir(dir, { impl });
      fs.rmSync(dir, { recursive: true });
      const keys = t.samples[0].processes.flatMap((p) => p.queues.map((q) => q.key));
      expect(keys.some((k) => /null|undefined/.test(k)), keys.join(' ')).toBe(false);
    }
  });
});

describe('trace samples carry the join warnings and nullable flags (tracer)', () => {
  const base = (t: KfdTree, out: string) => ({
    intervalNs: 20e6,
    durationNs: 80e6,
    debugfsIntervalNs: 20e6,
    sources: ['sysfs', 'debugfs'] as ('sysfs' | 'debugfs')[],
    sysfsRoot: t.sysfs,
    debugfsRoot: t.debugfs,
    procRoot: t.proc,
    baselineNs: 0,
    tailNs: 0,
    stopAfterNs: null,
    out,
    graceMs: 300,
  });
  const samplesIn = (file: string): TraceSample[] =>
    fs
      .readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as TraceRecord)
      .filter((r): r is TraceSample => r.kind === 'sample');

  it.each(IMPLS)('%s: a slot cut before CP_HQD_ACTIVE is null in the file, and the file reads back', async (impl) => {
    const t = new KfdTree();
    trees.push(t);
    t.writeDebugfs('hqds', cutHqdSlot(t.readDebugfs('hqds'), ' Inst 0,  CP Pipe 0, Queue 2', 2));
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-null-')), 't.jsonl');
    await runTrace({ ...base(t, out), impl });
    const s = samplesIn(out)[0];
    const tuples = s.processes.flatMap((p) => p.queues.flatMap((q) => q.hqds ?? []));
    expect(tuples).toContainEqual([0, 0, 2, null]);
    expect(tuples.some((h) => h[3] === 0 && h[0] === 0 && h[1] === 0 && h[2] === 2)).toBe(false);
    // the join's warnings are in the sample's issues (here: the Insts the cut hqds did not show)
    expect(s.issues.some((i) => /hqds shows Inst .* unknown/.test(i)), s.issues.join('\n')).toBe(true);
    const back = await readTrace(out);
    expect(back.issues).toEqual([]);
    expect(back.samples[0].processes).toEqual(s.processes);
    // unknown, not inactive: the mapping leaves that sample out instead of calling the queue partial
    const r = analyzeTrace(back);
    expect(r.processes.flatMap((p) => p.queues).flatMap((q) => q.mapping?.mismatches ?? []).filter((m) => m.kind === 'partial')).toEqual([]);
  });

  it.each(IMPLS)('%s: a GPU hqds does not show is an issue of each sample', async (impl) => {
    const t = new KfdTree();
    trees.push(t);
    t.writeDebugfs('hqds', dropNodeSection(t.readDebugfs('hqds'), 2));
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-null-')), 't.jsonl');
    await runTrace({ ...base(t, out), impl });
    const all = samplesIn(out);
    expect(all.length).toBeGreaterThan(0);
    for (const s of all.filter((x) => x.debugfs)) expect(s.issues.some((i) => /hqds does not show it/.test(i)), s.issues.join('\n')).toBe(true);
  });

  it('a warning about a process that is not traced is left out', async () => {
    const t = new KfdTree();
    trees.push(t);
    // a process sysfs lists with queues that mqds does not show: "process 50321: sysfs lists ..."
    t.addQueue(50321, 0);
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-null-')), 't.jsonl');
    await runTrace({ ...base(t, out), pids: [41872] });
    const all = samplesIn(out);
    expect(all.length).toBeGreaterThan(0);
    for (const s of all) {
      expect(s.processes.map((p) => p.pid)).toEqual([41872]);
      expect(s.issues.filter((i) => /\b50321\b/.test(i))).toEqual([]);
    }
    const everyone = path.join(path.dirname(out), 'all.jsonl');
    await runTrace({ ...base(t, everyone) });
    expect(samplesIn(everyone).some((s) => s.issues.some((i) => /^process 50321: sysfs lists 1 queue/.test(i)))).toBe(true);
  });
});

describe('reading nullable fields', () => {
  it('readTrace accepts null in the last slot of hqds and sdma tuples, and null (or an old -1) GPU node', async () => {
    const q = compute('41872/mqd0x712000', { mqd: '0x712000', slot: [0, 2], xccs: 2 });
    q.hqds = [
      [0, 0, 2, 1],
      [1, 0, 2, null],
    ];
    const s = { ...compute('41872/sdma0x7f00', { mqd: 'x' }), key: '41872/sdma0x7f00', type: 'sdma', mqd: null, hqds: [], sdma: [0, 1, null] as [number, number, number | null] };
    const other = { node: null, gpuId: 'abcd', name: '', gfxTarget: null, numXcc: 1 };
    const old = { node: -1, gpuId: 'abce', name: '', gfxTarget: null, numXcc: 1 };
    const samples = [sample(0, 100e6, [proc(41872, [q, s])]), sample(1, 200e6, [proc(41872, [q, s])])];
    const file = writeJsonl(records(header({ gpus: [GPU, other, old as unknown as typeof other] }), samples, [], footer(300e6)));
    const t = await readTrace(file);
    expect(t.issues).toEqual([]);
    expect(t.samples).toHaveLength(2);
    expect(t.samples[0].processes[0].queues[0].hqds).toEqual(q.hqds);
    expect(t.samples[0].processes[0].queues[1].sdma).toEqual([0, 1, null]);
    expect(t.header.gpus.map((g) => g.node)).toEqual([GPU.node, null, null]);
    // a value other than null or an integer is still refused
    const bad = JSON.parse(JSON.stringify(samples[0])) as TraceSample;
    (bad.processes[0].queues[0].hqds![1] as unknown[])[3] = 'x';
    const badFile = writeJsonl(records(header(), [bad], [], footer(300e6)));
    expect((await readTrace(badFile)).issues.length).toBeGreaterThan(0);
    // and the null active counts as unknown: not active, not inactive
    const r = analyzeTrace(t);
    expect(r.gpus.find((g) => g.gpuId === 'abcd')).toMatchObject({ node: null, samples: 0 });
    expect(renderSummary(r)).toMatch(/GPU node \? \(abcd, 1 XCC\)/);
    expect(renderMarkdown(r)).toMatch(/Node \? \(gpu_id abcd/);
    expect(JSON.stringify(toPerfetto(t))).toMatch(/GPU node \? \(gpu_id abcd/);
  });

  it('a dump directory with a GPU that only mqds shows: node null, not -1', () => {
    // the fixture's queues are on 7c1e; hqds shows an idle node 3 (gpu 9a2b) instead
    const otherHqds = HQDS.replace(/^Node 2, gpu_id 7c1e:/m, 'Node 3, gpu_id 9a2b:');
    const dir = makeTree({ 'snapshot_mqd_1_1738650000.txt': MQDS, 'snapshot_hqd_1_1738650000.txt': otherHqds }, 'gpucolo-nonode-');
    const t = readDumpDir(dir);
    fs.rmSync(dir, { recursive: true });
    expect(t.header.gpus.map((g) => [g.node, g.gpuId])).toEqual([
      [3, '9a2b'],
      [null, '7c1e'],
    ]);
    expect(JSON.stringify(t.header)).not.toMatch(/"node":-1/);
    const r = analyzeTrace(t);
    expect(r.gpus.find((g) => g.gpuId === '7c1e')).toMatchObject({ node: null, samples: 0 });
    expect(renderSummary(r)).toMatch(/GPU node \? \(7c1e/);
  });
});
