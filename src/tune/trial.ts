/**
 * One trial of `gpucolo tune`: the scenario's co-run phase under one mechanism setting, run round
 * after round with the runner's own pieces (src/scenario/phase-run.ts runPhaseOnce for a run,
 * pool.ts assemblePhases for the pooled figures against the standalone baseline, quality.ts
 * scenarioQuality for the quality block), until every high-priority SLO is decided
 * (src/tune/early-stop.ts) or `maxRounds` rounds have run.
 *
 * A round whose quality is not ok ends the trial as noisy (the search repeats it); a trial still
 * undecided after its rounds is inconclusive, except that a zero-tolerance SLO (maxMissRatio: 0)
 * without a single miss over the full trial is met, as `gpucolo run` would judge it: no sample
 * size proves a zero-tolerance SLO statistically.
 */
import { assemblePhases, poolSamples } from '../scenario/pool.js';
import { runPhaseOnce, type PhaseRun, type PhaseRunContext } from '../scenario/phase-run.js';
import { scenarioQuality } from '../scenario/quality.js';
import type { PhaseSpec } from '../scenario/rounds.js';
import type { Form, Mechanism, Scenario, Task } from '../scenario/schema.js';
import type { PhaseResult, TaskResult } from '../scenario/types.js';
import { formatMs, type Quality } from '../stats/index.js';
import { allowedOverShare, tailDecision, type Decision } from './early-stop.js';
import type { Setting } from './knobs.js';
import type { Budget, Verdict } from './search.js';
import type { SloCheck, TrialTask, TuneTrial } from './schema.js';

/** What every trial of a tune shares. */
export interface TrialEnv {
  scenario: Scenario;
  form: Form;
  device: string | null;
  run: Omit<PhaseRunContext, 'scenario'>;
  durationNs: number;
  maxRounds: number;
  confidence: number;
  /** the standalone phases and their runs (round 1 each): the co-run figures are against them */
  standaloneSpecs: PhaseSpec[];
  baselineRuns: PhaseRun[];
  hpTasks: Task[];
  budget: Budget;
  /** the longest one run of a phase has taken so far, ms (what the next round needs) */
  roundMs: () => number;
  onRunMs: (ms: number) => void;
  onRound?: (round: number, maxRounds: number) => void;
  /** runs one round (default: the runner's runPhaseOnce); tests inject a synthetic response surface here */
  runPhase?: typeof runPhaseOnce;
}

export interface TrialMeta {
  id: number;
  mechanism: Mechanism;
  level: number;
  attempt: number;
  setting: Setting;
  label: string;
}

const usable = (r: PhaseRun): boolean => r.status === 'ok' || r.status === 'partial';
const pct = (x: number): string => `${Number((x * 100).toPrecision(3))}%`;
const pText = (p: number): string => (p < 1e-4 ? p.toExponential(1) : Number(p.toPrecision(2)).toString());

function countOver(values: Float64Array | undefined, boundNs: number): number {
  let k = 0;
  for (const v of values ?? []) if (v >= boundNs) k++;
  return k;
}

/** The percentile part of an HP task's SLO, from the trial's pooled requests. */
function percentileCheck(task: Task, runs: PhaseRun[], confidence: number): SloCheck {
  const slo = task.slo!;
  const p = slo.percentile!;
  const bound = slo.below!;
  const pooled = poolSamples(task.name, runs.filter(usable).flatMap((r) => r.samples.filter((x) => x.task === task.name)));
  const censored = pooled.censoredNs?.length ?? 0;
  const n = pooled.latencyNs.length + censored;
  const censoredOver = countOver(pooled.censoredNs, bound);
  const over = countOver(pooled.latencyNs, bound) + censoredOver;
  const unknown = censored - censoredOver;
  const q = allowedOverShare(p);
  const d = tailDecision({ n, over, unknown }, q, confidence);
  const text = `P${p} < ${formatMs(bound / 1e6)} ms`;
  const detail = `${over} of ${n} requests at or over ${formatMs(bound / 1e6)} ms${unknown ? ` (${unknown} unfinished below it)` : ''}; at ${pct(q)} allowed: P(so few) ${pText(d.pFewer)}, P(so many) ${pText(d.pMore)}, decided at ${pct(1 - confidence)}`;
  return { task: task.name, text, percentile: p, boundMs: bound / 1e6, decision: d.decision, n, over, unknown, detail };
}

function missCheck(task: Task, t: TaskResult | undefined, confidence: number, last: boolean): SloCheck {
  const r = task.slo!.maxMissRatio!;
  const text = `deadline misses <= ${pct(r)}`;
  const dl = t?.deadline ?? null;
  if (!dl) return { task: task.name, text, percentile: null, boundMs: null, decision: 'undecided', n: null, over: null, unknown: null, detail: 'no deadline figures' };
  let decision: Decision = tailDecision({ n: dl.total, over: dl.missed }, r, confidence).decision;
  if (decision === 'undecided' && r === 0 && dl.missed === 0 && dl.total > 0 && last) decision = 'met';
  return { task: task.name, text, percentile: null, boundMs: null, decision, n: dl.total, over: dl.missed, unknown: 0, detail: `${dl.missed} of ${dl.total} missed the ${formatMs(dl.ms)} ms deadline${r === 0 && decision === 'met' ? ' (zero tolerance: met by the full trial without a miss)' : ''}` };
}

function shareCheck(task: Task, t: TaskResult | undefined): SloCheck {
  const min = task.slo!.minThroughputShare!;
  const text = `throughput >= ${pct(min)} of standalone`;
  const share = t?.throughputShare ?? null;
  if (share === null) return { task: task.name, text, percentile: null, boundMs: null, decision: 'undecided', n: null, over: null, unknown: null, detail: 'no throughput share' };
  return { task: task.name, text, percentile: null, boundMs: null, decision: share >= min ? 'met' : 'missed', n: null, over: null, unknown: null, detail: `throughput ${pct(share)} of standalone` };
}

/** Every SLO part of every high-priority task, judged on the runs so far. */
export function hpChecks(hpTasks: Task[], runs: PhaseRun[], corun: PhaseResult | undefined, confidence: number, last: boolean): SloCheck[] {
  const out: SloCheck[] = [];
  for (const task of hpTasks) {
    const slo = task.slo;
    if (!slo) continue;
    const t = corun?.tasks.find((x) => x.name === task.name);
    if (slo.percentile !== undefined && slo.below !== undefined) out.push(percentileCheck(task, runs, confidence));
    if (slo.maxMissRatio !== undefined) out.push(missCheck(task, t, confidence, last));
    if (slo.minThroughputShare !== undefined) out.push(shareCheck(task, t));
  }
  return out;
}

function trialTask(t: TaskResult): TrialTask {
  const l = t.latencyMs;
  return {
    name: t.name,
    priority: t.priority,
    n: l.n,
    p50Ms: l.p50,
    p99Ms: l.p99,
    ci99Ms: l.ci99,
    p99LowerBound: (l.censoredAtOrAbove ?? []).includes('p99'),
    throughput: t.throughput,
    throughputShare: t.throughputShare,
    censored: t.requests.censored ?? 0,
  };
}

/** The highest HP P99 and the mean LP share; null where a task lacks the figure. */
function headline(tasks: TrialTask[], hp: Set<string>): { hpP99Ms: number | null; lpShare: number | null } {
  const hpP = tasks.filter((t) => hp.has(t.name)).map((t) => t.p99Ms);
  const lpS = tasks.filter((t) => !hp.has(t.name)).map((t) => t.throughputShare);
  const hpP99Ms = hpP.length && hpP.every((x): x is number => x !== null) ? Math.max(...hpP) : null;
  const lpShare = lpS.length && lpS.every((x): x is number => x !== null) ? lpS.reduce((a, b) => a + b, 0) / lpS.length : null;
  return { hpP99Ms, lpShare };
}

interface Judged {
  verdict: Verdict | null;
  why: string;
}

/** The trial's verdict after a round, or null verdict to run another round. */
function judge(checks: SloCheck[], quality: Quality, round: number, maxRounds: number): Judged {
  if (quality.verdict !== 'ok') return { verdict: 'noisy', why: `noisy, not trusted: ${quality.warnings[0]?.message ?? 'quality not ok'}` };
  const missed = checks.filter((c) => c.decision === 'missed');
  if (missed.length) return { verdict: 'missed', why: `${missed.map((c) => `${c.task} ${c.text} missed: ${c.detail}`).join('; ')}` };
  if (checks.every((c) => c.decision === 'met')) return { verdict: 'met', why: `every high-priority SLO met after ${round} round(s): ${checks.map((c) => `${c.task} ${c.text}: ${c.detail}`).join('; ')}` };
  const open = checks.filter((c) => c.decision === 'undecided');
  if (round < maxRounds) return { verdict: null, why: '' };
  return { verdict: 'inconclusive', why: `undecided after ${round} round(s): ${open.map((c) => `${c.task} ${c.text}: ${c.detail}`).join('; ')}` };
}

/** Quality of the trial's own runs (the baseline's own warnings were dealt with when it ran). */
function trialQuality(phases: PhaseResult[], runs: PhaseRun[], phaseName: string): Quality {
  const q = scenarioQuality(phases, runs, { rounds: runs.filter((r) => r.phase.name === phaseName).length });
  const warnings = q.warnings.filter((w) => w.phase === phaseName);
  return { verdict: warnings.length ? 'noisy' : 'ok', warnings };
}

/** Runs one trial (see the file comment). Never throws for a failing run: the verdict says it. */
export async function runTrial(env: TrialEnv, meta: TrialMeta): Promise<TuneTrial> {
  const startedAt = new Date().toISOString();
  const t0 = env.budget.now();
  const spec: PhaseSpec = { name: `corun:${meta.mechanism}`, kind: 'corun', mechanism: meta.mechanism, tasks: env.scenario.tasks };
  const scenario: Scenario = { ...env.scenario, ...meta.setting };
  const hp = new Set(env.hpTasks.map((t) => t.name));
  const runs: PhaseRun[] = [];
  let result: Judged = { verdict: null, why: '' };
  let budgetCut = false;
  let checks: SloCheck[] = [];
  let quality: Quality = { verdict: 'ok', warnings: [] };
  let corun: PhaseResult | undefined;
  for (let round = 1; round <= env.maxRounds && result.verdict === null; round++) {
    if (round > 1 && env.budget.remainingMs() < env.roundMs()) {
      budgetCut = true;
      result = { verdict: 'inconclusive', why: `the budget ran out after ${round - 1} round(s), undecided: ${checks.filter((c) => c.decision !== 'met').map((c) => `${c.task} ${c.text}: ${c.detail}`).join('; ')}` };
      break;
    }
    env.onRound?.(round, env.maxRounds);
    const r0 = env.budget.now();
    const run = await (env.runPhase ?? runPhaseOnce)({ phase: spec, round, position: 0 }, env.durationNs, { ...env.run, scenario });
    env.onRunMs(env.budget.now() - r0);
    runs.push(run);
    if (run.status === 'skipped') result = { verdict: 'skipped', why: run.reason ?? 'skipped' };
    else if (run.status === 'failed') result = { verdict: 'failed', why: run.reason ?? 'failed' };
    else if (run.status === 'partial' && env.run.signal?.aborted) result = { verdict: 'interrupted', why: 'interrupted' };
    const all = [...env.baselineRuns, ...runs];
    const phases = assemblePhases([...env.standaloneSpecs, spec], all, { form: env.form, device: env.device });
    corun = phases.find((p) => p.name === spec.name);
    if (result.verdict !== null) break;
    quality = trialQuality(phases, all, spec.name);
    checks = hpChecks(env.hpTasks, runs, corun, env.confidence, round === env.maxRounds);
    result = judge(checks, quality, round, env.maxRounds);
  }
  const tasks = corun && corun.status !== 'skipped' ? corun.tasks.map(trialTask) : [];
  const rounds = runs.length;
  return {
    ...meta,
    startedAt,
    wallS: (env.budget.now() - t0) / 1e3,
    rounds,
    maxRounds: env.maxRounds,
    // decided before its last round (a noisy trial ends early too, but decides nothing)
    stoppedEarly: (result.verdict === 'met' || result.verdict === 'missed') && rounds < env.maxRounds,
    budgetCut,
    verdict: result.verdict ?? 'inconclusive',
    why: result.why,
    slos: checks,
    ...headline(tasks, hp),
    tasks,
    quality,
    notes: corun?.notes ?? [],
  };
}
