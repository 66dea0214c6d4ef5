// gpucolo_fake_green_plugin: a plugin with SM partitions on a fake H100 (132 SMs, sm_90 rounding),
// built on the same green_partitions.h and deferred_release.h as gpucolo_cuda.so, so the engine's
// threading can be checked against cuda.h's rule without a GPU: "a green context can be current to
// only one thread at a time" (cuGreenCtxCreate, CUDA 12.4 - 13.0).
//
// Like plugin.cu, every call that works in a stream's context (launch, synchronize, destroy) makes
// the stream's green context current for its duration (StreamScope) and holds it a little longer
// than a real launch would (hold_ns), so that two threads holding the same context overlap
// visibly. A tracker records which thread has which context current; a second thread making a
// context current that another thread still holds is a violation (gpucolo_fake_green_violations).
// Destroying a green context that is current, or whose stream still has work, is one too.
//
// Kernels run on the host clock: a launch starts when the previous one of its stream ended (or
// now) and ends spin_ns later; poll() compares with the clock. They ignore cancels, so a stream
// destroyed while one runs is kept (deferred) and released by a later stream_create()/shutdown().
//
// gpucolo_fake_green_share_contexts(1) switches to the old design (streams of one partition share
// one green context) to show that the tracker catches it.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/gpu_plugin.h"
#include "fake_green_driver.h"
#include "plugins/cuda/green_partitions.h"
#include "plugins/deferred_release.h"

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using gpucolo_test::FakeGreenDriver;
using Partitions = gpucolo_plugin::GreenPartitions<FakeGreenDriver>;

constexpr int kSms = 132;
constexpr uint64_t kGraceNs = 20000000;  // destroy waits this long for running kernels

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void SetErr(char* err, unsigned errlen, const char* text) {
  if (err != nullptr && errlen > 0) std::snprintf(err, errlen, "%s", text);
}

/** Who has which green context current (cuda.h: one thread at a time). */
class CurrentTracker {
 public:
  void Push(int green) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::thread::id self = std::this_thread::get_id();
    Entry& e = current_[green];
    if (e.depth > 0 && e.owner != self) Violation("green context " + std::to_string(green) + " made current on a second thread while another held it");
    e.owner = self;
    ++e.depth;
    threads_[green].insert(self);
  }
  void Pop(int green) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = current_.find(green);
    if (it != current_.end() && --it->second.depth <= 0) current_.erase(it);
  }
  bool IsCurrent(int green) {
    std::lock_guard<std::mutex> lock(mu_);
    return current_.count(green) != 0;
  }
  void Violation(const std::string& what) {
    ++violations_;
    last_ = what;
  }
  int Violations() {
    std::lock_guard<std::mutex> lock(mu_);
    return violations_;
  }
  std::string Last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    violations_ = 0;
    last_.clear();
  }
  void Lock() { mu_.lock(); }
  void Unlock() { mu_.unlock(); }

 private:
  struct Entry {
    std::thread::id owner;
    int depth = 0;
  };
  std::mutex mu_;
  std::map<int, Entry> current_;
  std::map<int, std::set<std::thread::id>> threads_;
  int violations_ = 0;
  std::string last_;
};

std::mutex g_mu;  // the plugin's global lock (partitions, kept streams)
FakeGreenDriver g_drv;
Partitions g_parts(&g_drv);
CurrentTracker g_tracker;
int g_refs = 0;
std::atomic<bool> g_share{false};
std::atomic<uint64_t> g_hold_ns{20000};

}  // namespace

struct gpucolo_stream {
  int priority = 0;
  Partitions::Lease lease;
  int green = 0;  // the context its calls make current (0: whole device, none)
  std::mutex scope_mu;
  std::unique_ptr<std::atomic<uint64_t>[]> end{new std::atomic<uint64_t>[GPUCOLO_SLOTS]};
  std::unique_ptr<std::atomic<uint64_t>[]> start{new std::atomic<uint64_t>[GPUCOLO_SLOTS]};
  std::unique_ptr<std::atomic<uint32_t>[]> used{new std::atomic<uint32_t>[GPUCOLO_SLOTS]};
  std::atomic<uint64_t> last_end{0};
  gpucolo_stream() {
    for (uint32_t i = 0; i < GPUCOLO_SLOTS; ++i) used[i].store(0);
  }
};

namespace {

std::vector<gpucolo_stream*> g_live;  // for the shared-context mode
gpucolo_plugin::DeferredRelease<gpucolo_stream> g_kept;

/** plugin.cu's StreamScope: the stream's lock, its green context current meanwhile */
class Scope {
 public:
  explicit Scope(gpucolo_stream* s) : s_(s), lock_(s->scope_mu) {
    if (s_->green != 0) g_tracker.Push(s_->green);
    const uint64_t until = NowNs() + g_hold_ns.load();
    while (NowNs() < until) {
    }
  }
  ~Scope() {
    if (s_->green != 0) g_tracker.Pop(s_->green);
  }

 private:
  gpucolo_stream* s_;
  std::lock_guard<std::mutex> lock_;
};

bool Busy(gpucolo_stream* s) { return s->last_end.load() > NowNs(); }

// with g_mu held
void DeleteLocked(gpucolo_stream* s) {
  if (s->lease.part != nullptr) {
    if (g_tracker.IsCurrent(s->lease.green)) {
      g_tracker.Lock();
      g_tracker.Violation("green context " + std::to_string(s->lease.green) + " destroyed while current");
      g_tracker.Unlock();
    }
    if (Busy(s)) {
      g_tracker.Lock();
      g_tracker.Violation("green context " + std::to_string(s->lease.green) + " destroyed with work in flight");
      g_tracker.Unlock();
    }
    g_parts.Release(&s->lease);
  }
  for (size_t i = 0; i < g_live.size(); ++i)
    if (g_live[i] == s) g_live.erase(g_live.begin() + static_cast<long>(i));
  delete s;
}

void ReapLocked() { g_kept.Reap(Busy, DeleteLocked); }

int Init(char*, unsigned) {
  std::lock_guard<std::mutex> lock(g_mu);
  ++g_refs;
  return GPUCOLO_OK;
}
int DeviceCount(int* out, char*, unsigned) {
  *out = 1;
  return GPUCOLO_OK;
}
int MaxActiveBlocks(int device, uint32_t tpb, int* out, char* err, unsigned errlen) {
  *out = 0;
  if (device != 0) return SetErr(err, errlen, "no device"), GPUCOLO_ERR_NO_DEVICE;
  if (tpb == 0 || tpb > 1024) return SetErr(err, errlen, "threads_per_block out of range"), GPUCOLO_ERR_INVALID;
  const int by_threads = static_cast<int>(2048 / tpb);  // H100: 2048 threads and 32 blocks per SM
  *out = by_threads < 32 ? by_threads : 32;
  return GPUCOLO_OK;
}
int DeviceInfo(int device, gpucolo_device_info* o, char* err, unsigned errlen) {
  if (device != 0) return SetErr(err, errlen, "no device"), GPUCOLO_ERR_NO_DEVICE;
  std::memset(o, 0, sizeof *o);
  std::snprintf(o->name, sizeof o->name, "fake H100 (green contexts)");
  std::snprintf(o->arch, sizeof o->arch, "sm_90");
  o->compute_units = kSms;
  o->priority_least = 0;
  o->priority_greatest = -5;
  o->supports_sm_partition = 1;
  o->timer_resolution_ns = 1;
  o->max_threads_per_block = 1024;
  o->fill_threads_per_block = 64;
  MaxActiveBlocks(0, 64, &o->max_active_blocks_per_cu, nullptr, 0);
  o->num_xcc = 1;
  return GPUCOLO_OK;
}
int StreamCreate(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
  *out = nullptr;
  if (o->device != 0) return SetErr(err, errlen, "no device"), GPUCOLO_ERR_NO_DEVICE;
  if (o->cu_mask != nullptr) return SetErr(err, errlen, "no CU masks"), GPUCOLO_ERR_UNSUPPORTED;
  if (o->priority < -5 || o->priority > 0) return SetErr(err, errlen, "priority out of range"), GPUCOLO_ERR_INVALID;
  std::lock_guard<std::mutex> lock(g_mu);
  ReapLocked();
  auto* s = new gpucolo_stream();
  s->priority = o->priority;
  if (o->sm_count > 0) {
    std::string why;
    const int rc = g_parts.Acquire(o->sm_count, &s->lease, &why);
    if (rc != GPUCOLO_OK) {
      SetErr(err, errlen, why.c_str());
      delete s;
      return rc;
    }
    s->green = s->lease.green;
    if (g_share.load()) {  // the old design: the partition's first live stream's context for all
      for (gpucolo_stream* other : g_live)
        if (other->lease.part == s->lease.part) {
          s->green = other->green;
          break;
        }
    }
  }
  g_live.push_back(s);
  *out = s;
  return GPUCOLO_OK;
}
int StreamDestroy(gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  bool busy;
  {
    Scope scope(s);
    const uint64_t until = NowNs() + kGraceNs;  // these kernels ignore the cancel: wait, bounded
    while (Busy(s) && NowNs() < until) std::this_thread::sleep_for(std::chrono::microseconds(200));
    busy = Busy(s);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (busy) {
    g_kept.Keep(s);
    return GPUCOLO_ERR_TIMEOUT;
  }
  DeleteLocked(s);
  return GPUCOLO_OK;
}
int Launch(gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* err, unsigned errlen) {
  if (s == nullptr || k == nullptr || slot >= GPUCOLO_SLOTS) return SetErr(err, errlen, "bad launch"), GPUCOLO_ERR_INVALID;
  Scope scope(s);
  const uint64_t now = NowNs();
  const uint64_t begin = s->last_end.load() > now ? s->last_end.load() : now;
  const uint64_t finish = begin + k->spin_ns;
  s->start[slot].store(begin);
  s->end[slot].store(finish);
  s->last_end.store(finish);
  s->used[slot].store(1, std::memory_order_release);
  return GPUCOLO_OK;
}
int Poll(gpucolo_stream* s, uint32_t slot, uint64_t* a, uint64_t* b) {
  if (s == nullptr || slot >= GPUCOLO_SLOTS || s->used[slot].load(std::memory_order_acquire) == 0) return GPUCOLO_ERR_INVALID;
  const uint64_t end = s->end[slot].load();
  if (NowNs() < end) return 0;
  if (a) *a = s->start[slot].load();
  if (b) *b = end;
  return 1;
}
int Synchronize(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen) {
  Scope scope(s);
  const uint64_t until = NowNs() + timeout_ns;
  while (Busy(s)) {
    if (NowNs() >= until) return SetErr(err, errlen, "synchronize: timeout"), GPUCOLO_ERR_TIMEOUT;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return GPUCOLO_OK;
}
int ReadDeviceTime(int, uint64_t* out, char*, unsigned) {
  *out = NowNs();
  return GPUCOLO_OK;
}
void Shutdown() {
  std::lock_guard<std::mutex> lock(g_mu);
  ReapLocked();
  if (g_refs > 0) --g_refs;
}
int StreamInfo(gpucolo_stream* s, gpucolo_stream_info* out) {
  if (s == nullptr || out == nullptr) return GPUCOLO_ERR_INVALID;
  out->sm_count = s->lease.part != nullptr ? static_cast<int>(s->lease.part->sms) : 0;
  out->compute_units = out->sm_count > 0 ? out->sm_count : kSms;
  return GPUCOLO_OK;
}

const gpucolo_gpu_api kApi = {GPUCOLO_GPU_ABI, "fake-green", Init,        DeviceCount,    DeviceInfo,
                              StreamCreate,    StreamDestroy, Launch,     Poll,           Synchronize,
                              ReadDeviceTime,  Shutdown,      MaxActiveBlocks, StreamInfo};

}  // namespace

FAKE_EXPORT const gpucolo_gpu_api* gpucolo_gpu_get_api(void) { return &kApi; }
FAKE_EXPORT int gpucolo_fake_green_violations(void) { return g_tracker.Violations(); }
FAKE_EXPORT void gpucolo_fake_green_last_violation(char* out, unsigned len) { SetErr(out, len, g_tracker.Last().c_str()); }
FAKE_EXPORT void gpucolo_fake_green_reset(void) { g_tracker.Reset(); }
FAKE_EXPORT void gpucolo_fake_green_share_contexts(int on) { g_share.store(on != 0); }
FAKE_EXPORT void gpucolo_fake_green_hold_ns(unsigned long long ns) { g_hold_ns.store(ns); }
/** green contexts alive (streams' own plus the holders of not yet carved SMs) */
FAKE_EXPORT int gpucolo_fake_green_contexts(void) {
  std::lock_guard<std::mutex> lock(g_mu);
  return static_cast<int>(g_drv.greens.size());
}
FAKE_EXPORT int gpucolo_fake_green_kept(void) {
  std::lock_guard<std::mutex> lock(g_mu);
  return static_cast<int>(g_kept.Size());
}
FAKE_EXPORT int gpucolo_fake_green_stream_context(gpucolo_stream* s) { return s != nullptr ? s->green : -1; }
