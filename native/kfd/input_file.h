// Reading input files in the native core: only regular files, each kind with a size cap. Twin of
// src/input-file.ts (same rule, same caps for debugfs and sysfs, same codes and words).
//
// The file is opened with O_RDONLY | O_NONBLOCK | O_CLOEXEC (opening a FIFO never waits for a
// writer) and fstat()ed on that descriptor: a directory is EISDIR (as read() would say), anything
// else that is not a regular file (a FIFO, /dev/zero, a socket) is refused with kErrNotRegular
// ("ENOTREG"), never read. A regular file is read until EOF but never past the cap (EFBIG): live
// sysfs, procfs and debugfs files report a size of 0 or 4096 in stat whatever they hold, so the
// size in stat only refuses early; the cap holds on the bytes read.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace gpucolo {
namespace kfd {

/** One sysfs or procfs value file (INPUT_LIMITS.sysfs in input-file.ts): 1 MiB. */
constexpr size_t kMaxSysfsFileBytes = size_t{1} << 20;
/** debugfs kfd/mqds, hqds, rls (INPUT_LIMITS.debugfs): 64 MiB; an 8-GPU hqds is a few MB. */
constexpr size_t kMaxDebugfsFileBytes = size_t{64} << 20;

/** Not an errno: the path is not a regular file (code "ENOTREG"). */
constexpr int kErrNotRegular = -1;

/**
 * Wall time the calling thread spends inside file-system calls (opening, reading and closing
 * files, listing directories), summed while `on`: the sampler turns it on for its own thread to
 * tell the kernel's side of a sample (sysfs/debugfs show_* handlers, path walks) from gpucolo's
 * own work. Off (the default) it costs one branch per call. Thread-local: samplers and the JS
 * thread never mix their sums.
 */
struct IoClock {
  bool on = false;
  int64_t ns = 0;
};
inline thread_local IoClock tl_io_clock;

/** Adds the wall time of its scope to tl_io_clock when that is on. */
class IoSpan {
 public:
  IoSpan() : start_(tl_io_clock.on ? Now() : -1) {}
  ~IoSpan() {
    if (start_ >= 0) tl_io_clock.ns += Now() - start_;
  }
  IoSpan(const IoSpan&) = delete;
  IoSpan& operator=(const IoSpan&) = delete;

 private:
  static int64_t Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  const int64_t start_;
};

/** The code of a ReadInputFile error: "ENOTREG", or the errno's name. */
inline const char* InputErrorName(int err) {
  if (err == kErrNotRegular) return "ENOTREG";
  const char* name = strerrorname_np(err);
  return name ? name : "EIO";
}

/** "1 MiB" / "64 MiB": the cap as input-file.ts formatBytes() writes it (whole MiB only). */
inline std::string CapText(size_t max_bytes) { return std::to_string(max_bytes >> 20) + " MiB"; }

/**
 * The text in parentheses of a "cannot read <path> (...)" issue: the code, with words for the two
 * codes that are not plain errnos (issueCodeText in input-file.ts).
 */
inline std::string IssueCodeText(const char* code, size_t max_bytes) {
  if (std::strcmp(code, "ENOTREG") == 0) return "ENOTREG: not a regular file";
  if (std::strcmp(code, "EFBIG") == 0) return "EFBIG: larger than " + CapText(max_bytes);
  return code;
}

/**
 * Reads a whole regular file of at most max_bytes into *out (a std::string or std::vector<char>,
 * reused: it only grows; *len = bytes read). Returns 0, an errno (EISDIR for a directory, EFBIG
 * over the cap, EINVAL for a path with a NUL) or kErrNotRegular.
 */
template <class Buf>
int ReadInputFile(const std::string& path, size_t max_bytes, Buf* out, size_t* len) {
  *len = 0;
  if (path.find('\0') != std::string::npos) return EINVAL;
  const IoSpan io;  // open .. close: the buffer growth in between is small next to the calls
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return err;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return S_ISDIR(st.st_mode) ? EISDIR : kErrNotRegular;
  }
  if (st.st_size > 0 && static_cast<unsigned long long>(st.st_size) > max_bytes) {
    ::close(fd);
    return EFBIG;
  }
  // stat's size is a hint (0 or 4096 for pseudo-files): room for it and one byte more (a page at
  // least), doubled while the file goes on, never past cap + 1 (the byte that tells "too large")
  const size_t cap_plus = max_bytes + 1;
  size_t want = static_cast<size_t>(st.st_size) + 1;
  if (want < 4097) want = 4097;
  if (want > cap_plus) want = cap_plus;
  if (out->size() < want) out->resize(want);
  size_t n = 0;
  for (;;) {
    if (n == out->size()) {
      if (n > max_bytes) break;
      const size_t grown = out->size() * 2 < cap_plus ? out->size() * 2 : cap_plus;
      out->resize(grown);
    }
    const ssize_t got = ::read(fd, &(*out)[0] + n, out->size() - n);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return err;
    }
    if (got == 0) break;
    n += static_cast<size_t>(got);
  }
  ::close(fd);
  if (n > max_bytes) return EFBIG;
  *len = n;
  return 0;
}

}  // namespace kfd
}  // namespace gpucolo
