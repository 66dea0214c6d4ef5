// Reading class/kfd/kfd/proc, whole or incrementally (twin: src/kfd/sysfs-procs.ts).
//
// A full walk opens every file of every process at every read: for 64 processes x 8 queues that is
// ~2,300 open/read/close calls. Most of it cannot change while the directory lives: a queue's
// type, ring size and GPU are fixed from its creation until its directory disappears, and a
// process's pasid is fixed. So the incremental walker (ProcsWalker, `incremental`) keeps what it
// read, keyed by the directory's identity, and at each read:
//   - lists proc/ and, for every process it knows, that process's queues/ (a listing shows queues
//     created and destroyed; readdir's d_ino tells a directory recreated under the same name, e.g.
//     a queue id reused or a pid reused, from the one it read before: a new inode is a new queue
//     or process, read in full);
//   - reads the three files of a queue only for queues it has not seen;
//   - re-reads a process's directory listing and counters (vram_N, sdma_N, stats_N/*,
//     counters_N/*) only every `counters_every`-th read; in between they repeat the last values;
//   - reads a new process, or one whose last read had an issue outside its queues, in full;
//   - never remembers a queue whose files gave an issue: it is read again next time, so a damaged
//     tree gives the same issues at every read.
// With counters_every = 1, each read of a tree equals a full walk of it (ReadKfdProcs), table for
// table and issue for issue; the tests check this on recorded sequences of trees. The one check a
// known process skips is the full walk's last existence test: its queues/ listing is the proof
// that it still existed, and a process gone since is read in full (and reported) next time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "sysfs_reader.h"

namespace gpucolo {
namespace kfd {

/** What one read did (for tests and benches: cost grows with `queues_read`, not with queues). */
struct WalkStats {
  /** processes in this read (after the pid filter) */
  uint64_t processes = 0;
  /** processes whose directory was listed and counters read (new, counters due, or not clean) */
  uint64_t processes_read = 0;
  /** queues whose three files were read */
  uint64_t queues_read = 0;
  /** queues taken from an earlier read (same qid, same inode) */
  uint64_t queues_reused = 0;
};

class ProcsWalker {
 public:
  /** incremental false: every read is a full walk (ReadKfdProcs). counters_every >= 1. */
  ProcsWalker(std::string sysfs_root, bool incremental, uint64_t counters_every);

  /** One read of the proc tree; pids (may be null) restricts it, compared as JS numbers. */
  ProcsRaw Read(const std::vector<double>* pids);
  const WalkStats& last_stats() const { return stats_; }
  bool incremental() const { return incremental_; }

 private:
  struct QueueRow {
    double qid, type, size, gpu_id;
  };
  struct MetricRow {
    double code, gpu, value;
  };
  /** A queue read without issues, with its directory's inode then. */
  struct KnownQueue {
    uint64_t ino;
    QueueRow row;
  };
  using QueueMemo = std::unordered_map<uint64_t, KnownQueue>;
  /** One process's rows and issues, as both walks emit them. */
  struct ProcRows {
    double pasid = -1;
    std::vector<MetricRow> metrics;  // ordered by (gpu, code)
    std::vector<QueueRow> queues;    // qid order
    std::vector<ReadIssue> issues;
    /** issues that came from queues (the rest came from the directory, pasid or counters) */
    size_t queue_issues = 0;
    /** the directory had a queues/ entry */
    bool has_queues = false;
  };
  struct KnownProcess {
    uint64_t ino;
    /** the last full read had no issue outside the queues: pasid and counters can be repeated */
    bool clean;
    double pasid;
    std::vector<MetricRow> metrics;
    QueueMemo queues;
    /** queues/ was there (KFD makes it with the process; a recorded tree may lack it) */
    bool has_queues;
  };
  class Issues;

  bool ReadProcess(const std::string& base, uint64_t pid, const QueueMemo* known, QueueMemo* learned, ProcRows* rows, ReadIssue* instead);
  const char* ReadQueues(const std::string& base, uint64_t pid, const QueueMemo* known, QueueMemo* learned, ProcRows* rows, Issues* issues);
  static void Append(uint64_t pid, const ProcRows& rows, ProcsRaw* out);

  const std::string root_;
  const bool incremental_;
  const uint64_t counters_every_;
  uint64_t reads_ = 0;
  std::unordered_map<uint64_t, KnownProcess> known_;
  WalkStats stats_;
  std::string text_;  // file buffer, reused
  /** proc/ opened for the read in progress (queues/ listings are opened relative to it); -1 outside Read() */
  int proc_fd_ = -1;
};

}  // namespace kfd
}  // namespace gpucolo
