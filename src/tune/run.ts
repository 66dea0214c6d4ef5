/**
 * `gpucolo tune`: per mechanism, the knob setting that meets every high-priority SLO with the most
 * low-priority throughput (the search: search.ts; a trial: trial.ts; the knobs: knobs.ts).
 *
 * Order: checks that need no run (refused before anything is written: exit 2 in the CLI), then the
 * output directory and a first tune.json, then every task alone once (the baseline the co-run
 * shares and quality checks are against; repeated while noisy), then the mechanisms one after the
 * other, each with an equal part of what is left of the budget. tune.json is rewritten
 * (atomically, src/write.ts) after every trial, so a failure or Ctrl-C loses nothing that
 * was measured; report.md and the chart of the Pareto front come at the end.
 */
import path from 'node:path';
import { GpucoloError } from '../errors.js';
import { lazyDir } from '../fs-dirs.js';
import { writeFileAtomic, writeJsonAtomic } from '../write.js';
import { renderSpecs, type ChartFile } from '../report/charts.js';
import { phaseSpecs, type PhaseSpec } from '../scenario/rounds.js';
import { runPhaseOnce, type PhaseRun, type PhaseRunContext } from '../scenario/phase-run.js';
import { planRun } from '../scenario/runner.js';
import { probeDevice, probeMechanismProblem } from '../scenario/probe-driver.js';
import { assemblePhases } from '../scenario/pool.js';
import { scenarioQuality } from '../scenario/quality.js';
import { defaultGpuSharing, defaultHostLoad, type GpuSharingCheck, type HostLoadFactory } from '../scenario/host-watch.js';
import type { Form, Mechanism, Scenario, Task } from '../scenario/schema.js';
import { SM_PARTITION_REASON, THROTTLE_REASON } from '../scenario/torch-driver.js';
import { VERSION } from '../version.js';
import { MAX_DISPATCH_SPAN_NS, MIN_DISPATCH_SPAN_NS } from '../limits.js';
import { DEFAULT_CONFIDENCE, allowedOverShare, samplesToMeet } from './early-stop.js';
import { TUNABLE, knobFor, knobProblem, settingYaml, type Knob } from './knobs.js';
import { Budget, paretoFront, searchKnob, type SearchResult } from './search.js';
import { TUNE_SCHEMA, type MechanismSummary, type TuneResult, type TuneTrial } from './schema.js';
import { runTrial, type TrialEnv } from './trial.js';
import { frontChartSpec, renderTuneMarkdown } from './report.js';

export const DEFAULT_BUDGET_NS = 300e9;
export const DEFAULT_COARSE = 4;
export const DEFAULT_MAX_REPEATS = 2;
/** quality warnings that compare a trial with the baseline and blame the host between the two (src/stats/quality.ts) */
const AGAINST_BASELINE = new Set(['share-above-standalone', 'faster-than-standalone']);
/** the most rounds a trial takes when --max-rounds does not say (the scenario's rounds when no HP percentile SLO sets it) */
const MAX_AUTO_ROUNDS = 8;

export interface TuneOptions {
  outDir: string;
  mechanisms?: Mechanism[];
  budgetNs?: number;
  form?: Form | 'auto';
  backend?: Scenario['backend'];
  durationNs?: number;
  warmupNs?: number;
  /** rounds a trial may take at most (default: what proving P99 met with one request over needs, from the baseline's rate) */
  maxRounds?: number;
  confidence?: number;
  coarse?: number;
  maxRepeats?: number;
  charts?: boolean;
  python?: string;
  signal?: AbortSignal;
  onEvent?: (e: TuneEvent) => void;
  /** injectable for tests, as in runScenario */
  hostLoad?: HostLoadFactory;
  gpuSharing?: GpuSharingCheck;
  now?: () => number;
  /** runs one phase once (default: the runner's runPhaseOnce); tests inject a synthetic response surface */
  runPhase?: typeof runPhaseOnce;
}

export type TuneEvent =
  | { type: 'start'; form: Form; backend: string; device: string | null; mechanisms: { mechanism: Mechanism; levels: number; skipped: string | null }[]; budgetMs: number }
  | { type: 'baseline'; attempt: number; phases: number; /** why it is measured again (null: the first measurement and its repeats) */ again: string | null }
  | { type: 'trial-start'; id: number; mechanism: Mechanism; label: string; attempt: number }
  | { type: 'round'; id: number; round: number; maxRounds: number }
  | { type: 'trial-end'; trial: TuneTrial }
  | { type: 'done'; result: TuneResult; files: string[]; chartErrors: string[] };

export interface TuneRunResult {
  result: TuneResult;
  files: string[];
}

/** An error the CLI shows as bad usage (exit 2). */
const usage = (message: string): GpucoloError => new GpucoloError(message, { code: 'EBADUSAGE' });

interface Prepared {
  plan: ReturnType<typeof planRun>;
  device: string | null;
  computeUnits: number | null;
  hpTasks: Task[];
  lpTasks: Task[];
  mechanisms: { mechanism: Mechanism; knob: Knob; skipped: string | null }[];
}

/** Why the torch form cannot run a tunable mechanism; null when the workers decide (cu-mask: ROCm only). */
function torchProblem(m: Mechanism): string | null {
  if (m === 'throttle') return THROTTLE_REASON;
  if (m === 'sm-partition') return SM_PARTITION_REASON;
  return null;
}

/** Everything decided before a run: form, device, HP/LP sides, knobs. Throws EBADUSAGE / EBADSCENARIO / ENOBACKEND. */
function prepare(s: Scenario, o: TuneOptions): Prepared {
  for (const m of o.mechanisms ?? []) {
    const why = knobProblem(m);
    if (why) throw usage(why);
  }
  const top = Math.max(...s.tasks.map((t) => t.priority));
  const hpTasks = s.tasks.filter((t) => t.priority === top);
  const lpTasks = s.tasks.filter((t) => t.priority !== top);
  if (!lpTasks.length) throw usage(`scenario ${s.name}: every task has priority ${top}: there is no low-priority side to give throughput to`);
  if (!hpTasks.some((t) => t.slo)) throw usage(`scenario ${s.name}: the high-priority task(s) ${hpTasks.map((t) => t.name).join(', ')} have no slo: nothing to meet (add e.g. slo: { percentile: 99, below: 50ms })`);
  const plan = planRun(s, o);
  let device: string | null = null;
  let computeUnits: number | null = null;
  let dev: Extract<ReturnType<typeof probeDevice>, { dev: unknown }>['dev'] | null = null;
  if (plan.probeBackend) {
    const d = probeDevice(plan.probeBackend);
    if ('reason' in d) throw new GpucoloError(d.reason, { code: 'ENOBACKEND' });
    dev = d.dev;
    computeUnits = d.dev.computeUnits;
    device = `${plan.probeBackend}:0 (${d.dev.name}, ${d.dev.computeUnits} compute units)`;
  }
  const asked = o.mechanisms ?? (Object.keys(TUNABLE) as Mechanism[]);
  const mechanisms = [...new Set(asked)].map((mechanism) => {
    const knob = knobFor(mechanism, s, { computeUnits });
    if (!plan.probeBackend || !dev) return { mechanism, knob, skipped: torchProblem(mechanism) };
    const problem = (level: number): string | null => probeMechanismProblem(mechanism, plan.probeBackend!, dev!, knob.setting(level).reserve ?? s.reserve);
    const within = acceptedLevels(knob, problem);
    return 'skipped' in within ? { mechanism, knob, skipped: within.skipped } : { mechanism, knob: within.knob, skipped: null };
  });
  if (mechanisms.every((m) => m.skipped)) {
    throw new GpucoloError(`no mechanism to tune runs here: ${mechanisms.map((m) => m.skipped).join('; ')}`, { code: 'ENOMECHANISM' });
  }
  return { plan, device, computeUnits, hpTasks, lpTasks, mechanisms };
}

/**
 * The knob narrowed to the levels the backend accepts (a CU mask on an MI300 must leave every XCC a
 * CU on both sides: fill.ts mechanismProblem), or why it accepts none. The accepted reserves are
 * one span of levels, so the narrowed knob is too.
 */
function acceptedLevels(knob: Knob, problem: (level: number) => string | null): { knob: Knob } | { skipped: string } {
  const ok: number[] = [];
  for (let level = 0; level < knob.levels; level++) if (problem(level) === null) ok.push(level);
  if (!ok.length) return { skipped: problem(0) ?? 'refused' };
  const lo = ok[0];
  const levels = ok[ok.length - 1] - lo + 1;
  if (lo === 0 && levels === knob.levels) return { knob };
  return { knob: { ...knob, levels, setting: (level) => knob.setting(level + lo), label: (level) => knob.label(level + lo) } };
}

/** Rounds a trial may take: enough for the strictest HP percentile SLO to be proven met with one request over it. */
function autoMaxRounds(hpTasks: Task[], perRound: Map<string, number>, confidence: number, fallback: number): number {
  let rounds = 0;
  for (const t of hpTasks) {
    if (t.slo?.percentile === undefined) continue;
    const n = perRound.get(t.name) ?? 0;
    if (!(n > 0)) continue;
    rounds = Math.max(rounds, Math.ceil(samplesToMeet(allowedOverShare(t.slo.percentile), confidence, 1) / n));
  }
  return Math.max(1, Math.min(MAX_AUTO_ROUNDS, rounds || fallback));
}

function emptyResult(s: Scenario, source: string, p: Prepared, o: Required<Pick<TuneOptions, 'budgetNs' | 'durationNs' | 'warmupNs' | 'confidence' | 'coarse' | 'maxRepeats'>>): TuneResult {
  return {
    schema: TUNE_SCHEMA,
    gpucoloVersion: VERSION,
    createdAt: new Date().toISOString(),
    partial: true,
    scenario: { name: s.name, source },
    backend: { form: p.plan.form, name: p.plan.backend, device: p.device, engine: p.plan.engine, why: p.plan.why },
    options: { budgetS: o.budgetNs / 1e9, durationS: o.durationNs / 1e9, warmupS: o.warmupNs / 1e9, maxRounds: null, confidence: o.confidence, coarse: o.coarse, maxRepeats: o.maxRepeats },
    hpTasks: p.hpTasks.map((t) => t.name),
    lpTasks: p.lpTasks.map((t) => t.name),
    baseline: { attempts: 0, tasks: [], quality: null },
    mechanisms: p.mechanisms.map(({ mechanism, knob, skipped }) => ({
      mechanism,
      knob: knob.name,
      levels: knob.levels,
      status: skipped ? 'skipped' : 'pending',
      ...(skipped ? { reason: skipped } : {}),
      highestMetLevel: null,
      lowestNotMetLevel: null,
      best: null,
      front: [],
    })),
    trials: [],
    recommendation: null,
    why: 'the search has not ended',
    budget: { budgetS: o.budgetNs / 1e9, usedS: 0, ranOut: false },
  };
}

interface Baseline {
  specs: PhaseSpec[];
  runs: PhaseRun[];
}

/** Every task alone once, repeated (at most maxRepeats more times) while its quality is not ok. */
async function runBaseline(s: Scenario, ctx: Omit<PhaseRunContext, 'scenario'>, o: { durationNs: number; maxRepeats: number; device: string | null; onRunMs: (ms: number) => void; now: () => number; onEvent?: TuneOptions['onEvent']; runPhase?: typeof runPhaseOnce; again?: string }, result: TuneResult): Promise<Baseline> {
  const specs = phaseSpecs(s, []).filter((p) => p.kind === 'standalone');
  let runs: PhaseRun[] = [];
  for (let attempt = 0; attempt <= o.maxRepeats; attempt++) {
    o.onEvent?.({ type: 'baseline', attempt, phases: specs.length, again: o.again ?? null });
    runs = [];
    for (const [position, phase] of specs.entries()) {
      const t0 = o.now();
      const run = await (o.runPhase ?? runPhaseOnce)({ phase, round: 1, position }, o.durationNs, { ...ctx, scenario: s });
      o.onRunMs(o.now() - t0);
      runs.push(run);
      if (ctx.signal?.aborted) throw new GpucoloError('interrupted during the baseline', { code: 'EINTERRUPTED' });
      if (run.status !== 'ok') throw new GpucoloError(`the baseline failed: ${phase.name}: ${run.status}${run.reason ? ` — ${run.reason}` : ''}`, { code: 'EBASELINE' });
    }
    const phases = assemblePhases(specs, runs, { form: ctx.form, device: o.device });
    const q = scenarioQuality(phases, runs, { rounds: 1 });
    result.baseline = {
      attempts: attempt + 1,
      tasks: phases.map((p) => ({ name: p.tasks[0].name, n: p.tasks[0].latencyMs.n, p99Ms: p.tasks[0].latencyMs.p99, throughput: p.tasks[0].throughput })),
      quality: { verdict: q.verdict, warnings: q.warnings },
    };
    if (q.verdict === 'ok') break;
  }
  return { specs, runs };
}

function summarize(summary: MechanismSummary, search: SearchResult<TuneTrial>, mine: TuneTrial[]): void {
  const trusted = mine.filter((t) => t.verdict === 'met' || t.verdict === 'missed' || t.verdict === 'inconclusive');
  summary.front = paretoFront(trusted).map((t) => ({ trial: t.id, label: t.label, hpP99Ms: t.hpP99Ms, lpShare: t.lpShare, verdict: t.verdict }));
  summary.best = search.best?.outcome.id ?? null;
  summary.highestMetLevel = search.highestMet;
  summary.lowestNotMetLevel = search.lowestNotMet;
}

/** The recommendation across mechanisms (the most LP share among each one's best), and why (or why none). */
function recommend(r: TuneResult, ranOut: boolean): Pick<TuneResult, 'recommendation' | 'why'> {
  const bests = r.mechanisms.flatMap((m) => (m.best === null ? [] : [r.trials.find((t) => t.id === m.best)!]));
  const out = ranOut ? 'the budget ran out; ' : '';
  if (!bests.length) {
    const why = r.mechanisms.map((m) => `${m.mechanism}: ${m.status === 'skipped' ? `skipped (${m.reason})` : mechanismWhyNone(r, m)}`).join('; ');
    return { recommendation: null, why: `${out}no setting was verified to meet every high-priority SLO: ${why}` };
  }
  bests.sort((a, b) => (b.lpShare ?? -1) - (a.lpShare ?? -1));
  const t = bests[0];
  const noisyBase = r.baseline.quality?.verdict === 'noisy' ? '; the baseline stayed noisy, so the low-priority shares are against a noisy standalone run' : '';
  return {
    recommendation: { mechanism: t.mechanism, setting: t.setting, label: t.label, trial: t.id, hpP99Ms: t.hpP99Ms, lpShare: t.lpShare, yaml: settingYaml(t.mechanism, t.setting, t.label) },
    why: `${out}${t.mechanism} ${t.label} (trial ${t.id}) meets every high-priority SLO with the most low-priority throughput among the verified settings${bests.length > 1 ? ` (${bests.slice(1).map((b) => `${b.mechanism} best: ${b.label}, LP ${b.lpShare === null ? '?' : `${(b.lpShare * 100).toFixed(0)}%`}`).join('; ')})` : ''}${noisyBase}`,
  };
}

function mechanismWhyNone(r: TuneResult, m: MechanismSummary): string {
  const mine = r.trials.filter((t) => t.mechanism === m.mechanism);
  if (!mine.length) return m.status === 'budget' ? 'no trial fit in the budget' : 'not run';
  const counts = new Map<string, number>();
  for (const t of mine) counts.set(t.verdict, (counts.get(t.verdict) ?? 0) + 1);
  return `${mine.length} trial(s), none met (${[...counts].map(([v, n]) => `${n} ${v}`).join(', ')})${m.status === 'budget' ? ', budget ran out' : ''}`;
}

async function writeReport(r: TuneResult, outDir: string, charts: boolean): Promise<{ files: string[]; chartErrors: string[] }> {
  const files = [path.join(outDir, 'tune.json')];
  const chartErrors: string[] = [];
  let chart: ChartFile | null = null;
  const spec = frontChartSpec(r);
  if (charts && !spec.spec) chart = { name: spec.name, svg: '', error: spec.empty };
  else if (charts) {
    // nothing to draw is said in report.md, not as an error (and leaves no empty charts/ behind)
    [chart] = await renderSpecs([spec], outDir, { png: true });
    if (chart.error) chartErrors.push(`${chart.name}: ${chart.error}`);
    if (chart.svg) files.push(chart.svg);
    if (chart.png && !chart.error) files.push(chart.png);
  }
  const md = path.join(outDir, 'report.md');
  writeFileAtomic(md, renderTuneMarkdown(r, chart));
  files.splice(1, 0, md);
  return { files, chartErrors };
}

/** A phase within the engine's limits, and a budget with room for the baseline and one co-run round (EBADUSAGE otherwise). */
function checkSpanAndBudget(tasks: number, spanNs: number, budgetNs: number): void {
  if (spanNs < MIN_DISPATCH_SPAN_NS || spanNs > MAX_DISPATCH_SPAN_NS) {
    throw usage(`warmup + duration is ${spanNs / 1e9} s: a phase lasts at least ${MIN_DISPATCH_SPAN_NS / 1e6} ms and at most ${MAX_DISPATCH_SPAN_NS / 3600e9} h`);
  }
  // the least it can take: every task alone once and one round of one trial (no drain or set-up counted)
  const leastMs = ((tasks + 1) * spanNs) / 1e6;
  if (budgetNs / 1e6 < leastMs) {
    throw usage(`--budget ${budgetNs / 1e9} s is too small for one trial: the baseline (${tasks} task(s) alone) and one co-run round take at least ${Math.ceil(leastMs / 1e3)} s (warmup + duration per run)`);
  }
}

/** The output directory and a first tune.json, before anything runs; a directory made here and left empty by a failure goes again. */
function firstWrite(outDir: string, jsonPath: string, result: TuneResult): void {
  const dir = lazyDir(outDir);
  try {
    dir.ensure();
    writeJsonAtomic(jsonPath, result);
  } catch (err) {
    dir.removeIfEmpty();
    throw err;
  }
}

/** Runs the tune (see the file comment) and writes tune.json, report.md and the front chart into outDir. */
export async function tuneScenario(s: Scenario, source: string, o: TuneOptions): Promise<TuneRunResult> {
  const now = o.now ?? (() => Date.now());
  const durationNs = o.durationNs ?? s.duration;
  const warmupNs = o.warmupNs ?? s.warmup;
  const budgetNs = o.budgetNs ?? DEFAULT_BUDGET_NS;
  const confidence = o.confidence ?? DEFAULT_CONFIDENCE;
  const coarse = o.coarse ?? DEFAULT_COARSE;
  const maxRepeats = o.maxRepeats ?? DEFAULT_MAX_REPEATS;
  const p = prepare(s, o);
  checkSpanAndBudget(s.tasks.length, warmupNs + durationNs, budgetNs);
  const budget = new Budget(budgetNs / 1e6, now);
  const result = emptyResult(s, source, p, { budgetNs, durationNs, warmupNs, confidence, coarse, maxRepeats });
  const jsonPath = path.join(o.outDir, 'tune.json');
  firstWrite(o.outDir, jsonPath, result);
  const save = (): void => {
    result.budget.usedS = budget.usedMs() / 1e3;
    writeJsonAtomic(jsonPath, result);
  };
  o.onEvent?.({ type: 'start', form: p.plan.form, backend: p.plan.backend, device: p.device, mechanisms: p.mechanisms.map((m) => ({ mechanism: m.mechanism, levels: m.knob.levels, skipped: m.skipped })), budgetMs: budget.totalMs });

  let longestRunMs = (warmupNs + durationNs) / 1e6;
  const onRunMs = (ms: number): void => {
    longestRunMs = Math.max(longestRunMs, ms);
  };
  const ctx: Omit<PhaseRunContext, 'scenario'> = {
    form: p.plan.form,
    probeBackend: p.plan.probeBackend,
    engine: p.plan.engine,
    warmupNs,
    python: o.python,
    signal: o.signal,
    hostLoad: o.hostLoad ?? defaultHostLoad,
    gpuSharing: o.gpuSharing ?? defaultGpuSharing,
  };
  let baseline: Baseline;
  try {
    baseline = await runBaseline(s, ctx, { durationNs, maxRepeats, device: p.device, onRunMs, now, onEvent: o.onEvent, runPhase: o.runPhase }, result);
  } finally {
    save();
  }
  const perRound = new Map(result.baseline.tasks.map((t) => [t.name, t.n]));
  const maxRounds = o.maxRounds ?? autoMaxRounds(p.hpTasks, perRound, confidence, s.rounds);
  result.options.maxRounds = maxRounds;
  const env: Omit<TrialEnv, 'budget'> = {
    scenario: s,
    form: p.plan.form,
    device: p.device,
    run: ctx,
    durationNs,
    maxRounds,
    confidence,
    standaloneSpecs: baseline.specs,
    baselineRuns: baseline.runs,
    hpTasks: p.hpTasks,
    roundMs: () => longestRunMs,
    onRunMs,
    runPhase: o.runPhase,
  };
  // a baseline still noisy after its repeats is measured again (once) before each later mechanism,
  // and before a trial is repeated for a co-run figure impossible against it (forced), when the
  // budget has room: every share and co-run check of a trial is against it
  const remeasure = async (force: string | null): Promise<void> => {
    if ((force === null && result.baseline.quality?.verdict !== 'noisy') || budget.remainingMs() < (baseline.specs.length + 1) * longestRunMs) return;
    const before = result.baseline.attempts;
    const again = await runBaseline(s, ctx, { durationNs, maxRepeats: 0, device: p.device, onRunMs, now, onEvent: o.onEvent, runPhase: o.runPhase, again: force ?? 'it stayed noisy' }, result);
    result.baseline.attempts += before;
    env.baselineRuns = again.runs;
    save();
  };
  const ranOut = await searchAll(p, result, env, budget, { coarse, maxRepeats, signal: o.signal, onEvent: o.onEvent, save, remeasure });
  result.partial = o.signal?.aborted === true;
  result.budget.ranOut = ranOut;
  Object.assign(result, recommend(result, ranOut));
  save();
  const { files, chartErrors } = await writeReport(result, o.outDir, o.charts !== false);
  o.onEvent?.({ type: 'done', result, files, chartErrors });
  return { result, files };
}

/** The mechanisms one after the other, each with an equal part of what is left; true when the budget ran out. */
async function searchAll(p: Prepared, result: TuneResult, env: Omit<TrialEnv, 'budget'>, budget: Budget, o: { coarse: number; maxRepeats: number; signal?: AbortSignal; onEvent?: TuneOptions['onEvent']; save: () => void; remeasure: (force: string | null) => Promise<void> }): Promise<boolean> {
  let ranOut = false;
  const todo = p.mechanisms.filter((m) => !m.skipped);
  for (const [i, { mechanism, knob }] of todo.entries()) {
    const summary = result.mechanisms.find((m) => m.mechanism === mechanism)!;
    if (o.signal?.aborted) {
      summary.status = 'interrupted';
      continue;
    }
    if (i > 0) await o.remeasure(null);
    const part = budget.part(budget.remainingMs() / (todo.length - i));
    summary.status = 'running';
    const mine: TuneTrial[] = [];
    const search = await searchKnob<TuneTrial>({
      levels: knob.levels,
      coarse: o.coarse,
      maxRepeats: o.maxRepeats,
      budget: part,
      minTrialMs: env.roundMs,
      signal: o.signal,
      trial: async (level, attempt) => {
        // "the host changed between phases": the baseline, not this setting, is the suspect
        const last = mine[mine.length - 1];
        if (attempt > 0 && last?.quality.warnings.some((w) => AGAINST_BASELINE.has(w.code))) await o.remeasure('the last trial\'s co-run figures were impossible against it');
        const id = result.trials.length + 1;
        const meta = { id, mechanism, level, attempt, setting: knob.setting(level), label: knob.label(level) };
        o.onEvent?.({ type: 'trial-start', id, mechanism, label: meta.label, attempt });
        const t = await runTrial({ ...env, budget: part, onRound: (round, maxRounds) => o.onEvent?.({ type: 'round', id, round, maxRounds }) }, meta);
        result.trials.push(t);
        mine.push(t);
        o.onEvent?.({ type: 'trial-end', trial: t });
        o.save();
        return t;
      },
    });
    summarize(summary, search, mine);
    summary.status = search.stop === 'done' ? 'done' : search.stop;
    if (search.stop === 'skipped') summary.reason = mine[mine.length - 1]?.why;
    if (search.stop === 'budget') ranOut = true;
    o.save();
  }
  return ranOut;
}
