/** Chrome trace-event (Perfetto) export of traces and dump directories. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GPU_PID_BASE, MARKERS_PID, timeline, toPerfetto, writePerfetto, type ChromeTrace, type ChromeTraceEvent } from '../src/trace/perfetto.js';
import { readDumpDir } from '../src/trace/dumps.js';
import { readTrace } from '../src/trace/read.js';
import { DEBUGFS, ROOT } from './helpers/impls.js';
import { makeTree } from './helpers/tree.js';
import { lifecycleRecords, tOf, tmpDir, writeJsonl } from './helpers/trace-build.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const us = (ns: number): number => ns / 1000;

async function exported(): Promise<ChromeTrace> {
  return toPerfetto(await readTrace(writeJsonl(lifecycleRecords())));
}

/** The checks a trace-event consumer relies on: required fields per ph, per-track time order, nesting. */
function validate(out: unknown): ChromeTraceEvent[] {
  const parsed = JSON.parse(JSON.stringify(out)) as ChromeTrace;
  expect(parsed.displayTimeUnit).toBe('ms');
  expect(Array.isArray(parsed.traceEvents)).toBe(true);
  const lastTs = new Map<string, number>();
  for (const e of parsed.traceEvents) {
    expect(typeof e.name).toBe('string');
    expect(['M', 'X', 'i', 'C']).toContain(e.ph);
    expect(Number.isFinite(e.ts)).toBe(true);
    expect(e.ts).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(e.pid)).toBe(true);
    expect(Number.isInteger(e.tid)).toBe(true);
    if (e.ph === 'X') expect(e.dur).toBeGreaterThanOrEqual(0);
    if (e.ph === 'i') expect(['g', 'p']).toContain(e.s);
    if (e.ph === 'M') expect(e.args).toBeDefined();
    if (e.ph === 'C') expect(Object.values(e.args ?? {}).every((v) => typeof v === 'number')).toBe(true);
    if (e.ph === 'M') continue;
    const track = `${e.pid}/${e.tid}`;
    expect(e.ts).toBeGreaterThanOrEqual(lastTs.get(track) ?? 0);
    lastTs.set(track, e.ts);
  }
  // X spans on one thread nest or follow each other, never overlap partially
  const byTrack = new Map<string, ChromeTraceEvent[]>();
  for (const e of parsed.traceEvents.filter((x) => x.ph === 'X')) {
    const k = `${e.pid}/${e.tid}`;
    byTrack.set(k, [...(byTrack.get(k) ?? []), e]);
  }
  for (const spans of byTrack.values()) {
    const open: ChromeTraceEvent[] = [];
    for (const s of spans) {
      while (open.length && open[open.length - 1].ts + open[open.length - 1].dur! <= s.ts) open.pop();
      const parent = open[open.length - 1];
      if (parent) expect(s.ts + s.dur!).toBeLessThanOrEqual(parent.ts + parent.dur! + 1e-6);
      open.push(s);
    }
  }
  return parsed.traceEvents;
}

const named = (evs: ChromeTraceEvent[], meta: string, pid: number, tid = 0): string | undefined =>
  (evs.find((e) => e.ph === 'M' && e.name === meta && e.pid === pid && e.tid === tid)?.args as { name?: string } | undefined)?.name;

describe('toPerfetto', () => {
  it('is valid trace-event JSON: required fields, per-track order, nesting', async () => {
    validate(await exported());
  });

  it('one track per process with a thread per queue: lifetime span and nested active spans', async () => {
    const evs = validate(await exported());
    expect(named(evs, 'process_name', 100)).toBe('pid 100');
    expect(named(evs, 'thread_name', 100, 2)).toBe('compute 100/q1');
    const q1 = evs.filter((e) => e.pid === 100 && e.tid === 2 && e.ph === 'X');
    expect(q1.map((e) => [e.name, e.ts, e.dur])).toEqual([
      ['compute 100/q1', us(tOf(3)), us(tOf(27) - tOf(3))],
      ['active pipe 1 queue 2', us(tOf(3)), us(tOf(10) - tOf(3))],
      ['active pipe 3 queue 5', us(tOf(10)), us(tOf(27) - tOf(10))],
    ]);
    const sd = evs.filter((e) => e.pid === 100 && e.tid === 3 && e.ph === 'X').map((e) => e.name);
    expect(sd).toEqual(['sdma-xgmi 100/q2', 'active sdma 2/0']);
    // pid 200's queue lives to the end of the trace
    const other = evs.find((e) => e.pid === 200 && e.tid === 1 && e.ph === 'X')!;
    expect(other.ts + other.dur!).toBeCloseTo(us(tOf(29) + 1000));
  });

  it('lifecycle events and markers are instants; queue counts a counter', async () => {
    const evs = validate(await exported());
    const inst = evs.filter((e) => e.ph === 'i');
    expect(inst.find((e) => e.name === 'command-started')).toMatchObject({ pid: MARKERS_PID, s: 'g', ts: us(150e6) });
    expect(inst.find((e) => e.name === 'queue-created' && (e.args as { key?: string }).key === '100/q2')).toMatchObject({ pid: 100, tid: 3, s: 'p', ts: us(tOf(4)) });
    expect(inst.find((e) => e.name === 'priority-changed')).toMatchObject({ pid: 100, tid: 1, args: { from: { pipe: 1, queue: 7 }, to: { pipe: 2, queue: 11 } } });
    expect(inst.some((e) => e.name === 'hqd-mapped')).toBe(false);
    const counts = evs.filter((e) => e.ph === 'C' && e.pid === 100).map((e) => (e.args as { queues: number }).queues);
    expect(counts).toEqual([0, 2, 3, 2, 0]);
  });

  it('one track per GPU node with a thread per HQD slot showing its holder', async () => {
    const evs = validate(await exported());
    const gpu = GPU_PID_BASE;
    expect(named(evs, 'process_name', gpu)).toBe('GPU node 2 (gpu_id 7c1e, 4 XCC)');
    const slotTid = 1 + 3 * 10000 + 0 * 100 + 2; // XCC 3, pipe 0, queue 2
    expect(named(evs, 'thread_name', gpu, slotTid)).toBe('XCC 3 pipe 0 queue 2');
    // 100/q0 left XCC 3 for one sample (seq 12)
    expect(evs.filter((e) => e.pid === gpu && e.tid === slotTid && e.ph === 'X').map((e) => [e.name, e.ts, e.ts + e.dur!])).toEqual([
      ['100/q0', us(tOf(3)), us(tOf(12))],
      ['100/q0', us(tOf(13)), us(tOf(27))],
    ]);
    const moved = evs.filter((e) => e.pid === gpu && e.ph === 'X' && e.name === '100/q1').map((e) => (e.args as { slot: string }).slot);
    expect(new Set(moved)).toEqual(new Set(['0/1/2', '1/1/2', '2/1/2', '3/1/2', '0/3/5', '1/3/5', '2/3/5', '3/3/5']));
  });

  it('timeline() closes a state when it changes and at the end', () => {
    expect(
      timeline(
        [
          { t: 0, state: 'a' },
          { t: 1, state: 'a' },
          { t: 2, state: null },
          { t: 3, state: 'b' },
        ],
        5,
      ),
    ).toEqual([
      { state: 'a', from: 0, to: 2 },
      { state: 'b', from: 3, to: 5 },
    ]);
  });
});

describe('writePerfetto and gpucolo export', () => {
  it('writes atomically (no temp file left) and the file parses', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'out.json');
    writePerfetto(await readTrace(writeJsonl(lifecycleRecords(), { dir })), file);
    expect(fs.readdirSync(dir).sort()).toEqual(['out.json', 'trace.jsonl']);
    validate(JSON.parse(fs.readFileSync(file, 'utf8')));
  });

  it('exports a dump directory too', () => {
    const mq = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'utf8');
    const hq = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'utf8');
    const evs = validate(toPerfetto(readDumpDir(makeTree({ 'snapshot_mqd_1.txt': mq, 'snapshot_hqd_1.txt': hq, 'snapshot_mqd_2.txt': mq, 'snapshot_hqd_2.txt': hq }))));
    expect(named(evs, 'thread_name', 41872, 1)).toBe('compute 41872/mqd0x712000');
    const slots = evs.filter((e) => e.pid === GPU_PID_BASE && e.ph === 'X');
    expect(slots).toHaveLength(8);
    expect(slots.every((e) => e.ts === us(10e9) && e.dur === us(10e9))).toBe(true);
  });

  it('gpucolo export --perfetto <trace> -o <file>', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'trace.json');
    const r = spawnSync(process.execPath, [CLI, 'export', '--perfetto', writeJsonl(lifecycleRecords(), { dir }), '-o', out], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*trace\.json: \d+ trace events/);
    validate(JSON.parse(fs.readFileSync(out, 'utf8')));
  });

  it('usage and input errors', () => {
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(cli(['export', '--perfetto', 'x.jsonl']).status).toBe(2);
    expect(cli(['export', '-o', 'x.json']).status).toBe(2);
    const missing = path.join(tmpDir(), 'none.jsonl');
    const r = cli(['export', '--perfetto', missing, '-o', path.join(tmpDir(), 'o.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`gpucolo: cannot read ${missing} (ENOENT)\n`);
    const w = cli(['export', '--perfetto', writeJsonl(lifecycleRecords()), '-o', path.join(tmpDir(), 'no/such/dir/o.json')]);
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(/^gpucolo: cannot write .*o\.json: no such file or directory \(ENOENT\)\n$/);
  });
});
