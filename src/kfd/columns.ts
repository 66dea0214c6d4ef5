/**
 * The column layouts of every flat table the KFD parsers and the native join exchange, declared
 * once with names (issue #20). Each `XxxCol` object maps a column name to its index in a row; the
 * row width (`*_COLS` in src/kfd/raw.ts, the `k*Cols` constants of native/kfd) is its number of
 * keys. native/kfd/columns.h declares the same tables for C++, and the addon's kfdTableColumns()
 * returns its names so that test/kfd-columns.test.ts can check both languages agree, name for
 * name and in order.
 *
 * The indices are written out as literals (not computed from a name list) so that V8 sees each
 * object as one constant shape and folds `row[o + HqdsSlotCol.wordOffset]` to a constant offset
 * in the parsers' hot loops. The test checks that every object's values are 0, 1, 2, ... in key
 * order, so a literal cannot drift from its position.
 *
 * These layouts are part of the native ABI: change them together with native/kfd/columns.h and
 * bump NATIVE_ABI in src/native.ts. -1 is null in every nullable column.
 */

// ---------------------------------------------------------------------------------- mqds
/** One row per process header of debugfs kfd/mqds. */
export const MqdsProcCol = { pid: 0, line: 1, firstQueue: 2, queueCount: 3 } as const;
/** One row per queue header; typeCode and gpuId are -1 when not printed. */
export const MqdsQueueCol = {
  proc: 0,
  kind: 1,
  typeCode: 2,
  gpuId: 3,
  line: 4,
  firstBlock: 5,
  blockCount: 6,
  extraCopies: 7,
} as const;
/** One row per block of hex words (an MQD dump); wordOffset indexes the parse's words. */
export const MqdsBlockCol = { queue: 0, line: 1, wordOffset: 2, wordCount: 3 } as const;

// ---------------------------------------------------------------------------------- hqds
export const HqdsNodeCol = { node: 0, gpuId: 1, line: 2, stopped: 3, firstSlot: 4, slotCount: 5 } as const;
/**
 * One row per HQD slot: node is the row of the node table; inst and mec are -1 when not printed
 * (pre-9.4.3); pipe is the engine and queue the RLC of an SDMA slot.
 */
export const HqdsSlotCol = {
  node: 0,
  kind: 1,
  inst: 2,
  mec: 3,
  pipe: 4,
  queue: 5,
  line: 6,
  wordOffset: 7,
  wordCount: 8,
  firstRegisterAddress: 9,
} as const;

// ---------------------------------------------------------------------------------- rls
export const RlsNodeCol = {
  node: 0,
  gpuId: 1,
  line: 2,
  noRunlist: 3,
  wordOffset: 4,
  wordCount: 5,
  firstPacket: 6,
  packetCount: 7,
  firstDumpLine: 8,
} as const;
/** One row per PM4 packet: node is the row of the node table, dwordOffset lies within its IB. */
export const RlsPacketCol = { node: 0, dwordOffset: 1, opcode: 2, dwords: 3 } as const;

// ---------------------------------------------------------------------------------- sysfs procs
/** pasid is -1 when unreadable. */
export const ProcsProcCol = { pid: 0, pasid: 1, firstQueue: 2, queueCount: 3, firstMetric: 4, metricCount: 5 } as const;
/** proc is the row of the proc table; type, size and gpuId are -1 when unreadable. */
export const ProcsQueueCol = { proc: 0, qid: 1, type: 2, size: 3, gpuId: 4 } as const;
/** metric is a ProcMetric code (src/kfd/raw.ts). */
export const ProcsMetricCol = { proc: 0, metric: 1, gpuId: 2, value: 3 } as const;

// ---------------------------------------------------------------------------------- join inputs
// Built by nativeJoinSysfs in src/kfd/join.ts and read by native/kfd/join.cc.
export const JoinTopologyCol = { node: 0, gpuId: 1, numXcc: 2 } as const;
export const JoinProcsCol = { pid: 0, pasid: 1, firstQueue: 2, queueCount: 3 } as const;
export const JoinProcQueuesCol = { qid: 0, typeCode: 1, sizeBytes: 2, gpuId: 3 } as const;

// ---------------------------------------------------------------------------------- join outputs
// Written by native/kfd/join.cc and decoded by joinFromNativeTables in src/kfd/join.ts.
/**
 * sysQueue: row of the sysfs queue table whose type the queue takes; priorityPipe -1 = no
 * priority; ringLo -1 = no ring; sdmaEngine -1 = no SDMA slot.
 */
export const JoinQueuesCol = {
  pid: 0,
  qid: 1,
  qidMatch: 2,
  source: 3,
  mqdKind: 4,
  sysQueue: 5,
  aql: 6,
  gpuId: 7,
  node: 8,
  sizeBytes: 9,
  priorityPipe: 10,
  priorityQueue: 11,
  priorityLevel: 12,
  doorbell: 13,
  ringLo: 14,
  ringHi: 15,
  firstAddress: 16,
  addressCount: 17,
  firstHqd: 18,
  hqdCount: 19,
  sdmaEngine: 20,
  sdmaRlc: 21,
  sdmaActive: 22,
  sdmaBusy: 23,
  sdmaMatchedBy: 24,
  inRunlist: 25,
  mqdsLine: 26,
} as const;
export const JoinAddressesCol = { lo: 0, hi: 1 } as const;
export const JoinHqdsCol = { inst: 0, pipe: 1, queue: 2, active: 3, busy: 4, xcc: 5 } as const;
export const JoinProcessesCol = { pid: 0, firstQueue: 1, queueCount: 2, firstRunlist: 3, runlistCount: 4 } as const;
export const JoinRunlistCol = { gpuId: 0, pasid: 1, numQueues: 2, mappedQueues: 3 } as const;
/** kind: 0 cp, 1 sdma; mqdLo and ringLo -1 = null. */
export const JoinUnmatchedHqdsCol = {
  node: 0,
  gpuId: 1,
  kind: 2,
  inst: 3,
  pipe: 4,
  queue: 5,
  mqdLo: 6,
  mqdHi: 7,
  ringLo: 8,
  ringHi: 9,
  vmid: 10,
  busy: 11,
  likelyStale: 12,
} as const;
/** engine: index into the join's runlistEngines. */
export const JoinUnmatchedRunlistCol = { gpuId: 0, pasid: 1, engine: 2, doorbell: 3, mqdLo: 4, mqdHi: 5 } as const;
/** topologyRow: row of the topology input (-1); runlistPresent -1 = no runlist. */
export const JoinNodesCol = {
  node: 0,
  gpuId: 1,
  topologyRow: 2,
  numXcc: 3,
  stopped: 4,
  activeHqds: 5,
  activeSdma: 6,
  cpSlots: 7,
  firstXcc: 8,
  xccCount: 9,
  queues: 10,
  runlistPresent: 11,
  runlistProcesses: 12,
  runlistMapQueues: 13,
  runlistChained: 14,
} as const;
export const JoinXccsCol = { inst: 0, cpSlots: 1, activeCp: 2, hiqActive: 3 } as const;

// ---------------------------------------------------------------------------------- all tables
/** Every table by the key the addon's kfdTableColumns() uses for it. */
export const KFD_TABLES = {
  mqdsProcs: MqdsProcCol,
  mqdsQueues: MqdsQueueCol,
  mqdsBlocks: MqdsBlockCol,
  hqdsNodes: HqdsNodeCol,
  hqdsSlots: HqdsSlotCol,
  rlsNodes: RlsNodeCol,
  rlsPackets: RlsPacketCol,
  procsProcs: ProcsProcCol,
  procsQueues: ProcsQueueCol,
  procsMetrics: ProcsMetricCol,
  joinTopology: JoinTopologyCol,
  joinProcs: JoinProcsCol,
  joinProcQueues: JoinProcQueuesCol,
  joinQueues: JoinQueuesCol,
  joinAddresses: JoinAddressesCol,
  joinHqds: JoinHqdsCol,
  joinProcesses: JoinProcessesCol,
  joinRunlist: JoinRunlistCol,
  joinUnmatchedHqds: JoinUnmatchedHqdsCol,
  joinUnmatchedRunlist: JoinUnmatchedRunlistCol,
  joinNodes: JoinNodesCol,
  joinXccs: JoinXccsCol,
} as const;

export type KfdTable = keyof typeof KFD_TABLES;

/** The column names of a table, in row order. */
export function columnNames(table: KfdTable): string[] {
  return Object.keys(KFD_TABLES[table]);
}

/** The number of columns of a table (its row width). */
export function columnCount(table: KfdTable): number {
  return Object.keys(KFD_TABLES[table]).length;
}

/** Every table's column names, in the shape of the addon's kfdTableColumns(). */
export function kfdTableColumns(): Record<KfdTable, string[]> {
  const out = {} as Record<KfdTable, string[]>;
  for (const t of Object.keys(KFD_TABLES) as KfdTable[]) out[t] = columnNames(t);
  return out;
}
