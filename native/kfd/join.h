// The queue model's join (MQD <-> HQD slot <-> runlist <-> sysfs queue ids) on the raw parser
// tables, so that `gpucolo queues` on the native path builds no per-slot or per-block object at
// all: one N-API call parses the three debugfs files and returns these small tables.
//
// Twin of joinQueues in src/kfd/join.ts (without qidHints, which only a trace has): every rule,
// every order and every warning text is the same there; test/kfd-snapshot-native.test.ts
// compares the two on the fixtures, the damaged dumps and fuzzed input. Table layouts are
// decoded by joinFromNativeTables in src/kfd/join.ts; change them together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hqds_parser.h"
#include "mqds_parser.h"
#include "rls_parser.h"

namespace gpucolo {
namespace kfd {

// ---- inputs besides the parsed debugfs files (built by src/kfd/join.ts nativeJoinInput)
constexpr size_t kJoinTopoCols = 3;       // node, gpuId, numXcc: one row per GPU node of the topology
constexpr size_t kJoinProcCols = 4;       // pid, pasid (-1 = unreadable), firstQueue, queueCount
constexpr size_t kJoinProcQueueCols = 4;  // qid, typeCode, sizeBytes (-1), gpuId (-1)

// ---- output tables; -1 is null wherever a column can be null
/**
 * pid, qid, qidMatch, source, mqdKind, sysQueue (row of the sysfs queue table whose type the queue
 * takes), aql, gpuId, node, sizeBytes, priorityPipe (-1 = no priority), priorityQueue,
 * priorityLevel, doorbell, ringLo (-1 = no ring), ringHi, firstAddress, addressCount, firstHqd,
 * hqdCount, sdmaEngine (-1 = no sdma slot), sdmaRlc, sdmaActive, sdmaBusy, sdmaMatchedBy,
 * inRunlist, mqdsLine
 */
constexpr size_t kJoinQueueCols = 27;
constexpr size_t kJoinAddressCols = 2;    // lo (-1 = null), hi
constexpr size_t kJoinHqdCols = 6;        // inst, pipe, queue, active, busy, xcc
constexpr size_t kJoinProcessCols = 5;    // pid, firstQueue, queueCount, firstRunlist, runlistCount
constexpr size_t kJoinRunlistCols = 4;    // gpuId, pasid, numQueues, mappedQueues
/** node, gpuId, kind (0 cp, 1 sdma), inst, pipe, queue, mqdLo (-1), mqdHi, ringLo (-1), ringHi, vmid, busy, likelyStale */
constexpr size_t kJoinUnmatchedHqdCols = 13;
/** gpuId, pasid (-1), engine (index into runlistEngines), doorbell, mqdLo, mqdHi */
constexpr size_t kJoinUnmatchedRunlistCols = 6;
/**
 * node (-1), gpuId, topologyRow (-1), numXcc (-1), stopped, activeHqds, activeSdma, cpSlots,
 * firstXcc, xccCount, queues, runlistPresent (-1 = no runlist), runlistProcesses,
 * runlistMapQueues, runlistChained
 */
constexpr size_t kJoinNodeCols = 15;
constexpr size_t kJoinXccCols = 4;  // inst, cpSlots, activeCp, hiqActive

enum JoinQidMatch : int { kQidUnique = 0, kQidCreationOrder = 1, kQidSysfsOnly = 2, kQidUnmatched = 3, kQidNoSysfs = 4 };
enum JoinSource : int { kSourceDebugfsSysfs = 0, kSourceDebugfs = 1, kSourceSysfs = 2 };

struct JoinInput {
  /** nullptr: the file was not read */
  const MqdsRaw* mqds = nullptr;
  const HqdsRaw* hqds = nullptr;
  const RlsRaw* rls = nullptr;
  /** kJoinTopoCols rows; nullptr (or empty) when the topology was not read */
  const std::vector<double>* topology = nullptr;
  /** nullptr when sysfs proc was not read (then proc_queues is ignored) */
  const std::vector<double>* procs = nullptr;
  const std::vector<double>* proc_queues = nullptr;
};

struct JoinTables {
  std::vector<double> queues;
  std::vector<double> addresses;
  std::vector<double> hqds;
  std::vector<double> processes;
  std::vector<double> runlist;
  std::vector<double> unmatched_hqds;
  std::vector<double> unmatched_runlist;
  std::vector<std::string> runlist_engines;
  std::vector<double> nodes;
  std::vector<double> xccs;
  std::vector<std::string> warnings;
};

/**
 * Why the sysfs tables of `in` cannot be joined (a row count that is not whole, a proc row whose
 * queues lie outside proc_queues, a negative or fractional count), or nullptr when they can. The
 * tables come from JS; JoinQueues trusts them.
 */
const char* CheckJoinSysfs(const JoinInput& in);

/** Never throws on parser output (only std::bad_alloc); the sysfs tables must pass CheckJoinSysfs. */
JoinTables JoinQueues(const JoinInput& in);

/** `0x` + lowercase hex of (hi:lo) << shift, as addr64 in src/kfd/decode.ts prints it. */
std::string FormatAddress(uint32_t lo, uint32_t hi, unsigned shift);

}  // namespace kfd
}  // namespace gpucolo
