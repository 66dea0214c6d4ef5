/**
 * Issue 15 on the TS side of the dispatch engines: what "fill" means (resident blocks on every
 * compute unit a stream gets, from the occupancy API), the share of the device each stream got as
 * MADE (an SM partition the driver rounds up), mechanisms a backend cannot run (skipped with their
 * reason, the rest measured), CU masks that would leave an XCC empty, and the device clock's drift.
 * Device figures of GPUs are made up (an H100's and an MI300X's occupancy and layout); real runs use
 * the cpu backend on both engines. No timing asserts.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blocksPerCuAt,
  clockCheck,
  fillReport,
  fillText,
  mechanismProblem,
  probePriority,
  reservedUnits,
  residentThreadsPerCu,
  sizeStreams,
  type DispatchSpecInput,
} from '../src/dispatch/index.js';
import { clockSummary, priorityVariants, summarizePriority, type PriorityProbeOptions, type PriorityRunRecord } from '../src/dispatch/probes.js';
import { renderPriority } from '../src/cli/probe.js';
import type { NativeBackendDevice } from '../src/native.js';
import { ROOT, nativeLoaded } from './helpers/impls.js';
import { H100 } from './helpers/devices.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 170_000, env: { ...process.env, GPUCOLO_CPU_WORKER_NICE: '0', GPUCOLO_CPU_WORKERS: '2', ...env } });

// two compute units on both engines (read when each backend starts, after this line: every test
// file runs in its own process), nice 0 against the suite's load
process.env.GPUCOLO_CPU_WORKERS = '2';
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const engines = nativeLoaded ? (['native', 'ts'] as const) : (['ts'] as const);

/** An MI300X: 304 CUs on 8 XCCs of 4 shader engines. */
const MI300X: NativeBackendDevice = {
  name: 'AMD Instinct MI300X',
  arch: 'gfx942',
  computeUnits: 304,
  priorityLeast: 1,
  priorityGreatest: -1,
  supportsCuMask: true,
  supportsSmPartition: false,
  timerResolutionNs: 0,
  maxThreadsPerBlock: 1024,
  fillThreadsPerBlock: 64,
  maxActiveBlocksPerCu: 32,
  occupancy: [
    { threadsPerBlock: 64, blocksPerCu: 32 },
    { threadsPerBlock: 256, blocksPerCu: 8 },
  ],
  numXcc: 8,
  numSePerXcc: 4,
  numShPerSe: 1,
  cuMaskBitsPerUnit: 1,
};

describe('fill from the occupancy of the probe kernel', () => {
  it('resident blocks per CU at a block size: the table, else the next larger size listed, else unknown', () => {
    expect(blocksPerCuAt(H100, 256)).toBe(8);
    expect(blocksPerCuAt(H100, 64)).toBe(32);
    // 200 threads: no entry; 256's figure never puts more blocks on a CU than fit
    expect(blocksPerCuAt(H100, 200)).toBe(8);
    expect(blocksPerCuAt({ occupancy: [], maxActiveBlocksPerCu: 6, fillThreadsPerBlock: 64 }, 64)).toBe(6);
    expect(blocksPerCuAt({ occupancy: [], maxActiveBlocksPerCu: 6, fillThreadsPerBlock: 64 }, 128)).toBeNull();
    expect(residentThreadsPerCu(H100)).toBe(2048);
  });

  it('fill = CUs x resident blocks per CU: blocks x threads, occupancy reached, waves', () => {
    // the old "fill" (one 64-thread block per SM) occupies 1/32 of an H100's block slots
    const old = fillReport({ blocks: 132, threadsPerBlock: 64, concurrent: 1, computeUnits: 132, blocksPerCu: 32, dev: H100, gpu: true });
    expect(old.fillBlocks).toBe(4224);
    expect(old.occupancy).toBeCloseTo(1 / 32);
    const f = fillReport({ blocks: 1056, threadsPerBlock: 256, concurrent: 2, computeUnits: 132, blocksPerCu: 8, dev: H100, gpu: true });
    expect(f).toMatchObject({ fillBlocks: 1056, residentBlocks: 1056, occupancy: 1, waves: 1, threadOccupancy: 1 });
    expect(fillText(f)).toBe('1056 x 256 threads (132 CUs x 8 resident, occupancy 100% with 2 kernels side by side; 100% of a CU\'s threads)');
    // more blocks than fit: a second wave, which doubles a spin kernel
    expect(fillReport({ blocks: 1057, threadsPerBlock: 256, concurrent: 1, computeUnits: 132, blocksPerCu: 8, gpu: true }).waves).toBe(2);
    // cpu backends: one block per worker whatever its threads, no thread occupancy
    expect(fillReport({ blocks: 2, threadsPerBlock: 256, concurrent: 1, computeUnits: 2, blocksPerCu: 1, gpu: false }).threadOccupancy).toBeNull();
  });
});

describe('mechanisms a backend cannot run, and reserves it would refuse', () => {
  it('names what is missing; the reserve rule is the engines\' ceil(reserve x CUs)', () => {
    expect(reservedUnits(0.1, 132)).toBe(14);
    expect(mechanismProblem('cu-mask', 'cuda', H100, 0.1)).toBe('cu-mask: the cuda backend has no CU masks (NVIDIA: use sm-partition)');
    expect(mechanismProblem('sm-partition', 'hip', MI300X, 0.1)).toBe('sm-partition: the hip backend has no SM partitions (AMD: use cu-mask)');
    expect(mechanismProblem('sm-partition', 'cuda', { ...H100, supportsSmPartition: false }, 0.1)).toMatch(/cuda backend's driver has no green contexts/);
    expect(mechanismProblem('sm-partition', 'cuda', H100, 0.1)).toBeNull();
    expect(mechanismProblem('sm-partition', 'cuda', H100, 0.999)).toMatch(/keeps 132 for the high-priority side and 0 for the others; both sides need at least one/);
    for (const m of ['none', 'stream-priority', 'throttle'] as const) expect(mechanismProblem(m, 'cuda', H100, 0)).toBeNull();
  });

  it('a CU mask with fewer CUs than XCCs on a side would hang its queue (MI300X: 8 XCCs): refused with the mapping', () => {
    // 1% of 304 = 4 CUs for HP: bits 0..3 reach XCCs 0..3 only
    const why = mechanismProblem('cu-mask', 'hip', MI300X, 0.01)!;
    expect(why).toMatch(/gives the high-priority side 4 compute unit\(s\), fewer than the device's 8 XCCs/);
    expect(why).toMatch(/bit i -> XCC i % 8/);
    expect(why).toMatch(/a reserve between 2\.6% and 97\.4%/);
    expect(mechanismProblem('cu-mask', 'hip', MI300X, 0.1)).toBeNull(); // 31 and 273 CUs
    expect(mechanismProblem('cu-mask', 'hip', MI300X, 0.98)).toMatch(/the low-priority side 6 compute unit/);
    // a one-die GPU (or an unknown layout) has nothing to check
    expect(mechanismProblem('cu-mask', 'hip', { ...MI300X, computeUnits: 60, numXcc: 1 }, 0.02)).toBeNull();
  });
});

describe('the device clock: offset, drift and its uncertainty', () => {
  it('drift = offset after - offset before; unknown when the end could not be measured', () => {
    expect(clockCheck({ deviceOffsetNs: 1000, deviceOffsetUncertaintyNs: 40, deviceOffsetEndNs: 1250 })).toEqual({ offsetNs: 1000, uncertaintyNs: 40, offsetEndNs: 1250, driftNs: 250 });
    expect(clockCheck({ deviceOffsetNs: 1000, deviceOffsetEndNs: Number.NaN })).toEqual({ offsetNs: 1000, uncertaintyNs: null, offsetEndNs: null, driftNs: null });
    const s = clockSummary([{ clock: { offsetNs: 0, uncertaintyNs: 30, offsetEndNs: 100, driftNs: 100 } }, { clock: { offsetNs: 0, uncertaintyNs: 50, offsetEndNs: -300, driftNs: -300 } }, { clock: null }]);
    expect(s).toEqual({ runs: 2, maxDriftNs: -300, uncertaintyNs: 50 });
  });
});

// ---- allowed share as made (injected records: an H100 whose driver rounds partitions up) ---------

const OPTS: PriorityProbeOptions = { backend: 'cuda', lpKernelNs: 2e6, lpStreams: 2, hpKernelNs: 100e3, hpRateHz: 200, mechanisms: ['none', 'sm-partition'], reserve: 0.1, durationNs: 1e9 };

function records(): PriorityRunRecord[] {
  const hp = { latencyNs: Float64Array.from({ length: 400 }, (_, i) => 100e3 + i * 100), startDelayNs: new Float64Array(400) };
  const fill = (cus: number) => fillReport({ blocks: cus * 8, threadsPerBlock: 256, concurrent: 2, computeUnits: cus, blocksPerCu: 8, dev: H100, gpu: true });
  const base = { round: 1, measuredNs: 1e9, errors: [], hostLoad: null, kfd: null, clock: { offsetNs: 5, uncertaintyNs: 20, offsetEndNs: 45, driftNs: 40 } };
  return [
    { ...base, label: 'standalone:hp', position: 1, hp, lpKernels: null },
    { ...base, label: 'standalone:lp', position: 2, hp: null, lpKernels: 1000, lpBlocksPerKernel: 1056, lpFill: fill(132) },
    { ...base, label: 'corun:none', position: 3, hp, lpKernels: 990, lpBlocksPerKernel: 1056, lpFill: fill(132) },
    {
      ...base,
      label: 'corun:sm-partition reserve=10%',
      position: 4,
      hp,
      // as many LP kernels as alone, each of the LP side's fill (116 SMs, not 118): 87.9% of the blocks
      lpKernels: 1000,
      lpBlocksPerKernel: 928,
      lpFill: fill(116),
      shares: {
        hp: { name: 'hp', highPriority: true, computeUnits: 16, smCountRequested: 14, smCount: 16, blocksPerCu: 32, fillBlocks: 512 },
        lp: { name: 'lp0', highPriority: false, computeUnits: 116, smCountRequested: 118, smCount: 116, blocksPerCu: 8, fillBlocks: 928 },
      },
    },
  ];
}

describe('sm-partition: the share LP is allowed comes from the partition as made', () => {
  it('uses the SMs the driver made (16 for 14 asked: LP keeps 116 of 132, not 118), reports both, compares blocks done', () => {
    const r = summarizePriority({ backend: 'cuda', engine: 'native', options: { ...OPTS, rounds: 1 }, computeUnits: 132, rounds: 1, order: [], variants: priorityVariants(OPTS), records: records(), interrupted: false });
    const sm = r.runs.find((x) => x.mechanism === 'sm-partition')!;
    expect(sm.partition).toEqual({ hp: { requested: 14, made: 16 }, lp: { requested: 118, made: 116 } });
    expect(sm.lpAllowedShare).toBeCloseTo(116 / 132);
    expect(sm.lpAllowedShareRequested).toBeCloseTo(118 / 132);
    // LP SHARE in blocks: 1000 kernels of 928 blocks against 1000 of 1056 alone (in kernels it would read 100%)
    expect(sm.lpShare).toBeCloseTo(928 / 1056);
    expect(sm.lpFill).toMatchObject({ blocks: 928, computeUnits: 116, blocksPerCu: 8, occupancy: 1 });
    expect(r.quality.warnings.filter((w) => w.code === 'share-above-allowed')).toEqual([]);
    expect(r.clock).toEqual({ runs: 4, maxDriftNs: 40, uncertaintyNs: 20 });
    const text = renderPriority(r);
    expect(text).toMatch(/partition of sm-partition reserve=10%: HP 16 \(asked 14\) SMs, LP 116 \(asked 118\) SMs of 132 \(the driver rounds green-context partitions up: multiples of 8 SMs on sm_90\); LP allowed 87\.9%/);
    expect(text).toMatch(/87\.9% \(asked 89\.4%\)/);
    expect(text).toMatch(/^LP kernels \(fill\): 1056 x 256 threads \(132 CUs x 8 resident, occupancy 100% with 2 kernels side by side; 100% of a CU's threads\)/m);
    expect(text).toMatch(/1056x256 100%/);
    expect(text).toMatch(/^device clock: drift over a run, at most \+40ns against the host clock \(each offset known to ±20ns\)$/m);
  });

  it('without a partition said by the engine, the share as asked stands', () => {
    const recs = records().map((x) => ({ ...x, shares: undefined }));
    const r = summarizePriority({ backend: 'cuda', engine: 'native', options: { ...OPTS, rounds: 1 }, computeUnits: 132, rounds: 1, order: [], variants: priorityVariants(OPTS), records: recs, interrupted: false });
    const sm = r.runs.find((x) => x.mechanism === 'sm-partition')!;
    expect(sm.partition).toEqual({ hp: { requested: 14, made: 14 }, lp: { requested: 118, made: 118 } });
    expect(sm.lpAllowedShare).toBeCloseTo(118 / 132);
  });
});

// ---- real runs on the cpu backend -----------------------------------------------------------------

describe.each(engines)('on the cpu backend (%s engine)', (engine) => {
  it('sizeStreams: each stream\'s compute units and fill as made; a spec the backend refuses comes back refused', async () => {
    const spec: DispatchSpecInput = {
      backend: 'cpu',
      durationNs: 1e9,
      mechanism: 'cu-mask',
      reserve: 0.5,
      streams: [
        { name: 'hp', highPriority: true, kernel: { spinNs: 1e6, blocks: 1, threadsPerBlock: 64 }, arrival: 'poisson', rateHz: 100 },
        { name: 'lp', highPriority: false, kernel: { spinNs: 1e6, blocks: 1, threadsPerBlock: 256 }, arrival: 'closed-loop' },
      ],
    };
    const s = await sizeStreams(spec, { engine });
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    expect(s.computeUnits).toBe(2);
    expect(s.streams.map((x) => [x.name, x.computeUnits, x.blocksPerCu, x.fillBlocks])).toEqual([
      ['hp', 1, 1, 1],
      ['lp', 1, 1, 1],
    ]);
    const whole = await sizeStreams({ ...spec, mechanism: 'none', reserve: 0 }, { engine });
    expect(whole.ok && whole.streams.map((x) => x.fillBlocks)).toEqual([2, 2]);
    const refused = await sizeStreams({ ...spec, mechanism: 'sm-partition' }, { engine });
    expect(refused).toMatchObject({ ok: false, refused: true });
    expect(!refused.ok && refused.reason).toMatch(/has no SM partitions/);
  });

  it('probe priority: LP fills the device by default, a mechanism the backend lacks is skipped with its reason, the rest is measured', async () => {
    const seen: string[] = [];
    const r = await probePriority({
      backend: 'cpu',
      engine,
      lpKernelNs: 2e6,
      lpStreams: 2,
      hpKernelNs: 100e3,
      hpRateHz: 200,
      mechanisms: ['none', 'cu-mask', 'sm-partition'],
      reserve: 0.5,
      durationNs: 200e6,
      warmupNs: 50e6,
      onRun: (label) => seen.push(label),
    });
    expect(r.skipped).toEqual([
      { label: 'corun:sm-partition reserve=50%', mechanism: 'sm-partition', throttleK: null, reserve: 0.5, lpKernelNs: 2e6, reason: 'sm-partition: the cpu backend has no SM partitions' },
    ]);
    expect(seen).toEqual(['standalone:hp', 'standalone:lp', 'corun:none', 'corun:cu-mask reserve=50%']);
    expect(r.runs.map((x) => x.mechanism)).toEqual(['none', 'cu-mask']);
    // fill: 2 workers x 1 block alone and under none; the LP side of the mask (1 worker) under cu-mask
    expect(r.standalone[0].lpFill).toMatchObject({ blocks: 2, threadsPerBlock: 256, computeUnits: 2, blocksPerCu: 1, fillBlocks: 2, occupancy: 1, waves: 1, threadOccupancy: null });
    expect(r.runs[0].lpFill).toMatchObject({ blocks: 2, computeUnits: 2, occupancy: 1 });
    const cu = r.runs[1];
    expect(cu.lpFill).toMatchObject({ blocks: 1, computeUnits: 1, occupancy: 1 });
    expect(cu.partition).toEqual({ hp: { requested: 1, made: 1 }, lp: { requested: 1, made: 1 } });
    expect(cu.lpAllowedShare).toBe(0.5);
    expect(cu.lpAllowedShareRequested).toBe(0.5);
    expect(r.runs[0].partition).toBeNull();
    expect(r.runs[0].lpAllowedShare).toBe(1);
    // the host clock is the cpu device's clock: drift measured, ~0
    expect(r.clock.runs).toBe(4);
    expect(Math.abs(r.clock.maxDriftNs!)).toBeLessThan(1e6);
    const text = renderPriority(r);
    expect(text).toMatch(/^ {2}sm-partition +- +50% +2ms +skipped( +-)+$/m);
    expect(text).toMatch(/^skipped: sm-partition reserve=50%: sm-partition: the cpu backend has no SM partitions$/m);
  });

  it('an explicit --lp-blocks is kept in every variant', async () => {
    const r = await probePriority({ backend: 'cpu', engine, lpKernelNs: 1e6, lpBlocks: 3, lpStreams: 1, hpKernelNs: 100e3, hpRateHz: 100, mechanisms: ['cu-mask'], reserve: 0.5, durationNs: 150e6, warmupNs: 30e6 });
    expect(r.standalone[0].lpFill).toMatchObject({ blocks: 3, fillBlocks: 2, waves: 2 });
    expect(r.runs[0].lpFill).toMatchObject({ blocks: 3, fillBlocks: 1, waves: 3 });
  });
});

describe('CLI', () => {
  it('probe priority --mechanism none,cu-mask,sm-partition (the README\'s example) on the cpu backend: sm-partition skipped with its reason, exit 0', () => {
    const r = cli(['probe', 'priority', '--backend', 'cpu', '--duration', '150ms', '--rounds', '1', '--mechanism', 'none,cu-mask,sm-partition', '--reserve', '50%', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.skipped).toEqual([expect.objectContaining({ mechanism: 'sm-partition', reason: 'sm-partition: the cpu backend has no SM partitions' })]);
    expect(j.runs.map((x: { mechanism: string }) => x.mechanism)).toEqual(['none', 'cu-mask']);
    expect(j.runs[1].lpFill).toMatchObject({ blocks: 1, threadsPerBlock: 256, occupancy: 1 });
    expect(j.options.lpBlocks).toBe('fill');
    expect(r.stderr).not.toMatch(/sm-partition/);
  });

  it('--allow-debug-trap: documented with its side effect, and only with --kfd-priority', () => {
    const help = cli(['probe', 'priority', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--allow-debug-trap .*SIDE EFFECT: enabling it refreshes the runlist and preempts every queue of every process on the GPU/);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--lp-blocks <n\|fill> .*\(default: "fill"\)/);
    const r = cli(['probe', 'priority', '--backend', 'cpu', '--allow-debug-trap']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--allow-debug-trap only applies with --kfd-priority/);
  });
});
