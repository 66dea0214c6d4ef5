/**
 * The only place that loads the native addon (gpucolo.node). GPUCOLO_NATIVE_PATH names one file;
 * otherwise build/Release, build/Debug, then prebuilds/<platform>-<arch>/*.node are tried in
 * turn. Every failure is kept for `gpucolo doctor`; a binary that loads but reports another ABI
 * is rejected as stale and the next candidate is tried. GPUCOLO_NATIVE=0 forces the pure-TS paths.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import type { HqdsRaw, MqdsRaw, ProcsRaw, RlsRaw, TopologyRaw } from './kfd/raw.js';
import type { NativeJoinedTables, NativeJoinTables, PackedQidHints } from './kfd/join.js';
import type { EngineMechanism } from './mechanisms.js';
import { GpucoloError } from './errors.js';

/** Bump with every change of the C++ surface or of a table layout in src/kfd/raw.ts. */
export const NATIVE_ABI = 9;

export interface PluginProbe {
  name: string;
  path: string;
  found: boolean;
  loaded: boolean;
  error?: string;
  /** when loaded: devices after the plugin's init(); 0 = "no device"; -1 = unknown (init failed) */
  deviceCount?: number;
  /** when loaded: the runtime's error from init()/device_count(), e.g. "cudaErrorInsufficientDriver: ..." */
  initError?: string;
}

/** Options of the native sampling thread (issue 3). Times in ns. */
export interface NativeSamplerOptions {
  sysfsRoot: string;
  debugfsRoot: string;
  intervalNs: number;
  /** read debugfs (mqds, hqds, rls) every N-th sample; 0 = never */
  debugfsEvery: number;
  /** stop by itself after this many samples (0 = until stop()) */
  maxSamples: number;
  /** only these pids (sysfs proc walk); null = every KFD process */
  pids: number[] | null;
  /**
   * the procfs root ('/proc'): the thread reads the start time of new and changed KFD processes
   * there at the sample's time (NativeSample.pidStarts); absent = never reads /proc
   */
  procRoot?: string;
  /** samples waiting for JS beyond this are dropped and counted in the next sample's `dropped` */
  maxQueued: number;
  /** how the proc tree is read (src/kfd/sysfs-procs.ts); default 'incremental' */
  sysfsWalk?: SysfsWalk;
  /** incremental walk: re-read process directories and counters every N-th sample; default 1 */
  countersEvery?: number;
  /**
   * hand samples to JS in batches, once the oldest held one is this old (ns, 0..60e9); 0 or
   * absent = each sample as it is taken. Only quiet samples are held (docs/tracing.md): with
   * procRoot every sample but one where a process is new or its pid was reused; without it only
   * one where nothing but register words moved. One onSample call per sample all the same, in
   * order; stop() hands over what is held first.
   */
  deliverEveryNs?: number;
  /**
   * hand JS the words of the debugfs tables (default true); false: `words` is empty in every
   * debugfs part and samples say wordsOmitted, for a consumer that joins through joinDumps (the
   * words are most of what is copied into JS per parsed file)
   */
  debugfsWords?: boolean;
}

/**
 * 'incremental': read only what can have changed (queue directories that are new, counters at
 * their own pace); 'full': every file of the proc tree at every sample (the reference).
 */
export type SysfsWalk = 'incremental' | 'full';

/** What one read of the proc tree did (native/kfd/sysfs_procs.h WalkStats). */
export interface WalkStats {
  /** processes read (after the pid filter) */
  processes: number;
  /** processes whose directory was listed and counters read (new ones, counters due, or an issue last time) */
  processesRead: number;
  /** queues whose files were read */
  queuesRead: number;
  /** queues repeated from an earlier read (same id, same directory inode) */
  queuesReused: number;
}

/** createProcsWalker(): the sampler's proc-tree reader, one read per call, on the calling thread. */
export interface NativeProcsWalker {
  read(pids?: number[] | null): ProcsRaw;
  stats(): WalkStats;
}

/** A debugfs file that could not be read in a sample. */
export interface NativeReadError {
  code: string;
  message: string;
}

/**
 * One sample taken by the native thread. Times are ns since the sampler's origin.
 *
 * From the native thread (startSampler below), a part named in `same` is left out: its bytes
 * (debugfs) or tables and issues (procs) equal that part in the last sample delivered to JS that
 * had it (dropped samples never count; a read error is never `same` and the next good read of that
 * file comes in full). src/trace/sampler.ts fills such parts back with the objects it got then (the
 * same references), so its consumers always see complete samples, `same` kept as a hint.
 */
export interface NativeSample {
  seq: number;
  intendedNs: number;
  actualNs: number;
  /** reading (and comparing with the previous sample) */
  readNs: number;
  /** parsing the debugfs files that changed; 0 when none was parsed */
  parseNs: number;
  /**
   * wall time of this sample inside file-system calls (opening, reading, closing files, listing
   * directories): the kernel's side of readNs; the rest of readNs + parseNs is gpucolo's own work.
   * The TS sampler times its fs calls the same way.
   */
  ioNs?: number;
  /** CPU time (ns) the sampling thread used for this sample's read and parse; absent where unknown */
  cpuNs?: number;
  /** what the proc walk did */
  walk?: WalkStats;
  /**
   * CPU time (user + system, ns) the thread that takes the samples has used since it started,
   * cumulative, read after this sample was read and parsed: the difference between two samples is
   * that thread's own cost of the samples in between (dropped ones and the kernel's side of the
   * reads included). Native thread: CLOCK_THREAD_CPUTIME_ID of the sampling thread. TS sampler:
   * the JS thread, which takes the samples and does everything else too (src/trace/sampler.ts
   * jsThreadCpuNs); absent where no per-thread clock is available.
   */
  threadCpuNs?: number;
  /**
   * Native thread only, set by src/trace/sampler.ts (not the addon): the JS thread's CPU time
   * (jsThreadCpuNs), cumulative, read when this sample reached JS, before it was handed on. The
   * difference between two samples is what the JS thread did in between (the previous sample's
   * conversion, objects, join and record, and anything else on the event loop). Absent where no
   * per-thread clock is available and for the TS sampler, whose threadCpuNs is the JS thread.
   */
  jsCpuNs?: number;
  /** intervals skipped (the thread fell behind) before this sample */
  missed: number;
  /** samples dropped because JS did not keep up, before this one */
  dropped: number;
  /** absent from the native thread when same.procs */
  procs: ProcsRaw;
  /** present in samples that read debugfs (from the native thread: unless same) */
  mqds?: MqdsRaw | NativeReadError;
  hqds?: HqdsRaw | NativeReadError;
  rls?: RlsRaw | NativeReadError;
  /**
   * native thread: mqds/hqds texts that differed from the previous parsed one only inside words
   * (ring pointers, status registers) were not parsed again: their tables are the previous ones
   * with these words (indices into `words`, ascending) decoded again. The tables are complete
   * either way; this says what changed in them.
   */
  changedWords?: { mqds?: Uint32Array; hqds?: Uint32Array };
  /** parts equal to those of the previous delivered sample (see above) */
  same?: { procs?: true; mqds?: true; hqds?: true; rls?: true };
  /**
   * With the sampler's procRoot: pairs (pid, start time) of the KFD processes whose
   * <procRoot>/<pid>/stat was read at this sample's time (field 22, clock ticks after boot; -1 =
   * unreadable): those new since the previous sample and those whose sysfs queue rows changed
   * since. A pid with another start time than before was taken over by another process. Absent
   * when none was read (and whenever same.procs).
   */
  pidStarts?: Float64Array;
  /**
   * The sampler was started with debugfsWords: false: the debugfs tables' `words` are empty (the
   * sampler's joinDumps joins the C++ tables; the JS tables serve the relevance checks and issues)
   */
  wordsOmitted?: boolean;
}

export interface NativeSamplerHandle {
  /** CLOCK_MONOTONIC ns of the origin (t = 0), decimal string */
  originNs: string;
  /** ask the thread to stop; resolves after its last sample was delivered */
  stop(): Promise<void>;
  /** change the pid filter between samples */
  setPids(pids: number[] | null): void;
  /**
   * During onSample of sample `seq`: the addon's join (native/kfd/join.h) of that sample's debugfs
   * tables as the sampling thread parsed them (the parts flagged true: its readable ones), with
   * the sysfs side and qid hints as joinKfdDumps takes them. No parse, no copy of the tables back
   * from JS. null when `seq` is not the sample in onSample now or a part asked for is not there.
   */
  joinDumps: JoinSampleDumps;
}

/** NativeSamplerHandle.joinDumps */
export type JoinSampleDumps = (
  seq: number,
  mqds: boolean,
  hqds: boolean,
  rls: boolean,
  topology: Float64Array | null,
  procs: Float64Array | null,
  procQueues: Float64Array | null,
  qidHints: PackedQidHints | null,
) => NativeJoinedTables | null;

/** One stream of a dispatch measurement (native/dispatch/engine.h StreamSpec). */
export interface NativeDispatchStream {
  name: string;
  highPriority: boolean;
  kernel: { spinNs: number; blocks: number; threadsPerBlock: number };
  arrival: 'closed-loop' | 'fixed-rate' | 'poisson' | 'list';
  rateHz: number;
  inflight: number;
  seed: number;
  /** 'list' arrivals, ns after the start */
  timesNs: number[];
  /** stream-priority with more than two levels: 0..levels-1, higher = more important; -1 = use highPriority */
  level?: number;
  levels?: number;
}

/** the engine's mechanisms (src/mechanisms.ts, engineId) */
export type DispatchMechanism = EngineMechanism;

export interface NativeDispatchSpec {
  backend: 'cpu' | 'cuda' | 'hip';
  device: number;
  durationNs: number;
  warmupNs: number;
  /** per stream, 0 = unbounded */
  maxLaunches: number;
  mechanism: DispatchMechanism;
  throttleK: number;
  /** share of CUs/SMs kept for high-priority streams (cu-mask, sm-partition), 0..1 */
  reserve: number;
  watchdogNs: number;
  streams: NativeDispatchStream[];
}

/** Per launch, ns since the run's origin on the host monotonic clock (device times mapped). */
export interface NativeDispatchStreamResult {
  name: string;
  highPriority: boolean;
  /** the runtime stream priority the stream was created with */
  priority: number;
  intendedNs: Float64Array;
  submitNs: Float64Array;
  deviceStartNs: Float64Array;
  deviceEndNs: Float64Array;
  completeNs: Float64Array;
  warmup: Uint8Array;
  launches: number;
  errors: number;
  error: string;
  /**
   * open loop: requests that had arrived but were never submitted (cut off by the watchdog or a
   * cancel). Both engines set it.
   */
  dropped?: number;
  /**
   * cu-mask: the mask the stream was created with, 32-bit words (bit i = compute unit i, or on
   * RDNA bits 2i and 2i+1 = work-group processor i, see cuMaskBitsPerUnit); empty otherwise.
   */
  cuMask?: number[];
  /** sm-partition: SMs asked for (ceil(reserve x SMs) for the high side, the rest for the other); 0 otherwise */
  smCountRequested?: number;
  /**
   * sm-partition: SMs of the green-context partition the driver made (rounded up to its
   * granularity: multiples of 8 on sm_90, so 10% of 132 SMs asks 14 and gets 16; a request larger
   * than what is left gets the rest). 0 = the whole device. Use this, not the request, for the share.
   */
  smCount?: number;
  /** compute units the stream's work may run on: partition as made, CUs its mask enables, or all */
  computeUnits?: number;
  /** probe kernels of this stream's threadsPerBlock resident per CU at once (occupancy API; cpu: 1); 0 = unknown */
  maxActiveBlocksPerCu?: number;
  /**
   * blocks that occupy every compute unit of the stream: computeUnits x maxActiveBlocksPerCu
   * (0 = unknown). A kernel with fewer blocks does not fill its share of the device.
   */
  fillBlocks?: number;
}

/** Which dispatch engine produced a result: the native core's threads or the pure-TS worker_threads (src/dispatch/ts-engine). */
export type DispatchEngine = 'native' | 'ts';

export interface NativeDispatchResult {
  /** set on the JS side (src/dispatch/run.ts); the C++ binding does not write it */
  engine?: DispatchEngine;
  /** 0 ok, else a gpucolo_status (gpu_plugin.h) */
  status: number;
  error: string;
  deviceOffsetNs: number;
  /** width of the tightest host bracket around the device-clock read before the run: bound on deviceOffsetNs's error, ns */
  deviceOffsetUncertaintyNs?: number;
  /**
   * the same offset measured after the run (drift check: deviceOffsetEndNs - deviceOffsetNs is
   * how far the device clock moved against the host's during the run); NaN when it could not be
   * measured. The pure-TS engine's device clock is the host clock: 0 there.
   */
  deviceOffsetEndNs?: number;
  /** the run was cancelled (status stays 0 unless something else failed) */
  cancelled?: boolean;
  /** from the origin until the last submitter stopped, ns */
  submitPhaseNs?: number;
  /** from the origin until everything completed or was given up, ns */
  elapsedNs?: number;
  /** native engine: the completion poller's pause between fruitless passes (0 = busy-poll), ns */
  pollPauseNs?: number;
  computeUnits: number;
  priorityLeast: number;
  priorityGreatest: number;
  streams: NativeDispatchStreamResult[];
}

export interface NativeBackendDevice {
  name: string;
  arch: string;
  computeUnits: number;
  priorityLeast: number;
  priorityGreatest: number;
  supportsCuMask: boolean;
  supportsSmPartition: boolean;
  /** 0 = unknown (GPU plugins measure it with a kernel, only once a run creates a stream) */
  timerResolutionNs: number;
  /** the runtime's threads-per-block limit */
  maxThreadsPerBlock?: number;
  /** the block size maxActiveBlocksPerCu is for */
  fillThreadsPerBlock?: number;
  /**
   * probe kernels of fillThreadsPerBlock threads resident per CU at once
   * (cudaOccupancyMaxActiveBlocksPerMultiprocessor / hipOccupancyMaxActiveBlocksPerMultiprocessor;
   * cpu: 1 per worker): computeUnits x this many blocks fill the device.
   */
  maxActiveBlocksPerCu?: number;
  /** the same for block sizes 32, 64, ... up to maxThreadsPerBlock */
  occupancy?: { threadsPerBlock: number; blocksPerCu: number }[];
  /** AMD: XCCs (MI300X 8, MI308X 4; 1 on one-die GPUs, NVIDIA, cpu), shader engines per XCC, shader arrays per SE; 0 = unknown */
  numXcc?: number;
  numSePerXcc?: number;
  numShPerSe?: number;
  /** CU-mask bits per compute unit: 1, 2 on RDNA (computeUnits counts WGPs of two CUs); 0 = no CU masks */
  cuMaskBitsPerUnit?: number;
}

export interface NativeBackendInfo {
  name: 'cpu' | 'cuda' | 'hip';
  available: boolean;
  /** the engine that drives it: set by src/dispatch/run.ts listBackends() (the C++ binding does not write it) */
  engine?: DispatchEngine;
  /** why not, one line */
  reason?: string;
  devices: NativeBackendDevice[];
}

/** AMDKFD_IOC_UPDATE_QUEUE arguments (src/kfd/ioctl.ts updateQueue). */
export interface NativeUpdateQueueArgs {
  queueId: number;
  /** ring VA: a BigInt or a safe integer */
  ringBase: bigint | number;
  ringSize: number;
  percentage: number;
  priority: number;
  pm4TargetXcc?: number;
}

/** What was (or would be) sent to the kernel. */
export interface NativeUpdateQueueSent {
  queueId: number;
  ringBase: string;
  ringSize: number;
  percentage: number;
  pm4TargetXcc: number;
  /** queue_percentage as sent: percentage | pm4TargetXcc << 8 */
  queuePercentageWord: number;
  priority: number;
  /** the ioctl request number (0x40184b07) */
  request: number;
  /** the 24 bytes of struct kfd_ioctl_update_queue_args */
  bytes: Uint8Array;
}

/** One kfd_queue_snapshot_entry; a field is absent when the negotiated entry size did not cover it. */
export interface NativeQueueSnapshotEntry {
  validBytes: number;
  queueId?: number;
  /** topology gpu_id, decimal */
  gpuId?: number;
  queueType?: number;
  /** compute-pm4 | sdma | compute-aql | sdma-xgmi | sdma-by-eng-id | type-N */
  type?: string;
  ringBase?: string;
  ringSize?: number;
  writePointerAddress?: string;
  readPointerAddress?: string;
  ctxSaveRestoreAddress?: string;
  ctxSaveRestoreSize?: number;
  exceptionStatus?: string;
}

export interface NativeQueueSnapshotSelf {
  entries: NativeQueueSnapshotEntry[];
  /** entry size KFD wrote back */
  entrySize: number;
  /** kfd_runtime_info.runtime_state: 0 disabled, 1 enabled (ROCr initialised), 2 busy, 3 error */
  runtimeState: number;
  ttmpSetup: number;
  snapshotCalls: number;
}

export interface NativeBinding {
  abiVersion: number;
  /** compiler/build facts for doctor */
  buildInfo: { compiler: string; napiVersion: number; kfdIoctlHeader: string };
  parseMqds(buf: Uint8Array): MqdsRaw;
  parseHqds(buf: Uint8Array): HqdsRaw;
  parseRls(buf: Uint8Array): RlsRaw;
  /**
   * mqds, hqds, rls (null: not read) parsed and joined in one call (native/kfd/join.h), with the
   * topology/procs tables of src/kfd/join.ts nativeJoinSysfs. Optional: an addon built before it
   * lacks it, and src/kfd/snapshot.ts then joins in TS.
   */
  joinKfdDumps?(
    mqds: Uint8Array | null,
    hqds: Uint8Array | null,
    rls: Uint8Array | null,
    topology: Float64Array | null,
    procs: Float64Array | null,
    procQueues: Float64Array | null,
    /** a trace's qid hints (src/kfd/join.ts packQidHints); the result then has qidHints */
    qidHints?: PackedQidHints | null,
  ): NativeJoinTables;
  /** every flat table's column names in row order (native/kfd/columns.h; twin of src/kfd/columns.ts). Optional: older addons lack it */
  kfdTableColumns?(): Record<string, string[]>;
  readTopology(sysfsRoot: string): TopologyRaw;
  readKfdProcs(sysfsRoot: string, pids?: number[]): ProcsRaw;
  /** AMDKFD_IOC_GET_VERSION on an open of devPath; throws {code, errno, syscall, path} */
  kfdVersion(devPath: string): { major: number; minor: number };
  /** AMDKFD_IOC_UPDATE_QUEUE arguments as they would be sent (no system call); throws {code, errno, op, phase: 'arguments'} */
  kfdUpdateQueueArgs(args: NativeUpdateQueueArgs): NativeUpdateQueueSent;
  /** open(devPath) + AMDKFD_IOC_UPDATE_QUEUE on the caller's own queue; throws {code, errno, syscall, path, op, phase} */
  kfdUpdateQueue(devPath: string, args: NativeUpdateQueueArgs): NativeUpdateQueueSent;
  /** entries of a DBG_TRAP GET_QUEUE_SNAPSHOT buffer laid out with stride entrySize */
  parseKfdQueueSnapshot(buf: Uint8Array, entrySize: number): { entries: NativeQueueSnapshotEntry[]; error?: string };
  /** DBG_TRAP ENABLE(self) + GET_QUEUE_SNAPSHOT + DISABLE: preempts every queue on the device (src/kfd/ioctl.ts) */
  kfdQueueSnapshotSelf(devPath: string): NativeQueueSnapshotSelf;
  /** dlopen()s gpucolo_<name>.so plugins found next to the addon */
  probePlugins(): PluginProbe[];
  /** CLOCK_MONOTONIC now, ns as a decimal string */
  monotonicNowNs(): string;
  /** CPU time the calling thread has used, ns (CLOCK_THREAD_CPUTIME_ID); -1 if unreadable */
  threadCpuNs(): number;
  /** every dispatch backend with its devices, or why it is unavailable */
  listBackends(): NativeBackendInfo[];
  /** runs a measurement in native threads; JS gets the arrays when it is over */
  startDispatch(spec: NativeDispatchSpec): { done: Promise<NativeDispatchResult>; cancel(): void };
  /** starts the sampling thread; onSample runs on the JS thread for every sample, in order */
  startSampler(opts: NativeSamplerOptions, onSample: (s: NativeSample) => void): NativeSamplerHandle;
  createProcsWalker(opts: { sysfsRoot: string; sysfsWalk?: SysfsWalk; countersEvery?: number }): NativeProcsWalker;
  /**
   * native/power: NVML and ROCm SMI opened with dlopen() on first use (GPUCOLO_NVML_LIB /
   * GPUCOLO_ROCM_SMI_LIB name another library; a changed value reopens). Optional: an addon built
   * before native/power lacks them (src/energy says so instead of failing).
   */
  powerBackends?(): NativePowerBackend[];
  /** one reading of one device; throws {code: 'ENOPOWER'} when the backend is unavailable, {code: 'EINVAL'} for a bad index */
  powerSample?(backend: NativePowerBackend['name'], index: number): NativePowerSample;
}

/** A backend of native/power (powerBackends). */
export interface NativePowerBackend {
  name: 'nvml' | 'rocm-smi';
  available: boolean;
  /** why not, one line: library not found, init failed (with the library's text), no devices */
  reason?: string;
  /** the library opened, or the one that was looked for */
  library: string;
  devices: { index: number; name: string }[];
}

/** One reading (powerSample); a field the device does not support is null. */
export interface NativePowerSample {
  /** percent busy over the library's last period */
  utilPercent: number | null;
  powerW: number | null;
  /** the device's cumulative energy counter, J (NVML: since driver load) */
  energyJ: number | null;
  /**
   * °C: NVML's GPU sensor; ROCm SMI's edge sensor, else junction. Absent (not null) from an addon
   * built before native/power read temperatures.
   */
  tempC?: number | null;
  /** CLOCK_MONOTONIC ns, middle of the reads */
  tNs: number;
  /** "power: <library error>" for a field that failed other than by NOT_SUPPORTED */
  errors?: string[];
}

export interface NativeLoadError {
  from: string;
  message: string;
}

const require = createRequire(import.meta.url);
/** package root: src/ and dist/ both sit one level below it */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * How to (re)build the addon where gpucolo lives: a clone has the build script; an installed
 * package (inside node_modules) is rebuilt by npm, which reruns its install hook.
 */
export function rebuildHint(root = PACKAGE_ROOT): string {
  return root.split(path.sep).includes('node_modules')
    ? 'npm rebuild gpucolo (needs cmake and a C++ compiler)'
    : 'npm run build:native';
}

/** This host's C library, as prebuild file names tag it (prebuildify --tag-libc). */
function hostLibc(): 'glibc' | 'musl' {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

let cached: NativeBinding | null | undefined;
let cachedFile: string | undefined;
const loadErrors: NativeLoadError[] = [];

function check(b: unknown, from: string): NativeBinding {
  const nb = b as NativeBinding;
  if (!nb || typeof nb !== 'object' || typeof nb.parseMqds !== 'function') {
    throw new GpucoloError(`${from} is not a gpucolo addon`, { code: 'ENONATIVE', path: from });
  }
  if (nb.abiVersion !== NATIVE_ABI) {
    throw new GpucoloError(`stale native build ${from} (abi ${nb.abiVersion}, this gpucolo needs ${NATIVE_ABI}); run ${rebuildHint()}`, { code: 'ENONATIVE', path: from });
  }
  return nb;
}

/**
 * Where the addon may be, in order. A stale build/Release must not hide a fresh prebuild, so every
 * candidate is tried and checked, and every failure is kept.
 */
export function nativeCandidates(): string[] {
  const dir = path.join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  let prebuilt: string[] = [];
  try {
    // a prebuild tagged for the other C library cannot load here (gpucolo.glibc.node on musl)
    const other = hostLibc() === 'glibc' ? 'musl' : 'glibc';
    prebuilt = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.node') && !f.split('.').includes(other))
      .sort()
      .map((f) => path.join(dir, f));
  } catch {
    // no prebuilds for this platform
  }
  return [path.join(PACKAGE_ROOT, 'build', 'Release', 'gpucolo.node'), path.join(PACKAGE_ROOT, 'build', 'Debug', 'gpucolo.node'), ...prebuilt];
}

/** The addon, or null (then nativeReport().errors says why). Never throws. */
export function loadNative(): NativeBinding | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.GPUCOLO_NATIVE === '0') {
    loadErrors.push({ from: 'GPUCOLO_NATIVE=0', message: 'native core disabled by GPUCOLO_NATIVE=0' });
    return cached;
  }
  const explicit = process.env.GPUCOLO_NATIVE_PATH;
  const candidates = explicit ? [path.resolve(explicit)] : nativeCandidates();
  for (const file of candidates) {
    if (!explicit && !fs.existsSync(file)) continue;
    try {
      cached = check(require(file), file);
      cachedFile = file;
      return cached;
    } catch (err) {
      loadErrors.push({ from: file, message: (err as Error).message.split('\n')[0] });
    }
  }
  if (candidates.every((f) => !fs.existsSync(f))) {
    loadErrors.push({
      from: 'search',
      message: `no native build for ${process.platform}-${process.arch} (looked in build/Release, build/Debug, prebuilds/); run ${rebuildHint()}`,
    });
  }
  return cached;
}

/**
 * What to do about the load failures, one suggestion per kind of failure (sharp's loader is the
 * model): disabled on purpose, a stale build, a build that does not fit this system (libc, CPU
 * architecture, missing shared library), nothing built, an explicit path that failed.
 */
export function possibleSolutions(errors: readonly NativeLoadError[], root = PACKAGE_ROOT): string[] {
  const out: string[] = [];
  const add = (s: string): void => void (out.includes(s) || out.push(s));
  for (const e of errors) {
    if (e.from === 'GPUCOLO_NATIVE=0') add('unset GPUCOLO_NATIVE to use the native core');
    else if (/stale native build/.test(e.message)) add(`rebuild it: ${rebuildHint(root)}`);
    else if (/ELF|GLIBC|GLIBCXX|musl|cannot open shared object|wrong ELF class|undefined symbol/i.test(e.message)) {
      add(`the build does not fit this system (${process.platform}-${process.arch}, ${hostLibc()}): build it here with GPUCOLO_BUILD_FROM_SOURCE=1 npm rebuild gpucolo (needs cmake and a C++ compiler)`);
    } else if (e.from === 'search') add(`build it: ${rebuildHint(root)}, or install a gpucolo package with a prebuild for ${process.platform}-${process.arch}`);
    else if (process.env.GPUCOLO_NATIVE_PATH && e.from === path.resolve(process.env.GPUCOLO_NATIVE_PATH)) add('check GPUCOLO_NATIVE_PATH, or unset it to search the package');
    else add(`see gpucolo doctor; ${rebuildHint(root)} rebuilds it`);
  }
  return out;
}

/**
 * Like loadNative() but throws a typed error for callers that asked for impl 'native'. One line:
 * every attempt with why it failed, then what to do.
 */
export function requireNative(): NativeBinding {
  const b = loadNative();
  if (b) return b;
  const tried = loadErrors.map((e) => (e.from === 'search' || e.from === 'GPUCOLO_NATIVE=0' ? e.message : `${e.from}: ${e.message}`)).join('; ');
  const fixes = possibleSolutions(loadErrors);
  throw new GpucoloError(`native core not available: ${tried}${fixes.length ? `; possible solutions: ${fixes.join('; ')}` : ''}`, { code: 'ENONATIVE' });
}

export interface NativeReport {
  loaded: boolean;
  file?: string;
  abi: number;
  disabled: boolean;
  errors: NativeLoadError[];
  buildInfo?: NativeBinding['buildInfo'];
  /** build outputs that exist on disk, loaded or not */
  candidates: string[];
}

/** What doctor prints about the native core. */
export function nativeReport(): NativeReport {
  const b = loadNative();
  const candidates = nativeCandidates().filter((f) => fs.existsSync(f));
  return {
    loaded: b !== null,
    file: cachedFile,
    abi: NATIVE_ABI,
    disabled: process.env.GPUCOLO_NATIVE === '0',
    errors: [...loadErrors],
    buildInfo: b?.buildInfo,
    candidates,
  };
}

export type Impl = 'native' | 'ts';

/** Resolves an `impl` option: explicit choice, else native when loaded, else ts. */
export function pickImpl(impl?: Impl): Impl {
  if (impl === 'ts') return 'ts';
  if (impl === 'native') {
    requireNative();
    return 'native';
  }
  return loadNative() ? 'native' : 'ts';
}
