/**
 * gpucolo top --replay: frames of a hand-made trace (test/helpers/trace-build.ts, events derived
 * as the recorder derives them) at several times, the ticker and its pid filter, a trace recorded
 * by the tracer from a copy of the example tree, and damaged or empty trace files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CliError } from '../src/cli/errors.js';
import { topCommand } from '../src/cli/top.js';
import { buildFrame, frameText } from '../src/top/frame.js';
import { initialView, reduceTop } from '../src/top/keys.js';
import { ReplaySource } from '../src/top/replay.js';
import { readTrace } from '../src/trace/read.js';
import { runTrace } from '../src/trace/tracer.js';
import { KfdTree } from './helpers/kfd-tree.js';
import { compute, footer, header, proc, records, sample, tmpDir, writeJsonl } from './helpers/trace-build.js';

/** `gpucolo top ARGS` in this process (stdout not a terminal): exit code, the CliError's message, stdout. */
async function topCli(args: string[]): Promise<{ code: number; message?: string; stdout: string }> {
  const program = new Command('gpucolo').exitOverride();
  program.addCommand(topCommand());
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: () => {} }));
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const tty = process.stdout.isTTY;
  process.stdout.isTTY = false;
  try {
    await program.parseAsync(['top', ...args], { from: 'user' });
    return { code: 0, stdout };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, message: err.message, stdout };
    throw err;
  } finally {
    spy.mockRestore();
    process.stdout.isTTY = tty;
  }
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** pid 100 runs a normal queue, gains a high one at 1 s; pid 200 starts at 1 s; 100's first queue turns high at 2 s; 200 exits at 3 s. */
function lifecycleTrace(): string {
  const q0 = (prio: [number, number]) => compute('100/q0', { qid: 0, mqd: '0x1000', slot: [0, 2], prio });
  const q1 = compute('100/q1', { qid: 1, mqd: '0x2000', slot: [1, 2], prio: [2, 11] });
  const other = compute('200/q0', { qid: 0, mqd: '0x3000', slot: [0, 3], prio: [0, 3] });
  const samples = [
    sample(0, 0, [proc(100, [q0([1, 7])])]),
    sample(1, 1e9, [proc(100, [q0([1, 7]), q1]), proc(200, [other])]),
    sample(2, 2e9, [proc(100, [q0([2, 15]), q1]), proc(200, [other])]),
    sample(3, 3e9, [proc(100, [q0([2, 15]), q1])]),
  ];
  const dir = tmpDir('gpucolo-top-replay-');
  dirs.push(dir);
  return writeJsonl(records(header(), samples, [], footer(3e9)), { dir });
}

const row = (frame: string, pipe: number): string => frame.split('\n').find((l) => l.startsWith(`p${pipe} `)) ?? '';

describe('top --replay --once', () => {
  const file = lifecycleTrace();

  it('at the start: the first sample, no events yet, the slot grid without a layout', async () => {
    const r = await topCli(['--replay', file, '--once']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gpucolo top - replay of mi308x, recorded 2026-02-04T10:00:00.000Z - 1 process\(es\), 1 queue\(s\) - sample 0 at t=0.000s\n/);
    expect(r.stdout).toContain(`replay trace.jsonl: t=0.000s of t=3.000s (sample 1/4), speed x1`);
    // no slot layout in a trace: '..' is "no queue seen", never '--'
    expect(row(r.stdout, 0)).toBe('p0 .. .. AN .. .. .. .. ..    p0 .. .. AN .. .. .. .. ..    p0 .. .. AN .. .. .. .. ..    p0 .. .. AN .. .. .. .. ..');
    expect(r.stdout).toContain('.. no queue seen (slot layout not known here)');
    expect(r.stdout).toContain('Lifecycle events (0)\n  none yet\n');
    expect(r.stdout).toContain('missing: process names, VRAM and the sysfs counters are not recorded in a trace');
    // unknown counters are '-', never 0
    expect(r.stdout).toMatch(/\nA {2}100 +- +1 +1 compute +2 +- +- +- +- +- +-\/-\n/);
    expect(r.stdout).toMatch(/\nsampler recorded every 100ms: read 1us, parse 0.5us, join 0.2us; missed 0\n/);
  });

  it('at 1.5s: the second process and its events', async () => {
    const r = await topCli(['--replay', file, '--once', '--at', '1.5s']);
    expect(r.stdout).toContain('(sample 2/4)');
    expect(row(r.stdout, 0).split('    ')[0]).toBe('p0 .. .. AN BL .. .. .. ..');
    expect(row(r.stdout, 1).split('    ')[0]).toBe('p1 .. .. AH .. .. .. .. ..');
    expect(r.stdout).toMatch(/t=1.000s {2}process-started {2}pid 200\n/);
    expect(r.stdout).toMatch(/t=1.000s {2}queue-created {4}pid 200 q0 compute gpu 7c1e\n/);
    expect(r.stdout).toMatch(/t=1.000s {2}queue-created {4}pid 100 q1 compute gpu 7c1e\n/);
  });

  it('at the end: the priority change and the exit, newest first', async () => {
    const r = await topCli(['--replay', file, '--once', '--at', 'end']);
    expect(r.stdout).toContain('(sample 4/4), speed x1, end of trace');
    expect(row(r.stdout, 0).split('    ')[0]).toBe('p0 .. .. AH .. .. .. .. ..');
    const events = r.stdout.slice(r.stdout.indexOf('Lifecycle events (6)'));
    expect(events.split('\n').slice(1, 4)).toEqual([
      't=3.000s  process-exited   pid 200',
      't=3.000s  queue-destroyed  pid 200 q0 compute gpu 7c1e',
      't=2.000s  priority-changed pid 100 q0 compute gpu 7c1e pipe/queue priority 1/7 -> 2/15',
    ]);
  });

  it('filter by pid (the reducer) keeps that process and its events only', async () => {
    const src = new ReplaySource(await readTrace(file), 'trace.jsonl');
    const b = src.bounds();
    let v = initialView({ columns: 120, rows: 0, replay: { ...b, speed: 1 } });
    for (const input of ['/', '2', '0', '0']) v = reduceTop(v, { type: 'key', key: { input }, gpuCount: 1 });
    v = reduceTop(v, { type: 'key', key: { input: '', name: 'return' }, gpuCount: 1 });
    v = reduceTop(v, { type: 'tick', elapsedNs: 10e9 });
    const text = frameText(buildFrame(src.snapshotAt(v.replay!.positionNs), v, { interactive: false }), null);
    expect(text).toContain('Processes (0 of 1; sort: pid, filter pid 200 (no such KFD process))');
    expect(text).toContain('Lifecycle events (4)');
    expect(text).not.toContain('pid 100 q');
  });
});

describe('top --replay of a trace the tracer recorded', () => {
  it('shows the example tree as recorded', async () => {
    const t = new KfdTree();
    dirs.push(t.root);
    const out = path.join(t.root, 'rec.jsonl');
    const res = await runTrace({
      intervalNs: 100e6, durationNs: 200e6, debugfsIntervalNs: null, sources: ['sysfs', 'debugfs'],
      sysfsRoot: t.sysfs, debugfsRoot: t.debugfs, procRoot: t.proc, baselineNs: 0, tailNs: 0, stopAfterNs: null, out,
    });
    expect(res.endedBy).toBe('duration');
    const r = await topCli(['--replay', out, '--once', '--at', 'end']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('2 process(es), 4 queue(s)');
    for (const xcc of row(r.stdout, 0).split(/ {4}/)) expect(xcc).toBe('p0 .. .. AN .. .. .. .. ..');
    expect(r.stdout).toMatch(/\n {4}q1 {2}compute {2}node 2 {2}prio high 2\/11 {2}slots p1 q2 x4, 4 active {2}runlist yes\n/);
  });
});

describe('top --replay: bad traces', () => {
  it('not a trace: exit 1 naming the file and line', async () => {
    const dir = tmpDir('gpucolo-top-bad-');
    dirs.push(dir);
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, 'hello\n');
    const r = await topCli(['--replay', bad, '--once']);
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/bad\.jsonl:1: not a gpucolo trace: the first line is not JSON/);
    expect((await topCli(['--replay', path.join(dir, 'none.jsonl'), '--once'])).code).toBe(1);
  });

  it('a trace without samples: exit 1, nothing to replay', async () => {
    const dir = tmpDir('gpucolo-top-empty-');
    dirs.push(dir);
    const r = await topCli(['--replay', writeJsonl([header()], { dir }), '--once']);
    expect(r).toMatchObject({ code: 1, message: 'trace.jsonl: nothing to replay: the trace has no samples' });
  });
});
