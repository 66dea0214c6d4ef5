// gpucolo_cuda.so: the CUDA backend of native/dispatch/gpu_plugin.h.
//
// Built by CMake's CUDA language with the static cudart, hidden visibility and a version script,
// so the only dynamic symbols are gpucolo_gpu_get_api and the optional gpucolo_cuda_* helpers
// below, and the .so needs no libcudart/libcuda at load time: cudart_static dlopen()s
// libcuda.so.1 when the runtime first initialises, and a host without a driver gets an error
// from init() ("cudaErrorInsufficientDriver: ...") instead of a load failure or an abort.
//
// Design (one gpucolo_stream = one CUDA stream + a ring of GPUCOLO_SLOTS launch slots):
//  - Streams: cudaStreamCreateWithPriority(cudaStreamNonBlocking, priority), the priority checked
//    against cudaDeviceGetStreamPriorityRange (CUDA: least 0, greatest -5 on current GPUs).
//  - CU masks are an AMD feature: opts->cu_mask -> GPUCOLO_ERR_UNSUPPORTED.
//  - SM partitions (opts->sm_count > 0): NVIDIA green contexts from the driver API
//    (cuDeviceGetDevResource -> cuDevSmResourceSplitByCount -> cuDevResourceGenerateDesc ->
//    cuGreenCtxCreate -> cuGreenCtxStreamCreate). Those entry points are resolved at run time
//    with cudaGetDriverEntryPointByVersion, so a driver without them only means
//    supports_sm_partition = 0. Partition rules (per device):
//      * streams asking for the same sm_count share one green context (one partition);
//      * different sm_count values get DISJOINT partitions, carved in creation order from the
//        SMs not yet partitioned; a request >= what is left takes all that is left; the driver
//        rounds a request up to its granularity (sm_90: multiples of 8, min 8; sm_80: min 4,
//        multiples of 2) - gpucolo_cuda_stream_sm_count() tells the real size;
//      * SMs come back only when every partitioned stream of the device is destroyed;
//      * ordinary streams (sm_count 0) still run on the whole device: to keep a reserve for
//        high-priority work, put the other streams in a partition too.
//  - Probe kernel: every thread spins until spin_ns of %globaltimer have passed since it
//    started (0 = empty kernel). Block 0 / thread 0 writes the device START time (block 0's
//    start; blocks start within the launch's dispatch burst, and a true min over all blocks would
//    cost an atomic per block on host memory for no practical gain). Every block's thread 0 then
//    increments a per-slot counter in device memory; the LAST block to finish writes the END
//    time, a __threadfence_system(), then the slot's sequence number, all into host-mapped
//    memory (cudaHostAlloc mapped|portable). poll() is thus a plain host memory read.
//  - cudaEvents as a cross-check: each launch is bracketed by an event pair (created lazily per
//    slot); gpucolo_cuda_event_ms() returns its elapsed time. GPUCOLO_CUDA_EVENTS=0 turns the
//    events off (two fewer API calls per launch).
//  - Watchdog: synchronize() polls cudaStreamQuery and never blocks in cudaStreamSynchronize. On
//    timeout it sets the stream's cancel word (host-mapped); spinning blocks look at it every
//    100 us of device time and stop, so a runaway launch ends, poll() reports it as
//    GPUCOLO_ERR_TIMEOUT, and the stream (and the device) stay usable.
//  - read_device_time(): a one-thread kernel reads %globaltimer into mapped memory on a
//    per-device helper stream at the highest priority; the host spins on the result (5 s limit).
//
// Thread safety: global state (devices, partitions) is behind one mutex; a stream is used by one
// thread at a time (gpu_plugin.h), so per-stream state is not locked.

#include <cuda.h>          // driver API types only; functions are resolved at run time
#include <cudaTypedefs.h>  // PFN_* typedefs of those functions
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "gpu_plugin.h"
#include "plugin_common.h"

using gpucolo_plugin::CheckKernel;
using gpucolo_plugin::HostSlot;
using gpucolo_plugin::MonotonicNs;
using gpucolo_plugin::SetErr;

#define GPUCOLO_EXPORT extern "C" __attribute__((visibility("default")))

// ------------------------------------------------------------------------------------------------
// device code

namespace {

__device__ __forceinline__ unsigned long long GlobalTimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void ProbeKernel(HostSlot* slot, unsigned* done_blocks, const volatile unsigned* cancel,
                            unsigned long long spin_ns, unsigned seq) {
  const unsigned long long t0 = GlobalTimer();
  const bool leader = threadIdx.x == 0;
  __shared__ volatile unsigned stop;
  if (leader) {
    if (blockIdx.x == 0) slot->start = t0;
    stop = 0;
  }
  if (spin_ns != 0) {
    __syncthreads();
    unsigned long long next_check = t0 + gpucolo_plugin::kCancelCheckNs;
    while (!stop) {
      const unsigned long long now = GlobalTimer();
      if (now - t0 >= spin_ns) break;
      if (leader && now >= next_check) {
        next_check = now + gpucolo_plugin::kCancelCheckNs;
        if (*cancel != 0) stop = 1;
      }
    }
  }
  __syncthreads();
  if (!leader) return;
  if (stop) slot->cancelled = 1;
  __threadfence_system();  // block 0's start (and any cancel mark) before this block counts
  const unsigned finished = atomicAdd(done_blocks, 1u);
  if (finished == gridDim.x - 1) {  // the last block: the kernel's true end
    *done_blocks = 0;               // ready for the next launch in this slot
    slot->end = GlobalTimer();
    __threadfence_system();
    *reinterpret_cast<volatile unsigned*>(&slot->seq) = seq;
  }
}

// out[0] = device time; out[1] (as u32) = seq, written last
__global__ void ReadTimerKernel(unsigned long long* out, unsigned seq) {
  out[0] = GlobalTimer();
  __threadfence_system();
  *reinterpret_cast<volatile unsigned*>(&out[1]) = seq;
}

// out[0] = smallest step of %globaltimer seen between consecutive changes (its resolution)
__global__ void TimerResolutionKernel(unsigned long long* out, unsigned seq) {
  unsigned long long prev = GlobalTimer(), best = ~0ull;
  int changes = 0;
  for (unsigned i = 0; i < (1u << 22) && changes < 9; ++i) {
    const unsigned long long t = GlobalTimer();
    if (t != prev) {
      if (changes > 0 && t - prev < best) best = t - prev;  // the first change may be partial
      prev = t;
      ++changes;
    }
  }
  out[0] = changes > 1 ? best : 0;
  __threadfence_system();
  *reinterpret_cast<volatile unsigned*>(&out[1]) = seq;
}

// ------------------------------------------------------------------------------------------------
// driver API entry points (green contexts), resolved at run time

struct DriverApi {
  bool green = false;      // every green-context entry point was found
  std::string why_not;     // why green contexts are unavailable
  PFN_cuGetErrorName_v6000 GetErrorName = nullptr;
  PFN_cuGetErrorString_v6000 GetErrorString = nullptr;
  PFN_cuDeviceGet_v2000 DeviceGet = nullptr;
  PFN_cuCtxPushCurrent_v4000 CtxPush = nullptr;
  PFN_cuCtxPopCurrent_v4000 CtxPop = nullptr;
  PFN_cuStreamDestroy_v4000 StreamDestroy = nullptr;
  PFN_cuDeviceGetDevResource_v12040 DeviceGetDevResource = nullptr;
  PFN_cuDevSmResourceSplitByCount_v12040 SmResourceSplitByCount = nullptr;
  PFN_cuDevResourceGenerateDesc_v12040 ResourceGenerateDesc = nullptr;
  PFN_cuGreenCtxCreate_v12040 GreenCtxCreate = nullptr;
  PFN_cuGreenCtxDestroy_v12040 GreenCtxDestroy = nullptr;
  PFN_cuGreenCtxGetDevResource_v12040 GreenCtxGetDevResource = nullptr;
  PFN_cuCtxFromGreenCtx_v12040 CtxFromGreenCtx = nullptr;
  PFN_cuGreenCtxStreamCreate_v12050 GreenCtxStreamCreate = nullptr;
};

struct Partition {
  int request = 0;     // sm_count asked for (the sharing key)
  unsigned sms = 0;    // SMs the driver gave
  CUgreenCtx green = nullptr;
  CUcontext ctx = nullptr;
  int refs = 0;
};

struct DeviceState {
  bool ready = false;
  std::string name;
  int cc_major = 0, cc_minor = 0, sms = 0, max_threads = 1024;
  int prio_least = 0, prio_greatest = 0;
  bool sm_partition = false;
  std::string sm_partition_why;
  double timer_res_ns = -1;  // < 0: not measured yet
  // helper stream + mapped buffer for read_device_time / timer resolution
  std::mutex helper_mu;
  cudaStream_t helper = nullptr;
  unsigned long long* helper_host = nullptr;  // [0] value, [1] seq
  unsigned long long* helper_dev = nullptr;
  unsigned helper_seq = 0;
  // green-context partitions
  std::vector<Partition*> parts;
  std::vector<CUgreenCtx> holders;  // green contexts that only hold the not yet carved rest
  bool have_pool = false, pool_exhausted = false;
  CUdevResource pool{};
};

std::mutex g_mu;
int g_refs = 0;
int g_count = 0;
std::vector<DeviceState*> g_devices;
DriverApi g_drv;
bool g_events = true;

int RtErr(cudaError_t e, const char* what, char* err, unsigned errlen) {
  SetErr(err, errlen, "%s: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e), what);
  cudaGetLastError();  // clear a non-sticky error so it does not surface in a later call
  return (e == cudaErrorNoDevice || e == cudaErrorInvalidDevice) ? GPUCOLO_ERR_NO_DEVICE : GPUCOLO_ERR_RUNTIME;
}

int DrvErr(CUresult r, const char* what, char* err, unsigned errlen) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (g_drv.GetErrorName) g_drv.GetErrorName(r, &name);
  if (g_drv.GetErrorString) g_drv.GetErrorString(r, &text);
  if (name)
    SetErr(err, errlen, "%s: %s (%s)", name, text ? text : "", what);
  else
    SetErr(err, errlen, "CUresult %d (%s)", static_cast<int>(r), what);
  return r == CUDA_ERROR_NOT_SUPPORTED ? GPUCOLO_ERR_UNSUPPORTED : GPUCOLO_ERR_RUNTIME;
}

template <class Fn>
bool Resolve(const char* symbol, unsigned version, Fn* out, std::string* missing) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e = cudaGetDriverEntryPointByVersion(symbol, &fn, version, cudaEnableDefault, &status);
  if (e != cudaSuccess || fn == nullptr || status != cudaDriverEntryPointSuccess) {
    cudaGetLastError();
    if (missing->empty()) *missing = symbol;
    *out = nullptr;
    return false;
  }
  *out = reinterpret_cast<Fn>(fn);
  return true;
}

void ResolveDriverApi() {
  DriverApi d;
  std::string missing;
  Resolve("cuGetErrorName", 6000, &d.GetErrorName, &missing);
  Resolve("cuGetErrorString", 6000, &d.GetErrorString, &missing);
  missing.clear();  // error names are a nicety, not a requirement
  bool ok = Resolve("cuDeviceGet", 2000, &d.DeviceGet, &missing);
  ok &= Resolve("cuCtxPushCurrent", 4000, &d.CtxPush, &missing);
  ok &= Resolve("cuCtxPopCurrent", 4000, &d.CtxPop, &missing);
  ok &= Resolve("cuStreamDestroy", 4000, &d.StreamDestroy, &missing);
  ok &= Resolve("cuDeviceGetDevResource", 12040, &d.DeviceGetDevResource, &missing);
  ok &= Resolve("cuDevSmResourceSplitByCount", 12040, &d.SmResourceSplitByCount, &missing);
  ok &= Resolve("cuDevResourceGenerateDesc", 12040, &d.ResourceGenerateDesc, &missing);
  ok &= Resolve("cuGreenCtxCreate", 12040, &d.GreenCtxCreate, &missing);
  ok &= Resolve("cuGreenCtxDestroy", 12040, &d.GreenCtxDestroy, &missing);
  ok &= Resolve("cuGreenCtxGetDevResource", 12040, &d.GreenCtxGetDevResource, &missing);
  ok &= Resolve("cuCtxFromGreenCtx", 12040, &d.CtxFromGreenCtx, &missing);
  ok &= Resolve("cuGreenCtxStreamCreate", 12050, &d.GreenCtxStreamCreate, &missing);
  d.green = ok;
  if (!ok) {
    int drv = 0;
    cudaDriverGetVersion(&drv);
    d.why_not = "SM partitions need NVIDIA green contexts (driver with CUDA >= 12.5): " + missing +
                " not available from the driver (CUDA " + std::to_string(drv / 1000) + "." +
                std::to_string((drv % 1000) / 10) + ")";
  }
  g_drv = d;
}

std::string DescribeDriver() {
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  std::string s = "CUDA runtime " + std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10) + ", ";
  if (drv != 0) return s + "driver supports CUDA " + std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10);
  dlerror();
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = dlerror();
    return s + "no driver: " + (why ? why : "libcuda.so.1 not loadable");
  }
  dlclose(h);
  return s + "libcuda.so.1 present but reports no version";
}

bool InitDone(char* err, unsigned errlen) {
  if (g_refs > 0) return true;
  SetErr(err, errlen, "cuda backend: init() has not been called (or shutdown() released it)");
  return false;
}

// Makes `dev` current on this thread and fills its DeviceState once. Call with g_mu held.
int EnsureDeviceLocked(int dev, char* err, unsigned errlen) {
  if (!InitDone(err, errlen)) return GPUCOLO_ERR_INVALID;
  if (dev < 0 || dev >= g_count) {
    SetErr(err, errlen, "cuda device %d out of range (%d device%s)", dev, g_count, g_count == 1 ? "" : "s");
    return GPUCOLO_ERR_NO_DEVICE;
  }
  cudaError_t e = cudaSetDevice(dev);
  if (e != cudaSuccess) return RtErr(e, "cudaSetDevice", err, errlen);
  DeviceState& d = *g_devices[dev];
  if (d.ready) return GPUCOLO_OK;
  if ((e = cudaFree(nullptr)) != cudaSuccess) return RtErr(e, "creating the primary context", err, errlen);
  cudaDeviceProp prop{};
  if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) return RtErr(e, "cudaGetDeviceProperties", err, errlen);
  d.name = prop.name;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.sms = prop.multiProcessorCount;
  d.max_threads = prop.maxThreadsPerBlock > 0 ? prop.maxThreadsPerBlock : 1024;
  if ((e = cudaDeviceGetStreamPriorityRange(&d.prio_least, &d.prio_greatest)) != cudaSuccess)
    return RtErr(e, "cudaDeviceGetStreamPriorityRange", err, errlen);
  if ((e = cudaStreamCreateWithPriority(&d.helper, cudaStreamNonBlocking, d.prio_greatest)) != cudaSuccess)
    return RtErr(e, "cudaStreamCreateWithPriority (helper stream)", err, errlen);
  void* host = nullptr;
  if ((e = cudaHostAlloc(&host, 64, cudaHostAllocMapped | cudaHostAllocPortable)) != cudaSuccess) {
    cudaStreamDestroy(d.helper);
    d.helper = nullptr;
    return RtErr(e, "cudaHostAlloc (helper buffer)", err, errlen);
  }
  std::memset(host, 0, 64);
  d.helper_host = static_cast<unsigned long long*>(host);
  void* devp = nullptr;
  if ((e = cudaHostGetDevicePointer(&devp, host, 0)) != cudaSuccess) {
    cudaFreeHost(host);
    cudaStreamDestroy(d.helper);
    d.helper = nullptr;
    d.helper_host = nullptr;
    return RtErr(e, "cudaHostGetDevicePointer (helper buffer)", err, errlen);
  }
  d.helper_dev = static_cast<unsigned long long*>(devp);
  // green contexts: entry points present, and the device answers for its SM resource
  if (!g_drv.green) {
    d.sm_partition = false;
    d.sm_partition_why = g_drv.why_not;
  } else {
    CUdevice cudev = 0;
    CUdevResource res{};
    CUresult r = g_drv.DeviceGet(&cudev, dev);
    if (r == CUDA_SUCCESS) r = g_drv.DeviceGetDevResource(cudev, &res, CU_DEV_RESOURCE_TYPE_SM);
    d.sm_partition = r == CUDA_SUCCESS && res.sm.smCount > 0;
    if (!d.sm_partition) {
      char buf[256];
      DrvErr(r, "cuDeviceGetDevResource", buf, sizeof buf);
      d.sm_partition_why = std::string("green contexts unavailable on this device: ") + buf;
    }
  }
  d.ready = true;
  return GPUCOLO_OK;
}

int EnsureDevice(int dev, char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  return EnsureDeviceLocked(dev, err, errlen);
}

// Runs a one-thread helper kernel on the device's helper stream and spins for its result.
enum class Helper { kReadTimer, kTimerResolution };
int RunHelper(int dev, Helper which, unsigned long long* out, char* err, unsigned errlen) {
  int rc = EnsureDevice(dev, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[dev];
  std::lock_guard<std::mutex> lock(d.helper_mu);
  if (++d.helper_seq == 0) d.helper_seq = 1;
  const unsigned seq = d.helper_seq;
  volatile unsigned* flag = reinterpret_cast<volatile unsigned*>(&d.helper_host[1]);
  *flag = 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  unsigned long long* buf = d.helper_dev;
  unsigned s = seq;
  void* args[] = {&buf, &s};
  const void* fn = which == Helper::kReadTimer ? reinterpret_cast<const void*>(&ReadTimerKernel)
                                              : reinterpret_cast<const void*>(&TimerResolutionKernel);
  const cudaError_t e = cudaLaunchKernel(fn, dim3(1), dim3(1), args, 0, d.helper);
  if (e != cudaSuccess) return RtErr(e, "cudaLaunchKernel (timer kernel)", err, errlen);
  const uint64_t t0 = MonotonicNs();
  unsigned spins = 0;
  while (*flag != seq) {
    if (MonotonicNs() - t0 > gpucolo_plugin::kHelperTimeoutNs) {
      const cudaError_t q = cudaStreamQuery(d.helper);
      if (q != cudaSuccess && q != cudaErrorNotReady) return RtErr(q, "timer kernel", err, errlen);
      SetErr(err, errlen, "cuda: timer kernel did not run within 5 s (device %d busy or hung)", dev);
      return GPUCOLO_ERR_TIMEOUT;
    }
    gpucolo_plugin::Backoff(&spins);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  *out = *reinterpret_cast<volatile unsigned long long*>(&d.helper_host[0]);
  return GPUCOLO_OK;
}

// ---- partitions (green contexts); call with g_mu held --------------------------------------------

int AcquirePartitionLocked(int dev, int sm_count, Partition** out, char* err, unsigned errlen) {
  DeviceState& d = *g_devices[dev];
  for (Partition* p : d.parts) {
    if (p->request == sm_count) {
      ++p->refs;
      *out = p;
      return GPUCOLO_OK;
    }
  }
  if (d.pool_exhausted) {
    std::string held;
    for (Partition* p : d.parts) held += (held.empty() ? "" : ", ") + std::to_string(p->sms);
    SetErr(err, errlen,
           "cuda device %d: every SM is already in a partition (%s SMs); destroy the partitioned streams first",
           dev, held.c_str());
    return GPUCOLO_ERR_INVALID;
  }
  CUdevice cudev = 0;
  CUresult r = g_drv.DeviceGet(&cudev, dev);
  if (r != CUDA_SUCCESS) return DrvErr(r, "cuDeviceGet", err, errlen);
  if (!d.have_pool) {
    r = g_drv.DeviceGetDevResource(cudev, &d.pool, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS) return DrvErr(r, "cuDeviceGetDevResource", err, errlen);
    d.have_pool = true;
  }
  CUdevResource group{}, rest{};
  const bool take_all = static_cast<unsigned>(sm_count) >= d.pool.sm.smCount;
  if (!take_all) {
    unsigned groups = 1;
    r = g_drv.SmResourceSplitByCount(&group, &groups, &d.pool, &rest, 0, static_cast<unsigned>(sm_count));
    if (r != CUDA_SUCCESS) return DrvErr(r, "cuDevSmResourceSplitByCount", err, errlen);
    if (groups == 0) {
      SetErr(err, errlen, "cuda device %d: cannot carve %d SMs from the %u not yet partitioned", dev, sm_count,
             d.pool.sm.smCount);
      return GPUCOLO_ERR_INVALID;
    }
  }
  CUdevResource* use = take_all ? &d.pool : &group;
  CUdevResourceDesc desc = nullptr;
  if ((r = g_drv.ResourceGenerateDesc(&desc, use, 1)) != CUDA_SUCCESS)
    return DrvErr(r, "cuDevResourceGenerateDesc", err, errlen);
  auto* p = new Partition();
  p->request = sm_count;
  p->sms = use->sm.smCount;
  p->refs = 1;
  if ((r = g_drv.GreenCtxCreate(&p->green, desc, cudev, CU_GREEN_CTX_DEFAULT_STREAM)) != CUDA_SUCCESS) {
    delete p;
    return DrvErr(r, "cuGreenCtxCreate", err, errlen);
  }
  if ((r = g_drv.CtxFromGreenCtx(&p->ctx, p->green)) != CUDA_SUCCESS) {
    g_drv.GreenCtxDestroy(p->green);
    delete p;
    return DrvErr(r, "cuCtxFromGreenCtx", err, errlen);
  }
  if (take_all || rest.sm.smCount == 0) {
    d.pool_exhausted = true;
  } else {
    // the rest can only be split again through a green context that holds it
    CUdevResourceDesc rdesc = nullptr;
    CUgreenCtx holder = nullptr;
    r = g_drv.ResourceGenerateDesc(&rdesc, &rest, 1);
    if (r == CUDA_SUCCESS) r = g_drv.GreenCtxCreate(&holder, rdesc, cudev, CU_GREEN_CTX_DEFAULT_STREAM);
    if (r == CUDA_SUCCESS) {
      d.holders.push_back(holder);
      r = g_drv.GreenCtxGetDevResource(holder, &d.pool, CU_DEV_RESOURCE_TYPE_SM);
    }
    if (r != CUDA_SUCCESS) d.pool_exhausted = true;  // this partition stands; later ones cannot be carved
  }
  d.parts.push_back(p);
  *out = p;
  return GPUCOLO_OK;
}

void ReleasePartitionLocked(int dev, Partition* p) {
  DeviceState& d = *g_devices[dev];
  if (--p->refs > 0) return;
  g_drv.GreenCtxDestroy(p->green);
  for (size_t i = 0; i < d.parts.size(); ++i) {
    if (d.parts[i] == p) {
      d.parts.erase(d.parts.begin() + static_cast<long>(i));
      break;
    }
  }
  delete p;
  if (d.parts.empty()) {
    for (CUgreenCtx h : d.holders) g_drv.GreenCtxDestroy(h);
    d.holders.clear();
    d.have_pool = false;
    d.pool_exhausted = false;
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// streams

struct gpucolo_stream {
  int device = 0;
  int priority = 0;
  cudaStream_t stream = nullptr;
  Partition* part = nullptr;  // green context (sm_count > 0), else null
  HostSlot* slots_host = nullptr;
  HostSlot* slots_dev = nullptr;
  volatile unsigned* cancel_host = nullptr;  // in the same mapped allocation, after the slots
  unsigned* cancel_dev = nullptr;
  unsigned* counters_dev = nullptr;  // finished-block counter per slot (device memory)
  bool cancel_pending = false;
  unsigned next_seq = 0;
  std::vector<unsigned> expect;      // per slot: seq of the last launch, 0 = none
  std::vector<cudaEvent_t> events;   // per slot: start, end (lazily created)
  bool use_events = true;
};

namespace {

// Makes the stream's device (and green context) current on this thread for the scope.
class StreamScope {
 public:
  StreamScope(gpucolo_stream* s, char* err, unsigned errlen) {
    cudaError_t e = cudaSetDevice(s->device);
    if (e != cudaSuccess) {
      rc_ = RtErr(e, "cudaSetDevice", err, errlen);
      return;
    }
    if (s->part != nullptr) {
      const CUresult r = g_drv.CtxPush(s->part->ctx);
      if (r != CUDA_SUCCESS) {
        rc_ = DrvErr(r, "cuCtxPushCurrent", err, errlen);
        return;
      }
      pushed_ = true;
    }
  }
  ~StreamScope() {
    if (pushed_) {
      CUcontext popped = nullptr;
      g_drv.CtxPop(&popped);
    }
  }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;
  int rc() const { return rc_; }

 private:
  int rc_ = GPUCOLO_OK;
  bool pushed_ = false;
};

// Frees a stream's resources; the caller has made its context current. Returns false (and frees
// nothing the device may still write to) when work is still running.
bool FreeStreamResources(gpucolo_stream* s) {
  bool idle = true;
  if (s->stream != nullptr) {
    const cudaError_t q = cudaStreamQuery(s->stream);
    idle = q != cudaErrorNotReady;
    cudaGetLastError();
    for (cudaEvent_t& ev : s->events)
      if (ev != nullptr) {
        cudaEventDestroy(ev);
        ev = nullptr;
      }
    if (s->part != nullptr)
      g_drv.StreamDestroy(reinterpret_cast<CUstream>(s->stream));
    else
      cudaStreamDestroy(s->stream);
    s->stream = nullptr;
  }
  if (!idle) return false;  // leak the mapped slots and counters rather than free memory in use
  if (s->counters_dev != nullptr) cudaFree(s->counters_dev);
  if (s->slots_host != nullptr) cudaFreeHost(s->slots_host);
  cudaGetLastError();
  s->counters_dev = nullptr;
  s->slots_host = nullptr;
  return true;
}

int Init(char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_refs > 0) {
    ++g_refs;
    return GPUCOLO_OK;
  }
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    const std::string where = "cudaGetDeviceCount; " + DescribeDriver();
    return RtErr(e, where.c_str(), err, errlen);
  }
  if (n <= 0) {
    SetErr(err, errlen, "cudaErrorNoDevice: no CUDA-capable device is detected");
    return GPUCOLO_ERR_NO_DEVICE;
  }
  ResolveDriverApi();
  g_events = gpucolo_plugin::EnvLong("GPUCOLO_CUDA_EVENTS", 1) != 0;
  if (static_cast<int>(g_devices.size()) < n) {
    for (int i = static_cast<int>(g_devices.size()); i < n; ++i) g_devices.push_back(new DeviceState());
  }
  g_count = n;
  g_refs = 1;
  return GPUCOLO_OK;
}

int DeviceCount(int* out, char* err, unsigned errlen) {
  if (out == nullptr) {
    SetErr(err, errlen, "device_count: out is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  *out = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorNoDevice) {
    cudaGetLastError();
    return GPUCOLO_OK;
  }
  if (e != cudaSuccess) {
    const std::string where = "cudaGetDeviceCount; " + DescribeDriver();
    return RtErr(e, where.c_str(), err, errlen);
  }
  *out = n;
  return GPUCOLO_OK;
}

int DeviceInfo(int device, gpucolo_device_info* out, char* err, unsigned errlen) {
  if (out == nullptr) {
    SetErr(err, errlen, "device_info: out is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  std::memset(out, 0, sizeof *out);
  int rc = EnsureDevice(device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[device];
  if (d.timer_res_ns < 0) {
    unsigned long long res = 0;
    char ignored[256];
    d.timer_res_ns = RunHelper(device, Helper::kTimerResolution, &res, ignored, sizeof ignored) == GPUCOLO_OK
                         ? static_cast<double>(res)
                         : 0.0;
  }
  gpucolo_plugin::CopyStr(out->name, sizeof out->name, d.name.c_str());
  std::snprintf(out->arch, sizeof out->arch, "sm_%d%d", d.cc_major, d.cc_minor);
  out->compute_units = d.sms;
  out->priority_least = d.prio_least;
  out->priority_greatest = d.prio_greatest;
  out->supports_cu_mask = 0;
  out->supports_sm_partition = d.sm_partition ? 1 : 0;
  out->timer_resolution_ns = d.timer_res_ns;
  return GPUCOLO_OK;
}

int StreamDestroy(gpucolo_stream* s);

int StreamCreate(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
  if (o == nullptr || out == nullptr) {
    SetErr(err, errlen, "stream_create: opts and out must not be NULL");
    return GPUCOLO_ERR_INVALID;
  }
  *out = nullptr;
  if (o->cu_mask != nullptr) {
    SetErr(err, errlen,
           "CU masks are an AMD feature (hipExtStreamCreateWithCUMask); on NVIDIA use sm_count (green contexts)");
    return GPUCOLO_ERR_UNSUPPORTED;
  }
  if (o->sm_count < 0) {
    SetErr(err, errlen, "stream_create: sm_count must be >= 0, got %d", o->sm_count);
    return GPUCOLO_ERR_INVALID;
  }
  std::unique_lock<std::mutex> lock(g_mu);
  int rc = EnsureDeviceLocked(o->device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[o->device];
  // CUDA: greatest (highest) priority is the numerically lowest
  if (o->priority < d.prio_greatest || o->priority > d.prio_least) {
    SetErr(err, errlen, "stream priority %d outside the device's range %d (highest) .. %d (lowest)", o->priority,
           d.prio_greatest, d.prio_least);
    return GPUCOLO_ERR_INVALID;
  }
  if (o->sm_count > 0 && !d.sm_partition) {
    SetErr(err, errlen, "%s", d.sm_partition_why.c_str());
    return GPUCOLO_ERR_UNSUPPORTED;
  }
  auto* s = new gpucolo_stream();
  s->device = o->device;
  s->priority = o->priority;
  s->use_events = g_events;
  if (o->sm_count > 0) {
    rc = AcquirePartitionLocked(o->device, o->sm_count, &s->part, err, errlen);
    if (rc != GPUCOLO_OK) {
      delete s;
      return rc;
    }
  }
  lock.unlock();
  {
    StreamScope scope(s, err, errlen);
    if ((rc = scope.rc()) != GPUCOLO_OK) goto fail;
    cudaError_t e;
    if (s->part != nullptr) {
      CUstream cs = nullptr;
      const CUresult r = g_drv.GreenCtxStreamCreate(&cs, s->part->green, CU_STREAM_NON_BLOCKING, o->priority);
      if (r != CUDA_SUCCESS) {
        rc = DrvErr(r, "cuGreenCtxStreamCreate", err, errlen);
        goto fail;
      }
      s->stream = reinterpret_cast<cudaStream_t>(cs);
    } else if ((e = cudaStreamCreateWithPriority(&s->stream, cudaStreamNonBlocking, o->priority)) != cudaSuccess) {
      rc = RtErr(e, "cudaStreamCreateWithPriority", err, errlen);
      goto fail;
    }
    const size_t slots_bytes = sizeof(HostSlot) * GPUCOLO_SLOTS;
    void* host = nullptr;
    if ((e = cudaHostAlloc(&host, slots_bytes + 64, cudaHostAllocMapped | cudaHostAllocPortable)) != cudaSuccess) {
      rc = RtErr(e, "cudaHostAlloc (launch slots)", err, errlen);
      goto fail;
    }
    std::memset(host, 0, slots_bytes + 64);
    s->slots_host = static_cast<HostSlot*>(host);
    s->cancel_host = reinterpret_cast<volatile unsigned*>(static_cast<char*>(host) + slots_bytes);
    void* devp = nullptr;
    if ((e = cudaHostGetDevicePointer(&devp, host, 0)) != cudaSuccess) {
      rc = RtErr(e, "cudaHostGetDevicePointer (launch slots)", err, errlen);
      goto fail;
    }
    s->slots_dev = static_cast<HostSlot*>(devp);
    s->cancel_dev = reinterpret_cast<unsigned*>(static_cast<char*>(devp) + slots_bytes);
    void* counters = nullptr;
    if ((e = cudaMalloc(&counters, sizeof(unsigned) * GPUCOLO_SLOTS)) != cudaSuccess) {
      rc = RtErr(e, "cudaMalloc (block counters)", err, errlen);
      goto fail;
    }
    s->counters_dev = static_cast<unsigned*>(counters);
    if ((e = cudaMemsetAsync(counters, 0, sizeof(unsigned) * GPUCOLO_SLOTS, s->stream)) != cudaSuccess) {
      rc = RtErr(e, "cudaMemsetAsync (block counters)", err, errlen);
      goto fail;
    }
  }
  s->expect.assign(GPUCOLO_SLOTS, 0);
  if (s->use_events) s->events.assign(2 * static_cast<size_t>(GPUCOLO_SLOTS), nullptr);
  *out = s;
  return GPUCOLO_OK;
fail:
  StreamDestroy(s);
  return rc;
}

int StreamDestroy(gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  int rc = GPUCOLO_OK;
  {
    StreamScope scope(s, nullptr, 0);
    if (s->stream != nullptr && s->cancel_host != nullptr && cudaStreamQuery(s->stream) == cudaErrorNotReady) {
      // let running probe kernels stop early, then wait a bounded time for them
      *s->cancel_host = 1;
      const uint64_t t0 = MonotonicNs();
      unsigned spins = 0;
      while (cudaStreamQuery(s->stream) == cudaErrorNotReady && MonotonicNs() - t0 < gpucolo_plugin::kCancelGraceNs)
        gpucolo_plugin::Backoff(&spins);
    }
    cudaGetLastError();
    if (!FreeStreamResources(s)) rc = GPUCOLO_ERR_TIMEOUT;
  }
  if (s->part != nullptr) {
    std::lock_guard<std::mutex> lock(g_mu);
    ReleasePartitionLocked(s->device, s->part);
    s->part = nullptr;
  }
  delete s;
  return rc;
}

int Launch(gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* err, unsigned errlen) {
  if (s == nullptr) {
    SetErr(err, errlen, "launch: stream is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  int rc = CheckKernel(k, slot, g_devices[s->device]->max_threads, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  HostSlot* h = &s->slots_host[slot];
  if (s->expect[slot] != 0 && *reinterpret_cast<volatile uint32_t*>(&h->seq) != s->expect[slot]) {
    SetErr(err, errlen, "launch: slot %u is still in flight", slot);
    return GPUCOLO_ERR_INVALID;
  }
  StreamScope scope(s, err, errlen);
  if ((rc = scope.rc()) != GPUCOLO_OK) return rc;
  if (s->cancel_pending) {
    const cudaError_t q = cudaStreamQuery(s->stream);
    if (q == cudaErrorNotReady) {
      SetErr(err, errlen, "launch: the stream is still draining launches cancelled by a synchronize() timeout");
      return GPUCOLO_ERR_RUNTIME;
    }
    if (q != cudaSuccess) return RtErr(q, "cudaStreamQuery", err, errlen);
    *s->cancel_host = 0;
    s->cancel_pending = false;
  }
  if (++s->next_seq == 0) s->next_seq = 1;
  const unsigned seq = s->next_seq;
  volatile HostSlot* vh = h;
  vh->start = 0;
  vh->end = 0;
  vh->cancelled = 0;
  vh->seq = 0;
  s->expect[slot] = 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);

  cudaError_t e;
  cudaEvent_t* ev = s->use_events ? &s->events[2 * static_cast<size_t>(slot)] : nullptr;
  if (ev != nullptr) {
    for (int i = 0; i < 2; ++i)
      if (ev[i] == nullptr && (e = cudaEventCreate(&ev[i])) != cudaSuccess) return RtErr(e, "cudaEventCreate", err, errlen);
    if ((e = cudaEventRecord(ev[0], s->stream)) != cudaSuccess) return RtErr(e, "cudaEventRecord", err, errlen);
  }
  HostSlot* slot_dev = s->slots_dev + slot;
  unsigned* counter = s->counters_dev + slot;
  const volatile unsigned* cancel = s->cancel_dev;
  unsigned long long spin = k->spin_ns;
  unsigned sq = seq;
  void* args[] = {&slot_dev, &counter, &cancel, &spin, &sq};
  e = cudaLaunchKernel(reinterpret_cast<const void*>(&ProbeKernel), dim3(k->blocks), dim3(k->threads_per_block), args,
                       0, s->stream);
  if (e != cudaSuccess) return RtErr(e, "cudaLaunchKernel", err, errlen);
  s->expect[slot] = seq;
  if (ev != nullptr && (e = cudaEventRecord(ev[1], s->stream)) != cudaSuccess)
    return RtErr(e, "cudaEventRecord", err, errlen);  // the kernel itself is in flight and will complete
  return GPUCOLO_OK;
}

int Poll(gpucolo_stream* s, uint32_t slot, uint64_t* device_start_ns, uint64_t* device_end_ns) {
  if (s == nullptr || slot >= GPUCOLO_SLOTS || s->expect[slot] == 0) return GPUCOLO_ERR_INVALID;
  const volatile HostSlot* h = &s->slots_host[slot];
  if (h->seq != s->expect[slot]) return 0;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (device_start_ns) *device_start_ns = h->start;
  if (device_end_ns) *device_end_ns = h->end;
  return h->cancelled ? GPUCOLO_ERR_TIMEOUT : 1;
}

int Synchronize(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen) {
  if (s == nullptr) {
    SetErr(err, errlen, "synchronize: stream is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  StreamScope scope(s, err, errlen);
  if (scope.rc() != GPUCOLO_OK) return scope.rc();
  const uint64_t t0 = MonotonicNs();
  unsigned spins = 0;
  for (;;) {
    const cudaError_t q = cudaStreamQuery(s->stream);
    if (q == cudaSuccess) return GPUCOLO_OK;
    if (q != cudaErrorNotReady) return RtErr(q, "cudaStreamQuery", err, errlen);
    if (MonotonicNs() - t0 >= timeout_ns) break;
    gpucolo_plugin::Backoff(&spins);
  }
  // the watchdog: cancel what runs, give it a bounded time to drain
  *s->cancel_host = 1;
  s->cancel_pending = true;
  const uint64_t t1 = MonotonicNs();
  spins = 0;
  cudaError_t q;
  while ((q = cudaStreamQuery(s->stream)) == cudaErrorNotReady && MonotonicNs() - t1 < gpucolo_plugin::kCancelGraceNs)
    gpucolo_plugin::Backoff(&spins);
  const double ms = static_cast<double>(timeout_ns) / 1e6;
  if (q == cudaSuccess) {
    *s->cancel_host = 0;
    s->cancel_pending = false;
    SetErr(err, errlen, "synchronize: stream still busy after %.3f ms; its probe kernels were cancelled", ms);
  } else if (q == cudaErrorNotReady) {
    SetErr(err, errlen,
           "synchronize: stream still busy after %.3f ms and not drained 2 s after cancelling its kernels "
           "(device held by other work?)",
           ms);
  } else {
    return RtErr(q, "cudaStreamQuery after cancelling", err, errlen);
  }
  return GPUCOLO_ERR_TIMEOUT;
}

int ReadDeviceTime(int device, uint64_t* out_ns, char* err, unsigned errlen) {
  if (out_ns == nullptr) {
    SetErr(err, errlen, "read_device_time: out is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  unsigned long long t = 0;
  const int rc = RunHelper(device, Helper::kReadTimer, &t, err, errlen);
  if (rc == GPUCOLO_OK) *out_ns = t;
  return rc;
}

void Shutdown() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_refs == 0 || --g_refs > 0) return;
  // release per-device helpers; live streams (and their partitions) belong to their owners
  for (int i = 0; i < static_cast<int>(g_devices.size()); ++i) {
    DeviceState& d = *g_devices[i];
    if (!d.ready) continue;
    if (cudaSetDevice(i) == cudaSuccess) {
      std::lock_guard<std::mutex> hl(d.helper_mu);
      if (d.helper != nullptr && cudaStreamQuery(d.helper) != cudaErrorNotReady) {
        cudaStreamDestroy(d.helper);
        cudaFreeHost(d.helper_host);
        d.helper = nullptr;
        d.helper_host = nullptr;
        d.helper_dev = nullptr;
        d.ready = false;  // the next EnsureDevice() sets the helpers up again
      }
    }
    cudaGetLastError();
  }
}

const gpucolo_gpu_api kApi = {
    GPUCOLO_GPU_ABI, "cuda", Init, DeviceCount, DeviceInfo, StreamCreate, StreamDestroy,
    Launch, Poll, Synchronize, ReadDeviceTime, Shutdown,
};

}  // namespace

GPUCOLO_EXPORT const gpucolo_gpu_api* gpucolo_gpu_get_api(void) { return &kApi; }

/**
 * Optional cross-check (look it up with dlsym): the cudaEvent elapsed time of the launch in
 * `slot`, in ms (cudaEventElapsedTime: ~0.5 us resolution, includes the launch's front-end
 * overhead). Returns 1 and fills *ms when measured, 0 while the launch runs, GPUCOLO_ERR_INVALID
 * when the slot has no event pair (never launched, or GPUCOLO_CUDA_EVENTS=0), < 0 on errors.
 */
GPUCOLO_EXPORT int gpucolo_cuda_event_ms(gpucolo_stream* s, uint32_t slot, float* ms) {
  if (s == nullptr || ms == nullptr || slot >= GPUCOLO_SLOTS || !s->use_events) return GPUCOLO_ERR_INVALID;
  cudaEvent_t* ev = &s->events[2 * static_cast<size_t>(slot)];
  if (ev[0] == nullptr || ev[1] == nullptr || s->expect[slot] == 0) return GPUCOLO_ERR_INVALID;
  StreamScope scope(s, nullptr, 0);
  if (scope.rc() != GPUCOLO_OK) return scope.rc();
  cudaError_t e = cudaEventQuery(ev[1]);
  if (e == cudaErrorNotReady) return 0;
  if (e == cudaSuccess) e = cudaEventElapsedTime(ms, ev[0], ev[1]);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return GPUCOLO_ERR_RUNTIME;
  }
  return 1;
}

/** Optional: SMs of the stream's green-context partition (the driver rounds requests up); 0 when
    the stream runs on the whole device, < 0 for a NULL stream. */
GPUCOLO_EXPORT int gpucolo_cuda_stream_sm_count(const gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  return s->part != nullptr ? static_cast<int>(s->part->sms) : 0;
}
