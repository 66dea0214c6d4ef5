/**
 * A streaming latency summary for the progress display while a run goes: constant memory and
 * O(1) record over an HdrHistogram (3 significant digits, 1 us .. 1 h). Its percentiles are
 * bucketed approximations; reports and results.json use the exact per-request arrays
 * (summarizeLatencyMs), never this.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { outOfRange } from '../errors.js';

/** 1 us in ns: finer resolution is noise for request latencies */
const LOWEST_NS = 1000;
/** 1 hour in ns */
const HIGHEST_NS = 3_600e9;

export class LiveLatency {
  private readonly h: Histogram = build({
    bitBucketSize: 64,
    autoResize: false,
    lowestDiscernibleValue: LOWEST_NS,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  /**
   * Records one latency in ns. Values outside 0..1 h are clamped into range (a display should
   * not throw mid-run); NaN is ignored.
   */
  record(ns: number): void {
    if (Number.isNaN(ns)) return;
    this.h.recordValue(Math.round(Math.min(HIGHEST_NS, Math.max(0, ns))));
  }

  /** latencies recorded since the start or the last reset() */
  get count(): number {
    return this.h.totalCount;
  }

  /** Approximate percentile (0..100) in ns; null before anything is recorded. */
  p(percentile: number): number | null {
    if (!(percentile >= 0 && percentile <= 100)) throw outOfRange(`percentile must be in 0..100 (got ${percentile})`);
    return this.h.totalCount === 0 ? null : this.h.getValueAtPercentile(percentile);
  }

  reset(): void {
    this.h.reset();
  }
}
