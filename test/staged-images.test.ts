/**
 * Images between stages (design note 003): a stage's method returns an image (a tensor, or a
 * PIL image), gpucolo writes it as a PNG under <output_dir>/images/<category>/ and hands the next
 * stage a path or a PIL image; the journal holds {"$image": path}, never base64. Intermediate
 * images are removed once read unless save_intermediate. The PIL tests need a python with PIL:
 * /usr/bin/python3 when it has it, or $GPUCOLO_PIL_PYTHON.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runStaged } from '../src/runners/staged/index.js';
import { copyNotesPipeline } from './helpers/staged-notes.js';

const PY = '/usr/bin/python3';
const hasPy = fs.existsSync(PY);
const hasPil = (py: string | undefined): boolean => !!py && fs.existsSync(py) && spawnSync(py, ['-c', 'import PIL.Image'], { stdio: 'ignore' }).status === 0;
const PIL_PY = [PY, process.env.GPUCOLO_PIL_PYTHON].find(hasPil);
const tmps: string[] = [];
afterEach(() => {
  for (const d of tmps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function copy(edit: (p: Record<string, any>, calls: string) => void, python = PY): { dir: string; file: string; calls: string; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-images-'));
  tmps.push(dir);
  copyNotesPipeline(dir);
  const calls = path.join(dir, 'calls.txt');
  const p = YAML.parse(fs.readFileSync(path.join(dir, 'pipeline.yaml'), 'utf8')) as Record<string, any>;
  for (const s of p.stages) s.model.params.calls_file = calls;
  edit(p, calls);
  p.python = python;
  const file = path.join(dir, 'pipeline.json');
  fs.writeFileSync(file, JSON.stringify(p));
  return { dir, file, calls, out: path.join(dir, 'outputs') };
}

/** width, height, color type and the unfiltered pixel rows of an 8-bit PNG (filter 0 rows only). */
function readPng(f: string): { w: number; h: number; colorType: number; rows: number[][] } {
  const b = fs.readFileSync(f);
  expect(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  const w = b.readUInt32BE(16);
  const h = b.readUInt32BE(20);
  const colorType = b[25];
  const idat: Buffer[] = [];
  for (let at = 8; at < b.length; ) {
    const len = b.readUInt32BE(at);
    const tag = b.subarray(at + 4, at + 8).toString('latin1');
    if (tag === 'IDAT') idat.push(b.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = raw.length / h;
  const rows = Array.from({ length: h }, (_, i) => [...raw.subarray(i * stride + 1, (i + 1) * stride)]);
  return { w, h, colorType, rows };
}
const journal = (out: string) => fs.readFileSync(path.join(out, 'journal.jsonl'), 'utf8');
const lines = (calls: string, method: string) =>
  fs
    .readFileSync(calls, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith(`${method}\t`))
    .map((l) => JSON.parse(l.split('\t')[1]) as unknown[]);

describe.skipIf(!hasPy)('images between stages', () => {
  it('a tensor from edit_image becomes outputs/images/<category>/<id>.edit.edited_image.png; score gets its path; save_intermediate keeps it', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'tensor';
      p.stages[1].image_inputs = 'path';
      p.budgets.save_intermediate = true;
    });
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    expect(rep.categories.map((c) => [c.completed, c.failed])).toEqual([
      [3, 0],
      [2, 0],
    ]);
    const png = path.join(t.out, 'images', '物理', 'pair_001.edit.edited_image.png');
    // the fixture's 3x2x2 CxHxW float tensor, v = len("让球落下") % 10 / 10 = 0.4
    const img = readPng(png);
    expect([img.w, img.h, img.colorType]).toEqual([2, 2, 2]);
    expect(img.rows).toEqual([
      [102, 64, 255, 128, 102, 255],
      [255, 0, 102, 0, 255, 0],
    ]);
    expect(lines(t.calls, 'score')[0][0]).toBe(png);
    expect(fs.readdirSync(path.join(t.out, 'images', '环境')).sort()).toEqual(['pair_001.edit.edited_image.png', 'pair_002.edit.edited_image.png']);
    // the journal and intermediates refer to the file: no base64 anywhere
    const j = journal(t.out);
    expect(j).not.toMatch(/iVBOR|base64/);
    const inter = fs.readFileSync(path.join(t.out, 'intermediate', 'edit', encodeURIComponent('物理'), 'pair_001.json'), 'utf8');
    expect(JSON.parse(inter)).toEqual({ edited_image: { $image: 'images/物理/pair_001.edit.edited_image.png' } });
  });

  it('without save_intermediate the PNG files go once the score stage has read them', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'tensor';
      p.stages[1].image_inputs = 'path';
    });
    const seen: boolean[] = [];
    const png = path.join(t.out, 'images', '物理', 'pair_002.edit.edited_image.png');
    const rep = await runStaged(t.file, {
      python: PY,
      onEvent: (e) => {
        if (e.type === 'item' && e.category === '物理' && e.item === 'pair_002' && e.stage === 'edit') seen.push(fs.existsSync(png));
        if (e.type === 'stage-end' && e.category === '物理') seen.push(fs.existsSync(png));
      },
    });
    expect(rep.status).toBe('done');
    expect(seen).toEqual([true, true, false]); // there after edit; gone after score read it
    expect(fs.readdirSync(path.join(t.out, 'images', '物理'))).toEqual([]);
  });

  it('a resumed run still finds the images of items the score stage has not read', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'tensor';
      p.stages[1].image_inputs = 'path';
    });
    const ac = new AbortController();
    const first = await runStaged(t.file, { python: PY, signal: ac.signal, onEvent: (e) => e.type === 'item' && e.stage === 'score' && ac.abort() });
    expect(first.status).toBe('interrupted');
    expect(fs.readdirSync(path.join(t.out, 'images', '物理')).sort()).toEqual(['pair_002.edit.edited_image.png', 'pair_003.edit.edited_image.png']);
    const again = await runStaged(t.file, { python: PY });
    expect(again.status).toBe('done');
    expect(again.failures).toEqual([]);
    expect(lines(t.calls, 'score').map((a) => path.basename(String(a[0])))).toHaveLength(5);
  });

  it('image_inputs: image hands over the path when PIL is missing, a PIL image when it is there', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'tensor';
    });
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.status).toBe('done');
    const first = lines(t.calls, 'score')[0][0];
    if (hasPil(PY)) expect(first).toMatch(/^<\w*Image\w*>$/);
    else expect(first).toBe(path.join(t.out, 'images', '物理', 'pair_001.edit.edited_image.png'));
  });

  it.skipIf(!PIL_PY)('a PIL image from edit_image is saved by PIL and reaches score as a PIL image', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'pil';
      p.budgets.save_intermediate = true;
    }, PIL_PY!);
    const rep = await runStaged(t.file, { python: PIL_PY });
    expect(rep.status).toBe('done');
    expect(rep.failures).toEqual([]);
    const img = readPng(path.join(t.out, 'images', '物理', 'pair_001.edit.edited_image.png'));
    expect([img.w, img.h]).toEqual([4, 3]);
    expect(lines(t.calls, 'score')[0][0]).toMatch(/^<\w*Image\w*>$/);
  });

  it.skipIf(!PIL_PY)('{from: item.original_image_b64, as: image}: the notes base64 original reaches edit_image as a PIL image; bytes that are no image fail the item', async () => {
    const PNG_1x1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const t = copy((p) => {
      p.stages[0].call.args.image = { from: 'item.original_image_b64', as: 'image' };
    }, PIL_PY!);
    const items = JSON.parse(fs.readFileSync(path.join(t.dir, 'items.json'), 'utf8')) as Record<string, Record<string, string>[]>;
    items['物理'][0].original_image_b64 = PNG_1x1;
    items['物理'][1].original_image_b64 = `data:image/png;base64,${PNG_1x1}`;
    fs.writeFileSync(path.join(t.dir, 'items.json'), JSON.stringify(items));
    const rep = await runStaged(t.file, { python: PIL_PY });
    expect(rep.status).toBe('done');
    const edits = lines(t.calls, 'edit_image');
    expect(edits.slice(0, 2).map((a) => a[0])).toEqual([expect.stringMatching(/^<\w*Image\w*>$/), expect.stringMatching(/^<\w*Image\w*>$/)]);
    // the other pairs keep the notes fixture's "aGVsbG8=" ("hello"): not an image
    expect(rep.failures.map((f) => `${f.item} ${f.stage}`)).toEqual(['pair_003 edit', 'pair_001 edit', 'pair_002 edit']);
    expect(rep.failures[0].error).toBe('InputError: item.original_image_b64 as image: the decoded bytes are not an image (UnidentifiedImageError)');
  });

  it('an image tensor the PNG writer cannot take (2 channels) fails that item with one line', async () => {
    const t = copy((p) => {
      p.stages[0].model.params.emit = 'bad-tensor';
    });
    const rep = await runStaged(t.file, { python: PY });
    expect(rep.categories[0].failed).toBe(3);
    expect(rep.failures[0]).toMatchObject({ stage: 'edit', error: 'ValueError: an image tensor needs 1, 3 or 4 channels, got shape (2, 2, 5)' });
  });
});
