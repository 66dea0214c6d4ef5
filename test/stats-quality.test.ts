/** src/stats/{rounds,quality,host-load}.ts: rotation, spread, impossible values, host interference. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  disjoint,
  flagged,
  hostLoadWindow,
  impossibleCorunValues,
  interferenceWarnings,
  qualityOf,
  readCpuTimes,
  readProcessTicks,
  rotatedOrder,
  roundSpread,
  spreadRatio,
} from '../src/stats/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-quality-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('rounds', () => {
  it('rotates the order so every item runs in every position once over n rounds', () => {
    const items = ['standalone:a', 'standalone:b', 'corun:none', 'corun:throttle'];
    const rounds = [0, 1, 2, 3].map((r) => rotatedOrder(items, r));
    expect(rounds[0]).toEqual(items);
    expect(rounds[1]).toEqual(['standalone:b', 'corun:none', 'corun:throttle', 'standalone:a']);
    for (let pos = 0; pos < items.length; pos++) expect(new Set(rounds.map((r) => r[pos])).size).toBe(items.length);
    expect(rotatedOrder(items, 4)).toEqual(items);
    expect(rotatedOrder([], 3)).toEqual([]);
    expect(() => rotatedOrder(items, -1)).toThrow(RangeError);
  });

  it('spread over the rounds that have a value; unknown rounds are left out, never 0', () => {
    expect(roundSpread([3, null, 1, 2])).toEqual({ min: 1, median: 2, max: 3, n: 3 });
    expect(roundSpread([4, 1])).toEqual({ min: 1, median: 2.5, max: 4, n: 2 });
    expect(roundSpread([null, undefined, NaN])).toBeNull();
    expect(spreadRatio(roundSpread([2, 3]))).toBe(1.5);
    expect(spreadRatio(roundSpread([0, 3]))).toBeNull();
  });
});

describe('quality', () => {
  it('flags co-run values that cannot be physical, with phase, task and numbers', () => {
    const w = impossibleCorunValues({ phase: 'corun:none', task: 'resnet50', throughputShare: 1.83, slowdownP99: 0.05 });
    expect(w.map((x) => x.code)).toEqual(['share-above-standalone', 'faster-than-standalone']);
    expect(w[0]).toMatchObject({ phase: 'corun:none', task: 'resnet50', message: expect.stringContaining('183% of standalone') });
    expect(w[1].message).toContain('0.05x');
    // within noise, or unknown: nothing
    expect(impossibleCorunValues({ phase: 'p', task: 't', throughputShare: 1.05, slowdownP99: 0.9 })).toEqual([]);
    expect(impossibleCorunValues({ phase: 'p', task: 't', throughputShare: null, slowdownP99: null })).toEqual([]);
  });

  it('confidence intervals that do not overlap mean a difference beyond noise', () => {
    expect(disjoint([1, 2], [3, 4])).toBe(true);
    expect(disjoint([1, 3], [2, 4])).toBe(false);
    expect(disjoint(null, [1, 2])).toBe(false);
  });

  it('the verdict is noisy with any warning; flagged finds the warnings that touch a phase/task', () => {
    expect(qualityOf([])).toEqual({ verdict: 'ok', warnings: [] });
    const q = qualityOf([
      { code: 'faster-than-standalone', phase: 'corun:none', task: 'a', message: 'm' },
      { code: 'host-interference', phase: 'standalone:b', message: 'n' },
    ]);
    expect(q.verdict).toBe('noisy');
    expect(flagged(q, 'corun:none', 'a')?.code).toBe('faster-than-standalone');
    expect(flagged(q, 'corun:none', 'b')).toBeUndefined();
    expect(flagged(q, 'standalone:b', 'b')?.code).toBe('host-interference');
    expect(flagged(q, 'corun:throttle')).toBeUndefined();
    // a host-wide warning (no phase) touches every phase
    expect(flagged(qualityOf([{ code: 'gpu-shared', message: 'x' }]), 'corun:none', 'a')?.code).toBe('gpu-shared');
  });
});

/** A fake /proc with a stat line, loadavg and processes' stat files. */
function fakeProc(dir: string, cpu: number[], procs: Record<string, [number, number]>, load = '0.50'): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'stat'), `cpu  ${cpu.join(' ')} 0 0\ncpu0 1 2 3\nintr 5\n`);
  fs.writeFileSync(path.join(dir, 'loadavg'), `${load} 0.40 0.30 1/100 4242\n`);
  for (const [pid, [ut, st]] of Object.entries(procs)) {
    fs.mkdirSync(path.join(dir, pid), { recursive: true });
    // comm with spaces and a ')' in it: fields start after the last ')'
    const fields = ['S', '1', '1', '1', '0', '-1', '0', '0', '0', '0', '0', String(ut), String(st), '0', '0'];
    fs.writeFileSync(path.join(dir, pid, 'stat'), `${pid} (my (odd) name) ${fields.join(' ')} 20 0\n`);
  }
}

describe('host load', () => {
  it('reads the aggregate cpu line and a process utime + stime', () => {
    const d = path.join(tmp, 'read');
    fakeProc(d, [100, 10, 50, 1000, 5, 2, 3, 7], { self: [30, 20], '77': [5, 5] });
    expect(readCpuTimes(d)).toEqual({ busy: 165, steal: 7, total: 1177 });
    expect(readProcessTicks('self', d)).toBe(50);
    expect(readProcessTicks(77, d)).toBe(10);
    expect(readProcessTicks(78, d)).toBeNull();
    expect(readCpuTimes(path.join(tmp, 'nope'))).toBeNull();
    fs.writeFileSync(path.join(d, 'stat'), 'cpu  a b c\n');
    expect(readCpuTimes(d)).toBeNull();
  });

  it('foreign CPU = all busy time minus ours (and our workers), per second of the window', async () => {
    const d = path.join(tmp, 'window');
    fakeProc(d, [0, 0, 0, 0, 0, 0, 0, 0], { self: [0, 0], '77': [0, 0] });
    const w = hostLoadWindow({ procRoot: d, ownPids: () => [77] });
    await new Promise((r) => setTimeout(r, 50));
    // busy +200 jiffies (2 s of CPU): ours 30+20, worker 77 another 50; steal 10 of 400 total
    fakeProc(d, [150, 0, 50, 190, 0, 0, 0, 10], { self: [30, 20], '77': [40, 10] }, '3.20');
    const load = w.stop();
    expect(load.wallS).toBeGreaterThan(0);
    expect(load.foreignCores! * load.wallS).toBeCloseTo(1.0, 6); // (200 - 100 jiffies) / 100
    expect(load.ownCores! * load.wallS).toBeCloseTo(1.0, 6);
    expect(load.stealShare).toBeCloseTo(10 / 400, 9);
    expect(load.loadAverage1).toBe(3.2);
    const warn = interferenceWarnings({ ...load, foreignCores: 0.9, stealShare: 0.1 }, { phase: 'corun:none' });
    expect(warn.map((x) => x.code)).toEqual(['host-interference', 'host-interference']);
    expect(warn[0]).toMatchObject({ phase: 'corun:none', message: expect.stringContaining('other processes used 0.90 of') });
    expect(warn[1].message).toContain('stole 10.0%');
    expect(interferenceWarnings({ ...load, foreignCores: 0.1, stealShare: 0.01 }, {})).toEqual([]);
  });

  it('without /proc every figure is null and nothing is flagged', () => {
    const load = hostLoadWindow({ procRoot: path.join(tmp, 'missing') }).stop();
    expect(load).toMatchObject({ foreignCores: null, ownCores: null, stealShare: null, loadAverage1: null });
    expect(interferenceWarnings(load, { phase: 'x' })).toEqual([]);
  });

  it('on this host: a window over an idle wait gives finite figures', () => {
    if (!fs.existsSync('/proc/stat')) return;
    const load = hostLoadWindow().stop();
    expect(load.foreignCores === null || load.foreignCores >= 0).toBe(true);
  });
});
