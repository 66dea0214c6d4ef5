/**
 * The training experiment runner against real processes: fake training programs
 * (test/fixtures/experiment-programs/fake_train.py) that print metrics, fail on demand, spawn
 * sleeping grandchildren, ignore SIGTERM and run past their timeout; the gpucolo CLI
 * (experiment, cleanup) run as its own process for SIGINT and SIGKILL; one real CPU run of
 * workloads/tiny_train.py with Debian's PyTorch. Graces are short (300-500 ms) where the program
 * ignores SIGTERM anyway. No test asserts how fast anything was: tests wait for events (a pid
 * file, a log line, a registry state) with deadlines that only guard against hangs (HANG_MS), so
 * they hold on a busy 2-core host; what a broken mechanism would take instead (a 300 s sleeper, a
 * one-hour grace) is far beyond any test timeout.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../src/cli/errors.js';
import { experimentCommand } from '../src/cli/experiment.js';
import { EXPERIMENT_RESULT_SCHEMA, loadExperimentPlan, runExperiment, type ExperimentResult, type ExperimentRunOptions, type JobSpec } from '../src/runners/experiment/index.js';
import { BackgroundLoop } from '../src/runners/experiment/background.js';
import { CPU_CSV_HEADER, GPU_CSV_HEADER, energyMetrics, startEnergyRecording } from '../src/runners/experiment/energy-metrics.js';
import { readGovernors, setGovernor } from '../src/runners/experiment/governor.js';
import { runJob } from '../src/runners/experiment/job.js';
import { Supervisor, defaultRegistryDir, listRegistryFiles, readRunRegistry, readStat, reapRegistries, supervisorWithRegistry, writeRegistryFile, RUNS_SCHEMA } from '../src/supervisor/index.js';
import { HANG_MS } from './helpers/load.js';
import { dead, waitFor } from './helpers/procs.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const PROGRAMS = path.join(HERE, 'fixtures/experiment-programs');
const CLI = path.join(ROOT, 'dist/cli/cli.js');
const POWER_SYSFS = path.join(HERE, 'fixtures/power/sysfs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-exp-'));
// every process the fake programs recorded is gone after the file, even where a test failed
// half-way (a sleeper of a failed test would otherwise outlive the run by minutes)
const piddirs: string[] = [];
afterAll(() => {
  for (const d of piddirs) {
    for (const { pid } of fs.existsSync(d) ? recordedPids(d) : []) {
      try {
        if (!dead(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * The timeout test's program: a shell that ignores SIGTERM, records itself and a sleeping
 * grandchild (which inherits the ignored SIGTERM) and sleeps far past its 1.5 s timeout. A shell,
 * not fake_train.py: it is at that state in milliseconds even on a busy host, where the python
 * program could still be starting when the timeout fires (and the grandchild never be made).
 */
const SH_SLOW = [
  "trap '' TERM",
  'echo "foreground $$" > "$FAKE_PIDDIR/$$"',
  'sleep 300 &',
  'echo "foreground-grandchild $!" > "$FAKE_PIDDIR/$!"',
  'echo "start role=foreground pid=$$"',
  'sleep 60',
].join('\n');

/**
 * A foreground that waits until the background has been started `runs` times (its pid files, role
 * "background"), then runs fake_train.py with its flags: restarts of a crashing background are
 * then counted by event, however slowly a busy host starts python. The model's timeout (60 s)
 * guards against a loop that never restarts.
 */
const waitForBackgroundRuns = (runs: number): string =>
  `until [ "$(grep -l '^background ' "$FAKE_PIDDIR"/* 2>/dev/null | wc -l)" -ge ${runs} ]; do sleep 0.05; done; exec python3 fake_train.py "$@"`;


let seq = 0;
/** A fresh directory with a models file pointing at the fake programs, and a pid directory. */
function workspace(): { dir: string; piddir: string; models: string; results: string } {
  const dir = path.join(tmp, `ws${++seq}`);
  const piddir = path.join(dir, 'pids');
  fs.mkdirSync(piddir, { recursive: true });
  piddirs.push(piddir);
  const hp = {
    epochs: { flag: '--epochs', type: 'int', default: 1, range: [1, 4] },
    lr: { flag: '--lr', type: 'float', default: 0.1, range: [0.01, 0.5] },
    batch_size: { flag: '--batch-size', type: 'int', default: 8, choices: [8, 16, 32] },
    sleep: { flag: '--sleep', type: 'float', default: 0.2 },
    fail_first: { flag: '--fail-first', type: 'int', default: 0 },
    counter: { flag: '--counter', type: 'str', default: path.join(dir, 'counter') },
    exit: { flag: '--exit', type: 'int', default: 0 },
    grandchild: { flag: '--grandchild', type: 'bool', default: false },
    ignore_term: { flag: '--ignore-term', type: 'bool', default: false },
    role: { flag: '--role', type: 'str', default: 'foreground' },
  };
  const model = (timeout: number) => ({
    command: ['python3', 'fake_train.py'],
    hyperparameters: hp,
    metrics: { test_accuracy: 'Test Accuracy:\\s*([\\d.]+)', best_val_accuracy: 'Best Val Accuracy:\\s*([\\d.]+)' },
    timeout_s: timeout,
    env: { FAKE_PIDDIR: piddir, PYTHONUNBUFFERED: '1' },
  });
  const models = path.join(dir, 'models.json');
  fs.writeFileSync(
    models,
    JSON.stringify({
      fake: {
        path: PROGRAMS,
        models: {
          fake: model(60),
          long: model(900),
          shslow: { command: ['sh', '-c', SH_SLOW, 'sh'], metrics: {}, timeout_s: 1.5, env: { FAKE_PIDDIR: piddir } },
          waitbg3: { ...model(60), command: ['sh', '-c', waitForBackgroundRuns(3), 'sh'] },
        },
      },
      torch: {
        path: path.join(ROOT, 'workloads'),
        models: {
          tiny: {
            command: ['/usr/bin/python3', 'tiny_train.py'],
            hyperparameters: {
              epochs: { flag: '--epochs', type: 'int', default: 2 },
              lr: { flag: '--lr', type: 'float', default: 0.05 },
              batch_size: { flag: '--batch-size', type: 'int', default: 64 },
            },
            metrics: { test_accuracy: 'Test Accuracy:\\s*([\\d.]+)', best_val_accuracy: 'Best Val Accuracy:\\s*([\\d.]+)' },
            timeout_s: 120,
            env: { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
          },
        },
      },
    }),
  );
  return { dir, piddir, models, results: path.join(dir, 'results') };
}

function writeExperiment(dir: string, exp: Record<string, unknown>, name = 'exp.json'): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(exp));
  return f;
}

/** Every process a fake program recorded: [role, pid]. */
function recordedPids(piddir: string): { role: string; pid: number }[] {
  return fs.readdirSync(piddir).map((n) => {
    const [role, pid] = fs.readFileSync(path.join(piddir, n), 'utf8').trim().split(' ');
    return { role, pid: Number(pid) };
  });
}

/** No energy source can be available: empty sysfs, sysfs-only sources. */
function noEnergy(dir: string): Pick<ExperimentRunOptions, 'sysfsRoot' | 'energySources'> {
  const empty = path.join(dir, 'empty-sys');
  fs.mkdirSync(empty, { recursive: true });
  return { sysfsRoot: empty, energySources: ['amdgpu-sysfs', 'rapl'] };
}

async function run(file: string, models: string, opts: Partial<ExperimentRunOptions> & { resultsDir: string }) {
  const loaded = loadExperimentPlan(file, { models });
  const sup = new Supervisor({ graceMs: 300 });
  const report = await runExperiment(loaded, { supervisor: sup, graceMs: 300, ...opts });
  expect(sup.live()).toEqual([]);
  return report;
}

function readResult(file: string): ExperimentResult {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ExperimentResult;
}

const ENERGY_KEYS = [
  'cpu_energy_pkg_joules',
  'cpu_energy_ram_joules',
  'cpu_energy_total_joules',
  'gpu_power_avg_watts',
  'gpu_power_max_watts',
  'gpu_power_min_watts',
  'gpu_energy_total_joules',
  'gpu_temp_avg_celsius',
  'gpu_temp_max_celsius',
  'gpu_util_avg_percent',
  'gpu_util_max_percent',
] as const;

function expectCompleteResult(r: ExperimentResult): void {
  expect(Object.keys(r).sort()).toEqual(
    ['schema', 'gpucolo_version', 'experiment_id', 'experiment_name', 'timestamp', 'mode', 'experiment_index', 'run_index', 'foreground_result', 'background_info', ...('energy_estimate' in r ? ['energy_estimate'] : [])].sort(),
  );
  expect(r.schema).toBe(EXPERIMENT_RESULT_SCHEMA);
  expect(r.gpucolo_version).toMatch(/^\d+\.\d+\.\d+/);
  expect(Number.isNaN(Date.parse(r.timestamp))).toBe(false);
  const f = r.foreground_result;
  expect(Object.keys(f).sort()).toEqual(
    ['repository', 'model', 'hyperparameters', 'duration_seconds', 'energy_metrics', 'performance_metrics', 'training_success', 'retries', 'error_message', 'log_file'].sort(),
  );
  expect(Object.keys(f.energy_metrics).sort()).toEqual([...ENERGY_KEYS, 'attribution', 'note'].sort());
  expect(typeof f.duration_seconds).toBe('number');
  expect(fs.existsSync(f.log_file)).toBe(true);
}

describe('default and mutation modes', () => {
  it('default: one result JSON per run with every field, logs, summary, energy nulls with the reason', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, {
      experiment_name: 'plain run',
      runs_per_config: 2,
      energy_interval_ms: 100,
      experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { epochs: 2, lr: 0.05 } }],
    });
    const events: string[] = [];
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir), onEvent: (e) => events.push(e.type) });
    expect(report.interrupted).toBe(false);
    expect(report.failed).toBe(0);
    expect(report.files).toHaveLength(2);
    for (const [k, f] of report.files.entries()) {
      expect(path.basename(f)).toMatch(new RegExp(`^\\d{8}T\\d{6}Z_plain_run_0_fake_run${k}\\.json$`));
      const r = readResult(f);
      expectCompleteResult(r);
      expect(r).toMatchObject({ experiment_id: `plain_run_0_fake_run${k}`, experiment_name: 'plain run', mode: 'default', experiment_index: 0, run_index: k, background_info: null });
      expect(r).not.toHaveProperty('energy_estimate');
      const fg = r.foreground_result;
      expect(fg).toMatchObject({ repository: 'fake', model: 'fake', training_success: true, retries: 0, error_message: null });
      expect(fg.hyperparameters).toMatchObject({ epochs: 2, lr: 0.05, batch_size: 8, sleep: 0.2, role: 'foreground' });
      expect(fg.performance_metrics).toEqual({ test_accuracy: 91.2, best_val_accuracy: 93.4 });
      expect(fg.log_file).toBe(path.join(ws.results, 'logs', r.experiment_id, 'attempt_1.log'));
      const log = fs.readFileSync(fg.log_file, 'utf8');
      expect(log).toContain('epochs=2 lr=0.05 batch_size=8');
      expect(log).toContain('stderr line of foreground'); // stderr goes to the same log
      // unavailable energy: nulls and the reason, never zeros
      const em = fg.energy_metrics;
      for (const k of ENERGY_KEYS) expect(em[k]).toBeNull();
      expect(em.attribution).toBe('foreground');
      expect(em.note).toMatch(/^gpu: unavailable: amdgpu-sysfs: .+; cpu: unavailable: rapl: no .*powercap/);
      // raw sample files: headers, no rows (nothing was available)
      const edir = path.join(ws.results, `energy_${r.experiment_id}`);
      expect(fs.readFileSync(path.join(edir, 'gpu_power.csv'), 'utf8')).toBe(`${GPU_CSV_HEADER}\n`);
      expect(fs.readFileSync(path.join(edir, 'cpu_energy.csv'), 'utf8')).toBe(`${CPU_CSV_HEADER}\n`);
    }
    const md = fs.readFileSync(path.join(ws.results, 'summary.md'), 'utf8');
    expect(md).toContain('plain_run_0_fake_run0');
    expect(md).toContain('plain_run_0_fake_run1');
    const csv = fs.readFileSync(path.join(ws.results, 'summary.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(3);
    expect(events.filter((e) => e === 'run-end')).toHaveLength(2);
  });

  it('a re-run into the same results directory keeps the logs the earlier result points to; an unwritable results directory fails before anything runs', async () => {
    const ws = workspace();
    const exp = (epochs: number) => ({ experiment_name: 'again', runs_per_config: 1, energy_interval_ms: 100, experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { epochs, lr: 0.05 } }] });
    const first = await run(writeExperiment(ws.dir, exp(2)), ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const firstLog = readResult(first.files[0]).foreground_result.log_file;
    const before = fs.readFileSync(firstLog, 'utf8');
    const second = await run(writeExperiment(ws.dir, exp(3), 'exp2.json'), ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const secondLog = readResult(second.files[0]).foreground_result.log_file;
    expect(secondLog).not.toBe(firstLog);
    expect(path.basename(path.dirname(secondLog))).toMatch(/^again_0_fake_run0\.\d{8}T\d{6}Z$/);
    expect(fs.readFileSync(firstLog, 'utf8')).toBe(before);
    expect(fs.readFileSync(secondLog, 'utf8')).toContain('epochs=3');

    for (const bad of ['/proc/gpucolo-results', ...(fs.existsSync('/sys/kernel') ? ['/sys/kernel'] : [])]) {
      const events: string[] = [];
      await expect(run(writeExperiment(ws.dir, exp(2), 'exp3.json'), ws.models, { resultsDir: bad, ...noEnergy(ws.dir), onEvent: (e) => events.push(e.type) })).rejects.toThrow(
        new RegExp(`^cannot (create directory|write to the results directory) ${bad}`),
      );
      expect(events).toEqual([]);
    }
  });

  it('mutation: sampled hyperparameters per run, in the argv and the result', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, {
      experiment_name: 'mut',
      mode: 'mutation',
      runs_per_config: 3,
      seed: 7,
      experiments: [{ repo: 'fake', model: 'fake', mutate: ['epochs', 'lr', 'batch_size'], hyperparameters: { sleep: 0.05 } }],
    });
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const results = report.files.map(readResult);
    expect(results).toHaveLength(3);
    const configs = results.map((r) => JSON.stringify(r.foreground_result.hyperparameters));
    expect(new Set(configs).size).toBe(3);
    for (const r of results) {
      expectCompleteResult(r);
      const h = r.foreground_result.hyperparameters;
      expect(r.mode).toBe('mutation');
      expect(r.foreground_result.training_success).toBe(true);
      expect(h.sleep).toBe(0.05);
      expect([8, 16, 32]).toContain(h.batch_size);
      expect(h.epochs).toBeGreaterThanOrEqual(1);
      expect(h.epochs).toBeLessThanOrEqual(4);
      const log = fs.readFileSync(r.foreground_result.log_file, 'utf8');
      expect(log).toContain(`epochs=${String(h.epochs)} lr=${String(h.lr)} batch_size=${String(h.batch_size)}`);
    }
  });

  it('energy sources present (fixture sysfs): figures, attribution, raw samples in the CSVs', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, { experiment_name: 'energy', energy_interval_ms: 100, experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.4 } }] });
    const report = await run(file, ws.models, { resultsDir: ws.results, sysfsRoot: POWER_SYSFS, energySources: ['amdgpu-sysfs', 'rapl'] });
    const em = readResult(report.files[0]).foreground_result.energy_metrics;
    // card0 187 W + card2 15.25 W (static fixture values): every tick sums to 202.25 W
    expect(em).toMatchObject({ gpu_power_avg_watts: 202.25, gpu_power_max_watts: 202.25, gpu_power_min_watts: 202.25, gpu_util_avg_percent: 24.5, gpu_util_max_percent: 24.5, attribution: 'foreground' });
    expect(em.gpu_energy_total_joules).toBeGreaterThan(0); // card2 has no counter: power x time
    // temperature: card0 junction 71.5 °C (MI300: no edge sensor), card2 edge 48 °C -> mean of the means, max of the maxima
    expect(em).toMatchObject({ gpu_temp_avg_celsius: 59.75, gpu_temp_max_celsius: 71.5 });
    expect(em.cpu_energy_pkg_joules).toBe(0); // static counters
    expect(em.note).toContain('power x time');
    expect(em.note).not.toMatch(/temperature/);
    expect(em.note).toMatch(/cpu: rapl energy counter \(package-0, core, dram, package-1\)/);
    const gpuCsv = fs.readFileSync(path.join(ws.results, 'energy_energy_0_fake_run0', 'gpu_power.csv'), 'utf8').trim().split('\n');
    expect(gpuCsv[0]).toBe(GPU_CSV_HEADER);
    // a window under 1 s is flagged low confidence (a 0.4 s program gives one, unless a loaded
    // host stretched its start past a second: the flag follows the window, not the wall clock)
    const tCol = GPU_CSV_HEADER.split(',').indexOf('t_s');
    const ts = gpuCsv.slice(1).map((l) => Number(l.split(',')[tCol]));
    const flagged = /window (\d+\.\d\d) s < 1 s: low confidence/.exec(em.note ?? '');
    if (Math.max(...ts) - Math.min(...ts) < 0.9) expect(flagged).not.toBeNull();
    if (flagged) expect(Number(flagged[1])).toBeLessThan(1);
    expect(gpuCsv.length).toBeGreaterThanOrEqual(5); // >= 2 ticks x 2 cards
    expect(gpuCsv[1]).toMatch(/^foreground,1,amdgpu-sysfs,card0,AMD Instinct MI300X,[\d.]+,42,187,123456.789,71.5$/);
    expect(gpuCsv.some((l) => /^foreground,1,amdgpu-sysfs,card2,AMD GPU 0x73bf,[\d.]+,7,15.25,,48$/.test(l))).toBe(true);
    const cpuCsv = fs.readFileSync(path.join(ws.results, 'energy_energy_0_fake_run0', 'cpu_energy.csv'), 'utf8').trim().split('\n');
    expect(cpuCsv[0]).toBe(CPU_CSV_HEADER);
    expect(cpuCsv.some((l) => l.includes(',intel-rapl:0:1,dram,'))).toBe(true);
  });
});

describe('retries and timeouts', () => {
  it('fails twice, then succeeds with max_retries 2: retries 2, each attempt logged', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, { experiment_name: 'retry', max_retries: 2, experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { fail_first: 2, sleep: 0.05 } }] });
    const ends: string[] = [];
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir), onEvent: (e) => e.type === 'attempt-end' && ends.push(e.outcome.error ?? 'ok') });
    const fg = readResult(report.files[0]).foreground_result;
    expect(fg).toMatchObject({ training_success: true, retries: 2, error_message: null });
    expect(fg.log_file.endsWith('attempt_3.log')).toBe(true);
    expect(fg.performance_metrics.test_accuracy).toBe(91.2);
    expect(ends).toEqual(['exited with code 3', 'exited with code 3', 'ok']);
    const logs = path.join(ws.results, 'logs', 'retry_0_fake_run0');
    expect(fs.readdirSync(logs).sort()).toEqual(['attempt_1.log', 'attempt_2.log', 'attempt_3.log']);
    expect(fs.readFileSync(path.join(logs, 'attempt_1.log'), 'utf8')).toContain('attempt 1: failing on purpose');
    expect(fs.readFileSync(path.join(logs, 'attempt_2.log'), 'utf8')).toContain('attempt 2: failing on purpose');
    expect(fs.readFileSync(path.join(logs, 'attempt_3.log'), 'utf8')).not.toContain('failing');
  });

  it('out of retries: failure with the last error, metrics null', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, { experiment_name: 'fail', max_retries: 1, experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { fail_first: 5, sleep: 0.05 } }] });
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    expect(report.failed).toBe(1);
    const fg = readResult(report.files[0]).foreground_result;
    expect(fg).toMatchObject({ training_success: false, retries: 1, error_message: 'exited with code 3', performance_metrics: { test_accuracy: null, best_val_accuracy: null } });
  });

  it('timeout: SIGTERM to the group, grace, SIGKILL; clear error; grandchildren gone', async () => {
    const ws = workspace();
    // the program would run 60 s (its grandchild 300 s): that the run returns at all within the
    // test timeout is the timeout and the SIGKILL at work
    const file = writeExperiment(ws.dir, { experiment_name: 'slow', experiments: [{ repo: 'fake', model: 'shslow' }] });
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const fg = readResult(report.files[0]).foreground_result;
    expect(fg.training_success).toBe(false);
    expect(fg.error_message).toMatch(/^timed out after 1\.5 s: process group SIGKILLed after the 0\.30 s grace$/);
    expect(fg.duration_seconds).toBeGreaterThanOrEqual(1.5);
    const pids = recordedPids(ws.piddir);
    expect(pids.map((p) => p.role).sort()).toEqual(['foreground', 'foreground-grandchild']);
    await waitFor(() => pids.every((p) => dead(p.pid)), HANG_MS, 'the timed-out group to be gone');
  });

  it('the leader exits while its grandchild keeps running: done at the exit, the grandchild stopped', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, { experiment_name: 'linger', experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.05, grandchild: true } }] });
    // a run that waited for the grandchild's 300 s would exceed the test timeout (180 s)
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    expect(readResult(report.files[0]).foreground_result).toMatchObject({ training_success: true, error_message: null });
    const pids = recordedPids(ws.piddir);
    expect(pids.map((p) => p.role).sort()).toEqual(['foreground', 'foreground-grandchild']);
    await waitFor(() => pids.every((p) => dead(p.pid)), HANG_MS, 'the grandchild to be stopped');
  });

  it('a program that cannot be started: one-line error', async () => {
    const ws = workspace();
    const sup = new Supervisor({ graceMs: 300 });
    const spec: JobSpec = { repo: 'x', model: 'x', cwd: ws.dir, argv: ['gpucolo-no-such-trainer'], hyperparameters: {}, timeoutS: 10, metrics: {}, env: {} };
    const o = await runJob(spec, { supervisor: sup, logPath: path.join(ws.dir, 'l.log') });
    expect(o.exitCode).toBeNull();
    expect(o.error).toMatch(/^could not start gpucolo-no-such-trainer: .*ENOENT/);
  });
});

describe('parallel mode', () => {
  it('a background that crashes every 0.3 s is restarted and counted; the foreground succeeds; logs never mixed', async () => {
    const ws = workspace();
    // the foreground (waitbg3) runs until the background has been started 3 times, i.e. restarted
    // twice after crashes: counted by event, not by how many crashes fit into some seconds
    const file = writeExperiment(ws.dir, {
      experiment_name: 'par',
      mode: 'parallel',
      background_start_wait_s: 0.2,
      background_pause_s: 0.05,
      experiments: [{ foreground: { repo: 'fake', model: 'waitbg3', hyperparameters: { sleep: 0.2 } }, background: { repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.3, exit: 1, role: 'background' } } }],
    });
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const r = readResult(report.files[0]);
    expectCompleteResult(r);
    expect(r.mode).toBe('parallel');
    expect(r.foreground_result).toMatchObject({ training_success: true, retries: 0 });
    expect(r.foreground_result.energy_metrics.attribution).toBe('combined');
    const bg = r.background_info!;
    expect(bg).toMatchObject({ repo: 'fake', model: 'fake', log_dir: path.join(ws.results, 'background_logs_par_0_waitbg3_run0') });
    expect(bg.hyperparameters).toMatchObject({ sleep: 0.3, exit: 1, role: 'background' });
    expect(bg.restarts).toBeGreaterThanOrEqual(2);
    expect(bg.runs_started).toBeGreaterThanOrEqual(bg.restarts);
    expect(bg.note).toMatch(/crash/);
    const logs = fs.readdirSync(bg.log_dir).sort();
    expect(logs.length).toBe(bg.runs_started);
    for (const l of logs) {
      const text = fs.readFileSync(path.join(bg.log_dir, l), 'utf8');
      expect(l).toMatch(/^run_\d+\.log$/);
      // one process per log: exactly one start line, and only the background's
      expect(text.match(/^start role=/gm)?.length ?? 0).toBeLessThanOrEqual(1);
      expect(text).not.toContain('role=foreground');
    }
    const fgLog = fs.readFileSync(r.foreground_result.log_file, 'utf8');
    expect(fgLog).not.toContain('role=background');
    expect(fgLog.match(/^start role=/gm)).toHaveLength(1);
    await waitFor(() => recordedPids(ws.piddir).every((p) => dead(p.pid)), HANG_MS, 'every process gone');
  });

  it('a background that dies at once: noted, the foreground runs anyway', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, {
      experiment_name: 'dies',
      mode: 'parallel',
      // the wait ends when the first run ends: long enough for python to start and die on a busy host
      background_start_wait_s: 60,
      background_pause_s: 0.05,
      experiments: [{ foreground: { repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.2 } }, background: { repo: 'fake', model: 'fake', hyperparameters: { sleep: 0, exit: 2, role: 'background' } } }],
    });
    const warnings: string[] = [];
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir), onEvent: (e) => e.type === 'warning' && warnings.push(e.message) });
    const r = readResult(report.files[0]);
    expect(r.foreground_result.training_success).toBe(true);
    expect(r.background_info!.note).toMatch(/first background run exited with code 2 .* the foreground started anyway/);
    expect(warnings.join('\n')).toMatch(/first background run exited with code 2/);
  });

  it('estimate_split: solo and idle reference runs, labelled as an estimate', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, {
      experiment_name: 'split',
      mode: 'parallel',
      estimate_split: true,
      energy_interval_ms: 100,
      background_start_wait_s: 0.2,
      background_pause_s: 0.05,
      experiments: [{ foreground: { repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.5 } }, background: { repo: 'fake', model: 'fake', hyperparameters: { sleep: 5, role: 'background' } } }],
    });
    const report = await run(file, ws.models, { resultsDir: ws.results, sysfsRoot: POWER_SYSFS, energySources: ['amdgpu-sysfs', 'rapl'] });
    const r = readResult(report.files[0]);
    expectCompleteResult(r);
    const est = r.energy_estimate!;
    expect(est.foreground_solo.attribution).toBe('estimate');
    expect(est.idle_baseline.attribution).toBe('estimate');
    expect(est.note).toMatch(/^estimate, not a measurement/);
    expect(est.foreground_solo.note).toMatch(/^foreground alone/);
    expect(est.idle_baseline.note).toMatch(/^idle baseline/);
    expect(est.foreground_solo.gpu_power_avg_watts).toBe(202.25);
    expect(est.idle_baseline).toMatchObject({ gpu_temp_avg_celsius: 59.75, gpu_temp_max_celsius: 71.5 });
    expect(fs.existsSync(path.join(ws.results, 'logs', 'split_0_fake_run0', 'solo.log'))).toBe(true);
    const phases = new Set(
      fs
        .readFileSync(path.join(ws.results, 'energy_split_0_fake_run0', 'gpu_power.csv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',')[0]),
    );
    expect([...phases].sort()).toEqual(['foreground', 'foreground_solo', 'idle_baseline']);
  });
});

describe('governor', () => {
  function cpufreqTree(dir: string, gov = 'powersave'): string {
    const root = path.join(dir, 'sys');
    for (const cpu of ['cpu0', 'cpu1']) {
      const d = path.join(root, 'devices/system/cpu', cpu, 'cpufreq');
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'scaling_governor'), `${gov}\n`);
      fs.writeFileSync(path.join(d, 'scaling_available_governors'), 'performance powersave\n');
    }
    return root;
  }

  it('set for the run and restored after; a warning, never a failure, without cpufreq', async () => {
    const ws = workspace();
    const root = cpufreqTree(ws.dir);
    const file = writeExperiment(ws.dir, { experiment_name: 'gov', governor: 'performance', experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.05 } }] });
    const during: Record<string, string>[] = [];
    await run(file, ws.models, { resultsDir: ws.results, sysfsRoot: root, energySources: ['rapl'], onEvent: (e) => e.type === 'phase' && e.phase === 'foreground' && during.push(readGovernors(root)) });
    expect(during).toEqual([{ cpu0: 'performance', cpu1: 'performance' }]);
    expect(readGovernors(root)).toEqual({ cpu0: 'powersave', cpu1: 'powersave' });

    const warnings: string[] = [];
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir), onEvent: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect(report.failed).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^cpu governor "performance" not set: no cpufreq in .*empty-sys\/devices\/system\/cpu/);
  });

  it('unknown governor or unwritable file: warning, nothing changed', () => {
    const ws = workspace();
    const root = cpufreqTree(ws.dir);
    const g = setGovernor('ondemand', { sysfsRoot: root });
    expect(g.applied).toBe(false);
    expect(g.warning).toMatch(/not offered by this cpufreq driver \(available: performance, powersave\)/);
    // a directory where the file should be: the write fails (EISDIR) even for root
    const bad = path.join(root, 'devices/system/cpu/cpu1/cpufreq/scaling_governor');
    fs.rmSync(bad);
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'x'), '');
    const h = setGovernor('performance', { sysfsRoot: root });
    expect(h.applied).toBe(false);
    expect(h.warning).toMatch(/cpu governor "performance" not set: cannot read .*cpu1/);
    expect(readGovernors(root)).toEqual({ cpu0: 'powersave' }); // cpu0 put back
    expect(h.restore()).toBeUndefined();
  });
});

// ---- the CLI as its own process -------------------------------------------------------------------

interface CliRun {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], env: Record<string, string> = {}): CliRun {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('close', (code, signal) => r({ code, signal })));
  return { proc, out: () => out, err: () => err, exit };
}

/**
 * A parallel experiment whose foreground and background both run for 10 minutes, with
 * grandchildren: far longer than any test, so they are still running whenever a test looks, however
 * slow the host; the tests stop them (and afterAll kills what a failed test left).
 */
function longParallel(ws: ReturnType<typeof workspace>): string {
  return writeExperiment(ws.dir, {
    experiment_name: 'long',
    mode: 'parallel',
    governor: 'performance',
    background_start_wait_s: 0.3,
    background_pause_s: 0.1,
    experiments: [
      {
        foreground: { repo: 'fake', model: 'long', hyperparameters: { sleep: 600, grandchild: true } },
        background: { repo: 'fake', model: 'long', hyperparameters: { sleep: 600, grandchild: true, ignore_term: true, role: 'background' } },
      },
    ],
  });
}

describe('CLI', () => {
  // 8 s on an idle 2-core host; 3 parallel runs of python programs take several times that at load average 16
  it('the issue\'s parallel_mutation_test file, as it is, runs to completion against stand-in repositories', { timeout: 300_000 }, async () => {
    // the user's files unchanged (test/fixtures/experiment); the two repositories are small
    // stand-in train.py programs that take the registry's flags, train for a moment and print metrics
    const dir = fs.mkdtempSync(path.join(tmp, 'literal-'));
    fs.copyFileSync(path.join(HERE, 'fixtures/experiment/models.json'), path.join(dir, 'models.json'));
    fs.copyFileSync(path.join(HERE, 'fixtures/experiment/parallel_mutation_test.json'), path.join(dir, 'parallel_mutation_test.json'));
    const train = (metrics: string, seconds: number): string =>
      ['import sys, time', `time.sleep(${seconds})`, 'print("args:", " ".join(sys.argv[1:]))', `print(${JSON.stringify(metrics)})`, ''].join('\n');
    for (const [repo, text] of [
      ['pytorch_resnet_cifar10', train('Test Accuracy: 91.25\nBest Val Accuracy: 92.5', 0.3)],
      // 0.5 s (it was 2 s): the first background run ends within the 5 s start wait either way,
      // and the foreground starts then; the extra 1.5 s x 3 runs bought nothing
      ['Person_reID_baseline_pytorch', train('Rank@1: 0.81 mAP: 0.62', 0.5)],
    ] as const) {
      fs.mkdirSync(path.join(dir, 'repos', repo), { recursive: true });
      fs.writeFileSync(path.join(dir, 'repos', repo, 'train.py'), text);
    }
    const results = path.join(dir, 'results');
    const registry = path.join(dir, 'runs.json');
    const r = cli(['experiment', path.join(dir, 'parallel_mutation_test.json'), '--results', results, '--registry', registry, '--grace', '1']);
    const { code } = await r.exit;
    expect(r.err()).toMatch(/governor/); // no cpufreq here: one warning line, the runs go on
    expect(code, r.err()).toBe(0);
    const files = fs.readdirSync(results).filter((f) => /^\d{8}T\d{6}Z_parallel_mutation_test_0_resnet20_run\d\.json$/.test(f));
    expect(files).toHaveLength(3);
    const seen = new Set<string>();
    for (const f of files) {
      const res = JSON.parse(fs.readFileSync(path.join(results, f), 'utf8')) as ExperimentResult;
      expect(res.mode).toBe('parallel');
      const fg = res.foreground_result;
      expect(Object.keys(fg).sort()).toEqual(['duration_seconds', 'energy_metrics', 'error_message', 'hyperparameters', 'log_file', 'model', 'performance_metrics', 'repository', 'retries', 'training_success'].sort());
      expect(fg).toMatchObject({ repository: 'pytorch_resnet_cifar10', model: 'resnet20', training_success: true, retries: 0, error_message: null });
      expect(fg.performance_metrics).toEqual({ test_accuracy: 91.25 });
      expect(fg.hyperparameters.epochs).toBeGreaterThanOrEqual(5);
      expect(fg.hyperparameters.epochs).toBeLessThanOrEqual(20);
      seen.add(JSON.stringify(fg.hyperparameters));
      expect(fg.energy_metrics.attribution).toBe('combined');
      expect(Object.keys(fg.energy_metrics)).toHaveLength(13);
      expect(fg.energy_metrics.note).toMatch(/unavailable/);
      expect(res.background_info).toMatchObject({ repo: 'Person_reID_baseline_pytorch', model: 'densenet121', hyperparameters: { epochs: 60, learning_rate: 0.05, dropout: 0.5 } });
      expect(res.background_info!.runs_started).toBeGreaterThanOrEqual(1);
      expect(fs.readFileSync(path.join(res.background_info!.log_dir, 'run_1.log'), 'utf8')).toContain('--total_epoch 60 --lr 0.05 --droprate 0.5');
    }
    expect(seen.size).toBe(3); // mutated: no duplicate configuration
    expect(fs.readFileSync(path.join(results, 'summary.md'), 'utf8')).toContain('parallel_mutation_test_0_resnet20_run2');
    // both jobs were supervised: every child in the registry has ended, and no process runs in the
    // stand-in repositories any more
    const doc = readRunRegistry(registry);
    expect(doc.children.length).toBeGreaterThanOrEqual(6);
    for (const c of doc.children) {
      expect(c.state, `pid ${c.pid}`).not.toBe('running');
      expect(dead(c.pid), `pid ${c.pid}`).toBe(true);
    }
    const inRepos = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((pid) => {
        try {
          return fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(path.join(dir, 'repos')) && !dead(Number(pid));
        } catch {
          return false;
        }
      });
    expect(inRepos).toEqual([]);
  });

  it('config errors: exit 2 with one line; dry-run prints the plan', async () => {
    const ws = workspace();
    const bad = writeExperiment(ws.dir, { experiment_name: 'x', mode: 'sideways', experiments: [] }, 'bad.json');
    const r = cli(['experiment', bad, '--models', ws.models, '--results', ws.results]);
    expect((await r.exit).code).toBe(2);
    const lines = r.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gpucolo: .*bad\.json: invalid experiment file: mode: .*experiments: /);
    expect(fs.existsSync(ws.results)).toBe(false);

    // in-process through commander: the same CliError
    const unknownModel = writeExperiment(ws.dir, { experiment_name: 'x', experiments: [{ repo: 'fake', model: 'nope' }] }, 'unknown.json');
    const err = await experimentCommand().exitOverride().parseAsync([unknownModel, '--models', ws.models], { from: 'user' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
    expect((err as CliError).message).toMatch(/repository fake has no model "nope".*known: fake, long, shslow, waitbg3/);
    expect((err as CliError).message).not.toContain('\n');
    const missing = await experimentCommand().exitOverride().parseAsync([path.join(ws.dir, 'missing.json')], { from: 'user' }).catch((e: unknown) => e);
    expect((missing as CliError).exitCode).toBe(2);

    const good = writeExperiment(ws.dir, { experiment_name: 'dry', mode: 'mutation', runs_per_config: 2, experiments: [{ repo: 'fake', model: 'fake', mutate: ['lr'] }] });
    const d = cli(['experiment', good, '--models', ws.models, '--results', ws.results, '--dry-run']);
    expect((await d.exit).code).toBe(0);
    expect(d.out()).toContain('[1/2] dry_0_fake_run0');
    expect(d.out()).toContain('[2/2] dry_0_fake_run1');
    expect(d.out()).toContain(`cwd:  ${PROGRAMS}`);
    expect(d.out()).toMatch(/argv: \["python3","fake_train.py","--epochs","1","--lr","[\d.]+"/);
    expect(d.out()).toMatch(/hyperparameters: \{"epochs":1,"lr":/);
    expect(fs.existsSync(ws.results)).toBe(false);
  });

  it('SIGINT mid-run of a parallel experiment: exit 130, partial result, governor restored, nothing left running', async () => {
    const ws = workspace();
    const file = longParallel(ws);
    const sys = path.join(ws.dir, 'sys');
    const cpufreq = path.join(sys, 'devices/system/cpu/cpu0/cpufreq');
    fs.mkdirSync(cpufreq, { recursive: true });
    fs.writeFileSync(path.join(cpufreq, 'scaling_governor'), 'powersave\n');
    const registry = path.join(ws.dir, 'registry.json');
    const r = cli(['experiment', file, '--models', ws.models, '--results', ws.results, '--registry', registry, '--grace', '0.5', '--sysfs-root', sys, '--energy-sources', 'rapl']);
    await waitFor(() => recordedPids(ws.piddir).length >= 4 || r.proc.exitCode !== null, HANG_MS, 'foreground and background with grandchildren');
    expect(readGovernors(sys)).toEqual({ cpu0: 'performance' });
    r.proc.kill('SIGINT');
    const { code } = await r.exit;
    expect(code, r.err()).toBe(130);
    expect(r.err()).toMatch(/gpucolo: interrupted: 1 result\(s\) written/);
    const files = fs.readdirSync(ws.results).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const res = readResult(path.join(ws.results, files[0]));
    expectCompleteResult(res);
    expect(res.foreground_result).toMatchObject({ training_success: false, error_message: 'interrupted' });
    expect(res.background_info!.runs_started).toBe(1);
    expect(readGovernors(sys)).toEqual({ cpu0: 'powersave' });
    // every pid the registry recorded and every process the fake programs started is gone
    const doc = readRunRegistry(registry);
    const pids = [...doc.children.map((c) => c.pid!), ...recordedPids(ws.piddir).map((p) => p.pid)];
    expect(doc.children.length).toBeGreaterThanOrEqual(2);
    expect(recordedPids(ws.piddir).map((p) => p.role).sort()).toEqual(['background', 'background-grandchild', 'foreground', 'foreground-grandchild']);
    await waitFor(() => pids.every(dead), HANG_MS, `every process gone: ${pids.filter((p) => !dead(p)).join(' ')}`);
    expect(doc.children.every((c) => c.groupAlive === false)).toBe(true);
  });

  it('SIGTERM, then SIGINT while stopping: every group SIGKILLed at once, not after the grace', async () => {
    const ws = workspace();
    const file = longParallel(ws);
    const registry = path.join(ws.dir, 'registry.json');
    // a one-hour grace: that gpucolo exits at all within the test timeout is the second signal at work
    const r = cli(['experiment', file, '--models', ws.models, '--results', ws.results, '--registry', registry, '--grace', '3600', '--sysfs-root', path.join(ws.dir, 'none'), '--energy-sources', 'rapl']);
    await waitFor(() => recordedPids(ws.piddir).length >= 4 || r.proc.exitCode !== null, HANG_MS, 'foreground and background with grandchildren');
    r.proc.kill('SIGTERM');
    await waitFor(() => r.err().includes('SIGTERM: stopping'), HANG_MS, 'the first signal to be handled');
    // the foreground obeys SIGTERM: once it is gone, the stop is well under way
    const fgPid = recordedPids(ws.piddir).find((p) => p.role === 'foreground')!.pid;
    await waitFor(() => dead(fgPid), HANG_MS, 'the foreground to end on SIGTERM');
    const bgPid = recordedPids(ws.piddir).find((p) => p.role === 'background')!.pid;
    expect(dead(bgPid)).toBe(false); // ignores SIGTERM: would wait out the one-hour grace...
    r.proc.kill('SIGINT'); // ...unless asked twice
    const { code } = await r.exit;
    expect(code, r.err()).toBe(130);
    expect(r.err()).toMatch(/SIGINT again: SIGKILL to every process group/);
    const pids = [...readRunRegistry(registry).children.map((c) => c.pid!), ...recordedPids(ws.piddir).map((p) => p.pid)];
    await waitFor(() => pids.every(dead), HANG_MS, 'every process gone');
    const files = fs.readdirSync(ws.results).filter((f) => f.endsWith('.json'));
    expect(readResult(path.join(ws.results, files[0])).foreground_result.error_message).toBe('interrupted');
  });

  it('gpucolo cleanup after SIGKILL of gpucolo: warned about at the next run, then stopped (default registry location)', async () => {
    const ws = workspace();
    const file = longParallel(ws);
    // the per-user default location, moved into the workspace
    const env = { XDG_RUNTIME_DIR: path.join(ws.dir, 'xdg') };
    const regDir = defaultRegistryDir(env);
    expect(regDir).toBe(path.join(ws.dir, 'xdg', 'gpucolo'));
    const noEnergyArgs = ['--sysfs-root', path.join(ws.dir, 'none'), '--energy-sources', 'rapl'];
    const r = cli(['experiment', file, '--models', ws.models, '--results', ws.results, '--grace', '0.5', ...noEnergyArgs], env);
    await waitFor(() => recordedPids(ws.piddir).length >= 4 || r.proc.exitCode !== null, HANG_MS, 'foreground and background with grandchildren');
    r.proc.kill('SIGKILL');
    await r.exit;
    const pids = recordedPids(ws.piddir).map((p) => p.pid);
    expect(pids.every((p) => !dead(p))).toBe(true); // orphaned, still running
    const registries = listRegistryFiles(regDir);
    expect(registries).toHaveLength(1);
    const doc = readRunRegistry(registries[0]);
    expect(doc.gpucoloPid).toBe(r.proc.pid);
    expect(doc.children.filter((c) => c.state === 'running')).toHaveLength(2);

    // the next experiment says so (and leaves them alone); its own registry is removed when it ends
    const quick = writeExperiment(ws.dir, { experiment_name: 'quick', experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.05, role: 'quick' } }] }, 'quick.json');
    const q = cli(['experiment', quick, '--models', ws.models, '--results', ws.results, ...noEnergyArgs], env);
    expect((await q.exit).code, q.err()).toBe(0);
    expect(q.err()).toMatch(/warning: 2 process group\(s\) left by an earlier gpucolo that was killed are still running .*: run gpucolo cleanup/);
    expect(listRegistryFiles(regDir)).toEqual(registries);

    const dry = cli(['cleanup', '--dry-run'], env);
    expect((await dry.exit).code).toBe(0);
    expect(dry.out()).toMatch(/2 process group\(s\) would be stopped/);
    expect(pids.every((p) => !dead(p))).toBe(true);

    // 2 s: the SIGTERM-obeying foreground group ends well within it even on a busy host; the
    // background ignores SIGTERM and is SIGKILLed after it
    const c = cli(['cleanup', '--grace', '2'], env);
    expect((await c.exit).code, c.err()).toBe(0);
    expect(c.out()).toMatch(/^stopped: foreground long .*ended after SIGTERM/m);
    expect(c.out()).toMatch(/^killed: background long run 1 .*ignored SIGTERM .*SIGKILLed/m);
    expect(c.out()).toMatch(/removed 1 finished registry file/);
    await waitFor(() => pids.every(dead), HANG_MS, `leftovers gone: ${pids.filter((p) => !dead(p)).join(' ')}`);
    expect(listRegistryFiles(regDir)).toEqual([]);
    const again = cli(['cleanup'], env);
    expect((await again.exit).code).toBe(0);
    expect(again.out()).toMatch(/nothing to clean up/);
    const missing = cli(['cleanup', '--registry', path.join(ws.dir, 'no-such.json')], env);
    expect((await missing.exit).code).toBe(2);
  });
});

describe('cleanup safety', () => {
  it('skips a recorded pid that now belongs to another process, and a run whose gpucolo still lives', async () => {
    const ws = workspace();
    // 600 s: still running whenever the test looks, however slow the host (killed in finally)
    const other = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    try {
      const st = readStat('/proc', other.pid!)!;
      const rec = (id: number, startTicks: number) => ({ id, name: `job${id}`, pid: other.pid!, pgid: other.pid!, argv: ['sleep'], cwd: '/', startedAt: '', startedNs: '0', startTicks, state: 'running', code: null, signal: null, groupAlive: true, otherGroups: [] });
      const file = path.join(ws.dir, 'reused.json');
      // a dead gpucolo (pid far beyond pid_max is never alive) that recorded another start time
      writeRegistryFile(file, { schema: RUNS_SCHEMA, gpucoloVersion: '0', runId: 'r', gpucoloPid: 0x7ffffff0, gpucoloStartTicks: 1, startedAt: '', updatedAt: '', children: [rec(1, st.startTicks + 12345)] });
      const rep = await reapRegistries([file], { graceMs: 100 });
      expect(rep.actions).toEqual([expect.objectContaining({ outcome: 'skipped', detail: expect.stringMatching(/now belongs to another process/) })]);
      // the same start time, but its gpucolo (this process) still runs
      const mine = path.join(ws.dir, 'mine.json');
      writeRegistryFile(mine, { schema: RUNS_SCHEMA, gpucoloVersion: '0', runId: 'm', gpucoloPid: process.pid, startedAt: '', updatedAt: '', children: [rec(1, st.startTicks)] });
      const rep2 = await reapRegistries([mine], { graceMs: 100 });
      expect(rep2.actions).toEqual([expect.objectContaining({ outcome: 'skipped', detail: expect.stringMatching(/still running/) })]);
      expect(dead(other.pid!)).toBe(false);
      // --force: stopped
      // a grace that only a process ignoring SIGTERM would wait out (sleep obeys at once)
      const rep3 = await reapRegistries([mine], { graceMs: 30_000, force: true });
      expect(rep3.actions).toEqual([expect.objectContaining({ outcome: 'stopped' })]);
      await waitFor(() => dead(other.pid!), HANG_MS, 'sleep to be stopped');
    } finally {
      try {
        process.kill(-other.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
});

describe('background loop (unit)', () => {
  it('stop() during the pause ends the loop without another run', async () => {
    const ws = workspace();
    const sup = new Supervisor({ graceMs: 300 });
    const spec: JobSpec = { repo: 'r', model: 'm', cwd: ws.dir, argv: ['true'], hyperparameters: {}, timeoutS: 10, metrics: {}, env: {} };
    // the start wait ends when `true` ends: 60 s only so that a busy host's slow start is not "still running"
    const bg = BackgroundLoop.start(spec, { supervisor: sup, logDir: path.join(ws.dir, 'bg'), pauseS: 30, startWaitS: 60 });
    const started = await bg.waitStarted();
    expect(started.ok).toBe(true);
    expect(started.note).toMatch(/finished in/);
    await bg.stop();
    expect(bg.info()).toMatchObject({ runs_started: 1, restarts: 0 });
    expect(sup.live()).toEqual([]);
  });
});

describe('energy recording (unit)', () => {
  it('a recording with no source: every field null, the reasons in the note', async () => {
    const ws = workspace();
    const rec = await startEnergyRecording({ intervalMs: 50, sources: ['rapl'], sysfsRoot: path.join(ws.dir, 'nothing') }).stop();
    const m = energyMetrics(rec, 'combined');
    for (const k of ENERGY_KEYS) expect(m[k]).toBeNull();
    expect(m.note).toMatch(/^gpu: unavailable: no GPU source sampled; cpu: unavailable: rapl: /);
  });

  it('GPU temperature: devices without a sensor are named; none at all: null with the reason', async () => {
    const ws = workspace();
    const root = path.join(ws.dir, 'sys');
    fs.cpSync(POWER_SYSFS, root, { recursive: true });
    const hw2 = path.join(root, 'class/drm/card2/device/hwmon/hwmon5');
    for (const f of fs.readdirSync(hw2).filter((n) => n.startsWith('temp'))) fs.rmSync(path.join(hw2, f));
    const partial = energyMetrics(await startEnergyRecording({ intervalMs: 50, sources: ['amdgpu-sysfs'], sysfsRoot: root }).stop(), 'foreground');
    expect(partial).toMatchObject({ gpu_temp_avg_celsius: 71.5, gpu_temp_max_celsius: 71.5, gpu_power_avg_watts: 202.25 });
    expect(partial.note).toContain('temperature from card0 only (card2: no reading)');
    const hw0 = path.join(root, 'class/drm/card0/device/hwmon/hwmon3');
    for (const f of fs.readdirSync(hw0).filter((n) => n.startsWith('temp'))) fs.rmSync(path.join(hw0, f));
    const none = energyMetrics(await startEnergyRecording({ intervalMs: 50, sources: ['amdgpu-sysfs'], sysfsRoot: root }).stop(), 'foreground');
    expect(none).toMatchObject({ gpu_temp_avg_celsius: null, gpu_temp_max_celsius: null, gpu_power_avg_watts: 202.25 });
    expect(none.note).toContain("temperature unavailable: no readable edge or junction temp*_input in the cards' hwmon");
  });
});

// ---- a real training run ----------------------------------------------------------------------------

const TORCH = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore', timeout: 30_000 });
    return null;
  } catch (err) {
    return `/usr/bin/python3 cannot import torch (${(err as Error).message.split('\n')[0]}): install python3-torch`;
  }
})();
if (TORCH) console.log(`skipping the PyTorch run: ${TORCH}`);

describe('PyTorch (CPU)', () => {
  it.skipIf(TORCH !== null)('tiny_train.py as foreground with tiny_train.py as background, parallel mode', async () => {
    const ws = workspace();
    const file = writeExperiment(ws.dir, {
      experiment_name: 'torch',
      mode: 'parallel',
      background_start_wait_s: 1,
      background_pause_s: 0.2,
      experiments: [{ foreground: { repo: 'torch', model: 'tiny', hyperparameters: { epochs: 3, lr: 0.05 } }, background: { repo: 'torch', model: 'tiny', hyperparameters: { epochs: 2 } } }],
    });
    const report = await run(file, ws.models, { resultsDir: ws.results, ...noEnergy(ws.dir) });
    const r = readResult(report.files[0]);
    expectCompleteResult(r);
    expect(r.foreground_result.training_success, r.foreground_result.error_message ?? '').toBe(true);
    const m = r.foreground_result.performance_metrics;
    expect(m.test_accuracy).toBeGreaterThan(25); // 4 classes: better than chance
    expect(m.test_accuracy).toBeLessThanOrEqual(100);
    expect(m.best_val_accuracy).toBeGreaterThan(25);
    expect(r.background_info!.runs_started).toBeGreaterThanOrEqual(1);
    expect(fs.readFileSync(path.join(r.background_info!.log_dir, 'run_1.log'), 'utf8')).toContain('tiny_train: 2048 samples, epochs 2');
  });
});

describe('cleanup never targets pid/pgid 0 or 1, --registry never overwrites foreign files', () => {
  // dry runs only: a regression here would signal every process on the machine
  const child = (over: Record<string, unknown>) => ({ id: 1, name: 'job', pid: 0x7ffffff1, pgid: 0x7ffffff1, argv: ['x'], cwd: '/', startedAt: '', startedNs: '0', startTicks: 1, state: 'running', code: null, signal: null, groupAlive: true, otherGroups: [], ...over });
  const registry = (dir: string, name: string, children: unknown[]): string => {
    const f = path.join(dir, name);
    // a dead gpucolo (a pid beyond pid_max is never alive)
    writeRegistryFile(f, { schema: RUNS_SCHEMA, gpucoloVersion: '0', runId: name, gpucoloPid: 0x7ffffff0, gpucoloStartTicks: 1, startedAt: '', updatedAt: '', children });
    return f;
  };

  it('a registry naming pgid 0, pid/pgid 1 (with init\'s real start time) or group 0/1 is refused as a whole: nothing would be stopped', async () => {
    const ws = workspace();
    // 600 s: still running whenever the test looks, however slow the host (killed in finally)
    const other = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    try {
      const ticks = readStat('/proc', other.pid!)!.startTicks;
      const init = readStat('/proc', 1)!;
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['pgid0.json', { pid: other.pid, pgid: 0, startTicks: ticks }, /children\[0\]\.pgid is 0/],
        ['pid1.json', { pid: 1, pgid: 1, startTicks: init.startTicks }, /children\[0\]\.pid is 1/],
        ['pgid1.json', { pid: other.pid, pgid: 1, startTicks: ticks }, /children\[0\]\.pgid is 1/],
        ['minus1.json', { pid: -1, pgid: -1, startTicks: ticks }, /children\[0\]\.pid is -1/],
        ['frac.json', { pid: other.pid, pgid: 2.5, startTicks: ticks }, /children\[0\]\.pgid is 2\.5/],
        ['other0.json', { pid: other.pid, pgid: other.pid, startTicks: ticks, otherGroups: [0] }, /otherGroups\[0\] is 0/],
        ['other1.json', { pid: other.pid, pgid: other.pid, startTicks: ticks, otherGroups: [1] }, /otherGroups\[0\] is 1/],
      ];
      for (const [name, over, msg] of cases) {
        const file = registry(ws.dir, name, [child(over)]);
        const rep = await reapRegistries([file], { dryRun: true });
        expect(rep.actions, name).toEqual([]);
        expect(rep.files, name).toEqual([]);
        expect(rep.errors, name).toHaveLength(1);
        expect(rep.errors[0], name).toMatch(msg);
        expect(rep.errors[0]).not.toMatch(/\n/);
      }
      // the CLI: exit 2, one line on stderr, nothing would be stopped (--dry-run only!)
      for (const [name, , msg] of cases.slice(0, 2)) {
        const c = cli(['cleanup', '--dry-run', '--registry', path.join(ws.dir, name)]);
        expect((await c.exit).code, c.err()).toBe(2);
        expect(c.err().trim().split('\n')).toHaveLength(1);
        expect(c.err()).toMatch(/^gpucolo: .*not a usable gpucolo\.runs\/1 run registry: /);
        expect(c.err()).toMatch(msg);
        expect(c.out()).toBe(''); // the one line is all: no report of a file that was refused
      }
      expect(dead(other.pid!)).toBe(false);
    } finally {
      try {
        process.kill(-other.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('groups are never grown from group 0 or pid 1 (container init lives in group 0)', async () => {
    // a fake /proc: init (pid 1, group 0) with a login shell and its job; kthreadd; the recorded
    // child 500 whose descendant 501 sits in group 0, as a process entered from outside would
    const proc = fs.mkdtempSync(path.join(tmp, 'proc-'));
    const stat = (pid: number, name: string, ppid: number, pgrp: number, ticks: number): void => {
      fs.mkdirSync(path.join(proc, String(pid)));
      fs.writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (${name}) S ${ppid} ${pgrp} ${pgrp} ${'0 '.repeat(15)}${ticks} 0 0\n`);
    };
    stat(1, 'init', 0, 0, 1);
    stat(2, 'kthreadd', 0, 0, 1);
    stat(3, 'kworker/0:0', 2, 0, 2);
    stat(600, 'bash', 1, 600, 50);
    stat(601, 'editor', 600, 601, 60);
    stat(500, 'job', 1, 500, 100);
    stat(501, 'helper', 500, 0, 110);
    const ws = workspace();
    const file = registry(ws.dir, 'fake-proc.json', [child({ pid: 500, pgid: 500, startTicks: 100 })]);
    const rep = await reapRegistries([file], { dryRun: true, procRoot: proc });
    expect(rep.errors).toEqual([]);
    expect(rep.actions).toEqual([expect.objectContaining({ outcome: 'alive', groups: [500] })]);
  });

  it('experiment --registry FILE refuses an existing file that is not a run registry (exit 2, one line, file kept)', async () => {
    const ws = workspace();
    const exp = writeExperiment(ws.dir, { experiment_name: 'quick', experiments: [{ repo: 'fake', model: 'fake', hyperparameters: { sleep: 0.05, role: 'quick' } }] });
    const precious = path.join(ws.dir, 'precious.json');
    fs.writeFileSync(precious, '{"precious": true}\n');
    const notJson = path.join(ws.dir, 'notes.txt');
    fs.writeFileSync(notJson, 'my notes\n');
    for (const f of [precious, notJson, ws.dir]) {
      const before = fs.statSync(f).isFile() ? fs.readFileSync(f, 'utf8') : null;
      const c = cli(['experiment', exp, '--models', ws.models, '--results', ws.results, '--registry', f]);
      expect((await c.exit).code, c.err()).toBe(2);
      expect(c.err().trim().split('\n')).toHaveLength(1);
      expect(c.err()).toMatch(/^gpucolo: registry file .* exists and (is not a gpucolo\.runs\/1 run registry|is not a regular file).*refusing to overwrite it/);
      if (before !== null) expect(fs.readFileSync(f, 'utf8')).toBe(before);
      expect(recordedPids(ws.piddir)).toEqual([]);
      expect(fs.existsSync(ws.results)).toBe(false);
    }
    // the library refuses too; an existing run registry (an earlier run's) may be reused
    expect(() => supervisorWithRegistry({ runId: 't', registryFile: precious, graceMs: 100 })).toThrow(expect.objectContaining({ code: 'EREGISTRYFORMAT' }));
    const old = registry(ws.dir, 'old-run.json', []);
    const reg = supervisorWithRegistry({ runId: 'reuse', registryFile: old, graceMs: 100 });
    expect(readRunRegistry(old).runId).toBe('reuse');
    reg.dispose();
  });
});
