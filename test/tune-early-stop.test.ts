/** The early-stopping statistic of `gpucolo tune` (src/tune/early-stop.ts). */
import { describe, expect, it } from 'vitest';
import { allowedOverShare, binomialCdf, binomialSf, samplesToMeet, tailDecision } from '../src/tune/early-stop.js';

describe('binomial tails', () => {
  it('match exact values', () => {
    expect(binomialCdf(5, 10, 0.5)).toBeCloseTo(638 / 1024, 12);
    expect(binomialSf(6, 10, 0.5)).toBeCloseTo(386 / 1024, 12);
    expect(binomialCdf(0, 299, 0.01)).toBeCloseTo(0.99 ** 299, 12);
    expect(binomialCdf(-1, 10, 0.3)).toBe(0);
    expect(binomialCdf(10, 10, 0.3)).toBe(1);
    expect(binomialSf(0, 10, 0.3)).toBe(1);
    expect(binomialSf(11, 10, 0.3)).toBe(0);
  });

  it('stay finite where the first terms underflow (n = 200000)', () => {
    const c = binomialCdf(2000, 200_000, 0.01);
    expect(c).toBeGreaterThan(0.4);
    expect(c).toBeLessThan(0.6);
  });

  it('refuse impossible arguments', () => {
    expect(() => binomialCdf(1, -1, 0.5)).toThrow(RangeError);
    expect(() => binomialCdf(1, 10, 1.5)).toThrow(RangeError);
    expect(() => tailDecision({ n: 5, over: 4, unknown: 2 }, 0.01)).toThrow(/more than n/);
    expect(() => tailDecision({ n: 5, over: 1 }, 0.01, 1)).toThrow(RangeError);
  });
});

describe('tailDecision: met / missed / undecided at 95%', () => {
  const q = allowedOverShare(99);

  it('P99: 299 requests with none over prove it met; 298 do not', () => {
    expect(q).toBe(0.01);
    expect(tailDecision({ n: 299, over: 0 }, q).decision).toBe('met');
    expect(tailDecision({ n: 298, over: 0 }, q).decision).toBe('undecided');
    expect(samplesToMeet(q)).toBe(299);
    expect(samplesToMeet(q, 0.95, 1)).toBe(473);
    expect(tailDecision({ n: 473, over: 1 }, q).decision).toBe('met');
    expect(tailDecision({ n: 472, over: 1 }, q).decision).toBe('undecided');
  });

  it('P99: 5 of 100 over is clearly missed, 2 of 100 is not yet', () => {
    expect(tailDecision({ n: 100, over: 5 }, q).decision).toBe('missed');
    expect(tailDecision({ n: 100, over: 2 }, q).decision).toBe('undecided');
    expect(tailDecision({ n: 0, over: 0 }, q).decision).toBe('undecided');
  });

  it('unplaced (censored below the bound) requests count against "met" and never for "missed"', () => {
    expect(tailDecision({ n: 299, over: 0, unknown: 1 }, q).decision).toBe('undecided');
    expect(tailDecision({ n: 100, over: 5, unknown: 10 }, q).decision).toBe('missed');
    expect(tailDecision({ n: 100, over: 2, unknown: 10 }, q).decision).toBe('undecided');
  });

  it('zero tolerance: one over proves the miss, nothing proves it met', () => {
    expect(tailDecision({ n: 1000, over: 1 }, 0).decision).toBe('missed');
    expect(tailDecision({ n: 100000, over: 0 }, 0).decision).toBe('undecided');
    expect(samplesToMeet(0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('a higher confidence needs more requests', () => {
    expect(samplesToMeet(0.01, 0.99)).toBe(459);
    expect(tailDecision({ n: 300, over: 0 }, q, 0.99).decision).toBe('undecided');
  });

  it('agrees with the nearest-rank P99: met means P99 below the bound, missed means at or over it', () => {
    for (let n = 50; n <= 1500; n += 37) {
      // values over the bound the nearest-rank P99 (rank ceil(0.99 n)) can have below it
      const room = n - Math.ceil(0.99 * n - 1e-9);
      for (let over = 0; over <= 40 && over <= n; over++) {
        const d = tailDecision({ n, over }, q).decision;
        if (d === 'met') expect(over).toBeLessThanOrEqual(room);
        if (d === 'missed') expect(over).toBeGreaterThan(room);
      }
    }
  });
});
