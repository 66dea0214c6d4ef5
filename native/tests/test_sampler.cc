// The sampling loop of native/trace/sampler.h against the fixture roots, with a recording sink.
// Timing checks are behavioural (order, deadlines, counts); the only bound is the stop latency.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "trace/sampler.h"

using gpucolo::trace::MonotonicNowNs;
using gpucolo::trace::ReadWholeFile;
using gpucolo::trace::Sample;
using gpucolo::trace::SampleSink;
using gpucolo::trace::Sampler;
using gpucolo::trace::SamplerOptions;
namespace kfd = gpucolo::kfd;

namespace {

constexpr int64_t kMs = 1000000;

/** Keeps what it takes; `policy` (run on the sampler thread) may stall, drop or close. */
class Recorder : public SampleSink {
 public:
  using Policy = std::function<Delivery(const Sample&, bool last)>;
  explicit Recorder(Policy policy = nullptr) : policy_(std::move(policy)) {}

  Delivery Deliver(std::unique_ptr<Sample> s, bool last) override {
    const Delivery d = policy_ ? policy_(*s, last) : Delivery::kTaken;
    std::lock_guard<std::mutex> lock(mu_);
    ++offered_;
    if (last) ++last_;
    if (d == Delivery::kTaken) taken_.push_back(std::move(s));
    cv_.notify_all();
    return d;
  }
  void Done() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_;
    cv_.notify_all();
  }
  /** Waits until pred() holds (under the lock) or timeout; returns pred(). */
  bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }
  // read after the sampler was joined (or under WaitUntil)
  std::vector<std::unique_ptr<Sample>> taken_;
  int offered_ = 0;
  int last_ = 0;
  int done_ = 0;

 private:
  Policy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
};

SamplerOptions FixtureOptions(int64_t interval_ns, uint64_t debugfs_every, uint64_t max_samples) {
  SamplerOptions o;
  o.sysfs_root = gpucolo_test::FixturePath("sysfs");
  o.debugfs_root = gpucolo_test::FixturePath("debugfs");
  o.interval_ns = interval_ns;
  o.debugfs_every = debugfs_every;
  o.max_samples = max_samples;
  return o;
}

/** intended == (seq + all missed so far) * interval <= actual < intended + interval; seq gaps == dropped. */
void CheckTimeline(const std::vector<std::unique_ptr<Sample>>& v, int64_t interval) {
  uint64_t missed = 0;
  int64_t prev_seq = -1;
  for (const auto& s : v) {
    missed += s->missed;
    CHECK_EQ(static_cast<int64_t>(s->seq), prev_seq + 1 + static_cast<int64_t>(s->dropped));
    prev_seq = static_cast<int64_t>(s->seq);
    CHECK_EQ(s->intended_ns, static_cast<double>(static_cast<int64_t>(s->seq + missed) * interval));
    CHECK(s->actual_ns >= s->intended_ns);
    CHECK(s->actual_ns < s->intended_ns + static_cast<double>(interval));  // late by less than one interval
    CHECK(s->read_ns > 0);
    CHECK(s->parse_ns >= 0);
  }
}

std::string DebugfsFile(const char* name) { return gpucolo_test::ReadFixture(std::string("debugfs/kfd/") + name); }

}  // namespace

TEST(sampler_fixture_timeline_and_tables) {
  Recorder rec;
  const int64_t interval = 10 * kMs;
  Sampler s(FixtureOptions(interval, 5, 20), &rec);
  const int64_t before = MonotonicNowNs();
  s.Start();
  CHECK(s.origin_ns() >= before && s.origin_ns() <= MonotonicNowNs());
  s.Join();  // ends by itself after 20 samples
  CHECK(s.finished());
  CHECK_EQ(s.error(), std::string());
  CHECK_EQ(rec.done_, 1);
  CHECK_EQ(rec.offered_, 20);
  CHECK_EQ(rec.taken_.size(), size_t{20});
  CheckTimeline(rec.taken_, interval);

  const kfd::ProcsRaw procs = kfd::ReadKfdProcs(gpucolo_test::FixturePath("sysfs"), nullptr);
  const std::string mqds = DebugfsFile("mqds"), hqds = DebugfsFile("hqds"), rls = DebugfsFile("rls");
  const kfd::MqdsRaw m = kfd::ParseMqds(mqds.data(), mqds.size());
  const kfd::HqdsRaw h = kfd::ParseHqds(hqds.data(), hqds.size());
  const kfd::RlsRaw r = kfd::ParseRls(rls.data(), rls.size());
  CHECK(!procs.procs.empty() && !m.words.empty() && !h.words.empty() && !r.words.empty());
  uint64_t missed = 0, with_debugfs = 0;
  for (size_t i = 0; i < rec.taken_.size(); ++i) {
    const Sample& x = *rec.taken_[i];
    CHECK_EQ(x.seq, uint64_t{i});
    CHECK_EQ(x.dropped, uint64_t{0});
    missed += x.missed;
    CHECK_EQ(x.debugfs, x.seq % 5 == 0);
    CHECK_EQ(x.procs.procs, procs.procs);
    CHECK_EQ(x.procs.queues, procs.queues);
    CHECK_EQ(x.procs.metrics, procs.metrics);
    CHECK(x.procs.issues.empty());
    if (x.debugfs) {
      ++with_debugfs;
      CHECK(x.mqds.ok && x.hqds.ok && x.rls.ok);
      CHECK_EQ(x.mqds.raw.words, m.words);
      CHECK_EQ(x.mqds.raw.procs, m.procs);
      CHECK_EQ(x.mqds.raw.pasids, m.pasids);
      CHECK_EQ(x.mqds.raw.queues, m.queues);
      CHECK_EQ(x.mqds.raw.blocks, m.blocks);
      CHECK_EQ(x.mqds.raw.lines, m.lines);
      CHECK_EQ(x.hqds.raw.words, h.words);
      CHECK_EQ(x.hqds.raw.nodes, h.nodes);
      CHECK_EQ(x.hqds.raw.slots, h.slots);
      CHECK_EQ(x.rls.raw.words, r.words);
      CHECK_EQ(x.rls.raw.nodes, r.nodes);
      CHECK_EQ(x.rls.raw.packets, r.packets);
      CHECK(x.mqds.raw.issues.empty() && x.hqds.raw.issues.empty() && x.rls.raw.issues.empty());
    } else {
      CHECK(!x.mqds.ok && !x.hqds.ok && !x.rls.ok);
      CHECK(x.mqds.raw.words.empty());
      CHECK_EQ(x.mqds.error.code, std::string());
    }
  }
  CHECK_EQ(with_debugfs, uint64_t{4});
  CHECK_EQ(rec.last_, 1);  // the 20th
  if (missed != 0) std::printf("# sampler_fixture_timeline_and_tables: %llu intervals missed (slow host?)\n", (unsigned long long)missed);
}

TEST(sampler_debugfs_never) {
  Recorder rec;
  Sampler s(FixtureOptions(1 * kMs, 0, 5), &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.taken_.size(), size_t{5});
  for (const auto& x : rec.taken_) CHECK(!x->debugfs);
}

TEST(sampler_unreadable_debugfs_root) {
  Recorder rec;
  SamplerOptions o = FixtureOptions(1 * kMs, 1, 2);
  o.debugfs_root = "/nonexistent/debugfs//";
  o.sysfs_root = "/nonexistent/sysfs";
  Sampler s(o, &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.taken_.size(), size_t{2});
  for (const auto& x : rec.taken_) {
    CHECK(x->debugfs);
    CHECK(!x->mqds.ok && !x->hqds.ok && !x->rls.ok);
    CHECK_EQ(x->mqds.error.code, std::string("ENOENT"));
    CHECK_EQ(x->mqds.error.message, std::string("cannot read /nonexistent/debugfs/kfd/mqds (ENOENT)"));
    CHECK_EQ(x->hqds.error.message, std::string("cannot read /nonexistent/debugfs/kfd/hqds (ENOENT)"));
    CHECK_EQ(x->rls.error.message, std::string("cannot read /nonexistent/debugfs/kfd/rls (ENOENT)"));
    // sysfs problems are issues of the procs table, as in readKfdProcs
    CHECK_EQ(x->procs.issues.size(), size_t{1});
    CHECK_EQ(x->procs.issues[0].code, std::string("ENOENT"));
    CHECK(x->procs.procs.empty());
  }
}

TEST(sampler_debugfs_file_is_a_directory) {
  Recorder rec;
  SamplerOptions o = FixtureOptions(1 * kMs, 1, 1);
  // kfd/mqds a directory (open works, read() fails with EISDIR), kfd/hqds absent, kfd/rls fine
  char tmpl[] = "/tmp/gpucolo-sampler-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  const std::string root = tmpl;
  CHECK_EQ(::mkdir((root + "/kfd").c_str(), 0755), 0);
  CHECK_EQ(::mkdir((root + "/kfd/mqds").c_str(), 0755), 0);
  std::ofstream(root + "/kfd/rls") << "Node 1, gpu_id 2:\n  No active runlist\n";
  o.debugfs_root = root;
  Sampler s(o, &rec);
  s.Start();
  s.Join();
  std::remove((root + "/kfd/rls").c_str());
  ::rmdir((root + "/kfd/mqds").c_str());
  ::rmdir((root + "/kfd").c_str());
  ::rmdir(root.c_str());
  CHECK_EQ(rec.taken_.size(), size_t{1});
  const Sample& x = *rec.taken_[0];
  CHECK_EQ(x.mqds.error.code, std::string("EISDIR"));
  CHECK_EQ(x.hqds.error.code, std::string("ENOENT"));
  CHECK(x.rls.ok);
  CHECK_EQ(x.rls.raw.nodes.size(), kfd::kRlsNodeCols);
}

TEST(sampler_skips_missed_intervals_without_catch_up_burst) {
  const int64_t interval = 10 * kMs;
  // stall the thread 35 ms in the third sample: the next one is >= 2 whole intervals late
  Recorder rec([](const Sample& s, bool) {
    if (s.seq == 2) std::this_thread::sleep_for(std::chrono::milliseconds(35));
    return SampleSink::Delivery::kTaken;
  });
  Sampler s(FixtureOptions(interval, 0, 6), &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.taken_.size(), size_t{6});
  CheckTimeline(rec.taken_, interval);
  CHECK(rec.taken_[3]->missed >= 2);
  // one sample per deadline taken: never two samples for the same or earlier deadline
  for (size_t i = 1; i < rec.taken_.size(); ++i) CHECK(rec.taken_[i]->intended_ns >= rec.taken_[i - 1]->intended_ns + interval);
}

TEST(sampler_counts_dropped_samples_into_the_next) {
  const int64_t interval = 2 * kMs;
  Recorder rec([](const Sample& s, bool) {
    return s.seq >= 1 && s.seq <= 3 ? SampleSink::Delivery::kDropped : SampleSink::Delivery::kTaken;
  });
  Sampler s(FixtureOptions(interval, 0, 6), &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.offered_, 6);  // max_samples counts samples taken, dropped ones included
  CHECK_EQ(rec.taken_.size(), size_t{3});
  CHECK_EQ(rec.taken_[0]->seq, uint64_t{0});
  CHECK_EQ(rec.taken_[0]->dropped, uint64_t{0});
  CHECK_EQ(rec.taken_[1]->seq, uint64_t{4});
  CHECK_EQ(rec.taken_[1]->dropped, uint64_t{3});
  CHECK_EQ(rec.taken_[2]->seq, uint64_t{5});
  CHECK_EQ(rec.taken_[2]->dropped, uint64_t{0});
  CheckTimeline(rec.taken_, interval);
}

TEST(sampler_last_sample_of_max_samples_is_offered_as_last) {
  // a sink that is always full still gets the last one, which carries every drop
  Recorder rec([](const Sample&, bool last) { return last ? SampleSink::Delivery::kTaken : SampleSink::Delivery::kDropped; });
  Sampler s(FixtureOptions(1 * kMs, 0, 5), &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.offered_, 5);
  CHECK_EQ(rec.last_, 1);
  CHECK_EQ(rec.taken_.size(), size_t{1});
  CHECK_EQ(rec.taken_[0]->seq, uint64_t{4});
  CHECK_EQ(rec.taken_[0]->dropped, uint64_t{4});
  CheckTimeline(rec.taken_, 1 * kMs);
}

TEST(sampler_closed_sink_ends_the_thread) {
  Recorder rec([](const Sample& s, bool) { return s.seq == 2 ? SampleSink::Delivery::kClosed : SampleSink::Delivery::kTaken; });
  Sampler s(FixtureOptions(1 * kMs, 0, 0), &rec);
  s.Start();
  CHECK(rec.WaitUntil([&] { return rec.done_ == 1; }, std::chrono::seconds(10)));
  s.Join();
  CHECK_EQ(rec.offered_, 3);
  CHECK_EQ(rec.taken_.size(), size_t{2});
}

TEST(sampler_stop_interrupts_a_long_sleep) {
  Recorder rec;
  Sampler s(FixtureOptions(1000 * kMs, 1, 0), &rec);
  s.Start();
  CHECK(rec.WaitUntil([&] { return rec.taken_.size() == 1; }, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // now well inside the 1 s sleep
  const int64_t t0 = MonotonicNowNs();
  s.RequestStop();
  s.Join();
  const int64_t latency = MonotonicNowNs() - t0;
  std::printf("# stop latency during a 1 s sleep: %.3f ms\n", static_cast<double>(latency) / 1e6);
  CHECK(latency < 50 * kMs);
  CHECK_EQ(rec.done_, 1);
  CHECK_EQ(rec.taken_.size(), size_t{1});
  s.RequestStop();  // twice is fine
  s.Join();
}

TEST(sampler_stop_before_start_and_destructor_while_running) {
  {
    Recorder rec;
    Sampler s(FixtureOptions(1 * kMs, 0, 0), &rec);
    s.RequestStop();
    s.Start();
    s.Join();
    CHECK_EQ(rec.taken_.size(), size_t{0});
    CHECK_EQ(rec.done_, 1);
  }
  Recorder rec;
  {
    Sampler s(FixtureOptions(1000 * kMs, 1, 0), &rec);
    s.Start();
  }  // ~Sampler stops and joins
  CHECK_EQ(rec.done_, 1);
  CHECK(rec.taken_.size() <= 1);
}

TEST(sampler_set_pids_takes_effect_at_the_next_sample) {
  Recorder rec;
  SamplerOptions o = FixtureOptions(2 * kMs, 0, 0);
  o.filter_pids = true;
  o.pids = {42117};
  Sampler s(o, &rec);
  s.Start();
  CHECK(rec.WaitUntil([&] { return rec.taken_.size() >= 2; }, std::chrono::seconds(5)));
  s.SetPids(nullptr);
  CHECK(rec.WaitUntil([&] { return rec.taken_.back()->procs.procs.size() == 2 * kfd::kProcsProcCols; }, std::chrono::seconds(5)));
  const std::vector<double> none;
  s.SetPids(&none);
  CHECK(rec.WaitUntil([&] { return rec.taken_.back()->procs.procs.empty(); }, std::chrono::seconds(5)));
  s.RequestStop();
  s.Join();
  const std::vector<double> only{42117};
  const kfd::ProcsRaw one = kfd::ReadKfdProcs(gpucolo_test::FixturePath("sysfs"), &only);
  CHECK_EQ(rec.taken_[0]->procs.procs, one.procs);
  CHECK_EQ(rec.taken_[0]->procs.procs.size(), kfd::kProcsProcCols);
  // once a change is seen it holds: filtered, then all, then none, in that order
  int phase = 0;
  for (const auto& x : rec.taken_) {
    const size_t n = x->procs.procs.size() / kfd::kProcsProcCols;
    const int p = n == 1 ? 0 : n == 2 ? 1 : 2;
    CHECK(p >= phase);
    phase = p;
  }
  CHECK_EQ(phase, 2);
}

TEST(sampler_read_whole_file_grows_and_reuses_the_buffer) {
  char tmpl[] = "/tmp/gpucolo-read-XXXXXX";
  const int fd = mkstemp(tmpl);
  CHECK(fd >= 0);
  std::string big(300 * 1024 + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  CHECK_EQ(::write(fd, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  ::close(fd);
  std::vector<char> buf;
  size_t len = 0;
  CHECK_EQ(ReadWholeFile(tmpl, &buf, &len), 0);
  CHECK_EQ(len, big.size());
  CHECK(std::string(buf.data(), len) == big);
  const size_t cap = buf.size();
  CHECK_EQ(ReadWholeFile(gpucolo_test::FixturePath("debugfs/kfd/rls"), &buf, &len), 0);
  CHECK_EQ(std::string(buf.data(), len), DebugfsFile("rls"));
  CHECK_EQ(buf.size(), cap);  // reused, not shrunk
  std::remove(tmpl);
  CHECK_EQ(ReadWholeFile(tmpl, &buf, &len), ENOENT);
  CHECK_EQ(len, size_t{0});
  CHECK_EQ(ReadWholeFile("/tmp", &buf, &len), EISDIR);
  CHECK_EQ(ReadWholeFile(std::string("/tmp/a\0b", 8), &buf, &len), EINVAL);
}
