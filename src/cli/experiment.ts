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

async function runCli(loaded: LoadedExperiment, o: ExperimentCliOptions): Promise<void> {
  const name = loaded.experiment.experiment_name;
  const tty = process.stderr.isTTY === true;
  let bar: SingleBar | null = null;
  let tick: NodeJS.Timeout | null = null;
  const say = (line: string): void => {
    stopBar();
    process.stderr.write(`gpucolo experiment: ${line}\n`);
  };

  if (loaded.experiment.format === 'notes') say(`${loaded.file}: read in ${formatText(loaded)}`);

  // leftovers of a gpucolo that was killed: say so (gpucolo cleanup stops them)
  try {
    const stale = await reapRegistries(listRegistryFiles(), { dryRun: true });
    const alive = stale.actions.filter((a) => a.outcome === 'alive');
    if (alive.length) say(`warning: ${alive.length} process group(s) left by an earlier gpucolo that was killed are still running (${alive.map((a) => `${a.name} pid ${a.pid}`).join(', ')}): run gpucolo cleanup`);
  } catch {
    // a check only
  }

  const { supervisor, registryFile, dispose } = experimentSupervisor({ registryFile: o.registry, graceMs: o.grace * 1000 });
  const ctl = new AbortController();
  const removeSignals = onInterrupts([
    (sig) => {
      say(`${sig}: stopping the runs (SIGTERM, ${o.grace} s grace, SIGKILL), writing the current result`);
      ctl.abort();
    },
    (sig) => {
      say(`${sig} again: SIGKILL to every process group`);
      supervisor.killAll();
    },
  ]);

  let runStart = 0;
  let current = { k: 0, n: loaded.runs.length, id: '', phase: '' };
  function stopBar(): void {
    if (tick) clearInterval(tick);
    tick = null;
    bar?.stop();
    bar = null;
  }
  const startBar = (): void => {
    if (!tty) return;
    stopBar();
    bar = new SingleBar({ format: 'run {value}/{total} | {id} | {phase} | {elapsed}', hideCursor: true, clearOnComplete: true, stream: process.stderr });
    const fields = (): Record<string, string> => ({ id: current.id, phase: current.phase, elapsed: `${fmtS((performance.now() - runStart) / 1000)} s` });
    bar.start(current.n, current.k, fields());
    tick = setInterval(() => bar?.update(current.k, fields()), 500);
    tick.unref();
  };
  const onEvent = (e: ExperimentEvent): void => {
    switch (e.type) {
      case 'warning':
        say(`warning: ${e.message}`);
        startBar();
        break;
      case 'run-start':
        runStart = performance.now();
        current = { k: e.index, n: e.total, id: e.run.experimentId, phase: 'starting' };
        if (tty) startBar();
        else process.stderr.write(`gpucolo experiment: run ${e.index}/${e.total} ${e.run.experimentId}: started\n`);
        break;
      case 'phase':
        current.phase = e.phase === 'foreground' && e.attempt && e.attempt > 1 ? `foreground attempt ${e.attempt}` : e.phase;
        break;
      case 'attempt-end':
        if (e.outcome.error && !e.outcome.interrupted) {
          say(`run ${e.index}/${e.total} ${e.run.experimentId}: attempt ${e.attempt} failed: ${e.outcome.error} (log ${e.outcome.logPath})`);
          startBar();
        }
        break;
      case 'run-end': {
        stopBar();
        const f = e.result.foreground_result;
        const status = f.status_message ?? (f.training_success ? 'ok' : `FAILED: ${f.error_message}`);
        const infos = e.result.background_infos ?? (e.result.background_info ? [e.result.background_info] : []);
        const bgInfo = infos.length ? `, background ${infos.map((b) => `${infos.length > 1 ? `${b.model} ` : ''}${b.runs_started} run(s)/${b.restarts} restart(s)`).join(', ')}` : '';
        process.stderr.write(`gpucolo experiment: run ${e.index}/${e.total} ${e.run.experimentId}: ${status} in ${fmtS(f.duration_seconds)} s, retries ${f.retries}${bgInfo} (elapsed ${fmtS((performance.now() - runStart) / 1000)} s) -> ${e.file}\n`);
        break;
      }
      case 'child':
        break;
    }
  };

  let report;
  try {
    report = await runExperiment(loaded, { resultsDir: o.results, supervisor, graceMs: o.grace * 1000, signal: ctl.signal, onEvent, title: name, layout: o.layout, ...(o.sysfsRoot ? { sysfsRoot: o.sysfsRoot } : {}), ...(o.energySources ? { energySources: o.energySources } : {}) });
  } finally {
    stopBar();
    removeSignals();
    dispose();
  }
  const resultsDir = path.resolve(o.results);
  if (o.json) process.stdout.write(`${JSON.stringify(report.results, null, 2)}\n`);
  else {
    const ok = report.results.filter((r) => r.foreground_result.training_success).length;
    process.stdout.write(`${name}: ${ok}/${report.results.length} run(s) succeeded${report.interrupted ? ' (interrupted)' : ''}; results in ${resultsDir} (summary.md, summary.csv)\n`);
  }
  if (report.interrupted) throw new CliError(`interrupted: ${report.results.length} result(s) written to ${resultsDir}, the current one marked interrupted; registry ${registryFile}`, 130);
  if (report.failed > 0) throw new CliError(`${report.failed} of ${report.results.length} run(s) failed (results written to ${resultsDir})`, 1, true);
}
