/**
 * The parallel mode's background load: one training command run again and again (a pause
 * between runs) for as long as the foreground needs company. Each run has its own process group
 * and its own log (run_<n>.log). A run that fails (non-zero exit, signal, its timeout, spawn
 * failure) is a crash: it is restarted and counted, and never fails the foreground. Only a spawn
 * failure ends the loop (the program cannot be run at all; retrying would spin).
 *
 * stop() ends the loop and stops the current run's group (SIGTERM, grace, SIGKILL).
 */
import path from 'node:path';
import type { ExitInfo, SupervisedChild, Supervisor } from '../../supervisor/index.js';
import { DEFAULT_GRACE_MS } from './job.js';
import type { BackgroundInfo, JobSpec } from './types.js';
import { makeDirs } from '../../fs-dirs.js';
import { writeFileAtomic } from '../../write.js';

export interface BackgroundOptions {
  supervisor: Supervisor;
  /** run_<n>.log files go here */
  logDir: string;
  /** pause between runs, s */
  pauseS: number;
  /** how long the first run must stay alive before the foreground starts, s */
  startWaitS: number;
  /** SIGTERM -> SIGKILL grace, ms (default 10000) */
  graceMs?: number;
  /** each run (for progress lines, pid files in tests) */
  onRunStart?: (n: number, child: SupervisedChild) => void;
  onRunEnd?: (n: number, info: ExitInfo, crashed: boolean) => void;
}

export interface StartWait {
  /** false when the first run died (or could not start) within the wait */
  ok: boolean;
  /** one line when something is worth noting */
  note?: string;
}

/** After a crash, at least this long before the restart (a program that dies at once must not spin). */
const MIN_RESTART_PAUSE_S = 0.1;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const fmtS = (s: number): string => (s >= 10 ? s.toFixed(0) : s >= 1 ? s.toFixed(1) : s.toFixed(2));

function why(info: ExitInfo, timedOut: boolean, timeoutS: number): string {
  if (timedOut) return `timed out after ${fmtS(timeoutS)} s`;
  if (info.reason === 'spawn-failed') return `could not start: ${info.error ?? info.errorCode ?? 'spawn failed'}`;
  if (info.code !== null) return `exited with code ${info.code}`;
  if (info.signal) return `killed by signal ${info.signal}`;
  return info.reason;
}

export class BackgroundLoop {
  /** runs started so far */
  runsStarted = 0;
  /** runs started after a crash */
  restarts = 0;
  crashes = 0;
  lastCrash: string | undefined;
  /** the loop ended on its own (spawn failure) */
  gaveUp: string | undefined;
  private readonly stopCtl = new AbortController();
  private current: SupervisedChild | null = null;
  private readonly loop: Promise<void>;
  private readonly firstRunEnd: Promise<{ info: ExitInfo; crashed: boolean; why: string; seconds: number }>;
  private resolveFirst!: (v: { info: ExitInfo; crashed: boolean; why: string; seconds: number }) => void;
  private readonly notes: string[] = [];
  private stopPromise: Promise<void> | null = null;
  private stoppedBy: string | undefined;

  private constructor(
    readonly spec: JobSpec,
    private readonly opts: BackgroundOptions,
  ) {
    this.firstRunEnd = new Promise((r) => (this.resolveFirst = r));
    makeDirs(opts.logDir);
    this.loop = this.run();
  }

  /** Starts the loop (the first run starts at once). */
  static start(spec: JobSpec, opts: BackgroundOptions): BackgroundLoop {
    return new BackgroundLoop(spec, opts);
  }

  get stopping(): boolean {
    return this.stopCtl.signal.aborted;
  }

  private async run(): Promise<void> {
    const { supervisor, logDir } = this.opts;
    const graceMs = this.opts.graceMs ?? DEFAULT_GRACE_MS;
    let crashedBefore = false;
    for (let n = 1; !this.stopping; n++) {
      const logPath = path.join(logDir, `run_${n}.log`);
      writeFileAtomic(logPath, '', { fsync: false }); // never through a symlink
      const t0 = performance.now();
      const child = supervisor.start({
        argv: this.spec.argv,
        cwd: this.spec.cwd,
        env: this.spec.env,
        name: `background ${this.spec.model} run ${n}`,
        stdin: 'ignore',
        stdout: { file: logPath, append: true },
        stderr: { file: logPath, append: true },
      });
      this.runsStarted++;
      if (crashedBefore) this.restarts++;
      this.current = child;
      if (child.pid !== undefined) this.opts.onRunStart?.(n, child);
      let timedOut = false;
      const timer =
        this.spec.timeoutS > 0 && Number.isFinite(this.spec.timeoutS)
          ? setTimeout(() => {
              timedOut = true;
              void child.stop({ graceMs });
            }, this.spec.timeoutS * 1000)
          : null;
      let info = await child.exited;
      if (timer) clearTimeout(timer);
      // leftovers of this run must not overlap the next one (nor outlive the loop)
      if (child.groupAlive()) info = { ...(await child.stop({ graceMs })), code: info.code, signal: info.signal };
      this.current = null;
      const seconds = (performance.now() - t0) / 1000;
      const stoppedByUs = this.stopping && !timedOut;
      const crashed = !stoppedByUs && (timedOut || info.reason === 'spawn-failed' || info.code !== 0 || info.signal !== null);
      const reason = why(info, timedOut, this.spec.timeoutS);
      if (n === 1) this.resolveFirst({ info, crashed, why: reason, seconds });
      this.opts.onRunEnd?.(n, info, crashed);
      if (stoppedByUs) {
        this.stoppedBy = info.reason === 'killed' ? 'SIGKILL after the grace' : 'SIGTERM';
        break;
      }
      if (crashed) {
        this.crashes++;
        this.lastCrash = `run ${n} ${reason} after ${fmtS(seconds)} s`;
      }
      if (info.reason === 'spawn-failed') {
        this.gaveUp = `background could not be started (${reason}): not retried`;
        break;
      }
      crashedBefore = crashed;
      const pauseS = crashed ? Math.max(this.opts.pauseS, MIN_RESTART_PAUSE_S) : this.opts.pauseS;
      if (pauseS > 0) await sleep(pauseS * 1000, this.stopCtl.signal);
    }
  }

  /**
   * Resolves when the first run has stayed alive for startWaitS, or has ended (whichever comes
   * first), or when `signal` aborts. A first run that crashed is noted; the caller goes on anyway.
   */
  async waitStarted(signal?: AbortSignal): Promise<StartWait> {
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const first = await Promise.race([this.firstRunEnd, sleep(this.opts.startWaitS * 1000, ctl.signal).then(() => null)]);
      if (first === null) return { ok: true };
      if (first.crashed) {
        const note = `first background run ${first.why} after ${fmtS(first.seconds)} s, within the ${fmtS(this.opts.startWaitS)} s start wait: the foreground started anyway${this.gaveUp ? '' : ' (the background keeps being restarted)'}`;
        this.notes.push(note);
        return { ok: false, note };
      }
      return { ok: true, note: `first background run finished in ${fmtS(first.seconds)} s, within the start wait` };
    } finally {
      ctl.abort();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Ends the loop: no new run, the current run's group stopped (SIGTERM, grace, SIGKILL). */
  stop(graceMs = this.opts.graceMs ?? DEFAULT_GRACE_MS): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopCtl.abort();
    const cur = this.current;
    this.stopPromise = (async () => {
      if (cur) await cur.stop({ graceMs });
      await this.loop;
    })();
    return this.stopPromise;
  }

  /** SIGKILL the current run now (second interrupt). */
  killNow(): void {
    this.stopCtl.abort();
    this.current?.kill('SIGKILL');
  }

  /** The result's background_info. */
  info(): BackgroundInfo {
    const parts = [`${this.runsStarted} run(s) started, ${this.crashes} crash(es), ${this.restarts} restart(s)`];
    if (this.lastCrash) parts.push(`last crash: ${this.lastCrash}`);
    parts.push(...this.notes);
    if (this.gaveUp) parts.push(this.gaveUp);
    if (this.stoppedBy) parts.push(`stopped after the foreground with ${this.stoppedBy}`);
    return {
      repo: this.spec.repo,
      model: this.spec.model,
      hyperparameters: this.spec.hyperparameters,
      runs_started: this.runsStarted,
      restarts: this.restarts,
      log_dir: this.opts.logDir,
      note: parts.join('; '),
    };
  }
}
