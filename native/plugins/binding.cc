#include "binding.h"

#include <exception>

#include "loader.h"

namespace gpucolo {
namespace plugins {
namespace {

Napi::Value ProbePluginsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<PluginProbe> probes;
  try {
    probes = ProbePlugins();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("probePlugins: ") + e.what());
  }
  Napi::Array out = Napi::Array::New(env, probes.size());
  for (size_t i = 0; i < probes.size(); ++i) {
    const PluginProbe& p = probes[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    o.Set("path", p.path);
    o.Set("found", p.found);
    o.Set("loaded", p.loaded);
    if (!p.error.empty()) o.Set("error", p.error);
    if (p.loaded) o.Set("deviceCount", p.deviceCount);
    if (!p.initError.empty()) o.Set("initError", p.initError);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

}  // namespace

void RegisterBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("probePlugins", Napi::Function::New(env, ProbePluginsJs, "probePlugins"));
}

}  // namespace plugins
}  // namespace gpucolo
