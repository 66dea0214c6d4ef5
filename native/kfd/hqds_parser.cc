// Twin of src/kfd/hqds-parser.ts; read the two side by side. Every branch below corresponds to one
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

/**
 * One ParseHqds call: the rows built so far and where the line walk stands (the current node and
 * slot). ScanDumpText (text_scan.h) calls Dump for each register line and Header for any other.
 */
class HqdsParser {
 public:
  HqdsParser(const char* data, size_t len, std::vector<WordLine>* lines)
      : s(reinterpret_cast<const unsigned char*>(data)), n(len), word_lines(lines), words(len) {
    // a slot (header + 7 register lines) takes about 600 bytes: one reservation, no regrowth; a
    // node has dozens of slots (a stopped one none, but a dump of those is short)
    slots.reserve((len / 400 + 4) * kHqdsSlotCols);
    nodes.reserve((len / 8192 + 16) * kHqdsNodeCols);
  }

  HqdsRaw Parse() {
    r.lines = ScanDumpText(s, n, *this);
    CloseNode(true);
    r.words = words.Finish();
    return std::move(r);
  }

  // ---- the steps ScanDumpText calls
  static constexpr size_t kDumpPrefix = 4;
  bool IsDumpLine(size_t start) const {
    return s[start] == ' ' && ByteAt(s, n, start + 1) == ' ' && ByteAt(s, n, start + 2) == ' ' && ByteAt(s, n, start + 3) == ' ';
  }
  uint32_t* DumpWords() { return words.Reserve(8); }
  void Dump(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead);
  void Header(size_t start, size_t end, uint64_t line_no);

 private:
  using N = HqdsNodeCol;
  using S = HqdsSlotCol;

  void CloseSlot();
  void CheckNode(size_t row, bool ends_dump);
  void CloseNode(bool ends_dump);
  void NodeHeader(size_t start, size_t end, uint64_t line_no);
  void SlotHeader(size_t start, size_t end, uint64_t line_no);
  bool IsBroken(size_t slot) const { return std::find(broken_slots.begin(), broken_slots.end(), slot) != broken_slots.end(); }

  const unsigned char* s;
  size_t n;
  std::vector<WordLine>* word_lines;
  HqdsRaw r;
  IssueSink sink{&r};
  WordBuffer words;
  std::vector<double>& nodes = r.nodes;
  std::vector<double>& slots = r.slots;

  int64_t cur_node = -1;
  bool skip_node = false;  // after a bad or repeated Node header: its slots are skipped silently
  int64_t cur_slot = -1;
  bool skip_regs = false;  // register lines skipped silently (bad slot header / orphan / broken slot)
  bool slot_broken = false;
  // slots of the open node whose dump was broken (already reported): left out of the length checks
  std::vector<size_t> broken_slots;
  // first line of each node number and gpu_id seen, to find a node printed twice
  std::map<uint32_t, uint64_t> seen_node, seen_gpu;
};

void HqdsParser::CloseSlot() {
  if (cur_slot < 0) return;
  const size_t rr = static_cast<size_t>(cur_slot) * kHqdsSlotCols;
  const double count = slots[rr + S::wordCount];
  if (slot_broken) {
    broken_slots.push_back(static_cast<size_t>(cur_slot));
  } else {
    const uint64_t line = static_cast<uint64_t>(slots[rr + S::line]);
    if (slots[rr + S::kind] == kHqdSdma) {
      if (count == 0) sink.Add(line, Severity::kError, "SDMA RLC dump has no registers");
    } else if (count != static_cast<double>(kHqdComputeRegs)) {
      sink.AddLazy(line, Severity::kError, [&] {
        return "HQD dump has " + std::to_string(static_cast<uint64_t>(count)) + " registers, expected 56";
      });
    }
  }
  cur_slot = -1;
}

// What a dump cut at a line boundary leaves short in a node (checkNode in hqds-parser.ts).
void HqdsParser::CheckNode(size_t row, bool ends_dump) {
  const size_t nr = row * kHqdsNodeCols;
  const uint64_t node_no = static_cast<uint64_t>(nodes[nr + N::node]);
  const uint64_t node_line = static_cast<uint64_t>(nodes[nr + N::line]);
  const size_t first = static_cast<size_t>(nodes[nr + N::firstSlot]);
  const size_t count = static_cast<size_t>(nodes[nr + N::slotCount]);
  if (count == 0) {
    if (nodes[nr + N::stopped] != 1) {
      sink.AddLazy(node_line, Severity::kError, [&] { return "node " + std::to_string(node_no) + " has no HQD slots (dump cut?)"; });
    }
    return;
  }
  std::vector<double> insts, engines;
  std::vector<uint64_t> cp_per_inst, rlc_per_engine;
  double sdma_max = 0;
  size_t sdma_slots = 0;
  for (size_t i = first; i < first + count; ++i) {
    const double* slot = &slots[i * kHqdsSlotCols];
    const double k = slot[S::kind];
    if (k == kHqdSdma) {
      ++sdma_slots;
      if (!IsBroken(i)) sdma_max = std::max(sdma_max, slot[S::wordCount]);
      const double engine = slot[S::pipe];  // an SDMA slot's engine
      size_t e = static_cast<size_t>(std::find(engines.begin(), engines.end(), engine) - engines.begin());
      if (e == engines.size()) {
        engines.push_back(engine);
        rlc_per_engine.push_back(0);
      }
      ++rlc_per_engine[e];
      continue;
    }
    const double inst = slot[S::inst];
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
    const double* slot = &slots[i * kHqdsSlotCols];
    const double c = slot[S::wordCount];
    if (slot[S::kind] == kHqdSdma && c > 0 && c < sdma_max && !IsBroken(i)) {
      sink.AddLazy(static_cast<uint64_t>(slot[S::line]), Severity::kError, [&] {
        return "SDMA RLC dump has " + std::to_string(static_cast<uint64_t>(c)) + " registers, the node's others have " +
               std::to_string(static_cast<uint64_t>(sdma_max)) + " (dump cut?)";
      });
    }
  }
  if (ends_dump && sdma_slots == 0 && !insts.empty()) {
    sink.AddLazy(node_line, Severity::kError, [&] { return "node " + std::to_string(node_no) + " ends without its SDMA RLC dumps (dump cut?)"; });
  }
}

void HqdsParser::CloseNode(bool ends_dump) {
  CloseSlot();
  if (cur_node >= 0) {
    const size_t nr = static_cast<size_t>(cur_node) * kHqdsNodeCols;
    nodes[nr + N::slotCount] = static_cast<double>(slots.size() / kHqdsSlotCols) - nodes[nr + N::firstSlot];
    CheckNode(static_cast<size_t>(cur_node), ends_dump);
  }
  broken_slots.clear();
}

// ---- register line, decoded by ScanDumpText into DumpWords() (k < 0: malformed)
void HqdsParser::Dump(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead) {
  if (cur_slot < 0) {
    if (!skip_regs && !skip_node) {
      sink.Add(line_no, Severity::kError, "register dump outside a slot");
      skip_regs = true;
    }
    return;
  }
  if (skip_regs) return;
  if (k < 0) {
    sink.AddLazy(line_no, Severity::kError, [&] { return "malformed register line: \"" + Snippet(s, start, end) + "\""; });
    slot_broken = true;
    skip_regs = true;
    return;
  }
  double* slot = &slots[static_cast<size_t>(cur_slot) * kHqdsSlotCols];
  if (slot[S::wordCount] == 0) slot[S::firstRegisterAddress] = lead;
  slot[S::wordCount] += k;
  if (word_lines) word_lines->push_back(WordLine{start, words.size(), static_cast<uint32_t>(k), 4});
  words.Commit(static_cast<size_t>(k));
}

void HqdsParser::Header(size_t start, size_t end, uint64_t line_no) {
  const int c0 = s[start];
  if (c0 == 'N' && LineStartsWith(s, start, end, "Node")) {
    NodeHeader(start, end, line_no);
  } else if (c0 == ' ') {
    SlotHeader(start, end, line_no);
  } else {
    CloseSlot();
    sink.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s, start, end) + "\""; });
    skip_regs = true;
  }
}

void HqdsParser::NodeHeader(size_t start, size_t end, uint64_t line_no) {
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
  CloseNode(again != 0);
  if (!ok) {
    sink.AddLazy(line_no, Severity::kError, [&] {
      return "unrecognised node header (its slots are skipped): \"" + Snippet(s, start, end) + "\"";
    });
    cur_node = -1;
    skip_node = true;
    skip_regs = true;
    return;
  }
  if (again != 0) {
    sink.AddLazy(line_no, Severity::kError, [&] {
      return "node " + std::to_string(node) + " (gpu_id " + HexLower(gpu) + ") again, first at line " + std::to_string(again) +
             ": two dumps appended? this copy is skipped";
    });
    cur_node = -1;
    skip_node = true;
    skip_regs = true;
    return;
  }
  seen_node.emplace(node, line_no);
  seen_gpu.emplace(gpu, line_no);
  skip_node = false;
  skip_regs = false;
  cur_node = static_cast<int64_t>(nodes.size() / kHqdsNodeCols);
  double* row = AppendRow(&nodes, N::kCount);  // stopped, slotCount: 0 (slotCount set by CloseNode)
  row[N::node] = node;
  row[N::gpuId] = gpu;
  row[N::line] = static_cast<double>(line_no);
  row[N::firstSlot] = static_cast<double>(slots.size() / kHqdsSlotCols);
}

// a line starting with one space: "Device is stopped" or a slot header
void HqdsParser::SlotHeader(size_t start, size_t end, uint64_t line_no) {
  CloseSlot();
  if (LineIs(s, start, end, " Device is stopped")) {
    if (cur_node >= 0) {
      nodes[static_cast<size_t>(cur_node) * kHqdsNodeCols + N::stopped] = 1;
    } else if (!skip_node) {
      sink.Add(line_no, Severity::kError, "\"Device is stopped\" outside a Node block");
    }
    skip_regs = true;
    return;
  }
  double f[5];
  if (!MatchSlotHeader(s + start, s + end, f)) {
    sink.AddLazy(line_no, Severity::kError, [&] {
      return "unrecognised slot header (its registers are skipped): \"" + Snippet(s, start, end) + "\"";
    });
    skip_regs = true;
    return;
  }
  if (cur_node < 0) {
    if (!skip_node) {
      sink.AddLazy(line_no, Severity::kError, [&] { return "slot header outside a Node block: \"" + Snippet(s, start, end) + "\""; });
    }
    skip_regs = true;
    return;
  }
  skip_regs = false;
  slot_broken = false;
  cur_slot = static_cast<int64_t>(slots.size() / kHqdsSlotCols);
  // wordCount, firstRegisterAddress: 0 until the register lines
  double* row = AppendRow(&slots, S::kCount);
  row[S::node] = static_cast<double>(cur_node);
  row[S::kind] = f[0];
  row[S::inst] = f[1];
  row[S::mec] = f[2];
  row[S::pipe] = f[3];
  row[S::queue] = f[4];
  row[S::line] = static_cast<double>(line_no);
  row[S::wordOffset] = static_cast<double>(words.size());
}

}  // namespace

HqdsRaw ParseHqds(const char* data, size_t n, std::vector<WordLine>* word_lines) {
  return HqdsParser(data, n, word_lines).Parse();
}

}  // namespace kfd
}  // namespace gpucolo
