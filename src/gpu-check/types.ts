/**
 * `npm run gpu-check` (scripts/gpu-check.sh -> dist/gpu-check/cli.js): the one-command check a GPU
 * host runs (issue 15, "The GPU check"). It drives the gpucolo CLI (doctor, probe latency, probe
 * priority, run) and the C++ floor (build-cc/gpucolo_floor), keeps every raw output, and judges
 * them against the expectations in expectations.ts.
 *
 *   runner.ts       runs the steps, records each as a Step (argv, exit code, parsed JSON) in an
 *                   Observations object (raw/observations.json: what --replay reads back)
 *   expectations.ts pure functions: Observations -> CheckResult[]
 *   summary.ts      CheckResult[] -> summary.json, the exit code and the text on screen
 */
import type { DoctorReport } from '../doctor.js';
import type { LatencyProbeResult, PriorityProbeResult } from '../dispatch/index.js';
import type { Results } from '../scenario/types.js';

export type Backend = 'cpu' | 'cuda' | 'hip';

/** One invocation of the CLI (or of gpucolo_floor), as run and as read back. */
export interface Step<T = unknown> {
  name: string;
  /** what ran (argv[0] is the program); empty when the step was skipped */
  argv: string[];
  /** process exit code; null when it was killed (timeout) or never ran */
  exitCode: number | null;
  /** the signal that ended it (a timeout sends SIGTERM, then SIGKILL) */
  signal?: string | null;
  timedOut?: boolean;
  elapsedS: number;
  /** the last lines of its stderr */
  stderrTail: string[];
  /** parsed output (stdout JSON, or the results.json it wrote); null when there was none */
  json: T | null;
  /** why json is null although the step ran */
  parseError?: string;
  /** why the step did not run */
  skipped?: string;
  /** where the raw output lies, relative to the summary's directory */
  file?: string;
}

/** gpucolo_floor's JSON line (native/tests/floor.cc). */
export interface FloorResult {
  backend: string;
  device?: string;
  mode?: string;
  n?: number;
  p50_ns?: number;
  p99_ns?: number;
  mean_ns?: number;
  min_ns?: number;
  max_ns?: number;
  error?: string;
}

/** One round of the JS-visible round trip against the C++ floor, run interleaved. */
export interface LatencyRound {
  round: number;
  /** 'floor-first' or 'engine-first' (alternated, so drift on the host reaches both alike) */
  order: 'floor-first' | 'engine-first';
  engine: Step<LatencyProbeResult>;
  floor: Step<FloorResult> | null;
}

/** The LP kernel size the priority probe was given so that it fills the device. */
export interface FillPlan {
  lpBlocks: number;
  threadsPerBlock: number;
  computeUnits: number;
  /** resident blocks of threadsPerBlock per compute unit (occupancy API as doctor reports it); null = unknown */
  blocksPerCu: number | null;
  /** where blocksPerCu came from */
  source: string;
}

export interface PriorityPlan {
  mechanisms: string[];
  lpKernelNs: number;
  hpKernelNs: number;
  reserve: number;
  throttleK: number;
  /** what --lp-blocks was given: 'fill' where the CLI sizes LP kernels itself (per variant, as made), else a number from `fill` */
  lpBlocksArg: string | null;
  /** the device fill computed here from doctor's occupancy (used when the CLI has no --lp-blocks fill) */
  fill: FillPlan | null;
  /** when the run with every mechanism failed outright and a second run took only the supported ones */
  retriedWith?: string[];
  /** how that first run failed */
  firstAttempt?: string;
}

export type RunForm = 'torch' | 'torch-in-process' | 'probe';

export interface RunObservation {
  form: RunForm;
  /** the CLI arguments that select the form (e.g. ['--form', 'torch']) */
  formArgs: string[];
  step: Step<Results>;
}

/** Everything the checks judge: what runner.ts recorded (raw/observations.json). */
export interface Observations {
  schema: 'gpucolo.gpu-check-observations/1';
  gpucoloVersion: string;
  createdAt: string;
  host: { hostname: string; platform: string; arch: string; node: string };
  /** --backend as given (auto, cpu, cuda, hip) */
  requestedBackend: 'auto' | Backend;
  /** the backend the checks ran on; null when none could be chosen */
  backend: Backend | null;
  backendWhy: string;
  /**
   * judge timing expectations (GPU backends; on cpu only with --judge-cpu-timings). Otherwise a
   * timing check records its value with pass null and says why.
   */
  judgeTimings: boolean;
  /** the whole run may take this long (s); the budget check compares elapsedS with it on a GPU */
  budgetS: number;
  elapsedS: number;
  /** why the measurement steps after doctor did not run (no usable backend, interrupted) */
  stoppedEarly?: string;
  doctor: Step<DoctorReport>;
  latency: { rounds: LatencyRound[]; floorSkipped?: string; floorBinary?: string; floorTarget?: string };
  spin: Step<LatencyProbeResult> | null;
  priority: { plan: PriorityPlan | null; step: Step<PriorityProbeResult> | null };
  /** hip: probe priority --kfd-priority (null elsewhere or when skipped: kfdSkipped says why) */
  kfd: { step: Step<PriorityProbeResult> | null; priority: number | null; skipped?: string; note?: string };
  runs: RunObservation[];
  /** forms not run, with why (e.g. no in-process option in this CLI) */
  runsSkipped: { form: RunForm; reason: string }[];
}

/** One judged expectation. */
export interface CheckResult {
  /** dotted: doctor.backend, latency.spin-1ms, priority.sm-partition.hp-p99, run.torch.phases */
  name: string;
  /** what was expected, in words with the numbers */
  expectation: string;
  /** what was measured (a number, a string or an object of figures); null when nothing was */
  measured: unknown;
  unit?: string;
  /** true met, false failed, null not judged (skipped, or informational) */
  pass: boolean | null;
  /** why it failed or was not judged, or what qualifies the value */
  reason?: string;
  /**
   * 'info': a figure recorded for the report, never judged; 'not-applicable': an expectation for
   * another backend or a mechanism this device lacks (doctor says so). Neither counts as skipped.
   * Absent: an expectation (pass null = skipped, with the reason).
   */
  kind?: 'expectation' | 'info' | 'not-applicable';
}

export interface GpuCheckSummary {
  schema: 'gpucolo.gpu-check/1';
  gpucoloVersion: string;
  createdAt: string;
  host: Observations['host'];
  requestedBackend: Observations['requestedBackend'];
  backend: Backend | null;
  backendWhy: string;
  /** the device the checks ran on (doctor's name), when known */
  device: string | null;
  judgeTimings: boolean;
  elapsedS: number;
  /** replayed from an observations file instead of measured now */
  replayedFrom?: string;
  /** exit code of the check: 0 nothing failed, 1 an expectation failed, 3 --strict and something was not judged */
  exitCode: number;
  ok: boolean;
  counts: { total: number; passed: number; failed: number; skipped: number; notApplicable: number; info: number };
  checks: CheckResult[];
  steps: { name: string; argv: string[]; exitCode: number | null; timedOut?: boolean; elapsedS: number; skipped?: string; file?: string; stderrTail?: string[] }[];
  /** the raw outputs and observations.json, relative to the summary */
  rawDir: string;
}
