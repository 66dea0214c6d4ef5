/** bench/interleave.ts, whole runs: interleaveRuns alternates the order, metricRatio pairs runs of one round. */
import { describe, expect, it } from 'vitest';
import { formatLoad, formatSpread, interleave, interleaveRuns, metricDifference, metricRatio, metricSpread } from '../bench/interleave.js';

describe('interleaved runs', () => {
  it('runs every variant once per round in alternating order; warm-up runs first, not kept', async () => {
    const calls: string[] = [];
    const run = await interleaveRuns(
      ['A', 'B', 'C'].map((name) => ({
        name,
        run: async (round: number) => {
          calls.push(`${name}${round}`);
          await new Promise((r) => setImmediate(r));
          return { x: round };
        },
      })),
      { rounds: 3, warmupRuns: 1 },
    );
    expect(calls).toEqual(['A-1', 'B-1', 'C-1', 'A0', 'B0', 'C0', 'C1', 'B1', 'A1', 'A2', 'B2', 'C2']);
    expect(run.order).toEqual([['A', 'B', 'C'], ['C', 'B', 'A'], ['A', 'B', 'C']]);
    expect(run.variants.map((v) => v.runs.map((m) => m.x))).toEqual([[0, 1, 2], [0, 1, 2], [0, 1, 2]]);
    expect(run.load).toHaveLength(3);
    for (const l of run.load) expect(l).toBeGreaterThanOrEqual(0);
  });

  it('one ratio per round from the runs of that round: a host that slows down in later rounds cancels out', async () => {
    // "slow" takes 3x "fast" in every round, and each round is 10x slower than the one before
    let round = 0;
    const run = await interleaveRuns(
      [
        { name: 'slow', run: (r: number) => ((round = r), { ms: 3 * 10 ** r, p99: r === 1 ? null : 6 * 10 ** r }) },
        { name: 'fast', run: (r: number) => ({ ms: 10 ** r, p99: r === 2 ? Number.NaN : 10 ** r }) },
      ],
      { rounds: 4 },
    );
    expect(round).toBe(3);
    const r = metricRatio(run, 'ms', 'slow', 'fast')!;
    expect(r.values).toEqual([3, 3, 3, 3]);
    expect(formatSpread(r, (x) => `${x.toFixed(1)}x`)).toBe('3.0x (3.0x-3.0x)');
    // a variant's own figure spans the drift (3 .. 3000 ms); the ratio within each round does not
    expect(metricSpread(run, 'slow', 'ms')).toMatchObject({ min: 3, max: 3000, median: 165 });
    // rounds where a figure is missing (null) or NaN are left out of both
    expect(metricRatio(run, 'p99', 'slow', 'fast')!.values).toEqual([6, 6]);
    expect(metricSpread(run, 'fast', 'p99')!.values).toEqual([1, 10, 1000]);
  });

  it('one difference per round, against another metric of the other variant when named', async () => {
    const run = await interleaveRuns<{ own: number | null; floor: number }>(
      [
        { name: 'tracer', run: (r: number) => ({ own: r === 1 ? null : 1 + r, floor: Number.NaN }) },
        { name: 'idle', run: (r: number) => ({ own: Number.NaN, floor: 0.5 * r }) },
      ],
      { rounds: 3 },
    );
    // round 0: 1 - 0; round 1: tracer's figure missing; round 2: 3 - 1
    expect(metricDifference(run, 'own', 'tracer', 'idle', 'floor')!.values).toEqual([1, 2]);
    expect(metricDifference(run, 'own', 'tracer', 'idle')).toBeNull();
  });

  it('missing figures give null, unknown variants and fewer than two variants are errors', async () => {
    const run = await interleaveRuns<{ v: number | null }>([{ name: 'a', run: () => ({ v: null }) }, { name: 'b', run: () => ({ v: 0 }) }], { rounds: 2 });
    expect(metricSpread(run, 'a', 'v')).toBeNull();
    expect(metricRatio(run, 'v', 'b', 'a')).toBeNull();
    expect(metricRatio(run, 'v', 'a', 'b')).toBeNull(); // a zero denominator is no ratio
    expect(() => metricSpread(run, 'nope', 'v')).toThrow(/no variant nope/);
    await expect(interleaveRuns([{ name: 'a', run: () => ({}) }])).rejects.toThrow(/two variants/);
  });

  it('formatLoad gives the range of the load averages; interleave() records them too', () => {
    expect(formatLoad([1.94, 3.42, 2])).toBe('load 1.9-3.4');
    expect(formatLoad([2.01, 2.04])).toBe('load 2.0');
    expect(formatLoad([])).toBe('load ?');
    const run = interleave([{ name: 'a', fn: () => 0 }, { name: 'b', fn: () => 0 }], { rounds: 2, timePerRoundMs: 0, minCalls: 1, warmupCalls: 0 });
    expect(run.load).toHaveLength(2);
  });
});
