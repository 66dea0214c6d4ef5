// gpucolo_floor: the latency floor of a dispatch backend, without Node and without the engine.
// N round trips of launch -> busy-poll until done on one stream (one kernel in flight at a time),
// timed on the host with CLOCK_MONOTONIC from just before launch() to the poll() that reports
// done. Prints one JSON line; what the JS-visible round trip is compared against.
//
//   gpucolo_floor [cpu | /path/to/gpucolo_<x>.so] [--n N] [--warmup W] [--spin NS] [--blocks B]
//                 [--device D] [--priority P]
//
// Percentiles are nearest rank over the N measured round trips (W warm-up ones are dropped).
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dispatch/cpu_backend.h"
#include "dispatch/gpu_plugin.h"

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double Pct(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return sorted[rank - 1];
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

int Fail(const std::string& backend, const std::string& what) {
  std::printf("{\"backend\":%s,\"error\":%s}\n", JsonString(backend).c_str(), JsonString(what).c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: gpucolo_floor [cpu | /path/to/plugin.so] [--n N] [--warmup W] [--spin NS] [--blocks B] "
               "[--device D] [--priority P]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "cpu";
  uint64_t n = 10000, warmup = 1000, spin = 0;
  uint32_t blocks = 1;
  int device = 0, priority = 0;
  bool priority_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](uint64_t* v) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      *v = std::strtoull(argv[++i], &end, 10);
      return end != nullptr && *end == '\0';
    };
    uint64_t v = 0;
    if (a == "--n") {
      if (!next(&n) || n == 0) return Usage();
    } else if (a == "--warmup") {
      if (!next(&warmup)) return Usage();
    } else if (a == "--spin") {
      if (!next(&spin)) return Usage();
    } else if (a == "--blocks") {
      if (!next(&v) || v == 0 || v > 0xffffffffu) return Usage();
      blocks = static_cast<uint32_t>(v);
    } else if (a == "--device") {
      if (!next(&v)) return Usage();
      device = static_cast<int>(v);
    } else if (a == "--priority") {
      if (i + 1 >= argc) return Usage();
      priority = std::atoi(argv[++i]);
      priority_set = true;
    } else if (a == "-h" || a == "--help") {
      return Usage();
    } else if (!a.empty() && a[0] != '-') {
      backend = a;
    } else {
      return Usage();
    }
  }

  const gpucolo_gpu_api* api = nullptr;
  if (backend == "cpu") {
    api = gpucolo::dispatch::CpuBackendApi();
  } else {
    void* h = dlopen(backend.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return Fail(backend, std::string("dlopen: ") + dlerror());
    auto get = reinterpret_cast<gpucolo_gpu_get_api_fn>(dlsym(h, GPUCOLO_GPU_GET_API));
    if (get == nullptr) return Fail(backend, std::string("dlsym " GPUCOLO_GPU_GET_API ": ") + dlerror());
    api = get();
    if (api == nullptr) return Fail(backend, GPUCOLO_GPU_GET_API " returned NULL");
    if (api->abi != GPUCOLO_GPU_ABI)
      return Fail(backend, "plugin ABI " + std::to_string(api->abi) + ", expected " + std::to_string(GPUCOLO_GPU_ABI));
  }

  char err[512] = {0};
  int rc = api->init(err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("init: ") + err);
  gpucolo_device_info info{};
  rc = api->device_info(device, &info, err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("device_info: ") + err);
  gpucolo_stream_opts o{};
  o.device = device;
  o.priority = priority_set ? priority : std::min(std::max(0, std::min(info.priority_least, info.priority_greatest)),
                                                  std::max(info.priority_least, info.priority_greatest));
  gpucolo_stream* s = nullptr;
  rc = api->stream_create(&o, &s, err, sizeof(err));
  if (rc != 0) return Fail(backend, std::string("stream_create: ") + err);

  const gpucolo_kernel k{spin, blocks, 64};
  std::vector<double> rt, dev;
  rt.reserve(n);
  dev.reserve(n);
  for (uint64_t i = 0; i < warmup + n; ++i) {
    const uint32_t slot = static_cast<uint32_t>(i % GPUCOLO_SLOTS);
    uint64_t ds = 0, de = 0;
    const uint64_t t0 = NowNs();
    rc = api->launch(s, &k, slot, err, sizeof(err));
    if (rc != 0) {
      api->stream_destroy(s);
      return Fail(backend, std::string("launch: ") + err);
    }
    int p = 0;
    while ((p = api->poll(s, slot, &ds, &de)) == 0) {
    }
    const uint64_t t1 = NowNs();
    if (p < 0) {
      api->stream_destroy(s);
      return Fail(backend, "poll failed with status " + std::to_string(p));
    }
    if (i >= warmup) {
      rt.push_back(static_cast<double>(t1 - t0));
      dev.push_back(static_cast<double>(de - ds));
    }
  }
  api->stream_destroy(s);
  api->shutdown();

  double sum = 0;
  for (double v : rt) sum += v;
  std::vector<double> sorted = rt;
  std::sort(sorted.begin(), sorted.end());
  std::sort(dev.begin(), dev.end());
  std::printf(
      "{\"backend\":%s,\"device\":%s,\"n\":%llu,\"warmup\":%llu,\"spin_ns\":%llu,\"blocks\":%u,"
      "\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"mean_ns\":%.1f,\"min_ns\":%.0f,\"max_ns\":%.0f,\"device_p50_ns\":%.0f}\n",
      JsonString(api->backend).c_str(), JsonString(info.name).c_str(), static_cast<unsigned long long>(n),
      static_cast<unsigned long long>(warmup), static_cast<unsigned long long>(spin), blocks, Pct(sorted, 0.5),
      Pct(sorted, 0.99), sum / static_cast<double>(rt.size()), sorted.front(), sorted.back(), Pct(dev, 0.5));
  return 0;
}
