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
// One source for CUDA and HIP (issue #20): what both runtimes do alike (devices, the helper
// stream, streams and their slots, launch, poll, the watchdog, deferred release, the API table)
// is native/plugins/plugin_core.inc, written against the names of cuda/vendor.h. This file holds
// what only CUDA has (the driver check, green contexts, the timer-resolution kernel) and the
// vendor hooks plugin_core.inc calls; hip/plugin.hip is its HIP twin.
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
#include <dlfcn.h>

#include "cuda/vendor.h"  // cuda_runtime.h and the names plugin_core.inc uses

#if CUDA_VERSION >= 12040
#define GPUCOLO_CUDA_GREEN 1
#include <cudaTypedefs.h>  // PFN_* typedefs of the driver functions
#else
#define GPUCOLO_CUDA_GREEN 0
#endif

#include <atomic>
#include <mutex>
#include <string>

#include "cuda/driver_check.h"
#include "cuda/green_partitions.h"
#include "plugin_common.h"

using gpucolo_plugin::SetErr;

// ------------------------------------------------------------------------------------------------
// device code beyond plugin_core.inc's probe and timer kernels

namespace {

// out[0] = smallest step of %globaltimer seen between consecutive changes (its resolution)
__global__ void TimerResolutionKernel(unsigned long long* out, unsigned seq) {
  unsigned long long prev = DeviceTimer(), best = ~0ull;
  int changes = 0;
  for (unsigned i = 0; i < (1u << 22) && changes < 9; ++i) {
    const unsigned long long t = DeviceTimer();
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

// ------------------------------------------------------------------------------------------------
// what plugin_core.inc keeps per device and per stream for CUDA alone

struct VendorDevice {
  bool sm_partition = false;
  std::string sm_partition_why;
  std::atomic<double> timer_res_ns{-1};  // < 0: not measured yet (a helper kernel, at the first stream)
#if GPUCOLO_CUDA_GREEN
  CudaGreenDriver green_drv;
  Partitions parts{&green_drv};
#endif
};

struct VendorStream {
  bool green = false;       // created in its own green context (sm_count > 0)
  CUcontext ctx = nullptr;  // cuCtxFromGreenCtx of its green context, made current by StreamScope
#if GPUCOLO_CUDA_GREEN
  Partitions::Lease lease;  // its green context (and partition); released under g_mu
#endif
  std::mutex scope_mu;      // held while the stream's context is current on some thread
};

// Makes the stream's device (and green context) current on this thread for the scope, and holds
// the stream's lock meanwhile: a green context "can be current to only one thread at a time"
// (cuda.h, cuGreenCtxCreate).
class StreamScope {
 public:
  StreamScope(gpucolo_stream* s, char* err, unsigned errlen);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;
  int rc() const { return rc_; }

 private:
  std::lock_guard<std::mutex> lock_;
  int rc_ = GPUCOLO_OK;
  bool pushed_ = false;
};

}  // namespace

#include "plugin_core.inc"

namespace {

StreamScope::StreamScope(gpucolo_stream* s, char* err, unsigned errlen) : lock_(s->v.scope_mu) {
  cudaError_t e = cudaSetDevice(s->device);
  if (e != cudaSuccess) {
    rc_ = RtErr(e, "cudaSetDevice", err, errlen);
    return;
  }
#if GPUCOLO_CUDA_GREEN
  if (s->v.ctx != nullptr) {
    const CUresult r = g_drv.CtxPush(s->v.ctx);
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

StreamScope::~StreamScope() {
#if GPUCOLO_CUDA_GREEN
  if (pushed_) {
    CUcontext popped = nullptr;
    g_drv.CtxPop(&popped);
  }
#endif
}

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

// ------------------------------------------------------------------------------------------------
// the vendor hooks of plugin_core.inc: devices

int InitRuntimeLocked(int* count, char* err, unsigned errlen) {
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
    const std::string where = "cudaGetDeviceCount" + DeviceCountContext();
    return RtErr(e, where.c_str(), err, errlen);
  }
  if (n <= 0) {
    SetErr(err, errlen, "cudaErrorNoDevice: no CUDA-capable device is detected");
    return GPUCOLO_ERR_NO_DEVICE;
  }
#if GPUCOLO_CUDA_GREEN
  ResolveDriverApi();
#endif
  *count = n;
  return GPUCOLO_OK;
}

int DeviceCountAllowed(char* /*err*/, unsigned /*errlen*/) { return GPUCOLO_OK; }

std::string DeviceCountContext() { return "; " + DescribeDriver(); }

int ReadDeviceLocked(int dev, DeviceState& d, cudaDeviceProp* prop, char* err, unsigned errlen) {
  cudaError_t e;
  if ((e = cudaFree(nullptr)) != cudaSuccess) return RtErr(e, "creating the primary context", err, errlen);
  if ((e = cudaGetDeviceProperties(prop, dev)) != cudaSuccess) return RtErr(e, "cudaGetDeviceProperties", err, errlen);
  d.name = prop->name;
  d.arch = "sm_" + std::to_string(prop->major) + std::to_string(prop->minor);
  d.compute_units = prop->multiProcessorCount;
  d.max_threads = prop->maxThreadsPerBlock > 0 ? prop->maxThreadsPerBlock : 1024;
  return GPUCOLO_OK;
}

// Whether the device can be partitioned: the green-context entry points are there and the device
// answers for its SM resource.
int FinishDeviceLocked(int dev, const cudaDeviceProp& /*prop*/, DeviceState& d, char* /*err*/, unsigned /*errlen*/) {
#if GPUCOLO_CUDA_GREEN
  if (!g_drv.green) {
    d.v.sm_partition = false;
    d.v.sm_partition_why = g_drv.why_not;
  } else {
    CUdevice cudev = 0;
    CUdevResource res{};
    CUresult r = g_drv.DeviceGet(&cudev, dev);
    if (r == CUDA_SUCCESS) r = g_drv.DeviceGetDevResource(cudev, &res, CU_DEV_RESOURCE_TYPE_SM);
    d.v.green_drv.dev = cudev;
    d.v.sm_partition = r == CUDA_SUCCESS && res.sm.smCount > 0;
    if (!d.v.sm_partition) {
      char buf[256];
      DrvErr(r, "cuDeviceGetDevResource", buf, sizeof buf);
      d.v.sm_partition_why = std::string("green contexts unavailable on this device: ") + buf;
    }
  }
#else
  (void)dev;
  d.v.sm_partition = false;
  d.v.sm_partition_why = "gpucolo_cuda.so was not built with green contexts (CUDA " +
                         gpucolo_plugin::CudaVersionText(CUDA_VERSION) +
                         " headers; SM partitions need a build with CUDA >= 12.4 and a driver for CUDA >= 12.5)";
#endif
  return GPUCOLO_OK;
}

void FillDeviceInfo(DeviceState& d, gpucolo_device_info* out) {
  out->supports_cu_mask = 0;
  out->supports_sm_partition = d.v.sm_partition ? 1 : 0;
  const double res = d.v.timer_res_ns.load();
  out->timer_resolution_ns = res > 0 ? res : 0.0;  // measured by the first stream_create()
  out->num_xcc = 1;  // one die; shader engines are an AMD notion (0 = not applicable)
  out->num_se_per_xcc = 0;
  out->num_sh_per_se = 0;
  out->cu_mask_bits_per_unit = 0;
}

int EnsureDeviceTimer(int dev, char* err, unsigned errlen) { return EnsureDevice(dev, err, errlen); }

/** %globaltimer's resolution, measured once per device by a helper kernel (only from the run path). */
void MeasureTimerResolution(int dev) {
  DeviceState& d = *g_devices[dev];
  if (d.v.timer_res_ns.load() >= 0) return;
  unsigned long long res = 0;
  char ignored[256];
  int rc = EnsureDevice(dev, ignored, sizeof ignored);
  if (rc == GPUCOLO_OK) {
    std::lock_guard<std::mutex> lock(d.helper_mu);
    rc = RunHelperLocked(dev, d, reinterpret_cast<const void*>(&TimerResolutionKernel), &res, ignored, sizeof ignored);
  }
  d.v.timer_res_ns.store(rc == GPUCOLO_OK ? static_cast<double>(res) : 0.0);
}

// ------------------------------------------------------------------------------------------------
// the vendor hooks of plugin_core.inc: streams

int NewStream(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
  if (o->cu_mask != nullptr) {
    SetErr(err, errlen,
           "CU masks are an AMD feature (hipExtStreamCreateWithCUMask); on NVIDIA use sm_count (green contexts)");
    return GPUCOLO_ERR_UNSUPPORTED;
  }
  if (o->sm_count < 0) {
    SetErr(err, errlen, "stream_create: sm_count must be >= 0, got %d", o->sm_count);
    return GPUCOLO_ERR_INVALID;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  int rc = EnsureDeviceLocked(o->device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  ReapKeptLocked();  // their partitions may be free again
  DeviceState& d = *g_devices[o->device];
  if ((rc = CheckPriority(d, o->priority, err, errlen)) != GPUCOLO_OK) return rc;
  if (o->sm_count > 0 && !d.v.sm_partition) {
    SetErr(err, errlen, "%s", d.v.sm_partition_why.c_str());
    return GPUCOLO_ERR_UNSUPPORTED;
  }
  auto* s = new gpucolo_stream();
  s->device = o->device;
#if GPUCOLO_CUDA_GREEN
  if (o->sm_count > 0) {
    std::string why;
    rc = d.v.parts.Acquire(o->sm_count, &s->v.lease, &why);
    if (rc != GPUCOLO_OK) {
      SetErr(err, errlen, "cuda device %d, %d SMs: %s", o->device, o->sm_count, why.c_str());
      delete s;
      return rc;
    }
    s->v.green = true;
    s->sms = s->v.lease.part->sms;
    const CUresult r = g_drv.CtxFromGreenCtx(&s->v.ctx, s->v.lease.green);
    if (r != CUDA_SUCCESS) {
      rc = DrvErr(r, "cuCtxFromGreenCtx", err, errlen);
      DeleteStreamLocked(s);
      return rc;
    }
  }
#endif
  s->compute_units = s->sms != 0 ? static_cast<int>(s->sms) : d.compute_units;
  *out = s;
  return GPUCOLO_OK;
}

int CreateRuntimeStream(gpucolo_stream* s, const gpucolo_stream_opts* o, char* err, unsigned errlen) {
#if GPUCOLO_CUDA_GREEN
  if (s->v.green) {
    CUstream cs = nullptr;
    const CUresult r = g_drv.GreenCtxStreamCreate(&cs, s->v.lease.green, CU_STREAM_NON_BLOCKING, o->priority);
    if (r != CUDA_SUCCESS) return DrvErr(r, "cuGreenCtxStreamCreate", err, errlen);
    s->stream = reinterpret_cast<cudaStream_t>(cs);
    return GPUCOLO_OK;
  }
#endif
  const cudaError_t e = cudaStreamCreateWithPriority(&s->stream, cudaStreamNonBlocking, o->priority);
  return e == cudaSuccess ? GPUCOLO_OK : RtErr(e, "cudaStreamCreateWithPriority", err, errlen);
}

void StreamReady(gpucolo_stream* s) { MeasureTimerResolution(s->device); }

bool BusyInScope(gpucolo_stream* s, int scope_rc) { return scope_rc == GPUCOLO_OK && QueryBusy(s); }

void DestroyRuntimeStream(gpucolo_stream* s) {
#if GPUCOLO_CUDA_GREEN
  if (s->v.green) {
    g_drv.StreamDestroy(reinterpret_cast<CUstream>(s->stream));
    return;
  }
#endif
  cudaStreamDestroy(s->stream);
}

// Gives back the stream's green context (its work has ended).
void ReleaseStreamLocked(gpucolo_stream* s) {
#if GPUCOLO_CUDA_GREEN
  if (s->v.lease.part != nullptr) g_devices[s->device]->v.parts.Release(&s->v.lease);
#else
  (void)s;
#endif
}

}  // namespace

/** Optional: SMs of the stream's green-context partition as the driver made it (requests are
    rounded up); 0 when the stream runs on the whole device, < 0 for a NULL stream. The same as
    stream_info()'s sm_count. */
GPUCOLO_EXPORT int gpucolo_cuda_stream_sm_count(const gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  return static_cast<int>(s->sms);
}
