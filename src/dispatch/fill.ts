/**
 * "Fill" and the share of the device each stream really gets (issue 15, items 2, 3, 5, 7).
 *
 * Fill: a kernel fills its compute units when all of them hold as many of its blocks as can be
 * resident at once: computeUnits x blocksPerCu blocks, where blocksPerCu is what the runtime's
 * occupancy API says for the probe kernel at the block size (cudaOccupancyMaxActiveBlocksPerMultiprocessor
 * / hipOccupancyMaxActiveBlocksPerMultiprocessor; H100, 256 threads: 8 per SM, 2048 threads; the
 * cpu backends: 1 per worker, whatever the threads). Fewer blocks leave room that a high-priority
 * kernel takes without waiting, so every mechanism would look like standalone; more blocks than
 * that run in a second wave, doubling the kernel.
 *
 * The compute units are the stream's own: the whole device, the CUs its CU mask enables, or the SMs
 * of the green-context partition the driver MADE (rounded up: multiples of 8 on sm_90, so 10% of
 * 132 SMs asks 14 and gets 16, leaving 116 for the rest rather than 118). Only the engine knows
 * those after creating the streams, so sizeStreams() runs the spec once with one empty kernel per
 * stream and reads what each stream was given; the same run finds a spec the engine refuses (a CU
 * mask that would leave an XCC empty, a mechanism the backend lacks) before anything is measured.
 */
import type { DispatchEngine, DispatchMechanism, NativeBackendDevice, NativeDispatchStreamResult } from '../native.js';
import { oneLine } from '../errors.js';
import { DispatchError, runDispatch, type DispatchSpecInput } from './run.js';

/** Compute units a spatial mechanism keeps for the high-priority side: the engines' rule, ceil(reserve x CUs). */
export function reservedUnits(reserve: number, computeUnits: number): number {
  return Math.ceil(reserve * computeUnits - 1e-9);
}

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

/**
 * Why a mechanism cannot run on this backend/device with this reserve, or null when it can. What
 * the device info decides before anything runs: the backend's support, both sides of a reserve
 * non-empty, and on AMD chiplets both sides of a CU mask covering every XCC (the engine refuses the
 * rest with its own reason when it creates the streams).
 */
export function mechanismProblem(m: DispatchMechanism, backend: string, dev: NativeBackendDevice, reserve: number): string | null {
  if (m === 'cu-mask' && !dev.supportsCuMask) return `cu-mask: the ${backend} backend has no CU masks${backend === 'cuda' ? ' (NVIDIA: use sm-partition)' : ''}`;
  if (m === 'sm-partition' && !dev.supportsSmPartition) {
    return `sm-partition: the ${backend} backend${backend === 'cuda' ? "'s driver has no green contexts (CUDA >= 12.4)" : ' has no SM partitions'}${backend === 'hip' ? ' (AMD: use cu-mask)' : ''}`;
  }
  if (m !== 'cu-mask' && m !== 'sm-partition') return null;
  const cus = dev.computeUnits;
  const hp = reservedUnits(reserve, cus);
  if (hp < 1 || hp >= cus) {
    return `${m}: a reserve of ${pct(reserve)} of ${cus} compute units keeps ${hp} for the high-priority side and ${cus - hp} for the others; both sides need at least one (change reserve)`;
  }
  const xcc = dev.numXcc ?? 0;
  if (m === 'cu-mask' && xcc > 1 && (dev.cuMaskBitsPerUnit ?? 1) <= 1 && Math.min(hp, cus - hp) < xcc) {
    const side = hp < xcc ? `the high-priority side ${hp}` : `the low-priority side ${cus - hp}`;
    return `cu-mask: a reserve of ${pct(reserve)} of ${cus} compute units gives ${side} compute unit(s), fewer than the device's ${xcc} XCCs: KFD deals CU-mask bits round-robin over the XCCs (bit i -> XCC i % ${xcc}), so that mask leaves an XCC without a CU and its queue would hang (refused); each side needs at least ${xcc} (a reserve between ${pct(xcc / cus)} and ${pct((cus - xcc) / cus)})`;
  }
  return null;
}

/**
 * Probe-kernel blocks of `threadsPerBlock` threads resident per CU: the occupancy table's entry for
 * that block size, else the one for the next larger size listed (never more blocks than fit), else
 * the device's fill figure when it is for this size; null when unknown.
 */
export function blocksPerCuAt(dev: Pick<NativeBackendDevice, 'occupancy' | 'maxActiveBlocksPerCu' | 'fillThreadsPerBlock'>, threadsPerBlock: number): number | null {
  const table = [...(dev.occupancy ?? [])].filter((o) => o.blocksPerCu > 0).sort((a, b) => a.threadsPerBlock - b.threadsPerBlock);
  const at = table.find((o) => o.threadsPerBlock >= threadsPerBlock);
  if (at) return at.blocksPerCu;
  if (dev.fillThreadsPerBlock === threadsPerBlock && (dev.maxActiveBlocksPerCu ?? 0) > 0) return dev.maxActiveBlocksPerCu!;
  return null;
}

/** Threads one CU holds at once, the most the occupancy table reaches at any block size; null when unknown. */
export function residentThreadsPerCu(dev: Pick<NativeBackendDevice, 'occupancy'>): number | null {
  let best = 0;
  for (const o of dev.occupancy ?? []) best = Math.max(best, o.threadsPerBlock * o.blocksPerCu);
  return best > 0 ? best : null;
}

/** What one stream was given, as made (from the engine's stream results). */
export interface StreamShare {
  name: string;
  highPriority: boolean;
  /** compute units its work may run on: partition as made, CUs of its mask, or the whole device */
  computeUnits: number;
  /** sm-partition: SMs asked for and SMs of the partition the driver made (0 otherwise) */
  smCountRequested: number;
  smCount: number;
  /** probe kernels of its block size resident per CU (0 = unknown) */
  blocksPerCu: number;
  /** computeUnits x blocksPerCu: the blocks that occupy its compute units (0 = unknown) */
  fillBlocks: number;
}

/** `threadsPerBlock` and `dev` only for an engine that reports no fill: the device's occupancy table then decides. */
export function streamShare(raw: NativeDispatchStreamResult, threadsPerBlock?: number, dev?: NativeBackendDevice): StreamShare {
  const computeUnits = raw.computeUnits ?? 0;
  let blocksPerCu = raw.maxActiveBlocksPerCu ?? 0;
  let fillBlocks = raw.fillBlocks ?? 0;
  if (!(fillBlocks > 0) && dev && computeUnits > 0) {
    // an engine that could not ask the runtime: the device's occupancy table for the block size
    blocksPerCu = blocksPerCuAt(dev, threadsPerBlock ?? dev.fillThreadsPerBlock ?? 64) ?? 0;
    fillBlocks = blocksPerCu * computeUnits;
  }
  return {
    name: raw.name,
    highPriority: raw.highPriority,
    computeUnits,
    smCountRequested: raw.smCountRequested ?? 0,
    smCount: raw.smCount ?? 0,
    blocksPerCu,
    fillBlocks,
  };
}

/**
 * How a kernel of `blocks` blocks on `concurrent` streams that share the same compute units fills
 * them (at most one kernel of each stream runs at a time: a stream runs its kernels in order).
 */
export interface FillReport {
  blocks: number;
  threadsPerBlock: number;
  /** kernels that run side by side on these compute units (one per stream) */
  concurrent: number;
  computeUnits: number;
  /** resident blocks per CU at this block size (0 = unknown) */
  blocksPerCu: number;
  /** computeUnits x blocksPerCu (0 = unknown) */
  fillBlocks: number;
  /** min(concurrent x blocks, fillBlocks): blocks resident at once while every stream has a kernel running */
  residentBlocks: number;
  /** residentBlocks / fillBlocks: the share of the compute units' block slots kept occupied (null = unknown) */
  occupancy: number | null;
  /** waves one kernel takes on these compute units: ceil(blocks / fillBlocks) (null = unknown) */
  waves: number | null;
  /**
   * GPU: resident threads per CU at this block size / the most a CU holds at any (the occupancy
   * calculator's figure); null on the cpu backends, whose workers run one block whatever its threads
   */
  threadOccupancy: number | null;
}

export function fillReport(o: { blocks: number; threadsPerBlock: number; concurrent: number; computeUnits: number; blocksPerCu: number; dev?: NativeBackendDevice; gpu: boolean }): FillReport {
  const fillBlocks = o.computeUnits * o.blocksPerCu;
  const inFlight = o.concurrent * o.blocks;
  const residentBlocks = fillBlocks > 0 ? Math.min(inFlight, fillBlocks) : inFlight;
  const maxThreads = o.dev ? residentThreadsPerCu(o.dev) : null;
  return {
    blocks: o.blocks,
    threadsPerBlock: o.threadsPerBlock,
    concurrent: o.concurrent,
    computeUnits: o.computeUnits,
    blocksPerCu: o.blocksPerCu,
    fillBlocks,
    residentBlocks,
    occupancy: fillBlocks > 0 ? residentBlocks / fillBlocks : null,
    waves: fillBlocks > 0 ? Math.ceil(o.blocks / fillBlocks) : null,
    threadOccupancy: o.gpu && maxThreads && o.blocksPerCu > 0 ? Math.min(1, (o.blocksPerCu * o.threadsPerBlock) / maxThreads) : null,
  };
}

/** "1056 x 256 threads (132 CUs x 8 resident, occupancy 100%)" */
export function fillText(f: FillReport): string {
  const cus = `${f.computeUnits} CU${f.computeUnits === 1 ? '' : 's'}`;
  const per = f.blocksPerCu > 0 ? `${cus} x ${f.blocksPerCu} resident` : `${cus}, resident blocks per CU unknown`;
  const occ = f.occupancy === null ? '' : `, occupancy ${Math.round(f.occupancy * 1000) / 10}%${f.concurrent > 1 ? ` with ${f.concurrent} kernels side by side` : ''}`;
  const waves = f.waves !== null && f.waves > 1 ? `, ${f.waves} waves` : '';
  const thr = f.threadOccupancy === null ? '' : `; ${Math.round(f.threadOccupancy * 100)}% of a CU's threads`;
  return `${f.blocks} x ${f.threadsPerBlock} threads (${per}${occ}${waves}${thr})`;
}

/** The spec's streams as made, or why the engine refused the spec. */
export type SizeOutcome = { ok: true; streams: StreamShare[]; computeUnits: number } | { ok: false; reason: string; refused: boolean };

/**
 * Runs the spec once with one empty kernel per stream (closed loop, 1 launch each) and reads what
 * each stream was given: its compute units as made, its fill. A refused spec comes back with the
 * engine's reason (refused: the same spec would be refused every time); a failed run too, with
 * refused false. A backend that is unavailable or a bad spec throws. Cancelled with the signal like any run.
 */
export async function sizeStreams(
  spec: DispatchSpecInput,
  o: { engine?: DispatchEngine; signal?: AbortSignal; dev?: NativeBackendDevice } = {},
): Promise<SizeOutcome> {
  const sizing: DispatchSpecInput = {
    ...spec,
    durationNs: 60e9, // ends at maxLaunches
    warmupNs: 0,
    maxLaunches: 1,
    streams: spec.streams.map((s) => ({
      name: s.name,
      highPriority: s.highPriority,
      kernel: { spinNs: 0, blocks: 1, threadsPerBlock: s.kernel.threadsPerBlock },
      arrival: 'closed-loop' as const,
      inflight: 1,
      ...(s.level !== undefined ? { level: s.level } : {}),
      ...(s.levels !== undefined ? { levels: s.levels } : {}),
    })),
  };
  try {
    const run = await runDispatch(sizing, { engine: o.engine, signal: o.signal });
    const streams = run.streams.map((s, i) => streamShare(s.raw, spec.streams[i].kernel.threadsPerBlock, o.dev));
    return { ok: true, streams, computeUnits: run.computeUnits };
  } catch (err) {
    // a missing backend or a bad spec would fail every run: that is the caller's error, not a size
    if (!(err instanceof DispatchError)) throw err;
    return { ok: false, reason: oneLine(err), refused: err.refused };
  }
}
