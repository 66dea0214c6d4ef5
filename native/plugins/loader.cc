#include "loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <map>
#include <mutex>

// Set by CMakeLists.txt (plugin section) on this file, so a missing plugin can be explained:
// 1 = built, 0 = its compiler was not found, 2 = switched off (GPUCOLO_WITH_*), -1 = unknown.
#ifndef GPUCOLO_BUILT_CUDA_PLUGIN
#define GPUCOLO_BUILT_CUDA_PLUGIN -1
#endif
#ifndef GPUCOLO_BUILT_HIP_PLUGIN
#define GPUCOLO_BUILT_HIP_PLUGIN -1
#endif

namespace gpucolo {
namespace plugins {
namespace {

const char* const kPluginNames[] = {"cuda", "hip"};
constexpr unsigned kErrLen = 512;

// Any symbol of this object will do for dladdr(); a static function cannot be interposed.
void Anchor() {}

std::string PluginPath(const std::string& dir, const std::string& name) {
  return (dir == "/" ? std::string() : dir) + "/gpucolo_" + name + ".so";
}

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string NotFoundReason(const std::string& name, const std::string& path) {
  const std::string file = "gpucolo_" + name + ".so";
  const bool cuda = name == "cuda";
  switch (cuda ? GPUCOLO_BUILT_CUDA_PLUGIN : GPUCOLO_BUILT_HIP_PLUGIN) {
    case 0:
      return file + " not built (" + (cuda ? "nvcc" : "hipcc") + " was not found when gpucolo was built)";
    case 2:
      return cuda ? file + " not built (gpucolo was built with -DGPUCOLO_WITH_CUDA=OFF)"
                  : file + " not built (HIP is opt-in: build gpucolo with -DGPUCOLO_WITH_HIP=ON and hipcc installed)";
    case 3:
      return cuda ? file + " not built (no CUDA driver on the build host; rebuild with -DGPUCOLO_WITH_CUDA=ON, see README)"
                  : file + " not found: " + path;
    case 1:
      return file + " not found next to the addon: " + path + " (it was built; copy it next to gpucolo.node)";
    default:
      return file + " not found: " + path;
  }
}

/** Process-wide cache of loaded plugins: path -> api (never unloaded, see loader.h). */
struct Loaded {
  void* handle = nullptr;
  const gpucolo_gpu_api* api = nullptr;
};
std::mutex g_mu;
std::map<std::string, Loaded>& Cache() {
  static auto* cache = new std::map<std::string, Loaded>();  // leaked on purpose: outlives exit
  return *cache;
}

/** dlopen + entry point + ABI check; the handle is kept on success, closed on failure. */
const gpucolo_gpu_api* Load(const std::string& path, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = Cache().find(path);
  if (it != Cache().end()) return it->second.api;
  dlerror();  // clear a stale message
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    *error = why ? why : "dlopen failed: " + path;
    return nullptr;
  }
  dlerror();
  void* entry = dlsym(handle, GPUCOLO_GPU_GET_API);
  if (entry == nullptr) {
    const char* why = dlerror();
    *error = why ? why : std::string(GPUCOLO_GPU_GET_API) + " not found in " + path;
    dlclose(handle);
    return nullptr;
  }
  const gpucolo_gpu_api* api = reinterpret_cast<gpucolo_gpu_get_api_fn>(entry)();
  if (api == nullptr) {
    *error = std::string(GPUCOLO_GPU_GET_API) + "() returned NULL in " + path;
    dlclose(handle);
    return nullptr;
  }
  if (api->abi != GPUCOLO_GPU_ABI) {
    *error = "plugin ABI mismatch: " + path + " has ABI " + std::to_string(api->abi) + ", gpucolo expects " +
             std::to_string(GPUCOLO_GPU_ABI) + " (rebuild the plugin with this gpucolo)";
    dlclose(handle);
    return nullptr;
  }
  Cache()[path] = Loaded{handle, api};
  return api;
}

}  // namespace

std::string SelfDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&Anchor), &info) == 0 || info.dli_fname == nullptr) return ".";
  const std::string file(info.dli_fname);
  const size_t slash = file.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : file.substr(0, slash);
}

std::vector<PluginProbe> ProbePlugins(const std::string& dir) {
  std::vector<PluginProbe> out;
  for (const char* name : kPluginNames) {
    PluginProbe p;
    p.name = name;
    p.path = PluginPath(dir, name);
    p.found = IsFile(p.path);
    if (p.found) {
      const gpucolo_gpu_api* api = Load(p.path, &p.error);
      if (api != nullptr) {
        p.loaded = true;
        char err[kErrLen] = {0};
        const int rc = api->init ? api->init(err, kErrLen) : GPUCOLO_ERR_INVALID;
        if (rc == GPUCOLO_OK) {
          int n = -1;
          err[0] = '\0';
          if (api->device_count && api->device_count(&n, err, kErrLen) == GPUCOLO_OK) {
            p.deviceCount = n;
          } else {
            p.initError = err[0] ? err : "device_count() failed";
          }
          if (api->shutdown) api->shutdown();
        } else {
          p.deviceCount = rc == GPUCOLO_ERR_NO_DEVICE ? 0 : -1;
          p.initError = err[0] ? err : "init() failed (status " + std::to_string(rc) + ")";
        }
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

const gpucolo_gpu_api* LoadBackend(const std::string& name, std::string* error, const std::string& dir) {
  std::string ignored;
  std::string& err = error ? *error : ignored;
  err.clear();
  if (name == "cpu") {
    err = "cpu is built in";
    return nullptr;
  }
  bool known = false;
  for (const char* n : kPluginNames) known = known || name == n;
  if (!known) {
    err = "unknown backend '" + name + "' (cpu, cuda, hip)";
    return nullptr;
  }
  const std::string path = PluginPath(dir, name);
  if (!IsFile(path)) {
    err = NotFoundReason(name, path);
    return nullptr;
  }
  return Load(path, &err);
}

}  // namespace plugins
}  // namespace gpucolo
