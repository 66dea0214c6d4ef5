#include "harness.h"
#include "kfd/hqds_parser.h"
#include "test_util.h"

using namespace gpucolo::kfd;
using gpucolo_test::IssueStrings;
using gpucolo_test::Join;

namespace {

HqdsRaw Parse(const std::string& text) { return ParseHqds(text.data(), text.size()); }

using NC = HqdsNodeCol;
using SC = HqdsSlotCol;

double N(const HqdsRaw& r, size_t row, size_t col) { return r.nodes[row * kHqdsNodeCols + col]; }
double S(const HqdsRaw& r, size_t row, size_t col) { return r.slots[row * kHqdsSlotCols + col]; }
uint32_t Reg(const HqdsRaw& r, size_t slot, size_t i) { return r.words[static_cast<size_t>(S(r, slot, SC::wordOffset)) + i]; }

}  // namespace

TEST(hqds_fixture_slots_and_active_queues) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  const HqdsRaw r = Parse(text);
  CHECK(r.issues.empty());
  CHECK_EQ(r.lines, gpucolo_test::CountLines(text));
  CHECK_EQ(r.nodes.size(), kHqdsNodeCols);
  CHECK_EQ(N(r, 0, NC::node), 2.0);
  CHECK_EQ(N(r, 0, NC::gpuId), double(0x7c1e));
  CHECK_EQ(N(r, 0, NC::stopped), 0.0);
  const size_t n = r.slots.size() / kHqdsSlotCols;
  CHECK_EQ(n, 164u);  // 4 x (HIQ + 24 CP) + 16 engines x 4 RLCs
  CHECK_EQ(N(r, 0, NC::slotCount), 164.0);
  int hiq = 0, cp = 0, sdma = 0, hiq_active = 0, cp_active = 0, sdma_active = 0;
  for (size_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(S(r, i, SC::kind));
    if (kind == kHqdSdma) {
      ++sdma;
      CHECK(S(r, i, SC::wordCount) > 0);
      if (Reg(r, i, 0) & 1) {  // SDMA RLC RB_CNTL.RB_ENABLE
        ++sdma_active;
        CHECK_EQ(S(r, i, SC::pipe), 2.0);   // engine
        CHECK_EQ(S(r, i, SC::queue), 0.0);  // RLC
      }
      continue;
    }
    CHECK_EQ(S(r, i, SC::wordCount), 56.0);
    const bool active = Reg(r, i, 2) & 1;  // CP_HQD_ACTIVE
    if (kind == kHqdHiq) {
      ++hiq;
      hiq_active += active;
      CHECK_EQ(S(r, i, SC::mec), 2.0);
    } else {
      ++cp;
      if (!active) continue;
      ++cp_active;
      // active CP slots: Pipe 0 Queue 2 (qid0) and Pipe 1 Queue 2 (qid1) of each Inst
      const double inst = S(r, i, SC::inst);
      CHECK_EQ(S(r, i, SC::queue), 2.0);
      const uint32_t base = S(r, i, SC::pipe) == 0 ? 0x712000u : 0x71e000u;
      CHECK_EQ(Reg(r, i, 0), base + 0x3000u * static_cast<uint32_t>(inst));
      CHECK_EQ(Reg(r, i, 1), 0u);
    }
  }
  CHECK_EQ(hiq, 4);
  CHECK_EQ(cp, 96);
  CHECK_EQ(sdma, 64);
  CHECK_EQ(hiq_active, 4);
  CHECK_EQ(cp_active, 8);
  CHECK_EQ(sdma_active, 1);
  CHECK_EQ(S(r, 0, SC::firstRegisterAddress), double(0xc914));
}

TEST(hqds_txt_fixture_comment_lines_are_issues) {
  const std::string text = gpucolo_test::ReadFixture("debugfs_kfd_hqds_gc943_4xcc.txt");
  const HqdsRaw r = Parse(text);
  CHECK_EQ(r.issues.size(), 4u);
  for (size_t i = 0; i < 4; ++i) CHECK_EQ(r.issues[i].line, i + 1);
  const HqdsRaw clean = Parse(gpucolo_test::DropComments(text));
  CHECK(clean.issues.empty());
  CHECK(clean.words == r.words);
}

TEST(hqds_old_headers_stopped_device_and_errors) {
  const HqdsRaw r = Parse(Join({
      "    0000c914: 00000000",
      "Node 0, gpu_id 1:",
      " Device is stopped",
      "Node 1, gpu_id abcd:",
      "  HIQ on MEC 2 Pipe 0 Queue 0",
      "    0000c914: 00000001 00000002",
      "  CP Pipe 1, Queue 2",
      "    0000c914: 00000001 00000002 0000000g",
      "    0000c934: 00000001",
      "  SDMA Engine 0, RLC 1",
      "  Bogus slot",
      "    00000000: 00000000",
      "Node 99999999999, gpu_id 1:",
      "  CP Pipe 1, Queue 2",
  }));
  CHECK_EQ(IssueStrings(r.issues),
           (std::vector<std::string>{
               "1|error|register dump outside a slot",
               "5|error|HQD dump has 2 registers, expected 56",
               "8|error|malformed register line: \"    0000c914: 00000001 00000002 0000000g\"",
               "10|error|SDMA RLC dump has no registers",
               "11|error|unrecognised slot header (its registers are skipped): \"  Bogus slot\"",
               "13|error|unrecognised node header (its slots are skipped): \"Node 99999999999, gpu_id 1:\"",
           }));
  CHECK_EQ(r.nodes.size(), 2 * kHqdsNodeCols);
  CHECK_EQ(N(r, 0, NC::stopped), 1.0);    // node 0 stopped
  CHECK_EQ(N(r, 1, NC::slotCount), 3.0);  // node 1: HIQ, CP, SDMA
  CHECK_EQ(S(r, 0, SC::kind), double(kHqdHiq));
  CHECK_EQ(S(r, 0, SC::inst), -1.0);  // no Inst before 9.4.3
  CHECK_EQ(S(r, 0, SC::mec), 2.0);
  CHECK_EQ(S(r, 1, SC::kind), double(kHqdCp));
  CHECK_EQ(S(r, 1, SC::pipe), 1.0);
  CHECK_EQ(S(r, 1, SC::queue), 2.0);
  CHECK_EQ(S(r, 1, SC::wordCount), 0.0);
}

TEST(hqds_truncated_and_200_bad_lines) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  const HqdsRaw r = Parse(text.substr(0, text.find(" Inst 0,  CP Pipe 0, Queue 3") - 30));
  CHECK_EQ(r.issues.size(), 2u);
  CHECK(r.issues[0].message.rfind("malformed register line", 0) == 0);
  // the cut also took the node's SDMA RLCs
  CHECK_EQ(IssueStrings({r.issues[1]}), (std::vector<std::string>{"1|error|node 2 ends without its SDMA RLC dumps (dump cut?)"}));

  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) lines.push_back("junk " + std::to_string(i));
  const HqdsRaw j = Parse(Join(lines));
  CHECK_EQ(j.issues.size(), 100u);
  CHECK_EQ(j.suppressed, 100u);
}

namespace {

/** text up to (not including) the line that starts with `marker` */
std::string CutBefore(const std::string& text, const std::string& marker) {
  const size_t at = text.find("\n" + marker);
  return text.substr(0, at + 1);
}

std::string Crlf(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

}  // namespace

TEST(hqds_node_twice_is_an_error_and_not_merged) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  const uint64_t n = gpucolo_test::CountLines(text);
  const HqdsRaw r = Parse(text + text);
  CHECK_EQ(IssueStrings(r.issues), (std::vector<std::string>{std::to_string(n + 1) +
                                                             "|error|node 2 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped"}));
  CHECK_EQ(r.nodes.size(), kHqdsNodeCols);
  CHECK_EQ(r.slots.size(), 164 * kHqdsSlotCols);
  // same gpu_id under another node number: the same device printed again
  const HqdsRaw g = Parse("Node 3, gpu_id 7c1e:\n Device is stopped\nNode 4, gpu_id 7c1e:\n Device is stopped\n");
  CHECK_EQ(IssueStrings(g.issues), (std::vector<std::string>{"3|error|node 4 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped"}));
}

TEST(hqds_cut_at_line_boundaries_is_found) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  // a node header alone
  CHECK_EQ(IssueStrings(Parse("Node 2, gpu_id 7c1e:\n").issues), (std::vector<std::string>{"1|error|node 2 has no HQD slots (dump cut?)"}));
  // cut after Inst 1, at a slot header: Insts 2/3 and the SDMA RLCs are missing
  CHECK_EQ(IssueStrings(Parse(CutBefore(text, "   Inst 2, HIQ")).issues),
           (std::vector<std::string>{"1|error|node 2 ends without its SDMA RLC dumps (dump cut?)"}));
  // cut inside Inst 1's CP slots, at a slot boundary
  CHECK_EQ(IssueStrings(Parse(CutBefore(text, " Inst 1,  CP Pipe 2, Queue 2")).issues),
           (std::vector<std::string>{"1|error|node 2: Inst 1 has 12 CP slot(s), another Inst has 24 (dump cut?)",
                                     "1|error|node 2 ends without its SDMA RLC dumps (dump cut?)"}));
  // cut inside the last SDMA RLC, at a line boundary: 44 - 8 - 4 registers left
  size_t end = text.size() - 1;
  for (int i = 0; i < 2; ++i) end = text.rfind('\n', end - 1);
  const HqdsRaw s = Parse(text.substr(0, end + 1));
  CHECK_EQ(s.issues.size(), 1u);
  CHECK(s.issues[0].message == "SDMA RLC dump has 32 registers, the node's others have 44 (dump cut?)");
  // cut at an RLC boundary: the last engine has fewer RLCs than the others
  CHECK_EQ(IssueStrings(Parse(CutBefore(text, "  SDMA Engine 7, RLC 6")).issues),
           (std::vector<std::string>{"1|error|node 2: SDMA engine 7 has 6 RLC(s), another engine has 8 (dump cut?)"}));
}

TEST(hqds_crlf_reads_like_lf) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  const HqdsRaw a = Parse(text);
  const HqdsRaw b = Parse(Crlf(text));
  CHECK(b.issues.empty());
  CHECK(a.words == b.words);
  CHECK(a.nodes == b.nodes);
  CHECK(a.slots == b.slots);
  CHECK_EQ(a.lines, b.lines);
}
