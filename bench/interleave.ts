/**
 * Interleaved comparisons for the benches. On a shared, noisy host a ratio of two medians taken
 * minutes apart measures the host, not the code: here every variant runs once per round, in an
 * order that alternates between rounds (A B, then B A, ...), and each round yields one ratio
 * against the baseline variant. What gets reported is the spread of those per-round ratios
 * (min / median / max), so drift shows up as spread instead of as a difference.
 */

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
}

const hr = (): number => Number(process.hrtime.bigint());

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
  }
  return { rounds, order, variants: out };
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
