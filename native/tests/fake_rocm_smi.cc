// A stand-in for librocm_smi64.so in the power tests (native/power/rocm_smi.cc), one shared
// object per variant:
//   (default)                         2 devices. Device 0 "Fake AMD Instinct MI300X": busy 55 %,
//                                     current socket power 250000000 µW, energy counter 1000000 +
//                                     1000 counts per call at 15.3 µJ per count, temperature:
//                                     edge NOT_SUPPORTED (like MI300), junction 72500 m°C.
//                                     Device 1 "Fake AMD Instinct MI210": busy and socket power
//                                     NOT_SUPPORTED, average power 75500000 µW, energy
//                                     NOT_SUPPORTED, temperature edge 41000 m°C.
//   GPUCOLO_FAKE_ROCM_SMI_INIT_FAIL   rsmi_init fails with RSMI_STATUS_INIT_ERROR
//   GPUCOLO_FAKE_ROCM_SMI_NO_DEVICES  initialises, 0 devices
// gpucolo_fake_rsmi_refs() lets a test check that every rsmi_init is balanced by rsmi_shut_down;
// gpucolo_fake_rsmi_socket_calls() counts calls of rsmi_dev_current_socket_power_get,
// gpucolo_fake_rsmi_edge_calls() calls of rsmi_dev_temp_metric_get for the edge sensor.
#include <cstddef>
#include <cstdint>
#include <cstdio>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
int g_refs = 0;
int g_socketCalls = 0;
int g_edgeCalls = 0;
uint64_t g_counter = 1000000;
constexpr uint32_t kSuccess = 0, kInvalidArgs = 1, kNotSupported = 2, kInitError = 8;
}  // namespace

FAKE_EXPORT uint32_t rsmi_init(uint64_t) {
#ifdef GPUCOLO_FAKE_ROCM_SMI_INIT_FAIL
  return kInitError;
#else
  ++g_refs;
  return kSuccess;
#endif
}

FAKE_EXPORT uint32_t rsmi_shut_down(void) {
  if (g_refs > 0) --g_refs;
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_status_string(uint32_t status, const char** s) {
  switch (status) {
    case kSuccess: *s = "RSMI_STATUS_SUCCESS: The function has been executed successfully."; break;
    case kInvalidArgs: *s = "RSMI_STATUS_INVALID_ARGS: The provided arguments do not meet the preconditions required for input."; break;
    case kNotSupported: *s = "RSMI_STATUS_NOT_SUPPORTED: This function is not supported in the current environment."; break;
    case kInitError: *s = "RSMI_STATUS_INIT_ERROR: An error occurred during initialization"; break;
    default: *s = "An unknown error occurred"; break;
  }
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_num_monitor_devices(uint32_t* n) {
#ifdef GPUCOLO_FAKE_ROCM_SMI_NO_DEVICES
  *n = 0;
#else
  *n = 2;
#endif
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_dev_name_get(uint32_t dv, char* name, size_t len) {
  if (dv >= 2) return kInvalidArgs;
  std::snprintf(name, len, "%s", dv == 0 ? "Fake AMD Instinct MI300X" : "Fake AMD Instinct MI210");
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_dev_busy_percent_get(uint32_t dv, uint32_t* pct) {
  if (dv >= 2) return kInvalidArgs;
  if (dv == 1) return kNotSupported;
  *pct = 55;
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_dev_current_socket_power_get(uint32_t dv, uint64_t* uw) {
  ++g_socketCalls;
  if (dv >= 2) return kInvalidArgs;
  if (dv == 1) return kNotSupported;
  *uw = 250000000ull;
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_dev_power_ave_get(uint32_t dv, uint32_t sensor, uint64_t* uw) {
  if (dv >= 2 || sensor != 0) return kInvalidArgs;
  *uw = dv == 0 ? 240000000ull : 75500000ull;
  return kSuccess;
}

FAKE_EXPORT uint32_t rsmi_dev_energy_count_get(uint32_t dv, uint64_t* counter, float* resolution, uint64_t* ts) {
  if (dv >= 2) return kInvalidArgs;
  if (dv == 1) return kNotSupported;
  g_counter += 1000;
  *counter = g_counter;
  *resolution = 15.3F;
  *ts = 42;
  return kSuccess;
}

// sensor_type: RSMI_TEMP_TYPE_EDGE 0, JUNCTION 1, MEMORY 2; metric RSMI_TEMP_CURRENT 0; m°C
FAKE_EXPORT uint32_t rsmi_dev_temp_metric_get(uint32_t dv, uint32_t sensor, int metric, int64_t* temp) {
  if (dv >= 2 || sensor > 2 || metric != 0 || temp == nullptr) return kInvalidArgs;
  if (sensor == 0) ++g_edgeCalls;
  if (dv == 0) {
    if (sensor != 1) return kNotSupported;  // MI300: no edge sensor
    *temp = 72500;
    return kSuccess;
  }
  if (sensor != 0) return kNotSupported;
  *temp = 41000;
  return kSuccess;
}

FAKE_EXPORT int gpucolo_fake_rsmi_refs(void) { return g_refs; }
FAKE_EXPORT int gpucolo_fake_rsmi_socket_calls(void) { return g_socketCalls; }
FAKE_EXPORT int gpucolo_fake_rsmi_edge_calls(void) { return g_edgeCalls; }
