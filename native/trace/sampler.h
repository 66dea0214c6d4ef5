// The sampling loop of the tracer, plain C++ (no N-API): one dedicated thread reads the KFD sysfs
// proc tree every interval and the debugfs kfd/{mqds,hqds,rls} files every N-th interval, parses
// them with the kfd/ parsers and hands each sample to a SampleSink. native/trace/binding.cc puts
// a TypedThreadSafeFunction behind the sink; native/tests/test_sampler.cc a plain recorder.
//
// Timing (all on CLOCK_MONOTONIC, ns): origin = the time Start() was called; interval k is due at
// origin + k*interval (k from 0), and the thread sleeps until that absolute deadline. When it wakes
// one or more whole intervals late it skips those deadlines and reports how many in `missed` of
// the sample it then takes: it never takes a burst of catch-up samples. `seq` counts samples
// taken (dropped ones included); debugfs is read in the samples whose seq is a multiple of
// debugfs_every (as the TS sampler does), so it is read once every N samples even when the thread
// falls behind. With max_samples the last sample is never dropped: the sink must take it (it may
// block), so the consumer sees seq == max_samples - 1 and every drop is reported.
//
// Unchanged parts are not parsed again: the sampler keeps the bytes of each debugfs file and the
// proc tables as they were in the last sample the sink TOOK (the reference; a dropped sample never
// becomes one). A part equal to its reference byte for byte (debugfs: same length and memcmp;
// procs: tables and issues) is marked `same` and left empty, and the consumer reuses what it got
// for that part before (src/trace/sampler.ts fills it back). A file that could not be read is
// never `same`, and a read error (taken or dropped) drops that file's reference: the next good
// read is parsed and sent in full.
//
// Cost: every sample carries the thread's own cumulative CPU time (thread_cpu_ns, from
// CLOCK_THREAD_CPUTIME_ID), so a consumer can tell the sampler's CPU apart from the JS thread's
// and from the wall time its reads take.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kfd/hqds_parser.h"
#include "kfd/mqds_parser.h"
#include "kfd/rls_parser.h"
#include "kfd/sysfs_procs.h"
#include "kfd/word_patch.h"
#include "kfd/sysfs_reader.h"

namespace gpucolo {
namespace trace {

/** CLOCK_MONOTONIC now, ns. */
int64_t MonotonicNowNs();

/**
 * CPU time (user + system) the calling thread has used since it started, ns
 * (CLOCK_THREAD_CPUTIME_ID); -1 if the clock cannot be read.
 */
int64_t ThreadCpuNowNs();

/** A debugfs file that could not be read (NativeReadError in src/native.ts). */
struct ReadError {
  /** errno name (ENOENT, EACCES, ...) */
  std::string code;
  /** "cannot read <path> (<code>)" */
  std::string message;
};

/** One debugfs table of a sample: the parsed tables, or why the file could not be read. */
template <class Raw>
struct DebugfsPart {
  /** the file was read (raw holds its tables unless `same`) */
  bool ok = false;
  /**
   * ok, and the bytes equal those of this file in the last sample the sink took that read
   * debugfs: not parsed, raw left null (the consumer reuses the tables it got then)
   */
  bool same = false;
  /**
   * The tables; null unless ok and not same. Shared with the sampler's reference for mqds/hqds
   * (immutable once made): a sample patched from the reference costs one copy of the tables,
   * not one for the reference and one for the sink (~1.5 MB per 8-GPU sample).
   */
  std::shared_ptr<const Raw> raw;
  ReadError error;
  /**
   * mqds/hqds only: the text differed from the reference only inside words (ring pointers,
   * status registers), so raw is the reference's tables with these words decoded again
   * (kfd/word_patch.h); word indices, ascending. Empty after a full parse.
   */
  bool patched = false;
  std::vector<uint32_t> changed_words;
};

/** NativeSample in src/native.ts. Times are ns since the origin. */
struct Sample {
  uint64_t seq = 0;
  double intended_ns = 0;
  double actual_ns = 0;
  /** sysfs proc walk + debugfs files into memory + comparing them with the reference */
  double read_ns = 0;
  /** debugfs buffers into the raw tables; 0 when nothing was parsed (every file `same` or unread) */
  double parse_ns = 0;
  /**
   * wall time of this sample spent inside file-system calls (open/read/close of files, directory
   * listings): the kernel's side of the read, next to read_ns + parse_ns, which also hold
   * gpucolo's own work (comparing, parsing, building tables)
   */
  double io_ns = 0;
  /** CPU time (user + system) the sampler thread used for this sample (read and parse); -1 if unknown */
  double cpu_ns = 0;
  /** what the proc walk did (processes and queues read or reused) */
  kfd::WalkStats walk;
  /**
   * CPU time (user + system) the sampler thread has used since it started, cumulative, read
   * (ThreadCpuNowNs) after this sample was read and parsed, just before it is offered to the sink:
   * the difference between two samples is the thread's own cost of the samples in between
   * (dropped ones included), kernel time of its reads included; -1 if the clock cannot be read
   */
  double thread_cpu_ns = 0;
  /**
   * intervals skipped (the thread fell behind) since the previous sample the sink took, those
   * skipped before dropped samples included: intended_ns == (seq + all missed so far) * interval
   */
  uint64_t missed = 0;
  /** samples the sink dropped since the last one it took (seq - previous seq - 1) */
  uint64_t dropped = 0;
  kfd::ProcsRaw procs;
  /** the proc tables (and issues) equal those of the last sample the sink took: procs left empty */
  bool procs_same = false;
  /**
   * With SamplerOptions::proc_root: pairs (pid, start time) of the KFD processes whose
   * <proc_root>/<pid>/stat was read in this sample (start time: proc(5) field 22, clock ticks after
   * boot; -1 when the file could not be read or parsed): the processes new since the last sample
   * the sink took and those whose queue rows changed since (a pid taken over by another process
   * shows there first). Read at the sample's own time, so a consumer that gets the sample later
   * (in a batch) still learns which process was behind the pid then. Empty otherwise.
   */
  std::vector<double> pid_starts;
  /**
   * A process appeared since the last sample the sink took, or a pid's start time changed (the
   * pid was reused): the consumer reads /proc about such a process (its namespace pid, whether a
   * traced command started it) while it is there, so a batching sink hands this sample over at once.
   */
  bool pids_changed = false;
  /** debugfs was read in this sample (mqds/hqds/rls are meaningful) */
  bool debugfs = false;
  DebugfsPart<kfd::MqdsRaw> mqds;
  DebugfsPart<kfd::HqdsRaw> hqds;
  DebugfsPart<kfd::RlsRaw> rls;
};

/** Where samples go. Both methods run on the sampler thread. */
class SampleSink {
 public:
  enum class Delivery {
    kTaken,    // the sink has it
    kDropped,  // the sink is full: the sample is counted into the next one's `dropped`
    kClosed,   // the sink is gone (e.g. the JS environment is shutting down): stop sampling
  };
  virtual ~SampleSink() = default;
  /** last: no sample follows (max_samples reached); the sink must not drop it (may block). */
  virtual Delivery Deliver(std::unique_ptr<Sample> sample, bool last) = 0;
  /** Called once, after the last Deliver(), as the thread's last use of the sink. */
  virtual void Done() = 0;
};

struct SamplerOptions {
  std::string sysfs_root = "/sys";
  std::string debugfs_root = "/sys/kernel/debug";
  int64_t interval_ns = 100000000;
  /** read debugfs in every N-th sample (seq % N == 0); 0 = never */
  uint64_t debugfs_every = 0;
  /** stop by itself after this many samples; 0 = until RequestStop() */
  uint64_t max_samples = 0;
  /** read the proc tree incrementally (kfd/sysfs_procs.h); false = every file of it every sample */
  bool incremental = true;
  /** incremental: re-read process directories and counters every N-th sample (>= 1) */
  uint64_t counters_every = 1;
  /**
   * the procfs root (e.g. "/proc"): read the start time of new and changed KFD processes there
   * (Sample::pid_starts); empty = never read /proc (pid_starts stays empty)
   */
  std::string proc_root;
  /** restrict the sysfs proc walk to these pids (compared as JS numbers) */
  bool filter_pids = false;
  std::vector<double> pids;
};

/**
 * Reads a whole debugfs file with read() until EOF (debugfs and sysfs files report size 0) into
 * *buf, which is reused: it only grows. *len = bytes read. Only a regular file of at most 64 MiB
 * (kfd/input_file.h): returns 0, the errno of open()/fstat()/read(), EFBIG over the cap, or
 * kfd::kErrNotRegular for a FIFO, device or socket (never read, so never blocks).
 */
int ReadWholeFile(const std::string& path, std::vector<char>* buf, size_t* len);

class Sampler {
 public:
  /** sink must outlive the thread (it is used until Done() returns). */
  Sampler(SamplerOptions options, SampleSink* sink);
  /** Stops and joins the thread if it still runs. */
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  /** Takes the origin (now) and starts the thread; once only. Throws std::system_error. */
  void Start();
  /** CLOCK_MONOTONIC ns of the origin (valid after Start()). */
  int64_t origin_ns() const { return origin_ns_; }
  /**
   * Thread-safe, any thread, any number of times. Wakes the thread at once if it sleeps; a
   * sample being read is finished and delivered, no further one is taken.
   */
  void RequestStop();
  /** Waits for the thread to end (after RequestStop() or max_samples); no-op if not running. */
  void Join();
  /** Thread-safe: the pid filter of the next samples; nullptr = every process. */
  void SetPids(const std::vector<double>* pids);
  /** The thread has returned from Done() or was never started (for tests). */
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  /** Why the loop ended early (e.g. out of memory); empty normally. Read after Join(). */
  const std::string& error() const { return error_; }

 private:
  void Run();
  void Loop();
  /** Sleeps until the absolute monotonic deadline; false when a stop was requested. */
  bool SleepUntil(int64_t deadline_ns);
  /** A debugfs file: this sample's read and the bytes behind the sink's last tables of it. */
  struct DebugfsFile {
    enum class State { kUnread, kError, kSame, kFresh };
    explicit DebugfsFile(std::string p) : path(std::move(p)) {}
    std::string path;
    /** this sample's read (reused: it only grows) */
    std::vector<char> buf;
    size_t len = 0;
    int err = 0;
    State state = State::kUnread;
    /** the reference: bytes of the last fresh parse of this file the sink took; valid if has_ref */
    std::vector<char> ref;
    size_t ref_len = 0;
    bool has_ref = false;

    /** Reads the file and compares it with the reference (state kError, kSame or kFresh); an error drops the reference. */
    void Read();
    /** The sample with this read was taken: a fresh read becomes the reference. */
    void Commit();
  };

  /** t0: monotonic time just before reading */
  std::unique_ptr<Sample> TakeSample(uint64_t k, uint64_t seq, int64_t t0);
  /** The sink took the sample just made: its fresh parts become the references. */
  void Commit();
  /**
   * Fresh proc tables: sets s->pid_starts and s->pids_changed from procs_next_ against the
   * processes of the last sample the sink took (pids_ref_), and fills pids_next_.
   */
  void NotePids(Sample* s);
  /** The tables of a file's reference bytes and where their words came from (for patching). */
  template <class Raw>
  struct ParsedRef {
    /** never changed once made: samples handed to the sink may share it */
    std::shared_ptr<const Raw> raw;
    std::vector<kfd::WordLine> lines;
    bool valid = false;
    /** next only: patched from the reference, whose `lines` still hold */
    bool lines_from_ref = false;
  };
  /** Fills part from file (state set by Read()); true when it parsed. */
  template <class Raw, class Parse>
  static bool ParseInto(DebugfsPart<Raw>* part, const DebugfsFile& file, Parse parse);
  /**
   * ParseInto for mqds/hqds: a fresh text that differs from the reference only inside words is
   * patched from the reference's tables instead of parsed; `next` keeps what becomes the
   * reference if the sink takes the sample.
   */
  template <class Raw, class Parse>
  static bool ParsePatchable(DebugfsPart<Raw>* part, const DebugfsFile& file, Parse parse, const ParsedRef<Raw>& ref, ParsedRef<Raw>* next);
  template <class Raw>
  static void CommitParsed(const DebugfsFile& file, ParsedRef<Raw>* ref, ParsedRef<Raw>* next);

  const SamplerOptions options_;
  SampleSink* const sink_;
  int64_t origin_ns_ = 0;
  std::thread thread_;
  std::atomic<bool> finished_{true};
  std::string error_;

  // guarded by mu_: stop flag and pid filter; cond_ waits on CLOCK_MONOTONIC
  pthread_mutex_t mu_;
  pthread_cond_t cond_;
  bool stop_ = false;
  bool filter_pids_;
  std::vector<double> pids_;

  // sampler thread only: the pid filter of the current sample, the debugfs files, the reference
  // proc tables (those of the last sample the sink took) and this sample's fresh ones
  bool filter_now_ = false;
  std::vector<double> pids_now_;
  DebugfsFile mqds_, hqds_, rls_;
  ParsedRef<kfd::MqdsRaw> mqds_ref_, mqds_next_;
  ParsedRef<kfd::HqdsRaw> hqds_ref_, hqds_next_;
  kfd::ProcsWalker walker_;
  kfd::ProcsRaw procs_ref_;
  bool has_procs_ref_ = false;
  kfd::ProcsRaw procs_next_;
  bool procs_fresh_ = false;
  /** a KFD process as the last taken sample showed it: its queue rows (hashed) and start time */
  struct SeenPid {
    uint64_t queues_hash;
    double start_ticks;
  };
  std::unordered_map<uint64_t, SeenPid> pids_ref_, pids_next_;
  std::string stat_text_;  // /proc/<pid>/stat buffer, reused
};

}  // namespace trace
}  // namespace gpucolo
