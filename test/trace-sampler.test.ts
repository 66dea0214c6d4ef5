/**
 * The TS timer sampler (startSampler impl 'ts', src/trace/sampler.ts) skipping unchanged parts,
 * and sameFiller, which completes the native thread's samples. onSample of the TS sampler runs
 * synchronously between two samples, so a file changed in it is seen by the very next sample.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw, readKfdProcsRaw } from '../src/kfd/parse.js';
import type { NativeSample } from '../src/native.js';
import { jsThreadCpuNs, sameFiller, startSampler } from '../src/trace/sampler.js';
import { runTrace, type TraceOptions } from '../src/trace/tracer.js';
import type { TraceEvent, TraceRecord, TraceSample } from '../src/trace/schema.js';
import { DEBUGFS, SYSFS, nativeLoaded } from './helpers/impls.js';
import { KfdTree } from './helpers/kfd-tree.js';
import { debugfsFile, scratchDebugfs as makeScratchDebugfs } from './helpers/scratch-debugfs.js';

const MS = 1e6;
const ALL = { procs: true, mqds: true, hqds: true, rls: true };
const OTHER_RLS = 'Node 1, gpu_id 2:\n  No active runlist\n';

const scratchDirs: string[] = [];
afterEach(() => {
  for (const d of scratchDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const scratchDebugfs = () => makeScratchDebugfs(scratchDirs, 'gpucolo-same-ts-');

/** Runs the TS sampler for n samples (debugfs every sample); onSample may change files between them. */
async function runTs(debugfsRoot: string, n: number, onSample?: (s: NativeSample) => void): Promise<NativeSample[]> {
  const got: NativeSample[] = [];
  const sp = startSampler({ sysfsRoot: SYSFS, debugfsRoot, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: n, impl: 'ts' }, (s) => {
    got.push(s);
    onSample?.(s);
  });
  expect(sp.kind).toBe('ts-timer');
  await sp.done;
  expect(got.map((s) => s.seq)).toEqual([...Array(n).keys()]);
  return got;
}

describe('TS sampler: unchanged parts', () => {
  it('a static tree: `same` from the second sample on, the first sample\'s objects (===), parseNs 0', async () => {
    const [first, ...rest] = await runTs(DEBUGFS, 4);
    expect(first.same).toBeUndefined();
    expect(first.parseNs).toBeGreaterThan(0);
    expect(first.procs).toEqual(readKfdProcsRaw(SYSFS, 'ts'));
    expect(first.mqds).toEqual(parseMqdsRaw(debugfsFile('mqds'), 'ts'));
    expect(first.hqds).toEqual(parseHqdsRaw(debugfsFile('hqds'), 'ts'));
    expect(first.rls).toEqual(parseRlsRaw(debugfsFile('rls'), 'ts'));
    for (const s of rest) {
      expect(s.same).toEqual(ALL);
      expect(s.parseNs).toBe(0);
      expect(s.procs).toBe(first.procs);
      expect(s.mqds).toBe(first.mqds);
      expect(s.hqds).toBe(first.hqds);
      expect(s.rls).toBe(first.rls);
    }
  });

  it('without debugfs in a sample, only procs can be same; parseNs stays 0', async () => {
    const got: NativeSample[] = [];
    const sp = startSampler({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, intervalNs: 2 * MS, debugfsEvery: 2, maxSamples: 4, impl: 'ts' }, (s) => void got.push(s));
    await sp.done;
    expect(got.map((s) => s.same)).toEqual([undefined, { procs: true }, ALL, { procs: true }]);
    expect(got.map((s) => 'mqds' in s)).toEqual([true, false, true, false]);
    expect(got[2].mqds).toBe(got[0].mqds);
    expect(got.slice(1).map((s) => s.parseNs)).toEqual([0, 0, 0]);
  });

  it('a changed file (temp + rename) is parsed in the next sample, only that part', async () => {
    const dir = scratchDebugfs();
    const got = await runTs(dir.root, 4, (s) => {
      if (s.seq === 1) dir.replace('rls', OTHER_RLS);
    });
    const [s0, s1, s2, s3] = got;
    expect(s1.same).toEqual(ALL);
    expect(s2.same).toEqual({ procs: true, mqds: true, hqds: true });
    expect(s2.parseNs).toBeGreaterThan(0);
    expect(s2.rls).not.toBe(s0.rls);
    expect(s2.rls).toEqual(parseRlsRaw(OTHER_RLS, 'ts'));
    expect([s2.procs, s2.mqds, s2.hqds]).toEqual([s0.procs, s0.mqds, s0.hqds]);
    expect(s2.mqds).toBe(s0.mqds);
    expect(s3.same).toEqual(ALL);
    expect(s3.rls).toBe(s2.rls);
    expect(s3.parseNs).toBe(0);
  });

  it('an unreadable file gives its error, never `same`; the next good read is fresh again', async () => {
    const dir = scratchDebugfs();
    const hqds = debugfsFile('hqds');
    const got = await runTs(dir.root, 5, (s) => {
      if (s.seq === 1) fs.rmSync(dir.file('hqds'));
      if (s.seq === 2) dir.replace('hqds', hqds); // the very bytes of the last good read
    });
    const [s0, , s2, s3, s4] = got;
    expect(s2.hqds).toEqual({ code: 'ENOENT', message: `cannot read ${dir.file('hqds')} (ENOENT)` });
    expect(s2.same).toEqual({ procs: true, mqds: true, rls: true });
    expect(s2.parseNs).toBe(0);
    expect(s3.same).toEqual({ procs: true, mqds: true, rls: true });
    expect(s3.hqds).not.toBe(s0.hqds);
    expect(s3.hqds).toEqual(parseHqdsRaw(hqds, 'ts'));
    expect(s3.parseNs).toBeGreaterThan(0);
    expect(s4.same).toEqual(ALL);
    expect(s4.hqds).toBe(s3.hqds);
  });
});

describe('TS sampler: CPU time', () => {
  it('threadCpuNs is the JS thread\'s clock where one exists (the addon, or process.threadCpuUsage), else absent', async () => {
    const clock = jsThreadCpuNs();
    const hasThreadCpuUsage = typeof (process as { threadCpuUsage?: unknown }).threadCpuUsage === 'function';
    // Node 20 without the addon has no per-thread clock: null, never the whole process's cpuUsage
    expect(clock === null).toBe(!nativeLoaded && !hasThreadCpuUsage);
    const got = await runTs(DEBUGFS, 4);
    for (const s of got) expect('jsCpuNs' in s).toBe(false); // its sampling thread is the JS thread
    if (clock === null) {
      for (const s of got) expect('threadCpuNs' in s).toBe(false);
      return;
    }
    const cpu = got.map((s) => s.threadCpuNs!);
    expect(cpu[0]).toBeGreaterThanOrEqual(clock);
    for (let i = 1; i < cpu.length; i++) expect(cpu[i]).toBeGreaterThanOrEqual(cpu[i - 1]);
    expect(cpu[3]).toBeLessThanOrEqual(jsThreadCpuNs()!);
  });
});

describe('sameFiller (completes the native thread\'s samples)', () => {
  const base = (seq: number, dropped = 0): NativeSample => ({ seq, intendedNs: 0, actualNs: 0, readNs: 0, parseNs: 0, missed: 0, dropped } as NativeSample);
  const procs = readKfdProcsRaw(SYSFS, 'ts');
  const rls = parseRlsRaw(debugfsFile('rls'), 'ts');

  it('fills parts marked same with the objects of the last sample that had them', () => {
    const fill = sameFiller();
    const a = fill({ ...base(0), procs, rls });
    expect(a.procs).toBe(procs);
    const b = fill({ ...base(1), same: { procs: true } });
    expect(b.procs).toBe(procs);
    expect('rls' in b).toBe(false); // a sample without debugfs stays without
    const c = fill({ ...base(3, 1), same: { procs: true, rls: true } }); // one dropped before: fine
    expect(c.procs).toBe(procs);
    expect(c.rls).toBe(rls);
  });

  it('a read error is never a reference; a lost sample (seq gap without drops) forgets every reference', () => {
    const fill = sameFiller();
    fill({ ...base(0), procs, rls });
    fill({ ...base(1), procs, rls: { code: 'ENOENT', message: 'gone' } });
    expect(() => fill({ ...base(2), same: { procs: true, rls: true } })).toThrow(/repeats the rls of a sample that never reached JS/);
    const fill2 = sameFiller();
    fill2({ ...base(0), procs });
    expect(() => fill2({ ...base(2), same: { procs: true } })).toThrow(/repeats the procs/);
  });
});

describe.runIf(nativeLoaded)('runTrace with samples handed over in batches (deliverEveryNs)', () => {
  /** setup: changes to schedule on the tree before the trace starts */
  const traceOf = async (o: Partial<TraceOptions>, setup?: (t: KfdTree) => void): Promise<TraceRecord[]> => {
    const t = new KfdTree();
    setup?.(t);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-batch-'));
    scratchDirs.push(dir);
    try {
      const out = path.join(dir, 't.jsonl');
      await runTrace({
        intervalNs: 10 * MS,
        durationNs: null,
        debugfsIntervalNs: 10 * MS,
        sources: ['sysfs', 'debugfs'],
        sysfsRoot: t.sysfs,
        debugfsRoot: t.debugfs,
        procRoot: t.proc,
        impl: 'native',
        baselineNs: 0,
        tailNs: 0,
        stopAfterNs: null,
        out,
        // never due here: every sample reaches JS only when the trace ends
        deliverEveryNs: 60e9,
        ...o,
      });
      return fs.readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as TraceRecord);
    } finally {
      t.dispose();
    }
  };
  const samplesOf = (recs: TraceRecord[]) => recs.filter((r): r is TraceSample => r.kind === 'sample');

  it('an interrupt records the samples taken before it, then its marker, in time order', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 80);
    const recs = await traceOf({ signal: ctl.signal });
    const samples = samplesOf(recs);
    // the first sample is taken at once; how many follow in 80 ms depends on the host's load
    expect(samples.length).toBeGreaterThanOrEqual(1);
    expect(samples.map((s) => s.seq)).toEqual([...Array(samples.length).keys()]);
    expect(samples.every((s) => s.processes.length === 2)).toBe(true);
    const kinds = recs.map((r) => r.kind);
    expect(kinds[0]).toBe('header');
    expect(kinds.slice(-2)).toEqual(['marker', 'footer']);
    expect(recs.at(-2)).toMatchObject({ marker: 'interrupted' });
    const times = recs.slice(1).map((r) => r.t_ns);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(recs.at(-1)).toMatchObject({ samples: samples.length, endedBy: 'interrupt' });
  });

  it('a queue destroyed while samples are held is an event of that sample; the start time is the one read then', async () => {
    const ctl = new AbortController();
    const recs = await traceOf({ debugfsIntervalNs: null, sources: ['sysfs'], signal: ctl.signal }, (t) => {
      const stat = (start: number): void => fs.writeFileSync(path.join(t.proc, '41872/stat'), `41872 (python3) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 ${start} 0 0\n`);
      stat(1000);
      setTimeout(() => t.removeQueue(41872, 2), 60);
      // after the queue change was sampled (held: the same process) the stat changes: a tracer that
      // read /proc only when the batch arrives would take the held sample for a reused pid
      setTimeout(() => stat(2000), 120);
      setTimeout(() => ctl.abort(), 180);
    });
    const events = recs.filter((r) => r.kind === 'event') as TraceEvent[];
    expect(events.map((e) => `${e.event} ${e.key ?? ''}`.trim())).toEqual(['queue-destroyed 41872/q2']);
  });

  it('--duration ends with the sample that reached it, as without batches', async () => {
    const samples = samplesOf(await traceOf({ durationNs: 50 * MS }));
    expect(samples.at(-1)!.t_ns).toBeGreaterThanOrEqual(50 * MS);
    expect(samples.slice(0, -1).every((s) => s.t_ns < 50 * MS)).toBe(true);
  });
});
