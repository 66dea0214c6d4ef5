// The queue model's join (MQD <-> HQD slot <-> runlist <-> sysfs queue ids) on the raw parser
// tables, so that `gpucolo queues` on the native path builds no per-slot or per-block object at
// all: one N-API call parses the three debugfs files and returns these small tables.
//
// Twin of joinQueues in src/kfd/join.ts (qidHints included, which only a trace has): every rule,
// every order and every warning text is the same there; test/kfd-snapshot-native.test.ts
// compares the two on the fixtures, the damaged dumps and fuzzed input. Table layouts are
// decoded by joinFromNativeTables in src/kfd/join.ts; change them together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "columns.h"
#include "hqds_parser.h"
#include "mqds_parser.h"
#include "rls_parser.h"

namespace gpucolo {
namespace kfd {

// Column layouts of the join's tables: Join*Col in columns.h (-1 is null wherever a column can be
// null). The counts below are kept as short names for the row strides.
// ---- inputs besides the parsed debugfs files (built by src/kfd/join.ts nativeJoinInput)
constexpr size_t kJoinTopoCols = JoinTopologyCol::kCount;  // one row per GPU node of the topology
constexpr size_t kJoinProcCols = JoinProcsCol::kCount;
constexpr size_t kJoinProcQueueCols = JoinProcQueuesCol::kCount;

// ---- output tables
constexpr size_t kJoinQueueCols = JoinQueuesCol::kCount;
constexpr size_t kJoinAddressCols = JoinAddressesCol::kCount;
constexpr size_t kJoinHqdCols = JoinHqdsCol::kCount;
constexpr size_t kJoinProcessCols = JoinProcessesCol::kCount;
constexpr size_t kJoinRunlistCols = JoinRunlistCol::kCount;
constexpr size_t kJoinUnmatchedHqdCols = JoinUnmatchedHqdsCol::kCount;
constexpr size_t kJoinUnmatchedRunlistCols = JoinUnmatchedRunlistCol::kCount;
constexpr size_t kJoinNodeCols = JoinNodesCol::kCount;
constexpr size_t kJoinXccCols = JoinXccsCol::kCount;

/** QID_MATCH in src/kfd/join.ts, in this order */
enum JoinQidMatch : int { kQidUnique = 0, kQidCreationOrder = 1, kQidSysfsOnly = 2, kQidUnmatched = 3, kQidNoSysfs = 4, kQidHistory = 5 };
enum JoinSource : int { kSourceDebugfsSysfs = 0, kSourceDebugfs = 1, kSourceSysfs = 2 };

/**
 * Queue ids established by earlier joins of a trace: pid -> debugfs identity (debugfsIdentity in
 * src/kfd/join.ts: "mqd:0x...", "ring:0x...", "unknown:<mqds line>") -> qid. The join pairs a
 * debugfs queue with the sysfs queue of its hinted id before creation order ('history'), so ids
 * stay put when queues come and go between the sysfs and the debugfs read.
 */
using QidHints = std::unordered_map<double, std::unordered_map<std::string, double>>;

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
  /** nullptr: no hints (a snapshot); else read, never changed (LearnQidHints adds to them) */
  const QidHints* qid_hints = nullptr;
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

/**
 * What a join established, added to `hints` (as SampleAssembler does in src/trace/assemble.ts):
 * every queue of `t` that has a qid and a debugfs side, under its pid and debugfs identity.
 */
void LearnQidHints(const JoinTables& t, QidHints* hints);

/** `0x` + lowercase hex of (hi:lo) << shift, as addr64 in src/kfd/decode.ts prints it. */
std::string FormatAddress(uint32_t lo, uint32_t hi, unsigned shift);

}  // namespace kfd
}  // namespace gpucolo
