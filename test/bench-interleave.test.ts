/** bench/interleave.ts: the order variants run in, and the per-round ratios the benches report. */
import { describe, expect, it } from 'vitest';
import { formatRatio, interleave, ratioSpread, roundOrder, spread } from '../bench/interleave.js';

describe('interleaved benches', () => {
  it('alternates the order every round, so neither variant always runs first', () => {
    expect(roundOrder(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(roundOrder(['a', 'b', 'c'], 1)).toEqual(['c', 'b', 'a']);
    const calls: string[] = [];
    let t = 0;
    const run = interleave(
      [
        { name: 'A', fn: () => calls.push('A') },
        { name: 'B', fn: () => calls.push('B') },
      ],
      { rounds: 4, minCalls: 1, timePerRoundMs: 0, warmupCalls: 0, now: () => (t += 10) },
    );
    expect(run.order).toEqual([['A', 'B'], ['B', 'A'], ['A', 'B'], ['B', 'A']]);
    expect(calls.join('')).toBe('ABBAABBA');
  });

  it('one ratio per round: drift that slows both variants in a round cancels out', () => {
    // a fake clock: "slow" costs 4 units and "fast" 1, and the host gets 10x slower every round
    // (3 calls per variant, so 6 calls a round); pooled medians would mix the rounds, per-round
    // ratios stay at 4
    let t = 0;
    let pending = 0;
    let calls = 0;
    const op = (units: number) => () => {
      pending = units * 10 ** Math.floor(calls++ / 6);
    };
    const now = (): number => {
      t += pending;
      pending = 0;
      return t;
    };
    const run = interleave(
      [
        { name: 'slow', fn: op(4) },
        { name: 'fast', fn: op(1) },
      ],
      { rounds: 3, minCalls: 3, timePerRoundMs: 0, warmupCalls: 0, now },
    );
    expect(run.variants[1].medianNs).toEqual([1, 10, 100]);
    const r = ratioSpread(run, 'slow', 'fast');
    expect(r.values).toEqual([4, 4, 4]);
    expect(formatRatio(r)).toBe('4.0x (4.0-4.0x over 3 rounds)');
  });

  it('spread gives min, median and max of the per-round values; unknown variants are an error', () => {
    expect(spread([3, 1, 2, 10])).toEqual({ min: 1, median: 2.5, max: 10, values: [3, 1, 2, 10] });
    const run = interleave([{ name: 'a', fn: () => 0 }, { name: 'b', fn: () => 0 }], { rounds: 1, timePerRoundMs: 0, minCalls: 1 });
    expect(() => ratioSpread(run, 'a', 'nope')).toThrow(/no variant nope/);
    expect(() => interleave([{ name: 'a', fn: () => 0 }])).toThrow(/two variants/);
  });
});
