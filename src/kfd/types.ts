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
  /** dw0 == 0xC0310800, the v9 compute MQD header */
  headerOk: boolean;
  /** dw128/129: GART address of this MQD; the join key to hqds and rls */
  mqdAddress: string | null;
  /** dw130: CP write-back, NOT a reliable "mapped" flag */
  cpHqdActive: number | null;
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
  /** dw39: compute_current_logic_xcc_id on GC 9.4.3 */
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
  /** dw126/127: sdma_engine_id / sdma_queue_id (RLC) */
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

export interface RlsMapQueues {
  offset: number;
  /** 'compute' or 'sdma<N>' */
  engine: string;
  engineSel: number;
  extendedEngineSel: number;
  /** 0 normal compute, 1 DIQ, 2 normal-latency static, 3 low-latency static */
  queueType: number;
  /** 1 = the HWS picks the HQD slot */
  queueSel: number;
  doorbell: number;
  /** GART address of the XCC0 MQD; join key to mqds */
  mqdAddress: string;
  wptrAddress: string;
}

export interface RlsMapProcess {
  offset: number;
  /** 16 dwords (v9) or 21 (aldebaran: GC 9.4.2+) */
  variant: 'v9' | 'aldebaran' | 'unknown';
  pasid: number;
  quantum: number;
  debugVmid: number;
  pageTableBase: string;
  shMemBases: number;
  shMemConfig: number;
  /** all queues of the process on this device, active or not */
  numQueues: number;
  sdmaEnable: boolean;
  numGws: number;
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
export interface GpuInfo {
  /** e.g. 'gfx942'; null for a CPU node */
  gfxTarget: string | null;
  gfxTargetVersion: number;
  /** XCCs of this node/partition (1 when the kernel predates the property) */
  numXcc: number;
  numXccReported: boolean;
  simdCount: number;
  /** simd_count / simd_per_cu */
  computeUnits: number | null;
  vendorId: number;
  deviceId: number;
  drmRenderMinor: number | null;
  maxEngineClockMhz: number | null;
  numSdmaEngines: number;
  numSdmaXgmiEngines: number;
  numSdmaQueuesPerEngine: number;
  numCpQueues: number;
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
