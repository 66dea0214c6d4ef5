// gpucolo_floor: the latency floor of a dispatch backend, without Node and without the engine's
// bookkeeping. Closed loop, one kernel in flight, timed on the host with CLOCK_MONOTONIC from just
// before launch() to the poll() that reports done. Prints one JSON line; what the JS-visible round
// trip is compared against. Two modes:
//
//   --mode loop     (default) one thread: launch -> busy-poll until done -> next launch. The floor of
//                   the backend itself: no thread hand-off at all (on the cpu backend an empty
//                   kernel completes inside launch()).
//   --mode handoff  the engine's shape (native/dispatch/engine.cc, one closed-loop stream): a
//                   submitter thread stamps the submit time and launches; a completion thread polls
//                   the slot, stamps the completion time and wakes the submitter (condition
//                   variable, skipped while nobody waits), which then launches the next kernel.
//                   Between fruitless polls the completion thread sleeps 1 us doubling up to --pause
//                   (default: 20 us on the cpu backend, 0 = busy-poll with a pause instruction on
//                   GPU plugins, as the engine's kAutoPollPause); both threads get the engine's host
//                   thread setup (1 ns timer slack, a short EEVDF slice). Round trip = completion
//                   stamp - submit stamp, as the engine's roundTripNs. What the engine adds on top of
//                   this is its own bookkeeping, not the hand-off.
//
//   gpucolo_floor [cpu | /path/to/gpucolo_<x>.so] [--n N] [--warmup W] [--spin NS] [--blocks B]
//                 [--device D] [--priority P] [--mode loop|handoff] [--pause NS] [--seconds S]
//
// --seconds S: measure for S seconds instead of N round trips (after the W warm-up ones).
// Percentiles are nearest rank over the measured round trips (W warm-up ones are dropped).
#include <dlfcn.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/cpu_backend.h"
#include "dispatch/gpu_plugin.h"

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double Pct(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return sorted[rank - 1];
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

int Fail(const std::string& backend, const std::string& what) {
  std::printf("{\"backend\":%s,\"error\":%s}\n", JsonString(backend).c_str(), JsonString(what).c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: gpucolo_floor [cpu | /path/to/plugin.so] [--n N] [--warmup W] [--spin NS] [--blocks B] "
               "[--device D] [--priority P] [--mode loop|handoff] [--pause NS] [--seconds S]\n");
  return 2;
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

/** The engine's HostThreadSetup (engine.cc): 1 ns timer slack and a 100 us EEVDF slice, best effort. */
void HostThreadSetup() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#ifdef SYS_sched_setattr
  SchedAttr a{};
  a.size = sizeof(a);
  a.sched_policy = SCHED_OTHER;
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, 0);
  a.sched_nice = errno == 0 ? nice : 0;
  a.sched_runtime = 100000;
  syscall(SYS_sched_setattr, 0, &a, 0u);
#endif
}

/** What a mode measured: round trips and device times (ns), or an error. */
struct Measured {
  std::vector<double> rt, dev;
  std::string error;
};

/** Launch i is measured (not warm-up) and the run goes on. */
struct Plan {
  uint64_t n, warmup;
  double seconds;  // > 0: measure for this long instead of n round trips
  bool More(uint64_t i, uint64_t t_measure_start, bool measuring_started) const {
    if (i < warmup) return true;
    if (seconds > 0) return !measuring_started || static_cast<double>(NowNs() - t_measure_start) < seconds * 1e9;
    return i < warmup + n;
  }
};

Measured RunLoop(const gpucolo_gpu_api* api, gpucolo_stream* s, const gpucolo_kernel& k, const Plan& plan) {
  Measured m;
  char err[512] = {0};
  uint64_t t_measure = 0;
  for (uint64_t i = 0; plan.More(i, t_measure, i > plan.warmup); ++i) {
    if (i == plan.warmup) t_measure = NowNs();
    const uint32_t slot = static_cast<uint32_t>(i % GPUCOLO_SLOTS);
    uint64_t ds = 0, de = 0;
    const uint64_t t0 = NowNs();
    if (api->launch(s, &k, slot, err, sizeof(err)) != 0) {
      m.error = std::string("launch: ") + err;
      return m;
    }
    int p = 0;
    while ((p = api->poll(s, slot, &ds, &de)) == 0) {
    }
    const uint64_t t1 = NowNs();
    if (p < 0) {
      m.error = "poll failed with status " + std::to_string(p);
      return m;
    }
    if (i >= plan.warmup) {
      m.rt.push_back(static_cast<double>(t1 - t0));
      m.dev.push_back(static_cast<double>(de - ds));
    }
  }
  return m;
}

/** The engine's closed loop of one stream: submitter thread + completion thread (see the top). */
Measured RunHandoff(const gpucolo_gpu_api* api, gpucolo_stream* s, const gpucolo_kernel& k, const Plan& plan, uint64_t max_pause_ns) {
  Measured m;
  std::atomic<uint64_t> submitted{0}, completed{0};
  std::atomic<bool> stop{false}, failed{false};
  // submitter only: submit stamps; completion thread only: completion stamps and device times
  std::vector<uint64_t> submit_ns, complete_ns, dstart, dend;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> waiters{0};
  std::string poll_error, launch_error;

  std::thread completion([&] {
    HostThreadSetup();
    const uint64_t min_pause = std::min<uint64_t>(1000, max_pause_ns);
    uint64_t pause = min_pause;
    uint64_t done = 0;
    for (;;) {
      // stop only once everything submitted has completed
      const bool stopping = stop.load(std::memory_order_acquire);
      bool progress = false;
      while (done < submitted.load(std::memory_order_acquire)) {
        uint64_t ds = 0, de = 0;
        const int rc = api->poll(s, static_cast<uint32_t>(done % GPUCOLO_SLOTS), &ds, &de);
        if (rc == 0) break;
        complete_ns.push_back(NowNs());
        dstart.push_back(ds);
        dend.push_back(de);
        if (rc < 0 && poll_error.empty()) {
          poll_error = "poll failed with status " + std::to_string(rc);
          failed.store(true, std::memory_order_release);
        }
        ++done;
        completed.store(done, std::memory_order_release);
        progress = true;
      }
      if (progress) {
        // the engine's Notifier: no mutex, no system call while nobody waits
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (waiters.load(std::memory_order_seq_cst) != 0) {
          { std::lock_guard<std::mutex> lock(mu); }
          cv.notify_all();
        }
        pause = min_pause;
      } else if (stopping && done >= submitted.load(std::memory_order_acquire)) {
        break;
      } else if (max_pause_ns == 0) {
        CpuRelax();
      } else {
        timespec ts{static_cast<time_t>(pause / 1000000000ull), static_cast<long>(pause % 1000000000ull)};
        nanosleep(&ts, nullptr);
        pause = std::min(pause * 2, max_pause_ns);
      }
    }
  });

  std::thread submitter([&] {
    HostThreadSetup();
    char err[512] = {0};
    uint64_t t_measure = 0;
    for (uint64_t i = 0; plan.More(i, t_measure, i > plan.warmup); ++i) {
      if (i == plan.warmup) t_measure = NowNs();
      if (i > 0) {
        // wait for launch i-1 (one in flight), as the engine's closed-loop submitter does with a
        // pausing poller: a condition variable wait, re-checked at least every 1 ms
        auto ready = [&] { return completed.load(std::memory_order_acquire) >= i || failed.load(std::memory_order_acquire); };
        while (!ready()) {
          std::unique_lock<std::mutex> lock(mu);
          waiters.fetch_add(1, std::memory_order_seq_cst);
          std::atomic_thread_fence(std::memory_order_seq_cst);
          if (!ready()) cv.wait_for(lock, std::chrono::milliseconds(1));
          waiters.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (failed.load(std::memory_order_acquire)) break;
      }
      submit_ns.push_back(NowNs());
      if (api->launch(s, &k, static_cast<uint32_t>(i % GPUCOLO_SLOTS), err, sizeof(err)) != 0) {
        submit_ns.pop_back();
        launch_error = std::string("launch: ") + err;
        break;
      }
      submitted.store(i + 1, std::memory_order_release);
    }
  });
  submitter.join();
  stop.store(true, std::memory_order_release);
  completion.join();
  if (!launch_error.empty()) m.error = launch_error;
  if (!poll_error.empty()) m.error = poll_error;
  if (!m.error.empty()) return m;
  for (size_t i = static_cast<size_t>(plan.warmup); i < submit_ns.size() && i < complete_ns.size(); ++i) {
    m.rt.push_back(static_cast<double>(complete_ns[i] - submit_ns[i]));
    m.dev.push_back(static_cast<double>(dend[i] - dstart[i]));
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "cpu";
  uint64_t n = 10000, warmup = 1000, spin = 0;
  uint32_t blocks = 1;
  int device = 0, priority = 0;
  bool priority_set = false;
  std::string mode = "loop";
  uint64_t pause = 0;
  bool pause_set = false;
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](uint64_t* v) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      *v = std::strtoull(argv[++i], &end, 10);
      return end != nullptr && *end == '\0';
    };
    uint64_t v = 0;
    if (a == "--n") {
      if (!next(&n) || n == 0) return Usage();
    } else if (a == "--warmup") {
      if (!next(&warmup)) return Usage();
    } else if (a == "--spin") {
      if (!next(&spin)) return Usage();
    } else if (a == "--blocks") {
      if (!next(&v) || v == 0 || v > 0xffffffffu) return Usage();
      blocks = static_cast<uint32_t>(v);
    } else if (a == "--device") {
      if (!next(&v)) return Usage();
      device = static_cast<int>(v);
    } else if (a == "--priority") {
      if (i + 1 >= argc) return Usage();
      priority = std::atoi(argv[++i]);
      priority_set = true;
    } else if (a == "--mode") {
      if (i + 1 >= argc) return Usage();
      mode = argv[++i];
      if (mode != "loop" && mode != "handoff") return Usage();
    } else if (a == "--pause") {
      if (!next(&pause)) return Usage();
      pause_set = true;
    } else if (a == "--seconds") {
      if (i + 1 >= argc) return Usage();
      char* end = nullptr;
      seconds = std::strtod(argv[++i], &end);
      if (end == nullptr || *end != '\0' || !(seconds > 0) || seconds > 3600) return Usage();
    } else if (a == "-h" || a == "--help") {
      return Usage();
    } else if (!a.empty() && a[0] != '-') {
      backend = a;
    } else {
      return Usage();
    }
  }

  const gpucolo_gpu_api* api = nullptr;
  if (backend == "cpu") {
    api = gpucolo::dispatch::CpuBackendApi();
  } else {
    void* h = dlopen(backend.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return Fail(backend, std::string("dlopen: ") + dlerror());
    auto get = reinterpret_cast<gpucolo_gpu_get_api_fn>(dlsym(h, GPUCOLO_GPU_GET_API));
    if (get == nullptr) return Fail(backend, std::string("dlsym " GPUCOLO_GPU_GET_API ": ") + dlerror());
    api = get();
    if (api == nullptr) return Fail(backend, GPUCOLO_GPU_GET_API " returned NULL");
    if (api->abi != GPUCOLO_GPU_ABI)
      return Fail(backend, "plugin ABI " + std::to_string(api->abi) + ", expected " + std::to_string(GPUCOLO_GPU_ABI));
  }

  char err[512] = {0};
  int rc = api->init(err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("init: ") + err);
  gpucolo_device_info info{};
  rc = api->device_info(device, &info, err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("device_info: ") + err);
  gpucolo_stream_opts o{};
  o.device = device;
  o.priority = priority_set ? priority : std::min(std::max(0, std::min(info.priority_least, info.priority_greatest)),
                                                  std::max(info.priority_least, info.priority_greatest));
  gpucolo_stream* s = nullptr;
  rc = api->stream_create(&o, &s, err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("stream_create: ") + err);

  const gpucolo_kernel k{spin, blocks, 64};
  const Plan plan{n, warmup, seconds};
  // the engine's kAutoPollPause: 20 us on the cpu backend (its "device" is host cores), busy on GPUs
  if (!pause_set) pause = std::strcmp(api->backend, "cpu") == 0 ? 20000 : 0;
  Measured m = mode == "handoff" ? RunHandoff(api, s, k, plan, pause) : RunLoop(api, s, k, plan);
  if (!m.error.empty()) {
    api->stream_destroy(s);
    return Fail(backend, m.error);
  }
  if (m.rt.empty()) {
    api->stream_destroy(s);
    return Fail(backend, "no round trip measured");
  }
  const std::vector<double>& rt = m.rt;
  std::vector<double>& dev = m.dev;
  api->stream_destroy(s);
  api->shutdown();

  double sum = 0;
  for (double v : rt) sum += v;
  std::vector<double> sorted = rt;
  std::sort(sorted.begin(), sorted.end());
  std::sort(dev.begin(), dev.end());
  std::printf(
      "{\"backend\":%s,\"device\":%s,\"mode\":%s,\"pause_ns\":%llu,\"n\":%llu,\"warmup\":%llu,\"spin_ns\":%llu,"
      "\"blocks\":%u,\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"mean_ns\":%.1f,\"min_ns\":%.0f,\"max_ns\":%.0f,\"device_p50_ns\":%.0f}\n",
      JsonString(api->backend).c_str(), JsonString(info.name).c_str(), JsonString(mode).c_str(),
      static_cast<unsigned long long>(mode == "handoff" ? pause : 0), static_cast<unsigned long long>(rt.size()),
      static_cast<unsigned long long>(warmup), static_cast<unsigned long long>(spin), blocks, Pct(sorted, 0.5),
      Pct(sorted, 0.99), sum / static_cast<double>(rt.size()), sorted.front(), sorted.back(), Pct(dev, 0.5));
  return 0;
}
