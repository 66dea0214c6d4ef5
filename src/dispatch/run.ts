/**
 * The JS side of a dispatch measurement: validates a spec, hands it to an engine (the native one,
 * which runs the whole measurement in its own threads, or the pure-TS one in worker_threads; see
 * engine-choice.ts), and turns the per-launch arrays into latencies. Latency is always measured
 * from the INTENDED arrival (no coordinated omission).
 */
import { z } from 'zod';
import { MAX_BLOCKS, MAX_DISPATCH_SPAN_NS, MAX_INFLIGHT, MAX_KERNEL_NS, MAX_RATE_HZ, MAX_STREAMS, MAX_THREADS_PER_BLOCK, MAX_THROTTLE_K, MIN_DISPATCH_SPAN_NS } from '../limits.js';
import { loadNative, type DispatchEngine, type NativeBackendInfo, type NativeDispatchResult, type NativeDispatchSpec } from '../native.js';
import { GpucoloError, oneLine } from '../errors.js';
import { ENGINE_MECHANISMS } from '../mechanisms.js';
import { chooseEngine } from './engine-choice.js';
import { startTsDispatch, tsCpuBackendInfo, type TsEngineOptions } from './ts-engine/index.js';

const kernel = z.object({
  spinNs: z.number().int().min(0).max(MAX_KERNEL_NS),
  blocks: z.number().int().min(1).max(MAX_BLOCKS),
  threadsPerBlock: z.number().int().min(1).max(MAX_THREADS_PER_BLOCK),
});

const stream = z.object({
  name: z.string().min(1),
  highPriority: z.boolean(),
  kernel,
  arrival: z.enum(['closed-loop', 'fixed-rate', 'poisson', 'list']),
  rateHz: z.number().min(0).max(MAX_RATE_HZ).default(0),
  inflight: z.number().int().min(1).max(MAX_INFLIGHT).default(1),
  seed: z.number().int().min(0).default(1),
  timesNs: z.array(z.number().min(0)).default([]),
  level: z.number().int().min(-1).max(1023).default(-1),
  levels: z.number().int().min(0).max(1024).default(0),
});

export const dispatchSpecSchema = z
  .object({
    backend: z.enum(['cpu', 'cuda', 'hip']),
    device: z.number().int().min(0).default(0),
    durationNs: z.number().min(MIN_DISPATCH_SPAN_NS).max(MAX_DISPATCH_SPAN_NS),
    warmupNs: z.number().min(0).default(0),
    maxLaunches: z.number().int().min(0).default(0),
    mechanism: z.enum(ENGINE_MECHANISMS).default('none'),
    throttleK: z.number().int().min(1).max(MAX_THROTTLE_K).default(1),
    reserve: z.number().min(0).max(1).default(0),
    watchdogNs: z.number().min(1e6).default(10e9),
    streams: z.array(stream).min(1).max(MAX_STREAMS),
  })
  .superRefine((s, ctx) => {
    s.streams.forEach((st, i) => {
      if ((st.arrival === 'fixed-rate' || st.arrival === 'poisson') && !(st.rateHz > 0)) {
        ctx.addIssue({ code: 'custom', path: ['streams', i, 'rateHz'], message: `${st.arrival} arrivals need rateHz > 0` });
      }
      if (st.level >= 0 && st.level >= st.levels) ctx.addIssue({ code: 'custom', path: ['streams', i, 'level'], message: `level ${st.level} needs levels > ${st.level}` });
      if (st.arrival === 'list' && st.timesNs.length === 0) ctx.addIssue({ code: 'custom', path: ['streams', i, 'timesNs'], message: 'list arrivals need timesNs' });
    });
    if ((s.mechanism === 'cu-mask' || s.mechanism === 'sm-partition') && !(s.reserve > 0 && s.reserve < 1)) {
      ctx.addIssue({ code: 'custom', path: ['reserve'], message: `${s.mechanism} needs a reserve between 0 and 1 (e.g. 0.1 for 10%)` });
    }
    if (s.warmupNs >= s.durationNs) ctx.addIssue({ code: 'custom', path: ['warmupNs'], message: 'warm-up must be shorter than the duration' });
  });

export type DispatchSpecInput = z.input<typeof dispatchSpecSchema>;

/** One line per problem, path-qualified: "streams.1.rateHz: fixed-rate arrivals need rateHz > 0". */
export function specError(err: z.ZodError): GpucoloError {
  const lines = err.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`);
  return new GpucoloError(`bad dispatch spec: ${lines.join('; ')}`, { code: 'EINVALIDSPEC' });
}

export interface StreamLaunches {
  name: string;
  highPriority: boolean;
  /** measured launches (warm-up excluded) */
  n: number;
  /** complete - intended: what a request experiences */
  latencyNs: Float64Array;
  /** device start - intended: how long it waited for the device (queueing + submission) */
  startDelayNs: Float64Array;
  /** device end - device start */
  deviceNs: Float64Array;
  /** complete - submit: the round trip once submitted */
  roundTripNs: Float64Array;
  /** submit - intended: the submitter's own lag */
  submitLagNs: Float64Array;
  launches: number;
  errors: number;
  error: string;
  raw: NativeDispatchResult['streams'][number];
}

/**
 * The device clock against the host's over one run: the offset (device - host) measured before it
 * (with the width of its host bracket), again after it, and the drift in between. Latencies use the
 * offset from before; a drift beyond the uncertainty means device times late in the run are off by
 * up to driftNs against the host clock. The pure-TS engine's device clock is the host's (all 0).
 */
export interface ClockCheck {
  offsetNs: number;
  /** bound on the error of offsetNs (the tightest host bracket around the device-clock read); null when the engine did not say */
  uncertaintyNs: number | null;
  /** the offset measured after the run; null when it could not be measured */
  offsetEndNs: number | null;
  /** offsetEndNs - offsetNs; null when the end offset is unknown */
  driftNs: number | null;
}

export function clockCheck(res: Pick<NativeDispatchResult, 'deviceOffsetNs' | 'deviceOffsetUncertaintyNs' | 'deviceOffsetEndNs'>): ClockCheck {
  const end = res.deviceOffsetEndNs;
  const hasEnd = typeof end === 'number' && Number.isFinite(end);
  const u = res.deviceOffsetUncertaintyNs;
  return {
    offsetNs: res.deviceOffsetNs,
    uncertaintyNs: typeof u === 'number' && Number.isFinite(u) ? u : null,
    offsetEndNs: hasEnd ? end : null,
    driftNs: hasEnd ? end - res.deviceOffsetNs : null,
  };
}

/**
 * A dispatch that the engine refused or that failed, with the engine's status: GPUCOLO_ERR_UNSUPPORTED
 * (-3) and GPUCOLO_ERR_INVALID (-4) come from checking the spec against the device before anything
 * ran (a mechanism the backend lacks, a CU mask that would hang a queue): the same spec is refused
 * every time, so callers skip it rather than retry it.
 */
export class DispatchError extends GpucoloError {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message, { code: status === -5 ? 'ETIMEDOUT' : 'EDISPATCH' });
    this.status = status;
  }
  /** the spec was refused before anything ran (unsupported, or invalid for this device) */
  get refused(): boolean {
    return this.status === -3 || this.status === -4;
  }
}

export interface DispatchRun {
  spec: NativeDispatchSpec;
  /** which engine measured it */
  engine: DispatchEngine;
  /** why that engine (one line) */
  engineWhy: string;
  /** measured time (duration minus warm-up), ns */
  measuredNs: number;
  deviceOffsetNs: number;
  /** the device clock against the host's before and after the run (drift and its uncertainty) */
  clock: ClockCheck;
  computeUnits: number;
  priorityRange: { least: number; greatest: number };
  streams: StreamLaunches[];
}

/**
 * Backends the engines can use, with the reason for each that cannot be used. The cpu entry is
 * the one runDispatch would use (the pure-TS backend when the native core is not loaded or the
 * TS engine is asked for); cuda/hip are native plugins. Each entry says its `engine`.
 */
export function listBackends(opts: { engine?: DispatchEngine } = {}): NativeBackendInfo[] {
  const b = loadNative();
  const native = b ? b.listBackends().map((x) => ({ ...x, engine: 'native' as const })) : null;
  let cpu: NativeBackendInfo;
  try {
    const choice = chooseEngine('cpu', opts.engine);
    cpu = choice.engine === 'ts' ? tsCpuBackendInfo() : native!.find((x) => x.name === 'cpu')!;
  } catch (err) {
    cpu = { name: 'cpu', available: false, reason: oneLine(err), devices: [] };
  }
  const gpus = (['cuda', 'hip'] as const).map(
    (name): NativeBackendInfo => native?.find((x) => x.name === name) ?? { name, available: false, reason: 'native core not loaded', devices: [], engine: 'native' },
  );
  return [cpu, ...gpus];
}

function measured(raw: NativeDispatchResult['streams'][number]): StreamLaunches {
  const keep: number[] = [];
  for (let i = 0; i < raw.intendedNs.length; i++) if (!raw.warmup[i] && raw.completeNs[i] > 0) keep.push(i);
  const pick = (f: (i: number) => number) => Float64Array.from(keep, f);
  return {
    name: raw.name,
    highPriority: raw.highPriority,
    n: keep.length,
    latencyNs: pick((i) => raw.completeNs[i] - raw.intendedNs[i]),
    startDelayNs: pick((i) => raw.deviceStartNs[i] - raw.intendedNs[i]),
    deviceNs: pick((i) => raw.deviceEndNs[i] - raw.deviceStartNs[i]),
    roundTripNs: pick((i) => raw.completeNs[i] - raw.submitNs[i]),
    submitLagNs: pick((i) => raw.submitNs[i] - raw.intendedNs[i]),
    launches: raw.launches,
    errors: raw.errors,
    error: raw.error,
    raw,
  };
}

export interface RunDispatchOptions {
  /** aborting it cancels the run (the engine stops and returns what it has) */
  signal?: AbortSignal;
  /** force an engine (default: GPUCOLO_DISPATCH_ENGINE, else native when loaded, else ts; GPU backends: native) */
  engine?: DispatchEngine;
  /** options of the pure-TS engine (ignored by the native one) */
  ts?: TsEngineOptions;
}

/** Runs one measurement. Aborting the signal cancels it (the engine stops and returns what it has). */
export async function runDispatch(input: DispatchSpecInput, opts: RunDispatchOptions = {}): Promise<DispatchRun> {
  const parsed = dispatchSpecSchema.safeParse(input);
  if (!parsed.success) throw specError(parsed.error);
  const spec = parsed.data as NativeDispatchSpec;
  const choice = chooseEngine(spec.backend, opts.engine);
  let h: { done: Promise<NativeDispatchResult>; cancel(): void };
  if (choice.engine === 'ts') {
    h = startTsDispatch(spec, opts.ts);
  } else {
    const backend = listBackends({ engine: 'native' }).find((x) => x.name === spec.backend);
    if (!backend?.available) {
      throw new GpucoloError(`backend ${spec.backend} unavailable: ${backend?.reason ?? 'unknown backend'}`, { code: 'ENOBACKEND' });
    }
    h = loadNative()!.startDispatch(spec);
  }
  const onAbort = (): void => h.cancel();
  opts.signal?.addEventListener('abort', onAbort);
  if (opts.signal?.aborted) h.cancel();
  let res: NativeDispatchResult;
  try {
    res = await h.done;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  res.engine = choice.engine;
  if (res.status !== 0) {
    const who = choice.engine === 'ts' ? `${spec.backend} dispatch (pure-TS engine)` : `${spec.backend} dispatch`;
    throw new DispatchError(`${who} failed: ${res.error}`, res.status);
  }
  return {
    spec,
    engine: choice.engine,
    engineWhy: choice.why,
    measuredNs: spec.durationNs - spec.warmupNs,
    deviceOffsetNs: res.deviceOffsetNs,
    clock: clockCheck(res),
    computeUnits: res.computeUnits,
    priorityRange: { least: res.priorityLeast, greatest: res.priorityGreatest },
    streams: res.streams.map(measured),
  };
}
