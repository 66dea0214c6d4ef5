/**
 * Training experiments (issue 6), the configuration side: models file and experiment file
 * (zod, path-qualified errors, JSON Schema export), hyperparameter mutation (seeded, within
 * ranges, log-uniform, distinct), argv building, metric extraction, run planning and summaries.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultModelsPath,
  experimentFileSchema,
  loadExperiment,
  loadModels,
  modelsFileSchema,
  parseExperiment,
  parseModels,
  type HyperparameterSpec,
} from '../src/runners/experiment/config.js';
import { drawDistinct, sampleHyperparameters, seededRandom } from '../src/runners/experiment/mutation.js';
import { buildArgv } from '../src/runners/experiment/command.js';
import { extractMetrics } from '../src/runners/experiment/metrics.js';
import { missingRepoDirs, planRuns } from '../src/runners/experiment/plan.js';
import { summaryCsv, summaryMarkdown } from '../src/runners/experiment/summary.js';
import { unavailableEnergyMetrics } from '../src/runners/experiment/energy-metrics.js';
import { EXPERIMENT_RESULT_SCHEMA, type EnergyMetrics, type ExperimentResult } from '../src/runners/experiment/types.js';
import { ROOT } from './helpers/impls.js';

const FIX = path.join(ROOT, 'test/fixtures/experiment');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-experiment-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

const RESNET = {
  pytorch_resnet_cifar10: {
    path: 'repos/pytorch_resnet_cifar10',
    models: {
      resnet20: {
        command: ['python3', 'train.py', '--arch', 'resnet20'],
        hyperparameters: {
          epochs: { flag: '--epochs', type: 'int', default: 10, range: [5, 20] },
          learning_rate: { flag: '--lr', type: 'float', default: 0.1, range: [0.001, 0.5], distribution: 'log-uniform' },
        },
        metrics: { test_accuracy: 'Test Accuracy:\\s*([\\d.]+)' },
        timeout_s: 36000,
      },
    },
  },
};
const clone = <T>(x: T): T => structuredClone(x);

/** the message of what `fn` throws */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('did not throw');
}
const badModels = (data: unknown) => thrown(() => parseModels(data, 'models.json'));
const badExperiment = (data: unknown) => thrown(() => parseExperiment(data, 'exp.json'));

const models = loadModels(path.join(FIX, 'models.json'));
const EXP = { experiment_name: 'x', experiments: [{ repo: 'pytorch_resnet_cifar10', model: 'resnet20' }] };

describe('models file', () => {
  it('accepts the literal registry shape and the fixture (three repositories, unknown fields ignored)', () => {
    const m = modelsFileSchema.parse(RESNET);
    const r = m.pytorch_resnet_cifar10.models.resnet20;
    expect(r.command).toEqual(['python3', 'train.py', '--arch', 'resnet20']);
    expect(r.hyperparameters.epochs).toMatchObject({ flag: '--epochs', type: 'int', default: 10, range: [5, 20], distribution: 'uniform' });
    expect(r.hyperparameters.learning_rate.distribution).toBe('log-uniform');
    expect(r.timeout_s).toBe(36000);
    expect(Object.keys(models.models)).toEqual(['pytorch_resnet_cifar10', 'Person_reID_baseline_pytorch', 'examples']);
    expect(models.dir).toBe(FIX);
    expect(models.models.Person_reID_baseline_pytorch.models.densenet121.env).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
    // Python named groups are translated
    expect(models.models.examples.models.mnist.metrics.test_accuracy).toBe('Accuracy: \\d+/\\d+ \\((?<acc>[\\d.]+)%\\)');
  });

  it('YAML models files, numbers in env become strings, a top-level $schema is ignored', () => {
    const f = write(
      'models.yaml',
      `$schema: ../schema/models.schema.json
r:
  path: repo
  models:
    m:
      command: [python3, t.py]
      hyperparameters:
        lr: { flag: --lr, type: float, default: 1e-3, range: [1e-5, 1e-1], distribution: log-uniform }
      env: { CUDA_VISIBLE_DEVICES: 0 }
`,
    );
    const m = loadModels(f);
    expect(Object.keys(m.models)).toEqual(['r']);
    expect(m.models.r.models.m.hyperparameters.lr.default).toBe(0.001);
    expect(m.models.r.models.m.env).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
  });

  it('bad registries give path-qualified messages', () => {
    const hp = (patch: Record<string, unknown>) => {
      const m = clone(RESNET) as Record<string, any>;
      Object.assign(m.pytorch_resnet_cifar10.models.resnet20.hyperparameters.learning_rate, patch);
      return badModels(m);
    };
    const LR = 'pytorch_resnet_cifar10.models.resnet20.hyperparameters.learning_rate';
    expect(hp({ range: [0, 0.5] })).toBe(`models.json: invalid models file: ${LR}.range: a log-uniform range needs lo > 0 (got [0, 0.5])`);
    expect(hp({ range: [-1, 0.5] })).toMatch(/learning_rate\.range: a log-uniform range needs lo > 0/);
    expect(hp({ range: [0.5, 0.1], distribution: 'uniform' })).toContain(`${LR}.range: range [lo, hi] needs lo <= hi (got [0.5, 0.1])`);
    expect(hp({ type: 'double' })).toContain(`${LR}.type: Invalid option: expected one of "int"|"float"|"str"|"bool"`);
    expect(hp({ default: 'fast' })).toContain(`${LR}.default: the default of a float hyperparameter is a number (got "fast")`);
    expect(hp({ flag: '--lr 0.1' })).toContain(`${LR}.flag: a flag is one argv item`);
    expect(hp({ choices: [0.1, 0.2] })).toContain(`${LR}.choices: give range or choices, not both`);
    expect(hp({ range: undefined, choices: [0.1, 'x'] })).toContain(`${LR}.choices.1: a choice of a float hyperparameter is a number (got "x")`);

    const ep = (patch: Record<string, unknown>) => {
      const m = clone(RESNET) as Record<string, any>;
      Object.assign(m.pytorch_resnet_cifar10.models.resnet20.hyperparameters.epochs, patch);
      return badModels(m);
    };
    expect(ep({ range: [5.5, 20] })).toMatch(/epochs\.range: an int range has integer bounds/);
    expect(ep({ default: 2.5 })).toMatch(/epochs\.default: the default of an int hyperparameter is an integer \(got 2\.5\)/);
    expect(ep({ type: 'str', default: 'a' })).toMatch(/epochs\.range: a range applies to int and float hyperparameters/);

    const model = (patch: Record<string, unknown>) => {
      const m = clone(RESNET) as Record<string, any>;
      Object.assign(m.pytorch_resnet_cifar10.models.resnet20, patch);
      return badModels(m);
    };
    expect(model({ metrics: { test_accuracy: 'Test Accuracy: ([\\d.]+' } })).toMatch(
      /^models\.json: invalid models file: pytorch_resnet_cifar10\.models\.resnet20\.metrics\.test_accuracy: regex of metric test_accuracy is not a valid regular expression: \/Test Accuracy: .*Unterminated group/,
    );
    expect(model({ metrics: { best_val_accuracy: 'best: [\\d.]+' } })).toMatch(/metrics\.best_val_accuracy: regex of metric best_val_accuracy has no capture group/);
    expect(model({ command: 'python3 train.py --arch resnet20' })).toContain(
      'pytorch_resnet_cifar10.models.resnet20.command: command is an argv array such as ["python3", "train.py"], not a shell string',
    );
    expect(model({ command: [] })).toMatch(/resnet20\.command: command needs at least the program/);
    expect(model({ timeout_s: -1 })).toMatch(/resnet20\.timeout_s: Too small/);
    expect(badModels({ r: { models: {} } })).toMatch(/r\.path: Invalid input.*; r\.models: a repository lists at least one model/);
    expect(badModels({})).toMatch(/\(top level\): the models file lists no repository/);
  });

  it('the default outside the range (or choices) is allowed: the range bounds mutation only', () => {
    const m = clone(RESNET) as Record<string, any>;
    m.pytorch_resnet_cifar10.models.resnet20.hyperparameters.epochs.default = 200;
    expect(modelsFileSchema.parse(m).pytorch_resnet_cifar10.models.resnet20.hyperparameters.epochs.default).toBe(200);
  });

  it('file errors: ENOENT names the file, syntax errors name the file and line', () => {
    const e = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as Error & { code: string };
      }
      throw new Error('no error');
    };
    const missing = e(() => loadModels(path.join(tmp, 'nope', 'models.json')));
    expect(missing.code).toBe('ENOENT');
    expect(missing.message).toBe(`models file not found: ${path.join(tmp, 'nope', 'models.json')}`);
    expect(e(() => loadExperiment(path.join(tmp, 'nope.yaml'))).message).toBe(`experiment file not found: ${path.join(tmp, 'nope.yaml')}`);
    const badJson = e(() => loadModels(write('broken.json', '{"r": ')));
    expect(badJson.code).toBe('EBADCONFIG');
    expect(badJson.message).toMatch(/broken\.json: not valid JSON/);
    expect(e(() => loadExperiment(write('broken.yaml', 'experiments: [unclosed'))).message).toMatch(/broken\.yaml: not valid YAML at line 1/);
    expect(e(() => loadExperiment(write('list.yaml', '- a'))).message).toMatch(/an experiment file is a mapping/);
    expect(e(() => loadExperiment(tmp)).message).toMatch(/^cannot read experiment file .*: EISDIR \(a directory, not an experiment file\)$/);
  });

  it('defaultModelsPath: models.json (or .yaml/.yml) next to the experiment file', () => {
    expect(defaultModelsPath(path.join(FIX, 'parallel_mutation_test.json'))).toBe(path.join(FIX, 'models.json'));
    const d = fs.mkdtempSync(path.join(tmp, 'd-'));
    expect(defaultModelsPath(path.join(d, 'e.yaml'))).toBe(path.join(d, 'models.json'));
    fs.writeFileSync(path.join(d, 'models.yml'), '');
    expect(defaultModelsPath(path.join(d, 'e.yaml'))).toBe(path.join(d, 'models.yml'));
  });
});

describe('experiment file', () => {
  it('accepts the literal parallel file as it is, with documented defaults', () => {
    const { experiment: e } = loadExperiment(path.join(FIX, 'parallel_mutation_test.json'));
    expect(e).toMatchObject({
      experiment_name: 'parallel_mutation_test',
      mode: 'parallel',
      governor: 'performance',
      runs_per_config: 3,
      max_retries: 2,
      seed: 0,
      estimate_split: false,
      background_start_wait_s: 5,
      background_pause_s: 2,
      energy_interval_ms: 1000,
    });
    const background = { repo: 'Person_reID_baseline_pytorch', model: 'densenet121', hyperparameters: { epochs: 60, learning_rate: 0.05, dropout: 0.5 } };
    expect(e.format).toBe('gpucolo');
    expect(e.experiments).toEqual([
      {
        kind: 'parallel',
        foreground: { repo: 'pytorch_resnet_cifar10', model: 'resnet20', hyperparameters: {}, mutate: ['epochs', 'learning_rate'] },
        // one background object: one background, not a list (issue 18: background may be a list)
        background,
        backgrounds: [background],
        backgroundList: false,
      },
    ]);
    const min = experimentFileSchema.parse(EXP);
    expect(min).toMatchObject({ mode: 'default', runs_per_config: 1, max_retries: 0, seed: 0 });
    expect(min.experiments[0]).toEqual({ kind: 'single', repo: 'pytorch_resnet_cifar10', model: 'resnet20', hyperparameters: {}, mutate: [] });
  });

  it('YAML experiment files', () => {
    const { experiment: e } = loadExperiment(path.join(FIX, 'mutation.yaml'));
    expect(e.mode).toBe('mutation');
    expect(e.seed).toBe(42);
    expect(e.experiments[1]).toMatchObject({ kind: 'single', model: 'mnist', hyperparameters: { dry_run: true, seed: 7 }, mutate: ['batch_size', 'optimizer'] });
    // JSON text in a .yaml file
    expect(loadExperiment(write('j.yaml', JSON.stringify(EXP))).experiment.experiment_name).toBe('x');
  });

  it('bad experiment files give path-qualified messages', () => {
    expect(badExperiment({ ...EXP, mode: 'sweep' })).toBe('exp.json: invalid experiment file: mode: Invalid option: expected one of "default"|"mutation"|"parallel"');
    expect(badExperiment({ ...EXP, runs_per_config: -2 })).toBe('exp.json: invalid experiment file: runs_per_config: Too small: expected number to be >=1');
    expect(badExperiment({ ...EXP, runs_per_config: 1.5, max_retries: -1 })).toMatch(/runs_per_config: Invalid input: expected int.*; max_retries: Too small/);
    expect(badExperiment({ ...EXP, energy_interval_ms: 50 })).toMatch(/energy_interval_ms: Too small: expected number to be >=100/);
    expect(badExperiment({ ...EXP, runs: 3 })).toMatch(/\(top level\): Unrecognized key: "runs"/);
    expect(badExperiment({ ...EXP, experiments: [] })).toMatch(/experiments: experiments lists at least one experiment/);
    expect(badExperiment({ experiment_name: '', experiments: EXP.experiments })).toMatch(/experiment_name: Too small/);
    expect(badExperiment({ ...EXP, experiments: [{ model: 'resnet20' }] })).toMatch(/experiments\.0\.repo: each experiment names a repo/);
    expect(badExperiment({ ...EXP, mode: 'mutation' })).toMatch(/experiments\.0\.mutate: mode mutation: list the hyperparameters to sample/);
    expect(badExperiment({ ...EXP, experiments: [{ ...EXP.experiments[0], mutate: ['epochs'] }] })).toMatch(/experiments\.0\.mutate: mutate needs mode: mutation/);
    expect(badExperiment({ ...EXP, mode: 'mutation', experiments: [{ ...EXP.experiments[0], mutate: ['epochs', 'epochs'] }] })).toMatch(/experiments\.0\.mutate: mutate names a hyperparameter twice/);
    expect(badExperiment({ ...EXP, mode: 'mutation', experiments: [{ ...EXP.experiments[0], mutate: ['epochs'], hyperparameters: { epochs: 3 } }] })).toMatch(
      /experiments\.0\.mutate: epochs is both mutated and given in hyperparameters/,
    );
    expect(badExperiment({ ...EXP, mode: 'parallel' })).toMatch(/experiments\.0\.foreground: mode parallel: each experiment has foreground.*; experiments\.0\.repo: mode parallel: repo goes inside foreground or background/);
    expect(badExperiment({ ...EXP, estimate_split: true })).toMatch(/estimate_split: estimate_split applies to mode parallel \(mode is default\)/);
    const par = JSON.parse(fs.readFileSync(path.join(FIX, 'parallel_mutation_test.json'), 'utf8'));
    par.experiments[0].background.mutate = ['epochs'];
    expect(badExperiment(par)).toMatch(/experiments\.0\.background: Unrecognized key: "mutate"/);
    par.mode = 'default';
    delete par.experiments[0].background.mutate;
    expect(badExperiment(par)).toMatch(/experiments\.0\.foreground: foreground and background need mode: parallel/);
  });
});

describe('mutation', () => {
  const specs = models.models.pytorch_resnet_cifar10.models.resnet20.hyperparameters;

  it('seeded: the same seed draws the same values, another seed others; values within ranges and of their type', () => {
    const a = drawDistinct(specs, ['epochs', 'learning_rate'], 10, seededRandom(7));
    expect(drawDistinct(specs, ['epochs', 'learning_rate'], 10, seededRandom(7))).toEqual(a);
    expect(drawDistinct(specs, ['epochs', 'learning_rate'], 10, seededRandom(8))).not.toEqual(a);
    const rng = seededRandom(1);
    for (let i = 0; i < 2000; i++) {
      const hp = sampleHyperparameters(specs, ['epochs', 'learning_rate'], rng);
      expect(Object.keys(hp)).toEqual(['epochs', 'learning_rate']);
      expect(Number.isInteger(hp.epochs)).toBe(true);
      expect(hp.epochs).toBeGreaterThanOrEqual(5);
      expect(hp.epochs).toBeLessThanOrEqual(20);
      expect(hp.learning_rate).toBeGreaterThanOrEqual(0.001);
      expect(hp.learning_rate).toBeLessThanOrEqual(0.5);
    }
  });

  it('int ranges are inclusive and uniform', () => {
    const rng = seededRandom(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 16000; i++) {
      const v = sampleHyperparameters(specs, ['epochs'], rng).epochs as number;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => 5 + i));
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  it('log-uniform: the median is near the geometric mean of the bounds, a quarter of the draws below lo^(3/4) hi^(1/4)', () => {
    const rng = seededRandom(11);
    const v = Array.from({ length: 20000 }, () => sampleHyperparameters(specs, ['learning_rate'], rng).learning_rate as number).sort((x, y) => x - y);
    const geo = Math.sqrt(0.001 * 0.5);
    expect(v[10000] / geo).toBeGreaterThan(0.9);
    expect(v[10000] / geo).toBeLessThan(1.1);
    const q1 = 0.001 ** 0.75 * 0.5 ** 0.25;
    expect(v.filter((x) => x < q1).length / v.length).toBeCloseTo(0.25, 1);
    // a uniform draw's median is the arithmetic mean
    const uni: Record<string, HyperparameterSpec> = { lr: { ...specs.learning_rate, distribution: 'uniform' } };
    const u = Array.from({ length: 20000 }, () => sampleHyperparameters(uni, ['lr'], rng).lr as number).sort((x, y) => x - y);
    expect(u[10000]).toBeGreaterThan(0.23);
    expect(u[10000]).toBeLessThan(0.27);
  });

  it('choices are picked uniformly; bools without choices are mutated over false/true', () => {
    const mnist = models.models.examples.models.mnist.hyperparameters;
    const rng = seededRandom(5);
    const seen = { batch: new Set<unknown>(), opt: new Set<unknown>(), dry: new Set<unknown>() };
    for (let i = 0; i < 200; i++) {
      const hp = sampleHyperparameters(mnist, ['batch_size', 'optimizer', 'dry_run'], rng);
      seen.batch.add(hp.batch_size);
      seen.opt.add(hp.optimizer);
      seen.dry.add(hp.dry_run);
    }
    expect([...seen.batch].sort()).toEqual([128, 32, 64]);
    expect([...seen.opt].sort()).toEqual(['adam', 'sgd']);
    expect([...seen.dry].sort()).toEqual([false, true]);
    expect(() => sampleHyperparameters(mnist, ['seed'], rng)).toThrow(/seed has no range or choices to sample from/);
    expect(() => sampleHyperparameters(mnist, ['nope'], rng)).toThrow(/no hyperparameter nope to mutate \(known: batch_size, optimizer, dry_run, seed\)/);
  });

  it('no duplicate configurations; a space too small is an error at once, a crowded one after the tries', () => {
    const all = drawDistinct(specs, ['epochs'], 16, seededRandom(2), 'resnet20');
    expect(new Set(all.map((h) => h.epochs)).size).toBe(16);
    const tiny: Record<string, HyperparameterSpec> = { e: { flag: '--e', type: 'int', default: 1, range: [1, 3], distribution: 'uniform' } };
    expect(() => drawDistinct(tiny, ['e'], 4, seededRandom(2), 'resnet20')).toThrow('cannot draw 4 distinct configurations of resnet20 from e (only 3 exist)');
    expect(drawDistinct(tiny, ['e'], 3, seededRandom(2)).map((h) => h.e).sort()).toEqual([1, 2, 3]);
    // a float range of width 0 has one value
    const flat: Record<string, HyperparameterSpec> = { f: { flag: '--f', type: 'float', default: 1, range: [0.5, 0.5], distribution: 'uniform' } };
    expect(() => drawDistinct(flat, ['f'], 2, seededRandom(2), 'm')).toThrow(/cannot draw 2 distinct configurations of m from f \(only 1 exist/);
  });
});

describe('argv and metrics', () => {
  it('buildArgv: command + flags in declared order; bools as the flag alone when true', () => {
    const r = models.models.pytorch_resnet_cifar10.models.resnet20;
    expect(buildArgv(r, { learning_rate: 0.0123, epochs: 12 })).toEqual(['python3', 'train.py', '--arch', 'resnet20', '--epochs', '12', '--lr', '0.0123']);
    expect(buildArgv(r, { learning_rate: 1e-7 })).toEqual(['python3', 'train.py', '--arch', 'resnet20', '--lr', '1e-7']);
    const mnist = models.models.examples.models.mnist;
    expect(buildArgv(mnist, { batch_size: 32, optimizer: 'adam; rm -rf /', dry_run: true, seed: 1 })).toEqual([
      'python3',
      'mnist/main.py',
      '--batch-size',
      '32',
      '--optimizer',
      'adam; rm -rf /',
      '--dry-run',
      '--seed',
      '1',
    ]);
    expect(buildArgv(mnist, { dry_run: false })).toEqual(['python3', 'mnist/main.py']);
    expect(() => buildArgv(r, { dropout: 0.1 })).toThrow(/dropout not declared for this model \(known: epochs, learning_rate\)/);
  });

  it('extractMetrics: the last match wins, a missing metric is null', () => {
    // a last match whose group is not a number ("." here) does not count
    const log = ['Epoch 1 Test Accuracy: 40.5', 'Epoch 2 Test Accuracy: 71.25', 'Test Accuracy: .', 'done'].join('\n');
    expect(extractMetrics(log, { test_accuracy: 'Test Accuracy:\\s*([\\d.]+)', best_val_accuracy: 'best val acc (\\d+\\.\\d+)' })).toEqual({ test_accuracy: 71.25, best_val_accuracy: null });
    expect(extractMetrics('Test set: Accuracy: 9812/10000 (98.12%)\n', { test_accuracy: models.models.examples.models.mnist.metrics.test_accuracy })).toEqual({ test_accuracy: 98.12 });
    expect(extractMetrics('^x', { a: 'Accuracy: (?P<v>\\d+)' })).toEqual({ a: null });
    expect(() => extractMetrics('', { a: '(' })).toThrow(/regex of metric a is not a valid regular expression/);
  });
});

describe('plan', () => {
  const par = loadExperiment(path.join(FIX, 'parallel_mutation_test.json')).experiment;

  it('parallel: mutated foreground per run, fixed background, ids, cwd, timeouts, env', () => {
    const runs = planRuns(par, models.models, models.dir);
    expect(runs).toHaveLength(3);
    expect(runs.map((r) => r.experimentId)).toEqual(['parallel_mutation_test_0_resnet20_run0', 'parallel_mutation_test_0_resnet20_run1', 'parallel_mutation_test_0_resnet20_run2']);
    const [r0] = runs;
    expect(r0).toMatchObject({ experimentIndex: 0, runIndex: 0, mode: 'parallel', estimateSplit: false });
    expect(r0.foreground.cwd).toBe(path.join(FIX, 'repos/pytorch_resnet_cifar10'));
    expect(r0.foreground.timeoutS).toBe(36000);
    expect(r0.foreground.metrics).toEqual({ test_accuracy: 'Test Accuracy:\\s*([\\d.]+)' });
    expect(Object.keys(r0.foreground.hyperparameters)).toEqual(['epochs', 'learning_rate']);
    expect(r0.foreground.argv).toEqual(['python3', 'train.py', '--arch', 'resnet20', '--epochs', String(r0.foreground.hyperparameters.epochs), '--lr', String(r0.foreground.hyperparameters.learning_rate)]);
    expect(new Set(runs.map((r) => JSON.stringify(r.foreground.hyperparameters))).size).toBe(3);
    for (const r of runs) {
      expect(r.background).toEqual({
        repo: 'Person_reID_baseline_pytorch',
        model: 'densenet121',
        cwd: path.join(FIX, 'repos/Person_reID_baseline_pytorch'),
        argv: ['python3', 'train.py', '--use_dense', '--total_epoch', '60', '--lr', '0.05', '--droprate', '0.5'],
        hyperparameters: { epochs: 60, learning_rate: 0.05, dropout: 0.5 },
        timeoutS: 86400,
        metrics: { rank1: 'Rank@1:\\s*([\\d.]+)', mAP: 'mAP:\\s*([\\d.]+)' },
        env: { CUDA_VISIBLE_DEVICES: '0' },
      });
    }
    // seeded: the same plan twice; --seed changes the draws
    expect(planRuns(par, models.models, models.dir)).toEqual(runs);
    expect(planRuns(par, models.models, models.dir, { seed: 99 }).map((r) => r.foreground.hyperparameters)).not.toEqual(runs.map((r) => r.foreground.hyperparameters));
    expect(missingRepoDirs(runs)).toEqual([path.join(FIX, 'repos/pytorch_resnet_cifar10'), path.join(FIX, 'repos/Person_reID_baseline_pytorch')]);
  });

  it('default and mutation modes: defaults filled in, given values kept, ids sanitised, absolute repo paths, default timeout', () => {
    const def = experimentFileSchema.parse({ experiment_name: 'base line', runs_per_config: 2, experiments: [{ repo: 'examples', model: 'mnist', hyperparameters: { optimizer: 'adam' } }] });
    const runs = planRuns(def, models.models, models.dir);
    expect(runs.map((r) => r.experimentId)).toEqual(['base_line_0_mnist_run0', 'base_line_0_mnist_run1']);
    expect(runs[0].foreground.hyperparameters).toEqual({ batch_size: 64, optimizer: 'adam', dry_run: false, seed: 1 });
    expect(runs[1].foreground).toEqual(runs[0].foreground);
    expect(runs[0].foreground).toMatchObject({ cwd: '/opt/examples', timeoutS: 86400, env: {}, argv: ['python3', 'mnist/main.py', '--batch-size', '64', '--optimizer', 'adam', '--seed', '1'] });
    expect(runs[0].background).toBeNull();

    const mut = loadExperiment(path.join(FIX, 'mutation.yaml')).experiment;
    const m = planRuns(mut, models.models, models.dir);
    expect(m).toHaveLength(10);
    expect(m[0].experimentId).toBe('lr_sweep_v1_0_resnet20_run0');
    expect(m[9].experimentId).toBe('lr_sweep_v1_1_mnist_run4');
    const mnist = m.filter((r) => r.experimentIndex === 1).map((r) => r.foreground.hyperparameters);
    expect(new Set(mnist.map((h) => `${h.batch_size}/${h.optimizer}`)).size).toBe(5);
    for (const h of mnist) expect(h).toMatchObject({ dry_run: true, seed: 7 });
    // experiment i draws from its own stream: dropping experiment 1 leaves experiment 0's draws alone
    const only0 = planRuns({ ...mut, experiments: [mut.experiments[0]] }, models.models, models.dir);
    expect(only0.map((r) => r.foreground.hyperparameters)).toEqual(m.slice(0, 5).map((r) => r.foreground.hyperparameters));
  });

  it('unknown repositories, models and hyperparameters, wrong types: one error listing every problem and the known names', () => {
    const bad = (e: unknown, opts = {}) => thrown(() => planRuns(experimentFileSchema.parse(e), models.models, models.dir, { file: 'exp.json', ...opts }));
    expect(bad({ ...EXP, experiments: [{ repo: 'nope', model: 'x' }] }, { modelsFile: 'models.json' })).toBe(
      'exp.json: invalid experiment for its models file: experiments.0.repo: unknown repository "nope" in models.json (known: pytorch_resnet_cifar10, Person_reID_baseline_pytorch, examples)',
    );
    expect(bad({ ...EXP, experiments: [{ repo: 'pytorch_resnet_cifar10', model: 'resnet56' }] })).toMatch(/experiments\.0\.model: repository pytorch_resnet_cifar10 has no model "resnet56" \(known: resnet20\)/);
    const p = JSON.parse(fs.readFileSync(path.join(FIX, 'parallel_mutation_test.json'), 'utf8'));
    p.experiments[0].background.hyperparameters.momentum = 0.9;
    p.experiments[0].foreground.mutate.push('dropout');
    expect(bad(p)).toBe(
      'exp.json: invalid experiment for its models file: experiments.0.foreground.mutate.2: model resnet20 of pytorch_resnet_cifar10 has no hyperparameter "dropout" (known: epochs, learning_rate); ' +
        'experiments.0.background.hyperparameters.momentum: model densenet121 of Person_reID_baseline_pytorch has no hyperparameter "momentum" (known: epochs, learning_rate, dropout)',
    );
    expect(bad({ ...EXP, experiments: [{ repo: 'pytorch_resnet_cifar10', model: 'resnet20', hyperparameters: { epochs: 2.5, learning_rate: '0.1' } }] })).toBe(
      'exp.json: invalid experiment for its models file: experiments.0.hyperparameters.epochs: epochs of resnet20 is an int: give an integer (got 2.5); experiments.0.hyperparameters.learning_rate: learning_rate of resnet20 is a float: give a number (got "0.1")',
    );
    expect(bad({ ...EXP, mode: 'mutation', experiments: [{ repo: 'examples', model: 'mnist', mutate: ['seed'] }] })).toMatch(/experiments\.0\.mutate\.0: seed has no range or choices to sample from: .* \(model mnist of examples\)/);
    expect(bad({ ...EXP, mode: 'mutation', runs_per_config: 4, experiments: [{ repo: 'examples', model: 'mnist', mutate: ['batch_size'] }] })).toBe(
      'exp.json: experiments.0.mutate: cannot draw 4 distinct configurations of mnist from batch_size (only 3 exist)',
    );
    // values outside the range are the user's choice
    expect(planRuns(experimentFileSchema.parse({ ...EXP, experiments: [{ ...EXP.experiments[0], hyperparameters: { epochs: 200 } }] }), models.models, models.dir)[0].foreground.hyperparameters.epochs).toBe(200);
  });
});

describe('summary', () => {
  const energy = (over: Partial<EnergyMetrics> = {}): EnergyMetrics => ({
    ...unavailableEnergyMetrics('', 'combined'),
    note: 'gpu: unavailable: libnvidia-ml.so.1 not found; cpu: RAPL energy counter',
    ...over,
  });
  const result = (k: number, over: { metrics: Record<string, number | null>; success: boolean; energy: EnergyMetrics; error?: string }): ExperimentResult => ({
    schema: EXPERIMENT_RESULT_SCHEMA,
    gpucolo_version: '0.1.0',
    experiment_id: `p_0_resnet20_run${k}`,
    experiment_name: 'p',
    timestamp: '2025-01-01T00:00:00Z',
    mode: 'parallel',
    experiment_index: 0,
    run_index: k,
    foreground_result: {
      repository: 'pytorch_resnet_cifar10',
      model: 'resnet20',
      hyperparameters: { epochs: 12, learning_rate: 0.0123 },
      duration_seconds: 123.456,
      energy_metrics: over.energy,
      performance_metrics: over.metrics,
      training_success: over.success,
      retries: over.success ? 0 : 2,
      error_message: over.error ?? null,
      log_file: `logs/run${k}.log`,
    },
    background_info: { repo: 'Person_reID_baseline_pytorch', model: 'densenet121', hyperparameters: { epochs: 60 }, runs_started: 2, restarts: 1, log_dir: 'bg', note: '' },
  });
  const results = [
    result(1, { metrics: { best_val_accuracy: 88.5 }, success: false, energy: energy(), error: 'exit code 1\ntraceback' }),
    result(0, { metrics: { test_accuracy: 91.23456789 }, success: true, energy: energy({ gpu_energy_total_joules: 5000.04, cpu_energy_total_joules: 1200, note: 'gpu: NVML; cpu: RAPL energy counter' }) }),
  ];

  it('Markdown: one table over all runs with a column per metric, n.a. for what is unavailable, background and failures', () => {
    const md = summaryMarkdown(results, 'parallel_mutation_test');
    const lines = md.split('\n');
    expect(lines[0]).toBe('# parallel_mutation_test');
    expect(md).toContain('2 runs, 1 succeeded.');
    expect(md).toContain('| experiment | mode | model | hyperparameters | duration s | success | retries | test_accuracy | best_val_accuracy | gpu energy J | cpu energy J | attribution |');
    expect(md).toContain('| p_0_resnet20_run0 | parallel | resnet20 | epochs=12 learning_rate=0.0123 | 123.5 | yes | 0 | 91.2346 | n.a. | 5000.0 | 1200.0 | combined |');
    expect(md).toContain('| p_0_resnet20_run1 | parallel | resnet20 | epochs=12 learning_rate=0.0123 | 123.5 | no | 2 | n.a. | 88.5 | n.a. | n.a. | combined |');
    expect(md.indexOf('run0 |')).toBeLessThan(md.indexOf('run1 |'));
    expect(md).toContain('## Background');
    expect(md).toContain('| p_0_resnet20_run0 | Person_reID_baseline_pytorch/densenet121 | epochs=60 | 2 | 1 |');
    expect(md).toContain('- p_0_resnet20_run1: exit code 1 (log: logs/run1.log)');
    expect(md).toContain('- gpu: unavailable: libnvidia-ml.so.1 not found; cpu: RAPL energy counter');
    expect(summaryMarkdown([], 'empty')).toContain('No runs.');
  });

  it('CSV: the same columns, empty cells for unavailable values', () => {
    const csv = summaryCsv(results).trimEnd().split('\n');
    expect(csv[0]).toBe('experiment_id,mode,model,hyperparameters,duration_s,success,retries,test_accuracy,best_val_accuracy,gpu_energy_j,cpu_energy_j,attribution');
    expect(csv[1]).toBe('p_0_resnet20_run0,parallel,resnet20,epochs=12 learning_rate=0.0123,123.456,true,0,91.23456789,,5000.04,1200,combined');
    expect(csv[2]).toBe('p_0_resnet20_run1,parallel,resnet20,epochs=12 learning_rate=0.0123,123.456,false,2,,88.5,,,combined');
  });
});

describe('JSON Schema', () => {
  it('schema/experiment.schema.json and schema/models.schema.json are what the zod schemas give now', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/schemas.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const exp = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/experiment.schema.json'), 'utf8'));
    // experiment_name is optional: the notes' mutation.py files have none (named after the file)
    expect(exp.required).toEqual(['experiments']);
    expect(exp.properties.mode.enum).toEqual(['default', 'mutation', 'parallel']);
    const mod = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/models.schema.json'), 'utf8'));
    expect(mod.additionalProperties.required).toEqual(['path', 'models']);
    expect(mod.additionalProperties.properties.models.additionalProperties.required).toEqual(['command']);
  });
});

describe('examples/experiments', () => {
  it('the bundled experiment files plan against their models file and the bundled workload', async () => {
    const { loadExperimentPlan } = await import('../src/runners/experiment/index.js');
    for (const f of ['parallel-tiny.json', 'mutation-tiny.yaml']) {
      const plan = loadExperimentPlan(path.join(ROOT, 'examples/experiments', f), {});
      expect(plan.missingDirs).toEqual([]);
      expect(plan.runs.length).toBeGreaterThanOrEqual(2);
      for (const r of plan.runs) {
        expect(r.foreground.cwd).toBe(path.join(ROOT, 'workloads'));
        expect(r.foreground.argv.slice(0, 2)).toEqual(['/usr/bin/python3', 'tiny_train.py']);
      }
    }
    const par = loadExperimentPlan(path.join(ROOT, 'examples/experiments/parallel-tiny.json'), {});
    expect(par.runs[0].background?.hyperparameters).toMatchObject({ epochs: 20, samples: 8192 });
    // mutated: the two runs differ
    expect(par.runs[0].foreground.hyperparameters).not.toEqual(par.runs[1].foreground.hyperparameters);
  });
});

describe('where experiment writes', () => {
  const PY = '/usr/bin/python3';
  let n = 0;
  /** An experiment and its models file in a package directory (as under node_modules), and an empty working directory. */
  function pkg(experiment: Record<string, unknown> = {}): { pkg: string; work: string; file: string; env: NodeJS.ProcessEnv } {
    const base = path.join(tmp, `where${++n}`);
    const dir = path.join(base, 'node_modules', 'gpucolo-exp');
    const work = path.join(base, 'work');
    const runtime = path.join(base, 'runtime');
    for (const d of [dir, work, runtime]) fs.mkdirSync(d, { recursive: true });
    const models = { quick: { path: '.', models: { m: { command: [PY, '-c', "print('Test Accuracy: 0.5')"], metrics: { test_accuracy: 'Test Accuracy:\\s*([\\d.]+)' }, timeout_s: 60 } } } };
    fs.writeFileSync(path.join(dir, 'models.json'), JSON.stringify(models));
    const file = path.join(dir, 'experiment.json');
    fs.writeFileSync(file, JSON.stringify({ experiment_name: 'where', mode: 'default', experiments: [{ repo: 'quick', model: 'm' }], ...experiment }));
    // a per-test run registry directory, and no energy source (an empty sysfs)
    return { pkg: dir, work, file, env: { ...process.env, XDG_RUNTIME_DIR: runtime } };
  }
  const noEnergy = (work: string): string[] => {
    fs.mkdirSync(path.join(work, '..', 'sys'), { recursive: true });
    return ['--sysfs-root', path.join(work, '..', 'sys'), '--energy-sources', 'rapl'];
  };
  const cli = (args: string[], cwd: string, env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [path.join(ROOT, 'dist/cli/cli.js'), ...args], { encoding: 'utf8', cwd, env, timeout: 120_000 });
  const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

  it.runIf(fs.existsSync(PY))('results default to ./results in the current directory, not next to the experiment file', () => {
    const t = pkg();
    const r = cli(['experiment', t.file, ...noEnergy(t.work)], t.work, t.env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`results in ${path.join(t.work, 'results')} (summary.md, summary.csv)`);
    expect(ls(path.join(t.work, 'results'))).toEqual(expect.arrayContaining(['summary.md', 'summary.csv', 'logs', expect.stringMatching(/^\d{8}T\d{6}Z_where_0_m_run0\.json$/)]));
    expect(ls(t.pkg)).toEqual(['experiment.json', 'models.json']);
  }, 120_000);

  it('an experiment that fails before any run leaves no results directory (bad file, missing repository)', () => {
    const bad = pkg({ mode: 'sideways' });
    const r = cli(['experiment', bad.file, '--results', 'res/deep'], bad.work, bad.env);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(ls(bad.work)).toEqual([]);

    const gone = pkg();
    const models = JSON.parse(fs.readFileSync(path.join(gone.pkg, 'models.json'), 'utf8'));
    models.quick.path = 'no-such-repo';
    fs.writeFileSync(path.join(gone.pkg, 'models.json'), JSON.stringify(models));
    const m = cli(['experiment', gone.file], gone.work, gone.env);
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/^gpucolo: .*repository directory not found: .*no-such-repo/);
    expect(ls(gone.work)).toEqual([]);
  });

  it('runExperiment stopped before its first run removes the results directories it created, and only those', async () => {
    const { loadExperimentPlan, runExperiment } = await import('../src/runners/experiment/index.js');
    const t = pkg();
    const plan = loadExperimentPlan(t.file, {});
    const ctl = new AbortController();
    ctl.abort();
    const registryFile = path.join(t.work, '..', 'registry.json');
    const rep = await runExperiment(plan, { resultsDir: path.join(t.work, 'a', 'b', 'results'), signal: ctl.signal, registryFile, energySources: ['rapl'], sysfsRoot: path.join(t.work, '..') });
    expect(rep).toMatchObject({ interrupted: true, files: [] });
    expect(ls(t.work)).toEqual([]);

    // a results directory that was there stays, with what it held
    const mine = path.join(t.work, 'mine');
    fs.mkdirSync(mine);
    await runExperiment(plan, { resultsDir: path.join(mine, 'new'), signal: ctl.signal, registryFile, energySources: ['rapl'], sysfsRoot: path.join(t.work, '..') });
    expect(ls(t.work)).toEqual(['mine']);
    expect(ls(mine)).toEqual([]);
  });
});
