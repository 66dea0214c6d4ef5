/**
 * The trace file format (JSON Lines, one self-contained record per line; a killed tracer leaves a
 * valid prefix). Every record has `kind` and `t_ns`: monotonic nanoseconds since the trace
 * started (CLOCK_MONOTONIC; the header gives the origin). Documented in README "Trace format".
 */

export const TRACE_SCHEMA = 'gpucolo.trace/1';

export type TraceSource = 'sysfs' | 'debugfs';

export interface TraceGpu {
  /** KFD topology node; null when unknown (a plain dump that shows the GPU in mqds only) */
  node: number | null;
  /** hex, as debugfs prints it */
  gpuId: string;
  name: string;
  gfxTarget: string | null;
  numXcc: number;
}

export interface TraceHeader {
  kind: 'header';
  t_ns: 0;
  schema: typeof TRACE_SCHEMA;
  gpucoloVersion: string;
  /** wall-clock time of t_ns = 0 */
  startedAt: string;
  /** CLOCK_MONOTONIC nanoseconds of t_ns = 0, as a decimal string (may exceed 2^53) */
  monotonicOriginNs: string;
  host: { hostname: string; kernel: string };
  gpus: TraceGpu[];
  /** sources asked for */
  sources: TraceSource[];
  /** sources readable when the trace started (debugfs needs root) */
  readable: TraceSource[];
  intervalNs: number;
  /** debugfs is read every this many ns (a multiple of intervalNs) */
  debugfsIntervalNs: number;
  /**
   * how sysfs was read: 'incremental' (only new queues' files, counters every countersIntervalNs)
   * or 'full' (every file, every sample); absent in traces of older versions (full)
   */
  sysfsWalk?: 'incremental' | 'full';
  /** incremental: process directories and counters are re-read every this many ns */
  countersIntervalNs?: number;
  roots: { sysfs: string; debugfs: string; proc: string };
  /** parser implementation */
  impl: 'native' | 'ts';
  /** 'native-thread': C++ sampling thread on a monotonic clock; 'ts-timer': drift-corrected timers */
  sampler: 'native-thread' | 'ts-timer';
  target: { mode: 'all' | 'pids' | 'command'; pids: number[]; command?: string[] };
  options: { durationNs: number | null; baselineNs: number; tailNs: number; stopAfterNs: number | null };
}

/**
 * One queue in a sample. `key` identifies the queue for the whole trace: `<pid>/q<qid>` when the
 * KFD queue id is known (sysfs), else `<pid>/mqd<address>` (debugfs only: the XCC0 MQD's GART
 * address) or `<pid>/<type><ring base>` (SDMA), else `<pid>/db<doorbell>` (an MQD block cut before
 * its address), else `<pid>/<type><ring base>`, else `<pid>/<type>@line<n>` (nothing identifying
 * was read: the mqds line of its header, valid for that sample only). `@<gpu_id>` is appended
 * when two queues of one process would share a key.
 */
export interface TraceQueue {
  key: string;
  qid: number | null;
  type: string;
  gpuId: string | null;
  node: number | null;
  /** null when debugfs was not read in this sample (or is unreadable) */
  priority: { pipe: number; queue: number; level: 'low' | 'normal' | 'high' | null } | null;
  /** GART address of the XCC0 MQD (compute), null otherwise or without debugfs */
  mqd: string | null;
  /**
   * [inst, pipe, queue, active 0|1] per XCC; null = hqds not read in this sample. active is null
   * when the slot's dump ended before CP_HQD_ACTIVE (unknown, not inactive).
   */
  hqds: [number, number, number, number | null][] | null;
  /** [engine, rlc, active 0|1|null] for an SDMA queue on an RLC (null active: not read); null otherwise */
  sdma: [number, number, number | null] | null;
  inRunlist: boolean | null;
}

export interface TraceProcess {
  pid: number;
  /** pid inside its own namespace when it differs (containers) */
  nsPid: number | null;
  queues: TraceQueue[];
}

export interface TraceSample {
  kind: 'sample';
  /** actual time the sample was taken */
  t_ns: number;
  seq: number;
  /** when it should have been taken (t_ns - intended_ns = jitter) */
  intended_ns: number;
  /** time spent reading the pseudo-files */
  read_ns: number;
  /** time spent parsing them into tables */
  parse_ns: number;
  /** time spent building objects and joining (JS) */
  join_ns: number;
  /**
   * of read_ns + parse_ns: wall time inside file-system calls (opening, reading, closing the
   * pseudo-files, listing directories), i.e. the kernel's side of the sample (its sysfs/debugfs
   * handlers and path walks); the rest is gpucolo's own work. Absent in traces of older versions.
   */
  io_ns?: number;
  /**
   * CPU time (user + system, ns) of the thread that read and parsed this sample, for that work
   * only (the native sampling thread, or the JS thread for the TS sampler); io's system time
   * included. read_cpu_ns / interval is the sampler's own share of a core at this interval.
   */
  read_cpu_ns?: number;
  /** debugfs was read in this sample */
  debugfs: boolean;
  /** intervals skipped before this sample because sampling fell behind */
  missed: number;
  /**
   * gpucolo's own CPU time (user + system, ns, thread CPU clocks, not wall time), a running total
   * read when this sample reached JS: the sampling thread's (NativeSample.threadCpuNs) plus, with
   * the native thread, the JS thread's (NativeSample.jsCpuNs). Only differences mean something:
   * (cpu_ns - previous cpu_ns) / (t_ns - previous t_ns) is the share of one core gpucolo used
   * over that interval (reads of sysfs/debugfs included: they are system time of the sampling
   * thread). The JS thread's part of a sample's own work (objects, join, record) lands in the next
   * sample's total. Absent where no per-thread clock exists (Node 20 without the native core).
   */
  cpu_ns?: number;
  processes: TraceProcess[];
  /** active HQD slots of no known queue: [node, inst, pipe, queue] (debugfs samples) */
  unmatchedHqds: [number, number, number, number][];
  /** problems of this sample (source unreadable, parse errors), one line each */
  issues: string[];
}

export type TraceEventName =
  | 'process-started'
  | 'process-exited'
  | 'queue-created'
  | 'queue-destroyed'
  | 'hqd-mapped'
  | 'hqd-unmapped'
  | 'priority-changed';

export interface TraceEvent {
  kind: 'event';
  /** time of the sample that first showed the change */
  t_ns: number;
  event: TraceEventName;
  /** seq of that sample */
  sample: number;
  pid: number;
  /** queue events: the queue's key, KFD id (sysfs) and what identifies it on the device */
  key?: string;
  qid?: number | null;
  type?: string;
  gpuId?: string | null;
  mqd?: string | null;
  /** hqd-mapped/-unmapped: the slot */
  inst?: number;
  pipe?: number;
  queue?: number;
  /** priority-changed */
  from?: { pipe: number; queue: number } | null;
  to?: { pipe: number; queue: number } | null;
}

export type TraceMarkerName =
  | 'baseline-start'
  | 'baseline-end'
  | 'command-started'
  | 'stop-signal'
  | 'command-exited'
  | 'tail-end'
  | 'interrupted'
  | 'source-lost'
  | 'source-back';

/** Things the tracer did or saw happen to the traced command. */
export interface TraceMarker {
  kind: 'marker';
  t_ns: number;
  marker: TraceMarkerName;
  pid?: number;
  pgid?: number;
  argv?: string[];
  code?: number | null;
  signal?: string | null;
  source?: TraceSource;
  detail?: string;
}

export interface TraceFooter {
  kind: 'footer';
  t_ns: number;
  samples: number;
  events: number;
  missedIntervals: number;
  /** duration reached; the command exited (+ tail); every --pid process exited (+ tail); Ctrl-C/SIGTERM; a write or read failure */
  endedBy: 'duration' | 'command-exit' | 'target-exit' | 'interrupt' | 'error';
  error?: string;
}

export type TraceRecord = TraceHeader | TraceSample | TraceEvent | TraceMarker | TraceFooter;
