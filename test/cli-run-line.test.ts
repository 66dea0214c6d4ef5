/**
 * The first screen line of `gpucolo run`: form, backend and phase count, short; the long why
 * (every other backend's unavailability reason) only with --verbose (results.json keeps it).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startText } from '../src/cli/run.js';
import { loadScenario, type RunEvent } from '../src/scenario/index.js';
import { planRun } from '../src/scenario/runner.js';
import { ROOT, nativeLoaded } from './helpers/impls.js';

type StartEvent = Extract<RunEvent, { type: 'start' }>;

const PHASES = ['standalone:resnet18', 'standalone:resnet50', 'corun:none', 'corun:stream-priority', 'corun:throttle', 'corun:gate'];

/** The start event runScenario emits for the canned scenario on this host (its real why). */
function hostStart(): StartEvent {
  const { scenario } = loadScenario('inference-service');
  const plan = planRun(scenario, { form: 'probe', backend: 'cpu' });
  return { type: 'start', form: plan.form, backend: plan.backend, why: plan.why, phases: PHASES };
}

// the why of a cpu fallback on a host without GPUs, as planRun words it
const FALLBACK: StartEvent = {
  type: 'start',
  form: 'probe',
  backend: 'cpu',
  why: 'no GPU here, so the probe form; cpu backend (cuda: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version; hip: gpucolo_hip.so not built (HIP is opt-in))',
  phases: PHASES,
};

describe('gpucolo run: first screen line', () => {
  it('names the form, the backend and the number of phases, nothing else', () => {
    expect(startText('inference-service', FALLBACK)).toBe('gpucolo run inference-service: probe form, cpu backend; 6 phases\n');
    expect(startText('inference-service', hostStart())).toBe('gpucolo run inference-service: probe form, cpu backend; 6 phases\n');
  });

  it('leaves the other backends\' reasons out (one line) unless verbose', () => {
    const short = startText('inference-service', FALLBACK);
    expect(short.split('\n')).toEqual([expect.any(String), '']);
    expect(short).not.toMatch(/cuda|hip|insufficient/);
    const long = startText('inference-service', FALLBACK, true).split('\n');
    expect(long[0]).toBe('gpucolo run inference-service: probe form, cpu backend; 6 phases');
    expect(long[1]).toBe(`  why: ${FALLBACK.why}`);
    expect(long[2]).toBe(`  phases: ${PHASES.join(', ')}`);
  });

  it('says when the pure-TS engine ran (start events with engine: ts); native or no engine field says nothing', () => {
    const ts = { ...FALLBACK, engine: 'ts' } as StartEvent;
    expect(startText('x', ts)).toBe('gpucolo run x: probe form, cpu backend (pure-TS engine: native core not loaded); 6 phases\n');
    expect(startText('x', { ...FALLBACK, engine: 'native' } as StartEvent)).toBe('gpucolo run x: probe form, cpu backend; 6 phases\n');
    // the reason's head on the short line, all of it with --verbose
    const why = { ...FALLBACK, engine: 'ts', engineWhy: 'native core not loaded: cannot open build/Release/gpucolo.node (ENOENT)' } as StartEvent;
    expect(startText('x', why).split('\n')[0]).toBe('gpucolo run x: probe form, cpu backend (pure-TS engine: native core not loaded); 6 phases');
    expect(startText('x', why, true).split('\n')[2]).toBe('  engine: ts (native core not loaded: cannot open build/Release/gpucolo.node (ENOENT))');
    const forced = { ...FALLBACK, engine: 'ts', engineWhy: 'GPUCOLO_DISPATCH_ENGINE=ts' } as StartEvent;
    expect(startText('x', forced)).toBe('gpucolo run x: probe form, cpu backend (pure-TS engine: GPUCOLO_DISPATCH_ENGINE=ts); 6 phases\n');
  });

  it('says the rounds when there is more than one (start events without rounds say nothing)', () => {
    expect(startText('inference-service', { ...FALLBACK, rounds: 2 })).toBe('gpucolo run inference-service: probe form, cpu backend; 6 phases, 2 rounds\n');
    expect(startText('inference-service', { ...FALLBACK, rounds: 1 })).toBe('gpucolo run inference-service: probe form, cpu backend; 6 phases\n');
  });

  it('torch form: no dispatch backend to name; one phase is "1 phase"', () => {
    const torch: StartEvent = { type: 'start', form: 'torch', backend: 'torch', why: 'torch form as asked', phases: ['standalone:a'] };
    expect(startText('s', torch)).toBe('gpucolo run s: torch form; 1 phase\n');
  });
});

// one standalone and one co-run phase of 300 ms on the cpu backend
const TINY = `
name: tiny
duration: 300ms
warmup: 50ms
mechanisms: []
tasks:
  - name: hp
    priority: 2
    arrival: { kind: poisson, rate: 20, seed: 1 }
    probe: { kernel: 1ms }
`;

describe.runIf(nativeLoaded)('gpucolo run on screen and on disk', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-run-line-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('prints the short line first (--verbose adds the why); writes under ./gpucolo-runs, not next to the scenario file', () => {
    const pkg = path.join(tmp, 'node_modules', 'scenarios');
    const work = path.join(tmp, 'work');
    fs.mkdirSync(pkg, { recursive: true });
    fs.mkdirSync(work);
    const file = path.join(pkg, 'tiny.yaml');
    fs.writeFileSync(file, TINY);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli/cli.js'), 'run', file, '--form', 'probe', '--backend', 'cpu', '--no-charts', '--verbose'], { encoding: 'utf8', cwd: work, timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('gpucolo run tiny: probe form, cpu backend; 2 phases, 2 rounds'); // the default rounds
    expect(lines[1]).toBe('  why: probe form as asked; backend cpu as asked');
    // then the engine, where the start event names one (native core, or the pure-TS engine)
    expect(lines).toContain('  phases: standalone:hp, corun:none');
    const rest = lines.slice(2, lines.indexOf('  phases: standalone:hp, corun:none'));
    expect(rest.length, r.stdout).toBeLessThanOrEqual(1);
    for (const l of rest) expect(l).toMatch(/^ {2}engine: (native|ts)( \(.+\))?$/);
    expect(fs.readdirSync(pkg)).toEqual(['tiny.yaml']);
    const runs = fs.readdirSync(path.join(work, 'gpucolo-runs'));
    expect(runs).toEqual([expect.stringMatching(/^tiny-\d{8}-\d{6}$/)]);
    const results = JSON.parse(fs.readFileSync(path.join(work, 'gpucolo-runs', runs[0], 'results.json'), 'utf8')) as { backend: { why: string } };
    expect(results.backend.why).toBe('probe form as asked; backend cpu as asked');
  }, 120_000);
});
