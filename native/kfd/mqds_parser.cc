// Twin of src/kfd/mqds-parser.ts; read the two side by side. Every branch below corresponds to one
// there, in the same order, because the issue list must come out identical for any input.
#include "mqds_parser.h"

#include <algorithm>
#include <map>

namespace gpucolo {
namespace kfd {
namespace {

// MQD_QUEUE_KIND_NAMES in raw.ts
const char* KindName(double kind) {
  static const char* const kNames[] = {"compute", "sdma", "diq", "bad-user-queue", "bad-kernel-queue", "weird"};
  return kind >= 0 && kind < 6 ? kNames[static_cast<int>(kind)] : "?";
}

bool BlockSizeExpected(double kind, uint64_t count, uint64_t* first_expected) {
  if (kind == kMqdCompute || kind == kMqdDiq) {
    *first_expected = 512;
    return count == 512;
  }
  if (kind == kMqdSdma) {
    // 128 dwords in current v9_structs.h, 130 in older ones
    *first_expected = 128;
    return count == 128 || count == 130;
  }
  return true;
}

// ^Process (\d{1,10}) PASID (0x[0-9a-f]{1,8}|\d{1,10}):$
bool MatchProcess(const unsigned char* b, const unsigned char* e, uint32_t* pid, std::string* pasid) {
  Matcher m(b, e);
  if (!m.Lit("Process ") || !m.DecU32(pid) || !m.Lit(" PASID ")) return false;
  const unsigned char* field = m.pos();
  if (m.Lit("0x")) {
    uint32_t ignored;
    if (!m.Hex(&ignored)) return false;
  } else if (!m.Digits()) {
    return false;
  }
  const unsigned char* field_end = m.pos();
  if (!m.Lit(":") || !m.End()) return false;
  pasid->assign(reinterpret_cast<const char*>(field), static_cast<size_t>(field_end - field));
  return true;
}

// The queue header regexes, tried in the order of mqds-parser.ts. Returns the kind, or -1 when
// nothing matched or a matched type code failed decU32.
int MatchQueueHeader(const unsigned char* b, const unsigned char* e, double* type_code, double* gpu) {
  uint32_t v;
  {
    // ^ {2}(Compute|SDMA) queue on device ([0-9a-f]{1,8})$
    Matcher m(b, e);
    if (m.Lit("  ")) {
      int kind = -1;
      if (m.Lit("Compute")) kind = kMqdCompute;
      else if (m.Lit("SDMA")) kind = kMqdSdma;
      if (kind >= 0 && m.Lit(" queue on device ") && m.Hex(&v) && m.End()) {
        *gpu = v;
        return kind;
      }
    }
  }
  {
    // ^ {2}DIQ on device ([0-9a-f]{1,8})$
    Matcher m(b, e);
    if (m.Lit("  DIQ on device ") && m.Hex(&v) && m.End()) {
      *gpu = v;
      return kMqdDiq;
    }
  }
  {
    // ^ {2}(?:Bad user queue type|Queue node with bad user queue type) (\d{1,10}) on device ([0-9a-f]{1,8})$
    Matcher m(b, e);
    if (m.Lit("  ") && (m.Lit("Bad user queue type ") || m.Lit("Queue node with bad user queue type "))) {
      // A type code beyond u32 fails decU32 after the regex matched: the result (no kind) is the
      // same as no match, and no later regex can match this line.
      uint32_t code, g;
      if (m.DecU32(&code) && m.Lit(" on device ") && m.Hex(&g) && m.End()) {
        *type_code = code;
        *gpu = g;
        return kMqdBadUser;
      }
      return -1;
    }
  }
  {
    // ^ {2}Bad kernel queue type (\d{1,10}) on device ([0-9a-f]{1,8})$
    Matcher m(b, e);
    if (m.Lit("  Bad kernel queue type ")) {
      uint32_t code, g;
      if (m.DecU32(&code) && m.Lit(" on device ") && m.Hex(&g) && m.End()) {
        *type_code = code;
        *gpu = g;
        return kMqdBadKernel;
      }
      return -1;
    }
  }
  const size_t n = static_cast<size_t>(e - b);
  static const char kWeird[] = "  Weird: Queue node with neither kernel nor user queue";
  if (n == sizeof(kWeird) - 1 && std::memcmp(b, kWeird, n) == 0) return kMqdWeird;
  return -1;
}

/**
 * One ParseMqds call: the rows built so far and where the line walk stands (the current process,
 * queue and MQD block). Each kind of line has its own step; ScanDumpText (text_scan.h) runs them
 * in text order.
 */
class MqdsParser {
 public:
  MqdsParser(const char* data, size_t n, std::vector<WordLine>* word_lines)
      : s_(reinterpret_cast<const unsigned char*>(data)), n_(n), word_lines_(word_lines), sink_(&r_), words_(n) {
    // Row counts from the input length, so that no table regrows on a usual dump (a cut or odd
    // one may): a queue prints its header and at least one MQD block, 5.4 KB for 512 dwords,
    // 1.4 KB for an SDMA queue's 128; a process mostly comes with queues.
    r_.procs.reserve((n / 1024 + 4) * kMqdsProcCols);
    r_.queues.reserve((n / 1024 + 4) * kMqdsQueueCols);
    r_.blocks.reserve((n / 1024 + 4) * kMqdsBlockCols);
  }

  MqdsRaw Parse() {
    r_.lines = ScanDumpText(s_, n_, *this);
    CloseBlock();
    CloseQueue();
    CloseProc();
    CheckXccBlocks();
    r_.words = words_.Finish();
    return std::move(r_);
  }

  // ---- the steps ScanDumpText calls
  static constexpr size_t kDumpPrefix = 4;
  bool IsDumpLine(size_t start) const {
    return s_[start] == ' ' && ByteAt(s_, n_, start + 1) == ' ' && ByteAt(s_, n_, start + 2) == ' ' && ByteAt(s_, n_, start + 3) == ' ';
  }
  uint32_t* DumpWords() { return words_.Reserve(8); }
  void Dump(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead) { DumpLine(start, end, line_no, k, lead); }
  void Header(size_t start, size_t end, uint64_t line_no) {
    const int c0 = s_[start];
    if (c0 == 'P' && LineStartsWith(s_, start, end, "Process")) {
      ProcessHeader(start, end, line_no);
    } else if (c0 == ' ' && ByteAt(s_, n_, start + 1) == ' ' && ByteAt(s_, n_, start + 2) != ' ') {
      QueueHeader(start, end, line_no);
    } else {
      // ---- anything else
      sink_.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s_, start, end) + "\""; });
    }
  }

 private:
  using Q = MqdsQueueCol;
  using B = MqdsBlockCol;
  using P = MqdsProcCol;

  size_t QueueRow() const { return static_cast<size_t>(cur_queue_) * kMqdsQueueCols; }

  void CloseBlock() {
    if (!block_open_) return;
    block_open_ = false;
    if (block_discard_) return;
    std::vector<double>& queues = r_.queues;
    const uint64_t count = words_.size() - block_start_;
    const size_t q = QueueRow();
    double* row = AppendRow(&r_.blocks, B::kCount);
    row[B::queue] = static_cast<double>(cur_queue_);
    row[B::line] = static_cast<double>(block_line_);
    row[B::wordOffset] = static_cast<double>(block_start_);
    row[B::wordCount] = static_cast<double>(count);
    queues[q + Q::blockCount]++;
    if (block_broken_) return;
    uint64_t expected = 0;
    if (!BlockSizeExpected(queues[q + Q::kind], count, &expected)) {
      sink_.AddLazy(block_line_, Severity::kError, [&] {
        return "MQD block has " + std::to_string(count) + " dwords, expected " + std::to_string(expected);
      });
    }
  }

  void CloseProc() {
    if (cur_proc_ >= 0) {
      const size_t p = static_cast<size_t>(cur_proc_) * kMqdsProcCols;
      r_.procs[p + P::queueCount] = static_cast<double>(r_.queues.size() / kMqdsQueueCols) - r_.procs[p + P::firstQueue];
    }
  }

  // A queue whose header is the last thing printed of it: the dump was cut after the header.
  void CloseQueue() {
    if (cur_queue_ < 0) return;
    const size_t q = QueueRow();
    const double kind = r_.queues[q + Q::kind];
    const bool has_size = kind == kMqdCompute || kind == kMqdDiq || kind == kMqdSdma;
    if (r_.queues[q + Q::blockCount] == 0 && has_size) {
      sink_.AddLazy(static_cast<uint64_t>(r_.queues[q + Q::line]), Severity::kError, [&] {
        return std::string(KindName(kind)) + " queue without an MQD dump (dump cut?)";
      });
    }
    cur_queue_ = -1;
  }

  /** Opens a block at line_no; an SDMA queue's MQD is its first block, later ones are discarded. */
  void OpenBlock(uint64_t line_no) {
    const size_t q = QueueRow();
    block_open_ = true;
    block_line_ = line_no;
    block_start_ = words_.size();
    block_discard_ = r_.queues[q + Q::kind] == kMqdSdma && r_.queues[q + Q::blockCount] > 0;
    if (block_discard_) r_.queues[q + Q::extraCopies]++;
  }

  // ---- dump line, decoded by ScanDumpText into DumpWords() (k < 0: malformed)
  void DumpLine(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead) {
    if (cur_queue_ < 0) {
      if (!skip_dump_ && !skip_proc_) {
        sink_.Add(line_no, Severity::kError, "MQD dump line outside a queue");
        skip_dump_ = true;
      }
      return;
    }
    if (skip_dump_) return;
    if (k < 0) {
      sink_.AddLazy(line_no, Severity::kError, [&] { return "malformed MQD dump line: \"" + Snippet(s_, start, end) + "\""; });
      // the block's first line is damaged: open it broken so its later lines are not reported
      // once more as a block without a start
      if (!block_open_) OpenBlock(line_no);
      block_broken_ = true;
      return;
    }
    const uint32_t offset = lead;
    if (offset == 0) {
      CloseBlock();
      block_broken_ = false;
      // an SDMA queue's MQD is its first block; later blocks repeat neighbouring slots
      OpenBlock(line_no);
    } else if (!block_open_) {
      sink_.AddLazy(line_no, Severity::kError, [&] { return "MQD dump starts at offset 0x" + Hex8(offset) + " instead of 00000000"; });
      block_open_ = true;
      block_broken_ = true;
      block_discard_ = false;
      block_line_ = line_no;
      block_start_ = words_.size();
      return;
    } else if (block_broken_) {
      return;
    } else if (!block_discard_ && static_cast<uint64_t>(offset) != static_cast<uint64_t>(words_.size() - block_start_) * 4) {
      const uint32_t want = static_cast<uint32_t>((words_.size() - block_start_) * 4);
      sink_.AddLazy(line_no, Severity::kError, [&] {
        return "MQD dump offset 0x" + Hex8(offset) + " where 0x" + Hex8(want) + " was expected";
      });
      block_broken_ = true;
      return;
    }
    if (!block_discard_) {
      if (word_lines_) word_lines_->push_back(WordLine{start, words_.size(), static_cast<uint32_t>(k), 4});
      words_.Commit(static_cast<size_t>(k));
    }
  }

  // ---- process header
  void ProcessHeader(size_t start, size_t end, uint64_t line_no) {
    CloseBlock();
    CloseQueue();
    CloseProc();
    skip_dump_ = false;
    uint32_t pid;
    std::string pasid;
    if (!MatchProcess(s_ + start, s_ + end, &pid, &pasid)) {
      sink_.AddLazy(line_no, Severity::kError, [&] {
        return "unrecognised process header (its queues are skipped): \"" + Snippet(s_, start, end) + "\"";
      });
      cur_proc_ = -1;
      skip_proc_ = true;
      return;
    }
    skip_proc_ = false;
    std::vector<double>& procs = r_.procs;
    cur_proc_ = static_cast<int64_t>(procs.size() / kMqdsProcCols);
    double* row = AppendRow(&procs, P::kCount);  // queueCount: set by CloseProc
    row[P::pid] = pid;
    row[P::line] = static_cast<double>(line_no);
    row[P::firstQueue] = static_cast<double>(r_.queues.size() / kMqdsQueueCols);
    r_.pasids.push_back(std::move(pasid));
  }

  // ---- queue header
  void QueueHeader(size_t start, size_t end, uint64_t line_no) {
    CloseBlock();
    CloseQueue();
    if (cur_proc_ < 0) {
      if (!skip_proc_) {
        sink_.AddLazy(line_no, Severity::kError, [&] { return "queue header outside a process: \"" + Snippet(s_, start, end) + "\""; });
      }
      skip_dump_ = true;
      return;
    }
    double type_code = -1;
    double gpu = -1;
    const int kind = MatchQueueHeader(s_ + start, s_ + end, &type_code, &gpu);
    if (kind < 0) {
      sink_.AddLazy(line_no, Severity::kError, [&] {
        return "unrecognised queue header (its dump is skipped): \"" + Snippet(s_, start, end) + "\"";
      });
      skip_dump_ = true;
      return;
    }
    if (kind >= kMqdBadUser) {
      sink_.AddLazy(line_no, Severity::kWarning, [&] { return "kernel reports an unusable queue: \"" + Snippet(s_, start, end) + "\""; });
    }
    skip_dump_ = false;
    std::vector<double>& queues = r_.queues;
    cur_queue_ = static_cast<int64_t>(queues.size() / kMqdsQueueCols);
    double* row = AppendRow(&queues, Q::kCount);  // blockCount, extraCopies: 0, counted as blocks come
    row[Q::proc] = static_cast<double>(cur_proc_);
    row[Q::kind] = static_cast<double>(kind);
    row[Q::typeCode] = type_code;
    row[Q::gpuId] = gpu;
    row[Q::line] = static_cast<double>(line_no);
    row[Q::firstBlock] = static_cast<double>(r_.blocks.size() / kMqdsBlockCols);
  }

  // one MQD block per XCC: a compute queue with fewer blocks than another on its device was cut
  void CheckXccBlocks() {
    const std::vector<double>& queues = r_.queues;
    std::map<double, double> most;
    for (size_t q = 0; q < queues.size(); q += kMqdsQueueCols) {
      if (queues[q + Q::kind] != kMqdCompute) continue;
      double& m = most[queues[q + Q::gpuId]];
      m = std::max(m, queues[q + Q::blockCount]);
    }
    for (size_t q = 0; q < queues.size(); q += kMqdsQueueCols) {
      if (queues[q + Q::kind] != kMqdCompute) continue;
      const double have = queues[q + Q::blockCount];
      const double max = most[queues[q + Q::gpuId]];
      if (have > 0 && have < max) {
        sink_.AddLazy(static_cast<uint64_t>(queues[q + Q::line]), Severity::kError, [&] {
          return "compute queue has " + std::to_string(static_cast<uint64_t>(have)) + " MQD block(s), another on device " +
                 HexLower(static_cast<uint32_t>(queues[q + Q::gpuId])) + " has " + std::to_string(static_cast<uint64_t>(max)) + " (dump cut?)";
        });
      }
    }
  }

  const unsigned char* s_;
  size_t n_;
  std::vector<WordLine>* word_lines_;
  MqdsRaw r_;
  IssueSink sink_;  // writes into r_ (declared after it)
  WordBuffer words_;

  int64_t cur_proc_ = -1;   // process row, -1 = none
  int64_t cur_queue_ = -1;  // queue row, -1 = none
  bool skip_proc_ = false;  // after a bad process header: its queues are skipped silently
  bool skip_dump_ = false;  // after a bad queue header (or an orphan dump): dump lines skipped silently
  bool block_open_ = false;
  bool block_discard_ = false;  // SDMA repeat copy
  bool block_broken_ = false;
  uint64_t block_line_ = 0;
  size_t block_start_ = 0;
};

}  // namespace

MqdsRaw ParseMqds(const char* data, size_t n, std::vector<WordLine>* word_lines) {
  return MqdsParser(data, n, word_lines).Parse();
}

}  // namespace kfd
}  // namespace gpucolo
