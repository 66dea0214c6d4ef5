// The CUDA plugin's driver check (native/plugins/cuda/driver_check.h) without a driver: the
// message logic fed versions, cuDriverGetVersion through a fake libcuda (fake_libcuda.cc), and
// the driver release from a /proc/driver/nvidia/version stand-in.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include "dispatch/gpu_plugin.h"
#include "harness.h"
#include "plugins/cuda/driver_check.h"

using gpucolo_plugin::DriverRequirement;

namespace {
bool Has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }
}  // namespace

TEST(driver_check_minor_version_compatibility) {
  // same major or newer driver: fine (a 12.8 runtime on a 12.4 driver runs by minor version compatibility)
  CHECK_EQ(DriverRequirement(13000, 13000, ""), std::string());
  CHECK_EQ(DriverRequirement(13000, 13020, ""), std::string());
  CHECK_EQ(DriverRequirement(12080, 12040, ""), std::string());
  CHECK_EQ(DriverRequirement(12040, 13000, ""), std::string());
  CHECK_EQ(DriverRequirement(11080, 12020, ""), std::string());
}

TEST(driver_check_says_what_is_needed_found_and_how_to_rebuild) {
  // a CUDA 13 build on a 550 driver (CUDA 12.4)
  const std::string m = DriverRequirement(13000, 12040, "550.54.15");
  CHECK(Has(m, "built with CUDA 13.0"));
  CHECK(Has(m, "CUDA >= 13.0 (Linux driver >= 580)"));
  CHECK(Has(m, "this driver (550.54.15) supports CUDA 12.4"));
  CHECK(Has(m, "rebuild gpucolo_cuda.so with CUDA 12.x <= 12.4"));
  CHECK(Has(m, "-DCMAKE_CUDA_COMPILER=/usr/local/cuda-12.4/bin/nvcc"));
  // a CUDA 12 build on an 11.x driver
  const std::string m11 = DriverRequirement(12060, 11080, "");
  CHECK(Has(m11, "Linux driver >= 525.60.13"));
  CHECK(Has(m11, "this driver supports CUDA 11.8"));
  CHECK(Has(m11, "CUDA 11.x"));
  // a driver too old for any build
  const std::string old = DriverRequirement(13000, 10020, "440.33");
  CHECK(Has(old, "update the NVIDIA driver"));
  CHECK_EQ(gpucolo_plugin::CudaVersionText(12040), std::string("12.4"));
  CHECK_EQ(gpucolo_plugin::CudaVersionText(13000), std::string("13.0"));
}

TEST(driver_check_asks_the_driver_library) {
  int v = 0;
  std::string err;
  unsetenv("GPUCOLO_FAKE_CUDA_DRIVER_VERSION");
  CHECK_EQ(gpucolo_plugin::QueryDriverVersion(&v, &err, GPUCOLO_FAKE_LIBCUDA), GPUCOLO_OK);
  CHECK_EQ(v, 12040);
  setenv("GPUCOLO_FAKE_CUDA_DRIVER_VERSION", "13010", 1);
  CHECK_EQ(gpucolo_plugin::QueryDriverVersion(&v, &err, GPUCOLO_FAKE_LIBCUDA), GPUCOLO_OK);
  CHECK_EQ(v, 13010);
  setenv("GPUCOLO_FAKE_CUDA_DRIVER_VERSION", "fail", 1);
  CHECK(gpucolo_plugin::QueryDriverVersion(&v, &err, GPUCOLO_FAKE_LIBCUDA) < 0);
  CHECK(Has(err, "cuDriverGetVersion failed"));
  unsetenv("GPUCOLO_FAKE_CUDA_DRIVER_VERSION");
  // no driver library: an error, not a crash (init() then lets the runtime report it)
  CHECK_EQ(gpucolo_plugin::QueryDriverVersion(&v, &err, "/nonexistent/libcuda.so.1"), GPUCOLO_ERR_NO_DEVICE);
  CHECK(!err.empty());
  CHECK_EQ(v, 0);
}

TEST(driver_check_reads_the_driver_release) {
  char path[] = "/tmp/gpucolo-nvidia-version-XXXXXX";
  const int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  std::ofstream(path) << "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
                         "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
  CHECK_EQ(gpucolo_plugin::NvidiaDriverRelease(path), std::string("550.54.15"));
  std::ofstream(path) << "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build\n";
  CHECK_EQ(gpucolo_plugin::NvidiaDriverRelease(path), std::string("580.65.06"));
  std::remove(path);
  CHECK_EQ(gpucolo_plugin::NvidiaDriverRelease("/nonexistent/version"), std::string());
}
