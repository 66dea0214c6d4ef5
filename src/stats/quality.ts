/**
 * Whether a measurement can be trusted. A number gpucolo prints that is drift-driven is worse
 * than no number, so every run carries a quality block: a verdict ("ok" or "noisy") and the
 * warnings behind it, each with a code a script can branch on. Verdicts (SLOs, success rows)
 * never pass on a value a warning names: they become inconclusive.
 *
 * The rules here are the ones shared by `run`, `probe priority` and `distributed compare`; a
 * caller adds its own warnings with the same shape.
 */

/** Codes of the warnings gpucolo emits (callers may add their own strings). */
export type QualityCode =
  /** a co-run throughput share above what the task achieved alone (beyond measurement noise) */
  | 'share-above-standalone'
  /** a co-run P99 clearly below the standalone P99: co-location cannot make a task faster */
  | 'faster-than-standalone'
  /** the same standalone measurement disagrees between rounds beyond its own confidence interval */
  | 'standalone-drift'
  /** other processes took CPU time (or the hypervisor stole it) during a measurement */
  | 'host-interference'
  /** other processes used the GPU during a measurement */
  | 'gpu-shared'
  /** arrivals were submitted later than their schedule (the load generator fell behind) */
  | 'arrivals-behind'
  /** too few samples for a percentile a verdict needs */
  | 'too-few-samples'
  /** a repeated measurement (a round of a phase) failed: the pooled figures lack it */
  | 'round-failed'
  | (string & {});

export interface QualityWarning {
  code: QualityCode;
  /** one line, with the numbers */
  message: string;
  phase?: string;
  task?: string;
  /** the round (1-based) of a repeated measurement the warning is about, when it is one round's */
  round?: number;
}

/** Something the run could not check: said, never guessed, and not a warning (the verdict ignores it). */
export interface QualityNote {
  code: string;
  message: string;
  phase?: string;
}

export interface Quality {
  verdict: 'ok' | 'noisy';
  warnings: QualityWarning[];
  /** checks that could not be made on this host (e.g. other processes on an NVIDIA GPU) */
  unknown?: QualityNote[];
}

/**
 * Physical limits of a co-run figure against the same task alone. A share of 1.1 or a slowdown
 * of 0.8 leaves room for measurement noise on a quiet host; beyond them the difference is the
 * host's, not the mechanism's.
 */
export const IMPOSSIBLE = { maxShare: 1.1, minSlowdownP99: 0.8 } as const;

/** Warnings for one task's co-run figures that cannot be physical. */
export function impossibleCorunValues(x: {
  phase: string;
  task: string;
  throughputShare: number | null;
  slowdownP99: number | null;
}): QualityWarning[] {
  const out: QualityWarning[] = [];
  if (x.throughputShare !== null && x.throughputShare > IMPOSSIBLE.maxShare) {
    out.push({
      code: 'share-above-standalone',
      phase: x.phase,
      task: x.task,
      message: `${x.task} in ${x.phase}: throughput ${(x.throughputShare * 100).toFixed(0)}% of standalone (> ${Math.round(IMPOSSIBLE.maxShare * 100)}%): sharing the device cannot add throughput; the host changed between phases`,
    });
  }
  if (x.slowdownP99 !== null && x.slowdownP99 < IMPOSSIBLE.minSlowdownP99) {
    out.push({
      code: 'faster-than-standalone',
      phase: x.phase,
      task: x.task,
      message: `${x.task} in ${x.phase}: P99 ${x.slowdownP99.toFixed(2)}x its standalone P99 (< ${IMPOSSIBLE.minSlowdownP99}): a co-run cannot be faster than the task alone; the host changed between phases`,
    });
  }
  return out;
}

/** Two confidence intervals that do not overlap: the values differ beyond their own noise. */
export function disjoint(a: readonly [number, number] | null, b: readonly [number, number] | null): boolean {
  if (!a || !b) return false;
  return a[1] < b[0] || b[1] < a[0];
}

/**
 * Like disjoint(), with a margin: the gap between the intervals must also exceed `margin` times
 * the higher interval's lower end. Order-statistic CIs of a tight distribution (a median of a
 * 15 ms kernel: [15.10, 15.20] ms) are so narrow that a 1% shift separates them; a margin keeps
 * "beyond noise" to differences that matter.
 */
export function disjointBeyond(a: readonly [number, number] | null, b: readonly [number, number] | null, margin: number): boolean {
  if (!a || !b) return false;
  const [lo, hi] = a[0] <= b[0] ? [a, b] : [b, a];
  return lo[1] < hi[0] && hi[0] - lo[1] > margin * Math.abs(hi[0]);
}

/** "noisy" as soon as there is a warning. */
export function qualityOf(warnings: QualityWarning[]): Quality {
  return { verdict: warnings.length ? 'noisy' : 'ok', warnings };
}

/** Whether a warning names this phase (and task, when given): verdicts on it are inconclusive. */
export function flagged(q: Quality, phase: string, task?: string): QualityWarning | undefined {
  return q.warnings.find((w) => (w.phase === undefined || w.phase === phase) && (task === undefined || w.task === undefined || w.task === task));
}
