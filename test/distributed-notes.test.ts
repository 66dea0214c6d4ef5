/**
 * `distributed analyze` on the design notes' own result files (004): results_baseline_ddp.json,
 * results_all_reduce.json, results_ps.json exactly as the notes print them (test/fixtures/
 * distributed/notes/, with their literal `[...]`), the same files with real lists and three
 * epochs (notes-3epochs/), mixed with gpucolo's own results, and bad inputs; the plot fixes (time
 * units, accuracy ticks, integer step ticks). No torch needed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDistributed, loadAnyResult, loadDistributedResult } from '../src/runners/distributed/index.js';
import { AXIS_FORMATS, PLOT_NAMES, barLabel, timeUnit } from '../src/runners/distributed/analyze.js';
import { METHOD_DISPLAY, methodOfDisplayName, replaceElided } from '../src/runners/distributed/notes-format.js';
import { distributedCli } from './helpers/cli-in-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, 'fixtures/distributed');
const NOTES = path.join(FIX, 'notes');
const NOTES3 = path.join(FIX, 'notes-3epochs');
const FILES = ['results_baseline_ddp.json', 'results_all_reduce.json', 'results_ps.json'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dist-notes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
function dirWith(files: [string, string][]): string {
  const d = path.join(tmp, `d-${++seq}`);
  fs.mkdirSync(d, { recursive: true });
  for (const [from, name] of files) fs.copyFileSync(from, path.join(d, name));
  return d;
}
const notesDir = (src = NOTES): string => dirWith(FILES.map((f) => [path.join(src, f), f]));

const cli = distributedCli;

describe("the notes' result files", () => {
  it('fixtures are the notes\' examples as printed: no schema field, the three method names, a literal [...]', () => {
    for (const f of FILES) {
      const text = fs.readFileSync(path.join(NOTES, f), 'utf8');
      expect(text).toMatch(/"all_losses": \[\.\.\.\]/);
      expect(text).not.toMatch(/"schema"/);
      expect(() => JSON.parse(text)).toThrow();
    }
    expect(Object.values(METHOD_DISPLAY)).toEqual(['Baseline DDP (PyTorch)', 'Manual All-Reduce', 'Parameter Server (PS)']);
    expect(methodOfDisplayName('Parameter Server (PS)')).toBe('ps');
    expect(methodOfDisplayName('manual  all-reduce')).toBe('allreduce');
    expect(methodOfDisplayName('PS')).toBeNull();
  });

  it('loadAnyResult says which format; loadDistributedResult (gpucolo only) refuses the notes\' format with a pointer', () => {
    const ddp = loadAnyResult(path.join(NOTES, 'results_baseline_ddp.json'));
    expect(ddp).toMatchObject({ format: 'notes', method: 'ddp', elided: ['all_losses'] });
    const ar = loadAnyResult(path.join(NOTES, 'results_all_reduce.json'));
    expect(ar).toMatchObject({ format: 'notes', method: 'allreduce', elided: ['epochs[0].all_losses'] });
    expect(loadAnyResult(path.join(FIX, 'results_ps.json'))).toMatchObject({ format: 'gpucolo', method: 'ps', elided: [] });
    expect(() => loadDistributedResult(path.join(NOTES, 'results_ps.json'))).toThrow(/design notes' format: gpucolo distributed analyze reads it/);
  });

  it('analyze writes the same report and plots, with the notes\' names, which format was read, and the elided lists', async () => {
    const d = notesDir();
    const a = await analyzeDistributed(d);
    expect(a.results.map((r) => [r.label, r.displayName, r.format])).toEqual([
      ['ddp', 'Baseline DDP (PyTorch)', 'notes'],
      ['allreduce', 'Manual All-Reduce', 'notes'],
      ['ps', 'Parameter Server (PS)', 'notes'],
    ]);
    const [ddp, ar, ps] = a.comparison;
    expect(ddp).toMatchObject({ throughput: 510.2, timePerEpochS: 305.3, bestValAccuracy: 88.67, finalTrainAccuracy: 85.23, speedupVsDdp: 1, workers: 4 });
    // all-reduce: no validation in the notes' script, final accuracy from its summary
    expect(ar).toMatchObject({ throughput: 495.6, bestValAccuracy: null, finalTrainAccuracy: 86.23 });
    expect(ar.speedupVsDdp).toBeCloseTo(495.6 / 510.2, 12);
    // PS: the notes' layout, rank 0 only serves
    expect(ps).toMatchObject({ workers: 3, psTopology: 'dedicated', throughput: 438.5 });
    expect(ps.perWorkerThroughput).toBeCloseTo(438.5 / 3, 12);
    expect(a.results[2].result.global_batch).toBe(192);
    const [cDdp, cAr, cPs] = a.communication;
    expect(cDdp.overlapped).toBe(true);
    expect(cAr.allreduceMs).toBeCloseTo(15, 9);
    expect(cPs.pullMs).toBeCloseTo(24, 9);
    expect(cPs.pushMs).toBeCloseTo(19, 9);
    expect(cPs.totalMs).toBeCloseTo(43, 9);

    const txt = fs.readFileSync(path.join(d, 'performance_report.txt'), 'utf8');
    expect(txt).toMatch(/^Baseline DDP \(PyTorch\)\s+4\s+4\s+510\s/m);
    expect(txt).toMatch(/^Parameter Server \(PS\)\s+4\s+3 \(PS dedicated\)\s+439\s/m);
    expect(txt).toMatch(/^Read results_baseline_ddp\.json as Baseline DDP \(PyTorch\): the design notes' format .*all_losses written as \[\.\.\.\] \(elided\), read as absent\.$/m);
    expect(txt).toMatch(/^Read results_all_reduce\.json as Manual All-Reduce: the design notes' format .*epochs\[0\]\.all_losses written as/m);
    expect(txt).toMatch(/dedicated PS layout .* 3 of 4 ranks compute, global batch 192 = 64 x 3 workers.*at most 3\/4 = 0\.75/);
    expect(txt).not.toMatch(/^(ddp|allreduce|ps)\s/m);
    const md = fs.readFileSync(path.join(d, 'performance_report.md'), 'utf8');
    expect(md).toMatch(/^\| Parameter Server \(PS\) \| 4 \| 3 \(PS dedicated\) \|/m);

    // the losses are elided: the loss plot says so, the other four are drawn
    const drawn = a.plots.filter((p) => p.svg).map((p) => p.name);
    expect(drawn).toEqual(PLOT_NAMES.filter((n) => n !== 'loss_curves'));
    expect(a.plots.find((p) => p.name === 'loss_curves')!.error).toMatch(/no result has training loss .*\(all_losses written as \[\.\.\.\] in results_baseline_ddp\.json, results_all_reduce\.json, results_ps\.json\)/);
    for (const n of drawn) expect(fs.readFileSync(path.join(d, 'plots', `${n}.svg`), 'utf8')).toMatch(/Parameter Server \(PS\)/);
  });

  it('with the lists filled in (three epochs, per-epoch losses for all-reduce): all 5 plots, losses per step', async () => {
    const d = notesDir(NOTES3);
    const a = await analyzeDistributed(d);
    expect(a.plots.filter((p) => p.svg).map((p) => p.name)).toEqual([...PLOT_NAMES]);
    expect(a.results.map((r) => r.elided)).toEqual([[], [], []]);
    // all-reduce's per-epoch all_losses, concatenated in epoch order
    const raw = JSON.parse(fs.readFileSync(path.join(NOTES3, 'results_all_reduce.json'), 'utf8'));
    expect(a.results[1].result.all_losses).toEqual(raw.epochs.flatMap((e: { all_losses: number[] }) => e.all_losses));
    expect(a.results.map((r) => r.result.steps)).toEqual([24, 24, 24]);
    // summary fields a notes file lacks come from its epochs
    expect(a.comparison[0].finalTrainAccuracy).toBe(100);
    expect(a.comparison[2].finalTrainAccuracy).toBe(99.9);
    for (const p of a.plots) expect(fs.readFileSync(p.png!).subarray(1, 4).toString()).toBe('PNG');
  });

  it('reads a directory mixing both formats and says which each was', async () => {
    const d = dirWith([
      [path.join(FIX, 'results_baseline_ddp.json'), 'results_baseline_ddp.json'],
      [path.join(NOTES3, 'results_ps.json'), 'results_ps.json'],
      [path.join(NOTES3, 'results_ps.json'), 'results_ps_notes.json'],
    ]);
    const a = await analyzeDistributed(d, { plots: false });
    expect(a.results.map((r) => [r.displayName, r.format])).toEqual([
      ['Baseline DDP (PyTorch)', 'gpucolo'],
      ['Parameter Server (PS)', 'notes'],
      ['Parameter Server (PS) [ps_notes]', 'notes'],
    ]);
    expect(a.text).toMatch(/^Read results_baseline_ddp\.json as Baseline DDP \(PyTorch\): gpucolo's format \(gpucolo\.distributed-result\/1\)\.$/m);
    expect(a.text).toMatch(/^Read results_ps\.json as Parameter Server \(PS\): the design notes' format/m);
  });

  it('CLI analyze: the text says which format was read; --json lists it per file', async () => {
    const d = notesDir(NOTES3);
    const t = await cli(['distributed', 'analyze', d, '--no-plots']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/Read results_ps\.json as Parameter Server \(PS\): the design notes' format/);
    const j = await cli(['distributed', 'analyze', d, '--json', '--no-plots']);
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout);
    expect(out.read.map((r: { format: string; displayName: string }) => [r.format, r.displayName])).toEqual([
      ['notes', 'Baseline DDP (PyTorch)'],
      ['notes', 'Manual All-Reduce'],
      ['notes', 'Parameter Server (PS)'],
    ]);
    expect(out.read[2].psTopology).toBe('dedicated');
  });
});

describe("bad inputs in the notes' format", () => {
  const withPs = (text: string): string => {
    const d = notesDir();
    fs.writeFileSync(path.join(d, 'results_ps.json'), text);
    return d;
  };
  const notesPs = (): string => fs.readFileSync(path.join(NOTES, 'results_ps.json'), 'utf8');

  it('an unknown method name lists the three the notes\' scripts write (CLI exit 2, one line)', async () => {
    const d = withPs(notesPs().replace('"Parameter Server (PS)"', '"PS"'));
    await expect(analyzeDistributed(d)).rejects.toThrow(/results_ps\.json: unknown "method" "PS" \(the notes' scripts write "Baseline DDP \(PyTorch\)", "Manual All-Reduce", "Parameter Server \(PS\)"\)/);
    const r = await cli(['distributed', 'analyze', d]);
    expect(r.code).toBe(2);
    expect(r.message).not.toMatch(/\n/);
  });

  it('missing or wrong fields name the field', async () => {
    await expect(analyzeDistributed(withPs(notesPs().replace('"world_size": 4,', '')))).rejects.toThrow(/results_ps\.json: invalid result \(the design notes' format, no "schema" field\): world_size/);
    await expect(analyzeDistributed(withPs(notesPs().replace('"train_time": 350.8', '"train_time": "350.8"')))).rejects.toThrow(/epochs\.0\.train_time/);
    const noEpochs = JSON.parse(replaceElided(notesPs()).text);
    noEpochs.epochs = [];
    await expect(analyzeDistributed(withPs(JSON.stringify(noEpochs)))).rejects.toThrow(/epochs/);
    await expect(analyzeDistributed(withPs(notesPs().replace('"num_workers": 3', '"num_workers": 5')))).rejects.toThrow(/num_workers 5 > world_size 4/);
    await expect(analyzeDistributed(withPs('[1, 2]'))).rejects.toThrow(/results_ps\.json: invalid distributed result: \(top level\): expected an object/);
  });

  it('[...] is accepted only as the notes\' placeholder: not in gpucolo\'s format, not inside strings, not as a cover for other damage', async () => {
    // gpucolo's format with [...]: refused
    const g = fs.readFileSync(path.join(FIX, 'results_ps.json'), 'utf8').replace(/"all_losses": \[[^\]]*\]/, '"all_losses": [...]');
    await expect(analyzeDistributed(withPs(g))).rejects.toThrow(/results_ps\.json: not JSON \(\[\.\.\.\] is only accepted in the design notes' format/);
    // other damage next to [...]: the original JSON error
    await expect(analyzeDistributed(withPs(notesPs().replace('"world_size": 4,', '"world_size": 4,,')))).rejects.toThrow(/results_ps\.json: not JSON/);
    // inside a string it is text
    expect(replaceElided('{"a": "[...]", "b": [...], "c": "x\\"[...]"}')).toEqual({ text: '{"a": "[...]", "b": null, "c": "x\\"[...]"}', count: 1 });
    expect(replaceElided('[ ... ]').count).toBe(1);
    expect(replaceElided('[1, ...]').count).toBe(0);
  });
});

describe('plot fixes', () => {
  it('time in ms below 1 s, else s; bar labels are plain numbers with the unit, never an SI prefix', () => {
    expect(timeUnit(0.459)).toEqual({ unit: 'ms', factor: 1000 });
    expect(timeUnit(305.3)).toEqual({ unit: 's', factor: 1 });
    expect(barLabel(459, 'ms')).toBe('459 ms');
    expect(barLabel(0.459, 's')).toBe('0.459 s');
    expect(barLabel(4498, 'samples/s')).toBe('4498 samples/s');
    expect(AXIS_FORMATS).toEqual({ step: 'd', accuracy: '~f' });
  });

  it('the drawn plots: time axis titled in ms with "455 ms" labels, accuracy ticks "100" not "100.000000", integer step and epoch ticks', async () => {
    const d = notesDir(NOTES3);
    await analyzeDistributed(d, { png: false });
    const svg = (n: string): string => fs.readFileSync(path.join(d, 'plots', `${n}.svg`), 'utf8');
    const texts = (s: string): string[] => [...s.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

    const time = texts(svg('training_time_comparison'));
    expect(time).toContain('time per epoch (ms)');
    expect(time).toContain('455 ms');
    expect(time.some((t) => /^\d+(\.\d+)?m$/.test(t))).toBe(false);

    const acc = texts(svg('accuracy_curves'));
    expect(acc).toContain('100');
    expect(acc.some((t) => /\.\d*0{3,}$/.test(t))).toBe(false);
    const epochTicks = acc.filter((t) => /^[\d.]+$/.test(t) && Number(t) <= 3);
    expect(epochTicks.length).toBeGreaterThan(0);
    expect(epochTicks.every((t) => Number.isInteger(Number(t)))).toBe(true);

    const loss = texts(svg('loss_curves'));
    const numbers = loss.filter((t) => /^-?[\d.]+$/.test(t)).map(Number);
    // step ticks are integers (the loss ticks are the y axis: 0.6 .. 2.4)
    expect(numbers.filter((n) => n > 2.5).every((n) => Number.isInteger(n))).toBe(true);

    // seconds when an epoch takes longer than 1 s (the notes' own example: 305 s)
    const big = notesDir();
    await analyzeDistributed(big, { png: false });
    const t2 = texts(fs.readFileSync(path.join(big, 'plots', 'training_time_comparison.svg'), 'utf8'));
    expect(t2).toContain('time per epoch (s)');
    expect(t2).toContain('305 s');
    // throughput labels: "510 samples/s", not "510" with an SI prefix
    expect(texts(fs.readFileSync(path.join(big, 'plots', 'throughput_comparison.svg'), 'utf8'))).toContain('510 samples/s');
  });

  it('every validation accuracy 100 (a flat line): the tick reads "100" (vega\'s default here is "100.000000")', async () => {
    const d = notesDir(NOTES3);
    for (const f of FILES) {
      const j = JSON.parse(fs.readFileSync(path.join(d, f), 'utf8'));
      for (const e of j.epochs) if ('val_accuracy' in e) e.val_accuracy = 100.0;
      fs.writeFileSync(path.join(d, f), JSON.stringify(j));
    }
    await analyzeDistributed(d, { png: false });
    const t = [...fs.readFileSync(path.join(d, 'plots', 'accuracy_curves.svg'), 'utf8').matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(t).toContain('100');
    expect(t.join('|')).not.toMatch(/100\.0/);
  });

  it('two steps: the step axis has no half steps', async () => {
    const d = notesDir(NOTES3);
    for (const f of FILES) {
      const j = JSON.parse(fs.readFileSync(path.join(d, f), 'utf8'));
      if (j.all_losses) j.all_losses = j.all_losses.slice(0, 2);
      for (const e of j.epochs) if (e.all_losses) e.all_losses = e.all_losses.slice(0, 1);
      fs.writeFileSync(path.join(d, f), JSON.stringify(j));
    }
    await analyzeDistributed(d, { png: false });
    const s = fs.readFileSync(path.join(d, 'plots', 'loss_curves.svg'), 'utf8');
    const texts = [...s.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    // the x axis's labels come first, then its title "step" (vega's default here: 1.0, 1.2, ... 3.0)
    const xTicks = texts.slice(0, texts.indexOf('step'));
    expect(xTicks.length).toBeGreaterThan(0);
    expect(xTicks.every((t) => /^\d+$/.test(t))).toBe(true);
  });
});
