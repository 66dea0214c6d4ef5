// N-API surface of the plugins group: probePlugins.
#pragma once

#include <napi.h>

namespace gpucolo {
namespace plugins {

void RegisterBinding(Napi::Env env, Napi::Object exports);

}  // namespace plugins
}  // namespace gpucolo
