// ROCm SMI backend. Declarations follow AMD's public rocm_smi/rocm_smi.h (rocm_smi_lib; SONAME
// librocm_smi64.so.<major>: 1 and 2 in ROCm <= 5, 5/6/7 in ROCm 5.x-6.x).
#include <cstdint>
#include <cstring>

#include "dl.h"
#include "power.h"

namespace gpucolo {
namespace power {
namespace {

// ---- the subset of rocm_smi.h this file needs, declared locally ----
typedef uint32_t rsmi_status_t;  // enum with RSMI_STATUS_UNKNOWN_ERROR = 0xFFFFFFFF: 32 bits
constexpr rsmi_status_t RSMI_STATUS_SUCCESS = 0;
constexpr rsmi_status_t RSMI_STATUS_NOT_SUPPORTED = 2;
constexpr rsmi_status_t RSMI_STATUS_NOT_YET_IMPLEMENTED = 9;
// rsmi_temperature_type_t (passed as uint32_t sensor_type) and rsmi_temperature_metric_t
constexpr uint32_t RSMI_TEMP_TYPE_EDGE = 0;
constexpr uint32_t RSMI_TEMP_TYPE_JUNCTION = 1;
typedef int rsmi_temperature_metric_t;  // C enum, int-sized
constexpr rsmi_temperature_metric_t RSMI_TEMP_CURRENT = 0;

typedef rsmi_status_t (*InitFn)(uint64_t init_flags);
typedef rsmi_status_t (*ShutdownFn)(void);
typedef rsmi_status_t (*CountFn)(uint32_t* num_devices);
typedef rsmi_status_t (*NameFn)(uint32_t dv_ind, char* name, size_t len);
typedef rsmi_status_t (*BusyFn)(uint32_t dv_ind, uint32_t* busy_percent);
typedef rsmi_status_t (*PowerAveFn)(uint32_t dv_ind, uint32_t sensor_ind, uint64_t* power);  // µW
typedef rsmi_status_t (*SocketPowerFn)(uint32_t dv_ind, uint64_t* socket_power);            // µW
// counter x counter_resolution = µJ; timestamp in ns
typedef rsmi_status_t (*EnergyFn)(uint32_t dv_ind, uint64_t* power, float* counter_resolution, uint64_t* timestamp);
// millidegrees C
typedef rsmi_status_t (*TempFn)(uint32_t dv_ind, uint32_t sensor_type, rsmi_temperature_metric_t metric, int64_t* temperature);
typedef rsmi_status_t (*StatusStringFn)(rsmi_status_t status, const char** status_string);

const char kLibBase[] = "librocm_smi64.so";

std::vector<std::string> DefaultCandidates() {
  const char* suffixes[] = {"", ".7", ".6", ".5", ".2", ".1"};
  std::vector<std::string> dirs = {""};
  const std::string rocmPath = EnvValue("ROCM_PATH");
  if (!rocmPath.empty()) dirs.push_back(rocmPath + "/lib/");
  dirs.push_back("/opt/rocm/lib/");
  std::vector<std::string> out;
  for (const std::string& d : dirs) {
    for (const char* s : suffixes) out.push_back(d + kLibBase + s);
  }
  return out;
}

class RocmSmi final : public Backend {
 public:
  RocmSmi() : Backend("rocm-smi") {}
  ~RocmSmi() override {
    if (initialised_ && shutdown_) shutdown_();
  }

  void Open(const std::string& explicitLib) {
    const std::string env = EnvValue("GPUCOLO_ROCM_SMI_LIB");
    const bool overridden = explicitLib.empty() && !env.empty();
    const std::vector<std::string> candidates =
        !explicitLib.empty() ? std::vector<std::string>{explicitLib} : overridden ? std::vector<std::string>{env} : DefaultCandidates();
    DlOpened dl = DlOpenFirst(candidates);
    library_ = dl.path;
    if (!dl.handle) {
      if (overridden) {
        reason_ = "GPUCOLO_ROCM_SMI_LIB=" + env + " not found (" + dl.error + ")";
      } else if (!explicitLib.empty()) {
        reason_ = explicitLib + " not found (" + dl.error + ")";
      } else {
        // every candidate says "cannot open shared object file": name the search, not 18 errors
        library_ = kLibBase;
        reason_ = std::string(kLibBase) + " not found (tried " + kLibBase + "{,.7,.6,.5,.2,.1} on the loader path" +
                  (EnvValue("ROCM_PATH").empty() ? "" : ", $ROCM_PATH/lib") +
                  " and /opt/rocm/lib); ROCm SMI is not installed (apt install rocm-smi-lib) or not on LD_LIBRARY_PATH";
      }
      return;
    }
    void* h = dl.handle;
    InitFn init = DlSym<InitFn>(h, "rsmi_init");
    shutdown_ = DlSym<ShutdownFn>(h, "rsmi_shut_down");
    CountFn count = DlSym<CountFn>(h, "rsmi_num_monitor_devices");
    statusString_ = DlSym<StatusStringFn>(h, "rsmi_status_string");
    NameFn name = DlSym<NameFn>(h, "rsmi_dev_name_get");
    busy_ = DlSym<BusyFn>(h, "rsmi_dev_busy_percent_get");
    powerAve_ = DlSym<PowerAveFn>(h, "rsmi_dev_power_ave_get");
    socketPower_ = DlSym<SocketPowerFn>(h, "rsmi_dev_current_socket_power_get");
    energy_ = DlSym<EnergyFn>(h, "rsmi_dev_energy_count_get");
    temp_ = DlSym<TempFn>(h, "rsmi_dev_temp_metric_get");
    for (const auto& req : {std::make_pair("rsmi_init", reinterpret_cast<void*>(init)),
                            std::make_pair("rsmi_shut_down", reinterpret_cast<void*>(shutdown_)),
                            std::make_pair("rsmi_num_monitor_devices", reinterpret_cast<void*>(count)),
                            std::make_pair("rsmi_status_string", reinterpret_cast<void*>(statusString_))}) {
      if (req.second == nullptr) {
        reason_ = library_ + " has no " + req.first + " (not ROCm SMI, or too old)";
        return;
      }
    }
    rsmi_status_t rc = init(0);
    if (rc != RSMI_STATUS_SUCCESS) {
      reason_ = "rsmi_init failed: " + Error(rc);
      return;
    }
    initialised_ = true;
    uint32_t n = 0;
    rc = count(&n);
    if (rc != RSMI_STATUS_SUCCESS) {
      reason_ = "rsmi_num_monitor_devices failed: " + Error(rc);
      return;
    }
    if (n == 0) {
      reason_ = "no devices (ROCm SMI initialised, rsmi_num_monitor_devices = 0)";
      return;
    }
    for (uint32_t i = 0; i < n; ++i) {
      char buf[256] = {0};
      std::string devName = "AMD GPU " + std::to_string(i);
      if (name && name(i, buf, sizeof buf) == RSMI_STATUS_SUCCESS) {
        buf[sizeof buf - 1] = 0;
        if (buf[0]) devName = buf;
      }
      devices_.push_back(Device{i, devName});
    }
    noSocketPower_.assign(n, socketPower_ == nullptr);
    tempSensor_.assign(n, temp_ == nullptr ? kNoTempSensor : static_cast<int>(RSMI_TEMP_TYPE_EDGE));
    available_ = true;
  }

 private:
  static constexpr int kNoTempSensor = -1;

  std::string Error(rsmi_status_t rc) const {
    const char* s = nullptr;
    if (statusString_ == nullptr || statusString_(rc, &s) != RSMI_STATUS_SUCCESS) s = nullptr;
    return (s && *s ? std::string(s) : std::string("ROCm SMI error")) + " (" + std::to_string(rc) + ")";
  }

  bool Ok(rsmi_status_t rc, const char* what, Sample* out) const {
    if (rc == RSMI_STATUS_SUCCESS) return true;
    if (rc != RSMI_STATUS_NOT_SUPPORTED && rc != RSMI_STATUS_NOT_YET_IMPLEMENTED) {
      out->errors.push_back(std::string(what) + ": " + Error(rc));
    }
    return false;
  }

  static bool Unsupported(rsmi_status_t rc) { return rc == RSMI_STATUS_NOT_SUPPORTED || rc == RSMI_STATUS_NOT_YET_IMPLEMENTED; }

  void ReadLocked(unsigned index, Sample* out) override {
    if (busy_) {
      uint32_t pct = 0;
      if (Ok(busy_(index, &pct), "utilisation", out)) out->utilPercent = static_cast<int>(pct);
    }
    // instant socket power where the device has it (newer ASICs), else the driver's average
    bool havePower = false;
    if (!noSocketPower_[index]) {
      uint64_t uw = 0;
      const rsmi_status_t rc = socketPower_(index, &uw);
      if (rc == RSMI_STATUS_SUCCESS) {
        out->powerW = static_cast<double>(uw) / 1e6;
        havePower = true;
      } else if (Unsupported(rc)) {
        noSocketPower_[index] = true;  // do not ask again
      } else {
        Ok(rc, "power", out);
        havePower = true;  // a real failure: do not mask it with the other function
      }
    }
    if (!havePower && powerAve_) {
      uint64_t uw = 0;
      if (Ok(powerAve_(index, 0, &uw), "power", out)) out->powerW = static_cast<double>(uw) / 1e6;
    }
    if (energy_) {
      uint64_t counter = 0;
      float resolution = 0;
      uint64_t ts = 0;
      if (Ok(energy_(index, &counter, &resolution, &ts), "energy", out)) {
        out->energyJ = static_cast<double>(counter) * static_cast<double>(resolution) / 1e6;
      }
    }
    // the edge sensor where the device has one, else junction (MI300 has no edge sensor); the
    // sensor that answered NOT_SUPPORTED is not asked again
    int& sensor = tempSensor_[index];
    if (sensor != kNoTempSensor) {
      int64_t mc = 0;
      rsmi_status_t rc = temp_(index, static_cast<uint32_t>(sensor), RSMI_TEMP_CURRENT, &mc);
      if (Unsupported(rc) && sensor == static_cast<int>(RSMI_TEMP_TYPE_EDGE)) {
        sensor = static_cast<int>(RSMI_TEMP_TYPE_JUNCTION);
        rc = temp_(index, RSMI_TEMP_TYPE_JUNCTION, RSMI_TEMP_CURRENT, &mc);
      }
      if (rc == RSMI_STATUS_SUCCESS) {
        out->tempC = static_cast<double>(mc) / 1000.0;
      } else if (Unsupported(rc)) {
        sensor = kNoTempSensor;
      } else {
        Ok(rc, "temperature", out);
      }
    }
  }

  bool initialised_ = false;
  ShutdownFn shutdown_ = nullptr;
  StatusStringFn statusString_ = nullptr;
  BusyFn busy_ = nullptr;
  PowerAveFn powerAve_ = nullptr;
  SocketPowerFn socketPower_ = nullptr;
  EnergyFn energy_ = nullptr;
  TempFn temp_ = nullptr;
  std::vector<bool> noSocketPower_;
  /** per device: the RSMI_TEMP_TYPE_* to read, kNoTempSensor when neither edge nor junction answers */
  std::vector<int> tempSensor_;
};

}  // namespace

std::unique_ptr<Backend> OpenRocmSmi(const std::string& library) {
  auto b = std::make_unique<RocmSmi>();
  b->Open(library);
  return b;
}

}  // namespace power
}  // namespace gpucolo
