/**
 * Interleaved comparisons for the benches. On a shared, noisy host a ratio of two medians taken
 * minutes apart measures the host, not the code: here every variant runs once per round, in an
 * order that alternates between rounds (A B, then B A, ...), and each round yields one ratio
 * against the baseline variant. What gets reported is the spread of those per-round ratios
 * (min / median / max), so drift shows up as spread instead of as a difference.
 *
 * interleave() times calls of synchronous functions (parsers); interleaveRuns() alternates whole
 * runs (a tracer for some seconds, a dispatch run, a subprocess) that each report several figures.
 */
import os from 'node:os';

export interface Variant {
  name: string;
  /** one call = one measured operation */
  fn: () => unknown;
}

export interface InterleaveOptions {
  /** rounds (each variant runs once per round); at least 5 for a claim */
  rounds?: number;
  /** time each variant runs per round, ms (calls are repeated until it is spent) */
  timePerRoundMs?: number;
  /** calls at least per variant and round, whatever the time */
  minCalls?: number;
  /** calls before the first round, per variant, not measured (JIT, caches) */
  warmupCalls?: number;
  /** clock in ns (tests inject one) */
  now?: () => number;
}

export interface VariantRounds {
  name: string;
  /** per round: median ns of one call */
  medianNs: number[];
  /** per round: calls made */
  calls: number[];
}

export interface Interleaved {
  rounds: number;
  /** per round, the order the variants ran in */
  order: string[][];
  variants: VariantRounds[];
  /** per round, the host's 1-minute load average at its end (os.loadavg) */
  load: number[];
}

const hr = (): number => Number(process.hrtime.bigint());
const loadNow = (): number => os.loadavg()[0];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Round r runs the variants forwards when r is even and backwards when r is odd. */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

/** Runs every variant once per round, alternating their order; synchronous functions only. */
export function interleave(variants: readonly Variant[], o: InterleaveOptions = {}): Interleaved {
  const rounds = o.rounds ?? 7;
  const timeNs = (o.timePerRoundMs ?? 300) * 1e6;
  const minCalls = o.minCalls ?? 5;
  const now = o.now ?? hr;
  if (variants.length < 2) throw new Error('interleave: need at least two variants');
  for (const v of variants) for (let i = 0; i < (o.warmupCalls ?? 3); i++) v.fn();
  const out: VariantRounds[] = variants.map((v) => ({ name: v.name, medianNs: [], calls: [] }));
  const order: string[][] = [];
  const load: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const idx = roundOrder(variants.map((_, i) => i), r);
    order.push(idx.map((i) => variants[i].name));
    for (const i of idx) {
      const samples: number[] = [];
      const start = now();
      while (samples.length < minCalls || now() - start < timeNs) {
        const t0 = now();
        variants[i].fn();
        samples.push(now() - t0);
      }
      out[i].medianNs.push(median(samples));
      out[i].calls.push(samples.length);
    }
    load.push(loadNow());
  }
  return { rounds, order, variants: out, load };
}

export interface Spread {
  min: number;
  median: number;
  max: number;
  /** the per-round values it summarises */
  values: number[];
}

export function spread(values: number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0], median: median(s), max: s[s.length - 1], values };
}

/** Per round: time of `slow` / time of `fast` (how many times faster `fast` is), and their spread. */
export function ratioSpread(run: Interleaved, slow: string, fast: string): Spread {
  const a = run.variants.find((v) => v.name === slow);
  const b = run.variants.find((v) => v.name === fast);
  if (!a || !b) throw new Error(`ratioSpread: no variant ${!a ? slow : fast}`);
  return spread(a.medianNs.map((x, r) => x / b.medianNs[r]));
}

/** "8.9x (7.1-9.6x over 7 rounds)" */
export function formatRatio(s: Spread, digits = 1): string {
  return `${s.median.toFixed(digits)}x (${s.min.toFixed(digits)}-${s.max.toFixed(digits)}x over ${s.values.length} rounds)`;
}

/** Median over rounds of a variant's per-round median, ns. */
export function medianNs(run: Interleaved, name: string): Spread {
  const v = run.variants.find((x) => x.name === name);
  if (!v) throw new Error(`medianNs: no variant ${name}`);
  return spread(v.medianNs);
}

/** "1.23 (1.01-1.90)": median (min-max) of a spread, each value through fmt. */
export function formatSpread(s: Spread, fmt: (x: number) => string): string {
  return `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
}

// ------------------------------------------------------------------------------------------------
// Whole runs instead of calls: when one measurement is a run (a tracer for some seconds, a dispatch
// run, a subprocess) that reports several figures, each variant makes one run per round, in the
// same alternating order, and every figure of it is kept per round.

/** A figure of one run: a number, or null when the run could not give it (never averaged in). */
export type Metrics = Record<string, number | null>;

export interface RunVariant<M extends Metrics = Metrics> {
  name: string;
  /** one measured run; round is 0-based (warm-up runs get -1) */
  run: (round: number) => M | Promise<M>;
}

export interface RunsOptions {
  /** rounds (each variant runs once per round); at least 5 for a claim (default 5) */
  rounds?: number;
  /** runs per variant before the first round, not kept (JIT, caches, page cache) */
  warmupRuns?: number;
  /** called after every run (progress lines) */
  onRun?: (round: number, name: string, m: Metrics) => void;
}

export interface InterleavedRuns<M extends Metrics = Metrics> {
  rounds: number;
  /** per round, the order the variants ran in */
  order: string[][];
  /** per variant, its runs in round order */
  variants: { name: string; runs: M[] }[];
  /** per round, the host's 1-minute load average at its end (os.loadavg) */
  load: number[];
}

/** Runs every variant once per round, alternating the order (A B, B A, ...); one run at a time. */
export async function interleaveRuns<M extends Metrics>(variants: readonly RunVariant<M>[], o: RunsOptions = {}): Promise<InterleavedRuns<M>> {
  const rounds = o.rounds ?? 5;
  if (variants.length < 2) throw new Error('interleaveRuns: need at least two variants');
  if (!(rounds >= 1)) throw new Error('interleaveRuns: rounds must be >= 1');
  for (let w = 0; w < (o.warmupRuns ?? 0); w++) for (const v of roundOrder(variants, w)) await v.run(-1);
  const out = variants.map((v) => ({ name: v.name, runs: [] as M[] }));
  const order: string[][] = [];
  const load: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const idx = roundOrder(variants.map((_, i) => i), r);
    order.push(idx.map((i) => variants[i].name));
    for (const i of idx) {
      const m = await variants[i].run(r);
      out[i].runs.push(m);
      o.onRun?.(r, variants[i].name, m);
    }
    load.push(loadNow());
  }
  return { rounds, order, variants: out, load };
}

function runsOf<M extends Metrics>(run: InterleavedRuns<M>, name: string): M[] {
  const v = run.variants.find((x) => x.name === name);
  if (!v) throw new Error(`no variant ${name}`);
  return v.runs;
}

/** One figure of one variant over the rounds (rounds where it is null or NaN left out); null if none has it. */
export function metricSpread<M extends Metrics>(run: InterleavedRuns<M>, name: string, metric: keyof M & string): Spread | null {
  const values = runsOf(run, name)
    .map((m): unknown => m[metric])
    .filter((x): x is number => typeof x === 'number' && !Number.isNaN(x));
  return values.length ? spread(values) : null;
}

/**
 * Per round: combine(figure of `num`, figure of `den`) from the runs of that round, and the spread
 * of the results; rounds where either figure is missing or NaN, or combine gives null, are left
 * out; null if no round is left.
 */
function perRound<M extends Metrics>(run: InterleavedRuns<M>, num: string, numMetric: keyof M & string, den: string, denMetric: keyof M & string, combine: (x: number, y: number) => number | null): Spread | null {
  const a = runsOf(run, num);
  const b = runsOf(run, den);
  const values: number[] = [];
  for (let r = 0; r < a.length; r++) {
    const x: unknown = a[r][numMetric];
    const y: unknown = b[r][denMetric];
    if (typeof x !== 'number' || typeof y !== 'number' || Number.isNaN(x) || Number.isNaN(y)) continue;
    const v = combine(x, y);
    if (v !== null) values.push(v);
  }
  return values.length ? spread(values) : null;
}

/**
 * Per round: figure of `num` / figure of `den` in that round (what the round measured, both runs
 * side by side), and the spread of those ratios; rounds where either is missing, NaN, or the
 * denominator is 0 are left out; null if no round is left.
 */
export function metricRatio<M extends Metrics>(run: InterleavedRuns<M>, metric: keyof M & string, num: string, den: string): Spread | null {
  return perRound(run, num, metric, den, metric, (x, y) => (y === 0 ? null : x / y));
}

/**
 * Per round: `metric` of `num` minus `denMetric` of `den` in that round (e.g. the tracer's own
 * work minus what bare wake-ups cost on the same host minutes), and the spread of those
 * differences; rounds where either is missing or NaN are left out; null if no round is left.
 */
export function metricDifference<M extends Metrics>(run: InterleavedRuns<M>, metric: keyof M & string, num: string, den: string, denMetric: keyof M & string = metric): Spread | null {
  return perRound(run, num, metric, den, denMetric, (x, y) => x - y);
}

/** "load 1.9-3.4" over the rounds of a run (1-minute load average at the end of each round). */
export function formatLoad(load: number[]): string {
  if (!load.length) return 'load ?';
  const lo = Math.min(...load);
  const hi = Math.max(...load);
  return lo.toFixed(1) === hi.toFixed(1) ? `load ${lo.toFixed(1)}` : `load ${lo.toFixed(1)}-${hi.toFixed(1)}`;
}
