/**
 * --strategy per-item | staged | auto (the design note 003's "single-stage or two-stage"), the
 * swap count in the notes' terms (model switches: 540 -> 9, 98.3% fewer; here 2N-1 = 539 for the
 * per-item order, the notes round it to 2N) and the time the staged order saves on swaps,
 * predicted from load/unload times measured before the run and measured by it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { countSwaps, planPerItem, planPipeline, runStaged, swapSavings, swapSavingsLine, type SwapTimes } from '../src/runners/staged/index.js';
import { HANG_MS } from './helpers/load.js';
import { copyNotesPipeline } from './helpers/staged-notes.js';

const PY = '/usr/bin/python3';
const CLI = path.resolve('dist/cli/cli.js');
const hasPy = fs.existsSync(PY);
const tmps: string[] = [];
afterEach(() => {
  for (const d of tmps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

// the notes: Diffusion ~50 GB, Reward ~45 GB, an 80 GB GPU; 5 categories of 54 pairs = 270 pairs
const STAGES = [
  { name: 'edit', memoryMB: 50_000, inputs: [] },
  { name: 'score', memoryMB: 45_000, inputs: ['edit'] },
];
const CATS = ['物理', '环境', '社会', '因果', '指代'];
const perItemCats = (n: number) => CATS.map((c) => ({ name: c, items: Array.from({ length: n }, (_, i) => ({ id: `pair_${i}`, stages: ['edit', 'score'] })) }));

describe('swap counts in the notes terms', () => {
  it('270 pairs, 5 categories, two models that do not fit together: 539 -> 9 swaps, 98.3% fewer', () => {
    const per = planPerItem({ stages: STAGES, categories: perItemCats(54), gpuMemoryMB: 80_000 });
    const staged = planPipeline({ stages: STAGES, categories: CATS.map((c) => ({ name: c, items: 54 })), gpuMemoryMB: 80_000 });
    expect(per.mode).toBe('per-item');
    expect(countSwaps(per.steps)).toBe(539);
    expect(countSwaps(staged.steps)).toBe(9);
    expect(per.loads).toBe(staged.naiveLoads); // the planner's own per-item estimate agrees
    // one item per process step, alternating models
    expect(per.steps.slice(0, 6).map((s) => `${s.kind} ${s.stage}${s.item ? ` ${s.item}` : ''}`)).toEqual(['load edit', 'process edit pair_0', 'unload edit', 'load score', 'process score pair_0', 'unload score']);
    const s = swapSavings(per.steps, staged.steps, null, null);
    expect(s.reductionPct).toBe(98.3);
    expect(swapSavingsLine(s)).toMatch(/^swaps per-item -> staged: 539 -> 9 \(98\.3% fewer\); time on swaps: predicted: no load\/unload times known/);
  });

  it('time saved: the swaps of each order priced with measured load/unload times (the notes ~30 s a switch: hours)', () => {
    const per = planPerItem({ stages: STAGES, categories: perItemCats(54), gpuMemoryMB: 80_000 });
    const staged = planPipeline({ stages: STAGES, categories: CATS.map((c) => ({ name: c, items: 54 })), gpuMemoryMB: 80_000 });
    const before: SwapTimes = { source: 'calibration', stages: { edit: { loadMs: 20_000, unloadMs: 10_000 }, score: { loadMs: 15_000, unloadMs: 15_000 } } };
    const after: SwapTimes = { source: 'this run', stages: { edit: { loadMs: 18_000, unloadMs: 9_000 }, score: { loadMs: 16_000, unloadMs: 14_000 } } };
    const s = swapSavings(per.steps, staged.steps, before, after);
    // per-item: 270 loads + 269 unloads of each model; staged: 5 loads of each, 5 + 4 unloads
    expect(s.predicted).toEqual({ source: 'calibration', perItemMs: 270 * 35_000 + 270 * 10_000 + 269 * 15_000, stagedMs: 5 * 35_000 + 5 * 10_000 + 4 * 15_000, savedMs: 270 * 35_000 + 270 * 10_000 + 269 * 15_000 - (5 * 35_000 + 5 * 10_000 + 4 * 15_000) });
    expect(s.measured?.savedMs).toBe(270 * 34_000 + 270 * 9_000 + 269 * 14_000 - (5 * 34_000 + 5 * 9_000 + 4 * 14_000));
    expect(swapSavingsLine(s)).toMatch(/predicted 4\.4 h saved \(4\.5 h -> 4\.8 min\); measured 4\.2 h saved/);
  });

  it('a stage without a measured time makes the time unknown, not zero', () => {
    const per = planPerItem({ stages: STAGES, categories: perItemCats(2), gpuMemoryMB: 80_000 });
    const staged = planPipeline({ stages: STAGES, categories: CATS.map((c) => ({ name: c, items: 2 })), gpuMemoryMB: 80_000 });
    const s = swapSavings(per.steps, staged.steps, { source: 'x', stages: { edit: { loadMs: 1, unloadMs: 1 } } }, null);
    expect(s.predicted?.savedMs).toBeNull();
    expect(swapSavingsLine(s)).toMatch(/predicted: not every model's load\/unload time is known; measured: no load\/unload times known/);
  });

  it('models that fit together: neither order swaps', () => {
    const per = planPerItem({ stages: STAGES, categories: perItemCats(3), gpuMemoryMB: 100_000 });
    expect(per.loads).toBe(2);
    expect(countSwaps(per.steps)).toBe(0);
  });
});

function copy(edit?: (p: Record<string, any>, calls: string) => void): { dir: string; file: string; calls: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-strategy-'));
  tmps.push(dir);
  copyNotesPipeline(dir);
  const calls = path.join(dir, 'calls.txt');
  const p = YAML.parse(fs.readFileSync(path.join(dir, 'pipeline.yaml'), 'utf8')) as Record<string, any>;
  for (const s of p.stages) s.model.params.calls_file = calls;
  edit?.(p, calls);
  p.python = PY;
  const file = path.join(dir, 'pipeline.json');
  fs.writeFileSync(file, JSON.stringify(p));
  return { dir, file, calls };
}
const methods = (calls: string) => fs.readFileSync(calls, 'utf8').trim().split('\n').map((l) => l.split('\t')[0]);
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'staged', ...args], { encoding: 'utf8', timeout: 2 * HANG_MS, env: { ...process.env, GPUCOLO_PYTHON: PY } });

describe.skipIf(!hasPy)('--strategy on the notes pipeline', () => {
  it('per-item: each pair edited then scored before the next (10 loads); the report compares with staged', async () => {
    const t = copy();
    const rep = await runStaged(t.file, { python: PY, strategy: 'per-item' });
    expect(rep.status).toBe('done');
    expect(methods(t.calls)).toEqual(['edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score']);
    expect(rep.swaps.loads).toBe(10);
    expect(rep.strategy).toEqual({ requested: 'per-item', used: 'per-item', reason: '--strategy per-item' });
    expect(rep.swapSavings).toMatchObject({ perItem: { swaps: 9, loads: 10 }, staged: { swaps: 3, loads: 4 }, reductionPct: 66.7, predicted: null });
    expect(rep.swapSavings?.measured?.source).toBe('measured in this run');
    expect(rep.categories.map((c) => c.completed)).toEqual([3, 2]);
  });

  it('auto: staged when it swaps less; per-item when the models fit together (no swap to save)', async () => {
    const a = copy();
    const ra = await runStaged(a.file, { python: PY, strategy: 'auto' });
    expect(ra.strategy).toMatchObject({ requested: 'auto', used: 'staged' });
    expect(ra.strategy?.reason).toMatch(/9 -> 3 swaps/);
    expect(methods(a.calls)).toEqual(['edit_image', 'edit_image', 'edit_image', 'score', 'score', 'score', 'edit_image', 'edit_image', 'score', 'score']);
    const b = copy((p) => {
      p.budgets.gpu_memory_mb = 100_000;
    });
    const rb = await runStaged(b.file, { python: PY, strategy: 'auto' });
    expect(rb.strategy).toMatchObject({ requested: 'auto', used: 'per-item' });
    expect(rb.swaps.loads).toBe(2);
  });

  it('the pipeline file may set strategy; a resumed per-item run finishes what is left', async () => {
    const t = copy((p, calls) => {
      p.strategy = 'per-item';
      p.stages[1].model.params.calls_file = calls;
    });
    const ac = new AbortController();
    const first = await runStaged(t.file, { python: PY, signal: ac.signal, onEvent: (e) => e.type === 'item' && e.stage === 'score' && ac.abort() });
    expect(first.status).toBe('interrupted');
    const again = await runStaged(t.file, { python: PY });
    expect(again.status).toBe('done');
    expect(again.strategy?.used).toBe('per-item');
    expect(methods(t.calls)).toEqual(['edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score', 'edit_image', 'score']);
  });

  it('--calibrate predicts from a load and unload of each model before the run; a later run predicts from the earlier report', async () => {
    const t = copy();
    const r1 = await runStaged(t.file, { python: PY, calibrate: true });
    expect(r1.swapSavings?.predicted?.source).toBe('measured before the run (--calibrate)');
    expect(r1.swapSavings?.predicted?.savedMs).not.toBeNull();
    expect(r1.swaps.loads).toBe(4); // calibration loads are not the run's swaps
    const r2 = await runStaged(t.file, { python: PY, resume: false });
    expect(r2.swapSavings?.predicted?.source).toMatch(/^measured by an earlier run \(evaluation_report_\d{8}T\d{6}Z\.json\)$/);
  });

  it('CLI: plan and run print the strategy and the swaps per-item -> staged; a bad --strategy is exit 2', () => {
    const t = copy();
    const plan = cli('plan', t.file, '--strategy', 'per-item');
    expect(plan.status).toBe(0);
    expect(plan.stdout).toMatch(/mode per-item/);
    expect(plan.stdout).toMatch(/^strategy: per-item$/m);
    expect(plan.stdout).toMatch(/^swaps per-item -> staged: 9 -> 3 \(66\.7% fewer\); predicted time on swaps: no load\/unload times measured yet/m);
    const run = cli('run', t.file, '--strategy', 'auto');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^strategy: staged \(auto: staged swaps less/m);
    expect(run.stdout).toMatch(/^swaps per-item -> staged: 9 -> 3 \(66\.7% fewer\); time on swaps: predicted: no load\/unload times known; measured .* saved/m);
    const json = /report (\S+\.json)$/m.exec(run.stdout)![1];
    const md = fs.readFileSync(json.replace(/\.json$/, '.md'), 'utf8');
    expect(md).toMatch(/^- strategy: staged \(auto: staged swaps less/m);
    expect(md).toMatch(/^- swaps per-item -> staged: 9 -> 3 \(66\.7% fewer\); time on swaps: predicted: no load\/unload times known; measured .* saved/m);
    const bad = cli('run', t.file, '--strategy', 'two-stage');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(['gpucolo: --strategy: expected per-item, staged or auto, got "two-stage"']);
  });
});
