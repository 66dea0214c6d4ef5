// Stand-ins for gpucolo_<name>.so in the loader tests, one shared object per variant:
//   (default)                        a working plugin: init() ok, 2 devices
//   GPUCOLO_FAKE_PLUGIN_NO_ENTRY     no gpucolo_gpu_get_api at all
//   GPUCOLO_FAKE_PLUGIN_BAD_ABI      the entry point returns a table with another ABI number
//   GPUCOLO_FAKE_PLUGIN_NO_DRIVER    init() fails the way a plugin on a host without a driver does
// gpucolo_fake_init_refs() lets a test check that probing balances init() with shutdown().
#include <cstdio>

#include "dispatch/gpu_plugin.h"

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

#ifdef GPUCOLO_FAKE_PLUGIN_NO_ENTRY
FAKE_EXPORT int gpucolo_something_else(void) { return 0; }
#else
namespace {

int g_refs = 0;

int Init(char* err, unsigned errlen) {
#ifdef GPUCOLO_FAKE_PLUGIN_NO_DRIVER
  std::snprintf(err, errlen, "fakeErrorInsufficientDriver: driver version is insufficient (no driver)");
  return GPUCOLO_ERR_RUNTIME;
#else
  (void)err;
  (void)errlen;
  ++g_refs;
  return GPUCOLO_OK;
#endif
}
int DeviceCount(int* out, char*, unsigned) {
  *out = 2;
  return GPUCOLO_OK;
}
int DeviceInfo(int, gpucolo_device_info*, char*, unsigned) { return GPUCOLO_ERR_NO_DEVICE; }
int StreamCreate(const gpucolo_stream_opts*, gpucolo_stream**, char*, unsigned) { return GPUCOLO_ERR_NO_DEVICE; }
int StreamDestroy(gpucolo_stream*) { return GPUCOLO_ERR_INVALID; }
int Launch(gpucolo_stream*, const gpucolo_kernel*, uint32_t, char*, unsigned) { return GPUCOLO_ERR_INVALID; }
int Poll(gpucolo_stream*, uint32_t, uint64_t*, uint64_t*) { return GPUCOLO_ERR_INVALID; }
int Synchronize(gpucolo_stream*, uint64_t, char*, unsigned) { return GPUCOLO_ERR_INVALID; }
int ReadDeviceTime(int, uint64_t*, char*, unsigned) { return GPUCOLO_ERR_NO_DEVICE; }
void Shutdown() {
  if (g_refs > 0) --g_refs;
}
int MaxActiveBlocks(int, uint32_t, int*, char*, unsigned) { return GPUCOLO_ERR_NO_DEVICE; }
int StreamInfo(gpucolo_stream*, gpucolo_stream_info*) { return GPUCOLO_ERR_INVALID; }

#ifdef GPUCOLO_FAKE_PLUGIN_BAD_ABI
constexpr int kAbi = GPUCOLO_GPU_ABI + 100;
#else
constexpr int kAbi = GPUCOLO_GPU_ABI;
#endif

const gpucolo_gpu_api kApi = {kAbi,        "fake",         Init, DeviceCount,    DeviceInfo,
                              StreamCreate, StreamDestroy,  Launch, Poll,         Synchronize,
                              ReadDeviceTime, Shutdown,     MaxActiveBlocks, StreamInfo};

}  // namespace

FAKE_EXPORT const gpucolo_gpu_api* gpucolo_gpu_get_api(void) { return &kApi; }
FAKE_EXPORT int gpucolo_fake_init_refs(void) { return g_refs; }
#endif
