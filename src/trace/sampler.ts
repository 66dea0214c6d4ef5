/**
 * Takes samples of the KFD pseudo-files at a fixed interval and hands them over raw (tables, not
 * objects). Two implementations, one output (NativeSample):
 *  - 'native-thread': a C++ thread on CLOCK_MONOTONIC with absolute deadlines, delivering through
 *    a ThreadSafeFunction (src/native.ts startSampler);
 *  - 'ts-timer': setTimeout re-armed against absolute deadlines (drift-corrected), reading with
 *    the TS readers.
 * Both skip deadlines they are late for (reported as `missed`) rather than bursting to catch up.
 *
 * Most samples repeat the one before byte for byte, so both skip what did not change: a debugfs
 * file whose bytes equal the previous read is not parsed, and a part (procs, mqds, hqds, rls) equal
 * to the previous sample's is handed on as the very same object as then (named in `same`), which
 * lets SampleAssembler see an unchanged sample by reference. A file that could not be read is never
 * `same`, and the next good read of it is parsed again.
 *
 * CPU accounting (thread CPU clocks, not wall time): every sample carries `threadCpuNs`, the
 * cumulative CPU time of the thread that took it (the native sampling thread, or the JS thread
 * for the TS sampler), and a native-thread sample also `jsCpuNs`, the JS thread's cumulative CPU
 * time when it reached JS. samplerThreadsCpuNs() sums the native sampling threads of this process.
 */
import { loadNative, type JoinSampleDumps, type NativeReadError, type NativeSample, type NativeSamplerOptions, type SysfsWalk } from '../native.js';
import { parseHqdsTs } from '../kfd/hqds-parser.js';
import { parseMqdsTs } from '../kfd/mqds-parser.js';
import { parseRlsTs } from '../kfd/rls-parser.js';
import type { HqdsRaw, MqdsRaw, ProcsRaw, RlsRaw } from '../kfd/raw.js';
import { underRoot } from '../kfd/sysfs-reader.js';
import { ProcsWalkerTs } from '../kfd/sysfs-procs.js';
import { PidStartReader } from './pid-starts.js';
import { ioClock, timedIo } from '../kfd/io-clock.js';
import { issueCodeText, readInputFile } from '../input-file.js';
import { GpucoloError } from '../errors.js';

export type { NativeSample as RawSample };

export interface SamplerOptions {
  sysfsRoot: string;
  debugfsRoot: string;
  intervalNs: number;
  /** read debugfs every N-th sample; 0 = never */
  debugfsEvery: number;
  /** stop after this many samples; 0 = until stop() */
  maxSamples?: number;
  /** 'native' (thread) or 'ts' (timers); default native when the addon is loaded */
  impl?: 'native' | 'ts';
  /** how the proc tree is read (src/kfd/sysfs-procs.ts); default 'incremental' */
  sysfsWalk?: SysfsWalk;
  /** incremental walk: re-read process directories and counters every N-th sample; default 1 */
  countersEvery?: number;
  /**
   * the procfs root: read the start time of new and changed KFD processes when a sample is taken
   * (NativeSample.pidStarts; both samplers); undefined = never read /proc
   */
  procRoot?: string;
  /**
   * native thread: hold quiet samples and hand them to JS in batches, once the oldest held one is
   * this old (ns), or with the next sample that is not quiet; 0 or undefined = each sample as it
   * is taken. Quiet, with procRoot: no process new and no pid reused (the JS side reads /proc
   * about those); without it: the same proc tables and each debugfs file the same or only
   * word-patched (the JS side reads start times itself when queues change). A batch
   * wakes the JS thread once instead of once per sample (the wake-up, with cold caches, was most
   * of a sample's JS time at 100 ms); samples still arrive one onSample call each, in order.
   * stop() hands over what is held before it resolves. The TS sampler ignores it (it samples on
   * the JS thread).
   */
  deliverEveryNs?: number;
  /**
   * native thread: false = the debugfs tables come without their words (NativeSample.wordsOmitted),
   * for a consumer that joins through Sampler.joinDumps; the TS sampler ignores it
   */
  debugfsWords?: boolean;
}

export interface Sampler {
  kind: 'native-thread' | 'ts-timer';
  /** native thread: the addon's join of the sample in onSample now (NativeSamplerHandle.joinDumps) */
  joinDumps?: JoinSampleDumps;
  /** CLOCK_MONOTONIC ns of t = 0 */
  originNs: bigint;
  stop(): Promise<void>;
  /** resolves when the sampler stopped by itself (maxSamples) or after stop() */
  done: Promise<void>;
}

/**
 * CPU time (user + system, ns) the calling thread has used since it started: the addon's
 * CLOCK_THREAD_CPUTIME_ID when the native core is loaded, else process.threadCpuUsage() where Node
 * has it (>= 23.9), else null: Node 20 without the addon has no per-thread clock, and
 * process.cpuUsage() would count every thread of the process (the sampling thread, GC helpers,
 * libuv's pool). Called on the JS thread it measures the JS thread.
 */
export function jsThreadCpuNs(): number | null {
  const native = loadNative();
  if (native) {
    const ns = native.threadCpuNs();
    return ns >= 0 ? ns : null;
  }
  const threadCpuUsage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  if (typeof threadCpuUsage === 'function') {
    const u = threadCpuUsage.call(process);
    return (u.user + u.system) * 1e3;
  }
  return null;
}

/** CPU time of the native sampling threads that ended (as of their last sample), and the live ones' last sample. */
let endedSamplersCpuNs = 0;
const liveSamplers = new Set<{ cpuNs: number }>();

/**
 * CPU time (ns) the native sampling threads of this process have used, each as of the last sample
 * it delivered (the few µs a thread spends after its last sample are not in it); the TS sampler
 * adds nothing here, its work is the JS thread's (jsThreadCpuNs). For the cost of a trace: take
 * it before and after, together with jsThreadCpuNs().
 */
export function samplerThreadsCpuNs(): number {
  let ns = endedSamplersCpuNs;
  for (const s of liveSamplers) ns += s.cpuNs;
  return ns;
}

const PARTS = ['procs', 'mqds', 'hqds', 'rls'] as const;
type Part = (typeof PARTS)[number];
type Same = NonNullable<NativeSample['same']>;

const isReadError = (x: unknown): x is NativeReadError => typeof x === 'object' && x !== null && 'code' in x && !('issues' in x);

/**
 * Completes the native thread's samples, which must be passed in delivery order: a part named in
 * `same` is left out by the thread and is put back here as the object of the last sample that had
 * it (the same reference). Throws if a sample repeats a part this process never got (the thread
 * only marks what it delivered, so this means a sample was lost on the way, not dropped).
 */
export function sameFiller(): (s: NativeSample) => NativeSample {
  const ref: { [P in Part]?: NativeSample[P] } = {};
  let lastSeq = -1;
  return (s) => {
    // seq counts dropped samples too: any other gap is a sample that never reached JS (its
    // conversion failed) although the thread counted it as delivered: no reference is safe now
    if (s.seq !== lastSeq + 1 + s.dropped) for (const p of PARTS) delete ref[p];
    lastSeq = s.seq;
    const same = s.same;
    if (same) {
      for (const p of PARTS) {
        if (!same[p]) continue;
        const r = ref[p];
        if (r === undefined) throw new GpucoloError(`native sampler: sample ${s.seq} repeats the ${p} of a sample that never reached JS`, { code: 'EINTERNAL' });
        (s as { [P in Part]?: unknown })[p] = r;
      }
    }
    ref.procs = s.procs;
    for (const p of ['mqds', 'hqds', 'rls'] as const) {
      // a read error is never repeated: the next good read comes in full
      if (p in s) (ref as { [P in Part]?: unknown })[p] = isReadError(s[p]) ? undefined : s[p];
    }
    return s;
  };
}

export function startSampler(opts: SamplerOptions, onSample: (s: NativeSample) => void): Sampler {
  const native = opts.impl === 'ts' ? null : loadNative();
  if (opts.impl === 'native' && !native) throw new GpucoloError('native sampler requested but the native core is not loaded', { code: 'ENONATIVE' });
  if (native) {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const maxSamples = opts.maxSamples ?? 0;
    const complete = sameFiller();
    const cpu = { cpuNs: 0 };
    const ended = (): void => {
      if (!liveSamplers.delete(cpu)) return;
      endedSamplersCpuNs += cpu.cpuNs;
    };
    const nativeOpts: NativeSamplerOptions = {
      sysfsRoot: opts.sysfsRoot,
      debugfsRoot: opts.debugfsRoot,
      intervalNs: opts.intervalNs,
      debugfsEvery: opts.debugfsEvery,
      maxSamples,
      pids: null,
      maxQueued: 64,
      sysfsWalk: opts.sysfsWalk ?? 'incremental',
      countersEvery: opts.countersEvery ?? 1,
    };
    if (opts.deliverEveryNs) nativeOpts.deliverEveryNs = opts.deliverEveryNs;
    if (opts.procRoot !== undefined) nativeOpts.procRoot = opts.procRoot;
    if (opts.debugfsWords === false) nativeOpts.debugfsWords = false;
    const h = native.startSampler(
      nativeOpts,
      (s) => {
        if (s.threadCpuNs !== undefined) cpu.cpuNs = s.threadCpuNs;
        const js = native.threadCpuNs();
        if (js >= 0) s.jsCpuNs = js;
        try {
          onSample(complete(s));
        } finally {
          // seq counts dropped samples too; the thread never drops the last one
          if (maxSamples > 0 && s.seq >= maxSamples - 1) void h.stop().then(finish);
        }
      },
    );
    // counted once the thread runs (startSampler throws for bad options; samples come later, on this thread)
    liveSamplers.add(cpu);
    let stopping: Promise<void> | null = null;
    void done.then(ended);
    return {
      kind: 'native-thread',
      originNs: BigInt(h.originNs),
      stop: () => (stopping ??= h.stop().then(finish)),
      done,
      joinDumps: h.joinDumps,
    };
  }
  return startTsSampler(opts, onSample);
}

function readDebugfs(root: string, name: string): Buffer | NativeReadError {
  const path = underRoot(root, `kfd/${name}`);
  try {
    return timedIo(() => readInputFile(path, { kind: 'debugfs' }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { code, message: `cannot read ${path} (${issueCodeText(code, 'debugfs')})` };
  }
}

const isError = (x: Buffer | NativeReadError): x is NativeReadError => !Buffer.isBuffer(x);

function sameF64(a: Float64Array, b: Float64Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Same proc tables and issues, byte for byte (as the native sampler compares them). */
function sameProcs(a: ProcsRaw, b: ProcsRaw): boolean {
  return (
    sameF64(a.procs, b.procs) &&
    sameF64(a.queues, b.queues) &&
    sameF64(a.metrics, b.metrics) &&
    a.issues.length === b.issues.length &&
    a.issues.every((x, i) => {
      const y = b.issues[i];
      return x.path === y.path && x.severity === y.severity && x.message === y.message && x.code === y.code;
    })
  );
}

/** One debugfs file of the TS sampler: its last good read and the tables parsed from it. */
class DebugfsFile<T> {
  private bytes: Buffer | null = null;
  private tables: T | null = null;
  private read: Buffer | NativeReadError | null = null;
  private same = false;
  constructor(
    readonly name: 'mqds' | 'hqds' | 'rls',
    private readonly parse: (b: Buffer) => T,
  ) {}

  /** Reads the file and compares it with the last good read. */
  load(root: string): void {
    const b = readDebugfs(root, this.name);
    this.read = b;
    this.same = !isError(b) && this.bytes !== null && this.bytes.equals(b);
  }

  /** The loaded read as a sample part; parses only when the bytes changed. */
  take(same: Same, parsed: { any: boolean }): T | NativeReadError {
    const b = this.read!;
    this.read = null;
    if (isError(b)) {
      this.bytes = this.tables = null; // never `same` across an error
      return b;
    }
    if (this.same) {
      same[this.name] = true;
      return this.tables!;
    }
    parsed.any = true;
    this.bytes = b;
    return (this.tables = this.parse(b));
  }
}

function startTsSampler(opts: SamplerOptions, onSample: (s: NativeSample) => void): Sampler {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const st: TsSamplerState = {
    opts,
    onSample,
    origin: process.hrtime.bigint(),
    interval: BigInt(opts.intervalNs),
    maxSamples: opts.maxSamples ?? 0,
    k: 0n,
    seq: 0,
    timer: null,
    stopped: false,
    finish,
    files: [new DebugfsFile<MqdsRaw>('mqds', parseMqdsTs), new DebugfsFile<HqdsRaw>('hqds', parseHqdsTs), new DebugfsFile<RlsRaw>('rls', parseRlsTs)] as const,
    lastProcs: null,
    walker: new ProcsWalkerTs(opts.sysfsRoot, { walk: opts.sysfsWalk, countersEvery: opts.countersEvery }),
    pidStarts: opts.procRoot !== undefined ? new PidStartReader(opts.procRoot) : null,
  };
  armTs(st);
  return {
    kind: 'ts-timer',
    originNs: st.origin,
    stop: async () => {
      st.stopped = true;
      if (st.timer) clearTimeout(st.timer);
      finish();
    },
    done,
  };
}

/** What the JS-timer sampler's steps share between ticks. */
interface TsSamplerState {
  opts: SamplerOptions;
  onSample: (s: NativeSample) => void;
  origin: bigint;
  interval: bigint;
  maxSamples: number;
  /** index of the next deadline */
  k: bigint;
  seq: number;
  timer: NodeJS.Timeout | null;
  stopped: boolean;
  finish: () => void;
  files: readonly [DebugfsFile<MqdsRaw>, DebugfsFile<HqdsRaw>, DebugfsFile<RlsRaw>];
  lastProcs: ProcsRaw | null;
  walker: ProcsWalkerTs;
  pidStarts: PidStartReader | null;
}

/** Step: sets the timer for the next deadline (whole ms, rounded up). */
function armTs(st: TsSamplerState): void {
  const wait = st.origin + st.k * st.interval - process.hrtime.bigint();
  st.timer = setTimeout(() => takeTs(st), wait > 0n ? Number((wait + 999_999n) / 1_000_000n) : 0);
}

/** Step (timer callback): waits out an early wake, skips missed deadlines, samples, delivers, re-arms. */
function takeTs(st: TsSamplerState): void {
  st.timer = null;
  if (st.stopped) return;
  const now = process.hrtime.bigint();
  // timers work in whole ms against a cached loop clock: never sample before the deadline
  if (now < st.origin + st.k * st.interval) {
    armTs(st);
    return;
  }
  // late by whole intervals: skip those deadlines, report them
  const behind = (now - st.origin - st.k * st.interval) / st.interval;
  const missed = behind > 0n ? Number(behind) : 0;
  st.k += BigInt(missed);
  const sample = readTsSample(st, missed, st.k * st.interval);
  st.seq++;
  st.k++;
  try {
    st.onSample(sample);
  } finally {
    if (st.maxSamples > 0 && st.seq >= st.maxSamples) {
      st.stopped = true;
      st.finish();
    } else if (!st.stopped) armTs(st);
  }
}

/** Step: reads procs (and debugfs when due) into one sample, timing the reads, parses and CPU. */
function readTsSample(st: TsSamplerState, missed: number, intended: bigint): NativeSample {
  const { opts, files, walker, origin, seq } = st;
  const t0 = process.hrtime.bigint();
  const cpu0 = jsThreadCpuNs();
  // the JS thread's fs calls of this sample only: nothing else runs on it until the sample is made
  ioClock.on = true;
  ioClock.ns = 0;
  const same: Same = {};
  let procs: ProcsRaw;
  try {
    procs = walker.read();
  } finally {
    ioClock.on = false;
  }
  let pidStarts: Float64Array | undefined;
  if (st.lastProcs !== null && sameProcs(procs, st.lastProcs)) {
    procs = st.lastProcs;
    same.procs = true;
  } else if (st.pidStarts) {
    ioClock.on = true;
    try {
      pidStarts = st.pidStarts.read(procs);
    } finally {
      ioClock.on = false;
    }
  }
  st.lastProcs = procs;
  const withDebugfs = opts.debugfsEvery > 0 && seq % opts.debugfsEvery === 0;
  ioClock.on = true;
  try {
    if (withDebugfs) for (const f of files) f.load(opts.debugfsRoot);
  } finally {
    ioClock.on = false;
  }
  const t1 = process.hrtime.bigint();
  const sample: NativeSample = {
    seq,
    intendedNs: Number(intended),
    actualNs: Number(t0 - origin),
    readNs: Number(t1 - t0),
    parseNs: 0,
    ioNs: ioClock.ns,
    walk: walker.lastStats(),
    missed,
    dropped: 0,
    procs,
  };
  if (pidStarts) sample.pidStarts = pidStarts;
  if (withDebugfs) {
    const parsed = { any: false };
    const [m, h, r] = files;
    sample.mqds = m.take(same, parsed);
    sample.hqds = h.take(same, parsed);
    sample.rls = r.take(same, parsed);
    if (parsed.any) sample.parseNs = Number(process.hrtime.bigint() - t1);
  }
  if (same.procs || same.mqds || same.hqds || same.rls) sample.same = same;
  // the sampling thread is the JS thread here: its clock, as the native thread reports its own
  const cpuNs = jsThreadCpuNs();
  if (cpuNs !== null) sample.threadCpuNs = cpuNs;
  if (cpuNs !== null && cpu0 !== null) sample.cpuNs = cpuNs - cpu0;
  return sample;
}
