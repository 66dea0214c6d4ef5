// NVML backend. Declarations follow NVIDIA's public nvml.h (API version 13; the functions used
// here have kept their signatures since NVML 5.319 for the _v2 ones and nvmlDeviceGetTemperature,
// and Volta-era drivers for nvmlDeviceGetTotalEnergyConsumption).
#include <cstring>

#include "dl.h"
#include "power.h"

namespace gpucolo {
namespace power {
namespace {

// ---- the subset of nvml.h this file needs, declared locally ----
typedef int nvmlReturn_t;  // enum nvmlReturn_enum: an int-sized C enum
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
constexpr nvmlReturn_t NVML_ERROR_FUNCTION_NOT_FOUND = 13;
typedef struct nvmlDevice_st* nvmlDevice_t;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent of the last sample period a kernel was running
  unsigned int memory;  // percent of it device memory was read or written
};
constexpr unsigned NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
typedef int nvmlTemperatureSensors_t;  // enum nvmlTemperatureSensors_enum
constexpr nvmlTemperatureSensors_t NVML_TEMPERATURE_GPU = 0;

typedef nvmlReturn_t (*InitFn)(void);
typedef nvmlReturn_t (*ShutdownFn)(void);
typedef nvmlReturn_t (*CountFn)(unsigned int*);
typedef nvmlReturn_t (*HandleFn)(unsigned int, nvmlDevice_t*);
typedef nvmlReturn_t (*NameFn)(nvmlDevice_t, char*, unsigned int);
typedef nvmlReturn_t (*UtilFn)(nvmlDevice_t, nvmlUtilization_t*);
typedef nvmlReturn_t (*PowerFn)(nvmlDevice_t, unsigned int*);            // mW
typedef nvmlReturn_t (*EnergyFn)(nvmlDevice_t, unsigned long long*);     // mJ since driver load
typedef nvmlReturn_t (*TempFn)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int*);  // °C
typedef const char* (*ErrorStringFn)(nvmlReturn_t);

const char kDefaultLib[] = "libnvidia-ml.so.1";

class Nvml final : public Backend {
 public:
  Nvml() : Backend("nvml") {}
  ~Nvml() override {
    // NVML counts nvmlInit_v2 calls; the library itself stays loaded (dlclose() under a driver
    // library that started threads is not safe)
    if (initialised_ && shutdown_) shutdown_();
  }

  void Open(const std::string& explicitLib) {
    const std::string env = EnvValue("GPUCOLO_NVML_LIB");
    const std::string lib = !explicitLib.empty() ? explicitLib : !env.empty() ? env : kDefaultLib;
    const bool overridden = explicitLib.empty() && !env.empty();
    DlOpened dl = DlOpenFirst({lib});
    library_ = dl.path;
    if (!dl.handle) {
      reason_ = std::string(overridden ? "GPUCOLO_NVML_LIB=" + lib : lib) + " not found (" + dl.error + ")" +
                (lib == kDefaultLib ? "; the NVIDIA driver is not installed or not visible to this process" : "");
      return;
    }
    void* h = dl.handle;
    InitFn init = DlSym<InitFn>(h, "nvmlInit_v2");
    shutdown_ = DlSym<ShutdownFn>(h, "nvmlShutdown");
    count_ = DlSym<CountFn>(h, "nvmlDeviceGetCount_v2");
    handle_ = DlSym<HandleFn>(h, "nvmlDeviceGetHandleByIndex_v2");
    errorString_ = DlSym<ErrorStringFn>(h, "nvmlErrorString");
    name_fn_ = DlSym<NameFn>(h, "nvmlDeviceGetName");
    util_ = DlSym<UtilFn>(h, "nvmlDeviceGetUtilizationRates");
    power_ = DlSym<PowerFn>(h, "nvmlDeviceGetPowerUsage");
    energy_ = DlSym<EnergyFn>(h, "nvmlDeviceGetTotalEnergyConsumption");
    temp_ = DlSym<TempFn>(h, "nvmlDeviceGetTemperature");
    for (const auto& req : {std::make_pair("nvmlInit_v2", reinterpret_cast<void*>(init)),
                            std::make_pair("nvmlShutdown", reinterpret_cast<void*>(shutdown_)),
                            std::make_pair("nvmlDeviceGetCount_v2", reinterpret_cast<void*>(count_)),
                            std::make_pair("nvmlDeviceGetHandleByIndex_v2", reinterpret_cast<void*>(handle_)),
                            std::make_pair("nvmlErrorString", reinterpret_cast<void*>(errorString_))}) {
      if (req.second == nullptr) {
        reason_ = library_ + " has no " + req.first + " (NVML too old, or not NVML)";
        return;
      }
    }
    nvmlReturn_t rc = init();
    if (rc != NVML_SUCCESS) {
      reason_ = "nvmlInit_v2 failed: " + Error(rc);
      return;
    }
    initialised_ = true;
    unsigned int n = 0;
    rc = count_(&n);
    if (rc != NVML_SUCCESS) {
      reason_ = "nvmlDeviceGetCount_v2 failed: " + Error(rc);
      return;
    }
    if (n == 0) {
      reason_ = "no devices (NVML initialised, nvmlDeviceGetCount_v2 = 0)";
      return;
    }
    for (unsigned i = 0; i < n; ++i) {
      nvmlDevice_t d = nullptr;
      rc = handle_(i, &d);
      if (rc != NVML_SUCCESS) {
        // a device NVML cannot open (e.g. no permission on /dev/nvidiaN): keep the indices
        // aligned with NVML's, report it by name, and let its samples come back empty
        handles_.push_back(nullptr);
        devices_.push_back(Device{i, "(unavailable: " + Error(rc) + ")"});
        continue;
      }
      char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {0};
      std::string name = "NVIDIA GPU " + std::to_string(i);
      if (name_fn_ && name_fn_(d, buf, sizeof buf) == NVML_SUCCESS) {
        buf[sizeof buf - 1] = 0;
        name = buf;
      }
      handles_.push_back(d);
      devices_.push_back(Device{i, name});
    }
    available_ = true;
  }

 private:
  std::string Error(nvmlReturn_t rc) const {
    const char* s = errorString_ ? errorString_(rc) : nullptr;
    return (s && *s ? std::string(s) : std::string("NVML error")) + " (" + std::to_string(rc) + ")";
  }

  /** false for NOT_SUPPORTED (silent) and other failures (noted in out->errors) */
  bool Ok(nvmlReturn_t rc, const char* what, Sample* out) const {
    if (rc == NVML_SUCCESS) return true;
    if (rc != NVML_ERROR_NOT_SUPPORTED && rc != NVML_ERROR_FUNCTION_NOT_FOUND) {
      out->errors.push_back(std::string(what) + ": " + Error(rc));
    }
    return false;
  }

  void ReadLocked(unsigned index, Sample* out) override {
    nvmlDevice_t d = handles_[index];
    if (d == nullptr) {
      out->errors.push_back("device: " + devices_[index].name);
      return;
    }
    if (util_) {
      nvmlUtilization_t u{};
      if (Ok(util_(d, &u), "utilisation", out)) out->utilPercent = static_cast<int>(u.gpu);
    }
    if (power_) {
      unsigned int mw = 0;
      if (Ok(power_(d, &mw), "power", out)) out->powerW = mw / 1000.0;
    }
    if (energy_) {
      unsigned long long mj = 0;
      if (Ok(energy_(d, &mj), "energy", out)) out->energyJ = static_cast<double>(mj) / 1000.0;
    }
    if (temp_) {
      unsigned int c = 0;
      if (Ok(temp_(d, NVML_TEMPERATURE_GPU, &c), "temperature", out)) out->tempC = static_cast<double>(c);
    }
  }

  bool initialised_ = false;
  ShutdownFn shutdown_ = nullptr;
  CountFn count_ = nullptr;
  HandleFn handle_ = nullptr;
  ErrorStringFn errorString_ = nullptr;
  NameFn name_fn_ = nullptr;
  UtilFn util_ = nullptr;
  PowerFn power_ = nullptr;
  EnergyFn energy_ = nullptr;
  TempFn temp_ = nullptr;
  std::vector<nvmlDevice_t> handles_;
};

}  // namespace

std::unique_ptr<Backend> OpenNvml(const std::string& library) {
  auto b = std::make_unique<Nvml>();
  b->Open(library);
  return b;
}

}  // namespace power
}  // namespace gpucolo
