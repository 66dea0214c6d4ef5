/**
 * The friendly objects built from the raw tables (raw.ts). What the library API returns and what
 * `gpucolo queues --json` prints (the latter via snapshot.ts).
 */
import type { Impl } from '../native.js';
import type { ParseIssue, ReadIssue } from './raw.js';

export type { Impl, ParseIssue, ReadIssue };

export interface ParseOptions {
  /** which parser: 'native' (throws ENONATIVE if the addon is missing), 'ts', or auto (default) */
  impl?: Impl;
  /** file name used in issue texts */
  file?: string;
}

interface ParsedCommon {
  /** which implementation produced this */
  path: Impl;
  file?: string;
  issues: ParseIssue[];
  suppressed: number;
  /** true when an issue of severity 'error' was found: some content was not understood */
  partial: boolean;
  lines: number;
}

// ------------------------------------------------------------------------------------ mqds
export type MqdQueueType = 'compute' | 'sdma' | 'diq' | 'bad-user-queue' | 'bad-kernel-queue' | 'weird';

/**
 * Fields of a v9 compute MQD (struct v9_mqd; sources in test/fixtures/kfd/README.upstream.md). Addresses as 0x-hex strings. Every
 * field is null when the block ends before the dword(s) it lives in (a cut dump): unknown, never 0.
 */
export interface ComputeMqdFields {
  /**
   * dw0 == 0xC0310800, the compute MQD header (every GFX generation writes the same). When dw0 was
   * read and differs, the block is no compute MQD and every field below is null.
   */
  headerOk: boolean;
  /** dw128/129: GART address of this MQD; the join key to hqds and rls */
  mqdAddress: string | null;
  /** dw130: CP write-back, NOT a reliable "mapped" flag */
  cpHqdActive: number | null;
  /** dw131 (cp_hqd_vmid) bits 3:0 */
  vmid: number | null;
  /** dw133: 0 low, 1 medium, 2 high */
  pipePriority: number | null;
  /** dw134: 0..15 */
  queuePriority: number | null;
  /** dw136/137 << 8 */
  ringBase: string | null;
  /** from cp_hqd_pq_control (dw145): 4 << (bits[5:0] + 1) */
  ringSizeBytes: number | null;
  /** dw143 bits [27:2] (dword index) */
  doorbell: number | null;
  /** dw181 bit 0: AQL vs PM4 */
  aql: boolean | null;
  /**
   * dw39: compute_current_logic_xcc_id on GC 9.4.3+ (v9_mqd); another field on GFX10+ (reserved in
   * v10, compute_user_accum_2 in v11/v12): only meaningful on a GC 9.4.x node
   */
  logicalXcc: number | null;
  /** dw23,24,26,27: static thread management (CU mask) of SE0..3 */
  cuMaskSe: number[] | null;
  rptrReportAddress: string | null;
  wptrPollAddress: string | null;
  /** dw171/172: CWSR context save area of this XCC */
  ctxSaveAddress: string | null;
}

/** Fields of a v9 SDMA MQD (struct v9_sdma_mqd); null when the block ends before them. */
export interface SdmaMqdFields {
  ringBase: string | null;
  ringSizeBytes: number | null;
  doorbell: number | null;
  /**
   * sdma_engine_id / sdma_queue_id (RLC): dw126/127 of a 128-dword block, dw128/129 of a 130-dword
   * one (older headers); null for a block of any other length (cut: layout unknown)
   */
  engine: number | null;
  rlc: number | null;
  rptrAddress: string | null;
}

export interface MqdBlock {
  /** block index = XCC index within the queue's node */
  index: number;
  line: number;
  words: Uint32Array;
  compute?: ComputeMqdFields;
  sdma?: SdmaMqdFields;
}

export interface MqdQueue {
  type: MqdQueueType;
  /** the number in "Bad ... queue type N" headers */
  typeCode: number | null;
  /** topology gpu_id as printed (hex) */
  gpuId: string | null;
  line: number;
  blocks: MqdBlock[];
  /** SDMA MQDs dumped again because of the stale num_xccs quirk: pqm_debugfs_mqds, see test/fixtures/kfd/README.upstream.md) */
  extraSdmaCopies: number;
}

export interface MqdProcess {
  pid: number;
  /** the header's second number exactly as printed: a PASID on old kernels, the pid again on new */
  pasidField: string;
  line: number;
  queues: MqdQueue[];
}

export interface Mqds extends ParsedCommon {
  processes: MqdProcess[];
}

// ------------------------------------------------------------------------------------ hqds
export type HqdSlotKind = 'hiq' | 'cp' | 'sdma';

export interface HqdSlot {
  kind: HqdSlotKind;
  /** logical XCC (Inst); 0 when the kernel prints no Inst (pre-GC 9.4.3) */
  inst: number;
  instPrinted: boolean;
  /** HIQ only */
  mec: number | null;
  /** CP/HIQ: pipe; SDMA: engine */
  pipe: number;
  /** CP/HIQ: queue; SDMA: RLC */
  queue: number;
  line: number;
  /** MMIO byte address printed before the first value (differs per XCC; informational) */
  firstAddress: number;
  registers: Uint32Array;
  /** CP_HQD_ACTIVE bit 0 (compute) / RB_CNTL.RB_ENABLE (SDMA); null when the dump ends before it */
  active: boolean | null;
  /** compute: CP_MQD_BASE_ADDR, the join key */
  mqdAddress: string | null;
  vmid: number | null;
  pipePriority: number | null;
  queuePriority: number | null;
  /** ring base (VA) */
  ringBase: string | null;
  /** compute: rptr != wptr modulo the ring size (CP_HQD_PQ_CONTROL); SDMA: rptr != wptr; null when inactive or not read */
  busy: boolean | null;
}

export interface HqdNode {
  node: number;
  gpuId: string;
  line: number;
  stopped: boolean;
  slots: HqdSlot[];
}

export interface Hqds extends ParsedCommon {
  nodes: HqdNode[];
}

// ------------------------------------------------------------------------------------ rls
export interface Pm4Packet {
  /** dword offset in the node's runlist IB */
  offset: number;
  opcode: number;
  name: string;
  dwords: number;
}

/**
 * A MAP_QUEUES packet. A field whose dword lies beyond the packet's length (a header whose count is
 * smaller than the 7-dword layout) is null: unknown, never 0. dw1 is always there when the packet
 * comes from a parser (a PM4 packet has at least 2 dwords, and only packets wholly inside the IB
 * are kept).
 */
export interface RlsMapQueues {
  offset: number;
  /** 'compute', 'sdma<N>' or 'engine<N>' (dw1) */
  engine: string | null;
  engineSel: number | null;
  extendedEngineSel: number | null;
  /** 0 normal compute, 1 DIQ, 2 normal-latency static, 3 low-latency static */
  queueType: number | null;
  /** 1 = the HWS picks the HQD slot */
  queueSel: number | null;
  /** dw2 */
  doorbell: number | null;
  /** dw3/4: GART address of the XCC0 MQD; join key to mqds */
  mqdAddress: string | null;
  /** dw5/6 */
  wptrAddress: string | null;
}

/** A MAP_PROCESS packet; as for MAP_QUEUES, a field beyond the packet's length is null. */
export interface RlsMapProcess {
  offset: number;
  /** 16 dwords (v9) or 21 (aldebaran: GC 9.4.2+) */
  variant: 'v9' | 'aldebaran' | 'unknown';
  /** dw1 */
  pasid: number | null;
  quantum: number | null;
  debugVmid: number | null;
  /** dw2/3 */
  pageTableBase: string | null;
  shMemBases: number | null;
  shMemConfig: number | null;
  /** dw13: all queues of the process on this device, active or not */
  numQueues: number | null;
  sdmaEnable: boolean | null;
  numGws: number | null;
  /** MAP_QUEUES that follow it (active queues only) */
  queues: RlsMapQueues[];
}

export interface RlsNode {
  node: number;
  gpuId: string;
  line: number;
  /** false when the kernel printed "No active runlist" */
  hasRunlist: boolean;
  ibDwords: number;
  words: Uint32Array;
  packets: Pm4Packet[];
  processes: RlsMapProcess[];
  /** MAP_QUEUES packets seen before any MAP_PROCESS */
  strayQueues: RlsMapQueues[];
  /** a chaining RUN_LIST packet means the HWS is oversubscribed */
  chained: boolean;
}

export interface Rls extends ParsedCommon {
  nodes: RlsNode[];
}

// ------------------------------------------------------------------------------------ sysfs
/** Decoded topology `properties`; a property the file does not hold (or not as a number) is null. */
export interface GpuInfo {
  /** e.g. 'gfx942'; null when gfx_target_version is missing or 0 */
  gfxTarget: string | null;
  gfxTargetVersion: number | null;
  /**
   * XCCs of this node/partition: num_xcc. When the file has none, 1: a rule, not a guess (kernels
   * print num_xcc since they support multi-XCC GPUs, so one without it drives single-XCC GPUs
   * only); numXccReported says which. See decodeGpuInfo for the damaged-file case.
   */
  numXcc: number;
  numXccReported: boolean;
  simdCount: number | null;
  /** simd_count / simd_per_cu */
  computeUnits: number | null;
  vendorId: number | null;
  deviceId: number | null;
  drmRenderMinor: number | null;
  maxEngineClockMhz: number | null;
  numSdmaEngines: number | null;
  numSdmaXgmiEngines: number | null;
  numSdmaQueuesPerEngine: number | null;
  numCpQueues: number | null;
}

export interface TopologyNode {
  node: number;
  /** decimal as in sysfs; 0 for CPUs */
  gpuId: number;
  /** the same gpu_id in hex, as debugfs prints it */
  gpuIdHex: string;
  name: string;
  isGpu: boolean;
  /** every key of the properties file, values exactly as printed */
  properties: Record<string, string>;
  gpu: GpuInfo | null;
}

export interface Topology {
  path: Impl;
  nodes: TopologyNode[];
  issues: ReadIssue[];
}

export interface KfdProcQueue {
  qid: number;
  /** enum kfd_queue_type: 0 compute, 1 sdma, 2 hiq, 3 diq, 4 sdma-xgmi, 5 sdma-by-eng-id; -1 unreadable */
  typeCode: number;
  type: string;
  sizeBytes: number | null;
  /** decimal */
  gpuId: number | null;
}

export interface KfdProcGpuStats {
  gpuId: number;
  vramBytes?: number;
  /** cumulative SDMA activity, microseconds */
  sdmaUs?: number;
  evictedMs?: number;
  cuOccupancy?: number;
  faults?: number;
  pageIn?: number;
  pageOut?: number;
}

export interface KfdProc {
  pid: number;
  /** sysfs pasid file (0 on current kernels); null if unreadable */
  pasid: number | null;
  queues: KfdProcQueue[];
  gpus: KfdProcGpuStats[];
}

export interface KfdProcs {
  path: Impl;
  procs: KfdProc[];
  issues: ReadIssue[];
}
