/**
 * The torch scenario driver: one workloads/model_worker.py process per task (JSON Lines over
 * stdin/stdout, protocol in that file's docstring), requests sent at their intended arrival times,
 * latency measured from those times with the workers' CLOCK_MONOTONIC stamps (the clock behind
 * process.hrtime.bigint()), so a late send or a queue in the worker shows up as latency.
 *
 * Phase timeline (monotonic ns): t0 = now + LEAD; warm-up [t0, t0+warmup); measured
 * [t0+warmup, t0+warmup+duration) = the "end". Scheduled tasks (poisson, fixed-rate, frames,
 * batch, replay) get arrivalTimes(arrival, warmup+duration) offset by t0; a timer sends every
 * request whose time has come and never waits for completions (open loop). Closed-loop tasks keep
 * `concurrency` requests outstanding: the first ones intended at t0, each next one intended at the
 * worker's end stamp of the request that freed the slot. Only requests intended at or after the
 * warm-up end count (issued, latency, errors). At the end nothing more is sent; outstanding
 * requests get DRAIN_NS (2 s) more, then the workers are told to stop (requests still queued in a
 * worker are dropped there) and the ones not completed are censored: kept in the latency sample at
 * their age when the driver stopped waiting (a lower bound; censor.ts). Completions during the drain
 * keep their latency but do not count in the window's throughput. Each scheduled send's lateness
 * (send - intended) is kept as the load generator's own lag (a blocked event loop shows there).
 *
 * Workers run under the Supervisor (own process groups, SIGTERM -> grace -> SIGKILL), spawned from
 * argv arrays with OPENBLAS_NUM_THREADS=1 and PYTHONUNBUFFERED=1 added to the environment. Every
 * return path stops every worker group first (no orphans).
 *
 * Mechanisms (HP = the tasks with the highest priority, LP = the others):
 *  - none: nothing.
 *  - stream-priority: HP workers get streamPriority "high" (torch.cuda.Stream priority -1), LP
 *    "low" (0). Workers on cpu report it as not applicable -> the phase is 'skipped'. Whether the
 *    priority is real depends on where the streams live (streamPriorityScope): a CUDA stream
 *    priority only orders streams of one context, so with one process per model (the default,
 *    torchProcess 'per-model') it is real on NVIDIA only under MPS (one server context for all
 *    clients: detectMps), and on AMD always (each HIP stream is a KFD queue with its own priority,
 *    which the hardware scheduler orders across processes). torchProcess 'single' runs every
 *    model of the phase in one workloads/model_group.py process, one context, each model on its
 *    own priority stream and thread: real everywhere. Where it is not real the phase still runs
 *    and its notes say so ("not a real priority here").
 *  - gate: a 1-byte file (in /dev/shm when present, else os.tmpdir()) that LP workers mmap and
 *    poll before every leaf module; the driver writes 1 while any HP request is outstanding.
 *  - cu-mask: ROCm only (ready.hip non-null). HSA_CU_MASK is read when the HSA runtime starts, and
 *    the CU count is only known once torch has opened the device, so every worker is loaded once
 *    plainly; the ready record carries cuCount (multi_processor_count = CUs on ROCm), then the LP
 *    workers are restarted with HSA_CU_MASK="<device index>:<first>-<cu-1>" where
 *    first = round(reserve * cu) (clamped to [1, cu-1]): LP keeps out of the first `reserve`
 *    share of the CUs, HP may use all. (The device index is the worker's torch index; with
 *    HIP_VISIBLE_DEVICES/ROCR_VISIBLE_DEVICES set, both count visible devices alike.) On CUDA
 *    or cpu workers the phase is 'skipped'.
 *  - sm-partition, throttle: 'skipped' (see the reasons below) before anything starts.
 *  - xsched: LD_PRELOAD=<preload> (ahead of any LD_PRELOAD already set), the scenario's env, and
 *    XSCHED_AUTO_XQUEUE=ON, XSCHED_AUTO_XQUEUE_PRIORITY=<task priority clamped to [-255,255]>.
 *
 * Process forms (torchProcess): 'per-model' (default) starts one model_worker.py per task;
 * 'single' starts one model_group.py for all tasks of the phase (same protocol with a "task"
 * field; each model keeps its own request queue and thread, so one model's requests never wait
 * behind another's in Python). Mechanisms that act on a whole process cannot tell the models apart
 * there: cu-mask (HSA_CU_MASK) and xsched (XSCHED_AUTO_XQUEUE_PRIORITY) are 'skipped' in that form.
 *
 * Timestamps travel as JSON numbers: exact below 2^53 ns (104 days of uptime), off by a few ns
 * beyond that, which no latency here can notice.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Supervisor, type ExitInfo, type SupervisedChild } from '../supervisor/index.js';
import { LiveLatency } from '../stats/index.js';
import { detectMps, type MpsStatus } from '../dispatch/mps.js';
import { arrivalTimes } from './arrivals.js';
import { censoredAges } from './censor.js';
import type { Mechanism, Task, TorchWorkload } from './schema.js';
import type { PhaseStatus, TaskSamples } from './types.js';
import { judgeCompletions } from './completions.js';
import { invalidArg } from '../errors.js';

/** A stdout line as a driver record: a JSON object, or null for anything else (torch or a library printing). */
function recordOf(line: string): Record<string, unknown> | null {
  try {
    const rec: unknown = JSON.parse(line);
    return rec && typeof rec === 'object' ? (rec as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export const DEFAULT_PYTHON = '/usr/bin/python3';
/** lead between the end of loading and the phase start (t0) */
export const LEAD_NS = 100e6;
/** how long outstanding requests are waited for after the phase end */
export const DRAIN_NS = 2e9;
/** default time for all workers to become ready (a large model on a CPU: import + build + one pass) */
export const DEFAULT_LOAD_TIMEOUT_MS = 180_000;
/** stderr lines kept per worker */
export const STDERR_TAIL_LINES = 20;
/** grace between SIGTERM and SIGKILL when stopping workers */
const STOP_GRACE_MS = 1000;
/** how long a worker gets to answer "stop" with its stats */
const STATS_WAIT_MS = 3000;

export interface TorchPhaseTask {
  task: Task;
  workload: TorchWorkload;
}

export interface TorchPhaseOptions {
  tasks: TorchPhaseTask[];
  mechanism: Mechanism;
  /** cu-mask: share of compute units kept for the highest-priority task(s) */
  reserve: number;
  xsched?: { preload: string; env: Record<string, string> };
  /** measured time, ns */
  durationNs: number;
  /** warm-up before the measured time, ns (its requests run but do not count) */
  warmupNs: number;
  /** default process.env.GPUCOLO_PYTHON ?? /usr/bin/python3 */
  python?: string;
  /** default workloads/model_worker.py of this package */
  workerPath?: string;
  /**
   * 'per-model' (default): one worker process per task; 'single': every task's model in one
   * workloads/model_group.py process (one context: stream priorities between them are real)
   */
  torchProcess?: TorchProcessForm;
  /** default workloads/model_group.py of this package */
  groupWorkerPath?: string;
  /** MPS as found (default detectMps()); for tests */
  mps?: MpsStatus;
  /** default DEFAULT_LOAD_TIMEOUT_MS */
  loadTimeoutMs?: number;
  /** abort (Ctrl-C): workers are stopped, status 'partial' with the samples so far */
  signal?: AbortSignal;
  /** after each completion (warm-up included): that task's completions so far, ns since t0 */
  /** after every completion; p99Ns: live P99 of the measured requests so far (HDR histogram, display only) */
  onProgress?: (p: { task: string; completed: number; elapsedNs: number; p99Ns: number | null }) => void;
  /** once the workers are started (again after a cu-mask restart) */
  onWorkers?: (pids: { task: string; pid: number }[]) => void;
  /** every stderr line of every worker (they are also kept as a tail for failures) */
  onLog?: (task: string, line: string) => void;
  /** the measured window opens ('start', at the warm-up end) and closes ('end', at the phase end, before the drain) while the workers run */
  onWindow?: (edge: 'start' | 'end') => void;
}

export type TorchProcessForm = 'per-model' | 'single';

export interface TorchWorkerInfo {
  task: string;
  /** the worker process (shared by every task in the single-process form) */
  pid?: number;
  /** how the models were spread over processes */
  process?: TorchProcessForm;
  device: string;
  deviceName: string | null;
  torch: string | null;
  /** ROCm/HIP version when torch is a ROCm build (the GPU is an AMD one), else null */
  hip: string | null;
  memoryBytes: number | null;
}

export interface TorchPhaseResult {
  status: PhaseStatus;
  reason?: string;
  stderrTail?: string[];
  samples: TaskSamples[];
  notes: string[];
  workers: TorchWorkerInfo[];
  /**
   * stream-priority: whether the streams' priorities are compared by the GPU (one context, MPS, or
   * AMD KFD queues), with why; null for other mechanisms or when the phase stopped before it was known
   */
  priorityScope?: PriorityScope | null;
}

/** Whether a stream-priority phase's priorities are compared by the GPU, and why. */
export interface PriorityScope {
  real: boolean;
  /** 'context': one process, one context; 'mps': separate processes under MPS; 'kfd': AMD queues; 'none': separate contexts, time-sliced */
  via: 'context' | 'mps' | 'kfd' | 'none';
  note: string;
}

/**
 * Where the HP and LP priority streams meet. One process (one context per device): the priority is
 * real. Separate processes: on ROCm (ready.hip set) each stream is a KFD queue whose priority the
 * hardware scheduler compares across processes; on NVIDIA only under MPS (one server context for
 * every client), otherwise the contexts are time-sliced and the priorities never meet.
 */
export function streamPriorityScope(o: { form: TorchProcessForm; workers: { device: string; hip: string | null; pid?: number }[]; mps: MpsStatus }): PriorityScope {
  const pids = [...new Set(o.workers.map((w) => w.pid).filter((p): p is number => p !== undefined))];
  if (o.form === 'single' || (o.workers.length > 1 && pids.length === 1)) {
    return { real: true, via: 'context', note: `stream priority is real: the models share one process${pids.length === 1 ? ` (pid ${pids[0]})` : ''} and one context per device, each on its own priority stream` };
  }
  if (o.workers.length > 0 && o.workers.every((w) => w.hip)) {
    return {
      real: true,
      via: 'kfd',
      note: "stream priority applies across processes on ROCm: each worker's HIP stream is a KFD queue with its own queue priority, and the GPU's hardware scheduler orders the queues of all processes (one process per model kept)",
    };
  }
  if (o.mps.running) {
    return { real: true, via: 'mps', note: `stream priority across processes through MPS: the workers are MPS clients of one server context per GPU (${o.mps.line})` };
  }
  return {
    real: false,
    via: 'none',
    note: `not a real priority here: each model runs in its own process with its own CUDA context, and a stream priority only orders the streams of one context (the GPU time-slices contexts), so this phase is corun:none in disguise. Run the models in one process (torchProcess: single, --torch-process single) or start MPS (nvidia-cuda-mps-control -d). ${o.mps.line}`,
  };
}

/** The ready record of model_worker.py. */
export interface WorkerReady {
  type: 'ready';
  device: string;
  deviceName: string | null;
  torch: string;
  hip: string | null;
  memoryBytes: number;
  streamPriority: number | null;
  cuCount: number | null;
  input: number[];
  loadMs: number;
  notes: string[];
  /** model_group.py: the task it is for */
  task?: string;
}

/** The stats record of model_worker.py (after stop or EOF). */
export interface WorkerStats {
  type: 'stats';
  requests: number;
  errors: number;
  dropped: number;
  gatePauses: number;
  gatePausedNs: number;
}

/** workloads/model_worker.py next to src/ or dist/ (both are one level below the package root). */
export function defaultWorkerPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../workloads/model_worker.py');
}

/** workloads/model_group.py (several models in one process) next to src/ or dist/. */
export function defaultGroupWorkerPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../workloads/model_group.py');
}

export const SM_PARTITION_REASON = 'sm-partition: PyTorch does not expose green contexts';
export const THROTTLE_REASON = 'throttle runs in-process on probe workloads only';
export const STREAM_PRIORITY_CPU_REASON = 'stream priorities need a GPU device (workers run on cpu)';
export const SINGLE_CU_MASK_REASON = 'cu-mask: HSA_CU_MASK applies to a whole process, and the single-process form runs every model in one: use torchProcess per-model';
export const SINGLE_XSCHED_REASON = 'xsched: XSCHED_AUTO_XQUEUE_PRIORITY applies to a whole process, and the single-process form runs every model in one: use torchProcess per-model';

const nowNs = (): number => Number(process.hrtime.bigint());
const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    void p.then((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });

type LoadOutcome = { ok: true; ready: WorkerReady } | { ok: false; code?: string; message: string; exit?: ExitInfo };

// ---- one worker process ------------------------------------------------------------------------

/** One task's model as the phase sees it: its own process (WorkerProc) or its share of a group process (TaskView). */
interface ModelWorker {
  readonly task: string;
  readonly tail: string[];
  ready: WorkerReady | null;
  stats: WorkerStats | null;
  readonly exit: ExitInfo | null;
  /** the process's exit */
  readonly exited: Promise<ExitInfo>;
  /** run-time records (done, request errors) of this task */
  onRecord: ((rec: Record<string, unknown>) => void) | null;
  /** resolves when the process's stdout and stderr have both closed */
  readonly drained: Promise<void>;
  readonly pid: number | undefined;
  pushTail(line: string): void;
  send(cmd: Record<string, unknown>): void;
  load(cmd: Record<string, unknown>): Promise<LoadOutcome>;
  stopGracefully(): Promise<void>;
}

/** A worker record for one model, in either form: `ready`, `stats` and load errors are its state, the rest goes to onRecord. */
function takeRecord(w: ModelWorker, settleLoad: (o: LoadOutcome) => void, rec: Record<string, unknown>): void {
  switch (rec.type) {
    case 'ready':
      w.ready = rec as unknown as WorkerReady;
      settleLoad({ ok: true, ready: w.ready });
      return;
    case 'stats':
      w.stats = rec as unknown as WorkerStats;
      return;
    case 'error':
      if (rec.phase === 'load') {
        settleLoad({ ok: false, code: typeof rec.code === 'string' ? rec.code : undefined, message: String(rec.message ?? 'load failed') });
        return;
      }
      break;
  }
  if (w.onRecord) w.onRecord(rec);
  else if (rec.type === 'error') w.pushTail(`error record: ${String(rec.message)}`);
}

class WorkerProc implements ModelWorker {
  readonly child: SupervisedChild;
  readonly tail: string[] = [];
  ready: WorkerReady | null = null;
  stats: WorkerStats | null = null;
  exit: ExitInfo | null = null;
  /** run-time records (done, request errors) */
  onRecord: ((rec: Record<string, unknown>) => void) | null = null;
  /** resolves when stdout and stderr have both closed (every record has been read) */
  readonly drained: Promise<void>;
  private readonly loaded: Promise<LoadOutcome>;
  private settleLoad!: (o: LoadOutcome) => void;

  constructor(
    sup: Supervisor,
    readonly task: string,
    argv: string[],
    env: Record<string, string>,
    private readonly onLog?: (task: string, line: string) => void,
  ) {
    this.loaded = new Promise((r) => (this.settleLoad = r));
    this.child = sup.start({ argv, env, name: `model_worker:${task}`, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
    // a write after the worker died must not become an uncaught EPIPE
    this.child.stdin?.on('error', () => {});
    const closes: Promise<void>[] = [];
    if (this.child.stdout) {
      const rl = readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity });
      rl.on('line', (line) => this.onStdout(line));
      closes.push(new Promise((r) => rl.once('close', () => r())));
    }
    if (this.child.stderr) {
      const rl = readline.createInterface({ input: this.child.stderr, crlfDelay: Infinity });
      rl.on('line', (line) => {
        this.pushTail(line);
        this.onLog?.(task, line);
      });
      closes.push(new Promise((r) => rl.once('close', () => r())));
    }
    this.drained = Promise.all(closes).then(() => undefined);
    void this.child.exited.then((info) => {
      this.exit = info;
      if (info.reason === 'spawn-failed') this.settleLoad({ ok: false, code: info.errorCode, message: info.error ?? 'spawn failed', exit: info });
      // records printed just before the exit may still be in the pipe: settle after reading them
      else void within(this.drained, 500).then(() => this.settleLoad({ ok: false, message: `exited with ${describeExit(info)} while loading`, exit: info }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): Promise<ExitInfo> {
    return this.child.exited;
  }

  pushTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
  }

  private onStdout(line: string): void {
    const rec = recordOf(line);
    if (!rec) {
      // torch or a library printed to stdout: keep it with the logs
      this.pushTail(`stdout: ${line}`);
      this.onLog?.(this.task, `stdout: ${line}`);
      return;
    }
    if (rec.type !== 'hello') takeRecord(this, this.settleLoad, rec);
  }

  send(cmd: Record<string, unknown>): void {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return;
    stdin.write(`${JSON.stringify(cmd)}\n`);
  }

  load(cmd: Record<string, unknown>): Promise<LoadOutcome> {
    this.send({ type: 'load', ...cmd });
    return this.loaded;
  }

  /** "stop", end of stdin, and up to STATS_WAIT_MS for the stats record and the exit. */
  async stopGracefully(): Promise<void> {
    if (this.exit) return;
    this.send({ type: 'stop' });
    this.child.stdin?.end();
    await within(Promise.all([this.child.exited, this.drained]), STATS_WAIT_MS);
  }
}

/**
 * One model_group.py process hosting every task of the phase: commands get the task's name, records
 * are routed back to the task they name (TaskView). Records without a task (protocol errors) go to
 * the shared stderr tail.
 */
class GroupProc {
  readonly child: SupervisedChild;
  readonly tail: string[] = [];
  exit: ExitInfo | null = null;
  readonly views = new Map<string, TaskView>();
  readonly drained: Promise<void>;
  private stopping: Promise<void> | null = null;

  constructor(sup: Supervisor, tasks: string[], argv: string[], env: Record<string, string>, onLog?: (task: string, line: string) => void) {
    for (const t of tasks) this.views.set(t, new TaskView(this, t));
    const name = tasks.join('+');
    this.child = sup.start({ argv, env, name: `model_group:${name}`, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
    this.child.stdin?.on('error', () => {});
    const closes: Promise<void>[] = [];
    if (this.child.stdout) {
      const rl = readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity });
      rl.on('line', (line) => this.onStdout(line, onLog));
      closes.push(new Promise((r) => rl.once('close', () => r())));
    }
    if (this.child.stderr) {
      const rl = readline.createInterface({ input: this.child.stderr, crlfDelay: Infinity });
      rl.on('line', (line) => {
        this.pushTail(line);
        onLog?.(name, line);
      });
      closes.push(new Promise((r) => rl.once('close', () => r())));
    }
    this.drained = Promise.all(closes).then(() => undefined);
    void this.child.exited.then((info) => {
      this.exit = info;
      for (const v of this.views.values()) {
        if (info.reason === 'spawn-failed') v.settleLoad({ ok: false, code: info.errorCode, message: info.error ?? 'spawn failed', exit: info });
        else void within(this.drained, 500).then(() => v.settleLoad({ ok: false, message: `exited with ${describeExit(info)} while loading`, exit: info }));
      }
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  pushTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
  }

  private onStdout(line: string, onLog?: (task: string, line: string) => void): void {
    const rec = recordOf(line);
    if (!rec) {
      this.pushTail(`stdout: ${line}`);
      onLog?.([...this.views.keys()].join('+'), `stdout: ${line}`);
      return;
    }
    if (rec.type === 'hello') return;
    const view = typeof rec.task === 'string' ? this.views.get(rec.task) : undefined;
    if (!view) {
      if (rec.type === 'error') this.pushTail(`error record: ${String(rec.message)}`);
      return;
    }
    view.onGroupRecord(rec);
  }

  send(cmd: Record<string, unknown>): void {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return;
    stdin.write(`${JSON.stringify(cmd)}\n`);
  }

  /** "stop", end of stdin, and up to STATS_WAIT_MS for every task's stats and the exit; once for all tasks. */
  stopGracefully(): Promise<void> {
    if (this.exit) return Promise.resolve();
    this.stopping ??= (async () => {
      this.send({ type: 'stop' });
      this.child.stdin?.end();
      await within(Promise.all([this.child.exited, this.drained]), STATS_WAIT_MS);
    })();
    return this.stopping;
  }
}

/** One task's share of a GroupProc. */
class TaskView implements ModelWorker {
  ready: WorkerReady | null = null;
  stats: WorkerStats | null = null;
  onRecord: ((rec: Record<string, unknown>) => void) | null = null;
  private readonly loaded: Promise<LoadOutcome>;
  settleLoad!: (o: LoadOutcome) => void;

  constructor(
    private readonly group: GroupProc,
    readonly task: string,
  ) {
    this.loaded = new Promise((r) => (this.settleLoad = r));
  }

  get tail(): string[] {
    return this.group.tail;
  }
  get exit(): ExitInfo | null {
    return this.group.exit;
  }
  get exited(): Promise<ExitInfo> {
    return this.group.child.exited;
  }
  get drained(): Promise<void> {
    return this.group.drained;
  }
  get pid(): number | undefined {
    return this.group.pid;
  }

  pushTail(line: string): void {
    this.group.pushTail(`${this.task}: ${line}`);
  }

  onGroupRecord(rec: Record<string, unknown>): void {
    takeRecord(this, this.settleLoad, rec);
  }

  send(cmd: Record<string, unknown>): void {
    this.group.send({ ...cmd, task: this.task });
  }

  load(cmd: Record<string, unknown>): Promise<LoadOutcome> {
    this.send({ type: 'load', ...cmd });
    return this.loaded;
  }

  stopGracefully(): Promise<void> {
    return this.group.stopGracefully();
  }
}

function describeExit(info: ExitInfo): string {
  return info.code !== null ? `code ${info.code}` : info.signal ? `signal ${info.signal}` : info.reason;
}

// ---- the phase ----------------------------------------------------------------------------------

interface TaskState {
  name: string;
  priority: number;
  hp: boolean;
  worker: ModelWorker;
  schedule: Float64Array | null;
  next: number;
  concurrency: number;
  completed: number;
  issued: number;
  errors: number;
  error?: string;
  latency: number[];
  startDelay: number[];
  service: number[];
  /** scheduled arrivals: send - intended of the counted requests */
  sendLag: number[];
  /** counted requests completed after the phase end (during the drain) */
  afterEnd: number;
  /** streaming summary for progress display; the report uses the exact arrays */
  live: LiveLatency;
}

interface Pending {
  ts: TaskState;
  intended: number;
  counted: boolean;
}

function emptySamples(task: string, measuredNs = 0): TaskSamples {
  return { task, issued: 0, latencyNs: new Float64Array(0), startDelayNs: new Float64Array(0), serviceNs: new Float64Array(0), errors: 0, measuredNs };
}

const clampPriority = (p: number): number => Math.max(-255, Math.min(255, Math.round(p)));

/**
 * Runs one phase of a torch scenario (a standalone phase = one task, mechanism 'none'). Never
 * throws for a failing run: problems come back as status 'failed' / 'skipped' / 'partial' with a
 * one-line reason; programmer errors (no tasks) throw.
 */
export async function runTorchPhase(o: TorchPhaseOptions): Promise<TorchPhaseResult> {
  if (o.tasks.length === 0) throw invalidArg('runTorchPhase: no tasks');
  const notes: string[] = [];
  const names = o.tasks.map((t) => t.task.name);
  let priorityScope: PriorityScope | null = null;
  const done = (status: PhaseStatus, reason?: string, extra: Partial<TorchPhaseResult> = {}): TorchPhaseResult => ({
    status,
    ...(reason ? { reason } : {}),
    samples: extra.samples ?? names.map((n) => emptySamples(n)),
    notes,
    workers: extra.workers ?? [],
    ...(extra.stderrTail ? { stderrTail: extra.stderrTail } : {}),
    ...(o.mechanism === 'stream-priority' ? { priorityScope } : {}),
  });
  const form: TorchProcessForm = o.torchProcess ?? 'per-model';
  // one process for a single task is the same either way
  const single = form === 'single' && o.tasks.length > 1;

  // ---- checks that need no worker ----
  if (o.mechanism === 'sm-partition') return done('skipped', SM_PARTITION_REASON);
  if (o.mechanism === 'throttle') return done('skipped', THROTTLE_REASON);
  if (single && o.mechanism === 'cu-mask') return done('skipped', SINGLE_CU_MASK_REASON);
  if (single && o.mechanism === 'xsched') return done('skipped', SINGLE_XSCHED_REASON);
  if (o.mechanism === 'xsched') {
    if (!o.xsched) return done('failed', 'the xsched mechanism needs xsched: { preload: /path/to/libshim.so }');
    if (!fs.existsSync(o.xsched.preload)) return done('failed', `xsched preload not found: ${o.xsched.preload}`);
  }
  if (o.mechanism === 'stream-priority' && o.tasks.every((t) => t.workload.device === 'cpu')) return done('skipped', STREAM_PRIORITY_CPU_REASON);
  const python = o.python ?? process.env.GPUCOLO_PYTHON ?? DEFAULT_PYTHON;
  const pythonMissing = `python not found: ${python} (set GPUCOLO_PYTHON)`;
  if (python.includes('/') && !fs.existsSync(python)) return done('failed', pythonMissing);
  const workerPath = single ? (o.groupWorkerPath ?? defaultGroupWorkerPath()) : (o.workerPath ?? defaultWorkerPath());
  if (!fs.existsSync(workerPath)) return done('failed', `model worker not found: ${workerPath}`);
  if (o.signal?.aborted) return done('partial', 'aborted before the phase started');

  const maxPriority = Math.max(...o.tasks.map((t) => t.task.priority));
  const isHp = (t: Task): boolean => t.priority === maxPriority;
  const lpNames = o.tasks.filter((t) => !isHp(t.task)).map((t) => t.task.name);
  const hpNames = o.tasks.filter((t) => isHp(t.task)).map((t) => t.task.name);
  if (o.mechanism !== 'none' && o.mechanism !== 'xsched' && lpNames.length === 0) notes.push(`${o.mechanism}: every task has priority ${maxPriority}, so no task is treated as low priority`);

  // ---- gate file ----
  let gate: { dir: string; file: string; fd: number } | null = null;
  if (o.mechanism === 'gate') {
    const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    const dir = fs.mkdtempSync(path.join(base, 'gpucolo-gate-'));
    const file = path.join(dir, 'gate');
    fs.writeFileSync(file, Buffer.alloc(1));
    gate = { dir, file, fd: fs.openSync(file, 'r+') };
  }
  const setGate = (v: 0 | 1): void => {
    if (gate) fs.writeSync(gate.fd, Buffer.from([v]), 0, 1, 0);
  };

  const baseEnv: Record<string, string> = { OPENBLAS_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' };
  const envFor = (t: Task, extra: Record<string, string> = {}): Record<string, string> => {
    const env = { ...baseEnv, ...extra };
    if (o.mechanism === 'xsched' && o.xsched) {
      const prev = process.env.LD_PRELOAD;
      Object.assign(env, o.xsched.env, {
        LD_PRELOAD: prev ? `${o.xsched.preload}:${prev}` : o.xsched.preload,
        XSCHED_AUTO_XQUEUE: 'ON',
        XSCHED_AUTO_XQUEUE_PRIORITY: String(clampPriority(t.priority)),
      });
    }
    return env;
  };
  const loadCmd = (t: TorchPhaseTask, i: number): Record<string, unknown> => ({
    model: t.workload.model,
    batch: t.workload.batch,
    input: t.workload.input ?? null,
    mode: t.workload.mode,
    device: t.workload.device,
    dtype: t.workload.dtype,
    threads: t.workload.threads ?? null,
    streamPriority: o.mechanism === 'stream-priority' ? (isHp(t.task) ? 'high' : 'low') : null,
    gate: gate && !isHp(t.task) ? gate.file : null,
    seed: i + 1,
  });

  const sup = new Supervisor({ graceMs: STOP_GRACE_MS, killWaitMs: 3000 });
  const workers: ModelWorker[] = [];
  const startWorker = (t: TorchPhaseTask, extraEnv?: Record<string, string>): WorkerProc =>
    new WorkerProc(sup, t.task.name, [python, '-u', workerPath], envFor(t.task, extraEnv), o.onLog);
  const reportPids = (): void => {
    o.onWorkers?.(workers.flatMap((w) => (w.pid !== undefined ? [{ task: w.task, pid: w.pid }] : [])));
  };
  const workerInfo = (): TorchWorkerInfo[] =>
    workers.map((w) => ({
      task: w.task,
      ...(w.pid !== undefined ? { pid: w.pid } : {}),
      process: single ? 'single' : 'per-model',
      device: w.ready?.device ?? 'unknown',
      deviceName: w.ready?.deviceName ?? null,
      torch: w.ready?.torch ?? null,
      hip: w.ready?.hip ?? null,
      memoryBytes: w.ready?.memoryBytes ?? null,
    }));

  try {
    // ---- start and load ----
    if (single) {
      // every task's model in one process: the env is the same for all (the per-task env of
      // cu-mask and xsched was refused above)
      const group = new GroupProc(sup, names, [python, '-u', workerPath], envFor(o.tasks[0].task), o.onLog);
      for (const n of names) workers.push(group.views.get(n)!);
      notes.push(`single process: ${names.join(', ')} in one model_group.py process (pid ${group.pid ?? '?'}), each model on its own thread (and, on a GPU, its own stream)`);
    } else {
      o.tasks.forEach((t) => workers.push(startWorker(t)));
    }
    reportPids();
    const loadFail = await loadAll(workers, o.tasks.map(loadCmd), o.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, o.signal, python);
    if (loadFail) return done(loadFail.status, loadFail.reason, { workers: workerInfo(), ...(loadFail.tail ? { stderrTail: loadFail.tail } : {}) });
    for (const w of workers) notes.push(`${w.task}: ${w.ready!.device} (${w.ready!.deviceName ?? 'unknown'}), torch ${w.ready!.torch}${w.ready!.hip ? ` HIP ${w.ready!.hip}` : ''}, loaded in ${Math.round(w.ready!.loadMs)} ms`);

    // ---- mechanisms that depend on what the workers found ----
    if (o.mechanism === 'stream-priority') {
      const cpu = workers.filter((w) => w.ready!.streamPriority === null);
      if (cpu.length > 0) return done('skipped', STREAM_PRIORITY_CPU_REASON, { workers: workerInfo() });
      notes.push(`stream priority: HP ${hpNames.join(', ')} -1, LP ${lpNames.join(', ') || '(none)'} 0`);
      // do the priorities meet? one context, MPS, or AMD's KFD queues; else the phase says not
      priorityScope = streamPriorityScope({ form: single ? 'single' : 'per-model', workers: workerInfo(), mps: o.mps ?? detectMps() });
      notes.push(priorityScope.note);
    }
    if (o.mechanism === 'cu-mask') {
      const notRocm = workers.find((w) => !w.ready!.hip);
      if (notRocm) {
        const r = notRocm.ready!;
        return done('skipped', `cu-mask needs ROCm torch (HSA_CU_MASK): ${notRocm.task} runs on ${r.device} with torch ${r.torch}, no HIP`, { workers: workerInfo() });
      }
      for (let i = 0; i < o.tasks.length; i++) {
        const t = o.tasks[i];
        if (isHp(t.task)) continue;
        const r = workers[i].ready!;
        const cu = r.cuCount ?? 0;
        if (cu < 2) return done('skipped', `cu-mask: ${t.task.name} reports ${cu} compute units, nothing to partition`, { workers: workerInfo() });
        const first = Math.min(cu - 1, Math.max(1, Math.round(o.reserve * cu)));
        const dev = Number(/^cuda:(\d+)$/.exec(r.device)?.[1] ?? 0);
        const mask = `${dev}:${first}-${cu - 1}`;
        await workers[i].stopGracefully();
        await (workers[i] as WorkerProc).child.stop();
        workers[i] = startWorker(t, { HSA_CU_MASK: mask });
        notes.push(`cu-mask: ${t.task.name} limited to CUs ${first}-${cu - 1} of ${cu} (HSA_CU_MASK=${mask}); worker reloaded with the mask`);
      }
      reportPids();
      const again = await loadAll(workers, o.tasks.map(loadCmd), o.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, o.signal, python);
      if (again) return done(again.status, again.reason, { workers: workerInfo(), ...(again.tail ? { stderrTail: again.tail } : {}) });
    }
    if (o.mechanism === 'xsched') {
      notes.push(`xsched: LD_PRELOAD=${o.xsched!.preload}, XSCHED_AUTO_XQUEUE_PRIORITY ${o.tasks.map((t) => `${t.task.name}=${clampPriority(t.task.priority)}`).join(', ')}`);
    }
    if (gate) notes.push(`gate: LP ${lpNames.join(', ') || '(none)'} paused between layers while HP ${hpNames.join(', ')} requests are in flight (${gate.file})`);

    // ---- run ----
    const run = await runRequests(o, workers, isHp, setGate);
    if (run.status === 'ok') {
      await Promise.all(workers.map((w) => w.stopGracefully()));
    }
    for (const w of workers) {
      const s = w.stats;
      if (!s) continue;
      if (gate && !isHp(o.tasks.find((t) => t.task.name === w.task)!.task)) notes.push(`${w.task}: gated ${s.gatePauses} times, ${(s.gatePausedNs / 1e6).toFixed(1)} ms paused`);
      if (s.dropped > 0) notes.push(`${w.task}: ${s.dropped} queued requests dropped at the phase end`);
    }
    if (run.status === 'failed' && run.crashed) await within(run.crashed.drained, 500);
    // ran to its end, but a task completed nothing: not 'ok' (completions.ts)
    const judged = judgeCompletions(run.status, run.reason, run.samples);
    return done(judged.status, judged.reason, {
      samples: run.samples,
      workers: workerInfo(),
      ...(run.crashed ? { stderrTail: [...run.crashed.tail] } : {}),
    });
  } finally {
    setGate(0);
    await sup.stopAll({ graceMs: STOP_GRACE_MS });
    if (gate) {
      fs.closeSync(gate.fd);
      fs.rmSync(gate.dir, { recursive: true, force: true });
    }
  }
}

/** Sends load to every worker and waits for all ready; the first failure, a timeout or an abort ends the wait. */
async function loadAll(
  workers: ModelWorker[],
  cmds: Record<string, unknown>[],
  timeoutMs: number,
  signal: AbortSignal | undefined,
  python: string,
): Promise<{ status: PhaseStatus; reason: string; tail?: string[] } | null> {
  type Ev = { kind: 'loaded'; w: ModelWorker; out: LoadOutcome } | { kind: 'timeout' } | { kind: 'abort' };
  const waiting = new Map<ModelWorker, Promise<Ev>>();
  workers.forEach((w, i) => {
    if (!w.ready) waiting.set(w, w.load(cmds[i]).then((out): Ev => ({ kind: 'loaded', w, out })));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Ev>((r) => (timer = setTimeout(() => r({ kind: 'timeout' }), timeoutMs)));
  let onAbort = (): void => {};
  const aborted = new Promise<Ev>((r) => (onAbort = () => r({ kind: 'abort' })));
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    while (waiting.size > 0) {
      const ev = await Promise.race([...waiting.values(), timeout, aborted]);
      if (ev.kind === 'abort') return { status: 'partial', reason: 'aborted while the workers were loading' };
      if (ev.kind === 'timeout') {
        const slow = [...waiting.keys()];
        return {
          status: 'failed',
          reason: `timed out after ${timeoutMs} ms waiting for ${slow.map((w) => w.task).join(', ')} to load`,
          tail: slow[0].tail.length ? [...slow[0].tail] : undefined,
        };
      }
      const { w, out } = ev;
      waiting.delete(w);
      if (out.ok) continue;
      const tail = w.tail.length ? [...w.tail] : undefined;
      if (out.exit?.reason === 'spawn-failed') {
        const reason = out.code === 'ENOENT' ? `python not found: ${python} (set GPUCOLO_PYTHON)` : `cannot start ${python}: ${out.message}`;
        return { status: 'failed', reason, tail };
      }
      if (out.code === 'ENOTORCH') {
        return { status: 'failed', reason: `PyTorch is not installed for ${python}: apt-get install python3-torch python3-torchvision (or set GPUCOLO_PYTHON)`, tail };
      }
      return { status: 'failed', reason: `${w.task}: ${out.code ? `${out.code}: ` : ''}${out.message}`, tail };
    }
    return null;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

interface RunOutcome {
  status: PhaseStatus;
  reason?: string;
  crashed?: ModelWorker;
  samples: TaskSamples[];
}

/** The timed part: sends requests, collects completions, ends on time, on a crash or on abort. */
async function runRequests(o: TorchPhaseOptions, workers: ModelWorker[], isHp: (t: Task) => boolean, setGate: (v: 0 | 1) => void): Promise<RunOutcome> {
  const span = o.warmupNs + o.durationNs;
  const states: TaskState[] = o.tasks.map((t, i) => ({
    name: t.task.name,
    priority: t.task.priority,
    hp: isHp(t.task),
    worker: workers[i],
    schedule: arrivalTimes(t.task.arrival, span),
    next: 0,
    concurrency: t.task.arrival.kind === 'closed-loop' ? t.task.arrival.concurrency : 0,
    completed: 0,
    issued: 0,
    errors: 0,
    latency: [],
    startDelay: [],
    service: [],
    sendLag: [],
    afterEnd: 0,
    live: new LiveLatency(),
  }));
  const t0 = nowNs() + LEAD_NS;
  const measureStart = t0 + o.warmupNs;
  const end = t0 + span;
  const pending = new Map<number, Pending>();
  let seq = 0;
  let hpOutstanding = 0;
  let sending = true;
  let started = false;
  let timer: NodeJS.Timeout | null = null;
  let finished: { status: PhaseStatus; reason?: string; crashed?: ModelWorker; at: number } | null = null;
  let resolveRun!: () => void;
  const over = new Promise<void>((r) => (resolveRun = r));

  const finish = (status: PhaseStatus, reason?: string, crashed?: ModelWorker): void => {
    if (finished) return;
    finished = { status, reason, crashed, at: nowNs() };
    sending = false;
    if (timer) clearTimeout(timer);
    resolveRun();
  };

  const send = (ts: TaskState, intended: number): void => {
    const id = ++seq;
    const counted = intended >= measureStart;
    if (counted) ts.issued++;
    if (counted && ts.schedule) ts.sendLag.push(Math.max(0, nowNs() - intended));
    pending.set(id, { ts, intended, counted });
    if (ts.hp && ++hpOutstanding === 1) setGate(1);
    ts.worker.send({ type: 'request', id, intendedNs: intended });
  };

  const settle = (id: number, fn: (p: Pending) => void): Pending | undefined => {
    const p = pending.get(id);
    if (!p) return undefined;
    pending.delete(id);
    if (p.ts.hp && --hpOutstanding === 0) setGate(0);
    fn(p);
    return p;
  };

  const afterCompletion = (p: Pending, freedAt: number): void => {
    const ts = p.ts;
    ts.completed++;
    o.onProgress?.({ task: ts.name, completed: ts.completed, elapsedNs: nowNs() - t0, p99Ns: ts.live.count ? ts.live.p(99) : null });
    // closed loop: the slot freed at the worker's end stamp, the next request is intended then
    if (ts.concurrency > 0 && sending && nowNs() < end) send(ts, Math.max(freedAt, t0));
    if (!sending && pending.size === 0) finish('ok');
  };

  for (const ts of states) {
    ts.worker.onRecord = (rec) => {
      const id = typeof rec.id === 'number' ? rec.id : -1;
      if (rec.type === 'done') {
        const endNs = Number(rec.endNs);
        const startNs = Number(rec.startNs);
        const p = settle(id, (p) => {
          if (!p.counted) return;
          p.ts.latency.push(endNs - p.intended);
          p.ts.live.record(endNs - p.intended);
          p.ts.startDelay.push(startNs - p.intended);
          p.ts.service.push(endNs - startNs);
          if (endNs > end) p.ts.afterEnd++;
        });
        if (p) afterCompletion(p, endNs);
      } else if (rec.type === 'error') {
        const msg = String(rec.message ?? 'request failed');
        const p = settle(id, (p) => {
          if (p.counted) p.ts.errors++;
          p.ts.error ??= msg.split('\n')[0];
        });
        if (p) afterCompletion(p, nowNs());
        else ts.worker.pushTail(`error record: ${msg}`);
      }
    };
    void ts.worker.exited.then((info) => {
      if (!finished) finish('failed', `${ts.name} worker exited with ${describeExit(info)} during the run`, ts.worker);
    });
  }

  const onAbort = (): void => finish('partial', 'aborted');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  // the measured window for the caller's host-load figures, while the workers are alive; each
  // edge fires once, and the end always follows a start (a crash or abort closes it early)
  let windowOpen = false;
  let windowClosed = false;
  const openWindow = (): void => {
    if (windowOpen) return;
    windowOpen = true;
    o.onWindow?.('start');
  };
  const closeWindow = (): void => {
    openWindow();
    if (windowClosed) return;
    windowClosed = true;
    o.onWindow?.('end');
  };
  const windowTimers = o.onWindow ? [setTimeout(openWindow, Math.max(0, (measureStart - nowNs()) / 1e6)), setTimeout(closeWindow, Math.max(0, (end - nowNs()) / 1e6))] : [];

  const tick = (): void => {
    timer = null;
    if (finished) return;
    const now = nowNs();
    if (now >= end) {
      // a tick that fired late, past the end, still sends the arrivals intended before the end:
      // they were issued, and the wait counts as their latency (dropping them would hide it)
      for (const ts of states) {
        const s = ts.schedule;
        while (s && ts.next < s.length && t0 + s[ts.next] < end) send(ts, t0 + s[ts.next++]);
      }
      sending = false;
      if (pending.size === 0) return finish('ok');
      timer = setTimeout(() => finish('ok'), DRAIN_NS / 1e6);
      return;
    }
    if (now >= t0 && !started) {
      started = true;
      for (const ts of states) for (let k = 0; k < ts.concurrency; k++) send(ts, t0);
    }
    let due = end;
    for (const ts of states) {
      const s = ts.schedule;
      if (!s) continue;
      while (ts.next < s.length && t0 + s[ts.next] <= now) send(ts, t0 + s[ts.next++]);
      if (ts.next < s.length) due = Math.min(due, t0 + s[ts.next]);
    }
    if (!started) due = Math.min(due, t0);
    // setTimeout has ms granularity and fires late rather than early; lateness becomes latency
    timer = setTimeout(tick, Math.max(0, Math.floor((due - nowNs()) / 1e6)));
  };
  timer = setTimeout(tick, Math.floor(LEAD_NS / 1e6));

  try {
    await over;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    for (const ts of states) ts.worker.onRecord = null;
    setGate(0);
  }
  const f = finished!;
  for (const t of windowTimers) clearTimeout(t);
  if (o.onWindow) closeWindow();
  const measuredNs = f.status === 'ok' ? o.durationNs : Math.max(0, Math.min(f.at, end) - measureStart);
  // requests the driver stopped waiting for: censored at their age then
  const unfinished = new Map<TaskState, number[]>();
  for (const p of pending.values()) {
    if (!p.counted) continue;
    const list = unfinished.get(p.ts) ?? [];
    list.push(p.intended);
    unfinished.set(p.ts, list);
  }
  const samples: TaskSamples[] = states.map((ts) => ({
    task: ts.name,
    issued: ts.issued,
    latencyNs: Float64Array.from(ts.latency),
    startDelayNs: Float64Array.from(ts.startDelay),
    serviceNs: Float64Array.from(ts.service),
    errors: ts.errors,
    ...(ts.error ? { error: ts.error } : {}),
    measuredNs,
    censoredNs: censoredAges(unfinished.get(ts) ?? [], f.at),
    completedAfterEnd: ts.afterEnd,
    submitLagNs: Float64Array.from(ts.sendLag),
  }));
  return { status: f.status, ...(f.reason ? { reason: f.reason } : {}), ...(f.crashed ? { crashed: f.crashed } : {}), samples };
}
