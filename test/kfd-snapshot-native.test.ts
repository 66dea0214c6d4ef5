/**
 * The native snapshot join (native/kfd/join.cc: parse + join in one addon call, objects only for
 * the result) against the TS one (TS parsers, build objects, joinQueues): the same JoinResult,
 * key order included, the same parse issues, on the fixtures, synthesized machines, damaged dumps
 * and every combination of sources read. test/kfd-snapshot-native-fuzz.test.ts adds random damage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eightGpuDumps } from '../bench/parse.js';
import { readKfdProcs, readTopology, snapshot } from '../src/index.js';
import { joinDumps, type DumpFiles } from '../src/kfd/snapshot.js';
import { loadNative } from '../src/native.js';
import { DEBUGFS, SYSFS, nativeLoaded } from './helpers/impls.js';
import {
  appended,
  crlf,
  cutAfterLines,
  cutHqdSlot,
  cutMqdAtDword,
  dropNodeSection,
  randomScenario,
  synthHqds,
  synthMqds,
  synthRls,
} from './helpers/kfd-synth.js';
import { expectSameJoin, randomSysfs } from './helpers/kfd-snapshot-sysfs.js';

const read = (f: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', f));
const FIXTURE = { mqds: read('mqds'), hqds: read('hqds'), rls: read('rls') };
const TOPOLOGY = readTopology({ sysfsRoot: SYSFS, impl: 'ts' });
const PROCS = readKfdProcs({ sysfsRoot: SYSFS, impl: 'ts' });

const text = (b: Buffer): string => b.toString('latin1');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

describe.skipIf(!nativeLoaded)('native snapshot join = TS join', () => {
  it('the addon has joinKfdDumps, so the native path below is the one-call join', () => {
    expect(typeof loadNative()?.joinKfdDumps).toBe('function');
  });

  it('the addon refuses sysfs tables that are not whole rows or name rows that are not there', () => {
    const join = loadNative()!.joinKfdDumps!;
    expect(() => join(null, null, null, new Float64Array([2, 1]), null, null)).toThrow(RangeError);
    expect(() => join(null, null, null, null, new Float64Array([100, -1, 0, 2]), new Float64Array([0, 0, -1, 1]))).toThrow(/queue rows out of range/);
    expect(() => join(FIXTURE.mqds, null, null, null, null, null)).not.toThrow();
    expect(() => join('text' as unknown as Uint8Array, null, null, null, null, null)).toThrow(TypeError);
  });

  it('the shared fixture, every subset of sources read, with and without sysfs', () => {
    for (let mask = 0; mask < 8; mask++) {
      const dumps: DumpFiles = { mqds: mask & 1 ? FIXTURE.mqds : null, hqds: mask & 2 ? FIXTURE.hqds : null, rls: mask & 4 ? FIXTURE.rls : null };
      expectSameJoin(dumps);
      expectSameJoin(dumps, { topology: TOPOLOGY });
      expectSameJoin(dumps, { procs: PROCS });
      expectSameJoin(dumps, { topology: TOPOLOGY, procs: PROCS });
      expectSameJoin(dumps, { topology: TOPOLOGY, procs: PROCS, pids: [42117] });
    }
  });

  it('snapshot() of the fixture tree: the same object from both paths', () => {
    const n = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: '/nonexistent', impl: 'native' });
    const t = snapshot({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, procRoot: '/nonexistent', impl: 'ts' });
    const strip = (s: typeof n) => ({ ...s, takenAt: '', path: '' });
    expect(JSON.stringify(strip(n))).toBe(JSON.stringify(strip(t)));
    expect(n.processes.flatMap((p) => p.queues).length).toBeGreaterThan(0);
  });

  it('the 8-GPU MI300X-class dump of bench/parse.ts', () => {
    const d = eightGpuDumps();
    expectSameJoin(d);
    const r = joinDumps(d, { impl: 'native' }).joined;
    expect(r.nodes).toHaveLength(8);
    expect(r.processes).toHaveLength(16);
  });

  it('synthesized machines (1-3 GPUs, 1-8 XCCs, old and new formats) with random sysfs views', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const opts = seed % 3 === 0 ? { instPrinted: false, header: 'dec' as const, mapProcessDwords: 16 as const } : {};
      const s = randomScenario(seed, opts);
      const dumps = { mqds: bytes(synthMqds(s)), hqds: bytes(synthHqds(s)), rls: bytes(synthRls(s)) };
      expectSameJoin(dumps);
      const sys = randomSysfs(s, seed);
      expectSameJoin(dumps, sys);
      expectSameJoin({ ...dumps, hqds: null }, sys);
    }
  });

  it('damaged dumps: MQD blocks and HQD slots cut at every field, CR LF, appended, nodes missing', () => {
    const mq = text(FIXTURE.mqds);
    const hq = text(FIXTURE.hqds);
    const rl = text(FIXTURE.rls);
    const sys = { topology: TOPOLOGY, procs: PROCS };
    let cuts = 0;
    for (const dw of [0, 1, 8, 24, 40, 88, 126, 127, 128, 129, 130, 133, 134, 136, 137, 143, 145, 181, 200]) {
      for (const q of [0, 1, 2, 3]) {
        for (const block of q === 3 ? [0] : [0, 1]) {
          let cut: string;
          try {
            cut = cutMqdAtDword(mq, q, block, dw);
          } catch {
            continue; // that queue has no such block
          }
          expectSameJoin({ ...FIXTURE, mqds: bytes(cut) }, sys);
          cuts++;
        }
      }
    }
    expect(cuts).toBeGreaterThan(100);
    // every slot (HIQ, CP, SDMA RLC) cut before and after the registers the join reads
    const slotHeaders = hq.split('\n').filter((l) => /^ *(?:Inst \d+, +)?(?:CP Pipe|HIQ on|SDMA Engine)/.test(l));
    expect(slotHeaders.length).toBe(164);
    for (const header of slotHeaders) {
      for (const regs of [0, 1, 2, 3, 5]) expectSameJoin({ ...FIXTURE, hqds: bytes(cutHqdSlot(hq, header, regs)) }, sys);
    }
    expectSameJoin({ mqds: bytes(crlf(mq)), hqds: bytes(crlf(hq)), rls: bytes(crlf(rl)) }, sys);
    expectSameJoin({ mqds: bytes(appended(mq)), hqds: bytes(appended(hq)), rls: bytes(appended(rl)) }, sys);
    expectSameJoin({ ...FIXTURE, hqds: bytes(dropNodeSection(hq, 2)), rls: bytes(dropNodeSection(rl, 2)) }, sys);
  });

  it('every file cut at a line boundary', () => {
    const sys = { topology: TOPOLOGY, procs: PROCS };
    for (const f of ['mqds', 'hqds', 'rls'] as const) {
      const lines = text(FIXTURE[f]).split('\n').length;
      const step = Math.max(1, Math.floor(lines / 150));
      for (let n = 0; n < lines; n += step) expectSameJoin({ ...FIXTURE, [f]: bytes(cutAfterLines(text(FIXTURE[f]), n)) }, sys);
    }
  });

  describe('snapshot() of damaged trees', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-snapnative-'));
    afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const tree = (name: string, files: Partial<Record<'mqds' | 'hqds' | 'rls', string>>): string => {
      const dir = path.join(tmp, name, 'kfd');
      fs.mkdirSync(dir, { recursive: true });
      for (const [f, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), body, 'latin1');
      return path.dirname(dir);
    };
    it.each([
      ['hqds missing', { mqds: text(FIXTURE.mqds), rls: text(FIXTURE.rls) }],
      ['mqds cut in a block', { mqds: cutMqdAtDword(text(FIXTURE.mqds), 1, 1, 130), hqds: text(FIXTURE.hqds), rls: text(FIXTURE.rls) }],
      ['hqds appended to itself', { mqds: text(FIXTURE.mqds), hqds: appended(text(FIXTURE.hqds)), rls: text(FIXTURE.rls) }],
    ])('%s', (name, files) => {
      const root = tree(name.replace(/ /g, '-'), files);
      const n = snapshot({ sysfsRoot: SYSFS, debugfsRoot: root, procRoot: '/nonexistent', impl: 'native' });
      const t = snapshot({ sysfsRoot: SYSFS, debugfsRoot: root, procRoot: '/nonexistent', impl: 'ts' });
      expect(JSON.stringify({ ...n, takenAt: '', path: '' })).toBe(JSON.stringify({ ...t, takenAt: '', path: '' }));
    });
  });
});
