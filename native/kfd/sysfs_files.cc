// The TS side uses fs.readdirSync, readInputFile (src/input-file.ts; input_file.h here) and
// fs.existsSync; the helpers below reproduce what those report (err.code is the errno name, or
// ENOTREG) so that both readers give the same issues on the same tree.
#include "sysfs_files.h"

#include "input_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace gpucolo {
namespace kfd {
namespace sysfs {
namespace {

// Node rejects a path with a NUL byte before any system call; the TS readers catch that error
// like any other, so it becomes an issue with this code.
const char kInvalidPath[] = "ERR_INVALID_ARG_VALUE";

bool HasNul(const std::string& path) { return path.find('\0') != std::string::npos; }

}  // namespace

const char kGpuId[] = "a gpu_id (a number >= 0)";

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

const char* ListDirEntries(const std::string& path, std::vector<DirEntry>* entries, int dirfd, const char* rel) {
  if (HasNul(path)) return kInvalidPath;
  entries->clear();
  {
    const IoSpan io;
    // open + getdents64 into a reused buffer: opendir() adds an fstat() and a heap buffer per
    // directory, and the incremental walk lists one directory per process every sample
    int fd;
    do {
      fd = ::openat(dirfd, rel ? rel : path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return InputErrorName(errno);
    thread_local std::vector<char> buf(32 * 1024);
    for (;;) {
      const ssize_t n = ::getdents64(fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return InputErrorName(err);
      }
      if (n == 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const dirent64*>(buf.data() + at);
        at += e->d_reclen;
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        entries->push_back(DirEntry{e->d_name, static_cast<uint64_t>(e->d_ino)});
      }
    }
    ::close(fd);
  }
  // Only ASCII names change the output (numbers, pasid, queues, vram_N ...), and bytewise order
  // agrees with the UTF-16 order TS sorts by on ASCII.
  std::sort(entries->begin(), entries->end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return nullptr;
}

const char* ListDir(const std::string& path, std::vector<std::string>* names) {
  std::vector<DirEntry> entries;
  names->clear();
  if (const char* code = ListDirEntries(path, &entries)) return code;
  names->reserve(entries.size());
  for (DirEntry& e : entries) names->push_back(std::move(e.name));
  return nullptr;
}

bool Exists(const std::string& path) {
  if (HasNul(path)) return false;
  const IoSpan io;
  return ::access(path.c_str(), F_OK) == 0;
}

ReadIssue CannotRead(const std::string& path, const char* code, Severity severity) {
  return ReadIssue{path, severity, "cannot read " + path + " (" + IssueCodeText(code, kMaxSysfsFileBytes) + ")", code};
}

size_t ChompedLength(const std::string& text) {
  size_t len = text.size();
  if (len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n') return len - 2;
  if (len > 0 && text[len - 1] == '\n') --len;
  return len;
}

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

std::string Printable(const std::string& s) {
  std::string out(s);
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

ReadIssue BadNumber(const std::string& path, const std::string& text, const char* what) {
  const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  return ReadIssue{path, Severity::kError, path + ": expected " + what + ", got \"" + Printable(shown) + "\"", std::string()};
}

bool Negative(double v) { return std::signbit(v); }

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

std::vector<uint64_t> NumericEntries(const std::vector<std::string>& names, size_t max_digits) {
  std::vector<uint64_t> ids;
  for (const std::string& n : names) {
    uint64_t v;
    if (NumericName(n, max_digits, &v)) ids.push_back(v);
  }
  std::stable_sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::pair<uint64_t, uint64_t>> NumericEntriesWithIno(const std::vector<DirEntry>& entries, size_t max_digits) {
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  for (const DirEntry& e : entries) {
    uint64_t v;
    if (NumericName(e.name, max_digits, &v)) ids.emplace_back(v, e.ino);
  }
  // no leading zeros: one name per number, so the order is that of NumericEntries
  std::stable_sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return ids;
}

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

}  // namespace sysfs
}  // namespace kfd
}  // namespace gpucolo
