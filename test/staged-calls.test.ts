/**
 * Staged pipelines with model classes as the users' design note (003) writes them: the notes'
 * QwenImageEditModel / Qwen3VLRewardModel shapes (load_to_gpu / unload_from_gpu, edit_image(image,
 * instruction), score(...)) served through a `call` mapping in the pipeline file, no process()
 * adapter (the classes of examples/pipelines/notes-two-stage with
 * test/fixtures/staged/notes-003/pipeline.yaml). Bad mappings: one-line errors, exit 2.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parsePipeline, runStaged } from '../src/runners/staged/index.js';
import { HANG_MS } from './helpers/load.js';
import { NOTES_FIXTURE, copyNotesPipeline } from './helpers/staged-notes.js';

const PY = '/usr/bin/python3';
const CLI = path.resolve('dist/cli/cli.js');
const hasPy = fs.existsSync(PY);
const tmps: string[] = [];
afterEach(() => {
  for (const d of tmps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the notes fixture; `edit` changes the parsed pipeline.yaml (written back as JSON). */
function copy(edit?: (p: Record<string, any>, calls: string) => void): { dir: string; file: string; calls: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-calls-'));
  tmps.push(dir);
  copyNotesPipeline(dir);
  let file = path.join(dir, 'pipeline.yaml');
  const calls = path.join(dir, 'calls.txt');
  if (edit) {
    const p = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
    edit(p, calls);
    p.python = PY;
    file = path.join(dir, 'pipeline.json');
    fs.writeFileSync(file, JSON.stringify(p));
  }
  return { dir, file, calls };
}
const withCalls = (calls: string) => (p: Record<string, any>) => {
  for (const s of p.stages) s.model.params.calls_file = calls;
};
const runCli = (file: string, ...args: string[]) =>
  spawnSync(process.execPath, [CLI, 'staged', 'run', file, ...args], { encoding: 'utf8', timeout: 2 * HANG_MS, env: { ...process.env, GPUCOLO_PYTHON: PY } });

describe('staged call mapping: schema', () => {
  const base = () => YAML.parse(fs.readFileSync(path.join(NOTES_FIXTURE, 'pipeline.yaml'), 'utf8')) as Record<string, any>;
  it('the notes pipeline parses; args keep their form (mapping or list)', () => {
    const p = parsePipeline(fs.readFileSync(path.join(NOTES_FIXTURE, 'pipeline.yaml'), 'utf8'), 'pipeline.yaml');
    expect(p.stages[0].call).toEqual({ method: 'edit_image', args: { image: 'item.original_image_b64', instruction: 'item.edit_instruction' }, output: 'edited_image' });
    expect(p.stages[1].call?.args).toHaveLength(6);
    expect(p.stages[1].image_inputs).toBe('image');
  });
  it('an argument from a stage that is not an input is refused with its path', () => {
    const p = base();
    p.stages[0].call.args.image = 'score.edited_image';
    expect(() => parsePipeline(JSON.stringify(p), 'p.json')).toThrow(/stages\.0\.call\.args\.image: "score\.edited_image": "score" is neither item nor an input of this stage \(inputs: none\)/);
  });
  it('a method that is not a Python name, and a field path too deep, are refused', () => {
    const p = base();
    p.stages[0].call.method = 'edit-image';
    p.stages[1].call.args[0] = 'edit.a.b';
    const msg = (() => {
      try {
        parsePipeline(JSON.stringify(p), 'p.json');
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(msg).toMatch(/stages\.0\.call\.method: expected a Python method name/);
    expect(msg).toMatch(/stages\.1\.call\.args\.0: "edit\.a\.b": one field only/);
  });
});

describe.skipIf(!hasPy)('staged call mapping: runs', () => {
  it('the notes pipeline file runs as written: edit_image then score per category, scores in the report', async () => {
    const t = copy();
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    expect(rep.categories.map((c) => [c.name, c.completed, c.failed])).toEqual([
      ['物理', 3, 0],
      ['环境', 2, 0],
    ]);
    // score = 5 + len(str(edited_image)) % 5, edited_image = "edited(<instruction>)"
    const expected = (ins: string) => 5 + (`edited(${ins})`.length % 5);
    expect(rep.categories[0].fields.score.mean).toBeCloseTo((expected('让球落下') + expected('让冰融化') + expected('点燃蜡烛')) / 3);
    expect(rep.plan).toMatchObject({ mode: 'stage-by-stage', loads: 4, naiveLoads: 10 });
  });

  it('arguments reach the methods as mapped: keyword, positional, literals, the previous stage output', async () => {
    const t = copy((p, calls) => withCalls(calls)(p));
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    const lines = fs.readFileSync(t.calls, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`edit_image\t${JSON.stringify(['aGVsbG8=', '让球落下'])}`);
    expect(lines).toContain(`score\t${JSON.stringify(['edited(让球落下)', '一个球在桌上', '让球落下', 'You are an image editing judge.', 'Score the edit from 0 to 10.', 'aGVsbG8='])}`);
    // two-stage order: every edit of a category before its scores
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['edit_image', 'edit_image', 'edit_image', 'score', 'score', 'score', 'edit_image', 'edit_image', 'score', 'score']);
  });

  it('a return value that is a mapping is the output as is; a missing item field fails that item with one line', async () => {
    const t = copy((p) => {
      p.stages[0].call.args.instruction = 'item.instruction';
    });
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    expect(rep.categories[0].failed).toBe(3);
    expect(rep.failures[0].error).toMatch(/^InputError: the item has no field 'instruction' \(has: category, edit_instruction, /);
  });

  it('the bundled example (examples/pipelines/notes-two-stage) plans and runs: auto picks staged, images flow as PNG files', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-example-'));
    tmps.push(out);
    const ex = path.resolve('examples/pipelines/notes-two-stage/pipeline.yaml');
    const plan = spawnSync(process.execPath, [CLI, 'staged', 'plan', ex, '--out', out], { encoding: 'utf8', timeout: 2 * HANG_MS });
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^swaps per-item -> staged: 9 -> 3 \(66\.7% fewer\)/m);
    const r = runCli(ex, '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^strategy: staged \(auto: /m);
    expect(fs.readdirSync(path.join(out, 'images', '物理')).sort()).toEqual(['pair_001.edit.edited_image.png', 'pair_002.edit.edited_image.png', 'pair_003.edit.edited_image.png']);
  });

  it('CLI: a mapping naming a method the class lacks: one-line error, exit 2, nothing run, no output directory', () => {
    const t = copy((p, calls) => {
      withCalls(calls)(p);
      p.stages[1].call.method = 'score_image';
    });
    const r = runCli(t.file);
    expect(r.status).toBe(2);
    const err = r.stderr.trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/stages\.1\.call\.method: Qwen3VLRewardModel has no method 'score_image' \(methods: load_to_gpu, score, unload_from_gpu\)/);
    expect(fs.existsSync(t.calls)).toBe(false);
    expect(fs.existsSync(path.join(t.dir, 'outputs'))).toBe(false);
  });

  it('CLI: a mapping the method does not take (an argument name it lacks): one-line error, exit 2', () => {
    const t = copy((p) => {
      p.stages[0].call.args = { img: 'item.original_image_b64', instruction: 'item.edit_instruction' };
    });
    const r = runCli(t.file);
    expect(r.status).toBe(2);
    const err = r.stderr.trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/stages\.0\.call\.method: QwenImageEditModel\.edit_image\(image, instruction\) does not take the mapped arguments \(img, instruction\)/);
  });
});
