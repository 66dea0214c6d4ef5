#include "binding.h"

#include <cmath>

#include "power.h"

namespace gpucolo {
namespace power {
namespace {

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

/** powerBackends() -> [{name, available, reason?, library, devices: [{index, name}]}] */
Napi::Value PowerBackendsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<std::string>& names = BackendNames();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    Backend* b = Shared(names[i]);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", names[i]);
    o.Set("available", b->available());
    if (!b->available()) o.Set("reason", b->reason());
    o.Set("library", b->library());
    Napi::Array devices = Napi::Array::New(env, b->devices().size());
    for (size_t d = 0; d < b->devices().size(); ++d) {
      Napi::Object dev = Napi::Object::New(env);
      dev.Set("index", Napi::Number::New(env, b->devices()[d].index));
      dev.Set("name", b->devices()[d].name);
      devices.Set(static_cast<uint32_t>(d), dev);
    }
    o.Set("devices", devices);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

/** powerSample(backend, index) -> {utilPercent|null, powerW|null, energyJ|null, tempC|null, tNs, errors?} */
Napi::Value PowerSampleJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw CodedError(env, "EINVAL", "powerSample(backend, index): backend must be a string, index a number");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const double idx = info[1].As<Napi::Number>().DoubleValue();
  Backend* b = Shared(name);
  if (b == nullptr) throw CodedError(env, "EINVAL", "powerSample: unknown backend '" + name + "' (nvml, rocm-smi)");
  if (!b->available()) throw CodedError(env, "ENOPOWER", name + " unavailable: " + b->reason());
  if (!(idx >= 0 && idx < static_cast<double>(b->devices().size())) || idx != std::floor(idx)) {
    throw CodedError(env, "EINVAL",
                     "powerSample: " + name + " has no device " + Napi::Number::New(env, idx).ToString().Utf8Value() +
                         " (" + std::to_string(b->devices().size()) + " devices)");
  }
  Sample s;
  const SampleStatus st = b->Read(static_cast<unsigned>(idx), &s);
  if (st == SampleStatus::kUnavailable) throw CodedError(env, "ENOPOWER", name + " unavailable: " + b->reason());
  if (st == SampleStatus::kBadIndex) throw CodedError(env, "EINVAL", "powerSample: " + name + " has no such device");
  Napi::Object o = Napi::Object::New(env);
  o.Set("utilPercent", s.utilPercent >= 0 ? Napi::Value(Napi::Number::New(env, s.utilPercent)) : env.Null());
  o.Set("powerW", std::isnan(s.powerW) ? env.Null() : Napi::Value(Napi::Number::New(env, s.powerW)));
  o.Set("energyJ", std::isnan(s.energyJ) ? env.Null() : Napi::Value(Napi::Number::New(env, s.energyJ)));
  o.Set("tempC", std::isnan(s.tempC) ? env.Null() : Napi::Value(Napi::Number::New(env, s.tempC)));
  // ns as a double: exact to the ns for 104 days of uptime, to a few ns after that
  o.Set("tNs", Napi::Number::New(env, static_cast<double>(s.tNs)));
  if (!s.errors.empty()) {
    Napi::Array errs = Napi::Array::New(env, s.errors.size());
    for (size_t i = 0; i < s.errors.size(); ++i) errs.Set(static_cast<uint32_t>(i), s.errors[i]);
    o.Set("errors", errs);
  }
  return o;
}

}  // namespace

void RegisterBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("powerBackends", Napi::Function::New(env, PowerBackendsJs, "powerBackends"));
  exports.Set("powerSample", Napi::Function::New(env, PowerSampleJs, "powerSample"));
}

}  // namespace power
}  // namespace gpucolo
