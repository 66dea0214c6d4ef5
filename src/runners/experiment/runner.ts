/**
 * Training experiments: experiment file + models file -> planned runs -> one ExperimentResult
 * file per run, plus summary.md / summary.csv over the runs (rewritten after each run).
 *
 *   default / mutation: the foreground runs alone, one run after another
 *   parallel:           a background loop starts first (background.ts), the foreground runs once
 *                       it has started, the background is stopped after it (also on errors and
 *                       interrupts: a finally path)
 *
 * Every foreground run: its own process group, retries (job.ts), a timeout, energy sampled per
 * attempt (energy-metrics.ts; the successful or last attempt's figures are the result's), the
 * performance metrics extracted from the successful attempt's log. With estimate_split the
 * foreground is run once more alone and an idle baseline is sampled for as long, as an estimate
 * of who used what (energy is per device, not per process).
 *
 * Files (results dir R, run id X, timestamp T like 20261124T003000Z):
 *   R/T_X.json                         ExperimentResult (atomic)
 *   R/logs/X/attempt_<n>.log           each foreground attempt; solo.log for estimate_split
 *   R/background_logs_X/run_<n>.log    each background run
 *   R/energy_X/gpu_power.csv, cpu_energy.csv   raw energy samples of every phase
 *   R/summary.md, R/summary.csv
 *
 * Interrupt (opts.signal aborted; the CLI aborts on SIGINT/SIGTERM): the foreground and
 * background groups are stopped, the governor restored, the current run's result written with
 * training_success false and error_message "interrupted", and no further run starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode, errnoText, oneLine } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { EnergySourceName } from '../../energy/index.js';
import { Supervisor, supervisorWithRegistry, writeJsonAtomic, writeTextAtomic, type RegisteredSupervisor, type SupervisedChild } from '../supervisor/index.js';
import { BackgroundLoop } from './background.js';
import { defaultModelsPath, loadExperiment, loadModels, type ExperimentFile } from './config.js';
import { energyMetrics, estimateNote, startEnergyRecording, unavailableEnergyMetrics, writeEnergyCsv, type EnergyRecording, type LabelledRecording } from './energy-metrics.js';
import { setGovernor, type GovernorSetting } from './governor.js';
import { DEFAULT_GRACE_MS, jobSucceeded, runJob, runWithRetries } from './job.js';
import { extractMetricsBounded } from './metrics.js';
import { INPUT_LIMITS, formatBytes, readInputTail } from '../../input-file.js';
import { missingRepoDirs, planRuns } from './plan.js';
import { summaryCsv, summaryMarkdown } from './summary.js';
import { EXPERIMENT_RESULT_SCHEMA, type EnergyMetrics, type ExperimentResult, type JobOutcome, type PlannedRun } from './types.js';
import { makeDirs, missingDirs, removeEmptyDirs } from '../../fs-dirs.js';

// ---- loading --------------------------------------------------------------------------------------

export interface LoadedExperiment {
  experiment: ExperimentFile;
  /** the experiment file as given */
  file: string;
  modelsFile: string;
  runs: PlannedRun[];
  /** repository directories that do not exist (the runs would fail to start) */
  missingDirs: string[];
}

export interface LoadOptions {
  /** models file (default: next to the experiment file, see defaultModelsPath) */
  models?: string;
  /** overrides the file's seed */
  seed?: number;
}

/** Reads both files and plans every run. Throws GpucoloError (code EBADCONFIG, ENOENT, ...) for bad input. */
export function loadExperimentPlan(file: string, opts: LoadOptions = {}): LoadedExperiment {
  const { experiment } = loadExperiment(file);
  const modelsFile = opts.models ?? defaultModelsPath(file);
  const { models, dir } = loadModels(modelsFile);
  const runs = planRuns(experiment, models, dir, { ...(opts.seed !== undefined ? { seed: opts.seed } : {}), file, modelsFile });
  return { experiment, file, modelsFile, runs, missingDirs: missingRepoDirs(runs) };
}

// ---- events -----------------------------------------------------------------------------------------

export type ExperimentPhase = 'background-start' | 'foreground' | 'background-stop' | 'foreground-solo' | 'idle-baseline';

export type ExperimentEvent =
  | { type: 'warning'; message: string }
  | { type: 'run-start'; index: number; total: number; run: PlannedRun }
  | { type: 'phase'; index: number; total: number; run: PlannedRun; phase: ExperimentPhase; attempt?: number }
  | { type: 'child'; index: number; run: PlannedRun; role: 'foreground' | 'background' | 'foreground-solo'; child: SupervisedChild; attempt: number }
  | { type: 'attempt-end'; index: number; total: number; run: PlannedRun; attempt: number; outcome: JobOutcome }
  | { type: 'run-end'; index: number; total: number; run: PlannedRun; result: ExperimentResult; file: string };

// ---- running ----------------------------------------------------------------------------------------

export interface ExperimentRunOptions {
  /** where results go (created) */
  resultsDir: string;
  /** the supervisor to start children with; default: a new one with a run registry (see registryFile) */
  supervisor?: Supervisor;
  /** run registry file for a supervisor made here (default: per user, defaultRegistryFile) */
  registryFile?: string;
  /** SIGTERM -> SIGKILL grace for timeouts, background stops and interrupts, ms (default 10000) */
  graceMs?: number;
  /** sysfs root for the governor and the energy sources (default /sys) */
  sysfsRoot?: string;
  /** energy sources (default all of src/energy's) */
  energySources?: readonly EnergySourceName[];
  /** abort = interrupt: stop everything, write the current run as interrupted, start nothing more */
  signal?: AbortSignal;
  onEvent?: (e: ExperimentEvent) => void;
  /** title of summary.md (default: the experiment name) */
  title?: string;
  /** clock for timestamps (tests) */
  now?: () => Date;
}

export interface ExperimentRunReport {
  results: ExperimentResult[];
  /** result files, in run order */
  files: string[];
  summaryFiles: { md: string; csv: string };
  interrupted: boolean;
  /** runs whose training failed (interrupted included) */
  failed: number;
  warnings: string[];
  registryFile: string | undefined;
}

/** 20261124T003000Z */
export function compactTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const sleepAbortable = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * A supervisor with a run registry for an experiment. With the default registry location the
 * file is removed by dispose() once nothing recorded in it is alive (an explicit file is kept).
 */
export function experimentSupervisor(opts: { registryFile?: string; graceMs?: number } = {}): RegisteredSupervisor {
  const runId = `experiment-${compactTimestamp(new Date())}-${process.pid}`;
  return supervisorWithRegistry({ runId, registryFile: opts.registryFile, graceMs: opts.graceMs ?? DEFAULT_GRACE_MS });
}

/**
 * Fails before any run when the results directory cannot take a file (a night of training must
 * not end in "cannot write"): creates and removes a probe file.
 */
function assertWritable(dir: string): void {
  const probe = path.join(dir, `.gpucolo-write-check-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe, { force: true });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot write to the results directory ${dir}: ${errnoText(code)}`, { code, path: dir });
  }
}

/**
 * The name of a run's log and energy directories: the experiment id, or, when an earlier
 * invocation already left files under that name in the same results directory, the id with this
 * run's start time, so that a re-run never overwrites the logs an earlier result points to.
 */
function runFilesTag(resultsDir: string, id: string, started: Date): string {
  const taken = (tag: string): boolean => ['logs/' + tag, `energy_${tag}`, `background_logs_${tag}`].some((d) => fs.existsSync(path.join(resultsDir, d)));
  if (!taken(id)) return id;
  const base = `${id}.${compactTimestamp(started)}`;
  let tag = base;
  for (let n = 2; taken(tag); n++) tag = `${base}-${n}`;
  return tag;
}

/** Runs every planned run in order. Never rejects for what a training program does. */
export async function runExperiment(loaded: LoadedExperiment, opts: ExperimentRunOptions): Promise<ExperimentRunReport> {
  const { experiment, runs } = loaded;
  const resultsDir = path.resolve(opts.resultsDir);
  // created here; removed again (when still empty) if the experiment ends without a result
  const createdDirs = missingDirs(resultsDir);
  makeDirs(resultsDir);
  try {
    assertWritable(resultsDir);
  } catch (err) {
    removeEmptyDirs(createdDirs);
    throw err;
  }
  const emit = (e: ExperimentEvent): void => opts.onEvent?.(e);
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    emit({ type: 'warning', message });
  };
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const own = opts.supervisor ? null : experimentSupervisor({ registryFile: opts.registryFile, graceMs });
  const supervisor = opts.supervisor ?? own!.supervisor;
  const report: ExperimentRunReport = {
    results: [],
    files: [],
    summaryFiles: { md: path.join(resultsDir, 'summary.md'), csv: path.join(resultsDir, 'summary.csv') },
    interrupted: false,
    failed: 0,
    warnings,
    registryFile: own?.registryFile ?? supervisor.registryFile,
  };

  // the governor for the whole experiment, restored on every way out (exit hook: even process.exit)
  let governor: GovernorSetting | null = null;
  const restoreGovernor = (): void => {
    const w = governor?.restore();
    if (w) warn(w);
  };
  const onExit = (): void => {
    governor?.restore();
  };
  if (experiment.governor) {
    governor = setGovernor(experiment.governor, { sysfsRoot: opts.sysfsRoot });
    if (governor.warning) warn(governor.warning);
    process.on('exit', onExit);
  }

  try {
    for (let i = 0; i < runs.length; i++) {
      if (opts.signal?.aborted) {
        report.interrupted = true;
        break;
      }
      const run = runs[i];
      emit({ type: 'run-start', index: i + 1, total: runs.length, run });
      const { result, interrupted } = await runOne(run, i + 1, runs.length, experiment, { ...opts, resultsDir, graceMs, supervisor, emit, warn });
      const file = path.join(resultsDir, `${compactTimestamp(new Date(result.timestamp))}_${run.experimentId}.json`);
      writeJsonAtomic(file, result);
      report.results.push(result);
      report.files.push(file);
      if (!result.foreground_result.training_success) report.failed++;
      try {
        writeTextAtomic(report.summaryFiles.md, summaryMarkdown(report.results, opts.title ?? experiment.experiment_name));
        writeTextAtomic(report.summaryFiles.csv, summaryCsv(report.results));
      } catch (err) {
        warn(`summary not written: ${oneLine(err)}`);
      }
      emit({ type: 'run-end', index: i + 1, total: runs.length, run, result, file });
      if (interrupted) {
        report.interrupted = true;
        break;
      }
    }
  } finally {
    restoreGovernor();
    process.off('exit', onExit);
    // nothing of ours may outlive the experiment (a stop left behind by an error path)
    await supervisor.stopAll({ graceMs });
    own?.dispose();
    if (report.files.length === 0) removeEmptyDirs(createdDirs);
  }
  return report;
}

interface RunContext extends ExperimentRunOptions {
  resultsDir: string;
  graceMs: number;
  supervisor: Supervisor;
  emit: (e: ExperimentEvent) => void;
  warn: (m: string) => void;
}

/** One planned run: (background), foreground with retries and energy, (estimate split). */
async function runOne(run: PlannedRun, index: number, total: number, exp: ExperimentFile, ctx: RunContext): Promise<{ result: ExperimentResult; interrupted: boolean }> {
  const now = ctx.now ?? (() => new Date());
  const started = now();
  const { resultsDir, supervisor, graceMs, signal, emit } = ctx;
  const id = run.experimentId;
  const files = runFilesTag(resultsDir, id, started);
  const logDir = path.join(resultsDir, 'logs', files);
  const energyDir = path.join(resultsDir, `energy_${files}`);
  const parallel = run.mode === 'parallel' && run.background !== null;
  const attribution: EnergyMetrics['attribution'] = parallel ? 'combined' : 'foreground';
  const recordings: LabelledRecording[] = [];
  const energyOpts = { intervalMs: exp.energy_interval_ms, ...(ctx.energySources ? { sources: ctx.energySources } : {}), ...(ctx.sysfsRoot ? { sysfsRoot: ctx.sysfsRoot } : {}) };
  const phase = (p: ExperimentPhase, attempt?: number): void => emit({ type: 'phase', index, total, run, phase: p, ...(attempt ? { attempt } : {}) });

  let bg: BackgroundLoop | null = null;
  let attempts: JobOutcome[] = [];
  // assigned in callbacks: the cast keeps TypeScript from narrowing it to null for good
  let finalRec = null as EnergyRecording | null;
  let unexpected: string | null = null;
  let estimate: ExperimentResult['energy_estimate'] = parallel && run.estimateSplit ? null : undefined;
  try {
    if (parallel) {
      phase('background-start');
      bg = BackgroundLoop.start(run.background!, {
        supervisor,
        logDir: path.join(resultsDir, `background_logs_${files}`),
        pauseS: exp.background_pause_s,
        startWaitS: exp.background_start_wait_s,
        graceMs,
        onRunStart: (n, child) => emit({ type: 'child', index, run, role: 'background', child, attempt: n }),
      });
      const started = await bg.waitStarted(signal);
      if (!started.ok && started.note) ctx.warn(`${id}: ${started.note}`);
    }
    if (!signal?.aborted) {
      const res = await runWithRetries(run.foreground, {
        supervisor,
        maxRetries: exp.max_retries,
        logDir,
        graceMs,
        signal,
        name: `foreground ${run.foreground.model}`,
        around: async (attempt, go) => {
          phase('foreground', attempt);
          const rec = startEnergyRecording(energyOpts);
          let outcome: JobOutcome;
          try {
            outcome = await go();
          } finally {
            finalRec = await rec.stop();
            recordings.push({ phase: 'foreground', attempt, rec: finalRec });
          }
          return outcome;
        },
        onStart: (child) => emit({ type: 'child', index, run, role: 'foreground', child, attempt: attempts.length + 1 }),
        onAttempt: (attempt, outcome) => {
          attempts.push(outcome);
          emit({ type: 'attempt-end', index, total, run, attempt, outcome });
        },
      });
      attempts = res.attempts;
    }
  } catch (err) {
    unexpected = oneLine(err);
  } finally {
    if (bg) {
      phase('background-stop');
      try {
        await bg.stop(graceMs);
      } catch (err) {
        ctx.warn(`${id}: background stop: ${oneLine(err)}`);
      }
    }
  }

  const final = attempts[attempts.length - 1];
  const success = !unexpected && final !== undefined && jobSucceeded(final) && !signal?.aborted;
  const interrupted = signal?.aborted === true;

  // the estimate split: the foreground alone, then nothing for as long (both sampled)
  if (estimate === null && success && !interrupted) {
    try {
      phase('foreground-solo');
      const rec = startEnergyRecording(energyOpts);
      const solo = await runJob(run.foreground, {
        supervisor,
        logPath: path.join(logDir, 'solo.log'),
        graceMs,
        signal,
        name: `foreground-solo ${run.foreground.model}`,
        onStart: (child) => emit({ type: 'child', index, run, role: 'foreground-solo', child, attempt: 1 }),
      });
      const soloRec = await rec.stop();
      recordings.push({ phase: 'foreground_solo', attempt: 1, rec: soloRec });
      if (!signal?.aborted) {
        phase('idle-baseline');
        const idle = startEnergyRecording(energyOpts);
        await sleepAbortable(solo.durationSeconds * 1000, signal);
        const idleRec = await idle.stop();
        recordings.push({ phase: 'idle_baseline', attempt: 1, rec: idleRec });
        if (!signal?.aborted) {
          const soloM = energyMetrics(soloRec, 'estimate');
          const idleM = energyMetrics(idleRec, 'estimate');
          soloM.note = `foreground alone${jobSucceeded(solo) ? '' : ` (that run failed: ${solo.error})`}, ${solo.durationSeconds} s; ${soloM.note}`;
          idleM.note = `idle baseline, ${idleRec.summary.durationS.toFixed(1)} s; ${idleM.note}`;
          const combined = finalRec ? energyMetrics(finalRec, 'combined') : unavailableEnergyMetrics('not sampled', 'combined');
          estimate = { foreground_solo: soloM, idle_baseline: idleM, note: estimateNote(combined, soloM, idleM) };
        }
      }
    } catch (err) {
      ctx.warn(`${id}: estimate split failed: ${oneLine(err)}`);
    }
  }

  if (recordings.length) {
    try {
      writeEnergyCsv(energyDir, recordings);
    } catch (err) {
      ctx.warn(`${id}: energy samples not written: ${oneLine(err)}`);
    }
  }

  let metrics: Record<string, number | null> = Object.fromEntries(Object.keys(run.foreground.metrics).map((k) => [k, null]));
  if (success && final) {
    try {
      // the log's last 256 MiB at most; each regex off this thread with a time limit (metrics.ts)
      const { buf, truncated } = readInputTail(final.logPath, { kind: 'log' });
      if (truncated) ctx.warn(`${id}: ${final.logPath} is larger than ${formatBytes(INPUT_LIMITS.log.maxBytes)}: metrics are read from its last ${formatBytes(INPUT_LIMITS.log.maxBytes)}`);
      const found = await extractMetricsBounded(buf, run.foreground.metrics, { signal });
      metrics = found.values;
      for (const r of found.refused) ctx.warn(`${id}: ${r.reason}`);
    } catch (err) {
      ctx.warn(`${id}: metrics not read from ${final.logPath}: ${oneLine(err)}`);
    }
  }
  const energy = finalRec ? energyMetrics(finalRec, attribution) : unavailableEnergyMetrics(interrupted ? 'not sampled (interrupted before the foreground started)' : 'not sampled', attribution);
  let error: string | null = null;
  if (interrupted && !success) error = 'interrupted';
  else if (unexpected) error = `gpucolo error: ${unexpected}`;
  else if (!success) error = final?.error ?? 'failed';

  const result: ExperimentResult = {
    schema: EXPERIMENT_RESULT_SCHEMA,
    gpucolo_version: VERSION,
    experiment_id: id,
    experiment_name: exp.experiment_name,
    timestamp: started.toISOString(),
    mode: run.mode,
    experiment_index: run.experimentIndex,
    run_index: run.runIndex,
    foreground_result: {
      repository: run.foreground.repo,
      model: run.foreground.model,
      hyperparameters: run.foreground.hyperparameters,
      duration_seconds: final?.durationSeconds ?? 0,
      energy_metrics: energy,
      performance_metrics: metrics,
      training_success: success,
      retries: Math.max(0, attempts.length - 1),
      error_message: error,
      log_file: final?.logPath ?? path.join(logDir, 'attempt_1.log'),
    },
    background_info: bg ? bg.info() : null,
    ...(estimate !== undefined ? { energy_estimate: estimate } : {}),
  };
  if (estimate === null && parallel && run.estimateSplit) {
    // asked for but not made: say why in the foreground's energy note
    result.foreground_result.energy_metrics.note += `; estimate split not made (${interrupted ? 'interrupted' : success ? 'see warnings' : 'the foreground failed'})`;
  }
  return { result, interrupted };
}
