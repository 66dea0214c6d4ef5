// The sampling loop of native/trace/sampler.h against the fixture roots, with a recording sink.
// Timing checks are behavioural (order, deadlines, counts); the only bound is the stop latency.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "kfd/input_file.h"
#include "trace/sampler.h"

using gpucolo::trace::MonotonicNowNs;
using gpucolo::trace::ThreadCpuNowNs;
using gpucolo::trace::ReadWholeFile;
using gpucolo::trace::Sample;
using gpucolo::trace::SampleSink;
using gpucolo::trace::Sampler;
using gpucolo::trace::SamplerOptions;
namespace kfd = gpucolo::kfd;

namespace {

constexpr int64_t kMs = 1000000;
const std::vector<double> kOnly42117{42117};

/**
 * Keeps what it takes; `policy` (run on the sampler thread) may stall, drop or close. Like the
 * JS wrapper (sameFiller in src/trace/sampler.ts) it fills the parts marked same back from the
 * last sample it took that had them (the flags stay set), and counts marks it could not honour.
 */
class Recorder : public SampleSink {
 public:
  using Policy = std::function<Delivery(const Sample&, bool last)>;
  explicit Recorder(Policy policy = nullptr) : policy_(std::move(policy)) {}

  Delivery Deliver(std::unique_ptr<Sample> s, bool last) override {
    const Delivery d = policy_ ? policy_(*s, last) : Delivery::kTaken;
    std::lock_guard<std::mutex> lock(mu_);
    ++offered_;
    if (last) ++last_;
    if (d == Delivery::kTaken) {
      Fill(s.get());
      taken_.push_back(std::move(s));
    }
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
  /** parts marked same that were not empty, or had no earlier part to repeat */
  int bad_same_ = 0;

 private:
  template <class Raw>
  struct Ref {
    bool has = false;
    std::shared_ptr<const Raw> raw;
  };
  template <class Raw>
  void FillPart(gpucolo::trace::DebugfsPart<Raw>* p, Ref<Raw>* ref) {
    if (p->same) {
      if (!p->ok || p->raw || !ref->has) ++bad_same_;
      p->raw = ref->raw;
    } else if (p->ok) {
      ref->raw = p->raw;
      ref->has = true;
    } else {
      ref->has = false;
    }
  }
  void Fill(Sample* s) {
    if (s->procs_same) {
      if (!s->procs.procs.empty() || !s->procs.issues.empty() || !has_procs_) ++bad_same_;
      s->procs = procs_;
    } else {
      procs_ = s->procs;
      has_procs_ = true;
    }
    if (!s->debugfs) {
      if (s->mqds.same || s->hqds.same || s->rls.same) ++bad_same_;
      return;
    }
    FillPart(&s->mqds, &mqds_);
    FillPart(&s->hqds, &hqds_);
    FillPart(&s->rls, &rls_);
  }

  kfd::ProcsRaw procs_;
  bool has_procs_ = false;
  Ref<kfd::MqdsRaw> mqds_;
  Ref<kfd::HqdsRaw> hqds_;
  Ref<kfd::RlsRaw> rls_;
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

/** A fresh directory /tmp/<prefix>XXXXXX. */
std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "XXXXXX";
  CHECK(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

/** A scratch debugfs root with copies of the fixture's kfd/{mqds,hqds,rls}; removed by the destructor. */
class ScratchDebugfs {
 public:
  ScratchDebugfs() {
    root_ = MakeTempDir("gpucolo-same-");
    CHECK_EQ(::mkdir((root_ + "/kfd").c_str(), 0755), 0);
    for (const char* f : {"mqds", "hqds", "rls"}) Replace(f, DebugfsFile(f));
  }
  ~ScratchDebugfs() {
    for (const char* f : {"mqds", "hqds", "rls"}) std::remove(Path(f).c_str());
    ::rmdir((root_ + "/kfd").c_str());
    ::rmdir(root_.c_str());
  }
  const std::string& root() const { return root_; }
  std::string Path(const char* name) const { return root_ + "/kfd/" + name; }
  /** write a temp file + rename, as a file changes atomically under a reader */
  void Replace(const char* name, const std::string& bytes) const {
    const std::string tmp = Path(name) + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << bytes;
    }
    CHECK_EQ(std::rename(tmp.c_str(), Path(name).c_str()), 0);
  }
  void Remove(const char* name) const { CHECK_EQ(std::remove(Path(name).c_str()), 0); }

 private:
  std::string root_;
};

const char kOtherRls[] = "Node 1, gpu_id 2:\n  No active runlist\n";
const char kThirdRls[] = "Node 3, gpu_id 4:\n  No active runlist\n";

kfd::RlsRaw ParseRlsText(const std::string& text) { return kfd::ParseRls(text.data(), text.size()); }

/** Runs a sampler with max_samples set until it stops by itself; it must end without an error. */
void RunToEnd(const SamplerOptions& o, Recorder* rec) {
  Sampler s(o, rec);
  s.Start();
  s.Join();
  CHECK_EQ(s.error(), std::string());
}

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
  CHECK_EQ(rec.bad_same_, 0);
  for (size_t i = 0; i < rec.taken_.size(); ++i) {
    const Sample& x = *rec.taken_[i];
    CHECK_EQ(x.seq, uint64_t{i});
    CHECK_EQ(x.dropped, uint64_t{0});
    missed += x.missed;
    CHECK_EQ(x.debugfs, x.seq % 5 == 0);
    // a static tree: everything after the first sample repeats it (the recorder filled it back)
    CHECK_EQ(x.procs_same, i > 0);
    CHECK_EQ(x.mqds.same && x.hqds.same && x.rls.same, x.debugfs && i > 0);
    if (i > 0) CHECK_EQ(x.parse_ns, 0.0);
    CHECK_EQ(x.procs.procs, procs.procs);
    CHECK_EQ(x.procs.queues, procs.queues);
    CHECK_EQ(x.procs.metrics, procs.metrics);
    CHECK(x.procs.issues.empty());
    if (x.debugfs) {
      ++with_debugfs;
      CHECK(x.mqds.ok && x.hqds.ok && x.rls.ok);
      CHECK(x.mqds.raw && x.hqds.raw && x.rls.raw);
      CHECK_EQ(x.mqds.raw->words, m.words);
      CHECK_EQ(x.mqds.raw->procs, m.procs);
      CHECK_EQ(x.mqds.raw->pasids, m.pasids);
      CHECK_EQ(x.mqds.raw->queues, m.queues);
      CHECK_EQ(x.mqds.raw->blocks, m.blocks);
      CHECK_EQ(x.mqds.raw->lines, m.lines);
      CHECK_EQ(x.hqds.raw->words, h.words);
      CHECK_EQ(x.hqds.raw->nodes, h.nodes);
      CHECK_EQ(x.hqds.raw->slots, h.slots);
      CHECK_EQ(x.rls.raw->words, r.words);
      CHECK_EQ(x.rls.raw->nodes, r.nodes);
      CHECK_EQ(x.rls.raw->packets, r.packets);
      CHECK(x.mqds.raw->issues.empty() && x.hqds.raw->issues.empty() && x.rls.raw->issues.empty());
    } else {
      CHECK(!x.mqds.ok && !x.hqds.ok && !x.rls.ok);
      CHECK(!x.mqds.raw);
      CHECK_EQ(x.mqds.error.code, std::string());
    }
  }
  CHECK_EQ(with_debugfs, uint64_t{4});
  CHECK_EQ(rec.last_, 1);  // the 20th
  if (missed != 0) std::printf("# sampler_fixture_timeline_and_tables: %llu intervals missed (slow host?)\n", (unsigned long long)missed);
}

TEST(sampler_debugfs_never) {
  Recorder rec;
  RunToEnd(FixtureOptions(1 * kMs, 0, 5), &rec);
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
  CHECK_EQ(x.rls.raw->nodes.size(), kfd::kRlsNodeCols);
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

namespace {

int64_t ProcessCpuNowNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

/** Spins until the calling thread has used `ns` more CPU time (not wall time: holds on a busy host). */
void BurnThreadCpu(int64_t ns) {
  const int64_t t0 = ThreadCpuNowNs();
  while (ThreadCpuNowNs() - t0 < ns) {
  }
}

}  // namespace

TEST(sampler_reports_its_own_thread_cpu_time) {
  // Each sample carries the sampling thread's cumulative CPU time (CLOCK_THREAD_CPUTIME_ID): the
  // sink burns 30 ms of CPU on that thread in sample 1, and sample 2 shows it; the 50 ms the test's
  // own thread burned before the start are in the process's clock and in no sample.
  const int64_t burn = 30 * kMs;
  int64_t process_at_first = 0;
  Recorder rec([&](const Sample& s, bool) {
    if (s.seq == 0) process_at_first = ProcessCpuNowNs();
    if (s.seq == 1) BurnThreadCpu(burn);
    return SampleSink::Delivery::kTaken;
  });
  BurnThreadCpu(50 * kMs);
  Sampler s(FixtureOptions(5 * kMs, 1, 4), &rec);
  s.Start();
  s.Join();
  CHECK_EQ(rec.taken_.size(), size_t{4});
  const auto& v = rec.taken_;
  CHECK(v[0]->thread_cpu_ns > 0);
  // a thread clock: the first sample's reads and parses, not the 50 ms of another thread
  CHECK(v[0]->thread_cpu_ns + static_cast<double>(40 * kMs) <= static_cast<double>(process_at_first));
  for (size_t i = 1; i < v.size(); ++i) CHECK(v[i]->thread_cpu_ns >= v[i - 1]->thread_cpu_ns);
  CHECK(v[2]->thread_cpu_ns - v[1]->thread_cpu_ns >= static_cast<double>(burn));
  // a thread's CPU time never exceeds its wall time (it started after the origin)
  for (const auto& x : v) CHECK(x->thread_cpu_ns <= x->actual_ns + x->read_ns + x->parse_ns + static_cast<double>(kMs));
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
  CHECK(rec.WaitUntil([&] { return rec.done_ == 1; }, std::chrono::seconds(60)));
  s.Join();
  CHECK_EQ(rec.offered_, 3);
  CHECK_EQ(rec.taken_.size(), size_t{2});
}

TEST(sampler_stop_interrupts_a_long_sleep) {
  Recorder rec;
  // a 60 s interval: a stop that waited for the next deadline would take ~60 s, one that
  // interrupts the sleep takes microseconds (milliseconds on a busy host); the bound is half the
  // interval, so only the former breaks it
  Sampler s(FixtureOptions(60000 * kMs, 1, 0), &rec);
  s.Start();
  CHECK(rec.WaitUntil([&] { return rec.taken_.size() == 1; }, std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // now inside the 60 s sleep
  const int64_t t0 = MonotonicNowNs();
  s.RequestStop();
  s.Join();
  const int64_t latency = MonotonicNowNs() - t0;
  std::printf("# stop latency during a 60 s sleep: %.3f ms\n", static_cast<double>(latency) / 1e6);
  CHECK(latency < 30000 * kMs);
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
  CHECK(rec.WaitUntil([&] { return rec.taken_.size() >= 2; }, std::chrono::seconds(60)));
  s.SetPids(nullptr);
  CHECK(rec.WaitUntil([&] { return rec.taken_.back()->procs.procs.size() == 2 * kfd::kProcsProcCols; }, std::chrono::seconds(60)));
  const std::vector<double> none;
  s.SetPids(&none);
  CHECK(rec.WaitUntil([&] { return rec.taken_.back()->procs.procs.empty(); }, std::chrono::seconds(60)));
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

TEST(sampler_unchanged_parts_are_same_changed_and_unreadable_ones_fresh) {
  ScratchDebugfs dir;
  const std::string hqds = DebugfsFile("hqds");
  // the policy runs on the sampler thread before the next sample is read: no race with the files
  Recorder rec([&](const Sample& s, bool) {
    if (s.seq == 1) dir.Replace("rls", kOtherRls);
    if (s.seq == 2) dir.Remove("hqds");
    if (s.seq == 3) dir.Replace("hqds", hqds);  // the very bytes of the last good read
    return SampleSink::Delivery::kTaken;
  });
  SamplerOptions o = FixtureOptions(2 * kMs, 1, 6);
  o.debugfs_root = dir.root();
  RunToEnd(o, &rec);
  CHECK_EQ(rec.taken_.size(), size_t{6});
  CHECK_EQ(rec.bad_same_, 0);
  const auto& t = rec.taken_;
  struct Want {
    bool procs, mqds, hqds, rls;
  };
  const Want want[] = {
      {false, false, false, false},  // first: everything parsed
      {true, true, true, true},      // static
      {true, true, true, false},     // rls changed
      {true, true, false, true},     // hqds unreadable: an error, never same
      {true, true, false, true},     // hqds back with its old bytes: parsed again after the error
      {true, true, true, true},
  };
  for (size_t i = 0; i < t.size(); ++i) {
    CHECK_EQ(t[i]->procs_same, want[i].procs);
    CHECK_EQ(t[i]->mqds.same, want[i].mqds);
    CHECK_EQ(t[i]->hqds.same, want[i].hqds);
    CHECK_EQ(t[i]->rls.same, want[i].rls);
    const bool parsed = !(want[i].mqds && want[i].rls && (want[i].hqds || i == 3));
    if (!parsed) CHECK_EQ(t[i]->parse_ns, 0.0);
    if (parsed) CHECK(t[i]->parse_ns > 0);
  }
  CHECK(!t[3]->hqds.ok);
  CHECK_EQ(t[3]->hqds.error.code, std::string("ENOENT"));
  CHECK_EQ(t[3]->hqds.error.message, "cannot read " + dir.Path("hqds") + " (ENOENT)");
  const kfd::HqdsRaw h = kfd::ParseHqds(hqds.data(), hqds.size());
  CHECK(t[4]->hqds.ok);
  CHECK_EQ(t[4]->hqds.raw->words, h.words);
  CHECK_EQ(t[4]->hqds.raw->slots, h.slots);
  const kfd::RlsRaw r0 = ParseRlsText(DebugfsFile("rls")), r1 = ParseRlsText(kOtherRls);
  CHECK_EQ(t[1]->rls.raw->nodes, r0.nodes);
  for (size_t i = 2; i < t.size(); ++i) CHECK_EQ(t[i]->rls.raw->nodes, r1.nodes);
  CHECK(r0.nodes != r1.nodes);
}

TEST(sampler_dropped_samples_never_become_references) {
  ScratchDebugfs dir;
  const std::string rls = DebugfsFile("rls");
  Sampler* sp = nullptr;
  // seq 1, 3 and 5 are dropped; each change happens before the next sample is read
  Recorder rec([&](const Sample& s, bool) {
    switch (s.seq) {
      case 0:
        dir.Replace("rls", kOtherRls);  // seq 1 parses it, but is dropped
        sp->SetPids(&kOnly42117);       // so are its procs
        break;
      case 2:
        dir.Replace("rls", kThirdRls);  // seq 3 parses it, dropped; seq 4 reads kOtherRls again
        break;
      case 3:
        dir.Replace("rls", kOtherRls);
        break;
      case 4:
        dir.Remove("mqds");  // seq 5: an error, dropped
        break;
      case 5:
        dir.Replace("mqds", DebugfsFile("mqds"));  // seq 6: the bytes of the reference, after an error
        break;
      default:
        break;
    }
    return s.seq % 2 == 1 && s.seq < 6 ? SampleSink::Delivery::kDropped : SampleSink::Delivery::kTaken;
  });
  SamplerOptions o = FixtureOptions(2 * kMs, 1, 7);
  o.debugfs_root = dir.root();
  Sampler s(o, &rec);
  sp = &s;
  s.Start();
  s.Join();
  CHECK_EQ(s.error(), std::string());
  CHECK_EQ(rec.bad_same_, 0);
  const auto& t = rec.taken_;
  CHECK_EQ(t.size(), size_t{4});  // seq 0, 2, 4, 6
  const kfd::RlsRaw r0 = ParseRlsText(rls), r1 = ParseRlsText(kOtherRls);
  const kfd::ProcsRaw all = kfd::ReadKfdProcs(gpucolo_test::FixturePath("sysfs"), nullptr);
  const kfd::ProcsRaw one = kfd::ReadKfdProcs(gpucolo_test::FixturePath("sysfs"), &kOnly42117);
  CHECK(all.procs != one.procs);
  CHECK_EQ(t[0]->seq, uint64_t{0});
  CHECK_EQ(t[0]->rls.raw->nodes, r0.nodes);
  CHECK_EQ(t[0]->procs.procs, all.procs);
  // seq 2 repeats the dropped seq 1, not seq 0: it must come in full
  CHECK_EQ(t[1]->seq, uint64_t{2});
  CHECK_EQ(t[1]->dropped, uint64_t{1});
  CHECK(!t[1]->rls.same && !t[1]->procs_same);
  CHECK_EQ(t[1]->rls.raw->nodes, r1.nodes);
  CHECK_EQ(t[1]->procs.procs, one.procs);
  CHECK(t[1]->mqds.same && t[1]->hqds.same);
  // seq 4 equals seq 2 (taken), not the dropped seq 3
  CHECK_EQ(t[2]->seq, uint64_t{4});
  CHECK(t[2]->rls.same && t[2]->procs_same && t[2]->mqds.same);
  CHECK_EQ(t[2]->rls.raw->nodes, r1.nodes);
  CHECK_EQ(t[2]->parse_ns, 0.0);
  // seq 6: mqds has the reference's bytes again, but an error came between (even a dropped one)
  CHECK_EQ(t[3]->seq, uint64_t{6});
  CHECK(!t[3]->mqds.same && t[3]->mqds.ok);
  CHECK(t[3]->rls.same && t[3]->hqds.same && t[3]->procs_same);
  const std::string mqds = DebugfsFile("mqds");
  CHECK_EQ(t[3]->mqds.raw->words, kfd::ParseMqds(mqds.data(), mqds.size()).words);
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

TEST(sampler_read_whole_file_refuses_fifos_and_devices) {
  char dir[] = "/tmp/gpucolo-fifo-XXXXXX";
  CHECK(mkdtemp(dir) != nullptr);
  const std::string fifo = std::string(dir) + "/hqds";
  CHECK_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  std::vector<char> buf;
  size_t len = 7;
  // no writer ever opens it: a blocking open or read would never return
  CHECK_EQ(ReadWholeFile(fifo, &buf, &len), gpucolo::kfd::kErrNotRegular);
  CHECK_EQ(len, size_t{0});
  CHECK_EQ(ReadWholeFile("/dev/zero", &buf, &len), gpucolo::kfd::kErrNotRegular);
  CHECK_EQ(ReadWholeFile("/dev/urandom", &buf, &len), gpucolo::kfd::kErrNotRegular);
  ::remove(fifo.c_str());
  ::remove(dir);
}

namespace {
/** The n-th register word (after a colon) of a dump replaced by `with` (8 hex digits). */
std::string WithWord(std::string text, size_t n, const char* with) {
  size_t pos = 0;
  for (size_t seen = 0; seen <= n; ++seen) {
    pos = text.find(": ", pos);
    if (pos == std::string::npos) throw gpucolo_test::Failure{"no such word"};
    pos += 2;
  }
  text.replace(pos, 8, with);
  return text;
}
}  // namespace

TEST(sampler_words_only_changes_are_patched_like_a_full_parse) {
  ScratchDebugfs dir;
  const std::string hqds = DebugfsFile("hqds");
  const std::string v1 = WithWord(hqds, 10, "00001111");
  const std::string v2 = WithWord(v1, 11, "00002222");
  const std::string v3 = WithWord(v2, 12, "00003333");
  std::string shifted = v3;  // a structural change: one more byte in a header line
  shifted.insert(shifted.find("Node ") + 5, "1");
  const std::string v5 = WithWord(shifted, 13, "00005555");
  // the file of sample k is written while sample k - 1 is delivered; sample 3 is dropped
  Recorder rec([&](const Sample& s, bool) {
    if (s.seq == 0) dir.Replace("hqds", v1);
    if (s.seq == 1) dir.Replace("hqds", v2);
    if (s.seq == 2) dir.Replace("hqds", v3);
    if (s.seq == 3) dir.Replace("hqds", shifted);
    if (s.seq == 4) dir.Replace("hqds", v5);
    return s.seq == 3 ? SampleSink::Delivery::kDropped : SampleSink::Delivery::kTaken;
  });
  SamplerOptions o = FixtureOptions(2 * kMs, 1, 6);
  o.debugfs_root = dir.root();
  RunToEnd(o, &rec);
  const auto& t = rec.taken_;
  CHECK_EQ(t.size(), size_t{5});
  const std::string texts[] = {hqds, v1, v2, shifted, v5};  // seq 0, 1, 2, 4, 5 (3 dropped)
  const bool patched[] = {false, true, true, false, true};
  const size_t changed[] = {0, 1, 1, 0, 1};
  for (size_t i = 0; i < t.size(); ++i) {
    const kfd::HqdsRaw full = kfd::ParseHqds(texts[i].data(), texts[i].size());
    CHECK_EQ(t[i]->hqds.patched, patched[i]);
    CHECK_EQ(t[i]->hqds.changed_words.size(), changed[i]);
    CHECK_EQ(t[i]->hqds.raw->words, full.words);
    CHECK_EQ(t[i]->hqds.raw->slots, full.slots);
    CHECK_EQ(t[i]->hqds.raw->nodes, full.nodes);
  }
  // a patched sample's tables are new ones (the sample before it keeps its own), made once and
  // shared with the reference the next patch starts from, never changed after
  CHECK(t[1]->hqds.raw != t[0]->hqds.raw && t[2]->hqds.raw != t[1]->hqds.raw);
  CHECK_EQ(t[1]->hqds.raw->words, kfd::ParseHqds(v1.data(), v1.size()).words);
}

namespace {

/** A scratch copy of the fixture's sysfs and a /proc with stat files; removed by the destructor. */
class ScratchHost {
 public:
  ScratchHost() {
    root_ = MakeTempDir("gpucolo-pids-");
    std::filesystem::copy(gpucolo_test::FixturePath("sysfs"), sysfs(), std::filesystem::copy_options::recursive);
    std::filesystem::create_directories(proc() + "/41872");
  }
  ~ScratchHost() { std::filesystem::remove_all(root_); }
  std::string sysfs() const { return root_ + "/sys"; }
  std::string proc() const { return root_ + "/proc"; }
  /** /proc/<pid>/stat with this start time (field 22) and ')' and spaces in the name */
  void Stat(int pid, long start) const {
    StatText(pid, std::to_string(pid) + " (py (3) x) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 " + std::to_string(start) + " 0 0\n");
  }
  void StatText(int pid, const std::string& text) const {
    std::filesystem::create_directories(proc() + "/" + std::to_string(pid));
    std::ofstream(proc() + "/" + std::to_string(pid) + "/stat", std::ios::trunc) << text;
  }
  /** proc/<pid>/queues/<qid> with a compute queue's files */
  void AddQueue(int pid, int qid) const {
    const std::string q = sysfs() + "/class/kfd/kfd/proc/" + std::to_string(pid) + "/queues/" + std::to_string(qid);
    std::filesystem::create_directories(q);
    std::ofstream(q + "/type") << "0\n";
    std::ofstream(q + "/size") << "1048576\n";
    std::ofstream(q + "/gpuid") << "31774\n";
  }
  void RemoveQueue(int pid, int qid) const {
    std::filesystem::remove_all(sysfs() + "/class/kfd/kfd/proc/" + std::to_string(pid) + "/queues/" + std::to_string(qid));
  }

 private:
  std::string root_;
};

}  // namespace

TEST(sampler_reads_start_times_of_new_and_changed_processes_at_the_sample) {
  ScratchHost host;
  host.Stat(41872, 1000);  // 42117 has no stat: -1
  // the policy runs on the sampler thread before the next sample is read
  Recorder rec([&](const Sample& s, bool) {
    if (s.seq == 1) host.AddQueue(41872, 9);  // a new queue of the same process
    if (s.seq == 2) {
      host.Stat(41872, 2000);  // another process behind the pid, with other queues
      host.RemoveQueue(41872, 9);
      host.RemoveQueue(41872, 0);
    }
    if (s.seq == 3) host.Stat(41872, 3000);  // queues unchanged: not looked at
    return SampleSink::Delivery::kTaken;
  });
  SamplerOptions o = FixtureOptions(2 * kMs, 0, 5);
  o.sysfs_root = host.sysfs();
  o.proc_root = host.proc();
  RunToEnd(o, &rec);
  const auto& t = rec.taken_;
  CHECK_EQ(t.size(), size_t{5});
  CHECK_EQ(t[0]->pid_starts, (std::vector<double>{41872, 1000, 42117, -1}));
  CHECK(t[0]->pids_changed);  // both processes new
  CHECK(t[1]->procs_same);
  CHECK(t[1]->pid_starts.empty());
  CHECK(!t[1]->pids_changed);
  CHECK_EQ(t[2]->pid_starts, (std::vector<double>{41872, 1000}));
  CHECK(!t[2]->pids_changed);  // the same process, one more queue
  CHECK_EQ(t[3]->pid_starts, (std::vector<double>{41872, 2000}));
  CHECK(t[3]->pids_changed);  // the pid was reused
  CHECK(t[4]->pid_starts.empty());
  CHECK(!t[4]->pids_changed);
}

TEST(sampler_start_time_of_a_damaged_stat_is_unknown) {
  // cut before field 22, no ')' at all, a start time that is not a number: each -1, never 0
  const std::string damaged[] = {"41872 (python3) S 1 1 1 0 -1 4194560 0 0\n", "41872 python3 S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 64 0 1000 0 0\n",
                                 "41872 (python3) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 12x4 0 0\n"};
  for (const std::string& text : damaged) {
    ScratchHost host;
    host.StatText(41872, text);
    host.Stat(42117, 5000);
    Recorder rec;
    SamplerOptions o = FixtureOptions(2 * kMs, 0, 1);
    o.sysfs_root = host.sysfs();
    o.proc_root = host.proc();
    RunToEnd(o, &rec);
    CHECK_EQ(rec.taken_.size(), size_t{1});
    CHECK_EQ(rec.taken_[0]->pid_starts, (std::vector<double>{41872, -1, 42117, 5000}));
  }
}

TEST(sampler_without_proc_root_reads_no_start_times) {
  Recorder rec;
  RunToEnd(FixtureOptions(2 * kMs, 0, 2), &rec);
  CHECK_EQ(rec.taken_.size(), size_t{2});
  CHECK(rec.taken_[0]->pid_starts.empty());
  CHECK(rec.taken_[0]->pids_changed);  // new processes all the same
  CHECK(!rec.taken_[1]->pids_changed);
}
