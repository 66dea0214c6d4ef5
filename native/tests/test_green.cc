// SM partitions from green contexts without a GPU: green_partitions.h (the bookkeeping of
// gpucolo_cuda.so) on a fake driver, deferred_release.h, and the engine on the fake green plugin
// (fake_green_plugin.cc), which checks cuda.h's rule that a green context is current on one
// thread at a time while the engine's submitter threads launch on streams of one partition.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/engine.h"
#include "fake_green_driver.h"
#include "harness.h"
#include "plugins/cuda/green_partitions.h"
#include "plugins/deferred_release.h"

using gpucolo_plugin::GreenPartitions;
using gpucolo_test::FakeGreenDriver;

TEST(green_partitions_one_context_per_stream_and_sizes_as_made) {
  FakeGreenDriver drv;  // 132 SMs, multiples of 8
  GreenPartitions<FakeGreenDriver> parts(&drv);
  using Lease = GreenPartitions<FakeGreenDriver>::Lease;
  std::string err;
  // reserve 10% of 132 SMs: ceil(13.2) = 14 asked, 16 made
  Lease hp0, hp1, lp0, lp1;
  CHECK_EQ(parts.Acquire(14, &hp0, &err), GPUCOLO_OK);
  CHECK_EQ(hp0.part->sms, 16u);
  CHECK_EQ(hp0.part->request, 14);
  // a second stream asking the same: same partition (same SMs), its OWN context
  CHECK_EQ(parts.Acquire(14, &hp1, &err), GPUCOLO_OK);
  CHECK(hp1.part == hp0.part);
  CHECK(hp1.green != hp0.green);
  // the other side asks for the rest as computed from the request (132 - 14 = 118) and gets what
  // is actually left (116): more than what is left takes all that is left
  CHECK_EQ(parts.Acquire(118, &lp0, &err), GPUCOLO_OK);
  CHECK_EQ(lp0.part->sms, 116u);
  CHECK_EQ(parts.Acquire(118, &lp1, &err), GPUCOLO_OK);
  CHECK(lp1.part == lp0.part && lp1.green != lp0.green);
  CHECK_EQ(parts.PartitionCount(), 2u);
  // contexts: 4 streams + 1 holder of the rest after the first carve
  CHECK_EQ(parts.ContextCount(), 5u);
  CHECK_EQ(drv.greens.size(), 5u);
  // nothing left to carve: a third size is refused with the sizes held
  Lease extra;
  CHECK_EQ(parts.Acquire(8, &extra, &err), GPUCOLO_ERR_INVALID);
  CHECK(err.find("14 asked -> 16") != std::string::npos);
  CHECK(extra.part == nullptr);
  // partitions stay while any stream holds one; the last release resets the device
  parts.Release(&hp0);
  parts.Release(&lp0);
  parts.Release(&lp1);
  CHECK_EQ(parts.PartitionCount(), 2u);
  Lease again;
  CHECK_EQ(parts.Acquire(118, &again, &err), GPUCOLO_OK);  // the kept partition, no new carve
  CHECK_EQ(again.part->sms, 116u);
  parts.Release(&again);
  parts.Release(&hp1);
  CHECK_EQ(parts.PartitionCount(), 0u);
  CHECK_EQ(drv.greens.size(), 0u);  // holders went too
  CHECK_EQ(drv.destroyed_unknown, 0);
  // a fresh carve after the reset: the whole device again
  Lease all;
  CHECK_EQ(parts.Acquire(200, &all, &err), GPUCOLO_OK);
  CHECK_EQ(all.part->sms, 132u);
  parts.Release(&all);
}

TEST(green_partitions_errors_leave_nothing_behind) {
  FakeGreenDriver drv;
  GreenPartitions<FakeGreenDriver> parts(&drv);
  GreenPartitions<FakeGreenDriver>::Lease l;
  std::string err;
  CHECK_EQ(parts.Acquire(0, &l, &err), GPUCOLO_ERR_INVALID);
  drv.fail_create_in = 2;  // a new carve creates the rest's holder first, then the stream's context
  CHECK_EQ(parts.Acquire(16, &l, &err), GPUCOLO_ERR_RUNTIME);
  CHECK(err.find("injected") != std::string::npos);
  CHECK(l.part == nullptr);
  CHECK_EQ(parts.PartitionCount(), 0u);  // the carve nobody uses was undone
  CHECK_EQ(drv.greens.size(), 0u);
  // sm_80-like granularity (min 4, multiples of 2): 5 -> 6
  drv.min_sms = 4;
  drv.align = 2;
  CHECK_EQ(parts.Acquire(5, &l, &err), GPUCOLO_OK);
  CHECK_EQ(l.part->sms, 6u);
  parts.Release(&l);
}

TEST(deferred_release_frees_only_idle_items) {
  struct Item {
    bool busy;
    int* freed;
  };
  gpucolo_plugin::DeferredRelease<Item> kept;
  int freed = 0;
  Item a{true, &freed}, b{false, &freed};
  kept.Keep(&a);
  kept.Keep(&b);
  auto busy = [](Item* i) { return i->busy; };
  auto release = [](Item* i) { ++*i->freed; };
  CHECK_EQ(kept.Reap(busy, release), 1u);
  CHECK_EQ(freed, 1);
  CHECK_EQ(kept.Reap(busy, release), 1u);  // still running: kept, not freed twice
  CHECK_EQ(freed, 1);
  a.busy = false;
  CHECK_EQ(kept.Reap(busy, release), 0u);
  CHECK_EQ(freed, 2);
  CHECK_EQ(kept.Size(), 0u);
}

namespace {

struct FakeGreen {
  void* h = nullptr;
  const gpucolo_gpu_api* api = nullptr;
  int (*violations)() = nullptr;
  void (*last)(char*, unsigned) = nullptr;
  void (*reset)() = nullptr;
  void (*share)(int) = nullptr;
  void (*hold)(unsigned long long) = nullptr;
  int (*contexts)() = nullptr;
  int (*kept)() = nullptr;
  int (*stream_context)(gpucolo_stream*) = nullptr;
  FakeGreen() {
    h = dlopen(GPUCOLO_FAKE_GREEN_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != nullptr);
    auto get = reinterpret_cast<gpucolo_gpu_get_api_fn>(dlsym(h, GPUCOLO_GPU_GET_API));
    CHECK(get != nullptr);
    api = get();
    violations = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_green_violations"));
    last = reinterpret_cast<void (*)(char*, unsigned)>(dlsym(h, "gpucolo_fake_green_last_violation"));
    reset = reinterpret_cast<void (*)()>(dlsym(h, "gpucolo_fake_green_reset"));
    share = reinterpret_cast<void (*)(int)>(dlsym(h, "gpucolo_fake_green_share_contexts"));
    hold = reinterpret_cast<void (*)(unsigned long long)>(dlsym(h, "gpucolo_fake_green_hold_ns"));
    contexts = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_green_contexts"));
    kept = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_green_kept"));
    stream_context = reinterpret_cast<int (*)(gpucolo_stream*)>(dlsym(h, "gpucolo_fake_green_stream_context"));
    CHECK(violations && last && reset && share && hold && contexts && kept && stream_context);
    reset();
    share(0);
    hold(20000);
  }
  ~FakeGreen() {
    share(0);
    dlclose(h);
  }
  std::string Last() const {
    char buf[256] = {0};
    last(buf, sizeof buf);
    return buf;
  }
};

using gpucolo::dispatch::Arrival;
using gpucolo::dispatch::Mechanism;
using gpucolo::dispatch::RunSpec;
using gpucolo::dispatch::StreamSpec;

/** 2 HP + 2 LP closed-loop streams under sm-partition with a 10% reserve: 4 submitter threads. */
RunSpec PartitionRun(const gpucolo_gpu_api* api) {
  RunSpec spec;
  spec.api = api;
  spec.mechanism = Mechanism::kSmPartition;
  spec.reserve = 0.1;
  spec.max_launches = 200;
  spec.watchdog_ns = 5000000000ull;
  for (int i = 0; i < 4; ++i) {
    StreamSpec s;
    s.name = (i < 2 ? "hp" : "lp") + std::to_string(i % 2);
    s.high_priority = i < 2;
    s.kernel = gpucolo_kernel{i < 2 ? 20000ull : 50000ull, 1, 64};
    s.arrival = Arrival::kClosedLoop;
    spec.streams.push_back(s);
  }
  return spec;
}

}  // namespace

TEST(engine_on_green_partitions_never_shares_a_context_between_threads) {
  FakeGreen fake;
  const gpucolo::dispatch::RunResult r = gpucolo::dispatch::Run(PartitionRun(fake.api));
  if (r.status != GPUCOLO_OK) ::gpucolo_test::Fail(__FILE__, __LINE__, "run failed: " + r.error);
  CHECK_EQ(fake.violations(), 0);
  for (const auto& s : r.streams) CHECK_EQ(s.launches, 200u);
  // the partitions as made, not as asked: 10% of 132 asks 14, sm_90 makes 16; the rest asks 118
  // and gets the 116 that are left
  CHECK_EQ(r.streams[0].sm_count_requested, 14);
  CHECK_EQ(r.streams[0].sm_count, 16);
  CHECK_EQ(r.streams[1].sm_count, 16);
  CHECK_EQ(r.streams[2].sm_count_requested, 118);
  CHECK_EQ(r.streams[2].sm_count, 116);
  CHECK_EQ(r.streams[3].sm_count, 116);
  // fill: 32 resident blocks of 64 threads per SM, over the stream's SMs
  CHECK_EQ(r.streams[0].compute_units, 16);
  CHECK_EQ(r.streams[0].max_active_blocks_per_cu, 32);
  CHECK_EQ(r.streams[0].fill_blocks, 16u * 32u);
  CHECK_EQ(r.streams[2].fill_blocks, 116u * 32u);
  CHECK_EQ(fake.contexts(), 0);  // every stream's context (and the holder) destroyed at the end
}

TEST(fake_green_plugin_catches_a_context_shared_between_threads) {
  // the old design (one green context per partition, made current by each stream's submitter)
  // must trip the tracker; it needs two submitters inside a launch at once, which a host that
  // runs them one after the other may never do (then this test cannot judge and skips)
  FakeGreen fake;
  fake.share(1);
  fake.hold(200000);  // 200 us in the context per launch: overlaps are likely
  const gpucolo::dispatch::RunResult r = gpucolo::dispatch::Run(PartitionRun(fake.api));
  fake.share(0);
  fake.hold(20000);
  CHECK_EQ(r.status, GPUCOLO_OK);
  if (fake.violations() == 0) ::gpucolo_test::Skip("the submitters never overlapped inside a launch on this host");
  CHECK(fake.Last().find("second thread") != std::string::npos);
  std::printf("# shared green context caught: %d violation(s), e.g. %s\n", fake.violations(), fake.Last().c_str());
  fake.reset();
}

TEST(green_stream_destroyed_with_work_in_flight_is_kept_until_idle) {
  FakeGreen fake;
  const gpucolo_gpu_api* api = fake.api;
  char err[256] = {0};
  CHECK_EQ(api->init(err, sizeof err), GPUCOLO_OK);
  gpucolo_stream_opts o{};
  o.sm_count = 16;
  gpucolo_stream* s = nullptr;
  CHECK_EQ(api->stream_create(&o, &s, err, sizeof err), GPUCOLO_OK);
  gpucolo_stream_info info{};
  CHECK_EQ(api->stream_info(s, &info), GPUCOLO_OK);
  CHECK_EQ(info.sm_count, 16);
  const int contexts = fake.contexts();
  CHECK(contexts >= 1);
  // a kernel that outlives the destroy's grace (20 ms) and ignores the cancel
  const gpucolo_kernel k{300000000ull, 1, 64};
  CHECK_EQ(api->launch(s, &k, 0, err, sizeof err), GPUCOLO_OK);
  CHECK_EQ(api->stream_destroy(s), GPUCOLO_ERR_TIMEOUT);
  CHECK_EQ(fake.kept(), 1);
  CHECK_EQ(fake.contexts(), contexts);  // its context was not destroyed under the kernel
  // a later stream_create releases it, once the kernel is over
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  gpucolo_stream* t = nullptr;
  o.sm_count = 0;
  CHECK_EQ(api->stream_create(&o, &t, err, sizeof err), GPUCOLO_OK);
  CHECK_EQ(fake.kept(), 0);
  CHECK_EQ(fake.contexts(), 0);
  CHECK_EQ(api->stream_destroy(t), GPUCOLO_OK);
  CHECK_EQ(fake.violations(), 0);  // nothing destroyed while current or busy
  api->shutdown();
}

// ---- the shared plugin source (native/plugins/plugin_core.inc, issue #20) on a fake runtime
// (fake_gpu_runtime.cc): the launch, poll, watchdog and deferred-release code that gpucolo_cuda.so
// and gpucolo_hip.so are built from, run without a GPU
#ifdef GPUCOLO_FAKE_CORE_PLUGIN
namespace {

struct FakeCore {
  void* h = nullptr;
  const gpucolo_gpu_api* api = nullptr;
  void (*hold)(int) = nullptr;
  int (*live_streams)() = nullptr;
  int (*kept_streams)() = nullptr;
  FakeCore() {
    h = dlopen(GPUCOLO_FAKE_CORE_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("build target gpucolo_fake_core_plugin: ") + dlerror());
    auto get = reinterpret_cast<gpucolo_gpu_get_api_fn>(dlsym(h, GPUCOLO_GPU_GET_API));
    CHECK(get != nullptr);
    api = get();
    hold = reinterpret_cast<void (*)(int)>(dlsym(h, "gpucolo_fake_gpu_hold"));
    live_streams = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_gpu_live_streams"));
    kept_streams = reinterpret_cast<int (*)()>(dlsym(h, "gpucolo_fake_gpu_kept_streams"));
    CHECK(hold && live_streams && kept_streams);
    hold(0);
  }
  ~FakeCore() { dlclose(h); }
};

bool Has(const char* text, const char* part) { return std::string(text).find(part) != std::string::npos; }

}  // namespace

TEST(plugin_core_checks_arguments_and_names_the_backend) {
  FakeCore fake;
  const gpucolo_gpu_api* api = fake.api;
  CHECK_EQ(std::string(api->backend), std::string("fake"));
  char e[256] = {0};
  gpucolo_device_info info{};
  CHECK_EQ(api->device_info(0, &info, e, sizeof e), GPUCOLO_ERR_INVALID);  // before init()
  CHECK(Has(e, "fake backend: init() has not been called"));
  CHECK_EQ(api->init(e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->device_info(0, &info, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(std::string(info.name), std::string("fake GPU"));
  CHECK_EQ(info.compute_units, 4);
  CHECK_EQ(info.priority_least, 0);
  CHECK_EQ(info.priority_greatest, -2);
  CHECK_EQ(info.fill_threads_per_block, 64);
  CHECK_EQ(info.max_active_blocks_per_cu, 8);  // the fake's occupancy at 64 threads
  CHECK_EQ(api->device_info(1, &info, e, sizeof e), GPUCOLO_ERR_NO_DEVICE);
  CHECK(Has(e, "fake device 1 out of range (1 device)"));
  gpucolo_stream_opts o{};
  o.priority = -3;
  gpucolo_stream* s = nullptr;
  CHECK_EQ(api->stream_create(&o, &s, e, sizeof e), GPUCOLO_ERR_INVALID);
  CHECK(Has(e, "stream priority -3 outside the device's range -2 (highest) .. 0 (lowest)"));
  CHECK(s == nullptr);
  o.priority = -2;
  CHECK_EQ(api->stream_create(&o, &s, e, sizeof e), GPUCOLO_OK);
  gpucolo_stream_info si{};
  CHECK_EQ(api->stream_info(s, &si), GPUCOLO_OK);
  CHECK_EQ(si.sm_count, 0);
  CHECK_EQ(si.compute_units, 4);
  CHECK_EQ(api->launch(s, nullptr, 0, e, sizeof e), GPUCOLO_ERR_INVALID);
  CHECK(Has(e, "launch: kernel is NULL"));
  gpucolo_kernel bad{0, 1, 0};
  CHECK_EQ(api->launch(s, &bad, 0, e, sizeof e), GPUCOLO_ERR_INVALID);
  CHECK(Has(e, "threads_per_block must be 1..1024, got 0"));
  gpucolo_kernel empty{0, 1, 64};
  CHECK_EQ(api->launch(s, &empty, GPUCOLO_SLOTS, e, sizeof e), GPUCOLO_ERR_INVALID);
  CHECK(Has(e, "out of range"));
  uint64_t a = 0, b = 0;
  CHECK_EQ(api->poll(s, 2, &a, &b), GPUCOLO_ERR_INVALID);  // never launched
  CHECK_EQ(api->stream_destroy(s), GPUCOLO_OK);
  api->shutdown();
  CHECK_EQ(fake.live_streams(), 0);  // the helper stream went with the last shutdown()
}

TEST(plugin_core_launches_polls_and_its_watchdog_cancels) {
  FakeCore fake;
  const gpucolo_gpu_api* api = fake.api;
  char e[256] = {0};
  CHECK_EQ(api->init(e, sizeof e), GPUCOLO_OK);
  gpucolo_stream_opts o{};
  gpucolo_stream* s = nullptr;
  CHECK_EQ(api->stream_create(&o, &s, e, sizeof e), GPUCOLO_OK);
  uint64_t t0 = 0, t1 = 0, a = 0, b = 0, c = 0, d = 0;
  CHECK_EQ(api->read_device_time(0, &t0, e, sizeof e), GPUCOLO_OK);
  const gpucolo_kernel empty{0, 1, 64};
  const gpucolo_kernel spin{20000000ull, 2, 128};  // 20 ms per block
  CHECK_EQ(api->launch(s, &empty, 0, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->launch(s, &spin, 1, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->launch(s, &spin, 1, e, sizeof e), GPUCOLO_ERR_INVALID);  // slot 1 still in flight
  CHECK(Has(e, "slot 1 is still in flight"));
  CHECK_EQ(api->synchronize(s, 30000000000ull, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->poll(s, 0, &a, &b), 1);
  CHECK_EQ(api->poll(s, 1, &c, &d), 1);
  CHECK(a >= t0 && b >= a && c >= b && d > c);
  CHECK(d - c >= 20000000ull);  // every block spins 20 ms of device time
  CHECK_EQ(api->read_device_time(0, &t1, e, sizeof e), GPUCOLO_OK);
  CHECK(t1 >= d);
  // the watchdog: a 60 s kernel and a 50 ms timeout; the kernel sees the cancel word and stops
  const gpucolo_kernel forever{60000000000ull, 1, 32};
  CHECK_EQ(api->launch(s, &forever, 3, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->synchronize(s, 50000000ull, e, sizeof e), GPUCOLO_ERR_TIMEOUT);
  CHECK(Has(e, "stream still busy after 50.000 ms; its probe kernels were cancelled"));
  CHECK_EQ(api->poll(s, 3, &a, &b), GPUCOLO_ERR_TIMEOUT);
  CHECK(b - a < 60000000000ull);
  CHECK_EQ(api->launch(s, &empty, 4, e, sizeof e), GPUCOLO_OK);  // the stream is usable again
  CHECK_EQ(api->synchronize(s, 30000000000ull, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->poll(s, 4, &a, &b), 1);
  CHECK_EQ(api->stream_destroy(s), GPUCOLO_OK);
  api->shutdown();
  CHECK_EQ(fake.live_streams(), 0);
}

TEST(plugin_core_keeps_a_stream_destroyed_under_a_running_kernel) {
  FakeCore fake;
  const gpucolo_gpu_api* api = fake.api;
  char e[256] = {0};
  CHECK_EQ(api->init(e, sizeof e), GPUCOLO_OK);
  gpucolo_stream_opts o{};
  gpucolo_stream* s = nullptr;
  CHECK_EQ(api->stream_create(&o, &s, e, sizeof e), GPUCOLO_OK);
  // a kernel held in flight through stream_destroy()'s 2 s grace (as one the cancel cannot stop)
  fake.hold(1);
  const gpucolo_kernel k{1000000ull, 1, 64};
  CHECK_EQ(api->launch(s, &k, 0, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(api->stream_destroy(s), GPUCOLO_ERR_TIMEOUT);
  CHECK_EQ(fake.kept_streams(), 1);
  CHECK_EQ(fake.live_streams(), 2);  // its runtime stream was not destroyed under the kernel (+ helper)
  gpucolo_stream* t = nullptr;
  CHECK_EQ(api->stream_create(&o, &t, e, sizeof e), GPUCOLO_OK);
  CHECK_EQ(fake.kept_streams(), 1);  // still running: stream_create() must not release it
  fake.hold(0);
  CHECK_EQ(api->stream_destroy(t), GPUCOLO_OK);
  // a later stream_create() releases it once the kernel is over (the 1200 tries only catch a hang)
  for (int i = 0; i < 1200 && fake.kept_streams() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gpucolo_stream* t = nullptr;
    CHECK_EQ(api->stream_create(&o, &t, e, sizeof e), GPUCOLO_OK);
    CHECK_EQ(api->stream_destroy(t), GPUCOLO_OK);
  }
  CHECK_EQ(fake.kept_streams(), 0);
  api->shutdown();
  CHECK_EQ(fake.live_streams(), 0);
}

TEST(engine_runs_on_the_shared_plugin_source) {
  FakeCore fake;
  RunSpec spec;
  spec.api = fake.api;
  spec.mechanism = Mechanism::kStreamPriority;
  spec.max_launches = 50;
  spec.watchdog_ns = 30000000000ull;
  for (int i = 0; i < 2; ++i) {
    StreamSpec st;
    st.name = i == 0 ? "hp" : "lp";
    st.high_priority = i == 0;
    st.kernel = gpucolo_kernel{20000ull, 1, 64};
    st.arrival = Arrival::kClosedLoop;
    spec.streams.push_back(st);
  }
  const gpucolo::dispatch::RunResult r = gpucolo::dispatch::Run(spec);
  if (r.status != GPUCOLO_OK) ::gpucolo_test::Fail(__FILE__, __LINE__, "run failed: " + r.error);
  CHECK_EQ(r.streams.size(), 2u);
  CHECK_EQ(r.streams[0].priority, -2);  // the fake's greatest priority
  CHECK_EQ(r.streams[1].priority, 0);   // and its least
  for (const auto& st : r.streams) {
    CHECK_EQ(st.launches, 50u);
    CHECK_EQ(st.errors, 0u);
    for (size_t i = 0; i < st.device_end_ns.size(); ++i) CHECK(st.device_end_ns[i] - st.device_start_ns[i] >= 20000.0);
  }
  CHECK_EQ(fake.live_streams(), 1);  // the engine destroyed its streams; the helper stays until shutdown()
  fake.api->shutdown();               // the engine's init(): it leaves the plugin initialised
  CHECK_EQ(fake.live_streams(), 0);
}
#endif  // GPUCOLO_FAKE_CORE_PLUGIN
