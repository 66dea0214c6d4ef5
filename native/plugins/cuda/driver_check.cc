#include "driver_check.h"

#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "dispatch/gpu_plugin.h"

namespace gpucolo_plugin {

std::string CudaVersionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

const char* MinLinuxDriverFor(int cuda_major) {
  // CUDA Toolkit release notes, "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor
  // Version Compatibility"
  switch (cuda_major) {
    case 11: return "450.80.02";
    case 12: return "525.60.13";
    case 13: return "580";
    default: return "";
  }
}

int QueryDriverVersion(int* version, std::string* error, const char* lib) {
  *version = 0;
  dlerror();
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = dlerror();
    *error = why ? why : std::string(lib) + ": cannot be loaded";
    return GPUCOLO_ERR_NO_DEVICE;
  }
  // CUresult cuDriverGetVersion(int*): CUresult is an int-sized enum, CUDA_SUCCESS = 0
  using Fn = int (*)(int*);
  auto fn = reinterpret_cast<Fn>(dlsym(h, "cuDriverGetVersion"));
  if (fn == nullptr) {
    *error = std::string(lib) + " has no cuDriverGetVersion";
    return GPUCOLO_ERR_RUNTIME;
  }
  const int rc = fn(version);
  if (rc != 0 || *version <= 0) {
    *error = "cuDriverGetVersion failed (CUresult " + std::to_string(rc) + ")";
    *version = 0;
    return GPUCOLO_ERR_RUNTIME;
  }
  return GPUCOLO_OK;
}

std::string NvidiaDriverRelease(const char* path) {
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 ..." (open kernel
  // modules say "NVIDIA UNIX Open Kernel Module for x86_64  580.65.06 ...")
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  std::istringstream words(line);
  std::string w;
  while (words >> w) {
    int dots = 0;
    bool ok = !w.empty() && w[0] >= '0' && w[0] <= '9';
    for (char c : w) {
      if (c == '.') ++dots;
      else if (c < '0' || c > '9') ok = false;
    }
    if (ok && dots >= 1) return w;
  }
  return "";
}

std::string DriverRequirement(int runtime_version, int driver_version, const std::string& driver_release) {
  const int need_major = runtime_version / 1000;
  if (driver_version >= need_major * 1000) return "";
  const std::string built = CudaVersionText(runtime_version);
  const std::string has = CudaVersionText(driver_version);
  const char* min_linux = MinLinuxDriverFor(need_major);
  std::string msg = "gpucolo_cuda.so was built with CUDA " + built + " (its runtime is linked in), which needs a driver for CUDA >= " +
                    std::to_string(need_major) + ".0" + (*min_linux ? std::string(" (Linux driver >= ") + min_linux + ")" : "") +
                    "; this driver" + (driver_release.empty() ? "" : " (" + driver_release + ")") + " supports CUDA " + has;
  const int drv_major = driver_version / 1000;
  if (drv_major >= 11) {
    // same major as the driver, not newer than it: runs by minor version compatibility, and its
    // PTX is not newer than what this driver can JIT
    msg += ": rebuild gpucolo_cuda.so with CUDA " + std::to_string(drv_major) + ".x <= " + has +
           " (cmake -DGPUCOLO_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda-" + has + "/bin/nvcc) or update the driver";
  } else {
    msg += ": update the NVIDIA driver (gpucolo_cuda.so builds with CUDA 11.0 and newer)";
  }
  return msg;
}

}  // namespace gpucolo_plugin
