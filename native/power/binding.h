// N-API surface of the power group: powerBackends, powerSample.
#pragma once

#include <napi.h>

namespace gpucolo {
namespace power {

void RegisterBinding(Napi::Env env, Napi::Object exports);

}  // namespace power
}  // namespace gpucolo
