/**
 * Staged runner with a real torch model pair (examples/pipelines/torch-edit-score: a conv image
 * editor and a resnet18 reward scorer) on /usr/bin/python3 with torch, torchvision and PIL (CPU in
 * CI, CUDA when present): memory measured at first load and re-planned, edited images that decode
 * to PNGs of the original size, deterministic scores across fresh runs, and a bad image recorded
 * as that item's failure and skipped by the scorer. Skipped when torch is not importable there.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runStaged } from '../src/runners/staged/index.js';

const PY = '/usr/bin/python3';
const EXAMPLE = path.resolve('examples/pipelines/torch-edit-score');
const hasTorch = fs.existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision, PIL'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
const tmps: string[] = [];

afterEach(() => {
  for (const d of tmps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

type Items = Record<string, { id: string; image: string; instruction: string; description: string }[]>;

/** A copy of the example (files only: no out/, no __pycache__), optionally changed. */
function copyExample(change: { pipeline?: (p: Record<string, any>) => void; items?: (i: Items) => void } = {}): { dir: string; file: string; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-torch-'));
  tmps.push(dir);
  for (const f of fs.readdirSync(EXAMPLE)) if (fs.statSync(path.join(EXAMPLE, f)).isFile()) fs.copyFileSync(path.join(EXAMPLE, f), path.join(dir, f));
  const file = path.join(dir, 'pipeline.yaml');
  // the example names no output_dir (default: under the current directory); the tests write in dir
  const p = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  p.budgets.output_dir = 'out';
  change.pipeline?.(p);
  fs.writeFileSync(file, YAML.stringify(p));
  if (change.items) {
    const items = JSON.parse(fs.readFileSync(path.join(dir, 'items.json'), 'utf8')) as Items;
    change.items(items);
    fs.writeFileSync(path.join(dir, 'items.json'), JSON.stringify(items));
  }
  return { dir, file, out: path.join(dir, 'out') };
}

/** Width and height of a PNG (IHDR), or throws when `buf` is not one. */
function pngSize(buf: Buffer): [number, number] {
  expect(buf.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(buf.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

/** Journal outputs of one stage: "category/id" -> output. */
function journalOutputs(out: string, stage: string): Map<string, Record<string, unknown>> {
  const m = new Map<string, Record<string, unknown>>();
  const lines = fs.readFileSync(path.join(out, 'journal.jsonl'), 'utf8').trim().split('\n').slice(1);
  for (const l of lines) {
    const r = JSON.parse(l) as { c: string; i: string; s: string; o: Record<string, unknown> };
    if (r.s === stage) m.set(`${r.c}/${r.i}`, r.o);
  }
  return m;
}

/** The edited images saved under out/intermediate/edit (save_intermediate: true). */
function editedImages(out: string): Map<string, { image: string; mean_abs_change: number }> {
  const m = new Map<string, { image: string; mean_abs_change: number }>();
  const root = path.join(out, 'intermediate', 'edit');
  for (const cat of fs.readdirSync(root)) {
    for (const f of fs.readdirSync(path.join(root, cat))) {
      const o = JSON.parse(fs.readFileSync(path.join(root, cat, f), 'utf8')) as { image: string; mean_abs_change: number };
      m.set(`${decodeURIComponent(cat)}/${decodeURIComponent(f.replace(/\.json$/, ''))}`, o);
    }
  }
  return m;
}

const items = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'items.json'), 'utf8')) as Items;
const nItems = Object.values(items).reduce((a, l) => a + l.length, 0);

describe.skipIf(!hasTorch)('staged runner with torch models', () => {
  it('runs the example pair: measured memory, re-planned, edited PNGs of the same size, deterministic scores', async () => {
    const a = copyExample();
    const rep = await runStaged(a.file, { python: PY });
    expect(rep.error).toBeUndefined();
    expect(rep.status).toBe('done');
    expect(rep.categories.map((c) => c.name)).toEqual(Object.keys(items));
    for (const c of rep.categories) {
      expect([c.completed, c.failed, c.pending]).toEqual([items[c.name].length, 0, 0]);
      const s = c.fields.score;
      expect(s.n).toBe(items[c.name].length);
      expect(s.min!).toBeGreaterThan(0);
      expect(s.max!).toBeLessThan(1);
      expect(c.fields.brightness.min!).toBeGreaterThanOrEqual(0);
      expect(c.fields.brightness.max!).toBeLessThanOrEqual(1);
    }
    expect(rep.failures).toEqual([]);

    // no memory_mb in the pipeline: each load reports what it measured, and the run re-planned
    const loads = rep.swaps.list.filter((s) => s.kind === 'load');
    expect(new Set(loads.map((l) => l.stage))).toEqual(new Set(['edit', 'score']));
    for (const l of loads) expect(l.memoryMB ?? 0).toBeGreaterThan(0);
    // float32: editor about 25 MB, resnet18 scorer about 51 MB (parameter bytes on cpu, allocated growth on cuda)
    for (const l of loads) expect(l.memoryMB!).toBeGreaterThan(l.stage === 'score' ? 40 : 15);
    for (const s of rep.swaps.list) expect(s.ms).toBeGreaterThanOrEqual(0);
    expect(rep.plan).not.toBeNull();
    expect(rep.plan!.plans).toBeGreaterThanOrEqual(2);
    expect(rep.stages.map((s) => [s.name, s.processedThisRun])).toEqual([
      ['edit', nItems],
      ['score', nItems],
    ]);

    // the edited images decode to PNGs of the original's size
    const edited = editedImages(a.out);
    expect(edited.size).toBe(nItems);
    for (const [cat, list] of Object.entries(items)) {
      for (const it of list) {
        const e = edited.get(`${cat}/${it.id}`)!;
        expect(e, `${cat}/${it.id}`).toBeDefined();
        expect(pngSize(Buffer.from(e.image, 'base64'))).toEqual(pngSize(Buffer.from(it.image, 'base64')));
        expect(e.mean_abs_change).toBeGreaterThan(0);
        expect(e.mean_abs_change).toBeLessThanOrEqual(0.25);
      }
    }
    const scoresA = journalOutputs(a.out, 'score');
    expect(scoresA.size).toBe(nItems);

    // a second fresh run (new host processes, new copy) gives the same images and scores
    const b = copyExample();
    const rep2 = await runStaged(b.file, { python: PY });
    expect(rep2.status).toBe('done');
    expect(journalOutputs(b.out, 'score')).toEqual(scoresA);
    expect(editedImages(b.out)).toEqual(edited);
    expect(rep2.categories.map((c) => c.fields)).toEqual(rep.categories.map((c) => c.fields));
  }, 180_000);

  it('records a bad image as that item failure (one line) and the scorer skips it', async () => {
    const t = copyExample({
      pipeline: (p) => {
        for (const s of p.stages) s.model.params = { ...s.model.params, calls_file: 'calls.txt' };
      },
      items: (i) => {
        i.object.splice(1, 0, { id: 'bad', image: 'this is not base64!', instruction: 'add a hat', description: 'nothing' });
      },
    });
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    expect(rep.failures).toHaveLength(1);
    const f = rep.failures[0];
    expect([f.category, f.item, f.stage]).toEqual(['object', 'bad', 'edit']);
    expect(f.error).toMatch(/^ValueError: item bad: field 'image': not valid base64/);
    expect(f.error).not.toMatch(/\n/);
    const obj = rep.categories.find((c) => c.name === 'object')!;
    expect([obj.items, obj.completed, obj.failed, obj.pending]).toEqual([items.object.length + 1, items.object.length, 1, 0]);
    expect(obj.fields.score.n).toBe(items.object.length);
    expect(rep.skippedForFailedInputs).toEqual({ object: 1 });
    expect(journalOutputs(t.out, 'edit').get('object/bad')).toEqual({ error: f.error });
    expect(journalOutputs(t.out, 'score').has('object/bad')).toBe(false);

    // calls_file (relative: the host runs in the pipeline's directory)
    const calls = fs.readFileSync(path.join(t.dir, 'calls.txt'), 'utf8').trim().split('\n');
    expect(calls).toContain('edit\tobject\tbad');
    expect(calls).not.toContain('score\tobject\tbad');
    expect(calls.filter((l) => l.startsWith('edit\t'))).toHaveLength(nItems + 1);
    expect(calls.filter((l) => l.startsWith('score\t'))).toHaveLength(nItems);
  }, 120_000);
});
