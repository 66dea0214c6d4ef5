// Twin of src/kfd/sysfs-procs.ts; read the two side by side (same walk order, same tables,
// same issue wording and codes). Column layouts of the tables: src/kfd/raw.ts.
#include "sysfs_procs.h"

#include "sysfs_files.h"
#include "input_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace gpucolo {
namespace kfd {
namespace {

const char kProc[] = "class/kfd/kfd/proc";

using sysfs::BadNumber;
using sysfs::CannotRead;
using sysfs::Exists;
using sysfs::ParseSysfsNumber;

const std::pair<const char*, int> kStatsFiles[] = {{"cu_occupancy", kMetricCuOccupancy}, {"evicted_ms", kMetricEvictedMs}};
const std::pair<const char*, int> kCounterFiles[] = {{"faults", kMetricFaults}, {"page_in", kMetricPageIn}, {"page_out", kMetricPageOut}};

}  // namespace

/** The issues of one process (`mine` in sysfs-reader.ts) and the reads that add to them. */
class ProcsWalker::Issues {
 public:
  Issues(std::vector<ReadIssue>* mine, std::string* text) : mine_(mine), text_(text) {}

  void Failed(const std::string& path, const char* code) {
    const bool gone = std::strcmp(code, "ENOENT") == 0;
    saw_enoent_ = saw_enoent_ || gone;
    mine_->push_back(CannotRead(path, code, gone ? Severity::kWarning : Severity::kError));
  }
  /** num() in TS: the value, or false after an issue */
  bool Num(const std::string& path, double* v, bool gpu_id = false) {
    if (const char* code = sysfs::ReadFile(path, text_)) {
      Failed(path, code);
      return false;
    }
    if (!ParseSysfsNumber(*text_, v)) {
      mine_->push_back(BadNumber(path, *text_));
      return false;
    }
    if (gpu_id && sysfs::Negative(*v)) {
      mine_->push_back(BadNumber(path, *text_, sysfs::kGpuId));
      return false;
    }
    return true;
  }
  bool List(const std::string& path, std::vector<std::string>* into) {
    if (const char* code = sysfs::ListDir(path, into)) {
      Failed(path, code);
      return false;
    }
    return true;
  }
  bool saw_enoent() const { return saw_enoent_; }
  std::vector<ReadIssue>& mine() { return *mine_; }

 private:
  std::vector<ReadIssue>* mine_;
  std::string* text_;
  bool saw_enoent_ = false;
};

ProcsWalker::ProcsWalker(std::string sysfs_root, bool incremental, uint64_t counters_every)
    : root_(std::move(sysfs_root)), incremental_(incremental), counters_every_(counters_every < 1 ? 1 : counters_every) {}

const char* ProcsWalker::ReadQueues(const std::string& base, uint64_t pid, const QueueMemo* known, QueueMemo* learned, ProcRows* rows,
                                    Issues* issues) {
  std::vector<sysfs::DirEntry> entries;
  const std::string dir = base + "/queues";
  // relative to proc/: a two-component path walk instead of the whole root's
  const std::string rel = std::to_string(pid) + "/queues";
  const char* code = proc_fd_ >= 0 ? sysfs::ListDirEntries(dir, &entries, proc_fd_, rel.c_str()) : sysfs::ListDirEntries(dir, &entries);
  if (code) return code;
  std::vector<ReadIssue>& mine = issues->mine();
  for (const auto& [qid, ino] : sysfs::NumericEntriesWithIno(entries, 10)) {
    if (known) {
      const auto it = known->find(qid);
      if (it != known->end() && it->second.ino == ino) {
        rows->queues.push_back(it->second.row);
        if (learned) learned->emplace(qid, it->second);
        ++stats_.queues_reused;
        continue;
      }
    }
    ++stats_.queues_read;
    const std::string q = dir + "/" + std::to_string(qid);
    const size_t before = mine.size();
    double type = -1, size = -1, gpu_id = -1;
    if (!issues->Num(q + "/type", &type)) type = -1;
    if (!issues->Num(q + "/size", &size)) size = -1;
    if (!issues->Num(q + "/gpuid", &gpu_id, true)) gpu_id = -1;
    if (mine.size() > before && !Exists(q)) {
      // destroyed while we read it: one note instead of three failed reads
      mine.resize(before);
      mine.push_back(ReadIssue{q, Severity::kWarning, "queue " + std::to_string(qid) + " of process " + std::to_string(pid) + " vanished while being read",
                               std::string()});
      continue;
    }
    const QueueRow row{static_cast<double>(qid), type, size, gpu_id};
    rows->queues.push_back(row);
    // only what read cleanly is repeated later; a queue with an issue is read again next time
    if (learned && mine.size() == before) learned->emplace(qid, KnownQueue{ino, row});
  }
  return nullptr;
}

bool ProcsWalker::ReadProcess(const std::string& base, uint64_t pid, const QueueMemo* known, QueueMemo* learned, ProcRows* rows,
                              ReadIssue* instead) {
  ++stats_.processes_read;
  Issues issues(&rows->issues, &text_);
  std::vector<std::string> entries, sub;
  if (!issues.List(base, &entries)) {
    *instead = issues.saw_enoent()
                   ? ReadIssue{base, Severity::kWarning, "process " + std::to_string(pid) + " exited while being read", std::string()}
                   : rows->issues[0];
    return false;
  }
  for (const std::string& e : entries) {
    int which;
    uint64_t gpu;
    double v;
    if (e == "pasid") {
      rows->pasid = issues.Num(base + "/pasid", &v) ? v : -1;
    } else if (sysfs::MatchPrefixedNumber(e, "vram", "sdma", &which, &gpu)) {
      if (issues.Num(base + "/" + e, &v)) rows->metrics.push_back(MetricRow{static_cast<double>(which == 0 ? kMetricVram : kMetricSdma), static_cast<double>(gpu), v});
    } else if (sysfs::MatchPrefixedNumber(e, "stats", "counters", &which, &gpu)) {
      if (!issues.List(base + "/" + e, &sub)) continue;
      const auto* files = which == 0 ? kStatsFiles : kCounterFiles;
      const size_t nfiles = which == 0 ? 2 : 3;
      for (size_t f = 0; f < nfiles; ++f) {
        if (std::find(sub.begin(), sub.end(), files[f].first) == sub.end()) continue;
        if (issues.Num(base + "/" + e + "/" + files[f].first, &v)) rows->metrics.push_back(MetricRow{static_cast<double>(files[f].second), static_cast<double>(gpu), v});
      }
    } else if (e == "queues") {
      rows->has_queues = true;
      const size_t before = rows->issues.size();
      if (const char* code = ReadQueues(base, pid, known, learned, rows, &issues)) {
        issues.Failed(base + "/queues", code);
      } else {
        rows->queue_issues += rows->issues.size() - before;
      }
    }
  }
  // gone by now: it exited while we read it, whatever we managed to read is stale
  if (!Exists(base)) {
    *instead = ReadIssue{base, Severity::kWarning, "process " + std::to_string(pid) + " exited while being read", std::string()};
    return false;
  }
  // ordered by (gpu, code) so both readers agree whatever the directory order; stable like
  // Array.prototype.sort, for duplicates such as vram_1 and vram_01
  std::stable_sort(rows->metrics.begin(), rows->metrics.end(), [](const MetricRow& a, const MetricRow& b) {
    return a.gpu != b.gpu ? a.gpu < b.gpu : a.code < b.code;
  });
  return true;
}

void ProcsWalker::Append(uint64_t pid, const ProcRows& rows, ProcsRaw* out) {
  const double row = static_cast<double>(out->procs.size() / kProcsProcCols);
  const double first_queue = static_cast<double>(out->queues.size() / kProcsQueueCols);
  const double first_metric = static_cast<double>(out->metrics.size() / kProcsMetricCols);
  for (const QueueRow& q : rows.queues) {
    double qrow[kProcsQueueCols];
    qrow[ProcsQueueCol::proc] = row;
    qrow[ProcsQueueCol::qid] = q.qid;
    qrow[ProcsQueueCol::type] = q.type;
    qrow[ProcsQueueCol::size] = q.size;
    qrow[ProcsQueueCol::gpuId] = q.gpu_id;
    out->queues.insert(out->queues.end(), qrow, qrow + kProcsQueueCols);
  }
  for (const MetricRow& m : rows.metrics) {
    double mrow[kProcsMetricCols];
    mrow[ProcsMetricCol::proc] = row;
    mrow[ProcsMetricCol::metric] = m.code;
    mrow[ProcsMetricCol::gpuId] = m.gpu;
    mrow[ProcsMetricCol::value] = m.value;
    out->metrics.insert(out->metrics.end(), mrow, mrow + kProcsMetricCols);
  }
  double prow[kProcsProcCols];
  prow[ProcsProcCol::pid] = static_cast<double>(pid);
  prow[ProcsProcCol::pasid] = rows.pasid;
  prow[ProcsProcCol::firstQueue] = first_queue;
  prow[ProcsProcCol::queueCount] = static_cast<double>(rows.queues.size());
  prow[ProcsProcCol::firstMetric] = first_metric;
  prow[ProcsProcCol::metricCount] = static_cast<double>(rows.metrics.size());
  out->procs.insert(out->procs.end(), prow, prow + kProcsProcCols);
  out->issues.insert(out->issues.end(), rows.issues.begin(), rows.issues.end());
}

ProcsRaw ProcsWalker::Read(const std::vector<double>* pids) {
  stats_ = WalkStats{};
  ProcsRaw out;
  const std::string dir = UnderRoot(root_, kProc);
  std::vector<sysfs::DirEntry> entries;
  if (const char* code = sysfs::ListDirEntries(dir, &entries)) {
    out.issues.push_back(CannotRead(dir, code));
    known_.clear();
    return out;
  }
  const bool counters_due = reads_++ % counters_every_ == 0;
  std::unordered_map<uint64_t, KnownProcess> next;
  {
    const IoSpan io;
    proc_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // -1: listings use whole paths
  }
  // closed however this read ends (std::bad_alloc included)
  struct CloseAtEnd {
    int* fd;
    ~CloseAtEnd() {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  } close_at_end{&proc_fd_};
  for (const auto& [pid, ino] : sysfs::NumericEntriesWithIno(entries, 10)) {
    if (pids && std::find(pids->begin(), pids->end(), static_cast<double>(pid)) == pids->end()) continue;
    ++stats_.processes;
    const std::string base = dir + "/" + std::to_string(pid);
    const auto it = incremental_ ? known_.find(pid) : known_.end();
    // a pid directory with another inode is another process that got the same pid
    const KnownProcess* k = it != known_.end() && it->second.ino == ino ? &it->second : nullptr;
    ProcRows rows;
    QueueMemo learned;
    if (k && k->clean && !counters_due) {
      rows.pasid = k->pasid;
      rows.metrics = k->metrics;
      Issues issues(&rows.issues, &text_);
      if (!k->has_queues || ReadQueues(base, pid, &k->queues, &learned, &rows, &issues) == nullptr) {
        Append(pid, rows, &out);
        next.emplace(pid, KnownProcess{ino, true, rows.pasid, std::move(rows.metrics), std::move(learned), k->has_queues});
        continue;
      }
      // queues/ unreadable (the process is exiting?): read it as a full walk would, with its issues
      rows = ProcRows{};
      learned.clear();
    }
    ReadIssue instead;
    if (!ReadProcess(base, pid, k ? &k->queues : nullptr, incremental_ ? &learned : nullptr, &rows, &instead)) {
      out.issues.push_back(std::move(instead));
      continue;
    }
    Append(pid, rows, &out);
    if (incremental_) {
      const bool clean = rows.issues.size() == rows.queue_issues;
      next.emplace(pid, KnownProcess{ino, clean, rows.pasid, std::move(rows.metrics), std::move(learned), rows.has_queues});
    }
  }
  known_.swap(next);
  return out;
}

ProcsRaw ReadKfdProcs(const std::string& sysfs_root, const std::vector<double>* pids) {
  return ProcsWalker(sysfs_root, false, 1).Read(pids);
}

}  // namespace kfd
}  // namespace gpucolo
