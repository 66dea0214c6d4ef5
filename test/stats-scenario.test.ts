/** Latency summaries, CDFs, Jain's index, live histograms, SLO verdicts and the scenario summaries built on them. */
import { describe, expect, it } from 'vitest';
import {
  cdfPoints,
  deadlineMisses,
  disjointBeyond,
  jainIndex,
  LiveLatency,
  minSamplesForCi,
  ordinal,
  percentileSampleSize,
  quantiles,
  rankFromTop,
  secondsForSamples,
  sloVerdicts,
  summarizeLatencyMs,
} from '../src/stats/index.js';
import { successRowSchema, taskSchema, type SuccessRow, type Task } from '../src/scenario/schema.js';
import { phaseFairness, priorityWeights, successVerdicts, taskResult } from '../src/scenario/summarize.js';
import type { LatencySummaryMs, PhaseResult, TaskResult, TaskSamples } from '../src/scenario/types.js';

const MS = 1e6;

/** 1..n ms in ns, in a fixed shuffled order (the functions must not rely on sorted input) */
function msRange(n: number): Float64Array {
  const a = Float64Array.from({ length: n }, (_, i) => (i + 1) * MS);
  for (let i = n - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function samples(task: string, latencyNs: ArrayLike<number>, extra: Partial<TaskSamples> = {}): TaskSamples {
  const lat = Float64Array.from(latencyNs);
  return {
    task,
    issued: lat.length,
    latencyNs: lat,
    startDelayNs: new Float64Array(0),
    serviceNs: new Float64Array(lat.length).fill(1 * MS),
    errors: 0,
    measuredNs: 10e9,
    ...extra,
  };
}

const task = (input: unknown): Task => taskSchema.parse(input);
const row = (input: unknown): SuccessRow => successRowSchema.parse(input);

describe('summarizeLatencyMs', () => {
  it('gives the exact order statistics in ms with a P99 CI', () => {
    const s = summarizeLatencyMs(msRange(2000));
    expect(s).toMatchObject({ n: 2000, p50: 1000, p90: 1800, p95: 1900, p99: 1980, max: 2000, mean: 1000.5, unsupported: [] });
    const [lo, hi] = s.ci99!;
    expect(lo).toBeLessThan(1980);
    expect(hi).toBeGreaterThan(1980);
    expect(hi).toBeLessThanOrEqual(2000);
    // the same ranks as quantiles() on the raw ns values
    const q = quantiles(msRange(2000), [99]).quantiles[0];
    expect(s.ci99).toEqual([q.ci![0] / MS, q.ci![1] / MS]);
  });

  // regression: (1-q)^n underflowed for q = 0.99, n >= ~160, leaving no CI for 160 <= n <= 1000
  it('has a P99 CI for n = 500 and n = 1000 that brackets P99 (n = 200 cannot: its upper bound lies beyond the max)', () => {
    expect(summarizeLatencyMs(msRange(200)).ci99).toBeNull();
    for (const n of [500, 1000]) {
      const s = summarizeLatencyMs(msRange(n));
      expect(s.ci99).not.toBeNull();
      expect(s.ci99![0]).toBeLessThanOrEqual(s.p99!);
      expect(s.ci99![1]).toBeGreaterThanOrEqual(s.p99!);
    }
  });

  // regression: ceil(0.999 * 1000) is ceil(999.0000000000001) = 1000 in floating point
  it('takes rank 999 as P99.9 of 1000 values', () => {
    expect(summarizeLatencyMs(msRange(1000)).p999).toBe(999);
  });

  it('lists the percentiles a small sample cannot support', () => {
    const s = summarizeLatencyMs(msRange(50));
    expect(s.unsupported).toEqual(['p99', 'p999']);
    expect(s.p999).toBe(50); // = max, hence unsupported
    expect(s.ci99).toBeNull();
    expect(summarizeLatencyMs(msRange(100)).unsupported).toEqual(['p999']);
  });

  it('gives nulls and n 0 for no samples', () => {
    const s = summarizeLatencyMs(new Float64Array(0));
    expect(s).toEqual({
      n: 0,
      p50: null,
      p90: null,
      p95: null,
      p99: null,
      p999: null,
      max: null,
      mean: null,
      ci50: null,
      ci99: null,
      unsupported: ['p50', 'p90', 'p95', 'p99', 'p999'],
      censored: 0,
      censoredAtOrAbove: [],
    });
  });

  it('rejects NaN, infinite and negative latencies', () => {
    expect(() => summarizeLatencyMs([1, Number.NaN])).toThrow(RangeError);
    expect(() => summarizeLatencyMs([1, -5])).toThrow(/\[1\] is -5/);
    expect(() => summarizeLatencyMs([Infinity])).toThrow(RangeError);
  });
});

describe('cdfPoints', () => {
  it('keeps min and max, is ascending and has at most maxPoints points', () => {
    const pts = cdfPoints(msRange(1000));
    expect(pts.length).toBe(200);
    expect(pts[0]).toEqual([1, 1 / 1000]);
    expect(pts[pts.length - 1]).toEqual([1000, 1]);
    for (let i = 1; i < pts.length; i++) {
      expect(pts[i][0]).toBeGreaterThan(pts[i - 1][0]);
      expect(pts[i][1]).toBeGreaterThan(pts[i - 1][1]);
    }
    // every point is a point of the exact CDF: fraction = rank / n
    for (const [ms, f] of pts) expect(f).toBeCloseTo(ms / 1000, 12);
    expect(cdfPoints(msRange(1000), 2)).toEqual([
      [1, 0.001],
      [1000, 1],
    ]);
  });

  it('collapses ties to the highest rank and returns small samples whole', () => {
    expect(cdfPoints([2 * MS, 1 * MS, 1 * MS])).toEqual([
      [1, 2 / 3],
      [2, 1],
    ]);
    expect(cdfPoints([5 * MS])).toEqual([[5, 1]]);
    expect(cdfPoints(new Float64Array(0))).toEqual([]);
  });

  it('rejects bad inputs', () => {
    expect(() => cdfPoints([1, 2], 1)).toThrow(RangeError);
    expect(() => cdfPoints([1, 2], 2.5)).toThrow(RangeError);
    expect(() => cdfPoints([Number.NaN])).toThrow(RangeError);
  });
});

describe('jainIndex', () => {
  it('is 1 for equal shares and 1/n for one-hot', () => {
    expect(jainIndex([0.5, 0.5, 0.5])).toBeCloseTo(1, 12);
    expect(jainIndex([1, 0, 0, 0])).toBeCloseTo(0.25, 12);
    expect(jainIndex([1, 2, 3])).toBeCloseTo(36 / 42, 12);
  });

  it('divides by the weights', () => {
    expect(jainIndex([0.8, 0.4], [2, 1])).toBeCloseTo(1, 12);
    expect(jainIndex([0.4, 0.4], [2, 1])).toBeCloseTo(jainIndex([0.2, 0.4])!, 12);
  });

  it('is null for empty input or all zeros', () => {
    expect(jainIndex([])).toBeNull();
    expect(jainIndex([0, 0])).toBeNull();
  });

  it('throws RangeError on negative, NaN, bad weights or length mismatch', () => {
    expect(() => jainIndex([1, -1])).toThrow(RangeError);
    expect(() => jainIndex([1, Number.NaN])).toThrow(RangeError);
    expect(() => jainIndex([1, 1], [1])).toThrow(RangeError);
    expect(() => jainIndex([1, 1], [1, 0])).toThrow(RangeError);
    expect(() => jainIndex([1, 1], [1, -2])).toThrow(RangeError);
  });
});

describe('LiveLatency', () => {
  it('approximates percentiles to 3 significant digits', () => {
    const live = new LiveLatency();
    expect(live.p(50)).toBeNull();
    for (let us = 1; us <= 10_000; us++) live.record(us * 1000);
    expect(live.count).toBe(10_000);
    expect(Math.abs(live.p(50)! - 5_000_000) / 5_000_000).toBeLessThan(0.002);
    expect(Math.abs(live.p(99)! - 9_900_000) / 9_900_000).toBeLessThan(0.002);
  });

  it('clamps out-of-range values, ignores NaN and resets', () => {
    const live = new LiveLatency();
    live.record(-5);
    live.record(1e20);
    live.record(Number.NaN);
    expect(live.count).toBe(2);
    expect(live.p(0)).toBe(0);
    expect(live.p(100)!).toBeLessThanOrEqual(3_600e9 * 1.001);
    expect(live.p(100)!).toBeGreaterThan(3_500e9);
    expect(() => live.p(101)).toThrow(RangeError);
    live.reset();
    expect(live.count).toBe(0);
    expect(live.p(50)).toBeNull();
  });
});

describe('deadlineMisses', () => {
  it('counts late completions and requests that never completed', () => {
    const d = deadlineMisses([5 * MS, 15 * MS, 10 * MS], 5, 10 * MS);
    // 15 ms is late, 10 ms is on time, 2 never completed
    expect(d).toEqual({ ms: 10, missed: 3, total: 5, ratio: 0.6 });
    expect(deadlineMisses([], 0, MS)).toEqual({ ms: 1, missed: 0, total: 0, ratio: 0 });
    expect(deadlineMisses([], 4, MS)).toEqual({ ms: 1, missed: 4, total: 4, ratio: 1 });
  });

  it('rejects bad inputs', () => {
    expect(() => deadlineMisses([1, 2], 1, MS)).toThrow(/2 requests completed but only 1/);
    expect(() => deadlineMisses([1], 1, 0)).toThrow(RangeError);
    expect(() => deadlineMisses([1], -1, MS)).toThrow(RangeError);
    expect(() => deadlineMisses([-1], 1, MS)).toThrow(RangeError);
    expect(() => deadlineMisses([Number.NaN], 1, MS)).toThrow(RangeError);
  });
});

describe('sloVerdicts', () => {
  const big = summarizeLatencyMs(msRange(2000));
  const ctx = (latency: LatencySummaryMs, throughputShare: number | null = null) => ({ latency, throughputShare, deadline: null });

  it('judges a percentile bound with value, CI and n', () => {
    const [ok] = sloVerdicts({ percentile: 99, below: 1995 * MS }, ctx(big));
    expect(ok.text).toBe('P99 < 1995 ms');
    expect(ok.pass).toBe(true);
    expect(ok.detail).toMatch(/^P99 1980 ms \(CI \d+-\d+ ms, n=2000\)$/);
    const [close] = sloVerdicts({ percentile: 99, below: 1985 * MS }, ctx(big));
    expect(close.pass).toBe(true);
    expect(close.detail).toMatch(/the bound lies inside the CI$/);
    const [bad] = sloVerdicts({ percentile: 50, below: 100 * MS }, ctx(big));
    expect(bad).toEqual({ text: 'P50 < 100 ms', pass: false, detail: 'P50 1000 ms (n=2000)' });
    // strict: a P99 equal to the bound fails
    expect(sloVerdicts({ percentile: 99, below: 1980 * MS }, ctx(big))[0].pass).toBe(false);
  });

  it('gives null when the sample cannot support the percentile', () => {
    const [v] = sloVerdicts({ percentile: 99.9, below: 50 * MS }, ctx(summarizeLatencyMs(msRange(100))));
    expect(v.text).toBe('P99.9 < 50 ms');
    expect(v.pass).toBeNull();
    expect(v.detail).toMatch(/^not enough samples for P99\.9 \(n=100/);
    const [empty] = sloVerdicts({ percentile: 50, below: 50 * MS }, ctx(summarizeLatencyMs([])));
    expect(empty.pass).toBeNull();
    expect(empty.detail).toMatch(/n=0/);
  });

  it('gives null for a percentile that is not reported', () => {
    const [v] = sloVerdicts({ percentile: 97, below: 50 * MS }, ctx(big));
    expect(v).toEqual({ text: 'P97 < 50 ms', pass: null, detail: 'P97 is not among the reported percentiles (50, 90, 95, 99, 99.9)' });
  });

  it('judges deadline misses and throughput share', () => {
    const deadline = deadlineMisses([5 * MS, 15 * MS], 2, 10 * MS);
    const vs = sloVerdicts({ maxMissRatio: 0.01, minThroughputShare: 0.3 }, { latency: big, throughputShare: 0.45, deadline });
    expect(vs).toHaveLength(2);
    expect(vs[0]).toMatchObject({ text: 'deadline misses <= 1%', pass: false });
    expect(vs[0].detail).toBe('1 of 2 missed the 10 ms deadline (50%)');
    expect(vs[1]).toEqual({ text: 'throughput >= 30% of standalone', pass: true, detail: 'throughput 45% of standalone' });
  });

  it('gives null without a deadline or in a standalone phase', () => {
    const vs = sloVerdicts({ maxMissRatio: 0, minThroughputShare: 0.3 }, ctx(big));
    expect(vs[0].pass).toBeNull();
    expect(vs[0].detail).toMatch(/no deadline/);
    expect(vs[1]).toMatchObject({ pass: null, detail: 'standalone phase' });
    expect(sloVerdicts({}, ctx(big))).toEqual([]);
  });
});

describe('taskResult', () => {
  const frames = task({ name: 'frames', priority: 10, arrival: { kind: 'frames', fps: 100 }, probe: { kernel: '2ms' }, slo: { percentile: 99, below: '995ms', maxMissRatio: 0.5, minThroughputShare: '30%' } });
  const batch = task({ name: 'batch', priority: 0, arrival: { kind: 'closed-loop' }, probe: { kernel: '20ms' } });

  it('summarises one standalone phase', () => {
    const r = taskResult(samples('frames', msRange(1000), { issued: 1010, errors: 10, error: 'boom' }), frames, { workload: 'cpu spin 2ms' });
    expect(r.name).toBe('frames');
    expect(r.priority).toBe(10);
    expect(r.workload).toBe('cpu spin 2ms');
    expect(r.requests).toEqual({ issued: 1010, completed: 1000, errors: 10, censored: 0 });
    expect(r.throughput).toBe(100);
    expect(r.throughputShare).toBeNull();
    expect(r.slowdownP99).toBeNull();
    // 10 ms deadline (100 fps): 990 completions above it, 10 never completed
    expect(r.deadline).toEqual({ ms: 10, missed: 1000, total: 1010, ratio: 1000 / 1010 });
    expect(r.busyShare).toBeCloseTo(0.1, 12);
    expect(r.latencyMs.p99).toBe(990);
    expect(r.cdf.length).toBe(200);
    expect(r.error).toBe('boom');
    expect(r.slo.map((v) => v.pass)).toEqual([true, false, null]);
    expect(r.slo[2].detail).toBe('standalone phase');
  });

  it('compares a co-run with its standalone result', () => {
    const alone = taskResult(samples('frames', msRange(1000)), frames, { workload: 'w' });
    const slower = Float64Array.from(msRange(500), (v) => v * 2);
    const co = taskResult(samples('frames', slower, { issued: 1000 }), frames, { workload: 'w', standalone: alone });
    expect(co.throughputShare).toBeCloseTo(0.5, 12);
    expect(co.slowdownP99).toBeCloseTo(990 / 990, 12); // P99 of 2..1000 even ms = 990
    expect(co.slo[2]).toMatchObject({ pass: true, detail: 'throughput 50% of standalone' });
    expect(co.error).toBeUndefined();
  });

  it('words a missing share by phase and has no deadline for closed loops', () => {
    const r = taskResult(samples('frames', msRange(10)), frames, { workload: 'w', standalone: null, phase: 'corun' });
    expect(r.slo[2].detail).toBe('no standalone result to compare with');
    const zero = taskResult(samples('frames', [], { issued: 0 }), frames, { workload: 'w' });
    const co = taskResult(samples('frames', msRange(10)), frames, { workload: 'w', standalone: zero });
    expect(co.throughputShare).toBeNull();
    expect(co.slowdownP99).toBeNull();
    expect(co.slo[2].detail).toMatch(/standalone throughput is 0/);
    const b = taskResult(samples('batch', msRange(10)), batch, { workload: 'w' });
    expect(b.deadline).toBeNull();
    expect(b.slo).toEqual([]);
  });

  it('handles empty samples and rejects mismatched or bad ones', () => {
    const r = taskResult(samples('batch', [], { issued: 0, measuredNs: 0 }), batch, { workload: 'w' });
    expect(r).toMatchObject({ throughput: 0, busyShare: 0, cdf: [] });
    expect(r.latencyMs.n).toBe(0);
    expect(() => taskResult(samples('other', [MS]), batch, { workload: 'w' })).toThrow(RangeError);
    expect(() => taskResult(samples('batch', [MS], { measuredNs: Number.NaN }), batch, { workload: 'w' })).toThrow(RangeError);
    expect(() => taskResult(samples('batch', [Number.NaN]), batch, { workload: 'w' })).toThrow(RangeError);
  });
});

describe('priorityWeights and phaseFairness', () => {
  it('ranks distinct priorities from 1 upwards', () => {
    expect(priorityWeights([10, -5, 10, 0])).toEqual([3, 1, 3, 2]);
    expect(priorityWeights([7])).toEqual([1]);
    expect(priorityWeights([])).toEqual([]);
    expect(() => priorityWeights([1, Number.NaN])).toThrow(RangeError);
  });

  const tr = (name: string, priority: number, throughputShare: number | null): TaskResult => ({
    ...taskResult(samples(name, msRange(10)), task({ name, priority, arrival: { kind: 'closed-loop' }, probe: { kernel: '1ms' } }), { workload: 'w' }),
    throughputShare,
  });

  it('is Jain over priority-weighted shares', () => {
    expect(phaseFairness([tr('hi', 5, 0.8), tr('lo', 1, 0.4)])).toBeCloseTo(1, 12);
    expect(phaseFairness([tr('a', 0, 0.5), tr('b', 0, 0.5)])).toBeCloseTo(1, 12);
    expect(phaseFairness([tr('a', 0, 1), tr('b', 0, 0)])).toBeCloseTo(0.5, 12);
  });

  it('is null with fewer than 2 tasks, an unknown share or all zeros', () => {
    expect(phaseFairness([tr('a', 0, 0.5)])).toBeNull();
    expect(phaseFairness([tr('a', 0, 0.5), tr('b', 0, null)])).toBeNull();
    expect(phaseFairness([tr('a', 0, 0), tr('b', 1, 0)])).toBeNull();
  });
});

describe('successVerdicts', () => {
  const hp = task({ name: 'resnet18', priority: 10, arrival: { kind: 'frames', fps: 50 }, probe: { kernel: '1ms' } });
  const lp = task({ name: 'resnet50', priority: 0, arrival: { kind: 'closed-loop' }, probe: { kernel: '10ms' } });
  const standHp = taskResult(samples('resnet18', msRange(1000)), hp, { workload: 'w' });
  const standLp = taskResult(samples('resnet50', msRange(1000)), lp, { workload: 'w' });

  /** a phase where resnet18's latencies are 1..1000 ms scaled by `scale`, resnet50 completes `lpDone` requests */
  function phase(name: string, scale: number, lpDone: number, extra: Partial<PhaseResult> = {}): PhaseResult {
    const tasks = [
      taskResult(samples('resnet18', Float64Array.from(msRange(1000), (v) => v * scale)), hp, { workload: 'w', standalone: standHp }),
      taskResult(samples('resnet50', msRange(lpDone)), lp, { workload: 'w', standalone: standLp }),
    ];
    return {
      name,
      kind: 'corun',
      mechanism: name.split(':')[1],
      status: 'ok',
      measuredS: 10,
      tasks,
      utilisation: { value: null, source: 'unavailable', reason: 'no NVML' },
      fairness: phaseFairness(tasks),
      notes: [],
      ...extra,
    };
  }

  const phases: PhaseResult[] = [
    { ...phase('standalone:resnet18', 0.001, 1000), kind: 'standalone' }, // ignored: not a co-run
    phase('corun:none', 0.05, 200, { utilisation: { value: 0.97, source: 'nvml' } }), // P99 49.5 ms, LP share 20%
    phase('corun:throttle', 0.02, 400, { utilisation: { value: 0.85, source: 'busy-time' } }), // P99 19.8 ms, share 40%
    phase('corun:gate', 0.001, 1000, { status: 'failed' }), // ignored: failed
    phase('corun:stream-priority', 0.04, 300, { status: 'partial' }), // P99 39.6 ms, share 30%
  ];

  it('passes a row met by at least one phase and names the best one', () => {
    const [v] = successVerdicts([row({ task: 'resnet18', metric: 'p99', below: '30ms' })], phases);
    expect(v.row).toBe('resnet18 P99 < 30 ms');
    expect(v.phases.map((p) => p.phase)).toEqual(['corun:none', 'corun:throttle', 'corun:stream-priority']);
    expect(v.phases.map((p) => p.pass)).toEqual([false, true, false]);
    expect(v.phases[1].value).toBeCloseTo(19.8, 9);
    expect(v.pass).toBe(true);
    expect(v.best).toBe('corun:throttle');
  });

  it('fails a row no phase meets, still naming the best phase', () => {
    const [v] = successVerdicts([row({ task: 'resnet50', metric: 'throughputShare', above: '50%' })], phases);
    expect(v.row).toBe('resnet50 throughput share > 50%');
    expect(v.phases.map((p) => p.value)).toEqual([0.2, 0.4, 0.3]);
    expect(v.pass).toBe(false);
    expect(v.best).toBe('corun:throttle');
  });

  it('takes a bare-number share bound as a share', () => {
    const r = row({ task: 'resnet50', metric: 'throughputShare', above: 0.3 });
    const [v] = successVerdicts([r], phases);
    expect(v.row).toBe('resnet50 throughput share > 30%');
    expect(v.phases.map((p) => p.pass)).toEqual([false, true, false]);
  });

  it('cannot judge a share bound outside 0..1', () => {
    const [v] = successVerdicts([{ task: 'resnet50', metric: 'throughputShare', below: undefined, above: 3 }], phases);
    expect(v.pass).toBeNull();
    expect(v.phases[0].detail).toMatch(/^bound 3 is not a share/);
  });

  it('gives null when no phase can judge the row', () => {
    const [p999, missing] = successVerdicts(
      [row({ task: 'resnet18', metric: 'p999', below: '1s' }), row({ task: 'nope', metric: 'p50', below: '1s' })],
      phases,
    );
    expect(p999.pass).toBe(true); // n = 1000 supports P99.9; with n = 100 below it does not
    expect(missing.pass).toBeNull();
    expect(missing.best).toBeNull();
    expect(missing.phases[0].detail).toMatch(/has no result/);
    const small = phases.map((ph) => ({ ...ph, tasks: ph.tasks.map((t) => ({ ...t, latencyMs: summarizeLatencyMs(msRange(100)) })) }));
    const [v] = successVerdicts([row({ task: 'resnet18', metric: 'p999', below: '1s' })], small);
    expect(v.pass).toBeNull();
    expect(v.best).toBeNull();
    expect(v.phases.every((p) => p.pass === null && /not enough samples for P99\.9 \(n=100/.test(p.detail))).toBe(true);
    expect(successVerdicts([row({ task: 'resnet18', metric: 'p99', below: '1s' })], [phases[0]])[0]).toMatchObject({ phases: [], pass: null, best: null });
  });

  it('judges utilisation where it is known and miss ratios', () => {
    const [util, miss0, miss, labelled] = successVerdicts(
      [
        row({ metric: 'utilisation', above: '90%' }),
        row({ task: 'resnet18', metric: 'missRatio', below: '0%' }),
        row({ task: 'resnet18', metric: 'missRatio', below: '99.5%' }),
        row({ label: 'HP keeps its frames', task: 'resnet18', metric: 'missRatio', below: '1%' }),
      ],
      phases,
    );
    expect(util.row).toBe('GPU utilisation > 90%');
    expect(util.phases.map((p) => p.pass)).toEqual([true, false, null]);
    expect(util.phases[2].detail).toBe('utilisation unavailable: no NVML');
    expect(util).toMatchObject({ pass: true, best: 'corun:none' });
    // 20 ms deadline (50 fps): corun:throttle has latencies 0.02..20 ms, none above it (20 ms is on time)
    expect(miss0.row).toBe('resnet18 missRatio = 0%');
    expect(miss0.phases.map((p) => p.value)).toEqual([0.6, 0, 0.5]);
    expect(miss0.phases.map((p) => p.pass)).toEqual([false, true, false]);
    expect(miss.row).toBe('resnet18 missRatio < 99.5%');
    expect(miss.phases[1]).toMatchObject({ value: 0, pass: true });
    expect(miss.best).toBe('corun:throttle');
    expect(labelled.row).toBe('HP keeps its frames');
  });
});

describe('sample sizes', () => {
  it('how many samples a percentile needs for a 95% CI, and which value it is below that', () => {
    expect([50, 90, 95, 99, 99.9].map(minSamplesForCi)).toEqual([6, 36, 72, 368, 5662]);
    expect(summarizeLatencyMs(msRange(367)).ci99).toBeNull();
    expect(summarizeLatencyMs(msRange(368)).ci99).not.toBeNull();
    expect(rankFromTop(105, 99)).toBe(2);
    expect(rankFromTop(220, 99)).toBe(3);
    expect(rankFromTop(50, 99)).toBe(1);
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal)).toEqual(['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '101st']);
    expect(percentileSampleSize(105).text).toBe('n=105: P99 is the 2nd largest value, no CI (a CI needs n >= 368)');
    expect(percentileSampleSize(50).text).toBe('n=50: P99 is the largest value, no CI (a CI needs n >= 368)');
    expect(percentileSampleSize(400)).toMatchObject({ hasCi: true, text: 'P99 has a 95% CI (n=400)' });
    // the example: 105 requests in 11 s at ~9.5/s, one round: 31 s for 300, 39 s for 368
    expect(secondsForSamples(300, 105 / 11)).toBe(32);
    expect(secondsForSamples(368, 10, 2)).toBe(19);
    expect(secondsForSamples(368, 0)).toBeNull();
  });

  it('disjointBeyond: intervals apart by more than a margin of the larger', () => {
    expect(disjointBeyond([15.1, 15.2], [15.25, 15.35], 0.1)).toBe(false); // apart, but by 0.3%
    expect(disjointBeyond([15.0, 15.3], [840, 870], 0.1)).toBe(true);
    expect(disjointBeyond([840, 870], [15.0, 15.3], 0.1)).toBe(true);
    expect(disjointBeyond([1, 3], [2, 4], 0)).toBe(false);
    expect(disjointBeyond(null, [1, 2], 0)).toBe(false);
  });
});
