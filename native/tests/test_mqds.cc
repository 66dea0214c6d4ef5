#include "harness.h"
#include "kfd/mqds_parser.h"
#include "test_util.h"

using namespace gpucolo::kfd;
using gpucolo_test::IssueStrings;
using gpucolo_test::Join;

namespace {

MqdsRaw Parse(const std::string& text) { return ParseMqds(text.data(), text.size()); }

using PC = MqdsProcCol;
using QC = MqdsQueueCol;
using BC = MqdsBlockCol;

double P(const MqdsRaw& r, size_t row, size_t col) { return r.procs[row * kMqdsProcCols + col]; }
double Q(const MqdsRaw& r, size_t row, size_t col) { return r.queues[row * kMqdsQueueCols + col]; }
double B(const MqdsRaw& r, size_t row, size_t col) { return r.blocks[row * kMqdsBlockCols + col]; }
/** MQD dword dw of block `block` */
uint32_t W(const MqdsRaw& r, size_t block, size_t dw) { return r.words[static_cast<size_t>(B(r, block, BC::wordOffset)) + dw]; }

}  // namespace

TEST(mqds_fixture_processes_queues_blocks) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/mqds");
  const MqdsRaw r = Parse(text);
  CHECK(r.issues.empty());
  CHECK_EQ(r.suppressed, 0u);
  CHECK_EQ(r.lines, gpucolo_test::CountLines(text));
  CHECK_EQ(r.procs.size(), 2 * kMqdsProcCols);
  CHECK_EQ(P(r, 0, PC::pid), 41872.0);
  CHECK_EQ(P(r, 1, PC::pid), 42117.0);
  CHECK_EQ(r.pasids, (std::vector<std::string>{"41872", "42117"}));
  CHECK_EQ(P(r, 0, PC::queueCount), 3.0);  // queues of 41872
  CHECK_EQ(P(r, 1, PC::queueCount), 1.0);
  // newest first: SDMA qid2, compute qid1, compute qid0; then 42117's compute queue
  CHECK_EQ(r.queues.size(), 4 * kMqdsQueueCols);
  CHECK_EQ(Q(r, 0, QC::kind), double(kMqdSdma));
  CHECK_EQ(Q(r, 1, QC::kind), double(kMqdCompute));
  CHECK_EQ(Q(r, 2, QC::kind), double(kMqdCompute));
  CHECK_EQ(Q(r, 3, QC::kind), double(kMqdCompute));
  for (size_t q = 0; q < 4; ++q) {
    CHECK_EQ(Q(r, q, QC::gpuId), double(0x7c1e));
    CHECK_EQ(Q(r, q, QC::typeCode), -1.0);
    CHECK_EQ(Q(r, q, QC::extraCopies), 0.0);
  }
  CHECK_EQ(Q(r, 3, QC::proc), 1.0);
  // 1 SDMA block of 128 dwords (16 lines), 4 XCC blocks x 512 dwords per compute queue
  CHECK_EQ(Q(r, 0, QC::blockCount), 1.0);
  CHECK_EQ(Q(r, 1, QC::blockCount), 4.0);
  CHECK_EQ(Q(r, 2, QC::blockCount), 4.0);
  CHECK_EQ(Q(r, 3, QC::blockCount), 4.0);
  CHECK_EQ(r.blocks.size(), 13 * kMqdsBlockCols);
  CHECK_EQ(B(r, 0, BC::wordCount), 128.0);
  for (size_t b = 1; b < 13; ++b) CHECK_EQ(B(r, b, BC::wordCount), 512.0);
  CHECK_EQ(r.words.size(), 128u + 12u * 512u);
  // compute qid1: XCC0 header, MQD GART 0x71e000 (+0x3000 per XCC), priorities 2/11
  CHECK_EQ(W(r, 1, 0), 0xc0310800u);
  for (size_t x = 0; x < 4; ++x) {
    CHECK_EQ(W(r, 1 + x, 128), 0x71e000u + 0x3000u * x);
    CHECK_EQ(W(r, 1 + x, 129), 0u);
  }
  CHECK_EQ(W(r, 1, 133), 2u);
  CHECK_EQ(W(r, 1, 134), 11u);
  CHECK_EQ(W(r, 5, 128), 0x712000u);
  CHECK_EQ(W(r, 5, 133), 1u);
  CHECK_EQ(W(r, 5, 134), 7u);
  // pid 42117's queue is inactive: cp_hqd_active 0
  CHECK_EQ(W(r, 9, 128), 0x72a000u);
  CHECK_EQ(W(r, 9, 130), 0u);
}

TEST(mqds_txt_fixture_comment_lines_are_issues) {
  const std::string text = gpucolo_test::ReadFixture("debugfs_kfd_mqds_gc943_4xcc.txt");
  const MqdsRaw r = Parse(text);
  CHECK_EQ(r.issues.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_EQ(r.issues[i].line, i + 1);
    CHECK(r.issues[i].message.rfind("unrecognised line: \"#", 0) == 0);
  }
  CHECK(r.issues[0].message.size() > 40 && r.issues[0].message.find("...\"") != std::string::npos);
  const MqdsRaw clean = Parse(gpucolo_test::DropComments(text));
  CHECK(clean.issues.empty());
  CHECK(clean.words == r.words);
  CHECK_EQ(clean.blocks.size(), r.blocks.size());
  CHECK_EQ(P(r, 0, PC::line), P(clean, 0, PC::line) + 3);
}

TEST(mqds_empty_newline_garbage) {
  MqdsRaw r = Parse("");
  CHECK_EQ(r.lines, 0u);
  CHECK(r.issues.empty());
  r = Parse("\n");
  CHECK_EQ(r.lines, 1u);
  CHECK(r.issues.empty());
  r = Parse(std::string("\x00\x01\x02\xff\n\x80" "A", 7));
  CHECK_EQ(IssueStrings(r.issues), (std::vector<std::string>{"1|error|unrecognised line: \"????\"", "2|error|unrecognised line: \"?A\""}));
}

TEST(mqds_wrong_offsets_orphans_unknown_headers) {
  const MqdsRaw r = Parse(Join({
      "    00000000: 00000001",
      "Process 12 PASID 0x5:",
      "  Compute queue on device 7c1e",
      "    00000000: c0310800 00000000",
      "    00000040: 00000000",
      "  Strange queue on device 7c1e",
      "    00000000: 00000000",
      "Process x PASID 1:",
      "  SDMA queue on device 1",
  }));
  CHECK_EQ(IssueStrings(r.issues),
           (std::vector<std::string>{
               "1|error|MQD dump line outside a queue",
               "5|error|MQD dump offset 0x00000040 where 0x00000008 was expected",
               "6|error|unrecognised queue header (its dump is skipped): \"  Strange queue on device 7c1e\"",
               "8|error|unrecognised process header (its queues are skipped): \"Process x PASID 1:\"",
           }));
  CHECK_EQ(r.pasids, (std::vector<std::string>{"0x5"}));
  CHECK_EQ(P(r, 0, PC::queueCount), 1.0);
  // a broken block is kept with the words read before the break
  CHECK_EQ(r.blocks.size(), kMqdsBlockCols);
  CHECK_EQ(B(r, 0, BC::wordCount), 2.0);
}

TEST(mqds_truncated_mid_line) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/mqds");
  const std::string cut = text.substr(0, text.find("00000100:", 100) + 20);
  const MqdsRaw r = Parse(cut);
  CHECK_EQ(r.issues.size(), 1u);
  CHECK(r.issues[0].message.rfind("malformed MQD dump line: \"    00000100: 00000000", 0) == 0);
  // the cut SDMA block is broken, so it is not also reported as short
  CHECK_EQ(r.blocks.size(), kMqdsBlockCols);
}

TEST(mqds_short_block_and_sdma_repeats) {
  const MqdsRaw r = Parse(Join({
      "Process 7 PASID 7:",
      "  Compute queue on device a",
      "    00000000: c0310800 00000000",
      "  SDMA queue on device a",
      "    00000000: 00000001",
      "    00000000: 00000002",
      "    00000000: 00000003",
      "  Bad user queue type 9 on device a",
      "  Weird: Queue node with neither kernel nor user queue",
      "  Queue node with bad user queue type 99999999999 on device a",
  }));
  CHECK_EQ(IssueStrings(r.issues),
           (std::vector<std::string>{
               "3|error|MQD block has 2 dwords, expected 512",
               "5|error|MQD block has 1 dwords, expected 128",
               "8|warning|kernel reports an unusable queue: \"  Bad user queue type 9 on device a\"",
               "9|warning|kernel reports an unusable queue: \"  Weird: Queue node with neither kernel ...\"",
               "10|error|unrecognised queue header (its dump is skipped): \"  Queue node with bad user queue type 99...\"",
           }));
  CHECK_EQ(r.queues.size(), 4 * kMqdsQueueCols);
  CHECK_EQ(Q(r, 1, QC::blockCount), 1.0);   // only the first SDMA block is the queue's MQD
  CHECK_EQ(Q(r, 1, QC::extraCopies), 2.0);  // the kernel's stale-num_xccs repeats
  CHECK_EQ(r.words.size(), 3u);
  CHECK_EQ(Q(r, 2, QC::kind), double(kMqdBadUser));
  CHECK_EQ(Q(r, 2, QC::typeCode), 9.0);
  CHECK_EQ(Q(r, 3, QC::kind), double(kMqdWeird));
  CHECK_EQ(Q(r, 3, QC::gpuId), -1.0);
}

TEST(mqds_200_bad_lines_keep_100_issues) {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) lines.push_back("junk " + std::to_string(i));
  const MqdsRaw r = Parse(Join(lines));
  CHECK_EQ(r.issues.size(), 100u);
  CHECK_EQ(r.suppressed, 100u);
  CHECK_EQ(r.lines, 200u);
  CHECK_EQ(r.issues[99].message, std::string("unrecognised line: \"junk 99\""));
}

namespace {

/** An MQD block of `dwords` dwords as the kernel dumps it: word i = i + first. */
std::vector<std::string> Block(size_t dwords, uint32_t first = 0) {
  std::vector<std::string> out;
  for (size_t off = 0; off < dwords; off += 8) {
    std::string l = "    " + Hex8(static_cast<uint32_t>(off * 4)) + ":";
    for (size_t i = off; i < off + 8 && i < dwords; ++i) l += " " + Hex8(static_cast<uint32_t>(i) + first);
    out.push_back(l);
  }
  return out;
}

std::vector<std::string> Cat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST(mqds_cut_after_a_queue_header_or_a_block_is_found) {
  const std::vector<std::string> text = Cat({
      {"Process 1 PASID 1:", "  Compute queue on device a"},
      Block(512), Block(512), Block(512), Block(512),  // lines 3..258
      {"  Compute queue on device a"},                 // 259
      Block(512), Block(512),                          // two of four XCC blocks
      {"  SDMA queue on device a",                     // 388
       "Process 2 PASID 2:",                           // 389
       "  Compute queue on device b"},                 // 390: the end
  });
  const MqdsRaw r = Parse(Join(text));
  CHECK_EQ(IssueStrings(r.issues), (std::vector<std::string>{
                                       "388|error|sdma queue without an MQD dump (dump cut?)",
                                       "390|error|compute queue without an MQD dump (dump cut?)",
                                       "259|error|compute queue has 2 MQD block(s), another on device a has 4 (dump cut?)",
                                   }));
  CHECK_EQ(Q(r, 1, QC::blockCount), 2.0);
  CHECK_EQ(Q(r, 2, QC::blockCount), 0.0);
  CHECK_EQ(Q(r, 3, QC::blockCount), 0.0);
  // a queue the kernel prints without a dump (bad type, weird) is no cut
  CHECK(Parse("Process 1 PASID 1:\n  Bad user queue type 9 on device a\n").issues.size() == 1u);
}

TEST(mqds_block_cut_at_dword_40_keeps_its_40_words) {
  const MqdsRaw r = Parse(Join(Cat({{"Process 1 PASID 1:", "  Compute queue on device a"}, Block(40, 0xc0310800)})));
  CHECK_EQ(IssueStrings(r.issues), (std::vector<std::string>{"3|error|MQD block has 40 dwords, expected 512"}));
  CHECK_EQ(r.words.size(), 40u);
  CHECK_EQ(B(r, 0, BC::wordCount), 40.0);
}

TEST(mqds_crlf_reads_like_lf) {
  const std::string text = gpucolo_test::ReadFixture("debugfs/kfd/mqds");
  std::string crlf;
  for (char c : text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const MqdsRaw a = Parse(text);
  const MqdsRaw b = Parse(crlf);
  CHECK(b.issues.empty());
  CHECK(a.words == b.words);
  CHECK(a.procs == b.procs);
  CHECK(a.queues == b.queues);
  CHECK(a.blocks == b.blocks);
  CHECK_EQ(a.pasids, b.pasids);
}
