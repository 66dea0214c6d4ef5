// dlopen()/dlsym() helpers shared by the NVML and ROCm SMI backends (internal to native/power).
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

namespace gpucolo {
namespace power {

struct DlOpened {
  void* handle = nullptr;
  /** the candidate that opened, or the last one tried */
  std::string path;
  /** dlerror() of every candidate that failed, "; "-joined (empty when one opened) */
  std::string error;
};

/** Tries each candidate in turn with RTLD_NOW | RTLD_LOCAL; the first that opens wins. */
DlOpened DlOpenFirst(const std::vector<std::string>& candidates);

/** dlsym() cast to the function type F; nullptr when the symbol is missing. */
template <class F>
F DlSym(void* handle, const char* name) {
  return reinterpret_cast<F>(dlsym(handle, name));
}

/** getenv() as a string; empty when unset. */
std::string EnvValue(const char* name);

}  // namespace power
}  // namespace gpucolo
