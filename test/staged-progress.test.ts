/**
 * stagedProgress (src/cli/staged-progress.ts): the plain lines of `gpucolo staged run` when stderr
 * is not a TTY, and the per-stage bars on a (fake) TTY: done/total after items, a re-plan that
 * replaces the remaining work instead of adding to it, lines logged above the bars, stop().
 * cli-progress redraws on a timer: fake timers make that deterministic.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StagedTally, stageBarInfo, stageBarValue, stagedProgress } from '../src/cli/staged-progress.js';
import type { Plan, PlanStep, StagedEvent } from '../src/runners/staged/index.js';

class FakeStream extends Writable {
  chunks: string[] = [];
  isTTY: boolean;
  columns = 120;
  constructor(tty: boolean) {
    super({ decodeStrings: false });
    this.isTTY = tty;
  }
  override _write(chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(String(chunk));
    cb();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

const proc = (stage: string, category: string, items: number): PlanStep => ({ kind: 'process', stage, category, items });
const plan = (steps: PlanStep[], loads = 2, naiveLoads = 6): Plan => ({ mode: 'stage-by-stage', steps, loads, unloads: loads - 1, naiveLoads, order: [], notes: [] });

/** Output split into lines with the escape sequences as line breaks. */
const lines = (s: string): string[] =>
  s
    .replace(/\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g, '\n')
    .split(/[\r\n]+/)
    .filter((l) => l.length > 0);

/** The last drawn text of each stage's bar: stage -> "done/total info". */
function bars(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of lines(s)) {
    const r = /^(\S+)\s+\|[\u2588\u2591]+\| (\d+\/\d+.*)$/.exec(l);
    if (r) m.set(r[1], r[2].trimEnd());
  }
  return m;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('stagedProgress, not a TTY', () => {
  const events: StagedEvent[] = [
    { type: 'warning', message: 'journal: dropped a broken last line' },
    { type: 'plan', plan: plan([{ kind: 'load', stage: 'edit' }, proc('edit', 'style', 2), { kind: 'unload', stage: 'edit' }, { kind: 'load', stage: 'score' }, proc('score', 'style', 2)], 2, 4), replanned: false },
    { type: 'load', stage: 'edit', ms: 12.345, memoryMB: 1023.6 },
    { type: 'plan', plan: plan([proc('edit', 'style', 2), proc('score', 'style', 2)], 2, 4), replanned: true },
    { type: 'stage-start', category: 'style', stage: 'edit', todo: 2 },
    { type: 'item', category: 'style', stage: 'edit', item: 'a', ok: true, ms: 3 },
    { type: 'item', category: 'style', stage: 'edit', item: 'b', ok: false, error: 'boom' },
    { type: 'stage-end', category: 'style', stage: 'edit', processed: 1, failed: 1, skipped: 0 },
    { type: 'unload', stage: 'edit', ms: 0.5 },
    { type: 'load', stage: 'score', ms: 2, memoryMB: null },
  ];
  const expected = [
    'gpucolo: warning: journal: dropped a broken last line',
    'plan: stage-by-stage, 2 loads (per-item: 4)',
    'load edit: 12.3 ms, 1024 MB',
    're-planned: stage-by-stage, 2 loads (per-item: 4)',
    'style / edit: 1 done, 1 failed, 0 skipped',
    'unload edit: 0.5 ms',
    'load score: 2.0 ms, memory not reported',
    '',
  ].join('\n');

  it('prints the same lines as before, items print nothing', () => {
    const s = new FakeStream(false);
    const p = stagedProgress(s);
    for (const e of events) p.onEvent(e);
    p.stop();
    p.stop();
    expect(s.text).toBe(expected);
  });

  it('opts.tty false wins over a TTY stream', () => {
    const s = new FakeStream(true);
    const p = stagedProgress(s, { tty: false });
    for (const e of events) p.onEvent(e);
    p.stop();
    expect(s.text).toBe(expected);
  });
});

describe('stagedProgress on a TTY', () => {
  it('draws one bar per stage, counts items, re-plans without double counting, logs above the bars', () => {
    vi.useFakeTimers();
    const s = new FakeStream(true);
    const p = stagedProgress(s);
    p.onEvent({
      type: 'plan',
      plan: plan([{ kind: 'load', stage: 'edit' }, proc('edit', 'style', 5), proc('edit', 'photo', 3), { kind: 'unload', stage: 'edit' }, { kind: 'load', stage: 'score' }, proc('score', 'style', 5), proc('score', 'photo', 3)], 2, 4),
      replanned: false,
    });
    p.onEvent({ type: 'load', stage: 'edit', ms: 12, memoryMB: 100 });
    // the lines are drawn at once (not at the next tick), above the bars
    const l = lines(s.text);
    const at = (pre: string): number => l.findLastIndex((x) => x.startsWith(pre));
    expect(at('plan: stage-by-stage, 2 loads (per-item: 4)')).toBeGreaterThanOrEqual(0);
    expect(at('load edit: 12.0 ms, 100 MB')).toBeGreaterThan(at('plan: '));
    // stage names padded to the longest, edit first (plan order)
    expect(at('edit  |')).toBeGreaterThan(at('load edit: '));
    expect(at('score |')).toBe(at('edit  |') + 1);
    expect(bars(s.text)).toEqual(
      new Map([
        ['edit', '0/8'],
        ['score', '0/8'],
      ]),
    );

    p.onEvent({ type: 'stage-start', category: 'style', stage: 'edit', todo: 5 });
    p.onEvent({ type: 'item', category: 'style', stage: 'edit', item: 'a', ok: true, ms: 2 });
    p.onEvent({ type: 'item', category: 'style', stage: 'edit', item: 'b', ok: true, ms: 4 });
    p.onEvent({ type: 'item', category: 'style', stage: 'edit', item: 'c', ok: false, error: 'boom' });
    p.onEvent({ type: 'item', category: 'style', stage: 'edit', item: 'd', ok: true, ms: 3 });
    vi.advanceTimersByTime(150);
    expect(bars(s.text).get('edit')).toBe('4/8 style 3.0 ms/item 1 failed');
    expect(bars(s.text).get('score')).toBe('0/8');

    // one skipped (failed input): not journaled, so the re-plan counts it as left again
    p.onEvent({ type: 'stage-end', category: 'style', stage: 'edit', processed: 3, failed: 1, skipped: 1 });
    expect(lines(s.text)).toContain('style / edit: 3 done, 1 failed, 1 skipped');
    expect(bars(s.text).get('edit')).toBe('5/8 style 3.0 ms/item 1 failed');

    // re-plan after a measured load: replaces the remaining work (score photo now 2)
    p.onEvent({ type: 'plan', plan: plan([proc('edit', 'style', 1), proc('edit', 'photo', 3), proc('score', 'style', 5), proc('score', 'photo', 2)], 2, 4), replanned: true });
    expect(lines(s.text)).toContain('re-planned: stage-by-stage, 2 loads (per-item: 4)');
    expect(bars(s.text)).toEqual(
      new Map([
        ['edit', '5/8 style 3.0 ms/item 1 failed'],
        ['score', '0/7'],
      ]),
    );

    p.onEvent({ type: 'stage-start', category: 'photo', stage: 'edit', todo: 3 });
    for (const id of ['x', 'y', 'z']) p.onEvent({ type: 'item', category: 'photo', stage: 'edit', item: id, ok: true, ms: 3 });
    vi.advanceTimersByTime(150);
    expect(bars(s.text).get('edit')).toBe('8/8 photo 3.0 ms/item 1 failed');
    p.onEvent({ type: 'stage-end', category: 'photo', stage: 'edit', processed: 3, failed: 0, skipped: 0 });
    p.onEvent({ type: 'unload', stage: 'edit', ms: 1.25 });
    expect(lines(s.text)).toContain('unload edit: 1.3 ms');

    // a second re-plan with nothing left for edit but the skipped pair: still 8 in all
    p.onEvent({ type: 'plan', plan: plan([proc('edit', 'style', 1), proc('score', 'style', 5), proc('score', 'photo', 2)], 2, 4), replanned: true });
    p.onEvent({ type: 'stage-start', category: 'style', stage: 'score', todo: 5 });
    p.onEvent({ type: 'item', category: 'style', stage: 'score', item: 'a', ok: true, ms: 250 });
    vi.advanceTimersByTime(150);
    expect(bars(s.text)).toEqual(
      new Map([
        ['edit', '8/8 photo 3.0 ms/item 1 failed'],
        ['score', '1/7 style 250 ms/item'],
      ]),
    );

    // a warning logged just before stop() is not lost; stop() leaves the final bars and the cursor on
    p.onEvent({ type: 'warning', message: 'late' });
    const before = s.chunks.length;
    p.stop();
    expect(s.chunks.length).toBeGreaterThan(before);
    expect(lines(s.text)).toContain('gpucolo: warning: late');
    expect(s.text.endsWith('\n')).toBe(true);
    expect(s.text).toContain('\x1B[?25h');
    expect(vi.getTimerCount()).toBe(0);

    // idempotent
    const after = s.text;
    p.stop();
    expect(s.text).toBe(after);

    // after stop: plain lines, no bars
    p.onEvent({ type: 'item', category: 'style', stage: 'score', item: 'b', ok: true, ms: 1 });
    p.onEvent({ type: 'unload', stage: 'score', ms: 2 });
    vi.advanceTimersByTime(1000);
    expect(s.text).toBe(`${after}unload score: 2.0 ms\n`);
  });

  it('does not throw on events for unknown stages or odd events', () => {
    vi.useFakeTimers();
    const s = new FakeStream(true);
    const p = stagedProgress(s);
    expect(() => {
      // before any plan: the warning is written plainly, an item creates a bar for its stage
      p.onEvent({ type: 'warning', message: 'early' });
      p.onEvent({ type: 'item', category: 'c', stage: 'ghost', item: 'i', ok: true, ms: 1 });
      p.onEvent({ type: 'stage-end', category: 'c', stage: 'phantom', processed: 0, failed: 0, skipped: 2 });
      p.onEvent({ type: 'load', stage: 'nowhere', ms: 1, memoryMB: 0 });
      p.onEvent({ type: 'plan', plan: { steps: undefined } as unknown as Plan, replanned: false });
      p.onEvent({ type: 'bogus' } as unknown as StagedEvent);
    }).not.toThrow();
    vi.advanceTimersByTime(150);
    expect(s.text.startsWith('gpucolo: warning: early\n')).toBe(true);
    expect(bars(s.text).get('ghost')).toBe('1/1 c 1.0 ms/item');
    expect(bars(s.text).get('phantom')).toBe('2/2 c');
    expect(lines(s.text)).toContain('load nowhere: 1.0 ms, 0 MB');
    p.stop();
    p.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop() without any event writes nothing', () => {
    const s = new FakeStream(true);
    const p = stagedProgress(s);
    p.stop();
    p.stop();
    expect(s.text).toBe('');
  });
});

describe('StagedTally (the counting step of the bars, alone)', () => {
  it('a re-plan replaces the remaining work; a stage-end replaces the skipped count', () => {
    const seen: string[] = [];
    const t = new StagedTally((st) => seen.push(st.name));
    t.apply({ type: 'plan', replanned: false, plan: plan([proc('embed', 'a', 3), proc('score', 'a', 3)]) });
    expect(seen).toEqual(['embed', 'score']);
    const embed = t.stageOf('embed');
    expect(stageBarValue(embed)).toEqual({ value: 0, total: 3 });
    t.apply({ type: 'item', category: 'a', stage: 'embed', item: '1', ok: true, ms: 12 });
    t.apply({ type: 'item', category: 'a', stage: 'embed', item: '2', ok: false, error: 'x' });
    // re-planned with one item left: done stays 2, total 2 + 1
    t.apply({ type: 'plan', replanned: true, plan: plan([proc('embed', 'a', 1)]) });
    expect(stageBarValue(embed)).toEqual({ value: 2, total: 3 });
    expect(stageBarInfo(embed)).toBe(' a 12.0 ms/item 1 failed');
    const score = t.stageOf('score');
    t.apply({ type: 'stage-end', category: 'a', stage: 'score', processed: 0, failed: 0, skipped: 2 });
    t.apply({ type: 'stage-end', category: 'a', stage: 'score', processed: 0, failed: 0, skipped: 3 });
    // never less than what is done: the plan said nothing is left for score
    expect(stageBarValue(score)).toEqual({ value: 3, total: 3 });
    expect(t.apply({ type: 'warning', message: 'w' })).toEqual([]);
  });
});
