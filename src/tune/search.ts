/**
 * The search over one mechanism's knob, independent of how a trial runs (the trial is a function:
 * tests hand in a synthetic response surface, src/tune/run.ts the real runner).
 *
 * Levels go from the most protective (0) to the least (src/tune/knobs.ts); the high-priority tail
 * rises and the low-priority throughput grows with the level, so the settings that meet the SLOs
 * are the levels up to a boundary. The search:
 *
 *  1. coarse: a few levels spread over the range, from the least protective down, until one is met
 *     (every level below it would be met too, and gives the low-priority side less);
 *  2. bisect between that level and the lowest level above it that was not met.
 *
 * A level counts as met only when its trial says so with quality ok: a noisy trial is repeated (at
 * most `maxRepeats` more times) and never trusted; an inconclusive, noisy, failed or skipped one
 * counts as not met, so the boundary errs on the protective side. Before each trial the budget
 * must still hold the least a trial takes; when it does not, the search stops and keeps what it
 * verified. A skipped trial (the mechanism refused) ends the search: the caller offers only levels
 * the backend accepts (src/tune/run.ts), so a refusal is the mechanism's, not the level's.
 */
import { GpucoloError, outOfRange } from '../errors.js';

export type Verdict = 'met' | 'missed' | 'inconclusive' | 'noisy' | 'failed' | 'skipped' | 'interrupted';

export interface TrialOutcome {
  verdict: Verdict;
  /** the budget ran out inside the trial before its SLOs were decided */
  budgetCut?: boolean;
  /** the highest P99 of the high-priority tasks, ms; null when not measured */
  hpP99Ms: number | null;
  /** the low-priority tasks' mean throughput share of standalone; null when not measured */
  lpShare: number | null;
}

/** Wall time left for the search, on an injectable clock (ms). */
export class Budget {
  readonly endMs: number;
  constructor(
    readonly totalMs: number,
    readonly now: () => number = () => Date.now(),
    readonly startMs: number = now(),
  ) {
    this.endMs = startMs + totalMs;
  }
  remainingMs(): number {
    return Math.max(0, this.endMs - this.now());
  }
  usedMs(): number {
    return this.now() - this.startMs;
  }
  /** A budget of at most `ms` from now that also ends no later than this one. */
  part(ms: number): Budget {
    const now = this.now();
    return new Budget(Math.max(0, Math.min(ms, this.endMs - now)), this.now, now);
  }
}

export interface SearchOptions<T extends TrialOutcome> {
  /** levels 0 .. levels-1 */
  levels: number;
  /** coarse grid points (default 4) */
  coarse?: number;
  /** extra runs of a noisy trial (default 2) */
  maxRepeats?: number;
  budget: Budget;
  /** the least wall time one trial takes (one round of it), ms */
  minTrialMs: () => number;
  trial: (level: number, attempt: number) => Promise<T>;
  signal?: AbortSignal;
}

export interface SearchTrial<T> {
  level: number;
  /** 0 for the first run of a level, 1.. for repeats of a noisy one */
  attempt: number;
  outcome: T;
}

export interface SearchResult<T> {
  trials: SearchTrial<T>[];
  /** the met trial with the most low-priority throughput; null when none was met */
  best: SearchTrial<T> | null;
  /** each level tried and what it came to after its repeats */
  judged: { level: number; verdict: Verdict }[];
  /** the boundary as found: the highest level met, the lowest level above it not met (null: none) */
  highestMet: number | null;
  lowestNotMet: number | null;
  /** skipped: a trial was refused (the mechanism cannot run here: no other level would run either) */
  stop: 'done' | 'budget' | 'interrupted' | 'skipped';
}

/** Up to `points` levels spread evenly over 0 .. levels-1 (both ends included), least protective first. */
export function coarseLevels(levels: number, points: number): number[] {
  if (!Number.isInteger(levels) || levels < 1) throw outOfRange(`levels must be an integer >= 1 (got ${levels})`);
  const n = Math.max(1, Math.min(levels, Math.floor(points)));
  const out = new Set<number>();
  for (let i = 0; i < n; i++) out.add(n === 1 ? levels - 1 : Math.round((i * (levels - 1)) / (n - 1)));
  return [...out].sort((a, b) => b - a);
}

/** The met trial with the most low-priority throughput (ties: the higher level). */
export function bestMet<T extends TrialOutcome>(trials: SearchTrial<T>[]): SearchTrial<T> | null {
  let best: SearchTrial<T> | null = null;
  for (const t of trials) {
    if (t.outcome.verdict !== 'met') continue;
    const share = t.outcome.lpShare ?? Number.NEGATIVE_INFINITY;
    const bestShare = best?.outcome.lpShare ?? Number.NEGATIVE_INFINITY;
    if (!best || share > bestShare || (share === bestShare && t.level > best.level)) best = t;
  }
  return best;
}

/**
 * Ends the search from inside judge(): control flow, caught in searchKnob and never seen by a
 * caller. Private, but still a GpucoloError with a code (ESTOP, docs/errors.md) so that nothing
 * gpucolo throws lacks one (issue #20).
 */
class Stop extends GpucoloError {
  constructor(readonly why: 'budget' | 'interrupted' | 'skipped') {
    super(why, { code: 'ESTOP' });
  }
}

/** Searches one knob (see the file comment). Never throws for a trial's verdict; a trial function that throws ends the search with that error. */
export async function searchKnob<T extends TrialOutcome>(o: SearchOptions<T>): Promise<SearchResult<T>> {
  const maxRepeats = o.maxRepeats ?? 2;
  const trials: SearchTrial<T>[] = [];
  const judged: { level: number; verdict: Verdict }[] = [];
  const judge = async (level: number): Promise<Verdict> => {
    for (let attempt = 0; ; attempt++) {
      if (o.signal?.aborted) throw new Stop('interrupted');
      if (o.budget.remainingMs() < o.minTrialMs()) throw new Stop('budget');
      const outcome = await o.trial(level, attempt);
      trials.push({ level, attempt, outcome });
      if (outcome.verdict === 'interrupted') throw new Stop('interrupted');
      if (outcome.budgetCut) throw new Stop('budget');
      if (outcome.verdict === 'skipped') throw new Stop('skipped');
      if (outcome.verdict === 'noisy' && attempt < maxRepeats) continue;
      judged.push({ level, verdict: outcome.verdict });
      return outcome.verdict;
    }
  };
  let met: number | null = null;
  let notMet: number | null = null;
  let stop: SearchResult<T>['stop'] = 'done';
  try {
    for (const level of coarseLevels(o.levels, o.coarse ?? 4)) {
      if ((await judge(level)) === 'met') {
        met = level;
        break;
      }
      notMet = level;
    }
    while (met !== null && notMet !== null && notMet - met > 1) {
      const mid = Math.floor((met + notMet) / 2);
      if ((await judge(mid)) === 'met') met = mid;
      else notMet = mid;
    }
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    stop = err.why;
  }
  return { trials, best: bestMet(trials), judged, highestMet: met, lowestNotMet: notMet, stop };
}

export interface FrontPoint {
  hpP99Ms: number;
  lpShare: number;
}

/**
 * The Pareto front of high-priority P99 (lower is better) against low-priority share (higher is
 * better): the points no other point beats in both. Sorted by P99, then share; points without
 * both numbers are left out.
 */
export function paretoFront<P extends { hpP99Ms: number | null; lpShare: number | null }>(points: P[]): (P & FrontPoint)[] {
  const full = points.filter((p): p is P & FrontPoint => p.hpP99Ms !== null && p.lpShare !== null && Number.isFinite(p.hpP99Ms) && Number.isFinite(p.lpShare));
  full.sort((a, b) => a.hpP99Ms - b.hpP99Ms || b.lpShare - a.lpShare);
  const out: (P & FrontPoint)[] = [];
  let bestShare = Number.NEGATIVE_INFINITY;
  for (const p of full) {
    if (p.lpShare > bestShare) {
      out.push(p);
      bestShare = p.lpShare;
    }
  }
  return out;
}
