// A stand-in for libcuda.so.1 in the driver-check tests (test_driver_check.cc): only
// cuDriverGetVersion, answering GPUCOLO_FAKE_CUDA_DRIVER_VERSION (default 12040, a driver for
// CUDA 12.4 such as Linux 550.x). "fail" makes it return CUDA_ERROR_NOT_INITIALIZED (3).
#include <cstdlib>
#include <cstring>

extern "C" __attribute__((visibility("default"))) int cuDriverGetVersion(int* version) {
  const char* v = std::getenv("GPUCOLO_FAKE_CUDA_DRIVER_VERSION");
  if (v != nullptr && std::strcmp(v, "fail") == 0) return 3;
  if (version == nullptr) return 1;  // CUDA_ERROR_INVALID_VALUE
  *version = v != nullptr && *v != '\0' ? std::atoi(v) : 12040;
  return 0;
}
