/**
 * A trace's qid hints in the native join (native/kfd/join.cc MatchGroups, LearnQidHints) against
 * the TS join (matchQidGroup, learnQidHints in src/kfd/join.ts): hints that agree with creation
 * order, hints that reverse it, stale and foreign hints, on the fixture and on synthesized machines
 * with random sysfs views; and what each join establishes for the next one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readKfdProcs, readTopology } from '../src/index.js';
import { debugfsIdentity, learnQidHints, nativeJoinSysfs, packQidHints, unpackQidHints, type PackedQidHints } from '../src/kfd/join.js';
import { joinDumps, type DumpFiles, type JoinDumpsOptions } from '../src/kfd/snapshot.js';
import type { KfdProcs, Topology } from '../src/kfd/types.js';
import { loadNative } from '../src/native.js';
import { DEBUGFS, SYSFS, nativeLoaded } from './helpers/impls.js';
import { expectSameJoin, randomSysfs } from './helpers/kfd-snapshot-sysfs.js';
import { randomScenario, synthHqds, synthMqds, synthRls } from './helpers/kfd-synth.js';

type Hints = Map<number, Map<string, number>>;

const read = (f: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', f));
const FIXTURE: DumpFiles = { mqds: read('mqds'), hqds: read('hqds'), rls: read('rls') };
const TOPOLOGY = readTopology({ sysfsRoot: SYSFS, impl: 'ts' });
const PROCS = readKfdProcs({ sysfsRoot: SYSFS, impl: 'ts' });
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

const copy = (h: Hints): Hints => new Map([...h].map(([pid, m]) => [pid, new Map(m)]));

/** What the TS join learns from `dumps` with `hints`, and what the addon says it learns: equal. */
function expectSameLearning(dumps: DumpFiles, sys: { topology: Topology | null; procs: KfdProcs | null }, hints: Hints): Hints {
  const t = joinDumps(dumps, { ...sys, impl: 'ts', qidHints: hints });
  const learned = copy(hints);
  learnQidHints(t.joined, learned);
  const s = nativeJoinSysfs(sys.topology, sys.procs);
  const r = loadNative()!.joinKfdDumps!(dumps.mqds ?? null, dumps.hqds ?? null, dumps.rls ?? null, s.topology, s.procs, s.procQueues, packQidHints(hints));
  // through packQidHints both: a pid with no hints left is no row
  expect(unpackQidHints(r.qidHints!)).toEqual(unpackQidHints(packQidHints(learned)));
  return learned;
}

/** Hints of `joined` with the qids within each (pid, qid-sorted group of equal size) reversed. */
function reversedHints(opts: JoinDumpsOptions, dumps: DumpFiles): { hints: Hints; reversed: number } {
  const base = joinDumps(dumps, { ...opts, impl: 'ts' }).joined;
  const hints: Hints = new Map();
  let reversed = 0;
  for (const p of base.processes) {
    const groups = new Map<string, typeof p.queues>();
    for (const q of p.queues) {
      if (q.qid === null || q.source !== 'debugfs+sysfs') continue;
      const k = `${q.gpuId}|${q.type}`;
      groups.set(k, [...(groups.get(k) ?? []), q]);
    }
    const m = new Map<string, number>();
    for (const g of groups.values()) {
      const qids = g.map((q) => q.qid!).reverse();
      g.forEach((q, i) => m.set(debugfsIdentity(q), qids[i]));
      if (g.length > 1) reversed += g.length;
    }
    hints.set(p.pid, m);
  }
  return { hints, reversed };
}

describe.skipIf(!nativeLoaded)('qid hints: native join = TS join', () => {
  const sys = { topology: TOPOLOGY, procs: PROCS };

  it('hints that reverse creation order win over it, in both joins', () => {
    const { hints, reversed } = reversedHints(sys, FIXTURE);
    // the fixture has a process with two queues of one kind on one GPU
    expect(reversed).toBeGreaterThanOrEqual(2);
    expectSameJoin(FIXTURE, { ...sys, qidHints: hints });
    const n = joinDumps(FIXTURE, { ...sys, impl: 'native', qidHints: hints }).joined;
    const plain = joinDumps(FIXTURE, { ...sys, impl: 'native' }).joined;
    const matched = n.processes.flatMap((p) => p.queues).filter((q) => q.qidMatch === 'history');
    expect(matched.length).toBeGreaterThanOrEqual(2);
    // the hinted queues got the other queue's id: the pairing changed, not just its label
    const idOf = (j: typeof n, ident: string) => j.processes.flatMap((p) => p.queues).find((q) => q.source !== 'sysfs' && debugfsIdentity(q) === ident)?.qid;
    const swapped = matched.filter((q) => idOf(plain, debugfsIdentity(q)) !== q.qid);
    expect(swapped.length).toBeGreaterThanOrEqual(2);
    expectSameLearning(FIXTURE, sys, hints);
  });

  it('stale hints (ids no longer in sysfs), hints of other processes and unknown identities change nothing', () => {
    const stale: Hints = new Map([
      [PROCS.procs[0].pid, new Map([['mqd:0xdead000', 1], ['ring:0x0', 2], ['unknown:7', 0]])],
      [999999, new Map([['mqd:0x1000', 0]])],
    ]);
    // every hinted qid is one sysfs does not list for that pid
    for (const [identity] of stale.get(PROCS.procs[0].pid)!) stale.get(PROCS.procs[0].pid)!.set(identity, 1e6);
    expectSameJoin(FIXTURE, { ...sys, qidHints: stale });
    const n = joinDumps(FIXTURE, { ...sys, impl: 'native', qidHints: stale }).joined;
    const plain = joinDumps(FIXTURE, { ...sys, impl: 'native' }).joined;
    expect(JSON.stringify(n)).toBe(JSON.stringify(plain));
    expectSameLearning(FIXTURE, sys, stale);
  });

  it('a trace of joins: what one join learns is the next one\'s hints (fixture, then synthesized machines)', () => {
    let hints: Hints = new Map();
    for (let i = 0; i < 3; i++) {
      expectSameJoin(FIXTURE, { ...sys, qidHints: hints });
      hints = expectSameLearning(FIXTURE, sys, hints);
    }
    expect([...hints.values()].reduce((n, m) => n + m.size, 0)).toBeGreaterThan(0);
    for (let seed = 1; seed <= 40; seed++) {
      const s = randomScenario(seed);
      const dumps = { mqds: bytes(synthMqds(s)), hqds: bytes(synthHqds(s)), rls: bytes(synthRls(s)) };
      const view = randomSysfs(s, seed);
      // hints from another sysfs view of the same machine: some agree, some point elsewhere
      let h: Hints = new Map();
      h = expectSameLearning(dumps, randomSysfs(s, seed + 1000), h);
      const rev = reversedHints(view, dumps).hints;
      for (const hints2 of [h, rev]) {
        expectSameJoin(dumps, { ...view, qidHints: hints2 });
        expectSameJoin({ ...dumps, hqds: null }, { ...view, qidHints: hints2 });
        expectSameLearning(dumps, view, hints2);
      }
    }
  });

  it('packed hints: the addon reads and writes them as packQidHints does, and refuses malformed ones', () => {
    const hints: Hints = new Map([
      [7, new Map([['mqd:0x1000', 3], ['ring:0x7f0000000000', 1]])],
      [9, new Map([['unknown:12', 0]])],
    ]);
    expect(unpackQidHints(packQidHints(hints))).toEqual(hints);
    const join = loadNative()!.joinKfdDumps!;
    // nothing joined: the hints come back as they went in (packed, sorted by pid, then identity)
    const back = join(null, null, null, null, null, null, packQidHints(hints)).qidHints!;
    expect(unpackQidHints(back)).toEqual(hints);
    expect(back.identities).toBe('mqd:0x1000\nring:0x7f0000000000\nunknown:12\n');
    const bad: [unknown, RegExp][] = [
      [[], /not an object/],
      [{ rows: [7, 3], identities: 'mqd:0x1\n' }, /rows is not a Float64Array/],
      [{ rows: new Float64Array([7, 3]), identities: 5 }, /identities is not a string/],
      [{ rows: new Float64Array([7]), identities: 'mqd:0x1\n' }, /rows is not \(pid, qid\) pairs/],
      [{ rows: new Float64Array([7, 3, 8, 1]), identities: 'mqd:0x1\n' }, /fewer identities than rows/],
      [{ rows: new Float64Array([7, 3]), identities: 'mqd:0x1\nmqd:0x2\n' }, /more identities than rows/],
    ];
    for (const [b, why] of bad) {
      expect(() => join(null, null, null, null, null, null, b as PackedQidHints)).toThrow(/argument 7 must be packed qid hints \{rows, identities\} or null/);
      expect(() => join(null, null, null, null, null, null, b as PackedQidHints)).toThrow(why);
    }
    // no hints: no qidHints in the result; empty hints: empty ones back
    expect(join(null, null, null, null, null, null).qidHints).toBeUndefined();
    expect(unpackQidHints(join(null, null, null, null, null, null, packQidHints(new Map())).qidHints!)).toEqual(new Map());
  });
});
