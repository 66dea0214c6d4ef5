#include "dispatch/cpu_backend.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdarg>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gpucolo {
namespace dispatch {
namespace {

constexpr int kPriorityLeast = 0;
constexpr int kPriorityGreatest = 15;
constexpr int kMaxWorkers = 1024;
// threads_per_block is accepted and ignored (a block is one worker); the limit mirrors the GPUs'
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kFillThreadsPerBlock = 64;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

int SetErr(char* err, unsigned errlen, int code, const char* fmt, ...) __attribute__((format(printf, 4, 5)));
int SetErr(char* err, unsigned errlen, int code, const char* fmt, ...) {
  if (err != nullptr && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

enum SlotState : uint32_t { kSlotFree = 0, kSlotPending = 1, kSlotDone = 2 };

struct Slot {
  std::atomic<uint32_t> state{kSlotFree};
  std::atomic<uint64_t> start{0};
  std::atomic<uint64_t> end{0};
};

struct Job {
  uint64_t spin_ns = 0;
  uint32_t blocks = 0;
  uint32_t slot = 0;
  uint32_t next_block = 0;  // blocks dispatched so far
  uint32_t running = 0;     // blocks on a worker now
  uint32_t done = 0;        // blocks finished
  uint64_t launch_ns = 0;   // when launch() queued it
  uint64_t start_ns = 0;    // first block's start (written by that block's worker)
  uint64_t end_ns = 0;      // latest end among its finished blocks (under the device lock)
};

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
              "futex word");

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

}  // namespace
}  // namespace dispatch
}  // namespace gpucolo

// The opaque type of the C ABI; defined at global scope to match its declaration.
struct gpucolo_stream {
  int priority = 0;
  std::vector<bool> mask;  // one entry per worker
  std::atomic<bool> aborted{false};
  std::unique_ptr<gpucolo::dispatch::Slot[]> slots{new gpucolo::dispatch::Slot[GPUCOLO_SLOTS]};
  // launch() -> workers, without the device lock: a single-producer ring (the thread using the
  // stream) drained by workers under the device lock. Every queued kernel holds a pending slot,
  // so at most GPUCOLO_SLOTS are ever in it.
  std::unique_ptr<gpucolo::dispatch::Job[]> inbox{new gpucolo::dispatch::Job[GPUCOLO_SLOTS]};
  std::atomic<uint64_t> inbox_head{0};
  std::atomic<uint64_t> inbox_tail{0};
  // kernels launched and not finished (inbox + queue); 0 lets launch() finish an empty kernel inline
  std::atomic<uint64_t> outstanding{0};
  // ---- device side, under the backend's lock ----
  std::deque<gpucolo::dispatch::Job> queue;  // head = the kernel running or next to run
  uint64_t head_ready_ns = 0;                 // when the head became dispatchable (FIFO key)
  uint64_t last_finish_ns = 0;
};

namespace gpucolo {
namespace dispatch {
namespace {

/**
 * The device. mu_ is the device's own lock: workers take it to pick and retire blocks, and the
 * host-side calls that reshape the device (stream create/destroy, synchronize, configure,
 * shutdown) take it too. launch() and poll() never do, so a host thread never waits for a worker
 * that the OS has preempted while it held the lock (workers run at a low priority).
 */
CpuBackendOptions EnvOptions();

class Backend {
 public:
  Backend() { options_ = EnvOptions(); }

  int Start() {
    std::lock_guard<std::mutex> lock(mu_);
    StartLocked();
    return GPUCOLO_OK;
  }

  int Configure(const CpuBackendOptions& o) {
    if (o.workers < 0 || o.workers > kMaxWorkers || o.worker_nice < 0 || o.worker_nice > 19) return GPUCOLO_ERR_INVALID;
    std::unique_lock<std::mutex> lock(mu_);
    if (!streams_.empty()) return GPUCOLO_ERR_INVALID;
    const bool was_running = running_;
    if (was_running) StopLocked(lock);
    options_ = o;
    if (was_running) StartLocked();
    return GPUCOLO_OK;
  }

  CpuBackendOptions Current() {
    std::lock_guard<std::mutex> lock(mu_);
    CpuBackendOptions o = options_;
    o.workers = ResolveWorkers(o.workers);
    return o;
  }

  int Workers() {
    std::lock_guard<std::mutex> lock(mu_);
    StartLocked();
    return static_cast<int>(workers_.size());
  }

  int CreateStream(const gpucolo_stream_opts* opts, gpucolo_stream** out, char* err, unsigned errlen) {
    if (out == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "stream_create: out is NULL");
    *out = nullptr;
    if (opts == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "stream_create: opts is NULL");
    if (opts->device != 0)
      return SetErr(err, errlen, GPUCOLO_ERR_NO_DEVICE, "stream_create: no cpu device %d (only device 0)", opts->device);
    if (opts->priority < kPriorityLeast || opts->priority > kPriorityGreatest)
      return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "stream_create: priority %d out of range %d..%d", opts->priority,
                    kPriorityLeast, kPriorityGreatest);
    if (opts->sm_count != 0)
      return SetErr(err, errlen, GPUCOLO_ERR_UNSUPPORTED, "stream_create: the cpu backend has no SM partitions (sm_count %d)",
                    opts->sm_count);
    if (opts->cu_mask != nullptr && opts->cu_mask_words == 0)
      return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "stream_create: cu_mask given with cu_mask_words 0");
    std::unique_lock<std::mutex> lock(mu_);
    StartLocked();
    const size_t n = workers_.size();
    auto s = std::make_unique<gpucolo_stream>();
    s->priority = opts->priority;
    s->mask.assign(n, opts->cu_mask == nullptr);
    if (opts->cu_mask != nullptr) {
      size_t selected = 0;
      for (size_t w = 0; w < n && w / 32 < opts->cu_mask_words; ++w) {
        s->mask[w] = (opts->cu_mask[w / 32] >> (w % 32)) & 1u;
        selected += s->mask[w];
      }
      if (selected == 0)
        return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "stream_create: cu_mask selects none of the %zu workers", n);
    }
    *out = s.get();
    streams_.push_back(s.release());
    return GPUCOLO_OK;
  }

  int DestroyStream(gpucolo_stream* s) {
    if (s == nullptr) return GPUCOLO_ERR_INVALID;
    std::unique_lock<std::mutex> lock(mu_);
    if (std::find(streams_.begin(), streams_.end(), s) == streams_.end()) return GPUCOLO_ERR_INVALID;
    AbortLocked(s, lock);
    streams_.erase(std::find(streams_.begin(), streams_.end(), s));
    delete s;
    return GPUCOLO_OK;
  }

  // Lock-free: validate, then either finish an empty kernel at once or hand the kernel to the
  // workers through the stream's inbox and wake the sleeping ones.
  int Launch(gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* err, unsigned errlen) {
    if (s == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: stream is NULL");
    if (k == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: kernel is NULL");
    if (k->blocks == 0) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: kernel has 0 blocks");
    if (slot >= GPUCOLO_SLOTS)
      return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: slot %u out of range 0..%u", slot, GPUCOLO_SLOTS - 1);
    Slot& sl = s->slots[slot];
    if (sl.state.load(std::memory_order_acquire) == kSlotPending)
      return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: slot %u is still in flight", slot);
    if (s->aborted.load(std::memory_order_acquire))
      return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "launch: stream is being destroyed");
    const uint64_t now = NowNs();
    if (k->spin_ns == 0 && s->outstanding.load(std::memory_order_acquire) == 0) {
      // empty kernel on an idle stream (every earlier kernel's slot is done): it needs no worker
      sl.start.store(now, std::memory_order_relaxed);
      sl.end.store(now, std::memory_order_relaxed);
      sl.state.store(kSlotDone, std::memory_order_release);
      return GPUCOLO_OK;
    }
    sl.state.store(kSlotPending, std::memory_order_relaxed);
    s->outstanding.fetch_add(1, std::memory_order_acq_rel);
    const uint64_t t = s->inbox_tail.load(std::memory_order_relaxed);
    Job& j = s->inbox[t % GPUCOLO_SLOTS];
    j = Job();
    j.spin_ns = k->spin_ns;
    j.blocks = k->blocks;
    j.slot = slot;
    j.launch_ns = now;
    s->inbox_tail.store(t + 1, std::memory_order_seq_cst);
    WakeWorkers();
    return GPUCOLO_OK;
  }

  int Synchronize(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen) {
    if (s == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "synchronize: stream is NULL");
    std::unique_lock<std::mutex> lock(mu_);
    // clamped so that now + timeout cannot overflow (1e17 ns is about 3 years)
    const uint64_t wait_ns = std::min<uint64_t>(timeout_ns, 100000000000000000ull);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(static_cast<int64_t>(wait_ns));
    auto idle = [s] { return s->outstanding.load(std::memory_order_acquire) == 0; };
    if (!idle() && (timeout_ns == 0 || !done_cv_.wait_until(lock, deadline, idle)))
      return SetErr(err, errlen, GPUCOLO_ERR_TIMEOUT,
                    "synchronize: %llu kernel(s) still queued or running after %.3f ms (watchdog)",
                    static_cast<unsigned long long>(s->outstanding.load()), static_cast<double>(timeout_ns) / 1e6);
    return GPUCOLO_OK;
  }

  void Shutdown() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!streams_.empty()) {
      gpucolo_stream* s = streams_.back();
      AbortLocked(s, lock);
      streams_.erase(std::find(streams_.begin(), streams_.end(), s));
      delete s;
    }
    if (running_) StopLocked(lock);
  }

 private:
  static int ResolveWorkers(int requested) {
    if (requested > 0) return requested;
    const int hw = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(2, hw);
  }

  // A launch (or a kernel that became ready) bumps the generation; sleeping workers wake up.
  void WakeWorkers() {
    work_gen_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) FutexWakeAll(&work_gen_);
  }

  void StartLocked() {
    if (running_) return;
    running_ = true;
    stop_.store(false);
    const int n = ResolveWorkers(options_.workers);
    busy_on_.assign(static_cast<size_t>(n), nullptr);
    const CpuBackendOptions o = options_;
    std::vector<int> cpus;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    for (int w = 0; w < n; ++w) workers_.emplace_back([this, w, o, cpus] { WorkerMain(w, o, cpus); });
  }

  void StopLocked(std::unique_lock<std::mutex>& lock) {
    stop_.store(true);
    WakeWorkers();
    std::vector<std::thread> ws;
    ws.swap(workers_);
    lock.unlock();
    for (auto& t : ws) t.join();
    lock.lock();
    running_ = false;
    busy_on_.clear();
  }

  // Drops the queue of s and waits until no worker runs one of its blocks any more.
  void AbortLocked(gpucolo_stream* s, std::unique_lock<std::mutex>& lock) {
    s->aborted.store(true, std::memory_order_release);
    while (std::find(busy_on_.begin(), busy_on_.end(), s) != busy_on_.end()) done_cv_.wait(lock);
    s->queue.clear();
    s->inbox_head.store(s->inbox_tail.load());
    s->outstanding.store(0);
    done_cv_.notify_all();  // synchronize() waiters see an idle stream
  }

  // Moves kernels launched since the last look from the inbox to the queue.
  void DrainLocked(gpucolo_stream* s) {
    uint64_t h = s->inbox_head.load(std::memory_order_relaxed);
    const uint64_t t = s->inbox_tail.load(std::memory_order_seq_cst);
    if (h == t) return;
    const bool was_idle = s->queue.empty();
    for (; h < t; ++h) s->queue.push_back(s->inbox[h % GPUCOLO_SLOTS]);
    s->inbox_head.store(h, std::memory_order_release);
    if (was_idle) HeadChangedLocked(s);
  }

  // Writes the slot of the head kernel, pops it and counts it finished.
  void RetireHeadLocked(gpucolo_stream* s, uint64_t start_ns, uint64_t end_ns) {
    Job& j = s->queue.front();
    Slot& sl = s->slots[j.slot];
    sl.start.store(start_ns, std::memory_order_relaxed);
    sl.end.store(end_ns, std::memory_order_relaxed);
    sl.state.store(kSlotDone, std::memory_order_release);
    s->queue.pop_front();
    s->last_finish_ns = end_ns;
    s->outstanding.fetch_sub(1, std::memory_order_acq_rel);  // after the slot: launch() relies on it
  }

  // A new kernel is at the head: empty kernels there finish at once; a real one becomes
  // dispatchable (FIFO key: when it was launched or when its predecessor finished, the later).
  void HeadChangedLocked(gpucolo_stream* s) {
    while (!s->queue.empty() && s->queue.front().spin_ns == 0) {
      const uint64_t now = NowNs();
      RetireHeadLocked(s, now, now);
    }
    if (!s->queue.empty()) {
      s->head_ready_ns = std::max(s->queue.front().launch_ns, s->last_finish_ns);
      WakeWorkers();
    }
    done_cv_.notify_all();
  }

  // The head of s finished at end_ns.
  void FinishHeadLocked(gpucolo_stream* s, uint64_t end_ns) {
    RetireHeadLocked(s, s->queue.front().start_ns, end_ns);
    DrainLocked(s);  // kernels launched meanwhile queue behind
    HeadChangedLocked(s);
  }

  // The stream whose next block worker w should run, or null.
  gpucolo_stream* PickLocked(int w) {
    gpucolo_stream* best = nullptr;
    for (gpucolo_stream* s : streams_) {
      if (s->queue.empty() || !s->mask[static_cast<size_t>(w)] || s->aborted.load(std::memory_order_relaxed)) continue;
      const Job& j = s->queue.front();
      if (j.spin_ns == 0 || j.next_block >= j.blocks) continue;
      if (best == nullptr || s->priority > best->priority ||
          (s->priority == best->priority && s->head_ready_ns < best->head_ready_ns))
        best = s;
    }
    return best;
  }

  bool InboxPendingLocked() {
    for (gpucolo_stream* s : streams_)
      if (s->inbox_head.load(std::memory_order_relaxed) != s->inbox_tail.load(std::memory_order_seq_cst)) return true;
    return false;
  }

  void WorkerMain(int w, CpuBackendOptions o, std::vector<int> cpus) {
    if (o.pin_workers && !cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[static_cast<size_t>(w) % cpus.size()], &set);
      pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort
    }
    // best effort: both only lower this thread's priority, which needs no privilege
    if (o.worker_nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), o.worker_nice);
    if (o.idle_priority_workers) {
      sched_param p{};
      p.sched_priority = 0;
      pthread_setschedparam(pthread_self(), SCHED_IDLE, &p);
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (stop_.load()) return;
      for (gpucolo_stream* s : streams_) DrainLocked(s);
      gpucolo_stream* s = PickLocked(w);
      if (s == nullptr) {
        // sleep until the generation moves; a launch after the load below makes the wait return
        const uint32_t gen = work_gen_.load(std::memory_order_seq_cst);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (!InboxPendingLocked() && !stop_.load()) {
          lock.unlock();
          FutexWait(&work_gen_, gen);
          lock.lock();
        }
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
      Job* j = &s->queue.front();  // deque: stays put while other kernels are pushed behind it
      const uint32_t block = j->next_block++;
      ++j->running;
      const uint64_t spin = j->spin_ns;
      busy_on_[static_cast<size_t>(w)] = s;
      lock.unlock();

      const uint64_t start = NowNs();
      if (block == 0) j->start_ns = start;  // read by the finisher after it takes mu_ (ordered)
      uint64_t now = start;
      while (now - start < spin) {
        if (s->aborted.load(std::memory_order_relaxed)) break;
        CpuRelax();
        now = NowNs();
      }

      lock.lock();
      busy_on_[static_cast<size_t>(w)] = nullptr;
      if (s->aborted.load(std::memory_order_relaxed)) {
        done_cv_.notify_all();  // AbortLocked waits for busy_on_ to clear
        continue;
      }
      --j->running;
      ++j->done;
      // the kernel ends with the block that ended last, which need not be the block retired last:
      // a worker preempted between its spin and the lock retires its block late
      j->end_ns = std::max(j->end_ns, now);
      if (j->done == j->blocks) FinishHeadLocked(s, j->end_ns);
    }
  }

  std::mutex mu_;
  std::condition_variable done_cv_;  // a kernel finished / a stream was aborted
  std::atomic<uint32_t> work_gen_{0};  // futex word of sleeping workers
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  CpuBackendOptions options_;
  bool running_ = false;
  std::vector<std::thread> workers_;
  std::vector<gpucolo_stream*> busy_on_;  // per worker: the stream of the block it runs
  std::vector<gpucolo_stream*> streams_;
};

// CpuBackendDefaultOptions(): the defaults adjusted by GPUCOLO_CPU_* environment variables.
CpuBackendOptions EnvOptions() {
  CpuBackendOptions o;
  auto read = [](const char* name, long lo, long hi, long* out) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return false;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi) return false;
    *out = n;
    return true;
  };
  long n = 0;
  if (read("GPUCOLO_CPU_WORKERS", 0, kMaxWorkers, &n)) o.workers = static_cast<int>(n);
  if (read("GPUCOLO_CPU_WORKER_NICE", 0, 19, &n)) o.worker_nice = static_cast<int>(n);
  if (read("GPUCOLO_CPU_PIN", 0, 1, &n)) o.pin_workers = n != 0;
  if (read("GPUCOLO_CPU_SCHED_IDLE", 0, 1, &n)) o.idle_priority_workers = n != 0;
  return o;
}

// Never destroyed: worker threads may outlive static destructors at exit.
Backend& B() {
  static Backend* b = new Backend();
  return *b;
}

std::string MachineArch() {
  utsname u{};
  if (uname(&u) == 0) return u.machine;
  return "unknown";
}

// ---- the C ABI ----

int CpuInit(char*, unsigned) { return B().Start(); }

int CpuDeviceCount(int* out, char* err, unsigned errlen) {
  if (out == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "device_count: out is NULL");
  *out = 1;
  return GPUCOLO_OK;
}

int CpuDeviceInfo(int device, gpucolo_device_info* out, char* err, unsigned errlen) {
  if (out == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "device_info: out is NULL");
  if (device != 0) return SetErr(err, errlen, GPUCOLO_ERR_NO_DEVICE, "device_info: no cpu device %d (only device 0)", device);
  std::memset(out, 0, sizeof(*out));
  const int n = B().Workers();
  std::snprintf(out->name, sizeof(out->name), "gpucolo cpu backend (%d worker threads)", n);
  std::snprintf(out->arch, sizeof(out->arch), "%s", MachineArch().c_str());
  out->compute_units = n;
  out->priority_least = kPriorityLeast;
  out->priority_greatest = kPriorityGreatest;
  out->supports_cu_mask = 1;
  out->supports_sm_partition = 0;
  timespec res{};
  out->timer_resolution_ns = clock_getres(CLOCK_MONOTONIC, &res) == 0 ? res.tv_sec * 1e9 + res.tv_nsec : 0.0;
  // a worker runs one block at a time, whatever its threads_per_block: one resident block per
  // "CU" fills the device; one die, no XCCs, one bit per worker in a mask
  out->max_threads_per_block = kMaxThreadsPerBlock;
  out->fill_threads_per_block = kFillThreadsPerBlock;
  out->max_active_blocks_per_cu = 1;
  out->num_xcc = 1;
  out->num_se_per_xcc = 1;
  out->num_sh_per_se = 1;
  out->cu_mask_bits_per_unit = 1;
  return GPUCOLO_OK;
}

int CpuMaxActiveBlocks(int device, uint32_t threads_per_block, int* out, char* err, unsigned errlen) {
  if (out == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "max_active_blocks: out is NULL");
  *out = 0;
  if (device != 0) return SetErr(err, errlen, GPUCOLO_ERR_NO_DEVICE, "max_active_blocks: no cpu device %d (only device 0)", device);
  if (threads_per_block == 0 || threads_per_block > static_cast<uint32_t>(kMaxThreadsPerBlock))
    return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "max_active_blocks: threads_per_block must be 1..%d, got %u",
                  kMaxThreadsPerBlock, threads_per_block);
  *out = 1;
  return GPUCOLO_OK;
}

int CpuStreamInfo(gpucolo_stream* s, gpucolo_stream_info* out) {
  if (s == nullptr || out == nullptr) return GPUCOLO_ERR_INVALID;
  out->sm_count = 0;
  // the mask is fixed at creation (one entry per worker that existed then)
  out->compute_units = static_cast<int>(std::count(s->mask.begin(), s->mask.end(), true));
  return GPUCOLO_OK;
}

int CpuStreamCreate(const gpucolo_stream_opts* opts, gpucolo_stream** out, char* err, unsigned errlen) {
  return B().CreateStream(opts, out, err, errlen);
}

int CpuStreamDestroy(gpucolo_stream* s) { return B().DestroyStream(s); }

int CpuLaunch(gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* err, unsigned errlen) {
  return B().Launch(s, k, slot, err, errlen);
}

int CpuPoll(gpucolo_stream* s, uint32_t slot, uint64_t* device_start_ns, uint64_t* device_end_ns) {
  if (s == nullptr || slot >= GPUCOLO_SLOTS) return GPUCOLO_ERR_INVALID;
  const Slot& sl = s->slots[slot];
  switch (sl.state.load(std::memory_order_acquire)) {
    case kSlotPending:
      return 0;
    case kSlotDone:
      if (device_start_ns != nullptr) *device_start_ns = sl.start.load(std::memory_order_relaxed);
      if (device_end_ns != nullptr) *device_end_ns = sl.end.load(std::memory_order_relaxed);
      return 1;
    default:
      return GPUCOLO_ERR_INVALID;  // never launched
  }
}

int CpuSynchronize(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen) {
  return B().Synchronize(s, timeout_ns, err, errlen);
}

int CpuReadDeviceTime(int device, uint64_t* out_ns, char* err, unsigned errlen) {
  if (out_ns == nullptr) return SetErr(err, errlen, GPUCOLO_ERR_INVALID, "read_device_time: out is NULL");
  if (device != 0)
    return SetErr(err, errlen, GPUCOLO_ERR_NO_DEVICE, "read_device_time: no cpu device %d (only device 0)", device);
  *out_ns = NowNs();
  return GPUCOLO_OK;
}

void CpuShutdown() { B().Shutdown(); }

const gpucolo_gpu_api kCpuApi = {
    GPUCOLO_GPU_ABI, "cpu",          CpuInit,   CpuDeviceCount, CpuDeviceInfo,     CpuStreamCreate,
    CpuStreamDestroy, CpuLaunch, CpuPoll,  CpuSynchronize, CpuReadDeviceTime, CpuShutdown,
    CpuMaxActiveBlocks, CpuStreamInfo,
};

}  // namespace

const gpucolo_gpu_api* CpuBackendApi() { return &kCpuApi; }

int CpuBackendConfigure(const CpuBackendOptions& options) { return B().Configure(options); }

CpuBackendOptions CpuBackendCurrentOptions() { return B().Current(); }

CpuBackendOptions CpuBackendDefaultOptions() { return EnvOptions(); }

}  // namespace dispatch
}  // namespace gpucolo
