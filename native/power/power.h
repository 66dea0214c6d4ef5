// Device utilisation, power and energy from the vendors' management libraries, opened with
// dlopen() at run time (docs/design-rules.md#never-link-a-gpu-runtime):
//   nvml      libnvidia-ml.so.1   (override: GPUCOLO_NVML_LIB=/path/to/lib)
//   rocm-smi  librocm_smi64.so*   (override: GPUCOLO_ROCM_SMI_LIB=/path/to/lib)
// The structs, enums and signatures are declared locally (nvml.cc, rocm_smi.cc) from the
// libraries' public headers; neither header is needed to build.
//
// A backend that cannot be used says why in one line (library not found, init failed with the
// library's own error text, no devices) instead of failing. A sample reads each quantity on its
// own: a quantity the device does not support (NOT_SUPPORTED) is simply absent from that sample;
// any other failure of one quantity is absent too, with its error text in Sample::errors.
//
// Units: utilisation in percent, power in W, energy in J, temperature in °C (NVML gives mW, mJ
// and whole °C; ROCm SMI gives µW, counts x resolution µJ and millidegrees C). Energy is the
// library's cumulative counter, not a delta. Temperature is the GPU's main sensor: NVML's
// NVML_TEMPERATURE_GPU; ROCm SMI's edge sensor, or junction (hotspot) where the device has no
// edge sensor (MI300 and later).
//
// Threads: one backend object may be used from several threads (a mutex serialises its calls),
// which covers the one sampler thread plus the JS thread this module is written for.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace gpucolo {
namespace power {

struct Device {
  unsigned index = 0;
  std::string name;
};

struct Sample {
  /** percent of the last sampling period the device was busy, -1 = unavailable */
  int utilPercent = -1;
  /** W, NaN = unavailable */
  double powerW = std::nan("");
  /** J, cumulative counter of the device (since driver load for NVML), NaN = unavailable */
  double energyJ = std::nan("");
  /** °C, the GPU's main sensor (ROCm SMI: edge, else junction), NaN = unavailable */
  double tempC = std::nan("");
  /** CLOCK_MONOTONIC ns at the middle of the reads */
  uint64_t tNs = 0;
  /** "power: <library error>" for a quantity that failed other than by NOT_SUPPORTED */
  std::vector<std::string> errors;
};

enum class SampleStatus { kOk, kUnavailable, kBadIndex };

/** One opened (or failed) backend. Never unloads its library (see Close() in power.cc). */
class Backend {
 public:
  virtual ~Backend() = default;
  /** "nvml" or "rocm-smi" */
  const std::string& name() const { return name_; }
  bool available() const { return available_; }
  /** why not available, one line; empty when available */
  const std::string& reason() const { return reason_; }
  /** the library that was opened (or the last one tried) */
  const std::string& library() const { return library_; }
  const std::vector<Device>& devices() const { return devices_; }

  /** kUnavailable when the backend is not available, kBadIndex when index >= devices().size() */
  SampleStatus Read(unsigned index, Sample* out);

 protected:
  explicit Backend(std::string name) : name_(std::move(name)) {}
  /** the library-specific reads; called with mu_ held and index checked */
  virtual void ReadLocked(unsigned index, Sample* out) = 0;

  std::string name_;
  bool available_ = false;
  std::string reason_;
  std::string library_;
  std::vector<Device> devices_;
  std::mutex mu_;
};

/**
 * Opens NVML. `library` empty: $GPUCOLO_NVML_LIB if set, else libnvidia-ml.so.1. Never throws
 * for a missing or broken library: the backend comes back unavailable with its reason.
 */
std::unique_ptr<Backend> OpenNvml(const std::string& library = "");
/**
 * Opens ROCm SMI. `library` empty: $GPUCOLO_ROCM_SMI_LIB if set, else librocm_smi64.so,
 * librocm_smi64.so.{7,6,5,2,1} on the loader path, then the same under $ROCM_PATH/lib and
 * /opt/rocm/lib.
 */
std::unique_ptr<Backend> OpenRocmSmi(const std::string& library = "");

/** The backend names Shared() knows, in the order the binding lists them. */
const std::vector<std::string>& BackendNames();

/**
 * The process-wide backend of that name (nullptr for an unknown name), opened on first use. The
 * override variable is read on every call: when its value changed since the backend was opened,
 * the backend is opened again with the new value (the old object is kept alive, so a pointer
 * obtained earlier stays valid).
 */
Backend* Shared(const std::string& name);

/** CLOCK_MONOTONIC now, ns */
uint64_t MonotonicNs();

}  // namespace power
}  // namespace gpucolo
