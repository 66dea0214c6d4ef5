// How much CPU this host gives a timing test right now: the C++ side of test/helpers/load.ts.
//
// Most tests here only need things to happen (a kernel completes, a thread stops) and wait for
// that with deadlines that only guard against a hang. A few have a timing property as their point
// (two blocks run side by side, a high-priority stream is served first, a priority mechanism
// lowers a P99): on a host whose cores are taken by other processes they cannot be judged, and
// they SKIP with the measured numbers instead of failing. On a host that gives them their cores
// they still fail when the mechanism is broken. Two measurements:
//  - ObtainedCores(): a calibration spin, before a test, at the nice level of the threads the test
//    relies on: the CPU time that threads of that priority actually get from the scheduler.
//  - ForeignLoad: during a test, the CPU time other processes took (/proc/stat minus our own
//    getrusage), so a timing check that failed can tell a busy host from a broken mechanism.
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "test_util.h"

namespace gpucolo_test {

/**
 * Foreign CPU load (in cores) above which a failed timing check is not held against the code: a
 * quarter of a core taken by other processes is enough to delay a worker by a scheduler slice
 * (a few ms), which is the size of what the timing checks here distinguish. An idle host shows a
 * few hundredths.
 */
constexpr double kBusyForeignCores = 0.25;

/** /proc/loadavg's 1-minute figure; -1 when unreadable. */
inline double LoadAverage1() {
  double v = -1;
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f != nullptr) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

inline std::string HostLoadText() {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "load average %.1f on %ld CPU(s)", LoadAverage1(), sysconf(_SC_NPROCESSORS_ONLN));
  return buf;
}

inline uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

/**
 * Spins `threads` threads at nice `nice` (only ever lowered: the test's own threads keep theirs)
 * for window_ns of wall time and returns the cores they obtained together (their CPU time over
 * the window). An idle host gives ~threads; a host whose cores are busy at a better nice level
 * gives what a worker of that nice level would get.
 */
inline double ObtainedCores(int threads, int nice, uint64_t window_ns) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<uint64_t> cpu(static_cast<size_t>(threads), 0);
  uint64_t start = 0;
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      const uint64_t c0 = ThreadCpuNs();
      const uint64_t end = start + window_ns;
      volatile double x = 0;
      while (MonotonicNs() < end) x = x + 1;
      cpu[static_cast<size_t>(i)] = ThreadCpuNs() - c0;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  start = MonotonicNs();
  go.store(true);
  for (std::thread& t : pool) t.join();
  const double wall = static_cast<double>(MonotonicNs() - start);
  double sum = 0;
  for (uint64_t c : cpu) sum += static_cast<double>(c);
  return wall > 0 ? sum / wall : 0;
}

/** CPU time used by other processes while this object lives (host minus this process). */
class ForeignLoad {
 public:
  ForeignLoad() : t0_(MonotonicNs()) { Read(&host0_, &self0_); }

  /** the cores other processes used on average since construction (steal time included) */
  double Cores() const {
    double host = 0, self = 0;
    Read(&host, &self);
    const double wall = static_cast<double>(MonotonicNs() - t0_) / 1e9;
    if (host0_ <= 0 || wall <= 0) return 0;  // no /proc/stat: nothing to say
    const double foreign = ((host - host0_) - (self - self0_)) / wall;
    return foreign > 0 ? foreign : 0;
  }

  bool Busy(double threshold = kBusyForeignCores) const { return Cores() > threshold; }

 private:
  /** CPU seconds of the whole host (user+nice+system+irq+softirq+steal) and of this process. */
  static void Read(double* host, double* self) {
    *host = 0;
    std::FILE* f = std::fopen("/proc/stat", "r");
    if (f != nullptr) {
      unsigned long long v[8] = {0};
      if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                      &v[7]) == 8)
        *host = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / static_cast<double>(sysconf(_SC_CLK_TCK));
      std::fclose(f);
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    *self = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }

  uint64_t t0_;
  double host0_ = 0, self0_ = 0;
};

/** A timing check that did not hold: a failure on a quiet host, a skip (with the numbers) on a busy one. */
[[noreturn]] inline void TimingFailed(const char* file, int line, const char* what, const ForeignLoad& load) {
  const double foreign = load.Cores();
  char buf[160];
  std::snprintf(buf, sizeof(buf), " (other processes used %.2f cores meanwhile; %s)", foreign, HostLoadText().c_str());
  if (foreign > kBusyForeignCores)
    Skip(std::string("timing check ") + what + " cannot be judged on a busy host" + buf);
  Fail(file, line, std::string("CHECK_TIMING(") + what + ")" + buf);
}

}  // namespace gpucolo_test

/**
 * A check of a timing property (an upper bound, an order that depends on scheduling): holds, or
 * the test fails on a quiet host and is skipped on a busy one (`load`: a ForeignLoad opened at the
 * start of what the check is about).
 */
#define CHECK_TIMING(cond, load)                                                        \
  do {                                                                                  \
    if (!(cond)) ::gpucolo_test::TimingFailed(__FILE__, __LINE__, #cond, (load));       \
  } while (0)
