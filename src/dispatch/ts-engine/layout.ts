/**
 * Shared memory of the pure-TS dispatch engine: where every word lives in the two
 * SharedArrayBuffers that the engine worker and the compute-unit workers share (an Int32Array for
 * everything Atomics touches, a Float64Array for times), and what the main thread hands each
 * worker. Workers get the numbers of a Layout in workerData (their code is eval'd from source and
 * cannot import this module), so all offsets are computed here, once, on the main thread.
 */

import type { NativeDispatchStreamResult } from '../../native.js';

/** Slots per stream, as GPUCOLO_SLOTS in native/dispatch/gpu_plugin.h: at most SLOTS-1 launches in flight. */
export const SLOTS = 4096;

/** Slot states (as in the native cpu backend). */
export const SLOT_FREE = 0;
export const SLOT_PENDING = 1;
export const SLOT_DONE = 2;

/** gpucolo_status values (gpu_plugin.h), so results read like the native engine's. */
export const STATUS = { OK: 0, RUNTIME: -1, NO_DEVICE: -2, UNSUPPORTED: -3, INVALID: -4, TIMEOUT: -5 } as const;

/** Control words at the start of the Int32Array. */
export const CTRL = {
  /** the device lock: 0 free, 1 held, 2 held with waiters (a futex mutex; Atomics.wait/notify) */
  LOCK: 0,
  /** bumped on every launch / newly dispatchable kernel; sleeping compute units wait on it */
  WORK_GEN: 1,
  /** compute units sleeping on WORK_GEN (the engine skips the notify when 0) */
  SLEEPERS: 2,
  /** 1: every worker leaves its loop */
  STOP: 3,
  /** bumped on every completion and on cancel; the engine waits on it between events */
  ENGINE_GEN: 4,
  /** 1: the main thread asked the run to stop (AbortSignal) */
  CANCEL: 5,
  /** compute units that finished their setup (nice) and wait for work */
  READY: 6,
  /** trace records written (may exceed the capacity: the excess is counted, not stored) */
  TRACE_N: 7,
  SIZE: 16,
} as const;

/** Per-stream Int32 fields (then the CU mask words, the slot states and the job ring's int fields). */
export const SI = { PRIORITY: 0, ABORTED: 1, TAIL: 2, HEAD: 3, OUTSTANDING: 4, FIXED: 8 } as const;

/** The Float64 columns of one block trace record, by name (written by device.ts, read by index.ts). */
export const TraceCol = { stream: 0, launch: 1, block: 2, worker: 3, start: 4, end: 5 } as const;
/** Floats per trace record. */
export const TRACE_FIELDS = Object.keys(TraceCol).length;

export interface Layout {
  slots: number;
  workers: number;
  streams: number;
  maskWords: number;
  /** Int32 index of busy[w]: 1 + the stream whose block worker w runs, 0 when idle */
  busy: number;
  /** Int32 index of stream 0's block, and the block size */
  sBase: number;
  sStride: number;
  /** offsets inside a stream's Int32 block */
  sMask: number;
  sSlotState: number;
  sJobBlocks: number;
  sJobSlot: number;
  sJobNext: number;
  sJobRunning: number;
  sJobDone: number;
  i32Length: number;
  /** Float64 index of stream 0's block, and the block size */
  fBase: number;
  fStride: number;
  /** offsets inside a stream's Float64 block (fLastFinish is the first word) */
  fSlotStart: number;
  fSlotEnd: number;
  fJobSpin: number;
  fJobLaunch: number;
  fJobStart: number;
  /** the latest end of the job's finished blocks (the kernel ends with its last block, whichever worker retires it) */
  fJobEnd: number;
  fJobSeq: number;
  /** Float64 index of the trace records and their capacity */
  traceBase: number;
  traceCapacity: number;
  f64Length: number;
}

export function makeLayout(workers: number, streams: number, traceCapacity: number): Layout {
  const maskWords = Math.ceil(workers / 32);
  const busy = CTRL.SIZE;
  const sBase = busy + workers;
  const sMask = SI.FIXED;
  const sSlotState = sMask + maskWords;
  const sJobBlocks = sSlotState + SLOTS;
  const sJobSlot = sJobBlocks + SLOTS;
  const sJobNext = sJobSlot + SLOTS;
  const sJobRunning = sJobNext + SLOTS;
  const sJobDone = sJobRunning + SLOTS;
  const sStride = sJobDone + SLOTS;
  const fSlotStart = 1;
  const fSlotEnd = fSlotStart + SLOTS;
  const fJobSpin = fSlotEnd + SLOTS;
  const fJobLaunch = fJobSpin + SLOTS;
  const fJobStart = fJobLaunch + SLOTS;
  const fJobEnd = fJobStart + SLOTS;
  const fJobSeq = fJobEnd + SLOTS;
  const fStride = fJobSeq + SLOTS;
  const traceBase = streams * fStride;
  return {
    slots: SLOTS,
    workers,
    streams,
    maskWords,
    busy,
    sBase,
    sStride,
    sMask,
    sSlotState,
    sJobBlocks,
    sJobSlot,
    sJobNext,
    sJobRunning,
    sJobDone,
    i32Length: sBase + streams * sStride,
    fBase: 0,
    fStride,
    fSlotStart,
    fSlotEnd,
    fJobSpin,
    fJobLaunch,
    fJobStart,
    fJobEnd,
    fJobSeq,
    traceBase,
    traceCapacity,
    f64Length: traceBase + traceCapacity * TRACE_FIELDS,
  };
}

/** A stream as the engine creates it on the device (after the mechanism was applied). */
export interface PreparedStream {
  name: string;
  highPriority: boolean;
  priority: number;
  /** CU mask words (bit w = worker w may run the stream's blocks); empty = every worker */
  cuMask: number[];
}

/** Fault injection for tests (never set in normal use). */
export interface TsEngineDebug {
  /** launches after this many (over all streams) fail with GPUCOLO_ERR_RUNTIME, like a runtime error */
  failLaunchAfter?: number;
  /** this compute unit throws when it starts its first block */
  throwInComputeUnit?: number;
  /** the engine worker throws right after the run origin */
  throwInEngine?: boolean;
}

/** Tuning of the engine worker (the defaults fit a shared 2-core host). */
export interface TsEngineTuning {
  /** open-loop arrivals: the engine sleeps (Atomics.wait) until due - submitSpinNs, then spins (default 100 µs) */
  submitSpinNs: number;
  /** the longest single wait before conditions are re-checked (default 5 ms) */
  waitSliceNs: number;
}

export interface CuWorkerData {
  role: 'cu';
  worker: number;
  sabI: SharedArrayBuffer;
  sabF: SharedArrayBuffer;
  layout: Layout;
  /** process.hrtime.bigint() of the run's base: every time in shared memory is ns after it */
  base: bigint;
  nice: number;
  debug: TsEngineDebug;
}

/** The spec fields the engine worker reads (NativeDispatchSpec, already validated). */
export interface EngineSpec {
  durationNs: number;
  warmupNs: number;
  maxLaunches: number;
  mechanism: string;
  throttleK: number;
  watchdogNs: number;
  streams: {
    name: string;
    highPriority: boolean;
    kernel: { spinNs: number; blocks: number };
    arrival: 'closed-loop' | 'fixed-rate' | 'poisson' | 'list';
    rateHz: number;
    inflight: number;
    seed: number;
    timesNs: number[];
  }[];
}

export interface EngineWorkerData {
  role: 'engine';
  sabI: SharedArrayBuffer;
  sabF: SharedArrayBuffer;
  layout: Layout;
  base: bigint;
  spec: EngineSpec;
  prepared: PreparedStream[];
  tuning: TsEngineTuning;
  debug: TsEngineDebug;
}

/** What the engine worker posts at the end per stream (arrays are transferred): the native result's shape, plus the mask it ran with. */
export interface EngineStreamOut extends NativeDispatchStreamResult {
  cuMask: number[];
  dropped: number;
}

export interface EngineOut {
  type: 'result';
  status: number;
  error: string;
  cancelled: boolean;
  /** the origin, ns after base (trace times are converted with it) */
  originNs: number;
  submitPhaseNs: number;
  elapsedNs: number;
  streams: EngineStreamOut[];
}
