/**
 * Where `gpucolo staged` writes: --out (relative to the current directory) instead of the
 * pipeline's output_dir (relative to the pipeline file, which may sit inside node_modules), and a
 * run that fails before recording anything leaves no directory, journal or report it created.
 * Toy models (workloads/toy_models.py) on /usr/bin/python3, no torch.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';

const PY = '/usr/bin/python3';
const CLI = path.join(ROOT, 'dist/cli/cli.js');
const EXAMPLE = path.join(ROOT, 'examples/pipelines/edit-and-score');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-out-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
/**
 * A package directory (as under node_modules) holding a pipeline and its items, and an empty
 * working directory to run from.
 */
function setup(over: { outputDir?: string | null; editModel?: Record<string, unknown> } = {}): { pkg: string; work: string; file: string } {
  const base = path.join(tmp, `t${++seq}`);
  const pkg = path.join(base, 'node_modules', 'gpucolo-pipes');
  const work = path.join(base, 'work');
  fs.mkdirSync(pkg, { recursive: true });
  fs.mkdirSync(work);
  fs.copyFileSync(path.join(EXAMPLE, 'items.json'), path.join(pkg, 'items.json'));
  const p = {
    name: 'outdir',
    items: { source: 'items.json', categories: ['style'] },
    stages: [
      { name: 'edit', model: over.editModel ?? { class_path: 'toy_models.Editor' }, memory_mb: 8000 },
      { name: 'score', model: { class_path: 'toy_models.Scorer' }, memory_mb: 6000, inputs: ['edit'] },
    ],
    budgets: { gpu_memory_mb: 10000, cpu_memory_mb: 64, ...(over.outputDir === null ? {} : { output_dir: over.outputDir ?? 'out' }) },
    python: PY,
  };
  const file = path.join(pkg, 'pipeline.json');
  fs.writeFileSync(file, JSON.stringify(p));
  return { pkg, work, file };
}

function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

describe.runIf(fs.existsSync(PY))('staged output directory', () => {
  it('--out DIR is relative to the current directory: plan reads and run writes there, nothing lands next to the pipeline file', () => {
    const t = setup();
    const plan = cli(['staged', 'plan', t.file, '--out', 'results'], t.work);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^pipeline outdir: mode \S+; 6 \(item, stage\) pairs left\n/);
    expect(ls(t.work)).toEqual([]); // plan writes nothing

    const run = cli(['staged', 'run', t.file, '--out', 'results'], t.work);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^style: 3\/3 done, 0 failed/);
    const out = path.join(t.work, 'results');
    expect(ls(out)).toEqual(expect.arrayContaining(['journal.jsonl', expect.stringMatching(/^evaluation_report_.+\.json$/), expect.stringMatching(/^evaluation_report_.+\.md$/)]));
    expect(run.stdout).toContain(`report ${out}${path.sep}evaluation_report_`);
    expect(ls(t.pkg)).toEqual(['items.json', 'pipeline.json']);

    // the journal is found through --out again: nothing left
    const again = cli(['staged', 'plan', t.file, '--out', 'results'], t.work);
    expect(again.stdout).toMatch(/; 0 \(item, stage\) pairs left\n/);
  }, 120_000);

  it('without --out, output_dir keeps its documented meaning: relative to the pipeline file', () => {
    const t = setup({ outputDir: 'out' });
    const run = cli(['staged', 'run', t.file], t.work);
    expect(run.code, run.stderr).toBe(0);
    expect(ls(path.join(t.pkg, 'out'))).toContain('journal.jsonl');
    expect(ls(t.work)).toEqual([]);
  }, 120_000);

  it('a pipeline without output_dir (like the bundled examples) writes to gpucolo-staged/<name> in the current directory', () => {
    const t = setup({ outputDir: null });
    const run = cli(['staged', 'run', t.file], t.work);
    expect(run.code, run.stderr).toBe(0);
    expect(ls(path.join(t.work, 'gpucolo-staged', 'outdir'))).toContain('journal.jsonl');
    expect(ls(t.pkg)).toEqual(['items.json', 'pipeline.json']);
    // the bundled examples name none either, so from an installed package they write here too
    for (const ex of ['edit-and-score', 'torch-edit-score', 'notes-two-stage']) {
      expect(fs.readFileSync(path.join(ROOT, 'examples/pipelines', ex, 'pipeline.yaml'), 'utf8')).not.toMatch(/output_dir/);
    }
  }, 120_000);

  it('a run whose first model does not start leaves no directory, journal or report it created (exit 1, one line)', () => {
    const t = setup({ outputDir: 'runs/a/b', editModel: { command: ['/nonexistent/gpucolo-host'] } });
    const r = cli(['staged', 'run', t.file], t.work);
    expect(r.code).toBe(1);
    // (the progress lines before it are the plan; the error is the last line)
    expect(r.stderr.trim().split('\n').at(-1)).toBe('gpucolo: stopped: cannot load the model of stage "edit": cannot start /nonexistent/gpucolo-host: no such program');
    expect(r.stdout).toContain('report (not written)');
    expect(ls(t.pkg)).toEqual(['items.json', 'pipeline.json']);

    const viaOut = cli(['staged', 'run', t.file, '--out', 'fresh/x'], t.work);
    expect(viaOut.code).toBe(1);
    expect(ls(t.work)).toEqual([]);
  }, 60_000);

  it('an output directory that already existed stays, with only what was in it', () => {
    const t = setup({ editModel: { command: ['/nonexistent/gpucolo-host'] } });
    const mine = path.join(t.work, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'kept\n');
    const r = cli(['staged', 'run', t.file, '--out', 'mine'], t.work);
    expect(r.code).toBe(1);
    expect(ls(mine)).toEqual(['notes.txt']);
  }, 60_000);

  it('a bad pipeline file creates nothing (exit 2)', () => {
    const t = setup();
    fs.writeFileSync(t.file, JSON.stringify({ name: 'x' }));
    const r = cli(['staged', 'run', t.file, '--out', 'results'], t.work);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(ls(t.work)).toEqual([]);
  });
});
