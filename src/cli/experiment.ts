/**
 * gpucolo experiment FILE: training experiments (modes default, mutation, parallel) from an
 * experiment file and a models file; one result JSON per run plus summary.md / summary.csv.
 *
 * Exit codes: 0 every run succeeded; 1 some run's training failed (results still written) or
 * gpucolo could not do its job; 2 invalid experiment/models file or usage; 130 interrupted
 * (SIGINT/SIGTERM: the groups are stopped, the current run's result is written as interrupted).
 * A second SIGINT/SIGTERM SIGKILLs every group at once.
 */
import path from 'node:path';
import { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { errnoCode, oneLine } from '../errors.js';
import { BAD_INPUT_CODES } from '../input-file.js';
import { ENERGY_SOURCES, type EnergySourceName } from '../energy/index.js';
import { LAYOUTS, experimentSupervisor, loadExperimentPlan, runExperiment, type ExperimentEvent, type Layout, type LoadedExperiment } from '../runners/experiment/runner.js';
import type { PlannedRun } from '../runners/experiment/types.js';
import { listRegistryFiles, reapRegistries } from '../supervisor/index.js';
import { checkRegistryTarget } from '../supervisor/cleanup.js';
import { CliError } from './errors.js';
import { onInterrupts } from './signals.js';
import { choiceArg, integerArg, listArg, secondsOption } from './options.js';

/** errors in what the user gave: exit 2 */
/** a bad file named on the command line (or by it): exit 2 */
const INPUT_CODES = new Set(['EBADCONFIG', ...BAD_INPUT_CODES]);

const seedArg = integerArg({ max: 0xffffffff, what: 'a seed (0..4294967295)' });
/** an empty list samples no energy source */
const sourcesArg = listArg<EnergySourceName>('energy source', ENERGY_SOURCES, { allowEmpty: true });

const fmtS = (s: number): string => (s >= 100 ? s.toFixed(0) : s.toFixed(1));
const hp = (h: Record<string, unknown>): string => JSON.stringify(h);

/** Which experiment file format was read, in words. */
export function formatText(loaded: LoadedExperiment): string {
  return loaded.experiment.format === 'notes'
    ? `the notes' mutation.py format (no experiment_name; named "${loaded.experiment.experiment_name}" after the file)`
    : 'gpucolo (experiment_name given)';
}

/** The dry-run listing: what would run, exactly (argv as a JSON array: no shell quoting to guess). */
export function dryRunText(loaded: LoadedExperiment, layout: Layout = 'gpucolo'): string {
  const e = loaded.experiment;
  const out = [
    `experiment ${e.experiment_name}: mode ${e.mode}, ${loaded.runs.length} run(s), max_retries ${e.max_retries}${e.governor ? `, governor ${e.governor}` : ''}, energy every ${e.energy_interval_ms} ms`,
    `models file: ${loaded.modelsFile}`,
    `format: ${formatText(loaded)}`,
  ];
  if (layout === 'notes') out.push("layout: notes (the design notes' file names)");
  if (e.mode === 'parallel') out.push(`background: start wait ${e.background_start_wait_s} s, pause ${e.background_pause_s} s between runs${e.estimate_split ? '; estimate_split: solo + idle baseline runs too' : ''}`);
  loaded.runs.forEach((r: PlannedRun, i) => {
    out.push('', `[${i + 1}/${loaded.runs.length}] ${r.experimentId}`);
    const job = (label: string, j: PlannedRun['foreground']): void => {
      out.push(`  ${label}: ${j.repo}/${j.model}, timeout ${j.timeoutS} s`);
      out.push(`    cwd:  ${j.cwd}`);
      out.push(`    argv: ${JSON.stringify(j.argv)}`);
      out.push(`    hyperparameters: ${hp(j.hyperparameters)}`);
      if (Object.keys(j.env).length) out.push(`    env: ${hp(j.env)}`);
    };
    job('foreground', r.foreground);
    if (r.backgroundList) r.backgrounds.forEach((b, k) => job(`background ${k}`, b));
    else if (r.background) job('background', r.background);
  });
  if (loaded.missingDirs.length) out.push('', `warning: repository director${loaded.missingDirs.length > 1 ? 'ies' : 'y'} not found: ${loaded.missingDirs.join(', ')}`);
  return `${out.join('\n')}\n`;
}

interface ExperimentCliOptions {
  models?: string;
  results: string;
  dryRun?: boolean;
  seed?: number;
  registry?: string;
  grace: number;
  sysfsRoot?: string;
  energySources?: EnergySourceName[];
  json?: boolean;
  layout: Layout;
}

const layoutArg = choiceArg<Layout>('layout', LAYOUTS);

export function experimentCommand(): Command {
  return new Command('experiment')
    .description('run training experiments (default, mutation, parallel modes) from an experiment file: supervised runs with retries, timeouts, energy; result JSON per run + summary')
    .argument('<file>', 'experiment file (JSON or YAML)')
    .option('--models <file>', 'models file (default: models.json/.yaml next to the experiment file)')
    .option('--results <dir>', 'results directory', 'results')
    .option('--dry-run', 'print the planned runs (argv, cwd, hyperparameters) and exit')
    .option('--seed <n>', "mutation seed (overrides the file's)", seedArg)
    .option('--registry <file>', 'run registry file (default: per user, under $XDG_RUNTIME_DIR/gpucolo or the temp dir); gpucolo cleanup reads it')
    .addOption(secondsOption('--grace <s>', 'seconds between SIGTERM and SIGKILL when stopping a process group', 10))
    .option('--sysfs-root <dir>', 'sysfs root for the cpu governor and the energy sources', undefined)
    .option('--energy-sources <list>', `energy sources to sample (${ENERGY_SOURCES.join(',')})`, sourcesArg)
    .option('--json', 'print the results as a JSON array at the end')
    .option('--layout <layout>', "result file names: gpucolo, or notes (the design notes' mutation.py names: <ts>_<repo>_<model>_parallel.json, training_<repo>_<model>_<ts>_foreground.log, energy_<id>_foreground/cpu_energy.txt + gpu_power.csv)", layoutArg, 'gpucolo' as Layout)
    .action(async (file: string, o: ExperimentCliOptions) => {
      let loaded: LoadedExperiment;
      try {
        loaded = loadExperimentPlan(file, { ...(o.models ? { models: o.models } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}) });
      } catch (err) {
        const code = errnoCode(err);
        throw new CliError(oneLine(err), code && INPUT_CODES.has(code) ? 2 : 1, false, code);
      }
      if (o.dryRun) {
        process.stdout.write(dryRunText(loaded, o.layout));
        return;
      }
      if (o.registry !== undefined) {
        // before anything starts: a --registry naming somebody's file must not be overwritten
        try {
          checkRegistryTarget(path.resolve(o.registry));
        } catch (err) {
          throw new CliError(oneLine(err), 2, false, errnoCode(err));
        }
      }
      if (loaded.missingDirs.length) throw new CliError(`${file}: repository directory not found: ${loaded.missingDirs.join(', ')} (paths in ${loaded.modelsFile} are relative to it)`, 2);
      await runCli(loaded, o);
    });
}

/** What the progress display of one `gpucolo experiment` holds between events. */
interface ExperimentProgress {
  tty: boolean;
  bar: SingleBar | null;
  tick: NodeJS.Timeout | null;
  /** performance.now() at the current run's start */
  runStart: number;
  current: { k: number; n: number; id: string; phase: string };
}

/** Stops the progress bar and its ticker, if any. */
function stopBar(p: ExperimentProgress): void {
  if (p.tick) clearInterval(p.tick);
  p.tick = null;
  p.bar?.stop();
  p.bar = null;
}

/** One line on stderr (the bar stopped first). */
function say(p: ExperimentProgress, line: string): void {
  stopBar(p);
  process.stderr.write(`gpucolo experiment: ${line}\n`);
}

/** (Re)starts the progress bar of the current run (on a TTY). */
function startBar(p: ExperimentProgress): void {
  if (!p.tty) return;
  stopBar(p);
  const bar = new SingleBar({ format: 'run {value}/{total} | {id} | {phase} | {elapsed}', hideCursor: true, clearOnComplete: true, stream: process.stderr });
  p.bar = bar;
  const fields = (): Record<string, string> => ({ id: p.current.id, phase: p.current.phase, elapsed: `${fmtS((performance.now() - p.runStart) / 1000)} s` });
  bar.start(p.current.n, p.current.k, fields());
  p.tick = setInterval(() => p.bar?.update(p.current.k, fields()), 500);
  p.tick.unref();
}

/** Warns of leftovers of a gpucolo that was killed (gpucolo cleanup stops them); a check only. */
async function warnStaleRegistries(p: ExperimentProgress): Promise<void> {
  try {
    const stale = await reapRegistries(listRegistryFiles(), { dryRun: true });
    const alive = stale.actions.filter((a) => a.outcome === 'alive');
    if (alive.length) say(p, `warning: ${alive.length} process group(s) left by an earlier gpucolo that was killed are still running (${alive.map((a) => `${a.name} pid ${a.pid}`).join(', ')}): run gpucolo cleanup`);
  } catch {
    // a check only
  }
}

/** The line of a finished run: status, time, retries, background runs, elapsed, result file. */
function runEndLine(p: ExperimentProgress, e: Extract<ExperimentEvent, { type: 'run-end' }>): string {
  const f = e.result.foreground_result;
  const status = f.status_message ?? (f.training_success ? 'ok' : `FAILED: ${f.error_message}`);
  const infos = e.result.background_infos ?? (e.result.background_info ? [e.result.background_info] : []);
  const bgInfo = infos.length ? `, background ${infos.map((b) => `${infos.length > 1 ? `${b.model} ` : ''}${b.runs_started} run(s)/${b.restarts} restart(s)`).join(', ')}` : '';
  return `gpucolo experiment: run ${e.index}/${e.total} ${e.run.experimentId}: ${status} in ${fmtS(f.duration_seconds)} s, retries ${f.retries}${bgInfo} (elapsed ${fmtS((performance.now() - p.runStart) / 1000)} s) -> ${e.file}\n`;
}

/** One experiment event -> the progress display (warnings, bar, failed attempts, run lines). */
function onExperimentEvent(p: ExperimentProgress, e: ExperimentEvent): void {
  switch (e.type) {
    case 'warning':
      say(p, `warning: ${e.message}`);
      startBar(p);
      break;
    case 'run-start':
      p.runStart = performance.now();
      p.current = { k: e.index, n: e.total, id: e.run.experimentId, phase: 'starting' };
      if (p.tty) startBar(p);
      else process.stderr.write(`gpucolo experiment: run ${e.index}/${e.total} ${e.run.experimentId}: started\n`);
      break;
    case 'phase':
      p.current.phase = e.phase === 'foreground' && e.attempt && e.attempt > 1 ? `foreground attempt ${e.attempt}` : e.phase;
      break;
    case 'attempt-end':
      if (e.outcome.error && !e.outcome.interrupted) {
        say(p, `run ${e.index}/${e.total} ${e.run.experimentId}: attempt ${e.attempt} failed: ${e.outcome.error} (log ${e.outcome.logPath})`);
        startBar(p);
      }
      break;
    case 'run-end': {
      stopBar(p);
      process.stderr.write(runEndLine(p, e));
      break;
    }
    case 'child':
      break;
  }
}

/** Runs the planned experiment under a supervisor with two-step SIGINT/SIGTERM handling, then reports. */
async function runCli(loaded: LoadedExperiment, o: ExperimentCliOptions): Promise<void> {
  const name = loaded.experiment.experiment_name;
  const p: ExperimentProgress = { tty: process.stderr.isTTY === true, bar: null, tick: null, runStart: 0, current: { k: 0, n: loaded.runs.length, id: '', phase: '' } };

  if (loaded.experiment.format === 'notes') say(p, `${loaded.file}: read in ${formatText(loaded)}`);
  await warnStaleRegistries(p);

  const { supervisor, registryFile, dispose } = experimentSupervisor({ registryFile: o.registry, graceMs: o.grace * 1000 });
  const ctl = new AbortController();
  const removeSignals = onInterrupts([
    (sig) => {
      say(p, `${sig}: stopping the runs (SIGTERM, ${o.grace} s grace, SIGKILL), writing the current result`);
      ctl.abort();
    },
    (sig) => {
      say(p, `${sig} again: SIGKILL to every process group`);
      supervisor.killAll();
    },
  ]);

  let report;
  try {
    report = await runExperiment(loaded, { resultsDir: o.results, supervisor, graceMs: o.grace * 1000, signal: ctl.signal, onEvent: (e) => onExperimentEvent(p, e), title: name, layout: o.layout, ...(o.sysfsRoot ? { sysfsRoot: o.sysfsRoot } : {}), ...(o.energySources ? { energySources: o.energySources } : {}) });
  } finally {
    stopBar(p);
    removeSignals();
    dispose();
  }
  reportExperiment(report, name, o, registryFile);
}

/** Prints the outcome (JSON or one line) and turns interrupted / failed runs into exit codes. */
function reportExperiment(report: Awaited<ReturnType<typeof runExperiment>>, name: string, o: ExperimentCliOptions, registryFile: string): void {
  const resultsDir = path.resolve(o.results);
  if (o.json) process.stdout.write(`${JSON.stringify(report.results, null, 2)}\n`);
  else {
    const ok = report.results.filter((r) => r.foreground_result.training_success).length;
    process.stdout.write(`${name}: ${ok}/${report.results.length} run(s) succeeded${report.interrupted ? ' (interrupted)' : ''}; results in ${resultsDir} (summary.md, summary.csv)\n`);
  }
  if (report.interrupted) throw new CliError(`interrupted: ${report.results.length} result(s) written to ${resultsDir}, the current one marked interrupted; registry ${registryFile}`, 130);
  if (report.failed > 0) throw new CliError(`${report.failed} of ${report.results.length} run(s) failed (results written to ${resultsDir})`, 1, true);
}
