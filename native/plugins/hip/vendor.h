// The HIP side of the shared plugin source (native/plugins/plugin_core.inc): the runtime's names
// and the few calls whose form differs from CUDA's (cuda/vendor.h says how the names are used).
// Included by hip/plugin.hip only, before plugin_core.inc (device code: hipcc).
#pragma once

#include <hip/hip_runtime.h>

#include <cstdint>

#define GPUCOLO_BACKEND "hip"
#define GPUCOLO_RT(name) hip##name
#define GPUCOLO_RT_STR(name) "hip" #name
#define GPUCOLO_HOST_ALLOC_STR "hipHostMalloc"

namespace {

using RtDeviceProp = hipDeviceProp_t;

/**
 * Host memory the probe kernels write and the host polls: pinned, mapped, and coherent
 * (fine-grained), so a kernel's writes after __threadfence_system() reach the host while the
 * stream still runs.
 */
inline hipError_t HostAllocMapped(void** p, size_t bytes) {
  return hipHostMalloc(p, bytes, hipHostMallocMapped | hipHostMallocPortable | hipHostMallocCoherent);
}
inline hipError_t HostFree(void* p) { return hipHostFree(p); }

/** The device timer the probe kernels read: wall_clock64() ticks (constant rate, kHz known per device). */
__device__ __forceinline__ unsigned long long DeviceTimer() {
#ifdef __HIP_DEVICE_COMPILE__
  return static_cast<unsigned long long>(wall_clock64());
#else
  return 0;  // host pass: HIP 5.2 declares wall_clock64() for the device pass only
#endif
}

inline uint64_t TicksToNs(unsigned long long ticks, long long khz) {
  const unsigned long long k = static_cast<unsigned long long>(khz);
  return (ticks / k) * 1000000ull + (ticks % k) * 1000000ull / k;
}

inline unsigned long long NsToTicks(uint64_t ns, long long khz) {
  const unsigned long long k = static_cast<unsigned long long>(khz);
  return (ns / 1000000ull) * k + ((ns % 1000000ull) * k + 999999ull) / 1000000ull;  // rounded up
}

}  // namespace
