// Does the installed NVIDIA driver run the CUDA runtime gpucolo_cuda.so was linked with?
//
// The plugin links the static runtime (cudart_static) of the nvcc that built it. A CUDA runtime
// runs on any driver of its own major version or newer ("minor version compatibility", CUDA
// Compatibility guide, CUDA 11.1+): 11.x needs a driver that supports CUDA 11.0 (Linux >=
// 450.80.02), 12.x one for 12.0 (>= 525.60.13), 13.x one for 13.0 (>= 580). An older driver only
// gives cudaErrorInsufficientDriver, which says nothing about what to do; this check asks the
// driver first, through cuDriverGetVersion in the dlopen()ed libcuda.so.1 (no cuInit needed,
// before any runtime call), and words the remedy. Plain C++ (no CUDA header): the plugin and the
// C++ tests (a fake libcuda) compile it.
#pragma once

#include <string>

namespace gpucolo_plugin {

/** "12.4" from 12040 (the encoding of CUDART_VERSION and cuDriverGetVersion: 1000*major + 10*minor). */
std::string CudaVersionText(int version);

/** The first Linux driver branch of a CUDA major version ("580" for 13), "" when unknown. */
const char* MinLinuxDriverFor(int cuda_major);

/**
 * cuDriverGetVersion() of the driver library `lib` (default libcuda.so.1): GPUCOLO_OK with the
 * version, or a negative status with why (library missing, symbol missing, call failed). The
 * library is left loaded (the runtime loads the same one right after).
 */
int QueryDriverVersion(int* version, std::string* error, const char* lib = "libcuda.so.1");

/** "580.65.06" from /proc/driver/nvidia/version (or `path`), "" when unreadable. */
std::string NvidiaDriverRelease(const char* path = "/proc/driver/nvidia/version");

/**
 * "" when a runtime of `runtime_version` runs on a driver supporting `driver_version`; else the
 * message for init(): what the plugin needs, what was found (with `driver_release`, e.g.
 * "550.54.15", when known) and how to rebuild for this driver.
 */
std::string DriverRequirement(int runtime_version, int driver_version, const std::string& driver_release);

}  // namespace gpucolo_plugin
