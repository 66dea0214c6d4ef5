/**
 * The priority microbenchmarks (`gpucolo probe latency|priority`): what a latency-critical
 * (high-priority, HP) stream gets next to low-priority (LP) streams that keep the device busy,
 * under each mechanism, against the standalone runs that are always measured too.
 *
 * Two families: temporal (`throttle`: gpucolo holds LP launches to a window of K in flight and
 * pauses them while HP work is pending; HP can still wait behind up to K running LP kernels) and
 * spatial (`cu-mask`, `sm-partition`: a reserve of compute units only HP may use, so HP never
 * waits behind LP kernels). `none` and `stream-priority` for comparison.
 *
 * Measured in rounds: every variant (HP alone, LP alone, each co-run) once per round, in an order
 * rotated each round, so that drift on a shared host reaches all of them alike instead of landing
 * on whichever ran last. Latency percentiles come from the per-launch samples pooled over the
 * rounds; each round's figures are kept for the spread, and a quality block flags what the host,
 * not the mechanism, did (see summarizePriority).
 */
import type { DispatchEngine, DispatchMechanism, NativeBackendDevice } from '../native.js';
import { GpucoloError, oneLine } from '../errors.js';
import { formatDuration } from '../units.js';
import {
  IMPOSSIBLE,
  disjointBeyond,
  flagged,
  hostLoadWindow,
  impossibleCorunValues,
  interferenceWarnings,
  qualityOf,
  quantileOf,
  quantiles,
  rotatedOrder,
  roundSpread,
  type HostLoad,
  type Quality,
  type QualityWarning,
  type QuantileSummary,
  type RoundSpread,
} from '../stats/index.js';
import { DispatchError, listBackends, runDispatch, type ClockCheck, type DispatchRun, type DispatchSpecInput } from './run.js';
import { kfdCheck, type KfdCheckOptions, type KfdCheckResult } from './kfd-check.js';
import { blocksPerCuAt, fillReport, mechanismProblem, reservedUnits, sizeStreams, streamShare, type FillReport, type StreamShare } from './fill.js';

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
  /** the device clock against the host's before and after the run: drift and the offset's uncertainty */
  clock: ClockCheck;
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
  return { backend: o.backend, engine: run.engine, spinNs, launches: s.n, roundTrip: quantiles(s.roundTripNs), device: quantiles(s.deviceNs), clock: run.clock };
}

export interface PriorityProbeOptions {
  backend: Backend;
  device?: number;
  lpKernelNs: number;
  /**
   * blocks per LP kernel (threads per block: LP_THREADS). 'fill' (the default): enough to occupy
   * every compute unit the LP streams may use, as made for each variant (the whole device, or the
   * side a CU mask / SM partition leaves them: fill.ts), from the occupancy of the probe kernel.
   */
  lpBlocks?: number | 'fill';
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
   * Rounds (default 1; the CLI's default is 2): every variant (HP alone, LP alone per LP kernel,
   * each co-run) runs once per round, in an order rotated each round, so drift on the host reaches
   * every variant alike; per-launch samples are pooled over the rounds and each round's figures
   * are kept for the spread.
   */
  rounds?: number;
  /**
   * KFD checks during each co-run (AMD): verify the streams' KFD queue priorities mid-run and,
   * with kfdPriority, set the HP stream's queues first (after half the warm-up, so the measured
   * part runs with it). The CLI enables this for the hip backend on a host with a KFD.
   */
  kfd?: Omit<KfdCheckOptions, 'mechanism' | 'streams'>;
  /** force an engine (see runDispatch) */
  engine?: DispatchEngine;
  signal?: AbortSignal;
  /** called before each run; round is 1-based */
  onRun?: (label: string, round: number, rounds: number) => void;
}

/** One thing measured once per round: HP alone, LP alone (per LP kernel), or a co-run. */
export interface PriorityVariant {
  /** 'standalone:hp', 'standalone:lp[ lp-kernel=D]', 'corun:<mechanism>[ K=k][ reserve=r%][ lp-kernel=D]' */
  label: string;
  kind: 'standalone-hp' | 'standalone-lp' | 'corun';
  mechanism: DispatchMechanism | null;
  throttleK: number | null;
  reserve: number | null;
  lpKernelNs: number;
}

/** What one run of one variant produced: the input of summarizePriority. */
export interface PriorityRunRecord {
  label: string;
  /** 1-based */
  round: number;
  /** 1-based place in its round */
  position: number;
  /** measured time (duration minus warm-up), ns; 0 when the run failed */
  measuredNs: number;
  /** HP per-launch samples of the measured part; null without an HP stream or when the run failed */
  hp: { latencyNs: ArrayLike<number>; startDelayNs: ArrayLike<number> } | null;
  /** LP kernels completed in the measured part, all LP streams; null without LP streams or when the run failed */
  lpKernels: number | null;
  /** the streams' errors and the KFD check's */
  errors: string[];
  /** why the run produced nothing (a failed dispatch, an interruption); absent when it ran */
  failed?: string;
  /** what other processes took from the host during the run; null where /proc is unreadable */
  hostLoad: HostLoad | null;
  kfd: KfdCheckResult | null;
  /** blocks of each LP kernel (the LP throughput share is in blocks, since variants' LP kernels may differ in size); absent = 1 */
  lpBlocksPerKernel?: number;
  /** how the LP kernels filled the compute units the LP streams had in this run; absent/null = unknown */
  lpFill?: FillReport | null;
  /** what the HP stream and the (first) LP stream were given in this run, as made */
  shares?: { hp: StreamShare | null; lp: StreamShare | null };
  /** the device clock against the host's over this run */
  clock?: ClockCheck | null;
}

/** One round's figures of one variant (co-run ratios are against the same round's standalone runs). */
export interface PriorityRoundFigures {
  round: number;
  position: number;
  hpN: number | null;
  hpP50Ns: number | null;
  /** 95% confidence interval of that P50; null when the round has too few samples */
  hpP50CiNs: [number, number] | null;
  hpP99Ns: number | null;
  /** 95% confidence interval of that P99; null when the round has too few samples (< 368) */
  hpP99CiNs: [number, number] | null;
  lpThroughput: number | null;
  /**
   * 95% interval of the LP rate, counting completions as Poisson: a closed loop completes more
   * regularly than that, so the interval is on the wide side and a drift flag is no false alarm
   */
  lpThroughputCi: [number, number] | null;
  lpShare: number | null;
  hpP99VsStandalone: number | null;
  hostLoad: HostLoad | null;
  failed?: string;
}

/** min / median / max over the rounds of the figures the tables compare (null: never measured). */
export interface PrioritySpread {
  hpP99Ns: RoundSpread | null;
  lpThroughput: RoundSpread | null;
  lpShare: RoundSpread | null;
  hpP99VsStandalone: RoundSpread | null;
}

/** throttle's claim: the added HP P99 stays within K LP kernels. */
export interface ThrottleBound {
  limit: number;
  value: number | null;
  /** never 'met' when a value it rests on is flagged by a quality warning: then 'inconclusive' */
  verdict: 'met' | 'exceeded' | 'inconclusive';
  reason?: string;
}

export interface CoRunResult {
  label: string;
  mechanism: DispatchMechanism;
  throttleK: number | null;
  reserve: number | null;
  lpKernelNs: number;
  /** pooled over the rounds */
  hpLatency: QuantileSummary;
  /** device start - intended arrival, pooled */
  hpTimeToStart: QuantileSummary;
  /** LP kernels completed per second, pooled (all LP kernels / all measured time); null when no round ran */
  lpThroughput: number | null;
  /** lpThroughput / pooled standalone LP throughput */
  lpShare: number | null;
  /**
   * what the LP streams may keep: for spatial mechanisms the LP side's compute units as made / the
   * device's (an SM partition rounded by the driver leaves LP fewer SMs than asked), else 1
   */
  lpAllowedShare: number;
  /** the same as asked: (CUs - ceil(reserve x CUs)) / CUs for spatial mechanisms, else 1 */
  lpAllowedShareRequested: number;
  /** spatial mechanisms: compute units per side, asked and as made (the last run that said); null otherwise */
  partition: { hp: { requested: number; made: number }; lp: { requested: number; made: number } } | null;
  /** how the LP kernels filled the LP side: blocks x threads, resident blocks per CU, occupancy reached */
  lpFill: FillReport | null;
  /** pooled co-run HP P99 / pooled standalone HP P99 */
  hpP99VsStandalone: number | null;
  /** co-run HP P99 - standalone HP P99, ns */
  addedHpP99Ns: number | null;
  /** throttle: added HP P99 in units of one LP kernel (bound: K) */
  addedP99InLpKernels: number | null;
  /** throttle only */
  bound: ThrottleBound | null;
  rounds: PriorityRoundFigures[];
  spread: PrioritySpread;
  /** the streams' errors (and the KFD check's), prefixed with the round when there are several */
  errors: string[];
  /** KFD verification (and --kfd-priority) during the last round that ran it; null when not asked for */
  kfd: KfdCheckResult | null;
}

export interface StandaloneResult {
  label: string;
  /** the pooled standalone HP figures (HP alone runs once per round, whatever the LP kernel) */
  hpLatency: QuantileSummary;
  hpTimeToStart: QuantileSummary;
  /** LP alone with this LP kernel, pooled; null when no round ran */
  lpThroughput: number | null;
  lpKernelNs: number;
  /** how the LP kernels filled the device: blocks x threads, resident blocks per CU, occupancy reached */
  lpFill: FillReport | null;
  /** rounds of LP alone */
  rounds: PriorityRoundFigures[];
  spread: PrioritySpread;
}

/** A co-run the backend cannot run (a mechanism it lacks, a reserve it refuses): not measured, with why. */
export interface SkippedCoRun {
  label: string;
  mechanism: DispatchMechanism;
  throttleK: number | null;
  reserve: number | null;
  lpKernelNs: number;
  reason: string;
}

/** The device clock against the host's over every run: the largest drift seen and the offset's uncertainty. */
export interface ClockSummary {
  /** runs whose drift was measured */
  runs: number;
  /** the drift (offset after - offset before a run) of largest magnitude, ns; null when no run measured one */
  maxDriftNs: number | null;
  /** the widest host bracket of an offset measurement (the uncertainty of each offset; a drift's is up to twice that), ns */
  uncertaintyNs: number | null;
}

export interface PriorityProbeResult {
  backend: Backend;
  /** which engine measured it (the pure-TS engine's timings are coarser) */
  engine: DispatchEngine;
  options: Omit<PriorityProbeOptions, 'signal' | 'onRun' | 'kfd'>;
  computeUnits: number;
  rounds: number;
  /** per round, the variants' labels in the order they ran */
  order: string[][];
  standaloneHp: { label: string; hpLatency: QuantileSummary; hpTimeToStart: QuantileSummary; rounds: PriorityRoundFigures[]; spread: PrioritySpread };
  standalone: StandaloneResult[];
  runs: CoRunResult[];
  /** co-runs not measured because the backend cannot run them, with the reason (the rest is measured) */
  skipped: SkippedCoRun[];
  /** how the probe was set up where it had to estimate (e.g. "fill" without a sizing run) */
  notes: string[];
  /** the device clock's drift against the host's over the runs */
  clock: ClockSummary;
  quality: Quality;
  /** stopped by the signal: the rounds are incomplete */
  interrupted: boolean;
}

/** Threads per block of the LP probe kernels (HP's: HP_THREADS). */
export const LP_THREADS = 256;
export const HP_THREADS = 64;

function hpStream(o: PriorityProbeOptions): DispatchSpecInput['streams'][number] {
  return {
    name: 'hp',
    highPriority: true,
    kernel: { spinNs: o.hpKernelNs, blocks: o.hpBlocks ?? 1, threadsPerBlock: HP_THREADS },
    arrival: 'poisson',
    rateHz: o.hpRateHz,
    seed: o.seed ?? 1,
  };
}

function lpStreams(o: PriorityProbeOptions, lpKernelNs: number, blocks: number): DispatchSpecInput['streams'] {
  return Array.from({ length: o.lpStreams }, (_, i) => ({
    name: `lp${i}`,
    highPriority: false,
    kernel: { spinNs: lpKernelNs, blocks, threadsPerBlock: LP_THREADS },
    arrival: 'closed-loop' as const,
    inflight: o.lpInflight ?? 2,
  }));
}

const isSpatial = (m: DispatchMechanism | null): boolean => m === 'cu-mask' || m === 'sm-partition';
const pctLabel = (share: number): string => `${Math.round(share * 100)}%`;

/** The variants of one round, in their unrotated order: standalone runs first, then the co-runs. */
export function priorityVariants(o: Pick<PriorityProbeOptions, 'mechanisms' | 'sweep' | 'lpKernelNs' | 'throttleK' | 'reserve'>): PriorityVariant[] {
  const sweepLp = o.sweep?.param === 'lp-kernel';
  const lpKernels = sweepLp ? o.sweep!.values : [o.lpKernelNs];
  const lpTag = (k: number): string => (sweepLp ? ` lp-kernel=${formatDuration(k)}` : '');
  const out: PriorityVariant[] = [{ label: 'standalone:hp', kind: 'standalone-hp', mechanism: null, throttleK: null, reserve: null, lpKernelNs: o.lpKernelNs }];
  for (const k of lpKernels) out.push({ label: `standalone:lp${lpTag(k)}`, kind: 'standalone-lp', mechanism: null, throttleK: null, reserve: null, lpKernelNs: k });
  // a mechanism named twice would be the same variant twice: its rounds would mix
  for (const m of [...new Set(o.mechanisms)]) {
    const ks = m === 'throttle' ? (o.sweep?.param === 'K' ? o.sweep.values : [o.throttleK ?? 1]) : [null];
    const rs = isSpatial(m) ? (o.sweep?.param === 'reserve' ? o.sweep.values : [o.reserve ?? 0.1]) : [null];
    for (const lk of lpKernels) {
      for (const k of ks) {
        for (const r of rs) {
          const label = `corun:${m}${k !== null ? ` K=${k}` : ''}${r !== null ? ` reserve=${pctLabel(r)}` : ''}${lpTag(lk)}`;
          out.push({ label, kind: 'corun', mechanism: m, throttleK: k, reserve: r, lpKernelNs: lk });
        }
      }
    }
  }
  return out;
}

/**
 * What a variant runs with, decided before the rounds: the LP kernels' blocks ("fill" resolved
 * against the compute units the LP streams get under the variant's mechanism, as made) and what
 * the sizing run found each side was given.
 */
interface VariantPlan {
  lpBlocks: number;
  lp: StreamShare | null;
  hp: StreamShare | null;
  /** how "fill" was decided when it was not from the engine's sizing run */
  note?: string;
}

/** One sizing per kind of device share: the whole device (standalone, none, stream-priority, throttle) or a spatial mechanism at one reserve. */
const shareKey = (v: PriorityVariant): string => (v.kind === 'corun' && isSpatial(v.mechanism) ? `${v.mechanism} ${v.reserve}` : 'whole');

/**
 * Sizes every kind of share the variants use (fill.ts sizeStreams): the plans by share key, and
 * the co-runs the engine refused with its reason. Without a sizing (the run failed), "fill" falls
 * back to the device's occupancy table and the split as asked.
 */
async function planVariants(
  o: PriorityProbeOptions,
  base: Omit<DispatchSpecInput, 'streams'>,
  variants: PriorityVariant[],
  dev: NativeBackendDevice,
): Promise<{ plans: Map<string, VariantPlan>; refused: Map<string, string> }> {
  const plans = new Map<string, VariantPlan>();
  const refused = new Map<string, string>();
  const cus = dev.computeUnits;
  const perCu = blocksPerCuAt(dev, LP_THREADS) ?? 1;
  for (const v of variants) {
    const key = shareKey(v);
    if (plans.has(key) || refused.has(key)) continue;
    if (o.signal?.aborted) break;
    const spatial = key !== 'whole';
    const spec: DispatchSpecInput = {
      ...base,
      ...(spatial ? { mechanism: v.mechanism!, reserve: v.reserve! } : {}),
      streams: [hpStream(o), ...lpStreams(o, v.lpKernelNs, 1)],
    };
    const sized = await sizeStreams(spec, { engine: o.engine, signal: o.signal, dev });
    if (!sized.ok && sized.refused) {
      refused.set(key, sized.reason);
      continue;
    }
    const hp = sized.ok ? sized.streams.find((s) => s.highPriority) ?? null : null;
    const lp = sized.ok ? sized.streams.find((s) => !s.highPriority) ?? null : null;
    let note: string | undefined;
    let fill = lp && lp.fillBlocks > 0 ? lp.fillBlocks : 0;
    if (!fill) {
      const lpCus = spatial ? cus - reservedUnits(v.reserve!, cus) : cus;
      fill = lpCus * perCu;
      note = sized.ok
        ? `the engine did not say how many LP blocks fill their compute units: ${lpCus} x ${perCu} from the device's occupancy table`
        : `sizing run failed (${sized.reason}): fill = ${lpCus} x ${perCu} blocks from the device's occupancy table and the split as asked`;
    }
    plans.set(key, { lpBlocks: typeof o.lpBlocks === 'number' ? o.lpBlocks : Math.max(1, fill), lp, hp, ...(note ? { note } : {}) });
  }
  return { plans, refused };
}

type Measured = Omit<PriorityRunRecord, 'round' | 'position'> & { engine?: DispatchEngine; computeUnits?: number; refused?: string };

/** Runs one variant once, with a host-load window around it. */
async function measureVariant(o: PriorityProbeOptions, base: Omit<DispatchSpecInput, 'streams'>, v: PriorityVariant, plan: VariantPlan, dev: NativeBackendDevice | null): Promise<Measured> {
  const lpBlocks = plan.lpBlocks;
  const streams =
    v.kind === 'standalone-hp' ? [hpStream(o)] : v.kind === 'standalone-lp' ? lpStreams(o, v.lpKernelNs, lpBlocks) : [hpStream(o), ...lpStreams(o, v.lpKernelNs, lpBlocks)];
  const spec: DispatchSpecInput =
    v.kind === 'corun'
      ? { ...base, mechanism: v.mechanism!, throttleK: v.throttleK ?? o.throttleK ?? 1, reserve: v.reserve ?? 0, streams }
      : { ...base, streams };
  let kfd: KfdCheckResult | null = null;
  let kfdError: string | null = null;
  // KFD checks in co-runs only (HP and LP queues side by side). Queues exist once the streams
  // run: set priorities during the warm-up, verify mid-run otherwise
  const checkKfd = o.kfd && v.kind === 'corun';
  const warmupNs = base.warmupNs ?? 0;
  const at = checkKfd ? (o.kfd!.kfdPriority !== undefined ? warmupNs / 2 : warmupNs + (base.durationNs - warmupNs) / 2) : 0;
  const timer = checkKfd
    ? setTimeout(() => {
        try {
          kfd = kfdCheck({ ...o.kfd, mechanism: v.mechanism!, streams });
        } catch (err) {
          kfdError = `KFD check failed: ${(err as Error).message}`;
        }
      }, at / 1e6)
    : null;
  const window = hostLoadWindow();
  const none = { measuredNs: 0, hp: null, lpKernels: null, errors: [], kfd: null };
  let run: DispatchRun;
  try {
    run = await runDispatch(spec, { signal: o.signal, engine: o.engine });
  } catch (err) {
    // one run that fails (the device, a watchdog) costs its round's figures, not the whole
    // measurement; a backend that is missing or a bad spec would fail every run: thrown at once
    const code = (err as { code?: unknown }).code;
    if (!(err instanceof GpucoloError) || (code !== 'EDISPATCH' && code !== 'ETIMEDOUT')) throw err;
    const refused = err instanceof DispatchError && err.refused ? { refused: oneLine(err) } : {};
    return { label: v.label, ...none, failed: oneLine(err), hostLoad: window.stop(), ...refused };
  } finally {
    if (timer) clearTimeout(timer);
  }
  const hostLoad = window.stop();
  // a cancelled run returns what it had, but its measured time is not the spec's: not pooled
  if (o.signal?.aborted) return { label: v.label, ...none, failed: 'interrupted', hostLoad };
  if (checkKfd && !kfd && !kfdError) kfdError = 'KFD check did not run: the run ended before its time came';
  const h = run.streams.find((s) => s.highPriority);
  const lp = run.streams.filter((s) => !s.highPriority);
  const hpShare = h ? streamShare(h.raw, HP_THREADS, dev ?? undefined) : null;
  const lpShare = lp.length ? streamShare(lp[0].raw, LP_THREADS, dev ?? undefined) : null;
  // the LP streams share the same compute units (the whole device or the LP side)
  const lpSide = lpShare && lpShare.computeUnits > 0 ? lpShare : plan.lp;
  const lpFill = lpSide
    ? fillReport({ blocks: lpBlocks, threadsPerBlock: LP_THREADS, concurrent: lp.length, computeUnits: lpSide.computeUnits, blocksPerCu: lpSide.blocksPerCu, dev: dev ?? undefined, gpu: o.backend !== 'cpu' })
    : null;
  return {
    label: v.label,
    measuredNs: run.measuredNs,
    hp: h ? { latencyNs: h.latencyNs, startDelayNs: h.startDelayNs } : null,
    lpKernels: lp.length ? lp.reduce((a, s) => a + s.n, 0) : null,
    errors: [...run.streams.filter((s) => s.error).map((s) => `${s.name}: ${s.error}`), ...(kfdError ? [kfdError] : [])],
    hostLoad,
    kfd,
    lpBlocksPerKernel: lpBlocks,
    lpFill: lp.length ? lpFill : null,
    shares: { hp: hpShare, lp: lpShare },
    clock: run.clock,
    engine: run.engine,
    computeUnits: run.computeUnits,
  };
}

/** The device the probe will run on (as the engine that drives it sees it), or the error runDispatch would give. */
function probeDeviceInfo(o: PriorityProbeOptions): NativeBackendDevice {
  const info = listBackends({ engine: o.engine }).find((b) => b.name === o.backend);
  if (!info?.available) throw new GpucoloError(`backend ${o.backend} unavailable: ${info?.reason ?? 'unknown backend'}`, { code: 'ENOBACKEND' });
  const dev = info.devices[o.device ?? 0];
  if (!dev) throw new GpucoloError(`backend ${o.backend} has no device ${o.device ?? 0} (${info.devices.length} device(s))`, { code: 'ENOBACKEND' });
  return dev;
}

export async function probePriority(o: PriorityProbeOptions): Promise<PriorityProbeResult> {
  const rounds = o.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1) throw new GpucoloError(`rounds must be an integer >= 1, got ${rounds}`, { code: 'EINVALIDSPEC' });
  const base = {
    backend: o.backend,
    device: o.device ?? 0,
    durationNs: o.durationNs,
    warmupNs: o.warmupNs ?? Math.min(500e6, o.durationNs / 5),
    watchdogNs: o.watchdogNs ?? Math.max(10e9, o.lpKernelNs * 20),
  };
  const dev = probeDeviceInfo(o);
  const all = priorityVariants(o);
  // co-runs the backend cannot run are skipped with their reason, the rest is measured: what the
  // device info decides first, then what the engine refuses when it sizes the shares
  const skipped: SkippedCoRun[] = [];
  const skip = (v: PriorityVariant, reason: string): void => {
    skipped.push({ label: v.label, mechanism: v.mechanism!, throttleK: v.throttleK, reserve: v.reserve, lpKernelNs: v.lpKernelNs, reason });
  };
  let variants = all.filter((v) => {
    const why = v.kind === 'corun' ? mechanismProblem(v.mechanism!, o.backend, dev, v.reserve ?? 0) : null;
    if (why) skip(v, why);
    return !why;
  });
  const { plans, refused } = o.signal?.aborted ? { plans: new Map<string, VariantPlan>(), refused: new Map<string, string>() } : await planVariants(o, base, variants, dev);
  variants = variants.filter((v) => {
    const why = refused.get(shareKey(v));
    if (why) skip(v, why);
    return !why;
  });
  const fallbackPlan: VariantPlan = { lpBlocks: typeof o.lpBlocks === 'number' ? o.lpBlocks : dev.computeUnits * (blocksPerCuAt(dev, LP_THREADS) ?? 1), lp: null, hp: null };
  let records: PriorityRunRecord[] = [];
  const order: string[][] = [];
  let engine: DispatchEngine | undefined;
  let computeUnits = dev.computeUnits;
  let interrupted = false;
  all: for (let r = 0; r < rounds; r++) {
    const ran: string[] = [];
    order.push(ran);
    for (const [i, v] of rotatedOrder(variants, r).entries()) {
      if (o.signal?.aborted) {
        interrupted = true;
        break all;
      }
      if (skipped.some((x) => x.label === v.label)) continue;
      o.onRun?.(v.label, r + 1, rounds);
      ran.push(v.label);
      const { engine: e, computeUnits: cu, refused: no, ...m } = await measureVariant(o, base, v, plans.get(shareKey(v)) ?? fallbackPlan, dev);
      if (no && v.kind === 'corun') {
        // refused by the engine at run time: skipped from here on, its rounds dropped
        skip(v, no);
        records = records.filter((x) => x.label !== v.label);
        ran.pop();
        continue;
      }
      records.push({ ...m, round: r + 1, position: i + 1 });
      engine ??= e;
      if (cu) computeUnits = cu;
      if (m.failed === 'interrupted') {
        interrupted = true;
        break all;
      }
    }
  }
  if (order.length && order[order.length - 1].length === 0) order.pop();
  if (!records.some((x) => !x.failed)) {
    const why = records.find((x) => x.failed)?.failed ?? 'interrupted before the first run';
    throw new GpucoloError(`probe priority: nothing could be measured: ${why}`, { code: 'EDISPATCH' });
  }
  const { signal: _s, onRun: _r, kfd: _k, ...options } = o;
  const active = variants.filter((v) => !skipped.some((x) => x.label === v.label));
  const notes = [...new Set([...plans.values()].flatMap((p) => (p.note ? [p.note] : [])))];
  return summarizePriority({ backend: o.backend, engine: engine!, options: { ...options, rounds }, computeUnits, rounds, order, variants: active, records, interrupted, skipped, notes });
}

// ---- pooling, spread and quality (pure: tests feed it made-up records) -------------------------

export interface PrioritySummaryInput {
  backend: Backend;
  engine: DispatchEngine;
  options: PriorityProbeResult['options'];
  computeUnits: number;
  rounds: number;
  order: string[][];
  variants: PriorityVariant[];
  records: PriorityRunRecord[];
  interrupted: boolean;
  /** co-runs the backend could not run (absent: none) */
  skipped?: SkippedCoRun[];
  /** how the probe was set up where it had to guess (absent: none) */
  notes?: string[];
}

function concat(arrays: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(arrays.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const x of arrays) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}

/** Pooled rate: every completion over every measured second (not a mean of per-round rates). */
function pooledRate(recs: PriorityRunRecord[], perKernel: (x: PriorityRunRecord) => number = () => 1): number | null {
  const ok = recs.filter((x) => x.lpKernels !== null && x.measuredNs > 0);
  const s = ok.reduce((a, x) => a + x.measuredNs, 0) / 1e9;
  return ok.length && s > 0 ? ok.reduce((a, x) => a + x.lpKernels! * perKernel(x), 0) / s : null;
}

/** LP work in blocks (kernels x blocks per kernel): what the shares compare, since LP kernels are sized per variant. */
const blocksOf = (x: PriorityRunRecord): number => x.lpBlocksPerKernel ?? 1;
const blockRate = (x: PriorityRunRecord): number | null => (x.lpKernels !== null && x.measuredNs > 0 ? (x.lpKernels * blocksOf(x)) / (x.measuredNs / 1e9) : null);

/** The latest run's value of f that is not null. */
function latest<T>(recs: PriorityRunRecord[], f: (x: PriorityRunRecord) => T | null | undefined): T | null {
  for (let i = recs.length - 1; i >= 0; i--) {
    const v = f(recs[i]);
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

export function clockSummary(records: readonly Pick<PriorityRunRecord, 'clock'>[]): ClockSummary {
  let runs = 0;
  let maxDriftNs: number | null = null;
  let uncertaintyNs: number | null = null;
  for (const r of records) {
    const c = r.clock;
    if (!c) continue;
    if (c.uncertaintyNs !== null) uncertaintyNs = Math.max(uncertaintyNs ?? 0, c.uncertaintyNs);
    if (c.driftNs === null) continue;
    runs++;
    if (maxDriftNs === null || Math.abs(c.driftNs) > Math.abs(maxDriftNs)) maxDriftNs = c.driftNs;
  }
  return { runs, maxDriftNs, uncertaintyNs };
}

function roundFigures(x: PriorityRunRecord): PriorityRoundFigures {
  const [q50, q] = x.hp ? quantiles(x.hp.latencyNs, [50, 99]).quantiles : [null, null];
  const s = x.measuredNs / 1e9;
  const rate = x.lpKernels !== null && s > 0 ? x.lpKernels / s : null;
  const half = x.lpKernels !== null ? 1.96 * Math.sqrt(x.lpKernels) : 0;
  return {
    round: x.round,
    position: x.position,
    hpN: x.hp ? x.hp.latencyNs.length : null,
    hpP50Ns: q50?.value ?? null,
    hpP50CiNs: q50?.ci ?? null,
    hpP99Ns: q?.value ?? null,
    hpP99CiNs: q?.ci ?? null,
    lpThroughput: rate,
    lpThroughputCi: rate !== null ? [Math.max(0, x.lpKernels! - half) / s, (x.lpKernels! + half) / s] : null,
    lpShare: null,
    hpP99VsStandalone: null,
    hostLoad: x.hostLoad,
    ...(x.failed ? { failed: x.failed } : {}),
  };
}

function spreadOf(rounds: PriorityRoundFigures[]): PrioritySpread {
  return {
    hpP99Ns: roundSpread(rounds.map((x) => x.hpP99Ns)),
    lpThroughput: roundSpread(rounds.map((x) => x.lpThroughput)),
    lpShare: roundSpread(rounds.map((x) => x.lpShare)),
    hpP99VsStandalone: roundSpread(rounds.map((x) => x.hpP99VsStandalone)),
  };
}

const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);

/** Pools the records of every variant, computes per-round figures and spreads, the quality block and the throttle verdicts. */
export function summarizePriority(i: PrioritySummaryInput): PriorityProbeResult {
  const hpRecs = recsOf(i, 'standalone:hp');
  const hpAlone = pooledHp(hpRecs);
  const hpAloneRounds = hpRecs.map(roundFigures);
  const standaloneHp = { label: 'standalone:hp', ...hpAlone, rounds: hpAloneRounds, spread: spreadOf(hpAloneRounds) };
  const ctx: PrioritySummaryCtx = {
    i,
    multi: i.rounds > 1,
    hpAlone,
    hpP99Alone: quantileOf(hpAlone.hpLatency, 99),
    hpAloneByRound: new Map(),
    lpAlone: new Map(),
  };
  const standalone: StandaloneResult[] = i.variants.filter((v) => v.kind === 'standalone-lp').map((v) => summarizeStandaloneLp(ctx, v));
  ctx.hpAloneByRound = new Map(hpAloneRounds.map((x) => [x.round, x.hpP99Ns]));
  const runs: CoRunResult[] = i.variants.filter((v) => v.kind === 'corun').map((v) => summarizeCoRun(ctx, v));

  const partial = {
    backend: i.backend,
    engine: i.engine,
    options: i.options,
    computeUnits: i.computeUnits,
    rounds: i.rounds,
    order: i.order,
    standaloneHp,
    standalone,
    runs,
    skipped: i.skipped ?? [],
    clock: clockSummary(i.records),
    notes: i.notes ?? [],
    interrupted: i.interrupted,
  };
  const quality = priorityQuality(partial, i.records);
  for (const r of runs) r.bound = throttleBound(r, quality);
  return { ...partial, quality };
}

type PooledHp = { hpLatency: QuantileSummary; hpTimeToStart: QuantileSummary };

/** What summarizePriority's steps share: the input and the standalone baselines the co-runs compare against. */
interface PrioritySummaryCtx {
  i: PrioritySummaryInput;
  multi: boolean;
  hpAlone: PooledHp;
  hpP99Alone: number | null;
  /** standalone HP P99 per round */
  hpAloneByRound: Map<number, number | null>;
  /** LP alone per LP kernel, in blocks per second (the co-runs' LP shares compare against it) */
  lpAlone: Map<number, { pooled: number | null; byRound: Map<number, number | null> }>;
}

/** Step: one variant's records, in round order. */
function recsOf(i: PrioritySummaryInput, label: string): PriorityRunRecord[] {
  return i.records.filter((x) => x.label === label).sort((a, b) => a.round - b.round);
}

/** Step: HP latency and time-to-start pooled over the given records. */
function pooledHp(recs: PriorityRunRecord[]): PooledHp {
  const hp = recs.filter((x) => x.hp).map((x) => x.hp!);
  return { hpLatency: quantiles(concat(hp.map((x) => x.latencyNs))), hpTimeToStart: quantiles(concat(hp.map((x) => x.startDelayNs))) };
}

/** Step: one standalone-LP variant's result; records its LP rate in ctx.lpAlone. */
function summarizeStandaloneLp(ctx: PrioritySummaryCtx, v: PriorityVariant): StandaloneResult {
  const recs = recsOf(ctx.i, v.label);
  const rounds = recs.map(roundFigures);
  ctx.lpAlone.set(v.lpKernelNs, { pooled: pooledRate(recs, blocksOf), byRound: new Map(recs.map((x) => [x.round, blockRate(x)])) });
  return { label: v.label, ...ctx.hpAlone, lpThroughput: pooledRate(recs), lpKernelNs: v.lpKernelNs, lpFill: latest(recs, (x) => x.lpFill), rounds, spread: spreadOf(rounds) };
}

/** Step: one co-run variant's result against the standalone baselines (bound left null for summarizePriority). */
function summarizeCoRun(ctx: PrioritySummaryCtx, v: PriorityVariant): CoRunResult {
  const { i, multi, hpP99Alone, hpAloneByRound } = ctx;
  const recs = recsOf(i, v.label);
  const alone = ctx.lpAlone.get(v.lpKernelNs);
  // each round's ratios against the same round's standalone runs: rounds pair up in time
  const rounds = recs.map((x) => {
    const f = roundFigures(x);
    return { ...f, lpShare: ratio(blockRate(x), alone?.byRound.get(x.round) ?? null), hpP99VsStandalone: ratio(f.hpP99Ns, hpAloneByRound.get(x.round) ?? null) };
  });
  const { hpLatency, hpTimeToStart } = pooledHp(recs);
  const p99 = quantileOf(hpLatency, 99);
  const lpT = pooledRate(recs);
  const added = p99 !== null && hpP99Alone !== null ? p99 - hpP99Alone : null;
  const spatial = isSpatial(v.mechanism);
  const kfd = [...recs].reverse().find((x) => x.kfd)?.kfd ?? null;
  // the share LP may keep, as asked and as made (the partition the driver made, the CUs of the mask)
  const cus = i.computeUnits;
  const hpAsked = spatial && cus > 0 ? reservedUnits(v.reserve!, cus) : 0;
  const lpMade = spatial ? latest(recs, (x) => (x.shares?.lp && x.shares.lp.computeUnits > 0 ? x.shares.lp.computeUnits : null)) : null;
  const hpMade = spatial ? latest(recs, (x) => (x.shares?.hp && x.shares.hp.computeUnits > 0 ? x.shares.hp.computeUnits : null)) : null;
  const allowedAsked = spatial ? (cus > 0 ? (cus - hpAsked) / cus : 1 - v.reserve!) : 1;
  const partition = spatial && cus > 0 ? { hp: { requested: hpAsked, made: hpMade ?? hpAsked }, lp: { requested: cus - hpAsked, made: lpMade ?? cus - hpAsked } } : null;
  return {
    label: v.label,
    mechanism: v.mechanism!,
    throttleK: v.throttleK,
    reserve: v.reserve,
    lpKernelNs: v.lpKernelNs,
    hpLatency,
    hpTimeToStart,
    lpThroughput: lpT,
    lpShare: ratio(pooledRate(recs, blocksOf), alone?.pooled ?? null),
    lpAllowedShare: partition ? partition.lp.made / cus : allowedAsked,
    lpAllowedShareRequested: allowedAsked,
    partition,
    lpFill: latest(recs, (x) => x.lpFill),
    hpP99VsStandalone: ratio(p99, hpP99Alone),
    addedHpP99Ns: added,
    addedP99InLpKernels: v.mechanism === 'throttle' && added !== null ? added / v.lpKernelNs : null,
    bound: null,
    rounds,
    spread: spreadOf(rounds),
    errors: [...new Set(recs.flatMap((x) => x.errors.map((e) => (multi ? `round ${x.round}: ${e}` : e))))],
    kfd,
  };
}

const fmtNs = (ns: number): string => formatDuration(Math.round(ns));
const fmtPct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const fmtCi = (c: [number, number] | null, f: (x: number) => string): string => (c ? ` [${f(c[0])}–${f(c[1])}]` : '');

/**
 * Standalone rounds must differ by more than this share, beyond their 95% intervals, to count as
 * drift: order-statistic intervals of a tight distribution are so narrow that a 1% shift separates
 * them. The same margin as `gpucolo run` (src/scenario/quality.ts DRIFT_MARGIN).
 */
export const DRIFT_MARGIN = 0.1;

interface RoundValue {
  round: number;
  value: number | null;
  ci: [number, number] | null;
}

/** "round a V [ci] vs round b V [ci]" for every pair of rounds that drifted apart; empty when none did. */
function driftPairs(rounds: RoundValue[], f: (x: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rounds.length; i++) {
    for (let j = i + 1; j < rounds.length; j++) {
      const [a, b] = [rounds[i], rounds[j]];
      if (a.value === null || b.value === null || !disjointBeyond(a.ci, b.ci, DRIFT_MARGIN)) continue;
      out.push(`round ${a.round} ${f(a.value)}${fmtCi(a.ci, f)} vs round ${b.round} ${f(b.value)}${fmtCi(b.ci, f)}`);
    }
  }
  return out;
}

/**
 * The quality block of a priority probe: co-run figures that cannot be physical (an LP share above
 * its standalone or above what a compute-unit reserve leaves it, pooled and per round; an HP P99
 * clearly below HP alone, pooled only: a round's P99 from a few hundred probes has no interval),
 * host interference during any run, a standalone run whose rounds drifted apart beyond their own
 * 95% intervals and DRIFT_MARGIN, rounds that failed, and too few samples for the P99 a verdict
 * needs.
 */
export function priorityQuality(r: Omit<PriorityProbeResult, 'quality'>, records: PriorityRunRecord[]): Quality {
  const w: QualityWarning[] = [];
  const o = r.options;
  // a reserve only holds LP back when LP alone keeps every compute unit busy; with fewer LP
  // blocks in flight than compute units (1-block kernels on a large GPU) LP may keep all it had
  const fills = r.standalone.map((s) => s.lpFill?.occupancy ?? null);
  const lpFillsDevice = fills.some((x) => x !== null)
    ? fills.every((x) => x === null || x >= 1)
    : o.lpBlocks === undefined || o.lpBlocks === 'fill' || o.lpStreams * (o.lpBlocks ?? 1) >= r.computeUnits;
  const aboveAllowed = (x: CoRunResult, share: number | null, round?: number): QualityWarning[] =>
    x.reserve !== null && lpFillsDevice && share !== null && share <= IMPOSSIBLE.maxShare && share > x.lpAllowedShare * IMPOSSIBLE.maxShare
      ? [
          {
            code: 'share-above-allowed',
            phase: x.label,
            task: 'lp',
            ...(round !== undefined ? { round } : {}),
            message: `${round !== undefined ? `round ${round}: ` : ''}lp in ${x.label}: throughput ${fmtPct(share)} of standalone with ${fmtPct(x.lpAllowedShare)} of the compute units (> ${IMPOSSIBLE.maxShare}x its share): LP alone filled every unit, so it cannot do more on fewer; the host changed between runs`,
          },
        ]
      : [];
  for (const x of r.runs) {
    w.push(...impossibleCorunValues({ phase: x.label, task: 'lp', throughputShare: x.lpShare, slowdownP99: null }));
    w.push(...impossibleCorunValues({ phase: x.label, task: 'hp', throughputShare: null, slowdownP99: x.hpP99VsStandalone }));
    w.push(...aboveAllowed(x, x.lpShare));
    if (r.rounds > 1) {
      for (const f of x.rounds) {
        for (const v of impossibleCorunValues({ phase: x.label, task: 'lp', throughputShare: f.lpShare, slowdownP99: null })) w.push({ ...v, round: f.round, message: `round ${f.round}: ${v.message}` });
        w.push(...aboveAllowed(x, f.lpShare, f.round));
      }
    }
    if (x.mechanism === 'throttle' && x.hpLatency.quantiles.some((q) => q.p === 99 && !q.supported)) {
      w.push({ code: 'too-few-samples', phase: x.label, task: 'hp', message: `hp in ${x.label}: ${x.hpLatency.n} samples cannot support a P99 (>= 100 needed): the throttle bound cannot be judged` });
    }
  }
  const hp = r.standaloneHp.rounds;
  const hpPairs = [
    ...driftPairs(hp.map((x) => ({ round: x.round, value: x.hpP50Ns, ci: x.hpP50CiNs })), fmtNs).map((p) => `P50 ${p}`),
    ...driftPairs(hp.map((x) => ({ round: x.round, value: x.hpP99Ns, ci: x.hpP99CiNs })), fmtNs).map((p) => `P99 ${p}`),
  ];
  if (hpPairs.length) {
    w.push({
      code: 'standalone-drift',
      phase: 'standalone:hp',
      task: 'hp',
      message: `standalone:hp: HP latency differs between rounds beyond the 95% CIs and by more than ${DRIFT_MARGIN * 100}% (${hpPairs.join('; ')}): the co-runs' P99/ALONE compare against a moving floor`,
    });
  }
  for (const s of r.standalone) {
    const pairs = driftPairs(s.rounds.map((x) => ({ round: x.round, value: x.lpThroughput, ci: x.lpThroughputCi })), (v) => `${v.toFixed(1)}/s`);
    if (!pairs.length) continue;
    w.push({
      code: 'standalone-drift',
      phase: s.label,
      task: 'lp',
      message: `${s.label}: LP throughput differs between rounds beyond its 95% interval and by more than ${DRIFT_MARGIN * 100}% (${pairs.join('; ')}): the co-runs' LP SHARE compare against a moving baseline`,
    });
  }
  for (const x of records) {
    if (x.failed && x.failed !== 'interrupted') {
      w.push({ code: 'round-failed', phase: x.label, round: x.round, message: `${x.label} (round ${x.round}) failed: ${x.failed}; the pooled figures lack it` });
    }
    if (x.hostLoad) for (const h of interferenceWarnings(x.hostLoad, { phase: `${x.label} (round ${x.round})` })) w.push({ ...h, phase: x.label, round: x.round });
  }
  return qualityOf(w);
}

/** throttle's bound (added HP P99 <= K LP kernels), inconclusive when it rests on a flagged value. */
export function throttleBound(x: Pick<CoRunResult, 'label' | 'mechanism' | 'throttleK' | 'addedP99InLpKernels'>, q: Quality): ThrottleBound | null {
  if (x.mechanism !== 'throttle' || x.throttleK === null) return null;
  const limit = x.throttleK;
  const value = x.addedP99InLpKernels;
  if (value === null) return { limit, value, verdict: 'inconclusive', reason: 'no HP P99 to compare' };
  // the added P99 is co-run P99 minus HP alone: a warning on either side undoes it
  const on = flagged(q, x.label, 'hp') ?? flagged(q, 'standalone:hp', 'hp');
  if (on) return { limit, value, verdict: 'inconclusive', reason: `${on.code}: ${on.message}` };
  return { limit, value, verdict: value <= limit ? 'met' : 'exceeded' };
}
