// Twin of src/kfd/mqds-ts.ts; read the two side by side. Every branch below corresponds to one
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

// The queue header regexes, tried in the order of mqds-ts.ts. Returns the kind, or -1 when
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

}  // namespace

MqdsRaw ParseMqds(const char* data, size_t n, std::vector<WordLine>* word_lines) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  MqdsRaw r;
  IssueSink sink(&r);
  WordBuffer words(n);
  std::vector<double>& procs = r.procs;
  std::vector<double>& queues = r.queues;
  std::vector<double>& blocks = r.blocks;
  uint32_t lead = 0;

  int64_t cur_proc = -1;   // process row, -1 = none
  int64_t cur_queue = -1;  // queue row, -1 = none
  bool skip_proc = false;  // after a bad process header: its queues are skipped silently
  bool skip_dump = false;  // after a bad queue header (or an orphan dump): dump lines skipped silently
  bool block_open = false;
  bool block_discard = false;  // SDMA repeat copy
  bool block_broken = false;
  uint64_t block_line = 0;
  size_t block_start = 0;

  auto close_block = [&]() {
    if (!block_open) return;
    block_open = false;
    if (block_discard) return;
    const uint64_t count = words.size() - block_start;
    const size_t q = static_cast<size_t>(cur_queue) * kMqdsQueueCols;
    blocks.push_back(static_cast<double>(cur_queue));
    blocks.push_back(static_cast<double>(block_line));
    blocks.push_back(static_cast<double>(block_start));
    blocks.push_back(static_cast<double>(count));
    queues[q + 6]++;
    if (block_broken) return;
    uint64_t expected = 0;
    if (!BlockSizeExpected(queues[q + 1], count, &expected)) {
      sink.AddLazy(block_line, Severity::kError, [&] {
        return "MQD block has " + std::to_string(count) + " dwords, expected " + std::to_string(expected);
      });
    }
  };

  auto close_proc = [&]() {
    if (cur_proc >= 0) {
      const size_t p = static_cast<size_t>(cur_proc) * kMqdsProcCols;
      procs[p + 3] = static_cast<double>(queues.size() / kMqdsQueueCols) - procs[p + 2];
    }
  };

  // A queue whose header is the last thing printed of it: the dump was cut after the header.
  auto close_queue = [&]() {
    if (cur_queue < 0) return;
    const size_t q = static_cast<size_t>(cur_queue) * kMqdsQueueCols;
    const double kind = queues[q + 1];
    const bool has_size = kind == kMqdCompute || kind == kMqdDiq || kind == kMqdSdma;
    if (queues[q + 6] == 0 && has_size) {
      sink.AddLazy(static_cast<uint64_t>(queues[q + 4]), Severity::kError, [&] {
        return std::string(KindName(kind)) + " queue without an MQD dump (dump cut?)";
      });
    }
    cur_queue = -1;
  };

  LineReader lines(s, n);
  size_t start, end;
  while (lines.Next(&start, &end)) {
    const uint64_t line_no = lines.line();
    if (end == start) continue;  // blank line

    const int c0 = s[start];
    if (c0 == ' ' && ByteAt(s, n, start + 1) == ' ' && ByteAt(s, n, start + 2) == ' ' && ByteAt(s, n, start + 3) == ' ') {
      // ---- dump line
      if (cur_queue < 0) {
        if (!skip_dump && !skip_proc) {
          sink.Add(line_no, Severity::kError, "MQD dump line outside a queue");
          skip_dump = true;
        }
        continue;
      }
      if (skip_dump) continue;
      uint32_t* out = words.Reserve(8);
      const int k = ParseDumpLine(s, start, end, 4, out, &lead);
      if (k < 0) {
        sink.AddLazy(line_no, Severity::kError, [&] { return "malformed MQD dump line: \"" + Snippet(s, start, end) + "\""; });
        if (!block_open) {
          // the block's first line is damaged: open it broken so its later lines are not
          // reported once more as a block without a start
          const size_t qb = static_cast<size_t>(cur_queue) * kMqdsQueueCols;
          block_open = true;
          block_line = line_no;
          block_start = words.size();
          block_discard = queues[qb + 1] == kMqdSdma && queues[qb + 6] > 0;
          if (block_discard) queues[qb + 7]++;
        }
        block_broken = true;
        continue;
      }
      const uint32_t offset = lead;
      const size_t qk = static_cast<size_t>(cur_queue) * kMqdsQueueCols;
      if (offset == 0) {
        close_block();
        block_open = true;
        block_broken = false;
        block_line = line_no;
        block_start = words.size();
        // an SDMA queue's MQD is its first block; later blocks repeat neighbouring slots
        block_discard = queues[qk + 1] == kMqdSdma && queues[qk + 6] > 0;
        if (block_discard) queues[qk + 7]++;
      } else if (!block_open) {
        sink.AddLazy(line_no, Severity::kError, [&] { return "MQD dump starts at offset 0x" + Hex8(offset) + " instead of 00000000"; });
        block_open = true;
        block_broken = true;
        block_discard = false;
        block_line = line_no;
        block_start = words.size();
        continue;
      } else if (block_broken) {
        continue;
      } else if (!block_discard && static_cast<uint64_t>(offset) != static_cast<uint64_t>(words.size() - block_start) * 4) {
        const uint32_t want = static_cast<uint32_t>((words.size() - block_start) * 4);
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "MQD dump offset 0x" + Hex8(offset) + " where 0x" + Hex8(want) + " was expected";
        });
        block_broken = true;
        continue;
      }
      if (!block_discard) {
        if (word_lines) word_lines->push_back(WordLine{start, words.size(), static_cast<uint32_t>(k), 4});
        words.Commit(static_cast<size_t>(k));
      }
      continue;
    }

    if (c0 == 'P' && LineStartsWith(s, start, end, "Process")) {
      // ---- process header
      close_block();
      close_queue();
      close_proc();
      skip_dump = false;
      uint32_t pid;
      std::string pasid;
      if (!MatchProcess(s + start, s + end, &pid, &pasid)) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised process header (its queues are skipped): \"" + Snippet(s, start, end) + "\"";
        });
        cur_proc = -1;
        skip_proc = true;
        continue;
      }
      skip_proc = false;
      cur_proc = static_cast<int64_t>(procs.size() / kMqdsProcCols);
      procs.push_back(pid);
      procs.push_back(static_cast<double>(line_no));
      procs.push_back(static_cast<double>(queues.size() / kMqdsQueueCols));
      procs.push_back(0);
      r.pasids.push_back(std::move(pasid));
      continue;
    }

    if (c0 == ' ' && ByteAt(s, n, start + 1) == ' ' && ByteAt(s, n, start + 2) != ' ') {
      // ---- queue header
      close_block();
      close_queue();
      if (cur_proc < 0) {
        if (!skip_proc) {
          sink.AddLazy(line_no, Severity::kError, [&] { return "queue header outside a process: \"" + Snippet(s, start, end) + "\""; });
        }
        skip_dump = true;
        continue;
      }
      double type_code = -1;
      double gpu = -1;
      const int kind = MatchQueueHeader(s + start, s + end, &type_code, &gpu);
      if (kind < 0) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised queue header (its dump is skipped): \"" + Snippet(s, start, end) + "\"";
        });
        skip_dump = true;
        continue;
      }
      if (kind >= kMqdBadUser) {
        sink.AddLazy(line_no, Severity::kWarning, [&] { return "kernel reports an unusable queue: \"" + Snippet(s, start, end) + "\""; });
      }
      skip_dump = false;
      cur_queue = static_cast<int64_t>(queues.size() / kMqdsQueueCols);
      const double row[kMqdsQueueCols] = {static_cast<double>(cur_proc), static_cast<double>(kind), type_code, gpu,
                                          static_cast<double>(line_no), static_cast<double>(blocks.size() / kMqdsBlockCols), 0, 0};
      queues.insert(queues.end(), row, row + kMqdsQueueCols);
      continue;
    }

    // ---- anything else
    sink.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s, start, end) + "\""; });
  }
  close_block();
  close_queue();
  close_proc();

  // one MQD block per XCC: a compute queue with fewer blocks than another on its device was cut
  std::map<double, double> most;
  for (size_t q = 0; q < queues.size(); q += kMqdsQueueCols) {
    if (queues[q + 1] != kMqdCompute) continue;
    double& m = most[queues[q + 3]];
    m = std::max(m, queues[q + 6]);
  }
  for (size_t q = 0; q < queues.size(); q += kMqdsQueueCols) {
    if (queues[q + 1] != kMqdCompute) continue;
    const double have = queues[q + 6];
    const double max = most[queues[q + 3]];
    if (have > 0 && have < max) {
      sink.AddLazy(static_cast<uint64_t>(queues[q + 4]), Severity::kError, [&] {
        return "compute queue has " + std::to_string(static_cast<uint64_t>(have)) + " MQD block(s), another on device " +
               HexLower(static_cast<uint32_t>(queues[q + 3])) + " has " + std::to_string(static_cast<uint64_t>(max)) + " (dump cut?)";
      });
    }
  }

  r.lines = lines.line();
  r.words = words.Finish();
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
