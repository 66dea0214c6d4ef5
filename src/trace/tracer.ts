/**
 * `gpucolo trace`: samples KFD queues at a fixed interval and records them with derived events.
 * Modes: every KFD process; given pids (and their descendants); or a command started here (after
 * a baseline), traced with its descendants, sampled on after it exits (tail) to catch queue
 * destruction, optionally sent SIGTERM at --stop-after. The child runs under the supervisor
 * (own process group, SIGTERM -> grace -> SIGKILL), so no path leaves it behind.
 */
import fs from 'node:fs';
import { pickImpl, type SysfsWalk } from '../native.js';
import { readTopology } from '../kfd/parse.js';
import { KFD_PROC, underRoot } from '../kfd/sysfs-reader.js';
import type { Topology } from '../kfd/types.js';
import type { ExitInfo } from '../supervisor/index.js';
import { parseListen } from './exporter.js';
import { TraceRun, type TracePlan } from './trace-run.js';
import type { TraceFooter, TraceSource } from './schema.js';
import { GpucoloError, outOfRange } from '../errors.js';

export const MIN_INTERVAL_NS = 10e6;
/** long studies (the design notes sample every 10 s): up to a minute; the native thread allows 60 s too */
export const MAX_INTERVAL_NS = 60e9;

/**
 * The tail actually sampled: with an interval above 1 s a short tail could end the trace before
 * any sample follows the command's exit, so it is at least one interval and 100 ms.
 */
export function effectiveTailNs(intervalNs: number, tailNs: number): number {
  return intervalNs > 1e9 ? Math.max(tailNs, intervalNs + 100e6) : tailNs;
}

export interface TraceOptions {
  intervalNs: number;
  /** stop after this long (from the start of the trace); null = until the target ends or Ctrl-C */
  durationNs: number | null;
  /** read debugfs at this interval (rounded to a multiple of intervalNs); null = default */
  debugfsIntervalNs: number | null;
  sources: TraceSource[];
  /** how sysfs is read (src/kfd/sysfs-procs.ts); default 'incremental' */
  sysfsWalk?: SysfsWalk;
  /** incremental: re-read process directories and counters at this interval (rounded to a multiple of intervalNs); null = default */
  countersIntervalNs?: number | null;
  sysfsRoot: string;
  debugfsRoot: string;
  procRoot: string;
  impl?: 'native' | 'ts';
  pids?: number[];
  command?: string[];
  baselineNs: number;
  tailNs: number;
  stopAfterNs: number | null;
  /**
   * file path, or '-' for stdout. Opened once the options are checked and --serve listens; an
   * existing file is replaced by the first record only, so a run that fails before keeps it.
   */
  out: string;
  /** `out` is a generated name: never overwrite, take out-2, out-3... when taken (result.out says which) */
  outUnique?: boolean;
  /** called with the trace file's name once it is open */
  onOpen?: (out: string) => void;
  /** Prometheus endpoint, e.g. 127.0.0.1:9464 */
  serve?: string;
  graceMs?: number;
  /** progress and notices for a person (stderr in the CLI) */
  log?: (line: string) => void;
  /** status line refresh for a terminal; called about once a second */
  status?: (line: string) => void;
  /** stops the trace like Ctrl-C (library use, tests) */
  signal?: AbortSignal;
  /**
   * native thread: hand quiet samples (only register words moved) to JS in batches this old at
   * most; 0 = each at once. Default DELIVER_EVERY_NS (src/trace/trace-run.ts) below 1 s
   * intervals without `serve`, else 0.
   */
  deliverEveryNs?: number;
  /**
   * who joins the native sampler's debugfs tables (SampleAssembler's join): 'native' (default,
   * the addon's join on the sampler's C++ tables) or 'ts' (objects and the TS join; the same
   * trace, kept for comparison: bench/trace.ts)
   */
  join?: 'native' | 'ts';
}

export interface TraceResult {
  out: string;
  samples: number;
  events: number;
  missedIntervals: number;
  endedBy: TraceFooter['endedBy'];
  error?: string;
  errorCode?: string;
  readable: TraceSource[];
  command?: { pid: number; exit: ExitInfo | null };
  metrics?: { host: string; port: number };
}

/**
 * Counters default (vram, sdma, evicted_ms, cu_occupancy, faults, pages; and new entries of a
 * process directory): once a second, or every sample above that. A trace records queues, not
 * counters; live views (gpucolo top) show them at this pace.
 */
export function countersEvery(intervalNs: number, countersIntervalNs: number | null): number {
  const want = countersIntervalNs ?? Math.max(intervalNs, 1e9);
  return Math.max(1, Math.round(want / intervalNs));
}

/** debugfs default: as often as sysfs down to 100 ms; reading hqds makes the kernel read GPU registers. */
export function debugfsEvery(intervalNs: number, debugfsIntervalNs: number | null): number {
  const want = debugfsIntervalNs ?? Math.max(intervalNs, 100e6);
  return Math.max(1, Math.round(want / intervalNs));
}

function canRead(path: string, dir: boolean): boolean {
  try {
    if (dir) fs.readdirSync(path);
    else {
      // O_NONBLOCK: a FIFO in a recorded tree must not wait for a writer; only a regular file counts (input-file.ts)
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const regular = fs.fstatSync(fd).isFile();
      fs.closeSync(fd);
      return regular;
    }
    return true;
  } catch {
    return false;
  }
}

/** The options' checks and what follows from them and the host, before anything runs. */
function planTrace(opts: TraceOptions): TracePlan {
  if (!(opts.intervalNs >= MIN_INTERVAL_NS && opts.intervalNs <= MAX_INTERVAL_NS)) {
    throw outOfRange(`--interval must be between 10ms and 60s (got ${opts.intervalNs / 1e6} ms)`);
  }
  const log = opts.log ?? (() => {});
  const tailNs = effectiveTailNs(opts.intervalNs, opts.tailNs);
  if (tailNs !== opts.tailNs) {
    log(`gpucolo trace: --tail ${opts.tailNs / 1e9}s is shorter than the ${opts.intervalNs / 1e9}s interval; sampling ${tailNs / 1e9}s after the exit so that at least one sample follows it`);
  }
  if (opts.pids?.length && opts.command?.length) throw outOfRange('give either --pid or a command, not both', 'ERR_INVALID_ARG_VALUE');
  if (opts.serve !== undefined) parseListen(opts.serve);
  const impl = pickImpl(opts.impl);
  const readable = readableSources(opts, log);
  let topology: Topology | null = readable.includes('sysfs') || canRead(underRoot(opts.sysfsRoot, 'class/kfd/kfd/topology/nodes'), true) ? readTopology({ sysfsRoot: opts.sysfsRoot, impl }) : null;
  if (topology && topology.nodes.length === 0) topology = null;
  return {
    impl,
    tailNs,
    readable,
    topology,
    debugfsEvery: readable.includes('debugfs') ? debugfsEvery(opts.intervalNs, opts.debugfsIntervalNs) : 0,
    sysfsWalk: opts.sysfsWalk ?? 'incremental',
    countersEvery: countersEvery(opts.intervalNs, opts.countersIntervalNs ?? null),
    log,
  };
}

/** The sources asked for that can be read here; ENOKFD when none can. */
function readableSources(opts: TraceOptions, log: (line: string) => void): TraceSource[] {
  const readable: TraceSource[] = [];
  if (opts.sources.includes('sysfs') && canRead(underRoot(opts.sysfsRoot, KFD_PROC), true)) readable.push('sysfs');
  if (opts.sources.includes('debugfs')) {
    if (canRead(underRoot(opts.debugfsRoot, 'kfd/mqds'), false)) readable.push('debugfs');
    else log(`gpucolo trace: debugfs ${underRoot(opts.debugfsRoot, 'kfd')} is not readable (root only); recording sysfs only: queue ids, types, GPUs`);
  }
  if (readable.length === 0) {
    throw new GpucoloError(`no KFD source readable (${opts.sources.join(', ')}): is the amdgpu driver loaded here? (gpucolo doctor explains)`, { code: 'ENOKFD' });
  }
  return readable;
}

export async function runTrace(opts: TraceOptions): Promise<TraceResult> {
  const run = new TraceRun(opts, planTrace(opts));
  await run.openOutputs();
  run.installSignals();
  await run.startSampling();
  run.scheduleCommand();
  return run.finished();
}
