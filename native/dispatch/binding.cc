// N-API side of the dispatch engine. A measurement runs on its own std::thread (it can last
// minutes and must not occupy the libuv pool); the result comes back through a ThreadSafeFunction
// as one object of typed arrays. Backends: "cpu" is built in, "cuda"/"hip" are dlopen()ed plugins.
#include "binding.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu_backend.h"
#include "engine.h"
#include "gpu_plugin.h"
#include "plugins/loader.h"

namespace gpucolo {
namespace dispatch {
namespace {

constexpr unsigned kErrLen = 512;

struct BackendState {
  const gpucolo_gpu_api* api = nullptr;
  std::string error;  // why it cannot be used
};

/** Backends are loaded and initialised once per process; the answer (or the reason) is kept. */
BackendState& Backend(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, BackendState> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  BackendState st;
  const gpucolo_gpu_api* api = nullptr;
  if (name == "cpu") {
    api = CpuBackendApi();
  } else {
    std::string err;
    api = plugins::LoadBackend(name, &err);
    if (!api) st.error = err;
  }
  if (api) {
    char err[kErrLen] = {0};
    if (api->init(err, kErrLen) != GPUCOLO_OK) {
      st.error = err[0] ? err : "init failed";
    } else {
      st.api = api;
    }
  }
  return cache.emplace(name, st).first->second;
}

/** Resident probe kernels per CU for block sizes 32, 64, ... up to the device's limit (what "fill" needs at each). */
Napi::Array OccupancyToJs(Napi::Env env, const gpucolo_gpu_api* api, int device, const gpucolo_device_info& d) {
  Napi::Array out = Napi::Array::New(env);
  if (api->max_active_blocks == nullptr) return out;
  for (uint32_t tpb = 32; tpb <= static_cast<uint32_t>(d.max_threads_per_block); tpb *= 2) {
    int n = 0;
    char err[kErrLen] = {0};
    if (api->max_active_blocks(device, tpb, &n, err, kErrLen) != GPUCOLO_OK) continue;
    Napi::Object e = Napi::Object::New(env);
    e.Set("threadsPerBlock", tpb);
    e.Set("blocksPerCu", n);
    out.Set(out.Length(), e);
  }
  return out;
}

Napi::Object DeviceToJs(Napi::Env env, const gpucolo_gpu_api* api, int device, const gpucolo_device_info& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", d.name);
  o.Set("arch", d.arch);
  o.Set("computeUnits", d.compute_units);
  o.Set("priorityLeast", d.priority_least);
  o.Set("priorityGreatest", d.priority_greatest);
  o.Set("supportsCuMask", d.supports_cu_mask != 0);
  o.Set("supportsSmPartition", d.supports_sm_partition != 0);
  o.Set("timerResolutionNs", d.timer_resolution_ns);
  o.Set("maxThreadsPerBlock", d.max_threads_per_block);
  o.Set("fillThreadsPerBlock", d.fill_threads_per_block);
  o.Set("maxActiveBlocksPerCu", d.max_active_blocks_per_cu);
  o.Set("occupancy", OccupancyToJs(env, api, device, d));
  o.Set("numXcc", d.num_xcc);
  o.Set("numSePerXcc", d.num_se_per_xcc);
  o.Set("numShPerSe", d.num_sh_per_se);
  o.Set("cuMaskBitsPerUnit", d.cu_mask_bits_per_unit);
  return o;
}

Napi::Value ListBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const char* name : {"cpu", "cuda", "hip"}) {
    BackendState& st = Backend(name);
    Napi::Object b = Napi::Object::New(env);
    b.Set("name", name);
    Napi::Array devices = Napi::Array::New(env);
    std::string reason = st.error;
    if (st.api) {
      char err[kErrLen] = {0};
      int n = 0;
      if (st.api->device_count(&n, err, kErrLen) != GPUCOLO_OK) {
        reason = err[0] ? err : "device_count failed";
      } else if (n == 0) {
        reason = "no device";
      }
      for (int d = 0; d < n; ++d) {
        gpucolo_device_info di{};
        if (st.api->device_info(d, &di, err, kErrLen) == GPUCOLO_OK) devices.Set(devices.Length(), DeviceToJs(env, st.api, d, di));
      }
    }
    b.Set("available", reason.empty());
    if (!reason.empty()) b.Set("reason", reason);
    b.Set("devices", devices);
    out.Set(i++, b);
  }
  return out;
}

// ---------------------------------------------------------------------------------- spec in

double Num(const Napi::Object& o, const char* k, double def = 0) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

std::string Str(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("startDispatch: ") + k + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Mechanism ParseMechanism(const std::string& m, Napi::Env env) {
  if (m == "none") return Mechanism::kNone;
  if (m == "stream-priority") return Mechanism::kStreamPriority;
  if (m == "cu-mask") return Mechanism::kCuMask;
  if (m == "sm-partition") return Mechanism::kSmPartition;
  if (m == "throttle") return Mechanism::kThrottle;
  throw Napi::TypeError::New(env, "startDispatch: unknown mechanism " + m);
}

Arrival ParseArrival(const std::string& a, Napi::Env env) {
  if (a == "closed-loop") return Arrival::kClosedLoop;
  if (a == "fixed-rate") return Arrival::kFixedRate;
  if (a == "poisson") return Arrival::kPoisson;
  if (a == "list") return Arrival::kList;
  throw Napi::TypeError::New(env, "startDispatch: unknown arrival " + a);
}

RunSpec ParseSpec(const Napi::Object& js) {
  Napi::Env env = js.Env();
  RunSpec spec;
  spec.device = static_cast<int>(Num(js, "device"));
  spec.duration_ns = static_cast<uint64_t>(Num(js, "durationNs"));
  spec.warmup_ns = static_cast<uint64_t>(Num(js, "warmupNs"));
  spec.max_launches = static_cast<uint64_t>(Num(js, "maxLaunches"));
  spec.mechanism = ParseMechanism(Str(js, "mechanism"), env);
  spec.throttle_k = static_cast<uint32_t>(Num(js, "throttleK", 1));
  spec.reserve = Num(js, "reserve");
  spec.watchdog_ns = static_cast<uint64_t>(Num(js, "watchdogNs", 10e9));
  Napi::Value sv = js.Get("streams");
  if (!sv.IsArray()) throw Napi::TypeError::New(env, "startDispatch: streams must be an array");
  Napi::Array streams = sv.As<Napi::Array>();
  for (uint32_t i = 0; i < streams.Length(); ++i) {
    Napi::Value v = streams.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "startDispatch: each stream must be an object");
    Napi::Object s = v.As<Napi::Object>();
    StreamSpec st;
    st.name = Str(s, "name");
    st.high_priority = s.Get("highPriority").ToBoolean().Value();
    st.level = static_cast<int>(Num(s, "level", -1));
    st.levels = static_cast<int>(Num(s, "levels", 0));
    Napi::Value kv = s.Get("kernel");
    if (!kv.IsObject()) throw Napi::TypeError::New(env, "startDispatch: stream.kernel must be an object");
    Napi::Object k = kv.As<Napi::Object>();
    st.kernel.spin_ns = static_cast<uint64_t>(Num(k, "spinNs"));
    st.kernel.blocks = static_cast<uint32_t>(Num(k, "blocks", 1));
    st.kernel.threads_per_block = static_cast<uint32_t>(Num(k, "threadsPerBlock", 64));
    st.arrival = ParseArrival(Str(s, "arrival"), env);
    st.rate_hz = Num(s, "rateHz");
    st.inflight = static_cast<uint32_t>(Num(s, "inflight", 1));
    st.seed = static_cast<uint64_t>(Num(s, "seed", 1));
    Napi::Value tv = s.Get("timesNs");
    if (tv.IsArray()) {
      Napi::Array t = tv.As<Napi::Array>();
      for (uint32_t j = 0; j < t.Length(); ++j) st.times_ns.push_back(static_cast<uint64_t>(t.Get(j).As<Napi::Number>().DoubleValue()));
    }
    spec.streams.push_back(std::move(st));
  }
  return spec;
}

// ---------------------------------------------------------------------------------- result out

Napi::Float64Array F64(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
  return a;
}

Napi::Object ResultToJs(Napi::Env env, const RunResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", r.status);
  o.Set("error", r.error);
  o.Set("deviceOffsetNs", r.device_offset_ns);
  o.Set("deviceOffsetUncertaintyNs", r.device_offset_uncertainty_ns);
  // NaN (not measured: the backend failed after the run) becomes null in JSON, a number here
  o.Set("deviceOffsetEndNs", r.device_offset_end_ns);
  o.Set("cancelled", r.cancelled);
  o.Set("submitPhaseNs", r.submit_phase_ns);
  o.Set("elapsedNs", r.elapsed_ns);
  o.Set("pollPauseNs", static_cast<double>(r.poll_pause_ns));
  o.Set("computeUnits", r.compute_units);
  o.Set("priorityLeast", r.priority_least);
  o.Set("priorityGreatest", r.priority_greatest);
  Napi::Array streams = Napi::Array::New(env, r.streams.size());
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamResult& s = r.streams[i];
    Napi::Object so = Napi::Object::New(env);
    so.Set("name", s.name);
    so.Set("highPriority", s.high_priority);
    so.Set("priority", s.priority);
    so.Set("intendedNs", F64(env, s.intended_ns));
    so.Set("submitNs", F64(env, s.submit_ns));
    so.Set("deviceStartNs", F64(env, s.device_start_ns));
    so.Set("deviceEndNs", F64(env, s.device_end_ns));
    so.Set("completeNs", F64(env, s.complete_ns));
    Napi::Uint8Array w = Napi::Uint8Array::New(env, s.warmup.size());
    for (size_t j = 0; j < s.warmup.size(); ++j) w[j] = s.warmup[j];
    so.Set("warmup", w);
    so.Set("launches", static_cast<double>(s.launches));
    so.Set("errors", static_cast<double>(s.errors));
    so.Set("error", s.error);
    so.Set("dropped", static_cast<double>(s.dropped));
    Napi::Array mask = Napi::Array::New(env, s.cu_mask.size());  // number[], as the TS engine gives it
    for (size_t j = 0; j < s.cu_mask.size(); ++j) mask.Set(static_cast<uint32_t>(j), static_cast<double>(s.cu_mask[j]));
    so.Set("cuMask", mask);
    so.Set("smCountRequested", s.sm_count_requested);
    so.Set("smCount", s.sm_count);
    so.Set("computeUnits", s.compute_units);
    so.Set("maxActiveBlocksPerCu", s.max_active_blocks_per_cu);
    so.Set("fillBlocks", static_cast<double>(s.fill_blocks));
    streams.Set(static_cast<uint32_t>(i), so);
  }
  o.Set("streams", streams);
  return o;
}

struct RunCtx {
  explicit RunCtx(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::thread thread;
  std::atomic<bool> cancel{false};
  RunSpec spec;
  RunResult result;
};

void CallJs(Napi::Env env, Napi::Function, RunCtx* ctx, RunResult*) {
  if (env == nullptr) return;
  try {
    ctx->deferred.Resolve(ResultToJs(env, ctx->result));
  } catch (const Napi::Error& e) {
    ctx->deferred.Reject(e.Value());
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<RunCtx, RunResult, CallJs>;

Napi::Value StartDispatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "startDispatch(spec): spec must be an object");
  Napi::Object js = info[0].As<Napi::Object>();
  const std::string backend = Str(js, "backend");
  RunSpec spec = ParseSpec(js);
  BackendState& st = Backend(backend);
  if (!st.api) throw Napi::Error::New(env, "backend " + backend + " unavailable: " + st.error);
  spec.api = st.api;

  // shared with the cancel closure, which may outlive the run
  auto ctx = std::shared_ptr<RunCtx>(new RunCtx(env));
  ctx->spec = std::move(spec);
  Napi::Promise promise = ctx->deferred.Promise();
  auto* keep = new std::shared_ptr<RunCtx>(ctx);
  Tsfn tsfn = Tsfn::New(env, "gpucolo.dispatch", 0, 1, ctx.get(), [keep](Napi::Env, void*, RunCtx* c) {
    // JS thread, after the last Release(): the measurement thread has finished
    if (c->thread.joinable()) c->thread.join();
    delete keep;
  });
  ctx->thread = std::thread([tsfn, c = ctx.get()]() mutable {
    c->result = Run(c->spec, &c->cancel);
    tsfn.BlockingCall(&c->result);
    tsfn.Release();
  });

  // process or worker teardown while measuring: stop the engine so the finalizer's join returns
  std::weak_ptr<RunCtx> weak = ctx;
  env.AddCleanupHook([weak]() {
    if (auto c = weak.lock()) c->cancel.store(true);
  });

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("done", promise);
  handle.Set("cancel", Napi::Function::New(env, [weak](const Napi::CallbackInfo& ci) {
    if (auto c = weak.lock()) c->cancel.store(true);
    return ci.Env().Undefined();
  }));
  return handle;
}

}  // namespace

void RegisterBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("listBackends", Napi::Function::New(env, ListBackends, "listBackends"));
  exports.Set("startDispatch", Napi::Function::New(env, StartDispatch, "startDispatch"));
}

}  // namespace dispatch
}  // namespace gpucolo
