// native/power: NVML and ROCm SMI through dlopen(), against the fake libraries built from
// native/tests/fake_nvml.cc and fake_rocm_smi.cc (paths from CMakeLists.txt).
#include <dlfcn.h>
#include <stdlib.h>

#include <cmath>
#include <string>

#include "harness.h"
#include "power/power.h"

#ifndef GPUCOLO_FAKE_NVML
#error "GPUCOLO_FAKE_NVML must name the fake libnvidia-ml (set by CMakeLists.txt)"
#endif

using gpucolo::power::Backend;
using gpucolo::power::OpenNvml;
using gpucolo::power::OpenRocmSmi;
using gpucolo::power::Sample;
using gpucolo::power::SampleStatus;

namespace {

bool Contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

bool Near(double a, double b, double tol = 1e-9) { return std::fabs(a - b) <= tol * std::fmax(1.0, std::fabs(b)); }

/** Sets (or unsets, value nullptr) an environment variable for one scope, then restores it. */
class EnvScope {
 public:
  EnvScope(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvScope() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

/** A counter exported by a fake library (it is already loaded: dlopen() returns the same copy). */
int FakeCounter(const char* lib, const char* symbol) {
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("dlopen ") + lib);
  auto fn = reinterpret_cast<int (*)()>(dlsym(h, symbol));
  if (!fn) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("dlsym ") + symbol);
  const int v = fn();
  dlclose(h);
  return v;
}

}  // namespace

// ------------------------------------------------------------------------------------- NVML

TEST(power_nvml_missing_library_names_it) {
  auto b = OpenNvml("/nonexistent/dir/libnvidia-ml.so.1");
  CHECK(!b->available());
  CHECK_EQ(b->name(), std::string("nvml"));
  CHECK(Contains(b->reason(), "/nonexistent/dir/libnvidia-ml.so.1 not found"));
  CHECK(b->devices().empty());
  Sample s;
  CHECK(b->Read(0, &s) == SampleStatus::kUnavailable);
}

TEST(power_nvml_default_library_on_this_host) {
  EnvScope env("GPUCOLO_NVML_LIB", nullptr);
  auto b = OpenNvml();
  if (b->available()) {
    CHECK(!b->devices().empty());  // a host with a driver: anything else is its business
  } else {
    CHECK(Contains(b->reason(), "libnvidia-ml.so.1"));
  }
}

TEST(power_nvml_fake_devices_and_units) {
  auto b = OpenNvml(GPUCOLO_FAKE_NVML);
  CHECK(b->available());
  CHECK_EQ(b->reason(), std::string());
  CHECK_EQ(b->library(), std::string(GPUCOLO_FAKE_NVML));
  CHECK_EQ(b->devices().size(), size_t{2});
  CHECK_EQ(b->devices()[0].index, 0u);
  CHECK_EQ(b->devices()[0].name, std::string("Fake NVIDIA H100 80GB HBM3"));
  CHECK_EQ(b->devices()[1].index, 1u);
  CHECK_EQ(b->devices()[1].name, std::string("Fake NVIDIA T4"));

  const uint64_t before = gpucolo::power::MonotonicNs();
  Sample a;
  CHECK(b->Read(0, &a) == SampleStatus::kOk);
  Sample c;
  CHECK(b->Read(0, &c) == SampleStatus::kOk);
  const uint64_t after = gpucolo::power::MonotonicNs();
  CHECK_EQ(a.utilPercent, 37);
  CHECK(Near(a.powerW, 123.456));  // mW -> W
  CHECK(!std::isnan(a.energyJ));
  CHECK(Near(c.energyJ - a.energyJ, 1.0));  // +1000 mJ per call -> +1 J
  CHECK(Near(std::fmod(a.energyJ, 1.0), 0.0));  // whole joules: mJ / 1000, not / 1024 or so
  CHECK(a.energyJ >= 5001.0);
  CHECK(Near(a.tempC, 61.0));  // NVML_TEMPERATURE_GPU, whole °C
  CHECK(a.errors.empty());
  CHECK(before <= a.tNs && a.tNs <= c.tNs && c.tNs <= after);
}

TEST(power_nvml_fake_not_supported_is_a_missing_field_not_an_error) {
  auto b = OpenNvml(GPUCOLO_FAKE_NVML);
  Sample s;
  CHECK(b->Read(1, &s) == SampleStatus::kOk);
  CHECK(std::isnan(s.energyJ));   // NOT_SUPPORTED: silent
  CHECK(Near(s.powerW, 123.456));  // the other fields are independent
  CHECK(std::isnan(s.tempC));      // temperature NOT_SUPPORTED: silent too
  CHECK_EQ(s.utilPercent, -1);     // NO_PERMISSION: missing, with the library's words
  CHECK_EQ(s.errors, std::vector<std::string>{"utilisation: Insufficient Permissions (4)"});
}

TEST(power_nvml_fake_bad_index) {
  auto b = OpenNvml(GPUCOLO_FAKE_NVML);
  Sample s;
  CHECK(b->Read(2, &s) == SampleStatus::kBadIndex);
}

TEST(power_nvml_fake_shutdown_balances_init) {
  const int before = FakeCounter(GPUCOLO_FAKE_NVML, "gpucolo_fake_nvml_refs");
  {
    auto b = OpenNvml(GPUCOLO_FAKE_NVML);
    CHECK(b->available());
    CHECK_EQ(FakeCounter(GPUCOLO_FAKE_NVML, "gpucolo_fake_nvml_refs"), before + 1);
  }
  CHECK_EQ(FakeCounter(GPUCOLO_FAKE_NVML, "gpucolo_fake_nvml_refs"), before);
}

TEST(power_nvml_init_failure_carries_the_library_text) {
  auto b = OpenNvml(GPUCOLO_FAKE_NVML_NO_DRIVER);
  CHECK(!b->available());
  CHECK_EQ(b->reason(), std::string("nvmlInit_v2 failed: Driver Not Loaded (9)"));
  Sample s;
  CHECK(b->Read(0, &s) == SampleStatus::kUnavailable);
}

TEST(power_nvml_no_devices) {
  auto b = OpenNvml(GPUCOLO_FAKE_NVML_NO_DEVICES);
  CHECK(!b->available());
  CHECK(Contains(b->reason(), "no devices"));
}

TEST(power_nvml_env_override_and_shared_reopen) {
  {
    EnvScope env("GPUCOLO_NVML_LIB", GPUCOLO_FAKE_NVML);
    auto b = OpenNvml();
    CHECK(b->available());
    CHECK_EQ(b->library(), std::string(GPUCOLO_FAKE_NVML));
    Backend* shared = gpucolo::power::Shared("nvml");
    CHECK(shared != nullptr);
    CHECK(shared->available());
    CHECK_EQ(gpucolo::power::Shared("nvml"), shared);  // same value: same object
  }
  {
    EnvScope env("GPUCOLO_NVML_LIB", "/nonexistent/fake-nvml.so");
    Backend* shared = gpucolo::power::Shared("nvml");
    CHECK(!shared->available());
    CHECK(Contains(shared->reason(), "GPUCOLO_NVML_LIB=/nonexistent/fake-nvml.so not found"));
  }
  CHECK(gpucolo::power::Shared("nope") == nullptr);
}

// --------------------------------------------------------------------------------- ROCm SMI

TEST(power_rocm_smi_missing_library_names_it) {
  auto b = OpenRocmSmi("/nonexistent/librocm_smi64.so.7");
  CHECK(!b->available());
  CHECK_EQ(b->name(), std::string("rocm-smi"));
  CHECK(Contains(b->reason(), "/nonexistent/librocm_smi64.so.7 not found"));
}

TEST(power_rocm_smi_default_library_on_this_host) {
  EnvScope env("GPUCOLO_ROCM_SMI_LIB", nullptr);
  auto b = OpenRocmSmi();
  if (!b->available()) CHECK(Contains(b->reason(), "librocm_smi64.so"));
}

TEST(power_rocm_smi_fake_devices_and_units) {
  auto b = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI);
  CHECK(b->available());
  CHECK_EQ(b->devices().size(), size_t{2});
  CHECK_EQ(b->devices()[0].name, std::string("Fake AMD Instinct MI300X"));
  CHECK_EQ(b->devices()[1].name, std::string("Fake AMD Instinct MI210"));
  Sample a;
  Sample c;
  CHECK(b->Read(0, &a) == SampleStatus::kOk);
  CHECK(b->Read(0, &c) == SampleStatus::kOk);
  CHECK_EQ(a.utilPercent, 55);
  CHECK(Near(a.powerW, 250.0));  // current socket power (µW) preferred over the average
  // counts x 15.3 µJ -> J; the float resolution is taken as it comes (15.300000190734863)
  const double res = static_cast<double>(15.3F);
  CHECK(Near(c.energyJ - a.energyJ, 1000 * res / 1e6, 1e-6));
  const double counts = std::round(a.energyJ / (res / 1e6));  // the fake's counter: 1000000 + k * 1000
  CHECK(Near(counts * res / 1e6, a.energyJ));
  CHECK_EQ(static_cast<uint64_t>(counts) % 1000, uint64_t{0});
  CHECK(a.errors.empty());
}

TEST(power_rocm_smi_fake_temperature_edge_else_junction) {
  auto b = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI);
  const int edge0 = FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_edge_calls");
  Sample a;
  CHECK(b->Read(0, &a) == SampleStatus::kOk);
  CHECK(Near(a.tempC, 72.5));  // edge NOT_SUPPORTED (MI300) -> junction, m°C -> °C
  CHECK(a.errors.empty());     // the missing edge sensor is not an error
  CHECK(b->Read(0, &a) == SampleStatus::kOk);
  CHECK(Near(a.tempC, 72.5));
  // edge asked once on device 0, then junction straight away
  CHECK_EQ(FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_edge_calls"), edge0 + 1);
  Sample c;
  CHECK(b->Read(1, &c) == SampleStatus::kOk);
  CHECK(Near(c.tempC, 41.0));  // edge where the device has it
  CHECK(b->Read(1, &c) == SampleStatus::kOk);
  CHECK_EQ(FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_edge_calls"), edge0 + 3);
}

TEST(power_rocm_smi_fake_fallbacks_and_not_supported) {
  auto b = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI);
  const int calls0 = FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_socket_calls");
  Sample s;
  CHECK(b->Read(1, &s) == SampleStatus::kOk);
  CHECK_EQ(s.utilPercent, -1);      // NOT_SUPPORTED
  CHECK(Near(s.powerW, 75.5));      // socket power NOT_SUPPORTED -> average power
  CHECK(std::isnan(s.energyJ));     // NOT_SUPPORTED
  CHECK(s.errors.empty());          // none of that is an error
  CHECK(b->Read(1, &s) == SampleStatus::kOk);
  CHECK(Near(s.powerW, 75.5));
  // socket power asked once on device 1, then remembered as unsupported
  CHECK_EQ(FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_socket_calls"), calls0 + 1);
  CHECK(b->Read(7, &s) == SampleStatus::kBadIndex);
}

TEST(power_rocm_smi_shutdown_balances_init) {
  const int before = FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_refs");
  { auto b = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI); }
  CHECK_EQ(FakeCounter(GPUCOLO_FAKE_ROCM_SMI, "gpucolo_fake_rsmi_refs"), before);
}

TEST(power_rocm_smi_init_failure_and_no_devices) {
  auto b = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI_INIT_FAIL);
  CHECK(!b->available());
  CHECK_EQ(b->reason(), std::string("rsmi_init failed: RSMI_STATUS_INIT_ERROR: An error occurred during initialization (8)"));
  auto n = OpenRocmSmi(GPUCOLO_FAKE_ROCM_SMI_NO_DEVICES);
  CHECK(!n->available());
  CHECK(Contains(n->reason(), "no devices"));
}

TEST(power_rocm_smi_env_override) {
  EnvScope env("GPUCOLO_ROCM_SMI_LIB", GPUCOLO_FAKE_ROCM_SMI);
  Backend* shared = gpucolo::power::Shared("rocm-smi");
  CHECK(shared->available());
  CHECK_EQ(shared->library(), std::string(GPUCOLO_FAKE_ROCM_SMI));
  CHECK_EQ(shared->devices().size(), size_t{2});
}
