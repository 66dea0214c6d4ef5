/**
 * The native sampling thread (startSampler in src/native.ts, native/trace/) against the fixture
 * roots. Timing checks are behavioural only: order, deadlines as multiples of the interval, and
 * "stop() resolves before the next interval was due" against a 60 s interval, which a slow host
 * cannot break and a stop that waits for the deadline always does. Waits are for samples.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw, readKfdProcsRaw } from '../src/kfd/parse.js';
import { nativeReport, requireNative, type NativeSample, type NativeSamplerHandle, type NativeSamplerOptions } from '../src/native.js';
import { jsThreadCpuNs, sameFiller, samplerThreadsCpuNs, startSampler } from '../src/trace/sampler.js';
import { DEBUGFS, SYSFS, nativeLoaded } from './helpers/impls.js';
import { HANG_MS } from './helpers/load.js';
import { debugfsFile, scratchDebugfs as makeScratchDebugfs } from './helpers/scratch-debugfs.js';

const MS = 1e6;
const FIELDS = ['seq', 'intendedNs', 'actualNs', 'readNs', 'parseNs', 'threadCpuNs', 'ioNs', 'cpuNs', 'walk', 'missed', 'dropped', 'procs'];
const DEBUGFS_FIELDS = ['mqds', 'hqds', 'rls'];

const opts = (o: Partial<NativeSamplerOptions> = {}): NativeSamplerOptions => ({
  sysfsRoot: SYSFS,
  debugfsRoot: DEBUGFS,
  intervalNs: 10 * MS,
  debugfsEvery: 0,
  maxSamples: 0,
  pids: null,
  maxQueued: 64,
  ...o,
});

/**
 * Starts a sampler that records its samples, completed by sameFiller (parts marked `same` filled
 * back); `keys` keeps each sample's own keys as the thread sent them. `reached` resolves once
 * until(samples) holds.
 */
function start(o: Partial<NativeSamplerOptions>, until: (s: NativeSample[]) => boolean, onSample?: (s: NativeSample) => void) {
  const samples: NativeSample[] = [];
  const keys: string[][] = [];
  const complete = sameFiller();
  let reach!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  const h: NativeSamplerHandle = requireNative().startSampler(opts(o), (s) => {
    keys.push(Object.keys(s));
    complete(s);
    onSample?.(s);
    samples.push(s);
    if (until(samples)) reach();
  });
  return { h, samples, keys, reached };
}

const scratchDirs: string[] = [];
afterEach(() => {
  for (const d of scratchDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const scratchDebugfs = () => makeScratchDebugfs(scratchDirs, 'gpucolo-same-');
const OTHER_RLS = 'Node 1, gpu_id 2:\n  No active runlist\n';
const THIRD_RLS = 'Node 3, gpu_id 4:\n  No active runlist\n';

/** intended == (seq + all missed so far) * interval <= actual < intended + interval; seq gaps == dropped. */
function checkTimeline(samples: NativeSample[], intervalNs: number): void {
  let missed = 0;
  let prev = -1;
  for (const s of samples) {
    missed += s.missed;
    expect(s.seq).toBe(prev + 1 + s.dropped);
    prev = s.seq;
    expect(s.intendedNs).toBe((s.seq + missed) * intervalNs);
    expect(s.actualNs).toBeGreaterThanOrEqual(s.intendedNs);
    expect(s.actualNs).toBeLessThan(s.intendedNs + intervalNs); // late deadlines are skipped
    expect(s.readNs).toBeGreaterThan(0);
    expect(s.parseNs).toBeGreaterThanOrEqual(0);
  }
}

/** Runs a CommonJS snippet in a fresh node with ADDON set to the loaded addon's path. */
function child(code: string, timeoutMs = HANG_MS) {
  const addon = nativeReport().file!;
  return spawnSync(process.execPath, ['-e', code], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, ADDON: addon, SYSFS, DEBUGFS },
  });
}

describe.runIf(nativeLoaded)('native sampler', () => {
  it('delivers samples in order with the documented fields; tables equal the single-shot functions', async () => {
    const before = process.hrtime.bigint();
    const { h, samples, keys, reached } = start({ intervalNs: 10 * MS, debugfsEvery: 2, maxSamples: 5 }, (s) => s.length === 5);
    const after = process.hrtime.bigint();
    expect(h.originNs).toMatch(/^\d+$/);
    expect(BigInt(h.originNs) >= before && BigInt(h.originNs) <= after).toBe(true);
    await reached;
    await h.stop();

    const procs = readKfdProcsRaw(SYSFS, 'native');
    const mqds = parseMqdsRaw(debugfsFile('mqds'), 'native');
    const hqds = parseHqdsRaw(debugfsFile('hqds'), 'native');
    const rls = parseRlsRaw(debugfsFile('rls'), 'native');
    expect(procs.procs.length).toBeGreaterThan(0);
    expect(mqds.words.length).toBeGreaterThan(0);

    expect(samples.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4]);
    checkTimeline(samples, 10 * MS);
    for (const s of samples) {
      const withDebugfs = s.seq % 2 === 0;
      // the fixture does not change: after the first sample every part is sent as `same` only
      if (s.seq === 0) {
        expect(keys[s.seq]).toEqual([...FIELDS, ...DEBUGFS_FIELDS]);
        expect(s.same).toBeUndefined();
      } else {
        expect(keys[s.seq]).toEqual([...FIELDS.filter((f) => f !== 'procs'), 'same']);
        expect(s.same).toEqual(withDebugfs ? { procs: true, mqds: true, hqds: true, rls: true } : { procs: true });
        expect(s.parseNs).toBe(0);
        expect(s.procs).toBe(samples[0].procs);
        if (withDebugfs) expect([s.mqds, s.hqds, s.rls]).toEqual([samples[0].mqds, samples[0].hqds, samples[0].rls]);
      }
      expect(s.dropped).toBe(0);
      expect(s.procs).toEqual(procs);
      expect(s.procs.procs).toBeInstanceOf(Float64Array);
      if (withDebugfs) {
        expect(s.mqds).toEqual(mqds);
        expect(s.hqds).toEqual(hqds);
        expect(s.rls).toEqual(rls);
        expect((s.mqds as typeof mqds).words).toBeInstanceOf(Uint32Array);
      }
    }
  });

  it('honours debugfsEvery (every N-th sample by seq; 0 = never)', async () => {
    const a = start({ intervalNs: 2 * MS, debugfsEvery: 3, maxSamples: 7 }, (s) => s.length === 7);
    const b = start({ intervalNs: 2 * MS, debugfsEvery: 0, maxSamples: 4 }, (s) => s.length === 4);
    await Promise.all([a.reached, b.reached]);
    await Promise.all([a.h.stop(), b.h.stop()]);
    expect(a.samples.filter((s) => 'mqds' in s).map((s) => s.seq)).toEqual([0, 3, 6]);
    for (const s of a.samples) expect('hqds' in s && 'rls' in s).toBe(s.seq % 3 === 0);
    expect(b.samples.some((s) => 'mqds' in s || 'hqds' in s || 'rls' in s)).toBe(false);
  });

  it('gives an error record per debugfs file that cannot be read', async () => {
    const { h, samples, reached } = start({ debugfsRoot: '/nonexistent/debugfs/', debugfsEvery: 1, maxSamples: 1 }, (s) => s.length === 1);
    await reached;
    await h.stop();
    const [s] = samples;
    expect(s.mqds).toEqual({ code: 'ENOENT', message: 'cannot read /nonexistent/debugfs/kfd/mqds (ENOENT)' });
    expect(s.hqds).toEqual({ code: 'ENOENT', message: 'cannot read /nonexistent/debugfs/kfd/hqds (ENOENT)' });
    expect(s.rls).toEqual({ code: 'ENOENT', message: 'cannot read /nonexistent/debugfs/kfd/rls (ENOENT)' });
    expect(s.procs).toEqual(readKfdProcsRaw(SYSFS, 'native'));
  });

  it('stops by itself after maxSamples; stop() then resolves, twice too', async () => {
    const { h, samples, reached } = start({ intervalNs: 2 * MS, maxSamples: 3 }, (s) => s.length === 3);
    await reached;
    // nothing more comes while a second sampler at the same interval delivers 20 samples: a clock
    // made of sampler-thread wake-ups, which a busy host slows down for both alike
    const clock = start({ intervalNs: 2 * MS, maxSamples: 20 }, (s) => s.length === 20);
    await clock.reached;
    await clock.h.stop();
    expect(samples.map((s) => s.seq)).toEqual([0, 1, 2]);
    await h.stop();
    await h.stop();
    expect(samples.length).toBe(3);
  });

  it('stop() during a 60 s interval resolves before the next interval is due', async () => {
    const { h, samples, reached } = start({ intervalNs: 60_000 * MS, debugfsEvery: 1 }, (s) => s.length === 1);
    await reached;
    const first = h.stop();
    const second = h.stop();
    await Promise.all([first, second]);
    const elapsed = BigInt(requireNative().monotonicNowNs()) - BigInt(h.originNs);
    expect(elapsed < 60_000_000_000n).toBe(true);
    expect(samples.length).toBe(1);
    await h.stop(); // after the end: resolves at once
  });

  it('setPids changes the filter from the next sample on', async () => {
    const pidsOf = (s: NativeSample) => Array.from(s.procs.procs.filter((_, i) => i % 6 === 0));
    const state = { phase: 0 };
    const seen: number[][][] = [[], [], []];
    let next!: () => void;
    let wait = new Promise<void>((r) => (next = r));
    const { h } = start({ intervalNs: 2 * MS, pids: [42117] }, () => false, (s) => {
      seen[state.phase].push(pidsOf(s));
      if (state.phase === 0 && seen[0].length === 2) next();
      if (state.phase === 1 && pidsOf(s).length === 2) next();
      if (state.phase === 2 && pidsOf(s).length === 1 && pidsOf(s)[0] === 41872) next();
    });
    await wait;
    wait = new Promise<void>((r) => (next = r));
    state.phase = 1;
    h.setPids(null);
    await wait;
    wait = new Promise<void>((r) => (next = r));
    state.phase = 2;
    h.setPids([41872]);
    await wait;
    expect(() => h.setPids('42117' as unknown as number[])).toThrow(TypeError);
    await h.stop();
    expect(seen[0].every((p) => p.length === 1 && p[0] === 42117)).toBe(true);
    expect(seen[1].at(-1)).toEqual([41872, 42117]);
    expect(seen[2].at(-1)).toEqual([41872]);
    h.setPids(null); // after the end: ignored
  });

  it('drops samples while JS is behind by maxQueued and counts them into the next one', async () => {
    let behind = true;
    const { h, samples, reached } = start(
      { intervalNs: 1 * MS, maxQueued: 1 },
      (s) => s.some((x) => x.dropped > 0) && s.length >= 4,
      (s) => {
        // hold the JS thread for 100 intervals in each callback until a sample reports drops: on a
        // busy host the sampler thread may not get to run (and drop) during the first hold
        if (s.dropped > 0) behind = false;
        if (behind) {
          const until = BigInt(requireNative().monotonicNowNs()) + 100_000_000n;
          while (BigInt(requireNative().monotonicNowNs()) < until);
        }
      },
    );
    await reached;
    await h.stop();
    checkTimeline(samples, 1 * MS);
    expect(samples.reduce((n, s) => n + s.dropped, 0)).toBeGreaterThan(0);
  });

  it('sends an unchanged part once: the wrapper hands on the first sample\'s objects (===), parseNs 0', async () => {
    const got: NativeSample[] = [];
    const sp = startSampler({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: 4, impl: 'native' }, (s) => void got.push(s));
    expect(sp.kind).toBe('native-thread');
    await sp.done;
    expect(got.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    const [first, ...rest] = got;
    expect(first.same).toBeUndefined();
    expect(first.parseNs).toBeGreaterThan(0);
    expect(first.procs).toEqual(readKfdProcsRaw(SYSFS, 'native'));
    expect(first.mqds).toEqual(parseMqdsRaw(debugfsFile('mqds'), 'native'));
    expect(first.hqds).toEqual(parseHqdsRaw(debugfsFile('hqds'), 'native'));
    expect(first.rls).toEqual(parseRlsRaw(debugfsFile('rls'), 'native'));
    for (const s of rest) {
      expect(s.same).toEqual({ procs: true, mqds: true, hqds: true, rls: true });
      expect(s.parseNs).toBe(0);
      expect(s.procs).toBe(first.procs);
      expect(s.mqds).toBe(first.mqds);
      expect(s.hqds).toBe(first.hqds);
      expect(s.rls).toBe(first.rls);
    }
  });

  it('a changed debugfs file is fresh in the next sample that reads it, and only that part', async () => {
    const dir = scratchDebugfs();
    let changedAt = -1;
    const { h, samples, reached } = start(
      { debugfsRoot: dir.root, intervalNs: 2 * MS, debugfsEvery: 1 },
      (ss) => changedAt >= 0 && ss.filter((s) => s.seq > changedAt && !s.same?.rls).length === 1 && ss.at(-1)!.same?.rls === true,
      (s) => {
        if (s.seq === 1) {
          dir.replace('rls', OTHER_RLS);
          changedAt = s.seq;
        }
      },
    );
    await reached;
    await h.stop();
    const first = samples[0];
    const fresh = samples.findIndex((s) => s.seq > changedAt && !s.same?.rls);
    for (const [i, s] of samples.entries()) {
      if (i === 0) continue;
      expect(s.procs).toBe(first.procs);
      expect(s.mqds).toBe(first.mqds);
      expect(s.hqds).toBe(first.hqds);
      if (i < fresh) {
        expect(s.same).toEqual({ procs: true, mqds: true, hqds: true, rls: true });
        expect(s.rls).toBe(first.rls);
      } else if (i === fresh) {
        expect(s.same).toEqual({ procs: true, mqds: true, hqds: true });
        expect(s.rls).not.toBe(first.rls);
        expect(s.rls).toEqual(parseRlsRaw(OTHER_RLS, 'native'));
        expect(s.parseNs).toBeGreaterThan(0);
      } else {
        expect(s.same).toEqual({ procs: true, mqds: true, hqds: true, rls: true });
        expect(s.rls).toBe(samples[fresh].rls);
        expect(s.parseNs).toBe(0);
      }
    }
  });

  it('an unreadable file gives its error, never `same`; the next good read is fresh again', async () => {
    const dir = scratchDebugfs();
    const hqds = debugfsFile('hqds');
    let phase = 0; // 0: static, 1: hqds removed, 2: hqds back (the same bytes as before)
    const { h, samples, reached } = start(
      { debugfsRoot: dir.root, intervalNs: 2 * MS, debugfsEvery: 1 },
      (ss) => phase === 2 && ss.at(-1)!.same?.hqds === true,
      (s) => {
        if (phase === 0 && s.seq === 1) {
          fs.rmSync(dir.file('hqds'));
          phase = 1;
        } else if (phase === 1 && s.hqds && 'code' in s.hqds) {
          dir.replace('hqds', hqds);
          phase = 2;
        }
      },
    );
    await reached;
    await h.stop();
    const first = samples[0];
    const errors = samples.filter((s) => s.hqds && 'code' in s.hqds);
    expect(errors.length).toBeGreaterThan(0);
    for (const s of errors) {
      expect(s.hqds).toEqual({ code: 'ENOENT', message: `cannot read ${dir.file('hqds')} (ENOENT)` });
      expect(s.same).toEqual({ procs: true, mqds: true, rls: true });
    }
    // every sample after the first error: errors, then one fresh read (not `same` although its
    // bytes equal the old reference), then `same` as that one
    const after = samples.slice(samples.indexOf(errors[0]));
    const fresh = after.findIndex((s) => s.hqds && !('code' in s.hqds));
    expect(after.slice(0, fresh).every((s) => errors.includes(s))).toBe(true);
    const back = after[fresh];
    expect(back.same).toEqual({ procs: true, mqds: true, rls: true });
    expect(back.hqds).not.toBe(first.hqds);
    expect(back.hqds).toEqual(parseHqdsRaw(hqds, 'native'));
    for (const s of after.slice(fresh + 1)) {
      expect(s.same).toEqual({ procs: true, mqds: true, hqds: true, rls: true });
      expect(s.hqds).toBe(back.hqds);
    }
  });

  it('dropped samples never become the reference of `same`', async () => {
    const dir = scratchDebugfs();
    // a writable copy of the sysfs tree: a procs change is a file change, seen by every read after it
    const sysfs = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-same-sysfs-'));
    scratchDirs.push(sysfs);
    fs.cpSync(SYSFS, sysfs, { recursive: true });
    for (const f of fs.readdirSync(sysfs, { recursive: true, withFileTypes: false }) as string[]) fs.chmodSync(path.join(sysfs, f), 0o755);
    const vram = path.join(sysfs, 'class/kfd/kfd/proc/42117/vram_31774');
    const setVram = (v: string) => {
      fs.writeFileSync(`${vram}.tmp`, v);
      fs.renameSync(`${vram}.tmp`, vram);
    };
    const now = () => Number(BigInt(requireNative().monotonicNowNs()) - BigInt(h.originNs));
    const spin = (ms: number) => {
      const until = now() + ms * MS;
      while (now() < until);
    };
    let changedAt = Infinity;
    const { h, samples, reached } = start(
      { sysfsRoot: sysfs, debugfsRoot: dir.root, intervalNs: 1 * MS, debugfsEvery: 1, maxQueued: 1 },
      (ss) => ss.filter((s) => s.actualNs > changedAt).length >= 4,
      (s) => {
        if (s.seq !== 0) return;
        // hold the JS thread 100 intervals while the thread reads (and, the queue full, drops)
        // parts that change twice: the second state must reach JS in full, whatever was dropped
        setVram('1000\n');
        dir.replace('rls', OTHER_RLS);
        spin(30);
        setVram('2000\n');
        dir.replace('rls', THIRD_RLS);
        changedAt = now();
        spin(70);
      },
    );
    await reached;
    await h.stop();
    checkTimeline(samples, 1 * MS);
    expect(samples.reduce((n, x) => n + x.dropped, 0)).toBeGreaterThan(0);
    const procs = readKfdProcsRaw(sysfs, 'native');
    expect(procs).not.toEqual(readKfdProcsRaw(SYSFS, 'native'));
    const rls = parseRlsRaw(THIRD_RLS, 'native');
    const after = samples.filter((s) => s.actualNs > changedAt);
    expect(after.length).toBeGreaterThanOrEqual(4);
    for (const s of after) {
      expect(s.procs).toEqual(procs);
      expect(s.rls).toEqual(rls);
      expect(s.mqds).toBe(samples[0].mqds);
    }
    // and every sample matches one of the states the files went through
    const states = [parseRlsRaw(debugfsFile('rls'), 'native'), parseRlsRaw(OTHER_RLS, 'native'), rls];
    for (const s of samples) expect(states.some((r) => isDeepStrictEqual(r, s.rls))).toBe(true);
  });

  it('deliverEveryNs holds quiet samples and hands them over in order, the held ones before stop() resolves', async () => {
    // a batch this old is never due here: the first sample (nothing to be the same as) goes at
    // once, the unchanged ones after it only when stop() hands them over
    const o = { intervalNs: 1 * MS, debugfsEvery: 1, deliverEveryNs: 60e9 };
    const { h, samples, reached } = start(o, (ss) => ss.length === 1);
    await reached;
    await new Promise((r) => setTimeout(r, 40));
    expect(samples.map((s) => s.seq)).toEqual([0]);
    await h.stop();
    expect(samples.length).toBeGreaterThanOrEqual(2);
    // each sample its own call, contiguous, none dropped; `same` parts filled from the batch's earlier samples
    checkTimeline(samples, 1 * MS);
    expect(samples.every((s) => s.dropped === 0)).toBe(true);
    for (const s of samples.slice(1)) {
      expect(s.procs).toBe(samples[0].procs);
      expect(s.mqds).toBe(samples[0].mqds);
    }
    expect(samples[0].procs).toEqual(readKfdProcsRaw(SYSFS, 'native'));
  });

  it('deliverEveryNs: a sample that is not quiet (a file parsed again) goes at once, after the held ones', async () => {
    const dir = scratchDebugfs();
    let changed = false;
    const o = { debugfsRoot: dir.root, intervalNs: 1 * MS, debugfsEvery: 1, deliverEveryNs: 60e9 };
    const { h, samples, reached } = start(o, (ss) => ss.length > 1 && ss.at(-1)!.same?.rls !== true);
    // held samples are being taken now; then rls changes: its sample cannot wait 60 s
    await new Promise((r) => setTimeout(r, 30));
    dir.replace('rls', OTHER_RLS);
    changed = true;
    await reached;
    expect(changed).toBe(true);
    const last = samples.at(-1)!;
    expect(last.rls).toEqual(parseRlsRaw(OTHER_RLS, 'native'));
    expect(samples.map((s) => s.seq)).toEqual([...Array(samples.length).keys()]);
    // the ones before it were held (unchanged), and came with it, in order
    expect(samples.length).toBeGreaterThan(2);
    for (const s of samples.slice(1, -1)) expect(s.same).toEqual({ procs: true, mqds: true, hqds: true, rls: true });
    await h.stop();
  });

  it('deliverEveryNs with procRoot: changed files are held too; a new process goes at once, its start time read then', async () => {
    const dbg = scratchDebugfs();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-pidstarts-'));
    scratchDirs.push(root);
    const sysfs = path.join(root, 'sys');
    fs.cpSync(SYSFS, sysfs, { recursive: true });
    const procDir = path.join(sysfs, 'class/kfd/kfd/proc');
    const stat = (pid: number, start: number): void => {
      fs.mkdirSync(path.join(root, 'proc', String(pid)), { recursive: true });
      fs.writeFileSync(path.join(root, 'proc', String(pid), 'stat'), `${pid} (python3) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 ${start} 0 0\n`);
    };
    stat(41872, 1000);
    stat(42117, 2000);
    const o = { sysfsRoot: sysfs, debugfsRoot: dbg.root, procRoot: path.join(root, 'proc'), intervalNs: 1 * MS, debugfsEvery: 1, deliverEveryNs: 60e9 };
    const { h, samples, reached } = start(o, (ss) => ss.some((s) => s.pidStarts?.[0] === 50000));
    await new Promise((r) => setTimeout(r, 30));
    // the first sample (both processes new) went at once, with the start times read for it
    expect(samples.map((s) => s.seq)).toEqual([0]);
    expect(samples[0].pidStarts).toEqual(Float64Array.from([41872, 1000, 42117, 2000]));
    // a structural change of the debugfs files, the processes the same: held
    dbg.replace('rls', OTHER_RLS);
    await new Promise((r) => setTimeout(r, 30));
    expect(samples).toHaveLength(1);
    // a new process (its directory made aside and moved in at once): goes at once, with what is held
    stat(50000, 3000);
    fs.cpSync(path.join(procDir, '42117'), path.join(root, 'new'), { recursive: true });
    fs.renameSync(path.join(root, 'new'), path.join(procDir, '50000'));
    await reached;
    expect(samples.map((s) => s.seq)).toEqual([...Array(samples.length).keys()]);
    expect(samples.at(-1)!.pidStarts).toEqual(Float64Array.from([50000, 3000]));
    expect(samples.filter((s) => s.pidStarts !== undefined)).toHaveLength(2);
    expect(samples.some((s) => isDeepStrictEqual(s.rls, parseRlsRaw(OTHER_RLS, 'native')))).toBe(true);
    await h.stop();
  });

  it('deliverEveryNs: the last of maxSamples is handed over at once with what is held', async () => {
    const { h, samples, reached } = start({ intervalNs: 1 * MS, maxSamples: 3, deliverEveryNs: 60e9 }, (s) => s.length === 3);
    await reached;
    expect(samples.map((s) => s.seq)).toEqual([0, 1, 2]);
    await h.stop();
    expect(samples).toHaveLength(3);
  });

  it('rejects bad options with a TypeError that says what is wrong', () => {
    const n = requireNative();
    const cb = () => {};
    const bad = (o: unknown, re: RegExp, fn: unknown = cb) => {
      expect(() => n.startSampler(o as NativeSamplerOptions, fn as () => void)).toThrow(TypeError);
      expect(() => n.startSampler(o as NativeSamplerOptions, fn as () => void)).toThrow(re);
    };
    bad(undefined, /options must be an object/);
    bad(opts(), /onSample must be a function/, 42);
    bad({ ...opts(), sysfsRoot: 1 }, /sysfsRoot must be a string \(got 1\)/);
    bad({ ...opts(), debugfsRoot: undefined }, /debugfsRoot must be a string \(got undefined\)/);
    bad({ ...opts(), debugfsRoot: 'a\0b' }, /debugfsRoot must be a non-empty path without NUL bytes/);
    for (const v of [999_999, 60e9 + 1, 1e6 + 0.5, NaN, Infinity, '10000000']) {
      bad({ ...opts(), intervalNs: v }, /intervalNs must be an integer number of ns from 1e6 \(1 ms\) to 60e9 \(60 s\)/);
    }
    bad({ ...opts(), debugfsEvery: -1 }, /debugfsEvery must be an integer >= 0 .*\(got -1\)/);
    bad({ ...opts(), debugfsEvery: 0.5 }, /debugfsEvery must be an integer >= 0/);
    bad({ ...opts(), maxSamples: -1 }, /maxSamples must be an integer >= 0/);
    bad({ ...opts(), maxQueued: 0 }, /maxQueued must be an integer >= 1 \(got 0\)/);
    bad({ ...opts(), pids: 'x' }, /pids must be an array of numbers or null \(got a string\)/);
    bad({ ...opts(), pids: [1, '2'] }, /pids must be an array of numbers or null/);
    bad({ ...opts(), sysfsWalk: 'fast' }, /sysfsWalk must be 'incremental' or 'full' \(got a string\)/);
    bad({ ...opts(), countersEvery: 0 }, /countersEvery must be an integer >= 1 \(got 0\)/);
    for (const v of [-1, 0.5, 60e9 + 1, '1']) bad({ ...opts(), deliverEveryNs: v }, /deliverEveryNs must be an integer number of ns from 0 \(every sample\) to 60e9/);
    bad({ ...opts(), procRoot: 5 }, /procRoot must be a string/);
    bad({ ...opts(), procRoot: '' }, /procRoot must be a non-empty path without NUL bytes/);
    // the walker alone, as tests and benches create it
    expect(() => n.createProcsWalker({ sysfsRoot: '' })).toThrow(/createProcsWalker: sysfsRoot must be a non-empty string/);
    expect(() => n.createProcsWalker({ sysfsRoot: '/sys', sysfsWalk: 'x' as 'full' })).toThrow(/^createProcsWalker: sysfsWalk must be 'incremental' or 'full'/);
    expect(() => n.createProcsWalker({ sysfsRoot: '/sys', countersEvery: 1.5 })).toThrow(/^createProcsWalker: countersEvery must be an integer >= 1/);
  });

  it('threadCpuNs() is the calling thread\'s CPU clock: it follows JS work, not wall time', async () => {
    const b = requireNative();
    const t0 = b.threadCpuNs();
    const c0 = process.cpuUsage();
    // spin until the process has used 40 ms of CPU: nearly all of it this thread's
    let c = process.cpuUsage(c0);
    while (c.user + c.system < 40_000) c = process.cpuUsage(c0);
    const spun = b.threadCpuNs() - t0;
    const processNs = (c.user + c.system) * 1e3;
    expect(t0).toBeGreaterThan(0);
    expect(spun).toBeGreaterThan(processNs / 2);
    expect(spun).toBeLessThanOrEqual(processNs + 2 * MS); // cpuUsage ticks in µs
    // waiting costs no CPU time (a wall clock would advance by the 50 ms)
    const w0 = b.threadCpuNs();
    await new Promise((r) => setTimeout(r, 50));
    expect(b.threadCpuNs() - w0).toBeLessThan(25 * MS);
    expect(jsThreadCpuNs()).toBeGreaterThanOrEqual(b.threadCpuNs() - 1 * MS);
  });

  it('each sample carries the sampling thread\'s own CPU time, not the JS thread\'s', async () => {
    const jsBurn = 60 * MS;
    let burned = 0;
    const { h, samples, reached } = start({ intervalNs: 5 * MS, debugfsEvery: 1, maxSamples: 6 }, (s) => s.length === 6, (s) => {
      // the JS thread burns 60 ms of its own CPU time in the first callback
      if (s.seq !== 0) return;
      const t0 = requireNative().threadCpuNs();
      while ((burned = requireNative().threadCpuNs() - t0) < jsBurn);
    });
    await reached;
    await h.stop();
    expect(burned).toBeGreaterThanOrEqual(jsBurn);
    const cpu = samples.map((s) => s.threadCpuNs!);
    expect(cpu.every((x) => typeof x === 'number' && x > 0)).toBe(true);
    for (let i = 1; i < cpu.length; i++) expect(cpu[i]).toBeGreaterThanOrEqual(cpu[i - 1]);
    // six reads of the fixture (one parsed) cost the sampling thread a few ms, not the JS thread's 60
    expect(cpu[cpu.length - 1]).toBeLessThan(jsBurn / 2);
  });

  it('startSampler adds the JS thread\'s CPU time (jsCpuNs); samplerThreadsCpuNs sums the sampling threads', async () => {
    const before = samplerThreadsCpuNs();
    const got: NativeSample[] = [];
    const sp = startSampler({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, intervalNs: 2 * MS, debugfsEvery: 1, maxSamples: 4, impl: 'native' }, (s) => void got.push(s));
    await sp.done;
    expect(got.length).toBe(4);
    for (const s of got) expect(s.jsCpuNs).toBeGreaterThan(0);
    for (let i = 1; i < got.length; i++) expect(got[i].jsCpuNs!).toBeGreaterThanOrEqual(got[i - 1].jsCpuNs!);
    expect(got[3].jsCpuNs!).toBeLessThanOrEqual(jsThreadCpuNs()!);
    // once done, the ended thread counts with the CPU time of its last sample
    expect(samplerThreadsCpuNs() - before).toBe(got[3].threadCpuNs);
  });

  it('monotonicNowNs reads the clock of process.hrtime.bigint()', () => {
    const a = process.hrtime.bigint();
    const m = requireNative().monotonicNowNs();
    const b = process.hrtime.bigint();
    expect(m).toMatch(/^\d+$/);
    const t = BigInt(m);
    expect(t >= a - 5_000_000n && t <= b + 5_000_000n).toBe(true);
  });

  it('an exception thrown by onSample reaches uncaughtException (not swallowed); sampling goes on', () => {
    const r = child(`
      const b = require(process.env.ADDON);
      const seqs = [];
      process.on('uncaughtException', (e) => console.log('caught ' + e.message));
      const h = b.startSampler({ sysfsRoot: process.env.SYSFS, debugfsRoot: process.env.DEBUGFS, intervalNs: 2e6,
        debugfsEvery: 0, maxSamples: 3, pids: null, maxQueued: 8 }, (s) => {
          seqs.push(s.seq);
          if (s.seq === 0) throw new Error('boom from onSample');
          if (s.seq === 2) h.stop().then(() => console.log('stopped ' + seqs.join(',')));
        });`);
    expect(r.stderr).not.toMatch(/DEP0168/);
    expect(r.stdout).toBe('caught boom from onSample\nstopped 0,1,2\n');
    expect(r.status).toBe(0);

    const u = child(`
      const b = require(process.env.ADDON);
      b.startSampler({ sysfsRoot: process.env.SYSFS, debugfsRoot: process.env.DEBUGFS, intervalNs: 2e6,
        debugfsEvery: 0, maxSamples: 0, pids: null, maxQueued: 8 }, () => { throw new Error('boom unhandled'); });`);
    expect(u.status).not.toBe(0);
    expect(u.stderr).toMatch(/boom unhandled/);
  });

  it('survives environment teardown: worker terminate, process.exit in a worker and in the main thread', () => {
    const r = child(`
      const { Worker } = require('worker_threads');
      const { ADDON, SYSFS, DEBUGFS } = process.env;
      const now = () => process.hrtime.bigint();
      const body = (intervalNs, exitInWorker) => \`
        const { parentPort } = require('worker_threads');
        const b = require(\${JSON.stringify(ADDON)});
        let n = 0;
        b.startSampler({ sysfsRoot: \${JSON.stringify(SYSFS)}, debugfsRoot: \${JSON.stringify(DEBUGFS)},
          intervalNs: \${intervalNs}, debugfsEvery: 1, maxSamples: 0, pids: null, maxQueued: 2 }, () => {
            n++;
            if (\${exitInWorker} && n === 3) process.exit(7);
            if (n === 1 || n === 3) parentPort.postMessage(n);
          });\`;
      (async () => {
        const out = [];
        // 60 s: a terminate that waited for the sampler's next deadline would take a minute
        for (const intervalNs of [60e9, 1e6]) {
          for (let i = 0; i < 3; i++) {
            const w = new Worker(body(intervalNs, false), { eval: true });
            await new Promise((res) => w.once('message', res));
            const t = now();
            await w.terminate();
            out.push(intervalNs === 60e9 ? (now() - t < 30_000_000_000n ? 'prompt' : 'slow') : 'ok');
          }
        }
        for (let i = 0; i < 3; i++) {
          const w = new Worker(body(1e6, true), { eval: true });
          out.push('exit ' + (await new Promise((res) => w.once('exit', res))));
        }
        // a sampler that ends by itself (maxSamples) lets the process exit
        const b = require(ADDON);
        b.startSampler({ sysfsRoot: SYSFS, debugfsRoot: DEBUGFS, intervalNs: 1e6, debugfsEvery: 1, maxSamples: 3,
          pids: null, maxQueued: 1 }, () => {});
        console.log(out.join(' '));
      })();`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('prompt prompt prompt ok ok ok exit 7 exit 7 exit 7\n');
    expect(r.status).toBe(0);

    // 60 s: a process.exit that waited for the sampler's next deadline would outlive the 30 s
    // given here (a node start and exit take seconds at most, even on a busy host)
    for (const intervalNs of [1e6, 60e9]) {
      const e = child(`
        const b = require(process.env.ADDON);
        b.startSampler({ sysfsRoot: process.env.SYSFS, debugfsRoot: process.env.DEBUGFS, intervalNs: ${intervalNs},
          debugfsEvery: 1, maxSamples: 0, pids: null, maxQueued: 4 }, (s) => { if (s.seq === ${intervalNs === 1e6 ? 5 : 0}) process.exit(3); });`, 30_000);
      expect(e.stderr).toBe('');
      expect(e.status).toBe(3);
    }
  });
});
