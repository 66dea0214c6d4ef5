// The CUDA side of the shared plugin source (native/plugins/plugin_core.inc): the runtime's
// names and the few calls whose form differs from HIP's. The shared code spells every runtime
// call GPUCOLO_RT(Name) (-> cudaName) and names it in error text with GPUCOLO_RT_STR(Name)
// (-> "cudaName"), so each message names the call that failed exactly as the plugin always did.
// Included by cuda/plugin.cu only, before plugin_core.inc (device code: nvcc).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#define GPUCOLO_BACKEND "cuda"
#define GPUCOLO_RT(name) cuda##name
#define GPUCOLO_RT_STR(name) "cuda" #name
#define GPUCOLO_HOST_ALLOC_STR "cudaHostAlloc"

namespace {

using RtDeviceProp = cudaDeviceProp;

/** Host memory the probe kernels write and the host polls: pinned, mapped into the device. */
inline cudaError_t HostAllocMapped(void** p, size_t bytes) {
  return cudaHostAlloc(p, bytes, cudaHostAllocMapped | cudaHostAllocPortable);
}
inline cudaError_t HostFree(void* p) { return cudaFreeHost(p); }

/** The device timer the probe kernels read: %globaltimer, in ns. */
__device__ __forceinline__ unsigned long long DeviceTimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// %globaltimer ticks are ns: no conversion (the rate argument is HIP's)
inline uint64_t TicksToNs(unsigned long long ticks, long long /*khz*/) { return ticks; }
inline unsigned long long NsToTicks(uint64_t ns, long long /*khz*/) { return ns; }

}  // namespace
