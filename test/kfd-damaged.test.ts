/**
 * Damaged input, as people bring it from shell loops and pasted logs (issue 17): the shared
 * fixtures cut at a dword or a line, two dumps appended, CR LF, a node or Inst missing. Unknown is
 * reported as unknown (null, an issue, a warning), never as 0, false or "none". Both parser
 * implementations run every case (test/helpers/impls.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { joinQueues, parseHqds, parseMqds, parseRls, readTopology, snapshot } from '../src/index.js';
import { DEBUGFS, IMPLS, SYSFS } from './helpers/impls.js';
import {
  appended,
  crlf,
  cutAfterLines,
  cutBeforeLine,
  cutHqdSlot,
  cutMqdAtDword,
  dropNodeSection,
  lineOf,
  synthHqds,
  synthMqds,
  synthRls,
  type SynthScenario,
} from './helpers/kfd-synth.js';

const read = (f: string): string => fs.readFileSync(path.join(DEBUGFS, 'kfd', f), 'latin1');
const MQDS = read('mqds');
const HQDS = read('hqds');
const RLS = read('rls');
const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A recorded debugfs tree holding these kfd files. */
function debugfsTree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-damaged-'));
  made.push(dir);
  fs.mkdirSync(path.join(dir, 'kfd'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'kfd', name), text, 'latin1');
  return dir;
}

/** Two GPUs, one compute queue each, mapped on every XCC, plus an SDMA queue on the first. */
const TWO_GPUS: SynthScenario = {
  nodes: [
    { node: 2, gpuId: 0x7c1e, numXcc: 2 },
    { node: 3, gpuId: 0x7c1f, numXcc: 2 },
  ],
  pids: [500],
  queues: [
    { pid: 500, kind: 'compute', gpu: 0, mqd: 0x800000, ring: 0x7f0000200000, doorbell: 0x1000, priority: 7, slot: [0, 2] },
    { pid: 500, kind: 'compute', gpu: 1, mqd: 0x900000, ring: 0x7f0000400000, doorbell: 0x1002, priority: 7, slot: [1, 3] },
  ],
  header: 'dkms',
  instPrinted: true,
  mapProcessDwords: 21,
  sdmaQuirk: true,
};

describe.each(IMPLS)('%s: damaged dumps are reported, unknown stays unknown', (impl) => {
  describe('1. an MQD block that ends before a field yields null for it, never 0', () => {
    const hqds = parseHqds(HQDS, { impl });
    const rls = parseRls(RLS, { impl });

    for (const dw of [40, 88]) {
      it(`dump cut at dword ${dw} of qid 0's XCC0 block`, () => {
        const m = parseMqds(cutMqdAtDword(MQDS, 2, 0, dw), { impl });
        expect(m.issues).toEqual([
          { line: 277, severity: 'error', message: `MQD block has ${dw} dwords, expected 512` },
          { line: 276, severity: 'error', message: 'compute queue has 1 MQD block(s), another on device 7c1e has 4 (dump cut?)' },
        ]);
        expect(m.partial).toBe(true);
        const q = m.processes[0].queues[2];
        expect(q.blocks.map((b) => b.words.length)).toEqual([dw]);
        expect(q.blocks[0].compute).toMatchObject({
          headerOk: true,
          mqdAddress: null,
          cpHqdActive: null,
          vmid: null,
          pipePriority: null,
          queuePriority: null,
          ringBase: null,
          ringSizeBytes: null,
          doorbell: null,
          aql: null,
          rptrReportAddress: null,
          wptrPollAddress: null,
          ctxSaveAddress: null,
        });
        // dw39 (logical XCC) and the CU masks (dw23..27) were read
        expect(q.blocks[0].compute!.logicalXcc).not.toBeNull();
        expect(q.blocks[0].compute!.cuMaskSe).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);

        const r = joinQueues({ mqds: m, hqds, rls });
        const q0 = r.processes[0].queues[0];
        expect(q0).toMatchObject({
          type: 'compute',
          gpuId: '7c1e',
          mqdAddresses: [null],
          priority: null,
          sizeBytes: null,
          doorbell: null,
          ringBase: null,
          aql: null,
          hqds: [],
          inRunlist: null,
        });
        // its four active HQDs hold an MQD no queue is known to have: reported, not dropped
        expect(r.unmatchedHqds.filter((h) => h.kind === 'cp').map((h) => h.mqdAddress)).toEqual(['0x712000', '0x715000', '0x718000', '0x71b000']);
        // and the runlist's MAP_QUEUES for it is a queue nobody is known to own
        expect(r.unmatchedRunlistQueues.map((x) => x.mqdAddress)).toEqual(['0x712000']);
      });
    }

    it('dump cut at dword 136: the address and priority were read, the ring was not', () => {
      const m = parseMqds(cutMqdAtDword(MQDS, 2, 0, 136), { impl });
      const r = joinQueues({ mqds: m, hqds, rls });
      const q0 = r.processes[0].queues[0];
      expect(q0).toMatchObject({ mqdAddresses: ['0x712000'], priority: { pipe: 1, queue: 7, level: 'normal' }, ringBase: null, doorbell: null, aql: null, inRunlist: true });
      // only XCC0's MQD is known: only Inst 0's slot is attributed to it
      expect(q0.hqds.map((h) => `${h.inst}/${h.pipe}/${h.queue}`)).toEqual(['0/0/2']);
    });
  });

  it('2. an HQD slot cut before CP_HQD_ACTIVE has active null, not false', () => {
    const h = parseHqds(cutHqdSlot(HQDS, ' Inst 0,  CP Pipe 0, Queue 2', 2), { impl });
    expect(h.issues.map((i) => [i.line, i.message])).toEqual([
      [10, 'HQD dump has 2 registers, expected 56'],
      [1, 'node 2 ends without its SDMA RLC dumps (dump cut?)'],
    ]);
    const slot = h.nodes[0].slots.find((s) => s.kind === 'cp')!;
    expect(slot).toMatchObject({ mqdAddress: '0x712000', active: null, busy: null, vmid: null });
    // with the CP_HQD_ACTIVE word but not the rest: active known, busy unknown
    const h3 = parseHqds(cutHqdSlot(HQDS, ' Inst 0,  CP Pipe 0, Queue 2', 3), { impl });
    expect(h3.nodes[0].slots.find((s) => s.kind === 'cp')).toMatchObject({ active: true, busy: null });

    const r = joinQueues({ mqds: parseMqds(MQDS, { impl }), hqds: h });
    expect(r.processes[0].queues[0].hqds).toEqual([{ inst: 0, pipe: 0, queue: 2, active: null, busy: null, xcc: 0 }]);
    expect(r.nodes[0]).toMatchObject({ activeHqds: null, cpSlots: null });
    expect(r.nodes[0].perXcc[0]).toEqual({ inst: 0, cpSlots: 1, activeCp: null, hiqActive: true });
  });

  it('3. a node section printed twice (two cat outputs appended) is an error, not merged', () => {
    const lines = parseHqds(HQDS, { impl }).lines;
    const h = parseHqds(appended(HQDS), { impl });
    expect(h.issues).toEqual([{ line: lines + 1, severity: 'error', message: 'node 2 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped' }]);
    expect(h.partial).toBe(true);
    expect(h.nodes).toHaveLength(1);
    expect(h.nodes[0].slots).toHaveLength(164);
    const r = joinQueues({ mqds: parseMqds(MQDS, { impl }), hqds: h, topology: readTopology({ sysfsRoot: SYSFS, impl }) });
    // 8 active HQDs on 4 XCCs, one slot per XCC per queue: not 16 and 8 of 8
    expect(r.nodes[0]).toMatchObject({ activeHqds: 8, cpSlots: 96 });
    expect(r.nodes[0].perXcc.map((x) => x.activeCp)).toEqual([2, 2, 2, 2]);
    expect(r.processes[0].queues[0].hqds).toHaveLength(4);
    // the same for rls: the runlist of one node once
    const rl = parseRls(appended(RLS), { impl });
    expect(rl.issues.map((i) => [i.line, i.message])).toEqual([[10, 'node 2 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped']]);
    expect(rl.nodes).toHaveLength(1);
    // a dump cut, then the whole one appended: the cut node is found too
    const h2 = parseHqds(appended(cutBeforeLine(HQDS, '   Inst 2, HIQ'), HQDS), { impl });
    expect(h2.issues.map((i) => i.message)).toEqual([
      'node 2 ends without its SDMA RLC dumps (dump cut?)',
      'node 2 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped',
    ]);
  });

  describe('4. a node or Inst missing from a dump is unknown, not 0 active', () => {
    it('mqds names a GPU that hqds does not show: a warning, the node and its XCCs are null', () => {
      const hq = dropNodeSection(synthHqds(TWO_GPUS), 3);
      const h = parseHqds(hq, { impl });
      expect(h.issues).toEqual([]); // cut at a node boundary: nothing in hqds itself is short
      const r = joinQueues({ mqds: parseMqds(synthMqds(TWO_GPUS), { impl }), hqds: h });
      expect(r.warnings).toEqual(['gpu 7c1f (node ?): mqds lists 1 queue(s) on it but hqds does not show it: their HQD slots are unknown']);
      const n = r.nodes.find((x) => x.gpuId === '7c1f')!;
      expect(n).toMatchObject({ node: null, activeHqds: null, activeSdma: null, cpSlots: null });
      expect(n.perXcc).toEqual([0, 1].map((inst) => ({ inst, cpSlots: null, activeCp: null, hiqActive: null })));
      // the queue's node is as unknown as the node's: one value for it
      expect(r.processes[0].queues.find((q) => q.gpuId === '7c1f')!.node).toBeNull();
      expect(r.nodes.find((x) => x.gpuId === '7c1e')).toMatchObject({ node: 2, activeHqds: 2 });
    });

    it('a topology GPU hqds does not show is unknown too', () => {
      const topology = readTopology({ sysfsRoot: SYSFS, impl });
      const r = joinQueues({ hqds: parseHqds('', { impl }), topology });
      expect(r.nodes[0]).toMatchObject({ node: 2, numXcc: 4, activeHqds: null, activeSdma: null });
      expect(r.nodes[0].perXcc.map((x) => x.activeCp)).toEqual([null, null, null, null]);
      expect(r.warnings).toEqual(['node 2 (gpu 7c1e): in the topology but not in hqds: its HQD slots are unknown']);
    });

    it('Insts missing from hqds (cut after Inst 1): their counts are null and named', () => {
      const h = parseHqds(cutBeforeLine(HQDS, '   Inst 2, HIQ'), { impl });
      expect(h.issues.map((i) => i.message)).toEqual(['node 2 ends without its SDMA RLC dumps (dump cut?)']);
      // without topology the XCC count comes from the MQD blocks per compute queue
      const r = joinQueues({ mqds: parseMqds(MQDS, { impl }), hqds: h });
      expect(r.warnings).toContain('node 2 (gpu 7c1e): hqds shows Inst 0,1 of 4 XCC(s) (MQD blocks per compute queue): Inst 2,3 unknown');
      expect(r.nodes[0].perXcc.map((x) => [x.inst, x.activeCp, x.cpSlots])).toEqual([
        [0, 2, 24],
        [1, 2, 24],
        [2, null, null],
        [3, null, null],
      ]);
      expect(r.nodes[0].activeHqds).toBeNull();
      const t = joinQueues({ mqds: parseMqds(MQDS, { impl }), hqds: h, topology: readTopology({ sysfsRoot: SYSFS, impl }) });
      expect(t.warnings).toContain('node 2 (gpu 7c1e): hqds shows Inst 0,1 of 4 XCC(s) (topology num_xcc): Inst 2,3 unknown');
    });
  });

  describe('5. truncation at a line boundary is detected', () => {
    it('a node with no slots', () => {
      expect(parseHqds('Node 2, gpu_id 7c1e:\n', { impl }).issues).toEqual([{ line: 1, severity: 'error', message: 'node 2 has no HQD slots (dump cut?)' }]);
      // a stopped device prints no slots by design
      expect(parseHqds('Node 2, gpu_id 7c1e:\n Device is stopped\n', { impl }).issues).toEqual([]);
    });

    it('an Inst with fewer CP slots than the others, SDMA slots with fewer registers or RLCs than the others', () => {
      const h = parseHqds(cutBeforeLine(HQDS, ' Inst 1,  CP Pipe 2, Queue 2'), { impl });
      expect(h.issues.map((i) => i.message)).toEqual([
        'node 2: Inst 1 has 12 CP slot(s), another Inst has 24 (dump cut?)',
        'node 2 ends without its SDMA RLC dumps (dump cut?)',
      ]);
      const lines = HQDS.split('\n');
      const s = parseHqds(`${lines.slice(0, lines.length - 3).join('\n')}\n`, { impl });
      expect(s.issues).toEqual([{ line: lineOf(HQDS, '  SDMA Engine 7, RLC 7'), severity: 'error', message: "SDMA RLC dump has 32 registers, the node's others have 44 (dump cut?)" }]);
      // cut at an RLC boundary: the last engine has fewer RLCs than the others
      expect(parseHqds(cutBeforeLine(HQDS, '  SDMA Engine 7, RLC 6'), { impl }).issues.map((i) => i.message)).toEqual([
        'node 2: SDMA engine 7 has 6 RLC(s), another engine has 8 (dump cut?)',
      ]);
    });

    it('a queue header without its MQD dump', () => {
      const m = parseMqds(cutAfterLines(MQDS, 19), { impl });
      expect(m.issues).toEqual([{ line: 19, severity: 'error', message: 'compute queue without an MQD dump (dump cut?)' }]);
      const q = joinQueues({ mqds: m }).processes[0].queues.find((x) => x.mqdsLine === 19)!;
      expect(q).toMatchObject({ mqdAddresses: [], priority: null, aql: null, doorbell: null });
      const sd = parseMqds(cutAfterLines(MQDS, 2), { impl });
      expect(sd.issues.map((i) => i.message)).toEqual(['sdma queue without an MQD dump (dump cut?)']);
    });

    it('fewer XCC MQD blocks than the others on the device, or than the Insts in hqds (no topology needed)', () => {
      // qid 0 cut after 2 of its 4 blocks; qid 1 before it has 4
      const m = parseMqds(cutMqdAtDword(MQDS, 2, 2, 0), { impl });
      expect(m.issues).toEqual([{ line: 276, severity: 'error', message: 'compute queue has 2 MQD block(s), another on device 7c1e has 4 (dump cut?)' }]);
      // qid 1 cut after 2 blocks is the only compute queue: hqds says the GPU has 4 Insts
      const m1 = parseMqds(cutMqdAtDword(MQDS, 1, 2, 0), { impl });
      expect(m1.issues).toEqual([]);
      const r = joinQueues({ mqds: m1, hqds: parseHqds(HQDS, { impl }) });
      expect(r.warnings).toContain('pid 41872: compute queue at mqds line 19 has 2 MQD block(s), gpu 7c1e shows 4 Inst(s) in hqds');
    });
  });

  describe('6. the smaller ones', () => {
    it('a process the kernel prints without queues is kept', () => {
      const r = joinQueues({ mqds: parseMqds(`Process 5 PASID 5:\n${MQDS}`, { impl }) });
      expect(r.processes.map((p) => [p.pid, p.queues.length])).toEqual([
        [5, 0],
        [41872, 3],
        [42117, 1],
      ]);
    });

    it('the runlist is joined by PASID where the mqds header prints a real one', () => {
      const rls = parseRls(RLS, { impl });
      // current kernels print the pid again: pid 42117's MAP_PROCESS (no MAP_QUEUES) is nobody's
      expect(joinQueues({ mqds: parseMqds(MQDS, { impl }), rls }).processes[1].runlist).toEqual([]);
      for (const [a, b] of [
        ['0x8002', '0x8003'],
        ['32770', '32771'],
      ]) {
        const old = MQDS.replace('Process 41872 PASID 41872:', `Process 41872 PASID ${a}:`).replace('Process 42117 PASID 42117:', `Process 42117 PASID ${b}:`);
        const r = joinQueues({ mqds: parseMqds(old, { impl }), rls });
        expect(r.processes.map((p) => p.runlist)).toEqual([
          [{ gpuId: '7c1e', pasid: 0x8002, numQueues: 3, mappedQueues: 3 }],
          [{ gpuId: '7c1e', pasid: 0x8003, numQueues: 1, mappedQueues: 0 }],
        ]);
        expect(r.warnings).toEqual([]);
      }
    });

    it('a CR LF tree reads like the LF one', () => {
      const lf = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: '/nonexistent', impl });
      const dir = debugfsTree({ mqds: crlf(MQDS), hqds: crlf(HQDS), rls: crlf(RLS) });
      const cr = snapshot({ sysfsRoot: SYSFS, debugfsRoot: dir, procRoot: '/nonexistent', impl });
      expect(cr.issues).toEqual([]);
      expect(cr.processes).toEqual(lf.processes);
      expect(cr.nodes).toEqual(lf.nodes);
      expect(cr.unmatchedHqds).toEqual(lf.unmatchedHqds);
    });

    it('a recorded tree without a file says "not in the recorded tree", not how to fix a live host', () => {
      const dir = debugfsTree({ mqds: MQDS });
      const s = snapshot({ sysfsRoot: '/nonexistent-sysfs', debugfsRoot: dir, procRoot: '/nonexistent', impl });
      expect(s.sources.hqds).toMatchObject({ ok: false, code: 'ENOENT', hint: 'not in the recorded tree' });
      expect(s.sources.topology).toMatchObject({ ok: false, code: 'ENOENT', hint: 'not in the recorded tree' });
    });

    it('SDMA RLCs enabled with no MQD on an idle GPU are labelled likely stale', () => {
      const idle: SynthScenario = { ...TWO_GPUS, queues: [{ pid: 500, kind: 'sdma', gpu: 0, mqd: 0, ring: 0x7f0000100000, doorbell: 0x1100, priority: 0, slot: null, engine: 1, rlc: 0, sdmaActive: true }] };
      const hqds = parseHqds(synthHqds(idle), { impl });
      const r = joinQueues({ mqds: parseMqds('', { impl }), hqds });
      expect(r.unmatchedHqds.map((h) => [h.kind, h.pipe, h.queue, h.likelyStale])).toEqual([['sdma', 1, 0, true]]);
      // a GPU with queues is not idle: the same RLC is just unmatched
      const busy = joinQueues({ mqds: parseMqds(synthMqds(TWO_GPUS), { impl }), hqds });
      expect(busy.unmatchedHqds.filter((h) => h.kind === 'sdma').map((h) => h.likelyStale)).toEqual([false]);
    });

    it('an unknown node has one value, null, in queues and in nodes', () => {
      const m = parseMqds(MQDS.replace('Process 42117 PASID 42117:\n  Compute queue on device 7c1e', 'Process 42117 PASID 42117:\n  Compute queue on device beef'), { impl });
      const r = joinQueues({ mqds: m, hqds: parseHqds(HQDS, { impl }), topology: readTopology({ sysfsRoot: SYSFS, impl }) });
      expect(r.processes[1].queues[0]).toMatchObject({ gpuId: 'beef', node: null });
      expect(r.nodes.map((n) => [n.node, n.gpuId])).toEqual([
        [2, '7c1e'],
        [null, 'beef'],
      ]);
    });
  });

  it('10. a proc/<pid> symlink that leads outside a recorded tree is not read', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-proc-'));
    made.push(root);
    fs.mkdirSync(path.join(root, 'proc/real-42117'), { recursive: true });
    fs.writeFileSync(path.join(root, 'proc/real-42117/status'), 'Name:\trecorded\nNSpid:\t42117\t7\n');
    fs.symlinkSync('real-42117', path.join(root, 'proc/42117')); // inside the tree: fine
    fs.symlinkSync('/proc/self', path.join(root, 'proc/41872')); // this host's live /proc
    const s = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: path.join(root, 'proc'), impl });
    expect(s.processes.map((p) => [p.pid, p.name, p.nsPid])).toEqual([
      [41872, null, null],
      [42117, 'recorded', 7],
    ]);
    expect(s.warnings).toEqual([expect.stringMatching(new RegExp(`^${root}/proc/41872 leads outside ${root}/proc \\(to /proc/\\d+/status\\): process 41872's name and namespace pid are not read$`))]);
  });
});

describe.each(IMPLS)('%s: a runlist read in part', (impl) => {
  it('a runlist cut inside a packet leaves inRunlist unknown, not false', () => {
    const cut = cutAfterLines(RLS, 7); // cut inside the SDMA MAP_QUEUES: the IB cannot be walked to its end
    const rls = parseRls(cut, { impl });
    expect(rls.partial).toBe(true);
    const r = joinQueues({ mqds: parseMqds(MQDS, { impl }), rls });
    expect(r.processes.flatMap((p) => p.queues.map((q) => q.inRunlist))).toEqual([null, null, null, null]);
    // a runlist read whole that does not list a queue: not in the runlist
    const whole = joinQueues({ mqds: parseMqds(MQDS, { impl }), rls: parseRls(synthRls(TWO_GPUS), { impl }) });
    expect(whole.processes[0].queues.map((q) => q.inRunlist)).toEqual([false, false, false]);
  });
});
