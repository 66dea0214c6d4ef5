/**
 * The process supervisor: every child gpucolo starts runs in its own process group, is recorded
 * in the run registry, and is stopped as a group (SIGTERM -> grace -> SIGKILL) so that
 * grandchildren (torchrun workers, shell pipelines) never outlive the run.
 *
 * Spawning goes through execa (argv arrays, no shell) with every convenience that would fight
 * group supervision switched off: no buffering (training logs are unbounded), no rejection on
 * non-zero exit, no forceKillAfterDelay (it would SIGKILL only the leader), and its `cleanup` is
 * inert for detached children anyway. Files are opened here and handed over as raw fds, so a
 * child's output goes straight to the file instead of through our event loop.
 *
 * Why facts (see docs/supervisor.md#stopping-a-group):
 *  - 'exit' fires when the leader is reaped; 'close' waits for every holder of the pipes, and a
 *    grandchild may hold them for ever. `exited` follows 'exit'.
 *  - kill(-pgid, 0) succeeds while zombies are left in the group; orphans are reaped by PID 1,
 *    which in containers may take seconds or never happen. A group counts as gone when kill
 *    says ESRCH or when /proc shows only zombies in it.
 *  - The pgid is stored at spawn time: after the leader is reaped it cannot be asked for, but
 *    kill(-pgid) still reaches the survivors.
 *  - Launchers may put workers in sessions of their own (torch elastic: start_new_session=True),
 *    out of reach of kill(-pgid). Before signaling, the groups of all descendants are collected
 *    from /proc and signaled too (see proctree relatedGroups).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { GpucoloError } from '../errors.js';
import { readStat, relatedGroups, scanStats, type PidStat } from './proctree.js';
import { RunRegistry, type ChildRecord, type ExitReason } from './registry.js';

export type StdinMode = 'ignore' | 'inherit' | 'pipe';
export type OutputMode = 'inherit' | 'ignore' | 'pipe' | { file: string; append?: boolean };

export interface ChildSpec {
  /** program and arguments; never a shell string */
  argv: string[];
  cwd?: string;
  /** merged over process.env; a key set to undefined removes that variable */
  env?: Record<string, string | undefined>;
  /** label in the registry and in messages (default: basename of argv[0]) */
  name?: string;
  /** default 'ignore' */
  stdin?: StdinMode;
  /** default 'inherit'. 'pipe': read child.stdout at once (an unread pipe is drained to nowhere
   *  after one event-loop turn so that a full pipe can never block the child) */
  stdout?: OutputMode;
  stderr?: OutputMode;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  reason: ExitReason;
  /** one line: why the spawn failed, or what is still alive after a stop */
  error?: string;
  /** errno name of a spawn failure (ENOENT, EACCES, ENOTDIR, ...) */
  errorCode?: string;
  /** from start() to the leader's exit (or to the spawn failure), monotonic */
  durationNs: number;
}

export interface StopOptions {
  /** how long the group gets to end after `signal` before SIGKILL (default: the supervisor's) */
  graceMs?: number;
  signal?: NodeJS.Signals;
}

export interface SupervisedChild {
  /** registry id (1, 2, ... in start order) */
  readonly id: number;
  readonly name: string;
  /** undefined when the spawn failed (as with Node's ChildProcess.pid) */
  readonly pid: number | undefined;
  /** process group id, = pid (the child leads its own session and group); undefined likewise */
  readonly pgid: number | undefined;
  /** resolves when the leader has exited (not when its pipes close); never rejects */
  readonly exited: Promise<ExitInfo>;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /**
   * Signals the whole group (and the groups its descendants made with setsid), waits up to the
   * grace for the leader to exit and the groups to hold no live process, else SIGKILLs them and
   * waits for that. Also cleans up grandchildren left after the leader exited on its own.
   * Resolves with the leader's ExitInfo; reason 'killed' when SIGKILL was needed for any member
   * (`exited`, settled at the leader's exit, may still say 'stopped' then). Concurrent calls
   * share one stop; a call with a shorter grace shortens it (graceMs 0 = SIGKILL now).
   */
  stop(opts?: StopOptions): Promise<ExitInfo>;
  /** Signals the whole group (and its descendants' groups) now; false when none is left. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** false once the group(s) have no live member (checked afresh once the leader has exited) */
  groupAlive(): boolean;
}

export interface SupervisorOptions {
  /** default grace between the stop signal and SIGKILL, ms (default 5000) */
  graceMs?: number;
  /** mirror the run registry to this JSON file (atomic rewrites); none when unset */
  registryFile?: string;
  /** default: <UTC timestamp>-<gpucolo pid>-<n> */
  runId?: string;
  /** how long to wait for a group to vanish after SIGKILL before reporting it (default 5000) */
  killWaitMs?: number;
  onRegistryError?: (err: Error) => void;
}

export interface SignalHandlerOptions {
  /** default SIGINT, SIGTERM, SIGHUP */
  signals?: NodeJS.Signals[];
  /**
   * Called once every group is stopped; gpucolo then does what this decides (write a footer,
   * exit with a code). Without it gpucolo re-raises the signal and dies by it as if uncaught.
   */
  onSignal?: (signal: NodeJS.Signals, results: ExitInfo[]) => void | Promise<void>;
  /** grace for this stop (default: the supervisor's) */
  graceMs?: number;
}

/** A programmer error (bad spec or option), thrown synchronously; never for a failing program. */
export class UsageError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const PROC = '/proc';
const POLL_MS = 25;
/** how often a group left behind by an exited leader is checked (see watchLingering) */
const LINGER_CHECK_MS = 1000;

const hrnow = (): bigint => process.hrtime.bigint();
const msnow = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const oneLine = (s: string): string => s.split('\n').find((l) => l.trim() !== '')?.trim() ?? s;

/** /proc is usable: zombie-only groups can be told apart from live ones. */
const PROC_OK = (() => {
  try {
    return fs.statSync(`${PROC}/self/stat`).isFile();
  } catch {
    return false;
  }
})();

/** gpucolo's own process group: the one group we must never signal. */
const OWN_PGID: number | null = PROC_OK ? (readStat(PROC, process.pid)?.pgrp ?? null) : null;

// ---- process-wide last resort: SIGKILL every group still alive when gpucolo exits ------------

const possiblyAlive = new Set<Child>();
let exitHookInstalled = false;

function track(child: Child): void {
  possiblyAlive.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: kill(2) and the registry's sync write both are.
    process.on('exit', () => {
      for (const c of possiblyAlive) c.killNowSync();
    });
  }
}

// ---- one child ----------------------------------------------------------------------------------

/** What a child needs from its supervisor. */
interface ChildContext {
  graceMs: number;
  killWaitMs: number;
  record: (id: number, patch: Partial<Omit<ChildRecord, 'id'>>) => void;
}

class Child implements SupervisedChild {
  readonly exited: Promise<ExitInfo>;
  /** registry id, set by start() right after the spawn */
  id = 0;
  pid: number | undefined;
  pgid: number | undefined;
  stdin: Writable | null = null;
  stdout: Readable | null = null;
  stderr: Readable | null = null;

  private resolveExited!: (info: ExitInfo) => void;
  private exitInfo: ExitInfo | null = null;
  private stopRequested = false;
  private killSent = false;
  /** signals this child's groups were sent to stop them (runStop, escalate, killNowSync; not kill()) */
  private readonly stopSignals = new Set<string>();
  /**
   * The child's own group plus groups its descendants made with setsid/setpgid (found at stop,
   * kill and exit time); a group leaves the set once kill(2) says ESRCH. Empty = all gone.
   */
  private readonly groups = new Set<number>();
  private stopping: Promise<ExitInfo> | null = null;
  private deadline = Infinity;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: ChildContext,
    readonly name: string,
    private readonly startNs: bigint,
  ) {
    this.exited = new Promise((r) => (this.resolveExited = r));
  }

  /** The spawn succeeded: pid known, the child already runs in its own group. */
  attach(pid: number, stdin: Writable | null, stdout: Readable | null, stderr: Readable | null): void {
    this.pid = pid;
    this.pgid = pid;
    this.groups.add(pid);
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    track(this);
  }

  /** The leader was reaped (child_process 'exit'). */
  onExit(code: number | null, signal: string | null): void {
    if (this.exitInfo) return;
    const alive = this.checkGroups(); // before exitInfo is set: one registry write below, not two
    // a death by a signal this supervisor did not send is the child's own end, even when a stop was
    // under way: a rank that SIGKILLed itself while the job was being stopped for another rank's
    // exit (both exits handled late, the other first) must not read as 'stopped'
    const foreign = signal !== null && !this.stopSignals.has(signal);
    const reason: ExitReason = foreign ? 'signaled' : this.killSent ? 'killed' : this.stopRequested ? 'stopped' : code !== null ? 'exited' : 'signaled';
    this.exitInfo = { code, signal, reason, durationNs: Number(hrnow() - this.startNs) };
    this.ctx.record(this.id, { state: reason, code, signal, endedAt: new Date().toISOString(), durationNs: this.exitInfo.durationNs, groupAlive: alive });
    if (alive && !this.stopping) this.watchLingering();
    this.resolveExited(this.exitInfo);
  }

  /** The program never ran (missing, not executable, bad cwd, unopenable output file). */
  onSpawnFailed(err: unknown): void {
    if (this.exitInfo) return;
    const message = oneLine(err instanceof Error ? err.message : String(err));
    const code = errCode(err);
    const durationNs = Number(hrnow() - this.startNs);
    this.exitInfo = { code: null, signal: null, reason: 'spawn-failed', error: message, ...(code ? { errorCode: code } : {}), durationNs };
    this.ctx.record(this.id, { state: 'spawn-failed', error: message, endedAt: new Date().toISOString(), durationNs });
    this.resolveExited(this.exitInfo);
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    this.adoptGroups();
    return this.signalGroups(signal);
  }

  groupAlive(): boolean {
    if (this.groups.size === 0) return false;
    return this.exitInfo ? this.checkGroups() : true;
  }

  stop(opts: StopOptions = {}): Promise<ExitInfo> {
    const graceMs = opts.graceMs ?? this.ctx.graceMs;
    if (!(graceMs >= 0)) throw new UsageError(`stop(): graceMs must be >= 0, got ${graceMs}`);
    const deadline = msnow() + graceMs;
    if (this.stopping) {
      this.deadline = Math.min(this.deadline, deadline);
      return this.stopping;
    }
    if (!this.groupAlive()) return this.exited;
    if (!this.exitInfo) this.stopRequested = true;
    this.deadline = deadline;
    this.stopping = this.runStop(opts.signal ?? 'SIGTERM');
    return this.stopping;
  }

  /** Escalation (second Ctrl-C): SIGKILL now; a running stop() only waits for the end. */
  escalate(): void {
    if (this.groups.size === 0) return;
    this.killSent = true;
    this.stopSignals.add('SIGKILL');
    this.adoptGroups();
    this.signalGroups('SIGKILL');
    this.deadline = -Infinity;
  }

  /** Last resort from process 'exit': nothing can be awaited, so SIGKILL and record it. */
  killNowSync(): void {
    if (this.groups.size === 0) return;
    this.killSent = true;
    this.stopSignals.add('SIGKILL');
    this.adoptGroups();
    const delivered = this.signalGroups('SIGKILL');
    if (this.exitInfo) this.ctx.record(this.id, { groupAlive: false });
    else this.ctx.record(this.id, { state: 'killed', signal: delivered ? 'SIGKILL' : null, endedAt: new Date().toISOString(), groupAlive: false });
  }

  private async runStop(signal: NodeJS.Signals): Promise<ExitInfo> {
    this.stopLingering();
    this.adoptGroups();
    this.stopSignals.add(signal);
    this.signalGroups(signal);
    let done = await this.waitGroupsEnd(() => this.deadline);
    if (!done) {
      this.killSent = true;
      this.stopSignals.add('SIGKILL');
      this.adoptGroups(); // workers started during the grace
      this.signalGroups('SIGKILL');
      const killDeadline = msnow() + this.ctx.killWaitMs;
      done = await this.waitGroupsEnd(() => killDeadline);
    }
    let info: ExitInfo;
    if (this.exitInfo) {
      info = { ...this.exitInfo };
      // the leader went within the grace, but some group member needed SIGKILL
      if (this.killSent && info.reason === 'stopped') info.reason = 'killed';
    } else {
      info = { code: null, signal: null, reason: 'killed', durationNs: Number(hrnow() - this.startNs) };
    }
    if (!done) {
      const left = PROC_OK ? scanStats(PROC).filter((s) => this.groups.has(s.pgrp) && isLive(s)).map((s) => s.pid) : [];
      info.error = `process group ${this.pgid} still has live members ${this.ctx.killWaitMs} ms after SIGKILL${left.length ? `: ${left.join(' ')}` : ''}`;
      this.watchLingering();
    }
    this.ctx.record(this.id, { ...(this.exitInfo ? { state: info.reason } : {}), groupAlive: !done, ...(info.error ? { error: info.error } : {}) });
    this.stopping = null;
    return info;
  }

  /** Polls until the leader has exited and no group has a live member, or the deadline. */
  private async waitGroupsEnd(deadline: () => number): Promise<boolean> {
    for (;;) {
      if (this.exitInfo && !this.checkGroups()) return true;
      const left = deadline() - msnow();
      if (left <= 0) return false;
      // wake at once when the leader exits, else poll; the deadline may shrink meanwhile
      const wake: Promise<unknown>[] = [sleep(Math.min(POLL_MS, left))];
      if (!this.exitInfo) wake.push(this.exited);
      await Promise.race(wake);
    }
  }

  /**
   * Finds the groups that descendants of our groups' members made (setsid launchers). Only while
   * their parent chain is intact: a worker whose launcher already died is invisible here.
   */
  private adoptGroups(): void {
    if (!PROC_OK || this.groups.size === 0) return;
    const before = this.groups.size;
    for (const g of relatedGroups(scanStats(PROC), this.groups)) {
      // a descendant cannot join gpucolo's group (other session), but never risk signaling it
      if (g > 1 && g !== OWN_PGID) this.groups.add(g);
    }
    if (this.groups.size !== before) this.ctx.record(this.id, { otherGroups: [...this.groups].filter((g) => g !== this.pgid) });
  }

  /** true while some group has a live member; forgets groups that are gone. */
  private checkGroups(): boolean {
    for (const g of this.groups) {
      try {
        process.kill(-g, 0);
      } catch (err) {
        // EPERM: a member we may not signal (setuid program) - alive, and beyond our reach
        if (errCode(err) === 'ESRCH') this.groups.delete(g);
      }
    }
    // kill(2) also finds zombies; a group is over when /proc shows nothing but zombies in it
    if (this.groups.size > 0 && PROC_OK && !scanStats(PROC).some((s) => this.groups.has(s.pgrp) && isLive(s))) this.groups.clear();
    if (this.groups.size === 0) this.onGroupsGone();
    return this.groups.size > 0;
  }

  private onGroupsGone(): void {
    if (!possiblyAlive.delete(this)) return; // already handled
    this.stopLingering();
    if (this.exitInfo) this.ctx.record(this.id, { groupAlive: false });
  }

  /** Signals every group; true when at least one was reached. */
  private signalGroups(signal: NodeJS.Signals | number): boolean {
    let reached = false;
    for (const g of this.groups) {
      // never a negative pid for a group that is not ours: -1 or gpucolo's own group would hit
      // gpucolo itself (or everything)
      if (!(g > 1) || g === OWN_PGID) throw new GpucoloError(`refusing to signal process group ${g}`, { code: 'EINTERNAL' });
      try {
        process.kill(-g, signal);
        reached = true;
      } catch (err) {
        if (errCode(err) === 'ESRCH') this.groups.delete(g);
      }
    }
    if (this.groups.size === 0) this.onGroupsGone();
    return reached;
  }

  /** A group left behind by an exited leader is checked now and then, so that its number is
   *  never signaled after it emptied and the kernel could hand it out again. */
  private watchLingering(): void {
    if (this.lingerTimer || this.groups.size === 0) return;
    this.lingerTimer = setInterval(() => this.checkGroups(), LINGER_CHECK_MS);
    this.lingerTimer.unref();
  }

  private stopLingering(): void {
    if (this.lingerTimer) clearInterval(this.lingerTimer);
    this.lingerTimer = null;
  }
}

const isLive = (s: PidStat): boolean => s.state !== 'Z' && s.state !== 'X';

// ---- the supervisor -----------------------------------------------------------------------------

let runSeq = 0;

export class Supervisor {
  readonly graceMs: number;
  readonly killWaitMs: number;
  readonly runId: string;
  private readonly registry: RunRegistry;
  private readonly all: Child[] = [];
  private readonly childContext: ChildContext;

  constructor(opts: SupervisorOptions = {}) {
    this.graceMs = opts.graceMs ?? 5000;
    this.killWaitMs = opts.killWaitMs ?? 5000;
    if (!(this.graceMs >= 0) || !(this.killWaitMs >= 0)) throw new UsageError('graceMs and killWaitMs must be >= 0');
    this.runId = opts.runId ?? `${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}-${process.pid}-${++runSeq}`;
    this.registry = new RunRegistry({ runId: this.runId, file: opts.registryFile, onWriteError: opts.onRegistryError });
    this.childContext = { graceMs: this.graceMs, killWaitMs: this.killWaitMs, record: (id, patch) => this.registry.update(id, patch) };
  }

  get registryFile(): string | undefined {
    return this.registry.file;
  }

  /**
   * Starts spec.argv in a new session and process group. Throws (UsageError) only for
   * programmer errors in spec; every failure to run the program resolves `exited` with reason
   * 'spawn-failed'.
   */
  start(spec: ChildSpec): SupervisedChild {
    validateSpec(spec);
    const startNs = hrnow();
    const startedAt = new Date().toISOString();
    const cwd = path.resolve(spec.cwd ?? process.cwd());
    const name = spec.name ?? path.basename(spec.argv[0]);
    const child = new Child(this.childContext, name, startNs);
    this.all.push(child);

    let sub: ReturnType<typeof spawnDetached> | undefined;
    let failure: unknown = null;
    const opened: number[] = [];
    try {
      // Node reports a missing cwd as "spawn <program> ENOENT", blaming the program: say it here
      checkCwd(cwd);
      sub = spawnDetached(spec, cwd, outputOption(spec.stdout ?? 'inherit', opened), outputOption(spec.stderr ?? 'inherit', opened));
    } catch (err) {
      failure = err;
    } finally {
      // the child has its own copies of the output fds (or never got them)
      for (const fd of opened) fs.closeSync(fd);
    }
    const pid = typeof sub?.pid === 'number' ? sub.pid : null;
    // recorded after the spawn so that the one write already carries the pid
    child.id = this.registry.add({
      name,
      pid,
      pgid: pid,
      argv: [...spec.argv],
      cwd,
      startedAt,
      startedNs: startNs.toString(),
      // with the pid, identifies the leader across pid reuse (for reaping a crashed run's groups)
      startTicks: pid !== null && PROC_OK ? (readStat(PROC, pid)?.startTicks ?? null) : null,
      state: pid !== null ? 'running' : 'spawn-failed',
      code: null,
      signal: null,
      groupAlive: pid !== null,
      otherGroups: [],
    }).id;
    if (sub && pid !== null) child.attach(pid, sub.stdin, sub.stdout, sub.stderr);
    if (sub) {
      // events arrive asynchronously, i.e. after the record above exists
      sub.once('exit', (code, signal) => child.onExit(code, signal));
      sub.once('error', (err) => {
        if (child.pid === undefined) child.onSpawnFailed(err);
      });
      // errors thrown synchronously by spawn inside execa (ENOTDIR, E2BIG, ...) only show here
      void sub.then(
        (result) => {
          if (child.pid === undefined && result.failed) child.onSpawnFailed(result.cause ?? result);
        },
        (err: unknown) => {
          if (child.pid === undefined) child.onSpawnFailed(err);
        },
      );
    } else {
      child.onSpawnFailed(failure);
    }
    return child;
  }

  /** Registry records of every child started here (copies). */
  children(): ChildRecord[] {
    return this.registry.list();
  }

  /** Children whose process group may still have members. */
  live(): SupervisedChild[] {
    return this.all.filter((c) => c.groupAlive());
  }

  /** Stops every live group concurrently (each: signal, grace, SIGKILL). */
  stopAll(opts: StopOptions = {}): Promise<ExitInfo[]> {
    return Promise.all(this.live().map((c) => c.stop(opts)));
  }

  /** SIGKILLs every live group now (synchronously); running stop() calls finish their wait. */
  killAll(): void {
    for (const c of this.all) c.escalate();
  }

  /**
   * On SIGINT/SIGTERM/SIGHUP: stop every group, then call onSignal (or, without it, re-raise the
   * signal). A second signal while stopping SIGKILLs every group at once. Our children run in
   * their own groups, so a terminal's Ctrl-C reaches only gpucolo: this is how it reaches them.
   * Returns the unsubscribe function.
   */
  installSignalHandlers(opts: SignalHandlerOptions = {}): () => void {
    const signals = opts.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
    let stopping = false;
    const unsubscribe = (): void => {
      for (const s of signals) process.off(s, handler);
    };
    const handler = (sig: NodeJS.Signals): void => {
      if (stopping) {
        this.killAll();
        return;
      }
      stopping = true;
      void this.stopAll({ graceMs: opts.graceMs })
        .then(async (results) => {
          if (opts.onSignal) {
            await opts.onSignal(sig, results);
          } else {
            unsubscribe();
            // no listener left: the default action applies and gpucolo dies by the signal
            if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
          }
        })
        .catch((err: unknown) => {
          // an onSignal failure must not vanish: surface it as an uncaught error
          process.nextTick(() => {
            throw err;
          });
        })
        .finally(() => {
          stopping = false;
        });
    };
    for (const s of signals) process.on(s, handler);
    return unsubscribe;
  }
}

// ---- spec helpers -------------------------------------------------------------------------------

const STDIN_MODES = new Set(['ignore', 'inherit', 'pipe']);

function validateSpec(spec: ChildSpec): void {
  if (!spec || typeof spec !== 'object') throw new UsageError('start(): spec must be an object');
  const { argv } = spec;
  if (!Array.isArray(argv) || argv.length === 0) throw new UsageError('start(): argv must be a non-empty array of strings (no shell strings)');
  for (const a of argv) {
    if (typeof a !== 'string') throw new UsageError(`start(): argv items must be strings, got ${typeof a}`);
    if (a.includes('\0')) throw new UsageError('start(): argv items must not contain NUL bytes');
  }
  if (argv[0] === '') throw new UsageError('start(): argv[0] (the program) must not be empty');
  if (spec.cwd !== undefined && typeof spec.cwd !== 'string') throw new UsageError('start(): cwd must be a string');
  if (spec.stdin !== undefined && !STDIN_MODES.has(spec.stdin)) throw new UsageError(`start(): bad stdin ${String(spec.stdin)}`);
  for (const key of ['stdout', 'stderr'] as const) {
    const v = spec[key];
    if (v === undefined || v === 'inherit' || v === 'ignore' || v === 'pipe') continue;
    if (typeof v !== 'object' || v === null || typeof v.file !== 'string' || v.file === '') throw new UsageError(`start(): bad ${key}: expected 'inherit', 'ignore', 'pipe' or {file}`);
  }
  if (spec.env !== undefined) {
    for (const [k, v] of Object.entries(spec.env)) {
      if (v !== undefined && typeof v !== 'string') throw new UsageError(`start(): env.${k} must be a string or undefined`);
    }
  }
}

/**
 * The one spawn: argv array, no shell, own session/group, and none of execa's conveniences that
 * work against group supervision (see the file comment).
 */
function spawnDetached(spec: ChildSpec, cwd: string, stdout: ReturnType<typeof outputOption>, stderr: ReturnType<typeof outputOption>) {
  return execa(spec.argv[0], spec.argv.slice(1), {
    cwd,
    env: mergeEnv(spec.env),
    extendEnv: false,
    detached: true, // setsid(): own session and process group, pgid = pid
    stdin: spec.stdin ?? 'ignore',
    stdout: execaOutput(stdout),
    stderr: execaOutput(stderr),
    buffer: false,
    reject: false,
    cleanup: false,
    forceKillAfterDelay: false,
    stripFinalNewline: false,
    encoding: 'buffer',
  });
}

/**
 * execa's types admit only fds 1-9 as a plain number, but at run time a number is handed to
 * spawn() untouched (execa lib/stdio/native.js), which is what a log file needs: the child writes
 * to it directly (no pipe through our event loop; nothing lost or blocked if gpucolo stalls).
 */
function execaOutput(mode: ReturnType<typeof outputOption>): 'inherit' | 'ignore' | 'pipe' | 3 {
  return mode as 'inherit' | 'ignore' | 'pipe' | 3;
}

function checkCwd(cwd: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(cwd);
  } catch (err) {
    const code = errCode(err);
    throw new GpucoloError(`cwd ${cwd}: ${code === 'ENOENT' ? 'ENOENT (no such directory)' : (code ?? (err as Error).message)}`, { code: code ?? 'EIO', path: cwd, syscall: 'stat' });
  }
  if (!st.isDirectory()) throw new GpucoloError(`cwd ${cwd}: ENOTDIR (not a directory)`, { code: 'ENOTDIR', path: cwd });
}

/** 'pipe' etc. pass through; {file} is opened here and handed to the child as a raw fd. */
function outputOption(mode: OutputMode, opened: number[]): 'inherit' | 'ignore' | 'pipe' | number {
  if (typeof mode === 'string') return mode;
  let fd: number;
  try {
    // O_NOFOLLOW: a log name that is a symlink is refused (ELOOP), never written through (README "Output files")
    fd = fs.openSync(mode.file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | (mode.append ? fs.constants.O_APPEND : fs.constants.O_TRUNC), 0o644);
  } catch (err) {
    throw new GpucoloError(`open ${mode.file}: ${errCode(err) ?? (err as Error).message}`, { code: errCode(err) ?? 'EIO', path: mode.file, syscall: 'open' });
  }
  opened.push(fd);
  return fd;
}

function mergeEnv(extra: ChildSpec['env']): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...extra })) if (v !== undefined) env[k] = v;
  return env;
}
