// N-API wrappers of the dispatch group: listBackends(), startDispatch().
#pragma once

#include <napi.h>

namespace gpucolo {
namespace dispatch {

void RegisterBinding(Napi::Env env, Napi::Object exports);

}  // namespace dispatch
}  // namespace gpucolo
