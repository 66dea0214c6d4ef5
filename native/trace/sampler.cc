#include "sampler.h"

#include "kfd/input_file.h"
#include "kfd/sysfs_procs.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>
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

/** FNV-1a over a queue row's values but its process index (which moves when other processes come and go). */
uint64_t HashQueueRows(const std::vector<double>& queues, size_t first, size_t count) {
  uint64_t h = 1469598103934665603ull;
  for (size_t r = first; r < first + count && (r + 1) * kfd::kProcsQueueCols <= queues.size(); ++r) {
    for (size_t c = 0; c < kfd::kProcsQueueCols; ++c) {
      if (c == kfd::ProcsQueueCol::proc) continue;
      uint64_t bits;
      const double v = queues[r * kfd::kProcsQueueCols + c];
      std::memcpy(&bits, &v, sizeof bits);
      for (int b = 0; b < 8; ++b) h = (h ^ ((bits >> (8 * b)) & 0xff)) * 1099511628211ull;
    }
  }
  return h;
}

/**
 * Field 22 of <proc_root>/<pid>/stat (starttime, clock ticks after boot), found after the LAST ')'
 * since a program may put ')' and spaces into its own name (parseStat in
 * src/supervisor/proctree.ts reads it the same way); -1 when the file cannot be read or parsed.
 */
double ReadStartTicks(const std::string& proc_root, double pid, std::string* buf) {
  size_t len = 0;
  char name[32];
  std::snprintf(name, sizeof name, "%.0f/stat", pid);
  if (kfd::ReadInputFile(kfd::UnderRoot(proc_root, name), kfd::kMaxSysfsFileBytes, buf, &len) != 0) return -1;
  const std::string_view text(buf->data(), len);
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 > text.size()) return -1;
  // after ") ": state is field 3, starttime field 22: the 20th field from here
  size_t at = close + 2;
  for (int field = 3; field < 22; ++field) {
    at = text.find(' ', at);
    if (at == std::string_view::npos) return -1;
    at = text.find_first_not_of(' ', at);
    if (at == std::string_view::npos) return -1;
  }
  double ticks = 0;
  size_t digits = 0;
  for (; at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 19; ++at, ++digits) ticks = ticks * 10 + (text[at] - '0');
  const bool ended = at == text.size() || text[at] == ' ' || text[at] == '\n';
  return digits > 0 && ended ? ticks : -1;
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
    // swapped, not moved: the old reference's capacity is the next parse's, so the lines of a
    // full parse grow into reserved room instead of reallocating as they are pushed
    if (!next->lines_from_ref) ref->lines.swap(next->lines);
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
    pids_ref_.swap(pids_next_);
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

void Sampler::NotePids(Sample* s) {
  pids_next_.clear();
  const std::vector<double>& procs = procs_next_.procs;
  for (size_t r = 0; (r + 1) * kfd::kProcsProcCols <= procs.size(); ++r) {
    const double* row = &procs[r * kfd::kProcsProcCols];
    const double pid = row[kfd::ProcsProcCol::pid];
    const uint64_t hash = HashQueueRows(procs_next_.queues, static_cast<size_t>(row[kfd::ProcsProcCol::firstQueue]),
                                        static_cast<size_t>(row[kfd::ProcsProcCol::queueCount]));
    const auto key = static_cast<uint64_t>(pid);
    const auto before = pids_ref_.find(key);
    if (before != pids_ref_.end() && before->second.queues_hash == hash) {
      pids_next_.emplace(key, before->second);
      continue;
    }
    // new, or its queues changed: the one moment a pid taken over by another process can show
    SeenPid now{hash, -1};
    if (!options_.proc_root.empty()) {
      now.start_ticks = ReadStartTicks(options_.proc_root, pid, &stat_text_);
      s->pid_starts.push_back(pid);
      s->pid_starts.push_back(now.start_ticks);
    }
    const bool reused = before != pids_ref_.end() && now.start_ticks >= 0 && before->second.start_ticks >= 0 &&
                        now.start_ticks != before->second.start_ticks;
    if (before == pids_ref_.end() || reused) s->pids_changed = true;
    // an unreadable stat keeps the start time known before (the process may be exiting)
    if (now.start_ticks < 0 && before != pids_ref_.end()) now.start_ticks = before->second.start_ticks;
    pids_next_.emplace(key, now);
  }
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
    NotePids(s.get());
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
