/**
 * Staged (model-swap) runner end to end with the pure-Python toy models (workloads/toy_models.py,
 * /usr/bin/python3, no torch): planning, journal resume without recomputation, a corrupted last
 * journal line, spilling intermediates, failing items, a failing model load.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planStaged, runStaged } from '../src/runners/staged/index.js';

const PY = '/usr/bin/python3';
const EXAMPLE = path.resolve('examples/pipelines/edit-and-score');
const hasPy = fs.existsSync(PY);
const tmps: string[] = [];

afterEach(() => {
  for (const d of tmps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Opts {
  editParams?: Record<string, unknown>;
  scoreParams?: Record<string, unknown>;
  cpuMB?: number;
  onItemError?: 'skip' | 'stop';
}

function setup(o: Opts = {}): { file: string; dir: string; calls: string; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-'));
  tmps.push(dir);
  const calls = path.join(dir, 'calls.txt');
  const p = {
    name: 'test',
    items: { source: path.join(EXAMPLE, 'items.json'), categories: ['style', 'object', 'background'] },
    stages: [
      { name: 'edit', model: { class_path: 'toy_models.Editor', params: { calls_file: calls, ...o.editParams } }, memory_mb: 8000 },
      { name: 'score', model: { class_path: 'toy_models.Scorer', params: { calls_file: calls, ...o.scoreParams } }, memory_mb: 6000, inputs: ['edit'] },
    ],
    budgets: { gpu_memory_mb: 10000, cpu_memory_mb: o.cpuMB ?? 64, output_dir: 'out', save_intermediate: false },
    on_item_error: o.onItemError ?? 'skip',
    python: PY,
  };
  const file = path.join(dir, 'pipeline.json');
  fs.writeFileSync(file, JSON.stringify(p));
  return { file, dir, calls, out: path.join(dir, 'out') };
}

const callLines = (f: string): string[] => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : []);

describe.skipIf(!hasPy)('staged runner', () => {
  it('plans the example with one load per model per category and runs it end to end', async () => {
    // a copy: a run of the example itself leaves a journal in its out/ that changes the plan
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-example-'));
    tmps.push(copy);
    for (const f of fs.readdirSync(EXAMPLE)) if (!fs.statSync(path.join(EXAMPLE, f)).isDirectory()) fs.copyFileSync(path.join(EXAMPLE, f), path.join(copy, f));
    const plan = planStaged(path.join(copy, 'pipeline.yaml')).plan;
    expect(plan.mode).toBe('stage-by-stage');
    expect(plan.loads).toBe(2 * 3);
    expect(plan.naiveLoads).toBe(2 * 9);

    const t = setup();
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.swaps.loads).toBe(6);
    expect(rep.categories.map((c) => [c.name, c.completed, c.failed])).toEqual([
      ['style', 3, 0],
      ['object', 3, 0],
      ['background', 3, 0],
    ]);
    const s = rep.categories[0].fields.score;
    expect(s.n).toBe(3);
    expect(s.min!).toBeLessThanOrEqual(s.median!);
    expect(s.median!).toBeLessThanOrEqual(s.max!);
    expect(fs.existsSync(rep.files!.json)).toBe(true);
    expect(fs.readFileSync(rep.files!.md, 'utf8')).toContain('| style | 3 | 3 | 0 | 0 |');
    expect(new Set(callLines(t.calls)).size).toBe(18);
    expect(callLines(t.calls)).toHaveLength(18);
  }, 30_000);

  it('resumes an interrupted run without recomputing anything', async () => {
    const t = setup();
    const ac = new AbortController();
    let n = 0;
    const first = await runStaged(t.file, {
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'item' && ++n === 7) ac.abort();
      },
    });
    expect(first.status).toBe('interrupted');
    expect(callLines(t.calls)).toHaveLength(7);
    const second = await runStaged(t.file);
    expect(second.status).toBe('done');
    expect(second.resumedRecords).toBe(7);
    // every (stage, category, item) done; only the one in flight when SIGINT came may run twice
    const lines = callLines(t.calls);
    expect(new Set(lines).size).toBe(18);
    expect(lines.length).toBeLessThanOrEqual(19);
    expect(second.categories.every((c) => c.completed === 3)).toBe(true);
  }, 30_000);

  it('CLI: SIGINT mid-run exits 130; staged run again resumes and finishes with every (item, stage) done once', { timeout: 90_000 }, async () => {
    const t = setup({ editParams: { sleep_ms: 150 }, scoreParams: { sleep_ms: 150 } });
    const CLI = path.resolve('dist/cli/cli.js');
    const child = spawn(process.execPath, [CLI, 'staged', 'run', t.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const limit = Date.now() + 60_000;
      const poll = setInterval(() => {
        if (callLines(t.calls).length >= 4) {
          clearInterval(poll);
          child.kill('SIGINT');
          resolve();
        } else if (Date.now() > limit) {
          clearInterval(poll);
          reject(new Error(`no progress: ${err}`));
        }
      }, 50);
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, err).toBe(130);
    const before = callLines(t.calls).length;
    expect(before).toBeGreaterThanOrEqual(4);
    expect(before).toBeLessThan(18);
    const again = spawnSync(process.execPath, [CLI, 'staged', 'run', t.file], { encoding: 'utf8', timeout: 60_000 });
    expect(again.status, again.stderr).toBe(0);
    // every (stage, category, item) done; only the one in flight when SIGINT came may run twice
    const lines = callLines(t.calls);
    expect(new Set(lines).size).toBe(18);
    expect(lines.length).toBeLessThanOrEqual(19);
  });

  it('ignores a corrupted last journal line with a warning and redoes only that record', async () => {
    const t = setup();
    await runStaged(t.file);
    const jf = path.join(t.out, 'journal.jsonl');
    const text = fs.readFileSync(jf, 'utf8');
    fs.writeFileSync(jf, text.slice(0, text.length - 10)); // last record cut short
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.warnings.join('\n')).toMatch(/last journal line/);
    const lines = callLines(t.calls);
    expect(lines).toHaveLength(19); // 18 + the one record redone
    expect(rep.categories.every((c) => c.completed === 3)).toBe(true);
  }, 30_000);

  it('spills intermediate outputs to disk beyond cpu_memory_mb and reads them back', async () => {
    const t = setup({ cpuMB: 0.0002 }); // ~200 bytes: a few outputs fit
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.spilled).toBeGreaterThan(0);
    expect(rep.reloaded).toBeGreaterThan(0);
    const files = fs.readdirSync(path.join(t.out, 'intermediate', 'edit', 'background'));
    expect(files.length).toBeGreaterThan(0);
    const ref = fs
      .readFileSync(path.join(t.out, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"file"'));
    expect(ref.length).toBe(rep.spilled);
    // same scores as with everything in memory
    const t2 = setup();
    const rep2 = await runStaged(t2.file);
    expect(rep.categories.map((c) => c.fields.score)).toEqual(rep2.categories.map((c) => c.fields.score));
  }, 30_000);

  it('records a failing item, skips its later stages and counts it', async () => {
    const t = setup({ editParams: { fail_on_ids: ['o2'] } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    const obj = rep.categories.find((c) => c.name === 'object')!;
    expect([obj.completed, obj.failed, obj.pending]).toEqual([2, 1, 0]);
    expect(rep.failures).toEqual([{ category: 'object', item: 'o2', stage: 'edit', error: expect.stringMatching(/failed on purpose/) }]);
    expect(rep.skippedForFailedInputs).toEqual({ object: 1 });
    expect(callLines(t.calls).filter((l) => l.startsWith('score'))).toHaveLength(8);
    // a resume neither retries nor recomputes
    const again = await runStaged(t.file);
    expect(again.categories.find((c) => c.name === 'object')!.failed).toBe(1);
    expect(callLines(t.calls)).toHaveLength(17);
  }, 30_000);

  it('on_item_error: stop ends the run at the failing item, with the items before it journaled', async () => {
    const t = setup({ editParams: { fail_on_ids: ['o2'] }, onItemError: 'stop' });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('stopped');
    expect(rep.error).toMatch(/o2/);
    expect(rep.error).not.toMatch(/\n/);
    // nothing after the failing item ran
    const calls = callLines(t.calls);
    expect(calls.at(-1)).toMatch(/^edit\tobject\to2$/);
  }, 30_000);

  it('stops with a clear message when a model load fails, journal intact', async () => {
    const t = setup({ scoreParams: { load_fail: true } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('stopped');
    expect(rep.error).toMatch(/cannot load the model of stage "score".*load failed on purpose/);
    const lines = fs.readFileSync(path.join(t.out, 'journal.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1 + 3); // header + the first category's edits
    for (const l of lines) JSON.parse(l);
    expect(planStaged(t.file).remaining.categories[0].remaining).toEqual({ edit: 0, score: 3 });
  }, 30_000);
});
