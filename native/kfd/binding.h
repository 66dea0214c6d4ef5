// N-API surface of the kfd group: parseMqds, parseHqds, parseRls, readTopology, readKfdProcs,
// kfdVersion. The work is done by the plain C++ functions of this folder.
//
// The *ToJs converters below are the one conversion of the raw tables into the JS objects of
// src/kfd/raw.ts; the single-shot functions and the sampling thread (native/trace) both use them.
#pragma once

#include <napi.h>

#include "hqds_parser.h"
#include "mqds_parser.h"
#include "rls_parser.h"
#include "sysfs_reader.h"

namespace gpucolo {
namespace kfd {

void RegisterBinding(Napi::Env env, Napi::Object exports);

/**
 * MqdsRaw in raw.ts. Call on the JS thread; throws Napi::Error if N-API fails. words = false:
 * `words` is an empty Uint32Array (a consumer that joins in C++ needs the tables only; the words
 * are most of the bytes).
 */
Napi::Object MqdsToJs(Napi::Env env, const MqdsRaw& r, bool words = true);
/** HqdsRaw in raw.ts (words as for MqdsToJs). */
Napi::Object HqdsToJs(Napi::Env env, const HqdsRaw& r, bool words = true);
/** RlsRaw in raw.ts (words as for MqdsToJs). */
Napi::Object RlsToJs(Napi::Env env, const RlsRaw& r, bool words = true);
/** ProcsRaw in raw.ts. */
Napi::Object ProcsToJs(Napi::Env env, const ProcsRaw& p);

/**
 * The join (join.h) of tables already parsed, with the sysfs side and qid hints taken from the
 * arguments first .. first+3 of info (topology, procs, procQueues: Float64Array or null; qidHints:
 * packed {rows, identities} or null), as joinKfdDumps takes them; the result as joinKfdDumps
 * gives it, without the *File entries and without qidHints (the hints are used, not handed
 * back). Throws TypeError/RangeError on bad arguments.
 */
Napi::Object JoinArgsToJs(const Napi::CallbackInfo& info, size_t first, const char* fn, const MqdsRaw* mqds, const HqdsRaw* hqds, const RlsRaw* rls);

}  // namespace kfd
}  // namespace gpucolo
