/**
 * Staged (model-swap) runner end to end with the pure-Python toy models (workloads/toy_models.py,
 * /usr/bin/python3, no torch): planning, journal resume without recomputation, a corrupted last
 * journal line, spilling intermediates, failing items, a failing model load. Tests wait for events
 * (call lines, stderr messages) and take vitest's test timeout (vitest.config.ts): the python
 * model hosts start in seconds on a busy 2-core host, and nothing here asserts speed.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planStaged, runStaged } from '../src/runners/staged/index.js';
import { HANG_MS } from './helpers/load.js';

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
  gpuMB?: number;
  onItemError?: 'skip' | 'stop';
  /** declared memory_mb; null: not declared (measured at first load) */
  editMem?: number | null;
  scoreMem?: number | null;
  /** replaces the score stage's model */
  scoreModel?: Record<string, unknown>;
  saveIntermediate?: boolean;
}

const mem = (v: number | null | undefined, dflt: number): { memory_mb?: number } => (v === null ? {} : { memory_mb: v ?? dflt });

function setup(o: Opts = {}): { file: string; dir: string; calls: string; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-'));
  tmps.push(dir);
  const calls = path.join(dir, 'calls.txt');
  const p = {
    name: 'test',
    items: { source: path.join(EXAMPLE, 'items.json'), categories: ['style', 'object', 'background'] },
    stages: [
      { name: 'edit', model: { class_path: 'toy_models.Editor', params: { calls_file: calls, ...o.editParams } }, ...mem(o.editMem, 8000) },
      { name: 'score', model: o.scoreModel ?? { class_path: 'toy_models.Scorer', params: { calls_file: calls, ...o.scoreParams } }, ...mem(o.scoreMem, 6000), inputs: ['edit'] },
    ],
    budgets: { gpu_memory_mb: o.gpuMB ?? 10000, cpu_memory_mb: o.cpuMB ?? 64, output_dir: 'out', save_intermediate: o.saveIntermediate ?? false },
    on_item_error: o.onItemError ?? 'skip',
    python: PY,
  };
  const file = path.join(dir, 'pipeline.json');
  fs.writeFileSync(file, JSON.stringify(p));
  return { file, dir, calls, out: path.join(dir, 'out') };
}

const journalRecords = (out: string): number => fs.readFileSync(path.join(out, 'journal.jsonl'), 'utf8').trim().split('\n').length - 1;
const CLI = path.resolve('dist/cli/cli.js');
const waitFor = (what: () => boolean, label: () => string, ms = HANG_MS): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    const limit = Date.now() + ms;
    const poll = setInterval(() => {
      if (what()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() > limit) {
        clearInterval(poll);
        reject(new Error(`timed out waiting: ${label()}`));
      }
    }, 20);
  });
const callLines = (f: string): string[] => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : []);
/** `gpucolo staged run` to its end; the timeout only guards against a hang */
const runCli = (file: string) => spawnSync(process.execPath, [CLI, 'staged', 'run', file], { encoding: 'utf8', timeout: 2 * HANG_MS });

describe.skipIf(!hasPy)('staged runner', () => {
  it('plans the example with one load per model per category and runs it end to end', async () => {
    // a copy: a run of the example itself leaves a journal in its out/ that changes the plan
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-example-'));
    tmps.push(copy);
    for (const f of fs.readdirSync(EXAMPLE)) if (!fs.statSync(path.join(EXAMPLE, f)).isDirectory()) fs.copyFileSync(path.join(EXAMPLE, f), path.join(copy, f));
    // the example names no output_dir (its default is under the current directory): plan against
    // an empty one
    const plan = planStaged(path.join(copy, 'pipeline.yaml'), { outputDir: path.join(copy, 'out') }).plan;
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
  });

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
  });

  it('CLI: SIGINT mid-run exits 130; staged run again resumes and finishes with every (item, stage) done once', { timeout: 4 * HANG_MS }, async () => {
    const t = setup({ editParams: { sleep_ms: 150 }, scoreParams: { sleep_ms: 150 } });
    const child = spawn(process.execPath, [CLI, 'staged', 'run', t.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    await waitFor(() => callLines(t.calls).length >= 4, () => `no progress: ${err}`);
    child.kill('SIGINT');
    const code = await exited;
    expect(code, err).toBe(130);
    const before = callLines(t.calls).length;
    expect(before).toBeGreaterThanOrEqual(4);
    expect(before).toBeLessThan(18);
    expect(err).toMatch(/SIGINT: finishing the item in flight/);
    // the item in flight when SIGINT came was finished and journaled
    expect(journalRecords(t.out)).toBe(before);
    const again = runCli(t.file);
    expect(again.status, again.stderr).toBe(0);
    // every (stage, category, item) done exactly once over both runs
    const lines = callLines(t.calls);
    expect(new Set(lines).size).toBe(18);
    expect(lines).toHaveLength(18);
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
  });

  it('spills intermediate outputs to disk beyond cpu_memory_mb and reads them back', async () => {
    const t = setup({ cpuMB: 0.00005 }); // ~50 bytes: one edit output fits
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
  });

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
  });

  it('on_item_error: stop ends the run at the failing item, with the items before it journaled', async () => {
    const t = setup({ editParams: { fail_on_ids: ['o2'] }, onItemError: 'stop' });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('stopped');
    expect(rep.error).toMatch(/o2/);
    expect(rep.error).not.toMatch(/\n/);
    // nothing after the failing item ran
    const calls = callLines(t.calls);
    expect(calls.at(-1)).toMatch(/^edit\tobject\to2$/);
  });

  it('stops with a clear message when a model load fails, journal intact', async () => {
    const t = setup({ scoreParams: { load_fail: true } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('stopped');
    expect(rep.error).toMatch(/cannot load the model of stage "score".*load failed on purpose/);
    const lines = fs.readFileSync(path.join(t.out, 'journal.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1 + 3); // header + the first category's edits
    for (const l of lines) JSON.parse(l);
    expect(planStaged(t.file).remaining.categories[0].remaining).toEqual({ edit: 0, score: 3 });
  });
  it('an abort while an item is in flight lets it finish and journals it: nothing is recomputed', async () => {
    const t = setup({ editParams: { sleep_ms: 120 }, scoreParams: { sleep_ms: 120 } });
    const ac = new AbortController();
    const run = runStaged(t.file, { signal: ac.signal });
    // the 5th call has started (its line is written before the sleep): abort while it runs
    await waitFor(() => callLines(t.calls).length >= 5, () => `${callLines(t.calls).length} calls`);
    ac.abort();
    const first = await run;
    expect(first.status).toBe('interrupted');
    const n = callLines(t.calls).length;
    expect(journalRecords(t.out)).toBe(n);
    const second = await runStaged(t.file);
    expect(second.status).toBe('done');
    expect(second.resumedRecords).toBe(n);
    expect(callLines(t.calls)).toHaveLength(18);
    expect(new Set(callLines(t.calls)).size).toBe(18);
  });

  it('killSignal stops the model hosts at once; the item in flight is redone on resume', async () => {
    const t = setup({ editParams: { sleep_ms: 20_000, fail_on_ids: [] } });
    const soft = new AbortController();
    const hard = new AbortController();
    const run = runStaged(t.file, { signal: soft.signal, killSignal: hard.signal });
    await waitFor(() => callLines(t.calls).length >= 1, () => 'no call started');
    soft.abort();
    hard.abort(); // without this the run would wait for the 20 s item
    const first = await run;
    expect(first.status).toBe('interrupted');
    expect(first.error).toMatch(/model hosts killed/);
    expect(journalRecords(t.out)).toBe(0);
    expect(first.stages.find((s) => s.name === 'edit')!.processedThisRun).toBe(0);
  });

  it('CLI: a second SIGINT stops the model hosts at once (exit 130); the item in flight is redone on resume', async () => {
    const t = setup({ editParams: { sleep_ms: 30_000 } });
    const child = spawn(process.execPath, [CLI, 'staged', 'run', t.file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await waitFor(() => callLines(t.calls).length >= 1, () => err);
    child.kill('SIGINT');
    await waitFor(() => /finishing the item in flight/.test(err), () => err);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, err).toBe(130);
    expect(err).toMatch(/SIGINT again: stopping the model hosts now/);
    expect(journalRecords(t.out)).toBe(0);
  });

  it('CLI: SIGKILL mid-run; staged run again finishes, redoing at most the item in flight', { timeout: 4 * HANG_MS }, async () => {
    const t = setup({ editParams: { sleep_ms: 150 }, scoreParams: { sleep_ms: 150 } });
    const child = spawn(process.execPath, [CLI, 'staged', 'run', t.file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await waitFor(() => callLines(t.calls).length >= 6, () => err);
    child.kill('SIGKILL');
    await new Promise<void>((r) => child.on('exit', () => r()));
    // slow items are journaled one by one (fsync) as they finish
    expect(journalRecords(t.out)).toBeGreaterThanOrEqual(callLines(t.calls).length - 1);
    const again = runCli(t.file);
    expect(again.status, again.stderr).toBe(0);
    const lines = callLines(t.calls);
    expect(new Set(lines).size).toBe(18);
    expect(lines.length).toBeLessThanOrEqual(19);
  });

  it('re-plans with measured memory: undeclared models start alone, then share the GPU once they fit', async () => {
    const t = setup({ editMem: null, scoreMem: null, editParams: { memory_mb: 3000 }, scoreParams: { memory_mb: 4000 } });
    const first = planStaged(t.file).plan;
    expect(first.mode).toBe('stage-by-stage');
    expect(first.notes.join('\n')).toMatch(/stage edit: memory not declared/);
    const plans: boolean[] = [];
    const rep = await runStaged(t.file, { onEvent: (e) => e.type === 'plan' && plans.push(e.replanned) });
    expect(rep.status).toBe('done');
    expect(plans).toEqual([false, true, true]); // first plan, then after each model's first load
    expect(rep.plan!.plans).toBe(3);
    // edit (measured 3000), style edits, edit out, score (measured 4000): both fit, edit back once
    expect(rep.swaps.list.map((s) => `${s.kind} ${s.stage}`)).toEqual(['load edit', 'unload edit', 'load score', 'load edit']);
    expect(rep.swaps.list.map((s) => s.memoryMB)).toEqual([3000, 3000, 4000, 3000]);
    expect(rep.swaps.mbMoved).toBe(13000);
    expect(callLines(t.calls)).toHaveLength(18);
    expect(rep.categories.every((c) => c.completed === 3)).toBe(true);
  });

  it('measured memory that does not fit keeps the stage-by-stage plan; a model that reports none stays planned alone, with a warning', async () => {
    const big = setup({ editMem: null, scoreMem: null, editParams: { memory_mb: 8000 }, scoreParams: { memory_mb: 6000 } });
    const rep = await runStaged(big.file);
    expect(rep.status).toBe('done');
    expect(rep.swaps.loads).toBe(6);
    const silent = setup({ editMem: null, scoreMem: 10 }); // the toy Editor reports no memory by default
    const warned: string[] = [];
    const rep2 = await runStaged(silent.file, { onEvent: (e) => e.type === 'warning' && warned.push(e.message) });
    expect(rep2.status).toBe('done');
    expect(warned.join('\n')).toMatch(/stage edit: the model reported no memory use.*set memory_mb/);
    expect(rep2.swaps.loads).toBe(6); // 10 MB + "the whole budget" never fit together
    expect(rep2.swaps.list.find((s) => s.stage === 'edit')!.memoryMB).toBeUndefined();
    expect(rep2.swaps.mbMoved).toBeNull();
  });

  it('releases outputs from memory after their last reader, so a budget of one category never spills', async () => {
    // each edit output is ~40 bytes of JSON: ~150 bytes hold one category's three, not two categories'
    const t = setup({ cpuMB: 150 / (1024 * 1024) });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.spilled).toBe(0);
    expect(rep.freed).toBe(9);
    expect(fs.existsSync(path.join(t.out, 'intermediate'))).toBe(false);
    expect(rep.categories.every((c) => c.completed === 3 && c.fields.score.n === 3)).toBe(true);
  });

  it('writes outputs over 64 KiB to files (the journal stays small) and save_intermediate keeps every output', async () => {
    const t = setup({ editParams: { pad_bytes: 70_000 } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    const journal = fs.readFileSync(path.join(t.out, 'journal.jsonl'), 'utf8');
    expect(journal.length).toBeLessThan(10_000);
    expect(fs.readdirSync(path.join(t.out, 'intermediate', 'edit', 'style'))).toHaveLength(3);
    const saved = setup({ saveIntermediate: true });
    const rep2 = await runStaged(saved.file);
    for (const st of ['edit', 'score']) expect(fs.readdirSync(path.join(saved.out, 'intermediate', st, 'object')).sort()).toEqual(['o1.json', 'o2.json', 'o3.json']);
    expect(JSON.parse(fs.readFileSync(path.join(saved.out, 'intermediate', 'score', 'object', 'o1.json'), 'utf8'))).toHaveProperty('score');
    expect(rep2.categories.map((c) => c.fields.score)).toEqual(rep.categories.map((c) => c.fields.score));
  });

  it('a stage with a failed input skips the item even after its other input left memory', async () => {
    const t = setup();
    const p = JSON.parse(fs.readFileSync(t.file, 'utf8'));
    const toy = (cls: string, params: Record<string, unknown> = {}) => ({ class_path: `toy_models.${cls}`, params: { calls_file: t.calls, ...params } });
    // d reads b only and runs before c, which reads a (fails on o2) and b: b's o2 output is
    // released after d, since c cannot run o2
    p.stages = [
      { name: 'a', model: toy('Editor', { fail_on_ids: ['o2'] }), memory_mb: 10 },
      { name: 'b', model: toy('Editor'), memory_mb: 10, inputs: [] },
      { name: 'd', model: toy('Scorer'), memory_mb: 10, inputs: ['b'] },
      { name: 'c', model: toy('Scorer'), memory_mb: 10, inputs: ['a', 'b'] },
    ];
    fs.writeFileSync(t.file, JSON.stringify(p));
    const rep = await runStaged(t.file);
    expect(rep.status, rep.error).toBe('done');
    expect(rep.plan!.mode).toBe('all-resident');
    expect(rep.failures).toEqual([{ category: 'object', item: 'o2', stage: 'a', error: expect.stringMatching(/failed on purpose/) }]);
    expect(rep.skippedForFailedInputs).toEqual({ object: 1 });
    expect(rep.categories.map((c) => c.completed)).toEqual([3, 2, 3]);
  });

  it.skipIf(!fs.existsSync('/proc/self'))('an output directory that cannot be created is one clear error (it used to hang under /proc)', () => {
    const t = setup();
    const p = JSON.parse(fs.readFileSync(t.file, 'utf8'));
    p.budgets.output_dir = '/proc/gpucolo-staged-out';
    fs.writeFileSync(t.file, JSON.stringify(p));
    const r = runCli(t.file);
    expect(r.status, r.stderr).toBe(2); // the pipeline file's output_dir is unusable
    expect(r.stderr.trim()).toMatch(/^gpucolo: cannot create directory \/proc\/gpucolo-staged-out: no such file or directory/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('model hosts that break the protocol stop the run with one line, and no host is left running', async () => {
    const lengthHost = path.resolve('test/fixtures/staged/length-host.mjs');
    // the start timeout matters only for the host that never says hello; every other host (the
    // edit stage's too) must say it in time, so the default (30 s) where no timeout is the point,
    // and 5 s for the silent one: python starts in well under that even at load average 16
    const cases: [Record<string, unknown>, RegExp, number | undefined][] = [
      [{ command: [PY, '-c', 'import time; time.sleep(60)'] }, /stage "score".*no answer within 5 s/, 5000],
      [{ command: [process.execPath, '-e', "console.log('hello world'); setTimeout(() => {}, 60000)"] }, /stage "score".*not a protocol message: "hello world"/, undefined],
      [{ command: [process.execPath, lengthHost, '-', 'wrong-id'] }, /stage "score" process: answered for item "s1-other" while processing "s1"/, undefined],
      [{ command: [process.execPath, lengthHost, '-', 'nan'] }, /stage "score" process: .*\(NaN and Infinity are not JSON\)/, undefined],
    ];
    for (const [scoreModel, msg, startTimeoutMs] of cases) {
      const t = setup({ scoreModel });
      const pids: number[] = [];
      const rep = await runStaged(t.file, startTimeoutMs === undefined ? {} : { startTimeoutMs });
      expect(rep.status).toBe('stopped');
      expect(rep.error).toMatch(msg);
      expect(rep.error).not.toMatch(/\n/);
      // the first category's edits are journaled; nothing from the broken host
      expect(journalRecords(t.out)).toBe(3);
      const leftover = spawnSync('pgrep', ['-f', 'time.sleep\\(60\\)|hello world|length-host.mjs'], { encoding: 'utf8' });
      pids.push(...leftover.stdout.trim().split('\n').filter(Boolean).map(Number));
      expect(pids, `left running: ${leftover.stdout}`).toEqual([]);
    }
    // outputs that are not an object are that item's failure, not a stop
    const t = setup({ scoreModel: { command: [process.execPath, lengthHost, '-', 'array'] } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.failures).toHaveLength(9);
    expect(rep.failures[0].error).toBe('the model host answered outputs that are not a JSON object (an array)');
  });

  it('a NaN in a Python model output is that item failure (NaN is not JSON), not a broken protocol', async () => {
    const t = setup({ scoreParams: { nan_on_ids: ['b2'] } });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.failures).toEqual([{ category: 'background', item: 'b2', stage: 'score', error: expect.stringMatching(/^ValueError: Out of range float values are not JSON compliant/) }]);
  });

  it('--no-resume moves the journal and intermediate/ aside instead of deleting them', async () => {
    const t = setup({ cpuMB: 0.00005 });
    await runStaged(t.file);
    fs.writeFileSync(path.join(t.out, 'intermediate', 'notes.txt'), 'mine');
    const rep = await runStaged(t.file, { resume: false });
    expect(rep.status).toBe('done');
    expect(rep.resumedRecords).toBe(0);
    const aside = fs.readdirSync(t.out).filter((f) => f.startsWith('intermediate.'));
    expect(aside).toHaveLength(1);
    expect(fs.readFileSync(path.join(t.out, aside[0], 'notes.txt'), 'utf8')).toBe('mine');
    expect(fs.readdirSync(t.out).filter((f) => /^journal\..+\.jsonl$/.test(f))).toHaveLength(1);
  });

  it('a journal.jsonl that is not a journal is refused, not overwritten; references outside output_dir are refused', async () => {
    const t = setup();
    fs.mkdirSync(t.out, { recursive: true });
    const junk = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256));
    fs.writeFileSync(path.join(t.out, 'journal.jsonl'), junk);
    await expect(runStaged(t.file)).rejects.toMatchObject({ code: 'EBADJOURNAL' });
    expect(fs.readFileSync(path.join(t.out, 'journal.jsonl')).equals(junk)).toBe(true);

    const u = setup();
    await runStaged(u.file);
    const jf = path.join(u.out, 'journal.jsonl');
    const lines = fs.readFileSync(jf, 'utf8').trim().split('\n');
    // keep the header and the style edits, pointing one of them outside the output directory; drop the rest
    const keep = lines.slice(0, 4).map((l, i) => (i === 1 ? l.replace(/"o":\{[^}]*\}/, '"o":{"file":"../../../../etc/passwd"}') : l));
    fs.writeFileSync(jf, `${keep.join('\n')}\n`);
    const rep = await runStaged(u.file);
    expect(rep.status).toBe('stopped');
    expect(rep.error).toMatch(/journal points outside the output directory/);
  });

  it('a model declared larger than the GPU budget runs alone, with a warning', async () => {
    const t = setup({ editMem: 80_000 });
    const rep = await runStaged(t.file);
    expect(rep.status).toBe('done');
    expect(rep.warnings.join('\n')).toMatch(/stage edit needs 80000 MB, more than the GPU budget of 10000 MB: it runs alone/);
    expect(rep.warnings.filter((w) => /more than the GPU budget/.test(w))).toHaveLength(1);
  });

  it('command stages: model_host.py given its class on the command line, and a host written in Node', async () => {
    const host = path.resolve('workloads/model_host.py');
    const py = setup({ scoreModel: { command: [PY, host, '--class-path', 'toy_models.Scorer', '--path', path.resolve('workloads'), '--params', JSON.stringify({ memory_mb: 6000 })] } });
    const ref = setup();
    const [a, b] = [await runStaged(py.file), await runStaged(ref.file)];
    expect(a.status).toBe('done');
    expect(a.categories.map((c) => c.fields.score)).toEqual(b.categories.map((c) => c.fields.score));

    const node = setup({ scoreModel: { command: [process.execPath, path.resolve('test/fixtures/staged/length-host.mjs'), 'CALLS'] } });
    const p = JSON.parse(fs.readFileSync(node.file, 'utf8'));
    p.stages[1].model.command[2] = node.calls;
    fs.writeFileSync(node.file, JSON.stringify(p));
    const c = await runStaged(node.file);
    expect(c.status).toBe('done');
    expect(callLines(node.calls)).toHaveLength(18);
    expect(c.swaps.list.filter((s) => s.stage === 'score' && s.kind === 'load').every((s) => s.memoryMB === 3072)).toBe(true);
    // "MAKE IT LOOK LIKE A WATERCOLOR" reversed word by word keeps its 30 characters
    expect(c.categories[0].fields.score.max).toBeGreaterThan(0);

    const broken = setup({ scoreModel: { command: [PY, host, '--class-path', 'toy_models.Missing', '--path', path.resolve('workloads')] } });
    const d = await runStaged(broken.file);
    expect(d.status).toBe('stopped');
    expect(d.error).toMatch(/cannot load the model of stage "score".*AttributeError.*Missing/);
    expect(d.error).not.toMatch(/\n/);

    const missing = setup({ scoreModel: { command: ['/nonexistent/gpucolo-host'] } });
    const e = await runStaged(missing.file);
    expect(e.status).toBe('stopped');
    expect(e.error).toBe('cannot load the model of stage "score": cannot start /nonexistent/gpucolo-host: no such program');
    expect(fs.readFileSync(path.join(missing.out, 'journal.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1 + 3); // the first category's edits
  });
});
