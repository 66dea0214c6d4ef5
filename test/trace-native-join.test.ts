/**
 * The trace's join of native samples in C++ (SampleAssembler with the sampler's joinDumps: the
 * tables the sampling thread parsed, joined in onSample) against the TS join of the same samples
 * (no joinDumps, as TraceOptions.join 'ts': objects, joinQueues): the same trace samples, record for record, over recorded sequences of a churning
 * tree (queues and slots coming and going, pointers moving, files cut or unreadable in between),
 * the qid history of each join carried into the next.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChurnTree } from '../bench/kfd-churn.js';
import { readTopology } from '../src/kfd/parse.js';
import { unpackQidHints, type NativeJoinedTables } from '../src/kfd/join.js';
import { loadNative, type JoinSampleDumps, type NativeSample } from '../src/native.js';
import { SampleAssembler } from '../src/trace/assemble.js';
import { startSampler, type Sampler } from '../src/trace/sampler.js';
import type { TraceSample } from '../src/trace/schema.js';
import { nativeLoaded } from './helpers/impls.js';

const MS = 1e6;
const trees: ChurnTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.dispose();
});

/** A file replaced whole (rename), as KFD's files change for a reader. */
function replace(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * n native samples of `tree`, debugfs in each, each handed to `each` inside its onSample (where the
 * sampler's joinDumps works); after each sample (on the JS thread, while the sampler goes on) the
 * tree moves on by `stride` steps, and now and then a file is cut or removed.
 */
async function record(tree: ChurnTree, n: number, stride: number, each: (raw: NativeSample, sampler: Sampler) => void): Promise<number> {
  const kfd = path.join(tree.debugfs, 'kfd');
  let taken = 0;
  let k = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const s: Sampler = startSampler({ impl: 'native', sysfsRoot: tree.sysfs, debugfsRoot: tree.debugfs, procRoot: tree.proc, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: n }, (raw) => {
    each(raw, s);
    taken++;
    k += stride;
    tree.apply(k);
    const phase = taken % 23;
    if (phase === 7) replace(path.join(kfd, 'mqds'), fs.readFileSync(path.join(kfd, 'mqds'), 'latin1').slice(0, 9000));
    if (phase === 11) replace(path.join(kfd, 'hqds'), fs.readFileSync(path.join(kfd, 'hqds'), 'latin1').slice(0, 20000));
    if (phase === 13) fs.rmSync(path.join(kfd, 'rls'));
    if (phase === 17) for (const f of ['mqds', 'hqds']) fs.rmSync(path.join(kfd, f));
    if (taken === n) finish();
  });
  await Promise.race([done, s.done]);
  await s.stop();
  return taken;
}

/**
 * The sample as a sampler started with debugfsWords: false hands it over: every debugfs part
 * without words (the same stripped object for the same part, as such a sampler repeats a `same`
 * part), wordsOmitted set.
 */
function withoutWords(cache: WeakMap<object, object>): (raw: NativeSample) => NativeSample {
  const strip = <T,>(p: T): T => {
    if (p === undefined || (p as object | null) === null || !('words' in (p as object))) return p;
    let q = cache.get(p as object);
    if (!q) cache.set(p as object, (q = { ...(p as object), words: new Uint32Array(0) }));
    return q as T;
  };
  return (raw) => ({ ...raw, mqds: strip(raw.mqds), hqds: strip(raw.hqds), rls: strip(raw.rls), wordsOmitted: true });
}

const strip = (s: TraceSample): Omit<TraceSample, 'join_ns'> => {
  const { join_ns: _, ...rest } = s;
  return rest;
};

describe.skipIf(!nativeLoaded)('the trace joins native samples in C++: the same trace as the TS join', () => {
  for (const [mode, stride] of [
    ['all', 1],
    ['all', 3],
    ['pointers', 1],
  ] as const) {
    it(`churn tree '${mode}', ${stride} step(s) between samples`, async () => {
      const tree = new ChurnTree(mode);
      trees.push(tree);
      const topology = readTopology({ sysfsRoot: tree.sysfs, impl: 'native' });
      let joins = 0;
      let declined = 0;
      let sampler: Sampler | null = null;
      // no joinDumps: objects and the TS join, as TraceOptions.join 'ts' runs it
      const ts = new SampleAssembler({ topology, procRoot: tree.proc, impl: 'native' });
      // what the TS assembler learned from the samples before (it learns as the native one does)
      const tsHints = (): Map<number, Map<string, number>> => (ts as unknown as { qidHints: Map<number, Map<string, number>> }).qidHints;
      let hintsHanded = 0;
      // the native assembler's joins are counted: it must take that path, not fall back
      const joinDumps: JoinSampleDumps = (...a) => {
        const r = sampler!.joinDumps!(...a);
        if (r) joins++;
        else declined++;
        return r;
      };
      const native = new SampleAssembler({
        topology,
        procRoot: tree.proc,
        impl: 'native',
        joinDumps: (...a) => {
          // the hints it hands over (packed once, kept until a join or forget changes them) are
          // always what the joins before established
          const handed = a[7];
          expect(handed ? unpackQidHints(handed) : new Map()).toEqual(tsHints());
          if (handed) hintsHanded++;
          return joinDumps(...a);
        },
      });
      // as gpucolo trace runs it: the sampler hands over tables without words
      const noWords = new SampleAssembler({ topology, procRoot: tree.proc, impl: 'native', joinDumps });
      const stripWords = withoutWords(new WeakMap());
      let issues = 0;
      let joined = 0;
      const pairs: [string, string][] = [];
      const n = await record(tree, 80, stride, (raw, s) => {
        sampler = s;
        const a = native.assemble(raw);
        const b = ts.assemble(raw);
        const c = noWords.assemble(stripWords(raw));
        pairs.push([JSON.stringify(strip(a)), JSON.stringify(strip(b))]);
        pairs.push([JSON.stringify(strip(c)), JSON.stringify(strip(b))]);
        // a process forgotten (as on its exit) now and then: its hints go, the next join learns them again
        if (pairs.length % 40 === 20) for (const asm of [native, ts, noWords]) asm.forget(41872);
        if (a.issues.length) issues++;
        if (a.processes.some((p) => p.queues.some((q) => q.hqds !== null))) joined++;
      });
      expect(n).toBe(80);
      for (const [a, b] of pairs) expect(a).toBe(b);
      expect(declined).toBe(0);
      expect(hintsHanded).toBeGreaterThan(40);
      expect(joins).toBeGreaterThan(mode === 'pointers' ? 6 : 80);
      expect(joined).toBeGreaterThan(40);
      // the cut and removed files came through as issues in both
      expect(issues).toBeGreaterThan(2);
    });
  }

  it('joinDumps joins only the sample in onSample now, only parts it has, and refuses bad arguments', async () => {
    const tree = new ChurnTree('all');
    trees.push(tree);
    const seen: (NativeJoinedTables | null | string)[] = [];
    let sampler: Sampler | null = null;
    await record(tree, 3, 0, (raw, s) => {
      sampler = s;
      const j = s.joinDumps!;
      seen.push(j(raw.seq, true, true, true, null, null, null, null));
      // another sample than the one in onSample: declined
      seen.push(j(raw.seq + 1, true, true, true, null, null, null, null));
      try {
        j('1' as never, true, true, true, null, null, null, null);
      } catch (err) {
        seen.push((err as Error).message);
      }
      try {
        j(raw.seq, true, true, true, new Float64Array([1]), null, null, null);
      } catch (err) {
        seen.push((err as Error).message);
      }
    });
    expect(seen[0]).toMatchObject({ warnings: expect.any(Array) });
    expect(seen[1]).toBeNull();
    expect(seen[2]).toMatch(/joinDumps: \(seq, mqds, hqds, rls\) must be a number and three booleans/);
    expect(seen[3]).toMatch(/joinDumps: .*whole/);
    // outside onSample: declined
    expect(sampler!.joinDumps!(0, true, false, false, null, null, null, null)).toBeNull();
  });

  it('a part that could not be read is not joined: asking for it is declined', async () => {
    const tree = new ChurnTree('all');
    trees.push(tree);
    fs.rmSync(path.join(tree.debugfs, 'kfd', 'rls'));
    const got: unknown[] = [];
    await record(tree, 1, 0, (raw, s) => {
      expect(raw.rls).toMatchObject({ code: 'ENOENT' });
      got.push(s.joinDumps!(raw.seq, true, true, true, null, null, null, null));
      got.push(s.joinDumps!(raw.seq, true, true, false, null, null, null, null));
    });
    expect(got[0]).toBeNull();
    expect(got[1]).not.toBeNull();
  });

  it('a sampler started with debugfsWords: false hands over the same tables without words; they are joined only in onSample', async () => {
    const tree = new ChurnTree('all');
    trees.push(tree);
    const take = (debugfsWords: boolean): Promise<NativeSample> =>
      new Promise((resolve) => {
        const t = startSampler({ impl: 'native', sysfsRoot: tree.sysfs, debugfsRoot: tree.debugfs, procRoot: tree.proc, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: 1, debugfsWords }, resolve);
        void t.done;
      });
    const full = await take(true);
    const bare = await take(false);
    expect(full.wordsOmitted).toBeUndefined();
    expect(bare.wordsOmitted).toBe(true);
    for (const part of ['mqds', 'hqds', 'rls'] as const) {
      const f = full[part] as { words: Uint32Array };
      const b = bare[part] as { words: Uint32Array };
      expect(f.words.length).toBeGreaterThan(0);
      expect(b.words.length).toBe(0);
      expect({ ...b, words: null }).toEqual({ ...f, words: null });
    }
    // such a sample assembled outside its onSample (no join there): an error, not a TS join of empty words
    const asm = new SampleAssembler({ topology: null, procRoot: tree.proc, impl: 'native', joinDumps: () => null });
    expect(() => asm.assemble(bare)).toThrow(/came without debugfs words and the sampler did not join it/);
    const opts = { sysfsRoot: tree.sysfs, debugfsRoot: tree.debugfs, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: 1, pids: null, maxQueued: 4 };
    expect(() => loadNative()!.startSampler({ ...opts, debugfsWords: 'no' as never }, () => undefined)).toThrow(/startSampler: debugfsWords must be a boolean \(got a string\)/);
  });
});
