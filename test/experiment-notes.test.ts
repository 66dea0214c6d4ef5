/**
 * Issue 18, parallel training (002): the design notes' experiment files and file names.
 *   1. the notes' mutation.py files ({"mode": "default" | "mutation", "experiments": [...]}, no
 *      experiment_name) are read as they are, named after the file, and said to be so
 *   2. --layout notes: <ts>_<repo>_<model>_parallel ids, training_<repo>_<model>_<ts>_foreground.log,
 *      energy_<id>_foreground/{cpu_energy.txt, gpu_power.csv}, the notes' status text
 *   3. background as a list: each loops on its own, logs apart, all stopped with the foreground
 * Fixtures: test/fixtures/experiment-notes (the files exactly as the notes write them; "{...}" of
 * the notes' default example filled in with the hyperparameters of its result example).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadExperiment, loadExperimentPlan, parseExperiment, runExperiment, type ExperimentResult, type ExperimentRunOptions } from '../src/runners/experiment/index.js';
import { NOTES_SUCCESS_TEXT, notesTimestamp, perfStatText } from '../src/runners/experiment/runner.js';
import { unavailableEnergyMetrics } from '../src/runners/experiment/energy-metrics.js';
import { Supervisor } from '../src/supervisor/index.js';
import { dryRunText } from '../src/cli/experiment.js';
import { ROOT } from './helpers/impls.js';

const FIX = path.join(ROOT, 'test/fixtures/experiment-notes');
const CLI = path.join(ROOT, 'dist/cli/cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-exp-notes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
/**
 * A directory with the fixtures (and models.json) copied in, and stand-in train.py programs for
 * the two repositories. resnet20 prints its metrics; with failFirst it exits 3 on its first run.
 */
function workspace(opts: { failFirst?: boolean; bgSeconds?: number; waitFiles?: string[]; waitLiveBackground?: boolean } = {}): { dir: string; results: string } {
  const dir = path.join(tmp, `ws${++seq}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(FIX)) fs.copyFileSync(path.join(FIX, f), path.join(dir, f));
  const counter = path.join(dir, 'count');
  const fg = [
    'import os, sys, time',
    `c = ${JSON.stringify(counter)}`,
    'n = int(open(c).read()) + 1 if os.path.exists(c) else 1',
    'open(c, "w").write(str(n))',
    'print("role=foreground args:", " ".join(sys.argv[1:]), flush=True)',
    // until the backgrounds have looped (waited for by event, not for some seconds)
    `w = ${JSON.stringify(opts.waitFiles ?? [])}`,
    'while not all(os.path.exists(f) for f in w): time.sleep(0.05)',
    // until a background of this run has printed its argv (its pid file, written after the print, names a live process)
    ...(opts.waitLiveBackground ? [`while not any(os.path.exists("/proc/" + p) for p in os.listdir(${JSON.stringify(path.join(dir, 'pids'))})): time.sleep(0.05)`] : []),
    'time.sleep(0.2)',
    ...(opts.failFirst ? ['if n == 1: sys.exit(3)'] : []),
    'print("Test Accuracy: 91.5")',
    '',
  ].join('\n');
  const pids = path.join(dir, 'pids');
  fs.mkdirSync(pids);
  const bg = [
    'import os, sys, time',
    'print("role=background args:", " ".join(sys.argv[1:]), flush=True)',
    `open(os.path.join(${JSON.stringify(pids)}, str(os.getpid())), "w").write(" ".join(sys.argv[1:]))`,
    `time.sleep(${opts.bgSeconds ?? 0.3})`,
    '',
  ].join('\n');
  for (const [repo, text] of [
    ['pytorch_resnet_cifar10', fg],
    ['Person_reID_baseline_pytorch', bg],
  ] as const) {
    fs.mkdirSync(path.join(dir, 'repos', repo), { recursive: true });
    fs.writeFileSync(path.join(dir, 'repos', repo, 'train.py'), text);
  }
  return { dir, results: path.join(dir, 'results') };
}

/** Is the process gone (or a zombie)? */
function gone(pid: number): boolean {
  try {
    return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** A copy of a fixture with some top-level fields changed (the start wait shortened for tests). */
function variant(dir: string, fixture: string, change: Record<string, unknown>, name = fixture): string {
  const data = { ...JSON.parse(fs.readFileSync(path.join(FIX, fixture), 'utf8')), ...change };
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(data, null, 2));
  return f;
}

function noEnergy(dir: string): Pick<ExperimentRunOptions, 'sysfsRoot' | 'energySources'> {
  const empty = path.join(dir, 'empty-sys');
  fs.mkdirSync(empty, { recursive: true });
  return { sysfsRoot: empty, energySources: ['amdgpu-sysfs', 'rapl'] };
}

async function run(file: string, opts: Partial<ExperimentRunOptions> & { resultsDir: string }) {
  const loaded = loadExperimentPlan(file);
  const sup = new Supervisor({ graceMs: 300 });
  const report = await runExperiment(loaded, { supervisor: sup, graceMs: 300, ...noEnergy(path.dirname(file)), ...opts });
  expect(sup.live()).toEqual([]);
  return { loaded, report };
}

const readResult = (f: string): ExperimentResult => JSON.parse(fs.readFileSync(f, 'utf8')) as ExperimentResult;

describe("the notes' mutation.py files (no experiment_name)", () => {
  it('default.json and all.json as the notes write them: read, named after the file, format notes', () => {
    const def = loadExperiment(path.join(FIX, 'default.json')).experiment;
    expect(def).toMatchObject({ experiment_name: 'default', format: 'notes', mode: 'default', runs_per_config: 1 });
    expect(def.experiments).toEqual([{ kind: 'single', repo: 'pytorch_resnet_cifar10', model: 'resnet20', hyperparameters: { epochs: 150, learning_rate: 0.05 }, mutate: [] }]);
    const all = loadExperiment(path.join(FIX, 'all.json')).experiment;
    expect(all).toMatchObject({ experiment_name: 'all', format: 'notes', mode: 'mutation' });
    // gpucolo's own files: format gpucolo, their name kept
    expect(loadExperiment(path.join(FIX, 'parallel_test.json')).experiment).toMatchObject({ experiment_name: 'parallel_mutation_test', format: 'gpucolo', mode: 'parallel' });
    // YAML: the extension goes too; a name of other characters is sanitised in the ids only
    expect(parseExperiment({ experiments: [{ repo: 'r', model: 'm' }] }, '/x/my runs.v2.yaml')).toMatchObject({ experiment_name: 'my runs.v2', format: 'notes' });
  });

  it('plans and dry-runs against the models file next to it; the dry run says which format was read', () => {
    const loaded = loadExperimentPlan(path.join(FIX, 'default.json'));
    expect(loaded.runs.map((r) => r.experimentId)).toEqual(['default_0_resnet20_run0']);
    expect(loaded.runs[0].foreground.argv).toEqual(['python3', 'train.py', '--arch', 'resnet20', '--epochs', '150', '--lr', '0.05']);
    const text = dryRunText(loaded);
    expect(text).toContain("format: the notes' mutation.py format (no experiment_name; named \"default\" after the file)");
    expect(text.split('\n')[0]).toMatch(/^experiment default: mode default, 1 run\(s\)/);
    expect(dryRunText(loadExperimentPlan(path.join(FIX, 'parallel_test.json')))).toContain('format: gpucolo (experiment_name given)');
  });

  it('bad inputs are still refused with the field named', () => {
    const bad = (data: unknown): string => {
      try {
        parseExperiment(data, 'old.json');
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(bad({ mode: 'default' })).toMatch(/old\.json: invalid experiment file: experiments: /);
    expect(bad({ mode: 'default', experiments: [{ model: 'resnet20' }] })).toMatch(/experiments\.0\.repo: each experiment names a repo/);
    expect(bad({ experiment_name: '', mode: 'default', experiments: [{ repo: 'r', model: 'm' }] })).toMatch(/experiment_name: Too small/);
    expect(bad({ mode: 'mutation', experiments: [{ repo: 'r', model: 'm', hyperparameters: { epochs: 3 } }] })).toMatch(/experiments\.0\.mutate: mode mutation: list the hyperparameters to sample/);
    expect(bad({ mode: 'default', experiments: [{ repo: 'r', model: 'm' }], typo: 1 })).toMatch(/Unrecognized key: "typo"/);
  });

  it('runs (gpucolo layout): results written in gpucolo format with the derived name', async () => {
    const ws = workspace();
    const { report } = await run(path.join(ws.dir, 'default.json'), { resultsDir: ws.results });
    expect(report.failed).toBe(0);
    expect(path.basename(report.files[0])).toMatch(/^\d{8}T\d{6}Z_default_0_resnet20_run0\.json$/);
    const r = readResult(report.files[0]);
    expect(r).toMatchObject({ schema: 'gpucolo.experiment-result/1', experiment_name: 'default', experiment_id: 'default_0_resnet20_run0', mode: 'default' });
    expect(r.foreground_result).toMatchObject({ training_success: true, error_message: null, performance_metrics: { test_accuracy: 91.5 } });
    expect('status_message' in r.foreground_result).toBe(false);
  });

  it('CLI: the file is run unchanged (exit 0, not 2) and stderr says which format was read', () => {
    const ws = workspace();
    const r = spawnSync(process.execPath, [CLI, 'experiment', path.join(ws.dir, 'default.json'), '--results', ws.results, '--grace', '1', '--energy-sources', 'rapl', '--sysfs-root', path.join(ws.dir, 'nosys')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/default\.json: read in the notes' mutation\.py format \(no experiment_name; named "default" after the file\)/);
    expect(r.stdout).toMatch(/^default: 1\/1 run\(s\) succeeded/);
  });
});

describe('--layout notes', () => {
  it("notesTimestamp is the notes' local YYYYMMDD_HHMMSS; perfStatText reads like perf stat", () => {
    expect(notesTimestamp(new Date(2025, 10, 11, 18, 0, 5))).toBe('20251111_180005');
    const e = { ...unavailableEnergyMetrics('x', 'combined'), cpu_energy_pkg_joules: 35000, cpu_energy_ram_joules: null };
    const t = perfStatText(e, 3600.5);
    expect(t).toContain("Performance counter stats for 'system wide':");
    expect(t).toMatch(/^ +35000\.00 Joules power\/energy-pkg\/$/m);
    expect(t).toMatch(/^ +<not supported> Joules power\/energy-ram\/$/m);
    expect(t).toMatch(/^ +3600\.500000000 seconds time elapsed$/m);
  });

  it("parallel_test.json: the notes' id, foreground log, energy and background directories; status text; error_message null", async () => {
    const ws = workspace({ waitLiveBackground: true });
    const file = variant(ws.dir, 'parallel_test.json', { background_start_wait_s: 0.2, background_pause_s: 0.05, governor: undefined });
    const { report } = await run(file, { resultsDir: ws.results, layout: 'notes' });
    expect(report.failed).toBe(0);
    expect(report.files).toHaveLength(3);
    const ids = new Set<string>();
    for (const f of report.files) {
      const r = readResult(f);
      const m = /^(\d{8}_\d{6}(?:-\d+)?)_pytorch_resnet_cifar10_resnet20_parallel$/.exec(r.experiment_id);
      expect(m, r.experiment_id).not.toBeNull();
      const ts = m![1];
      ids.add(r.experiment_id);
      expect(f).toBe(path.join(ws.results, `${r.experiment_id}.json`));
      expect(r.schema).toBe('gpucolo.experiment-result/1');
      const fg = r.foreground_result;
      expect(fg).toMatchObject({ training_success: true, error_message: null, status_message: NOTES_SUCCESS_TEXT, retries: 0 });
      expect(fg.log_file).toBe(path.join(ws.results, `training_pytorch_resnet_cifar10_resnet20_${ts}_foreground.log`));
      expect(fs.readFileSync(fg.log_file, 'utf8')).toContain('role=foreground');
      expect(fs.readFileSync(fg.log_file, 'utf8')).not.toContain('role=background');
      expect(fg.energy_metrics.attribution).toBe('combined');
      expect(fg.energy_metrics.note).toMatch(/^Energy metrics include both foreground and background training; /);
      const energyDir = path.join(ws.results, `energy_${r.experiment_id}_foreground`);
      expect(fs.readdirSync(energyDir).sort()).toEqual(['cpu_energy.csv', 'cpu_energy.txt', 'gpu_power.csv']);
      expect(fs.readFileSync(path.join(energyDir, 'cpu_energy.txt'), 'utf8')).toMatch(/<not supported> Joules power\/energy-pkg\//);
      const bg = r.background_info!;
      expect(bg.log_dir).toBe(path.join(ws.results, `background_logs_${r.experiment_id}`));
      // the foreground waited for a background of its run to print its argv: some log has it
      const bgLogs = fs.readdirSync(bg.log_dir).map((l) => fs.readFileSync(path.join(bg.log_dir, l), 'utf8'));
      expect(bgLogs.some((t) => t.includes('--total_epoch 60 --lr 0.05 --droprate 0.5'))).toBe(true);
      expect(bg.note).toMatch(/^Background training served as GPU load only, not monitored; /);
    }
    expect(ids.size).toBe(3); // runs within one second get -2, -3: nothing overwritten
    expect(fs.existsSync(path.join(ws.results, 'logs'))).toBe(false);
  });

  it('retries: the last attempt has the notes\' log name, the failed one moves to ..._attempt1.log', async () => {
    const ws = workspace({ failFirst: true });
    const file = variant(ws.dir, 'default.json', { max_retries: 1 });
    const { report } = await run(file, { resultsDir: ws.results, layout: 'notes' });
    const r = readResult(report.files[0]);
    expect(r.experiment_id).toMatch(/^\d{8}_\d{6}_pytorch_resnet_cifar10_resnet20$/); // no _parallel in mode default
    const ts = r.experiment_id.slice(0, 15);
    expect(r.foreground_result).toMatchObject({ training_success: true, retries: 1, status_message: NOTES_SUCCESS_TEXT, log_file: path.join(ws.results, `training_pytorch_resnet_cifar10_resnet20_${ts}_foreground.log`) });
    expect(fs.existsSync(path.join(ws.results, `training_pytorch_resnet_cifar10_resnet20_${ts}_foreground_attempt1.log`))).toBe(true);
  });

  it('a failed run: error_message as always, status_message "Training failed: ..."', async () => {
    const ws = workspace({ failFirst: true });
    const { report } = await run(path.join(ws.dir, 'default.json'), { resultsDir: ws.results, layout: 'notes' });
    const r = readResult(report.files[0]);
    expect(r.foreground_result).toMatchObject({ training_success: false, error_message: 'exited with code 3', status_message: 'Training failed: exited with code 3' });
  });

  it('CLI: --layout notes in the dry run; an unknown layout is a usage error', () => {
    const d = spawnSync(process.execPath, [CLI, 'experiment', path.join(FIX, 'parallel_test.json'), '--dry-run', '--layout', 'notes'], { encoding: 'utf8' });
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toContain("layout: notes (the design notes' file names)");
    const bad = spawnSync(process.execPath, [CLI, 'experiment', path.join(FIX, 'parallel_test.json'), '--dry-run', '--layout', 'python'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown layout "python" \(gpucolo, notes\)/);
  });
});

describe('background as a list (the notes\' phase 3)', () => {
  it('parses: every background kept in order; one object stays one background (no background_infos)', () => {
    const multi = loadExperiment(path.join(FIX, 'parallel_multi.json')).experiment;
    const e = multi.experiments[0];
    expect(e.kind).toBe('parallel');
    if (e.kind !== 'parallel') return;
    expect(e.backgroundList).toBe(true);
    expect(e.backgrounds.map((b) => b.model)).toEqual(['densenet121', 'resnet50']);
    expect(e.background.model).toBe('densenet121');
    const plan = loadExperimentPlan(path.join(FIX, 'parallel_multi.json'));
    expect(plan.runs[0].backgrounds.map((b) => b.argv)).toEqual([
      ['python3', 'train.py', '--use_dense', '--total_epoch', '60', '--lr', '0.05', '--droprate', '0.5'],
      ['python3', 'train.py', '--use_resnet50', '--total_epoch', '10', '--lr', '0.05', '--droprate', '0.5'],
    ]);
    const text = dryRunText(plan);
    expect(text).toContain('  background 0: Person_reID_baseline_pytorch/densenet121');
    expect(text).toContain('  background 1: Person_reID_baseline_pytorch/resnet50');
    const single = loadExperimentPlan(path.join(FIX, 'parallel_test.json')).runs[0];
    expect(single).toMatchObject({ backgroundList: false });
    expect(single.backgrounds).toEqual([single.background]);
  });

  it('bad lists name the item and field', () => {
    const multi = JSON.parse(fs.readFileSync(path.join(FIX, 'parallel_multi.json'), 'utf8'));
    const bad = (change: (d: typeof multi) => void): string => {
      const d = structuredClone(multi);
      change(d);
      try {
        parseExperiment(d, 'multi.json');
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(bad((d) => (d.experiments[0].background = []))).toMatch(/experiments\.0\.background: a list of backgrounds names at least one/);
    expect(bad((d) => delete d.experiments[0].background[1].model)).toMatch(/experiments\.0\.background\.1\.model: Invalid input: expected string/);
    expect(bad((d) => (d.experiments[0].background[0].mutate = ['epochs']))).toMatch(/experiments\.0\.background\.0: Unrecognized key: "mutate"/);
    expect(bad((d) => (d.experiments[0].background = 'densenet121'))).toMatch(/experiments\.0\.background: Invalid input: expected/);
    expect(bad((d) => delete d.experiments[0].background)).toMatch(/experiments\.0\.background: mode parallel: each experiment has foreground/);
    // against the models file: the item is named
    const ws = workspace();
    const f = path.join(ws.dir, 'unknown.json');
    multi.experiments[0].background[1].model = 'vgg16';
    fs.writeFileSync(f, JSON.stringify(multi));
    expect(() => loadExperimentPlan(f)).toThrow(/experiments\.0\.background\.1\.model: repository Person_reID_baseline_pytorch has no model "vgg16"/);
  });

  it('each background loops on its own, logs apart, all stopped with the foreground', async () => {
    const id = 'parallel_multi_background_test_0_resnet20_run0';
    const dirOf = (results: string, k: number, model: string): string => path.join(results, `background_logs_${id}`, `${k}_Person_reID_baseline_pytorch_${model}`);
    const ws0 = path.join(tmp, `ws${seq + 1}`, 'results');
    // the foreground ends only once both backgrounds have started their second run
    const ws = workspace({ waitFiles: [path.join(dirOf(ws0, 0, 'densenet121'), 'run_2.log'), path.join(dirOf(ws0, 1, 'resnet50'), 'run_2.log')] });
    expect(ws.results).toBe(ws0);
    const file = variant(ws.dir, 'parallel_multi.json', { runs_per_config: 1, background_start_wait_s: 0.2, background_pause_s: 0.05, governor: undefined });
    const { report } = await run(file, { resultsDir: ws.results });
    expect(report.failed).toBe(0);
    const r = readResult(report.files[0]);
    expect(r.background_infos).toHaveLength(2);
    expect(r.background_info).toEqual(r.background_infos![0]);
    for (const [k, model, flag] of [
      [0, 'densenet121', '--use_dense --total_epoch 60'],
      [1, 'resnet50', '--use_resnet50 --total_epoch 10'],
    ] as const) {
      const b = r.background_infos![k];
      expect(b).toMatchObject({ repo: 'Person_reID_baseline_pytorch', model, log_dir: dirOf(ws.results, k, model) });
      expect(b.runs_started).toBeGreaterThanOrEqual(2);
      const logs = fs.readdirSync(b.log_dir);
      expect(logs).toHaveLength(b.runs_started);
      for (const l of logs) {
        const text = fs.readFileSync(path.join(b.log_dir, l), 'utf8');
        if (text) expect(text).toContain(flag); // the last run may be stopped before it printed
        expect(text).not.toContain('role=foreground');
      }
    }
    // every background process ended with the foreground
    const pids = fs.readdirSync(path.join(ws.dir, 'pids')).map(Number);
    // each background's first run ended (its second started), so wrote its pid after printing; a
    // later run may have been stopped before that (the supervisor's live() is empty for those)
    expect(pids.length).toBeGreaterThanOrEqual(2);
    expect(pids.filter((p) => !gone(p))).toEqual([]);
    const md = fs.readFileSync(report.summaryFiles.md, 'utf8');
    expect(md).toContain('| Person_reID_baseline_pytorch/densenet121 |');
    expect(md).toContain('| Person_reID_baseline_pytorch/resnet50 |');
  });

  it('--layout notes: background_logs_<id>/<k>_<repo>_<model>/, the notes\' note on each', async () => {
    const ws = workspace({ bgSeconds: 60 });
    const file = variant(ws.dir, 'parallel_multi.json', { runs_per_config: 1, background_start_wait_s: 0.2, background_pause_s: 0.05, governor: undefined });
    const { report } = await run(file, { resultsDir: ws.results, layout: 'notes' });
    const r = readResult(report.files[0]);
    expect(r.background_infos!.map((b) => path.relative(ws.results, b.log_dir))).toEqual([
      path.join(`background_logs_${r.experiment_id}`, '0_Person_reID_baseline_pytorch_densenet121'),
      path.join(`background_logs_${r.experiment_id}`, '1_Person_reID_baseline_pytorch_resnet50'),
    ]);
    for (const b of r.background_infos!) {
      expect(b.note).toMatch(/^Background training served as GPU load only, not monitored; /);
      expect(b.note).not.toMatch(/not monitored; Background training/);
      expect(b.note).toMatch(/stopped after the foreground/);
    }
    const pids = fs.readdirSync(path.join(ws.dir, 'pids')).map(Number);
    expect(pids.filter((p) => !gone(p))).toEqual([]);
  });

  it('an interrupt stops every background of the list with the foreground; the result is written as interrupted', async () => {
    // the foreground waits for a file that never comes; the backgrounds run for 10 minutes
    const ws = workspace({ bgSeconds: 600, waitFiles: ['/nonexistent/never'] });
    const file = variant(ws.dir, 'parallel_multi.json', { runs_per_config: 1, background_start_wait_s: 0.2, background_pause_s: 0.05, governor: undefined });
    const ctl = new AbortController();
    const started = new Set<number>();
    const { report } = await run(file, {
      resultsDir: ws.results,
      signal: ctl.signal,
      onEvent: (e) => {
        if (e.type === 'child' && e.role === 'background' && e.background !== undefined) started.add(e.background);
        // both backgrounds and the foreground run: interrupt
        if (e.type === 'child' && e.role === 'foreground' && started.size === 2) ctl.abort();
      },
    });
    expect(report.interrupted).toBe(true);
    const r = readResult(report.files[0]);
    expect(r.foreground_result).toMatchObject({ training_success: false, error_message: 'interrupted' });
    expect(r.background_infos!.map((b) => b.runs_started)).toEqual([1, 1]);
    for (const b of r.background_infos!) expect(b.note).toMatch(/stopped after the foreground/);
  });
});
