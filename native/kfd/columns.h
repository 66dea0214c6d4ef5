// The column layouts of every flat table the kfd group hands across the N-API boundary (the parser
// tables of src/kfd/raw.ts, the sysfs proc tables, the join's input and output tables of
// src/kfd/join.ts), declared once with names. The layouts are part of the addon's ABI
// (docs/design-rules.md "Bulk across the boundary"); src/kfd/columns.ts declares the same names in
// the same order, and test/kfd-columns.test.ts checks the two against kfdTableColumns(), which
// exports kTables below.
//
// Each table is a struct holding an unscoped enum of column indices, spelled like the TypeScript
// names so that `HqdsSlotCol::wordOffset` here reads as `HqdsSlotCol.wordOffset` there, with a
// trailing kCount, and kNames, the names in column order. A row r of a table with C columns starts
// at r * C; column i of it is at r * C + i.
#pragma once

#include <cstddef>

namespace gpucolo {
namespace kfd {

// The enumerators are the TS property names and the struct names those of src/kfd/columns.ts; the
// structs only scope them. One macro per table would hide the names from grep, so each table is
// written out; TableOf() below checks that kNames has one name per enumerator.

// ---------------------------------------------------------------------------------- kfd/mqds

struct MqdsProcCol {
  enum : size_t { pid, line, firstQueue, queueCount, kCount };
  static constexpr const char* kNames[] = {"pid", "line", "firstQueue", "queueCount"};
};
struct MqdsQueueCol {
  enum : size_t { proc, kind, typeCode, gpuId, line, firstBlock, blockCount, extraCopies, kCount };
  static constexpr const char* kNames[] = {"proc", "kind", "typeCode", "gpuId", "line", "firstBlock", "blockCount", "extraCopies"};
};
struct MqdsBlockCol {
  enum : size_t { queue, line, wordOffset, wordCount, kCount };
  static constexpr const char* kNames[] = {"queue", "line", "wordOffset", "wordCount"};
};

// ---------------------------------------------------------------------------------- kfd/hqds

struct HqdsNodeCol {
  enum : size_t { node, gpuId, line, stopped, firstSlot, slotCount, kCount };
  static constexpr const char* kNames[] = {"node", "gpuId", "line", "stopped", "firstSlot", "slotCount"};
};
/** pipe and queue hold the engine and the RLC for an SDMA slot. */
struct HqdsSlotCol {
  enum : size_t { node, kind, inst, mec, pipe, queue, line, wordOffset, wordCount, firstRegisterAddress, kCount };
  static constexpr const char* kNames[] = {"node", "kind", "inst", "mec", "pipe", "queue", "line", "wordOffset", "wordCount", "firstRegisterAddress"};
};

// ---------------------------------------------------------------------------------- kfd/rls

struct RlsNodeCol {
  enum : size_t { node, gpuId, line, noRunlist, wordOffset, wordCount, firstPacket, packetCount, firstDumpLine, kCount };
  static constexpr const char* kNames[] = {"node", "gpuId", "line", "noRunlist", "wordOffset", "wordCount", "firstPacket", "packetCount", "firstDumpLine"};
};
struct RlsPacketCol {
  enum : size_t { node, dwordOffset, opcode, dwords, kCount };
  static constexpr const char* kNames[] = {"node", "dwordOffset", "opcode", "dwords"};
};

// ---------------------------------------------------------------------------------- sysfs proc

struct ProcsProcCol {
  enum : size_t { pid, pasid, firstQueue, queueCount, firstMetric, metricCount, kCount };
  static constexpr const char* kNames[] = {"pid", "pasid", "firstQueue", "queueCount", "firstMetric", "metricCount"};
};
struct ProcsQueueCol {
  enum : size_t { proc, qid, type, size, gpuId, kCount };
  static constexpr const char* kNames[] = {"proc", "qid", "type", "size", "gpuId"};
};
struct ProcsMetricCol {
  enum : size_t { proc, metric, gpuId, value, kCount };
  static constexpr const char* kNames[] = {"proc", "metric", "gpuId", "value"};
};

// ---------------------------------------------------------------------------------- join inputs
// built by nativeJoinInput in src/kfd/join.ts; -1 is null wherever a column can be null

struct JoinTopologyCol {
  enum : size_t { node, gpuId, numXcc, kCount };
  static constexpr const char* kNames[] = {"node", "gpuId", "numXcc"};
};
/** pasid -1: unreadable */
struct JoinProcsCol {
  enum : size_t { pid, pasid, firstQueue, queueCount, kCount };
  static constexpr const char* kNames[] = {"pid", "pasid", "firstQueue", "queueCount"};
};
/** sizeBytes, gpuId -1: unknown */
struct JoinProcQueuesCol {
  enum : size_t { qid, typeCode, sizeBytes, gpuId, kCount };
  static constexpr const char* kNames[] = {"qid", "typeCode", "sizeBytes", "gpuId"};
};

// ---------------------------------------------------------------------------------- join outputs
// decoded by joinFromNativeTables in src/kfd/join.ts; -1 is null wherever a column can be null

/**
 * sysQueue: row of the sysfs queue table whose type the queue takes; priorityPipe -1: no
 * priority; ringLo -1: no ring; sdmaEngine -1: no SDMA slot.
 */
struct JoinQueuesCol {
  enum : size_t {
    pid, qid, qidMatch, source, mqdKind, sysQueue, aql, gpuId, node, sizeBytes, priorityPipe, priorityQueue, priorityLevel,
    doorbell, ringLo, ringHi, firstAddress, addressCount, firstHqd, hqdCount, sdmaEngine, sdmaRlc, sdmaActive, sdmaBusy,
    sdmaMatchedBy, inRunlist, mqdsLine, kCount
  };
  static constexpr const char* kNames[] = {
      "pid", "qid", "qidMatch", "source", "mqdKind", "sysQueue", "aql", "gpuId", "node", "sizeBytes", "priorityPipe",
      "priorityQueue", "priorityLevel", "doorbell", "ringLo", "ringHi", "firstAddress", "addressCount", "firstHqd",
      "hqdCount", "sdmaEngine", "sdmaRlc", "sdmaActive", "sdmaBusy", "sdmaMatchedBy", "inRunlist", "mqdsLine"};
};
/** lo -1: null */
struct JoinAddressesCol {
  enum : size_t { lo, hi, kCount };
  static constexpr const char* kNames[] = {"lo", "hi"};
};
struct JoinHqdsCol {
  enum : size_t { inst, pipe, queue, active, busy, xcc, kCount };
  static constexpr const char* kNames[] = {"inst", "pipe", "queue", "active", "busy", "xcc"};
};
struct JoinProcessesCol {
  enum : size_t { pid, firstQueue, queueCount, firstRunlist, runlistCount, kCount };
  static constexpr const char* kNames[] = {"pid", "firstQueue", "queueCount", "firstRunlist", "runlistCount"};
};
struct JoinRunlistCol {
  enum : size_t { gpuId, pasid, numQueues, mappedQueues, kCount };
  static constexpr const char* kNames[] = {"gpuId", "pasid", "numQueues", "mappedQueues"};
};
/** kind: 0 cp, 1 sdma; mqdLo, ringLo -1: null */
struct JoinUnmatchedHqdsCol {
  enum : size_t { node, gpuId, kind, inst, pipe, queue, mqdLo, mqdHi, ringLo, ringHi, vmid, busy, likelyStale, kCount };
  static constexpr const char* kNames[] = {"node", "gpuId", "kind", "inst", "pipe", "queue", "mqdLo",
                                           "mqdHi", "ringLo", "ringHi", "vmid", "busy", "likelyStale"};
};
/** pasid -1: null; engine: index into runlistEngines */
struct JoinUnmatchedRunlistCol {
  enum : size_t { gpuId, pasid, engine, doorbell, mqdLo, mqdHi, kCount };
  static constexpr const char* kNames[] = {"gpuId", "pasid", "engine", "doorbell", "mqdLo", "mqdHi"};
};
/** node, topologyRow, numXcc -1: null; runlistPresent -1: no runlist */
struct JoinNodesCol {
  enum : size_t {
    node, gpuId, topologyRow, numXcc, stopped, activeHqds, activeSdma, cpSlots, firstXcc, xccCount, queues, runlistPresent,
    runlistProcesses, runlistMapQueues, runlistChained, kCount
  };
  static constexpr const char* kNames[] = {"node", "gpuId", "topologyRow", "numXcc", "stopped", "activeHqds", "activeSdma", "cpSlots",
                                           "firstXcc", "xccCount", "queues", "runlistPresent", "runlistProcesses", "runlistMapQueues",
                                           "runlistChained"};
};
struct JoinXccsCol {
  enum : size_t { inst, cpSlots, activeCp, hiqActive, kCount };
  static constexpr const char* kNames[] = {"inst", "cpSlots", "activeCp", "hiqActive"};
};

/** One table as kfdTableColumns() names it (the keys of src/kfd/columns.ts). */
struct TableColumns {
  const char* table;
  const char* const* names;
  size_t count;
};

template <class T>
constexpr TableColumns TableOf(const char* key) {
  static_assert(sizeof(T::kNames) / sizeof(T::kNames[0]) == T::kCount, "kNames and the column enum disagree");
  return TableColumns{key, T::kNames, T::kCount};
}

inline constexpr TableColumns kTables[] = {
    TableOf<MqdsProcCol>("mqdsProcs"),
    TableOf<MqdsQueueCol>("mqdsQueues"),
    TableOf<MqdsBlockCol>("mqdsBlocks"),
    TableOf<HqdsNodeCol>("hqdsNodes"),
    TableOf<HqdsSlotCol>("hqdsSlots"),
    TableOf<RlsNodeCol>("rlsNodes"),
    TableOf<RlsPacketCol>("rlsPackets"),
    TableOf<ProcsProcCol>("procsProcs"),
    TableOf<ProcsQueueCol>("procsQueues"),
    TableOf<ProcsMetricCol>("procsMetrics"),
    TableOf<JoinTopologyCol>("joinTopology"),
    TableOf<JoinProcsCol>("joinProcs"),
    TableOf<JoinProcQueuesCol>("joinProcQueues"),
    TableOf<JoinQueuesCol>("joinQueues"),
    TableOf<JoinAddressesCol>("joinAddresses"),
    TableOf<JoinHqdsCol>("joinHqds"),
    TableOf<JoinProcessesCol>("joinProcesses"),
    TableOf<JoinRunlistCol>("joinRunlist"),
    TableOf<JoinUnmatchedHqdsCol>("joinUnmatchedHqds"),
    TableOf<JoinUnmatchedRunlistCol>("joinUnmatchedRunlist"),
    TableOf<JoinNodesCol>("joinNodes"),
    TableOf<JoinXccsCol>("joinXccs"),
};

}  // namespace kfd
}  // namespace gpucolo
