/**
 * Issue 17 item 9: metric regexes from models.json run on training logs off the supervisor's
 * thread, each with a time limit. A catastrophic-backtracking pattern (`^(a+)+$` against 40 a's
 * and a '!', 2^40 steps) is stopped and refused by name while the other metrics are still read,
 * and the calling thread stays free the whole time (timers and signals run). The tests check the
 * results, never how long anything took: the limit is set small here so the refusal comes soon,
 * and a hang would trip the test timeout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractMetrics, extractMetricsBounded, METRIC_MATCH_TIMEOUT_MS } from '../src/runners/experiment/metrics.js';

const EVIL = '^(a+)+$';
/** short enough for a quick refusal, long enough that a well-behaved regex on a busy host never meets it (2^40 steps never do) */
const LIMIT_MS = 2000;
const LOG = ['epoch 1 Test Accuracy: 40.5', `${'a'.repeat(40)}!`, 'epoch 2 Test Accuracy: 71.25', 'done'].join('\n');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('extractMetricsBounded', () => {
  it('refuses the backtracking pattern by name and still reads the other metrics', async () => {
    const r = await extractMetricsBounded(LOG, { evil: EVIL, acc: 'Test Accuracy:\\s*(?P<v>[\\d.]+)', none: 'best (\\d+)' }, { timeoutMs: LIMIT_MS });
    expect(r.interrupted).toBe(false);
    expect(r.values).toEqual({ evil: null, acc: 71.25, none: null });
    expect(r.refused).toHaveLength(1);
    expect(r.refused[0]).toMatchObject({ metric: 'evil', pattern: EVIL });
    expect(r.refused[0].reason).toMatch(/^regex of metric evil \("\^\(a\+\)\+\$"\) did not finish within 2 s on a \d+-byte log \(catastrophic backtracking\?\): refused, the metric is null/);
    expect(r.refused[0].reason).not.toContain('\n');
  });

  it('the regexes after a refused one run in a fresh worker; two refused, in order', async () => {
    const r = await extractMetricsBounded(LOG, { a: 'Accuracy: ([\\d.]+)', evil1: EVIL, b: 'epoch (\\d+)', evil2: '(a|a)+!x', c: '^(d)one' }, { timeoutMs: LIMIT_MS });
    expect(r.values).toEqual({ a: 71.25, evil1: null, b: 2, evil2: null, c: null });
    expect(r.refused.map((x) => x.metric)).toEqual(['evil1', 'evil2']);
  });

  it('the calling thread stays free: a timer fires and aborting stops the search at once', async () => {
    const ac = new AbortController();
    let ticks = 0;
    const tick = setInterval(() => {
      ticks++;
      if (ticks === 3) ac.abort();
    }, 10);
    // the default limit (30 s) is far away: only the abort can end this
    const r = await extractMetricsBounded(LOG, { evil: EVIL }, { signal: ac.signal });
    clearInterval(tick);
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(r).toEqual({ values: { evil: null }, refused: [], interrupted: true });
    expect(METRIC_MATCH_TIMEOUT_MS).toBeGreaterThan(1000);
  });

  it('same values as extractMetrics on well-behaved patterns (Python named groups, m flag, last match wins)', async () => {
    const log = ['Epoch 1 Test Accuracy: 40.5', 'Epoch 2 Test Accuracy: 71.25', 'Test Accuracy: .', 'loss=0.25\r', 'Test set: Accuracy: 9812/10000 (98.12%)', ''].join('\n');
    const regexes = {
      acc: 'Test Accuracy:\\s*([\\d.]+)',
      named: '(?P<acc>\\d+\\.\\d+)%',
      loss: '^loss=([\\d.]+)\\r?$',
      none: 'best val acc (\\d+\\.\\d+)',
      backref: '(?P<d>\\d)(?P=d)(\\d+)/',
    };
    const r = await extractMetricsBounded(Buffer.from(log), regexes, { timeoutMs: 60_000 });
    expect(r.refused).toEqual([]);
    expect(r.values).toEqual(extractMetrics(log, regexes));
    expect(r.values).toEqual({ acc: 71.25, named: 98.12, loss: 0.25, none: null, backref: null });
  });

  it('a regex that does not compile or has no group is refused with one line naming it', async () => {
    const r = await extractMetricsBounded('x', { bad: '(', nogroup: 'x' });
    expect(r.values).toEqual({ bad: null, nogroup: null });
    expect(r.refused.map((x) => x.reason)).toEqual([
      expect.stringMatching(/^regex of metric bad is not a valid regular expression: /),
      expect.stringMatching(/^regex of metric nogroup has no capture group/),
    ]);
  });

  it('an empty log and an empty registry', async () => {
    expect(await extractMetricsBounded('', { a: 'x(\\d)' })).toEqual({ values: { a: null }, refused: [], interrupted: false });
    expect(await extractMetricsBounded('abc', {})).toEqual({ values: {}, refused: [], interrupted: false });
  });

  it('reads a log file with the regular-file rule: the runner takes the tail of a long log', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-regex-'));
    dirs.push(d);
    const f = path.join(d, 'attempt_1.log');
    fs.writeFileSync(f, `${'noise\n'.repeat(1000)}Test Accuracy: 88.5\n`);
    const { readInputTail } = await import('../src/input-file.js');
    const { buf, truncated } = readInputTail(f, { kind: 'log', maxBytes: 100 });
    expect(truncated).toBe(true);
    const r = await extractMetricsBounded(buf, { acc: 'Test Accuracy: ([\\d.]+)' }, { timeoutMs: 60_000 });
    expect(r.values.acc).toBe(88.5);
  });
});
