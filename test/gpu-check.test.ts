/**
 * npm run gpu-check (scripts/gpu-check.sh -> dist/gpu-check/cli.js): the expectations against
 * made-up results of a GPU run (they must FAIL where an expectation fails), a real short run on the
 * cpu backend (exit code, summary.json, raw/observations.json), and --replay of both, crafted to
 * fail. Nothing here asserts how fast anything ran.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MECHANISMS,
  allowedShare,
  checkDoctor,
  checkLatency,
  checkPriority,
  checkRun,
  chooseBackend,
  evaluate,
  fillPlan,
  mechanismCheckNames,
  mechanismSupported,
  type Mechanism,
} from '../src/gpu-check/expectations.js';
import { MECHANISM_REGISTRY, mechanismInfo } from '../src/mechanisms.js';
import { loadScenario } from '../src/scenario/load.js';
import { helpOptions, inProcessFormArgs, optionChoices } from '../src/gpu-check/features.js';
import { buildSummary, counts, exitCodeFor } from '../src/gpu-check/summary.js';
import type { CheckResult, GpuCheckSummary, Observations, Step } from '../src/gpu-check/types.js';
import type { CoRunResult } from '../src/dispatch/index.js';
import type { DoctorReport } from '../src/doctor.js';
import { ROOT } from './helpers/impls.js';
import { H100 } from './helpers/devices.js';

const SCRIPT = path.join(ROOT, 'scripts', 'gpu-check.sh');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-gpu-check-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function script(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('bash', [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 170_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ---- a made-up cuda run in which every expectation holds -------------------------------------

type Json = Record<string, unknown>;

/** A QuantileSummary with P50 and P99 (P99 supported from 100 samples). */
function qs(p50: number, p99: number, n = 1800, min = p50 * 0.9): Json {
  return {
    n,
    min,
    max: p99 * 1.1,
    mean: p50,
    quantiles: [
      { p: 50, value: p50, ci: null, supported: n >= 3 },
      { p: 90, value: (p50 + p99) / 2, ci: null, supported: n >= 20 },
      { p: 99, value: p99, ci: null, supported: n >= 100 },
      { p: 99.9, value: p99 * 1.05, ci: null, supported: n >= 1000 },
    ],
    caveats: [],
  };
}

function step<T>(name: string, json: T, extra: Partial<Step<T>> = {}): Step<T> {
  return { name, argv: ['node', 'dist/cli/cli.js', name], exitCode: 0, elapsedS: 1, stderrTail: [], json, file: `raw/${name}.json`, ...extra };
}

const ALONE_P99 = 120e3;
const LP_KERNEL = 2e6;

function corun(mechanism: string, p99: number, extra: Json = {}): Json {
  const spatial = mechanism === 'sm-partition' || mechanism === 'cu-mask';
  return {
    label: `corun:${mechanism}${mechanism === 'throttle' ? ' K=1' : ''}${spatial ? ' reserve=10%' : ''}`,
    mechanism,
    throttleK: mechanism === 'throttle' ? 1 : null,
    reserve: spatial ? 0.1 : null,
    lpKernelNs: LP_KERNEL,
    hpLatency: qs(60e3, p99),
    hpTimeToStart: qs(5e3, 50e3),
    lpThroughput: 1000,
    lpShare: spatial ? 0.86 : 0.5,
    lpAllowedShare: spatial ? 116 / 132 : 1,
    lpAllowedShareRequested: spatial ? 118 / 132 : 1,
    partition: spatial ? { hp: { requested: 14, made: 16 }, lp: { requested: 118, made: 116 } } : null,
    lpFill: { blocks: spatial ? 928 : 1056, threadsPerBlock: 256, concurrent: 2, computeUnits: spatial ? 116 : 132, blocksPerCu: 8, fillBlocks: spatial ? 928 : 1056, residentBlocks: spatial ? 928 : 1056, occupancy: 1, waves: 1, threadOccupancy: 1 },
    hpP99VsStandalone: p99 / ALONE_P99,
    addedHpP99Ns: p99 - ALONE_P99,
    addedP99InLpKernels: mechanism === 'throttle' ? (p99 - ALONE_P99) / LP_KERNEL : null,
    bound: mechanism === 'throttle' ? { limit: 1, value: (p99 - ALONE_P99) / LP_KERNEL, verdict: (p99 - ALONE_P99) / LP_KERNEL <= 1 ? 'met' : 'exceeded' } : null,
    rounds: [],
    spread: { hpP99Ns: null, lpThroughput: null, lpShare: null, hpP99VsStandalone: null },
    errors: [],
    kfd: null,
    ...extra,
  };
}

function priorityResult(): Json {
  return {
    backend: 'cuda',
    engine: 'native',
    options: { backend: 'cuda', lpKernelNs: LP_KERNEL, lpStreams: 2, lpBlocks: 'fill', hpKernelNs: 100e3, hpRateHz: 200, mechanisms: ['none', 'stream-priority', 'cu-mask', 'sm-partition', 'throttle'], reserve: 0.1, throttleK: 1, durationNs: 5e9, rounds: 2 },
    computeUnits: 132,
    rounds: 2,
    order: [],
    standaloneHp: { label: 'standalone:hp', hpLatency: qs(100e3, ALONE_P99), hpTimeToStart: qs(5e3, 10e3), rounds: [], spread: {} },
    standalone: [{ label: 'standalone:lp', hpLatency: qs(100e3, ALONE_P99), hpTimeToStart: qs(5e3, 10e3), lpThroughput: 2000, lpKernelNs: LP_KERNEL, lpFill: { blocks: 1056, threadsPerBlock: 256, concurrent: 2, computeUnits: 132, blocksPerCu: 8, fillBlocks: 1056, residentBlocks: 1056, occupancy: 1, waves: 1, threadOccupancy: 1 }, rounds: [], spread: {} }],
    runs: [corun('none', 5e6), corun('stream-priority', 2.0e6), corun('sm-partition', 125e3), corun('throttle', 1.9e6)],
    skipped: [{ label: 'corun:cu-mask reserve=10%', mechanism: 'cu-mask', throttleK: null, reserve: 0.1, lpKernelNs: LP_KERNEL, reason: 'cu-mask: CUDA has no CU masks' }],
    notes: [],
    clock: { runs: 14, maxDriftNs: 400, uncertaintyNs: 300 },
    quality: { verdict: 'ok', warnings: [] },
    interrupted: false,
  };
}

function doctorReport(): Json {
  // the two block sizes the check's fill plan looks at
  const h100 = { ...H100, occupancy: [{ threadsPerBlock: 64, blocksPerCu: 32 }, { threadsPerBlock: 256, blocksPerCu: 8 }] };

  return {
    schema: 'gpucolo.doctor/1',
    native: { loaded: true, file: 'build/Release/gpucolo.node', abi: 8, disabled: false, errors: [], candidates: [] },
    kfd: { device: { ok: false }, sysfs: { ok: false, gpus: [] }, debugfs: { ok: false } },
    plugins: { ok: true, list: [{ name: 'cuda', path: '/x/prebuilds/linux-x64/gpucolo_cuda.so', found: true, loaded: true, deviceCount: 1 }] },
    backends: [
      { name: 'cpu', available: true, engine: 'native', devices: [{ ...h100, name: 'cpu', computeUnits: 16, priorityGreatest: 15, supportsCuMask: true, supportsSmPartition: false, timerResolutionNs: 1 }] },
      { name: 'cuda', available: true, engine: 'native', devices: [h100] },
      { name: 'hip', available: false, reason: 'plugin not built', devices: [] },
    ],
    measured: [{ backend: 'cuda', device: 0, name: h100.name, ok: true, launches: 30000, roundTripP50Ns: 8000, deviceP50Ns: 1500, timerResolutionNs: 32, clock: { offsetNs: 1, uncertaintyNs: 300, offsetEndNs: 5, driftNs: 4 } }],
    summary: [],
  };
}

function runResults(device = 'cuda:0', completed = 50): Json {
  const task = (name: string, priority: number, p99: number) => ({ name, priority, requests: { issued: completed, completed, errors: 0 }, latencyMs: { n: completed, p99 }, throughput: 10 });
  return {
    schema: 'gpucolo.results/1',
    partial: false,
    scenario: { name: 'inference-service', form: 'torch' },
    host: { torch: '2.5.0' },
    backend: { name: 'torch', device, gpu: device.startsWith('cuda') ? 'NVIDIA H100 80GB HBM3' : null, why: 'torch form as asked' },
    phases: [
      { name: 'standalone:resnet18', kind: 'standalone', mechanism: 'none', status: 'ok', tasks: [task('resnet18', 2, 4)], notes: [] },
      { name: 'standalone:resnet50', kind: 'standalone', mechanism: 'none', status: 'ok', tasks: [task('resnet50', 1, 30)], notes: [] },
      { name: 'corun:none', kind: 'corun', mechanism: 'none', status: 'ok', tasks: [task('resnet18', 2, 20), task('resnet50', 1, 35)], notes: [] },
      { name: 'corun:stream-priority', kind: 'corun', mechanism: 'stream-priority', status: 'ok', tasks: [task('resnet18', 2, 8), task('resnet50', 1, 36)], notes: ['HP stream priority -5, LP 0 (one process, one context)'] },
      { name: 'corun:throttle', kind: 'corun', mechanism: 'throttle', status: 'skipped', reason: 'throttle runs in-process on probe workloads only', tasks: [], notes: [] },
      { name: 'corun:gate', kind: 'corun', mechanism: 'gate', status: 'ok', tasks: [task('resnet18', 2, 9), task('resnet50', 1, 50)], notes: [] },
    ],
    success: [],
    quality: { verdict: 'ok', warnings: [] },
  };
}

/** A whole cuda run on one H100 in which every expectation holds. */
function goodCuda(): Observations {
  const rounds = [1, 2, 3].map((r) => ({
    round: r,
    order: (r % 2 ? 'floor-first' : 'engine-first') as 'floor-first' | 'engine-first',
    engine: step(`latency-empty-r${r}`, { backend: 'cuda', engine: 'native', spinNs: 0, launches: 40000, roundTrip: qs(8000, 12000), device: qs(1500, 2000) } as never),
    floor: step(`floor-r${r}`, { backend: '/x/gpucolo_cuda.so', mode: 'handoff', n: 40000, p50_ns: 7600, p99_ns: 11000 }),
  }));
  return {
    schema: 'gpucolo.gpu-check-observations/1',
    gpucoloVersion: '0.1.0',
    createdAt: '2025-01-01T00:00:00.000Z',
    host: { hostname: 'h100', platform: 'linux', arch: 'x64', node: 'v20.19.0' },
    requestedBackend: 'auto',
    backend: 'cuda',
    backendWhy: 'auto: cuda is available (NVIDIA H100 80GB HBM3)',
    judgeTimings: true,
    budgetS: 480,
    elapsedS: 310,
    doctor: step('doctor', doctorReport() as unknown as DoctorReport),
    latency: { rounds, floorBinary: 'build-cc/gpucolo_floor', floorTarget: '/x/gpucolo_cuda.so' },
    spin: step('latency-spin-1ms', { backend: 'cuda', engine: 'native', spinNs: 1e6, launches: 1800, roundTrip: qs(1.01e6, 1.02e6), device: qs(1.004e6, 1.012e6, 1800, 1.001e6), clock: { offsetNs: 0, uncertaintyNs: 300, offsetEndNs: 100, driftNs: 100 } } as never),
    priority: { plan: { mechanisms: ['none', 'stream-priority', 'cu-mask', 'sm-partition', 'throttle'], lpKernelNs: LP_KERNEL, hpKernelNs: 100e3, reserve: 0.1, throttleK: 1, lpBlocksArg: 'fill', fill: null }, step: step('probe-priority', priorityResult() as never) },
    kfd: { step: null, priority: null, skipped: "KFD queues are AMD's (backend cuda)" },
    runs: [
      { form: 'torch', formArgs: ['--form', 'torch'], step: step('run-torch', runResults() as never) },
      { form: 'torch-in-process', formArgs: ['--form', 'torch-in-process'], step: step('run-torch-in-process', runResults() as never) },
    ],
    runsSkipped: [],
  };
}

const byName = (cs: CheckResult[], name: string): CheckResult => {
  const c = cs.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${cs.map((x) => x.name).join(', ')}`);
  return c;
};
const failed = (cs: CheckResult[]): string[] => cs.filter((c) => c.pass === false).map((c) => c.name);
const priorityOf = (o: Observations): Json & { runs: Json[] } => o.priority.step!.json as unknown as Json & { runs: Json[] };
const runOf = (o: Observations, m: string): Json => priorityOf(o).runs.find((x) => x.mechanism === m)!;

describe('gpu-check expectations (made-up cuda results)', () => {
  it('a run in which everything holds passes every applicable check, exit 0', () => {
    const cs = evaluate(goodCuda());
    expect(failed(cs)).toEqual([]);
    const c = counts(cs);
    expect(c.failed).toBe(0);
    expect(c.skipped).toBe(0);
    expect(c.passed).toBeGreaterThan(15);
    expect(exitCodeFor(c, true)).toBe(0);
    for (const n of ['doctor.backend', 'doctor.priority-range', 'doctor.green-contexts', 'doctor.timer-resolution', 'latency.empty-round-trip', 'latency.floor-ratio', 'latency.spin-1ms', 'priority.fill', 'priority.none.contention', 'priority.stream-priority.wait', 'priority.sm-partition.hp-p99', 'priority.sm-partition.lp-share', 'priority.throttle.bound', 'run.torch.ran', 'run.torch.device', 'run.torch.phases', 'run.torch-in-process.phases', 'budget']) {
      expect(byName(cs, n).pass, n).toBe(true);
    }
    // what CUDA lacks is not applicable, not skipped: cu-mask, KFD
    expect(byName(cs, 'priority.cu-mask.hp-p99')).toMatchObject({ pass: null, kind: 'not-applicable' });
    expect(byName(cs, 'priority.cu-mask.hp-p99').reason).toContain('CUDA has no CU masks');
    expect(byName(cs, 'kfd.verify').kind).toBe('not-applicable');
    expect(byName(cs, 'doctor.timer-resolution').measured).toBe(32);
  });

  it('sm-partition: HP P99 at 1.3x standalone fails', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'sm-partition'), { hpLatency: qs(60e3, 1.3 * ALONE_P99), hpP99VsStandalone: 1.3, addedHpP99Ns: 0.3 * ALONE_P99 });
    const cs = checkPriority(o);
    expect(failed(cs)).toEqual(['priority.sm-partition.hp-p99']);
    expect(byName(cs, 'priority.sm-partition.hp-p99').reason).toContain('1.30x standalone');
    expect(exitCodeFor(counts(evaluate(o)), false)).toBe(1);
  });

  it('sm-partition: LP share is judged against the partition as made, not as asked', () => {
    const o = goodCuda();
    // 116 of 132 SMs as made (asked 118): allowed 87.9%, needs >= 83.5%; as asked it would need 85%
    Object.assign(runOf(o, 'sm-partition'), { lpShare: 0.84 });
    expect(byName(checkPriority(o), 'priority.sm-partition.lp-share').pass).toBe(true);
    expect(allowedShare(runOf(o, 'sm-partition') as unknown as CoRunResult, 132)).toMatchObject({ share: 116 / 132, asMade: true });
    Object.assign(runOf(o, 'sm-partition'), { lpShare: 0.8 });
    const c = byName(checkPriority(o), 'priority.sm-partition.lp-share');
    expect(c.pass).toBe(false);
    expect(c.reason).toContain('LP 116 of 132 SMs (asked 118)');
  });

  it('an older probe JSON without the partition falls back to the share as asked and says so', () => {
    const o = goodCuda();
    const x = runOf(o, 'sm-partition');
    delete x.partition;
    delete x.lpAllowedShareRequested;
    x.lpAllowedShare = 0.9;
    const a = allowedShare(x as unknown as CoRunResult, 132);
    expect(a).toMatchObject({ share: 0.9, asMade: false });
    expect(byName(checkPriority(o), 'priority.sm-partition.lp-share').reason).toContain('as asked');
  });

  it('none without contention, stream-priority waiting 2 LP blocks, throttle adding 1.5 LP kernels: each fails', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'none'), { hpLatency: qs(60e3, 150e3), hpP99VsStandalone: 1.25, addedHpP99Ns: 30e3 });
    Object.assign(runOf(o, 'stream-priority'), { hpLatency: qs(60e3, ALONE_P99 + 4e6), hpP99VsStandalone: 34, addedHpP99Ns: 4e6 });
    Object.assign(runOf(o, 'throttle'), { hpLatency: qs(60e3, ALONE_P99 + 3e6), addedHpP99Ns: 3e6, addedP99InLpKernels: 1.5, bound: { limit: 1, value: 1.5, verdict: 'exceeded' } });
    expect(failed(checkPriority(o)).sort()).toEqual(['priority.none.contention', 'priority.stream-priority.wait', 'priority.throttle.bound']);
  });

  it('a mechanism the device supports but the probe skipped fails; stream errors fail', () => {
    const o = goodCuda();
    const r = priorityOf(o);
    r.runs = r.runs.filter((x) => x.mechanism !== 'sm-partition');
    (r.skipped as Json[]).push({ label: 'corun:sm-partition reserve=10%', mechanism: 'sm-partition', reason: 'green context creation failed' });
    runOf(o, 'none').errors = ['lp0: watchdog timeout'];
    const cs = checkPriority(o);
    expect(byName(cs, 'priority.sm-partition.hp-p99')).toMatchObject({ pass: false });
    expect(byName(cs, 'priority.sm-partition.hp-p99').reason).toContain('green context creation failed');
    expect(byName(cs, 'priority.none.contention').reason).toContain('watchdog');
    expect(byName(cs, 'priority.none.contention').pass).toBe(false);
  });

  it('an LP fill below 100% occupancy fails priority.fill', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'none'), { lpFill: { blocks: 2, threadsPerBlock: 256, concurrent: 2, computeUnits: 132, blocksPerCu: 8, fillBlocks: 1056, residentBlocks: 4, occupancy: 4 / 1056, waves: 1 } });
    const c = byName(checkPriority(o), 'priority.fill');
    expect(c.pass).toBe(false);
    expect(c.reason).toContain('corun:none 0.4%');
  });

  it('too few HP samples for a P99: not judged, with the reason', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'sm-partition'), { hpLatency: qs(60e3, 2 * ALONE_P99, 50) });
    const c = byName(checkPriority(o), 'priority.sm-partition.hp-p99');
    expect(c.pass).toBeNull();
    expect(c.reason).toContain('too few HP samples');
  });

  it('the 1 ms spin: a P50 of 1.05 ms fails, a reading below the spin fails', () => {
    const o = goodCuda();
    (o.spin!.json as unknown as Json).device = qs(1.05e6, 1.06e6, 1800, 1.001e6);
    expect(byName(checkLatency(o), 'latency.spin-1ms').pass).toBe(false);
    (o.spin!.json as unknown as Json).device = qs(1.005e6, 1.01e6, 1800, 0.98e6);
    const c = byName(checkLatency(o), 'latency.spin-1ms');
    expect(c.pass).toBe(false);
    expect(c.reason).toContain('less than the spin');
  });

  it('the JS-visible round trip at 1.3x the C++ floor fails; a floor that cannot run fails', () => {
    const o = goodCuda();
    for (const r of o.latency.rounds) r.floor!.json!.p50_ns = 8000 / 1.3;
    const c = byName(checkLatency(o), 'latency.floor-ratio');
    expect(c.pass).toBe(false);
    expect((c.measured as { ratioP50: number }).ratioP50).toBeCloseTo(1.3, 5);
    const o2 = goodCuda();
    o2.latency.rounds[1].floor = step('floor-r2', { backend: 'x', error: 'dlopen: no such file' }, { exitCode: 1 });
    expect(byName(checkLatency(o2), 'latency.floor-ratio')).toMatchObject({ pass: false });
    // no floor binary at all: skipped with why
    const o3 = goodCuda();
    o3.latency.floorSkipped = 'no gpucolo_floor';
    expect(byName(checkLatency(o3), 'latency.floor-ratio')).toMatchObject({ pass: null, reason: 'no gpucolo_floor' });
  });

  it('doctor: cuda unavailable fails doctor.backend with the plugin reason; no green contexts fails', () => {
    const o = goodCuda();
    const d = o.doctor.json as unknown as { backends: Json[]; plugins: { list: Json[] } };
    Object.assign(d.backends[1], { available: false, reason: 'needs driver >= 580, found 550', devices: [] });
    Object.assign(d.plugins.list[0], { initError: 'cudaErrorInsufficientDriver' });
    const c = byName(checkDoctor(o), 'doctor.backend');
    expect(c.pass).toBe(false);
    expect(c.reason).toContain('needs driver >= 580');
    expect(c.reason).toContain('cudaErrorInsufficientDriver');
    const o2 = goodCuda();
    ((o2.doctor.json as unknown as { backends: { devices: Json[] }[] }).backends[1].devices[0]).supportsSmPartition = false;
    expect(byName(checkDoctor(o2), 'doctor.green-contexts').pass).toBe(false);
  });

  it('torch: a phase "ok" with 0 completions fails, workers on cpu fail, a failed run fails', () => {
    const o = goodCuda();
    o.runs[0].step.json = runResults('cuda:0', 0) as never;
    o.runs[1].step.json = runResults('cpu') as never;
    const cs = checkRun(o);
    expect(byName(cs, 'run.torch.phases').pass).toBe(false);
    expect(byName(cs, 'run.torch.phases').reason).toContain('completed 0 requests');
    expect(byName(cs, 'run.torch-in-process.device').pass).toBe(false);
    const o2 = goodCuda();
    o2.runs[0].step = step('run-torch', null as never, { exitCode: 1, stderrTail: ['gpucolo: every phase failed'] });
    expect(byName(checkRun(o2), 'run.torch.ran')).toMatchObject({ pass: false });
    // no in-process form in the CLI: skipped with why
    const o3 = goodCuda();
    o3.runs.pop();
    o3.runsSkipped.push({ form: 'torch-in-process', reason: 'this CLI has no in-process torch form' });
    expect(byName(checkRun(o3), 'run.torch-in-process.ran')).toMatchObject({ pass: null, reason: 'this CLI has no in-process torch form' });
    expect(exitCodeFor(counts(evaluate(o3)), false)).toBe(0);
    expect(exitCodeFor(counts(evaluate(o3)), true)).toBe(3);
  });

  it('over the budget fails on a GPU', () => {
    const o = goodCuda();
    o.elapsedS = 500;
    expect(evaluate(o).find((c) => c.name === 'budget')!.pass).toBe(false);
  });

  it('the same numbers on the cpu backend are recorded, not judged', () => {
    const o = goodCuda();
    o.backend = 'cpu';
    o.judgeTimings = false;
    Object.assign(runOf(o, 'sm-partition'), { hpP99VsStandalone: 1.3 });
    for (const r of o.latency.rounds) r.floor!.json!.p50_ns = 1000;
    const cs = [...checkLatency(o), ...checkPriority(o)];
    expect(byName(cs, 'latency.floor-ratio')).toMatchObject({ pass: null });
    expect(byName(cs, 'latency.spin-1ms').reason).toContain('cpu backend');
    expect(byName(cs, 'priority.none.contention').pass).toBeNull();
  });

  it('chooses the backend: auto takes cuda, then hip, never cpu', () => {
    const d = doctorReport() as unknown as DoctorReport;
    expect(chooseBackend('auto', d).backend).toBe('cuda');
    (d.backends[1] as Json).available = false;
    const c = chooseBackend('auto', d);
    expect(c.backend).toBeNull();
    expect(c.why).toContain('no GPU backend available');
    expect(chooseBackend('cpu', d).backend).toBe('cpu');
  });

  it('fill plan from the occupancy doctor reports', () => {
    const dev = (doctorReport() as unknown as DoctorReport).backends[1].devices[0];
    expect(fillPlan(dev)).toMatchObject({ lpBlocks: 1056, blocksPerCu: 8 });
    expect(fillPlan({ ...dev, occupancy: undefined })).toMatchObject({ lpBlocks: 132 * 8 });
  });

  it('summary: counts, exit code, steps', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'sm-partition'), { hpP99VsStandalone: 1.3 });
    const s = buildSummary(o, evaluate(o), { strict: false, rawDir: 'raw' });
    expect(s).toMatchObject({ schema: 'gpucolo.gpu-check/1', backend: 'cuda', device: 'NVIDIA H100 80GB HBM3', exitCode: 1, ok: false });
    expect(s.counts.failed).toBe(1);
    expect(s.steps.map((x) => x.name)).toContain('probe-priority');
  });
});

describe('gpu-check mechanisms: one list, from src/mechanisms.ts', () => {
  const onGpu = (backends: readonly string[]): boolean => backends.some((b) => b !== 'cpu');
  const listed = (name: string): name is Mechanism => (MECHANISMS as readonly string[]).includes(name);

  it('asks probe priority for every registry mechanism the probe form runs on a GPU backend, in registry order', () => {
    expect([...MECHANISMS]).toEqual(MECHANISM_REGISTRY.filter((m) => onGpu(m.support.probe)).map((m) => m.name));
  });

  it('covers every registry mechanism with a GPU backend: by its own checks, or in the torch-form run of inference-service', () => {
    const viaRun = new Set<string>(loadScenario('inference-service').scenario.mechanisms);
    const uncovered: string[] = [];
    for (const m of MECHANISM_REGISTRY) {
      if (!onGpu(m.support.probe) && !onGpu(m.support.torch)) continue;
      if (listed(m.name)) {
        const names = mechanismCheckNames(m.name);
        expect(names.length, m.name).toBeGreaterThan(0);
        for (const [n, e] of names) {
          expect(n.startsWith(`priority.${m.name}.`), n).toBe(true);
          expect(e, n).toContain(m.name);
        }
      } else if (!(onGpu(m.support.torch) && viaRun.has(m.name))) uncovered.push(m.name);
    }
    // xsched needs an XSched build preloaded into the workers, which the check does not install:
    // the one GPU mechanism it does not run (a new one fails here until the check covers it)
    expect(uncovered).toEqual(['xsched']);
    const all = MECHANISMS.flatMap((m) => mechanismCheckNames(m).map(([n]) => n));
    expect(new Set(all).size).toBe(all.length);
  });

  it("whether the device supports a mechanism is the registry's device flag, read from doctor's device", () => {
    for (const m of MECHANISMS) {
      const flag = mechanismInfo(m)?.deviceFlag ?? null;
      expect(mechanismSupported(m, null), m).toBe(flag === null ? true : null);
      expect(mechanismSupported(m, H100), m).toBe(flag === null ? true : H100[flag]);
    }
    expect(mechanismSupported('cu-mask', H100)).toBe(false);
    expect(mechanismSupported('sm-partition', H100)).toBe(true);
    expect(mechanismSupported('sm-partition', { ...H100, supportsSmPartition: false })).toBe(false);
  });

  it('evaluate gives every check of every listed mechanism from a probe result', () => {
    const cs = evaluate(goodCuda());
    for (const m of MECHANISMS) for (const [n] of mechanismCheckNames(m)) expect(cs.filter((c) => c.name === n), n).toHaveLength(1);
  });
});

describe('gpu-check: what the CLI offers (help texts)', () => {
  const runHelp = (forms: string, extra = ''): string =>
    `Usage: gpucolo run [options] <scenario>\n\nOptions:\n  --out <dir>            output directory\n  --form <form>          probe (spin kernels), torch (model workers) or auto\n                         (choices: ${forms}, default: "auto")\n  --backend <name>       probe form backend (choices: "auto", "cpu", "cuda",\n                         "hip")\n${extra}  --no-charts            skip the SVG/PNG charts\n`;
  it('finds an in-process torch form as a --form choice, a flag, or a choice of another option', () => {
    expect(inProcessFormArgs(runHelp('"auto", "probe", "torch"'))).toBeNull();
    expect(inProcessFormArgs(runHelp('"auto", "probe", "torch", "torch-in-process"'))?.args).toEqual(['--form', 'torch-in-process']);
    expect(inProcessFormArgs(runHelp('"auto", "probe", "torch"', '  --in-process           HP and LP models in one worker\n'))?.args).toEqual(['--form', 'torch', '--in-process']);
    expect(inProcessFormArgs(runHelp('"auto", "probe", "torch"', '  --torch-workers <mode> how models map to workers (choices: "per-model",\n                         "in-process")\n'))?.args).toEqual(['--form', 'torch', '--torch-workers', 'in-process']);
  });
  it('finds the --torch-process single form of this CLI', async () => {
    const { execFileSync } = await import('node:child_process');
    const help = execFileSync(process.execPath, ['dist/cli/cli.js', 'run', '--help'], { encoding: 'utf8' });
    expect(inProcessFormArgs(help)?.args).toEqual(['--form', 'torch', '--torch-process', 'single']);
  });
  it('reads option flags and choices', () => {
    const h = runHelp('"auto", "probe", "torch"');
    expect([...helpOptions(h).keys()]).toEqual(['--out', '--form', '--backend', '--no-charts']);
    expect(helpOptions(h).get('--no-charts')!.takesValue).toBe(false);
    expect(optionChoices(h, '--backend')).toEqual(['auto', 'cpu', 'cuda', 'hip']);
  });
});

describe('npm run gpu-check on the cpu backend (a real, short run)', () => {
  const out = path.join(tmp, 'cpu');
  let r: ReturnType<typeof script>;
  let summary: GpuCheckSummary;
  beforeAll(() => {
    r = script([
      '--backend', 'cpu', '--out', out, '--no-build-floor',
      '--latency-rounds', '2', '--latency-duration', '500ms', '--spin-duration', '500ms',
      '--priority-duration', '300ms', '--priority-rounds', '1',
      '--run-duration', '1s', '--run-warmup', '200ms',
    ]);
    summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as GpuCheckSummary;
    // a hang guard like the suite's testTimeout (vitest.config.ts), not a speed limit
  }, 180_000);

  it('exits 0 with a summary: structural checks pass, GPU expectations skipped or not applicable with reasons', () => {
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(summary).toMatchObject({ schema: 'gpucolo.gpu-check/1', backend: 'cpu', requestedBackend: 'cpu', judgeTimings: false, exitCode: 0, ok: true, rawDir: 'raw' });
    expect(summary.counts.failed).toBe(0);
    for (const n of ['doctor.backend', 'doctor.priority-range', 'latency.empty-round-trip', 'priority.ran', 'priority.fill', 'run.probe.ran', 'run.probe.phases']) {
      expect(summary.checks.find((c) => c.name === n)?.pass, n).toBe(true);
    }
    for (const c of summary.checks) {
      expect(typeof c.expectation).toBe('string');
      if (c.pass === null && c.kind !== 'info') expect(c.reason, c.name).toBeTruthy();
    }
    expect(summary.checks.find((c) => c.name === 'priority.sm-partition.hp-p99')?.kind).toBe('not-applicable');
    expect(summary.checks.find((c) => c.name === 'run.torch.ran')?.pass).toBeNull();
    expect(summary.checks.find((c) => c.name === 'budget')?.pass).toBeNull();
    expect(r.stdout).toMatch(/^PASS {2}doctor\.backend: /m);
    expect(r.stdout).toMatch(/\d+ passed, 0 failed, \d+ skipped/);
  });

  it('keeps every raw output and observations.json; the steps drove the CLI', () => {
    const obs = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'observations.json'), 'utf8')) as Observations;
    expect(obs.schema).toBe('gpucolo.gpu-check-observations/1');
    expect(obs.priority.step?.argv.slice(2, 4)).toEqual(['probe', 'priority']);
    expect(obs.priority.step?.argv).toContain('--json');
    for (const s of summary.steps) if (s.file) expect(fs.existsSync(path.join(out, s.file)), s.file).toBe(true);
    expect(fs.existsSync(path.join(out, 'raw', 'run-probe', 'results.json'))).toBe(true);
  });

  it('replayed with a cu-mask HP P99 at 1.3x standalone and timings judged: FAIL, exit 1', () => {
    const obs = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'observations.json'), 'utf8')) as Observations;
    const p = obs.priority.step!.json as unknown as { standaloneHp: { hpLatency: Json }; runs: Json[] };
    const aloneP99 = (p.standaloneHp.hpLatency.quantiles as { p: number; value: number }[]).find((q) => q.p === 99)!.value;
    p.standaloneHp.hpLatency = qs(aloneP99 / 2, aloneP99);
    const cu = p.runs.find((x) => x.mechanism === 'cu-mask')!;
    Object.assign(cu, { hpLatency: qs(aloneP99 / 2, 1.3 * aloneP99), hpP99VsStandalone: 1.3, addedHpP99Ns: 0.3 * aloneP99, errors: [] });
    obs.judgeTimings = true;
    const file = path.join(tmp, 'crafted-cpu.json');
    fs.writeFileSync(file, JSON.stringify(obs));
    const rr = script(['--replay', file, '--out', path.join(tmp, 'replay-cpu')]);
    expect(rr.code).toBe(1);
    const s = JSON.parse(fs.readFileSync(path.join(tmp, 'replay-cpu', 'summary.json'), 'utf8')) as GpuCheckSummary;
    expect(s).toMatchObject({ exitCode: 1, ok: false, replayedFrom: file });
    expect(s.checks.find((c) => c.name === 'priority.cu-mask.hp-p99')).toMatchObject({ pass: false });
    expect(rr.stdout).toMatch(/^FAIL {2}priority\.cu-mask\.hp-p99: /m);
  });

  it('the recorded cpu run replayed as it was: exit 0 again', () => {
    const rr = script(['--replay', path.join(out, 'raw', 'observations.json'), '--out', path.join(tmp, 'replay-same'), '--json']);
    expect(rr.code).toBe(0);
    expect((JSON.parse(rr.stdout) as GpuCheckSummary).counts.failed).toBe(0);
  });
});

describe('npm run gpu-check --replay (crafted cuda results) and exit codes', () => {
  const write = (name: string, o: Observations): string => {
    const f = path.join(tmp, `${name}.json`);
    fs.writeFileSync(f, JSON.stringify(o));
    return f;
  };

  it('sm-partition HP P99 at 1.3x standalone: exit 1, the summary says which check and why', () => {
    const o = goodCuda();
    Object.assign(runOf(o, 'sm-partition'), { hpLatency: qs(60e3, 1.3 * ALONE_P99), hpP99VsStandalone: 1.3, addedHpP99Ns: 0.3 * ALONE_P99 });
    const dir = path.join(tmp, 'sm13');
    const r = script(['--replay', write('sm13', o), '--out', dir]);
    expect(r.code).toBe(1);
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as GpuCheckSummary;
    expect(s.counts.failed).toBe(1);
    expect(s.checks.filter((c) => c.pass === false).map((c) => c.name)).toEqual(['priority.sm-partition.hp-p99']);
    expect(s.checks.find((c) => c.name === 'priority.sm-partition.hp-p99')).toMatchObject({ expectation: 'sm-partition: HP P99 <= 1.1x standalone', pass: false });
    expect(r.stdout).toContain('FAIL  priority.sm-partition.hp-p99');
  });

  it('everything holding: exit 0; --strict with an in-process form missing: exit 3', () => {
    expect(script(['--replay', write('good', goodCuda()), '--out', path.join(tmp, 'good')]).code).toBe(0);
    const o = goodCuda();
    o.runs.pop();
    o.runsSkipped.push({ form: 'torch-in-process', reason: 'no in-process form' });
    const f = write('no-inproc', o);
    expect(script(['--replay', f, '--out', path.join(tmp, 'no-inproc')]).code).toBe(0);
    expect(script(['--replay', f, '--out', path.join(tmp, 'no-inproc'), '--strict']).code).toBe(3);
  });

  it('cannot run: bad option, unreadable replay, no node: exit 2', () => {
    expect(script(['--backend', 'tpu']).code).toBe(2);
    const r = script(['--replay', path.join(tmp, 'missing.json'), '--out', path.join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--replay');
    const n = script(['--help'], { GPUCOLO_NODE: path.join(tmp, 'no-such-node') });
    expect(n.code).toBe(2);
    expect(n.stderr).toContain('GPUCOLO_NODE');
  });

  it('refuses to clear an --out/raw that is not its own', () => {
    const dir = path.join(tmp, 'foreign');
    fs.mkdirSync(path.join(dir, 'raw'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'raw', 'keep.txt'), 'x');
    const r = script(['--backend', 'cpu', '--out', dir]);
    expect(r.code).toBe(2);
    expect(fs.existsSync(path.join(dir, 'raw', 'keep.txt'))).toBe(true);
  });
});
