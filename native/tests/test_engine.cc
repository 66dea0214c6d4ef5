// The measurement engine on the cpu backend (2 workers, as on a 2-core CI runner): arrival
// processes, warm-up flags, no coordinated omission, device-clock mapping, errors, cancel and
// the watchdog, and the priority scenario of the issue (2 low-priority streams of 2 ms x 2-block
// kernels keep the device busy, a high-priority stream of 100 us kernels arrives at 200 Hz) under
// each mechanism. The priority checks are behavioural: ratios and bounds in units of the LP kernel.
// Functional tests wait for events (a launch count, the end of a run) and bound time only against
// what a broken mechanism would take (a 60 s kernel, a run that never ends); the timing checks
// proper (host_load.h) are judged only when the host gives the workers their cores.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/cpu_backend.h"
#include "dispatch/engine.h"
#include "harness.h"
#include "host_load.h"
#include "test_util.h"

using namespace gpucolo::dispatch;

namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000000;

double NowNs() { return static_cast<double>(gpucolo_test::MonotonicNs()); }

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
}

StreamSpec Stream(const std::string& name, bool hp, uint64_t spin, uint32_t blocks, Arrival a, double rate = 0,
                  uint32_t inflight = 1) {
  StreamSpec s;
  s.name = name;
  s.high_priority = hp;
  s.kernel = gpucolo_kernel{spin, blocks, 64};
  s.arrival = a;
  s.rate_hz = rate;
  s.inflight = inflight;
  return s;
}

RunSpec Spec(std::vector<StreamSpec> streams, uint64_t duration_ns) {
  RunSpec r;
  r.api = CpuBackendApi();
  r.duration_ns = duration_ns;
  r.watchdog_ns = 5000 * kMs;
  r.streams = std::move(streams);
  return r;
}

/** complete - intended of the measured (non-warm-up, completed) launches */
std::vector<double> Latencies(const StreamResult& s) {
  std::vector<double> out;
  for (size_t i = 0; i < s.intended_ns.size(); ++i)
    if (!s.warmup[i] && !std::isnan(s.complete_ns[i])) out.push_back(s.complete_ns[i] - s.intended_ns[i]);
  return out;
}

/** nearest rank: the smallest value with at least p of the samples at or below it */
double Pct(std::vector<double> v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  rank = std::min(std::max<size_t>(rank, 1), v.size());
  return v[rank - 1];
}

void CheckOk(const RunResult& r) {
  if (r.status != 0) ::gpucolo_test::Fail(__FILE__, __LINE__, "run failed: " + r.error);
}

}  // namespace

TEST(engine_closed_loop_empty_kernels) {
  UseWorkers(2);
  RunSpec spec = Spec({Stream("c", false, 0, 1, Arrival::kClosedLoop)}, 0);
  spec.max_launches = 2000;
  const RunResult r = Run(spec);
  CheckOk(r);
  CHECK_EQ(r.compute_units, 2);
  CHECK_EQ(r.priority_least, 0);
  CHECK_EQ(r.priority_greatest, 15);
  CHECK(std::fabs(r.device_offset_ns) < 100 * kUs);  // the cpu device clock is the host clock
  const StreamResult& s = r.streams[0];
  CHECK_EQ(s.launches, 2000u);
  CHECK_EQ(s.errors, 0u);
  CHECK_EQ(s.complete_ns.size(), 2000u);
  CHECK_EQ(s.intended_ns[0], 0.0);
  const double slack = r.device_offset_uncertainty_ns + 1000;
  for (size_t i = 0; i < 2000; ++i) {
    CHECK(s.submit_ns[i] >= s.intended_ns[i]);
    CHECK(s.device_start_ns[i] >= s.submit_ns[i] - slack);
    CHECK(s.device_end_ns[i] >= s.device_start_ns[i]);
    CHECK(s.complete_ns[i] >= s.device_end_ns[i] - slack);
    if (i > 0) CHECK_EQ(s.intended_ns[i], s.complete_ns[i - 1]);  // closed loop, depth 1
  }
  std::printf("# closed-loop empty kernel via engine: p50 %.0f ns, p99 %.0f ns (poll pause %llu ns)\n",
              Pct(Latencies(s), 0.5), Pct(Latencies(s), 0.99), static_cast<unsigned long long>(r.poll_pause_ns));
  // busy mode (the GPU default): the poller and the closed-loop submitter spin
  spec.poll_pause_ns = 0;
  const RunResult busy = Run(spec);
  CheckOk(busy);
  CHECK_EQ(busy.poll_pause_ns, 0u);
  CHECK_EQ(busy.streams[0].launches, 2000u);
  std::printf("# closed-loop empty kernel via engine, busy-poll: p50 %.0f ns, p99 %.0f ns\n",
              Pct(Latencies(busy.streams[0]), 0.5), Pct(Latencies(busy.streams[0]), 0.99));
}

TEST(engine_closed_loop_depth_keeps_launches_outstanding) {
  UseWorkers(2);
  // 200 ms: ~100 launches on an idle host; a busy one that runs the workers late still completes
  // one 2 ms kernel in that time, and the relations below need only one launch beyond the depth
  RunSpec spec = Spec({Stream("c", false, 2 * kMs, 1, Arrival::kClosedLoop, 0, 3)}, 200 * kMs);
  const RunResult r = Run(spec);
  CheckOk(r);
  const StreamResult& s = r.streams[0];
  CHECK(s.launches >= 4);
  for (size_t i = 0; i < 3; ++i) CHECK_EQ(s.intended_ns[i], 0.0);
  for (size_t i = 3; i < s.launches; ++i) CHECK_EQ(s.intended_ns[i], s.complete_ns[i - 3]);
  // kernels of one stream never overlap
  for (size_t i = 1; i < s.launches; ++i) CHECK(s.device_start_ns[i] >= s.device_end_ns[i - 1]);
  // nothing is intended at or after the end
  CHECK(s.intended_ns.back() < 200e6);
}

TEST(engine_poisson_is_seeded_and_reproducible) {
  UseWorkers(2);
  auto run = [](uint64_t seed) {
    StreamSpec p = Stream("p", false, 0, 1, Arrival::kPoisson, 2000);
    p.seed = seed;
    RunSpec spec = Spec({p}, 150 * kMs);
    RunResult r = Run(spec);
    CheckOk(r);
    return r.streams[0].intended_ns;
  };
  const std::vector<double> a = run(42), b = run(42), c = run(7);
  CHECK(a.size() > 200 && a.size() < 420);  // ~300 expected at 2 kHz x 150 ms
  CHECK_EQ(a, b);
  CHECK(a != c);
  // exponential gaps: mean ~ 1/rate, and some much shorter than the mean
  double sum = 0;
  size_t short_gaps = 0;
  for (size_t i = 1; i < a.size(); ++i) {
    sum += a[i] - a[i - 1];
    short_gaps += (a[i] - a[i - 1]) < 100e3;
  }
  const double mean = sum / static_cast<double>(a.size() - 1);
  CHECK(mean > 350e3 && mean < 700e3);
  CHECK(short_gaps > 10);
}

TEST(engine_fixed_rate_list_and_warmup_flags) {
  UseWorkers(2);
  StreamSpec f = Stream("fixed", false, 50 * kUs, 1, Arrival::kFixedRate, 1000);
  StreamSpec l = Stream("list", false, 0, 1, Arrival::kList);
  l.times_ns = {0, 5 * kMs, 5 * kMs, 20 * kMs, 95 * kMs, 150 * kMs /* after the end: not sent */};
  RunSpec spec = Spec({f, l}, 100 * kMs);
  spec.warmup_ns = 30 * kMs;
  const RunResult r = Run(spec);
  CheckOk(r);
  const StreamResult& fs = r.streams[0];
  CHECK_EQ(fs.launches, 100u);
  size_t warm = 0;
  for (size_t i = 0; i < fs.launches; ++i) {
    CHECK_EQ(fs.intended_ns[i], static_cast<double>(i) * 1e6);
    CHECK_EQ(fs.warmup[i], fs.intended_ns[i] < 30e6 ? 1 : 0);
    warm += fs.warmup[i];
    CHECK(!std::isnan(fs.complete_ns[i]));
  }
  CHECK_EQ(warm, 30u);
  const StreamResult& ls = r.streams[1];
  CHECK_EQ(ls.launches, 5u);
  CHECK_EQ(ls.intended_ns, (std::vector<double>{0, 5e6, 5e6, 20e6, 95e6}));
  CHECK_EQ(ls.warmup, (std::vector<uint8_t>{1, 1, 1, 1, 0}));
}

TEST(engine_open_loop_counts_the_wait_no_coordinated_omission) {
  UseWorkers(2);
  // 1 kHz of 2 ms kernels through a throttle window of 1: the submitter falls behind, yet each
  // request keeps its intended time and its latency includes the wait
  RunSpec spec = Spec({Stream("behind", false, 2 * kMs, 1, Arrival::kFixedRate, 1000)}, 40 * kMs);
  spec.mechanism = Mechanism::kThrottle;
  spec.throttle_k = 1;
  const RunResult r = Run(spec);
  CheckOk(r);
  const StreamResult& s = r.streams[0];
  CHECK_EQ(s.launches, 40u);  // the backlog is still submitted after the end
  CHECK_EQ(s.dropped, 0u);
  for (size_t i = 0; i < s.launches; ++i) CHECK_EQ(s.intended_ns[i], static_cast<double>(i) * 1e6);
  const double last_wait = s.submit_ns.back() - s.intended_ns.back();
  const double last_latency = s.complete_ns.back() - s.intended_ns.back();
  CHECK(last_wait > 30e6);     // ~ 40 x 2 ms of work - 39 ms of arrivals
  CHECK(last_latency > 35e6);  // and the latency shows it
  CHECK(r.submit_phase_ns > 70e6);
}

TEST(engine_maps_device_clock_with_offset) {
  UseWorkers(2);
  // a backend whose device clock counts from the epoch, like CUDA's globaltimer (~1.7e18 ns,
  // where a double's step is 256 ns: the mapping must stay in integers)
  static constexpr uint64_t kShift = 1700000000123456789ull;
  static gpucolo_gpu_api shifted = *CpuBackendApi();
  shifted.read_device_time = [](int d, uint64_t* out, char* e, unsigned el) {
    const int rc = CpuBackendApi()->read_device_time(d, out, e, el);
    *out += kShift;
    return rc;
  };
  shifted.poll = [](gpucolo_stream* s, uint32_t slot, uint64_t* a, uint64_t* b) {
    const int rc = CpuBackendApi()->poll(s, slot, a, b);
    if (rc == 1) {
      *a += kShift;
      *b += kShift;
    }
    return rc;
  };
  RunSpec spec = Spec({Stream("s", false, 200 * kUs, 1, Arrival::kFixedRate, 500)}, 20 * kMs);
  spec.api = &shifted;
  spec.poll_pause_ns = 5000;
  const RunResult r = Run(spec);
  CheckOk(r);
  CHECK(std::fabs(r.device_offset_ns - static_cast<double>(kShift)) < 100 * kUs);
  CHECK(std::fabs(r.device_offset_end_ns - static_cast<double>(kShift)) < 100 * kUs);
  const StreamResult& s = r.streams[0];
  CHECK(s.launches >= 9);
  size_t off_grid = 0;  // durations that are not multiples of 256 ns: no double rounding at 1.7e18
  for (size_t i = 0; i < s.launches; ++i) {
    off_grid += std::fmod(s.device_end_ns[i] - s.device_start_ns[i], 256.0) != 0;
    // mapped into the host timeline: inside [submit, complete] (the offset's uncertainty aside);
    // how soon the poller saw the end is a matter of scheduling, not of the mapping
    CHECK(s.device_start_ns[i] >= s.submit_ns[i] - 100e3);
    CHECK(s.device_end_ns[i] - s.device_start_ns[i] >= 200e3);
    CHECK(s.complete_ns[i] >= s.device_end_ns[i] - 100e3);
  }
  CHECK(off_grid > 0);
}

TEST(engine_rejects_bad_specs) {
  UseWorkers(2);
  auto status = [](RunSpec spec, const std::string& needle, int expect = GPUCOLO_ERR_INVALID) {
    const RunResult r = Run(spec);
    if (r.status != expect || r.error.find(needle) == std::string::npos)
      ::gpucolo_test::Fail(__FILE__, __LINE__, "status " + std::to_string(r.status) + " error '" + r.error + "', wanted '" + needle + "'");
  };
  const StreamSpec ok = Stream("s", false, 0, 1, Arrival::kFixedRate, 100);
  RunSpec s = Spec({ok}, 10 * kMs);
  s.api = nullptr;
  status(s, "api");
  status(Spec({}, 10 * kMs), "no streams");
  status(Spec({Stream("z", false, 0, 0, Arrival::kClosedLoop)}, 10 * kMs), "0 blocks");
  status(Spec({Stream("r", false, 0, 1, Arrival::kPoisson, 0)}, 10 * kMs), "rate_hz");
  status(Spec({Stream("u", false, 0, 1, Arrival::kClosedLoop)}, 0), "never end");
  StreamSpec unsorted = Stream("l", false, 0, 1, Arrival::kList);
  unsorted.times_ns = {5, 3};
  status(Spec({unsorted}, 10 * kMs), "non-decreasing");
  s = Spec({ok}, 10 * kMs);
  s.mechanism = Mechanism::kSmPartition;
  s.reserve = 0.5;
  status(s, "sm-partition", GPUCOLO_ERR_UNSUPPORTED);
  s.mechanism = Mechanism::kCuMask;
  s.reserve = 0;
  status(s, "reserve");
  s.reserve = 0.9;  // ceil(1.8) = 2 of 2 workers: nothing left for low priority
  status(s, "reserve");
  s.mechanism = Mechanism::kThrottle;
  s.throttle_k = 0;
  status(s, "throttle_k");
  // a backend without CU masks
  static gpucolo_gpu_api no_mask = *CpuBackendApi();
  no_mask.device_info = [](int d, gpucolo_device_info* out, char* e, unsigned el) {
    const int rc = CpuBackendApi()->device_info(d, out, e, el);
    out->supports_cu_mask = 0;
    return rc;
  };
  s = Spec({ok}, 10 * kMs);
  s.api = &no_mask;
  s.mechanism = Mechanism::kCuMask;
  s.reserve = 0.5;
  status(s, "cu-mask", GPUCOLO_ERR_UNSUPPORTED);
  s.device = 3;
  s.api = CpuBackendApi();
  status(s, "device", GPUCOLO_ERR_NO_DEVICE);
}

TEST(engine_mechanisms_configure_streams) {
  UseWorkers(2);
  std::vector<StreamSpec> ss = {Stream("hp", true, 0, 1, Arrival::kFixedRate, 100),
                                Stream("lp", false, 0, 1, Arrival::kFixedRate, 100)};
  RunSpec s = Spec(ss, 5 * kMs);
  s.mechanism = Mechanism::kNone;
  RunResult r = Run(s);
  CheckOk(r);
  CHECK_EQ(r.streams[0].priority, r.streams[1].priority);
  s.mechanism = Mechanism::kStreamPriority;
  r = Run(s);
  CheckOk(r);
  CHECK_EQ(r.streams[0].priority, 15);
  CHECK_EQ(r.streams[1].priority, 0);
  // what each stream got: the whole device, no partition; fill = one block per worker
  for (const StreamResult& sr : r.streams) {
    CHECK_EQ(sr.compute_units, 2);
    CHECK_EQ(sr.sm_count, 0);
    CHECK_EQ(sr.sm_count_requested, 0);
    CHECK_EQ(sr.max_active_blocks_per_cu, 1);
    CHECK_EQ(sr.fill_blocks, 2u);
  }
  s.mechanism = Mechanism::kCuMask;
  s.reserve = 0.5;
  r = Run(s);
  CheckOk(r);
  CHECK_EQ(r.streams[0].cu_mask, (std::vector<uint32_t>{0x1}));
  CHECK_EQ(r.streams[1].cu_mask, (std::vector<uint32_t>{0x2}));
  CHECK_EQ(r.streams[0].priority, r.streams[1].priority);
  // a masked stream fills its own workers only
  CHECK_EQ(r.streams[0].compute_units, 1);
  CHECK_EQ(r.streams[0].fill_blocks, 1u);
  CHECK_EQ(r.streams[1].compute_units, 1);
  // the drift check after the run and the run's phases are filled
  CHECK(!std::isnan(r.device_offset_end_ns));
  CHECK(r.device_offset_uncertainty_ns >= 0);
  CHECK(r.elapsed_ns >= r.submit_phase_ns);
  CHECK(!r.cancelled);
}

TEST(engine_stream_priority_levels_spread_over_the_range) {
  UseWorkers(2);
  std::vector<StreamSpec> ss = {Stream("p3", true, 0, 1, Arrival::kFixedRate, 100), Stream("p2", false, 0, 1, Arrival::kFixedRate, 100),
                                Stream("p1", false, 0, 1, Arrival::kFixedRate, 100)};
  for (int i = 0; i < 3; ++i) {
    ss[static_cast<size_t>(i)].level = 2 - i;
    ss[static_cast<size_t>(i)].levels = 3;
  }
  RunSpec s = Spec(ss, 5 * kMs);
  s.mechanism = Mechanism::kStreamPriority;
  RunResult r = Run(s);
  CheckOk(r);
  // cpu range 0..15: levels 2, 1, 0 -> 15, 8 (7.5 rounded away from zero), 0
  CHECK_EQ(r.streams[0].priority, 15);
  CHECK_EQ(r.streams[1].priority, 8);
  CHECK_EQ(r.streams[2].priority, 0);
  // other mechanisms ignore levels
  s.mechanism = Mechanism::kNone;
  r = Run(s);
  CheckOk(r);
  CHECK_EQ(r.streams[0].priority, r.streams[2].priority);
  // a level outside its levels is refused
  s.mechanism = Mechanism::kStreamPriority;
  s.streams[0].level = 3;
  r = Run(s);
  CHECK_EQ(r.status, GPUCOLO_ERR_INVALID);
}

TEST(engine_launch_errors_stop_the_stream) {
  UseWorkers(2);
  static std::atomic<int> calls{0};
  static gpucolo_gpu_api flaky = *CpuBackendApi();
  flaky.launch = [](gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* e, unsigned el) {
    if (calls.fetch_add(1) >= 5) {
      std::snprintf(e, el, "fakeErrorLaunchFailure: injected");
      return static_cast<int>(GPUCOLO_ERR_RUNTIME);
    }
    return CpuBackendApi()->launch(s, k, slot, e, el);
  };
  calls = 0;
  RunSpec spec = Spec({Stream("f", false, 0, 1, Arrival::kClosedLoop)}, 50 * kMs);
  spec.api = &flaky;
  const RunResult r = Run(spec);
  CHECK_EQ(r.status, GPUCOLO_ERR_RUNTIME);
  CHECK(r.error.find("injected") != std::string::npos && r.error.find("'f'") != std::string::npos);
  CHECK_EQ(r.streams[0].launches, 5u);
  CHECK_EQ(r.streams[0].errors, 1u);
  CHECK_EQ(r.streams[0].complete_ns.size(), 5u);
}

TEST(engine_watchdog_gives_up_on_a_kernel_that_never_ends) {
  UseWorkers(2);
  const gpucolo_test::ForeignLoad load;
  // a 60 s kernel: the bounds below are half of it, so only a watchdog (or abort) that does not
  // work can break them, never a slow host
  RunSpec spec = Spec({Stream("forever", false, 60000 * kMs, 1, Arrival::kClosedLoop),
                       Stream("fine", false, 100 * kUs, 1, Arrival::kFixedRate, 1000)},
                      50 * kMs);
  spec.watchdog_ns = 200 * kMs;
  const double t0 = NowNs();
  const RunResult r = Run(spec);
  const double took = NowNs() - t0;
  CHECK_EQ(r.status, GPUCOLO_ERR_TIMEOUT);
  CHECK(r.error.find("watchdog") != std::string::npos);
  CHECK(r.error.find("'forever'") != std::string::npos);
  CHECK(took < 30000e6);  // ~250 ms, never the 60 s of the kernel
  CHECK_EQ(r.streams[0].launches, 1u);
  CHECK(std::isnan(r.streams[0].complete_ns[0]));
  // the other worker kept serving the other stream within the 200 ms before the watchdog fired:
  // a matter of the host giving that worker its core
  CHECK_TIMING(r.streams[1].launches >= 40, load);
  CHECK_TIMING(!std::isnan(r.streams[1].complete_ns.back()), load);
  // the backend works afterwards, with both workers free (the kernel was aborted): one stream
  // pinned to each worker completes long before the 60 s the kernel would have spun
  RunSpec after = Spec({Stream("w0", true, 1 * kMs, 1, Arrival::kClosedLoop), Stream("w1", false, 1 * kMs, 1, Arrival::kClosedLoop)}, 0);
  after.max_launches = 3;
  after.mechanism = Mechanism::kCuMask;
  after.reserve = 0.5;
  const double t1 = NowNs();
  const RunResult a = Run(after);
  CheckOk(a);
  CHECK(NowNs() - t1 < 30000e6);
  CHECK_EQ(a.streams[0].launches, 3u);
  CHECK_EQ(a.streams[1].launches, 3u);
}

TEST(engine_cancel_stops_an_unbounded_run) {
  UseWorkers(2);
  // the canceller waits for 20 launches (an event, not a time: a busy host launches later), then
  // cancels the run, which would otherwise never end
  static std::atomic<int> launched{0};
  static gpucolo_gpu_api counting = *CpuBackendApi();
  counting.launch = [](gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* e, unsigned el) {
    const int rc = CpuBackendApi()->launch(s, k, slot, e, el);
    if (rc == 0) launched.fetch_add(1);
    return rc;
  };
  launched = 0;
  std::atomic<bool> cancel{false};
  RunSpec spec = Spec({Stream("u", false, 1 * kMs, 1, Arrival::kClosedLoop)}, 0);
  spec.api = &counting;
  // a backstop far beyond the test (~100 s of 1 ms kernels): a cancel that is ignored fails the
  // bound below instead of hanging the test binary
  spec.max_launches = 100000;
  std::atomic<double> cancelled_at{0};
  std::thread canceller([&] {
    const double guard = NowNs() + 60e9;  // only against a run that never launches
    while (launched.load() < 20 && NowNs() < guard) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    cancelled_at = NowNs();
    cancel = true;
  });
  const RunResult r = Run(spec, &cancel);
  const double took = NowNs() - cancelled_at.load();
  canceller.join();
  CHECK_EQ(r.status, 0);
  CHECK(r.cancelled);
  CHECK(r.error.find("cancelled") == 0);
  CHECK(took < 30e9);  // ms after the cancel; a run that ignored it would never end
  CHECK(r.streams[0].launches >= 20);
}

// ---- the priority scenario ----

namespace {

struct Scenario {
  double hp_p50 = 0, hp_p99 = 0, hp_max = 0;
  double lp_kernel_p99 = 0;  // measured LP kernel time (device end - start): the unit of the bounds
  double hp_start_p99 = 0;  // device start - intended: the wait for a worker, without completion detection
  size_t hp_samples = 0;
  double lp_kernels_per_s = 0;
};

Scenario RunPriority(Mechanism m, bool with_lp, double reserve = 0, uint32_t k = 1) {
  std::vector<StreamSpec> ss;
  StreamSpec hp = Stream("hp", true, 100 * kUs, 1, Arrival::kPoisson, 200);
  hp.seed = 2024;
  ss.push_back(hp);
  if (with_lp) {
    ss.push_back(Stream("lp0", false, 2 * kMs, 2, Arrival::kClosedLoop, 0, 2));
    ss.push_back(Stream("lp1", false, 2 * kMs, 2, Arrival::kClosedLoop, 0, 2));
  }
  RunSpec spec = Spec(ss, 2000 * kMs);
  spec.warmup_ns = 200 * kMs;
  spec.mechanism = m;
  spec.reserve = reserve;
  spec.throttle_k = k;
  const RunResult r = Run(spec);
  CheckOk(r);
  Scenario out;
  const std::vector<double> lat = Latencies(r.streams[0]);
  out.hp_samples = lat.size();
  out.hp_p50 = Pct(lat, 0.5);
  out.hp_p99 = Pct(lat, 0.99);
  out.hp_max = Pct(lat, 1.0);
  std::vector<double> start;
  const StreamResult& h = r.streams[0];
  for (size_t i = 0; i < h.launches; ++i)
    if (!h.warmup[i] && !std::isnan(h.device_start_ns[i])) start.push_back(h.device_start_ns[i] - h.intended_ns[i]);
  out.hp_start_p99 = Pct(start, 0.99);
  uint64_t lp = 0;
  std::vector<double> lp_kernel;
  for (size_t i = 1; i < r.streams.size(); ++i)
    for (size_t j = 0; j < r.streams[i].launches; ++j) {
      const StreamResult& l = r.streams[i];
      lp += !l.warmup[j] && l.complete_ns[j] <= 2000e6;
      if (!std::isnan(l.device_end_ns[j])) lp_kernel.push_back(l.device_end_ns[j] - l.device_start_ns[j]);
    }
  out.lp_kernel_p99 = lp_kernel.empty() ? 0 : Pct(lp_kernel, 0.99);
  out.lp_kernels_per_s = static_cast<double>(lp) / 1.8;
  std::printf("# %-16s HP latency p50 %7.0f us  p99 %7.0f us  max %7.0f us  start p99 %7.0f us  (n=%zu)  LP %.0f kernels/s\n",
              with_lp ? MechanismName(m) : "standalone", out.hp_p50 / 1e3, out.hp_p99 / 1e3, out.hp_max / 1e3,
              out.hp_start_p99 / 1e3, out.hp_samples, out.lp_kernels_per_s);
  if (with_lp) std::printf("#                  LP kernel (2 ms x 2 blocks) p99 %.0f us\n", out.lp_kernel_p99 / 1e3);
  return out;
}

}  // namespace

namespace {

/** The five runs and what they must show; "" when all holds, else the first broken claim. */
std::string PriorityVerdict() {
  const Scenario alone = RunPriority(Mechanism::kNone, false);
  const Scenario none = RunPriority(Mechanism::kNone, true);
  const Scenario prio = RunPriority(Mechanism::kStreamPriority, true);
  const Scenario throttle = RunPriority(Mechanism::kThrottle, true, 0, 1);
  const Scenario mask = RunPriority(Mechanism::kCuMask, true, 0.5);
  struct Claim {
    bool holds;
    const char* what;
  };
  // Bounds are in units of the LP kernel time each run measured (2 ms nominal; longer when the
  // host is loaded and workers get the CPU late), plus slack for host scheduling.
  const Claim claims[] = {
      {alone.hp_samples >= 250 && none.hp_samples >= 250 && prio.hp_samples >= 250 && throttle.hp_samples >= 250 &&
           mask.hp_samples >= 250,
       "enough HP samples in every run"},
      // the LP streams did keep the device busy (at most 500 two-block kernels/s on 2 workers)
      {none.lp_kernels_per_s > 150, "none: LP keeps the device busy"},
      // sharing without a mechanism: HP queues behind LP kernels
      {none.hp_p99 > none.lp_kernel_p99, "none: HP P99 > one LP kernel"},
      // stream priority: HP waits for at most about one running LP block, clearly less than without
      {prio.hp_p99 < 0.7 * none.hp_p99, "stream-priority: HP P99 < 0.7 x none"},
      {prio.hp_start_p99 <= prio.lp_kernel_p99 + 1e6, "stream-priority: HP start P99 <= LP kernel + 1 ms"},
      {prio.hp_p99 <= prio.lp_kernel_p99 + 100e3 + 1.5e6, "stream-priority: HP P99 <= LP kernel + HP kernel + 1.5 ms"},
      // throttle K=1: the added HP latency is bounded by one LP kernel (+ slack)
      {throttle.hp_p99 < 0.7 * none.hp_p99, "throttle: HP P99 < 0.7 x none"},
      {throttle.hp_start_p99 <= throttle.lp_kernel_p99 + 1e6, "throttle: HP start P99 <= LP kernel + 1 ms"},
      {throttle.hp_p99 - alone.hp_p99 <= throttle.lp_kernel_p99 + 1.5e6,
       "throttle K=1: HP P99 - standalone P99 <= LP kernel + 1.5 ms"},
      // CU mask with half the workers reserved: HP stays near its standalone latency
      {mask.hp_p99 <= std::max(2.0 * alone.hp_p99, alone.hp_p99 + 1e6), "cu-mask: HP P99 <= max(2 x standalone, +1 ms)"},
      {mask.hp_p99 < 0.5 * mask.lp_kernel_p99, "cu-mask: HP P99 < half an LP kernel"},
  };
  for (const Claim& c : claims)
    if (!c.holds) return c.what;
  return "";
}

}  // namespace

// A timing test on shared cores. The workers run at nice 19 (the default, which the scenario is
// about), so CPU load of other processes at a better nice level starves them and the latencies
// then measure the host, not the mechanisms (on a 2-core host at load average 12-16 "throttle: HP
// P99 < 0.7 x none" failed for that reason). So each attempt first checks, with a calibration spin
// of two threads at the workers' nice level, that the host gives the workers their two cores, and
// records how much CPU other processes took while the five runs went on. Outcome:
//  - an attempt in which every claim holds: pass;
//  - no such attempt, and a claim broken in an attempt while the host was quiet (other processes
//    under kQuietCores): fail, as the mechanism is then what broke it;
//  - otherwise (the calibration found the cores taken, or every failed attempt ran next to
//    foreign load): skipped, with the figures.
TEST(engine_priority_mechanisms_on_cpu) {
  UseWorkers(2, false);
  const int nice = CpuBackendCurrentOptions().worker_nice;  // 19 unless GPUCOLO_CPU_WORKER_NICE says otherwise
  // the two workers need ~2 cores; a quiet 2-core host gives two spinning threads ~1.95
  constexpr double kNeedCores = 1.7;
  // nice-19 workers yield to any thread of a better nice level: 0.05 cores of other processes over
  // the 10 s of an attempt is 0.5 s of CPU in bursts of scheduler slices (ms), enough to move the
  // P99s (the 4th-worst of ~360 HP samples) the claims compare. A quiet host shows ~0.01-0.03.
  constexpr double kQuietCores = 0.05;
  std::string quiet_failure;  // a claim broken on a quiet host
  std::string busy_note;      // why an attempt could not be judged
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const double cores = gpucolo_test::ObtainedCores(2, nice, 300 * kMs);
    std::printf("# attempt %d: 2 threads at nice %d obtained %.2f cores in a 300 ms spin (%s)\n", attempt, nice, cores,
                gpucolo_test::HostLoadText().c_str());
    if (cores < kNeedCores) {
      char buf[200];
      std::snprintf(buf, sizeof(buf), "the host gives 2 threads at the workers' nice %d only %.2f of 2 cores (%s)", nice,
                    cores, gpucolo_test::HostLoadText().c_str());
      busy_note = buf;
      break;  // no point running 10 s of scenario on cores the workers do not get
    }
    const gpucolo_test::ForeignLoad load;
    const std::string broken = PriorityVerdict();
    const double foreign = load.Cores();
    std::printf("# attempt %d: other processes used %.2f cores during the runs%s%s\n", attempt, foreign,
                broken.empty() ? "" : "; did not hold: ", broken.c_str());
    if (broken.empty()) return;
    char buf[240];
    std::snprintf(buf, sizeof(buf), "%s (attempt %d; other processes used %.2f cores meanwhile; %s)", broken.c_str(), attempt,
                  foreign, gpucolo_test::HostLoadText().c_str());
    if (foreign > kQuietCores) busy_note = buf;
    else quiet_failure = buf;
  }
  if (!quiet_failure.empty()) ::gpucolo_test::Fail(__FILE__, __LINE__, quiet_failure);
  ::gpucolo_test::Skip("priority mechanisms cannot be judged on this host now: " + busy_note);
}
