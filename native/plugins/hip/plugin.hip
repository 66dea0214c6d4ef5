// gpucolo_hip.so: the HIP (AMD) backend of native/dispatch/gpu_plugin.h.
//
// Same design as native/plugins/cuda/plugin.cu (read its header comment first); the differences:
//  - Streams: hipStreamCreateWithPriority(hipStreamNonBlocking, priority); HIP's range is least 1
//    (Low), greatest -1 (High), 0 Normal (docs/queue-model.md#priorities: KFD queue priority 0 / 7 / 11 or 15).
//  - CU masks: hipExtStreamCreateWithCUMask (supports_cu_mask = 1). That call always creates a
//    Normal-priority stream, so a CU mask with a priority other than 0 is GPUCOLO_ERR_UNSUPPORTED
//    rather than silently ignored. ROCclr never shares a KFD queue between CU-masked streams.
//  - SM partitions (sm_count > 0) are NVIDIA green contexts: GPUCOLO_ERR_UNSUPPORTED (use a CU
//    mask instead).
//  - Device time: wall_clock64() (s_memrealtime, constant rate; 100 MHz on MI200/MI300) scaled to
//    ns with hipDeviceAttributeWallClockRate (kHz). HIP < 5.3 (Debian 12's 5.2) has no such
//    attribute, and some drivers report 0: then the rate is calibrated once against
//    CLOCK_MONOTONIC over 20 ms and rounded to whole MHz; GPUCOLO_HIP_WALLCLOCK_KHZ overrides.
//    Slots hold raw ticks; poll() and read_device_time() convert. timer_resolution_ns = 1 tick.
//  - Host-visible slots: hipHostMalloc(mapped | portable | coherent): fine-grained memory, so the
//    kernel's writes (after __threadfence_system) reach the host while the stream still runs.
//  - No events: a launch is exactly one hipLaunchKernel call.
//  - Code objects: the plugin carries one per HIP_ARCHS entry (GPUCOLO_HIP_ARCHS). A GPU without
//    one makes the HIP runtime abort the process at its first call (hipErrorNoBinaryForGpu), so
//    init() and device_count() first compare the GPUs' gfx targets from the KFD topology in sysfs
//    with those archs (hip/arch_check.h) and refuse with the rebuild command instead.
//  - CU masks and XCCs: KFD deals the mask's bits round-robin over the XCCs of an MI300 (bit i ->
//    XCC i % num_xcc) and then over each XCC's shader engines; a mask that leaves an XCC without
//    a CU hangs the queue. device_info() reports the layout (num_xcc etc. from the KFD node of the
//    device, matched by PCI address) and stream_create() refuses such masks
//    (native/dispatch/cu_mask_layout.h), as the engine does before it creates streams. On RDNA
//    (gfx10+) compute_units counts WGPs and a mask has two bits (CUs) per WGP.
//  - Fill: hipOccupancyMaxActiveBlocksPerMultiprocessor for the probe kernel.
//  - device_info() launches nothing (`gpucolo doctor`): where the wall-clock rate has to be
//    calibrated (HIP < 5.3) that happens on the first stream_create() / read_device_time(), and
//    timer_resolution_ns is 0 until then.
//  - stream_destroy() with kernels still running after the cancel grace keeps the stream's memory
//    (deferred_release.h) and frees it once they ended.
//
// The plugin links libamdhip64 (hipcc registers the kernels at load time), so on a host without
// ROCm it does not load: the loader reports dlerror() ("libamdhip64.so.5: cannot open shared
// object file") instead. Without a GPU / /dev/kfd, init() fails with "hipErrorNoDevice: ...".
//
// Build: CMakeLists.txt (GPU plugins section), -DGPUCOLO_WITH_HIP=ON; Debian's hipcc covers
// gfx90a/gfx940/gfx1030, gfx942 (MI300X/MI308X) needs a full ROCm >= 6.0 (-DHIP_ARCHS=gfx942).

#include <hip/hip_runtime.h>
#include <hip/hip_version.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "deferred_release.h"
#include "dispatch/cu_mask_layout.h"
#include "gpu_plugin.h"
#include "hip/arch_check.h"
#include "hip/kfd_nodes.h"
#include "plugin_common.h"

#ifndef GPUCOLO_HIP_ARCHS  // set by CMakeLists.txt from HIP_ARCHS (the --offload-arch list)
#define GPUCOLO_HIP_ARCHS ""
#endif

using gpucolo_plugin::CheckKernel;
using gpucolo_plugin::HostSlot;
using gpucolo_plugin::MonotonicNs;
using gpucolo_plugin::SetErr;

#define GPUCOLO_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// ------------------------------------------------------------------------------------------------
// device code (times in wall-clock ticks)

__device__ __forceinline__ unsigned long long WallClock() {
#ifdef __HIP_DEVICE_COMPILE__
  return static_cast<unsigned long long>(wall_clock64());
#else
  return 0;  // host pass: HIP 5.2 declares wall_clock64() for the device pass only
#endif
}

__global__ void ProbeKernel(HostSlot* slot, unsigned* done_blocks, const volatile unsigned* cancel,
                            unsigned long long spin_ticks, unsigned long long check_ticks, unsigned seq) {
  const unsigned long long t0 = WallClock();
  const bool leader = threadIdx.x == 0;
  __shared__ volatile unsigned stop;
  if (leader) {
    if (blockIdx.x == 0) slot->start = t0;
    stop = 0;
  }
  if (spin_ticks != 0) {
    __syncthreads();
    unsigned long long next_check = t0 + check_ticks;
    while (!stop) {
      const unsigned long long now = WallClock();
      if (now - t0 >= spin_ticks) break;
      if (leader && now >= next_check) {
        next_check = now + check_ticks;
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
    *done_blocks = 0;
    slot->end = WallClock();
    __threadfence_system();
    *reinterpret_cast<volatile unsigned*>(&slot->seq) = seq;
  }
}

__global__ void ReadTimerKernel(unsigned long long* out, unsigned seq) {
  out[0] = WallClock();
  __threadfence_system();
  *reinterpret_cast<volatile unsigned*>(&out[1]) = seq;
}

// ------------------------------------------------------------------------------------------------
// host state

constexpr uint32_t kFillThreadsPerBlock = 64;

struct DeviceState {
  bool ready = false;
  std::string name, arch;
  int cus = 0, max_threads = 1024;
  int prio_least = 1, prio_greatest = -1;
  long long clock_khz = 0;  // wall_clock64() rate; 0 = not known yet (calibrated on the run path)
  // CU-mask layout: from the device's KFD node (0 = unknown), bits per compute unit
  int num_xcc = 0, num_se_per_xcc = 0, num_sh_per_se = 0, mask_bits_per_unit = 1;
  std::mutex helper_mu;
  hipStream_t helper = nullptr;
  unsigned long long* helper_host = nullptr;  // [0] value, [1] seq
  unsigned long long* helper_dev = nullptr;
  unsigned helper_seq = 0;
};

std::mutex g_mu;
int g_refs = 0;
int g_count = 0;
std::vector<DeviceState*> g_devices;

int RtErr(hipError_t e, const char* what, char* err, unsigned errlen) {
  SetErr(err, errlen, "%s: %s (%s)", hipGetErrorName(e), hipGetErrorString(e), what);
  (void)hipGetLastError();
  return (e == hipErrorNoDevice || e == hipErrorInvalidDevice) ? GPUCOLO_ERR_NO_DEVICE : GPUCOLO_ERR_RUNTIME;
}

uint64_t TicksToNs(unsigned long long ticks, long long khz) {
  const unsigned long long k = static_cast<unsigned long long>(khz);
  return (ticks / k) * 1000000ull + (ticks % k) * 1000000ull / k;
}

unsigned long long NsToTicks(uint64_t ns, long long khz) {
  const unsigned long long k = static_cast<unsigned long long>(khz);
  return (ns / 1000000ull) * k + ((ns % 1000000ull) * k + 999999ull) / 1000000ull;  // rounded up
}

bool InitDone(char* err, unsigned errlen) {
  if (g_refs > 0) return true;
  SetErr(err, errlen, "hip backend: init() has not been called (or shutdown() released it)");
  return false;
}

// One-thread kernel on the helper stream; spins on the mapped result. Call with d.helper_mu held.
int ReadTicksLocked(int dev, DeviceState& d, unsigned long long* ticks, char* err, unsigned errlen) {
  if (++d.helper_seq == 0) d.helper_seq = 1;
  const unsigned seq = d.helper_seq;
  volatile unsigned* flag = reinterpret_cast<volatile unsigned*>(&d.helper_host[1]);
  *flag = 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  unsigned long long* buf = d.helper_dev;
  unsigned s = seq;
  void* args[] = {&buf, &s};
  const hipError_t e =
      hipLaunchKernel(reinterpret_cast<const void*>(&ReadTimerKernel), dim3(1), dim3(1), args, 0, d.helper);
  if (e != hipSuccess) return RtErr(e, "hipLaunchKernel (timer kernel)", err, errlen);
  const uint64_t t0 = MonotonicNs();
  unsigned spins = 0;
  while (*flag != seq) {
    if (MonotonicNs() - t0 > gpucolo_plugin::kHelperTimeoutNs) {
      const hipError_t q = hipStreamQuery(d.helper);
      if (q != hipSuccess && q != hipErrorNotReady) return RtErr(q, "timer kernel", err, errlen);
      SetErr(err, errlen, "hip: timer kernel did not run within 5 s (device %d busy or hung)", dev);
      return GPUCOLO_ERR_TIMEOUT;
    }
    gpucolo_plugin::Backoff(&spins);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  *ticks = *reinterpret_cast<volatile unsigned long long*>(&d.helper_host[0]);
  return GPUCOLO_OK;
}

// wall_clock64() rate in kHz without running anything: GPUCOLO_HIP_WALLCLOCK_KHZ, else the
// attribute (HIP >= 5.3); 0 when neither says
long long WallClockKhzNoKernel(int dev) {
  long long khz = gpucolo_plugin::EnvLong("GPUCOLO_HIP_WALLCLOCK_KHZ", 0);
#if HIP_VERSION >= 50300000
  if (khz <= 0) {
    int attr = 0;
    if (hipDeviceGetAttribute(&attr, hipDeviceAttributeWallClockRate, dev) == hipSuccess) khz = attr;
    (void)hipGetLastError();
  }
#else
  (void)dev;
#endif
  return khz > 0 ? khz : 0;
}

// wall_clock64() rate in kHz: as above, else calibrated with two helper kernels (run path only)
int WallClockKhzLocked(int dev, DeviceState& d, char* err, unsigned errlen) {
  long long khz = WallClockKhzNoKernel(dev);
  if (khz <= 0) {  // calibrate against CLOCK_MONOTONIC
    std::lock_guard<std::mutex> lock(d.helper_mu);
    unsigned long long a = 0, b = 0;
    const uint64_t h0 = MonotonicNs();
    int rc = ReadTicksLocked(dev, d, &a, err, errlen);
    if (rc != GPUCOLO_OK) return rc;
    const uint64_t h1 = MonotonicNs();
    timespec pause{0, 20000000L};
    nanosleep(&pause, nullptr);
    const uint64_t h2 = MonotonicNs();
    rc = ReadTicksLocked(dev, d, &b, err, errlen);
    if (rc != GPUCOLO_OK) return rc;
    const uint64_t h3 = MonotonicNs();
    const double host_ns = 0.5 * static_cast<double>((h2 + h3) - (h0 + h1));
    const double mhz = std::round(static_cast<double>(b - a) * 1e3 / host_ns);  // ticks/ns * 1e3 = MHz
    if (!(mhz > 0)) {
      SetErr(err, errlen, "hip device %d: wall_clock64() does not advance (calibration failed)", dev);
      return GPUCOLO_ERR_RUNTIME;
    }
    khz = static_cast<long long>(mhz) * 1000;
  }
  d.clock_khz = khz;
  return GPUCOLO_OK;
}

std::string SysfsRoot() {
  const char* v = std::getenv("GPUCOLO_HIP_SYSFS_ROOT");  // tests: a fixture tree instead of /sys
  return v != nullptr && *v != '\0' ? v : "/sys";
}

// "gfx90a" -> 9, "gfx1100" -> 11 (the last two characters are minor and stepping); 0 if unknown
int GfxMajor(const std::string& arch) {
  if (arch.rfind("gfx", 0) != 0 || arch.size() < 6) return 0;
  return std::atoi(arch.substr(3, arch.size() - 5).c_str());
}

// XCCs / shader engines / arrays of the device from its KFD node (hipDeviceProp_t has none of
// them), matched by PCI domain/bus/device; compute partitions (CPX) share the address, and then
// all candidate nodes must agree. Unknown stays 0 (the CU-mask check then assumes one XCC).
void FindLayout(const hipDeviceProp_t& prop, DeviceState* d) {
  d->mask_bits_per_unit = GfxMajor(d->arch) >= 10 ? 2 : 1;  // RDNA: WGPs of two CUs (amdkfd cu_inc 2)
  std::vector<gpucolo_plugin::KfdGpuNode> nodes;
  std::string ignored;
  if (!gpucolo_plugin::ReadKfdGpuNodes(gpucolo_plugin::KfdNodesDir(SysfsRoot()), &nodes, &ignored)) return;
  bool found = false;
  for (const auto& n : nodes) {
    const bool same = static_cast<int>(n.domain) == prop.pciDomainID && static_cast<int>(n.location_id >> 8) == prop.pciBusID &&
                      static_cast<int>((n.location_id >> 3) & 0x1f) == prop.pciDeviceID;
    if (!same) continue;
    if (found && (n.Xccs() != d->num_xcc || n.SesPerXcc() != d->num_se_per_xcc || n.ShsPerSe() != d->num_sh_per_se)) {
      d->num_xcc = d->num_se_per_xcc = d->num_sh_per_se = 0;  // ambiguous
      return;
    }
    found = true;
    d->num_xcc = n.Xccs();
    d->num_se_per_xcc = n.SesPerXcc();
    d->num_sh_per_se = n.ShsPerSe();
  }
}

// Makes `dev` current on this thread and fills its DeviceState once (launches nothing). Call
// with g_mu held.
int EnsureDeviceLocked(int dev, char* err, unsigned errlen) {
  if (!InitDone(err, errlen)) return GPUCOLO_ERR_INVALID;
  if (dev < 0 || dev >= g_count) {
    SetErr(err, errlen, "hip device %d out of range (%d device%s)", dev, g_count, g_count == 1 ? "" : "s");
    return GPUCOLO_ERR_NO_DEVICE;
  }
  hipError_t e = hipSetDevice(dev);
  if (e != hipSuccess) return RtErr(e, "hipSetDevice", err, errlen);
  DeviceState& d = *g_devices[dev];
  if (d.ready) return GPUCOLO_OK;
  hipDeviceProp_t prop{};
  if ((e = hipGetDeviceProperties(&prop, dev)) != hipSuccess) return RtErr(e, "hipGetDeviceProperties", err, errlen);
  d.name = prop.name;
  d.arch = prop.gcnArchName;  // "gfx90a:sramecc+:xnack-" -> "gfx90a"
  const size_t colon = d.arch.find(':');
  if (colon != std::string::npos) d.arch.resize(colon);
  d.cus = prop.multiProcessorCount;
  d.max_threads = prop.maxThreadsPerBlock > 0 ? prop.maxThreadsPerBlock : 1024;
  if ((e = hipDeviceGetStreamPriorityRange(&d.prio_least, &d.prio_greatest)) != hipSuccess)
    return RtErr(e, "hipDeviceGetStreamPriorityRange", err, errlen);
  if (d.helper == nullptr) {
    if ((e = hipStreamCreateWithPriority(&d.helper, hipStreamNonBlocking, d.prio_greatest)) != hipSuccess) {
      d.helper = nullptr;
      return RtErr(e, "hipStreamCreateWithPriority (helper stream)", err, errlen);
    }
    void* host = nullptr;
    if ((e = hipHostMalloc(&host, 64, hipHostMallocMapped | hipHostMallocPortable | hipHostMallocCoherent)) !=
        hipSuccess) {
      (void)hipStreamDestroy(d.helper);
      d.helper = nullptr;
      return RtErr(e, "hipHostMalloc (helper buffer)", err, errlen);
    }
    std::memset(host, 0, 64);
    void* devp = nullptr;
    if ((e = hipHostGetDevicePointer(&devp, host, 0)) != hipSuccess) {
      (void)hipHostFree(host);
      (void)hipStreamDestroy(d.helper);
      d.helper = nullptr;
      return RtErr(e, "hipHostGetDevicePointer (helper buffer)", err, errlen);
    }
    d.helper_host = static_cast<unsigned long long*>(host);
    d.helper_dev = static_cast<unsigned long long*>(devp);
  }
  if (d.clock_khz <= 0) d.clock_khz = WallClockKhzNoKernel(dev);  // calibration waits for the run path
  FindLayout(prop, &d);
  d.ready = true;
  return GPUCOLO_OK;
}

int EnsureDevice(int dev, char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  return EnsureDeviceLocked(dev, err, errlen);
}

// EnsureDevice + a known wall-clock rate: may run helper kernels (stream_create, read_device_time)
int EnsureClock(int dev, char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  int rc = EnsureDeviceLocked(dev, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[dev];
  if (d.clock_khz <= 0) rc = WallClockKhzLocked(dev, d, err, errlen);
  return rc;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// streams

struct gpucolo_stream {
  int device = 0;
  long long clock_khz = 0;
  int compute_units = 0;  // what its mask enables (all when none)
  hipStream_t stream = nullptr;
  HostSlot* slots_host = nullptr;
  HostSlot* slots_dev = nullptr;
  volatile unsigned* cancel_host = nullptr;
  unsigned* cancel_dev = nullptr;
  unsigned* counters_dev = nullptr;
  bool cancel_pending = false;
  unsigned next_seq = 0;
  std::vector<unsigned> expect;
};

namespace {

// streams destroyed while their kernels still ran; freed once idle (under g_mu)
gpucolo_plugin::DeferredRelease<gpucolo_stream> g_kept;

// The arch check (arch_check.h) before any HIP call: "" = fine. Decided afresh by every first
// init() (and by device_count() if it comes first), kept in g_arch_refusal under g_mu.
std::string g_arch_refusal;
bool g_arch_checked = false;

const std::string& ArchRefusalLocked(bool fresh) {
  if (fresh || !g_arch_checked) {
    // with *_VISIBLE_DEVICES the runtime sees a subset of the KFD nodes we cannot map: refuse only
    // when no GPU at all has a code object
    bool filtered = false;
    for (const char* v : {"HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"})
      filtered = filtered || std::getenv(v) != nullptr;
    g_arch_refusal = gpucolo_plugin::CheckHipArchs(GPUCOLO_HIP_ARCHS, gpucolo_plugin::KfdNodesDir(SysfsRoot()), !filtered);
    g_arch_checked = true;
  }
  return g_arch_refusal;
}

bool Busy(gpucolo_stream* s) {
  if (s->stream == nullptr) return false;
  (void)hipSetDevice(s->device);
  const hipError_t q = hipStreamQuery(s->stream);
  (void)hipGetLastError();
  return q == hipErrorNotReady;  // an error will not get any better: not busy
}

void FreeStream(gpucolo_stream* s) {
  (void)hipSetDevice(s->device);
  if (s->stream != nullptr) (void)hipStreamDestroy(s->stream);
  if (s->counters_dev != nullptr) (void)hipFree(s->counters_dev);
  if (s->slots_host != nullptr) (void)hipHostFree(s->slots_host);
  (void)hipGetLastError();
  delete s;
}

void ReapKeptLocked() { g_kept.Reap(Busy, FreeStream); }

int Init(char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_refs > 0) {
    ++g_refs;
    return GPUCOLO_OK;
  }
  if (!ArchRefusalLocked(true).empty()) {
    SetErr(err, errlen, "hipErrorNoBinaryForGpu: %s", g_arch_refusal.c_str());
    return GPUCOLO_ERR_UNSUPPORTED;
  }
  const hipError_t ei = hipInit(0);
  int n = 0;
  const hipError_t ec = hipGetDeviceCount(&n);
  (void)hipGetLastError();
  if (ec == hipErrorNoDevice || (ec == hipSuccess && n <= 0)) {
    std::string kfd;
    if (access("/dev/kfd", R_OK | W_OK) != 0) kfd = std::string("; /dev/kfd: ") + std::strerror(errno);
    SetErr(err, errlen, "hipErrorNoDevice: no ROCm-capable device is detected (hipInit: %s%s)", hipGetErrorName(ei),
           kfd.c_str());
    return GPUCOLO_ERR_NO_DEVICE;
  }
  if (ei != hipSuccess || ec != hipSuccess) {
    int drv = 0, rt = 0;
    (void)hipDriverGetVersion(&drv);
    (void)hipRuntimeGetVersion(&rt);
    const std::string where = std::string(ei != hipSuccess ? "hipInit" : "hipGetDeviceCount") + "; HIP runtime " +
                              std::to_string(rt) + ", driver " + std::to_string(drv);
    return RtErr(ei != hipSuccess ? ei : ec, where.c_str(), err, errlen);
  }
  for (int i = static_cast<int>(g_devices.size()); i < n; ++i) g_devices.push_back(new DeviceState());
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
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!ArchRefusalLocked(false).empty()) {  // hipGetDeviceCount would abort the process
      SetErr(err, errlen, "hipErrorNoBinaryForGpu: %s", g_arch_refusal.c_str());
      return GPUCOLO_ERR_UNSUPPORTED;
    }
  }
  int n = 0;
  const hipError_t e = hipGetDeviceCount(&n);
  if (e == hipErrorNoDevice) {
    (void)hipGetLastError();
    return GPUCOLO_OK;
  }
  if (e != hipSuccess) return RtErr(e, "hipGetDeviceCount", err, errlen);
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
  int n = 0;  // EnsureDevice made the device current; the probe kernel has no dynamic LDS
  const hipError_t e = hipOccupancyMaxActiveBlocksPerMultiprocessor(&n, reinterpret_cast<const void*>(&ProbeKernel),
                                                                    static_cast<int>(threads_per_block), 0);
  if (e != hipSuccess) return RtErr(e, "hipOccupancyMaxActiveBlocksPerMultiprocessor", err, errlen);
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
  int per_cu = 0;
  if ((rc = MaxActiveBlocks(device, kFillThreadsPerBlock, &per_cu, err, errlen)) != GPUCOLO_OK) return rc;
  const DeviceState& d = *g_devices[device];
  gpucolo_plugin::CopyStr(out->name, sizeof out->name, d.name.c_str());
  gpucolo_plugin::CopyStr(out->arch, sizeof out->arch, d.arch.c_str());
  out->compute_units = d.cus;
  out->priority_least = d.prio_least;
  out->priority_greatest = d.prio_greatest;
  out->supports_cu_mask = 1;
  out->supports_sm_partition = 0;
  out->timer_resolution_ns = d.clock_khz > 0 ? 1e6 / static_cast<double>(d.clock_khz) : 0.0;  // 1 tick
  out->max_threads_per_block = d.max_threads;
  out->fill_threads_per_block = static_cast<int>(kFillThreadsPerBlock);
  out->max_active_blocks_per_cu = per_cu;
  out->num_xcc = d.num_xcc;
  out->num_se_per_xcc = d.num_se_per_xcc;
  out->num_sh_per_se = d.num_sh_per_se;
  out->cu_mask_bits_per_unit = d.mask_bits_per_unit;
  return GPUCOLO_OK;
}

int StreamDestroy(gpucolo_stream* s);

int StreamCreate(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
  if (o == nullptr || out == nullptr) {
    SetErr(err, errlen, "stream_create: opts and out must not be NULL");
    return GPUCOLO_ERR_INVALID;
  }
  *out = nullptr;
  if (o->sm_count != 0) {
    SetErr(err, errlen, "SM partitions are NVIDIA green contexts; on AMD use a CU mask");
    return o->sm_count < 0 ? GPUCOLO_ERR_INVALID : GPUCOLO_ERR_UNSUPPORTED;
  }
  int rc = EnsureClock(o->device, err, errlen);  // the run path: calibrating the clock may run kernels
  if (rc != GPUCOLO_OK) return rc;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    ReapKeptLocked();
  }
  const DeviceState& d = *g_devices[o->device];
  // HIP: greatest (highest) priority is the numerically lowest
  if (o->priority < d.prio_greatest || o->priority > d.prio_least) {
    SetErr(err, errlen, "stream priority %d outside the device's range %d (highest) .. %d (lowest)", o->priority,
           d.prio_greatest, d.prio_least);
    return GPUCOLO_ERR_INVALID;
  }
  int mask_units = d.cus;
  if (o->cu_mask != nullptr) {
    const std::vector<uint32_t> mask(o->cu_mask, o->cu_mask + o->cu_mask_words);
    gpucolo::dispatch::CuLayout layout;
    layout.compute_units = d.cus;
    layout.num_xcc = d.num_xcc > 0 ? d.num_xcc : 1;
    layout.num_se_per_xcc = d.num_se_per_xcc;
    layout.num_sh_per_se = d.num_sh_per_se;
    layout.bits_per_unit = d.mask_bits_per_unit;
    const gpucolo::dispatch::CuMaskCoverage cover = gpucolo::dispatch::MapCuMask(layout, mask);
    if (cover.total == 0) {
      SetErr(err, errlen, "stream_create: the CU mask selects none of the device's %d CUs (%u words)", d.cus * d.mask_bits_per_unit,
             o->cu_mask_words);
      return GPUCOLO_ERR_INVALID;
    }
    const std::string hang = gpucolo::dispatch::CheckCuMask(layout, mask);
    if (!hang.empty()) {
      SetErr(err, errlen, "stream_create: %s", hang.c_str());
      return GPUCOLO_ERR_INVALID;
    }
    if (o->priority != 0) {
      SetErr(err, errlen,
             "hipExtStreamCreateWithCUMask creates Normal-priority streams only: a CU mask cannot be combined "
             "with priority %d",
             o->priority);
      return GPUCOLO_ERR_UNSUPPORTED;
    }
    mask_units = cover.total / d.mask_bits_per_unit;
  }
  auto* s = new gpucolo_stream();
  s->device = o->device;
  s->clock_khz = d.clock_khz;
  s->compute_units = mask_units;
  hipError_t e;
  const size_t slots_bytes = sizeof(HostSlot) * GPUCOLO_SLOTS;
  void* host = nullptr;
  void* devp = nullptr;
  void* counters = nullptr;
  if (o->cu_mask != nullptr)
    e = hipExtStreamCreateWithCUMask(&s->stream, o->cu_mask_words, o->cu_mask);
  else
    e = hipStreamCreateWithPriority(&s->stream, hipStreamNonBlocking, o->priority);
  if (e != hipSuccess) {
    s->stream = nullptr;
    rc = RtErr(e, o->cu_mask ? "hipExtStreamCreateWithCUMask" : "hipStreamCreateWithPriority", err, errlen);
    goto fail;
  }
  if ((e = hipHostMalloc(&host, slots_bytes + 64, hipHostMallocMapped | hipHostMallocPortable | hipHostMallocCoherent)) !=
      hipSuccess) {
    rc = RtErr(e, "hipHostMalloc (launch slots)", err, errlen);
    goto fail;
  }
  std::memset(host, 0, slots_bytes + 64);
  s->slots_host = static_cast<HostSlot*>(host);
  s->cancel_host = reinterpret_cast<volatile unsigned*>(static_cast<char*>(host) + slots_bytes);
  if ((e = hipHostGetDevicePointer(&devp, host, 0)) != hipSuccess) {
    rc = RtErr(e, "hipHostGetDevicePointer (launch slots)", err, errlen);
    goto fail;
  }
  s->slots_dev = static_cast<HostSlot*>(devp);
  s->cancel_dev = reinterpret_cast<unsigned*>(static_cast<char*>(devp) + slots_bytes);
  if ((e = hipMalloc(&counters, sizeof(unsigned) * GPUCOLO_SLOTS)) != hipSuccess) {
    rc = RtErr(e, "hipMalloc (block counters)", err, errlen);
    goto fail;
  }
  s->counters_dev = static_cast<unsigned*>(counters);
  if ((e = hipMemsetAsync(counters, 0, sizeof(unsigned) * GPUCOLO_SLOTS, s->stream)) != hipSuccess) {
    rc = RtErr(e, "hipMemsetAsync (block counters)", err, errlen);
    goto fail;
  }
  s->expect.assign(GPUCOLO_SLOTS, 0);
  *out = s;
  return GPUCOLO_OK;
fail:
  StreamDestroy(s);
  return rc;
}

int StreamDestroy(gpucolo_stream* s) {
  if (s == nullptr) return GPUCOLO_ERR_INVALID;
  if (Busy(s) && s->cancel_host != nullptr) {
    *s->cancel_host = 1;  // let running probe kernels stop early, then wait a bounded time
    const uint64_t t0 = MonotonicNs();
    unsigned spins = 0;
    while (Busy(s) && MonotonicNs() - t0 < gpucolo_plugin::kCancelGraceNs) gpucolo_plugin::Backoff(&spins);
  }
  if (Busy(s)) {
    // never free the mapped slots or counters a running kernel still writes: keep the stream
    // until its work is over (freed by a later stream_create() or shutdown())
    std::lock_guard<std::mutex> lock(g_mu);
    g_kept.Keep(s);
    return GPUCOLO_ERR_TIMEOUT;
  }
  FreeStream(s);
  return GPUCOLO_OK;
}

int StreamInfo(gpucolo_stream* s, gpucolo_stream_info* out) {
  if (s == nullptr || out == nullptr) return GPUCOLO_ERR_INVALID;
  out->sm_count = 0;
  out->compute_units = s->compute_units;
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
  hipError_t e = hipSetDevice(s->device);
  if (e != hipSuccess) return RtErr(e, "hipSetDevice", err, errlen);
  if (s->cancel_pending) {
    const hipError_t q = hipStreamQuery(s->stream);
    if (q == hipErrorNotReady) {
      SetErr(err, errlen, "launch: the stream is still draining launches cancelled by a synchronize() timeout");
      return GPUCOLO_ERR_RUNTIME;
    }
    if (q != hipSuccess) return RtErr(q, "hipStreamQuery", err, errlen);
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
  unsigned long long spin = k->spin_ns ? NsToTicks(k->spin_ns, s->clock_khz) : 0;
  unsigned long long check = NsToTicks(gpucolo_plugin::kCancelCheckNs, s->clock_khz);
  unsigned sq = seq;
  void* args[] = {&slot_dev, &counter, &cancel, &spin, &check, &sq};
  e = hipLaunchKernel(reinterpret_cast<const void*>(&ProbeKernel), dim3(k->blocks), dim3(k->threads_per_block), args,
                      0, s->stream);
  if (e != hipSuccess) return RtErr(e, "hipLaunchKernel", err, errlen);
  s->expect[slot] = seq;
  return GPUCOLO_OK;
}

int Poll(gpucolo_stream* s, uint32_t slot, uint64_t* device_start_ns, uint64_t* device_end_ns) {
  if (s == nullptr || slot >= GPUCOLO_SLOTS || s->expect[slot] == 0) return GPUCOLO_ERR_INVALID;
  const volatile HostSlot* h = &s->slots_host[slot];
  if (h->seq != s->expect[slot]) return 0;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (device_start_ns) *device_start_ns = TicksToNs(h->start, s->clock_khz);
  if (device_end_ns) *device_end_ns = TicksToNs(h->end, s->clock_khz);
  return h->cancelled ? GPUCOLO_ERR_TIMEOUT : 1;
}

int Synchronize(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen) {
  if (s == nullptr) {
    SetErr(err, errlen, "synchronize: stream is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  hipError_t q = hipSetDevice(s->device);
  if (q != hipSuccess) return RtErr(q, "hipSetDevice", err, errlen);
  const uint64_t t0 = MonotonicNs();
  unsigned spins = 0;
  for (;;) {
    q = hipStreamQuery(s->stream);
    if (q == hipSuccess) return GPUCOLO_OK;
    if (q != hipErrorNotReady) return RtErr(q, "hipStreamQuery", err, errlen);
    if (MonotonicNs() - t0 >= timeout_ns) break;
    gpucolo_plugin::Backoff(&spins);
  }
  // the watchdog: cancel what runs, give it a bounded time to drain
  *s->cancel_host = 1;
  s->cancel_pending = true;
  const uint64_t t1 = MonotonicNs();
  spins = 0;
  while ((q = hipStreamQuery(s->stream)) == hipErrorNotReady && MonotonicNs() - t1 < gpucolo_plugin::kCancelGraceNs)
    gpucolo_plugin::Backoff(&spins);
  const double ms = static_cast<double>(timeout_ns) / 1e6;
  if (q == hipSuccess) {
    *s->cancel_host = 0;
    s->cancel_pending = false;
    SetErr(err, errlen, "synchronize: stream still busy after %.3f ms; its probe kernels were cancelled", ms);
  } else if (q == hipErrorNotReady) {
    SetErr(err, errlen,
           "synchronize: stream still busy after %.3f ms and not drained 2 s after cancelling its kernels "
           "(device held by other work?)",
           ms);
  } else {
    return RtErr(q, "hipStreamQuery after cancelling", err, errlen);
  }
  return GPUCOLO_ERR_TIMEOUT;
}

int ReadDeviceTime(int device, uint64_t* out_ns, char* err, unsigned errlen) {
  if (out_ns == nullptr) {
    SetErr(err, errlen, "read_device_time: out is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  int rc = EnsureClock(device, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[device];
  std::lock_guard<std::mutex> lock(d.helper_mu);
  unsigned long long ticks = 0;
  rc = ReadTicksLocked(device, d, &ticks, err, errlen);
  if (rc == GPUCOLO_OK) *out_ns = TicksToNs(ticks, d.clock_khz);
  return rc;
}

void Shutdown() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_refs == 0 || --g_refs > 0) return;
  ReapKeptLocked();  // streams still running stay kept (the plugin is never unloaded)
  for (int i = 0; i < static_cast<int>(g_devices.size()); ++i) {
    DeviceState& d = *g_devices[i];
    if (!d.ready || hipSetDevice(i) != hipSuccess) continue;
    std::lock_guard<std::mutex> hl(d.helper_mu);
    if (d.helper != nullptr && hipStreamQuery(d.helper) != hipErrorNotReady) {
      (void)hipStreamDestroy(d.helper);
      (void)hipHostFree(d.helper_host);
      d.helper = nullptr;
      d.helper_host = nullptr;
      d.helper_dev = nullptr;
      d.ready = false;  // the next EnsureDevice() sets the helpers up again (the clock rate is kept)
    }
    (void)hipGetLastError();
  }
}

const gpucolo_gpu_api kApi = {
    GPUCOLO_GPU_ABI, "hip", Init, DeviceCount, DeviceInfo, StreamCreate, StreamDestroy, Launch, Poll,
    Synchronize, ReadDeviceTime, Shutdown, MaxActiveBlocks, StreamInfo,
};

}  // namespace

GPUCOLO_EXPORT const gpucolo_gpu_api* gpucolo_gpu_get_api(void) { return &kApi; }
