// gpucolo_hip.so: the HIP (AMD) backend of native/dispatch/gpu_plugin.h.
//
// Same design as native/plugins/cuda/plugin.cu (read its header comment first), from the same
// source: native/plugins/plugin_core.inc holds what both runtimes do alike, written against the
// names of hip/vendor.h; this file holds what only HIP has (the arch check, the wall-clock rate,
// CU masks and the XCC layout) and the vendor hooks plugin_core.inc calls. The differences:
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

#include "hip/vendor.h"  // hip_runtime.h and the names plugin_core.inc uses

#include <hip/hip_version.h>

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "dispatch/cu_mask_layout.h"
#include "hip/arch_check.h"
#include "hip/kfd_nodes.h"
#include "plugin_common.h"

#ifndef GPUCOLO_HIP_ARCHS  // set by CMakeLists.txt from HIP_ARCHS (the --offload-arch list)
#define GPUCOLO_HIP_ARCHS ""
#endif

namespace {

// ------------------------------------------------------------------------------------------------
// what plugin_core.inc keeps per device and per stream for HIP alone

struct VendorDevice {
  // CU-mask layout: from the device's KFD node (0 = unknown), bits per compute unit
  int num_xcc = 0, num_se_per_xcc = 0, num_sh_per_se = 0, mask_bits_per_unit = 1;
};

struct VendorStream {};  // a HIP stream needs nothing beyond the shared fields

// Makes the stream's device current on this thread (HIP has no per-stream context to push).
class StreamScope {
 public:
  StreamScope(gpucolo_stream* s, char* err, unsigned errlen);
  int rc() const { return rc_; }

 private:
  int rc_ = GPUCOLO_OK;
};

}  // namespace

#include "plugin_core.inc"

namespace {

StreamScope::StreamScope(gpucolo_stream* s, char* err, unsigned errlen) {
  const hipError_t e = hipSetDevice(s->device);
  if (e != hipSuccess) rc_ = RtErr(e, "hipSetDevice", err, errlen);
}

// wall_clock64() now, by a one-thread kernel on the helper stream. Call with d.helper_mu held.
int ReadTicksLocked(int dev, DeviceState& d, unsigned long long* ticks, char* err, unsigned errlen) {
  return RunHelperLocked(dev, d, reinterpret_cast<const void*>(&ReadTimerKernel), ticks, err, errlen);
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
void FindLayout(const hipDeviceProp_t& prop, const std::string& arch, VendorDevice* d) {
  d->mask_bits_per_unit = GfxMajor(arch) >= 10 ? 2 : 1;  // RDNA: WGPs of two CUs (amdkfd cu_inc 2)
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

// EnsureDevice + a known wall-clock rate: may run helper kernels (stream_create, read_device_time)
int EnsureClock(int dev, char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  int rc = EnsureDeviceLocked(dev, err, errlen);
  if (rc != GPUCOLO_OK) return rc;
  DeviceState& d = *g_devices[dev];
  if (d.clock_khz <= 0) rc = WallClockKhzLocked(dev, d, err, errlen);
  return rc;
}

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

// ------------------------------------------------------------------------------------------------
// the vendor hooks of plugin_core.inc: devices

int InitRuntimeLocked(int* count, char* err, unsigned errlen) {
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
  *count = n;
  return GPUCOLO_OK;
}

int DeviceCountAllowed(char* err, unsigned errlen) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (ArchRefusalLocked(false).empty()) return GPUCOLO_OK;
  SetErr(err, errlen, "hipErrorNoBinaryForGpu: %s", g_arch_refusal.c_str());  // hipGetDeviceCount would abort
  return GPUCOLO_ERR_UNSUPPORTED;
}

std::string DeviceCountContext() { return ""; }

int ReadDeviceLocked(int dev, DeviceState& d, hipDeviceProp_t* prop, char* err, unsigned errlen) {
  const hipError_t e = hipGetDeviceProperties(prop, dev);
  if (e != hipSuccess) return RtErr(e, "hipGetDeviceProperties", err, errlen);
  d.name = prop->name;
  d.arch = prop->gcnArchName;  // "gfx90a:sramecc+:xnack-" -> "gfx90a"
  const size_t colon = d.arch.find(':');
  if (colon != std::string::npos) d.arch.resize(colon);
  d.compute_units = prop->multiProcessorCount;
  d.max_threads = prop->maxThreadsPerBlock > 0 ? prop->maxThreadsPerBlock : 1024;
  return GPUCOLO_OK;
}

int FinishDeviceLocked(int dev, const hipDeviceProp_t& prop, DeviceState& d, char* /*err*/, unsigned /*errlen*/) {
  if (d.clock_khz <= 0) d.clock_khz = WallClockKhzNoKernel(dev);  // calibration waits for the run path
  FindLayout(prop, d.arch, &d.v);
  return GPUCOLO_OK;
}

void FillDeviceInfo(DeviceState& d, gpucolo_device_info* out) {
  out->supports_cu_mask = 1;
  out->supports_sm_partition = 0;
  out->timer_resolution_ns = d.clock_khz > 0 ? 1e6 / static_cast<double>(d.clock_khz) : 0.0;  // 1 tick
  out->num_xcc = d.v.num_xcc;
  out->num_se_per_xcc = d.v.num_se_per_xcc;
  out->num_sh_per_se = d.v.num_sh_per_se;
  out->cu_mask_bits_per_unit = d.v.mask_bits_per_unit;
}

int EnsureDeviceTimer(int dev, char* err, unsigned errlen) { return EnsureClock(dev, err, errlen); }

// ------------------------------------------------------------------------------------------------
// the vendor hooks of plugin_core.inc: streams

// A CU mask must select some of the device's CUs, leave no XCC without one, and come with the
// normal priority; *units = the compute units it enables.
int CheckCuMask(const DeviceState& d, const gpucolo_stream_opts* o, int* units, char* err, unsigned errlen) {
  const std::vector<uint32_t> mask(o->cu_mask, o->cu_mask + o->cu_mask_words);
  gpucolo::dispatch::CuLayout layout;
  layout.compute_units = d.compute_units;
  layout.num_xcc = d.v.num_xcc > 0 ? d.v.num_xcc : 1;
  layout.num_se_per_xcc = d.v.num_se_per_xcc;
  layout.num_sh_per_se = d.v.num_sh_per_se;
  layout.bits_per_unit = d.v.mask_bits_per_unit;
  const gpucolo::dispatch::CuMaskCoverage cover = gpucolo::dispatch::MapCuMask(layout, mask);
  if (cover.total == 0) {
    SetErr(err, errlen, "stream_create: the CU mask selects none of the device's %d CUs (%u words)",
           d.compute_units * d.v.mask_bits_per_unit, o->cu_mask_words);
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
  *units = cover.total / d.v.mask_bits_per_unit;
  return GPUCOLO_OK;
}

int NewStream(const gpucolo_stream_opts* o, gpucolo_stream** out, char* err, unsigned errlen) {
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
  if ((rc = CheckPriority(d, o->priority, err, errlen)) != GPUCOLO_OK) return rc;
  int mask_units = d.compute_units;
  if (o->cu_mask != nullptr && (rc = CheckCuMask(d, o, &mask_units, err, errlen)) != GPUCOLO_OK) return rc;
  auto* s = new gpucolo_stream();
  s->device = o->device;
  s->clock_khz = d.clock_khz;
  s->compute_units = mask_units;
  *out = s;
  return GPUCOLO_OK;
}

int CreateRuntimeStream(gpucolo_stream* s, const gpucolo_stream_opts* o, char* err, unsigned errlen) {
  const hipError_t e = o->cu_mask != nullptr
                           ? hipExtStreamCreateWithCUMask(&s->stream, o->cu_mask_words, o->cu_mask)
                           : hipStreamCreateWithPriority(&s->stream, hipStreamNonBlocking, o->priority);
  if (e == hipSuccess) return GPUCOLO_OK;
  s->stream = nullptr;
  return RtErr(e, o->cu_mask ? "hipExtStreamCreateWithCUMask" : "hipStreamCreateWithPriority", err, errlen);
}

void StreamReady(gpucolo_stream* /*s*/) {}

// hipSetDevice failing is no reason to think the stream idle: ask it anyway (as the HIP plugin
// always did)
bool BusyInScope(gpucolo_stream* s, int /*scope_rc*/) { return QueryBusy(s); }

void DestroyRuntimeStream(gpucolo_stream* s) { (void)hipStreamDestroy(s->stream); }

void ReleaseStreamLocked(gpucolo_stream* /*s*/) {}

}  // namespace
