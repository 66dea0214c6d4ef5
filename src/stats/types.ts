/**
 * The statistics' own result types. Scenario results (src/scenario/types.ts) are built from them;
 * statistics never import from the scenario layer.
 */

/** Latency summary in milliseconds (what results.json carries). */
export interface LatencySummaryMs {
  n: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number | null;
  /** 95% confidence interval of P99 from order statistics; null when n is too small (or its upper rank is censored) */
  ci99: [number, number] | null;
  /** 95% confidence interval of P50 (absent in results written before rounds existed) */
  ci50?: [number, number] | null;
  /** percentiles the sample cannot support at 95% confidence, e.g. ["p999"] */
  unsupported: string[];
  /** how many of the n values are censored (requests unfinished when the phase stopped waiting, at their age then) */
  censored?: number;
  /**
   * figures that are lower bounds because a censored value ranks at or below them, e.g. ["p99",
   * "p999", "max", "mean"]: the true value is at least this
   */
  censoredAtOrAbove?: string[];
}

export interface SloVerdict {
  /** "P99 < 50 ms", "misses <= 0%", "throughput >= 30% of standalone" */
  text: string;
  pass: boolean | null;
  /** the numbers behind it: "P99 41.2 ms (CI 39.8-44.0 ms, n=1200)" */
  detail: string;
}

/** Requests against a deadline (frames, batch arrivals): not completed counts as missed. */
export interface DeadlineCount {
  ms: number;
  missed: number;
  total: number;
  ratio: number;
}
