// Module init only: every group registers its own functions (docs/design-rules.md#the-native-layout).
#include <napi.h>

#include "kfd/binding.h"
#include "kfd/kfd_ioctl.h"
#include "plugins/binding.h"
#include "trace/binding.h"
#include "dispatch/binding.h"
#include "power/binding.h"

namespace {

// Bump with every change of the C++ surface or of a table layout in src/kfd/raw.ts; src/native.ts
// rejects an addon whose number differs (a stale build/Release beats a fresh prebuild).
constexpr int kAbiVersion = 9;

const char* Compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  Napi::Object info = Napi::Object::New(env);
  info.Set("compiler", Compiler());
  info.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  info.Set("kfdIoctlHeader", gpucolo::kfd::KfdIoctlHeaderVersion());
  exports.Set("buildInfo", info);
  gpucolo::kfd::RegisterBinding(env, exports);
  gpucolo::plugins::RegisterBinding(env, exports);
  gpucolo::trace::RegisterBinding(env, exports);
  gpucolo::dispatch::RegisterBinding(env, exports);
  gpucolo::power::RegisterBinding(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(gpucolo, Init)
