/**
 * `gpucolo tune` as a user runs it (built dist/cli/cli.js in a child process): bad inputs are one
 * line and exit 2 (usage) or 1 (could not do its job); one short real run on the cpu backend with
 * a tiny budget writes a valid tune.json and report.md and prints a recommendation line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tuneResultSchema } from '../src/tune/schema.js';
import { ROOT } from './helpers/impls.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-tune-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tune(args: string[], timeout = 30_000) {
  const r = spawnSync(process.execPath, [CLI, 'tune', ...args], { encoding: 'utf8', cwd: tmp, timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, gpucolo: prefix. */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^gpucolo: /);
  return lines[0];
}

const TINY = `
name: tiny-tune
backend: cpu
duration: 1s
warmup: 100ms
tasks:
  - name: hp
    priority: 2
    arrival: { kind: fixed-rate, rate: 100 }
    slo: { percentile: 99, below: 40ms }
    probe: { kernel: 2ms }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 2 }
    probe: { kernel: 4ms, blocks: fill }
`;

function scenarioFile(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

describe('gpucolo tune: bad inputs', () => {
  const file = scenarioFile('tiny.yaml', TINY);

  it('an unknown mechanism, or one without a knob, is bad usage (exit 2)', () => {
    const a = tune([file, '--mechanism', 'bogus']);
    expect(a.code).toBe(2);
    expect(oneLine(a.stderr)).toContain('unknown mechanism "bogus"');
    const b = tune([file, '--mechanism', 'throttle,stream-priority']);
    expect(b.code).toBe(2);
    expect(oneLine(b.stderr)).toContain('mechanism stream-priority has no knob to tune');
  });

  it('a scenario without a high-priority SLO is bad usage (exit 2)', () => {
    const f = scenarioFile('no-slo.yaml', TINY.replace(/\n {4}slo: .*\n/, '\n'));
    const r = tune([f, '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain('have no slo');
  });

  it('a budget too small for one trial is bad usage (exit 2), before anything is written', () => {
    const out = path.join(tmp, 'small');
    const r = tune([file, '--backend', 'cpu', '--budget', '2s', '--out', out]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain('too small for one trial');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('an output directory that cannot be made is exit 1', () => {
    const r = tune([file, '--backend', 'cpu', '--out', '/proc/gpucolo-no/out']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toContain('cannot create directory');
  });

  it('a mechanism the backend cannot run is exit 1 (sm-partition on the cpu backend)', () => {
    const r = tune([file, '--backend', 'cpu', '--mechanism', 'sm-partition']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toContain('no mechanism to tune runs here');
  });
});

describe('gpucolo tune: a short real run on the cpu backend', () => {
  it('writes tune.json (valid) and report.md, and prints the recommendation', () => {
    const file = scenarioFile('tiny-run.yaml', TINY);
    const out = path.join(tmp, 'run');
    const r = tune([file, '--backend', 'cpu', '--mechanism', 'throttle', '--budget', '15s', '--max-rounds', '2', '--out', out], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const result = tuneResultSchema.parse(JSON.parse(fs.readFileSync(path.join(out, 'tune.json'), 'utf8')));
    expect(result.partial).toBe(false);
    expect(result.hpTasks).toEqual(['hp']);
    expect(result.mechanisms.map((m) => [m.mechanism, m.knob, m.levels])).toEqual([['throttle', 'throttleK', 2]]);
    expect(result.baseline.tasks.map((t) => t.name)).toEqual(['hp', 'lp']);
    for (const t of result.trials) {
      expect(t.mechanism).toBe('throttle');
      expect(t.rounds).toBeLessThanOrEqual(2);
      // a recommendation only ever comes from a met trial with quality ok
      if (result.recommendation?.trial === t.id) expect([t.verdict, t.quality.verdict]).toEqual(['met', 'ok']);
    }
    if (result.recommendation === null) expect(result.why).not.toBe('');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^# gpucolo tune: tiny-tune\n/);
    expect(md).toContain('## Trials');
    expect(r.stdout).toMatch(/^recommendation: /m);
    expect(r.stdout).toContain(`wrote ${path.join(out, 'tune.json')}`);
    // not a TTY: progress as plain lines, one per trial
    expect(r.stderr.split('\n').filter((l) => /^gpucolo tune: trial \d+: throttle /.test(l))).toHaveLength(result.trials.length);
  });
});
