/** gpucolo top: the ink drawing of a frame shows the same text as the plain-text frame (--once). */
import { renderToString } from 'ink';
import { describe, expect, it } from 'vitest';
import { frameElement, mergeSegments } from '../src/top/app.js';
import { buildFrame, layoutFrame } from '../src/top/frame.js';
import { initialView } from '../src/top/keys.js';
import type { TopSnapshot } from '../src/top/state.js';
import { lineText } from '../src/top/text.js';
import { compute, GPU, proc, sample } from './helpers/trace-build.js';

const snap: TopSnapshot = {
  label: 'test',
  gpus: [GPU],
  sample: sample(3, 3e8, [proc(7, [compute('7/q0', { qid: 0, mqd: '0x1000', slot: [1, 4], prio: [2, 12] })])]),
  slots: null,
  procs: null,
  events: [],
  cost: { sampler: 'native-thread', intervalNs: 1e9, readNs: 2e5, parseNs: 0, joinNs: 3e4, samplerCpuShare: 0.0012, jsCpuShare: 0.004, missed: 0 },
  missing: ['something unknown'],
  replay: null,
};

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('top drawn with ink', () => {
  it('draws every frame line as its text (colours aside), within the columns', () => {
    const view = initialView({ columns: 100, rows: 30 });
    const lines = layoutFrame(buildFrame(snap, view, { interactive: true, frameNs: 2e5 }), view.columns, view.rows);
    const drawn = stripAnsi(renderToString(frameElement(lines), { columns: view.columns })).split('\n').map((l) => l.trimEnd());
    expect(drawn).toEqual(lines.map(lineText));
    expect(drawn.find((l) => l.startsWith('p1 '))).toBe('p1 .. .. .. .. AH .. .. ..    p1 .. .. .. .. AH .. .. ..    p1 .. .. .. .. AH .. .. ..');
    // cut at the 100 columns, not wrapped
    const cost = 'sampler native-thread every 1s: read 0.2ms, parse 0, join 30us; CPU: sampler thread 0.12% of a core, JS thread 0.40%; missed 0; frame 0.2ms';
    expect(drawn).toContain(cost.slice(0, 100));
    expect(drawn.every((l) => l.length <= 100)).toBe(true);
    expect(drawn[drawn.length - 1]).toMatch(/^q quit {2}p pause {2}s sort \(pid\) {2}\/ filter pid {2}g GPU$/);
  });

  it('merges segments of one tone and blanks, keeping the text', () => {
    const merged = mergeSegments([{ text: 'p0', tone: 'dim' }, { text: ' ' }, { text: '..', tone: 'dim' }, { text: ' ' }, { text: 'AH', tone: 'high' }, { text: 'x' }]);
    expect(merged).toEqual([{ text: 'p0 .. ', tone: 'dim' }, { text: 'AH', tone: 'high' }, { text: 'x' }]);
  });
});
