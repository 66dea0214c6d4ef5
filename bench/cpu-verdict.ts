/**
 * A CPU budget's verdict for one sampler at one interval (bench/trace.ts: issue 19's "own work
 * < 0.5% of one core at 100 ms, < 3% at 10 ms"), from the interleaved rounds of one run.
 *
 * A verdict is given only where the host lets one mean something. On this kind of small VM the
 * same code measured twice in one day differed twofold, and what bare wake-ups cost (the floor,
 * run in the same rounds) moved threefold with it (bench/RESULTS.md, "what bare wake-ups cost"):
 * when the floor alone takes a fifth of the budget, or the host is loaded beyond what the bench
 * itself adds, the figures are printed but the verdict is "no verdict", with the reason.
 */
import type { Spread } from './interleave.js';

export interface CpuVerdictInput {
  /** the sampler's own work per round, % of one core */
  own: Spread;
  /** the floor's CPU per round in the same rounds (bare wake-ups), % of one core; null: not run */
  floor: Spread | null;
  /** the budget, % of one core: own work must stay below it */
  budgetPct: number;
  /** 1-minute load averages at the end of the rounds */
  load: number[];
  cores: number;
}

export interface CpuVerdict {
  /** 'met': every round below the budget; 'met at the median': some rounds at or above it */
  verdict: 'met' | 'met at the median' | 'not met' | 'no verdict';
  /** why, in words (for every verdict) */
  why: string;
}

/** the floor may take at most this share of the budget before the host counts as too slow */
export const FLOOR_SHARE_LIMIT = 0.2;
/** load per core above which something besides the bench competes for the cores */
export const LOAD_PER_CORE_LIMIT = 0.75;

const pc = (x: number): string => `${x.toFixed(2)}%`;

export function cpuVerdict(i: CpuVerdictInput): CpuVerdict {
  const maxLoad = i.load.length ? Math.max(...i.load) : null;
  if (maxLoad !== null && maxLoad > LOAD_PER_CORE_LIMIT * i.cores) {
    return { verdict: 'no verdict', why: `host busy: load up to ${maxLoad.toFixed(2)} on ${i.cores} cores` };
  }
  if (i.floor && i.floor.median > FLOOR_SHARE_LIMIT * i.budgetPct) {
    return {
      verdict: 'no verdict',
      why: `host slow: bare wake-ups alone cost ${pc(i.floor.median)}, over ${FLOOR_SHARE_LIMIT * 100}% of the ${pc(i.budgetPct)} budget`,
    };
  }
  const above = i.own.values.filter((v) => v >= i.budgetPct).length;
  const n = i.own.values.length;
  if (above === 0) return { verdict: 'met', why: `every round below ${pc(i.budgetPct)} (worst ${pc(i.own.max)})` };
  if (i.own.median < i.budgetPct) {
    return { verdict: 'met at the median', why: `${above} of ${n} rounds at or above ${pc(i.budgetPct)} (worst ${pc(i.own.max)})` };
  }
  return { verdict: 'not met', why: `median ${pc(i.own.median)} against ${pc(i.budgetPct)}; ${above} of ${n} rounds at or above it` };
}
