/**
 * Runs a scenario: every task standalone, all tasks co-run with `none`, then co-run with each
 * mechanism asked for, each phase `rounds` times in an order rotated every round (rounds.ts); then
 * the pooled statistics (pool.ts), the quality block (quality.ts), verdicts and the report.
 * results.json is rewritten (atomically) after every run of a phase and marked partial until the
 * run is complete, so a crash or Ctrl-C leaves a valid file with what was measured.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { GpucoloError } from '../errors.js';
import { VERSION } from '../version.js';
import { listBackends, probeChoice, TS_BACKEND_NOTE } from '../dispatch/index.js';
import type { DispatchEngine } from '../native.js';
import { renderCharts, renderMarkdown, writeFileAtomic, writeJsonAtomic } from '../report/index.js';
import { probeDevice, type ProbeBackend } from './probe-driver.js';
import { preemptionLatency, sloAfterQuality, successVerdicts } from './summarize.js';
import type { Form, Mechanism, Scenario, Task } from './schema.js';
import { RESULTS_SCHEMA, type PhaseResult, type PhaseRound, type Results } from './types.js';
import { lazyDir } from '../fs-dirs.js';
import { MAX_ARRIVALS, expectedArrivals } from './arrivals.js';
import { phaseSpecs, runSchedule, type PhaseSpec, type PlannedRun } from './rounds.js';
import { runPhaseOnce, type PhaseRun } from './phase-run.js';
import { assemblePhases } from './pool.js';
import { scenarioQuality } from './quality.js';
import { CLOSED_LOOP_CAP, closedLoopDurationNs, scheduledDurationNs } from './min-samples.js';
import { MAX_DISPATCH_SPAN_NS } from '../limits.js';
import { defaultGpuSharing, defaultHostLoad, type GpuSharingCheck, type HostLoadFactory } from './host-watch.js';

export interface RunScenarioOptions {
  /** auto: torch on a GPU host where PyTorch imports and every task has a torch form, else probe */
  form?: Form | 'auto';
  backend?: Scenario['backend'];
  durationNs?: number;
  warmupNs?: number;
  mechanisms?: Mechanism[];
  /** every phase this many times, the order rotated each round (default: the scenario's, 2) */
  rounds?: number;
  /** lengthen phases until every task's pooled sample has this many requests (min-samples.ts) */
  minSamples?: number;
  outDir: string;
  /** SVG + PNG charts (default true) */
  charts?: boolean;
  python?: string;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  /** host-load figures per run of a phase (default: /proc/stat); tests inject figures here */
  hostLoad?: HostLoadFactory;
  /** other processes on the GPU per run (default: KFD on AMD, unknown on NVIDIA); tests inject here */
  gpuSharing?: GpuSharingCheck;
}

export type RunEvent =
  | {
      type: 'start';
      form: Form;
      backend: string;
      why: string;
      /** the dispatch engine of the probe form ('ts': the pure-TS cpu backend, coarser timings); null for the torch form, which dispatches nothing */
      engine: DispatchEngine | null;
      /** why that engine, one line ("native core loaded", "native core not loaded (...)", "GPUCOLO_DISPATCH_ENGINE=ts"); null for the torch form */
      engineWhy: string | null;
      phases: string[];
      /** rounds every phase runs */
      rounds: number;
    }
  | { type: 'phase-start'; phase: string; index: number; total: number; spanNs: number; round: number; rounds: number; extension: boolean }
  | { type: 'progress'; phase: string; elapsedNs: number; completed: number; task: string; p99Ns: number | null }
  /** `phase`: the phase pooled over its runs so far; `run`: this run's own figures */
  | { type: 'phase-end'; phase: PhaseResult; run: PhaseRound }
  | { type: 'report'; files: string[]; chartErrors: string[] };

export interface RunScenarioResult {
  results: Results;
  outDir: string;
  files: string[];
}

interface Plan {
  form: Form;
  backend: string;
  probeBackend: ProbeBackend | null;
  why: string;
  /** probe form: the dispatch engine and why; null for the torch form */
  engine: DispatchEngine | null;
  engineWhy: string | null;
}

/** Does PyTorch import with this python? (no shell; torch imports in ~2 s) */
function pythonHasTorch(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

/** Which form and backend run, and why (said on screen and in results.json). */
export function planRun(s: Scenario, o: Pick<RunScenarioOptions, 'form' | 'backend' | 'python'>): Plan {
  const allProbe = s.tasks.every((t) => t.probe);
  const allTorch = s.tasks.every((t) => t.torch);
  const want = o.form ?? 'auto';
  const missing = (f: Form): string =>
    s.tasks
      .filter((t) => !t[f])
      .map((t) => t.name)
      .join(', ');
  if (want === 'probe' && !allProbe) throw new GpucoloError(`scenario ${s.name}: --form probe, but task(s) ${missing('probe')} have no probe workload`, { code: 'EBADSCENARIO' });
  if (want === 'torch' && !allTorch) throw new GpucoloError(`scenario ${s.name}: --form torch, but task(s) ${missing('torch')} have no torch workload`, { code: 'EBADSCENARIO' });
  if (!allProbe && !allTorch) throw new GpucoloError(`scenario ${s.name}: every task needs the same form (probe or torch); probe missing in ${missing('probe')}, torch missing in ${missing('torch')}`, { code: 'EBADSCENARIO' });
  const probe = (why: string): Plan => {
    const r = probeChoice(o.backend ?? s.backend, listBackends());
    return { form: 'probe', backend: r.backend, probeBackend: r.backend, why: `${why}; ${r.why}`, engine: r.engine, engineWhy: r.engineWhy };
  };
  const torch = (why: string): Plan => ({ form: 'torch', backend: 'torch', probeBackend: null, why, engine: null, engineWhy: null });
  if (want === 'probe') return probe('probe form as asked');
  if (want === 'torch') return torch('torch form as asked');
  // auto
  if (!allTorch) return probe('auto: the tasks have only a probe form');
  const python = o.python ?? process.env.GPUCOLO_PYTHON ?? '/usr/bin/python3';
  const gpu = listBackends().some((b) => (b.name === 'cuda' || b.name === 'hip') && b.available && b.devices.length > 0);
  if (!allProbe) return torch('auto: the tasks have only a torch form');
  if (!gpu) return probe('no GPU here, so the probe form');
  if (!pythonHasTorch(python)) return probe(`auto: PyTorch does not import with ${python}, so the probe form`);
  return torch('auto: a GPU and PyTorch are here, so the torch form');
}

function hostInfo(): Results['host'] {
  return { hostname: os.hostname(), os: `${os.type()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length, node: process.version };
}

const usable = (r: PhaseRun): boolean => r.status === 'ok' || r.status === 'partial';

/** The longest measured time a phase may have without a scheduled task exceeding MAX_ARRIVALS. */
function arrivalsCapNs(tasks: Task[], warmupNs: number): number {
  // a lengthened phase is still one dispatch run: warm-up + duration within the engine's longest
  let cap = MAX_DISPATCH_SPAN_NS - warmupNs;
  for (const t of tasks) {
    if (t.arrival.kind === 'closed-loop' || t.arrival.kind === 'replay') continue;
    const perS = expectedArrivals(t.arrival, 1e9);
    if (perS > 0) cap = Math.min(cap, (MAX_ARRIVALS / perS) * 1e9 - warmupNs);
  }
  return cap;
}

interface DurationPlan {
  baseNs: number;
  warmupNs: number;
  rounds: number;
  minSamples: number | null;
  /** per phase: what its scheduled tasks need (min-samples.ts), at least the base */
  scheduled: Map<string, number>;
}

/** The scheduled part of --min-samples, before anything runs; notes for replays that cannot reach it. */
function planScheduled(specs: PhaseSpec[], baseNs: number, warmupNs: number, rounds: number, minSamples: number | null): { plan: Map<string, number>; notes: string[] } {
  const plan = new Map<string, number>();
  const notes: string[] = [];
  for (const p of specs) {
    let d = baseNs;
    if (minSamples) {
      for (const t of p.tasks) {
        const need = scheduledDurationNs(t.arrival, warmupNs, Math.ceil(minSamples / rounds));
        if (!need) continue;
        const longest = MAX_DISPATCH_SPAN_NS - warmupNs;
        d = Math.max(d, Math.min(need.durationNs, longest));
        if (!need.reachable) notes.push(`${t.name}: its replay schedule has fewer than ${Math.ceil(minSamples / rounds)} arrivals per round: --min-samples ${minSamples} cannot be reached`);
        else if (need.durationNs > longest) notes.push(`${t.name}: --min-samples ${minSamples} would need phases longer than ${MAX_DISPATCH_SPAN_NS / 3600e9} h (the longest one run may take): capped there`);
      }
    }
    plan.set(p.name, d);
  }
  return { plan, notes: [...new Set(notes)] };
}

/** Closed-loop tasks of a phase short of --min-samples after `done`, with their measured rates. */
function closedLoopShort(spec: PhaseSpec, done: PhaseRun[], minSamples: number): { need: number; ratePerS: number }[] {
  const good = done.filter(usable);
  if (!good.length) return [];
  const out: { need: number; ratePerS: number }[] = [];
  for (const t of spec.tasks) {
    if (t.arrival.kind !== 'closed-loop') continue;
    let n = 0;
    let ns = 0;
    for (const r of good) {
      const smp = r.samples.find((x) => x.task === t.name);
      if (!smp) continue;
      n += smp.latencyNs.length + (smp.censoredNs?.length ?? 0);
      ns += smp.measuredNs;
    }
    if (n < minSamples && ns > 0) out.push({ need: minSamples - n, ratePerS: n / (ns / 1e9) });
  }
  return out;
}

/** The measured time of the next run of `spec`: the scheduled plan, lengthened for closed loops from what earlier runs measured. */
function durationFor(spec: PhaseSpec, done: PhaseRun[], dp: DurationPlan, runsLeft: number): number {
  let d = dp.scheduled.get(spec.name) ?? dp.baseNs;
  if (!dp.minSamples || done.length === 0) return d;
  const cap = Math.min(CLOSED_LOOP_CAP * dp.baseNs, arrivalsCapNs(spec.tasks, dp.warmupNs));
  for (const short of closedLoopShort(spec, done, dp.minSamples)) {
    const x = closedLoopDurationNs({ need: short.need, runsLeft, ratePerS: short.ratePerS, minNs: dp.baseNs, capNs: Math.max(dp.baseNs, cap) });
    if (x !== null) d = Math.max(d, x);
  }
  return d;
}

/** What runScenario's steps share: the settings resolved once, the results being built, the runs so far. */
interface ScenarioRun {
  s: Scenario;
  source: string;
  o: RunScenarioOptions;
  plan: ReturnType<typeof planRun>;
  durationNs: number;
  warmupNs: number;
  mechanisms: Mechanism[];
  rounds: number;
  minSamples: number | null;
  specs: PhaseSpec[];
  scheduled: ReturnType<typeof planScheduled>;
  dp: DurationPlan;
  resultsPath: string;
  /** the device and GPU named in results (the torch form learns them from its workers) */
  gpu: string | null;
  device: string | null;
  results: Results;
  runs: PhaseRun[];
  queue: { planned: PlannedRun; extension: boolean }[];
  interrupted: boolean;
}

/** Runs the scenario and writes results.json, report.md and charts into outDir. */
export async function runScenario(s: Scenario, source: string, o: RunScenarioOptions): Promise<RunScenarioResult> {
  const st = resolveRun(s, source, o);
  describeBackend(st);
  st.results = initialResults(st);
  startOutput(st);
  st.queue = runSchedule(st.specs, st.rounds).map((planned) => ({ planned, extension: false }));
  for (let index = 0; index < st.queue.length; index++) {
    if (o.signal?.aborted) {
      st.interrupted = true;
      break;
    }
    if ((await runQueued(st, index)) === 'stop') {
      st.interrupted = true;
      break;
    }
  }
  return finishRun(st);
}

/** Resolves the settings against the options, validates them, and refuses a task with too many arrivals. */
function resolveRun(s: Scenario, source: string, o: RunScenarioOptions): ScenarioRun {
  const plan = planRun(s, o);
  const durationNs = o.durationNs ?? s.duration;
  const warmupNs = o.warmupNs ?? s.warmup;
  const mechanisms = o.mechanisms ?? s.mechanisms;
  const rounds = o.rounds ?? s.rounds;
  const minSamples = o.minSamples ?? s.minSamples ?? null;
  if (!Number.isInteger(rounds) || rounds < 1) throw new GpucoloError(`rounds must be an integer >= 1 (got ${rounds})`, { code: 'EBADSCENARIO' });
  if (minSamples !== null && (!Number.isInteger(minSamples) || minSamples < 1)) throw new GpucoloError(`min-samples must be an integer >= 1 (got ${minSamples})`, { code: 'EBADSCENARIO' });
  const specs = phaseSpecs(s, mechanisms);
  const scheduled = planScheduled(specs, durationNs, warmupNs, rounds, minSamples);
  const dp: DurationPlan = { baseNs: durationNs, warmupNs, rounds, minSamples, scheduled: scheduled.plan };
  // refused before anything is written: a results.json already in outDir stays as it is
  for (const t of s.tasks) {
    const longest = Math.max(...specs.filter((p) => p.tasks.includes(t)).map((p) => scheduled.plan.get(p.name) ?? durationNs));
    const n = expectedArrivals(t.arrival, warmupNs + longest);
    if (n > MAX_ARRIVALS) {
      throw new GpucoloError(`${source}: task "${t.name}": about ${Math.round(n).toExponential(2)} arrivals in one phase of ${(warmupNs + longest) / 1e9} s (warmup + duration), more than ${MAX_ARRIVALS}: lower the rate or the duration${minSamples ? ' (or --min-samples)' : ''}`, { code: 'EBADSCENARIO' });
    }
  }
  const resultsPath = path.join(o.outDir, 'results.json');
  return {
    s, source, o, plan, durationNs, warmupNs, mechanisms, rounds, minSamples, specs, scheduled, dp, resultsPath,
    gpu: null, device: null, results: undefined as unknown as Results, runs: [], queue: [], interrupted: false,
  };
}

/** Probe form: opens the device once, to name it (and to fail before anything is written). */
function describeBackend(st: ScenarioRun): void {
  const { plan } = st;
  if (plan.probeBackend) {
    const d = probeDevice(plan.probeBackend);
    if ('reason' in d) throw new GpucoloError(d.reason, { code: 'ENOBACKEND' });
    st.gpu = plan.probeBackend === 'cpu' ? null : d.dev.name;
    st.device = `${plan.probeBackend}:0 (${d.dev.name}, ${d.dev.computeUnits} compute units)`;
  }
}

/** The results before any run: settings, host and backend, marked partial. */
function initialResults(st: ScenarioRun): Results {
  const { s, plan, durationNs, warmupNs, mechanisms, rounds, minSamples } = st;
  return {
    schema: RESULTS_SCHEMA,
    gpucoloVersion: VERSION,
    createdAt: new Date().toISOString(),
    partial: true,
    scenario: { name: s.name, source: st.source, form: plan.form, config: { ...s, duration: durationNs, warmup: warmupNs, mechanisms, rounds, ...(minSamples ? { minSamples } : {}) } },
    host: hostInfo(),
    backend: {
      name: plan.backend,
      device: st.device,
      gpu: st.gpu,
      why: plan.why,
      ...(plan.engine ? { engine: plan.engine, engineWhy: plan.engineWhy ?? '' } : {}),
      ...(plan.engine === 'ts' ? { note: TS_BACKEND_NOTE } : {}),
    },
    rounds,
    minSamples,
    quality: { verdict: 'ok', warnings: [] },
    phases: [],
    success: [],
  };
}

/** Announces the start and writes the first (empty, partial) results.json, creating outDir. */
function startOutput(st: ScenarioRun): void {
  const { o, plan } = st;
  o.onEvent?.({ type: 'start', form: plan.form, backend: plan.backend, why: plan.why, engine: plan.engine, engineWhy: plan.engineWhy, phases: st.specs.map((p) => p.name), rounds: st.rounds });
  // the output directory appears with the first result: a run that fails before it leaves nothing
  const outDir = lazyDir(o.outDir);
  try {
    outDir.ensure();
    writeJsonAtomic(st.resultsPath, st.results);
  } catch (err) {
    outDir.removeIfEmpty();
    throw err;
  }
}

/** Phases, quality and verdicts from every run so far, into results. */
function assembleResults(st: ScenarioRun): void {
  const { specs, runs, plan, results, minSamples, rounds, s } = st;
  const phases = assemblePhases(specs, runs, { form: plan.form, device: results.backend.device });
  const quality = scenarioQuality(phases, runs, { minSamples, rounds });
  for (const n of st.scheduled.notes) quality.warnings.push({ code: 'too-few-samples', message: n });
  if (quality.warnings.length) quality.verdict = 'noisy';
  for (const p of phases) for (const t of p.tasks) t.slo = sloAfterQuality(t, p.name, quality);
  results.phases = phases;
  results.quality = quality;
  results.success = successVerdicts(s.success, phases, quality);
  results.preemption = preemptionLatency(s.tasks, phases, plan.form, quality);
}

/** Runs queue[index] (or repeats a skipped phase's result), records it and writes results; 'stop' when interrupted. */
async function runQueued(st: ScenarioRun, index: number): Promise<'stop' | 'next'> {
  const { o, plan, s, queue, runs, results, rounds, minSamples, durationNs, warmupNs } = st;
  const { planned, extension } = queue[index];
  const done = runs.filter((r) => r.phase.name === planned.phase.name);
  // a phase skipped once is skipped in every round (its reason does not change between rounds;
  // the torch form would load every worker again only to find that out)
  const skipped = done.find((r) => r.status === 'skipped');
  const runDurationNs = extension
    ? closedLoopDurationNs({ ...closedLoopShort(planned.phase, done, minSamples!)[0], runsLeft: 1, minNs: durationNs, capNs: Math.max(durationNs, Math.min(CLOSED_LOOP_CAP * durationNs, arrivalsCapNs(planned.phase.tasks, warmupNs))) })!
    : durationFor(planned.phase, done, st.dp, rounds - done.filter((r) => !r.extension).length);
  o.onEvent?.({ type: 'phase-start', phase: planned.phase.name, index, total: queue.length, spanNs: warmupNs + runDurationNs, round: planned.round, rounds, extension });
  let run: PhaseRun;
  if (skipped) {
    run = { ...skipped, ...planned, extension, startedAt: new Date().toISOString(), host: null, gpu: null, notes: [...skipped.notes] };
  } else {
    run = await runPhaseOnce(planned, runDurationNs, {
      form: plan.form,
      probeBackend: plan.probeBackend,
      engine: plan.engine,
      scenario: s,
      warmupNs,
      python: o.python,
      signal: o.signal,
      hostLoad: o.hostLoad ?? defaultHostLoad,
      gpuSharing: o.gpuSharing ?? defaultGpuSharing,
      onProgress: (p) => o.onEvent?.({ type: 'progress', phase: planned.phase.name, elapsedNs: p.elapsedNs, completed: p.completed, task: p.task, p99Ns: p.p99Ns }),
    }, extension);
  }
  for (const w of run.workers ?? []) {
    st.device ??= w.device;
    if (w.deviceName && w.device !== 'cpu') st.gpu ??= w.deviceName;
    if (w.torch && !results.host.torch) results.host.torch = w.torch;
  }
  if (plan.form === 'torch') {
    results.backend.device = st.device;
    results.backend.gpu = st.gpu;
  }
  runs.push(run);
  // --min-samples: a closed-loop task still short after the phase's last round gets one more run, right away
  if (minSamples && !extension && planned.round === rounds && usable(run)) {
    const all = runs.filter((r) => r.phase.name === planned.phase.name);
    if (closedLoopShort(planned.phase, all, minSamples).length) queue.splice(index + 1, 0, { planned, extension: true });
  }
  assembleResults(st);
  writeJsonAtomic(st.resultsPath, results);
  const phase = results.phases.find((p) => p.name === planned.phase.name)!;
  o.onEvent?.({ type: 'phase-end', phase, run: phase.rounds![phase.rounds!.length - 1] });
  // a partial run is an interrupted one when the run was aborted; otherwise it ran to its end
  // with a task that completed nothing (completions.ts), and the next phases still run
  return run.status === 'partial' && o.signal?.aborted ? 'stop' : 'next';
}

/** The final results.json (partial only if interrupted), the charts and report.md. */
async function finishRun(st: ScenarioRun): Promise<RunScenarioResult> {
  const { o, results, resultsPath } = st;
  assembleResults(st);
  results.partial = st.interrupted;
  writeJsonAtomic(resultsPath, results);
  const files = [resultsPath];
  const chartErrors: string[] = [];
  let charts: Awaited<ReturnType<typeof renderCharts>> = [];
  if (o.charts !== false) {
    charts = await renderCharts(results, o.outDir, { png: true });
    for (const c of charts) {
      if (c.error) chartErrors.push(`${c.name}: ${c.error}`);
      if (c.svg) files.push(c.svg);
      if (c.png && !c.error) files.push(c.png);
    }
  }
  const md = path.join(o.outDir, 'report.md');
  writeFileAtomic(md, renderMarkdown(results, charts));
  files.splice(1, 0, md);
  o.onEvent?.({ type: 'report', files, chartErrors });
  return { results, outDir: o.outDir, files };
}
