/**
 * Training experiments: experiment file + models file -> planned runs -> one ExperimentResult
 * file per run, plus summary.md / summary.csv over the runs (rewritten after each run).
 *
 *   default / mutation: the foreground runs alone, one run after another
 *   parallel:           a background loop starts first (background.ts; one loop per background
 *                       when background is a list), the foreground runs once they have started,
 *                       every background is stopped after it, all at once (also on errors and
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
 *   R/background_logs_X/run_<n>.log    each background run (background given as a list:
 *                                      R/background_logs_X/<k>_<repo>_<model>/run_<n>.log, k from 0)
 *   R/energy_X/gpu_power.csv, cpu_energy.csv   raw energy samples of every phase
 *   R/summary.md, R/summary.csv
 *
 * With layout 'notes' (--layout notes) the files of a run take the design notes' names instead
 * (ts: local time 20251111_180000; id: <ts>_<repo>_<model>_parallel, without _parallel in the
 * other modes): R/<id>.json, R/training_<repo>_<model>_<ts>_foreground.log (earlier attempts
 * ..._foreground_attempt<n>.log), R/energy_<id>_foreground/{cpu_energy.txt (perf stat's text),
 * gpu_power.csv, cpu_energy.csv}, R/background_logs_<id>/run_<n>.log; the result adds
 * foreground_result.status_message and the notes' background and energy notes.
 *
 * Interrupt (opts.signal aborted; the CLI aborts on SIGINT/SIGTERM): the foreground and
 * background groups are stopped, the governor restored, the current run's result written with
 * training_success false and error_message "interrupted", and no further run starts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode, errnoText, oneLine } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { EnergySourceName } from '../../energy/index.js';
import { Supervisor, supervisorWithRegistry, type RegisteredSupervisor, type SupervisedChild } from '../../supervisor/index.js';
import { writeFileAtomic as writeTextAtomic, writeJsonAtomic } from '../../write.js';
import { BackgroundLoop } from './background.js';
import { defaultModelsPath, loadExperiment, loadModels, type ExperimentFile } from './config.js';
import { energyMetrics, estimateNote, startEnergyRecording, unavailableEnergyMetrics, writeEnergyCsv, type EnergyRecording, type LabelledRecording } from './energy-metrics.js';
import { setGovernor, type GovernorSetting } from './governor.js';
import { DEFAULT_GRACE_MS, jobSucceeded, runJob, runWithRetries } from './job.js';
import { extractMetricsBounded } from './metrics.js';
import { INPUT_LIMITS, formatBytes, readInputTail } from '../../input-file.js';
import { missingRepoDirs, planRuns, sanitizeId } from './plan.js';
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
  | { type: 'child'; index: number; run: PlannedRun; role: 'foreground' | 'background' | 'foreground-solo'; child: SupervisedChild; attempt: number; /** which background of a list (index) */ background?: number }
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
  /**
   * file names: 'gpucolo' (default, see the header) or 'notes' (the design notes' mutation.py
   * names, see notesNames; analysis scripts written for them find their files)
   */
  layout?: Layout;
}

export const LAYOUTS = ['gpucolo', 'notes'] as const;
export type Layout = (typeof LAYOUTS)[number];

/** The notes' timestamp: local time, 20251111_180000. */
export function notesTimestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The notes' status text of a foreground (foreground_result.status_message in the notes' layout). */
export const NOTES_SUCCESS_TEXT = 'Training completed successfully';
export const NOTES_BACKGROUND_NOTE = 'Background training served as GPU load only, not monitored';
export const NOTES_COMBINED_NOTE = 'Energy metrics include both foreground and background training';

export interface NotesNames {
  /** <ts>_<repo>_<model>_parallel (parallel mode), <ts>_<repo>_<model> otherwise */
  id: string;
  /** R/<id>.json */
  result: string;
  /** R/training_<repo>_<model>_<ts>_foreground.log (the final attempt; earlier ones ..._foreground_attempt<n>.log) */
  foregroundLog: string;
  attemptLog: (n: number) => string;
  /** R/energy_<id>_foreground: cpu_energy.txt, gpu_power.csv (+ cpu_energy.csv) */
  energyDir: string;
  /** R/background_logs_<id> */
  backgroundDir: string;
}

/**
 * The notes' file names of a run started at `started`; a timestamp already used by a file in the
 * results directory (two runs within one second) gets -2, -3, ... so nothing is overwritten.
 */
export function notesNames(resultsDir: string, run: PlannedRun, started: Date): NotesNames {
  const repo = sanitizeId(run.foreground.repo);
  const model = sanitizeId(run.foreground.model);
  const make = (ts: string): NotesNames => {
    const id = `${ts}_${repo}_${model}${run.mode === 'parallel' ? '_parallel' : ''}`;
    const log = (suffix: string): string => path.join(resultsDir, `training_${repo}_${model}_${ts}_foreground${suffix}.log`);
    return {
      id,
      result: path.join(resultsDir, `${id}.json`),
      foregroundLog: log(''),
      attemptLog: (n) => log(`_attempt${n}`),
      energyDir: path.join(resultsDir, `energy_${id}_foreground`),
      backgroundDir: path.join(resultsDir, `background_logs_${id}`),
    };
  };
  const base = notesTimestamp(started);
  let names = make(base);
  for (let n = 2; [names.result, names.foregroundLog, names.energyDir, names.backgroundDir].some((f) => fs.existsSync(f)); n++) names = make(`${base}-${n}`);
  return names;
}

/** perf stat's text, as the notes' cpu_energy.txt holds it: the package and RAM energy of the window. */
export function perfStatText(e: EnergyMetrics, seconds: number): string {
  const j = (v: number | null): string => (v === null ? '<not supported>' : v.toFixed(2)).padStart(18);
  return [
    '',
    " Performance counter stats for 'system wide':",
    '',
    `${j(e.cpu_energy_pkg_joules)} Joules power/energy-pkg/`,
    `${j(e.cpu_energy_ram_joules)} Joules power/energy-ram/`,
    '',
    `${seconds.toFixed(9).padStart(21)} seconds time elapsed`,
    '',
    '',
  ].join('\n');
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
  // a new file of a random name, created exclusively: never opens what is there already (a
  // symlink planted at a predictable name would otherwise be followed and its target truncated)
  const probe = path.join(dir, `.gpucolo-write-check-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
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
/** Creates the results directory and checks it is writable; the directories it created (removed again when still empty at the end). */
function prepareResultsDir(resultsDir: string): string[] {
  const createdDirs = missingDirs(resultsDir);
  makeDirs(resultsDir);
  try {
    assertWritable(resultsDir);
  } catch (err) {
    removeEmptyDirs(createdDirs);
    throw err;
  }
  return createdDirs;
}

/** Sets the experiment's CPU governor (if it names one); restore() puts it back with a warning, onExit without (the process exit hook). */
function applyGovernor(experiment: ExperimentFile, sysfsRoot: string | undefined, warn: (message: string) => void): { restore(): void; onExit(): void } {
  let governor: GovernorSetting | null = null;
  const onExit = (): void => {
    governor?.restore();
  };
  if (experiment.governor) {
    governor = setGovernor(experiment.governor, { sysfsRoot });
    if (governor.warning) warn(governor.warning);
    process.on('exit', onExit);
  }
  return {
    restore: (): void => {
      const w = governor?.restore();
      if (w) warn(w);
    },
    onExit,
  };
}

/** Writes one run's result file and rewrites summary.md/.csv (a failed summary write is a warning), counting it in the report. */
function recordResult(report: ExperimentRunReport, result: ExperimentResult, file: string, title: string, warn: (message: string) => void): void {
  writeJsonAtomic(file, result);
  report.results.push(result);
  report.files.push(file);
  if (!result.foreground_result.training_success) report.failed++;
  try {
    writeTextAtomic(report.summaryFiles.md, summaryMarkdown(report.results, title));
    writeTextAtomic(report.summaryFiles.csv, summaryCsv(report.results));
  } catch (err) {
    warn(`summary not written: ${oneLine(err)}`);
  }
}

/** Runs every planned run in turn (stopping at the signal), records each, and restores the governor and stops every process on the way out. */
export async function runExperiment(loaded: LoadedExperiment, opts: ExperimentRunOptions): Promise<ExperimentRunReport> {
  const { experiment, runs } = loaded;
  const resultsDir = path.resolve(opts.resultsDir);
  // created here; removed again (when still empty) if the experiment ends without a result
  const createdDirs = prepareResultsDir(resultsDir);
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
  const { restore: restoreGovernor, onExit } = applyGovernor(experiment, opts.sysfsRoot, warn);

  try {
    for (let i = 0; i < runs.length; i++) {
      if (opts.signal?.aborted) {
        report.interrupted = true;
        break;
      }
      const run = runs[i];
      emit({ type: 'run-start', index: i + 1, total: runs.length, run });
      const { result, interrupted, file: notesFile } = await runOne(run, i + 1, runs.length, experiment, { ...opts, resultsDir, graceMs, supervisor, emit, warn });
      const file = notesFile ?? path.join(resultsDir, `${compactTimestamp(new Date(result.timestamp))}_${run.experimentId}.json`);
      recordResult(report, result, file, opts.title ?? experiment.experiment_name, warn);
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

/** The error message of a run: interrupted, gpucolo's own error, or the last attempt's. */
export function runErrorText(o: { interrupted: boolean; success: boolean; unexpected: string | null; finalError: string | undefined }): string | null {
  if (o.interrupted && !o.success) return 'interrupted';
  if (o.unexpected) return `gpucolo error: ${o.unexpected}`;
  if (!o.success) return o.finalError ?? 'failed';
  return null;
}

/** One planned run's state as its steps fill it in: backgrounds, attempts, energy recordings, the estimate. */
class PlannedRunExecution {
  readonly started: Date;
  readonly notes: NotesNames | null;
  readonly id: string;
  readonly logDir: string;
  readonly energyDir: string;
  readonly backgroundDir: string;
  readonly parallel: boolean;
  readonly attribution: EnergyMetrics['attribution'];
  readonly recordings: LabelledRecording[] = [];
  readonly energyOpts: Parameters<typeof startEnergyRecording>[0];
  readonly bgs: BackgroundLoop[] = [];
  attempts: JobOutcome[] = [];
  finalRec: EnergyRecording | null = null;
  unexpected: string | null = null;
  estimate: ExperimentResult['energy_estimate'];

  constructor(
    readonly run: PlannedRun,
    readonly index: number,
    readonly total: number,
    readonly exp: ExperimentFile,
    readonly ctx: RunContext,
  ) {
    const now = ctx.now ?? (() => new Date());
    this.started = now();
    const { resultsDir } = ctx;
    const notes = ctx.layout === 'notes' ? notesNames(resultsDir, run, this.started) : null;
    this.notes = notes;
    this.id = notes ? notes.id : run.experimentId;
    const files = notes ? this.id : runFilesTag(resultsDir, this.id, this.started);
    this.logDir = path.join(resultsDir, 'logs', files);
    this.energyDir = notes ? notes.energyDir : path.join(resultsDir, `energy_${files}`);
    this.backgroundDir = notes ? notes.backgroundDir : path.join(resultsDir, `background_logs_${files}`);
    this.parallel = run.mode === 'parallel' && run.background !== null;
    this.attribution = this.parallel ? 'combined' : 'foreground';
    this.energyOpts = { intervalMs: exp.energy_interval_ms, ...(ctx.energySources ? { sources: ctx.energySources } : {}), ...(ctx.sysfsRoot ? { sysfsRoot: ctx.sysfsRoot } : {}) };
    this.estimate = this.parallel && run.estimateSplit ? null : undefined;
  }

  phase(p: ExperimentPhase, attempt?: number): void {
    this.ctx.emit({ type: 'phase', index: this.index, total: this.total, run: this.run, phase: p, ...(attempt ? { attempt } : {}) });
  }

  /** A list of backgrounds: each its own loop, its logs in <backgroundDir>/<k>_<repo>_<model>. */
  async startBackgrounds(): Promise<void> {
    const { run, exp, ctx, index, id } = this;
    this.phase('background-start');
    run.backgrounds.forEach((spec, k) => {
      this.bgs.push(
        BackgroundLoop.start(spec, {
          supervisor: ctx.supervisor,
          logDir: run.backgroundList ? path.join(this.backgroundDir, sanitizeId(`${k}_${spec.repo}_${spec.model}`)) : this.backgroundDir,
          pauseS: exp.background_pause_s,
          startWaitS: exp.background_start_wait_s,
          graceMs: ctx.graceMs,
          onRunStart: (n, child) => ctx.emit({ type: 'child', index, run, role: 'background', child, attempt: n, ...(run.backgroundList ? { background: k } : {}) }),
        }),
      );
    });
    const waits = await Promise.all(this.bgs.map((b) => b.waitStarted(ctx.signal)));
    waits.forEach((started, k) => {
      if (!started.ok && started.note) ctx.warn(`${id}: ${run.backgroundList ? `background ${k} (${run.backgrounds[k].model}): ` : ''}${started.note}`);
    });
  }

  /** The foreground with its retries, each attempt energy-sampled. */
  async runForeground(): Promise<void> {
    const { run, exp, ctx, index, notes } = this;
    const res = await runWithRetries(run.foreground, {
      supervisor: ctx.supervisor,
      maxRetries: exp.max_retries,
      logDir: this.logDir,
      ...(notes ? { logPathOf: () => notes.foregroundLog } : {}),
      graceMs: ctx.graceMs,
      signal: ctx.signal,
      name: `foreground ${run.foreground.model}`,
      around: (attempt, go) => this.sampledAttempt(attempt, go),
      onStart: (child) => ctx.emit({ type: 'child', index, run, role: 'foreground', child, attempt: this.attempts.length + 1 }),
      onAttempt: (attempt, outcome) => {
        this.attempts.push(outcome);
        ctx.emit({ type: 'attempt-end', index, total: this.total, run, attempt, outcome });
      },
    });
    this.attempts = res.attempts;
  }

  private async sampledAttempt(attempt: number, go: () => Promise<JobOutcome>): Promise<JobOutcome> {
    const { notes } = this;
    this.phase('foreground', attempt);
    if (notes && attempt > 1) {
      // the notes' name is the last attempt's: the one before moves aside
      const aside = notes.attemptLog(attempt - 1);
      fs.renameSync(notes.foregroundLog, aside);
      const prev = this.attempts[attempt - 2];
      if (prev) prev.logPath = aside;
    }
    const rec = startEnergyRecording(this.energyOpts);
    let outcome: JobOutcome;
    try {
      outcome = await go();
    } finally {
      this.finalRec = await rec.stop();
      this.recordings.push({ phase: 'foreground', attempt, rec: this.finalRec });
    }
    return outcome;
  }

  /** Every background stops with the foreground, all at once (one grace, not one each). */
  async stopBackgrounds(): Promise<void> {
    const { bgs, ctx, id } = this;
    if (!bgs.length) return;
    this.phase('background-stop');
    await Promise.all(
      bgs.map(async (b, k) => {
        try {
          await b.stop(ctx.graceMs);
        } catch (err) {
          ctx.warn(`${id}: background ${bgs.length > 1 ? `${k} ` : ''}stop: ${oneLine(err)}`);
        }
      }),
    );
  }

  /** Backgrounds (parallel mode) and the foreground; an error of gpucolo's own ends up in `unexpected`. */
  async runJobs(): Promise<void> {
    try {
      if (this.parallel) await this.startBackgrounds();
      if (!this.ctx.signal?.aborted) await this.runForeground();
    } catch (err) {
      this.unexpected = oneLine(err);
    } finally {
      await this.stopBackgrounds();
    }
  }

  /** The estimate split: the foreground alone, then nothing for as long (both sampled). */
  async estimateSplit(): Promise<void> {
    const { run, ctx, index } = this;
    const { signal } = ctx;
    try {
      this.phase('foreground-solo');
      const rec = startEnergyRecording(this.energyOpts);
      const solo = await runJob(run.foreground, {
        supervisor: ctx.supervisor,
        logPath: path.join(this.logDir, 'solo.log'),
        graceMs: ctx.graceMs,
        signal,
        name: `foreground-solo ${run.foreground.model}`,
        onStart: (child) => ctx.emit({ type: 'child', index, run, role: 'foreground-solo', child, attempt: 1 }),
      });
      const soloRec = await rec.stop();
      this.recordings.push({ phase: 'foreground_solo', attempt: 1, rec: soloRec });
      if (signal?.aborted) return;
      this.phase('idle-baseline');
      const idle = startEnergyRecording(this.energyOpts);
      await sleepAbortable(solo.durationSeconds * 1000, signal);
      const idleRec = await idle.stop();
      this.recordings.push({ phase: 'idle_baseline', attempt: 1, rec: idleRec });
      if (signal?.aborted) return;
      const soloM = energyMetrics(soloRec, 'estimate');
      const idleM = energyMetrics(idleRec, 'estimate');
      soloM.note = `foreground alone${jobSucceeded(solo) ? '' : ` (that run failed: ${solo.error})`}, ${solo.durationSeconds} s; ${soloM.note}`;
      idleM.note = `idle baseline, ${idleRec.summary.durationS.toFixed(1)} s; ${idleM.note}`;
      const combined = this.finalRec ? energyMetrics(this.finalRec, 'combined') : unavailableEnergyMetrics('not sampled', 'combined');
      this.estimate = { foreground_solo: soloM, idle_baseline: idleM, note: estimateNote(combined, soloM, idleM) };
    } catch (err) {
      ctx.warn(`${this.id}: estimate split failed: ${oneLine(err)}`);
    }
  }

  writeEnergy(): void {
    const { notes, finalRec } = this;
    if (!this.recordings.length) return;
    try {
      writeEnergyCsv(this.energyDir, this.recordings);
      if (notes && finalRec) writeTextAtomic(path.join(this.energyDir, 'cpu_energy.txt'), perfStatText(energyMetrics(finalRec, this.attribution), finalRec.summary.durationS));
    } catch (err) {
      this.ctx.warn(`${this.id}: energy samples not written: ${oneLine(err)}`);
    }
  }

  /** The foreground's metrics from its log (null each when the run failed or they cannot be read). */
  async readMetrics(success: boolean, final: JobOutcome | undefined): Promise<Record<string, number | null>> {
    const { run, ctx, id } = this;
    let metrics: Record<string, number | null> = Object.fromEntries(Object.keys(run.foreground.metrics).map((k) => [k, null]));
    if (!(success && final)) return metrics;
    try {
      // the log's last 256 MiB at most; each regex off this thread with a time limit (metrics.ts)
      const { buf, truncated } = readInputTail(final.logPath, { kind: 'log' });
      if (truncated) ctx.warn(`${id}: ${final.logPath} is larger than ${formatBytes(INPUT_LIMITS.log.maxBytes)}: metrics are read from its last ${formatBytes(INPUT_LIMITS.log.maxBytes)}`);
      const found = await extractMetricsBounded(buf, run.foreground.metrics, { signal: ctx.signal });
      metrics = found.values;
      for (const r of found.refused) ctx.warn(`${id}: ${r.reason}`);
    } catch (err) {
      ctx.warn(`${id}: metrics not read from ${final.logPath}: ${oneLine(err)}`);
    }
    return metrics;
  }

  buildResult(o: { success: boolean; interrupted: boolean; final: JobOutcome | undefined; metrics: Record<string, number | null> }): ExperimentResult {
    const { run, exp, notes, bgs, estimate, finalRec, attribution } = this;
    const { success, interrupted, final } = o;
    const energy = finalRec ? energyMetrics(finalRec, attribution) : unavailableEnergyMetrics(interrupted ? 'not sampled (interrupted before the foreground started)' : 'not sampled', attribution);
    const error = runErrorText({ interrupted, success, unexpected: this.unexpected, finalError: final?.error });
    const result: ExperimentResult = {
      schema: EXPERIMENT_RESULT_SCHEMA,
      gpucolo_version: VERSION,
      experiment_id: this.id,
      experiment_name: exp.experiment_name,
      timestamp: this.started.toISOString(),
      mode: run.mode,
      experiment_index: run.experimentIndex,
      run_index: run.runIndex,
      foreground_result: {
        repository: run.foreground.repo,
        model: run.foreground.model,
        hyperparameters: run.foreground.hyperparameters,
        duration_seconds: final?.durationSeconds ?? 0,
        energy_metrics: energy,
        performance_metrics: o.metrics,
        training_success: success,
        retries: Math.max(0, this.attempts.length - 1),
        error_message: error,
        log_file: final?.logPath ?? (notes ? notes.foregroundLog : path.join(this.logDir, 'attempt_1.log')),
        ...(notes ? { status_message: success ? NOTES_SUCCESS_TEXT : `Training failed: ${error ?? 'failed'}` } : {}),
      },
      background_info: bgs.length ? bgs[0].info() : null,
      ...(run.backgroundList ? { background_infos: bgs.map((b) => b.info()) } : {}),
      ...(estimate !== undefined ? { energy_estimate: estimate } : {}),
    };
    if (estimate === null && this.parallel && run.estimateSplit) {
      // asked for but not made: say why in the foreground's energy note
      result.foreground_result.energy_metrics.note += `; estimate split not made (${interrupted ? 'interrupted' : success ? 'see warnings' : 'the foreground failed'})`;
    }
    if (notes) {
      for (const b of new Set([result.background_info, ...(result.background_infos ?? [])])) if (b) b.note = `${NOTES_BACKGROUND_NOTE}; ${b.note}`;
      if (this.parallel) result.foreground_result.energy_metrics.note = `${NOTES_COMBINED_NOTE}; ${result.foreground_result.energy_metrics.note}`;
    }
    return result;
  }
}

/** One planned run: (background), foreground with retries and energy, (estimate split). */
async function runOne(run: PlannedRun, index: number, total: number, exp: ExperimentFile, ctx: RunContext): Promise<{ result: ExperimentResult; interrupted: boolean; file?: string }> {
  const x = new PlannedRunExecution(run, index, total, exp, ctx);
  await x.runJobs();
  const final = x.attempts[x.attempts.length - 1];
  const success = !x.unexpected && final !== undefined && jobSucceeded(final) && !ctx.signal?.aborted;
  const interrupted = ctx.signal?.aborted === true;
  if (x.estimate === null && success && !interrupted) await x.estimateSplit();
  x.writeEnergy();
  const metrics = await x.readMetrics(success, final);
  const result = x.buildResult({ success, interrupted, final, metrics });
  return { result, interrupted, ...(x.notes ? { file: x.notes.result } : {}) };
}
