// JoinQueues (native/kfd/join.h) on the shared fixture and on input it cannot fully use. The
// field-by-field agreement with joinQueues in src/kfd/join.ts is checked from JS
// (test/kfd-snapshot-native*.test.ts); these tests pin the C++ side on its own.
#include <string>

#include "harness.h"
#include "kfd/hqds_parser.h"
#include "kfd/join.h"
#include "kfd/mqds_parser.h"
#include "kfd/rls_parser.h"
#include "test_util.h"

using namespace gpucolo::kfd;

namespace {

struct Fixture {
  std::string mqds_text = gpucolo_test::ReadFixture("debugfs/kfd/mqds");
  std::string hqds_text = gpucolo_test::ReadFixture("debugfs/kfd/hqds");
  std::string rls_text = gpucolo_test::ReadFixture("debugfs/kfd/rls");
  MqdsRaw mqds = ParseMqds(mqds_text.data(), mqds_text.size());
  HqdsRaw hqds = ParseHqds(hqds_text.data(), hqds_text.size());
  RlsRaw rls = ParseRls(rls_text.data(), rls_text.size());
};

using QC = JoinQueuesCol;
using NC = JoinNodesCol;

double Q(const JoinTables& t, size_t row, size_t col) { return t.queues[row * kJoinQueueCols + col]; }
double N(const JoinTables& t, size_t row, size_t col) { return t.nodes[row * kJoinNodeCols + col]; }
double Proc(const JoinTables& t, size_t row, size_t col) { return t.processes[row * kJoinProcessCols + col]; }

/** An input table of the rows given cell by cell, by column name; a column not given is -1 (null). */
template <class C>
std::vector<double> Rows(std::initializer_list<std::initializer_list<std::pair<size_t, double>>> rows) {
  std::vector<double> t;
  for (const auto& cells : rows) {
    double* r = AppendRow(&t, C::kCount);
    for (size_t c = 0; c < C::kCount; ++c) r[c] = -1;
    for (const auto& [col, v] : cells) r[col] = v;
  }
  return t;
}
/** The queue row whose first MQD address is `lo` (high dword 0); a row past the end when none. */
size_t RowOfMqd(const JoinTables& t, uint32_t lo) {
  const size_t rows = t.queues.size() / kJoinQueueCols;
  for (size_t r = 0; r < rows; ++r) {
    if (Q(t, r, QC::addressCount) < 1) continue;
    const double* a = &t.addresses[static_cast<size_t>(Q(t, r, QC::firstAddress)) * kJoinAddressCols];
    if (a[JoinAddressesCol::lo] == lo && a[JoinAddressesCol::hi] == 0) return r;
  }
  return rows;
}
using TC = JoinTopologyCol;
using PC = JoinProcsCol;
using SC = JoinProcQueuesCol;

}  // namespace

TEST(join_fixture_queues_slots_runlist) {
  const Fixture f;
  JoinInput in;
  in.mqds = &f.mqds;
  in.hqds = &f.hqds;
  in.rls = &f.rls;
  const JoinTables t = JoinQueues(in);
  CHECK(t.warnings.empty());
  CHECK(t.unmatched_hqds.empty());
  CHECK(t.unmatched_runlist.empty());
  // pid 41872 (two compute queues, one SDMA queue, oldest first), then pid 42117
  CHECK_EQ(t.processes.size(), 2 * kJoinProcessCols);
  CHECK_EQ(Proc(t, 0, JoinProcessesCol::pid), 41872.0);
  CHECK_EQ(Proc(t, 0, JoinProcessesCol::queueCount), 3.0);
  CHECK_EQ(Proc(t, 1, JoinProcessesCol::pid), 42117.0);
  CHECK_EQ(t.queues.size(), 4 * kJoinQueueCols);
  CHECK_EQ(Q(t, 0, QC::mqdKind), double(kMqdCompute));
  CHECK_EQ(Q(t, 0, QC::addressCount), 4.0);  // one MQD address per XCC
  CHECK_EQ(Q(t, 0, QC::hqdCount), 4.0);      // one HQD slot per XCC
  CHECK_EQ(Q(t, 0, QC::priorityPipe), 1.0);
  CHECK_EQ(Q(t, 0, QC::priorityQueue), 7.0);
  CHECK_EQ(Q(t, 0, QC::priorityLevel), 1.0);  // normal
  CHECK_EQ(Q(t, 0, QC::inRunlist), 1.0);
  CHECK_EQ(Q(t, 2, QC::mqdKind), double(kMqdSdma));
  CHECK_EQ(Q(t, 2, QC::sdmaEngine), 2.0);  // SDMA engine 2, RLC 0, matched by engine/RLC
  CHECK_EQ(Q(t, 2, QC::sdmaRlc), 0.0);
  CHECK_EQ(Q(t, 2, QC::sdmaMatchedBy), 0.0);
  CHECK_EQ(Q(t, 3, QC::hqdCount), 0.0);   // pid 42117's queue is mapped nowhere
  CHECK_EQ(Q(t, 3, QC::inRunlist), 0.0);  // and not in the (whole) runlist
  CHECK_EQ(Q(t, 0, QC::qidMatch), double(kQidNoSysfs));
  // the first MQD address: 0x712000
  CHECK_EQ(t.addresses[JoinAddressesCol::lo], double(0x712000));
  CHECK_EQ(t.addresses[JoinAddressesCol::hi], 0.0);
  // node 2: 8 active CP slots of 96, 1 SDMA RLC, 4 XCCs, runlist of 2 processes and 3 queues
  CHECK_EQ(t.nodes.size(), kJoinNodeCols);
  CHECK_EQ(N(t, 0, NC::node), 2.0);
  CHECK_EQ(N(t, 0, NC::gpuId), double(0x7c1e));
  CHECK_EQ(N(t, 0, NC::activeHqds), 8.0);
  CHECK_EQ(N(t, 0, NC::activeSdma), 1.0);
  CHECK_EQ(N(t, 0, NC::cpSlots), 96.0);
  CHECK_EQ(N(t, 0, NC::xccCount), 4.0);
  CHECK_EQ(N(t, 0, NC::runlistPresent), 1.0);
  CHECK_EQ(N(t, 0, NC::runlistProcesses), 2.0);
  CHECK_EQ(N(t, 0, NC::runlistMapQueues), 3.0);
}

TEST(join_nothing_read) {
  const JoinTables t = JoinQueues(JoinInput{});
  CHECK(t.queues.empty());
  CHECK(t.processes.empty());
  CHECK(t.nodes.empty());
  CHECK(t.warnings.empty());
}

TEST(join_mqds_alone_with_sysfs_and_topology) {
  const Fixture f;
  // a topology GPU with 2 XCCs (the queues have 4 MQD blocks) and sysfs queues for pid 41872 only
  const std::vector<double> topology = Rows<TC>({{{TC::node, 2}, {TC::gpuId, 0x7c1e}, {TC::numXcc, 2}}});
  const std::vector<double> procs = Rows<PC>({{{PC::pid, 41872}, {PC::firstQueue, 0}, {PC::queueCount, 2}}});  // pasid unreadable
  const std::vector<double> proc_queues = Rows<SC>({
      {{SC::qid, 0}, {SC::typeCode, 1}, {SC::sizeBytes, 4096}, {SC::gpuId, 0x7c1e}},
      {{SC::qid, 1}, {SC::typeCode, 0}, {SC::sizeBytes, 65536}, {SC::gpuId, 0x7c1e}},
  });
  JoinInput in;
  in.mqds = &f.mqds;
  in.topology = &topology;
  in.procs = &procs;
  in.proc_queues = &proc_queues;
  const JoinTables t = JoinQueues(in);
  // hqds not read: no HQD slots, no unknown-Inst warnings; the block counts disagree with num_xcc
  CHECK(t.hqds.empty());
  CHECK_EQ(N(t, 0, NC::numXcc), 2.0);
  CHECK_EQ(N(t, 0, NC::activeHqds), -1.0);
  bool blocks_warned = false, counts_warned = false;
  for (const std::string& w : t.warnings) {
    blocks_warned = blocks_warned || w.find("has 4 MQD block(s), gpu 7c1e has num_xcc 2") != std::string::npos;
    counts_warned = counts_warned || w.find("process 41872: 1 compute queue(s) on gpu 7c1e in sysfs but 2 in mqds") != std::string::npos;
  }
  CHECK(blocks_warned);
  CHECK(counts_warned);
}

TEST(join_qid_hints_win_over_creation_order_and_are_learned) {
  const Fixture f;
  // pid 41872's two compute queues (MQDs at 0x712000, then 0x714000 in creation order) and two
  // sysfs compute queues: creation order pairs them qid 4, qid 7
  const std::vector<double> procs = Rows<PC>({{{PC::pid, 41872}, {PC::firstQueue, 0}, {PC::queueCount, 2}}});
  const std::vector<double> proc_queues = Rows<SC>({
      {{SC::qid, 4}, {SC::typeCode, 0}, {SC::gpuId, 0x7c1e}},
      {{SC::qid, 7}, {SC::typeCode, 0}, {SC::gpuId, 0x7c1e}},
  });
  JoinInput in;
  in.mqds = &f.mqds;
  in.procs = &procs;
  in.proc_queues = &proc_queues;
  const JoinTables plain = JoinQueues(in);
  CHECK_EQ(Q(plain, RowOfMqd(plain, 0x712000), QC::qid), 4.0);
  CHECK_EQ(Q(plain, RowOfMqd(plain, 0x712000), QC::qidMatch), double(kQidCreationOrder));
  CHECK_EQ(Q(plain, RowOfMqd(plain, 0x71e000), QC::qid), 7.0);
  QidHints learned;
  LearnQidHints(plain, &learned);
  CHECK_EQ(learned.size(), size_t{1});
  CHECK_EQ(learned[41872].size(), size_t{2});
  CHECK_EQ(learned[41872]["mqd:0x712000"], 4.0);
  // an earlier join saw them the other way round: the hints win, the pairing follows them
  QidHints hints;
  hints[41872]["mqd:0x712000"] = 7;
  hints[41872]["mqd:0x71e000"] = 4;
  hints[41872]["mqd:0xdead000"] = 9;  // a queue gone: ignored
  hints[999]["mqd:0x712000"] = 4;     // another process: ignored
  in.qid_hints = &hints;
  const JoinTables t = JoinQueues(in);
  const size_t a = RowOfMqd(t, 0x712000), b = RowOfMqd(t, 0x71e000);
  CHECK(a < t.queues.size() / kJoinQueueCols && b < t.queues.size() / kJoinQueueCols);
  if (a >= t.queues.size() / kJoinQueueCols || b >= t.queues.size() / kJoinQueueCols) return;
  CHECK_EQ(Q(t, a, QC::qid), 7.0);
  CHECK_EQ(Q(t, a, QC::qidMatch), double(kQidHistory));
  CHECK_EQ(Q(t, b, QC::qid), 4.0);
  CHECK_EQ(Q(t, b, QC::qidMatch), double(kQidHistory));
  // a hint naming an id sysfs no longer lists leaves the queue to creation order
  QidHints stale;
  stale[41872]["mqd:0x712000"] = 9;
  in.qid_hints = &stale;
  const JoinTables s = JoinQueues(in);
  CHECK_EQ(Q(s, RowOfMqd(s, 0x712000), QC::qid), 4.0);
  CHECK_EQ(Q(s, RowOfMqd(s, 0x712000), QC::qidMatch), double(kQidCreationOrder));
  // learning adds and overwrites, never drops: the stale hint of 0x712000 now says 4
  LearnQidHints(s, &stale);
  CHECK_EQ(stale[41872]["mqd:0x712000"], 4.0);
  CHECK_EQ(stale[41872].size(), size_t{2});
}

TEST(join_cut_inputs_never_throw) {
  const Fixture f;
  // every prefix length of the dumps at a coarse step: the join reads only what was parsed
  for (size_t cut = 0; cut < f.hqds_text.size(); cut += 4099) {
    const MqdsRaw m = ParseMqds(f.mqds_text.data(), cut < f.mqds_text.size() ? cut : f.mqds_text.size());
    const HqdsRaw h = ParseHqds(f.hqds_text.data(), cut);
    const RlsRaw r = ParseRls(f.rls_text.data(), cut < f.rls_text.size() ? cut : f.rls_text.size());
    JoinInput in;
    in.mqds = &m;
    in.hqds = &h;
    in.rls = &r;
    const JoinTables t = JoinQueues(in);
    CHECK_EQ(t.queues.size() % kJoinQueueCols, 0u);
    CHECK_EQ(t.nodes.size() % kJoinNodeCols, 0u);
  }
}

TEST(join_format_address) {
  CHECK_EQ(FormatAddress(0, 0, 0), std::string("0x0"));
  CHECK_EQ(FormatAddress(0, 0, 8), std::string("0x0"));
  CHECK_EQ(FormatAddress(0x712000, 0, 0), std::string("0x712000"));
  CHECK_EQ(FormatAddress(0x8c2000, 0x7f3a, 8), std::string("0x7f3a008c200000"));
  // ring bases can pass 64 bits once shifted, as in TS (BigInt there)
  CHECK_EQ(FormatAddress(0xffffffffu, 0xffffffffu, 8), std::string("0xffffffffffffffff00"));
}

TEST(join_sysfs_tables_checked) {
  const std::vector<double> topology_ok = Rows<TC>({{{TC::node, 2}, {TC::gpuId, 1}, {TC::numXcc, 4}}});
  const std::vector<double> topology_cut(topology_ok.begin(), topology_ok.end() - 1);  // not a whole row
  const std::vector<double> procs = Rows<PC>({{{PC::pid, 100}, {PC::firstQueue, 0}, {PC::queueCount, 2}}});
  const std::vector<double> one_queue = Rows<SC>({{{SC::qid, 0}, {SC::typeCode, 0}, {SC::gpuId, 1}}});
  const std::vector<double> two_queues =
      Rows<SC>({{{SC::qid, 0}, {SC::typeCode, 0}, {SC::gpuId, 1}}, {{SC::qid, 1}, {SC::typeCode, 1}, {SC::gpuId, 1}}});
  JoinInput in;
  CHECK(CheckJoinSysfs(in) == nullptr);
  in.topology = &topology_ok;
  CHECK(CheckJoinSysfs(in) == nullptr);
  in.topology = &topology_cut;
  CHECK(CheckJoinSysfs(in) != nullptr);
  in.topology = &topology_ok;
  in.procs = &procs;
  in.proc_queues = &one_queue;  // the proc row names two queues
  CHECK(CheckJoinSysfs(in) != nullptr);
  in.proc_queues = &two_queues;
  CHECK(CheckJoinSysfs(in) == nullptr);
  const JoinTables t = JoinQueues(in);
  CHECK_EQ(t.queues.size(), 2 * kJoinQueueCols);
  CHECK_EQ(Q(t, 0, QC::qidMatch), double(kQidSysfsOnly));
}
