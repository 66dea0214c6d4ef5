import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../src/runners/staged/schema.js';
import { StagedOutputs } from '../src/runners/staged/outputs.js';
import { key } from '../src/runners/staged/journal.js';

const pipelineText = (cpuMB: number): string => `name: p
items:
  source: data/items.json
stages:
  - name: embed
    model: { command: [python, serve.py] }
  - name: score
    model: { command: [python, serve.py] }
budgets:
  gpu_memory_mb: 1000
  cpu_memory_mb: ${cpuMB}
`;

const outDirOf = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-staged-outputs-'));

describe('StagedOutputs (the memory/spill step of runStaged, alone)', () => {
  it('keeps a read output in memory and frees it once its reader ran', () => {
    const dir = outDirOf();
    const o = new StagedOutputs(parsePipeline(pipelineText(1), 'p.yaml'), dir, path.join(dir, 'journal.jsonl'));
    const jout = o.store('c', 'a', 'embed', { v: [1, 2] });
    expect(jout).toEqual({ v: [1, 2] });
    expect(o.memoryBytes).toBeGreaterThan(0);
    expect(o.outputOf('c', 'a', 'embed')).toEqual({ v: [1, 2] });
    o.store('c', 'a', 'score', { score: 3, label: 'x' });
    o.release('c', 'a', 'embed');
    expect(o.memoryBytes).toBe(0);
    expect(o.freed).toBe(1);
    expect(o.reportValue('c', 'a', 'embed')).toBeNull();
    // the last stage keeps only its numbers, for the report
    expect(o.done.get(key('c', 'a', 'score'))).toEqual({ score: 3 });
  });

  it('spills an output beyond the CPU budget to intermediate/ and reads it back', () => {
    const dir = outDirOf();
    const o = new StagedOutputs(parsePipeline(pipelineText(1), 'p.yaml'), dir, path.join(dir, 'journal.jsonl'));
    const big = { v: 'x'.repeat(2 * 1024 * 1024) };
    const jout = o.store('c', 'a', 'embed', big) as { file: string };
    expect(jout.file).toBe(path.join('intermediate', 'embed', 'c', 'a.json'));
    expect(o.spilled).toBe(1);
    expect(o.memoryBytes).toBe(0);
    expect(o.outputOf('c', 'a', 'embed')).toEqual(big);
    expect(o.reloaded).toBe(1);
  });

  it('restores resumed records: memory only for what a stage left to run reads', () => {
    const dir = outDirOf();
    const o = new StagedOutputs(parsePipeline(pipelineText(1), 'p.yaml'), dir, path.join(dir, 'journal.jsonl'));
    o.restore(
      new Map([
        [key('c', 'a', 'embed'), { output: { v: 1 } }],
        [key('c', 'b', 'embed'), { output: { v: 2 } }],
        [key('c', 'b', 'score'), { output: { score: 1 } }],
        [key('c', 'd', 'embed'), { output: { error: 'boom' } }],
      ]),
    );
    expect(o.outputOf('c', 'a', 'embed')).toEqual({ v: 1 });
    expect(o.reportValue('c', 'b', 'embed')).toBeNull();
    expect(o.stillRead('c', 'd', 'embed')).toBe(false);
    expect(o.memoryBytes).toBe(Buffer.byteLength(JSON.stringify({ v: 1 })));
  });
});
