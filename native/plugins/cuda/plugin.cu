// gpucolo_cuda.so: the CUDA backend of native/dispatch/gpu_plugin.h.
//
// Built by CMake's CUDA language with the static cudart, hidden visibility and a version script,
// so the only dynamic symbols are gpucolo_gpu_get_api and the optional gpucolo_cuda_* helpers
// below, and the .so needs no libcudart/libcuda at load time: cudart_static dlopen()s
// libcuda.so.1 when the runtime first initialises, and a host without a driver gets an error
// from init() ("cudaErrorInsufficientDriver: ...") instead of a load failure or an abort.
//
// Driver compatibility (driver_check.h): the linked runtime needs a driver of its CUDA major
// version or newer (CUDA 13: Linux >= 580). init() asks the driver first (cuDriverGetVersion
// through dlopen("libcuda.so.1"), before any runtime call) and, when it is too old, fails with
// "needs a driver for CUDA >= 13.0 ...; this driver supports CUDA 12.4: rebuild with CUDA 12.x
// ...". The plugin builds with CUDA 11.0 and newer; green contexts need CUDA >= 12.4 headers
// (else supports_sm_partition = 0: "not built with green contexts").
//
// Design (one gpucolo_stream = one CUDA stream + a ring of GPUCOLO_SLOTS launch slots):
//  - Streams: cudaStreamCreateWithPriority(cudaStreamNonBlocking, priority), the priority checked
//    against cudaDeviceGetStreamPriorityRange (CUDA: least 0, greatest -5 on current GPUs).
//  - CU masks are an AMD feature: opts->cu_mask -> GPUCOLO_ERR_UNSUPPORTED.
//  - SM partitions (opts->sm_count > 0): NVIDIA green contexts from the driver API
//    (cuDeviceGetDevResource -> cuDevSmResourceSplitByCount -> cuDevResourceGenerateDesc ->
//    cuGreenCtxCreate -> cuGreenCtxStreamCreate), bookkept by green_partitions.h: each stream
//    gets its OWN green context over its partition's SMs (a green context may be current to one
//    thread at a time, and each stream is driven from its own submitter thread). The driver
//    rounds a request up (sm_90: multiples of 8): stream_info() / gpucolo_cuda_stream_sm_count()
//    tell the partition as made. The entry points are resolved at run time
//    (cudaGetDriverEntryPointByVersion), so a driver without them only means
//    supports_sm_partition = 0.
//  - Probe kernel: every thread spins until spin_ns of %globaltimer have passed since it
//    started (0 = empty kernel). Block 0 / thread 0 writes the device START time (block 0's
//    start; blocks start within the launch's dispatch burst, and a true min over all blocks would
//    cost an atomic per block on host memory for no practical gain). Every block's thread 0 then
//    increments a per-slot counter in device memory; the LAST block to finish writes the END
//    time, a __threadfence_system(), then the slot's sequence number, all into host-mapped
//    memory (cudaHostAlloc mapped|portable). poll() is thus a plain host memory read. No CUDA
//    events are recorded: a launch is exactly one cudaLaunchKernel call.
//  - Fill: cudaOccupancyMaxActiveBlocksPerMultiprocessor for the probe kernel tells how many of
//    its blocks are resident per SM at a block size (device_info() at 64 threads,
//    max_active_blocks() at any); SMs x that many blocks occupy the device.
//  - Watchdog: synchronize() polls cudaStreamQuery and never blocks in cudaStreamSynchronize. On
//    timeout it sets the stream's cancel word (host-mapped); spinning blocks look at it every
//    100 us of device time and stop, so a runaway launch ends, poll() reports it as
//    GPUCOLO_ERR_TIMEOUT, and the stream (and the device) stay usable. stream_destroy() cancels
//    too; a stream whose kernels still run after the grace is kept whole (memory, stream, green
//    context) and released once they ended (deferred_release.h), never destroyed under them.
//  - read_device_time(): a one-thread kernel reads %globaltimer into mapped memory on a
//    per-device helper stream at the highest priority; the host spins on the result (5 s limit).
//  - device_info() launches nothing (`gpucolo doctor` lists every device): the timer resolution
//    is measured by a helper kernel on the first stream_create() and is 0 (unknown) before.
//
// Thread safety: global state (devices, partitions, kept streams) is behind one mutex. A stream is
// used by one thread at a time for launch/synchronize/destroy (gpu_plugin.h; poll() reads memory
// only), and StreamScope also locks the stream while its context is current, so a green context
// is never current on two threads.

#include <cuda.h>  // driver API types only; functions are resolved at run time
#include <cuda_runtime.h>
#include <dlfcn.h>

#if CUDA_VERSION >= 12040
#define GPUCOLO_CUDA_GREEN 1
#include <cudaTypedefs.h>  // PFN_* typedefs of the driver functions
#else
#define GPUCOLO_CUDA_GREEN 0
#endif

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/driver_check.h"
#include "cuda/green_partitions.h"
#include "deferred_release.h"
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

constexpr uint32_t kFillThreadsPerBlock = 64;

int RtErr(cudaError_t e, const char* what, char* err, unsigned errlen) {
  SetErr(err, errlen, "%s: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e), what);
  cudaGetLastError();  // clear a non-sticky error so it does not surface in a later call
  return (e == cudaErrorNoDevice || e == cudaErrorInvalidDevice) ? GPUCOLO_ERR_NO_DEVICE : GPUCOLO_ERR_RUNTIME;
}

#if GPUCOLO_CUDA_GREEN
#if CUDA_VERSION < 12050
// cuGreenCtxStreamCreate came with CUDA 12.5; a 12.4 build resolves it from a newer driver
typedef CUresult(CUDAAPI* PFN_cuGreenCtxStreamCreate_v12050)(CUstream* phStream, CUgreenCtx greenCtx, unsigned int flags,
                                                              int priority);
#endif

struct DriverApi {
  bool green = false;   // every green-context entry point was found
  std::string why_not;  // why green contexts are unavailable
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
DriverApi g_drv;

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

int DrvStatus(CUresult r, const char* what, std::string* err) {
  if (r == CUDA_SUCCESS) return GPUCOLO_OK;
  char buf[256];
  const int rc = DrvErr(r, what, buf, sizeof buf);
  *err = buf;
  return rc;
}

template <class Fn>
bool Resolve(const char* symbol, unsigned version, Fn* out, std::string* missing) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  const cudaError_t e = cudaGetDriverEntryPointByVersion(symbol, &fn, version, cudaEnableDefault, &status);
#else
  (void)version;  // 12.0 - 12.4: the entry point of the runtime's own CUDA version
  const cudaError_t e = cudaGetDriverEntryPoint(symbol, &fn, cudaEnableDefault, &status);
#endif
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
                " not available from the driver (CUDA " + gpucolo_plugin::CudaVersionText(drv) + ")";
  }
  g_drv = d;
}

/** green_partitions.h's driver: the CUDA driver API of one device. */
struct CudaGreenDriver {
  using Resource = CUdevResource;
  using Desc = CUdevResourceDesc;
  using Green = CUgreenCtx;
  CUdevice dev = 0;
  unsigned Sms(const Resource& r) const { return r.sm.smCount; }
  int DeviceResource(Resource* out, std::string* err) {
    return DrvStatus(g_drv.DeviceGetDevResource(dev, out, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource", err);
  }
  int Split(const Resource& in, unsigned min_sms, Resource* group, unsigned* groups, Resource* rest, std::string* err) {
    return DrvStatus(g_drv.SmResourceSplitByCount(group, groups, &in, rest, 0, min_sms), "cuDevSmResourceSplitByCount", err);
  }
  int MakeDesc(Resource* r, Desc* out, std::string* err) {
    return DrvStatus(g_drv.ResourceGenerateDesc(out, r, 1), "cuDevResourceGenerateDesc", err);
  }
  int CreateGreen(Desc d, Green* out, std::string* err) {
    // CUDA 12.4's cuGreenCtxCreate requires CU_GREEN_CTX_DEFAULT_STREAM
    return DrvStatus(g_drv.GreenCtxCreate(out, d, dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate", err);
  }
  int GreenResource(Green g, Resource* out, std::string* err) {
    return DrvStatus(g_drv.GreenCtxGetDevResource(g, out, CU_DEV_RESOURCE_TYPE_SM), "cuGreenCtxGetDevResource", err);
  }
  void DestroyGreen(Green g) { g_drv.GreenCtxDestroy(g); }
};
using Partitions = gpucolo_plugin::GreenPartitions<CudaGreenDriver>;
#endif  // GPUCOLO_CUDA_GREEN

struct DeviceState {
  bool ready = false;
  std::string name;
  int cc_major = 0, cc_minor = 0, sms = 0, max_threads = 1024;
  int prio_least = 0, prio_greatest = 0;
  bool sm_partition = false;
  std::string sm_partition_why;
  std::atomic<double> timer_res_ns{-1};  // < 0: not measured yet (a helper kernel, at the first stream)
  // helper stream + mapped buffer for read_device_time / timer resolution
  std::mutex helper_mu;
  cudaStream_t helper = nullptr;
  unsigned long long* helper_host = nullptr;  // [0] value, [1] seq
  unsigned long long* helper_dev = nullptr;
  unsigned helper_seq = 0;
#if GPUCOLO_CUDA_GREEN
  CudaGreenDriver green_drv;
  Partitions parts{&green_drv};
#endif
};

std::mutex g_mu;
int g_refs = 0;
int g_count = 0;
std::vector<DeviceState*> g_devices;

std::string DescribeDriver() {
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  std::string s = "CUDA runtime " + gpucolo_plugin::CudaVersionText(rt) + ", ";
  if (drv != 0) return s + "driver supports CUDA " + gpucolo_plugin::CudaVersionText(drv);
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
// Launches nothing (device_info() goes through here).
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
#if GPUCOLO_CUDA_GREEN
  // green contexts: entry points present, and the device answers for its SM resource
  if (!g_drv.green) {
    d.sm_partition = false;
    d.sm_partition_why = g_drv.why_not;
  } else {
    CUdevice cudev = 0;
    CUdevResource res{};
    CUresult r = g_drv.DeviceGet(&cudev, dev);
    if (r == CUDA_SUCCESS) r = g_drv.DeviceGetDevResource(cudev, &res, CU_DEV_RESOURCE_TYPE_SM);
    d.green_drv.dev = cudev;
    d.sm_partition = r == CUDA_SUCCESS && res.sm.smCount > 0;
    if (!d.sm_partition) {
      char buf[256];
      DrvErr(r, "cuDeviceGetDevResource", buf, sizeof buf);
      d.sm_partition_why = std::string("green contexts unavailable on this device: ") + buf;
    }
  }
#else
  d.sm_partition = false;
  d.sm_partition_why = "gpucolo_cuda.so was not built with green contexts (CUDA " +
                       gpucolo_plugin::CudaVersionText(CUDA_VERSION) +
                       " headers; SM partitions need a build with CUDA >= 12.4 and a driver for CUDA >= 12.5)";
#endif
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

/** %globaltimer's resolution, measured once per device by a helper kernel (only from the run path). */
void MeasureTimerResolution(int dev) {
  DeviceState& d = *g_devices[dev];
  if (d.timer_res_ns.load() >= 0) return;
  unsigned long long res = 0;
  char ignored[256];
  d.timer_res_ns.store(RunHelper(dev, Helper::kTimerResolution, &res, ignored, sizeof ignored) == GPUCOLO_OK
                           ? static_cast<double>(res)
                           : 0.0);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// streams

struct gpucolo_stream {
  int device = 0;
  int priority = 0;
  cudaStream_t stream = nullptr;
  bool green = false;         // created in its own green context (sm_count > 0)
  unsigned sms = 0;           // SMs of its partition as made, 0 = whole device
  CUcontext ctx = nullptr;    // cuCtxFromGreenCtx of its green context, made current by StreamScope
#if GPUCOLO_CUDA_GREEN
  Partitions::Lease lease;    // its green context (and partition); released under g_mu
#endif
  std::mutex scope_mu;        // held while the stream's context is current on some thread
  HostSlot* slots_host = nullptr;
  HostSlot* slots_dev = nullptr;
  volatile unsigned* cancel_host = nullptr;  // in the same mapped allocation, after the slots
  unsigned* cancel_dev = nullptr;
  unsigned* counters_dev = nullptr;  // finished-block counter per slot (device memory)
  bool cancel_pending = false;
  unsigned next_seq = 0;
  std::vector<unsigned> expect;      // per slot: seq of the last launch, 0 = none
};

namespace {

// streams destroyed while their kernels still ran; released once idle (under g_mu)
gpucolo_plugin::DeferredRelease<gpucolo_stream> g_kept;

// Makes the stream's device (and green context) current on this thread for the scope, and holds
// the stream's lock meanwhile: a green context "can be current to only one thread at a time"
// (cuda.h, cuGreenCtxCreate).
class StreamScope {
 public:
  StreamScope(gpucolo_stream* s, char* err, unsigned errlen) : lock_(s->scope_mu) {
    cudaError_t e = cudaSetDevice(s->device);
    if (e != cudaSuccess) {
      rc_ = RtErr(e, "cudaSetDevice", err, errlen);
      return;
    }
#if GPUCOLO_CUDA_GREEN
    if (s->ctx != nullptr) {
      const CUresult r = g_drv.CtxPush(s->ctx);
      if (r != CUDA_SUCCESS) {
        rc_ = DrvErr(r, "cuCtxPushCurrent", err, errlen);
        return;
      }
      pushed_ = true;
    }
#else
    (void)err;
    (void)errlen;
#endif
  }
  ~StreamScope() {
#if GPUCOLO_CUDA_GREEN
    if (pushed_) {
      CUcontext popped = nullptr;
      g_drv.CtxPop(&popped);
    }
#endif
  }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;
  int rc() const { return rc_; }

 private:
  std::lock_guard<std::mutex> lock_;
  int rc_ = GPUCOLO_OK;
  bool pushed_ = false;
};

/** true while work of the stream still runs; the caller has made its context current */
bool BusyInScope(gpucolo_stream* s) {
  if (s->stream == nullptr) return false;
  const cudaError_t q = cudaStreamQuery(s->stream);
  cudaGetLastError();
  return q == cudaErrorNotReady;  // an error (a faulted context) will not get any better: not busy
}

// Frees the stream, its mapped slots and counters; the caller has made its context current and
// checked that nothing runs.
void FreeStreamResources(gpucolo_stream* s) {
  if (s->stream != nullptr) {
#if GPUCOLO_CUDA_GREEN
    if (s->green)
      g_drv.StreamDestroy(reinterpret_cast<CUstream>(s->stream));
    else
#endif
      cudaStreamDestroy(s->stream);
    s->stream = nullptr;
  }
  if (s->counters_dev != nullptr) cudaFree(s->counters_dev);
  if (s->slots_host != nullptr) cudaFreeHost(s->slots_host);
  cudaGetLastError();
  s->counters_dev = nullptr;
  s->slots_host = nullptr;
}

// Gives back the stream's green context (after its work ended) and deletes it. Call with g_mu held.
void DeleteStreamLocked(gpucolo_stream* s) {
#if GPUCOLO_CUDA_GREEN
  if (s->lease.part != nullptr) g_devices[s->device]->parts.Release(&s->lease);
#endif
  delete s;
}

// Releases kept streams whose kernels have ended. Call with g_mu held.
size_t ReapKeptLocked() {
  return g_kept.Reap(
      [](gpucolo_stream* s) {
        StreamScope scope(s, nullptr, 0);
        return scope.rc() == GPUCOLO_OK && BusyInScope(s);
      },
      [](gpucolo_stream* s) {
        {
          StreamScope scope(s, nullptr, 0);
          FreeStreamResources(s);
        }
        DeleteStreamLocked(s);
      });
}

int Init(char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_refs > 0) {
    ++g_refs;
    return GPUCOLO_OK;
  }
  // before any runtime call: a driver older than the linked runtime gets a remedy, not just
  // cudaErrorInsufficientDriver (no libcuda at all: the runtime's own error below says so)
  int drv = 0;
  std::string why;
  if (gpucolo_plugin::QueryDriverVersion(&drv, &why) == GPUCOLO_OK) {
    const std::string need = gpucolo_plugin::DriverRequirement(CUDART_VERSION, drv, gpucolo_plugin::NvidiaDriverRelease());
    if (!need.empty()) {
      SetErr(err, errlen, "cudaErrorInsufficientDriver: %s", need.c_str());
      return GPUCOLO_ERR_RUNTIME;
    }
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
#if GPUCOLO_CUDA_GREEN
  ResolveDriverApi();
#endif
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

int MaxActiveBlocks(int device, uint32_t threads_per_block, int* out, char* err, unsigned errlen) {
  if (out == nullptr) {
    SetErr(err, errlen, "max_active_blocks: out is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  *out = 0;
  const int rc = EnsureDevice(device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  const DeviceState& d = *g_devices[device];
  if (threads_per_block == 0 || threads_per_block > static_cast<uint32_t>(d.max_threads)) {
    SetErr(err, errlen, "max_active_blocks: threads_per_block must be 1..%d, got %u", d.max_threads, threads_per_block);
    return GPUCOLO_ERR_INVALID;
  }
  // EnsureDevice made the device current on this thread; the probe kernel takes no dynamic shared memory
  int n = 0;
  const cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, reinterpret_cast<const void*>(&ProbeKernel),
                                                                      static_cast<int>(threads_per_block), 0);
  if (e != cudaSuccess) return RtErr(e, "cudaOccupancyMaxActiveBlocksPerMultiprocessor", err, errlen);
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
  int per_sm = 0;
  rc = MaxActiveBlocks(device, kFillThreadsPerBlock, &per_sm, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  gpucolo_plugin::CopyStr(out->name, sizeof out->name, d.name.c_str());
  std::snprintf(out->arch, sizeof out->arch, "sm_%d%d", d.cc_major, d.cc_minor);
  out->compute_units = d.sms;
  out->priority_least = d.prio_least;
  out->priority_greatest = d.prio_greatest;
  out->supports_cu_mask = 0;
  out->supports_sm_partition = d.sm_partition ? 1 : 0;
  const double res = d.timer_res_ns.load();
  out->timer_resolution_ns = res > 0 ? res : 0.0;  // measured by the first stream_create()
  out->max_threads_per_block = d.max_threads;
  out->fill_threads_per_block = static_cast<int>(kFillThreadsPerBlock);
  out->max_active_blocks_per_cu = per_sm;
  out->num_xcc = 1;  // one die; shader engines are an AMD notion (0 = not applicable)
  out->num_se_per_xcc = 0;
  out->num_sh_per_se = 0;
  out->cu_mask_bits_per_unit = 0;
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
  ReapKeptLocked();  // their partitions may be free again
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
#if GPUCOLO_CUDA_GREEN
  if (o->sm_count > 0) {
    std::string why;
    rc = d.parts.Acquire(o->sm_count, &s->lease, &why);
    if (rc != GPUCOLO_OK) {
      SetErr(err, errlen, "cuda device %d, %d SMs: %s", o->device, o->sm_count, why.c_str());
      delete s;
      return rc;
    }
    s->green = true;
    s->sms = s->lease.part->sms;
    const CUresult r = g_drv.CtxFromGreenCtx(&s->ctx, s->lease.green);
    if (r != CUDA_SUCCESS) {
      rc = DrvErr(r, "cuCtxFromGreenCtx", err, errlen);
      DeleteStreamLocked(s);
      return rc;
    }
  }
#endif
  lock.unlock();
  {
    StreamScope scope(s, err, errlen);
    if ((rc = scope.rc()) != GPUCOLO_OK) goto fail;
    cudaError_t e;
#if GPUCOLO_CUDA_GREEN
    if (s->green) {
      CUstream cs = nullptr;
      const CUresult r = g_drv.GreenCtxStreamCreate(&cs, s->lease.green, CU_STREAM_NON_BLOCKING, o->priority);
      if (r != CUDA_SUCCESS) {
        rc = DrvErr(r, "cuGreenCtxStreamCreate", err, errlen);
        goto fail;
      }
      s->stream = reinterpret_cast<cudaStream_t>(cs);
    } else
#endif
        if ((e = cudaStreamCreateWithPriority(&s->stream, cudaStreamNonBlocking, o->priority)) != cudaSuccess) {
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
  MeasureTimerResolution(o->device);  // the run path: a helper kernel is fine here
  *out = s;
  return GPUCOLO_OK;
fail:
  StreamDestroy(s);
  return rc;
}

int StreamDestroy(gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  bool busy = false;
  {
    StreamScope scope(s, nullptr, 0);
    if (scope.rc() == GPUCOLO_OK && BusyInScope(s) && s->cancel_host != nullptr) {
      // let running probe kernels stop early, then wait a bounded time for them
      *s->cancel_host = 1;
      const uint64_t t0 = MonotonicNs();
      unsigned spins = 0;
      while (BusyInScope(s) && MonotonicNs() - t0 < gpucolo_plugin::kCancelGraceNs) gpucolo_plugin::Backoff(&spins);
    }
    busy = scope.rc() == GPUCOLO_OK && BusyInScope(s);
    if (!busy) FreeStreamResources(s);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (busy) {
    // never free memory a running kernel writes, nor destroy the green context it runs in: keep
    // the whole stream until its work is over (released by a later stream_create() or shutdown())
    g_kept.Keep(s);
    return GPUCOLO_ERR_TIMEOUT;
  }
  DeleteStreamLocked(s);
  return GPUCOLO_OK;
}

int StreamInfo(gpucolo_stream* s, gpucolo_stream_info* out) {
  if (s == nullptr || out == nullptr) return GPUCOLO_ERR_INVALID;
  out->sm_count = static_cast<int>(s->sms);
  out->compute_units = s->sms != 0 ? static_cast<int>(s->sms) : g_devices[s->device]->sms;
  return GPUCOLO_OK;
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

  HostSlot* slot_dev = s->slots_dev + slot;
  unsigned* counter = s->counters_dev + slot;
  const volatile unsigned* cancel = s->cancel_dev;
  unsigned long long spin = k->spin_ns;
  unsigned sq = seq;
  void* args[] = {&slot_dev, &counter, &cancel, &spin, &sq};
  const cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void*>(&ProbeKernel), dim3(k->blocks),
                                         dim3(k->threads_per_block), args, 0, s->stream);
  if (e != cudaSuccess) return RtErr(e, "cudaLaunchKernel", err, errlen);
  s->expect[slot] = seq;
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
  ReapKeptLocked();  // streams still running stay kept (the plugin is never unloaded)
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
    GPUCOLO_GPU_ABI, "cuda", Init, DeviceCount, DeviceInfo, StreamCreate, StreamDestroy, Launch, Poll,
    Synchronize, ReadDeviceTime, Shutdown, MaxActiveBlocks, StreamInfo,
};

}  // namespace

GPUCOLO_EXPORT const gpucolo_gpu_api* gpucolo_gpu_get_api(void) { return &kApi; }

/** Optional: SMs of the stream's green-context partition as the driver made it (requests are
    rounded up); 0 when the stream runs on the whole device, < 0 for a NULL stream. The same as
    stream_info()'s sm_count. */
GPUCOLO_EXPORT int gpucolo_cuda_stream_sm_count(const gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  return static_cast<int>(s->sms);
}
