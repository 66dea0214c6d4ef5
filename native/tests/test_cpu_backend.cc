// The cpu dispatch backend through its C ABI: device info, argument errors, kernel timing, block
// splitting, in-stream order, priority and CU-mask dispatch, synchronize timeouts and the
// kernel-abort path of stream_destroy; the pool has 2 workers as on a 2-core CI runner. Checks
// that hold whatever the scheduler does (order, lower bounds, bounds against a 60 s kernel that a
// broken abort would wait out) are CHECKs; the ones that need the workers to get their cores (two
// blocks side by side, a free worker taking a kernel at once) are CHECK_TIMING (host_load.h):
// judged on a quiet host, skipped on a busy one.
#include <time.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/cpu_backend.h"
#include "harness.h"
#include "host_load.h"
#include "test_util.h"

using gpucolo::dispatch::CpuBackendApi;
using gpucolo::dispatch::CpuBackendConfigure;
using gpucolo::dispatch::CpuBackendCurrentOptions;
using gpucolo::dispatch::CpuBackendDefaultOptions;
using gpucolo::dispatch::CpuBackendOptions;

namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000000;

uint64_t Now() { return gpucolo_test::MonotonicNs(); }

const gpucolo_gpu_api* Api() { return CpuBackendApi(); }

/**
 * A fresh pool of n workers; shutdown() first drops streams a failed test may have left.
 * Functional tests run the workers at nice 0, so that foreign CPU load on a shared host slows
 * them down instead of starving them (their timing bounds are loose); the priority scenario
 * keeps the default (nice 19, or GPUCOLO_CPU_WORKER_NICE), which it is about.
 */
void UseWorkers(int n, bool functional = true) {
  CpuBackendApi()->shutdown();
  CpuBackendOptions o = CpuBackendDefaultOptions();  // with GPUCOLO_CPU_* overrides
  o.workers = n;
  if (functional) o.worker_nice = 0;
  CHECK_EQ(CpuBackendConfigure(o), 0);
  CHECK_EQ(CpuBackendCurrentOptions().workers, n);
}

gpucolo_stream* MakeStream(int priority, const std::vector<uint32_t>& mask = {}) {
  gpucolo_stream_opts o{};
  o.priority = priority;
  o.cu_mask = mask.empty() ? nullptr : mask.data();
  o.cu_mask_words = static_cast<uint32_t>(mask.size());
  gpucolo_stream* s = nullptr;
  char err[256] = {0};
  const int rc = Api()->stream_create(&o, &s, err, sizeof(err));
  if (rc != 0) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("stream_create: ") + err);
  return s;
}

void Launch(gpucolo_stream* s, uint64_t spin, uint32_t blocks, uint32_t slot) {
  gpucolo_kernel k{spin, blocks, 64};
  char err[256] = {0};
  const int rc = Api()->launch(s, &k, slot, err, sizeof(err));
  if (rc != 0) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("launch: ") + err);
}

struct Times {
  uint64_t start = 0, end = 0;
};

/**
 * Polls (with short sleeps: the test thread must not take a core from the workers) until done.
 * The default deadline only guards against a hang; tests that prove a kernel was aborted pass a
 * shorter one, still far below the 60 s the aborted kernel would have spun.
 */
Times Wait(gpucolo_stream* s, uint32_t slot, uint64_t timeout_ns = 60000 * kMs) {
  const uint64_t deadline = Now() + timeout_ns;
  Times t;
  for (;;) {
    const int rc = Api()->poll(s, slot, &t.start, &t.end);
    if (rc == 1) return t;
    if (rc < 0) ::gpucolo_test::Fail(__FILE__, __LINE__, "poll error " + std::to_string(rc));
    if (Now() > deadline) ::gpucolo_test::Fail(__FILE__, __LINE__, "slot " + std::to_string(slot) + " never completed");
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

bool OneLine(const char* s) { return s[0] != '\0' && std::strchr(s, '\n') == nullptr; }

}  // namespace

TEST(cpu_backend_device_info) {
  UseWorkers(2);
  const gpucolo_gpu_api* api = Api();
  CHECK_EQ(api->abi, GPUCOLO_GPU_ABI);
  CHECK_EQ(std::string(api->backend), std::string("cpu"));
  char err[256] = {0};
  CHECK_EQ(api->init(err, sizeof(err)), 0);
  CHECK_EQ(api->init(err, sizeof(err)), 0);  // idempotent
  int n = 0;
  CHECK_EQ(api->device_count(&n, err, sizeof(err)), 0);
  CHECK_EQ(n, 1);
  gpucolo_device_info info{};
  CHECK_EQ(api->device_info(0, &info, err, sizeof(err)), 0);
  CHECK_EQ(info.compute_units, 2);
  CHECK_EQ(info.priority_least, 0);
  CHECK_EQ(info.priority_greatest, 15);
  CHECK_EQ(info.supports_cu_mask, 1);
  CHECK_EQ(info.supports_sm_partition, 0);
  CHECK(std::string(info.name).find("cpu") != std::string::npos);
  CHECK(info.arch[0] != '\0');
  CHECK(info.timer_resolution_ns > 0);
  // fill: a worker runs one block at a time, so one resident block per "CU", whatever the block size
  CHECK_EQ(info.max_threads_per_block, 1024);
  CHECK_EQ(info.fill_threads_per_block, 64);
  CHECK_EQ(info.max_active_blocks_per_cu, 1);
  CHECK_EQ(info.num_xcc, 1);
  CHECK_EQ(info.cu_mask_bits_per_unit, 1);
  int per_cu = 0;
  CHECK_EQ(api->max_active_blocks(0, 256, &per_cu, err, sizeof(err)), 0);
  CHECK_EQ(per_cu, 1);
  CHECK_EQ(api->max_active_blocks(0, 0, &per_cu, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK_EQ(api->max_active_blocks(1, 64, &per_cu, err, sizeof(err)), GPUCOLO_ERR_NO_DEVICE);
  CHECK_EQ(api->device_info(1, &info, err, sizeof(err)), GPUCOLO_ERR_NO_DEVICE);
  CHECK(OneLine(err));
  uint64_t t = 0;
  const uint64_t before = Now();
  CHECK_EQ(api->read_device_time(0, &t, err, sizeof(err)), 0);
  CHECK(t >= before && t <= Now());
  CHECK_EQ(api->read_device_time(3, &t, err, sizeof(err)), GPUCOLO_ERR_NO_DEVICE);

  UseWorkers(3);  // no stream alive: the pool restarts with the new size
  CHECK_EQ(api->device_info(0, &info, err, sizeof(err)), 0);
  CHECK_EQ(info.compute_units, 3);
  UseWorkers(2);
  CpuBackendOptions bad;
  bad.workers = -1;
  CHECK_EQ(CpuBackendConfigure(bad), GPUCOLO_ERR_INVALID);
}

TEST(cpu_backend_invalid_arguments) {
  UseWorkers(2);
  const gpucolo_gpu_api* api = Api();
  char err[256] = {0};
  gpucolo_stream* s = nullptr;
  gpucolo_stream_opts o{};
  o.priority = 16;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK(s == nullptr);
  CHECK(OneLine(err) && std::string(err).find("priority 16") != std::string::npos);
  o.priority = -1;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  o.priority = 0;
  o.sm_count = 4;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_UNSUPPORTED);
  CHECK(OneLine(err));
  o.sm_count = 0;
  const uint32_t no_worker = 0x4;  // worker 2 of 2 does not exist
  o.cu_mask = &no_worker;
  o.cu_mask_words = 1;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK(OneLine(err));
  o.cu_mask_words = 0;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  o.cu_mask = nullptr;
  o.device = 1;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof(err)), GPUCOLO_ERR_NO_DEVICE);
  CHECK_EQ(api->stream_create(nullptr, &s, err, sizeof(err)), GPUCOLO_ERR_INVALID);

  s = MakeStream(0);
  gpucolo_kernel k{0, 0, 1};
  err[0] = '\0';
  CHECK_EQ(api->launch(s, &k, 0, err, sizeof(err)), GPUCOLO_ERR_INVALID);  // zero blocks
  CHECK(OneLine(err) && std::string(err).find("0 blocks") != std::string::npos);
  CHECK_EQ(api->launch(s, nullptr, 0, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK(OneLine(err));
  k.blocks = 1;
  CHECK_EQ(api->launch(s, &k, GPUCOLO_SLOTS, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK(std::string(err).find("out of range") != std::string::npos);
  CHECK_EQ(api->launch(nullptr, &k, 0, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  // slot in use: a 60 s kernel (its stream's destroy aborts it), so that it is still in flight
  // however late this thread runs again (a 30 ms one could be done by then on a busy host)
  gpucolo_stream* busy = MakeStream(0);
  k.spin_ns = 60000 * kMs;
  CHECK_EQ(api->launch(busy, &k, 7, err, sizeof(err)), 0);
  CHECK_EQ(api->launch(busy, &k, 7, err, sizeof(err)), GPUCOLO_ERR_INVALID);
  CHECK(std::string(err).find("in flight") != std::string::npos);
  // a slot never launched
  uint64_t a = 0, b = 0;
  CHECK_EQ(api->poll(busy, 8, &a, &b), GPUCOLO_ERR_INVALID);
  CHECK_EQ(api->poll(busy, GPUCOLO_SLOTS, &a, &b), GPUCOLO_ERR_INVALID);
  CHECK_EQ(api->poll(busy, 7, &a, &b), 0);
  CHECK_EQ(api->stream_destroy(busy), 0);
  // done slots are reused
  k.spin_ns = 1 * kMs;
  CHECK_EQ(api->launch(s, &k, 7, err, sizeof(err)), 0);
  Wait(s, 7);
  CHECK_EQ(api->launch(s, &k, 7, err, sizeof(err)), 0);
  Wait(s, 7);
  // a null err buffer is fine
  CHECK_EQ(api->launch(s, nullptr, 0, nullptr, 0), GPUCOLO_ERR_INVALID);
  // with live streams the pool cannot be resized
  CpuBackendOptions opt;
  opt.workers = 4;
  CHECK_EQ(CpuBackendConfigure(opt), GPUCOLO_ERR_INVALID);
  CHECK_EQ(api->stream_destroy(s), 0);
  CHECK_EQ(api->stream_destroy(nullptr), GPUCOLO_ERR_INVALID);
}

TEST(cpu_backend_kernel_timing_blocks_and_order) {
  UseWorkers(2);
  const gpucolo_test::ForeignLoad load;
  const gpucolo_gpu_api* api = Api();
  gpucolo_stream* s = MakeStream(0);
  // empty kernel on an idle stream: done on return from launch, start == end
  const uint64_t t0 = Now();
  Launch(s, 0, 1, 0);
  uint64_t a = 0, b = 0;
  CHECK_EQ(api->poll(s, 0, &a, &b), 1);
  CHECK(a == b && a >= t0 && a <= Now());

  // one block spins its time; 2 blocks on 2 workers run side by side (serial would take 40 ms);
  // 3 blocks need 2 rounds. The upper bounds need the workers to run when due: timing checks.
  Launch(s, 3 * kMs, 1, 1);
  Times one = Wait(s, 1);
  CHECK(one.end - one.start >= 3 * kMs);
  CHECK_TIMING(one.end - one.start < 200 * kMs, load);
  Launch(s, 20 * kMs, 2, 2);
  Times two = Wait(s, 2);
  CHECK(two.end - two.start >= 20 * kMs);
  CHECK_TIMING(two.end - two.start < 39 * kMs, load);
  Launch(s, 3 * kMs, 3, 3);
  Times three = Wait(s, 3);
  CHECK(three.end - three.start >= 6 * kMs);

  // in order within a stream, including an empty kernel queued behind a busy one
  Launch(s, 20 * kMs, 2, 10);
  Launch(s, 0, 1, 11);
  Launch(s, 2 * kMs, 2, 12);
  const int queued = api->poll(s, 11, &a, &b);
  const uint64_t polled = Now();
  Times k10 = Wait(s, 10), k11 = Wait(s, 11), k12 = Wait(s, 12);
  // not done on return from launch (as on an idle stream) while the busy kernel runs; a poll that
  // came only after it ended (this thread descheduled for 20 ms on a busy host) cannot tell
  if (polled < k10.end) CHECK_EQ(queued, 0);
  CHECK(k11.start >= k10.end);
  CHECK(k12.start >= k11.end);
  char err[256] = {0};
  CHECK_EQ(api->synchronize(s, 0, err, sizeof(err)), 0);  // idle: immediate
  CHECK_EQ(api->stream_destroy(s), 0);
}

TEST(cpu_backend_priority_dispatch_without_preemption) {
  UseWorkers(2);
  const gpucolo_test::ForeignLoad load;
  // lp1's kernel occupies both workers; lp2's kernel is queued first, then hp's. The ABI does not
  // say when a block starts running, so "both lp1 blocks are running" is a 3 ms sleep: what
  // depends on it is a timing check; FIFO order among equal priorities holds whatever the timing.
  for (int hp_priority : {15, 0}) {
    gpucolo_stream* lp1 = MakeStream(0);
    gpucolo_stream* lp2 = MakeStream(0);
    gpucolo_stream* hp = MakeStream(hp_priority);
    Launch(lp1, 20 * kMs, 2, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // both lp1 blocks running
    Launch(lp2, 10 * kMs, 2, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Launch(hp, 1 * kMs, 1, 0);
    const Times l1 = Wait(lp1, 0), l2 = Wait(lp2, 0), h = Wait(hp, 0);
    if (hp_priority == 15) {
      CHECK_TIMING(h.start >= l1.start + 20 * kMs, load);  // running blocks are not preempted
      // hp takes the first free worker although lp2 was ready earlier
      CHECK_TIMING(h.start <= l2.start + kMs, load);
      CHECK_TIMING(h.end < l2.end, load);
    } else {
      // equal priority: kernels dispatch in the order they became ready (lp1's 20 ms blocks,
      // lp2's 10 ms blocks, then hp on the first worker lp2 frees)
      CHECK(h.start >= l1.start + 20 * kMs);
      CHECK(h.start >= l2.start);
      CHECK(h.start >= l2.start + 9 * kMs);  // behind both of lp2's 10 ms blocks
    }
    for (auto* s : {lp1, lp2, hp}) CHECK_EQ(Api()->stream_destroy(s), 0);
  }
}

TEST(cpu_backend_cu_mask) {
  UseWorkers(2);
  const gpucolo_test::ForeignLoad load;
  // two blocks restricted to worker 0 run one after the other
  gpucolo_stream* w0 = MakeStream(0, {0x1});
  Launch(w0, 4 * kMs, 2, 0);
  const Times serial = Wait(w0, 0);
  CHECK(serial.end - serial.start >= 8 * kMs);
  // a masked-off stream does not take the reserved worker: lp (worker 1 only) and hp (worker 0)
  gpucolo_stream* lp = MakeStream(0, {0x2});
  gpucolo_stream* hp = MakeStream(0, {0x1});
  Launch(lp, 20 * kMs, 4, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const uint64_t t = Now();
  Launch(hp, 1 * kMs, 1, 0);
  const Times h = Wait(hp, 0);
  CHECK_TIMING(h.start - t < 15 * kMs, load);  // did not wait for lp's 20 ms block (18 ms left)
  const Times l = Wait(lp, 0);
  CHECK(l.end - l.start >= 80 * kMs);  // 4 blocks x 20 ms on one worker
  // bits past the last worker are ignored
  gpucolo_stream* wide = MakeStream(0, {0xffffffffu, 0xffffffffu});
  Launch(wide, 20 * kMs, 2, 0);
  const Times wt = Wait(wide, 0);
  CHECK_TIMING(wt.end - wt.start < 39 * kMs, load);  // both workers
  // stream_info: the workers each mask enables (existing ones only), no SM partition
  gpucolo_stream_info si{};
  CHECK_EQ(Api()->stream_info(w0, &si), 0);
  CHECK_EQ(si.compute_units, 1);
  CHECK_EQ(si.sm_count, 0);
  CHECK_EQ(Api()->stream_info(wide, &si), 0);
  CHECK_EQ(si.compute_units, 2);
  CHECK_EQ(Api()->stream_info(nullptr, &si), GPUCOLO_ERR_INVALID);
  for (auto* s : {w0, lp, hp, wide}) CHECK_EQ(Api()->stream_destroy(s), 0);
}

TEST(cpu_backend_synchronize_timeout_and_abort) {
  UseWorkers(2);
  const gpucolo_gpu_api* api = Api();
  char err[256] = {0};
  gpucolo_stream* stuck = MakeStream(0);
  // a 60 s kernel on one worker: the upper bounds below (30 s) only break when something waits
  // for it instead of timing out or aborting it, never because the host is slow
  Launch(stuck, 60000 * kMs, 1, 0);
  uint64_t t = Now();
  CHECK_EQ(api->synchronize(stuck, 50 * kMs, err, sizeof(err)), GPUCOLO_ERR_TIMEOUT);
  CHECK(Now() - t >= 50 * kMs);
  CHECK(Now() - t < 30000 * kMs);
  CHECK(OneLine(err) && std::string(err).find("synchronize") != std::string::npos);
  CHECK_EQ(api->synchronize(stuck, 0, err, sizeof(err)), GPUCOLO_ERR_TIMEOUT);
  // the backend stays usable: the other worker runs new work meanwhile
  gpucolo_stream* other = MakeStream(15);
  Launch(other, 1 * kMs, 1, 0);
  Wait(other, 0);
  CHECK_EQ(api->synchronize(other, 60000 * kMs, err, sizeof(err)), 0);
  // destroy aborts the running kernel at once (not after its 60 s)
  t = Now();
  CHECK_EQ(api->stream_destroy(stuck), 0);
  CHECK(Now() - t < 30000 * kMs);
  // both workers are free again: work pinned to each one completes (long before the 60 s)
  gpucolo_stream* on0 = MakeStream(0, {0x1});
  gpucolo_stream* on1 = MakeStream(0, {0x2});
  Launch(on0, 1 * kMs, 1, 0);
  Launch(on1, 1 * kMs, 1, 0);
  Wait(on0, 0, 30000 * kMs);
  Wait(on1, 0, 30000 * kMs);
  // shutdown aborts what is left (not after 60 s) and the next use starts a fresh pool
  Launch(other, 60000 * kMs, 2, 2);
  t = Now();
  api->shutdown();
  CHECK(Now() - t < 30000 * kMs);
  CHECK_EQ(api->init(err, sizeof(err)), 0);
  gpucolo_stream* fresh = MakeStream(0);
  Launch(fresh, 1 * kUs, 1, 0);
  Wait(fresh, 0);
  CHECK_EQ(api->stream_destroy(fresh), 0);
}
