#include "harness.h"
#include "kfd/rls_parser.h"
#include "test_util.h"

using namespace gpucolo::kfd;
using gpucolo_test::IssueStrings;
using gpucolo_test::Join;

namespace {

RlsRaw Parse(const std::string& text) { return ParseRls(text.data(), text.size()); }
using NC = RlsNodeCol;
using PC = RlsPacketCol;

double N(const RlsRaw& r, size_t row, size_t col) { return r.nodes[row * kRlsNodeCols + col]; }
double P(const RlsRaw& r, size_t row, size_t col) { return r.packets[row * kRlsPacketCols + col]; }

}  // namespace

TEST(rls_fixture_packets) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/rls");
  const RlsRaw r = Parse(text);
  CHECK(r.issues.empty());
  CHECK_EQ(r.lines, 9u);
  CHECK_EQ(r.nodes.size(), kRlsNodeCols);
  CHECK_EQ(N(r, 0, NC::node), 2.0);
  CHECK_EQ(N(r, 0, NC::gpuId), double(0x7c1e));
  CHECK_EQ(N(r, 0, NC::noRunlist), 0.0);
  CHECK_EQ(N(r, 0, NC::wordCount), 63.0);
  CHECK_EQ(N(r, 0, NC::packetCount), 5.0);
  CHECK_EQ(N(r, 0, NC::firstDumpLine), 2.0);
  CHECK_EQ(r.words.size(), 63u);
  CHECK_EQ(r.words[0], 0xc013a100u);
  const double want[5][3] = {{0, 0xa1, 21}, {21, 0xa1, 21}, {42, 0xa2, 7}, {49, 0xa2, 7}, {56, 0xa2, 7}};
  CHECK_EQ(r.packets.size(), 5 * kRlsPacketCols);
  for (size_t i = 0; i < 5; ++i) {
    CHECK_EQ(P(r, i, PC::dwordOffset), want[i][0]);
    CHECK_EQ(P(r, i, PC::opcode), want[i][1]);
    CHECK_EQ(P(r, i, PC::dwords), want[i][2]);
  }
  // pasids 0x8003 then 0x8002; the SDMA MAP_QUEUES: engine sel, doorbell, MQD address
  CHECK_EQ(r.words[1] & 0xffff, 0x8003u);
  CHECK_EQ(r.words[22] & 0xffff, 0x8002u);
  CHECK_EQ(r.words[43], 0x28000014u);
  CHECK_EQ(r.words[44], 0x00004620u);
  CHECK_EQ(r.words[45], 0x006e7000u);
  CHECK_EQ(r.words[52], 0x0071e000u);
  CHECK_EQ(r.words[59], 0x00712000u);
}

TEST(rls_no_runlist_bad_packets_and_offsets) {
  const RlsRaw r = Parse(Join({
      "  00000000: c0000000",
      "Node 1, gpu_id 1:",
      "  No active runlist",
      "Node 2, gpu_id 2:",
      "  00000000: c005a200 00000000 00000000 00000000 00000000 00000000 00000000 12345678",
      "Node 3, gpu_id 3:",
      "  00000000: c013a100 00000000",
      "Node 4, gpu_id 4:",
      "  00000000: c000ff00",
      "  00000010: 00000000",
      "  00000008: c0000000",
      "  No active runlist",
      "    00000000: 00000000",
      "Node x",
  }));
  CHECK_EQ(IssueStrings(r.issues),
           (std::vector<std::string>{
               "1|error|runlist dump line outside a Node block",
               "5|error|runlist dword 7: 0x12345678 is not a PM4 type-3 packet header",
               "7|error|runlist dword 0: MAP_PROCESS packet needs 21 dwords, only 2 left",
               "10|error|runlist dump offset 0x00000010 where 0x00000004 was expected",
               "13|error|unrecognised line: \"    00000000: 00000000\"",
               "9|error|runlist dword 0: opcode 0xff packet needs 2 dwords, only 1 left",
               "14|error|unrecognised node header (its runlist is skipped): \"Node x\"",
           }));
  CHECK_EQ(r.nodes.size(), 4 * kRlsNodeCols);
  CHECK_EQ(N(r, 0, NC::noRunlist), 1.0);
  CHECK_EQ(N(r, 1, NC::packetCount), 1.0);  // node 2: the MAP_QUEUES before the bad word
  CHECK_EQ(N(r, 3, NC::noRunlist), 1.0);
}

TEST(rls_walk_pm4_directly) {
  RawCommon c;
  IssueSink sink(&c);
  const uint32_t words[] = {0xc0001000u, 0, 0xc0011000u, 1, 2};
  std::vector<double> packets;
  WalkPm4(words, 0, 5, 3, 10, &packets, &sink);
  CHECK(c.issues.empty());
  CHECK_EQ(packets, (std::vector<double>{3, 0, 0x10, 2, 3, 2, 0x10, 3}));
}

TEST(rls_node_twice_is_an_error_and_crlf_reads_like_lf) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/rls");
  const RlsRaw r = Parse(text + text);
  CHECK_EQ(IssueStrings(r.issues), (std::vector<std::string>{"10|error|node 2 (gpu_id 7c1e) again, first at line 1: two dumps appended? this copy is skipped"}));
  CHECK_EQ(r.nodes.size(), kRlsNodeCols);
  CHECK_EQ(r.words.size(), 63u);
  CHECK_EQ(r.packets.size(), 5 * kRlsPacketCols);
  std::string crlf;
  for (char c : text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const RlsRaw a = Parse(text);
  const RlsRaw b = Parse(crlf);
  CHECK(b.issues.empty());
  CHECK(a.words == b.words);
  CHECK(a.nodes == b.nodes);
  CHECK(a.packets == b.packets);
}
