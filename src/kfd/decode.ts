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

/** (hi:lo) as 0x-hex, optionally shifted left (ring bases are stored >> 8). */
export function addr64(lo: number, hi: number, shift = 0): string {
  const h = hi >>> 0;
  // doubles are exact below 2^53: the common case (48-bit VAs, GART addresses) avoids BigInt
  if (h < 2 ** (21 - shift)) {
    const v = (h * 2 ** 32 + (lo >>> 0)) * 2 ** shift;
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
export const SDMA_MQD_DWORDS: ReadonlySet<number> = new Set([0, 1, 2, 8, 9, 22, 126, 127]);
/** compute and HIQ slots: MQD address, active, VMID, priorities, ring base (10 and 54: busy only) */
export const COMPUTE_HQD_REGS: ReadonlySet<number> = new Set([0, 1, 2, 3, 5, 6, 8, 9]);
/** SDMA RLCs: RB_CNTL (active, VMID), ring base (3 and 5: busy only) */
export const SDMA_HQD_REGS: ReadonlySet<number> = new Set([0, 1, 2]);

export function decodeComputeMqd(words: Uint32Array): ComputeMqdFields {
  return {
    headerOk: w(words, 0) === V9_MQD_HEADER,
    mqdAddress: addrOf(words, 128, 129),
    cpHqdActive: w(words, 130),
    vmid: w(words, 131),
    pipePriority: w(words, 133),
    queuePriority: w(words, 134),
    ringBase: addrOf(words, 136, 137, 8),
    ringSizeBytes: field(words, 145, (v) => 4 * 2 ** ((v & 0x3f) + 1)),
    doorbell: field(words, 143, (v) => (v >>> 2) & 0x3ffffff),
    aql: field(words, 181, (v) => (v & 1) === 1),
    logicalXcc: w(words, 39),
    cuMaskSe: words.length > 27 ? [words[23], words[24], words[26], words[27]] : null,
    rptrReportAddress: addrOf(words, 139, 140),
    wptrPollAddress: addrOf(words, 141, 142),
    ctxSaveAddress: addrOf(words, 171, 172),
  };
}

export function decodeSdmaMqd(words: Uint32Array): SdmaMqdFields {
  return {
    ringBase: addrOf(words, 1, 2, 8),
    // SDMA RB_CNTL.RB_SIZE (bits 6:1) = log2(ring dwords)
    ringSizeBytes: field(words, 0, (v) => 4 * 2 ** ((v >>> 1) & 0x3f)),
    doorbell: field(words, 22, (v) => (v >>> 2) & 0x3ffffff),
    engine: w(words, 126),
    rlc: w(words, 127),
    // rptr_addr_hi is dw8, _lo dw9
    rptrAddress: addrOf(words, 9, 8),
  };
}

/**
 * Ring size in dwords from CP_HQD_PQ_CONTROL (register 17: QUEUE_SIZE bits 5:0 = log2(dwords) - 1);
 * null when the dump ended before it.
 */
export function hqdRingDwords(regs: Uint32Array): number | null {
  return regs.length > 17 ? 2 ** ((regs[17] & 0x3f) + 1) : null;
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

export function decodeMapProcess(words: Uint32Array, at: number, dwords: number): RlsMapProcess {
  const d = (i: number): number => (i < dwords ? words[at + i] : 0);
  return {
    offset: 0,
    variant: dwords === 16 ? 'v9' : dwords === 21 ? 'aldebaran' : 'unknown',
    pasid: d(1) & 0xffff,
    quantum: d(1) >>> 25,
    debugVmid: (d(1) >>> 18) & 0xf,
    pageTableBase: addr64(d(2), d(3)),
    shMemBases: d(4),
    shMemConfig: d(5),
    numGws: d(13) & 0x7f,
    sdmaEnable: ((d(13) >>> 7) & 1) === 1,
    numQueues: d(13) >>> 22,
    queues: [],
  };
}

export function decodeMapQueues(words: Uint32Array, at: number, dwords: number): RlsMapQueues {
  const d = (i: number): number => (i < dwords ? words[at + i] : 0);
  const ext = (d(1) >>> 2) & 3;
  const sel = (d(1) >>> 26) & 7;
  let engine: string;
  if (ext === 0) engine = sel === 0 ? 'compute' : sel === 2 || sel === 3 ? `sdma${sel - 2}` : `engine${sel}`;
  else engine = `sdma${(ext === 2 ? 8 : 0) + sel}`;
  return {
    offset: 0,
    engine,
    engineSel: sel,
    extendedEngineSel: ext,
    queueType: (d(1) >>> 21) & 7,
    queueSel: (d(1) >>> 4) & 3,
    doorbell: (d(2) >>> 2) & 0x3ffffff,
    mqdAddress: addr64(d(3), d(4)),
    wptrAddress: addr64(d(5), d(6)),
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

export function decodeGpuInfo(props: Record<string, string>): GpuInfo {
  const n = (k: string): number | null => (k in props && /^\d+$/.test(props[k]) ? Number(props[k]) : null);
  const version = n('gfx_target_version') ?? 0;
  const simd = n('simd_count') ?? 0;
  const perCu = n('simd_per_cu');
  return {
    gfxTarget: gfxTargetName(version),
    gfxTargetVersion: version,
    numXcc: n('num_xcc') ?? 1,
    numXccReported: n('num_xcc') !== null,
    simdCount: simd,
    computeUnits: perCu ? Math.floor(simd / perCu) : null,
    vendorId: n('vendor_id') ?? 0,
    deviceId: n('device_id') ?? 0,
    drmRenderMinor: n('drm_render_minor'),
    maxEngineClockMhz: n('max_engine_clk_fcompute'),
    numSdmaEngines: n('num_sdma_engines') ?? 0,
    numSdmaXgmiEngines: n('num_sdma_xgmi_engines') ?? 0,
    numSdmaQueuesPerEngine: n('num_sdma_queues_per_engine') ?? 0,
    numCpQueues: n('num_cp_queues') ?? 0,
  };
}

/** pipe_priority_map[] (kfd_mqd_manager.c) as a word users know. */
export function priorityLevel(pipePriority: number | null, queuePriority: number | null): 'low' | 'normal' | 'high' | null {
  if (pipePriority !== null && pipePriority <= 2) return (['low', 'normal', 'high'] as const)[pipePriority];
  if (queuePriority !== null && queuePriority <= 15) return queuePriority <= 6 ? 'low' : queuePriority <= 10 ? 'normal' : 'high';
  return null;
}
