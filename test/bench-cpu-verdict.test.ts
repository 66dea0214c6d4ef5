/** bench/cpu-verdict.ts: a CPU budget's verdict from interleaved rounds, and none on a slow or busy host. */
import { describe, expect, it } from 'vitest';
import { cpuVerdict } from '../bench/cpu-verdict.js';
import { spread } from '../bench/interleave.js';

const quiet = { floor: spread([0.05, 0.06, 0.09]), budgetPct: 0.5, load: [0.2, 0.4], cores: 2 };

describe('cpuVerdict', () => {
  it('met when every round stays below the budget', () => {
    const v = cpuVerdict({ ...quiet, own: spread([0.34, 0.44, 0.47]) });
    expect(v).toEqual({ verdict: 'met', why: 'every round below 0.50% (worst 0.47%)' });
  });

  it('met at the median when some rounds reach the budget, and says how many', () => {
    const v = cpuVerdict({ ...quiet, own: spread([0.34, 0.44, 0.5, 0.53, 0.4]) });
    expect(v.verdict).toBe('met at the median');
    expect(v.why).toBe('2 of 5 rounds at or above 0.50% (worst 0.53%)');
  });

  it('not met when the median is at or above the budget', () => {
    expect(cpuVerdict({ ...quiet, own: spread([0.5, 0.5, 0.3]) }).verdict).toBe('not met');
    const v = cpuVerdict({ ...quiet, own: spread([0.75, 0.8, 0.82]) });
    expect(v).toEqual({ verdict: 'not met', why: 'median 0.80% against 0.50%; 3 of 3 rounds at or above it' });
  });

  it('no verdict when bare wake-ups alone take over a fifth of the budget (a slow host phase)', () => {
    // the floor of 2026-12-07 06:53 at 100 ms: 0.19%, against 0.06% two hours later
    const v = cpuVerdict({ ...quiet, floor: spread([0.17, 0.19, 0.26]), own: spread([0.75, 0.8, 0.82]) });
    expect(v.verdict).toBe('no verdict');
    expect(v.why).toBe('host slow: bare wake-ups alone cost 0.19%, over 20% of the 0.50% budget');
    // at the limit itself the host still counts as quiet enough
    expect(cpuVerdict({ ...quiet, floor: spread([0.1]), own: spread([0.2]) }).verdict).toBe('met');
  });

  it('no verdict when the host is loaded beyond what the bench adds, even if the figures look good', () => {
    const v = cpuVerdict({ ...quiet, load: [0.4, 1.9], own: spread([0.2, 0.3]) });
    expect(v).toEqual({ verdict: 'no verdict', why: 'host busy: load up to 1.90 on 2 cores' });
    expect(cpuVerdict({ ...quiet, load: [1.5], own: spread([0.2]) }).verdict).toBe('met');
    expect(cpuVerdict({ ...quiet, load: [1.5], cores: 1, own: spread([0.2]) }).verdict).toBe('no verdict');
  });

  it('without a floor in the run only the load decides whether a verdict is given', () => {
    expect(cpuVerdict({ ...quiet, floor: null, own: spread([0.2]) }).verdict).toBe('met');
    expect(cpuVerdict({ ...quiet, floor: null, load: [], own: spread([0.6]) }).verdict).toBe('not met');
  });
});
