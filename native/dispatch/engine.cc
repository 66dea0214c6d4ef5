#include "dispatch/engine.h"

#include "dispatch/cu_mask_layout.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace gpucolo {
namespace dispatch {

const char* ArrivalName(Arrival a) {
  switch (a) {
    case Arrival::kClosedLoop: return "closed-loop";
    case Arrival::kFixedRate: return "fixed-rate";
    case Arrival::kPoisson: return "poisson";
    case Arrival::kList: return "list";
  }
  return "?";
}

const char* MechanismName(Mechanism m) {
  switch (m) {
    case Mechanism::kNone: return "none";
    case Mechanism::kStreamPriority: return "stream-priority";
    case Mechanism::kCuMask: return "cu-mask";
    case Mechanism::kSmPartition: return "sm-partition";
    case Mechanism::kThrottle: return "throttle";
  }
  return "?";
}

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr uint64_t kDefaultWatchdogNs = 10000000000ull;  // 10 s
constexpr int64_t kCancelGraceNs = 100000000;            // 100 ms
constexpr int64_t kWaitSliceNs = 1000000;                // re-check conditions at least every 1 ms
constexpr int64_t kSleepSliceNs = 5000000;               // submitters notice stop within 5 ms
constexpr uint64_t kCpuPollPauseNs = 20000;
constexpr uint64_t kMinPollPauseNs = 1000;
constexpr int64_t kClosedLoopSpinNs = 200000;  // busy mode only
constexpr uint64_t kHostSliceNs = 100000;       // EEVDF slice asked for the engine's threads
constexpr int kOffsetTries = 32;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr uint64_t kNoTime = std::numeric_limits<uint64_t>::max();

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

struct SchedAttr {  // struct sched_attr of sched_setattr(2); glibc has no wrapper
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

/**
 * Setup of the engine's host threads (submitters, completion poller), best effort:
 *  - 1 ns timer slack: sleeps of a few us are only that short with it (the default is 50 us);
 *  - a short EEVDF slice (Linux >= 6.12: sched_runtime of a SCHED_OTHER thread; no privilege
 *    needed): a waking thread with a shorter slice may preempt a running one, so the poller and
 *    the submitters get a core promptly even next to busy threads (the cpu backend's workers).
 */
void HostThreadSetup() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#ifdef SYS_sched_setattr
  SchedAttr a{};
  a.size = sizeof(a);
  a.sched_policy = SCHED_OTHER;
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, 0);
  a.sched_nice = errno == 0 ? nice : 0;
  a.sched_runtime = kHostSliceNs;
  syscall(SYS_sched_setattr, 0, &a, 0u);
#endif
}

void SleepUntilAbs(int64_t abs_ns) {
  timespec ts;
  ts.tv_sec = abs_ns / 1000000000ll;
  ts.tv_nsec = abs_ns % 1000000000ll;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::chrono::steady_clock::time_point SteadyAt(int64_t abs_ns) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC on Linux
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(abs_ns));
}

/**
 * Wakes threads waiting for a condition over atomics (completions, the throttle window). The
 * notifying side skips the mutex and the syscall while nobody waits; waits are sliced, so a
 * missed wake-up costs at most kWaitSliceNs.
 */
class Notifier {
 public:
  void Notify() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
  }
  void NotifyAlways() {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
  }
  /** Returns when pred() holds, or at until_abs, or after one slice; the caller loops. */
  template <class Pred>
  void WaitSlice(Pred pred, int64_t until_abs) {
    std::unique_lock<std::mutex> lock(mu_);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!pred()) {
      const int64_t until = std::min(until_abs, NowNs() + kWaitSliceNs);
      cv_.wait_until(lock, SteadyAt(until));
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> waiters_{0};
};

/** Intended arrival times of an open-loop stream, relative to the origin. */
class Schedule {
 public:
  explicit Schedule(const StreamSpec& s)
      : spec_(s), rng_(s.seed), exp_(s.arrival == Arrival::kPoisson && s.rate_hz > 0 ? s.rate_hz : 1.0) {}
  /** false when the schedule has no more requests */
  bool Next(int64_t* t_rel) {
    switch (spec_.arrival) {
      case Arrival::kFixedRate:
        *t_rel = static_cast<int64_t>(std::llround(static_cast<double>(i_++) * 1e9 / spec_.rate_hz));
        return true;
      case Arrival::kPoisson:
        t_ += exp_(rng_) * 1e9;
        *t_rel = static_cast<int64_t>(std::llround(t_));
        return true;
      case Arrival::kList:
        if (i_ >= spec_.times_ns.size()) return false;
        *t_rel = static_cast<int64_t>(spec_.times_ns[i_++]);
        return true;
      case Arrival::kClosedLoop:
        break;
    }
    return false;
  }

 private:
  const StreamSpec& spec_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exp_;
  uint64_t i_ = 0;
  double t_ = 0;
};

struct StreamState {
  const StreamSpec* spec = nullptr;
  StreamResult* res = nullptr;
  gpucolo_stream* stream = nullptr;
  bool throttled = false;  // a low-priority stream under kThrottle
  uint64_t cap = GPUCOLO_SLOTS - 1;
  // submitter-owned: res->intended_ns, submit_ns, warmup; launch errors
  int launch_status = GPUCOLO_OK;
  uint64_t dropped = 0;
  // completion-thread-owned; device times raw (device clock), kNoTime when poll() failed
  std::vector<uint64_t> dstart, dend;
  std::vector<double> complete;
  uint64_t poll_errors = 0;
  std::string poll_error;
  int poll_status = GPUCOLO_OK;
  // shared
  std::atomic<uint64_t> submitted{0};
  std::atomic<uint64_t> completed{0};
  std::unique_ptr<std::atomic<int64_t>[]> done_at{new std::atomic<int64_t>[GPUCOLO_SLOTS]};  // abs ns, by launch % SLOTS
  std::atomic<int64_t> next_due{kNever};  // abs ns of the next request not yet submitted
  std::atomic<bool> submitter_done{false};
  std::thread thread;
};

struct Ctx {
  const RunSpec* spec = nullptr;
  const gpucolo_gpu_api* api = nullptr;
  int64_t origin = 0;
  int64_t end_abs = kNever;  // origin + duration
  std::atomic<bool> stop{false};
  std::atomic<bool> completion_stop{false};
  Notifier notifier;
  std::atomic<uint32_t> lp_inflight{0};
  uint32_t throttle_k = 1;
  std::vector<StreamState*> hp;
  uint64_t poll_pause_ns = 0;
  int64_t submit_spin_ns = 0;
};

bool HighPriorityPending(const Ctx& c, int64_t now) {
  for (const StreamState* h : c.hp) {
    if (h->next_due.load(std::memory_order_acquire) <= now) return true;
    if (h->submitted.load(std::memory_order_acquire) > h->completed.load(std::memory_order_acquire)) return true;
  }
  return false;
}

/** Sleeps (then spins the last submit_spin_ns) until due; false if the run is stopped. */
bool WaitUntilDue(Ctx& c, int64_t due) {
  for (;;) {
    if (c.stop.load(std::memory_order_relaxed)) return false;
    const int64_t now = NowNs();
    if (now >= due) return true;
    const int64_t wake = due - c.submit_spin_ns;
    if (now < wake)
      SleepUntilAbs(std::min(wake, now + kSleepSliceNs));
    else
      CpuRelax();
  }
}

/**
 * Waits until launch i of st may be submitted: the slot ring has room and, for a throttled
 * low-priority stream, no high-priority request is pending and the window has room (a unit of
 * it is taken here). false if the run is stopped.
 */
bool WaitForRoom(Ctx& c, StreamState& st, uint64_t i) {
  auto has_slot = [&] { return i - st.completed.load(std::memory_order_acquire) < st.cap; };
  for (;;) {
    if (c.stop.load(std::memory_order_relaxed)) return false;
    if (has_slot()) {
      if (!st.throttled) return true;
      if (!HighPriorityPending(c, NowNs())) {
        uint32_t cur = c.lp_inflight.load(std::memory_order_acquire);
        while (cur < c.throttle_k) {
          if (c.lp_inflight.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) return true;
        }
      }
    }
    c.notifier.WaitSlice(
        [&] {
          if (c.stop.load(std::memory_order_relaxed)) return true;
          if (!has_slot()) return false;
          if (!st.throttled) return true;
          return !HighPriorityPending(c, NowNs()) && c.lp_inflight.load(std::memory_order_acquire) < c.throttle_k;
        },
        kNever);
  }
}

/** Launches request i; false (and the stream stops) on a launch error. */
bool Submit(Ctx& c, StreamState& st, uint64_t i, int64_t intended_abs) {
  StreamResult& r = *st.res;
  char err[256] = {0};
  const int64_t submit = NowNs();
  const int rc = c.api->launch(st.stream, &st.spec->kernel, static_cast<uint32_t>(i % GPUCOLO_SLOTS), err, sizeof(err));
  if (rc != GPUCOLO_OK) {
    if (st.throttled) c.lp_inflight.fetch_sub(1, std::memory_order_acq_rel);
    ++r.errors;
    st.launch_status = rc;
    r.error = Format("launch %llu: %s (status %d)", static_cast<unsigned long long>(i), err[0] ? err : "failed", rc);
    return false;
  }
  const double intended_rel = static_cast<double>(intended_abs - c.origin);
  r.intended_ns.push_back(intended_rel);
  r.submit_ns.push_back(static_cast<double>(submit - c.origin));
  r.warmup.push_back(intended_rel < static_cast<double>(c.spec->warmup_ns) ? 1 : 0);
  st.submitted.store(i + 1, std::memory_order_release);
  return true;
}

void OpenLoopSubmitter(Ctx& c, StreamState& st) {
  HostThreadSetup();
  const RunSpec& spec = *c.spec;
  Schedule sched(*st.spec);
  int64_t t_rel = 0;
  bool have = false;
  for (uint64_t i = 0;; ++i) {
    if (spec.max_launches != 0 && i >= spec.max_launches) break;
    have = sched.Next(&t_rel);
    if (!have || (spec.duration_ns != 0 && t_rel >= static_cast<int64_t>(spec.duration_ns))) {
      have = false;
      break;
    }
    const int64_t due = c.origin + t_rel;
    st.next_due.store(due, std::memory_order_release);
    if (!WaitUntilDue(c, due) || !WaitForRoom(c, st, i)) break;
    const bool ok = Submit(c, st, i, due);
    st.next_due.store(kNever, std::memory_order_release);
    if (!ok) {
      have = false;
      break;
    }
    have = false;
  }
  st.next_due.store(kNever, std::memory_order_release);
  // requests that had arrived (intended before the stop and before the end) but were never
  // submitted: reported, so a backlog cut off by the watchdog or a cancel is not silently lost
  if (have && st.launch_status == GPUCOLO_OK) {
    const int64_t stop_rel = NowNs() - c.origin;
    const int64_t limit = spec.duration_ns != 0 ? std::min<int64_t>(stop_rel, static_cast<int64_t>(spec.duration_ns)) : stop_rel;
    uint64_t n = st.res->intended_ns.size();
    while (have && t_rel < limit && (spec.max_launches == 0 || n < spec.max_launches)) {
      ++st.dropped;
      ++n;
      have = sched.Next(&t_rel);
    }
  }
  st.submitter_done.store(true, std::memory_order_release);
  c.notifier.Notify();  // a throttled stream may wait for this one to stop being pending
}

void ClosedLoopSubmitter(Ctx& c, StreamState& st) {
  HostThreadSetup();
  const RunSpec& spec = *c.spec;
  const uint64_t depth = std::min<uint64_t>(std::max<uint32_t>(st.spec->inflight, 1u), GPUCOLO_SLOTS - 1);
  for (uint64_t i = 0;; ++i) {
    if (spec.max_launches != 0 && i >= spec.max_launches) break;
    int64_t intended = c.origin;
    if (i >= depth) {
      const uint64_t freed_by = i - depth;  // the launch whose completion makes room for this one
      auto done = [&] { return st.completed.load(std::memory_order_acquire) > freed_by; };
      // with a busy-polling completion thread, spin a little before blocking: a short kernel's
      // round trip then costs no futex wake-up (a closed loop of empty kernels is the latency probe)
      if (c.poll_pause_ns == 0) {
        const int64_t spin_until = std::min(NowNs() + kClosedLoopSpinNs, c.end_abs);
        while (!done() && !c.stop.load(std::memory_order_relaxed) && NowNs() < spin_until) CpuRelax();
      }
      while (!done() && !c.stop.load(std::memory_order_relaxed) && NowNs() < c.end_abs)
        c.notifier.WaitSlice([&] { return done() || c.stop.load(std::memory_order_relaxed); }, c.end_abs);
      if (!done()) break;
      intended = st.done_at[freed_by % GPUCOLO_SLOTS].load(std::memory_order_acquire);
    }
    if (intended >= c.end_abs) break;
    if (!WaitForRoom(c, st, i)) break;
    if (!Submit(c, st, i, intended)) break;
  }
  st.submitter_done.store(true, std::memory_order_release);
  c.notifier.Notify();
}

void CompletionThread(Ctx& c, std::vector<std::unique_ptr<StreamState>>& states) {
  HostThreadSetup();
  // back-off: the pause doubles from kMinPollPauseNs up to poll_pause_ns over fruitless passes
  // and drops back after a completion, so bursts are followed closely and idle stretches cheaply
  uint64_t pause_ns = std::min<uint64_t>(kMinPollPauseNs, c.poll_pause_ns);
  while (!c.completion_stop.load(std::memory_order_acquire)) {
    bool progress = false;
    for (auto& sp : states) {
      StreamState& st = *sp;
      uint64_t done = st.completed.load(std::memory_order_relaxed);  // only this thread writes it
      const uint64_t submitted = st.submitted.load(std::memory_order_acquire);
      while (done < submitted) {
        uint64_t ds = 0, de = 0;
        const int rc = c.api->poll(st.stream, static_cast<uint32_t>(done % GPUCOLO_SLOTS), &ds, &de);
        if (rc == 0) break;
        const int64_t now = NowNs();
        if (rc > 0) {
          st.dstart.push_back(ds);  // device clock; mapped onto host time at the end
          st.dend.push_back(de);
        } else {
          st.dstart.push_back(kNoTime);
          st.dend.push_back(kNoTime);
          if (st.poll_errors++ == 0) {
            st.poll_status = rc;
            st.poll_error = Format("poll of launch %llu failed (status %d)", static_cast<unsigned long long>(done), rc);
          }
        }
        st.complete.push_back(static_cast<double>(now - c.origin));
        st.done_at[done % GPUCOLO_SLOTS].store(now, std::memory_order_release);
        if (st.throttled) c.lp_inflight.fetch_sub(1, std::memory_order_acq_rel);
        ++done;
        st.completed.store(done, std::memory_order_release);
        progress = true;
      }
    }
    if (progress) {
      c.notifier.Notify();
      pause_ns = std::min<uint64_t>(kMinPollPauseNs, c.poll_pause_ns);
    } else if (c.poll_pause_ns == 0) {
      CpuRelax();
    } else {
      timespec pause;
      pause.tv_sec = static_cast<time_t>(pause_ns / 1000000000ull);
      pause.tv_nsec = static_cast<long>(pause_ns % 1000000000ull);
      nanosleep(&pause, nullptr);
      pause_ns = std::min(pause_ns * 2, c.poll_pause_ns);
    }
  }
}

/**
 * device clock - host clock from the tightest of several brackets. Kept in integers: a device
 * clock counting from the epoch (CUDA's globaltimer) is ~1.7e18 ns, where a double's step is 256 ns.
 */
int MeasureOffset(const gpucolo_gpu_api* api, int device, int64_t* offset, double* width, std::string* error) {
  int64_t best = kNever;
  for (int t = 0; t < kOffsetTries; ++t) {
    char err[256] = {0};
    uint64_t dev = 0;
    const int64_t h0 = NowNs();
    const int rc = api->read_device_time(device, &dev, err, sizeof(err));
    const int64_t h1 = NowNs();
    if (rc != GPUCOLO_OK) {
      *error = Format("read_device_time: %s (status %d)", err[0] ? err : "failed", rc);
      return rc;
    }
    if (h1 - h0 < best) {
      best = h1 - h0;
      // (h0 + h1) / 2 without overflow; the difference of two 64-bit clocks as a double
      const int64_t mid = h0 + (h1 - h0) / 2;
      *offset = static_cast<int64_t>(dev) - mid;
      *width = static_cast<double>(best);
    }
  }
  return GPUCOLO_OK;
}

int BitsPerUnit(const gpucolo_device_info& info) { return info.cu_mask_bits_per_unit > 1 ? info.cu_mask_bits_per_unit : 1; }

/** Mask of compute units [from, to): bits_per_unit bits each (a WGP's two CUs on RDNA). */
std::vector<uint32_t> UnitRangeMask(int from, int to, int units, int bits_per_unit) {
  std::vector<uint32_t> mask(static_cast<size_t>((units * bits_per_unit + 31) / 32), 0u);
  for (int b = from * bits_per_unit; b < to * bits_per_unit; ++b) mask[static_cast<size_t>(b / 32)] |= 1u << (b % 32);
  return mask;
}

int Fail(RunResult* r, int status, std::string msg) {
  r->status = status;
  r->error = std::move(msg);
  return status;
}

/** Checks the spec; fills what the mechanism decides per stream (priority, mask, SMs). */
int Prepare(const RunSpec& spec, const std::atomic<bool>* cancel, const gpucolo_device_info& info, RunResult* r) {
  if (spec.streams.empty()) return Fail(r, GPUCOLO_ERR_INVALID, "no streams");
  if (spec.duration_ns == 0 && cancel == nullptr) {
    for (const auto& s : spec.streams)
      if (spec.max_launches == 0 && s.arrival != Arrival::kList)
        return Fail(r, GPUCOLO_ERR_INVALID,
                    Format("stream '%s' would never end: duration_ns 0 needs max_launches, a list or a cancel flag", s.name.c_str()));
  }
  for (const auto& s : spec.streams) {
    if (s.kernel.blocks == 0) return Fail(r, GPUCOLO_ERR_INVALID, Format("stream '%s': kernel has 0 blocks", s.name.c_str()));
    if ((s.arrival == Arrival::kFixedRate || s.arrival == Arrival::kPoisson) && !(s.rate_hz > 0 && std::isfinite(s.rate_hz)))
      return Fail(r, GPUCOLO_ERR_INVALID, Format("stream '%s': rate_hz must be > 0 (got %g)", s.name.c_str(), s.rate_hz));
    if (s.arrival == Arrival::kList && !std::is_sorted(s.times_ns.begin(), s.times_ns.end()))
      return Fail(r, GPUCOLO_ERR_INVALID, Format("stream '%s': times_ns must be non-decreasing", s.name.c_str()));
  }
  const int lo = std::min(info.priority_least, info.priority_greatest);
  const int hi = std::max(info.priority_least, info.priority_greatest);
  const int normal = std::min(std::max(0, lo), hi);  // the runtimes' default priority, 0, where it is in range
  const int cus = info.compute_units;
  const int bits_per_unit = BitsPerUnit(info);
  CuLayout layout;
  layout.compute_units = cus;
  layout.num_xcc = info.num_xcc > 0 ? info.num_xcc : 1;  // unknown: nothing to check against
  layout.num_se_per_xcc = info.num_se_per_xcc;
  layout.num_sh_per_se = info.num_sh_per_se;
  layout.bits_per_unit = bits_per_unit;
  const bool spatial = spec.mechanism == Mechanism::kCuMask || spec.mechanism == Mechanism::kSmPartition;
  int reserved = 0;
  if (spec.mechanism == Mechanism::kCuMask && !info.supports_cu_mask)
    return Fail(r, GPUCOLO_ERR_UNSUPPORTED, Format("mechanism cu-mask: backend '%s' has no CU masks", spec.api->backend));
  if (spec.mechanism == Mechanism::kSmPartition && !info.supports_sm_partition)
    return Fail(r, GPUCOLO_ERR_UNSUPPORTED,
                Format("mechanism sm-partition: backend '%s' has no SM partitions", spec.api->backend));
  if (spatial) {
    if (!(spec.reserve > 0 && spec.reserve < 1))
      return Fail(r, GPUCOLO_ERR_INVALID, Format("reserve must be between 0 and 1 exclusive (got %g)", spec.reserve));
    reserved = static_cast<int>(std::ceil(spec.reserve * cus - 1e-9));
    if (reserved < 1 || reserved >= cus)
      return Fail(r, GPUCOLO_ERR_INVALID,
                  Format("reserve %g of %d compute units keeps %d for high-priority streams and %d for the others; both need at least 1",
                         spec.reserve, cus, reserved, cus - reserved));
  }
  if (spec.mechanism == Mechanism::kThrottle && spec.throttle_k == 0)
    return Fail(r, GPUCOLO_ERR_INVALID, "throttle_k must be at least 1");

  r->streams.clear();
  for (size_t i = 0; i < spec.streams.size(); ++i) {
    const StreamSpec& s = spec.streams[i];
    StreamResult sr;
    sr.name = s.name.empty() ? Format("stream%zu", i) : s.name;
    sr.high_priority = s.high_priority;
    sr.priority = normal;
    if (spec.mechanism == Mechanism::kStreamPriority) {
      sr.priority = s.high_priority ? info.priority_greatest : info.priority_least;
      if (s.level >= 0 && s.levels > 1) {
        if (s.level >= s.levels) return Fail(r, GPUCOLO_ERR_INVALID, Format("stream '%s': level %d of %d levels", sr.name.c_str(), s.level, s.levels));
        // level 0 -> least, levels-1 -> greatest; rounding keeps distinct levels distinct while the range allows
        const double span = static_cast<double>(info.priority_greatest) - info.priority_least;
        sr.priority = info.priority_least + static_cast<int>(std::lround(span * s.level / (s.levels - 1)));
      }
    }
    if (spec.mechanism == Mechanism::kCuMask) {
      sr.cu_mask = UnitRangeMask(s.high_priority ? 0 : reserved, s.high_priority ? reserved : cus, cus, bits_per_unit);
      const std::string hang = CheckCuMask(layout, sr.cu_mask);
      if (!hang.empty())
        return Fail(r, GPUCOLO_ERR_INVALID,
                    Format("mechanism cu-mask, reserve %g of %d compute units: stream '%s' (%s side, %d compute unit%s): %s",
                           spec.reserve, cus, sr.name.c_str(), s.high_priority ? "high-priority" : "low-priority",
                           s.high_priority ? reserved : cus - reserved, (s.high_priority ? reserved : cus - reserved) == 1 ? "" : "s",
                           hang.c_str()));
    }
    if (spec.mechanism == Mechanism::kSmPartition) {
      sr.sm_count_requested = s.high_priority ? reserved : cus - reserved;
      sr.sm_count = sr.sm_count_requested;  // until stream_info() says what was made
    }
    r->streams.push_back(std::move(sr));
  }
  return GPUCOLO_OK;
}

/**
 * What each stream got, once created: the partition as made, its compute units, and how many of
 * its blocks fill them (occupancy of the probe kernel at the stream's block size).
 */
void DescribeStreams(const RunSpec& spec, const gpucolo_device_info& info,
                     const std::vector<gpucolo_stream*>& streams, RunResult* r) {
  const gpucolo_gpu_api* api = spec.api;
  for (size_t i = 0; i < r->streams.size(); ++i) {
    StreamResult& sr = r->streams[i];
    int cus = info.compute_units;
    if (!sr.cu_mask.empty()) {
      int bits = 0;
      for (int u = 0; u < info.compute_units * BitsPerUnit(info); ++u) bits += MaskBit(sr.cu_mask, u) ? 1 : 0;
      cus = bits / BitsPerUnit(info);
    }
    gpucolo_stream_info si{};
    if (api->stream_info != nullptr && i < streams.size() && streams[i] != nullptr &&
        api->stream_info(streams[i], &si) == GPUCOLO_OK) {
      sr.sm_count = si.sm_count;
      if (si.compute_units > 0) cus = si.compute_units;
    } else if (sr.sm_count > 0) {
      cus = sr.sm_count;  // a backend that cannot say: what was asked
    }
    sr.compute_units = cus;
    int per_cu = 0;
    char err[256] = {0};
    if (api->max_active_blocks != nullptr &&
        api->max_active_blocks(spec.device, spec.streams[i].kernel.threads_per_block, &per_cu, err, sizeof err) == GPUCOLO_OK &&
        per_cu > 0) {
      sr.max_active_blocks_per_cu = per_cu;
      sr.fill_blocks = static_cast<uint64_t>(per_cu) * static_cast<uint64_t>(cus);
    }
  }
}

size_t ReserveHint(const RunSpec& spec, const StreamSpec& s) {
  double n = 4096;
  if (s.arrival == Arrival::kList) n = static_cast<double>(s.times_ns.size());
  if ((s.arrival == Arrival::kFixedRate || s.arrival == Arrival::kPoisson) && spec.duration_ns != 0)
    n = s.rate_hz * static_cast<double>(spec.duration_ns) / 1e9 * 1.2 + 16;
  if (spec.max_launches != 0) n = std::min(n, static_cast<double>(spec.max_launches));
  return static_cast<size_t>(std::min(n, 16.0 * 1024 * 1024));
}

using StreamStates = std::vector<std::unique_ptr<StreamState>>;

/** One Run's state, shared by its steps (the threads see `c` and `states`: both stay put). */
struct RunState {
  RunState(const RunSpec& s, const std::atomic<bool>* cancel_flag) : spec(s), api(s.api), cancel(cancel_flag) {}
  const RunSpec& spec;
  const gpucolo_gpu_api* api;
  const std::atomic<bool>* cancel;
  RunResult r;
  gpucolo_device_info info{};
  Ctx c;
  StreamStates states;
  char err[256] = {0};  // the backend's message of the last call that failed
  int64_t offset = 0;   // device clock - host clock, at the start
  int64_t watchdog = 0;
  bool timed_out = false;
  int64_t submit_phase_end = -1;
};

void DestroyStreams(RunState& s) {
  for (auto& st : s.states)
    if (st->stream != nullptr) s.api->stream_destroy(st->stream);
}

bool Cancelled(const RunState& s) { return s.cancel != nullptr && s.cancel->load(std::memory_order_relaxed); }

bool SubmittersDone(const StreamStates& states) {
  for (auto& st : states)
    if (!st->submitter_done.load(std::memory_order_acquire)) return false;
  return true;
}

bool AllCompleted(const StreamStates& states) {
  for (auto& st : states)
    if (st->completed.load(std::memory_order_acquire) < st->submitted.load(std::memory_order_acquire)) return false;
  return true;
}

/** The backend initialised and the device's facts in the result; GPUCOLO_OK or the failure (in r). */
int OpenDevice(RunState& s) {
  int rc = s.api->init(s.err, sizeof(s.err));
  if (rc != GPUCOLO_OK) return Fail(&s.r, rc, Format("%s init: %s", s.api->backend, s.err));
  rc = s.api->device_info(s.spec.device, &s.info, s.err, sizeof(s.err));
  if (rc != GPUCOLO_OK) return Fail(&s.r, rc, Format("%s device_info(%d): %s", s.api->backend, s.spec.device, s.err));
  s.r.compute_units = s.info.compute_units;
  s.r.priority_least = s.info.priority_least;
  s.r.priority_greatest = s.info.priority_greatest;
  return GPUCOLO_OK;
}

/** The run-wide settings the threads read: throttle window, poll pause, submit spin. */
void ConfigureCtx(RunState& s) {
  const RunSpec& spec = s.spec;
  Ctx& c = s.c;
  c.spec = &spec;
  c.api = s.api;
  c.throttle_k = spec.throttle_k;
  c.poll_pause_ns = spec.poll_pause_ns != kAutoPollPause ? spec.poll_pause_ns
                    : std::strcmp(s.api->backend, "cpu") == 0 ? kCpuPollPauseNs
                                                              : 0;
  c.submit_spin_ns = static_cast<int64_t>(std::min<uint64_t>(spec.submit_spin_ns, 1000000000ull));
  s.r.poll_pause_ns = c.poll_pause_ns;
}

/** One backend stream per stream spec, its vectors reserved; a failure destroys the streams made. */
int CreateStreams(RunState& s) {
  const RunSpec& spec = s.spec;
  for (size_t i = 0; i < spec.streams.size(); ++i) {
    auto st = std::make_unique<StreamState>();
    st->spec = &spec.streams[i];
    st->res = &s.r.streams[i];
    st->throttled = spec.mechanism == Mechanism::kThrottle && !st->spec->high_priority;
    for (uint32_t k = 0; k < GPUCOLO_SLOTS; ++k) st->done_at[k].store(0, std::memory_order_relaxed);
    gpucolo_stream_opts o{};
    o.device = spec.device;
    o.priority = st->res->priority;
    o.cu_mask = st->res->cu_mask.empty() ? nullptr : st->res->cu_mask.data();
    o.cu_mask_words = static_cast<uint32_t>(st->res->cu_mask.size());
    o.sm_count = st->res->sm_count;
    const int rc = s.api->stream_create(&o, &st->stream, s.err, sizeof(s.err));
    if (rc != GPUCOLO_OK) {
      st->stream = nullptr;
      DestroyStreams(s);
      return Fail(&s.r, rc, Format("stream '%s': stream_create: %s", st->res->name.c_str(), s.err));
    }
    const size_t hint = ReserveHint(spec, *st->spec);
    for (auto* v : {&st->res->intended_ns, &st->res->submit_ns, &st->complete}) v->reserve(hint);
    st->dstart.reserve(hint);
    st->dend.reserve(hint);
    st->res->warmup.reserve(hint);
    if (st->spec->high_priority) s.c.hp.push_back(st.get());
    s.states.push_back(std::move(st));
  }
  std::vector<gpucolo_stream*> handles;
  for (auto& st : s.states) handles.push_back(st->stream);
  DescribeStreams(spec, s.info, handles, &s.r);
  return GPUCOLO_OK;
}

/** The completion thread and one submitter per stream, from the origin (now). */
std::thread StartThreads(RunState& s) {
  Ctx& c = s.c;
  c.origin = NowNs();
  c.end_abs = s.spec.duration_ns != 0 ? c.origin + static_cast<int64_t>(s.spec.duration_ns) : kNever;
  std::thread completion([&s] { CompletionThread(s.c, s.states); });
  for (auto& st : s.states) {
    StreamState* p = st.get();
    if (p->spec->arrival == Arrival::kClosedLoop)
      p->thread = std::thread([&c, p] { ClosedLoopSubmitter(c, *p); });
    else
      p->thread = std::thread([&c, p] { OpenLoopSubmitter(c, *p); });
  }
  return completion;
}

/** Phase 1: the submitters run until the end (or the cancel flag); returns when it ended. */
int64_t SubmitPhase(RunState& s) {
  Ctx& c = s.c;
  auto submitters_done = [&s] { return SubmittersDone(s.states); };
  while (!submitters_done()) {
    if (Cancelled(s)) {
      s.r.cancelled = true;
      break;
    }
    const int64_t now = NowNs();
    if (now >= c.end_abs) break;
    c.notifier.WaitSlice(submitters_done, std::min(c.end_abs, now + kSleepSliceNs));
  }
  return NowNs();
}

void StopSubmitters(Ctx& c) {
  c.stop.store(true, std::memory_order_release);
  c.notifier.NotifyAlways();
}

/**
 * Phase 2: drain what is in flight (and a backlog of requests that arrived before the end), up to
 * the watchdog (a cancel shortens it to kCancelGraceNs); sets timed_out and submit_phase_end.
 */
void DrainPhase(RunState& s, int64_t phase1_end) {
  Ctx& c = s.c;
  RunResult& r = s.r;
  s.watchdog = static_cast<int64_t>(std::min<uint64_t>(s.spec.watchdog_ns != 0 ? s.spec.watchdog_ns : kDefaultWatchdogNs,
                                                        uint64_t{1} << 62));
  int64_t deadline = phase1_end + (r.cancelled ? std::min(s.watchdog, kCancelGraceNs) : s.watchdog);
  if (r.cancelled) StopSubmitters(c);
  for (;;) {
    const bool subs_done = SubmittersDone(s.states);
    if (subs_done && s.submit_phase_end < 0) s.submit_phase_end = NowNs();
    if (subs_done && AllCompleted(s.states)) break;
    const int64_t now = NowNs();
    if (!r.cancelled && Cancelled(s)) {
      r.cancelled = true;
      StopSubmitters(c);
      deadline = std::min(deadline, now + kCancelGraceNs);
    }
    if (now >= deadline) {
      s.timed_out = !r.cancelled;
      break;
    }
    c.notifier.WaitSlice([&s] { return SubmittersDone(s.states) && AllCompleted(s.states); }, std::min(deadline, now + kSleepSliceNs));
  }
}

void JoinThreads(RunState& s, std::thread& completion) {
  StopSubmitters(s.c);
  for (auto& st : s.states) st->thread.join();
  s.c.completion_stop.store(true, std::memory_order_release);
  completion.join();
  s.r.elapsed_ns = static_cast<double>(NowNs() - s.c.origin);
  s.r.submit_phase_ns = static_cast<double>((s.submit_phase_end < 0 ? NowNs() : s.submit_phase_end) - s.c.origin);
}

/** One stream's times into its result; what it left in flight or dropped goes to watchdog_detail. */
void CollectStream(RunState& s, StreamState& st, std::string* watchdog_detail) {
  StreamResult& sr = *st.res;
  const uint64_t n = st.submitted.load(std::memory_order_acquire);
  const uint64_t done = st.completed.load(std::memory_order_acquire);
  sr.launches = n;
  sr.device_start_ns.resize(n, kNaN);
  sr.device_end_ns.resize(n, kNaN);
  sr.complete_ns.resize(n, kNaN);
  // device clock -> host clock -> relative to the origin, in integers until the last step
  const int64_t offset = s.offset;
  const int64_t origin = s.c.origin;
  auto map = [offset, origin](uint64_t d) {
    return d == kNoTime ? kNaN : static_cast<double>(static_cast<int64_t>(d) - offset - origin);
  };
  for (uint64_t i = 0; i < done; ++i) {
    sr.device_start_ns[i] = map(st.dstart[i]);
    sr.device_end_ns[i] = map(st.dend[i]);
    sr.complete_ns[i] = st.complete[i];
  }
  sr.errors += st.poll_errors;
  sr.dropped = st.dropped;
  if (sr.error.empty()) sr.error = st.poll_error;
  if (n > done) {
    *watchdog_detail += Format("%s'%s': %llu in flight, oldest submitted at %.3f ms", watchdog_detail->empty() ? "" : "; ",
                               sr.name.c_str(), static_cast<unsigned long long>(n - done), sr.submit_ns[done] / 1e6);
  }
  if (st.dropped != 0) {
    *watchdog_detail += Format("%s'%s': %llu arrived request(s) never submitted", watchdog_detail->empty() ? "" : "; ",
                               sr.name.c_str(), static_cast<unsigned long long>(st.dropped));
  }
  const int stream_status = st.launch_status != GPUCOLO_OK ? st.launch_status : st.poll_status;
  if (stream_status != GPUCOLO_OK && s.r.status == GPUCOLO_OK)
    Fail(&s.r, stream_status, Format("stream '%s': %s", sr.name.c_str(), sr.error.c_str()));
}

/** Every stream's results, then the run's status: the watchdog, a cancel, or the first stream error. */
void CollectResults(RunState& s) {
  RunResult& r = s.r;
  std::string watchdog_detail;
  for (auto& sp : s.states) CollectStream(s, *sp, &watchdog_detail);
  if (s.timed_out) {
    Fail(&r, GPUCOLO_ERR_TIMEOUT,
         Format("watchdog: launches still in flight %.1f ms after the run ended (%s); gave up on them and destroyed the streams",
                static_cast<double>(s.watchdog) / 1e6, watchdog_detail.c_str()));
  } else if (r.cancelled && r.status == GPUCOLO_OK) {
    r.error = watchdog_detail.empty() ? "cancelled" : "cancelled (" + watchdog_detail + ")";
  }
}

}  // namespace

RunResult Run(const RunSpec& spec, const std::atomic<bool>* cancel) {
  if (spec.api == nullptr) {
    RunResult r;
    Fail(&r, GPUCOLO_ERR_INVALID, "no backend (api is NULL)");
    return r;
  }
  RunState s(spec, cancel);
  if (OpenDevice(s) != GPUCOLO_OK) return std::move(s.r);
  if (Prepare(spec, cancel, s.info, &s.r) != GPUCOLO_OK) return std::move(s.r);
  ConfigureCtx(s);
  if (CreateStreams(s) != GPUCOLO_OK) return std::move(s.r);
  std::string offset_error;
  const int rc = MeasureOffset(s.api, spec.device, &s.offset, &s.r.device_offset_uncertainty_ns, &offset_error);
  s.r.device_offset_ns = static_cast<double>(s.offset);
  if (rc != GPUCOLO_OK) {
    DestroyStreams(s);
    Fail(&s.r, rc, offset_error);
    return std::move(s.r);
  }

  std::thread completion = StartThreads(s);
  DrainPhase(s, SubmitPhase(s));
  JoinThreads(s, completion);
  CollectResults(s);
  DestroyStreams(s);
  int64_t off_end = 0;
  double width_end = 0;
  std::string ignored;
  if (MeasureOffset(s.api, spec.device, &off_end, &width_end, &ignored) == GPUCOLO_OK)
    s.r.device_offset_end_ns = static_cast<double>(off_end);
  return std::move(s.r);
}

}  // namespace dispatch
}  // namespace gpucolo
