// N-API surface of the trace group: startSampler (the native sampling thread, sampler.h),
// createProcsWalker (its proc-tree reader, kfd/sysfs_procs.h, on the JS thread),
// monotonicNowNs and threadCpuNs (the calling thread's CPU time). Declared in src/native.ts
// (NativeSamplerOptions, NativeSample, ...).
#pragma once

#include <napi.h>

namespace gpucolo {
namespace trace {

void RegisterBinding(Napi::Env env, Napi::Object exports);

}  // namespace trace
}  // namespace gpucolo
