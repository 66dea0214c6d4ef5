// N-API wrappers of the kfd group. Rule of docs/design-rules.md "Bulk across the boundary": bytes in, a
// handful of typed arrays out; the only per-item JS objects are issues (at most 100 per parse)
// and topology nodes.
#include "binding.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "columns.h"
#include "hqds_parser.h"
#include "join.h"
#include "kfd_ioctl.h"
#include "mqds_parser.h"
#include "rls_parser.h"
#include "sysfs_reader.h"

namespace gpucolo {
namespace kfd {
namespace {

// ---------------------------------------------------------------------------------- helpers

/** Bytes of a Buffer/Uint8Array argument (a string is taken as its UTF-8 bytes). */
struct InputBytes {
  const char* data = nullptr;
  size_t len = 0;
  std::string owned;
};

InputBytes GetBytes(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  InputBytes in;
  if (info.Length() >= 1 && info[0].IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, info[0], &type, &length, &data, &buffer, &offset), in);
    if (type == napi_uint8_array || type == napi_uint8_clamped_array) {
      // a detached buffer reports data == nullptr, length 0: parsed as empty input
      in.data = static_cast<const char*>(data);
      in.len = length;
      return in;
    }
  } else if (info.Length() >= 1 && info[0].IsString()) {
    in.owned = info[0].As<Napi::String>().Utf8Value();
    in.data = in.owned.data();
    in.len = in.owned.size();
    return in;
  }
  throw Napi::TypeError::New(env, std::string(fn) + ": input must be a Buffer or Uint8Array");
}

// A copy, not an external ArrayBuffer around the vector: measured faster on Node 20 (external
// buffers are freed only by GC, so each parse faulted in fresh pages), and always allowed.
Napi::Uint32Array ToU32(Napi::Env env, const std::vector<uint32_t>& v) {
  Napi::Uint32Array a = Napi::Uint32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(uint32_t));
  return a;
}

/** A table's words, or an empty array for a consumer that asked for none (MqdsToJs words = false). */
Napi::Uint32Array WordsToJs(Napi::Env env, const std::vector<uint32_t>& v, bool words) {
  return words ? ToU32(env, v) : Napi::Uint32Array::New(env, 0);
}

Napi::Float64Array ToF64(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}

/** File bytes as JS sees them after toString('latin1'). */
Napi::Value Latin1(Napi::Env env, const std::string& s) {
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, s.data(), s.size(), &out), Napi::Value());
  return Napi::Value(env, out);
}

Napi::Array Latin1Array(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Latin1(env, v[i]));
  return a;
}

void SetCommon(Napi::Env env, Napi::Object o, const RawCommon& r) {
  Napi::Array issues = Napi::Array::New(env, r.issues.size());
  for (size_t i = 0; i < r.issues.size(); ++i) {
    const ParseIssue& pi = r.issues[i];
    Napi::Object io = Napi::Object::New(env);
    io.Set("line", Napi::Number::New(env, static_cast<double>(pi.line)));
    io.Set("severity", SeverityName(pi.severity));
    // messages are ASCII (snippets replace every other byte)
    io.Set("message", pi.message);
    issues.Set(static_cast<uint32_t>(i), io);
  }
  o.Set("issues", issues);
  o.Set("suppressed", Napi::Number::New(env, static_cast<double>(r.suppressed)));
  o.Set("lines", Napi::Number::New(env, static_cast<double>(r.lines)));
}

Napi::Array ReadIssues(Napi::Env env, const std::vector<ReadIssue>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const ReadIssue& ri = v[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", ri.path);
    o.Set("severity", SeverityName(ri.severity));
    o.Set("message", ri.message);
    if (!ri.code.empty()) o.Set("code", ri.code);
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

/** Runs body, turning C++ exceptions (bad_alloc) into JS errors instead of a process abort. */
template <class Body>
Napi::Value Guarded(const Napi::CallbackInfo& info, const char* fn, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(fn) + ": " + e.what());
  }
}

std::string RootArg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": sysfsRoot must be a string");
  }
  return info[0].As<Napi::String>().Utf8Value();
}

}  // namespace

// ---------------------------------------------------------------------------------- raw -> JS

Napi::Object MqdsToJs(Napi::Env env, const MqdsRaw& r, bool words) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("words", WordsToJs(env, r.words, words));
  o.Set("procs", ToF64(env, r.procs));
  Napi::Array pasids = Napi::Array::New(env, r.pasids.size());
  for (size_t i = 0; i < r.pasids.size(); ++i) pasids.Set(static_cast<uint32_t>(i), r.pasids[i]);
  o.Set("pasids", pasids);
  o.Set("queues", ToF64(env, r.queues));
  o.Set("blocks", ToF64(env, r.blocks));
  SetCommon(env, o, r);
  return o;
}

Napi::Object HqdsToJs(Napi::Env env, const HqdsRaw& r, bool words) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("words", WordsToJs(env, r.words, words));
  o.Set("nodes", ToF64(env, r.nodes));
  o.Set("slots", ToF64(env, r.slots));
  SetCommon(env, o, r);
  return o;
}

Napi::Object RlsToJs(Napi::Env env, const RlsRaw& r, bool words) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("words", WordsToJs(env, r.words, words));
  o.Set("nodes", ToF64(env, r.nodes));
  o.Set("packets", ToF64(env, r.packets));
  SetCommon(env, o, r);
  return o;
}

Napi::Object ProcsToJs(Napi::Env env, const ProcsRaw& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("procs", ToF64(env, p.procs));
  o.Set("queues", ToF64(env, p.queues));
  o.Set("metrics", ToF64(env, p.metrics));
  o.Set("issues", ReadIssues(env, p.issues));
  return o;
}

namespace {

// ---------------------------------------------------------------------------------- parsers

Napi::Value ParseMqdsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "parseMqds", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    InputBytes in = GetBytes(info, "parseMqds");
    return MqdsToJs(env, ParseMqds(in.data, in.len));
  });
}

Napi::Value ParseHqdsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "parseHqds", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    InputBytes in = GetBytes(info, "parseHqds");
    return HqdsToJs(env, ParseHqds(in.data, in.len));
  });
}

Napi::Value ParseRlsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "parseRls", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    InputBytes in = GetBytes(info, "parseRls");
    return RlsToJs(env, ParseRls(in.data, in.len));
  });
}

// ---------------------------------------------------------------------------------- sysfs

Napi::Value ReadTopologyJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "readTopology", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const TopologyRaw t = ReadTopology(RootArg(info, "readTopology"));
    Napi::Array nodes = Napi::Array::New(env, t.nodes.size());
    for (size_t i = 0; i < t.nodes.size(); ++i) {
      const TopologyNodeRaw& n = t.nodes[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("node", Napi::Number::New(env, n.node));
      o.Set("gpuId", Napi::Number::New(env, n.gpu_id));
      o.Set("name", Latin1(env, n.name));
      o.Set("keys", Latin1Array(env, n.keys));
      o.Set("values", Latin1Array(env, n.values));
      nodes.Set(static_cast<uint32_t>(i), o);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("nodes", nodes);
    o.Set("issues", ReadIssues(env, t.issues));
    return o;
  });
}

Napi::Value ReadKfdProcsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "readKfdProcs", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::string root = RootArg(info, "readKfdProcs");
    std::vector<double> pids;
    bool filter = false;
    if (info.Length() >= 2 && !info[1].IsUndefined() && !info[1].IsNull()) {
      if (!info[1].IsArray()) throw Napi::TypeError::New(env, "readKfdProcs: pids must be an array of numbers");
      Napi::Array a = info[1].As<Napi::Array>();
      filter = true;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value v = a.Get(i);
        // like Set.has() in TS: anything but a number simply never matches
        if (v.IsNumber()) pids.push_back(v.As<Napi::Number>().DoubleValue());
      }
    }
    return ProcsToJs(env, ReadKfdProcs(root, filter ? &pids : nullptr));
  });
}

// ---------------------------------------------------------------------------------- ioctl

/** Node's shape for a failed system call: {code, errno (negative), syscall, path}. */
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  const char* name = strerrorname_np(err);
  if (name == nullptr) name = "EUNKNOWN";
  // Node (libuv) words it "ENOENT: no such file or directory, open '/x'": lowercase first letter
  std::string text = std::strerror(err);
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] - 'A' + 'a');
  Napi::Error e = Napi::Error::New(env, std::string(name) + ": " + text + ", " + syscall + " '" + path + "'");
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("path", Napi::String::New(env, path));
  return e;
}

Napi::Value KfdVersionJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = "/dev/kfd";
  if (info.Length() >= 1 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "kfdVersion: devPath must be a string");
    path = info[0].As<Napi::String>().Utf8Value();
  }
  const KfdVersionResult r = KfdVersion(path);
  if (r.err != 0) throw ErrnoError(env, r.err, r.syscall, path);
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", Napi::Number::New(env, r.major));
  o.Set("minor", Napi::Number::New(env, r.minor));
  return o;
}

// ---------------------------------------------------------------------------------- priority ioctls

std::string HexU64(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

/** devPath argument at index i: undefined -> /dev/kfd, else a string. */
std::string DevPathArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || info[i].IsUndefined()) return "/dev/kfd";
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": devPath must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

/** A u32 property: a Number that is an integer in [0, 2^32). `fallback` < 0 = required. */
uint32_t U32Prop(Napi::Object o, const char* key, const char* fn, int64_t fallback = -1) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && fallback >= 0) return static_cast<uint32_t>(fallback);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(fn) + ": " + key + " must be an integer (0 .. 2^32-1)");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(o.Env(), std::string(fn) + ": " + key + " must be an integer (0 .. 2^32-1)");
  }
  return static_cast<uint32_t>(d);
}

/** A u64 address property: a BigInt, or a Number that is a safe non-negative integer. */
uint64_t U64Prop(Napi::Object o, const char* key, const char* fn) {
  Napi::Value v = o.Get(key);
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(o.Env(), std::string(fn) + ": " + key + " must fit 64 bits unsigned");
    return u;
  }
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 9007199254740991.0 && d == static_cast<double>(static_cast<uint64_t>(d))) return static_cast<uint64_t>(d);
    throw Napi::RangeError::New(o.Env(), std::string(fn) + ": " + key + " must be a non-negative safe integer or a BigInt");
  }
  throw Napi::TypeError::New(o.Env(), std::string(fn) + ": " + key + " must be a BigInt or a number");
}

/** Refused before any system call: {code (what the kernel would answer), errno, op, phase}. */
Napi::Error ArgErrorJs(Napi::Env env, const ArgError& a, const char* fn, const char* op) {
  const char* name = strerrorname_np(a.err);
  if (name == nullptr) name = "EUNKNOWN";
  Napi::Error e = Napi::Error::New(env, std::string(fn) + ": " + a.message);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, -a.err));
  e.Set("op", Napi::String::New(env, op));
  e.Set("phase", Napi::String::New(env, "arguments"));
  return e;
}

Napi::Error IoctlErrorJs(Napi::Env env, const IoctlResult& r, const std::string& path) {
  Napi::Error e = ErrnoError(env, r.err, r.syscall ? r.syscall : "ioctl", path);
  if (r.op) e.Set("op", Napi::String::New(env, r.op));
  e.Set("phase", Napi::String::New(env, "syscall"));
  return e;
}

uapi::UpdateQueueArgs UpdateQueueArgsFromJs(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsObject()) {
    throw Napi::TypeError::New(env, std::string(fn) + ": args must be {queueId, ringBase, ringSize, percentage, priority, pm4TargetXcc?}");
  }
  Napi::Object o = info[i].As<Napi::Object>();
  const uint32_t queue_id = U32Prop(o, "queueId", fn);
  const uint64_t ring_base = U64Prop(o, "ringBase", fn);
  const uint32_t ring_size = U32Prop(o, "ringSize", fn);
  const uint32_t percentage = U32Prop(o, "percentage", fn);
  const uint32_t priority = U32Prop(o, "priority", fn);
  const uint32_t xcc = U32Prop(o, "pm4TargetXcc", fn, 0);
  uapi::UpdateQueueArgs args{};
  ArgError err;
  if (!BuildUpdateQueueArgs(queue_id, ring_base, ring_size, percentage, priority, xcc, &args, &err)) throw ArgErrorJs(env, err, fn, "UPDATE_QUEUE");
  return args;
}

/** What was (or would be) sent: decoded fields and the 24 raw bytes. */
Napi::Object UpdateQueueArgsToJs(Napi::Env env, const uapi::UpdateQueueArgs& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("queueId", Napi::Number::New(env, a.queue_id));
  o.Set("ringBase", HexU64(a.ring_base_address));
  o.Set("ringSize", Napi::Number::New(env, a.ring_size));
  o.Set("percentage", Napi::Number::New(env, a.queue_percentage & 0xFF));
  o.Set("pm4TargetXcc", Napi::Number::New(env, (a.queue_percentage >> 8) & 0xFF));
  o.Set("queuePercentageWord", Napi::Number::New(env, a.queue_percentage));
  o.Set("priority", Napi::Number::New(env, a.queue_priority));
  o.Set("request", Napi::Number::New(env, uapi::kIocUpdateQueue));
  o.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&a), sizeof a));
  return o;
}

Napi::Value KfdUpdateQueueArgsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "kfdUpdateQueueArgs", [&]() -> Napi::Value {
    return UpdateQueueArgsToJs(info.Env(), UpdateQueueArgsFromJs(info, 0, "kfdUpdateQueueArgs"));
  });
}

Napi::Value KfdUpdateQueueJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "kfdUpdateQueue", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::string path = DevPathArg(info, 0, "kfdUpdateQueue");
    const uapi::UpdateQueueArgs args = UpdateQueueArgsFromJs(info, 1, "kfdUpdateQueue");
    const IoctlResult r = UpdateQueue(path, args);
    if (r.err != 0) throw IoctlErrorJs(env, r, path);
    return UpdateQueueArgsToJs(env, args);
  });
}

Napi::Array SnapshotEntriesToJs(Napi::Env env, const std::vector<QueueSnapshotEntry>& v) {
  using E = uapi::QueueSnapshotEntry;
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const QueueSnapshotEntry& q = v[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("validBytes", Napi::Number::New(env, q.valid_bytes));
    // a field is set only when KFD copied all of its bytes
    if (q.Has(offsetof(E, queue_id), 4)) o.Set("queueId", Napi::Number::New(env, q.e.queue_id));
    if (q.Has(offsetof(E, gpu_id), 4)) o.Set("gpuId", Napi::Number::New(env, q.e.gpu_id));
    if (q.Has(offsetof(E, queue_type), 4)) {
      o.Set("queueType", Napi::Number::New(env, q.e.queue_type));
      o.Set("type", QueueSnapshotTypeName(q.e.queue_type));
    }
    if (q.Has(offsetof(E, ring_base_address), 8)) o.Set("ringBase", HexU64(q.e.ring_base_address));
    if (q.Has(offsetof(E, ring_size), 4)) o.Set("ringSize", Napi::Number::New(env, q.e.ring_size));
    if (q.Has(offsetof(E, write_pointer_address), 8)) o.Set("writePointerAddress", HexU64(q.e.write_pointer_address));
    if (q.Has(offsetof(E, read_pointer_address), 8)) o.Set("readPointerAddress", HexU64(q.e.read_pointer_address));
    if (q.Has(offsetof(E, ctx_save_restore_address), 8)) o.Set("ctxSaveRestoreAddress", HexU64(q.e.ctx_save_restore_address));
    if (q.Has(offsetof(E, ctx_save_restore_area_size), 4)) o.Set("ctxSaveRestoreSize", Napi::Number::New(env, q.e.ctx_save_restore_area_size));
    if (q.Has(offsetof(E, exception_status), 8)) o.Set("exceptionStatus", HexU64(q.e.exception_status));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

Napi::Value ParseKfdQueueSnapshotJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "parseKfdQueueSnapshot", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "parseKfdQueueSnapshot: buffer must be a Buffer or Uint8Array");
    InputBytes in = GetBytes(info, "parseKfdQueueSnapshot");
    if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "parseKfdQueueSnapshot: entrySize must be a number");
    const double es = info[1].As<Napi::Number>().DoubleValue();
    if (!(es >= 0 && es <= 65536) || es != static_cast<double>(static_cast<uint32_t>(es))) {
      throw Napi::RangeError::New(env, "parseKfdQueueSnapshot: entrySize must be an integer 0..65536");
    }
    const QueueSnapshotParse p = ParseQueueSnapshotEntries(reinterpret_cast<const uint8_t*>(in.data), in.len, static_cast<uint32_t>(es));
    Napi::Object o = Napi::Object::New(env);
    o.Set("entries", SnapshotEntriesToJs(env, p.entries));
    if (!p.error.empty()) o.Set("error", p.error);
    return o;
  });
}

Napi::Value KfdQueueSnapshotSelfJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "kfdQueueSnapshotSelf", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::string path = DevPathArg(info, 0, "kfdQueueSnapshotSelf");
    const QueueSnapshotSelfResult r = QueueSnapshotSelf(path);
    if (r.err != 0) {
      Napi::Error e = IoctlErrorJs(env, r, path);
      e.Set("debugEnabled", Napi::Boolean::New(env, r.enabled));
      e.Set("debugDisabled", Napi::Boolean::New(env, r.disabled));
      if (r.disable_err != 0) {
        const char* name = strerrorname_np(r.disable_err);
        e.Set("disableCode", Napi::String::New(env, name ? name : "EUNKNOWN"));
      }
      throw e;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("entries", SnapshotEntriesToJs(env, r.entries));
    o.Set("entrySize", Napi::Number::New(env, r.entry_size));
    o.Set("runtimeState", Napi::Number::New(env, r.runtime_info.runtime_state));
    o.Set("ttmpSetup", Napi::Number::New(env, r.runtime_info.ttmp_setup));
    o.Set("snapshotCalls", Napi::Number::New(env, r.snapshot_calls));
    return o;
  });
}

// ---------------------------------------------------------------------------------- snapshot join

/** Bytes of argument i when it is a Uint8Array; false for null/undefined (the file was not read). */
bool OptionalBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, InputBytes* in) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (info[i].IsTypedArray()) {
    NAPI_THROW_IF_FAILED(info.Env(), napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr), false);
  }
  if (!info[i].IsTypedArray() || (type != napi_uint8_array && type != napi_uint8_clamped_array)) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i + 1) + " must be a Buffer/Uint8Array or null");
  }
  in->data = static_cast<const char*>(data);
  in->len = length;
  return true;
}

/** Argument i as a table (Float64Array) copy; false for null/undefined. */
bool OptionalTable(const Napi::CallbackInfo& info, size_t i, const char* fn, std::vector<double>* out) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (info[i].IsTypedArray()) {
    NAPI_THROW_IF_FAILED(info.Env(), napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr), false);
  }
  if (!info[i].IsTypedArray() || type != napi_float64_array) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i + 1) + " must be a Float64Array or null");
  }
  const double* d = static_cast<const double*>(data);
  out->assign(d, d + length);
  return true;
}

/**
 * Argument i as qid hints, packed so that any number of them crosses in two values (src/kfd/join.ts
 * packQidHints): { rows: Float64Array of (pid, qid) pairs, identities: one string holding each
 * hint's debugfs identity followed by '\n', in row order }; false when null/undefined.
 */
bool OptionalHints(const Napi::CallbackInfo& info, size_t i, const char* fn, QidHints* out) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return false;
  auto bad = [&](const char* why) {
    return Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i + 1) + " must be packed qid hints {rows, identities} or null (" + why + ")");
  };
  if (!info[i].IsObject() || info[i].IsArray()) throw bad("not an object");
  const Napi::Object o = info[i].As<Napi::Object>();
  const Napi::Value rows = o.Get("rows");
  const Napi::Value ids = o.Get("identities");
  if (!rows.IsTypedArray() || rows.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw bad("rows is not a Float64Array");
  if (!ids.IsString()) throw bad("identities is not a string");
  const Napi::Float64Array r = rows.As<Napi::Float64Array>();
  if (r.ElementLength() % 2 != 0) throw bad("rows is not (pid, qid) pairs");
  const std::string text = ids.As<Napi::String>().Utf8Value();
  size_t at = 0;
  for (size_t k = 0; k < r.ElementLength(); k += 2) {
    const size_t end = text.find('\n', at);
    if (end == std::string::npos) throw bad("fewer identities than rows");
    (*out)[r[k]][text.substr(at, end - at)] = r[k + 1];
    at = end + 1;
  }
  if (at != text.size()) throw bad("more identities than rows");
  return true;
}

/** Hints packed as OptionalHints takes them, by pid, then identity (a stable order for tests and callers). */
Napi::Object HintsToJs(Napi::Env env, const QidHints& hints) {
  std::vector<std::pair<double, const std::unordered_map<std::string, double>*>> pids;
  size_t n = 0;
  for (const auto& [pid, m] : hints) {
    pids.emplace_back(pid, &m);
    n += m.size();
  }
  std::sort(pids.begin(), pids.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Napi::Float64Array rows = Napi::Float64Array::New(env, 2 * n);
  std::string identities;
  size_t k = 0;
  for (const auto& [pid, m] : pids) {
    std::vector<std::pair<std::string, double>> ids(m->begin(), m->end());
    std::sort(ids.begin(), ids.end());
    for (const auto& [identity, qid] : ids) {
      rows[k++] = pid;
      rows[k++] = qid;
      identities += identity;
      identities += '\n';
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", rows);
  o.Set("identities", Napi::String::New(env, identities));
  return o;
}

/** issues, suppressed, lines of one parsed file (what a snapshot keeps of it). */
Napi::Object CommonToJs(Napi::Env env, const RawCommon& r) {
  Napi::Object o = Napi::Object::New(env);
  SetCommon(env, o, r);
  return o;
}

Napi::Array StringsToJs(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

/**
 * The join's numeric tables and the mqds pids in ONE Float64Array: a header of (offset, length)
 * pairs, in the order unpackJoinTables in src/kfd/join.ts reads them, then the tables. Each typed
 * array made through N-API costs about a microsecond or two, a dozen of them a good part of the
 * whole call on small inputs.
 */
Napi::Float64Array PackJoinTables(Napi::Env env, const JoinTables& t, const std::vector<double>& mqds_pids) {
  const std::vector<double>* parts[] = {&t.queues, &t.addresses, &t.hqds, &t.processes, &t.runlist,
                                        &t.unmatched_hqds, &t.unmatched_runlist, &t.nodes, &t.xccs, &mqds_pids};
  constexpr size_t kParts = sizeof(parts) / sizeof(parts[0]);
  size_t total = 2 * kParts;
  for (const auto* p : parts) total += p->size();
  Napi::Float64Array a = Napi::Float64Array::New(env, total);
  double* out = a.Data();
  size_t at = 2 * kParts;
  for (size_t i = 0; i < kParts; ++i) {
    out[2 * i] = static_cast<double>(at);
    out[2 * i + 1] = static_cast<double>(parts[i]->size());
    if (!parts[i]->empty()) std::memcpy(out + at, parts[i]->data(), parts[i]->size() * sizeof(double));
    at += parts[i]->size();
  }
  return a;
}

/**
 * The sysfs side and qid hints of a join from arguments first .. first+3 (topology, procs,
 * procQueues, qidHints), checked (CheckJoinSysfs), as `in` with no debugfs tables yet. Not
 * copyable: `in` points into it.
 */
struct JoinArgs {
  std::vector<double> topology, procs, proc_queues;
  QidHints hints;
  bool have_hints = false;
  JoinInput in;

  JoinArgs(const Napi::CallbackInfo& info, size_t first, const char* fn) {
    const bool have_topology = OptionalTable(info, first, fn, &topology);
    const bool have_procs = OptionalTable(info, first + 1, fn, &procs);
    OptionalTable(info, first + 2, fn, &proc_queues);
    have_hints = OptionalHints(info, first + 3, fn, &hints);
    if (have_topology) in.topology = &topology;
    if (have_procs) {
      in.procs = &procs;
      in.proc_queues = &proc_queues;
    }
    if (have_hints) in.qid_hints = &hints;
    if (const char* bad = CheckJoinSysfs(in)) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + bad);
  }
  JoinArgs(const JoinArgs&) = delete;
  JoinArgs& operator=(const JoinArgs&) = delete;
};

/**
 * JoinQueues(in) as NativeJoinTables in src/kfd/join.ts (without the *File entries); with hints,
 * qidHints: those hints with what this join established added.
 */
Napi::Object JoinToJs(Napi::Env env, const JoinInput& in, QidHints* hints) {
  const JoinTables t = JoinQueues(in);
  std::vector<double> mqds_pids;
  if (in.mqds) {
    for (size_t p = 0; p < in.mqds->procs.size(); p += kMqdsProcCols) mqds_pids.push_back(in.mqds->procs[p + MqdsProcCol::pid]);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("tables", PackJoinTables(env, t, mqds_pids));
  o.Set("runlistEngines", StringsToJs(env, t.runlist_engines));
  o.Set("warnings", StringsToJs(env, t.warnings));
  if (hints) {
    LearnQidHints(t, hints);
    o.Set("qidHints", HintsToJs(env, *hints));
  }
  return o;
}

// joinKfdDumps(mqds, hqds, rls, topology, procs, procQueues, qidHints?): the three debugfs files
// parsed and joined in one call (src/kfd/join.ts joinDumps); every argument may be null (not
// read). With qidHints (packed: OptionalHints) the join uses them ('history') and the result's
// qidHints holds them with what this join established added (LearnQidHints), packed the same way.
Napi::Value JoinKfdDumpsJs(const Napi::CallbackInfo& info) {
  return Guarded(info, "joinKfdDumps", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    InputBytes bytes[3];
    bool have[3];
    for (size_t i = 0; i < 3; ++i) have[i] = OptionalBytes(info, i, "joinKfdDumps", &bytes[i]);
    JoinArgs args(info, 3, "joinKfdDumps");
    JoinInput& in = args.in;
    MqdsRaw mqds;
    HqdsRaw hqds;
    RlsRaw rls;
    if (have[0]) in.mqds = &(mqds = ParseMqds(bytes[0].data, bytes[0].len));
    if (have[1]) in.hqds = &(hqds = ParseHqds(bytes[1].data, bytes[1].len));
    if (have[2]) in.rls = &(rls = ParseRls(bytes[2].data, bytes[2].len));
    Napi::Object o = JoinToJs(env, in, args.have_hints ? &args.hints : nullptr);
    o.Set("mqdsFile", have[0] ? Napi::Value(CommonToJs(env, mqds)) : env.Null());
    o.Set("hqdsFile", have[1] ? Napi::Value(CommonToJs(env, hqds)) : env.Null());
    o.Set("rlsFile", have[2] ? Napi::Value(CommonToJs(env, rls)) : env.Null());
    return o;
  });
}

}  // namespace

Napi::Object JoinArgsToJs(const Napi::CallbackInfo& info, size_t first, const char* fn, const MqdsRaw* mqds, const HqdsRaw* hqds, const RlsRaw* rls) {
  JoinArgs args(info, first, fn);
  args.in.mqds = mqds;
  args.in.hqds = hqds;
  args.in.rls = rls;
  // the hints are used, not handed back: a trace learns from the joined queues itself
  return JoinToJs(info.Env(), args.in, nullptr);
}

namespace {

// ---------------------------------------------------------------------------------- columns

// kfdTableColumns(): { [table]: column names in order } for every table of columns.h, so that
// test/kfd-columns.test.ts can check src/kfd/columns.ts against the layouts this addon was built with.
Napi::Value KfdTableColumnsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  for (const TableColumns& t : kTables) {
    Napi::Array names = Napi::Array::New(env, t.count);
    for (size_t i = 0; i < t.count; ++i) names.Set(static_cast<uint32_t>(i), t.names[i]);
    o.Set(t.table, names);
  }
  return o;
}

}  // namespace

void RegisterBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("joinKfdDumps", Napi::Function::New(env, JoinKfdDumpsJs, "joinKfdDumps"));
  exports.Set("kfdTableColumns", Napi::Function::New(env, KfdTableColumnsJs, "kfdTableColumns"));
  exports.Set("parseMqds", Napi::Function::New(env, ParseMqdsJs, "parseMqds"));
  exports.Set("parseHqds", Napi::Function::New(env, ParseHqdsJs, "parseHqds"));
  exports.Set("parseRls", Napi::Function::New(env, ParseRlsJs, "parseRls"));
  exports.Set("readTopology", Napi::Function::New(env, ReadTopologyJs, "readTopology"));
  exports.Set("readKfdProcs", Napi::Function::New(env, ReadKfdProcsJs, "readKfdProcs"));
  exports.Set("kfdVersion", Napi::Function::New(env, KfdVersionJs, "kfdVersion"));
  exports.Set("kfdUpdateQueueArgs", Napi::Function::New(env, KfdUpdateQueueArgsJs, "kfdUpdateQueueArgs"));
  exports.Set("kfdUpdateQueue", Napi::Function::New(env, KfdUpdateQueueJs, "kfdUpdateQueue"));
  exports.Set("parseKfdQueueSnapshot", Napi::Function::New(env, ParseKfdQueueSnapshotJs, "parseKfdQueueSnapshot"));
  exports.Set("kfdQueueSnapshotSelf", Napi::Function::New(env, KfdQueueSnapshotSelfJs, "kfdQueueSnapshotSelf"));
}

}  // namespace kfd
}  // namespace gpucolo
