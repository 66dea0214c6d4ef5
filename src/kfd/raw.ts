/**
 * The raw parse results that BOTH parser implementations (C++ in native/kfd, TS in src/kfd)
 * produce, field for field. Tables are flat Float64Arrays with a fixed number of columns per
 * row so that the native path can hand a whole file across N-API in a handful of objects
 * (see docs/design-rules.md#bulk-across-the-boundary). Everything that turns these tables into
 * friendly objects lives in TS once (build*.ts / decode.ts), so both paths give one answer.
 *
 * Column layouts are declared with names in src/kfd/columns.ts; they are part of the native ABI:
 * change them together with native/kfd/columns.h and bump NATIVE_ABI in src/native.ts.
 */

import { columnCount } from './columns.js';

export type Severity = 'error' | 'warning';

/** A problem found in a text file; `line` is 1-based. */
export interface ParseIssue {
  line: number;
  severity: Severity;
  message: string;
}

/** At most this many issues are kept per parse; the rest are only counted. */
export const MAX_ISSUES = 100;

export interface RawCommon {
  issues: ParseIssue[];
  /** issues dropped after MAX_ISSUES */
  suppressed: number;
  /** number of lines read */
  lines: number;
}

// ---------------------------------------------------------------------------------- mqds
/** Queue header kinds of debugfs kfd/mqds (pqm_debugfs_mqds). */
export const MqdQueueKind = {
  compute: 0,
  sdma: 1,
  diq: 2,
  badUser: 3,
  badKernel: 4,
  weird: 5,
} as const;
export const MQD_QUEUE_KIND_NAMES = ['compute', 'sdma', 'diq', 'bad-user-queue', 'bad-kernel-queue', 'weird'] as const;

/** procs: MqdsProcCol (src/kfd/columns.ts) */
export const MQDS_PROC_COLS = columnCount('mqdsProcs');
/** queues: MqdsQueueCol */
export const MQDS_QUEUE_COLS = columnCount('mqdsQueues');
/** blocks: MqdsBlockCol */
export const MQDS_BLOCK_COLS = columnCount('mqdsBlocks');

export interface MqdsRaw extends RawCommon {
  words: Uint32Array;
  procs: Float64Array;
  /** the PASID field of each process header exactly as printed ("0x8002", "41872") */
  pasids: string[];
  queues: Float64Array;
  blocks: Float64Array;
}

// ---------------------------------------------------------------------------------- hqds
export const HqdSlotKind = { hiq: 0, cp: 1, sdma: 2 } as const;

/** nodes: HqdsNodeCol (src/kfd/columns.ts) */
export const HQDS_NODE_COLS = columnCount('hqdsNodes');
/** slots: HqdsSlotCol */
export const HQDS_SLOT_COLS = columnCount('hqdsSlots');

export interface HqdsRaw extends RawCommon {
  words: Uint32Array;
  nodes: Float64Array;
  slots: Float64Array;
}

// ---------------------------------------------------------------------------------- rls
/** nodes: RlsNodeCol (src/kfd/columns.ts) */
export const RLS_NODE_COLS = columnCount('rlsNodes');
/** packets: RlsPacketCol */
export const RLS_PACKET_COLS = columnCount('rlsPackets');

export interface RlsRaw extends RawCommon {
  words: Uint32Array;
  nodes: Float64Array;
  packets: Float64Array;
}

// ---------------------------------------------------------------------------------- sysfs
/** A problem met while reading a pseudo-file tree. */
export interface ReadIssue {
  path: string;
  severity: Severity;
  message: string;
  /** errno name when a system call failed (ENOENT, EACCES, ...) */
  code?: string;
}

export interface TopologyNodeRaw {
  node: number;
  /** 0 for CPU nodes */
  gpuId: number;
  name: string;
  /** keys of the properties file, in file order */
  keys: string[];
  /** values exactly as printed (u64 values do not fit a double) */
  values: string[];
}

export interface TopologyRaw {
  nodes: TopologyNodeRaw[];
  issues: ReadIssue[];
}

/** Metric codes of the per-process files under class/kfd/kfd/proc/<pid>/ */
export const ProcMetric = {
  vram: 0,
  sdma: 1,
  evictedMs: 2,
  cuOccupancy: 3,
  faults: 4,
  pageIn: 5,
  pageOut: 6,
} as const;
export const PROC_METRIC_NAMES = ['vram', 'sdma', 'evictedMs', 'cuOccupancy', 'faults', 'pageIn', 'pageOut'] as const;

/** procs: ProcsProcCol (src/kfd/columns.ts) */
export const PROCS_PROC_COLS = columnCount('procsProcs');
/** queues: ProcsQueueCol */
export const PROCS_QUEUE_COLS = columnCount('procsQueues');
/** metrics: ProcsMetricCol */
export const PROCS_METRIC_COLS = columnCount('procsMetrics');

export interface ProcsRaw {
  procs: Float64Array;
  queues: Float64Array;
  metrics: Float64Array;
  issues: ReadIssue[];
}
