// A stand-in for libnvidia-ml.so.1 in the power tests (native/power/nvml.cc), one shared object
// per variant:
//   (default)                       2 devices. Device 0: util 37 %, power 123456 mW, energy
//                                   5000000 mJ + 1000 mJ per call, temperature 61 °C. Device 1:
//                                   util fails with NO_PERMISSION, power 123456 mW, energy and
//                                   temperature NOT_SUPPORTED.
//   GPUCOLO_FAKE_NVML_NO_DRIVER     nvmlInit_v2 fails with DRIVER_NOT_LOADED
//   GPUCOLO_FAKE_NVML_NO_DEVICES    initialises, 0 devices
// gpucolo_fake_nvml_refs() lets a test check that every nvmlInit_v2 is balanced by nvmlShutdown.
#include <cstdio>
#include <cstring>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
struct FakeDevice {
  const char* name;
  unsigned long long energyMj;
};
FakeDevice g_devices[2] = {{"Fake NVIDIA H100 80GB HBM3", 5000000ull}, {"Fake NVIDIA T4", 0}};
int g_refs = 0;
}  // namespace

typedef FakeDevice* nvmlDevice_t;
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};

FAKE_EXPORT int nvmlInit_v2(void) {
#ifdef GPUCOLO_FAKE_NVML_NO_DRIVER
  return 9;  // NVML_ERROR_DRIVER_NOT_LOADED
#else
  ++g_refs;
  return 0;
#endif
}

FAKE_EXPORT int nvmlShutdown(void) {
  if (g_refs == 0) return 1;  // NVML_ERROR_UNINITIALIZED
  --g_refs;
  return 0;
}

FAKE_EXPORT const char* nvmlErrorString(int rc) {
  switch (rc) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 9: return "Driver Not Loaded";
    default: return "Unknown Error";
  }
}

FAKE_EXPORT int nvmlDeviceGetCount_v2(unsigned int* n) {
  if (g_refs == 0) return 1;
#ifdef GPUCOLO_FAKE_NVML_NO_DEVICES
  *n = 0;
#else
  *n = 2;
#endif
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
  if (g_refs == 0) return 1;
  if (i >= 2) return 2;
  *d = &g_devices[i];
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int len) {
  if (std::strlen(d->name) + 1 > len) return 7;  // NVML_ERROR_INSUFFICIENT_SIZE
  std::snprintf(name, len, "%s", d->name);
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  if (d == &g_devices[1]) return 4;  // NVML_ERROR_NO_PERMISSION
  u->gpu = 37;
  u->memory = 12;
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetPowerUsage(nvmlDevice_t, unsigned int* mw) {
  *mw = 123456;
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long* mj) {
  if (d == &g_devices[1]) return 3;  // NVML_ERROR_NOT_SUPPORTED (pre-Volta)
  d->energyMj += 1000;
  *mj = d->energyMj;
  return 0;
}

FAKE_EXPORT int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensorType, unsigned int* temp) {
  if (sensorType != 0) return 2;     // NVML_ERROR_INVALID_ARGUMENT: only NVML_TEMPERATURE_GPU
  if (d == &g_devices[1]) return 3;  // NVML_ERROR_NOT_SUPPORTED
  *temp = 61;
  return 0;
}

FAKE_EXPORT int gpucolo_fake_nvml_refs(void) { return g_refs; }
