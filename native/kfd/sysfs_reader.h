// Readers of the KFD sysfs trees. Twins of src/kfd/sysfs-reader.ts and src/kfd/sysfs-procs.ts: same
// walk order, same tables (column layouts in src/kfd/raw.ts), same issue wording and codes. The
// proc tree is read by sysfs_procs.cc (ReadKfdProcs is its full walk; ProcsWalker also reads it
// incrementally).
//
//   <root>/class/kfd/kfd/topology/nodes/<n>/{gpu_id,name,properties}
//   <root>/class/kfd/kfd/proc/<pid>/{pasid,vram_<gpu>,sdma_<gpu>,stats_<gpu>/*,counters_<gpu>/*,queues/<qid>/*}
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "columns.h"
#include "text_scan.h"

namespace gpucolo {
namespace kfd {

/** A problem met while reading a pseudo-file tree (ReadIssue in raw.ts). */
struct ReadIssue {
  std::string path;  // UTF-8, as the root was given
  Severity severity;
  std::string message;  // UTF-8 (the path) + ASCII
  /** errno name when a system call failed; empty = TS leaves `code` out */
  std::string code;
};

struct TopologyNodeRaw {
  double node;
  double gpu_id;
  /** file bytes; JS sees them as latin1 */
  std::string name;
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

struct TopologyRaw {
  std::vector<TopologyNodeRaw> nodes;
  std::vector<ReadIssue> issues;
};

enum ProcMetric : int { kMetricVram = 0, kMetricSdma = 1, kMetricEvictedMs = 2, kMetricCuOccupancy = 3,
                        kMetricFaults = 4, kMetricPageIn = 5, kMetricPageOut = 6 };

// the columns by name: columns.h (ProcsProcCol, ProcsQueueCol, ProcsMetricCol)
constexpr size_t kProcsProcCols = ProcsProcCol::kCount;
constexpr size_t kProcsQueueCols = ProcsQueueCol::kCount;
constexpr size_t kProcsMetricCols = ProcsMetricCol::kCount;

struct ProcsRaw {
  std::vector<double> procs;
  std::vector<double> queues;
  std::vector<double> metrics;
  std::vector<ReadIssue> issues;
};

/** root + '/' + rel, stripping trailing slashes of root only (underRoot in sysfs-reader.ts). */
std::string UnderRoot(const std::string& root, const char* rel);

/** Every topology node (CPU nodes included, gpu_id 0). */
TopologyRaw ReadTopology(const std::string& sysfs_root);

/** class/kfd/kfd/proc, every file; pids (may be null) restricts the walk, compared as JS numbers. */
ProcsRaw ReadKfdProcs(const std::string& sysfs_root, const std::vector<double>* pids);

}  // namespace kfd
}  // namespace gpucolo
