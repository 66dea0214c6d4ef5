// Twin of src/kfd/sysfs-ts.ts; read the two side by side. The TS side uses fs.readdirSync,
// readInputFile (src/input-file.ts; input_file.h here) and fs.existsSync; the helpers below
// reproduce what those report (err.code is the errno name, or ENOTREG) so that both readers give
// the same issues on the same tree.
#include "sysfs_reader.h"

#include "input_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace gpucolo {
namespace kfd {
namespace {

const char kTopologyNodes[] = "class/kfd/kfd/topology/nodes";
const char kProc[] = "class/kfd/kfd/proc";

// Node rejects a path with a NUL byte before any system call; the TS readers catch that error
// like any other, so it becomes an issue with this code.
const char kInvalidPath[] = "ERR_INVALID_ARG_VALUE";

const char* ErrnoName(int err) { return InputErrorName(err); }

bool HasNul(const std::string& path) { return path.find('\0') != std::string::npos; }

/**
 * readText() in sysfs-ts.ts (readInputFile, kind sysfs): nullptr, or the code of the error it
 * would throw. Only a regular file of at most 1 MiB is read: a FIFO or a device in a recorded tree
 * is ENOTREG (never opened for a blocking read), a larger file EFBIG.
 */
const char* ReadFile(const std::string& path, std::string* out) {
  if (HasNul(path)) return kInvalidPath;
  size_t len = 0;
  const int err = ReadInputFile(path, kMaxSysfsFileBytes, out, &len);
  if (err != 0) {
    out->clear();
    return InputErrorName(err);
  }
  out->resize(len);
  return nullptr;
}

/** fs.readdirSync (without "." and ".."), sorted bytewise; nullptr or the error code. */
const char* ListDir(const std::string& path, std::vector<std::string>* names) {
  if (HasNul(path)) return kInvalidPath;
  DIR* d = ::opendir(path.c_str());
  if (!d) return ErrnoName(errno);
  names->clear();
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) {
      const int err = errno;
      if (err != 0) {
        ::closedir(d);
        return ErrnoName(err);
      }
      break;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names->emplace_back(e->d_name);
  }
  ::closedir(d);
  // Only ASCII names change the output (numbers, pasid, queues, vram_N ...), and bytewise order
  // agrees with the UTF-16 order TS sorts by on ASCII.
  std::sort(names->begin(), names->end());
  return nullptr;
}

/** fs.existsSync */
bool Exists(const std::string& path) { return !HasNul(path) && ::access(path.c_str(), F_OK) == 0; }

ReadIssue CannotRead(const std::string& path, const char* code, Severity severity = Severity::kError) {
  return ReadIssue{path, severity, "cannot read " + path + " (" + IssueCodeText(code, kMaxSysfsFileBytes) + ")", code};
}

/** Length without one trailing newline, LF or CR LF (chompLine in sysfs-ts.ts). */
size_t ChompedLength(const std::string& text) {
  size_t len = text.size();
  if (len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n') return len - 2;
  if (len > 0 && text[len - 1] == '\n') --len;
  return len;
}

/** ^-?\d{1,20}$ after dropping one trailing newline, as Number() reads it. */
bool ParseSysfsNumber(const std::string& text, double* value) {
  size_t len = ChompedLength(text);
  size_t i = 0;
  if (i < len && text[i] == '-') ++i;
  const size_t digits = len - i;
  if (digits < 1 || digits > 20) return false;
  for (size_t j = i; j < len; ++j) {
    if (text[j] < '0' || text[j] > '9') return false;
  }
  // strtod rounds correctly like Number() and keeps "-0" as -0
  const std::string t = text.substr(0, len);
  *value = std::strtod(t.c_str(), nullptr);
  return true;
}

/** Replaces bytes outside 0x20..0x7e with '?' (the /[^\x20-\x7e]/g replace in TS). */
std::string Printable(const std::string& s) {
  std::string out(s);
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

ReadIssue BadNumber(const std::string& path, const std::string& text, const char* what = "a number") {
  const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  return ReadIssue{path, Severity::kError, path + ": expected " + what + ", got \"" + Printable(shown) + "\"", std::string()};
}

// A gpu_id is unsigned: a negative one is an error, not a value (-1 would read as "unreadable").
const char kGpuId[] = "a gpu_id (a number >= 0)";
bool Negative(double v) { return std::signbit(v); }

/** A name made of 1..max_digits ASCII digits without a leading zero (sysfs prints "%u"). */
bool NumericName(const std::string& name, size_t max_digits, uint64_t* value) {
  if (name.empty() || name.size() > max_digits) return false;
  if (name.size() > 1 && name[0] == '0') return false;
  uint64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *value = v;
  return true;
}

/** Numeric entries (TS: filter + map(Number) + numeric sort); paths use the number, not the name. */
std::vector<uint64_t> NumericEntries(const std::vector<std::string>& names, size_t max_digits) {
  std::vector<uint64_t> ids;
  for (const std::string& n : names) {
    uint64_t v;
    if (NumericName(n, max_digits, &v)) ids.push_back(v);
  }
  std::stable_sort(ids.begin(), ids.end());
  return ids;
}

/** ^(prefix)_(\d{1,10})$ for one of two prefixes; which = 0 or 1. */
bool MatchPrefixedNumber(const std::string& e, const char* p0, const char* p1, int* which, uint64_t* number) {
  const char* prefixes[2] = {p0, p1};
  for (int w = 0; w < 2; ++w) {
    const size_t pl = std::strlen(prefixes[w]);
    if (e.size() > pl + 1 && e.compare(0, pl, prefixes[w]) == 0 && e[pl] == '_' && NumericName(e.substr(pl + 1), 10, number)) {
      *which = w;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string UnderRoot(const std::string& root, const char* rel) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r == "/" ? "/" + std::string(rel) : r + "/" + rel;
}

TopologyRaw ReadTopology(const std::string& sysfs_root) {
  TopologyRaw out;
  const std::string dir = UnderRoot(sysfs_root, kTopologyNodes);
  std::vector<std::string> names;
  if (const char* code = ListDir(dir, &names)) {
    out.issues.push_back(CannotRead(dir, code));
    return out;
  }
  std::string gpu_text, name, props;
  for (uint64_t id : NumericEntries(names, 9)) {
    const std::string base = dir + "/" + std::to_string(id);
    const std::string gpu_path = base + "/gpu_id";
    if (const char* code = ReadFile(gpu_path, &gpu_text)) {
      out.issues.push_back(CannotRead(gpu_path, code));
      continue;
    }
    double gpu_id;
    if (!ParseSysfsNumber(gpu_text, &gpu_id)) {
      out.issues.push_back(BadNumber(gpu_path, gpu_text));
      continue;
    }
    if (Negative(gpu_id)) {
      out.issues.push_back(BadNumber(gpu_path, gpu_text, kGpuId));
      continue;
    }
    const std::string name_path = base + "/name";
    if (const char* code = ReadFile(name_path, &name)) {
      out.issues.push_back(CannotRead(name_path, code));
      continue;
    }
    name.resize(ChompedLength(name));
    const std::string props_path = base + "/properties";
    if (const char* code = ReadFile(props_path, &props)) {
      out.issues.push_back(CannotRead(props_path, code));
      continue;
    }
    TopologyNodeRaw node{static_cast<double>(id), gpu_id, name, {}, {}};
    // props.split('\n') minus a final empty piece
    std::vector<std::pair<size_t, size_t>> lines;
    size_t pos = 0;
    for (;;) {
      const size_t nl = props.find('\n', pos);
      if (nl == std::string::npos) {
        lines.emplace_back(pos, props.size());
        break;
      }
      lines.emplace_back(pos, nl);
      pos = nl + 1;
    }
    if (lines.back().first == lines.back().second) lines.pop_back();
    for (size_t i = 0; i < lines.size(); ++i) {
      size_t line_end = lines[i].second;
      if (line_end > lines[i].first && props[line_end - 1] == '\r') --line_end;
      const std::string l = props.substr(lines[i].first, line_end - lines[i].first);
      const size_t sp = l.find(' ');
      if (sp == std::string::npos || sp == 0 || sp == l.size() - 1) {
        out.issues.push_back(ReadIssue{props_path, Severity::kWarning,
                                       props_path + ":" + std::to_string(i + 1) + ": malformed property line \"" +
                                           Printable(l.substr(0, 40)) + "\"",
                                       std::string()});
        continue;
      }
      node.keys.push_back(l.substr(0, sp));
      node.values.push_back(l.substr(sp + 1));
    }
    out.nodes.push_back(std::move(node));
  }
  return out;
}

ProcsRaw ReadKfdProcs(const std::string& sysfs_root, const std::vector<double>* pids) {
  ProcsRaw out;
  const std::string dir = UnderRoot(sysfs_root, kProc);
  std::vector<std::string> names;
  if (const char* code = ListDir(dir, &names)) {
    out.issues.push_back(CannotRead(dir, code));
    return out;
  }
  std::vector<uint64_t> list = NumericEntries(names, 10);
  if (pids) {
    std::vector<uint64_t> kept;
    for (uint64_t p : list) {
      if (std::find(pids->begin(), pids->end(), static_cast<double>(p)) != pids->end()) kept.push_back(p);
    }
    list.swap(kept);
  }

  struct Metric {
    double code;
    double gpu;
    double value;
  };
  static const std::pair<const char*, int> kStatsFiles[] = {{"cu_occupancy", kMetricCuOccupancy}, {"evicted_ms", kMetricEvictedMs}};
  static const std::pair<const char*, int> kCounterFiles[] = {
      {"faults", kMetricFaults}, {"page_in", kMetricPageIn}, {"page_out", kMetricPageOut}};

  std::string text;
  std::vector<std::string> entries, sub, qnames;
  for (uint64_t pid : list) {
    const std::string base = dir + "/" + std::to_string(pid);
    std::vector<ReadIssue> mine;
    bool saw_enoent = false;
    auto failed = [&](const std::string& path, const char* code) {
      const bool gone = std::strcmp(code, "ENOENT") == 0;
      saw_enoent = saw_enoent || gone;
      mine.push_back(CannotRead(path, code, gone ? Severity::kWarning : Severity::kError));
    };
    // num() in TS: the value, or nothing (after an issue)
    auto num = [&](const std::string& path, double* v, bool gpu_id = false) -> bool {
      if (const char* code = ReadFile(path, &text)) {
        failed(path, code);
        return false;
      }
      if (!ParseSysfsNumber(text, v)) {
        mine.push_back(BadNumber(path, text));
        return false;
      }
      if (gpu_id && Negative(*v)) {
        mine.push_back(BadNumber(path, text, kGpuId));
        return false;
      }
      return true;
    };
    auto list_dir = [&](const std::string& path, std::vector<std::string>* into) -> bool {
      if (const char* code = ListDir(path, into)) {
        failed(path, code);
        return false;
      }
      return true;
    };

    if (!list_dir(base, &entries)) {
      if (saw_enoent) {
        out.issues.push_back(ReadIssue{base, Severity::kWarning, "process " + std::to_string(pid) + " exited while being read", std::string()});
      } else {
        out.issues.push_back(mine[0]);
      }
      continue;
    }
    const double row = static_cast<double>(out.procs.size() / kProcsProcCols);
    const size_t first_queue = out.queues.size() / kProcsQueueCols;
    double pasid = -1;
    std::vector<Metric> mets;
    for (const std::string& e : entries) {
      int which;
      uint64_t gpu;
      if (e == "pasid") {
        double v;
        pasid = num(base + "/pasid", &v) ? v : -1;
      } else if (MatchPrefixedNumber(e, "vram", "sdma", &which, &gpu)) {
        double v;
        if (num(base + "/" + e, &v)) mets.push_back(Metric{static_cast<double>(which == 0 ? kMetricVram : kMetricSdma), static_cast<double>(gpu), v});
      } else if (MatchPrefixedNumber(e, "stats", "counters", &which, &gpu)) {
        if (!list_dir(base + "/" + e, &sub)) continue;
        const auto* files = which == 0 ? kStatsFiles : kCounterFiles;
        const size_t nfiles = which == 0 ? 2 : 3;
        for (size_t f = 0; f < nfiles; ++f) {
          if (std::find(sub.begin(), sub.end(), files[f].first) == sub.end()) continue;
          double v;
          if (num(base + "/" + e + "/" + files[f].first, &v)) mets.push_back(Metric{static_cast<double>(files[f].second), static_cast<double>(gpu), v});
        }
      } else if (e == "queues") {
        if (!list_dir(base + "/queues", &qnames)) continue;
        for (uint64_t qid : NumericEntries(qnames, 10)) {
          const std::string q = base + "/queues/" + std::to_string(qid);
          const size_t before = mine.size();
          double type = -1, size = -1, gpu_id = -1;
          if (!num(q + "/type", &type)) type = -1;
          if (!num(q + "/size", &size)) size = -1;
          if (!num(q + "/gpuid", &gpu_id, true)) gpu_id = -1;
          if (mine.size() > before && !Exists(q)) {
            // destroyed while we read it: one note instead of three failed reads
            mine.resize(before);
            mine.push_back(ReadIssue{q, Severity::kWarning,
                                     "queue " + std::to_string(qid) + " of process " + std::to_string(pid) + " vanished while being read",
                                     std::string()});
            continue;
          }
          const double qrow[kProcsQueueCols] = {row, static_cast<double>(qid), type, size, gpu_id};
          out.queues.insert(out.queues.end(), qrow, qrow + kProcsQueueCols);
        }
      }
    }
    // gone by now: it exited while we read it, whatever we managed to read is stale
    if (!Exists(base)) {
      out.queues.resize(first_queue * kProcsQueueCols);
      out.issues.push_back(ReadIssue{base, Severity::kWarning, "process " + std::to_string(pid) + " exited while being read", std::string()});
      continue;
    }
    // metrics ordered by (gpu, code) so both readers agree whatever the directory order;
    // stable like Array.prototype.sort, for duplicates such as vram_1 and vram_01
    std::stable_sort(mets.begin(), mets.end(), [](const Metric& a, const Metric& b) {
      return a.gpu != b.gpu ? a.gpu < b.gpu : a.code < b.code;
    });
    const double first_metric = static_cast<double>(out.metrics.size() / kProcsMetricCols);
    for (const Metric& m : mets) {
      const double mrow[kProcsMetricCols] = {row, m.code, m.gpu, m.value};
      out.metrics.insert(out.metrics.end(), mrow, mrow + kProcsMetricCols);
    }
    const double prow[kProcsProcCols] = {static_cast<double>(pid), pasid, static_cast<double>(first_queue),
                                         static_cast<double>(out.queues.size() / kProcsQueueCols - first_queue), first_metric,
                                         static_cast<double>(mets.size())};
    out.procs.insert(out.procs.end(), prow, prow + kProcsProcCols);
    out.issues.insert(out.issues.end(), mine.begin(), mine.end());
  }
  return out;
}

}  // namespace kfd
}  // namespace gpucolo
