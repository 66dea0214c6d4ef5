/**
 * Binary decoding shared by both parser paths: MQD dwords, HQD registers, PM4 runlist packets.
 * Offsets and bit fields: docs/kfd-formats.md, sections compute-mqd-dwords, sdma-mqd-dwords,
 * compute-hqd-registers, sdma-rlc-registers, map_process, map_queues (struct v9_mqd, v9_sdma_mqd,
 * kgd_gfx_v9_hqd_dump, pm4_mes_map_process[_aldebaran], pm4_mes_map_queues).
 */
import type {
  ComputeMqdFields,
  GpuInfo,
  RlsMapProcess,
  RlsMapQueues,
  SdmaMqdFields,
} from './types.js';

export const V9_MQD_HEADER = 0xc0310800;

/**
 * Hex strings of the addresses seen recently. A tracer decodes the same MQDs every sample, and
 * number-to-hex-string conversion is the main cost of decoding; the cache is small and bounded.
 */
const hexCache = new Map<number, string>();
const HEX_CACHE_MAX = 8192;

/**
 * 2^i for i = 0..65: `2 ** x` with a variable x is a call into V8's pow() on every use (4% of the
 * tracer's JS time per joined sample was in it)
 */
const POW2: readonly number[] = Array.from({ length: 66 }, (_, i) => 2 ** i);

/** (hi:lo) as 0x-hex, optionally shifted left (ring bases are stored >> 8). */
export function addr64(lo: number, hi: number, shift = 0): string {
  const h = hi >>> 0;
  // doubles are exact below 2^53: the common case (48-bit VAs, GART addresses) avoids BigInt;
  // a shift past 21 always takes BigInt (POW2 of a negative index is undefined: never less)
  if (h < POW2[21 - shift]) {
    const v = (h * 4294967296 + (lo >>> 0)) * POW2[shift];
    let s = hexCache.get(v);
    if (s === undefined) {
      if (hexCache.size >= HEX_CACHE_MAX) hexCache.clear();
      s = `0x${v.toString(16)}`;
      hexCache.set(v, s);
    }
    return s;
  }
  const v = ((BigInt(h) << 32n) | BigInt(lo >>> 0)) << BigInt(shift);
  return `0x${v.toString(16)}`;
}

/** Dword i, or null when the dump ended before it (a cut block): unknown, never 0. */
const w = (words: Uint32Array, i: number): number | null => (i < words.length ? words[i] : null);
/** (hi:lo) as 0x-hex when both dwords were read, else null. */
const addrOf = (words: Uint32Array, lo: number, hi: number, shift = 0): string | null =>
  hi < words.length && lo < words.length ? addr64(words[lo], words[hi], shift) : null;
/** f(dword i) when dword i was read, else null. */
const field = <T>(words: Uint32Array, i: number, f: (v: number) => T): T | null => (i < words.length ? f(words[i]) : null);

/**
 * The dwords (MQDs) and registers (HQD slots) the decoders below read, per kind, leaving out those
 * that only feed `busy` (the ring read and write pointers). A change anywhere else in a block or
 * slot (pointers, status registers no decoder reads) cannot change a queue, a slot mapping or a
 * priority, only `busy`; a trace records no `busy`, so it keeps its last sample when nothing else
 * changed (src/trace/relevance.ts). test/kfd-decode.test.ts checks the sets against the decoders.
 */
export const COMPUTE_MQD_DWORDS: ReadonlySet<number> = new Set([0, 23, 24, 26, 27, 39, 128, 129, 130, 131, 133, 134, 136, 137, 139, 140, 141, 142, 143, 145, 171, 172, 181]);
export const SDMA_MQD_DWORDS: ReadonlySet<number> = new Set([0, 1, 2, 8, 9, 22, 126, 127, 128, 129]);
/** compute and HIQ slots: MQD address, active, VMID, priorities, ring base (10 and 54: busy only) */
export const COMPUTE_HQD_REGS: ReadonlySet<number> = new Set([0, 1, 2, 3, 5, 6, 8, 9]);
/** SDMA RLCs: RB_CNTL (active, VMID), ring base (3 and 5: busy only) */
export const SDMA_HQD_REGS: ReadonlySet<number> = new Set([0, 1, 2]);

/**
 * A compute block whose dw0 was read and is not the MQD header: not a compute MQD (a damaged or
 * misplaced dump), so no dword of it is decoded. Every KFD MQD manager (cik, v9, v10, v11, v12,
 * v12_1) writes the same header, and the v10/v11/v12 compute MQDs keep the v9 offsets of every
 * field below but dw39 (docs/kfd-formats.md#per-gfx-generation).
 */
export function computeMqdHeaderBad(words: Uint32Array): boolean {
  return words.length > 0 && words[0] !== V9_MQD_HEADER;
}

const NO_COMPUTE_FIELDS: Omit<ComputeMqdFields, 'headerOk'> = {
  mqdAddress: null,
  cpHqdActive: null,
  vmid: null,
  pipePriority: null,
  queuePriority: null,
  ringBase: null,
  ringSizeBytes: null,
  doorbell: null,
  aql: null,
  logicalXcc: null,
  cuMaskSe: null,
  rptrReportAddress: null,
  wptrPollAddress: null,
  ctxSaveAddress: null,
};

export function decodeComputeMqd(words: Uint32Array): ComputeMqdFields {
  // numbers read from a block that is not a compute MQD would look like data: unknown instead
  if (computeMqdHeaderBad(words)) return { headerOk: false, ...NO_COMPUTE_FIELDS };
  return {
    headerOk: w(words, 0) === V9_MQD_HEADER,
    mqdAddress: addrOf(words, 128, 129),
    cpHqdActive: w(words, 130),
    // CP_HQD_VMID: VMID is bits 3:0 (IB_VMID and VQID sit above it), as in decodeComputeHqd
    vmid: field(words, 131, (v) => v & 0xf),
    pipePriority: w(words, 133),
    queuePriority: w(words, 134),
    ringBase: addrOf(words, 136, 137, 8),
    ringSizeBytes: field(words, 145, (v) => 4 * POW2[(v & 0x3f) + 1]),
    doorbell: field(words, 143, (v) => (v >>> 2) & 0x3ffffff),
    aql: field(words, 181, (v) => (v & 1) === 1),
    logicalXcc: w(words, 39),
    cuMaskSe: words.length > 27 ? [words[23], words[24], words[26], words[27]] : null,
    rptrReportAddress: addrOf(words, 139, 140),
    wptrPollAddress: addrOf(words, 141, 142),
    ctxSaveAddress: addrOf(words, 171, 172),
  };
}

/**
 * Where sdma_engine_id / sdma_queue_id sit: dw126/127 in the 128-dword struct of current headers
 * (reserved_126/127 repurposed), dw128/129 in the 130-dword struct of older ones (after
 * reserved_126/127, which stay 0). A block of another length is cut or damaged: which layout it
 * has is unknown, so the ids are too (-1).
 */
export function sdmaIdsAt(words: Uint32Array): number {
  return words.length === 128 ? 126 : words.length === 130 ? 128 : -1;
}

export function decodeSdmaMqd(words: Uint32Array): SdmaMqdFields {
  const ids = sdmaIdsAt(words);
  return {
    ringBase: addrOf(words, 1, 2, 8),
    // SDMA RB_CNTL.RB_SIZE (bits 6:1) = log2(ring dwords)
    ringSizeBytes: field(words, 0, (v) => 4 * POW2[(v >>> 1) & 0x3f]),
    doorbell: field(words, 22, (v) => (v >>> 2) & 0x3ffffff),
    engine: ids < 0 ? null : words[ids],
    rlc: ids < 0 ? null : words[ids + 1],
    // rptr_addr_hi is dw8, _lo dw9
    rptrAddress: addrOf(words, 9, 8),
  };
}

/**
 * Ring size in dwords from CP_HQD_PQ_CONTROL (register 17: QUEUE_SIZE bits 5:0 = log2(dwords) - 1);
 * null when the dump ended before it.
 */
export function hqdRingDwords(regs: Uint32Array): number | null {
  return regs.length > 17 ? POW2[(regs[17] & 0x3f) + 1] : null;
}

/** Compute HQD registers: value i == MQD dword 128+i (docs/kfd-formats.md#compute-hqd-registers). */
export function decodeComputeHqd(regs: Uint32Array) {
  // a slot cut before CP_HQD_ACTIVE: whether it is active is unknown, not "no"
  const active = regs.length > 2 ? (regs[2] & 1) === 1 : null;
  const ringDwords = hqdRingDwords(regs);
  return {
    active,
    mqdAddress: regs.length >= 2 ? addr64(regs[0], regs[1]) : null,
    vmid: regs.length > 3 ? regs[3] & 0xf : null,
    pipePriority: regs.length > 5 ? regs[5] : null,
    queuePriority: regs.length > 6 ? regs[6] : null,
    ringBase: regs.length > 9 ? addr64(regs[8], regs[9], 8) : null,
    // CP_HQD_PQ_RPTR and the 64-bit WPTR count dwords; both wrap at the ring size (a power of two)
    busy:
      active === null || ringDwords === null || regs.length <= 54
        ? null
        : active
          ? (regs[10] & (ringDwords - 1)) !== (regs[54] & (ringDwords - 1))
          : null,
  };
}

/** SDMA RLC registers (GC 9.4.3 order: RB_CNTL, RB_BASE, RB_BASE_HI, RB_RPTR, RB_RPTR_HI, RB_WPTR, ...). */
export function decodeSdmaHqd(regs: Uint32Array) {
  const active = regs.length > 0 ? (regs[0] & 1) === 1 : null;
  return {
    active,
    mqdAddress: null,
    vmid: regs.length > 0 ? (regs[0] >>> 24) & 0xf : null,
    pipePriority: null,
    queuePriority: null,
    ringBase: regs.length > 2 ? addr64(regs[1], regs[2], 8) : null,
    busy: regs.length > 5 && active ? regs[3] !== regs[5] : null,
  };
}

/**
 * The dwords of the packet at `at` that the dump holds: the packet's own length (header count + 2)
 * cut at the end of the IB. A packet shorter than its layout (a header with too small a count)
 * leaves the later fields unknown: null, never 0.
 */
function packetWords(words: Uint32Array, at: number, dwords: number): Uint32Array {
  return words.subarray(at, Math.min(at + dwords, words.length));
}

export function decodeMapProcess(words: Uint32Array, at: number, dwords: number): RlsMapProcess {
  const p = packetWords(words, at, dwords);
  return {
    offset: 0,
    variant: dwords === 16 ? 'v9' : dwords === 21 ? 'aldebaran' : 'unknown',
    pasid: field(p, 1, (v) => v & 0xffff),
    quantum: field(p, 1, (v) => v >>> 25),
    debugVmid: field(p, 1, (v) => (v >>> 18) & 0xf),
    pageTableBase: addrOf(p, 2, 3),
    shMemBases: w(p, 4),
    shMemConfig: w(p, 5),
    numGws: field(p, 13, (v) => v & 0x7f),
    sdmaEnable: field(p, 13, (v) => ((v >>> 7) & 1) === 1),
    numQueues: field(p, 13, (v) => v >>> 22),
    queues: [],
  };
}

/** MAP_QUEUES engine_sel / extended_engine_sel as a name: compute, sdma<N>, engine<N>. */
function mapQueuesEngine(sel: number, ext: number): string {
  if (ext !== 0) return `sdma${(ext === 2 ? 8 : 0) + sel}`;
  return sel === 0 ? 'compute' : sel === 2 || sel === 3 ? `sdma${sel - 2}` : `engine${sel}`;
}

export function decodeMapQueues(words: Uint32Array, at: number, dwords: number): RlsMapQueues {
  const p = packetWords(words, at, dwords);
  const dw1 = w(p, 1);
  const ext = dw1 === null ? null : (dw1 >>> 2) & 3;
  const sel = dw1 === null ? null : (dw1 >>> 26) & 7;
  return {
    offset: 0,
    engine: sel === null || ext === null ? null : mapQueuesEngine(sel, ext),
    engineSel: sel,
    extendedEngineSel: ext,
    queueType: dw1 === null ? null : (dw1 >>> 21) & 7,
    queueSel: dw1 === null ? null : (dw1 >>> 4) & 3,
    doorbell: field(p, 2, (v) => (v >>> 2) & 0x3ffffff),
    mqdAddress: addrOf(p, 3, 4),
    wptrAddress: addrOf(p, 5, 6),
  };
}

/** gfx_target_version 90402 -> 'gfx942', 90010 -> 'gfx90a', 110000 -> 'gfx1100'. */
export function gfxTargetName(version: number): string | null {
  if (!Number.isFinite(version) || version <= 0) return null;
  const major = Math.floor(version / 10000);
  const minor = Math.floor(version / 100) % 100;
  const step = version % 100;
  return `gfx${major}${minor.toString(16)}${step.toString(16)}`;
}

/** gfx_target_version of the GC 9.4.x / 9.5 parts (gfx940-gfx942, gfx950), the GFX9 ones with several XCCs. */
const isMultiXccGfx9 = (version: number): boolean => version >= 90400 && version < 100000;

export function decodeGpuInfo(props: Record<string, string>): GpuInfo {
  const n = (k: string): number | null => (k in props && /^\d+$/.test(props[k]) ? Number(props[k]) : null);
  const version = n('gfx_target_version');
  const simd = n('simd_count');
  const perCu = n('simd_per_cu');
  const numXcc = n('num_xcc');
  return {
    gfxTarget: version === null ? null : gfxTargetName(version),
    gfxTargetVersion: version,
    // the kernel added num_xcc with multi-XCC support, so a file without it comes from a kernel
    // that drives single-XCC GPUs only: 1 is the rule there (numXccReported says it was not
    // printed; topologyXccs() refuses it where the gfx target contradicts the rule)
    numXcc: numXcc ?? 1,
    numXccReported: numXcc !== null,
    simdCount: simd,
    computeUnits: simd !== null && perCu ? Math.floor(simd / perCu) : null,
    vendorId: n('vendor_id'),
    deviceId: n('device_id'),
    drmRenderMinor: n('drm_render_minor'),
    maxEngineClockMhz: n('max_engine_clk_fcompute'),
    numSdmaEngines: n('num_sdma_engines'),
    numSdmaXgmiEngines: n('num_sdma_xgmi_engines'),
    numSdmaQueuesPerEngine: n('num_sdma_queues_per_engine'),
    numCpQueues: n('num_cp_queues'),
  };
}

/**
 * The node's XCC count as the join may rely on it: num_xcc when printed; the rule's 1 when not,
 * unless the gfx target is a multi-XCC GFX9 part (GC 9.4.x, 9.5), whose kernels always print
 * num_xcc: then the file is damaged and the count unknown (null).
 */
export function topologyXccs(gpu: GpuInfo): number | null {
  if (gpu.numXccReported) return gpu.numXcc;
  return gpu.gfxTargetVersion !== null && isMultiXccGfx9(gpu.gfxTargetVersion) ? null : 1;
}

/** pipe_priority_map[] (kfd_mqd_manager.c) as a word users know. */
export function priorityLevel(pipePriority: number | null, queuePriority: number | null): 'low' | 'normal' | 'high' | null {
  if (pipePriority !== null && pipePriority <= 2) return (['low', 'normal', 'high'] as const)[pipePriority];
  if (queuePriority !== null && queuePriority <= 15) return queuePriority <= 6 ? 'low' : queuePriority <= 10 ? 'normal' : 'high';
  return null;
}
