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
  const form: TorchProcessForm = o.torchProcess ?? 'per-model';
  const st: TorchPhaseState = {
    o,
    notes: [],
    names: o.tasks.map((t) => t.task.name),
    priorityScope: null,
    // one process for a single task is the same either way
    single: form === 'single' && o.tasks.length > 1,
    python: '',
    workerPath: '',
    isHp: () => false,
    lpNames: [],
    hpNames: [],
    gate: null,
    sup: null as unknown as Supervisor,
    workers: [],
  };
  const refused = checkUpFront(st);
  if (refused) return refused;
  sortPriorities(st);
  st.gate = openGate(o);
  st.sup = new Supervisor({ graceMs: STOP_GRACE_MS, killWaitMs: 3000 });
  try {
    return (await startAndLoad(st)) ?? (await applyLoadedMechanisms(st)) ?? (await runAndCollect(st));
  } finally {
    setGate(st, 0);
    await st.sup.stopAll({ graceMs: STOP_GRACE_MS });
    if (st.gate) {
      fs.closeSync(st.gate.fd);
      fs.rmSync(st.gate.dir, { recursive: true, force: true });
    }
  }
}

/** What runTorchPhase's steps share: the options, the notes so far, the resolved paths, the gate and the workers. */
interface TorchPhaseState {
  o: TorchPhaseOptions;
  notes: string[];
  names: string[];
  priorityScope: PriorityScope | null;
  single: boolean;
  python: string;
  workerPath: string;
  isHp: (t: Task) => boolean;
  lpNames: string[];
  hpNames: string[];
  gate: { dir: string; file: string; fd: number } | null;
  sup: Supervisor;
  workers: ModelWorker[];
}

/** The phase's result with the notes so far (empty samples and no workers unless given). */
function torchDone(st: TorchPhaseState, status: PhaseStatus, reason?: string, extra: Partial<TorchPhaseResult> = {}): TorchPhaseResult {
  return {
    status,
    ...(reason ? { reason } : {}),
    samples: extra.samples ?? st.names.map((n) => emptySamples(n)),
    notes: st.notes,
    workers: extra.workers ?? [],
    ...(extra.stderrTail ? { stderrTail: extra.stderrTail } : {}),
    ...(st.o.mechanism === 'stream-priority' ? { priorityScope: st.priorityScope } : {}),
  };
}

/** Checks that need no worker; resolves python and the worker script. A result when the phase cannot run. */
function checkUpFront(st: TorchPhaseState): TorchPhaseResult | null {
  const { o, single } = st;
  if (o.mechanism === 'sm-partition') return torchDone(st, 'skipped', SM_PARTITION_REASON);
  if (o.mechanism === 'throttle') return torchDone(st, 'skipped', THROTTLE_REASON);
  if (single && o.mechanism === 'cu-mask') return torchDone(st, 'skipped', SINGLE_CU_MASK_REASON);
  if (single && o.mechanism === 'xsched') return torchDone(st, 'skipped', SINGLE_XSCHED_REASON);
  if (o.mechanism === 'xsched') {
    if (!o.xsched) return torchDone(st, 'failed', 'the xsched mechanism needs xsched: { preload: /path/to/libshim.so }');
    if (!fs.existsSync(o.xsched.preload)) return torchDone(st, 'failed', `xsched preload not found: ${o.xsched.preload}`);
  }
  if (o.mechanism === 'stream-priority' && o.tasks.every((t) => t.workload.device === 'cpu')) return torchDone(st, 'skipped', STREAM_PRIORITY_CPU_REASON);
  const python = (st.python = o.python ?? process.env.GPUCOLO_PYTHON ?? DEFAULT_PYTHON);
  const pythonMissing = `python not found: ${python} (set GPUCOLO_PYTHON)`;
  if (python.includes('/') && !fs.existsSync(python)) return torchDone(st, 'failed', pythonMissing);
  const workerPath = (st.workerPath = single ? (o.groupWorkerPath ?? defaultGroupWorkerPath()) : (o.workerPath ?? defaultWorkerPath()));
  if (!fs.existsSync(workerPath)) return torchDone(st, 'failed', `model worker not found: ${workerPath}`);
  if (o.signal?.aborted) return torchDone(st, 'partial', 'aborted before the phase started');
  return null;
}

/** The high-priority tasks (the top priority) and the low ones; a note when no task is low. */
function sortPriorities(st: TorchPhaseState): void {
  const { o } = st;
  const maxPriority = Math.max(...o.tasks.map((t) => t.task.priority));
  const isHp = (st.isHp = (t: Task): boolean => t.priority === maxPriority);
  st.lpNames = o.tasks.filter((t) => !isHp(t.task)).map((t) => t.task.name);
  st.hpNames = o.tasks.filter((t) => isHp(t.task)).map((t) => t.task.name);
  if (o.mechanism !== 'none' && o.mechanism !== 'xsched' && st.lpNames.length === 0) st.notes.push(`${o.mechanism}: every task has priority ${maxPriority}, so no task is treated as low priority`);
}

/** The gate mechanism's one-byte gate file (in /dev/shm where there is one); null for other mechanisms. */
function openGate(o: TorchPhaseOptions): TorchPhaseState['gate'] {
  if (o.mechanism !== 'gate') return null;
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'gpucolo-gate-'));
  const file = path.join(dir, 'gate');
  fs.writeFileSync(file, Buffer.alloc(1));
  return { dir, file, fd: fs.openSync(file, 'r+') };
}

/** Closes (1) or opens (0) the gate, if there is one. */
function setGate(st: TorchPhaseState, v: 0 | 1): void {
  if (st.gate) fs.writeSync(st.gate.fd, Buffer.from([v]), 0, 1, 0);
}

/** A worker's environment: single-threaded BLAS, unbuffered output, and xsched's preload and priority. */
function envFor(st: TorchPhaseState, t: Task, extra: Record<string, string> = {}): Record<string, string> {
  const { o } = st;
  const env: Record<string, string> = { OPENBLAS_NUM_THREADS: '1', PYTHONUNBUFFERED: '1', ...extra };
  if (o.mechanism === 'xsched' && o.xsched) {
    const prev = process.env.LD_PRELOAD;
    Object.assign(env, o.xsched.env, {
      LD_PRELOAD: prev ? `${o.xsched.preload}:${prev}` : o.xsched.preload,
      XSCHED_AUTO_XQUEUE: 'ON',
      XSCHED_AUTO_XQUEUE_PRIORITY: String(clampPriority(t.priority)),
    });
  }
  return env;
}

/** The load command for task i's model. */
function loadCmd(st: TorchPhaseState, t: TorchPhaseTask, i: number): Record<string, unknown> {
  return {
    model: t.workload.model,
    batch: t.workload.batch,
    input: t.workload.input ?? null,
    mode: t.workload.mode,
    device: t.workload.device,
    dtype: t.workload.dtype,
    threads: t.workload.threads ?? null,
    streamPriority: st.o.mechanism === 'stream-priority' ? (st.isHp(t.task) ? 'high' : 'low') : null,
    gate: st.gate && !st.isHp(t.task) ? st.gate.file : null,
    seed: i + 1,
  };
}

/** Starts one task's own worker process. */
function startWorker(st: TorchPhaseState, t: TorchPhaseTask, extraEnv?: Record<string, string>): WorkerProc {
  return new WorkerProc(st.sup, t.task.name, [st.python, '-u', st.workerPath], envFor(st, t.task, extraEnv), st.o.onLog);
}

/** Tells the caller the workers' pids. */
function reportPids(st: TorchPhaseState): void {
  st.o.onWorkers?.(st.workers.flatMap((w) => (w.pid !== undefined ? [{ task: w.task, pid: w.pid }] : [])));
}

/** What each worker is and found, for the result. */
function workerInfo(st: TorchPhaseState): TorchWorkerInfo[] {
  return st.workers.map((w) => ({
    task: w.task,
    ...(w.pid !== undefined ? { pid: w.pid } : {}),
    process: st.single ? 'single' : 'per-model',
    device: w.ready?.device ?? 'unknown',
    deviceName: w.ready?.deviceName ?? null,
    torch: w.ready?.torch ?? null,
    hip: w.ready?.hip ?? null,
    memoryBytes: w.ready?.memoryBytes ?? null,
  }));
}

/** Sends the load commands and waits for every worker; a result when loading failed. */
async function loadWorkers(st: TorchPhaseState): Promise<TorchPhaseResult | null> {
  const { o } = st;
  const fail = await loadAll(st.workers, o.tasks.map((t, i) => loadCmd(st, t, i)), o.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, o.signal, st.python);
  if (fail) return torchDone(st, fail.status, fail.reason, { workers: workerInfo(st), ...(fail.tail ? { stderrTail: fail.tail } : {}) });
  return null;
}

/** Starts the workers (one per task, or one group process) and loads the models; a result when loading failed. */
async function startAndLoad(st: TorchPhaseState): Promise<TorchPhaseResult | null> {
  const { o, names, workers, notes } = st;
  if (st.single) {
    // every task's model in one process: the env is the same for all (the per-task env of
    // cu-mask and xsched was refused above)
    const group = new GroupProc(st.sup, names, [st.python, '-u', st.workerPath], envFor(st, o.tasks[0].task), o.onLog);
    for (const n of names) workers.push(group.views.get(n)!);
    notes.push(`single process: ${names.join(', ')} in one model_group.py process (pid ${group.pid ?? '?'}), each model on its own thread (and, on a GPU, its own stream)`);
  } else {
    o.tasks.forEach((t) => workers.push(startWorker(st, t)));
  }
  reportPids(st);
  const loadFail = await loadWorkers(st);
  if (loadFail) return loadFail;
  for (const w of workers) notes.push(`${w.task}: ${w.ready!.device} (${w.ready!.deviceName ?? 'unknown'}), torch ${w.ready!.torch}${w.ready!.hip ? ` HIP ${w.ready!.hip}` : ''}, loaded in ${Math.round(w.ready!.loadMs)} ms`);
  return null;
}

/** Mechanisms that depend on what the workers found (stream priorities, CU masks), and their notes; a result when one cannot run. */
async function applyLoadedMechanisms(st: TorchPhaseState): Promise<TorchPhaseResult | null> {
  const { o, workers, notes, hpNames, lpNames } = st;
  if (o.mechanism === 'stream-priority') {
    const cpu = workers.filter((w) => w.ready!.streamPriority === null);
    if (cpu.length > 0) return torchDone(st, 'skipped', STREAM_PRIORITY_CPU_REASON, { workers: workerInfo(st) });
    notes.push(`stream priority: HP ${hpNames.join(', ')} -1, LP ${lpNames.join(', ') || '(none)'} 0`);
    // do the priorities meet? one context, MPS, or AMD's KFD queues; else the phase says not
    st.priorityScope = streamPriorityScope({ form: st.single ? 'single' : 'per-model', workers: workerInfo(st), mps: o.mps ?? detectMps() });
    notes.push(st.priorityScope.note);
  }
  if (o.mechanism === 'cu-mask') {
    const refused = await applyCuMask(st);
    if (refused) return refused;
  }
  if (o.mechanism === 'xsched') {
    notes.push(`xsched: LD_PRELOAD=${o.xsched!.preload}, XSCHED_AUTO_XQUEUE_PRIORITY ${o.tasks.map((t) => `${t.task.name}=${clampPriority(t.task.priority)}`).join(', ')}`);
  }
  if (st.gate) notes.push(`gate: LP ${lpNames.join(', ') || '(none)'} paused between layers while HP ${hpNames.join(', ')} requests are in flight (${st.gate.file})`);
  return null;
}

/** cu-mask: restarts each low-priority worker with HSA_CU_MASK over the CUs past the reserve, and reloads; a result when it cannot. */
async function applyCuMask(st: TorchPhaseState): Promise<TorchPhaseResult | null> {
  const { o, workers, notes } = st;
  const notRocm = workers.find((w) => !w.ready!.hip);
  if (notRocm) {
    const r = notRocm.ready!;
    return torchDone(st, 'skipped', `cu-mask needs ROCm torch (HSA_CU_MASK): ${notRocm.task} runs on ${r.device} with torch ${r.torch}, no HIP`, { workers: workerInfo(st) });
  }
  for (let i = 0; i < o.tasks.length; i++) {
    const t = o.tasks[i];
    if (st.isHp(t.task)) continue;
    const r = workers[i].ready!;
    const cu = r.cuCount ?? 0;
    if (cu < 2) return torchDone(st, 'skipped', `cu-mask: ${t.task.name} reports ${cu} compute units, nothing to partition`, { workers: workerInfo(st) });
    const first = Math.min(cu - 1, Math.max(1, Math.round(o.reserve * cu)));
    const dev = Number(/^cuda:(\d+)$/.exec(r.device)?.[1] ?? 0);
    const mask = `${dev}:${first}-${cu - 1}`;
    await workers[i].stopGracefully();
    await (workers[i] as WorkerProc).child.stop();
    workers[i] = startWorker(st, t, { HSA_CU_MASK: mask });
    notes.push(`cu-mask: ${t.task.name} limited to CUs ${first}-${cu - 1} of ${cu} (HSA_CU_MASK=${mask}); worker reloaded with the mask`);
  }
  reportPids(st);
  return loadWorkers(st);
}

/** The timed run, then the workers' own stats as notes, and the judged result. */
async function runAndCollect(st: TorchPhaseState): Promise<TorchPhaseResult> {
  const { o, workers, notes, gate, isHp } = st;
  const run = await runRequests(o, workers, isHp, (v) => setGate(st, v));
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
  return torchDone(st, judged.status, judged.reason, {
    samples: run.samples,
    workers: workerInfo(st),
    ...(run.crashed ? { stderrTail: [...run.crashed.tail] } : {}),
  });
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

/** What the timed part's steps share: the tasks' states, the clock marks, the requests in flight. */
interface RequestRun {
  o: TorchPhaseOptions;
  setGate: (v: 0 | 1) => void;
  states: TaskState[];
  t0: number;
  measureStart: number;
  end: number;
  pending: Map<number, Pending>;
  seq: number;
  hpOutstanding: number;
  sending: boolean;
  started: boolean;
  timer: NodeJS.Timeout | null;
  finished: { status: PhaseStatus; reason?: string; crashed?: ModelWorker; at: number } | null;
  resolveRun: () => void;
  /** the measured window's edges, each fired once */
  windowOpen: boolean;
  windowClosed: boolean;
}

/** The timed part: sends requests, collects completions, ends on time, on a crash or on abort. */
async function runRequests(o: TorchPhaseOptions, workers: ModelWorker[], isHp: (t: Task) => boolean, setGate: (v: 0 | 1) => void): Promise<RunOutcome> {
  const states = taskStates(o, workers, isHp);
  const t0 = nowNs() + LEAD_NS;
  const st: RequestRun = {
    o, setGate, states, t0, measureStart: t0 + o.warmupNs, end: t0 + (o.warmupNs + o.durationNs),
    pending: new Map(), seq: 0, hpOutstanding: 0, sending: true, started: false, timer: null, finished: null,
    resolveRun: () => {}, windowOpen: false, windowClosed: false,
  };
  const over = new Promise<void>((r) => (st.resolveRun = r));
  wireWorkers(st);
  const onAbort = (): void => finishRequests(st, 'partial', 'aborted');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  // the measured window for the caller's host-load figures, while the workers are alive; each
  // edge fires once, and the end always follows a start (a crash or abort closes it early)
  const windowTimers = o.onWindow ? [setTimeout(() => openWindow(st), Math.max(0, (st.measureStart - nowNs()) / 1e6)), setTimeout(() => closeWindow(st), Math.max(0, (st.end - nowNs()) / 1e6))] : [];
  st.timer = setTimeout(() => tick(st), Math.floor(LEAD_NS / 1e6));
  try {
    await over;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    for (const ts of states) ts.worker.onRecord = null;
    setGate(0);
  }
  for (const t of windowTimers) clearTimeout(t);
  if (o.onWindow) closeWindow(st);
  return collectSamples(st);
}

/** Each task's state for the run: its worker, its arrival schedule over warmup + duration, empty tallies. */
function taskStates(o: TorchPhaseOptions, workers: ModelWorker[], isHp: (t: Task) => boolean): TaskState[] {
  const span = o.warmupNs + o.durationNs;
  return o.tasks.map((t, i) => ({
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
}

/** Ends the run once (on time, a crash or an abort): stops sending and wakes runRequests. */
function finishRequests(st: RequestRun, status: PhaseStatus, reason?: string, crashed?: ModelWorker): void {
  if (st.finished) return;
  st.finished = { status, reason, crashed, at: nowNs() };
  st.sending = false;
  if (st.timer) clearTimeout(st.timer);
  st.resolveRun();
}

/** Sends one request intended at `intended` (counted when in the measured window); the first HP one in flight closes the gate. */
function sendRequest(st: RequestRun, ts: TaskState, intended: number): void {
  const id = ++st.seq;
  const counted = intended >= st.measureStart;
  if (counted) ts.issued++;
  if (counted && ts.schedule) ts.sendLag.push(Math.max(0, nowNs() - intended));
  st.pending.set(id, { ts, intended, counted });
  if (ts.hp && ++st.hpOutstanding === 1) st.setGate(1);
  ts.worker.send({ type: 'request', id, intendedNs: intended });
}

/** Takes request `id` out of flight (the last HP one opens the gate) and records it with `fn`. */
function settleRequest(st: RequestRun, id: number, fn: (p: Pending) => void): Pending | undefined {
  const p = st.pending.get(id);
  if (!p) return undefined;
  st.pending.delete(id);
  if (p.ts.hp && --st.hpOutstanding === 0) st.setGate(0);
  fn(p);
  return p;
}

/** After a done or error record: progress, the closed loop's next request, the end of the drain. */
function afterCompletion(st: RequestRun, p: Pending, freedAt: number): void {
  const ts = p.ts;
  ts.completed++;
  st.o.onProgress?.({ task: ts.name, completed: ts.completed, elapsedNs: nowNs() - st.t0, p99Ns: ts.live.count ? ts.live.p(99) : null });
  // closed loop: the slot freed at the worker's end stamp, the next request is intended then
  if (ts.concurrency > 0 && st.sending && nowNs() < st.end) sendRequest(st, ts, Math.max(freedAt, st.t0));
  if (!st.sending && st.pending.size === 0) finishRequests(st, 'ok');
}

/** Listens to every worker: its done and error records, and its exit (a crash ends the run). */
function wireWorkers(st: RequestRun): void {
  for (const ts of st.states) {
    ts.worker.onRecord = (rec) => {
      const id = typeof rec.id === 'number' ? rec.id : -1;
      if (rec.type === 'done') {
        const endNs = Number(rec.endNs);
        const startNs = Number(rec.startNs);
        const p = settleRequest(st, id, (p) => {
          if (!p.counted) return;
          p.ts.latency.push(endNs - p.intended);
          p.ts.live.record(endNs - p.intended);
          p.ts.startDelay.push(startNs - p.intended);
          p.ts.service.push(endNs - startNs);
          if (endNs > st.end) p.ts.afterEnd++;
        });
        if (p) afterCompletion(st, p, endNs);
      } else if (rec.type === 'error') {
        const msg = String(rec.message ?? 'request failed');
        const p = settleRequest(st, id, (p) => {
          if (p.counted) p.ts.errors++;
          p.ts.error ??= msg.split('\n')[0];
        });
        if (p) afterCompletion(st, p, nowNs());
        else ts.worker.pushTail(`error record: ${msg}`);
      }
    };
    void ts.worker.exited.then((info) => {
      if (!st.finished) finishRequests(st, 'failed', `${ts.name} worker exited with ${describeExit(info)} during the run`, ts.worker);
    });
  }
}

/** The measured window's start edge, once. */
function openWindow(st: RequestRun): void {
  if (st.windowOpen) return;
  st.windowOpen = true;
  st.o.onWindow?.('start');
}

/** The measured window's end edge, once, after its start. */
function closeWindow(st: RequestRun): void {
  openWindow(st);
  if (st.windowClosed) return;
  st.windowClosed = true;
  st.o.onWindow?.('end');
}

/** The sending loop, one timer at a time: the arrivals now due, then a timer for the next; at the end, the drain. */
function tick(st: RequestRun): void {
  const { states, t0, end } = st;
  st.timer = null;
  if (st.finished) return;
  const now = nowNs();
  if (now >= end) {
    // a tick that fired late, past the end, still sends the arrivals intended before the end:
    // they were issued, and the wait counts as their latency (dropping them would hide it)
    for (const ts of states) {
      const s = ts.schedule;
      while (s && ts.next < s.length && t0 + s[ts.next] < end) sendRequest(st, ts, t0 + s[ts.next++]);
    }
    st.sending = false;
    if (st.pending.size === 0) return finishRequests(st, 'ok');
    st.timer = setTimeout(() => finishRequests(st, 'ok'), DRAIN_NS / 1e6);
    return;
  }
  if (now >= t0 && !st.started) {
    st.started = true;
    for (const ts of states) for (let k = 0; k < ts.concurrency; k++) sendRequest(st, ts, t0);
  }
  let due = end;
  for (const ts of states) {
    const s = ts.schedule;
    if (!s) continue;
    while (ts.next < s.length && t0 + s[ts.next] <= now) sendRequest(st, ts, t0 + s[ts.next++]);
    if (ts.next < s.length) due = Math.min(due, t0 + s[ts.next]);
  }
  if (!st.started) due = Math.min(due, t0);
  // setTimeout has ms granularity and fires late rather than early; lateness becomes latency
  st.timer = setTimeout(() => tick(st), Math.max(0, Math.floor((due - nowNs()) / 1e6)));
}

/** The run's outcome: per task its samples, with the requests still in flight censored at their age then. */
function collectSamples(st: RequestRun): RunOutcome {
  const { states, pending, end, measureStart, o } = st;
  const f = st.finished!;
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
