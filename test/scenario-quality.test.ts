/**
 * The quality block of gpucolo run (issue 14): every warning code, from figures built here (no
 * loaded host or GPU needed) and, for host interference, injected into a real run through the
 * hostLoad option; verdicts that become inconclusive on a flagged figure; the exit code when no
 * co-run phase has a result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario, runScenario, type HostLoadFactory, type PhaseResult, type TaskSamples } from '../src/scenario/index.js';
import { kfdGpuSharing } from '../src/scenario/host-watch.js';
import { phaseSpecs } from '../src/scenario/rounds.js';
import { scenarioQuality } from '../src/scenario/quality.js';
import { assemblePhases } from '../src/scenario/pool.js';
import type { PhaseRun } from '../src/scenario/phase-run.js';
import { inconclusiveText, sloAfterQuality, successVerdicts, taskResult, verdictFlag } from '../src/scenario/summarize.js';
import { successRowSchema, taskSchema } from '../src/scenario/schema.js';
import { qualityOf, type HostLoad, type Quality } from '../src/stats/index.js';
import { noCorunResult, qualityText, summaryText } from '../src/cli/run.js';
import { ROOT } from './helpers/impls.js';

process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-scenario-quality-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const MS = 1e6;
const S = parseScenario(
  `
name: q
duration: 1s
warmup: 0ms
tasks:
  - name: hp
    priority: 2
    arrival: { kind: fixed-rate, rate: 100 }
    slo: { percentile: 99, below: 50ms }
    probe: { kernel: 1ms }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 1 }
    slo: { minThroughputShare: 30% }
    probe: { kernel: 2ms, blocks: fill }
success:
  - { task: hp, metric: p99, below: 30ms }
  - { task: lp, metric: throughputShare, above: 30% }
`,
  'q.yaml',
);
const SPECS = phaseSpecs(S, ['throttle']);

/** n requests of `ms` each (the last 1% at tail ms), measured over `measuredS` seconds */
function smp(task: string, n: number, ms: number, o: { tail?: number; measuredS?: number; lagMs?: number; censoredMs?: number[] } = {}): TaskSamples {
  const lat = Float64Array.from({ length: n }, (_, i) => (i >= n * 0.99 && o.tail ? o.tail : ms + (i % 7) * 0.01) * MS);
  return {
    task,
    issued: n + (o.censoredMs?.length ?? 0),
    latencyNs: lat,
    startDelayNs: new Float64Array(0),
    serviceNs: Float64Array.from(lat, () => MS),
    errors: 0,
    measuredNs: (o.measuredS ?? 1) * 1e9,
    ...(o.lagMs !== undefined ? { submitLagNs: Float64Array.from({ length: n }, () => o.lagMs! * MS) } : {}),
    ...(o.censoredMs ? { censoredNs: Float64Array.from(o.censoredMs, (x) => x * MS) } : {}),
  };
}

function run(phase: string, round: number, samples: TaskSamples[], extra: Partial<PhaseRun> = {}): PhaseRun {
  return {
    phase: SPECS.find((p) => p.name === phase)!,
    round,
    position: 0,
    extension: false,
    startedAt: '2026-01-01T00:00:00.000Z',
    status: 'ok',
    notes: [],
    samples,
    blocks: { hp: 1, lp: 2 },
    computeUnits: 2,
    workloads: {},
    measuredNs: 1e9,
    sampled: { reason: 'no GPU' },
    host: null,
    gpu: null,
    onCpu: true,
    ...extra,
  };
}

/** a quiet run of every phase: nothing to flag */
function quietRuns(round: number): PhaseRun[] {
  return [
    run('standalone:hp', round, [smp('hp', 100, 2)]),
    run('standalone:lp', round, [smp('lp', 400, 5)]),
    run('corun:none', round, [smp('hp', 100, 4), smp('lp', 300, 6)]),
    run('corun:throttle', round, [smp('hp', 100, 3), smp('lp', 250, 7)]),
  ];
}

function judge(runs: PhaseRun[], rounds = 2, minSamples: number | null = null): { phases: PhaseResult[]; q: Quality } {
  const phases = assemblePhases(SPECS, runs, { form: 'probe', device: 'cpu:0' });
  return { phases, q: scenarioQuality(phases, runs, { rounds, minSamples }) };
}
const codes = (q: Quality): string[] => q.warnings.map((w) => `${w.code}${w.phase ? ` ${w.phase}` : ''}${w.task ? ` ${w.task}` : ''}${w.round ? ` r${w.round}` : ''}`);

const load = (foreignCores: number, stealShare = 0): HostLoad => ({ wallS: 1, cpus: 2, foreignCores, ownCores: 1.5, stealShare, loadAverage1: 3.5 });

describe('quality warnings', () => {
  it('a quiet run is ok', () => {
    const { q } = judge([...quietRuns(1), ...quietRuns(2)]);
    expect(q).toEqual({ verdict: 'ok', warnings: [] });
  });

  it('impossible co-run values name the phase and task: share > 1.1 and a P99 far below standalone', () => {
    // the standalone hp run was slow (host busy): 150 ms, 40 requests in 1 s; the co-run fast
    const runs = [...quietRuns(1)];
    runs[0] = run('standalone:hp', 1, [smp('hp', 40, 150)]);
    const { q } = judge(runs, 1);
    expect(q.verdict).toBe('noisy');
    expect(codes(q)).toEqual([
      'share-above-standalone corun:none hp',
      'faster-than-standalone corun:none hp',
      'share-above-standalone corun:throttle hp',
      'faster-than-standalone corun:throttle hp',
    ]);
    expect(q.warnings[0].message).toMatch(/throughput 250% of standalone \(> 110%\)/);
  });

  it('with rounds, a round whose share is impossible against its own standalone is flagged too', () => {
    const runs = [...quietRuns(1), ...quietRuns(2)];
    runs[5] = run('standalone:lp', 2, [smp('lp', 150, 5)]); // round 2's lp alone was slowed
    const { q } = judge(runs);
    expect(codes(q)).toContain('share-above-standalone corun:none lp r2');
    expect(codes(q)).toContain('share-above-standalone corun:throttle lp r2');
    expect(q.warnings.find((w) => w.round === 2)!.message).toMatch(/^round 2: lp in corun:none: throughput 200% of standalone/);
    // a round's co-run P99 far below the same round's standalone P99
    runs[4] = run('standalone:hp', 2, [smp('hp', 100, 30)]);
    expect(codes(judge(runs).q)).toContain('faster-than-standalone corun:none hp r2');
  });

  it('standalone-drift on a fattened tail or mean when P50 agrees (~100 requests give P99 no CI)', () => {
    const runs = [...quietRuns(1), ...quietRuns(2)];
    // round 2: the same median, but 10% of the requests took 10x as long
    const slow = smp('lp', 400, 5);
    for (let i = 0; i < 40; i++) slow.latencyNs[i * 10] = 50 * MS;
    runs[5] = run('standalone:lp', 2, [slow]);
    const w = judge(runs).q.warnings.find((x) => x.code === 'standalone-drift');
    expect(w).toMatchObject({ phase: 'standalone:lp', task: 'lp', message: expect.stringMatching(/rounds 1 and 2: (P95|mean) /) });
  });

  it('standalone-drift: rounds whose CIs do not overlap (by more than 10%), naming the rounds', () => {
    const runs = [...quietRuns(1), ...quietRuns(2)];
    runs[4] = run('standalone:hp', 2, [smp('hp', 100, 857)]);
    const { q } = judge(runs);
    const w = q.warnings.find((x) => x.code === 'standalone-drift')!;
    expect(w).toMatchObject({ phase: 'standalone:hp', task: 'hp' });
    expect(w.message).toMatch(/rounds 1 and 2: P50 2\.\d+ ms \[2\.\d+–2\.\d+\] vs 857 ms \[857–857\]/);
    // 5% apart: beyond the (tiny) CIs, within the margin: not drift
    const near = [...quietRuns(1), ...quietRuns(2)];
    near[4] = run('standalone:hp', 2, [smp('hp', 100, 2.1)]);
    expect(codes(judge(near).q).filter((c) => c.startsWith('standalone-drift'))).toEqual([]);
  });

  it('host-interference: other processes\' CPU or steal time during a run on the host CPU; not on a GPU device', () => {
    const runs = [...quietRuns(1)];
    runs[2] = { ...runs[2], host: load(1.2) };
    runs[3] = { ...runs[3], host: load(0, 0.2) };
    runs[0] = { ...runs[0], host: load(0.1) }; // under the limit
    const { q } = judge(runs, 1);
    expect(codes(q)).toEqual(['host-interference corun:none r1', 'host-interference corun:throttle r1']);
    expect(q.warnings[0].message).toBe('round 1: corun:none: other processes used 1.20 of 2 cores during the measurement (load average 3.5)');
    expect(q.warnings[1].message).toMatch(/stole 20\.0% of CPU time/);
    const gpu = runs.map((r) => ({ ...r, onCpu: false }));
    expect(judge(gpu, 1).q.warnings).toEqual([]);
  });

  it('gpu-shared: other processes with GPU queues; an unknown note (not a warning) where that cannot be told', () => {
    const runs = [...quietRuns(1)];
    runs[2] = { ...runs[2], onCpu: false, gpu: { foreign: [{ pid: 4242, queues: 3 }], source: 'KFD' } };
    runs[3] = { ...runs[3], onCpu: false, gpu: { unknown: 'other processes on an NVIDIA GPU: unknown (...)' } };
    const { q } = judge(runs, 1);
    expect(codes(q)).toEqual(['gpu-shared corun:none r1']);
    expect(q.warnings[0].message).toMatch(/other processes had queues on the GPU \(KFD\): pid 4242 \(3 queues\)/);
    expect(q.unknown).toEqual([{ code: 'gpu-processes-unknown', message: 'other processes on an NVIDIA GPU: unknown (...)' }]);
  });

  it('kfdGpuSharing reads the KFD process list: others with queues, unknown without our pid or without KFD', () => {
    const sys = path.join(ROOT, 'examples/kfd-mi300x/sys');
    const mine = kfdGpuSharing([41872], sys);
    expect(mine).toMatchObject({ source: 'KFD', foreign: [{ pid: 42117, queues: expect.any(Number) }] });
    expect(kfdGpuSharing([1], sys)).toMatchObject({ unknown: expect.stringMatching(/none of gpucolo's own pids 1 is among them/) });
    expect(kfdGpuSharing([1], tmp)).toMatchObject({ unknown: expect.stringMatching(/no KFD process list/) });
  });

  it('arrivals-behind: the load generator sent scheduled requests late (beyond 2 ms and 10% of the P50)', () => {
    const runs = [...quietRuns(1)];
    runs[0] = run('standalone:hp', 1, [smp('hp', 100, 2, { lagMs: 0.05 })]);
    runs[2] = run('corun:none', 1, [smp('hp', 100, 4, { lagMs: 7 }), smp('lp', 300, 6)]);
    runs[3] = run('corun:throttle', 1, [smp('hp', 100, 40, { lagMs: 3 }), smp('lp', 250, 7)]); // 3 ms < 10% of 40 ms
    const { q } = judge(runs, 1);
    expect(codes(q)).toEqual(['arrivals-behind corun:none hp r1']);
    expect(q.warnings[0].message).toMatch(/lateness P99 7 ms, max 7 ms over 100 requests \(limit 2 ms/);
  });

  it('round-failed: a run of a phase failed while others of it did not', () => {
    const runs = [...quietRuns(1), ...quietRuns(2)];
    runs[6] = { ...run('corun:none', 2, [smp('hp', 0, 0), smp('lp', 0, 0)]), status: 'failed', reason: 'worker died' };
    const { q } = judge(runs);
    expect(codes(q)).toEqual(['round-failed corun:none r2']);
  });

  it('too-few-samples: --min-samples asked for more than a task got', () => {
    const { q } = judge([...quietRuns(1)], 1, 350);
    expect(codes(q)).toEqual(['too-few-samples standalone:hp hp', 'too-few-samples corun:none hp', 'too-few-samples corun:none lp', 'too-few-samples corun:throttle hp', 'too-few-samples corun:throttle lp']);
  });
});

describe('inconclusive verdicts', () => {
  const rows = S.success;
  const runs = [...quietRuns(1)];

  it('a success row never passes on a flagged figure; it may pass on another phase that is not flagged', () => {
    const { phases } = judge(runs, 1);
    const q = qualityOf([{ code: 'host-interference', phase: 'corun:none', round: 1, message: 'round 1: corun:none: other processes used 1.20 of 2 cores' }]);
    const v = successVerdicts(rows, phases, q);
    expect(v[0].phases[0]).toMatchObject({ phase: 'corun:none', pass: null, detail: expect.stringMatching(/^inconclusive: host-interference \(round 1\): round 1: corun:none: other processes/) });
    expect(v[0].phases[1]).toMatchObject({ phase: 'corun:throttle', pass: true });
    expect(v[0]).toMatchObject({ pass: true, best: 'corun:throttle' });
    expect(v[0].inconclusive).toBeUndefined();
  });

  it('every phase flagged: null with the reason; a share row also depends on the standalone phase', () => {
    const { phases } = judge(runs, 1);
    const q = qualityOf([{ code: 'standalone-drift', phase: 'standalone:lp', task: 'lp', message: 'lp alone differs between rounds' }]);
    const v = successVerdicts(rows, phases, q);
    expect(v[0].pass).toBe(true); // hp P99 does not depend on lp's standalone
    expect(v[1]).toMatchObject({ pass: null, best: null, inconclusive: 'corun:none: standalone-drift: lp alone differs between rounds; value: throughput 75% of standalone' });
    expect(verdictFlag(q, 'corun:none', 'lp', false)).toBeUndefined();
    expect(verdictFlag(q, 'corun:none', 'lp', true)).toBe(q.warnings[0]);
  });

  it('SLO verdicts on a flagged figure become inconclusive, saying what they would have been', () => {
    const { phases } = judge(runs, 1);
    const none = phases.find((p) => p.name === 'corun:none')!;
    const q = qualityOf([{ code: 'share-above-standalone', phase: 'corun:none', task: 'lp', message: 'lp in corun:none: throughput 183% of standalone' }]);
    const lp = sloAfterQuality(none.tasks.find((t) => t.name === 'lp')!, 'corun:none', q);
    expect(lp[0]).toMatchObject({ pass: null, detail: `${inconclusiveText(q.warnings[0])} (was PASS: throughput 75% of standalone)` });
    const hp = sloAfterQuality(none.tasks.find((t) => t.name === 'hp')!, 'corun:none', q);
    expect(hp[0].pass).toBe(true);
  });

  it('a censored P99 is a lower bound: it fails a "below" row it is above, and cannot pass one it is below', () => {
    const task = taskSchema.parse({ name: 'hp', priority: 1, arrival: { kind: 'fixed-rate', rate: 10 }, slo: { percentile: 99, below: '50ms' }, probe: { kernel: 1 } });
    const over = taskResult(smp('hp', 100, 5, { censoredMs: [80, 90] }), task, { workload: 'x' });
    expect(over.latencyMs.censoredAtOrAbove).toContain('p99');
    expect(over.slo[0]).toMatchObject({ pass: false, detail: expect.stringMatching(/^P99 >= 80 ms, a lower bound \(2 of n=102 requests unfinished/) });
    const under = taskResult(smp('hp', 100, 5, { censoredMs: [20, 20] }), task, { workload: 'x' });
    expect(under.slo[0]).toMatchObject({ pass: null, detail: expect.stringMatching(/^inconclusive: P99 >= 20 ms, a lower bound/) });
    const phase = (t: typeof over): PhaseResult => ({ name: 'corun:none', kind: 'corun', mechanism: 'none', status: 'ok', measuredS: 1, tasks: [t], utilisation: { value: null, source: 'unavailable' }, fairness: null, notes: [] });
    const row = successRowSchema.parse({ task: 'hp', metric: 'p99', below: '50ms' });
    expect(successVerdicts([row], [phase(over)])[0]).toMatchObject({ pass: false });
    expect(successVerdicts([row], [phase(under)])[0]).toMatchObject({ pass: null, inconclusive: expect.stringMatching(/^corun:none: P99 >= 20 ms, a lower bound/) });
  });

  it('on screen: the quality block first, inconclusive rows, and the exit-1 rule', () => {
    const { phases } = judge(runs, 1);
    const q = qualityOf([{ code: 'host-interference', phase: 'corun:none', message: 'corun:none: other processes used 1.20 of 2 cores' }]);
    const results = { schema: 'gpucolo.results/1', gpucoloVersion: '0', createdAt: '', partial: false, scenario: { name: 'q', source: 'q', form: 'probe', config: {} }, host: { hostname: 'h', os: 'l', cpus: 2, node: 'v' }, backend: { name: 'cpu', device: null, gpu: null, why: '' }, phases, success: successVerdicts(S.success, phases.filter((p) => p.name !== 'corun:throttle'), q), rounds: 1, quality: q } as const;
    const text = summaryText(results as never, []);
    expect(text.split('\n')[0]).toBe('quality: NOISY (1 warning: verdicts on flagged figures are inconclusive)');
    expect(text.split('\n')[1]).toBe('  host-interference: corun:none: other processes used 1.20 of 2 cores');
    expect(text).toMatch(/hp P99 < 30 ms +inconclusive \(see quality above\)/);
    expect(qualityText({ ...results, quality: { verdict: 'ok', warnings: [], unknown: [{ code: 'gpu-processes-unknown', message: 'x' }] } } as never)).toEqual(['quality: ok', '  not checked: x']);
    expect(noCorunResult(phases)).toBeNull();
    const failed = phases.map((p) => (p.kind === 'corun' ? { ...p, status: 'failed' as const, reason: 'watchdog', tasks: [] } : p));
    expect(noCorunResult(failed)).toBe('no co-run phase produced a result (corun:none: failed — watchdog; corun:throttle: failed — watchdog)');
  });
});

describe('host interference injected into a real run (hostLoad option)', () => {
  it('flags the phase and round the figures name, and the verdicts on it are inconclusive', async () => {
    const seen: string[] = [];
    const hostLoad: HostLoadFactory = (ctx) => ({
      stop: () => {
        seen.push(`${ctx.round}:${ctx.phase}`);
        return load(ctx.phase === 'corun:none' && ctx.round === 2 ? 1.5 : 0);
      },
    });
    const s = { ...S, duration: 600e6 }; // 2 x 60 hp requests: enough for a P99 to be judged
    const r = await runScenario(s, 'q.yaml', { outDir: path.join(tmp, 'inject'), form: 'probe', backend: 'cpu', rounds: 2, mechanisms: [], charts: false, hostLoad });
    expect(seen).toEqual(['1:standalone:hp', '1:standalone:lp', '1:corun:none', '2:standalone:lp', '2:corun:none', '2:standalone:hp']);
    const q = r.results.quality!;
    expect(q.verdict).toBe('noisy');
    expect(q.warnings.filter((w) => w.code === 'host-interference')).toEqual([
      { code: 'host-interference', phase: 'corun:none', round: 2, message: 'round 2: corun:none: other processes used 1.50 of 2 cores during the measurement (load average 3.5)' },
    ]);
    const hp = r.results.success[0];
    // inconclusive: on the host-interference warning, or on one the host's real noise added first
    expect(hp.phases).toEqual([expect.objectContaining({ phase: 'corun:none', pass: null, detail: expect.stringMatching(/^inconclusive: /) })]);
    expect(hp.pass).toBeNull();
    expect(r.results.phases.find((p) => p.name === 'corun:none')!.rounds![1].host).toMatchObject({ foreignCores: 1.5 });
    const md = fs.readFileSync(path.join(tmp, 'inject', 'report.md'), 'utf8');
    expect(md).toMatch(/## Quality: \*\*NOISY\*\*/);
    expect(md).toContain('- `host-interference` (corun:none): round 2: corun:none: other processes used 1.50 of 2 cores');
  });
});
