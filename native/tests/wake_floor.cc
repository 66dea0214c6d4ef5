// gpucolo_wake_floor: what a thread costs that wakes at the tracer's pace and does nothing.
//
// The sampling thread sleeps to absolute deadlines one interval apart (native/trace/sampler.cc).
// On a small VM a wake-up after a long sleep is not free: caches, TLB and the branch predictors
// were used by others meanwhile, and a thread's CPU clock charges the refill to whoever wakes.
// bench/trace.ts runs this beside the tracer, interleaved, so the tracer's own CPU is read
// against what the bare wake-ups cost on the same host in the same minutes.
//
//   gpucolo_wake_floor <interval ns> <seconds> [--skip-ns NS]
//
// Sleeps with clock_nanosleep(TIMER_ABSTIME) to start + k * interval, as the sampler does, and
// touches nothing in between. Thread CPU time (CLOCK_THREAD_CPUTIME_ID) is counted from the first
// wake-up after --skip-ns (default 1 s: the tracer's figures also leave out their first second)
// to the end. Prints one JSON line: {"wakes":N,"cpu_ns":C,"wall_ns":W} or {"error":"..."}.
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

long long NowNs(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec;
}

timespec ToTimespec(long long ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1000000000LL);
  t.tv_nsec = static_cast<long>(ns % 1000000000LL);
  return t;
}

bool ParsePositive(const char* s, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0)) return false;
  *out = v;
  return true;
}

int Fail(const char* message) {
  std::printf("{\"error\":\"%s\"}\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double interval = 0;
  double seconds = 0;
  double skip = 1e9;
  if (argc < 3 || !ParsePositive(argv[1], &interval) || !ParsePositive(argv[2], &seconds)) {
    return Fail("usage: gpucolo_wake_floor <interval ns> <seconds> [--skip-ns NS]");
  }
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--skip-ns") == 0 && i + 1 < argc && ParsePositive(argv[i + 1], &skip)) {
      ++i;
    } else {
      return Fail("unknown or malformed option (--skip-ns NS)");
    }
  }
  if (interval < 1e5) return Fail("interval below 100 us");
  const long long step = static_cast<long long>(interval);
  const long long start = NowNs(CLOCK_MONOTONIC);
  const long long end = start + static_cast<long long>(seconds * 1e9);
  long long wakes = 0;
  long long cpu0 = -1;
  long long wall0 = 0;
  for (long long k = 1;; ++k) {
    const long long deadline = start + k * step;
    if (deadline > end) break;
    const timespec t = ToTimespec(deadline);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr) == EINTR) {
    }
    // the first wake-up past the skip starts the count; this one's own cost is left out
    if (cpu0 < 0) {
      if (deadline - start >= static_cast<long long>(skip)) {
        cpu0 = NowNs(CLOCK_THREAD_CPUTIME_ID);
        wall0 = NowNs(CLOCK_MONOTONIC);
      }
      continue;
    }
    ++wakes;
  }
  if (cpu0 < 0) return Fail("the run ended before --skip-ns: nothing was counted");
  const long long cpu = NowNs(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  const long long wall = NowNs(CLOCK_MONOTONIC) - wall0;
  std::printf("{\"wakes\":%lld,\"cpu_ns\":%lld,\"wall_ns\":%lld}\n", wakes, cpu, wall);
  return 0;
}
