// Twin of src/kfd/hqds-ts.ts; read the two side by side. Every branch below corresponds to one
// there, in the same order, because the issue list must come out identical for any input.
#include "hqds_parser.h"

#include <algorithm>
#include <map>
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

HqdsRaw ParseHqds(const char* data, size_t n, std::vector<WordLine>* word_lines) {
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
  bool skip_node = false;  // after a bad or repeated Node header: its slots are skipped silently
  int64_t cur_slot = -1;
  bool skip_regs = false;  // register lines skipped silently (bad slot header / orphan / broken slot)
  bool slot_broken = false;
  // slots of the open node whose dump was broken (already reported): left out of the length checks
  std::vector<size_t> broken_slots;
  // first line of each node number and gpu_id seen, to find a node printed twice
  std::map<uint32_t, uint64_t> seen_node, seen_gpu;

  auto close_slot = [&]() {
    if (cur_slot < 0) return;
    const size_t rr = static_cast<size_t>(cur_slot) * kHqdsSlotCols;
    const double count = slots[rr + 8];
    if (slot_broken) {
      broken_slots.push_back(static_cast<size_t>(cur_slot));
    } else {
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
  auto is_broken = [&](size_t slot) { return std::find(broken_slots.begin(), broken_slots.end(), slot) != broken_slots.end(); };
  // What a dump cut at a line boundary leaves short in a node (checkNode in hqds-ts.ts).
  auto check_node = [&](size_t row, bool ends_dump) {
    const size_t nr = row * kHqdsNodeCols;
    const uint64_t node_no = static_cast<uint64_t>(nodes[nr]);
    const uint64_t node_line = static_cast<uint64_t>(nodes[nr + 2]);
    const size_t first = static_cast<size_t>(nodes[nr + 4]);
    const size_t count = static_cast<size_t>(nodes[nr + 5]);
    if (count == 0) {
      if (nodes[nr + 3] != 1) {
        sink.AddLazy(node_line, Severity::kError, [&] { return "node " + std::to_string(node_no) + " has no HQD slots (dump cut?)"; });
      }
      return;
    }
    std::vector<double> insts, engines;
    std::vector<uint64_t> cp_per_inst, rlc_per_engine;
    double sdma_max = 0;
    size_t sdma_slots = 0;
    for (size_t i = first; i < first + count; ++i) {
      const double k = slots[i * kHqdsSlotCols + 1];
      if (k == kHqdSdma) {
        ++sdma_slots;
        if (!is_broken(i)) sdma_max = std::max(sdma_max, slots[i * kHqdsSlotCols + 8]);
        const double engine = slots[i * kHqdsSlotCols + 4];
        size_t e = static_cast<size_t>(std::find(engines.begin(), engines.end(), engine) - engines.begin());
        if (e == engines.size()) {
          engines.push_back(engine);
          rlc_per_engine.push_back(0);
        }
        ++rlc_per_engine[e];
        continue;
      }
      const double inst = slots[i * kHqdsSlotCols + 2];
      size_t at = static_cast<size_t>(std::find(insts.begin(), insts.end(), inst) - insts.begin());
      if (at == insts.size()) {
        insts.push_back(inst);
        cp_per_inst.push_back(0);
      }
      if (k == kHqdCp) ++cp_per_inst[at];
    }
    uint64_t cp_max = 0;
    for (uint64_t c : cp_per_inst) cp_max = std::max(cp_max, c);
    for (size_t j = 0; j < insts.size(); ++j) {
      if (cp_per_inst[j] < cp_max) {
        sink.AddLazy(node_line, Severity::kError, [&] {
          const std::string inst = insts[j] < 0 ? "-" : std::to_string(static_cast<uint64_t>(insts[j]));
          return "node " + std::to_string(node_no) + ": Inst " + inst + " has " + std::to_string(cp_per_inst[j]) +
                 " CP slot(s), another Inst has " + std::to_string(cp_max) + " (dump cut?)";
        });
      }
    }
    // every engine has num_sdma_queues_per_engine RLCs
    uint64_t rlc_max = 0;
    for (uint64_t c : rlc_per_engine) rlc_max = std::max(rlc_max, c);
    for (size_t j = 0; j < engines.size(); ++j) {
      if (rlc_per_engine[j] < rlc_max) {
        sink.AddLazy(node_line, Severity::kError, [&] {
          return "node " + std::to_string(node_no) + ": SDMA engine " + std::to_string(static_cast<uint64_t>(engines[j])) + " has " +
                 std::to_string(rlc_per_engine[j]) + " RLC(s), another engine has " + std::to_string(rlc_max) + " (dump cut?)";
        });
      }
    }
    for (size_t i = first; i < first + count; ++i) {
      const double c = slots[i * kHqdsSlotCols + 8];
      if (slots[i * kHqdsSlotCols + 1] == kHqdSdma && c > 0 && c < sdma_max && !is_broken(i)) {
        sink.AddLazy(static_cast<uint64_t>(slots[i * kHqdsSlotCols + 6]), Severity::kError, [&] {
          return "SDMA RLC dump has " + std::to_string(static_cast<uint64_t>(c)) + " registers, the node's others have " +
                 std::to_string(static_cast<uint64_t>(sdma_max)) + " (dump cut?)";
        });
      }
    }
    if (ends_dump && sdma_slots == 0 && !insts.empty()) {
      sink.AddLazy(node_line, Severity::kError, [&] { return "node " + std::to_string(node_no) + " ends without its SDMA RLC dumps (dump cut?)"; });
    }
  };
  auto close_node = [&](bool ends_dump) {
    close_slot();
    if (cur_node >= 0) {
      const size_t nr = static_cast<size_t>(cur_node) * kHqdsNodeCols;
      nodes[nr + 5] = static_cast<double>(slots.size() / kHqdsSlotCols) - nodes[nr + 4];
      check_node(static_cast<size_t>(cur_node), ends_dump);
    }
    broken_slots.clear();
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
      if (word_lines) word_lines->push_back(WordLine{start, words.size(), static_cast<uint32_t>(k), 4});
      words.Commit(static_cast<size_t>(k));
      continue;
    }

    if (c0 == 'N' && LineStartsWith(s, start, end, "Node")) {
      uint32_t node, gpu;
      const bool ok = MatchNodeHeader(s + start, s + end, &node, &gpu);
      // a node printed before starts a second dump appended to the first
      uint64_t again = 0;
      if (ok) {
        auto a = seen_node.find(node);
        if (a != seen_node.end()) {
          again = a->second;
        } else {
          auto g = seen_gpu.find(gpu);
          if (g != seen_gpu.end()) again = g->second;
        }
      }
      close_node(again != 0);
      if (!ok) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised node header (its slots are skipped): \"" + Snippet(s, start, end) + "\"";
        });
        cur_node = -1;
        skip_node = true;
        skip_regs = true;
        continue;
      }
      if (again != 0) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "node " + std::to_string(node) + " (gpu_id " + HexLower(gpu) + ") again, first at line " + std::to_string(again) +
                 ": two dumps appended? this copy is skipped";
        });
        cur_node = -1;
        skip_node = true;
        skip_regs = true;
        continue;
      }
      seen_node.emplace(node, line_no);
      seen_gpu.emplace(gpu, line_no);
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
  close_node(true);

  r.lines = lines.line();
  r.words = words.Finish();
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
