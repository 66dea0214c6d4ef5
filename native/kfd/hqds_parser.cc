// Twin of src/kfd/hqds-ts.ts; read the two side by side. Every branch below corresponds to one
// there, in the same order, because the issue list must come out identical for any input.
#include "hqds_parser.h"

#include <string>

namespace gpucolo {
namespace kfd {

bool MatchNodeHeader(const unsigned char* b, const unsigned char* e, uint32_t* node, uint32_t* gpu_id) {
  Matcher m(b, e);
  return m.Lit("Node ") && m.DecU32(node) && m.Lit(", gpu_id ") && m.Hex(gpu_id) && m.Lit(":") && m.End();
}

namespace {

// [kind, inst, mec, pipe, queue] of a slot header (-1 = not printed); false if none matches.
// The five header shapes start differently, so at most one can match a line.
bool MatchSlotHeader(const unsigned char* b, const unsigned char* e, double f[5]) {
  uint32_t a, c, d, q;
  {
    // ^ Inst (\d{1,10}), {2}CP Pipe (\d{1,10}), Queue (\d{1,10})$
    Matcher m(b, e);
    if (m.Lit(" Inst ") && m.DecU32(&a) && m.Lit(",  CP Pipe ") && m.DecU32(&c) && m.Lit(", Queue ") && m.DecU32(&d) && m.End()) {
      f[0] = kHqdCp, f[1] = a, f[2] = -1, f[3] = c, f[4] = d;
      return true;
    }
  }
  {
    // ^ {3}Inst (\d{1,10}), HIQ on MEC (\d{1,10}) Pipe (\d{1,10}) Queue (\d{1,10})$
    Matcher m(b, e);
    if (m.Lit("   Inst ") && m.DecU32(&a) && m.Lit(", HIQ on MEC ") && m.DecU32(&c) && m.Lit(" Pipe ") && m.DecU32(&d) &&
        m.Lit(" Queue ") && m.DecU32(&q) && m.End()) {
      f[0] = kHqdHiq, f[1] = a, f[2] = c, f[3] = d, f[4] = q;
      return true;
    }
  }
  {
    // ^ {2}SDMA Engine (\d{1,10}), RLC (\d{1,10})$
    Matcher m(b, e);
    if (m.Lit("  SDMA Engine ") && m.DecU32(&a) && m.Lit(", RLC ") && m.DecU32(&c) && m.End()) {
      f[0] = kHqdSdma, f[1] = -1, f[2] = -1, f[3] = a, f[4] = c;
      return true;
    }
  }
  {
    // ^ {2}CP Pipe (\d{1,10}), Queue (\d{1,10})$   (pre-9.4.3)
    Matcher m(b, e);
    if (m.Lit("  CP Pipe ") && m.DecU32(&a) && m.Lit(", Queue ") && m.DecU32(&c) && m.End()) {
      f[0] = kHqdCp, f[1] = -1, f[2] = -1, f[3] = a, f[4] = c;
      return true;
    }
  }
  {
    // ^ {2}HIQ on MEC (\d{1,10}) Pipe (\d{1,10}) Queue (\d{1,10})$   (pre-9.4.3)
    Matcher m(b, e);
    if (m.Lit("  HIQ on MEC ") && m.DecU32(&a) && m.Lit(" Pipe ") && m.DecU32(&c) && m.Lit(" Queue ") && m.DecU32(&d) && m.End()) {
      f[0] = kHqdHiq, f[1] = -1, f[2] = a, f[3] = c, f[4] = d;
      return true;
    }
  }
  return false;
}

}  // namespace

HqdsRaw ParseHqds(const char* data, size_t n) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  HqdsRaw r;
  IssueSink sink(&r);
  WordBuffer words(n);
  std::vector<double>& nodes = r.nodes;
  std::vector<double>& slots = r.slots;
  // a slot (header + 7 register lines) takes about 600 bytes: one reservation, no regrowth
  slots.reserve((n / 400 + 4) * kHqdsSlotCols);
  uint32_t lead = 0;

  int64_t cur_node = -1;
  bool skip_node = false;  // after a bad Node header: its slots are skipped silently
  int64_t cur_slot = -1;
  bool skip_regs = false;  // register lines skipped silently (bad slot header / orphan / broken slot)
  bool slot_broken = false;

  auto close_slot = [&]() {
    if (cur_slot < 0) return;
    const size_t rr = static_cast<size_t>(cur_slot) * kHqdsSlotCols;
    const double count = slots[rr + 8];
    if (!slot_broken) {
      const uint64_t line = static_cast<uint64_t>(slots[rr + 6]);
      if (slots[rr + 1] == kHqdSdma) {
        if (count == 0) sink.Add(line, Severity::kError, "SDMA RLC dump has no registers");
      } else if (count != static_cast<double>(kHqdComputeRegs)) {
        sink.AddLazy(line, Severity::kError, [&] {
          return "HQD dump has " + std::to_string(static_cast<uint64_t>(count)) + " registers, expected 56";
        });
      }
    }
    cur_slot = -1;
  };
  auto close_node = [&]() {
    close_slot();
    if (cur_node >= 0) {
      const size_t nr = static_cast<size_t>(cur_node) * kHqdsNodeCols;
      nodes[nr + 5] = static_cast<double>(slots.size() / kHqdsSlotCols) - nodes[nr + 4];
    }
  };

  LineReader lines(s, n);
  size_t start, end;
  while (lines.Next(&start, &end)) {
    const uint64_t line_no = lines.line();
    if (end == start) continue;

    const int c0 = s[start];
    if (c0 == ' ' && ByteAt(s, n, start + 1) == ' ' && ByteAt(s, n, start + 2) == ' ' && ByteAt(s, n, start + 3) == ' ') {
      // ---- register line
      if (cur_slot < 0) {
        if (!skip_regs && !skip_node) {
          sink.Add(line_no, Severity::kError, "register dump outside a slot");
          skip_regs = true;
        }
        continue;
      }
      if (skip_regs) continue;
      uint32_t* out = words.Reserve(8);
      const int k = ParseDumpLine(s, start, end, 4, out, &lead);
      if (k < 0) {
        sink.AddLazy(line_no, Severity::kError, [&] { return "malformed register line: \"" + Snippet(s, start, end) + "\""; });
        slot_broken = true;
        skip_regs = true;
        continue;
      }
      const size_t rr = static_cast<size_t>(cur_slot) * kHqdsSlotCols;
      if (slots[rr + 8] == 0) slots[rr + 9] = lead;
      slots[rr + 8] += k;
      words.Commit(static_cast<size_t>(k));
      continue;
    }

    if (c0 == 'N' && LineStartsWith(s, start, end, "Node")) {
      close_node();
      uint32_t node, gpu;
      if (!MatchNodeHeader(s + start, s + end, &node, &gpu)) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised node header (its slots are skipped): \"" + Snippet(s, start, end) + "\"";
        });
        cur_node = -1;
        skip_node = true;
        skip_regs = true;
        continue;
      }
      skip_node = false;
      skip_regs = false;
      cur_node = static_cast<int64_t>(nodes.size() / kHqdsNodeCols);
      const double row[kHqdsNodeCols] = {static_cast<double>(node), static_cast<double>(gpu), static_cast<double>(line_no),
                                         0, static_cast<double>(slots.size() / kHqdsSlotCols), 0};
      nodes.insert(nodes.end(), row, row + kHqdsNodeCols);
      continue;
    }

    if (c0 == ' ') {
      close_slot();
      if (LineIs(s, start, end, " Device is stopped")) {
        if (cur_node >= 0) {
          nodes[static_cast<size_t>(cur_node) * kHqdsNodeCols + 3] = 1;
        } else if (!skip_node) {
          sink.Add(line_no, Severity::kError, "\"Device is stopped\" outside a Node block");
        }
        skip_regs = true;
        continue;
      }
      double f[5];
      if (!MatchSlotHeader(s + start, s + end, f)) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised slot header (its registers are skipped): \"" + Snippet(s, start, end) + "\"";
        });
        skip_regs = true;
        continue;
      }
      if (cur_node < 0) {
        if (!skip_node) {
          sink.AddLazy(line_no, Severity::kError, [&] { return "slot header outside a Node block: \"" + Snippet(s, start, end) + "\""; });
        }
        skip_regs = true;
        continue;
      }
      skip_regs = false;
      slot_broken = false;
      cur_slot = static_cast<int64_t>(slots.size() / kHqdsSlotCols);
      const double row[kHqdsSlotCols] = {static_cast<double>(cur_node), f[0], f[1], f[2], f[3], f[4],
                                         static_cast<double>(line_no), static_cast<double>(words.size()), 0, 0};
      slots.insert(slots.end(), row, row + kHqdsSlotCols);
      continue;
    }

    close_slot();
    sink.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s, start, end) + "\""; });
    skip_regs = true;
  }
  close_node();

  r.lines = lines.line();
  r.words = words.Finish();
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
