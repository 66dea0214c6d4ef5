/**
 * SampleAssembler keeps its last trace sample when the native sampler patched mqds/hqds only in
 * words that feed nothing but `busy` (src/trace/relevance.ts), and assembles again, to the same
 * result as from scratch, when a patched word matters (an active bit, an MQD address).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NativeSample } from '../src/native.js';
import { parseHqdsTs } from '../src/kfd/hqds-parser.js';
import { parseMqdsTs } from '../src/kfd/mqds-parser.js';
import { parseRlsTs } from '../src/kfd/rls-parser.js';
import { readTopology } from '../src/kfd/parse.js';
import { readKfdProcsTs } from '../src/kfd/sysfs-reader.js';
import { HQDS_SLOT_COLS, HqdSlotKind, MQDS_BLOCK_COLS, MQDS_QUEUE_COLS, MqdQueueKind, type HqdsRaw, type MqdsRaw } from '../src/kfd/raw.js';
import { SampleAssembler } from '../src/trace/assemble.js';
import { EventDeriver } from '../src/trace/events.js';
import { TraceRecorder } from '../src/trace/recorder.js';
import os from 'node:os';
import { hqdsChangeIrrelevant, mqdsChangeIrrelevant } from '../src/trace/relevance.js';
import { EXAMPLE } from './helpers/kfd-tree.js';
import { HqdsSlotCol } from '../src/kfd/columns.js';

const dbg = (name: string): string => fs.readFileSync(path.join(EXAMPLE, 'sys/kernel/debug/kfd', name), 'latin1');
const sysfs = path.join(EXAMPLE, 'sys');
const topology = readTopology({ sysfsRoot: sysfs, impl: 'ts' });
const procs = readKfdProcsTs(sysfs);
const mqds0 = parseMqdsTs(dbg('mqds'));
const hqds0 = parseHqdsTs(dbg('hqds'));
const rls = parseRlsTs(dbg('rls'));

const sample = (seq: number, mqds: MqdsRaw, hqds: HqdsRaw, changedWords?: NativeSample['changedWords']): NativeSample => ({
  seq,
  intendedNs: seq * 1e8,
  actualNs: seq * 1e8,
  readNs: 0,
  parseNs: 0,
  missed: 0,
  dropped: 0,
  procs,
  mqds,
  hqds,
  rls,
  ...(changedWords ? { changedWords } : {}),
});

/** A copy of hqds with register `reg` of the first active compute slot set to v; its word index. */
function withHqdReg(reg: number, v: (old: number) => number): [HqdsRaw, number] {
  for (let r = 0; r < hqds0.slots.length / HQDS_SLOT_COLS; r++) {
    const b = r * HQDS_SLOT_COLS;
    const at = hqds0.slots[b + HqdsSlotCol.wordOffset];
    if (hqds0.slots[b + HqdsSlotCol.kind] !== HqdSlotKind.cp || (hqds0.words[at + 2] & 1) !== 1) continue;
    const words = hqds0.words.slice();
    words[at + reg] = v(words[at + reg]);
    return [{ ...hqds0, words }, at + reg];
  }
  throw new Error('no active compute slot in the example');
}

const ctx = { topology, procRoot: path.join(EXAMPLE, 'proc'), impl: 'ts' as const };
const fresh = (s: NativeSample) => {
  const { join_ns: _j, ...out } = new SampleAssembler(ctx).assemble(s);
  return out;
};
const strip = ({ join_ns: _j, ...out }: { join_ns: number }) => out;

describe('trace relevance of patched words', () => {
  it('a moved ring pointer (RPTR, WPTR) of a mapped queue: the last sample is kept, and it equals a fresh join', () => {
    const a = new SampleAssembler(ctx);
    const first = a.assemble(sample(0, mqds0, hqds0));
    const [rptr, i] = withHqdReg(10, (x) => x + 64);
    const [both, j] = withHqdReg(54, (x) => x + 64);
    both.words[i] = rptr.words[i];
    const s1 = sample(1, mqds0, both, { hqds: Uint32Array.of(i, j).sort() });
    expect(hqdsChangeIrrelevant(both, s1.changedWords!.hqds!)).toBe(true);
    const second = a.assemble(s1);
    expect(second.processes).toBe(first.processes); // kept, not joined again
    expect(strip(second)).toEqual(fresh(s1));
  });

  it('an active bit or an MQD address that changes: joined again, as from scratch', () => {
    const a = new SampleAssembler(ctx);
    const first = a.assemble(sample(0, mqds0, hqds0));
    const [inactive, i] = withHqdReg(2, (x) => x & ~1);
    const s1 = sample(1, mqds0, inactive, { hqds: Uint32Array.of(i) });
    expect(hqdsChangeIrrelevant(inactive, s1.changedWords!.hqds!)).toBe(false);
    const second = a.assemble(s1);
    expect(second.processes).not.toBe(first.processes);
    expect(strip(second)).toEqual(fresh(s1));
    expect(JSON.stringify(second.processes)).not.toEqual(JSON.stringify(first.processes));
  });

  it('MQD dwords: a pointer copy no decoder reads is irrelevant; the ring base is not', () => {
    let at = -1;
    for (let b = 0; b < mqds0.blocks.length / MQDS_BLOCK_COLS && at < 0; b++) {
      if (mqds0.queues[mqds0.blocks[b * MQDS_BLOCK_COLS] * MQDS_QUEUE_COLS + 1] === MqdQueueKind.compute) at = mqds0.blocks[b * MQDS_BLOCK_COLS + 2];
    }
    expect(at).toBeGreaterThanOrEqual(0);
    const moved = mqds0.words.slice();
    moved[at + 138] += 1; // not read by decodeComputeMqd
    expect(mqdsChangeIrrelevant({ ...mqds0, words: moved }, Uint32Array.of(at + 138))).toBe(true);
    expect(mqdsChangeIrrelevant({ ...mqds0, words: moved }, Uint32Array.of(at + 136))).toBe(false);
    // a word outside every block (past the end) is never taken as irrelevant
    expect(mqdsChangeIrrelevant(mqds0, Uint32Array.of(mqds0.words.length + 5))).toBe(false);
  });

  it('samples with and without debugfs (read every N-th sample) each reuse the last of their kind', () => {
    const a = new SampleAssembler(ctx);
    const sysfsOnly = (seq: number): NativeSample => {
      const { mqds: _m, hqds: _h, rls: _r, ...rest } = sample(seq, mqds0, hqds0);
      return rest;
    };
    const d0 = a.assemble(sample(0, mqds0, hqds0));
    const s1 = a.assemble(sysfsOnly(1));
    expect(s1.processes).not.toBe(d0.processes);
    expect(s1.debugfs).toBe(false);
    const d2 = a.assemble(sample(2, mqds0, hqds0));
    expect(d2.processes).toBe(d0.processes);
    const s3 = a.assemble(sysfsOnly(3));
    expect(s3.processes).toBe(s1.processes);
    expect(strip(s3)).toEqual(fresh(sysfsOnly(3)));
  });

  it('without changedWords (the TS sampler, a full parse) a changed table is always joined again', () => {
    const a = new SampleAssembler(ctx);
    const first = a.assemble(sample(0, mqds0, hqds0));
    const [rptr] = withHqdReg(10, (x) => x + 64);
    expect(a.assemble(sample(1, mqds0, rptr)).processes).not.toBe(first.processes);
  });

  it('the recorder writes a sample that repeats its processes exactly as JSON.stringify would; the deriver finds no event in it', () => {
    const a = new SampleAssembler(ctx);
    const d = new EventDeriver();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-rec-'));
    const out = path.join(dir, 't.jsonl');
    const rec = new TraceRecorder(out);
    const [moved, i] = withHqdReg(10, (x) => x + 1);
    const [inactive, j] = withHqdReg(2, (x) => x & ~1);
    const samples = [
      a.assemble(sample(0, mqds0, hqds0)),
      a.assemble(sample(1, mqds0, moved, { hqds: Uint32Array.of(i) })),
      a.assemble(sample(2, mqds0, inactive, { hqds: Uint32Array.of(i, j).sort() })),
      a.assemble(sample(3, mqds0, inactive)),
    ];
    const events = samples.map((s) => d.update(s));
    for (const s of samples) rec.write(s);
    rec.close();
    expect(fs.readFileSync(out, 'utf8')).toBe(samples.map((s) => `${JSON.stringify(s)}\n`).join(''));
    expect(events.map((e) => e.length)).toEqual([0, 0, 1, 0]); // one HQD slot unmapped in sample 2
    fs.rmSync(dir, { recursive: true });
  });
});
