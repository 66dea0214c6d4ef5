/**
 * The search of `gpucolo tune` against a synthetic monotone response surface: the knob search with
 * an injected trial function (src/tune/search.ts), then the real trial loop and the whole tune
 * (src/tune/trial.ts, run.ts) with an injected phase runner that makes up requests from the surface.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario/load.js';
import type { PhaseRun } from '../src/scenario/phase-run.js';
import type { PlannedRun } from '../src/scenario/rounds.js';
import type { Scenario } from '../src/scenario/schema.js';
import type { TaskSamples } from '../src/scenario/types.js';
import { Budget, bestMet, coarseLevels, paretoFront, searchKnob, type TrialOutcome, type Verdict } from '../src/tune/search.js';
import { tuneScenario, type TuneEvent } from '../src/tune/run.js';
import { tuneResultSchema } from '../src/tune/schema.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-tune-search-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fake clock: each trial moves it on by `trialMs`. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** The surface: HP P99 rises with the level, LP share too; met up to `boundary`. */
function surface(boundary: number, o: { trialMs?: number; noisy?: (level: number, attempt: number) => boolean; verdictAt?: (level: number) => Verdict | null } = {}) {
  const c = clock();
  const calls: { level: number; attempt: number }[] = [];
  const trial = async (level: number, attempt: number): Promise<TrialOutcome> => {
    calls.push({ level, attempt });
    c.advance(o.trialMs ?? 10_000);
    const verdict: Verdict = o.noisy?.(level, attempt) ? 'noisy' : (o.verdictAt?.(level) ?? (level <= boundary ? 'met' : 'missed'));
    return { verdict, hpP99Ms: 10 + level, lpShare: 0.01 * level };
  };
  return { ...c, calls, trial };
}

describe('coarseLevels', () => {
  it('spreads a few levels over the range, least protective first', () => {
    expect(coarseLevels(4, 4)).toEqual([3, 2, 1, 0]);
    expect(coarseLevels(131, 4)).toEqual([130, 87, 43, 0]);
    expect(coarseLevels(1, 4)).toEqual([0]);
    expect(coarseLevels(2, 4)).toEqual([1, 0]);
    expect(() => coarseLevels(0, 4)).toThrow(RangeError);
  });
});

describe('searchKnob on a monotone surface', () => {
  it('finds the boundary: coarse from the top, then bisection', async () => {
    for (const boundary of [0, 1, 20, 41, 62, 63]) {
      const s = surface(boundary);
      const r = await searchKnob({ levels: 64, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial });
      expect(r.stop).toBe('done');
      expect(r.highestMet).toBe(boundary);
      expect(r.best?.level).toBe(boundary);
      if (boundary < 63) expect(r.lowestNotMet).toBe(boundary + 1);
      // coarse (at most 4) + bisection (log2 of the gap, at most 5)
      expect(r.trials.length).toBeLessThanOrEqual(9);
    }
  });

  it('says when nothing meets the SLOs', async () => {
    const s = surface(-1);
    const r = await searchKnob({ levels: 10, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial });
    expect(r.best).toBeNull();
    expect(r.highestMet).toBeNull();
    expect(r.lowestNotMet).toBe(0);
    expect(r.stop).toBe('done');
  });

  it('respects the budget: no trial starts without room for one, the best verified so far stays', async () => {
    const none = surface(5);
    const r1 = await searchKnob({ levels: 64, budget: new Budget(35_000, none.now), minTrialMs: () => 10_000, trial: none.trial });
    expect(r1.stop).toBe('budget');
    expect(r1.trials.map((t) => t.level)).toEqual([63, 42, 21]);
    expect(r1.best).toBeNull();

    const some = surface(5);
    const r2 = await searchKnob({ levels: 64, budget: new Budget(45_000, some.now), minTrialMs: () => 10_000, trial: some.trial });
    expect(r2.stop).toBe('budget');
    expect(r2.trials.map((t) => t.level)).toEqual([63, 42, 21, 0]);
    expect(r2.best?.level).toBe(0);
  });

  it('stops when a trial itself ran out of budget', async () => {
    const s = surface(5);
    const trial = async (level: number, attempt: number): Promise<TrialOutcome> => ({ ...(await s.trial(level, attempt)), verdict: 'inconclusive', budgetCut: level === 42 });
    const r = await searchKnob({ levels: 64, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial });
    expect(r.stop).toBe('budget');
    expect(r.trials.map((t) => t.level)).toEqual([63, 42]);
  });

  it('repeats a noisy trial and never trusts it', async () => {
    // level 21 is noisy twice, then measured; level 10 stays noisy (3 attempts) and counts as not met
    const s = surface(12, { noisy: (level, attempt) => (level === 21 && attempt < 2) || level === 10 });
    const r = await searchKnob({ levels: 64, maxRepeats: 2, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial });
    expect(s.calls.filter((c) => c.level === 21).map((c) => c.attempt)).toEqual([0, 1, 2]);
    expect(s.calls.filter((c) => c.level === 10).map((c) => c.attempt)).toEqual([0, 1, 2]);
    expect(r.judged.find((j) => j.level === 10)?.verdict).toBe('noisy');
    // coarse: 63, 42, 21 missed, 0 met; bisection 10 (noisy: not met), 5, 7, 8, 9 met
    expect(r.highestMet).toBe(9);
    expect(r.best?.level).toBe(9);
    expect(r.trials.filter((t) => t.outcome.verdict === 'noisy').every((t) => t !== r.best)).toBe(true);
  });

  it('an inconclusive level counts as not met: the boundary errs on the protective side', async () => {
    const s = surface(30, { verdictAt: (level) => (level === 30 ? 'inconclusive' : null) });
    const r = await searchKnob({ levels: 64, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial });
    expect(r.highestMet).toBe(29);
    expect(r.lowestNotMet).toBe(30);
  });

  it('a refused (skipped) trial ends the search: the mechanism cannot run here', async () => {
    const s = surface(5, { verdictAt: () => 'skipped' });
    const r = await searchKnob({ levels: 64, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial });
    expect(r.stop).toBe('skipped');
    expect(r.trials).toHaveLength(1);
    expect(r.best).toBeNull();
  });

  it('stops at once when interrupted', async () => {
    const s = surface(5);
    const ctl = new AbortController();
    ctl.abort();
    const r = await searchKnob({ levels: 64, budget: new Budget(1e9, s.now), minTrialMs: () => 10_000, trial: s.trial, signal: ctl.signal });
    expect(r.stop).toBe('interrupted');
    expect(r.trials).toEqual([]);
  });
});

describe('paretoFront and bestMet', () => {
  it('keeps the points no other beats in both P99 (lower) and share (higher)', () => {
    const pts = [
      { id: 1, hpP99Ms: 10, lpShare: 0.1 },
      { id: 2, hpP99Ms: 20, lpShare: 0.5 },
      { id: 3, hpP99Ms: 25, lpShare: 0.4 }, // beaten by 2
      { id: 4, hpP99Ms: 30, lpShare: 0.8 },
      { id: 5, hpP99Ms: null, lpShare: 0.9 }, // not measured: left out
      { id: 6, hpP99Ms: 10, lpShare: 0.05 }, // beaten by 1
    ];
    expect(paretoFront(pts).map((p) => p.id)).toEqual([1, 2, 4]);
    expect(paretoFront([])).toEqual([]);
  });

  it('bestMet takes the met trial with the most LP share', () => {
    const t = (level: number, verdict: Verdict, lpShare: number | null) => ({ level, attempt: 0, outcome: { verdict, hpP99Ms: 1, lpShare } });
    expect(bestMet([t(1, 'met', 0.2), t(3, 'missed', 0.9), t(2, 'met', 0.3), t(0, 'noisy', 0.95)])?.level).toBe(2);
    expect(bestMet([t(1, 'missed', 0.2)])).toBeNull();
  });
});

// ---- the real trial loop and tune, with made-up requests ----

const SCENARIO = `
name: synth
backend: cpu
duration: 2s
warmup: 0
rounds: 1
tasks:
  - name: hp
    priority: 2
    arrival: { kind: fixed-rate, rate: 100 }
    slo: { percentile: 99, below: 50ms }
    probe: { kernel: 5ms }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 4 }
    probe: { kernel: 5ms, blocks: fill }
`;

const MS = 1e6;
const HP_PER_ROUND = 200;
const LP_ALONE = 400;

function samples(task: string, latMs: number[], measuredNs: number): TaskSamples {
  const lat = Float64Array.from(latMs, (x) => x * MS);
  return { task, issued: lat.length, latencyNs: lat, startDelayNs: new Float64Array(0), serviceNs: Float64Array.from(latMs, () => 5 * MS), errors: 0, measuredNs, censoredNs: new Float64Array(0), completedAfterEnd: 0 };
}

/** The HP share over 50 ms and the LP share of standalone for a mechanism setting. */
interface Surface {
  overShare: (s: Scenario, mechanism: string) => number;
  lpShare: (s: Scenario, mechanism: string) => number;
  /** runs (0-based call order) whose host was busy */
  noisyCalls?: Set<number>;
  /** throws at this call (0-based): a trial that dies */
  throwAt?: number;
  /** LP requests of a standalone run at this call (0-based) instead of LP_ALONE: a baseline measured on a busy host */
  lpAloneAt?: Map<number, number>;
}

/** A runPhaseOnce stand-in: requests made up from the surface; moves the fake clock by the phase length. */
function fakeRunner(sf: Surface, advance: (ms: number) => void) {
  let call = 0;
  return async (planned: PlannedRun, durationNs: number, ctx: { scenario: Scenario }): Promise<PhaseRun> => {
    const me = call++;
    if (me === sf.throwAt) throw new Error('synthetic failure');
    advance(durationNs / 1e6 + 500);
    const corun = planned.phase.kind === 'corun';
    const m = planned.phase.mechanism;
    const list = planned.phase.tasks.map((t) => {
      if (t.name === 'hp') {
        const over = corun ? Math.round(sf.overShare(ctx.scenario, m) * HP_PER_ROUND) : 0;
        return samples('hp', Array.from({ length: HP_PER_ROUND }, (_, i) => (i < over ? 80 : 10 + i / 1000)), durationNs);
      }
      const n = corun ? Math.round(sf.lpShare(ctx.scenario, m) * LP_ALONE) : (sf.lpAloneAt?.get(me) ?? LP_ALONE);
      return samples('lp', Array.from({ length: n }, () => 20), durationNs);
    });
    const busy = sf.noisyCalls?.has(me) ?? false;
    return {
      ...planned,
      extension: false,
      startedAt: new Date(0).toISOString(),
      status: 'ok',
      notes: [],
      samples: list,
      blocks: { hp: 1, lp: 2 },
      computeUnits: 2,
      workloads: {},
      measuredNs: durationNs,
      sampled: { reason: 'no GPU' },
      host: busy ? { wallS: 2, cpus: 2, foreignCores: 1.5, ownCores: 1, stealShare: 0, loadAverage1: 3 } : null,
      gpu: null,
      onCpu: true,
    };
  };
}

/** throttle: K = 1, 2 keep HP under its SLO; 3, 4 do not. cu-mask (reserve 50%): met, LP 30%. */
const THROTTLE: Surface = {
  overShare: (s, m) => (m === 'throttle' ? [0, 0, 0.05, 0.2][s.throttleK - 1] : 0),
  lpShare: (s, m) => (m === 'throttle' ? 0.2 * s.throttleK : 0.3),
};

async function tune(sf: Surface, extra: { budgetNs?: number; mechanisms?: ('cu-mask' | 'throttle')[]; charts?: boolean } = {}) {
  const c = clock();
  const outDir = fs.mkdtempSync(path.join(tmp, 'out-'));
  const events: TuneEvent[] = [];
  const scenario = parseScenario(SCENARIO, 'synth.yaml');
  const p = tuneScenario(scenario, 'synth.yaml', {
    outDir,
    backend: 'cpu',
    form: 'probe',
    mechanisms: extra.mechanisms ?? ['cu-mask', 'throttle'],
    budgetNs: extra.budgetNs ?? 300e9,
    charts: extra.charts ?? false,
    now: c.now,
    runPhase: fakeRunner(sf, c.advance) as never,
    onEvent: (e) => events.push(e),
  });
  return { p, outDir, events };
}

describe('a tune on a synthetic surface (real trial loop, injected phases)', () => {
  it('stops trials early once decided, finds K = 2, recommends it with a scenario snippet, draws the front', async () => {
    const { p, outDir } = await tune(THROTTLE, { charts: true });
    const { result } = await p;
    expect(tuneResultSchema.safeParse(result).success).toBe(true);
    // baseline HP: 200 requests per round -> 473 (P99 met with one over, 95%) needs 3 rounds
    expect(result.options.maxRounds).toBe(3);
    const throttle = result.trials.filter((t) => t.mechanism === 'throttle');
    expect(throttle.map((t) => [t.setting.throttleK, t.verdict, t.rounds])).toEqual([
      [4, 'missed', 1], // 40 of 200 over: missed after one round
      [3, 'missed', 1],
      [2, 'met', 2], // 0 over in 400 (>= 299): met after two of three rounds
    ]);
    expect(throttle.every((t) => t.stoppedEarly)).toBe(true);
    const cuMask = result.trials.find((t) => t.mechanism === 'cu-mask')!;
    expect(cuMask.setting.reserve).toBe(0.5);
    expect(cuMask.verdict).toBe('met');
    expect(result.recommendation?.mechanism).toBe('throttle');
    expect(result.recommendation?.setting).toEqual({ throttleK: 2 });
    expect(result.recommendation?.yaml).toContain('mechanisms: [throttle]\nthrottleK: 2\n');
    expect(result.recommendation?.lpShare).toBeCloseTo(0.4, 6);
    // the front: K = 4 gives more LP than K = 2 at a higher P99; K = 3 has K = 4's P99 (80 ms) with less LP: beaten
    const front = result.mechanisms.find((m) => m.mechanism === 'throttle')!.front;
    expect(front.map((f) => f.label)).toEqual(['throttleK 2', 'throttleK 4']);
    expect(result.partial).toBe(false);
    expect(result.budget.ranOut).toBe(false);
    const onDisk = JSON.parse(fs.readFileSync(path.join(outDir, 'tune.json'), 'utf8'));
    expect(onDisk.recommendation.setting).toEqual({ throttleK: 2 });
    const md = fs.readFileSync(path.join(outDir, 'report.md'), 'utf8');
    expect(md).toContain('**throttle, throttleK 2**');
    expect(md).toContain('```yaml\n# gpucolo tune: throttle, throttleK 2\nmechanisms: [throttle]\nthrottleK: 2\n```');
    expect(md).toContain('![Pareto front](charts/tune-front.svg)');
    expect(fs.readFileSync(path.join(outDir, 'charts', 'tune-front.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('repeats a noisy trial: the busy host run is recorded, not trusted, and run again', async () => {
    // calls 0, 1: baseline; 2: the first throttle trial (K = 4), busy
    const { p } = await tune({ ...THROTTLE, noisyCalls: new Set([2]) }, { mechanisms: ['throttle'] });
    const { result } = await p;
    const first = result.trials.slice(0, 2);
    expect(first.map((t) => [t.setting.throttleK, t.attempt, t.verdict])).toEqual([
      [4, 0, 'noisy'],
      [4, 1, 'missed'],
    ]);
    expect(first[0].quality.warnings[0].code).toBe('host-interference');
    expect(result.recommendation?.setting).toEqual({ throttleK: 2 });
    // noisy trials are not on the front
    expect(result.mechanisms[0].front.map((f) => f.trial)).not.toContain(first[0].id);
  });

  it('a baseline still noisy after its repeats is measured again before the next mechanism', async () => {
    // calls 0-5: three baseline attempts, the first run of each busy; 6, 7: cu-mask (met in 2 rounds); 8, 9: the baseline again, quiet
    const { p, events } = await tune({ ...THROTTLE, noisyCalls: new Set([0, 2, 4]) });
    const { result } = await p;
    expect(events.filter((e) => e.type === 'baseline')).toHaveLength(4);
    expect(result.baseline.attempts).toBe(4);
    expect(result.baseline.quality?.verdict).toBe('ok');
    expect(result.recommendation?.setting).toEqual({ throttleK: 2 });
  });

  it('a trial impossible against the baseline (LP above standalone) measures the baseline again before its repeat', async () => {
    // call 1: LP alone got a quarter of its requests (busy host) -> the K = 4 trial (call 2) shows LP at 320% of it;
    // calls 3, 4: the baseline again; call 5: K = 4 again, against the new baseline
    const { p, events } = await tune({ ...THROTTLE, lpAloneAt: new Map([[1, 100]]) }, { mechanisms: ['throttle'] });
    const { result } = await p;
    const [first, second] = result.trials;
    expect([first.verdict, first.quality.warnings.map((w) => w.code)]).toEqual(['noisy', ['share-above-standalone']]);
    expect(events.filter((e) => e.type === 'baseline').map((e) => (e as { again: string | null }).again)).toEqual([null, "the last trial's co-run figures were impossible against it"]);
    expect([second.setting.throttleK, second.attempt, second.verdict, second.lpShare]).toEqual([4, 1, 'missed', 0.8]);
    expect(result.recommendation?.setting).toEqual({ throttleK: 2 });
  });

  it('an undecided trial runs every round and is inconclusive, never recommended', async () => {
    // exactly 1% over: neither clearly below nor above at any round
    const sf: Surface = { overShare: () => 0.01, lpShare: (s) => 0.2 * s.throttleK };
    const { p } = await tune(sf, { mechanisms: ['throttle'] });
    const { result } = await p;
    expect(result.trials.every((t) => t.verdict === 'inconclusive' && t.rounds === 3 && !t.stoppedEarly)).toBe(true);
    expect(result.recommendation).toBeNull();
    expect(result.why).toMatch(/no setting was verified/);
  });

  it('a budget that runs out keeps the best verified setting and says so', async () => {
    // every run takes 2.5 s: baseline 5 s; cu-mask gets half of the 12 s left and is met in 2
    // rounds; throttle gets the last 7 s: K = 4 and 3 (missed, 1 round each), then no room for a round
    const { p } = await tune(THROTTLE, { budgetNs: 17e9 });
    const { result } = await p;
    expect(result.trials.map((t) => [t.mechanism, t.label, t.verdict])).toEqual([
      ['cu-mask', 'reserve 50% (1 of 2 compute units)', 'met'],
      ['throttle', 'throttleK 4', 'missed'],
      ['throttle', 'throttleK 3', 'missed'],
    ]);
    expect(result.budget.ranOut).toBe(true);
    expect(result.mechanisms.map((m) => m.status)).toEqual(['done', 'budget']);
    expect(result.recommendation?.mechanism).toBe('cu-mask');
    expect(result.why).toMatch(/^the budget ran out; cu-mask reserve 50%/);
  });

  it('a trial cut by the budget before it decided is inconclusive, not a recommendation', async () => {
    // 14 s: baseline 5 s, K = 4 and 3 (2.5 s each), K = 2 gets one round of the two it needs
    const { p } = await tune(THROTTLE, { mechanisms: ['throttle'], budgetNs: 14e9 });
    const { result } = await p;
    const last = result.trials[result.trials.length - 1];
    expect([last.setting.throttleK, last.verdict, last.budgetCut, last.rounds]).toEqual([2, 'inconclusive', true, 1]);
    expect(result.recommendation).toBeNull();
    expect(result.why).toMatch(/^the budget ran out; no setting was verified/);
  });

  it('a trial that dies loses nothing already written', async () => {
    // calls 0, 1: baseline; 2, 3: K = 4 and K = 3; 4: K = 2 throws
    const { p, outDir } = await tune({ ...THROTTLE, throwAt: 4 }, { mechanisms: ['throttle'] });
    await expect(p).rejects.toThrow(/synthetic failure/);
    const onDisk = tuneResultSchema.parse(JSON.parse(fs.readFileSync(path.join(outDir, 'tune.json'), 'utf8')));
    expect(onDisk.partial).toBe(true);
    expect(onDisk.trials.map((t) => t.setting.throttleK)).toEqual([4, 3]);
    expect(onDisk.baseline.tasks.map((t) => t.name)).toEqual(['hp', 'lp']);
  });
});
