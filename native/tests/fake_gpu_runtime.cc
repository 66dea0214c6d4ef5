// gpucolo_fake_core_plugin: the shared GPU plugin source (native/plugins/plugin_core.inc) built
// against a fake runtime instead of CUDA or HIP, so its launch, poll, watchdog, deferred-release
// and engine paths run in the C++ tests without a GPU (native/tests/test_green.cc). The fake is a
// third vendor layer: GPUCOLO_RT(Name) -> fakeName. Each stream is a host thread that runs its
// queue in order; a kernel runs on it block after block with one thread per block (thread 0, the
// only one of the probe kernel with side effects), its __shared__ variables thread_local; device
// memory is host memory and the device timer is CLOCK_MONOTONIC. One device, 4 compute units,
// priorities 0 (least) .. -2 (greatest), no CU masks, no SM partitions.
//
// Test controls (exported): gpucolo_fake_gpu_hold(1) keeps every stream from starting its next
// item until gpucolo_fake_gpu_hold(0) (work that stays in flight as long as a test wants, without
// racing a clock); gpucolo_fake_gpu_live_streams() counts runtime streams not yet destroyed,
// gpucolo_fake_gpu_kept_streams() the plugin's kept (deferred-release) streams.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deferred_release.h"
#include "plugin_common.h"

// ---- the device-code vocabulary on the host (after every header, which must not see it)
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static thread_local

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
thread_local dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, gridDim{1, 1, 1};
inline void __syncthreads() {}
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

// ---- the fake runtime's API, in the shape plugin_core.inc expects
enum fakeError_t { fakeSuccess = 0, fakeErrorInvalidValue = 1, fakeErrorNoDevice = 100, fakeErrorInvalidDevice = 101,
                   fakeErrorNotReady = 600 };
struct FakeStream;
using fakeStream_t = FakeStream*;
constexpr unsigned fakeStreamNonBlocking = 1;

namespace {

std::atomic<int> g_live_streams{0};
std::atomic<int> g_hold{0};

struct fakeDeviceProp {
  char name[64];
};

}  // namespace

struct FakeStream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool running = false;  // an item taken from the queue is executing
  bool stop = false;
  std::thread worker;
  FakeStream() : worker([this] { Loop(); }) { ++g_live_streams; }
  ~FakeStream() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    worker.join();
    --g_live_streams;
  }
  void Enqueue(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(fn));
    }
    cv.notify_all();
  }
  bool Busy() {
    std::lock_guard<std::mutex> lock(mu);
    return running || !queue.empty();
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stopped and drained
      std::function<void()> fn = std::move(queue.front());
      queue.pop_front();
      running = true;
      lock.unlock();
      while (g_hold.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      fn();
      lock.lock();
      running = false;
    }
  }
};

namespace {

thread_local fakeError_t g_last = fakeSuccess;
fakeError_t Fail(fakeError_t e) { return g_last = e; }

}  // namespace

inline const char* fakeGetErrorName(fakeError_t e) {
  switch (e) {
    case fakeSuccess: return "fakeSuccess";
    case fakeErrorInvalidValue: return "fakeErrorInvalidValue";
    case fakeErrorNoDevice: return "fakeErrorNoDevice";
    case fakeErrorInvalidDevice: return "fakeErrorInvalidDevice";
    case fakeErrorNotReady: return "fakeErrorNotReady";
  }
  return "fakeErrorUnknown";
}
inline const char* fakeGetErrorString(fakeError_t e) { return e == fakeSuccess ? "no error" : "fake runtime error"; }
inline fakeError_t fakeGetLastError() {
  const fakeError_t e = g_last;
  g_last = fakeSuccess;
  return e;
}
inline fakeError_t fakeGetDeviceCount(int* n) {
  *n = 1;
  return fakeSuccess;
}
inline fakeError_t fakeSetDevice(int dev) { return dev == 0 ? fakeSuccess : Fail(fakeErrorInvalidDevice); }
inline fakeError_t fakeDeviceGetStreamPriorityRange(int* least, int* greatest) {
  *least = 0;
  *greatest = -2;
  return fakeSuccess;
}
inline fakeError_t fakeStreamCreateWithPriority(fakeStream_t* s, unsigned, int) {
  *s = new FakeStream();
  return fakeSuccess;
}
inline fakeError_t fakeStreamDestroy(fakeStream_t s) {
  delete s;
  return fakeSuccess;
}
inline fakeError_t fakeStreamQuery(fakeStream_t s) { return s->Busy() ? fakeErrorNotReady : fakeSuccess; }
inline fakeError_t fakeHostGetDevicePointer(void** dev, void* host, unsigned) {
  *dev = host;  // host-mapped memory: the same address on both sides
  return fakeSuccess;
}
inline fakeError_t fakeMalloc(void** p, size_t bytes) {
  *p = std::calloc(1, bytes);
  return *p != nullptr ? fakeSuccess : Fail(fakeErrorInvalidValue);
}
inline fakeError_t fakeFree(void* p) {
  std::free(p);
  return fakeSuccess;
}
inline fakeError_t fakeMemsetAsync(void* p, int v, size_t bytes, fakeStream_t s) {
  s->Enqueue([=] { std::memset(p, v, bytes); });
  return fakeSuccess;
}
inline fakeError_t fakeOccupancyMaxActiveBlocksPerMultiprocessor(int* n, const void*, int threads, size_t) {
  *n = threads <= 256 ? 8 : 2048 / threads;
  return fakeSuccess;
}
fakeError_t fakeLaunchKernel(const void* fn, dim3 grid, dim3 block, void** args, size_t shared, fakeStream_t s);

// ---- the vendor layer
#define GPUCOLO_BACKEND "fake"
#define GPUCOLO_RT(name) fake##name
#define GPUCOLO_RT_STR(name) "fake" #name
#define GPUCOLO_HOST_ALLOC_STR "fakeHostAlloc"

namespace {

using RtDeviceProp = fakeDeviceProp;
inline fakeError_t HostAllocMapped(void** p, size_t bytes) { return fakeMalloc(p, bytes); }
inline fakeError_t HostFree(void* p) { return fakeFree(p); }
inline unsigned long long DeviceTimer() { return gpucolo_plugin::MonotonicNs(); }
inline uint64_t TicksToNs(unsigned long long ticks, long long) { return ticks; }
inline unsigned long long NsToTicks(uint64_t ns, long long) { return ns; }

}  // namespace

// at global scope: g++ warns (-Wsubobject-linkage) when the global gpucolo_stream, defined in an
// included file, holds a member whose type is in an anonymous namespace
struct VendorDevice {};
struct VendorStream {};

namespace {

class StreamScope {
 public:
  StreamScope(gpucolo_stream* s, char* err, unsigned errlen);
  int rc() const { return rc_; }

 private:
  int rc_ = GPUCOLO_OK;
};

}  // namespace

#include "plugin_core.inc"

// Runs the grid on the calling (stream) thread: block after block, thread 0 of each.
template <class Kernel>
void RunGrid(dim3 grid, Kernel k) {
  gridDim = grid;
  threadIdx = dim3(0, 0, 0);
  for (unsigned b = 0; b < grid.x; ++b) {
    blockIdx = dim3(b, 0, 0);
    k();
  }
}

fakeError_t fakeLaunchKernel(const void* fn, dim3 grid, dim3 /*block*/, void** args, size_t, fakeStream_t s) {
  if (fn == reinterpret_cast<const void*>(&ProbeKernel)) {
    HostSlot* slot = *static_cast<HostSlot**>(args[0]);
    unsigned* done = *static_cast<unsigned**>(args[1]);
    const volatile unsigned* cancel = *static_cast<const volatile unsigned**>(args[2]);
    const unsigned long long spin = *static_cast<unsigned long long*>(args[3]);
    const unsigned long long check = *static_cast<unsigned long long*>(args[4]);
    const unsigned seq = *static_cast<unsigned*>(args[5]);
    s->Enqueue([=] { RunGrid(grid, [&] { ProbeKernel(slot, done, cancel, spin, check, seq); }); });
    return fakeSuccess;
  }
  if (fn == reinterpret_cast<const void*>(&ReadTimerKernel)) {
    unsigned long long* out = *static_cast<unsigned long long**>(args[0]);
    const unsigned seq = *static_cast<unsigned*>(args[1]);
    s->Enqueue([=] { RunGrid(grid, [&] { ReadTimerKernel(out, seq); }); });
    return fakeSuccess;
  }
  return Fail(fakeErrorInvalidValue);
}

namespace {

StreamScope::StreamScope(gpucolo_stream* s, char* err, unsigned errlen) {
  const fakeError_t e = fakeSetDevice(s->device);
  if (e != fakeSuccess) rc_ = RtErr(e, "fakeSetDevice", err, errlen);
}

// ---- the vendor hooks

int InitRuntimeLocked(int* count, char* /*err*/, unsigned /*errlen*/) {
  fakeGetDeviceCount(count);
  return GPUCOLO_OK;
}
int DeviceCountAllowed(char* /*err*/, unsigned /*errlen*/) { return GPUCOLO_OK; }
std::string DeviceCountContext() { return ""; }

int ReadDeviceLocked(int /*dev*/, DeviceState& d, fakeDeviceProp* prop, char* /*err*/, unsigned /*errlen*/) {
  std::snprintf(prop->name, sizeof prop->name, "fake GPU");
  d.name = prop->name;
  d.arch = "fake_1";
  d.compute_units = 4;
  d.max_threads = 1024;
  return GPUCOLO_OK;
}

int FinishDeviceLocked(int, const fakeDeviceProp&, DeviceState&, char*, unsigned) { return GPUCOLO_OK; }

void FillDeviceInfo(DeviceState& /*d*/, gpucolo_device_info* out) {
  out->timer_resolution_ns = 1;
  out->num_xcc = 1;
}

int EnsureDeviceTimer(int dev, char* err, unsigned errlen) { return EnsureDevice(dev, err, errlen); }

int NewStream(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
  if (o->cu_mask != nullptr || o->sm_count != 0) {
    SetErr(err, errlen, "the fake runtime has neither CU masks nor SM partitions");
    return o->sm_count < 0 ? GPUCOLO_ERR_INVALID : GPUCOLO_ERR_UNSUPPORTED;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  int rc = EnsureDeviceLocked(o->device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  ReapKeptLocked();
  const DeviceState& d = *g_devices[o->device];
  if ((rc = CheckPriority(d, o->priority, err, errlen)) != GPUCOLO_OK) return rc;
  auto* s = new gpucolo_stream();
  s->device = o->device;
  s->compute_units = d.compute_units;
  *out = s;
  return GPUCOLO_OK;
}

int CreateRuntimeStream(gpucolo_stream* s, const gpucolo_stream_opts* o, char* /*err*/, unsigned /*errlen*/) {
  fakeStreamCreateWithPriority(&s->stream, fakeStreamNonBlocking, o->priority);
  return GPUCOLO_OK;
}

void StreamReady(gpucolo_stream* /*s*/) {}
bool BusyInScope(gpucolo_stream* s, int scope_rc) { return scope_rc == GPUCOLO_OK && QueryBusy(s); }
void DestroyRuntimeStream(gpucolo_stream* s) { fakeStreamDestroy(s->stream); }
void ReleaseStreamLocked(gpucolo_stream* /*s*/) {}

}  // namespace

GPUCOLO_EXPORT void gpucolo_fake_gpu_hold(int on) { g_hold.store(on); }
GPUCOLO_EXPORT int gpucolo_fake_gpu_live_streams(void) { return g_live_streams.load(); }
GPUCOLO_EXPORT int gpucolo_fake_gpu_kept_streams(void) {
  std::lock_guard<std::mutex> lock(g_mu);
  return static_cast<int>(g_kept.Size());
}
