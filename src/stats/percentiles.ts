/**
 * Honest summary statistics: percentiles are exact order statistics (nearest rank), never
 * interpolated, so every figure is a value that was actually observed; their 95% confidence
 * intervals come from the binomial distribution of ranks (distribution-free); a figure that the
 * sample size cannot support says so in `caveats`.
 */

export interface Distribution {
  n: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  p50: number | null;
  p99: number | null;
  /** 95% confidence intervals [lower, upper] of p50/p99 (observed values); null when n is too small */
  p50ci: [number, number] | null;
  p99ci: [number, number] | null;
  /** what n cannot support, e.g. "p99 needs >= 100 samples, have 37 (p99 = max)" */
  caveats: string[];
}

export const PERCENTILE_RULE =
  'percentiles are exact order statistics by nearest rank (value of rank ceil(p*n)); 95% CIs are the order statistics whose ranks bound the binomial(n, p) central 95% (exact for n <= 1000, normal approximation above); a pN needs n >= 1/(1-N/100) samples (p99: 100) to differ from the maximum';

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function nearestRank(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[nearestRankIndex(p, sorted.length) - 1];
}

/** Smallest sample size for which a p-quantile is not simply the maximum. */
export function minSamplesFor(p: number): number {
  return Math.ceil(1 / (1 - p / 100) - 1e-9);
}

/**
 * Binomial(n, q) CDF at every k (exact; n <= 1000). The pmf is carried in logs: (1-q)^n alone
 * underflows to 0 for q = 0.99 once n > ~160, which would zero the whole CDF.
 */
function binomialCdf(n: number, q: number): number[] {
  const cdf: number[] = new Array(n + 1);
  let lp = n * Math.log1p(-q);
  const step = Math.log(q) - Math.log1p(-q);
  let acc = 0;
  for (let k = 0; k <= n; k++) {
    acc += Math.exp(lp);
    cdf[k] = acc;
    lp += Math.log((n - k) / (k + 1)) + step;
  }
  return cdf;
}

/** ceil(p/100 * n) without float noise (0.999 * 1000 = 999.0000000000001 must be rank 999). */
function nearestRankIndex(p: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil((p / 100) * n - 1e-9)));
}

/** 1-based ranks [r, s] with P(r <= B < s) >= 95%, B ~ binomial(n, q); null when a bound falls outside 1..n. */
export function confidenceRanks(n: number, q: number): [number, number] | null {
  if (n < 2 || q <= 0 || q >= 1) return null;
  let r: number;
  let s: number;
  if (n <= 1000) {
    const cdf = binomialCdf(n, q);
    // r: largest with P(B <= r-1) <= 2.5%; s: smallest with P(B <= s-1) >= 97.5%
    r = 0;
    while (r < n && cdf[r] <= 0.025) r++;
    s = 1;
    while (s <= n && cdf[s - 1] < 0.975) s++;
  } else {
    const sd = Math.sqrt(n * q * (1 - q));
    r = Math.floor(n * q - 1.96 * sd);
    s = Math.ceil(n * q + 1.96 * sd) + 1;
  }
  if (r < 1 || s > n) return null;
  return [r, s];
}

function ci(sorted: readonly number[], p: number): [number, number] | null {
  const ranks = confidenceRanks(sorted.length, p / 100);
  return ranks ? [sorted[ranks[0] - 1], sorted[ranks[1] - 1]] : null;
}

/** min/max/mean, p50/p99 with confidence intervals and caveats of a list of measurements. */
export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const caveats: string[] = [];
  if (n === 0) caveats.push('no samples');
  for (const p of [50, 99]) {
    const need = minSamplesFor(p);
    if (n > 0 && n < need) caveats.push(`p${p} needs >= ${need} samples, have ${n} (p${p} = max)`);
  }
  if (n > 0 && !confidenceRanks(n, 0.99)) caveats.push(`too few samples (${n}) for a 95% confidence interval of p99`);
  return {
    n,
    min: n ? sorted[0] : null,
    max: n ? sorted[n - 1] : null,
    mean: n ? sorted.reduce((a, b) => a + b, 0) / n : null,
    p50: nearestRank(sorted, 50),
    p99: nearestRank(sorted, 99),
    p50ci: ci(sorted, 50),
    p99ci: ci(sorted, 99),
    caveats,
  };
}

export interface CountStats {
  /** samples the figures come from */
  samples: number;
  min: number | null;
  avg: number | null;
  max: number | null;
}

export function countStats(values: readonly number[]): CountStats {
  if (values.length === 0) return { samples: 0, min: null, avg: null, max: null };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { samples: values.length, min, avg: sum / values.length, max };
}


/** One percentile with its 95% confidence interval, from an exact order statistic. */
export interface Quantile {
  p: number;
  value: number | null;
  /** [lower, upper] observed values bounding the true quantile with 95% confidence; null when n is too small */
  ci: [number, number] | null;
  /** false when n cannot tell this quantile from the maximum (n < 1/(1-p)) */
  supported: boolean;
}

/** Latency-style summary: the asked percentiles (default P50/P90/P99/P99.9), min/max/mean, caveats. */
export interface QuantileSummary {
  n: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  quantiles: Quantile[];
  caveats: string[];
}

export function quantiles(values: ArrayLike<number>, ps: readonly number[] = [50, 90, 99, 99.9]): QuantileSummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const caveats: string[] = [];
  if (n === 0) caveats.push('no samples');
  const qs = ps.map((p) => {
    const supported = n >= minSamplesFor(p);
    if (n > 0 && !supported) caveats.push(`p${p} needs >= ${minSamplesFor(p)} samples, have ${n} (p${p} = max)`);
    const ranks = confidenceRanks(n, p / 100);
    return {
      p,
      value: n ? sorted[nearestRankIndex(p, n) - 1] : null,
      ci: ranks ? ([sorted[ranks[0] - 1], sorted[ranks[1] - 1]] as [number, number]) : null,
      supported,
    };
  });
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, min: n ? sorted[0] : null, max: n ? sorted[n - 1] : null, mean: n ? sum / n : null, quantiles: qs, caveats };
}

/** The value of percentile p in a summary (null if absent). */
export function quantileOf(s: QuantileSummary, p: number): number | null {
  return s.quantiles.find((q) => q.p === p)?.value ?? null;
}
