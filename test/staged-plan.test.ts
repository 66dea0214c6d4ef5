import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPipeline, parsePipeline, stageInputs } from '../src/runners/staged/schema.js';
import { planPipeline, type PlanInput } from '../src/runners/staged/planner.js';
import { JOURNAL_SCHEMA, key, openJournal } from '../src/runners/staged/journal.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-'));

const MIN = `name: p
items:
  source: data/items.json
stages:
  - name: embed
    model: { class_path: toy_models.Embedder, params: { dim: 8 } }
    memory_mb: 500
  - name: score
    model: { command: [python, serve.py] }
budgets:
  gpu_memory_mb: 1000
  cpu_memory_mb: 200
  output_dir: out
`;

describe('staged pipeline schema', () => {
  it('loads a minimal pipeline with defaults, relative to the file', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'p.yaml');
    fs.writeFileSync(f, MIN);
    const { pipeline, file, dir: d } = loadPipeline(f);
    expect(file).toBe(f);
    expect(d).toBe(dir);
    expect(pipeline.items).toEqual({ source: 'data/items.json', categoryField: 'category', idField: 'id' });
    expect(pipeline.budgets.save_intermediate).toBe(false);
    expect(pipeline.on_item_error).toBe('skip');
    expect(stageInputs(pipeline, 0)).toEqual([]);
    expect(stageInputs(pipeline, 1)).toEqual(['embed']);
    const j = parsePipeline(JSON.stringify({ ...pipeline, on_item_error: 'stop' }), 'p.json');
    expect(j.on_item_error).toBe('stop');
  });

  it('path-qualified errors (EBADCONFIG), ENOENT names the file', () => {
    const bad = (text: string) => {
      try {
        parsePipeline(text, 'bad.yaml');
      } catch (err) {
        expect((err as { code: string }).code).toBe('EBADCONFIG');
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad(MIN.replace('class_path: toy_models.Embedder, ', 'class_path: toy_models.Embedder, command: [x], '))).toMatch(/stages\.0\.model: exactly one of class_path or command/);
    expect(bad(MIN.replace('{ command: [python, serve.py] }', '{}'))).toMatch(/stages\.1\.model: exactly one of class_path or command/);
    expect(bad(MIN.replace('class_path: toy_models.Embedder', 'class_path: Embedder'))).toMatch(/stages\.0\.model\.class_path: expected "package\.module\.ClassName"/);
    expect(bad(MIN.replace('name: score', 'name: embed'))).toMatch(/stages\.1\.name: duplicate stage name "embed"/);
    expect(bad(MIN.replace('    memory_mb: 500\n', '    memory_mb: 500\n    inputs: [score]\n'))).toMatch(/stages\.0\.inputs\.0: "score" is not an earlier stage/);
    expect(bad(MIN.replace('    model: { command', '    inputs: [nope]\n    model: { command'))).toMatch(/stages\.1\.inputs\.0: no stage named "nope"/);
    expect(bad(MIN.replace('gpu_memory_mb: 1000', 'gpu_memory_mb: -1'))).toMatch(/budgets\.gpu_memory_mb: /);
    expect(bad(MIN.replace('  output_dir: out\n', '  output_dir: ""\n'))).toMatch(/budgets\.output_dir: /);
    // no output_dir: valid; the run then writes under the current directory (outputDirOf)
    expect(parsePipeline(MIN.replace('  output_dir: out\n', ''), 'ok.yaml').budgets.output_dir).toBeUndefined();
    expect(bad(`${MIN}on_item_error: retry\n`)).toMatch(/on_item_error: /);
    expect(bad(`${MIN}extra: 1\n`)).toMatch(/Unrecognized key.*extra/);
    expect(bad('name: [unclosed')).toMatch(/^bad\.yaml: not valid YAML at line 1/);
    expect(bad('- a list')).toMatch(/a pipeline is a mapping/);
    expect(() => parsePipeline('{"name": ', 'x.json')).toThrow(/^x\.json: not valid JSON/);
    const missing = path.join(tmpDir(), 'nope.yaml');
    expect(() => loadPipeline(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', message: expect.stringContaining(missing) }));
  });

  it('JSON Schema in schema/ is what the zod schema gives now', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/schemas.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const js = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/pipeline.schema.json'), 'utf8'));
    expect(js.properties.stages.type).toBe('array');
    expect(js.required).toEqual(expect.arrayContaining(['name', 'items', 'stages', 'budgets']));
  });
});

const chain = (n: number, mb = 60) => Array.from({ length: n }, (_, i) => ({ name: `s${i}`, memoryMB: mb, inputs: i ? [`s${i - 1}`] : [] }));
const cats = (n: number, items = 10, remaining?: Record<string, number>) => Array.from({ length: n }, (_, i) => ({ name: `c${i}`, items, remaining }));
const kinds = (p: ReturnType<typeof planPipeline>) => p.steps.map((s) => `${s.kind[0]}:${s.stage}${s.category ? `@${s.category}` : ''}`);

describe('staged planner', () => {
  it('all models fit: each loaded once, categories processed with every stage', () => {
    const p = planPipeline({ stages: chain(3, 30), categories: cats(4), gpuMemoryMB: 100 });
    expect(p.mode).toBe('all-resident');
    expect(p.loads).toBe(3);
    expect(p.unloads).toBe(0);
    expect(p.naiveLoads).toBe(3);
    expect(p.steps.filter((s) => s.kind === 'process')).toHaveLength(12);
    expect(p.order[2]).toEqual({ category: 'c2', stages: ['s0', 's1', 's2'] });
  });

  it('2-stage chain not fitting, 3 categories: 6 loads; naive per item: 60', () => {
    const p = planPipeline({ stages: chain(2), categories: cats(3), gpuMemoryMB: 100 });
    expect(p.mode).toBe('stage-by-stage');
    expect(p.loads).toBe(6);
    expect(p.unloads).toBe(5);
    expect(p.naiveLoads).toBe(60);
    expect(kinds(p).slice(0, 5)).toEqual(['l:s0', 'p:s0@c0', 'u:s0', 'l:s1', 'p:s1@c0']);
    expect(p.steps.find((s) => s.kind === 'process')?.items).toBe(10);
  });

  it('a single stage is never reloaded', () => {
    const p = planPipeline({ stages: chain(1, 500), categories: cats(3), gpuMemoryMB: 100 });
    expect(p.loads).toBe(1);
    expect(p.naiveLoads).toBe(1);
    expect(p.notes.join()).toMatch(/needs 500 MB, more than the GPU budget/);
  });

  it('two independent scorers after a done first stage: carry-over saves a load per category boundary', () => {
    const stages = [
      { name: 'embed', memoryMB: 60, inputs: [] },
      { name: 'a', memoryMB: 60, inputs: ['embed'] },
      { name: 'b', memoryMB: 60, inputs: ['embed'] },
    ];
    const p = planPipeline({ stages, categories: cats(3, 10, { embed: 0 }), gpuMemoryMB: 100 });
    expect(p.order.map((o) => o.stages.join(''))).toEqual(['ab', 'ba', 'ab']);
    expect(p.loads).toBe(2 * 3 - 2);
    expect(p.naiveLoads).toBe(60);
    // With the first stage still to do, nothing can be carried over.
    const q = planPipeline({ stages, categories: cats(3), gpuMemoryMB: 100 });
    expect(q.loads).toBe(9);
    expect(q.naiveLoads).toBe(90);
  });

  it('keeps as many next-needed models resident as fit together', () => {
    // 3-stage chain, 2 fit at once: s0 stays beside s2 into category 2 (one load saved), and s1
    // beside s2 into category 3 (another): 9 - 3 = 6, the optimum (Belady) for this sequence.
    const p = planPipeline({ stages: chain(3, 50), categories: cats(3), gpuMemoryMB: 100 });
    expect(kinds(p).filter((k) => k[0] === 'l').join(' ')).toBe('l:s0 l:s1 l:s2 l:s1 l:s0 l:s2');
    expect(p.loads).toBe(6);
    expect(p.naiveLoads).toBe(90);
  });

  it('a model resident at the start is not reloaded', () => {
    const p = planPipeline({ stages: chain(2), categories: cats(3), gpuMemoryMB: 100, resident: ['s0'] });
    expect(p.loads).toBe(5);
    expect(kinds(p)[0]).toBe('p:s0@c0');
    const all = planPipeline({ stages: chain(3, 30), categories: cats(2), gpuMemoryMB: 100, resident: ['s1'] });
    expect(all.loads).toBe(2);
    expect(all.naiveLoads).toBe(2);
  });

  it('a partially done pipeline plans only what is left', () => {
    const input: PlanInput = {
      stages: chain(2),
      categories: [
        { name: 'done', items: 10, remaining: { s0: 0, s1: 0 } },
        { name: 'half', items: 10, remaining: { s0: 0, s1: 4 } },
        { name: 'fresh', items: 10 },
      ],
      gpuMemoryMB: 100,
    };
    const p = planPipeline(input);
    expect(p.order).toEqual([
      { category: 'half', stages: ['s1'] },
      { category: 'fresh', stages: ['s0', 's1'] },
    ]);
    expect(p.steps.filter((s) => s.kind === 'process').map((s) => [s.category, s.stage, s.items])).toEqual([
      ['half', 's1', 4],
      ['fresh', 's0', 10],
      ['fresh', 's1', 10],
    ]);
    expect(p.loads).toBe(3);
    // naive: s1 once for the 4 items of "half" (it stays), then 2 per item of "fresh".
    expect(p.naiveLoads).toBe(1 + 20);
    expect(p.notes.join()).toMatch(/nothing left to do for 1 category: done/);
  });

  // how long this takes is a benchmark figure (bench/staged.ts prints it for this very input), not
  // something a unit test can assert on a shared host
  it('plans 10 stages x 100 categories x 1000 items: one step per (category, stage), far fewer loads than per item', () => {
    const p = planPipeline({ stages: chain(10, 30), categories: cats(100, 1000), gpuMemoryMB: 100 });
    expect(p.steps.filter((s) => s.kind === 'process')).toHaveLength(1000);
    expect(p.naiveLoads).toBe(10 * 100 * 1000);
    expect(p.loads).toBeLessThan(p.naiveLoads / 100); // 780: ~8 loads per category, not 10 per item
  });
});

describe('staged journal', () => {
  it('round trip: header, records, resume map', () => {
    const f = path.join(tmpDir(), 'j', 'journal.jsonl');
    const { journal, done, warnings } = openJournal(f);
    expect(done.size).toBe(0);
    expect(warnings).toEqual([]);
    journal.append({ category: 'c', item: '1', stage: 's0', output: { score: 0.5 }, ms: 3 });
    journal.append({ category: 'c', item: '1', stage: 's1', output: { file: 'out/c/1.npy' } });
    expect(journal.pending).toBe(2);
    journal.flush();
    expect(journal.pending).toBe(0);
    journal.append({ category: 'd', item: '2', stage: 's0', output: 7 });
    journal.close();
    const lines = fs.readFileSync(f, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ schema: JOURNAL_SCHEMA, gpucoloVersion: expect.any(String), created: expect.any(String) });
    expect(lines).toHaveLength(4);
    const again = openJournal(f);
    expect([...again.done.keys()].sort()).toEqual([key('c', '1', 's0'), key('c', '1', 's1'), key('d', '2', 's0')].sort());
    expect(again.done.get(key('c', '1', 's1'))?.output).toEqual({ file: 'out/c/1.npy' });
    expect(again.done.get(key('d', '2', 's0'))).toMatchObject({ output: 7, t: expect.any(String) });
    again.journal.append({ category: 'd', item: '3', stage: 's0', output: null });
    again.journal.close();
    expect(openJournal(f).done.size).toBe(4);
    expect(key('a', 'b', 'c')).toBe('a\u0000b\u0000c');
  });

  it('a truncated last line is ignored with a warning and cut off', () => {
    const f = path.join(tmpDir(), 'journal.jsonl');
    const { journal } = openJournal(f);
    journal.append({ category: 'c', item: '1', stage: 's0', output: 1 });
    journal.close();
    fs.appendFileSync(f, '{"c":"c","i":"2","s":"s0","o":');
    const r = openJournal(f);
    expect(r.done.size).toBe(1);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(`${f}:3: ignored the last journal line`);
    r.journal.append({ category: 'c', item: '2', stage: 's0', output: 2 });
    r.journal.close();
    const again = openJournal(f);
    expect(again.warnings).toEqual([]);
    expect(again.done.size).toBe(2);
    again.journal.close();
  });

  it('a corrupted line in the middle is EBADJOURNAL naming the line', () => {
    const f = path.join(tmpDir(), 'journal.jsonl');
    const { journal } = openJournal(f);
    journal.append({ category: 'c', item: '1', stage: 's0', output: 1 });
    journal.append({ category: 'c', item: '2', stage: 's0', output: 2 });
    journal.close();
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    lines[1] = '{garbage';
    fs.writeFileSync(f, lines.join('\n'));
    expect(() => openJournal(f)).toThrow(expect.objectContaining({ code: 'EBADJOURNAL', message: expect.stringContaining(`${f}:2: corrupted journal line`) }));
  });
});
