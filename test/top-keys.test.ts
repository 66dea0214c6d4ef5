/** gpucolo top: the view reducer (keys, clock, resize) and the fitting of a frame to the terminal. */
import { describe, expect, it } from 'vitest';
import { buildFrame, layoutFrame } from '../src/top/frame.js';
import { initialView, reduceTop, type TopKey, type TopView } from '../src/top/keys.js';
import type { TopSnapshot } from '../src/top/state.js';
import { lineText } from '../src/top/text.js';
import { compute, GPU, proc, sample } from './helpers/trace-build.js';

const press = (v: TopView, ...keys: (string | TopKey)[]): TopView =>
  keys.reduce((s, k) => reduceTop(s, { type: 'key', key: typeof k === 'string' ? { input: k } : k, gpuCount: 3 }), v);

const live = (): TopView => initialView({ columns: 100, rows: 40 });
const replay = (): TopView => initialView({ columns: 100, rows: 40, replay: { startNs: 0, endNs: 20e9, speed: 1, seekNs: 5e9 } });

describe('top keys', () => {
  it('q quits, p and space pause and resume', () => {
    expect(press(live(), 'q').quit).toBe(true);
    expect(press(live(), 'p').paused).toBe(true);
    expect(press(live(), 'p', ' ').paused).toBe(false);
  });

  it('s cycles the sort order and comes back', () => {
    const orders = [1, 2, 3, 4].map((n) => press(live(), ...Array(n).fill('s')).sort);
    expect(orders).toEqual(['queues', 'vram', 'priority', 'pid']);
  });

  it('g cycles the GPUs, and does nothing without any', () => {
    expect([1, 2, 3].map((n) => press(live(), ...Array(n).fill('g')).gpuIndex)).toEqual([1, 2, 0]);
    expect(reduceTop(live(), { type: 'key', key: { input: 'g' }, gpuCount: 0 }).gpuIndex).toBe(0);
  });

  it('/ or f then digits and return filter by pid; backspace edits; escape keeps the old filter; empty clears', () => {
    const typed = press(live(), '/', '4', '2', '1', { input: '', name: 'backspace' }, '1', '7');
    expect(typed.filterInput).toBe('4217');
    // while typing, letters are not commands
    expect(press(typed, 'q').quit).toBe(false);
    const set = press(typed, { input: '', name: 'return' });
    expect(set).toMatchObject({ filterPid: 4217, filterInput: null });
    expect(press(set, 'f', '9', { input: '', name: 'escape' })).toMatchObject({ filterPid: 4217, filterInput: null });
    expect(press(set, 'f', { input: '', name: 'return' }).filterPid).toBeNull();
  });

  it('replay: left/right seek within the trace, +/- change the speed within bounds', () => {
    const v = press(replay(), { input: '', name: 'right' }, { input: '', name: 'right' });
    expect(v.replay!.positionNs).toBe(10e9);
    expect(press(v, ...Array(9).fill({ input: '', name: 'right' })).replay!.positionNs).toBe(20e9);
    expect(press(v, ...Array(9).fill({ input: '', name: 'left' })).replay!.positionNs).toBe(0);
    expect(press(replay(), '+', '+').replay!.speed).toBe(4);
    expect(press(replay(), '-').replay!.speed).toBe(0.5);
    expect(press(replay(), ...Array(40).fill('+')).replay!.speed).toBe(1024);
    expect(press(replay(), ...Array(40).fill('-')).replay!.speed).toBe(1 / 64);
  });

  it('live: seek and speed keys do nothing', () => {
    const v = live();
    expect(press(v, { input: '', name: 'left' }, '+', '-')).toBe(v);
  });

  it('replay: ticks move the position by elapsed x speed, not while paused, never past the end', () => {
    const fast = press(replay(), '+');
    expect(reduceTop(fast, { type: 'tick', elapsedNs: 1e9 }).replay!.positionNs).toBe(2e9);
    expect(reduceTop(press(fast, 'p'), { type: 'tick', elapsedNs: 1e9 }).replay!.positionNs).toBe(0);
    expect(reduceTop(fast, { type: 'tick', elapsedNs: 60e9 }).replay!.positionNs).toBe(20e9);
  });

  it('resize takes the new size (and keeps the same state object when unchanged)', () => {
    const v = live();
    expect(reduceTop(v, { type: 'resize', columns: 60, rows: 20 })).toMatchObject({ columns: 60, rows: 20 });
    expect(reduceTop(v, { type: 'resize', columns: 100, rows: 40 })).toBe(v);
  });
});

function snapshot(processes: number): TopSnapshot {
  const procs = Array.from({ length: processes }, (_, i) => proc(1000 + i, [compute(`${1000 + i}/q0`, { qid: 0, mqd: `0x${(i + 1).toString(16)}000`, slot: [0, 2 + (i % 6)] })]));
  return {
    label: 'test',
    gpus: [GPU],
    sample: sample(0, 0, procs),
    slots: null,
    procs: null,
    events: [],
    cost: { sampler: 'recorded', intervalNs: 1e8, readNs: 1000, parseNs: 0, joinNs: 0, samplerCpuShare: null, jsCpuShare: null, missed: 0 },
    missing: [],
    replay: null,
  };
}

describe('top frame fitted to the terminal', () => {
  it('a short terminal: as many lines as rows, the process list cut with "... N more", every line within the columns', () => {
    const v = { ...initialView({ columns: 70, rows: 24 }) };
    const lines = layoutFrame(buildFrame(snapshot(30), v, { interactive: true }), v.columns, v.rows).map(lineText);
    expect(lines).toHaveLength(24);
    expect(lines.every((l) => l.length <= 70)).toBe(true);
    expect(lines.some((l) => /^ {2}\.\.\. \d+ more$/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/^q quit/);
  });

  it('after a resize the same state draws to the new size', () => {
    const v = reduceTop(initialView({ columns: 70, rows: 24 }), { type: 'resize', columns: 200, rows: 80 });
    const lines = layoutFrame(buildFrame(snapshot(30), v, { interactive: true }), v.columns, v.rows).map(lineText);
    expect(lines.length).toBeLessThanOrEqual(80);
    // the taller terminal holds every process: nothing cut
    expect(lines.some((l) => l.includes('... '))).toBe(false);
    expect(lines.filter((l) => /^[A-Za-z]  10\d\d /.test(l))).toHaveLength(30);
    // four XCC blocks side by side fit 200 columns
    expect(lines.find((l) => l.startsWith('XCC 0'))).toMatch(/XCC 0 .*XCC 1 .*XCC 2 .*XCC 3/);
  });
});

describe('top frame: choosing the GPU', () => {
  it('g moves the grid to the next GPU; the summary marks the chosen one', () => {
    const gpu2 = { node: 3, gpuId: 'a1b2', name: 'ip discovery', gfxTarget: 'gfx942', numXcc: 2 };
    const s = snapshot(1);
    const onSecond = { ...compute('1000/q1', { qid: 1, mqd: '0x9000', slot: [3, 5], xccs: 2 }), gpuId: 'a1b2', node: 3 };
    s.gpus = [GPU, gpu2];
    s.sample!.processes[0].queues.push(onSecond);
    const text = (v: TopView): string[] => layoutFrame(buildFrame(s, v, { interactive: false }), null, null).map(lineText);
    const first = text(initialView({ columns: 100, rows: 0 }));
    expect(first).toContain('> GPU 1/2: node 2, gpu_id 7c1e, gfx942 ip discovery, 4 XCC: active CP slots 4 (1+1+1+1 per XCC), 0 unmatched');
    expect(first.filter((l) => l.startsWith('XCC 0'))).toEqual(['XCC 0                         XCC 1                         XCC 2']);
    const second = text(press(initialView({ columns: 100, rows: 0 }), 'g'));
    expect(second).toContain('> GPU 2/2: node 3, gpu_id a1b2, gfx942 ip discovery, 2 XCC: active CP slots 2 (1+1 per XCC), 0 unmatched');
    expect(second.find((l) => l.startsWith('p3 '))).toBe('p3 .. .. .. .. .. AN .. ..    p3 .. .. .. .. .. AN .. ..');
    expect(second.some((l) => l.startsWith('XCC 2'))).toBe(false);
  });
});
