// Host-side helpers shared by the GPU plugins (gpucolo_cuda.so, gpucolo_hip.so). Header-only and
// free of any GPU runtime so nvcc, hipcc and g++ all compile it; everything is internal to each
// plugin (static / hidden), nothing here is exported.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "gpu_plugin.h"

namespace gpucolo_plugin {

/** Writes one NUL-terminated line into err (when given); newlines become spaces. */
inline void SetErr(char* err, unsigned errlen, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
inline void SetErr(char* err, unsigned errlen, const char* fmt, ...) {
  if (err == nullptr || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  for (char* p = err; *p; ++p)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

/** Copies src into a fixed char array, always NUL-terminated. */
inline void CopyStr(char* dst, size_t cap, const char* src) {
  if (cap == 0) return;
  std::snprintf(dst, cap, "%s", src ? src : "");
}

inline uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

/**
 * Waiting without burning a core for long: the first ~50 us spin (short kernels finish within
 * them and we see it at once), then sleeps that grow to 1 ms. `spins` counts calls.
 */
inline void Backoff(unsigned* spins) {
  const unsigned n = (*spins)++;
  if (n < 200) return;  // ~50 us of polling (each poll is a runtime call or a memory read)
  const long ns = n < 400 ? 20000L : n < 600 ? 200000L : 1000000L;
  timespec ts{0, ns};
  nanosleep(&ts, nullptr);
}

/** Reads an integer environment variable; `fallback` when unset or malformed. */
inline long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end != nullptr && *end == '\0') ? x : fallback;
}

/** Longest spin a probe kernel may request (1 hour): beyond that the request is a bug. */
constexpr uint64_t kMaxSpinNs = 3600ull * 1000000000ull;
/** How often a spinning block looks at the stream's cancel word (host memory, one PCIe read). */
constexpr uint64_t kCancelCheckNs = 100000ull;  // 100 us
/** After a synchronize() timeout: how long cancelled kernels get to drain. */
constexpr uint64_t kCancelGraceNs = 2000000000ull;  // 2 s
/** Upper bound for the internal synchronous helper kernels (read_device_time, timer probe). */
constexpr uint64_t kHelperTimeoutNs = 5000000000ull;  // 5 s

/**
 * One launch slot in host-mapped (pinned, device-visible) memory. The probe kernel's block 0
 * writes `start`, the last block to finish writes `end`, then `seq` (after a system-scope fence),
 * so the host sees complete times as soon as `seq` matches the launch's sequence number.
 */
struct alignas(8) HostSlot {
  uint64_t start;      // device timer at block 0's start (ticks on HIP, ns on CUDA)
  uint64_t end;        // device timer when the last block finished
  uint32_t seq;        // sequence number of the launch that completed here; written last
  uint32_t cancelled;  // 1 = a block stopped early because the stream was cancelled
};

/**
 * Validates a probe-kernel request; returns GPUCOLO_OK or GPUCOLO_ERR_INVALID with text.
 * max_threads is the runtime's limit for threads per block.
 */
inline int CheckKernel(const gpucolo_kernel* k, uint32_t slot, int max_threads, char* err, unsigned errlen) {
  if (k == nullptr) {
    SetErr(err, errlen, "launch: kernel is NULL");
    return GPUCOLO_ERR_INVALID;
  }
  if (slot >= GPUCOLO_SLOTS) {
    SetErr(err, errlen, "launch: slot %u out of range (0..%u)", slot, GPUCOLO_SLOTS - 1);
    return GPUCOLO_ERR_INVALID;
  }
  if (k->blocks == 0 || k->blocks > 0x7fffffffu) {
    SetErr(err, errlen, "launch: blocks must be 1..2147483647, got %u", k->blocks);
    return GPUCOLO_ERR_INVALID;
  }
  if (k->threads_per_block == 0 || k->threads_per_block > static_cast<uint32_t>(max_threads)) {
    SetErr(err, errlen, "launch: threads_per_block must be 1..%d, got %u", max_threads, k->threads_per_block);
    return GPUCOLO_ERR_INVALID;
  }
  if (k->spin_ns > kMaxSpinNs) {
    SetErr(err, errlen, "launch: spin_ns %llu exceeds the 1 h limit", static_cast<unsigned long long>(k->spin_ns));
    return GPUCOLO_ERR_INVALID;
  }
  return GPUCOLO_OK;
}

}  // namespace gpucolo_plugin
