/**
 * gpucolo run in rounds (issue 14): the rotated order of phases, pooling over rounds with each
 * round's own figures kept, --min-samples (exact for schedules, measured for closed loops), and
 * the rounds fields of results.json. Short phases (a few hundred ms) on the cpu backend; both
 * dispatch engines (GPUCOLO_NATIVE=0 runs the pure-TS one).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario, parseScenario, runScenario, type Results, type RunEvent, type TaskSamples } from '../src/scenario/index.js';
import { closedLoopDurationNs, scheduledDurationNs } from '../src/scenario/min-samples.js';
import { phaseSpecs, runSchedule } from '../src/scenario/rounds.js';
import { scenarioSchema } from '../src/scenario/schema.js';
import { assemblePhases, poolSamples } from '../src/scenario/pool.js';
import type { PhaseRun } from '../src/scenario/phase-run.js';
import { arrivalTimes } from '../src/scenario/arrivals.js';
import { summarizeLatencyMs } from '../src/stats/index.js';

// cpu backend workers at nice 0 (see test/scenario.test.ts)
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-scenario-rounds-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TWO = `
name: two
duration: 200ms
warmup: 0ms
mechanisms: [throttle]
tasks:
  - name: hp
    priority: 2
    arrival: { kind: fixed-rate, rate: 100 }
    probe: { kernel: 1ms }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 1 }
    probe: { kernel: 2ms, blocks: fill }
success:
  - { task: hp, metric: p99, below: 1s }
`;

describe('rotated order', () => {
  const s = parseScenario(TWO, 'two.yaml');
  const specs = phaseSpecs(s, ['throttle']);

  it('round 1 runs standalone A, standalone B, corun:none, corun:m; each next round starts one later', () => {
    const names = runSchedule(specs, 3).map((r) => `${r.round}:${r.position}:${r.phase.name}`);
    expect(names).toEqual([
      '1:0:standalone:hp', '1:1:standalone:lp', '1:2:corun:none', '1:3:corun:throttle',
      '2:0:standalone:lp', '2:1:corun:none', '2:2:corun:throttle', '2:3:standalone:hp',
      '3:0:corun:none', '3:1:corun:throttle', '3:2:standalone:hp', '3:3:standalone:lp',
    ]);
    expect(() => runSchedule(specs, 0)).toThrow(RangeError);
  });

  it('the scenario default is 2 rounds; a file may set rounds', () => {
    expect(s.rounds).toBe(2);
    expect(parseScenario(`${TWO}rounds: 5\n`, 'x.yaml').rounds).toBe(5);
    expect(() => parseScenario(`${TWO}rounds: 0\n`, 'x.yaml')).toThrow(/rounds: Too small/);
    expect(loadScenario('inference-service').scenario.rounds).toBe(2);
  });

  it('runScenario runs the phases in that order and records rounds at the top and per phase', async () => {
    const events: RunEvent[] = [];
    const out = path.join(tmp, 'order');
    const r = await runScenario(s, 'two.yaml', { outDir: out, form: 'probe', backend: 'cpu', rounds: 3, charts: false, onEvent: (e) => events.push(e) });
    const started = events.filter((e): e is Extract<RunEvent, { type: 'phase-start' }> => e.type === 'phase-start');
    expect(started.map((e) => `${e.round}:${e.phase}`)).toEqual(runSchedule(specs, 3).map((x) => `${x.round}:${x.phase.name}`));
    expect(started.every((e) => e.total === 12 && e.rounds === 3)).toBe(true);
    expect(events[0]).toMatchObject({ type: 'start', rounds: 3 });
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    expect(saved.rounds).toBe(3);
    for (const p of saved.phases) {
      expect(p.rounds!.map((x) => x.round)).toEqual([1, 2, 3]);
      // the position each round gave it: a rotation, so all different
      expect(new Set(p.rounds!.map((x) => x.position)).size).toBe(3);
      for (const x of p.rounds!) expect(x.tasks.map((t) => t.name)).toEqual(p.tasks.map((t) => t.name));
    }
    // pooled n = the rounds' n together; the spread is over the rounds' own P99 and throughput
    for (const p of r.results.phases) {
      for (const t of p.tasks) {
        const own = p.rounds!.map((x) => x.tasks.find((y) => y.name === t.name)!);
        expect(t.latencyMs.n).toBe(own.reduce((a, x) => a + x.n, 0));
        expect(t.requests.issued).toBe(own.reduce((a, x) => a + x.requests.issued, 0));
        expect(t.spread!.p99).toMatchObject({ n: 3, min: Math.min(...own.map((x) => x.p99!)), max: Math.max(...own.map((x) => x.p99!)) });
        expect(t.spread!.throughput!.n).toBe(3);
      }
    }
    expect(r.results.phases.find((p) => p.name === 'standalone:hp')!.measuredS).toBeCloseTo(0.6, 5);
  });
});

describe('pooling', () => {
  const s = parseScenario(TWO, 'two.yaml');
  const specs = phaseSpecs(s, []);
  const MS = 1e6;
  const smp = (task: string, lat: number[], extra: Partial<TaskSamples> = {}): TaskSamples => ({
    task,
    issued: lat.length,
    latencyNs: Float64Array.from(lat, (x) => x * MS),
    startDelayNs: new Float64Array(0),
    serviceNs: Float64Array.from(lat, () => MS),
    errors: 0,
    measuredNs: 1e9,
    ...extra,
  });
  const run = (phase: string, round: number, samples: TaskSamples[], status: PhaseRun['status'] = 'ok'): PhaseRun => ({
    phase: specs.find((p) => p.name === phase)!,
    round,
    position: 0,
    extension: false,
    startedAt: '2026-01-01T00:00:00.000Z',
    status,
    notes: [`note of ${phase}`],
    samples,
    blocks: { hp: 1, lp: 2 },
    computeUnits: 2,
    workloads: {},
    measuredNs: 1e9,
    sampled: { reason: 'no GPU' },
    host: null,
    gpu: null,
    onCpu: true,
  });

  it('exact percentiles over every round\'s requests together, not an average of the rounds\' percentiles', () => {
    const r1 = Array.from({ length: 150 }, (_, i) => 10 + (i % 10));
    const r2 = Array.from({ length: 150 }, (_, i) => 100 + i);
    const runs = [
      run('standalone:hp', 1, [smp('hp', r1)]),
      run('standalone:hp', 2, [smp('hp', r2)]),
      run('standalone:lp', 1, [smp('lp', [5, 6, 7])]),
    ];
    const phases = assemblePhases(specs, runs, { form: 'probe', device: 'cpu:0' });
    expect(phases.map((p) => p.name)).toEqual(['standalone:hp', 'standalone:lp']); // corun:none has not run
    const hp = phases[0].tasks[0];
    expect(hp.latencyMs).toEqual(summarizeLatencyMs(Float64Array.from([...r1, ...r2], (x) => x * MS)));
    expect(hp.latencyMs.n).toBe(300);
    expect(hp.throughput).toBe(150); // 300 requests over 2 s
    expect(phases[0].measuredS).toBe(2);
    expect(phases[0].rounds!.map((x) => x.tasks[0].p99)).toEqual([19, 248]);
    expect(hp.spread).toEqual({ p99: { min: 19, median: 133.5, max: 248, n: 2 }, throughput: { min: 150, median: 150, max: 150, n: 2 } });
    expect(phases[0].notes).toEqual(['note of standalone:hp']); // said once when every round has it
  });

  it('a failed round is left out of the pool, said in the notes, and the phase stays ok', () => {
    const runs = [
      run('standalone:hp', 1, [smp('hp', [1, 2, 3])]),
      { ...run('standalone:hp', 2, [smp('hp', [])], 'failed'), reason: 'engine exploded' },
    ];
    const [p] = assemblePhases(specs, runs, { form: 'probe', device: null });
    expect(p.status).toBe('ok');
    expect(p.tasks[0].latencyMs.n).toBe(3);
    expect(p.rounds!.map((x) => x.status)).toEqual(['ok', 'failed']);
    expect(p.notes).toContain('round 2 failed: engine exploded (left out of the pooled figures)');
  });

  it('co-run shares: pooled against the pooled standalone, each round against its own round', () => {
    const runs = [
      run('standalone:lp', 1, [smp('lp', Array(100).fill(5))]),
      run('standalone:lp', 2, [smp('lp', Array(50).fill(5))]),
      run('standalone:hp', 1, [smp('hp', [1])]),
      run('corun:none', 1, [smp('hp', [1]), smp('lp', Array(50).fill(5))]),
      run('corun:none', 2, [smp('hp', [1]), smp('lp', Array(50).fill(5))]),
    ];
    const none = assemblePhases(specs, runs, { form: 'probe', device: null }).find((p) => p.name === 'corun:none')!;
    const lp = none.tasks.find((t) => t.name === 'lp')!;
    expect(lp.throughputShare).toBeCloseTo(100 / 150, 10);
    expect(none.rounds!.map((x) => x.tasks.find((t) => t.name === 'lp')!.throughputShare)).toEqual([0.5, 1]);
    // hp has no round-2 standalone: that round's share is unknown, not taken from another round
    expect(none.rounds![1].tasks.find((t) => t.name === 'hp')!.throughputShare).toBeNull();
  });

  it('poolSamples adds up issued, errors, measured time, censored and drained completions', () => {
    const a = smp('x', [1, 2], { censoredNs: Float64Array.of(9e9), completedAfterEnd: 1, errors: 1, issued: 4 });
    const b = smp('x', [3], { submitLagNs: Float64Array.of(5) });
    const p = poolSamples('x', [a, b]);
    expect(p).toMatchObject({ issued: 5, errors: 1, measuredNs: 2e9, completedAfterEnd: 1 });
    expect(Array.from(p.latencyNs)).toEqual([1e6, 2e6, 3e6]);
    expect(Array.from(p.censoredNs!)).toEqual([9e9]);
    expect(Array.from(p.submitLagNs!)).toEqual([5]);
  });
});

describe('--min-samples', () => {
  it('scheduled arrivals: exactly the duration whose window holds K / rounds arrivals', () => {
    const fixed = scheduledDurationNs({ kind: 'fixed-rate', rate: 10 }, 0, 50)!;
    expect(fixed).toEqual({ durationNs: 4.901e9, reachable: true }); // arrivals at 0, 0.1 s, ..., 4.9 s
    const poisson = { kind: 'poisson' as const, rate: 10, seed: 1 };
    const d = scheduledDurationNs(poisson, 300e6, 184)!.durationNs;
    const times = arrivalTimes(poisson, 300e6 + d)!;
    expect(times.filter((t) => t >= 300e6).length).toBe(184);
    expect(scheduledDurationNs({ kind: 'closed-loop', concurrency: 1 }, 0, 10)).toBeNull();
    expect(scheduledDurationNs({ kind: 'replay', times: [0, 5e6, 10e6] }, 0, 10)).toEqual({ durationNs: 11e6, reachable: false });
  });

  it('closed loops: the rest at the measured rate, x1.1, between the duration and the cap', () => {
    expect(closedLoopDurationNs({ need: 100, runsLeft: 1, ratePerS: 50, minNs: 1e9, capNs: 10e9 })).toBe(2.2e9);
    expect(closedLoopDurationNs({ need: 100, runsLeft: 2, ratePerS: 50, minNs: 2e9, capNs: 10e9 })).toBe(2e9);
    expect(closedLoopDurationNs({ need: 1e6, runsLeft: 1, ratePerS: 1, minNs: 1e9, capNs: 10e9 })).toBe(10e9);
    expect(closedLoopDurationNs({ need: 5, runsLeft: 1, ratePerS: 0, minNs: 1e9, capNs: 10e9 })).toBeNull();
  });

  it('a run reaches K per task: schedules lengthened up front, a short closed loop gets one more run', async () => {
    const s = scenarioSchema.parse({
      name: 'k',
      duration: 100,
      warmup: 0,
      rounds: 1,
      tasks: [
        { name: 'hp', priority: 2, arrival: { kind: 'fixed-rate', rate: 200 }, probe: { kernel: 1 } },
        { name: 'lp', priority: 1, arrival: { kind: 'closed-loop', concurrency: 1 }, probe: { kernel: 5, blocks: 'fill' } },
      ],
    });
    const starts: Extract<RunEvent, { type: 'phase-start' }>[] = [];
    const r = await runScenario(s, 'k', { outDir: path.join(tmp, 'min-samples'), form: 'probe', backend: 'cpu', minSamples: 60, charts: false, onEvent: (e) => e.type === 'phase-start' && starts.push(e) });
    expect(r.results.minSamples).toBe(60);
    // hp at 200/s: 60 arrivals need 0.296 s (the 60th at 295 ms), up from 100 ms
    expect(starts.find((e) => e.phase === 'standalone:hp')!.spanNs).toBe(296e6);
    const lp = r.results.phases.find((p) => p.name === 'standalone:lp')!;
    // lp alone (one 5 ms x waves kernel at a time): ~20 in 100 ms, so an extension run follows
    expect(lp.rounds!.map((x) => `${x.round}${x.extension ? 'x' : ''}`)).toEqual(['1', '1x']);
    const short = r.results.quality!.warnings.filter((w) => w.code === 'too-few-samples');
    for (const p of r.results.phases) {
      for (const t of p.tasks) {
        // reached, or (a rate that fell between the runs on a busy host) said
        if (t.latencyMs.n < 60) expect(short.some((w) => w.phase === p.name && w.task === t.name), `${p.name} ${t.name} n=${t.latencyMs.n}`).toBe(true);
      }
    }
    expect(r.results.phases.find((p) => p.name === 'standalone:hp')!.tasks[0].latencyMs.n).toBeGreaterThanOrEqual(60);
  });
});
