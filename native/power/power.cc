#include "power.h"

#include <time.h>

#include <cstdlib>
#include <map>

#include "dl.h"

namespace gpucolo {
namespace power {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string EnvValue(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

DlOpened DlOpenFirst(const std::vector<std::string>& candidates) {
  DlOpened out;
  for (const std::string& c : candidates) {
    dlerror();  // clear a stale message
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    out.path = c;
    if (h != nullptr) {
      out.handle = h;
      out.error.clear();
      return out;
    }
    const char* why = dlerror();
    if (!out.error.empty()) out.error += "; ";
    out.error += why ? why : c + ": dlopen failed";
  }
  return out;
}

SampleStatus Backend::Read(unsigned index, Sample* out) {
  if (!available_) return SampleStatus::kUnavailable;
  if (index >= devices_.size()) return SampleStatus::kBadIndex;
  std::lock_guard<std::mutex> lock(mu_);
  *out = Sample();
  const uint64_t t0 = MonotonicNs();
  ReadLocked(index, out);
  const uint64_t t1 = MonotonicNs();
  // the middle of the reads: what a power-over-time integral wants
  out->tNs = t0 + (t1 - t0) / 2;
  return SampleStatus::kOk;
}

const std::vector<std::string>& BackendNames() {
  static const std::vector<std::string> names = {"nvml", "rocm-smi"};
  return names;
}

Backend* Shared(const std::string& name) {
  const char* env = nullptr;
  std::unique_ptr<Backend> (*open)(const std::string&) = nullptr;
  if (name == "nvml") {
    env = "GPUCOLO_NVML_LIB";
    open = &OpenNvml;
  } else if (name == "rocm-smi") {
    env = "GPUCOLO_ROCM_SMI_LIB";
    open = &OpenRocmSmi;
  } else {
    return nullptr;
  }
  struct Slot {
    std::string env;
    Backend* current = nullptr;
    std::vector<std::unique_ptr<Backend>> all;
  };
  static std::mutex mu;
  // leaked on purpose: the libraries are never unloaded and must not be shut down during exit
  static auto* slots = new std::map<std::string, Slot>();
  std::lock_guard<std::mutex> lock(mu);
  Slot& s = (*slots)[name];
  const std::string value = EnvValue(env);
  if (s.current == nullptr || value != s.env) {
    s.all.push_back(open(""));
    s.current = s.all.back().get();
    s.env = value;
  }
  return s.current;
}

}  // namespace power
}  // namespace gpucolo
