/**
 * The queue model: HQD -> MQD -> process join, sysfs id merge, runlist flags, on the shared
 * fixture (README ground truth) and on synthesized scenarios whose truth is known.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { joinQueues, parseHqds, parseMqds, parseRls, readKfdProcs, readTopology, snapshot } from '../src/index.js';
import { DEBUGFS, IMPLS, SYSFS } from './helpers/impls.js';
import { expectedJoin, randomScenario, synthHqds, synthMqds, synthRls, type SynthScenario } from './helpers/kfd-synth.js';

describe.each(IMPLS)('%s: join on the shared fixture', (impl) => {
  const snap = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: '/nonexistent', impl });

  it('reads every source and reports nothing missing', () => {
    expect(snap.schema).toBe('gpucolo.queues/1');
    expect(snap.path).toBe(impl);
    for (const s of Object.values(snap.sources)) expect(s.ok).toBe(true);
    expect(snap.missing).toEqual([]);
    expect(snap.partial).toBe(false);
    expect(snap.warnings).toEqual([]);
  });

  it('gives the README ground truth per process and queue', () => {
    const [p1, p2] = snap.processes;
    expect(p1.pid).toBe(41872);
    expect(
      p1.queues.map((q) => [q.qid, q.qidMatch, q.type, q.gpuId, q.node, q.priority?.level ?? null, q.mqdAddresses[0] ?? null, q.inRunlist]),
    ).toEqual([
      [0, 'creation-order', 'compute', '7c1e', 2, 'normal', '0x712000', true],
      [1, 'creation-order', 'compute', '7c1e', 2, 'high', '0x71e000', true],
      [2, 'unique', 'sdma-xgmi', '7c1e', 2, null, null, true],
    ]);
    expect(p1.queues[0].hqds).toEqual([0, 1, 2, 3].map((inst) => ({ inst, pipe: 0, queue: 2, active: true, busy: true, xcc: inst })));
    expect(p1.queues[1].hqds.map((h) => `${h.inst}/${h.pipe}/${h.queue}:${h.busy}`)).toEqual(['0/1/2:false', '1/1/2:false', '2/1/2:false', '3/1/2:false']);
    expect(p1.queues[2].sdma).toEqual({ engine: 2, rlc: 0, active: true, busy: false, matchedBy: 'engine-rlc' });
    expect(p1.runlist).toEqual([{ gpuId: '7c1e', pasid: 0x8002, numQueues: 3, mappedQueues: 3 }]);
    expect(p1.gpus[0].vramBytes).toBe(17184063488);
    // pid 42117: an inactive queue, in mqds but absent from hqds and rls
    expect(p2.queues).toHaveLength(1);
    expect(p2.queues[0]).toMatchObject({ qid: 0, qidMatch: 'unique', hqds: [], inRunlist: false, priority: { pipe: 1, queue: 7, level: 'normal' } });
    expect(snap.unmatchedHqds).toEqual([]);
    expect(snap.unmatchedRunlistQueues).toEqual([]);
  });

  it('summarises the node: 8 active HQDs, 2 per XCC, 1 SDMA RLC, runlist of 2 processes', () => {
    expect(snap.nodes).toHaveLength(1);
    expect(snap.nodes[0]).toMatchObject({ node: 2, gpuId: '7c1e', gfxTarget: 'gfx942', numXcc: 4, activeHqds: 8, cpSlots: 96, activeSdma: 1, queues: 4 });
    expect(snap.nodes[0].perXcc.map((x) => [x.inst, x.activeCp, x.cpSlots, x.hiqActive])).toEqual([
      [0, 2, 24, true],
      [1, 2, 24, true],
      [2, 2, 24, true],
      [3, 2, 24, true],
    ]);
    expect(snap.nodes[0].runlist).toEqual({ present: true, processes: 2, mapQueues: 3, chained: false });
  });

  it('filters by pid', () => {
    const only = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: '/nonexistent', impl, pids: [42117] });
    expect(only.processes.map((p) => p.pid)).toEqual([42117]);
  });
});

describe('join: what cannot be matched is reported, not dropped', () => {
  const mqds = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'latin1');
  const hqds = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'latin1');

  it('an active HQD whose MQD is not in mqds lands in unmatchedHqds', () => {
    // drop process 41872 from mqds: its 8 active HQDs and its SDMA RLC lose their owner
    const only42117 = mqds.slice(mqds.indexOf('Process 42117'));
    const r = joinQueues({ mqds: parseMqds(only42117, { impl: 'ts' }), hqds: parseHqds(hqds, { impl: 'ts' }) });
    expect(r.unmatchedHqds.filter((h) => h.kind === 'cp').map((h) => `${h.inst}/${h.pipe}/${h.queue} ${h.mqdAddress}`)).toEqual([
      '0/0/2 0x712000', '0/1/2 0x71e000', '1/0/2 0x715000', '1/1/2 0x721000',
      '2/0/2 0x718000', '2/1/2 0x724000', '3/0/2 0x71b000', '3/1/2 0x727000',
    ]);
    expect(r.unmatchedHqds.filter((h) => h.kind === 'sdma').map((h) => [h.pipe, h.queue, h.ringBase])).toEqual([[2, 0, '0x7f3a8a000000']]);
  });

  it('different queue counts in sysfs and mqds: the oldest pair, the rest stay unknown, with a warning', () => {
    const procs = readKfdProcs({ sysfsRoot: SYSFS, impl: 'ts' });
    procs.procs[0].queues.pop(); // sysfs misses the SDMA queue (created between reads)
    procs.procs[0].queues.pop(); // and the newer compute queue
    const r = joinQueues({ mqds: parseMqds(mqds, { impl: 'ts' }), procs });
    const p = r.processes.find((x) => x.pid === 41872)!;
    expect(p.queues.map((q) => [q.qid, q.qidMatch, q.mqdAddresses[0] ?? null])).toEqual([
      [0, 'creation-order', '0x712000'],
      [null, 'unmatched', '0x71e000'],
      [null, 'unmatched', null],
    ]);
    expect(r.warnings.join('\n')).toMatch(/process 41872: 1 compute queue\(s\) on gpu 7c1e in sysfs but 2 in mqds/);
    expect(r.warnings.join('\n')).toMatch(/process 41872: 0 sdma queue\(s\) on gpu 7c1e in sysfs but 1 in mqds/);
  });

  it('a queue sysfs shows before mqds does is listed from sysfs; earlier ids are kept by history', () => {
    const procs = readKfdProcs({ sysfsRoot: SYSFS, impl: 'ts' });
    // qid 5 exists in sysfs only; hints say 0x71e000 was qid 1 and 0x712000 qid 0
    procs.procs[0].queues.push({ qid: 5, typeCode: 0, type: 'compute', sizeBytes: 4096, gpuId: 31774 });
    const qidHints = new Map([[41872, new Map([['mqd:0x71e000', 1], ['mqd:0x712000', 0]])]]);
    const r = joinQueues({ mqds: parseMqds(mqds, { impl: 'ts' }), procs, qidHints });
    const p = r.processes.find((x) => x.pid === 41872)!;
    expect(p.queues.map((q) => [q.qid, q.qidMatch, q.source])).toEqual([
      [0, 'history', 'debugfs+sysfs'],
      [1, 'history', 'debugfs+sysfs'],
      [2, 'unique', 'debugfs+sysfs'],
      [5, 'sysfs-only', 'sysfs'],
    ]);
  });

  it('sysfs alone still gives processes, queue ids, types and GPUs, and says what is missing', () => {
    const s = snapshot({ sysfsRoot: SYSFS, debugfsRoot: '/nonexistent-debugfs', procRoot: '/nonexistent' });
    expect(s.sources.mqds).toMatchObject({ ok: false, code: 'ENOENT' });
    // a root given explicitly is a recorded tree: the file is not in it (no "mount debugfs")
    expect(s.sources.mqds.hint).toBe('not in the recorded tree');
    expect(s.missing).toEqual(expect.arrayContaining(['queues[].priority', 'queues[].hqds', 'unmatchedHqds', 'queues[].inRunlist']));
    expect(s.partial).toBe(false);
    expect(s.processes.map((p) => p.queues.map((q) => [q.qid, q.type, q.source, q.priority]))).toEqual([
      [
        [0, 'compute', 'sysfs', null],
        [1, 'compute', 'sysfs', null],
        [2, 'sdma-xgmi', 'sysfs', null],
      ],
      [[0, 'compute', 'sysfs', null]],
    ]);
    expect(s.nodes[0]).toMatchObject({ gfxTarget: 'gfx942', numXcc: 4, queues: 4 });
  });

  it('debugfs alone (no sysfs) still joins, without queue ids', () => {
    const s = snapshot({ sysfsRoot: '/nonexistent-sysfs', debugfsRoot: DEBUGFS, procRoot: '/nonexistent' });
    expect(s.sources.topology).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(s.missing).toContain('queues[].qid');
    expect(s.processes[0].queues.map((q) => [q.qid, q.qidMatch, q.hqds.length])).toEqual([
      [null, 'no-sysfs', 4],
      [null, 'no-sysfs', 4],
      [null, 'no-sysfs', 0],
    ]);
    expect(s.nodes[0].numXcc).toBeNull();
  });
});

function checkScenario(s: SynthScenario, impl: 'native' | 'ts'): void {
  const r = joinQueues({
    mqds: parseMqds(synthMqds(s), { impl }),
    hqds: parseHqds(synthHqds(s), { impl }),
    rls: parseRls(synthRls(s), { impl }),
  });
  const want = expectedJoin(s);
  expect(r.unmatchedHqds).toEqual([]);
  expect(r.unmatchedRunlistQueues).toEqual([]);
  expect(r.warnings).toEqual([]);
  for (const p of r.processes) {
    const got = p.queues.map((q) => ({
      kind: q.type,
      gpuId: q.gpuId,
      priority: q.priority?.queue ?? null,
      slots: q.hqds.filter((h) => h.active).map((h) => `${h.inst}/${h.pipe}/${h.queue}`),
      sdma: q.sdma ? `${q.sdma.engine}/${q.sdma.rlc}` : null,
      inRunlist: q.inRunlist,
    }));
    expect(got).toEqual(want.get(p.pid));
  }
  // every process mqds prints is kept, a process without queues too (the kernel prints it)
  expect(r.processes.map((p) => p.pid)).toEqual([...want.keys()].sort((a, b) => a - b));
}

describe.each(IMPLS)('%s: join recovers the truth of synthesized scenarios', (impl) => {
  it('pre-GC-9.4.3 dumps: no Inst, one MQD per queue, decimal PASID, 16-dword MAP_PROCESS', () => {
    const s = randomScenario(7, { instPrinted: false, header: 'dec', mapProcessDwords: 16 });
    const h = parseHqds(synthHqds(s), { impl });
    expect(h.issues).toEqual([]);
    expect(h.nodes[0].slots.filter((x) => x.kind !== 'sdma').every((x) => !x.instPrinted && x.inst === 0)).toBe(true);
    const r = parseRls(synthRls(s), { impl });
    expect(r.nodes.flatMap((n) => n.processes.map((p) => p.variant))).toSatisfy((v: string[]) => v.every((x) => x === 'v9'));
    checkScenario(s, impl);
  });

  it('an 8-node MI300X-class machine with 4 XCCs each', () => {
    const s = randomScenario(11);
    s.nodes = Array.from({ length: 8 }, (_, i) => ({ node: 2 + i, gpuId: 0x2000 + i * 0x111, numXcc: 4 }));
    s.queues.forEach((q, i) => (q.gpu = i % 8));
    // keep slots unique per node after reassignment
    const used = new Set<string>();
    for (const q of s.queues) {
      const key = q.kind === 'sdma' ? `s${q.gpu}/${q.engine}/${q.rlc}` : q.slot ? `c${q.gpu}/${q.slot}` : '';
      if (key && used.has(key)) {
        if (q.kind === 'sdma') q.sdmaActive = false;
        else q.slot = null;
      }
      if (key) used.add(key);
    }
    s.queues = s.queues.filter((q, i, all) => q.kind !== 'sdma' || !all.slice(0, i).some((o) => o.kind === 'sdma' && o.gpu === q.gpu && o.engine === q.engine && o.rlc === q.rlc));
    const h = parseHqds(synthHqds(s), { impl });
    expect(h.nodes).toHaveLength(8);
    expect(h.nodes.every((n) => n.slots.filter((x) => x.kind === 'cp').length === 96)).toBe(true);
    checkScenario(s, impl);
  });

  it('hex PASID headers and the SDMA repeat quirk (SDMA printed after a compute queue)', () => {
    const s: SynthScenario = {
      nodes: [{ node: 1, gpuId: 0xbeef, numXcc: 4 }],
      pids: [500],
      queues: [
        { pid: 500, kind: 'sdma', gpu: 0, mqd: 0, ring: 0x7f0000100000, doorbell: 0x1100, priority: 0, slot: null, engine: 1, rlc: 1, sdmaActive: true },
        { pid: 500, kind: 'compute', gpu: 0, mqd: 0x800000, ring: 0x7f0000200000, doorbell: 0x1000, priority: 15, slot: [3, 7] },
      ],
      header: 'hex',
      instPrinted: true,
      mapProcessDwords: 21,
      sdmaQuirk: true,
    };
    // newest first: compute then SDMA, so the SDMA MQD is dumped num_xcc (4) times
    const m = parseMqds(synthMqds(s), { impl });
    expect(m.issues).toEqual([]);
    expect(m.processes[0].pasidField).toMatch(/^0x/);
    const sdma = m.processes[0].queues[1];
    expect([sdma.type, sdma.blocks.length, sdma.extraSdmaCopies, sdma.blocks[0].sdma!.engine, sdma.blocks[0].sdma!.rlc]).toEqual(['sdma', 1, 3, 1, 1]);
    checkScenario(s, impl);
  });

  it('"No active runlist" nodes mark their queues as not in the runlist', () => {
    const s = randomScenario(3);
    s.noRunlist = [s.nodes[0].node];
    const r = parseRls(synthRls(s), { impl });
    expect(r.nodes[0].hasRunlist).toBe(false);
    checkScenario(s, impl);
  });

  it('random scenarios (property): every active slot is attributed to the right queue', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
        checkScenario(randomScenario(seed), impl);
      }),
      { numRuns: Number(process.env.GPUCOLO_FUZZ_RUNS ?? 60) },
    );
  });
});

describe('readers used by the join agree with the fixture topology', () => {
  it('topology numXcc matches the number of XCC blocks per compute queue', () => {
    const t = readTopology({ sysfsRoot: SYSFS, impl: 'ts' });
    const m = parseMqds(fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds')), { impl: 'ts' });
    const blocks = m.processes.flatMap((p) => p.queues.filter((q) => q.type === 'compute').map((q) => q.blocks.length));
    expect(new Set(blocks)).toEqual(new Set([t.nodes[0].gpu!.numXcc]));
  });
});
