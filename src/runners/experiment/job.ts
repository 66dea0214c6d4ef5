/**
 * One supervised training run: its own process group, its own log file (stdout and stderr of
 * this attempt only, so output of different jobs is never mixed), a timeout (SIGTERM to the
 * group, grace, SIGKILL), and stop on interrupt. Then retries: a failed attempt (non-zero exit,
 * a signal, a timeout, a spawn failure) is run again, up to maxRetries times, each attempt with
 * its own log (attempt_<n>.log).
 *
 * Completion is the leader's 'exit' (not 'close': output goes to files, and grandchildren may
 * outlive the leader); whatever the leader left running in its group is stopped before the
 * outcome is reported, so nothing of one attempt overlaps the next.
 */
import path from 'node:path';
import type { ExitInfo, SupervisedChild, Supervisor } from '../../supervisor/index.js';
import type { JobOutcome, JobSpec } from './types.js';
import { makeDirs } from '../../fs-dirs.js';
import { writeFileAtomic } from '../../write.js';

export interface RunJobOptions {
  supervisor: Supervisor;
  /** the attempt's log (created/truncated; stdout and stderr both go here) */
  logPath: string;
  /** SIGTERM -> SIGKILL grace for timeouts, interrupts and leftovers, ms (default 10000) */
  graceMs?: number;
  /** aborting stops the job (outcome.interrupted) */
  signal?: AbortSignal;
  /** registry label (default: the job's model) */
  name?: string;
  /** called once the child runs (pid known) */
  onStart?: (child: SupervisedChild) => void;
}

export const DEFAULT_GRACE_MS = 10_000;

/** Did the attempt succeed? */
export const jobSucceeded = (o: JobOutcome): boolean => o.exitCode === 0 && o.signal === null && !o.timedOut && !o.interrupted && o.error === undefined;

const fmtS = (s: number): string => (s >= 10 ? s.toFixed(0) : s >= 1 ? s.toFixed(1) : s.toFixed(2));

/** What ended the group stop: one clause for an error line. */
function stopClause(info: ExitInfo, graceMs: number): string {
  if (info.reason === 'killed') return `process group SIGKILLed after the ${fmtS(graceMs / 1000)} s grace`;
  return 'process group stopped with SIGTERM';
}

/** The one-line error of an attempt, or undefined when it succeeded. */
function describe(info: ExitInfo, o: { timedOut: boolean; interrupted: boolean; timeoutS: number; graceMs: number; program: string }): string | undefined {
  if (o.interrupted) return 'interrupted';
  if (o.timedOut) return `timed out after ${fmtS(o.timeoutS)} s: ${stopClause(info, o.graceMs)}`;
  if (info.reason === 'spawn-failed') return `could not start ${o.program}: ${info.error ?? info.errorCode ?? 'spawn failed'}`;
  if (info.code !== null && info.code !== 0) return `exited with code ${info.code}`;
  if (info.signal) return `killed by signal ${info.signal}`;
  if (info.code === null) return `ended without an exit status (${info.reason})`;
  return undefined;
}

/** Runs one attempt of `spec` to its end; never rejects for anything the program does. */
export async function runJob(spec: JobSpec, opts: RunJobOptions): Promise<JobOutcome> {
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  makeDirs(path.dirname(opts.logPath));
  writeFileAtomic(opts.logPath, '', { fsync: false }); // never through a symlink (README "Output files")
  const t0 = performance.now();
  const base = { argv: [...spec.argv], cwd: spec.cwd, logPath: opts.logPath };

  if (opts.signal?.aborted) {
    return { ...base, exitCode: null, signal: null, durationSeconds: 0, timedOut: false, interrupted: true, error: 'interrupted' };
  }
  // both streams append to one file: O_APPEND keeps their writes whole and in order
  const child = opts.supervisor.start({
    argv: spec.argv,
    cwd: spec.cwd,
    env: spec.env,
    name: opts.name ?? spec.model,
    stdin: 'ignore',
    stdout: { file: opts.logPath, append: true },
    stderr: { file: opts.logPath, append: true },
  });
  if (child.pid !== undefined) opts.onStart?.(child);

  let timedOut = false;
  let interrupted = false;
  let stopInfo: Promise<ExitInfo> | null = null;
  const stop = (): Promise<ExitInfo> => (stopInfo ??= child.stop({ graceMs }));
  const timer =
    spec.timeoutS > 0 && Number.isFinite(spec.timeoutS)
      ? setTimeout(() => {
          timedOut = true;
          void stop();
        }, spec.timeoutS * 1000)
      : null;
  const onAbort = (): void => {
    if (timedOut) return;
    interrupted = true;
    void stop();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // aborted meanwhile (by onStart itself, say): the listener came too late to hear it
  if (opts.signal?.aborted) onAbort();
  let info: ExitInfo;
  try {
    info = await child.exited;
    if (timer) clearTimeout(timer);
    // a stop in progress (timeout, interrupt) has the final word on how the group ended;
    // otherwise stop whatever the leader left behind in its group
    if (stopInfo) info = await stopInfo;
    else if (child.groupAlive()) await stop();
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  const durationSeconds = Number(((performance.now() - t0) / 1000).toFixed(3));
  const error = describe(info, { timedOut, interrupted, timeoutS: spec.timeoutS, graceMs, program: spec.argv[0] });
  return {
    ...base,
    exitCode: info.code,
    signal: info.signal,
    durationSeconds,
    timedOut,
    interrupted,
    ...(error ? { error } : {}),
  };
}

export interface RetryOptions extends Omit<RunJobOptions, 'logPath'> {
  /** attempts after the first (0 = one attempt) */
  maxRetries: number;
  /** attempt_<n>.log files go here (n from 1) */
  logDir: string;
  /** the log of attempt n instead of attempt_<n>.log under logDir (the notes' layout) */
  logPathOf?: (n: number) => string;
  /** wraps each attempt (energy sampling); must call run() once and return its outcome */
  around?: (attempt: number, run: () => Promise<JobOutcome>) => Promise<JobOutcome>;
  /** after each attempt */
  onAttempt?: (attempt: number, outcome: JobOutcome) => void;
}

export interface AttemptsResult {
  /** every attempt, in order */
  attempts: JobOutcome[];
  /** the last attempt (the successful one, or the last failure) */
  final: JobOutcome;
  /** attempts - 1 */
  retries: number;
  success: boolean;
}

/** attempt_<n>.log */
export const attemptLog = (logDir: string, n: number): string => path.join(logDir, `attempt_${n}.log`);

/** Runs `spec` until it succeeds, up to 1 + maxRetries attempts; an interrupt ends the series. */
export async function runWithRetries(spec: JobSpec, opts: RetryOptions): Promise<AttemptsResult> {
  const attempts: JobOutcome[] = [];
  for (let n = 1; n <= opts.maxRetries + 1; n++) {
    const run = (): Promise<JobOutcome> => runJob(spec, { ...opts, logPath: opts.logPathOf ? opts.logPathOf(n) : attemptLog(opts.logDir, n) });
    const outcome = opts.around ? await opts.around(n, run) : await run();
    attempts.push(outcome);
    opts.onAttempt?.(n, outcome);
    if (jobSucceeded(outcome) || outcome.interrupted || opts.signal?.aborted) break;
  }
  const final = attempts[attempts.length - 1];
  return { attempts, final, retries: attempts.length - 1, success: jobSucceeded(final) };
}
