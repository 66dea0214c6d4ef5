#include "sampler.h"

#include "kfd/input_file.h"
#include "kfd/sysfs_procs.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

namespace gpucolo {
namespace trace {
namespace {

constexpr int64_t kNsPerSec = 1000000000;
/** first size of a debugfs read buffer; an 8-GPU MI300 hqds dump is a few MB, the fixture 96 KB */
constexpr size_t kFirstBufferBytes = 64 * 1024;

const char* ErrnoName(int err) { return kfd::InputErrorName(err); }  // as sysfs_reader.cc

class Locked {
 public:
  explicit Locked(pthread_mutex_t* mu) : mu_(mu) { pthread_mutex_lock(mu_); }
  ~Locked() { pthread_mutex_unlock(mu_); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  pthread_mutex_t* mu_;
};

bool SameBytes(const std::vector<double>& a, const std::vector<double>& b) {
  // byte for byte, as JS compares the Float64Arrays (NaN equals itself, -0 differs from 0)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

bool SameProcs(const kfd::ProcsRaw& a, const kfd::ProcsRaw& b) {
  if (!SameBytes(a.procs, b.procs) || !SameBytes(a.queues, b.queues) || !SameBytes(a.metrics, b.metrics)) return false;
  if (a.issues.size() != b.issues.size()) return false;
  for (size_t i = 0; i < a.issues.size(); ++i) {
    const kfd::ReadIssue& x = a.issues[i];
    const kfd::ReadIssue& y = b.issues[i];
    if (x.severity != y.severity || x.path != y.path || x.message != y.message || x.code != y.code) return false;
  }
  return true;
}

}  // namespace

int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

int64_t ThreadCpuNowNs() {
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

int ReadWholeFile(const std::string& path, std::vector<char>* buf, size_t* len) {
  if (buf->size() < kFirstBufferBytes) buf->resize(kFirstBufferBytes);
  return kfd::ReadInputFile(path, kfd::kMaxDebugfsFileBytes, buf, len);
}

Sampler::Sampler(SamplerOptions options, SampleSink* sink)
    : options_(std::move(options)),
      sink_(sink),
      filter_pids_(options_.filter_pids),
      pids_(options_.pids),
      mqds_(kfd::UnderRoot(options_.debugfs_root, "kfd/mqds")),
      hqds_(kfd::UnderRoot(options_.debugfs_root, "kfd/hqds")),
      rls_(kfd::UnderRoot(options_.debugfs_root, "kfd/rls")),
      walker_(options_.sysfs_root, options_.incremental, options_.counters_every) {
  pthread_mutex_init(&mu_, nullptr);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  // deadlines are absolute CLOCK_MONOTONIC times, like clock_nanosleep(TIMER_ABSTIME)
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&cond_, &attr);
  pthread_condattr_destroy(&attr);
}

Sampler::~Sampler() {
  RequestStop();
  Join();
  pthread_cond_destroy(&cond_);
  pthread_mutex_destroy(&mu_);
}

void Sampler::Start() {
  origin_ns_ = MonotonicNowNs();
  finished_.store(false, std::memory_order_release);
  try {
    thread_ = std::thread(&Sampler::Run, this);
  } catch (...) {
    finished_.store(true, std::memory_order_release);
    throw;
  }
}

void Sampler::RequestStop() {
  Locked lock(&mu_);
  stop_ = true;
  pthread_cond_broadcast(&cond_);
}

void Sampler::Join() {
  if (thread_.joinable()) thread_.join();
}

void Sampler::SetPids(const std::vector<double>* pids) {
  Locked lock(&mu_);
  filter_pids_ = pids != nullptr;
  if (pids) {
    pids_ = *pids;
  } else {
    pids_.clear();
  }
}

bool Sampler::SleepUntil(int64_t deadline_ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(deadline_ns / kNsPerSec);
  ts.tv_nsec = static_cast<long>(deadline_ns % kNsPerSec);
  Locked lock(&mu_);
  while (!stop_) {
    // ETIMEDOUT once CLOCK_MONOTONIC >= deadline; 0 = signalled or spurious: look again
    if (pthread_cond_timedwait(&cond_, &mu_, &ts) == ETIMEDOUT) break;
  }
  return !stop_;
}

void Sampler::Run() {
  pthread_setname_np(pthread_self(), "gpucolo-sampler");
  kfd::tl_io_clock.on = true;  // this thread's file-system calls are timed (Sample::io_ns)
  // nothing may escape a thread function (std::terminate): a failure ends sampling, and the
  // sink still gets Done() so its owner learns that the thread is over
  try {
    Loop();
  } catch (const std::exception& e) {
    error_ = e.what();
  } catch (...) {
    error_ = "unknown exception";
  }
  sink_->Done();
  finished_.store(true, std::memory_order_release);
}

void Sampler::Loop() {
  const int64_t interval = options_.interval_ns;
  uint64_t k = 0;    // interval index: due at origin + k * interval
  uint64_t seq = 0;  // samples taken
  // carried into the next sample the sink takes, so that for every taken sample
  // intended_ns == (seq + all missed so far) * interval and seq - previous seq - 1 == dropped
  uint64_t dropped = 0;
  uint64_t missed_pending = 0;
  for (;;) {
    if (options_.max_samples != 0 && seq >= options_.max_samples) return;
    const int64_t deadline = origin_ns_ + static_cast<int64_t>(k) * interval;
    if (!SleepUntil(deadline)) return;
    {
      Locked lock(&mu_);
      filter_now_ = filter_pids_;
      if (filter_now_) pids_now_ = pids_;
    }
    const int64_t now = MonotonicNowNs();  // just before reading: the sample's actual time
    uint64_t missed = 0;
    if (now - deadline >= interval) {
      // woke one or more whole intervals late: skip those deadlines, take one sample now
      missed = static_cast<uint64_t>((now - deadline) / interval);
      k += missed;
    }
    std::unique_ptr<Sample> s = TakeSample(k, seq, now);
    const bool last = options_.max_samples != 0 && seq + 1 == options_.max_samples;
    s->seq = seq++;
    s->missed = missed_pending + missed;
    s->dropped = dropped;
    s->thread_cpu_ns = static_cast<double>(ThreadCpuNowNs());
    switch (sink_->Deliver(std::move(s), last)) {
      case SampleSink::Delivery::kTaken:
        Commit();
        dropped = 0;
        missed_pending = 0;
        break;
      case SampleSink::Delivery::kDropped:
        ++dropped;
        missed_pending += missed;
        break;
      case SampleSink::Delivery::kClosed:
        return;
    }
    ++k;
  }
}

void Sampler::DebugfsFile::Read() {
  err = ReadWholeFile(path, &buf, &len);
  if (err != 0) {
    state = State::kError;
    has_ref = false;  // never `same` after an error, even one the sink drops
  } else if (has_ref && len == ref_len && (len == 0 || std::memcmp(buf.data(), ref.data(), len) == 0)) {
    state = State::kSame;
  } else {
    state = State::kFresh;
  }
}

void Sampler::DebugfsFile::Commit() {
  switch (state) {
    case State::kFresh:
      // the bytes just parsed and taken are the new reference; the old one's memory is the next read buffer
      buf.swap(ref);
      ref_len = len;
      has_ref = true;
      break;
    case State::kError:  // Read() already dropped the reference
    case State::kSame:
    case State::kUnread:
      break;
  }
}

template <class Raw>
void Sampler::CommitParsed(const DebugfsFile& file, ParsedRef<Raw>* ref, ParsedRef<Raw>* next) {
  if (file.state == DebugfsFile::State::kError) {
    ref->valid = false;
  } else if (file.state == DebugfsFile::State::kFresh && next->valid) {
    ref->raw = std::move(next->raw);
    if (!next->lines_from_ref) ref->lines = std::move(next->lines);
    ref->valid = true;
  }
  next->valid = false;
}

void Sampler::Commit() {
  // before the files commit: CommitParsed reads their state of this sample
  CommitParsed(mqds_, &mqds_ref_, &mqds_next_);
  CommitParsed(hqds_, &hqds_ref_, &hqds_next_);
  if (procs_fresh_) {
    procs_ref_ = std::move(procs_next_);
    has_procs_ref_ = true;
    procs_fresh_ = false;
  }
  mqds_.Commit();
  hqds_.Commit();
  rls_.Commit();
}

template <class Raw, class Parse>
bool Sampler::ParseInto(DebugfsPart<Raw>* part, const DebugfsFile& file, Parse parse) {
  switch (file.state) {
    case DebugfsFile::State::kError: {
      const char* code = ErrnoName(file.err);
      part->error = ReadError{code, "cannot read " + file.path + " (" + kfd::IssueCodeText(code, kfd::kMaxDebugfsFileBytes) + ")"};
      return false;
    }
    case DebugfsFile::State::kSame:
      part->ok = true;
      part->same = true;
      return false;
    case DebugfsFile::State::kFresh:
      part->raw = std::make_shared<const Raw>(parse(file.buf.data(), file.len));
      part->ok = true;
      return true;
    case DebugfsFile::State::kUnread:
      break;
  }
  return false;
}

template <class Raw, class Parse>
bool Sampler::ParsePatchable(DebugfsPart<Raw>* part, const DebugfsFile& file, Parse parse, const ParsedRef<Raw>& ref, ParsedRef<Raw>* next) {
  next->valid = false;
  if (file.state != DebugfsFile::State::kFresh) {
    return ParseInto(part, file, [&](const char* data, size_t len) { return parse(data, len, nullptr); });
  }
  if (file.has_ref && ref.valid && file.len == file.ref_len) {
    // the one copy: the reference's tables may still be in a sample on its way to JS
    auto patched = std::make_shared<Raw>(*ref.raw);
    if (kfd::PatchWords(file.ref.data(), file.buf.data(), file.len, ref.lines, &patched->words, &part->changed_words)) {
      next->raw = patched;
      next->lines_from_ref = true;
      next->valid = true;
      part->raw = std::move(patched);  // shared with next: no second copy for the sink
      part->ok = true;
      part->patched = true;
      return true;
    }
    part->changed_words.clear();
  }
  next->lines.clear();
  next->raw = std::make_shared<const Raw>(parse(file.buf.data(), file.len, &next->lines));
  next->lines_from_ref = false;
  next->valid = true;
  part->raw = next->raw;
  part->ok = true;
  return true;
}

std::unique_ptr<Sample> Sampler::TakeSample(uint64_t k, uint64_t seq, int64_t t0) {
  auto s = std::make_unique<Sample>();
  const int64_t cpu0 = ThreadCpuNowNs();
  const int64_t io0 = kfd::tl_io_clock.ns;
  s->intended_ns = static_cast<double>(static_cast<int64_t>(k) * options_.interval_ns);
  s->actual_ns = static_cast<double>(t0 - origin_ns_);  // < intended + interval, >= intended
  // what the previous (dropped or taken) sample left pending is void: only a taken one commits
  procs_fresh_ = false;
  mqds_.state = hqds_.state = rls_.state = DebugfsFile::State::kUnread;
  procs_next_ = walker_.Read(filter_now_ ? &pids_now_ : nullptr);
  s->walk = walker_.last_stats();
  if (has_procs_ref_ && SameProcs(procs_next_, procs_ref_)) {
    s->procs_same = true;
  } else {
    s->procs = procs_next_;  // a copy: procs_next_ becomes the reference if the sink takes it
    procs_fresh_ = true;
  }
  s->debugfs = options_.debugfs_every != 0 && seq % options_.debugfs_every == 0;
  if (s->debugfs) {
    mqds_.Read();
    hqds_.Read();
    rls_.Read();
  }
  const int64_t t1 = MonotonicNowNs();
  s->read_ns = static_cast<double>(t1 - t0);
  bool parsed = false;
  if (s->debugfs) {
    const auto parse_mqds = [](const char* data, size_t len, std::vector<kfd::WordLine>* lines) { return kfd::ParseMqds(data, len, lines); };
    const auto parse_hqds = [](const char* data, size_t len, std::vector<kfd::WordLine>* lines) { return kfd::ParseHqds(data, len, lines); };
    parsed |= ParsePatchable(&s->mqds, mqds_, parse_mqds, mqds_ref_, &mqds_next_);
    parsed |= ParsePatchable(&s->hqds, hqds_, parse_hqds, hqds_ref_, &hqds_next_);
    parsed |= ParseInto(&s->rls, rls_, [](const char* data, size_t len) { return kfd::ParseRls(data, len); });
  }
  s->parse_ns = parsed ? static_cast<double>(MonotonicNowNs() - t1) : 0;
  s->io_ns = static_cast<double>(kfd::tl_io_clock.ns - io0);
  const int64_t cpu1 = ThreadCpuNowNs();
  s->cpu_ns = cpu0 >= 0 && cpu1 >= 0 ? static_cast<double>(cpu1 - cpu0) : -1;
  return s;
}

}  // namespace trace
}  // namespace gpucolo
