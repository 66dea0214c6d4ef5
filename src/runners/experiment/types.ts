/**
 * The contract of the training experiment runner (issue 6) between its parts:
 *   config.ts   models registry + experiment file (zod) -> ModelsFile, ExperimentFile
 *   mutation.ts hyperparameter sampling (seeded, no duplicate configurations)
 *   command.ts  argv of one training run from a model entry + hyperparameters
 *   metrics.ts  metrics extracted from a run's log with the registry's regexes
 *   job.ts      one supervised training run (log file, timeout, retries)
 *   background.ts the parallel mode's background loop
 *   runner.ts   experiments -> ExperimentResult files + summary
 * Field names of ExperimentResult follow the result format users already have (snake_case).
 */

export type HyperValue = number | string | boolean;
export type Hyperparameters = Record<string, HyperValue>;

/** What one run of a training command ended as. */
export interface JobOutcome {
  /** argv actually run */
  argv: string[];
  cwd: string;
  logPath: string;
  exitCode: number | null;
  signal: string | null;
  durationSeconds: number;
  timedOut: boolean;
  /** stopped because gpucolo was interrupted (SIGINT/SIGTERM) */
  interrupted: boolean;
  /** one line: why it failed, or undefined */
  error?: string;
}

export interface EnergyMetrics {
  cpu_energy_pkg_joules: number | null;
  cpu_energy_ram_joules: number | null;
  cpu_energy_total_joules: number | null;
  gpu_power_avg_watts: number | null;
  gpu_power_max_watts: number | null;
  gpu_power_min_watts: number | null;
  gpu_energy_total_joules: number | null;
  gpu_temp_avg_celsius: number | null;
  gpu_temp_max_celsius: number | null;
  gpu_util_avg_percent: number | null;
  gpu_util_max_percent: number | null;
  /** "foreground" (only the foreground ran), "combined" (parallel mode: both jobs), "estimate" (split from solo + idle runs) */
  attribution: 'foreground' | 'combined' | 'estimate';
  /** where the numbers come from and what is unavailable: "gpu: unavailable: libnvidia-ml.so.1 not found; cpu: RAPL energy counter" */
  note: string;
}

export interface ForegroundResult {
  repository: string;
  model: string;
  hyperparameters: Hyperparameters;
  duration_seconds: number;
  energy_metrics: EnergyMetrics;
  performance_metrics: Record<string, number | null>;
  training_success: boolean;
  retries: number;
  error_message: string | null;
  log_file: string;
  /** only in the notes' layout (--layout notes): "Training completed successfully", or "Training failed: <error_message>" */
  status_message?: string;
}

export interface BackgroundInfo {
  repo: string;
  model: string;
  hyperparameters: Hyperparameters;
  runs_started: number;
  restarts: number;
  log_dir: string;
  note: string;
}

export const EXPERIMENT_RESULT_SCHEMA = 'gpucolo.experiment-result/1';

export interface ExperimentResult {
  schema: typeof EXPERIMENT_RESULT_SCHEMA;
  gpucolo_version: string;
  experiment_id: string;
  experiment_name: string;
  timestamp: string;
  mode: 'default' | 'mutation' | 'parallel';
  /** index of the experiment in the file and of the run within runs_per_config */
  experiment_index: number;
  run_index: number;
  foreground_result: ForegroundResult;
  background_info: BackgroundInfo | null;
  /** only when the file gave background as a list: every background's info, in the list's order (background_info is the first's) */
  background_infos?: BackgroundInfo[];
  /** parallel mode with estimate_split: the solo and idle reference runs */
  energy_estimate?: { foreground_solo: EnergyMetrics; idle_baseline: EnergyMetrics; note: string } | null;
}

/** One training command ready to run (plan.ts builds these from the config files). */
export interface JobSpec {
  repo: string;
  model: string;
  /** absolute: the repository path (relative paths in the models file are resolved against it) */
  cwd: string;
  argv: string[];
  hyperparameters: Hyperparameters;
  timeoutS: number;
  /** metric name -> regex source (first capture group is the value; the last match in the log wins) */
  metrics: Record<string, string>;
  /** extra environment for the command */
  env: Record<string, string>;
}

/** One run of one experiment: what the runner executes. */
export interface PlannedRun {
  experimentIndex: number;
  runIndex: number;
  /** stable and file-name safe: "<name>_<index>_<model>_run<k>" */
  experimentId: string;
  mode: 'default' | 'mutation' | 'parallel';
  foreground: JobSpec;
  /** the first (or only) background; null outside parallel mode */
  background: JobSpec | null;
  /** every background (empty outside parallel mode) */
  backgrounds: JobSpec[];
  /** the file gave background as a list: the result carries background_infos */
  backgroundList: boolean;
  /** parallel mode: also run the foreground solo and an idle baseline for an estimated energy split */
  estimateSplit: boolean;
}
