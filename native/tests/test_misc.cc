#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <dlfcn.h>
#include <unistd.h>

#include "harness.h"
#include "kfd/kfd_ioctl.h"
#include "plugins/loader.h"

TEST(kfd_version_errors) {
  auto r = gpucolo::kfd::KfdVersion("/nonexistent/kfd");
  CHECK_EQ(r.err, ENOENT);
  CHECK_EQ(std::string(r.syscall), std::string("open"));
  // a device that is not /dev/kfd: the open works, the ioctl does not
  r = gpucolo::kfd::KfdVersion("/dev/null");
  CHECK(r.err != 0);
  CHECK_EQ(std::string(r.syscall), std::string("ioctl"));
  CHECK(std::strchr(gpucolo::kfd::KfdIoctlHeaderVersion(), '.') != nullptr);
}

namespace {

/** A fresh temporary directory; removed (with the files named in `files`) by Cleanup(). */
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/gpucolo-plugins-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  std::string File(const std::string& name) const { return path + "/" + name; }
  void Link(const char* target, const std::string& name) const {
    CHECK_EQ(symlink(target, File(name).c_str()), 0);
  }
  ~TempDir() {
    for (const char* n : {"gpucolo_cuda.so", "gpucolo_hip.so"}) std::remove(File(n).c_str());
    std::remove(path.c_str());
  }
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/** init() minus shutdown() calls the fake plugin has seen */
int FakeInitRefs() {
  void* h = dlopen(GPUCOLO_FAKE_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != nullptr);
  auto fn = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_init_refs"));
  CHECK(fn != nullptr);
  const int refs = fn();
  dlclose(h);
  return refs;
}

}  // namespace

TEST(plugin_probe_reports_failures_as_data) {
  TempDir dir;
  auto probes = gpucolo::plugins::ProbePlugins(dir.path);
  CHECK_EQ(probes.size(), 2u);
  CHECK_EQ(probes[0].name, std::string("cuda"));
  CHECK_EQ(probes[0].path, dir.File("gpucolo_cuda.so"));
  CHECK(!probes[0].found && !probes[0].loaded && probes[0].error.empty());
  CHECK_EQ(probes[0].deviceCount, -1);
  CHECK(probes[0].initError.empty());

  // not an ELF file: found, dlopen fails
  std::ofstream(dir.File("gpucolo_cuda.so")) << "not a shared object";
  probes = gpucolo::plugins::ProbePlugins(dir.path);
  CHECK(probes[0].found);
  CHECK(!probes[0].loaded);
  CHECK(!probes[0].error.empty());
  CHECK_EQ(probes[0].deviceCount, -1);
  CHECK_EQ(probes[1].name, std::string("hip"));
  CHECK(!probes[1].found);
  std::remove(dir.File("gpucolo_cuda.so").c_str());

  // real shared objects: one working plugin (loaded, init + device_count), one without the entry
  dir.Link(GPUCOLO_FAKE_PLUGIN, "gpucolo_cuda.so");
  dir.Link(GPUCOLO_FAKE_PLUGIN_NO_ENTRY, "gpucolo_hip.so");
  probes = gpucolo::plugins::ProbePlugins(dir.path);
  CHECK(probes[0].found && probes[0].loaded);
  CHECK(probes[0].error.empty());
  CHECK_EQ(probes[0].deviceCount, 2);
  CHECK(probes[0].initError.empty());
  CHECK_EQ(FakeInitRefs(), 0);  // the probe's init() was balanced by shutdown()
  CHECK(probes[1].found && !probes[1].loaded);
  CHECK(Contains(probes[1].error, "gpucolo_gpu_get_api"));
  CHECK_EQ(probes[1].deviceCount, -1);

  CHECK(!gpucolo::plugins::SelfDir().empty());
}

TEST(plugin_probe_reports_abi_mismatch_and_init_errors) {
  TempDir dir;
  dir.Link(GPUCOLO_FAKE_PLUGIN_BAD_ABI, "gpucolo_cuda.so");
  dir.Link(GPUCOLO_FAKE_PLUGIN_NO_DRIVER, "gpucolo_hip.so");
  auto probes = gpucolo::plugins::ProbePlugins(dir.path);
  CHECK(probes[0].found && !probes[0].loaded);
  CHECK(Contains(probes[0].error, "ABI mismatch"));
  CHECK_EQ(probes[0].deviceCount, -1);
  // the plugin loads, its runtime does not start: loaded, and the runtime's words as data
  CHECK(probes[1].found && probes[1].loaded);
  CHECK(probes[1].error.empty());
  CHECK_EQ(probes[1].deviceCount, -1);
  CHECK(Contains(probes[1].initError, "fakeErrorInsufficientDriver"));
}

TEST(load_backend_paths) {
  using gpucolo::plugins::LoadBackend;
  std::string err;
  CHECK(LoadBackend("cpu", &err) == nullptr);
  CHECK_EQ(err, std::string("cpu is built in"));
  CHECK(LoadBackend("opencl", &err) == nullptr);
  CHECK(Contains(err, "unknown backend 'opencl'"));

  TempDir dir;
  CHECK(LoadBackend("cuda", &err, dir.path) == nullptr);
  CHECK(Contains(err, "gpucolo_cuda.so not"));  // "not built (...)" or "not found: <path>"
  CHECK(LoadBackend("hip", &err, dir.path) == nullptr);
  CHECK(Contains(err, "gpucolo_hip.so not"));

  dir.Link(GPUCOLO_FAKE_PLUGIN, "gpucolo_cuda.so");
  dir.Link(GPUCOLO_FAKE_PLUGIN_NO_ENTRY, "gpucolo_hip.so");
  const gpucolo_gpu_api* api = LoadBackend("cuda", &err, dir.path);
  CHECK(api != nullptr);
  CHECK(err.empty());
  CHECK_EQ(api->abi, GPUCOLO_GPU_ABI);
  CHECK_EQ(std::string(api->backend), std::string("fake"));
  CHECK(LoadBackend("cuda", &err, dir.path) == api);  // kept, not reloaded
  CHECK(LoadBackend("hip", &err, dir.path) == nullptr);
  CHECK(Contains(err, "gpucolo_gpu_get_api"));

  TempDir dir2;
  dir2.Link(GPUCOLO_FAKE_PLUGIN_BAD_ABI, "gpucolo_cuda.so");
  CHECK(LoadBackend("cuda", &err, dir2.path) == nullptr);
  CHECK(Contains(err, "ABI mismatch"));
  CHECK(Contains(err, std::to_string(GPUCOLO_GPU_ABI + 100)));
}

#if defined(GPUCOLO_CUDA_PLUGIN_DIR) || defined(GPUCOLO_HIP_PLUGIN_DIR)
namespace {

/**
 * The real plugin as built: it must load on any host; without a driver or device init() fails
 * with the runtime's error text and every other call fails cleanly. With a device, a smoke run:
 * empty and spinning probe kernels, poll, synchronize, the watchdog, read_device_time.
 */
void CheckRealPlugin(const std::string& name, const std::string& dir) {
  std::string err;
  const gpucolo_gpu_api* api = gpucolo::plugins::LoadBackend(name, &err, dir);
  if (api == nullptr && name == "hip" && Contains(err, "libamdhip64")) {
    std::printf("# skip %s plugin: %s\n", name.c_str(), err.c_str());  // built, but no HIP runtime here
    return;
  }
  CHECK(api != nullptr);
  CHECK_EQ(std::string(api->backend), name);
  char e[512] = {0};
  const int rc = api->init(e, sizeof e);
  if (rc != GPUCOLO_OK) {
    std::printf("# %s plugin: init() = %d: %s\n", name.c_str(), rc, e);
    CHECK(rc == GPUCOLO_ERR_NO_DEVICE || rc == GPUCOLO_ERR_RUNTIME);
    CHECK(Contains(e, name));  // "cudaError...", "hipError..."
    gpucolo_device_info info{};
    CHECK(api->device_info(0, &info, e, sizeof e) < 0);
    gpucolo_stream_opts opts{};
    gpucolo_stream* s = nullptr;
    CHECK(api->stream_create(&opts, &s, e, sizeof e) < 0);
    CHECK(s == nullptr);
    uint64_t t = 0;
    CHECK(api->read_device_time(0, &t, e, sizeof e) < 0);
    int per_cu = -1;
    CHECK(api->max_active_blocks(0, 64, &per_cu, e, sizeof e) < 0);
    CHECK_EQ(per_cu, 0);
    api->shutdown();  // harmless without a successful init()
    return;
  }
  int n = 0;
  CHECK_EQ(api->device_count(&n, e, sizeof e), GPUCOLO_OK);
  CHECK(n > 0);
  gpucolo_device_info info{};
  CHECK_EQ(api->device_info(0, &info, e, sizeof e), GPUCOLO_OK);
  std::printf("# %s device 0: %s %s, %d CUs, priorities %d..%d, timer %.0f ns\n", name.c_str(), info.name, info.arch,
              info.compute_units, info.priority_least, info.priority_greatest, info.timer_resolution_ns);
  CHECK(info.compute_units > 0);
  // fill: resident probe kernels per CU from the occupancy API, at 64 threads and at 256
  std::printf("# %s fill: %d blocks of %d threads per CU, %d XCC(s), %d mask bit(s) per unit\n", name.c_str(),
              info.max_active_blocks_per_cu, info.fill_threads_per_block, info.num_xcc, info.cu_mask_bits_per_unit);
  CHECK(info.max_active_blocks_per_cu > 0);
  CHECK_EQ(info.fill_threads_per_block, 64);
  CHECK(info.max_threads_per_block >= 256);
  int per_cu = 0;
  CHECK_EQ(api->max_active_blocks(0, 256, &per_cu, e, sizeof e), GPUCOLO_OK);
  CHECK(per_cu > 0 && per_cu <= info.max_active_blocks_per_cu);
  CHECK_EQ(api->max_active_blocks(0, 0, &per_cu, e, sizeof e), GPUCOLO_ERR_INVALID);
  CHECK(api->device_info(n, &info, e, sizeof e) == GPUCOLO_ERR_NO_DEVICE);
  CHECK_EQ(api->device_info(0, &info, e, sizeof e), GPUCOLO_OK);

  gpucolo_stream_opts opts{};
  opts.priority = info.priority_greatest;
  gpucolo_stream* s = nullptr;
  CHECK_EQ(api->stream_create(&opts, &s, e, sizeof e), GPUCOLO_OK);
  gpucolo_stream_info si{};
  CHECK_EQ(api->stream_info(s, &si), GPUCOLO_OK);
  CHECK_EQ(si.sm_count, 0);
  CHECK_EQ(si.compute_units, info.compute_units);
  opts.priority = info.priority_greatest < info.priority_least ? info.priority_greatest - 1 : info.priority_greatest + 1;
  gpucolo_stream* bad = nullptr;
  CHECK_EQ(api->stream_create(&opts, &bad, e, sizeof e), GPUCOLO_ERR_INVALID);

  uint64_t t0 = 0, t1 = 0;
  CHECK_EQ(api->read_device_time(0, &t0, e, sizeof e), GPUCOLO_OK);
  gpucolo_kernel empty{0, 1, 64};
  gpucolo_kernel spin{20000000, 4, 128};  // 20 ms: long enough that slot 1 is surely in flight below
  CHECK_EQ(api->launch(s, &empty, 0, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->launch(s, &spin, 1, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->launch(s, &spin, 1, e, sizeof e), GPUCOLO_ERR_INVALID);  // slot 1 still in flight
  CHECK_EQ(api->synchronize(s, 5000000000ull, e, sizeof e), GPUCOLO_OK);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  CHECK_EQ(api->poll(s, 0, &a, &b), 1);
  CHECK_EQ(api->poll(s, 1, &c, &d), 1);
  CHECK(a >= t0 && b >= a && c >= b && d > c);
  CHECK(d - c >= 20000000);
  CHECK(d - c < 500000000);
  CHECK_EQ(api->read_device_time(0, &t1, e, sizeof e), GPUCOLO_OK);
  CHECK(t1 >= d);
  CHECK(api->poll(s, 2, &a, &b) == GPUCOLO_ERR_INVALID);  // never launched

  // the watchdog: a 60 s kernel, a 50 ms timeout; the kernel is cancelled, the stream usable
  gpucolo_kernel forever{60000000000ull, 1, 32};
  CHECK_EQ(api->launch(s, &forever, 3, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->synchronize(s, 50000000ull, e, sizeof e), GPUCOLO_ERR_TIMEOUT);
  std::printf("# %s watchdog: %s\n", name.c_str(), e);
  CHECK_EQ(api->poll(s, 3, &a, &b), GPUCOLO_ERR_TIMEOUT);
  CHECK(b - a < 10000000000ull);
  CHECK_EQ(api->launch(s, &empty, 4, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->synchronize(s, 5000000000ull, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->poll(s, 4, &a, &b), 1);
  CHECK_EQ(api->stream_destroy(s), GPUCOLO_OK);

  if (info.supports_cu_mask) {
    uint32_t mask[4] = {0x3u, 0, 0, 0};
    opts = gpucolo_stream_opts{};
    opts.cu_mask = mask;
    opts.cu_mask_words = 4;
    CHECK_EQ(api->stream_create(&opts, &s, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->launch(s, &spin, 0, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->synchronize(s, 5000000000ull, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->stream_destroy(s), GPUCOLO_OK);
  }
  if (info.supports_sm_partition) {
    opts = gpucolo_stream_opts{};
    opts.sm_count = 8;
    gpucolo_stream* hp = nullptr;
    gpucolo_stream* lp = nullptr;
    CHECK_EQ(api->stream_create(&opts, &hp, e, sizeof e), GPUCOLO_OK);
    opts.sm_count = info.compute_units;  // all that is left
    CHECK_EQ(api->stream_create(&opts, &lp, e, sizeof e), GPUCOLO_OK);
    // the partitions as the driver made them: >= what was asked (rounded up), the rest for lp
    gpucolo_stream_info hs{}, ls{};
    CHECK_EQ(api->stream_info(hp, &hs), GPUCOLO_OK);
    CHECK_EQ(api->stream_info(lp, &ls), GPUCOLO_OK);
    std::printf("# %s partitions: 8 SMs asked -> %d made, the rest -> %d\n", name.c_str(), hs.sm_count, ls.sm_count);
    CHECK(hs.sm_count >= 8);
    CHECK(ls.sm_count > 0 && hs.sm_count + ls.sm_count <= info.compute_units);
    CHECK_EQ(hs.compute_units, hs.sm_count);
    CHECK_EQ(api->launch(hp, &spin, 0, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->launch(lp, &spin, 0, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->synchronize(hp, 5000000000ull, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->synchronize(lp, 5000000000ull, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->poll(hp, 0, &a, &b), 1);
    CHECK_EQ(api->stream_destroy(hp), GPUCOLO_OK);
    CHECK_EQ(api->stream_destroy(lp), GPUCOLO_OK);
  } else {
    opts = gpucolo_stream_opts{};
    opts.sm_count = 8;
    CHECK_EQ(api->stream_create(&opts, &s, e, sizeof e), GPUCOLO_ERR_UNSUPPORTED);
  }
  api->shutdown();
}

}  // namespace
#endif

#ifdef GPUCOLO_CUDA_PLUGIN_DIR
TEST(cuda_plugin_loads_and_fails_cleanly_without_a_gpu) { CheckRealPlugin("cuda", GPUCOLO_CUDA_PLUGIN_DIR); }
#endif
#ifdef GPUCOLO_HIP_PLUGIN_DIR
TEST(hip_plugin_loads_and_fails_cleanly_without_a_gpu) { CheckRealPlugin("hip", GPUCOLO_HIP_PLUGIN_DIR); }
#endif
