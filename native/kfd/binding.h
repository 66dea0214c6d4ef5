// N-API surface of the kfd group: parseMqds, parseHqds, parseRls, readTopology, readKfdProcs,
// kfdVersion. The work is done by the plain C++ functions of this folder.
#pragma once

#include <napi.h>

namespace gpucolo {
namespace kfd {

void RegisterBinding(Napi::Env env, Napi::Object exports);

}  // namespace kfd
}  // namespace gpucolo
