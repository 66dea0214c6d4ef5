/**
 * `probe priority` in rounds: the order the runs happened (rotated each round), pooling of the
 * per-launch samples, the spread, and the quality block (impossible shares, drifting standalone
 * runs, host interference, failed runs) with the throttle verdict it can make inconclusive.
 * Figures are injected through summarizePriority (pure); real runs on the cpu backend check the
 * order, pooling and the --json shape on the native and the pure-TS engine. No timing asserts.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { probePriority } from '../src/dispatch/index.js';
import {
  priorityVariants,
  summarizePriority,
  type PriorityProbeOptions,
  type PriorityProbeResult,
  type PriorityRunRecord,
} from '../src/dispatch/probes.js';
import { renderPriority } from '../src/cli/probe.js';
import { quantileOf, rotatedOrder, type HostLoad } from '../src/stats/index.js';
import { ROOT, nativeLoaded } from './helpers/impls.js';

// the cpu backend's workers run at nice 19 by default: starved on cores shared with other test files
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 170_000, env: { ...process.env, GPUCOLO_CPU_WORKER_NICE: '0', ...env } });

const OPTIONS: PriorityProbeOptions = {
  backend: 'cpu',
  lpKernelNs: 2e6,
  lpStreams: 2,
  hpKernelNs: 100e3,
  hpRateHz: 200,
  mechanisms: ['none', 'throttle', 'cu-mask'],
  reserve: 0.5,
  throttleK: 1,
  durationNs: 1e9,
};

/** n samples spread evenly over [lo, hi] ns. */
const samples = (n: number, lo: number, hi = lo): number[] => Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / Math.max(1, n - 1));

interface Fig {
  hp?: number[];
  lp?: number;
  hostLoad?: HostLoad;
  failed?: string;
}

/**
 * Records for `rounds` rounds in rotated order; figures(label, round) gives each run's numbers.
 * Every run measured 1 s.
 */
function summarize(rounds: number, figures: (label: string, round: number) => Fig, o: Partial<PriorityProbeOptions> = {}, computeUnits = 2): PriorityProbeResult {
  const options = { ...OPTIONS, ...o, rounds };
  const variants = priorityVariants(options);
  const order: string[][] = [];
  const records: PriorityRunRecord[] = [];
  for (let r = 0; r < rounds; r++) {
    const seq = rotatedOrder(variants, r);
    order.push(seq.map((v) => v.label));
    seq.forEach((v, i) => {
      const f = figures(v.label, r + 1);
      const hp = f.failed || v.kind === 'standalone-lp' ? null : f.hp ?? samples(200, 100e3, 200e3);
      records.push({
        label: v.label,
        round: r + 1,
        position: i + 1,
        measuredNs: f.failed ? 0 : 1e9,
        hp: hp ? { latencyNs: Float64Array.from(hp), startDelayNs: Float64Array.from(hp, (x) => x / 2) } : null,
        lpKernels: f.failed || v.kind === 'standalone-hp' ? null : f.lp ?? 1000,
        errors: [],
        hostLoad: f.hostLoad ?? null,
        kfd: null,
        ...(f.failed ? { failed: f.failed } : {}),
      });
    });
  }
  return summarizePriority({ backend: 'cpu', engine: 'native', options, computeUnits, rounds, order, variants, records, interrupted: false });
}

/** Figures a quiet host would give: HP alone ~150 µs, co-runs slower, LP shares below 1. */
const quiet = (label: string): Fig => {
  if (label === 'standalone:hp') return { hp: samples(200, 100e3, 200e3) };
  if (label === 'standalone:lp') return { lp: 1000 };
  if (label === 'corun:none') return { hp: samples(200, 1e6, 10e6), lp: 980 };
  if (label.startsWith('corun:throttle')) return { hp: samples(200, 150e3, 1e6), lp: 500 };
  return { hp: samples(200, 120e3, 300e3), lp: 495 }; // cu-mask 50%
};
const noisyLoad: HostLoad = { wallS: 1, cpus: 2, foreignCores: 0.9, ownCores: 1, stealShare: 0, loadAverage1: 3.1 };

describe('variants and rotation', () => {
  it('labels each variant once: standalone runs first, then the co-runs (sweeps included)', () => {
    expect(priorityVariants(OPTIONS).map((v) => v.label)).toEqual(['standalone:hp', 'standalone:lp', 'corun:none', 'corun:throttle K=1', 'corun:cu-mask reserve=50%']);
    expect(priorityVariants({ ...OPTIONS, mechanisms: ['throttle', 'throttle'], sweep: { param: 'K', values: [1, 2] } }).map((v) => v.label)).toEqual([
      'standalone:hp',
      'standalone:lp',
      'corun:throttle K=1',
      'corun:throttle K=2',
    ]);
    expect(priorityVariants({ ...OPTIONS, mechanisms: ['none'], sweep: { param: 'lp-kernel', values: [1e6, 2e6] } }).map((v) => v.label)).toEqual([
      'standalone:hp',
      'standalone:lp lp-kernel=1ms',
      'standalone:lp lp-kernel=2ms',
      'corun:none lp-kernel=1ms',
      'corun:none lp-kernel=2ms',
    ]);
  });
});

describe('pooling and spread (injected figures)', () => {
  it('pools per-launch samples and kernels over the rounds; each round keeps its own figures against the same round', () => {
    // standalone LP drifts 1000 -> 500 kernels/s; none's LP 900 -> 450: 90% of the same round in both
    const r = summarize(2, (label, round) => {
      if (label === 'standalone:lp') return { lp: round === 1 ? 1000 : 500 };
      if (label === 'corun:none') return { hp: samples(200, round === 1 ? 1e6 : 3e6), lp: round === 1 ? 900 : 450 };
      return quiet(label);
    });
    const none = r.runs.find((x) => x.label === 'corun:none')!;
    expect(none.hpLatency.n).toBe(400);
    expect(none.rounds.map((x) => x.hpN)).toEqual([200, 200]);
    // pooled P50 of 200 x 1 ms and 200 x 3 ms: the 200th value, 1 ms; P99 from the 3 ms half
    expect(quantileOf(none.hpLatency, 50)).toBe(1e6);
    expect(quantileOf(none.hpLatency, 99)).toBe(3e6);
    expect(none.spread.hpP99Ns).toEqual({ min: 1e6, median: 2e6, max: 3e6, n: 2 });
    // pooled rate: all kernels over all seconds; share against the pooled standalone rate
    expect(none.lpThroughput).toBe(675);
    expect(r.standalone[0].lpThroughput).toBe(750);
    expect(none.lpShare).toBeCloseTo(0.9, 12);
    expect(none.rounds.map((x) => x.lpShare)).toEqual([0.9, 0.9]);
    expect(none.spread.lpShare).toMatchObject({ min: 0.9, max: 0.9, n: 2 });
    expect(r.standalone[0].spread.lpThroughput).toEqual({ min: 500, median: 750, max: 1000, n: 2 });
    expect(r.standaloneHp.hpLatency.n).toBe(400);
    expect(r.rounds).toBe(2);
    expect(r.order[1]).toEqual(['standalone:lp', 'corun:none', 'corun:throttle K=1', 'corun:cu-mask reserve=50%', 'standalone:hp']);
    expect(none.rounds.map((x) => x.position)).toEqual([3, 2]);
  });

  it('a quiet host: quality ok, throttle bound met; a bound beyond K is exceeded', () => {
    const r = summarize(3, quiet);
    expect(r.quality).toEqual({ verdict: 'ok', warnings: [] });
    const th = r.runs.find((x) => x.mechanism === 'throttle')!;
    expect(th.bound).toMatchObject({ limit: 1, verdict: 'met' });
    expect(th.bound!.value).toBeLessThanOrEqual(1);
    expect(r.runs.find((x) => x.mechanism === 'none')!.bound).toBeNull();
    const slow = summarize(3, (l) => (l.startsWith('corun:throttle') ? { hp: samples(200, 150e3, 5e6), lp: 500 } : quiet(l)));
    expect(slow.runs.find((x) => x.mechanism === 'throttle')!.bound).toMatchObject({ verdict: 'exceeded' });
    expect(slow.quality.verdict).toBe('ok');
  });
});

describe('quality block (injected figures)', () => {
  it('flags an LP share above its standalone and an HP P99 below it; the table marks them and ends with the warnings', () => {
    // the co-run LP did 1400 kernels/s where LP alone did 1000: a host that got quieter
    const r = summarize(2, (label) => {
      if (label === 'corun:none') return { hp: samples(200, 20e3, 40e3), lp: 1400 };
      return quiet(label);
    });
    const codes = r.quality.warnings.map((w) => [w.code, w.phase, w.task]);
    expect(codes).toContainEqual(['share-above-standalone', 'corun:none', 'lp']);
    expect(codes).toContainEqual(['faster-than-standalone', 'corun:none', 'hp']);
    expect(r.quality.verdict).toBe('noisy');
    const text = renderPriority(r);
    expect(text).toMatch(/^ {2}none .* 0\.\d\dx! .* 140\.0%! /m);
    const tail = text.trimEnd().split('\n');
    const at = tail.findIndex((l) => l.startsWith('quality: '));
    expect(tail[at]).toBe(`quality: noisy (${r.quality.warnings.length} warnings)`);
    expect(tail.slice(at + 1)).toEqual(r.quality.warnings.map((w) => `  ${w.code}: ${w.message}`));
  });

  it('flags an LP share above what a compute-unit reserve leaves it (LP alone filled the device)', () => {
    const r = summarize(2, (label) => (label.startsWith('corun:cu-mask') ? { hp: samples(200, 120e3, 300e3), lp: 800 } : quiet(label)));
    const w = r.quality.warnings.find((x) => x.code === 'share-above-allowed')!;
    expect(w).toMatchObject({ phase: 'corun:cu-mask reserve=50%', task: 'lp' });
    expect(w.message).toContain('80.0% of standalone with 50.0% of the compute units');
    // 1-block LP kernels on a 132-SM GPU leave SMs idle: a reserve need not slow LP, no flag
    // (the default LP kernel is "fill", which occupies every unit: there the flag stands)
    const big = summarize(2, (label) => (label.startsWith('corun:cu-mask') ? { hp: samples(200, 120e3, 300e3), lp: 800 } : quiet(label)), { lpBlocks: 1 }, 132);
    expect(big.quality.warnings).toEqual([]);
  });

  it('a flagged value makes the throttle verdict inconclusive, never met', () => {
    // throttle's co-run meets K, but other processes took 0.9 cores during its second round
    const r = summarize(2, (label, round) => (label.startsWith('corun:throttle') && round === 2 ? { ...quiet(label), hostLoad: noisyLoad } : quiet(label)));
    const th = r.runs.find((x) => x.mechanism === 'throttle')!;
    expect(th.addedP99InLpKernels!).toBeLessThanOrEqual(1);
    expect(th.bound).toMatchObject({ verdict: 'inconclusive', reason: expect.stringMatching(/^host-interference: corun:throttle K=1 \(round 2\): other processes used 0\.90 of 2 cores/) });
    const w = r.quality.warnings.find((x) => x.code === 'host-interference')!;
    expect(w).toMatchObject({ phase: 'corun:throttle K=1', round: 2 });
    expect(renderPriority(r)).toMatch(/^ {2}throttle .* inconclusive /m);
    // a drifting HP-alone floor undoes the added P99 too
    const drift = summarize(2, (label, round) => (label === 'standalone:hp' ? { hp: samples(1000, round === 1 ? 100e3 : 400e3, round === 1 ? 110e3 : 410e3) } : quiet(label)));
    const d = drift.quality.warnings.find((x) => x.code === 'standalone-drift')!;
    expect(d).toMatchObject({ phase: 'standalone:hp', task: 'hp' });
    expect(d.message).toMatch(/round 1 .* round 2 /);
    expect(drift.runs.find((x) => x.mechanism === 'throttle')!.bound!.verdict).toBe('inconclusive');
  });

  it('a standalone LP rate that moves beyond its interval between rounds is standalone-drift; within it, nothing', () => {
    const moved = summarize(3, (label, round) => (label === 'standalone:lp' ? { lp: round === 2 ? 700 : 1000 } : quiet(label)));
    expect(moved.quality.warnings.filter((w) => w.code === 'standalone-drift').map((w) => [w.phase, w.task])).toEqual([['standalone:lp', 'lp']]);
    // against its own round's 700/s, none's 980/s is 140%: flagged for that round, while the pooled 109% is not
    expect(moved.runs.find((x) => x.label === 'corun:none')!.lpShare!).toBeLessThan(1.1);
    expect(moved.quality.warnings.filter((w) => w.code === 'share-above-standalone').map((w) => [w.phase, w.round])).toEqual([['corun:none', 2]]);
    expect(moved.quality.warnings.find((w) => w.code === 'share-above-allowed')).toMatchObject({ phase: 'corun:cu-mask reserve=50%', round: 2, message: expect.stringMatching(/^round 2: lp in/) });
    const still = summarize(3, (label, round) => (label === 'standalone:lp' ? { lp: 1000 + round * 10 } : quiet(label)));
    expect(still.quality.warnings).toEqual([]);
  });

  it('a failed run costs its round, not the measurement: round-failed, figures from the other rounds', () => {
    const r = summarize(3, (label, round) => (label === 'corun:none' && round === 2 ? { failed: 'cpu dispatch failed: watchdog' } : quiet(label)));
    const none = r.runs.find((x) => x.label === 'corun:none')!;
    expect(none.hpLatency.n).toBe(400);
    expect(none.spread.hpP99Ns!.n).toBe(2);
    expect(none.rounds[1]).toMatchObject({ round: 2, failed: 'cpu dispatch failed: watchdog', hpP99Ns: null });
    expect(r.quality.warnings).toEqual([expect.objectContaining({ code: 'round-failed', phase: 'corun:none', round: 2 })]);
  });
});

// ---- real runs on the cpu backend -------------------------------------------------------------

const engines = nativeLoaded ? (['native', 'ts'] as const) : (['ts'] as const);

describe.each(engines)('real rounds on the %s engine', (engine) => {
  it('runs every variant once per round in rotated order and pools their samples', async () => {
    const seen: string[] = [];
    const r = await probePriority({
      ...OPTIONS,
      mechanisms: ['none', 'throttle'],
      durationNs: 200e6,
      warmupNs: 50e6,
      rounds: 3,
      engine,
      onRun: (label, round, rounds) => seen.push(`${round}/${rounds} ${label}`),
    });
    const labels = ['standalone:hp', 'standalone:lp', 'corun:none', 'corun:throttle K=1'];
    expect(r.engine).toBe(engine);
    expect(r.order).toEqual([0, 1, 2].map((k) => rotatedOrder(labels, k)));
    expect(seen).toEqual(r.order.flatMap((o, i) => o.map((l) => `${i + 1}/3 ${l}`)));
    for (const x of [r.standaloneHp, ...r.standalone, ...r.runs]) {
      expect(x.rounds.map((f) => f.round)).toEqual([1, 2, 3]);
      expect(x.rounds.map((f) => r.order[f.round - 1][f.position - 1])).toEqual([x.label, x.label, x.label]);
    }
    for (const x of [r.standaloneHp, ...r.runs]) expect(x.hpLatency.n).toBe(x.rounds.reduce((a, f) => a + f.hpN!, 0));
    expect(r.runs[1].spread.lpThroughput!.n).toBe(3);
    expect(r.runs[1].bound).not.toBeNull();
    expect(['ok', 'noisy']).toContain(r.quality.verdict);
    expect(r.interrupted).toBe(false);
  });
});

describe('CLI', () => {
  it.each(engines)('probe priority --rounds 2 --json on the %s engine: rounds, order, per-variant rounds[], quality', (engine) => {
    const env = engine === 'ts' ? { GPUCOLO_NATIVE: '0' } : {};
    const r = cli(['probe', 'priority', '--backend', 'cpu', '--duration', '200ms', '--rounds', '2', '--mechanism', 'none,throttle', '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.engine).toBe(engine);
    expect(j.rounds).toBe(2);
    expect(j.order).toEqual([
      ['standalone:hp', 'standalone:lp', 'corun:none', 'corun:throttle K=1'],
      ['standalone:lp', 'corun:none', 'corun:throttle K=1', 'standalone:hp'],
    ]);
    for (const x of [j.standaloneHp, ...j.standalone, ...j.runs]) expect(x.rounds).toHaveLength(2);
    expect(j.runs[1].spread.hpP99Ns).toMatchObject({ n: 2 });
    expect(['met', 'exceeded', 'inconclusive']).toContain(j.runs[1].bound.verdict);
    expect(['ok', 'noisy']).toContain(j.quality.verdict);
    for (const w of j.quality.warnings) expect(w).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
    expect(r.stderr).toMatch(/^gpucolo probe: round 2\/2: standalone:hp \(200ms\)$/m);
  });

  it('the table ends with the quality verdict; --rounds must be a positive integer', () => {
    const r = cli(['probe', 'priority', '--backend', 'cpu', '--duration', '200ms', '--rounds', '2', '--mechanism', 'none']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 round\(s\) in rotated order/);
    const lines = r.stdout.trimEnd().split('\n');
    const at = lines.findIndex((l) => /^quality: (ok|noisy)/.test(l));
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1).every((l) => /^ {2}[a-z-]+: /.test(l))).toBe(true);
    expect(cli(['probe', 'priority', '--rounds', '0']).status).toBe(2);
  });

  it('nothing measured (interrupted before the first run) is an error, not an empty table', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(probePriority({ ...OPTIONS, durationNs: 200e6, rounds: 2, signal: ctl.signal })).rejects.toThrow(/nothing could be measured: interrupted before the first run/);
  });
});
