/**
 * One distributed training run of workloads/dist_train.py (ddp, allreduce or ps), supervised:
 * every process in its own process group and in the run registry, a timeout, a failing rank
 * stopping the whole job, an AbortSignal for Ctrl-C; then the rank-0 result is validated and a
 * manifest (run_<method>.json) records launcher, argv per rank, exit codes and the runner's
 * overhead (wall time from the first spawn to the last exit vs the script's own start..end).
 *
 * Launchers (see launcher.ts): `direct` starts the N ranks itself with the env torchrun would
 * give them (MASTER_PORT from binding port 0), so gpucolo holds the real rank pids and stops the
 * other ranks the moment one fails; `torchrun` starts one launcher process (its workers are found
 * through /proc when the group is stopped) and reports its exit.
 *
 * Everything that can be checked before a process starts is checked first and thrown as a
 * GpucoloError with code EBADCONFIG (the CLI's exit 2); what the ranks do never rejects: it is
 * in the returned DistributedRunResult (ok, error).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError } from '../../errors.js';
import { VERSION } from '../../version.js';
import {
  Supervisor,
  supervisorWithRegistry,
  type ExitInfo,
  type RegisteredSupervisor,
  type ExitReason,
  type SupervisedChild,
} from '../../supervisor/index.js';
import { writeJsonAtomic } from '../../write.js';
import {
  chooseLauncher,
  defaultPython,
  defaultScriptPath,
  directRankEnv,
  freePort,
  isLocalHost,
  parseEndpoint,
  portBusy,
  resolveProgram,
  torchrunArgv,
  type LauncherChoice,
  type LauncherName,
  type LauncherRequest,
} from './launcher.js';
import {
  DIST_RUN_SCHEMA,
  METHODS,
  PS_IMPLS,
  PS_TOPOLOGIES,
  loadDistributedResult,
  manifestFileName,
  resultFileName,
  scriptSeconds,
  type DistMethod,
  type DistributedResult,
  type PsImpl,
  type PsTopologyName,
} from './schema.js';
import { makeDirs } from '../../fs-dirs.js';
import { writeFileAtomic } from '../../write.js';

/** Options passed through to dist_train.py (unset = the script's default). */
export interface DistributedTrainOptions {
  /** default smallcnn */
  model?: string;
  pretrained?: string;
  dataDir?: string;
  synthetic?: boolean;
  imageSize?: number;
  numClasses?: number;
  trainSamples?: number;
  valSamples?: number;
  epochs?: number;
  batchSize?: number;
  /** DataLoader workers per rank */
  workers?: number;
  lr?: number;
  momentum?: number;
  backend?: 'auto' | 'nccl' | 'gloo';
  seed?: number;
  maxSteps?: number;
  threads?: number;
  /** the script's own collective timeout, s (--timeout-s) */
  scriptTimeoutS?: number;
  /** rank 0 saves the final parameters here (--dump-params) */
  dumpParams?: string;
  /** further script arguments, appended as given */
  extraArgs?: string[];
}

export interface DistributedLaunchOptions {
  psImpl?: PsImpl;
  /** ps only: colocated (default: rank 0 serves and computes) or dedicated (rank 0 only serves, world size - 1 workers) */
  psTopology?: PsTopologyName;
  bucketMb?: number;
  /** ranks on this node (default 2) */
  nprocPerNode?: number;
  /** default 1 */
  nnodes?: number;
  /** default 0 */
  nodeRank?: number;
  /** HOST:PORT of the c10d rendezvous (multi-node; torchrun) */
  rdzvEndpoint?: string;
  /** direct launcher: MASTER_PORT (default: a free port) */
  masterPort?: number;
  /** default 'auto' */
  launcher?: LauncherRequest;
  /** whole-job timeout, ms (0/undefined: none) */
  timeoutMs?: number;
  /** interpreter (default $GPUCOLO_PYTHON or /usr/bin/python3) */
  python?: string;
  /** training program (default: this package's workloads/dist_train.py) */
  script?: string;
  /** result, manifest and logs/ go here */
  outDir: string;
  /** SIGTERM -> SIGKILL grace when stopping ranks, ms (default 5000) */
  graceMs?: number;
  /**
   * direct launcher: once a rank has exited 0 (every rank is past the script's final barrier),
   * how long the others get to exit before they are stopped, ms (default 10000). Torch 1.13 can
   * deadlock in DDP/gloo teardown at interpreter exit (main thread joins a gloo thread that waits
   * for the GIL); the result is already written by then.
   */
  exitGraceMs?: number;
  /** aborting stops every rank; the result says interrupted */
  signal?: AbortSignal;
  /** a supervisor to run in (default: one with a registry file in the per-user default place) */
  supervisor?: Supervisor;
  /** registry file for the supervisor made here (default: per user, see defaultRegistryFile) */
  registryFile?: string;
  /** extra environment for every process (a key set to undefined removes it) */
  env?: Record<string, string | undefined>;
  /** working directory of the processes (default: the current one) */
  cwd?: string;
  onEvent?: (e: DistributedEvent) => void;
}

export interface DistributedRunOptions extends DistributedTrainOptions, DistributedLaunchOptions {
  method: DistMethod;
}

export type DistributedEvent =
  | { type: 'launcher'; method: DistMethod; choice: LauncherChoice }
  | { type: 'started'; method: DistMethod; launcher: LauncherName; pids: (number | null)[]; registryFile?: string }
  | { type: 'exit'; method: DistMethod; rank: number | null; info: ExitInfo }
  | { type: 'timeout'; method: DistMethod }
  | { type: 'done'; method: DistMethod; result: DistributedRunResult };

/** One process of the job: a rank (direct) or the torchrun launcher (rank null). */
export interface ProcessOutcome {
  rank: number | null;
  role: 'rank' | 'torchrun';
  argv: string[];
  /** the distributed variables set for it (direct launcher) */
  env?: Record<string, string>;
  pid: number | null;
  exitCode: number | null;
  signal: string | null;
  reason: ExitReason | 'not-started';
  log: string;
}

export interface DistributedRunResult {
  method: DistMethod;
  launcher: LauncherName;
  why: string;
  ok: boolean;
  /** one line, when not ok */
  error?: string;
  /** one line worth knowing on success (multi-node: the result is on the node that ran rank 0) */
  note?: string;
  /** the rank that failed first (direct), or the one torchrun names; null when none */
  failedRank: number | null;
  /** that rank's exit code (2: the script rejected its arguments) */
  failedExitCode: number | null;
  /** ranks stopped because they had not exited exitGraceMs after another rank exited 0 */
  stoppedAfterExit: number[];
  timedOut: boolean;
  interrupted: boolean;
  worldSize: number;
  outDir: string;
  resultFile: string;
  manifestFile: string;
  logDir: string;
  result: DistributedResult | null;
  /** first spawn -> every process exited, s */
  wallS: number;
  /** end_time - start_time of the result, s */
  scriptS: number | null;
  /** wallS - scriptS */
  overheadS: number | null;
  processes: ProcessOutcome[];
  registryFile?: string;
}

export const DEFAULT_DIST_GRACE_MS = 5000;
export const DEFAULT_EXIT_GRACE_MS = 10_000;

const configError = (message: string, p?: string): GpucoloError => new GpucoloError(message, { code: 'EBADCONFIG', ...(p ? { path: p } : {}) });

const isDir = (p: string): boolean => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};

const posInt = (v: number | undefined, name: string, min = 1): void => {
  if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw configError(`${name} must be an integer >= ${min}, got ${v}`);
};

/** The script arguments (without --out) in a fixed order. */
export function trainArgs(o: DistributedTrainOptions & { method: DistMethod; psImpl?: PsImpl; psTopology?: PsTopologyName; bucketMb?: number }): string[] {
  const a = ['--method', o.method];
  const opt = (flag: string, v: string | number | undefined): void => {
    if (v !== undefined) a.push(flag, String(v));
  };
  opt('--ps-impl', o.psImpl);
  // ps only: the other methods have no server (compare passes the same options to every method)
  opt('--ps-topology', o.method === 'ps' ? o.psTopology : undefined);
  opt('--bucket-mb', o.bucketMb);
  opt('--model', o.model ?? 'smallcnn');
  opt('--pretrained', o.pretrained !== undefined ? path.resolve(o.pretrained) : undefined);
  opt('--data-dir', o.dataDir !== undefined ? path.resolve(o.dataDir) : undefined);
  if (o.synthetic) a.push('--synthetic');
  opt('--image-size', o.imageSize);
  opt('--num-classes', o.numClasses);
  opt('--train-samples', o.trainSamples);
  opt('--val-samples', o.valSamples);
  opt('--epochs', o.epochs);
  opt('--batch-size', o.batchSize);
  opt('--workers', o.workers);
  opt('--lr', o.lr);
  opt('--momentum', o.momentum);
  opt('--backend', o.backend);
  opt('--seed', o.seed);
  opt('--max-steps', o.maxSteps);
  opt('--threads', o.threads);
  opt('--timeout-s', o.scriptTimeoutS);
  opt('--dump-params', o.dumpParams !== undefined ? path.resolve(o.dumpParams) : undefined);
  if (o.extraArgs) a.push(...o.extraArgs);
  return a;
}

export interface ValidatedRun {
  python: string;
  script: string;
  worldSize: number;
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
}

/**
 * Every check that needs no process: options, files, world size. Throws GpucoloError
 * (code EBADCONFIG) with one line. Ports are checked separately (checkPorts: async).
 */
export function validateRun(o: DistributedRunOptions): ValidatedRun {
  if (!(METHODS as readonly string[]).includes(o.method)) throw configError(`unknown method "${o.method}" (${METHODS.join(', ')})`);
  if (o.psImpl !== undefined && !(PS_IMPLS as readonly string[]).includes(o.psImpl)) throw configError(`unknown --ps-impl "${o.psImpl}" (${PS_IMPLS.join(', ')})`);
  if (o.psTopology !== undefined && !(PS_TOPOLOGIES as readonly string[]).includes(o.psTopology)) throw configError(`unknown --ps-topology "${o.psTopology}" (${PS_TOPOLOGIES.join(', ')})`);
  if (o.bucketMb !== undefined && !(Number.isFinite(o.bucketMb) && o.bucketMb >= 0)) throw configError(`--bucket-mb must be a number >= 0, got ${o.bucketMb}`);
  if (o.model !== undefined && (typeof o.model !== 'string' || o.model.trim() === '')) throw configError('--model must name a model (smallcnn or a torchvision classification model)');
  if (!o.outDir) throw configError('--out DIR is required');
  posInt(o.nprocPerNode, '--nproc-per-node');
  posInt(o.nnodes, '--nnodes');
  posInt(o.nodeRank, '--node-rank', 0);
  for (const [name, v] of [['--image-size', o.imageSize], ['--num-classes', o.numClasses], ['--train-samples', o.trainSamples], ['--epochs', o.epochs], ['--batch-size', o.batchSize], ['--max-steps', o.maxSteps], ['--threads', o.threads]] as const) posInt(v, name);
  posInt(o.valSamples, '--val-samples', 0);
  posInt(o.workers, '--workers', 0);
  const nprocPerNode = o.nprocPerNode ?? 2;
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  if (nodeRank >= nnodes) throw configError(`--node-rank ${nodeRank} is out of range for --nnodes ${nnodes}`);
  if (nnodes > 1 && !o.rdzvEndpoint) throw configError('--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)');
  if (o.rdzvEndpoint !== undefined && !parseEndpoint(o.rdzvEndpoint)) throw configError(`--rdzv-endpoint "${o.rdzvEndpoint}" is not HOST:PORT`);
  if (nnodes > 1 && o.launcher === 'direct') throw configError('--launcher direct starts ranks on this node only: a multi-node job needs --launcher torchrun (or auto)');
  if (o.masterPort !== undefined && !(Number.isInteger(o.masterPort) && o.masterPort >= 1 && o.masterPort <= 65535)) throw configError(`--master-port must be 1..65535, got ${o.masterPort}`);
  const worldSize = nprocPerNode * nnodes;
  if (o.method === 'ps' && worldSize < 2) throw configError(`ps needs a world size >= 2 (a server and at least one worker), got ${worldSize}: use --nproc-per-node 2 or more`);

  if (o.dataDir !== undefined && o.synthetic) throw configError('give either --data-dir or --synthetic, not both');
  if (o.dataDir !== undefined) {
    const d = path.resolve(o.dataDir);
    if (!isDir(d)) throw configError(`--data-dir ${o.dataDir}: no such directory`, d);
    const missing = ['train', 'val'].filter((s) => !isDir(path.join(d, s)));
    if (missing.length) throw configError(`--data-dir ${o.dataDir}: missing ${missing.map((m) => `${m}/`).join(' and ')} (an ImageFolder tree: DIR/train/<class>/*, DIR/val/<class>/*)`, d);
  }
  if (o.pretrained !== undefined) {
    const p = path.resolve(o.pretrained);
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(p);
    } catch {
      st = null;
    }
    if (!st) throw configError(`--pretrained ${o.pretrained}: no such file`, p);
    if (!st.isFile()) throw configError(`--pretrained ${o.pretrained}: not a file`, p);
  }
  const pythonArg = o.python ?? defaultPython();
  const python = resolveProgram(pythonArg);
  if (!python) throw configError(`python interpreter ${pythonArg} not found or not executable (use --python PATH or set GPUCOLO_PYTHON)`, pythonArg);
  const script = path.resolve(o.script ?? defaultScriptPath());
  if (!fs.existsSync(script)) throw configError(`training program ${script} not found`, script);
  if (o.cwd !== undefined && !isDir(o.cwd)) throw configError(`working directory ${o.cwd}: no such directory`, o.cwd);
  if (o.timeoutMs !== undefined && !(o.timeoutMs >= 0)) throw configError(`timeout must be >= 0, got ${o.timeoutMs}`);
  return { python: pythonArg.includes('/') ? path.resolve(pythonArg) : python, script, worldSize, nprocPerNode, nnodes, nodeRank };
}

/** The rendezvous / master port must be free where this node would listen on it. */
async function checkPort(port: number, what: string): Promise<void> {
  const busy = await portBusy(port);
  if (busy === 'EADDRINUSE') throw configError(`${what} port ${port} is already in use on this host (another job or a leftover rank?): pick another port`);
  if (busy) throw configError(`${what} port ${port} cannot be bound here (${busy})`);
}

export async function checkPorts(o: DistributedRunOptions, v: ValidatedRun): Promise<void> {
  if (o.rdzvEndpoint) {
    const ep = parseEndpoint(o.rdzvEndpoint)!;
    // the store listens on the node whose address the endpoint names (node 0 by convention)
    if (isLocalHost(ep.host) && (v.nodeRank === 0 || v.nnodes === 1)) await checkPort(ep.port, `--rdzv-endpoint ${o.rdzvEndpoint}:`);
  }
  if (o.masterPort !== undefined) await checkPort(o.masterPort, '--master-port');
}

/** A supervisor with a registry file in the per-user default place (or the given file). */
export function distributedSupervisor(opts: { registryFile?: string; graceMs?: number } = {}): RegisteredSupervisor {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const runId = `distributed-${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  return supervisorWithRegistry({ runId, registryFile: opts.registryFile, graceMs: opts.graceMs ?? DEFAULT_DIST_GRACE_MS });
}

// ---- log tails ----------------------------------------------------------------------------------

function readTail(file: string, bytes = 8192): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(bytes, size);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The last lines of a log as one line: the script's own error line ("dist_train rank R: ...")
 * when there is one, else the last `n` non-empty lines joined with " | ".
 */
export function logTail(file: string, n = 3, maxChars = 400): string {
  const lines = readTail(file)
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) return '(log empty)';
  const own = lines.filter((l) => /dist_train rank \d+:/.test(l)).pop();
  let text = own ? own.replace(/^.*?(dist_train rank \d+:)/, '$1') : lines.slice(-n).map((l) => l.trim()).join(' | ');
  if (text.length > maxChars) text = `...${text.slice(text.length - maxChars + 3)}`;
  return text;
}

const exitText = (info: ExitInfo): string =>
  info.reason === 'spawn-failed'
    ? `could not start: ${info.error ?? info.errorCode ?? 'spawn failed'}`
    : info.signal
      ? `was killed by signal ${info.signal}`
      : `exited with code ${info.code}`;

const failed = (info: ExitInfo): boolean => info.reason === 'spawn-failed' || info.signal !== null || info.code !== 0;

const fmtS = (s: number): string => (s >= 10 ? s.toFixed(0) : s >= 1 ? s.toFixed(1) : s.toFixed(2));

/** torchrun's per-rank files: <logDir>/<run id>_<rand>/attempt_<n>/<local rank>/{stdout,stderr}.log */
function torchrunRankLogs(logDir: string): { localRank: number; file: string }[] {
  const out: { localRank: number; file: string }[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.isFile() && /^(stdout|stderr)\.log$/.test(e.name)) {
        const lr = Number(path.basename(path.dirname(p)));
        if (Number.isInteger(lr)) out.push({ localRank: lr, file: p });
      }
    }
  };
  walk(logDir, 0);
  return out.sort((a, b) => a.localRank - b.localRank || a.file.localeCompare(b.file));
}

// ---- the run ------------------------------------------------------------------------------------

/** One process of the job, with its supervised child once started and its exit once seen. */
export interface JobProcess {
  child: SupervisedChild | null;
  outcome: ProcessOutcome;
  info: ExitInfo | null;
}

/** How the job went, as the supervision step saw it; read by the outcome step. */
export interface DistributedJob {
  procs: JobProcess[];
  timedOut: boolean;
  interrupted: boolean;
  firstFailure: { index: number; info: ExitInfo } | null;
  /** ranks still running exitGraceMs after another exited 0, and which one that was */
  stragglers: { ranks: (number | null)[]; after: number | null } | null;
  /** first spawn -> every process exited, s */
  wallS: number;
}

/** Where a method's run writes; earlier logs and a stale result of this method are removed first. */
function prepareOutputDir(opts: DistributedRunOptions): { outDir: string; logDir: string; resultFile: string; manifestFile: string } {
  const outDir = path.resolve(opts.outDir);
  const logDir = path.join(outDir, 'logs', opts.method);
  makeDirs(logDir);
  // logs of an earlier run of this method (maybe with the other launcher) must not mix with these
  for (const f of fs.readdirSync(logDir)) if (/^rank_\d+\.log$|^launcher\.log$|^torchrun$/.test(f)) fs.rmSync(path.join(logDir, f), { recursive: true, force: true });
  const resultFile = path.join(outDir, resultFileName(opts.method));
  const manifestFile = path.join(outDir, manifestFileName(opts.method));
  // a stale result of an earlier run must never pass for this one's
  fs.rmSync(resultFile, { force: true });
  if (opts.dumpParams) fs.rmSync(path.resolve(opts.dumpParams), { force: true });
  return { outDir, logDir, resultFile, manifestFile };
}

/** The processes to start, not started yet: N ranks (direct) or one torchrun; each log created empty. */
async function planProcesses(opts: DistributedRunOptions, v: ValidatedRun, launcher: LauncherName, logDir: string, args: string[]): Promise<JobProcess[]> {
  const procs: JobProcess[] = [];
  if (launcher === 'direct') {
    const port = opts.masterPort ?? (await freePort());
    for (let r = 0; r < v.worldSize; r++) {
      const log = path.join(logDir, `rank_${r}.log`);
      writeFileAtomic(log, '', { fsync: false }); // never through a symlink
      const distEnv = directRankEnv(r, v.worldSize, port);
      procs.push({ child: null, info: null, outcome: { rank: r, role: 'rank', argv: [v.python, v.script, ...args], env: distEnv, pid: null, exitCode: null, signal: null, reason: 'not-started', log } });
    }
  } else {
    const trDir = path.join(logDir, 'torchrun');
    makeDirs(trDir);
    const log = path.join(logDir, 'launcher.log');
    writeFileAtomic(log, '', { fsync: false });
    const argv = torchrunArgv({ python: v.python, script: v.script, scriptArgs: args, nprocPerNode: v.nprocPerNode, nnodes: v.nnodes, nodeRank: v.nodeRank, rdzvEndpoint: opts.rdzvEndpoint, logDir: trDir });
    procs.push({ child: null, info: null, outcome: { rank: null, role: 'torchrun', argv, pid: null, exitCode: null, signal: null, reason: 'not-started', log } });
  }
  return procs;
}

/**
 * Starts the job's processes and waits for all of them: the first failing rank, the timeout, an
 * abort or ranks hung after another exited 0 stop the whole job (job.* says which).
 */
class JobSupervision {
  private stopping: Promise<ExitInfo[]> | null = null;
  private exitTimer: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly onAbort = (): void => {
    if (this.stopping) return;
    this.job.interrupted = true;
    void this.stopAll();
  };

  constructor(
    private readonly job: DistributedJob,
    private readonly opts: DistributedRunOptions,
    private readonly supervisor: Supervisor,
    private readonly graceMs: number,
  ) {}

  private emit(e: DistributedEvent): void {
    this.opts.onEvent?.(e);
  }

  private stopAll(): Promise<ExitInfo[]> {
    return (this.stopping ??= Promise.all(this.job.procs.map((p) => (p.child ? p.child.stop({ graceMs: this.graceMs }) : Promise.resolve(p.info!)))));
  }

  private start(cwd: string | undefined): void {
    const { opts } = this;
    for (const p of this.job.procs) {
      const extra = p.outcome.role === 'torchrun' ? { PYTHONUNBUFFERED: '1' } : p.outcome.env;
      const child = this.supervisor.start({
        argv: p.outcome.argv,
        ...(cwd ? { cwd } : {}),
        env: { ...opts.env, ...extra },
        name: p.outcome.rank === null ? `dist-${opts.method}-torchrun` : `dist-${opts.method}-rank${p.outcome.rank}`,
        stdin: 'ignore',
        stdout: { file: p.outcome.log, append: true },
        stderr: { file: p.outcome.log, append: true },
      });
      p.child = child;
      p.outcome.pid = child.pid ?? null;
    }
  }

  private watchExits(): void {
    const { procs } = this.job;
    const exitGraceMs = this.opts.exitGraceMs ?? DEFAULT_EXIT_GRACE_MS;
    procs.forEach((p, i) => {
      void p.child!.exited.then((info) => {
        p.info = info;
        this.emit({ type: 'exit', method: this.opts.method, rank: p.outcome.rank, info });
        // the first rank to fail takes the job down: the others would wait in a collective
        if (!this.stopping && failed(info)) {
          this.job.firstFailure = { index: i, info };
          void this.stopAll();
        } else if (!this.stopping && !this.exitTimer && procs.length > 1 && procs.some((q) => !q.info)) {
          this.exitTimer = setTimeout(() => {
            if (this.stopping) return;
            this.job.stragglers = { ranks: procs.filter((q) => !q.info).map((q) => q.outcome.rank), after: p.outcome.rank };
            void this.stopAll();
          }, exitGraceMs);
        }
      });
    });
  }

  private startTimeout(): void {
    const { opts } = this;
    if (!(opts.timeoutMs && opts.timeoutMs > 0)) return;
    this.timer = setTimeout(() => {
      if (this.stopping) return;
      this.job.timedOut = true;
      this.emit({ type: 'timeout', method: opts.method });
      void this.stopAll();
    }, opts.timeoutMs);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.exitTimer) clearTimeout(this.exitTimer);
  }

  async run(cwd: string | undefined, launcher: LauncherName, registryFile: string | undefined): Promise<void> {
    const { job, opts } = this;
    const t0 = performance.now();
    this.start(cwd);
    this.emit({ type: 'started', method: opts.method, launcher, pids: job.procs.map((p) => p.outcome.pid), ...(registryFile ? { registryFile } : {}) });
    this.watchExits();
    this.startTimeout();
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    try {
      await Promise.all(job.procs.map((p) => p.child!.exited));
      job.wallS = (performance.now() - t0) / 1000;
      this.clearTimers();
      // a stop has the final word on how each group ended; else stop what the leaders left
      const finals = this.stopping ? await this.stopping : await Promise.all(job.procs.map((p) => (p.child!.groupAlive() ? p.child!.stop({ graceMs: this.graceMs }) : p.child!.exited)));
      finals.forEach((info, i) => {
        const o = job.procs[i].outcome;
        o.exitCode = info.code;
        o.signal = info.signal;
        o.reason = info.reason;
      });
    } finally {
      this.clearTimers();
      opts.signal?.removeEventListener('abort', this.onAbort);
    }
  }
}

/**
 * The root cause: a rank that died by a signal of its own (OOM killer, crash) while another
 * noticed the broken connection and exited with an error code - whichever exit was seen first.
 */
function rootFailure(job: DistributedJob): { index: number; info: ExitInfo } | null {
  const ff = job.firstFailure;
  if (ff && ff.info.signal === null) {
    const dying = job.procs.findIndex((q, i) => i !== ff.index && q.outcome.reason === 'signaled' && q.info && q.info.signal !== null);
    if (dying >= 0) return { index: dying, info: job.procs[dying].info! };
  }
  return ff;
}

export interface DistributedOutcome {
  error?: string;
  note?: string;
  failedRank: number | null;
  failedExitCode: number | null;
  result: DistributedResult | null;
}

/** The error (or note) a finished job gets, and rank 0's result when it ran through. */
export function describeOutcome(
  job: DistributedJob,
  c: { method: DistMethod; logDir: string; resultFile: string; nnodes: number; graceMs: number; timeoutMs?: number; exitGraceMs?: number },
): DistributedOutcome {
  const { procs } = job;
  const o: DistributedOutcome = { failedRank: null, failedExitCode: null, result: null };
  const ff = rootFailure(job);
  const st = job.stragglers;
  const stragglerText = st
    ? `${st.ranks.map((r) => `rank ${r}`).join(', ')} had not exited ${fmtS((c.exitGraceMs ?? DEFAULT_EXIT_GRACE_MS) / 1000)} s after rank ${st.after} exited 0 (hung in teardown after the final barrier): stopped`
    : null;
  if (job.interrupted) {
    o.error = 'interrupted';
  } else if (job.timedOut) {
    const name = (p: JobProcess): string => (p.outcome.rank === null ? 'torchrun' : `rank ${p.outcome.rank}`);
    const killed = procs.filter((p) => p.outcome.reason === 'killed').map(name);
    o.error = `timed out after ${fmtS((c.timeoutMs ?? 0) / 1000)} s: stopped ${procs.length > 1 ? `all ${procs.length} ranks` : name(procs[0])} with SIGTERM${killed.length ? ` (${killed.join(', ')} SIGKILLed after the ${fmtS(c.graceMs / 1000)} s grace)` : ''}`;
  } else if (ff) {
    const p = procs[ff.index];
    if (p.outcome.role === 'rank') {
      o.failedRank = p.outcome.rank;
      o.failedExitCode = ff.info.code;
      const others = procs.length - 1;
      o.error = `rank ${o.failedRank} ${exitText(ff.info)}: ${logTail(p.outcome.log)}${others > 0 ? `; stopped the other ${others === 1 ? 'rank' : `${others} ranks`} (log ${p.outcome.log})` : ` (log ${p.outcome.log})`}`;
    } else {
      const t = torchrunFailure(p.outcome.log, path.join(c.logDir, 'torchrun'));
      o.failedRank = t.rank;
      o.failedExitCode = t.code;
      o.error = `torchrun ${exitText(ff.info)}${t.rank !== null ? ` (rank ${t.rank} failed${t.code !== null ? ` with exit code ${t.code}` : ''})` : ''}: ${t.tail}`;
    }
  } else {
    readResult(o, c, stragglerText);
  }
  return o;
}

/** Every process exited 0 (or hung after that): rank 0's result file, or why there is none. */
function readResult(o: DistributedOutcome, c: { method: DistMethod; resultFile: string; nnodes: number }, stragglerText: string | null): void {
  const { resultFile } = c;
  try {
    o.result = loadDistributedResult(resultFile);
    if (o.result.method !== c.method) o.error = `${resultFile}: method is ${o.result.method}, expected ${c.method}`;
    else if (stragglerText) o.note = `${stragglerText}; the result was complete`;
  } catch (err) {
    o.result = null;
    if (stragglerText) o.error = `${stragglerText}, and ${fs.existsSync(resultFile) ? (err as Error).message : `rank 0 wrote no result file ${resultFile}`}`;
    else if (fs.existsSync(resultFile)) o.error = (err as Error).message;
    // several nodes: global rank 0 may live on another node, which then holds the result
    else if (c.nnodes > 1) o.note = `no result file on this node: rank 0 ran on another node (its --out holds ${path.basename(resultFile)})`;
    else o.error = `every rank exited 0 but rank 0 wrote no result file ${resultFile}`;
  }
}

/** run_<method>.json: what ran, how each process ended, and the runner's overhead. */
function writeManifest(out: DistributedRunResult, job: DistributedJob, opts: DistributedRunOptions, v: ValidatedRun, startedAt: string, registryFile: string | undefined): void {
  const { procs } = job;
  writeJsonAtomic(out.manifestFile, {
    schema: DIST_RUN_SCHEMA,
    gpucoloVersion: VERSION,
    method: out.method,
    launcher: out.launcher,
    why: out.why,
    ok: out.ok,
    error: out.error ?? null,
    note: out.note ?? null,
    failed_rank: out.failedRank,
    stopped_after_exit: out.stoppedAfterExit,
    timed_out: job.timedOut,
    interrupted: job.interrupted,
    world_size: v.worldSize,
    /** ps: which layout ran (colocated: rank 0 serves and computes; dedicated: rank 0 only serves) */
    ps_topology: opts.method === 'ps' ? (opts.psTopology ?? 'colocated') : null,
    nproc_per_node: v.nprocPerNode,
    nnodes: v.nnodes,
    node_rank: v.nodeRank,
    python: v.python,
    script: v.script,
    started_at: startedAt,
    ended_at: new Date().toISOString(),
    wall_s: out.wallS,
    script_s: out.scriptS,
    overhead_s: out.overheadS,
    result_file: fs.existsSync(out.resultFile) ? out.resultFile : null,
    registry_file: registryFile ?? null,
    exit_codes: procs.map((p) => p.outcome.exitCode),
    processes: procs.map((p) => ({ rank: p.outcome.rank, role: p.outcome.role, pid: p.outcome.pid, argv: p.outcome.argv, env: p.outcome.env ?? null, exit_code: p.outcome.exitCode, signal: p.outcome.signal, reason: p.outcome.reason, log: p.outcome.log })),
    ...(out.launcher === 'torchrun' ? { torchrun_logs: torchrunRankLogs(path.join(out.logDir, 'torchrun')).map((l) => l.file) } : {}),
  });
}

/**
 * Runs one method. Throws (GpucoloError, code EBADCONFIG) only for what is wrong before any
 * process starts; everything the ranks do is in the result.
 */
export async function runDistributed(opts: DistributedRunOptions): Promise<DistributedRunResult> {
  const v = validateRun(opts);
  await checkPorts(opts, v);
  const emit = (e: DistributedEvent): void => opts.onEvent?.(e);
  const choice = await chooseLauncher({ launcher: opts.launcher ?? 'auto', nnodes: v.nnodes, python: v.python });
  emit({ type: 'launcher', method: opts.method, choice });
  if (choice.launcher === 'direct' && v.nnodes > 1) throw configError('the direct launcher is single-node only');
  if (choice.launcher === 'torchrun' && opts.masterPort !== undefined) throw configError('--master-port is for the direct launcher; torchrun picks its own (use --rdzv-endpoint)');

  const { outDir, logDir, resultFile, manifestFile } = prepareOutputDir(opts);
  const args = [...trainArgs(opts), '--out', resultFile];
  const graceMs = opts.graceMs ?? DEFAULT_DIST_GRACE_MS;

  const own = opts.supervisor ? null : distributedSupervisor({ registryFile: opts.registryFile, graceMs });
  const supervisor = opts.supervisor ?? own!.supervisor;
  const registryFile = own?.registryFile ?? supervisor.registryFile;

  const job: DistributedJob = { procs: [], timedOut: false, interrupted: false, firstFailure: null, stragglers: null, wallS: 0 };
  const startedAt = new Date().toISOString();
  try {
    if (opts.signal?.aborted) {
      job.interrupted = true;
    } else {
      const cwd = opts.cwd !== undefined ? path.resolve(opts.cwd) : undefined;
      job.procs = await planProcesses(opts, v, choice.launcher, logDir, args);
      await new JobSupervision(job, opts, supervisor, graceMs).run(cwd, choice.launcher, registryFile);
    }
  } finally {
    own?.dispose();
  }

  const { error, note, failedRank, failedExitCode, result } = describeOutcome(job, {
    method: opts.method,
    logDir,
    resultFile,
    nnodes: v.nnodes,
    graceMs,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.exitGraceMs !== undefined ? { exitGraceMs: opts.exitGraceMs } : {}),
  });
  const scriptS = result ? scriptSeconds(result) : null;
  const overheadS = scriptS !== null ? job.wallS - scriptS : null;
  const st = job.stragglers;
  const out: DistributedRunResult = {
    method: opts.method,
    launcher: choice.launcher,
    why: choice.why,
    ok: error === undefined,
    ...(error !== undefined ? { error } : {}),
    ...(note !== undefined ? { note } : {}),
    failedRank,
    failedExitCode,
    stoppedAfterExit: st ? st.ranks.filter((r): r is number => r !== null) : [],
    timedOut: job.timedOut,
    interrupted: job.interrupted,
    worldSize: v.worldSize,
    outDir,
    resultFile,
    manifestFile,
    logDir,
    result: error === undefined ? result : null,
    wallS: round3(job.wallS),
    scriptS: scriptS !== null ? round3(scriptS) : null,
    overheadS: overheadS !== null ? round3(overheadS) : null,
    processes: job.procs.map((p) => p.outcome),
    ...(registryFile ? { registryFile } : {}),
  };
  writeManifest(out, job, opts, v, startedAt, registryFile);
  emit({ type: 'done', method: opts.method, result: out });
  return out;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Which rank torchrun says failed, and the best tail: that rank's stderr.log, else the launcher's log. */
function torchrunFailure(launcherLog: string, trDir: string): { rank: number | null; code: number | null; tail: string } {
  const text = readTail(launcherLog, 16384);
  const m = /rank\s*:\s*(\d+)\s*\(local_rank\s*:\s*(\d+)\)\s*\n?\s*exitcode\s*:\s*(-?\d+)/.exec(text);
  const rank = m ? Number(m[1]) : null;
  const local = m ? Number(m[2]) : null;
  const logs = torchrunRankLogs(trDir);
  const pick = (lr: number | null): string | null => {
    for (const l of logs.filter((x) => (lr === null || x.localRank === lr) && x.file.endsWith('stderr.log'))) {
      const t = logTail(l.file);
      if (t !== '(log empty)') return t;
    }
    return null;
  };
  const tail = pick(local) ?? logTail(launcherLog);
  return { rank, code: m ? Number(m[3]) : null, tail };
}
