/**
 * The priority microbenchmarks (`gpucolo probe latency|priority`): what a latency-critical
 * (high-priority, HP) stream gets next to low-priority (LP) streams that keep the device busy,
 * under each mechanism, against the standalone runs that are always measured too.
 *
 * Two families: temporal (`throttle`: gpucolo holds LP launches to a window of K in flight and
 * pauses them while HP work is pending; HP can still wait behind up to K running LP kernels) and
 * spatial (`cu-mask`, `sm-partition`: a reserve of compute units only HP may use, so HP never
 * waits behind LP kernels). `none` and `stream-priority` for comparison.
 */
import type { DispatchEngine, DispatchMechanism } from '../native.js';
import { quantileOf, quantiles, type QuantileSummary } from '../stats/index.js';
import { runDispatch, type DispatchRun, type DispatchSpecInput } from './run.js';
import { kfdCheck, type KfdCheckOptions, type KfdCheckResult } from './kfd-check.js';

export type Backend = 'cpu' | 'cuda' | 'hip';

export interface LatencyProbeOptions {
  backend: Backend;
  device?: number;
  /** 0 = empty kernel */
  spinNs?: number;
  blocks?: number;
  durationNs?: number;
  warmupNs?: number;
  /** force an engine (see runDispatch) */
  engine?: DispatchEngine;
  signal?: AbortSignal;
}

export interface LatencyProbeResult {
  backend: Backend;
  /** which engine measured it (the pure-TS engine's timings are coarser) */
  engine: DispatchEngine;
  spinNs: number;
  launches: number;
  /** complete - submit of back-to-back launches on one stream (closed loop, one in flight) */
  roundTrip: QuantileSummary;
  /** device end - device start */
  device: QuantileSummary;
}

export async function probeLatency(o: LatencyProbeOptions): Promise<LatencyProbeResult> {
  const spinNs = o.spinNs ?? 0;
  const run = await runDispatch(
    {
      backend: o.backend,
      device: o.device ?? 0,
      durationNs: o.durationNs ?? 2e9,
      warmupNs: o.warmupNs ?? 200e6,
      streams: [{ name: 'probe', highPriority: true, kernel: { spinNs, blocks: o.blocks ?? 1, threadsPerBlock: 64 }, arrival: 'closed-loop', inflight: 1 }],
    },
    { signal: o.signal, engine: o.engine },
  );
  const s = run.streams[0];
  return { backend: o.backend, engine: run.engine, spinNs, launches: s.n, roundTrip: quantiles(s.roundTripNs), device: quantiles(s.deviceNs) };
}

export interface PriorityProbeOptions {
  backend: Backend;
  device?: number;
  lpKernelNs: number;
  lpBlocks?: number;
  lpStreams: number;
  /** LP launches kept in flight per LP stream (closed loop) */
  lpInflight?: number;
  hpKernelNs: number;
  hpBlocks?: number;
  hpRateHz: number;
  mechanisms: DispatchMechanism[];
  durationNs: number;
  warmupNs?: number;
  reserve?: number;
  throttleK?: number;
  watchdogNs?: number;
  seed?: number;
  /** one extra co-run per value */
  sweep?: { param: 'K' | 'lp-kernel' | 'reserve'; values: number[] };
  /**
   * KFD checks during each co-run (AMD): verify the streams' KFD queue priorities mid-run and,
   * with kfdPriority, set the HP stream's queues first (after half the warm-up, so the measured
   * part runs with it). The CLI enables this for the hip backend on a host with a KFD.
   */
  kfd?: Omit<KfdCheckOptions, 'mechanism' | 'streams'>;
  /** force an engine (see runDispatch) */
  engine?: DispatchEngine;
  signal?: AbortSignal;
  onRun?: (label: string) => void;
}

export interface CoRunResult {
  mechanism: DispatchMechanism;
  throttleK: number | null;
  reserve: number | null;
  lpKernelNs: number;
  hpLatency: QuantileSummary;
  /** device start - intended arrival */
  hpTimeToStart: QuantileSummary;
  /** LP kernels completed per second */
  lpThroughput: number;
  /** lpThroughput / standalone LP throughput */
  lpShare: number | null;
  /** what the LP streams may keep: 1 - reserve for spatial mechanisms, else 1 */
  lpAllowedShare: number;
  /** co-run HP P99 / standalone HP P99 */
  hpP99VsStandalone: number | null;
  /** co-run HP P99 - standalone HP P99, ns */
  addedHpP99Ns: number | null;
  /** throttle: added HP P99 in units of one LP kernel (bound: K) */
  addedP99InLpKernels: number | null;
  errors: string[];
  /** KFD verification (and --kfd-priority) during this run; null when not asked for */
  kfd: KfdCheckResult | null;
}

export interface PriorityProbeResult {
  backend: Backend;
  /** which engine measured it (the pure-TS engine's timings are coarser) */
  engine: DispatchEngine;
  options: Omit<PriorityProbeOptions, 'signal' | 'onRun'>;
  computeUnits: number;
  standalone: { hpLatency: QuantileSummary; hpTimeToStart: QuantileSummary; lpThroughput: number; lpKernelNs: number }[];
  runs: CoRunResult[];
}

function hpStream(o: PriorityProbeOptions): DispatchSpecInput['streams'][number] {
  return {
    name: 'hp',
    highPriority: true,
    kernel: { spinNs: o.hpKernelNs, blocks: o.hpBlocks ?? 1, threadsPerBlock: 64 },
    arrival: 'poisson',
    rateHz: o.hpRateHz,
    seed: o.seed ?? 1,
  };
}

function lpStreams(o: PriorityProbeOptions, lpKernelNs: number): DispatchSpecInput['streams'] {
  return Array.from({ length: o.lpStreams }, (_, i) => ({
    name: `lp${i}`,
    highPriority: false,
    kernel: { spinNs: lpKernelNs, blocks: o.lpBlocks ?? 1, threadsPerBlock: 256 },
    arrival: 'closed-loop' as const,
    inflight: o.lpInflight ?? 2,
  }));
}

function lpThroughput(run: DispatchRun): number {
  const n = run.streams.filter((s) => !s.highPriority).reduce((a, s) => a + s.n, 0);
  return n / (run.measuredNs / 1e9);
}

export async function probePriority(o: PriorityProbeOptions): Promise<PriorityProbeResult> {
  const base = {
    backend: o.backend,
    device: o.device ?? 0,
    durationNs: o.durationNs,
    warmupNs: o.warmupNs ?? Math.min(500e6, o.durationNs / 5),
    watchdogNs: o.watchdogNs ?? Math.max(10e9, o.lpKernelNs * 20),
  };
  const lpKernels = o.sweep?.param === 'lp-kernel' ? o.sweep.values : [o.lpKernelNs];
  let computeUnits = 0;
  const standalone: PriorityProbeResult['standalone'] = [];
  // standalone runs: HP alone (its latency floor), LP alone per LP kernel size (its throughput)
  o.onRun?.('standalone hp');
  const hpAlone = await runDispatch({ ...base, streams: [hpStream(o)] }, { signal: o.signal, engine: o.engine });
  computeUnits = hpAlone.computeUnits;
  const hp = hpAlone.streams[0];
  const lpAloneBy = new Map<number, number>();
  for (const k of lpKernels) {
    o.onRun?.(`standalone lp (${k / 1e6} ms kernels)`);
    const lpAlone = await runDispatch({ ...base, streams: lpStreams(o, k) }, { signal: o.signal, engine: o.engine });
    lpAloneBy.set(k, lpThroughput(lpAlone));
    standalone.push({ hpLatency: quantiles(hp.latencyNs), hpTimeToStart: quantiles(hp.startDelayNs), lpThroughput: lpAloneBy.get(k)!, lpKernelNs: k });
  }
  const hpP99Alone = quantileOf(quantiles(hp.latencyNs), 99);

  const runs: CoRunResult[] = [];
  const variants: { mechanism: DispatchMechanism; k: number; reserve: number; lpKernelNs: number }[] = [];
  for (const m of o.mechanisms) {
    const ks = m === 'throttle' && o.sweep?.param === 'K' ? o.sweep.values : [o.throttleK ?? 1];
    const rs = (m === 'cu-mask' || m === 'sm-partition') && o.sweep?.param === 'reserve' ? o.sweep.values : [o.reserve ?? 0.1];
    for (const lk of lpKernels) for (const k of ks) for (const r of rs) variants.push({ mechanism: m, k, reserve: r, lpKernelNs: lk });
  }
  for (const v of variants) {
    const spatial = v.mechanism === 'cu-mask' || v.mechanism === 'sm-partition';
    o.onRun?.(`${v.mechanism}${v.mechanism === 'throttle' ? ` K=${v.k}` : ''}${spatial ? ` reserve=${Math.round(v.reserve * 100)}%` : ''}`);
    const streams = [hpStream(o), ...lpStreams(o, v.lpKernelNs)];
    let kfd: KfdCheckResult | null = null;
    let kfdError: string | null = null;
    // queues exist once the streams run; set priorities during the warm-up, verify mid-run otherwise
    const at = o.kfd ? (o.kfd.kfdPriority !== undefined ? base.warmupNs / 2 : base.warmupNs + (base.durationNs - base.warmupNs) / 2) : 0;
    const timer = o.kfd
      ? setTimeout(() => {
          try {
            kfd = kfdCheck({ ...o.kfd, mechanism: v.mechanism, streams });
          } catch (err) {
            kfdError = `KFD check failed: ${(err as Error).message}`;
          }
        }, at / 1e6)
      : null;
    let run: DispatchRun;
    try {
      run = await runDispatch({ ...base, mechanism: v.mechanism, throttleK: v.k, reserve: spatial ? v.reserve : 0, streams }, { signal: o.signal, engine: o.engine });
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (o.kfd && !kfd && !kfdError) kfdError = 'KFD check did not run: the run ended before its time came';
    const h = run.streams.find((s) => s.highPriority)!;
    const hpLatency = quantiles(h.latencyNs);
    const p99 = quantileOf(hpLatency, 99);
    const lpT = lpThroughput(run);
    const lpAlone = lpAloneBy.get(v.lpKernelNs) ?? null;
    const added = p99 !== null && hpP99Alone !== null ? p99 - hpP99Alone : null;
    runs.push({
      mechanism: v.mechanism,
      throttleK: v.mechanism === 'throttle' ? v.k : null,
      reserve: spatial ? v.reserve : null,
      lpKernelNs: v.lpKernelNs,
      hpLatency,
      hpTimeToStart: quantiles(h.startDelayNs),
      lpThroughput: lpT,
      lpShare: lpAlone ? lpT / lpAlone : null,
      lpAllowedShare: spatial ? 1 - v.reserve : 1,
      hpP99VsStandalone: p99 !== null && hpP99Alone ? p99 / hpP99Alone : null,
      addedHpP99Ns: added,
      addedP99InLpKernels: v.mechanism === 'throttle' && added !== null ? added / v.lpKernelNs : null,
      errors: [...run.streams.filter((s) => s.error).map((s) => `${s.name}: ${s.error}`), ...(kfdError ? [kfdError] : [])],
      kfd,
    });
  }
  const { signal: _s, onRun: _r, kfd: _k, ...options } = o;
  return { backend: o.backend, engine: hpAlone.engine, options, computeUnits, standalone, runs };
}
