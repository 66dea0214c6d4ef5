/**
 * The pure-TS cpu backend and its engine: what runs a dispatch measurement when the native core
 * is not loaded (or when GPUCOLO_DISPATCH_ENGINE=ts asks for it). Same interface and result shape
 * as the native engine (NativeDispatchResult, with engine: 'ts'), same scheduling semantics as
 * the native cpu backend (device.ts) and engine (engine.ts).
 *
 * Threads: one engine worker (every submitter, completion detection, the watchdog) and N
 * compute-unit workers (N = os.availableParallelism(), at least 2; GPUCOLO_CPU_WORKERS
 * overrides, as for the native backend), all started for one run and terminated at its end, so
 * nothing keeps the process alive afterwards. They share two SharedArrayBuffers (layout.ts); the
 * main thread only starts them, forwards a cancel and collects the result, so a busy event loop
 * (progress bars) does not move the measurement.
 *
 * What differs from the native backend (and why the timings are labelled "pure-TS"):
 *  - the compute units cannot be pinned to CPUs from JS (only reniced: nice 19 by default,
 *    GPUCOLO_CPU_WORKER_NICE overrides), so on a loaded host the scheduler may put two of them on
 *    one core: CU-mask reserves hold for threads, not for cores;
 *  - waits are Atomics.wait timeouts (50 µs timer slack, not settable from JS) plus a spin of
 *    submitSpinNs before each due arrival; completions wake the engine through Atomics.notify
 *    instead of a 20 µs poll; the clock is process.hrtime (CLOCK_MONOTONIC) read through a BigInt,
 *    ~0.1 µs per read. Expect µs-scale round trips where the native engine has sub-µs ones, and
 *    ms-scale outliers under foreign load (GC pauses of the engine worker included).
 * Worker code is eval'd from source (worker-source.ts), so it runs from src/*.ts and dist/*.js alike.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { GpucoloError } from '../../errors.js';
import type { NativeBackendInfo, NativeDispatchResult, NativeDispatchSpec } from '../../native.js';
import { CTRL, SI, TRACE_FIELDS, TraceCol as T, makeLayout, type EngineOut, type EngineStreamOut, type EngineWorkerData, type CuWorkerData, type TsEngineDebug, type TsEngineTuning } from './layout.js';
import { prepare, TS_PRIORITY_GREATEST, TS_PRIORITY_LEAST } from './prepare.js';
import { computeUnitSource, engineSource } from './worker-source.js';

export { createSchedule } from './schedule.js';
export type { Schedule } from './schedule.js';
export type { TsEngineDebug, TsEngineTuning } from './layout.js';

const MAX_WORKERS = 1024;
/** a worker pool that is not up after this long fails the run (a host so loaded it cannot measure) */
const STARTUP_TIMEOUT_MS = 60_000;

export interface TsEngineOptions {
  /** compute units; default GPUCOLO_CPU_WORKERS, else os.availableParallelism() (at least 2) */
  workers?: number;
  /** nice of the compute units, 0..19; default GPUCOLO_CPU_WORKER_NICE, else 19 */
  workerNice?: number;
  /** record which compute unit ran each block (at most maxBlocks records; the rest are counted) */
  trace?: { maxBlocks: number };
  tuning?: Partial<TsEngineTuning>;
  /** called (main thread) once every worker is up and the engine took the run's origin */
  onStarted?: () => void;
  /** fault injection for tests */
  debug?: TsEngineDebug;
}

/** One block as a compute unit ran it (trace option); times in ns after the run origin. */
export interface TsBlockTrace {
  stream: number;
  launch: number;
  block: number;
  worker: number;
  startNs: number;
  endNs: number;
}

/** NativeDispatchResult plus what the TS engine also knows. */
export interface TsDispatchResult extends NativeDispatchResult {
  engine: 'ts';
  cancelled: boolean;
  submitPhaseNs: number;
  elapsedNs: number;
  streams: (NativeDispatchResult['streams'][number] & { dropped: number; cuMask: number[]; computeUnits: number; fillBlocks: number })[];
  /** with options.trace */
  trace?: { blocks: TsBlockTrace[]; recorded: number; lost: number };
}

function envInt(name: string, lo: number, hi: number): number | undefined {
  const v = process.env[name];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n >= lo && n <= hi ? n : undefined;
}

/** Compute units the TS backend runs with (the native backend's rule: GPUCOLO_CPU_WORKERS, else the CPUs, at least 2). */
export function tsComputeUnits(requested?: number): number {
  const n = requested ?? envInt('GPUCOLO_CPU_WORKERS', 0, MAX_WORKERS) ?? 0;
  if (n > 0) return Math.min(n, MAX_WORKERS);
  return Math.max(2, os.availableParallelism());
}

function tsWorkerNice(requested?: number): number {
  return requested ?? envInt('GPUCOLO_CPU_WORKER_NICE', 0, 19) ?? 19;
}

export const TS_BACKEND_NOTE = 'timings from the pure-TS cpu backend (worker_threads, unpinned, JS timers): coarser than the native backend\'s';

/** The TS cpu backend as listBackends() reports it. */
export function tsCpuBackendInfo(): NativeBackendInfo {
  const n = tsComputeUnits();
  return {
    name: 'cpu',
    available: true,
    engine: 'ts',
    devices: [
      {
        name: `gpucolo pure-TS cpu backend (${n} worker_threads, unpinned)`,
        arch: os.machine(),
        computeUnits: n,
        priorityLeast: TS_PRIORITY_LEAST,
        priorityGreatest: TS_PRIORITY_GREATEST,
        supportsCuMask: true,
        supportsSmPartition: false,
        // process.hrtime is CLOCK_MONOTONIC (1 ns); what a JS wait can resolve is far coarser (see above)
        timerResolutionNs: 1,
        // the native cpu backend's answers: a compute unit runs one block at a time, whatever its threads
        maxThreadsPerBlock: 1024,
        fillThreadsPerBlock: 64,
        maxActiveBlocksPerCu: 1,
        occupancy: [32, 64, 128, 256, 512, 1024].map((threadsPerBlock) => ({ threadsPerBlock, blocksPerCu: 1 })),
        numXcc: 1,
        numSePerXcc: 1,
        numShPerSe: 1,
        cuMaskBitsPerUnit: 1,
      },
    ],
  };
}

/** The fields the native engine derives per stream (engine.cc DescribeStreams), for one result shape: no SM partitions, one resident block per compute unit. */
function withShare(st: EngineStreamOut, cus: number): TsDispatchResult['streams'][number] {
  let computeUnits = cus;
  if (st.cuMask.length) {
    computeUnits = 0;
    for (let w = 0; w < cus; w++) if ((st.cuMask[w >>> 5] ?? 0) & (1 << (w & 31))) computeUnits++;
  }
  return { ...st, smCountRequested: 0, smCount: 0, computeUnits, maxActiveBlocksPerCu: 1, fillBlocks: computeUnits };
}

function emptyResult(cus: number, status: number, error: string): TsDispatchResult {
  return {
    engine: 'ts',
    status,
    error,
    deviceOffsetNs: 0,
    // the device clock is the host clock: no offset, no drift
    deviceOffsetUncertaintyNs: 0,
    deviceOffsetEndNs: 0,
    computeUnits: cus,
    priorityLeast: TS_PRIORITY_LEAST,
    priorityGreatest: TS_PRIORITY_GREATEST,
    cancelled: false,
    submitPhaseNs: 0,
    elapsedNs: 0,
    streams: [],
  };
}

/**
 * Starts a measurement on the pure-TS engine (spec already validated by runDispatch's schema).
 * `done` resolves with the result (a bad spec or a watchdog timeout is a non-zero status, as from
 * the native engine) and rejects only when a worker fails (EWORKER) or never starts (ESTARTUP).
 */
export function startTsDispatch(spec: NativeDispatchSpec, o: TsEngineOptions = {}): { done: Promise<TsDispatchResult>; cancel(): void } {
  const cus = tsComputeUnits(o.workers);
  const prep = prepare(spec, cus);
  if (prep.status !== 0) {
    return { done: Promise.resolve(emptyResult(cus, prep.status, 'error' in prep ? prep.error : '')), cancel: () => {} };
  }
  const prepared = 'streams' in prep ? prep.streams : [];
  const traceCap = o.trace ? Math.max(0, Math.floor(o.trace.maxBlocks)) : 0;
  const layout = makeLayout(cus, prepared.length, traceCap);
  const { sabI, sabF, I, F } = sharedArrays(layout, prepared);
  const base = process.hrtime.bigint();
  const debug = o.debug ?? {};
  const tuning: TsEngineTuning = { submitSpinNs: 100e3, waitSliceNs: 5e6, ...o.tuning };
  const nice = tsWorkerNice(o.workerNice);

  let resolveDone!: (r: TsDispatchResult) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<TsDispatchResult>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const run: TsRun = { cus, layout, traceCap, I, F, workers: [], settled: false, resolveDone, rejectDone, startupTimer: undefined };
  const fail = (err: GpucoloError): void => failRun(run, err);
  const finish = (out: EngineOut): void => finishRun(run, out);
  const spawn = (label: string, source: string, data: CuWorkerData | EngineWorkerData): Worker => spawnWorker(run, label, source, data);

  try {
    for (let w = 0; w < cus; w++) {
      spawn(`compute-unit worker ${w}`, computeUnitSource(), { role: 'cu', worker: w, sabI, sabF, layout, base, nice, debug });
    }
    const engine = spawn('engine worker', engineSource(), {
      role: 'engine',
      sabI,
      sabF,
      layout,
      base,
      spec: engineSpec(spec),
      prepared,
      tuning,
      debug,
    });
    engine.on('message', (m: EngineOut | { type: 'started' }) => {
      if (m.type === 'started') {
        if (run.startupTimer) clearTimeout(run.startupTimer);
        run.startupTimer = undefined;
        if (!run.settled) o.onStarted?.();
      } else if (m.type === 'result') finish(m);
    });
    run.startupTimer = setTimeout(() => fail(new GpucoloError(`pure-TS dispatch engine: its ${cus + 1} worker threads did not start within ${STARTUP_TIMEOUT_MS / 1000} s`, { code: 'ESTARTUP' })), STARTUP_TIMEOUT_MS);
    run.startupTimer.unref();
  } catch (err) {
    fail(new GpucoloError(`pure-TS dispatch engine: cannot start its worker threads: ${(err as Error).message}`, { code: 'EWORKER' }));
  }

  return {
    done,
    cancel: () => {
      Atomics.store(I, CTRL.CANCEL, 1);
      Atomics.add(I, CTRL.ENGINE_GEN, 1);
      Atomics.notify(I, CTRL.ENGINE_GEN);
    },
  };
}

/** Step: the plain-data copy of the spec the engine worker receives (only the fields it reads). */
function engineSpec(spec: NativeDispatchSpec): EngineWorkerData['spec'] {
  return {
    durationNs: spec.durationNs,
    warmupNs: spec.warmupNs,
    maxLaunches: spec.maxLaunches,
    mechanism: spec.mechanism,
    throttleK: spec.throttleK,
    watchdogNs: spec.watchdogNs,
    streams: spec.streams.map((s) => ({
      name: s.name,
      highPriority: s.highPriority,
      kernel: { spinNs: s.kernel.spinNs, blocks: s.kernel.blocks },
      arrival: s.arrival,
      rateHz: s.rateHz,
      inflight: s.inflight,
      seed: s.seed,
      timesNs: s.timesNs,
    })),
  };
}

type TsLayout = ReturnType<typeof makeLayout>;
type TsPrepared = Extract<ReturnType<typeof prepare>, { streams: unknown }>['streams'];

/** What startTsDispatch's steps share: the shared memory views, the workers, and whether `done` has settled. */
interface TsRun {
  cus: number;
  layout: TsLayout;
  traceCap: number;
  I: Int32Array;
  F: Float64Array;
  workers: { w: Worker; label: string }[];
  settled: boolean;
  resolveDone: (r: TsDispatchResult) => void;
  rejectDone: (e: Error) => void;
  startupTimer: NodeJS.Timeout | undefined;
}

/** Step: allocates the shared buffers and writes each stream's priority and CU mask into them. */
function sharedArrays(layout: TsLayout, prepared: TsPrepared): { sabI: SharedArrayBuffer; sabF: SharedArrayBuffer; I: Int32Array; F: Float64Array } {
  const sabI = new SharedArrayBuffer(layout.i32Length * 4);
  const sabF = new SharedArrayBuffer(layout.f64Length * 8);
  const I = new Int32Array(sabI);
  const F = new Float64Array(sabF);
  for (const [s, p] of prepared.entries()) {
    const b = layout.sBase + s * layout.sStride;
    I[b + SI.PRIORITY] = p.priority;
    for (let w = 0; w < layout.maskWords; w++) I[b + layout.sMask + w] = p.cuMask.length ? (p.cuMask[w] ?? 0) | 0 : -1;
  }
  return { sabI, sabF, I, F };
}

/** Step: stops every worker (they leave their loops on STOP; terminate() is the backstop) and waits for them to exit. */
async function teardownRun(run: TsRun): Promise<void> {
  if (run.startupTimer) clearTimeout(run.startupTimer);
  const I = run.I;
  Atomics.store(I, CTRL.STOP, 1);
  for (const word of [CTRL.WORK_GEN, CTRL.ENGINE_GEN, CTRL.READY, CTRL.LOCK]) {
    Atomics.add(I, word, word === CTRL.LOCK ? 0 : 1);
    Atomics.notify(I, word);
  }
  await Promise.all(run.workers.map(({ w }) => w.terminate().catch(() => 0)));
}

/** Step: settles `done` with an error (first settle wins), after teardown. */
function failRun(run: TsRun, err: GpucoloError): void {
  if (run.settled) return;
  run.settled = true;
  void teardownRun(run).then(() => run.rejectDone(err));
}

/** Step: settles `done` with the engine's result (first settle wins), after teardown. */
function finishRun(run: TsRun, out: EngineOut): void {
  if (run.settled) return;
  run.settled = true;
  void teardownRun(run).then(() => run.resolveDone(toRunResult(run, out)));
}

/** Step: the engine's output as a TsDispatchResult, with the block trace read from shared memory when asked for. */
function toRunResult(run: TsRun, out: EngineOut): TsDispatchResult {
  const { cus, traceCap, I, F, layout } = run;
  const r: TsDispatchResult = {
    ...emptyResult(cus, out.status, out.error),
    cancelled: out.cancelled,
    submitPhaseNs: out.submitPhaseNs,
    elapsedNs: out.elapsedNs,
    streams: out.streams.map((st) => withShare(st, cus)),
  };
  if (traceCap > 0) {
    const recorded = Atomics.load(I, CTRL.TRACE_N);
    const n = Math.min(recorded, traceCap);
    const blocks: TsBlockTrace[] = [];
    for (let k = 0; k < n; k++) {
      const q = layout.traceBase + k * TRACE_FIELDS;
      blocks.push({ stream: F[q + T.stream], launch: F[q + T.launch], block: F[q + T.block], worker: F[q + T.worker], startNs: F[q + T.start] - out.originNs, endNs: F[q + T.end] - out.originNs });
    }
    r.trace = { blocks, recorded, lost: recorded - n };
  }
  return r;
}

/** Step: starts one worker thread and turns its error or early exit into a failed run. */
function spawnWorker(run: TsRun, label: string, source: string, data: CuWorkerData | EngineWorkerData): Worker {
  const w = new Worker(source, { eval: true, workerData: data, name: `gpucolo ${label}` });
  w.on('error', (err) => failRun(run, new GpucoloError(`pure-TS dispatch engine: ${label} failed: ${(err?.message ?? String(err)).split('\n')[0]}`, { code: 'EWORKER' })));
  w.on('exit', (code) => {
    if (run.settled) return;
    const early = (): void => failRun(run, new GpucoloError(`pure-TS dispatch engine: ${label} exited (code ${code}) before the run ended`, { code: 'EWORKER' }));
    // compute units leave when the engine set STOP, right before it posts the result; an engine
    // that ended cleanly has posted it (its message may still be on the way: give it a moment)
    if (code !== 0) early();
    else if (Atomics.load(run.I, CTRL.STOP) === 0) early();
    else setTimeout(() => run.settled || early(), 1000);
  });
  run.workers.push({ w, label });
  return w;
}
