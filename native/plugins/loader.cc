#include "loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

namespace gpucolo {
namespace plugins {
namespace {

const char* const kPluginNames[] = {"cuda", "hip"};
const char kEntryPoint[] = "gpucolo_gpu_get_api";

// Any symbol of this object will do for dladdr(); a static function cannot be interposed.
void Anchor() {}

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
    p.path = (dir == "/" ? std::string() : dir) + "/gpucolo_" + name + ".so";
    struct stat st {};
    p.found = ::stat(p.path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    if (p.found) {
      dlerror();  // clear a stale message
      void* handle = dlopen(p.path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        const char* why = dlerror();
        p.error = why ? why : "dlopen failed";
      } else {
        dlerror();
        void* entry = dlsym(handle, kEntryPoint);
        if (entry == nullptr) {
          const char* why = dlerror();
          p.error = why ? why : std::string(kEntryPoint) + " not found";
        } else {
          p.loaded = true;
        }
        dlclose(handle);
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace plugins
}  // namespace gpucolo
