// startSampler(): a Sampler (sampler.h) whose sink is a TypedThreadSafeFunction, following
// docs/design-rules.md#blocking-work-runs-on-its-own-thread:
//
//   JS thread                               sampler thread
//   startSampler ── Tsfn::New, Start() ──▶  loop: sleep to deadline, read, parse,
//                                            NonBlockingCall(sample) (queue bound maxQueued;
//   CallJs: sample -> JS object, onSample ◀──  napi_queue_full = dropped, counted in the next;
//                                            the last of maxSamples: BlockingCall, never dropped;
//                                            deliverEveryNs > 0: samples held and handed over
//                                            as one batch, one onSample call each: TsfnSink)
//   stop(): RequestStop() wakes the sleep;  ◀── loop ends: held batch handed over, Release()
//   TSFN finalizer (after the queue drained): join, resolve every stop() promise, free.
//
// Ownership: Ctx is shared by the TSFN (a heap shared_ptr freed by its finalizer) and the stop /
// setPids functions (captured, freed when they are collected), so a late stop() never touches
// freed memory, and Ctx never dies before the thread was joined (only the finalizer joins).
//
// Teardown (worker terminate, env cleanup): our cleanup hook, registered after the TSFN's own and
// so run before it, stops the thread; then Node closes the TSFN and runs the finalizer, which
// stops and joins again (harmless) before Node frees the TSFN the thread might still touch.
// Promise resolution there may fail: caught. Nothing throws out of CallJs or the finalizer; a JS
// exception from onSample goes to napi_fatal_exception (process 'uncaughtException'). A worker
// being terminated can still run CallJs with JS calls failing: see the comment there.
#include "binding.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kfd/binding.h"
#include "sampler.h"

namespace gpucolo {
namespace trace {
namespace {

/** Samples handed to JS in one call (one wake-up of the JS thread), in the order taken. */
struct Batch {
  std::vector<std::unique_ptr<Sample>> samples;
};

struct Ctx;
void CallJs(Napi::Env env, Napi::Function on_sample, Ctx* ctx, Batch* batch);
using Tsfn = Napi::TypedThreadSafeFunction<Ctx, Batch, CallJs>;

/**
 * Hands samples to the JS thread. deliver_every_ns == 0: each sample on its own, dropped when
 * maxQueued calls wait. Above 0 (deliverEveryNs): quiet samples (Quiet(): no new process and no
 * reused pid) are held and handed over together once the oldest held one is that old, or with the
 * next sample that is not quiet, so the JS thread wakes once per batch: at 100 ms most of a
 * sample's JS time was the wake-up itself, cold caches included (docs/tracing.md "Where the JS
 * thread's time goes"). A held sample is taken (its parts may be `same` for the next one); when
 * the queue is full the batch is held on, and only a sample beyond kMaxHeld is dropped. Done()
 * hands over what is held before the release, so stop() resolves after every taken sample reached JS.
 */
class TsfnSink final : public SampleSink {
 public:
  static constexpr size_t kMaxHeld = 4096;

  Delivery Deliver(std::unique_ptr<Sample> sample, bool last) override {
    if (deliver_every_ns <= 0) return DeliverOne(std::move(sample), last);
    if (!held_) {
      held_ = std::make_unique<Batch>();
      held_since_ns_ = MonotonicNowNs();
    }
    if (held_->samples.size() >= kMaxHeld && !last) {
      // JS is far behind: try to hand over what is held, else drop this one (never a held one)
      const napi_status st = Flush(false);
      if (st != napi_ok && st != napi_queue_full) return Delivery::kClosed;
      if (held_) return Delivery::kDropped;
      return Deliver(std::move(sample), last);
    }
    const bool quiet = Quiet(*sample);
    held_->samples.push_back(std::move(sample));
    if (!last && quiet && MonotonicNowNs() - held_since_ns_ < deliver_every_ns) return Delivery::kTaken;
    // queue full: held on (taken all the same), tried again with the next sample
    const napi_status st = Flush(last);
    return st == napi_ok || st == napi_queue_full ? Delivery::kTaken : Delivery::kClosed;
  }

  void Done() override {
    if (held_) Flush(true);
    tsfn.Release();
  }

  Tsfn tsfn;
  /** 0: every sample on its own */
  int64_t deliver_every_ns = 0;
  /** the sampler has a proc_root: samples carry pid_starts and pids_changed */
  bool reads_pid_starts = false;

 private:
  /**
   * A sample that may wait: JS reads /proc about a process when it first shows, and when its
   * pid was reused (nsPid, whether a traced command started it), and must do so while that
   * process is still there; so such a sample (pids_changed) goes at once, with what is held before
   * it. Queues, slots and counters of known processes changing is quiet: the start time that
   * tells a reused pid was read by the sampler at the sample's time. Without a proc root (JS reads
   * the start times itself when a process's queues change) only a sample in which nothing but
   * register words moved is quiet: the same proc tables, each debugfs file the same or patched.
   */
  bool Quiet(const Sample& s) const {
    if (s.dropped != 0) return false;
    // the sampler read the start times of new and changed processes itself (Sample::pid_starts):
    // JS reads /proc only about a process that is new or whose pid was reused
    if (reads_pid_starts) return !s.pids_changed;
    auto quiet = [](const auto& p) { return p.ok && (p.same || p.patched); };
    return s.procs_same && (!s.debugfs || (quiet(s.mqds) && quiet(s.hqds) && quiet(s.rls)));
  }

  Delivery DeliverOne(std::unique_ptr<Sample> sample, bool last) {
    auto b = std::make_unique<Batch>();
    b->samples.push_back(std::move(sample));
    Batch* raw = b.release();
    // the last sample of a maxSamples run waits for room (env teardown ends the wait: napi_closing)
    const napi_status st = last ? tsfn.BlockingCall(raw) : tsfn.NonBlockingCall(raw);
    if (st == napi_ok) return Delivery::kTaken;  // CallJs owns it now
    delete raw;
    return st == napi_queue_full ? Delivery::kDropped : Delivery::kClosed;  // napi_closing: env going away
  }

  /** Hands the held batch over; blocking waits for room (env teardown ends the wait: napi_closing). */
  napi_status Flush(bool blocking) {
    Batch* raw = held_.release();
    const napi_status st = blocking ? tsfn.BlockingCall(raw) : tsfn.NonBlockingCall(raw);
    if (st == napi_queue_full) {
      held_.reset(raw);
    } else if (st != napi_ok) {
      delete raw;
    }
    return st;
  }

  std::unique_ptr<Batch> held_;
  int64_t held_since_ns_ = 0;
};

/**
 * The property names of a sample, made once per sampler. Object::Set(const char*) decodes the
 * name and looks it up in V8's string table on every call; at 100 ms, with the table cold in the
 * caches, those lookups were the largest single cost of handing a sample to JS (docs/tracing.md
 * "Where the JS thread's time goes"). JS thread only; Reset() in Finalize.
 */
class SampleKeys {
 public:
  enum Key {
    kSeq, kIntendedNs, kActualNs, kReadNs, kParseNs, kThreadCpuNs, kIoNs, kCpuNs, kWalk, kMissed, kDropped,
    kProcs, kMqds, kHqds, kRls, kChangedWords, kSame, kPidStarts,
    kProcesses, kProcessesRead, kQueuesRead, kQueuesReused, kCode, kMessage, kWordsOmitted, kCount
  };
  void Init(Napi::Env env) {
    static const char* const kNames[kCount] = {
        "seq", "intendedNs", "actualNs", "readNs", "parseNs", "threadCpuNs", "ioNs", "cpuNs", "walk", "missed", "dropped",
        "procs", "mqds", "hqds", "rls", "changedWords", "same", "pidStarts",
        "processes", "processesRead", "queuesRead", "queuesReused", "code", "message", "wordsOmitted"};
    // Node 20 refuses references to strings (napi_create_reference: objects only before N-API
    // 10): the names are held by one array, read back by index
    Napi::Array names = Napi::Array::New(env, kCount);
    for (uint32_t k = 0; k < kCount; ++k) names.Set(k, Napi::String::New(env, kNames[k]));
    names_ = Napi::Persistent(names);
  }
  void Reset() { names_.Reset(); }
  /** The names as values, read out of the array once per hand-over, not once per property set. */
  struct Values {
    napi_value v[kCount];
    napi_value operator[](Key k) const { return v[k]; }
  };
  Values Resolve() const {
    Values out;
    const Napi::Array names = names_.Value();
    for (uint32_t k = 0; k < kCount; ++k) out.v[k] = names.Get(k);
    return out;
  }

 private:
  Napi::Reference<Napi::Array> names_;
};
using K = SampleKeys;

/**
 * The debugfs tables of the samples JS got, as C++ tables: a part of the sample in onSample now is
 * its own (fresh) or the last one delivered (`same`), so these are the sample's. joinDumps joins
 * them in C++ while that sample's onSample runs (the trace's join, src/trace/assemble.ts), without
 * parsing again or copying the JS tables back. A part that could not be read is null.
 */
struct Delivered {
  std::shared_ptr<const kfd::MqdsRaw> mqds;
  std::shared_ptr<const kfd::HqdsRaw> hqds;
  std::shared_ptr<const kfd::RlsRaw> rls;
  /** seq of the sample whose onSample runs now; valid while in_call */
  uint64_t seq = 0;
  bool in_call = false;

  /** The sample was converted for JS: its parts become the current ones. */
  void Take(const Sample& s) {
    if (!s.debugfs) return;
    auto take = [](auto* ref, const auto& part) {
      if (!part.ok) ref->reset();
      else if (!part.same) *ref = part.raw;
    };
    take(&mqds, s.mqds);
    take(&hqds, s.hqds);
    take(&rls, s.rls);
  }
};

struct Ctx {
  TsfnSink sink;  // before sampler: destroyed after it
  std::unique_ptr<Sampler> sampler;
  // JS thread only
  SampleKeys keys;
  Delivered delivered;
  /** startSampler's debugfsWords: hand JS the debugfs words (false: empty, wordsOmitted set) */
  bool debugfs_words = true;
  std::vector<Napi::Promise::Deferred> waiters;
  bool finished = false;
  bool hook_added = false;
};

// ------------------------------------------------------------------------------- JS thread

void RaiseFatal(napi_env env, napi_value error) {
  // a no-op (status != napi_ok) when the environment can no longer run JS
  if (error != nullptr) napi_fatal_exception(env, error);
}

Napi::Object ReadErrorToJs(Napi::Env env, const SampleKeys::Values& keys, const ReadError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set(keys[K::kCode], Napi::String::New(env, e.code));
  o.Set(keys[K::kMessage], Napi::String::New(env, e.message));
  return o;
}

/** WalkStats in src/native.ts */
Napi::Object WalkStatsToJs(Napi::Env env, const kfd::WalkStats& w) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("processes", Napi::Number::New(env, static_cast<double>(w.processes)));
  o.Set("processesRead", Napi::Number::New(env, static_cast<double>(w.processes_read)));
  o.Set("queuesRead", Napi::Number::New(env, static_cast<double>(w.queues_read)));
  o.Set("queuesReused", Napi::Number::New(env, static_cast<double>(w.queues_reused)));
  return o;
}

/** WalkStats of a sample, with the sampler's keys (WalkStatsToJs serves createProcsWalker's stats()). */
Napi::Object SampleWalkToJs(Napi::Env env, const SampleKeys::Values& keys, const kfd::WalkStats& w) {
  Napi::Object o = Napi::Object::New(env);
  o.Set(keys[K::kProcesses], Napi::Number::New(env, static_cast<double>(w.processes)));
  o.Set(keys[K::kProcessesRead], Napi::Number::New(env, static_cast<double>(w.processes_read)));
  o.Set(keys[K::kQueuesRead], Napi::Number::New(env, static_cast<double>(w.queues_read)));
  o.Set(keys[K::kQueuesReused], Napi::Number::New(env, static_cast<double>(w.queues_reused)));
  return o;
}

/**
 * NativeSample in src/native.ts; tables through the kfd binding's one conversion. A part the
 * sampler marked same (equal to the one in the last sample taken) is left out and named in
 * `same` instead: converting the tables is most of a sample's cost on the JS thread.
 */
Napi::Object SampleToJs(Napi::Env env, const SampleKeys::Values& keys, const Sample& s, bool words) {
  auto num = [&](double x) { return Napi::Number::New(env, x); };
  Napi::Object o = Napi::Object::New(env);
  o.Set(keys[K::kSeq], num(static_cast<double>(s.seq)));
  o.Set(keys[K::kIntendedNs], num(s.intended_ns));
  o.Set(keys[K::kActualNs], num(s.actual_ns));
  o.Set(keys[K::kReadNs], num(s.read_ns));
  o.Set(keys[K::kParseNs], num(s.parse_ns));
  if (s.thread_cpu_ns >= 0) o.Set(keys[K::kThreadCpuNs], num(s.thread_cpu_ns));
  o.Set(keys[K::kIoNs], num(s.io_ns));
  if (s.cpu_ns >= 0) o.Set(keys[K::kCpuNs], num(s.cpu_ns));
  o.Set(keys[K::kWalk], SampleWalkToJs(env, keys, s.walk));
  o.Set(keys[K::kMissed], num(static_cast<double>(s.missed)));
  o.Set(keys[K::kDropped], num(static_cast<double>(s.dropped)));
  Napi::Object same;
  auto mark = [&](K::Key part) {
    if (same.IsEmpty()) same = Napi::Object::New(env);
    same.Set(keys[part], Napi::Boolean::New(env, true));
  };
  if (s.procs_same) {
    mark(K::kProcs);
  } else {
    o.Set(keys[K::kProcs], kfd::ProcsToJs(env, s.procs));
    if (!s.pid_starts.empty()) {
      Napi::Float64Array a = Napi::Float64Array::New(env, s.pid_starts.size());
      std::memcpy(a.Data(), s.pid_starts.data(), s.pid_starts.size() * sizeof(double));
      o.Set(keys[K::kPidStarts], a);
    }
  }
  if (s.debugfs) {
    Napi::Object changed;
    auto part = [&](K::Key name, const auto& p, auto to_js) {
      if (p.same) {
        mark(name);
      } else {
        // ok and not same: raw is set (sampler.cc); checked all the same, a null would crash
        if (p.ok && !p.raw) throw std::logic_error("sample part without tables");
        o.Set(keys[name], p.ok ? to_js(env, *p.raw) : ReadErrorToJs(env, keys, p.error));
      }
      if (p.patched) {
        if (changed.IsEmpty()) changed = Napi::Object::New(env);
        Napi::Uint32Array a = Napi::Uint32Array::New(env, p.changed_words.size());
        if (!p.changed_words.empty()) std::memcpy(a.Data(), p.changed_words.data(), p.changed_words.size() * sizeof(uint32_t));
        changed.Set(keys[name], a);
      }
    };
    part(K::kMqds, s.mqds, [words](Napi::Env e, const kfd::MqdsRaw& r) { return kfd::MqdsToJs(e, r, words); });
    part(K::kHqds, s.hqds, [words](Napi::Env e, const kfd::HqdsRaw& r) { return kfd::HqdsToJs(e, r, words); });
    part(K::kRls, s.rls, [words](Napi::Env e, const kfd::RlsRaw& r) { return kfd::RlsToJs(e, r, words); });
    if (!words) o.Set(keys[K::kWordsOmitted], Napi::Boolean::New(env, true));
    if (!changed.IsEmpty()) o.Set(keys[K::kChangedWords], changed);
  }
  if (!same.IsEmpty()) o.Set(keys[K::kSame], same);
  return o;
}

/** One sample to onSample; a conversion or JS exception goes to process 'uncaughtException'. */
void CallOne(Napi::Env env, Napi::Function on_sample, const SampleKeys::Values& keys, Delivered* delivered, bool words, std::unique_ptr<Sample> owned) {
  Napi::HandleScope scope(env);
  napi_value arg;
  try {
    arg = SampleToJs(env, keys, *owned, words);
  } catch (const Napi::Error& e) {  // N-API failed (e.g. a worker being terminated)
    // a sample that does not reach JS: JS forgets every part it holds (sameFiller), so does this
    *delivered = Delivered{};
    try {
      RaiseFatal(env, e.Value());
    } catch (...) {
    }
    return;
  } catch (const std::exception& e) {  // std::bad_alloc while converting
    *delivered = Delivered{};
    try {
      RaiseFatal(env, Napi::Error::New(env, std::string("gpucolo sampler: ") + e.what()).Value());
    } catch (...) {
    }
    return;
  }
  delivered->Take(*owned);
  delivered->seq = owned->seq;
  owned.reset();
  // Plain napi_call_function, not Function::Call: when a worker is being terminated the call
  // fails with a termination "exception" that is not an object, and wrapping that in a
  // Napi::Error aborts the process (napi_define_properties in Error::Error).
  napi_value undefined = nullptr;
  napi_value result = nullptr;
  napi_get_undefined(env, &undefined);
  delivered->in_call = true;
  const napi_status called = napi_call_function(env, undefined, on_sample, 1, &arg, &result);
  delivered->in_call = false;
  if (called == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value error = nullptr;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      // without this the exception would be swallowed (DEP0168); a no-op when the environment
      // can no longer run JS
      RaiseFatal(env, error);
    }
  }
}

void CallJs(Napi::Env env, Napi::Function on_sample, Ctx* ctx, Batch* batch) {
  std::unique_ptr<Batch> owned(batch);
  // env == nullptr: Node is emptying the queue of a closing TSFN; only free the data
  if (env == nullptr || on_sample == nullptr || !owned || ctx == nullptr) return;
  // in the order taken, each as its own call (as without batching); the keys read out once
  const SampleKeys::Values keys = ctx->keys.Resolve();
  for (auto& s : owned->samples) {
    if (s) CallOne(env, on_sample, keys, &ctx->delivered, ctx->debugfs_words, std::move(s));
  }
}

void OnEnvCleanup(void* arg) {
  Ctx* ctx = static_cast<Ctx*>(arg);
  ctx->hook_added = false;  // Node removes it after this call
  ctx->sampler->RequestStop();
}

/** After the thread's Release() and the last CallJs, or when the environment closes the TSFN. */
void Finalize(Napi::Env env, std::shared_ptr<Ctx>* holder, Ctx* ctx) {
  try {
    ctx->sampler->RequestStop();  // teardown: the thread may still be sleeping
    ctx->sampler->Join();
    if (ctx->hook_added) {
      napi_remove_env_cleanup_hook(env, OnEnvCleanup, ctx);
      ctx->hook_added = false;
    }
    ctx->finished = true;
    std::vector<Napi::Promise::Deferred> waiters;
    waiters.swap(ctx->waiters);
    for (Napi::Promise::Deferred& d : waiters) {
      try {
        d.Resolve(env.Undefined());
      } catch (...) {
        // environment teardown: nobody is left to see it
      }
    }
    // no CallJs after the finalizer: the keys go while the environment is still there
    try {
      ctx->keys.Reset();
    } catch (...) {
      // teardown: the environment frees its references itself
    }
  } catch (...) {
  }
  delete holder;
}

// ------------------------------------------------------------------------------- options

std::string Describe(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return v.ToString().Utf8Value();
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "a " + std::string(v.IsSymbol() ? "symbol" : "bigint");
}

[[noreturn]] void BadOption(Napi::Env env, const char* fn, const char* key, const char* rule, Napi::Value got) {
  throw Napi::TypeError::New(env, std::string(fn) + ": " + key + " " + rule + " (got " + Describe(got) + ")");
}

std::string RootOption(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) BadOption(env, "startSampler", key, "must be a string", v);
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) {
    BadOption(env, "startSampler", key, "must be a non-empty path without NUL bytes", v);
  }
  return s;
}

double IntegerOption(Napi::Env env, Napi::Object o, const char* key, double lo, double hi, const char* rule, const char* fn = "startSampler") {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) BadOption(env, fn, key, rule, v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi) BadOption(env, fn, key, rule, v);
  return d;
}

/** An optional integer option: `fallback` when undefined. */
double OptionalInteger(Napi::Env env, Napi::Object o, const char* fn, const char* key, double lo, double hi, const char* rule, double fallback) {
  return o.Get(key).IsUndefined() ? fallback : IntegerOption(env, o, key, lo, hi, rule, fn);
}

/** sysfsWalk: 'incremental' (default) or 'full'. */
bool IncrementalOption(Napi::Env env, Napi::Object o, const char* fn) {
  Napi::Value v = o.Get("sysfsWalk");
  if (v.IsUndefined()) return true;
  const std::string walk = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (walk != "incremental" && walk != "full") BadOption(env, fn, "sysfsWalk", "must be 'incremental' or 'full'", v);
  return walk == "incremental";
}

/** null/undefined -> false (every process); an array of numbers -> true + *out. */
bool PidsArg(Napi::Env env, Napi::Value v, const char* fn, std::vector<double>* out) {
  if (v.IsUndefined() || v.IsNull()) return false;
  const char* rule = "must be an array of numbers or null";
  if (!v.IsArray()) BadOption(env, fn, "pids", rule, v);
  Napi::Array a = v.As<Napi::Array>();
  out->clear();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) BadOption(env, fn, "pids", rule, a);
    out->push_back(e.As<Napi::Number>().DoubleValue());
  }
  return true;
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

// ------------------------------------------------------------------------------- exports

Napi::Value StartSamplerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "startSampler: options must be an object");
  }
  if (info.Length() < 2 || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "startSampler: onSample must be a function");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Function on_sample = info[1].As<Napi::Function>();

  SamplerOptions opts;
  opts.sysfs_root = RootOption(env, o, "sysfsRoot");
  opts.debugfs_root = RootOption(env, o, "debugfsRoot");
  opts.interval_ns = static_cast<int64_t>(
      IntegerOption(env, o, "intervalNs", 1e6, 60e9, "must be an integer number of ns from 1e6 (1 ms) to 60e9 (60 s)"));
  opts.debugfs_every = static_cast<uint64_t>(
      IntegerOption(env, o, "debugfsEvery", 0, kMaxSafeInteger, "must be an integer >= 0 (0 = never read debugfs)"));
  opts.max_samples = static_cast<uint64_t>(
      IntegerOption(env, o, "maxSamples", 0, kMaxSafeInteger, "must be an integer >= 0 (0 = until stop())"));
  if (!o.Get("procRoot").IsUndefined()) opts.proc_root = RootOption(env, o, "procRoot");
  opts.filter_pids = PidsArg(env, o.Get("pids"), "startSampler", &opts.pids);
  opts.incremental = IncrementalOption(env, o, "startSampler");
  opts.counters_every = static_cast<uint64_t>(
      OptionalInteger(env, o, "startSampler", "countersEvery", 1, kMaxSafeInteger, "must be an integer >= 1", 1));
  const size_t max_queued =
      static_cast<size_t>(IntegerOption(env, o, "maxQueued", 1, kMaxSafeInteger, "must be an integer >= 1"));

  const auto deliver_every_ns = static_cast<int64_t>(OptionalInteger(
      env, o, "startSampler", "deliverEveryNs", 0, 60e9, "must be an integer number of ns from 0 (every sample) to 60e9", 0));

  Napi::Value words = o.Get("debugfsWords");
  if (!words.IsUndefined() && !words.IsBoolean()) BadOption(env, "startSampler", "debugfsWords", "must be a boolean", words);

  auto ctx = std::make_shared<Ctx>();
  ctx->keys.Init(env);
  ctx->debugfs_words = words.IsUndefined() || words.As<Napi::Boolean>().Value();
  ctx->sink.deliver_every_ns = deliver_every_ns;
  ctx->sink.reads_pid_starts = !opts.proc_root.empty();
  ctx->sampler = std::make_unique<Sampler>(std::move(opts), &ctx->sink);
  auto* holder = new std::shared_ptr<Ctx>(ctx);
  try {
    ctx->sink.tsfn = Tsfn::New(env, on_sample, "gpucolo.sampler", max_queued, 1, ctx.get(), Finalize, holder);
  } catch (...) {
    delete holder;
    throw;
  }
  // from here on the finalizer owns holder. Registered after the TSFN's own cleanup hook, so it
  // runs first (hooks run in reverse order).
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, ctx.get()) == napi_ok) ctx->hook_added = true;
  try {
    ctx->sampler->Start();
  } catch (const std::exception& e) {
    ctx->sink.tsfn.Release();  // the finalizer cleans up
    throw Napi::Error::New(env, std::string("startSampler: cannot start the sampling thread: ") + e.what());
  }

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("originNs", Napi::String::New(env, std::to_string(ctx->sampler->origin_ns())));
  handle.Set("stop", Napi::Function::New(
                         env,
                         [ctx](const Napi::CallbackInfo& ci) -> Napi::Value {
                           Napi::Promise::Deferred d = Napi::Promise::Deferred::New(ci.Env());
                           if (ctx->finished) {
                             d.Resolve(ci.Env().Undefined());
                           } else {
                             ctx->sampler->RequestStop();
                             ctx->waiters.push_back(d);
                           }
                           return d.Promise();
                         },
                         "stop"));
  // joinDumps(seq, mqds, hqds, rls, topology, procs, procQueues, qidHints): during onSample of
  // sample `seq`, the join (native/kfd/join.h) of its debugfs tables (mqds/hqds/rls: booleans, the
  // parts to join, which must be the sample's readable ones) with the sysfs side and qid hints as
  // joinKfdDumps takes them; null when that sample is not the one in onSample now or a part asked
  // for is not there (the caller joins in TS then)
  handle.Set("joinDumps", Napi::Function::New(
                              env,
                              [ctx](const Napi::CallbackInfo& ci) -> Napi::Value {
                                Napi::Env e = ci.Env();
                                if (ci.Length() < 4 || !ci[0].IsNumber() || !ci[1].IsBoolean() || !ci[2].IsBoolean() || !ci[3].IsBoolean()) {
                                  throw Napi::TypeError::New(e, "joinDumps: (seq, mqds, hqds, rls) must be a number and three booleans");
                                }
                                const Delivered& d = ctx->delivered;
                                const double seq = ci[0].As<Napi::Number>().DoubleValue();
                                if (!d.in_call || seq != static_cast<double>(d.seq)) return e.Null();
                                const bool want[3] = {ci[1].As<Napi::Boolean>(), ci[2].As<Napi::Boolean>(), ci[3].As<Napi::Boolean>()};
                                if ((want[0] && !d.mqds) || (want[1] && !d.hqds) || (want[2] && !d.rls)) return e.Null();
                                try {
                                  return kfd::JoinArgsToJs(ci, 4, "joinDumps", want[0] ? d.mqds.get() : nullptr, want[1] ? d.hqds.get() : nullptr,
                                                           want[2] ? d.rls.get() : nullptr);
                                } catch (const std::bad_alloc&) {
                                  throw Napi::Error::New(e, "joinDumps: out of memory");
                                }
                              },
                              "joinDumps"));
  handle.Set("setPids", Napi::Function::New(
                            env,
                            [ctx](const Napi::CallbackInfo& ci) -> Napi::Value {
                              std::vector<double> pids;
                              const bool filter = PidsArg(ci.Env(), ci.Length() > 0 ? ci[0] : ci.Env().Undefined(), "setPids", &pids);
                              if (!ctx->finished) ctx->sampler->SetPids(filter ? &pids : nullptr);
                              return ci.Env().Undefined();
                            },
                            "setPids"));
  return handle;
}

/**
 * createProcsWalker({sysfsRoot, sysfsWalk?, countersEvery?}) -> {read(pids?), stats()}: the
 * sampler's proc-tree reader on the JS thread, one read per call (tests step it through recorded
 * sequences of trees; benches time it). Not thread-safe: one JS thread owns it.
 */
Napi::Value CreateProcsWalkerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "createProcsWalker: options must be an object");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value root = o.Get("sysfsRoot");
  if (!root.IsString() || root.As<Napi::String>().Utf8Value().empty()) BadOption(env, "createProcsWalker", "sysfsRoot", "must be a non-empty string", root);
  const bool incremental = IncrementalOption(env, o, "createProcsWalker");
  const auto every = static_cast<uint64_t>(OptionalInteger(env, o, "createProcsWalker", "countersEvery", 1, kMaxSafeInteger, "must be an integer >= 1", 1));
  auto walker = std::make_shared<kfd::ProcsWalker>(root.As<Napi::String>().Utf8Value(), incremental, every);
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("read", Napi::Function::New(env, [walker](const Napi::CallbackInfo& ci) -> Napi::Value {
               std::vector<double> pids;
               const bool filter = ci.Length() > 0 && PidsArg(ci.Env(), ci[0], "read", &pids);
               return kfd::ProcsToJs(ci.Env(), walker->Read(filter ? &pids : nullptr));
             }));
  handle.Set("stats", Napi::Function::New(env, [walker](const Napi::CallbackInfo& ci) -> Napi::Value {
               return WalkStatsToJs(ci.Env(), walker->last_stats());
             }));
  return handle;
}

Napi::Value MonotonicNowNsJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::to_string(MonotonicNowNs()));
}

/** The calling (JS) thread's CPU time, ns, as a Number (exact below 2^53 ns = 104 days); -1 if unreadable. */
Napi::Value ThreadCpuNsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ThreadCpuNowNs()));
}

}  // namespace

void RegisterBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("startSampler", Napi::Function::New(env, StartSamplerJs, "startSampler"));
  exports.Set("createProcsWalker", Napi::Function::New(env, CreateProcsWalkerJs, "createProcsWalker"));
  exports.Set("monotonicNowNs", Napi::Function::New(env, MonotonicNowNsJs, "monotonicNowNs"));
  exports.Set("threadCpuNs", Napi::Function::New(env, ThreadCpuNsJs, "threadCpuNs"));
}

}  // namespace trace
}  // namespace gpucolo
