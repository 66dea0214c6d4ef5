import type { HostLoad, Quality, RoundSpread } from '../stats/index.js';

/**
 * The contract between the scenario drivers (probe: the dispatch engine, native or pure-TS;
 * torch: model workers), the statistics and the reports.
 *
 *   driver -> TaskSamples (raw per-request arrays of one phase)
 *   stats  -> TaskResult  (summaries, SLO verdicts)       -> PhaseResult -> Results (results.json)
 *   report -> report.md + charts from Results alone
 */

/** What a driver measured for one task in one phase (measured part only, warm-up excluded). */
export interface TaskSamples {
  task: string;
  /** requests whose intended arrival fell in the measured window */
  issued: number;
  /** completion - intended arrival, ns, one per completed request (no coordinated omission) */
  latencyNs: Float64Array;
  /** device (or worker) start - intended arrival, ns; empty when the driver cannot tell */
  startDelayNs: Float64Array;
  /** busy time per request on the device (kernel or model time), ns */
  serviceNs: Float64Array;
  /** requests that failed */
  errors: number;
  /** the first error, one line */
  error?: string;
  /** measured window, ns */
  measuredNs: number;
  /**
   * requests issued in the measured window that had not completed when the driver stopped waiting
   * (the phase end plus its drain), each at its age then, ns: lower bounds of their latencies
   */
  censoredNs?: Float64Array;
  /** completed requests that finished after the measured window (during the drain): in the latency sample, not in the throughput */
  completedAfterEnd?: number;
  /**
   * scheduled arrivals: how late the load generator sent each request, ns (probe: the engine's
   * submit - the moment it could submit, i.e. max(intended, room in the stream); torch: the send
   * - intended). Empty for closed loops and where the mechanism itself holds requests (throttle's LP side).
   */
  submitLagNs?: Float64Array;
}

export type { LatencySummaryMs, SloVerdict, DeadlineCount } from '../stats/types.js';
import type { DeadlineCount, LatencySummaryMs, SloVerdict } from '../stats/types.js';

export interface TaskResult {
  name: string;
  priority: number;
  /** what this task's workload ran on in this phase */
  workload: string;
  /** issued in the measured window = completed + censored + errors (censored: unfinished when the phase stopped waiting) */
  requests: { issued: number; completed: number; errors: number; censored?: number };
  latencyMs: LatencySummaryMs;
  /** requests completed within the measured window, per second (completions during the drain after it count in latency only) */
  throughput: number;
  /** throughput / standalone throughput (co-run phases) */
  throughputShare: number | null;
  /** co-run P99 / standalone P99 */
  slowdownP99: number | null;
  /** frames/batch arrivals: requests that missed their deadline (not completed counts as missed) */
  deadline: DeadlineCount | null;
  /** share of the measured time the device was busy with this task (sum of service times) */
  busyShare: number;
  slo: SloVerdict[];
  error?: string;
  /** the latency CDF, down-sampled to at most 200 points: [latency ms, fraction <= it] (censored values at their lower bounds) */
  cdf: [number, number][];
  /** spread between rounds: min / median / max of each round's own P99 and throughput (null when no round had one) */
  spread?: { p99: RoundSpread | null; throughput: RoundSpread | null };
  /** scheduled arrivals: how late the load generator sent them, ms (see TaskSamples.submitLagNs); null when not measured */
  submitLagMs?: { n: number; p50: number | null; p99: number | null; max: number | null } | null;
}

/** One task's figures in one round of a phase (results.json phases[].rounds[].tasks[]). */
export interface RoundTask {
  name: string;
  requests: { issued: number; completed: number; censored: number; errors: number };
  n: number;
  p50: number | null;
  p99: number | null;
  ci50: [number, number] | null;
  ci99: [number, number] | null;
  unsupported: string[];
  censoredAtOrAbove: string[];
  throughput: number;
  /** against the same round's standalone run of the task */
  throughputShare: number | null;
  slowdownP99: number | null;
  submitLagMs: TaskResult['submitLagMs'];
}

/** One run of a phase: a round (or an extension run that made up --min-samples). */
export interface PhaseRound {
  /** 1-based */
  round: number;
  /** 0-based place in that round's order (rotated every round) */
  position: number;
  /** an extra run of the phase after its rounds, to reach --min-samples for a closed-loop task */
  extension?: boolean;
  status: PhaseStatus;
  reason?: string;
  startedAt: string;
  measuredS: number;
  /** what other processes took from the host during the run (/proc/stat); null where unknown */
  host: HostLoad | null;
  tasks: RoundTask[];
}

export type PhaseStatus = 'ok' | 'failed' | 'partial' | 'skipped';

export interface PhaseResult {
  /** `standalone:<task>`, `corun:none`, `corun:<mechanism>` */
  name: string;
  kind: 'standalone' | 'corun';
  mechanism: string;
  status: PhaseStatus;
  /** why failed/skipped/partial, one line */
  reason?: string;
  /** a failed worker's last stderr lines */
  stderrTail?: string[];
  measuredS: number;
  tasks: TaskResult[];
  /** device utilisation over the measured window and where it came from */
  utilisation: { value: number | null; source: 'nvml' | 'rocm-smi' | 'amdgpu-sysfs' | 'busy-time' | 'unavailable'; reason?: string; busyTime?: number | null };
  /** Jain's index over priority-weighted throughput shares (co-runs with >= 2 tasks) */
  fairness: number | null;
  /** what the mechanism did, e.g. "HP stream priority -1, LP 0", "LP gated 1234 times" */
  notes: string[];
  /** every run of the phase, in round order: the figures above pool them */
  rounds?: PhaseRound[];
}

export interface SuccessVerdict {
  /** the row as written: "resnet18 P99 < 30 ms" */
  row: string;
  /** per co-run phase: the value and pass/fail */
  phases: { phase: string; value: number | null; pass: boolean | null; detail: string }[];
  /** pass in the best phase (the row is met by at least one mechanism) */
  pass: boolean | null;
  best: string | null;
  /** pass is null because quality warnings (or censored lower bounds) left every phase undecided: why */
  inconclusive?: string;
  /**
   * the design notes' reference columns, shown beside the mechanisms and not counted in `pass`:
   * the task's standalone phase (baseline; null for share/utilisation rows or without it) and
   * native sharing (corun:none, also one of `phases`). Absent in files written before.
   */
  reference?: { standalone: SuccessVerdict['phases'][number] | null; native: SuccessVerdict['phases'][number] | null };
}

/**
 * How long the highest-priority task waits behind lower-priority work in each co-run phase: the
 * P99 added to its standalone P99 (a difference of percentiles, ms) and that time in LP kernels.
 */
export interface PreemptionLatency {
  hpTask: string;
  lpTasks: string[];
  /** the HP task's standalone P99, ms; null without a usable standalone phase */
  standaloneP99Ms: number | null;
  /** the longest LP kernel, ms (probe form: the LP task's standalone P50 / kernels per request); null in the torch form */
  lpKernelMs: number | null;
  lpKernelSource: string;
  phases: {
    phase: string;
    p99Ms: number | null;
    /** co-run P99 - standalone P99, ms */
    addedP99Ms: number | null;
    /** addedP99Ms / lpKernelMs */
    lpKernels: number | null;
    detail: string;
    /** a quality warning (or too small a sample) leaves the figure undecided: why */
    inconclusive?: string;
  }[];
}

export const RESULTS_SCHEMA = 'gpucolo.results/1';

export interface Results {
  schema: typeof RESULTS_SCHEMA;
  gpucoloVersion: string;
  createdAt: string;
  /** the run stopped early (Ctrl-C, a fatal error): phases after that are missing or partial */
  partial: boolean;
  scenario: { name: string; source: string; form: 'probe' | 'torch'; config: unknown };
  host: { hostname: string; os: string; cpus: number; node: string; python?: string; torch?: string };
  backend: {
    name: string;
    device: string | null;
    gpu: string | null;
    why: string;
    /** probe form: the dispatch engine that timed the launches ('ts': the pure-TS cpu backend); absent for the torch form */
    engine?: 'native' | 'ts';
    /** why that engine, one line */
    engineWhy?: string;
    /** what the engine means for the numbers (set for the pure-TS engine) */
    note?: string;
  };
  phases: PhaseResult[];
  success: SuccessVerdict[];
  /** rounds every phase ran (the order rotated each round); absent in files written before rounds existed */
  rounds?: number;
  /** --min-samples: the pooled sample each task was to reach; null when not asked */
  minSamples?: number | null;
  /** whether the figures can be trusted: verdict ok | noisy and the warnings behind it */
  quality?: Quality;
  /** the HP task's wait behind LP work per co-run phase; absent with one priority level or in files written before */
  preemption?: PreemptionLatency | null;
}
