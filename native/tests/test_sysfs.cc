#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "harness.h"
#include "kfd/input_file.h"
#include "kfd/sysfs_procs.h"
#include "kfd/sysfs_reader.h"
#include "test_util.h"

using namespace gpucolo::kfd;

namespace {

const std::string kT = "class/kfd/kfd/topology/nodes";
const std::string kP = "class/kfd/kfd/proc";

/** A temp tree of {relative path: content}, removed again when the test ends. */
class TempTree {
 public:
  explicit TempTree(const std::map<std::string, std::string>& files) {
    char tmpl[] = "/tmp/gpucolo-cc-XXXXXX";
    if (!mkdtemp(tmpl)) throw gpucolo_test::Failure{"mkdtemp failed"};
    root_ = tmpl;
    for (const auto& f : files) Write(f.first, f.second);
  }
  ~TempTree() {
    nftw(root_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16, FTW_DEPTH | FTW_PHYS);
  }
  void Write(const std::string& rel, const std::string& content) {
    const std::string full = root_ + "/" + rel;
    for (size_t i = root_.size() + 1; i < full.size(); ++i) {
      if (full[i] == '/') ::mkdir(full.substr(0, i).c_str(), 0755);
    }
    std::ofstream(full, std::ios::binary) << content;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

std::vector<std::string> Messages(const std::vector<ReadIssue>& v) {
  std::vector<std::string> out;
  for (const auto& i : v) out.push_back(std::string(SeverityName(i.severity)) + "|" + i.code + "|" + i.message);
  return out;
}

}  // namespace

TEST(sysfs_under_root) {
  CHECK_EQ(UnderRoot("/sys", "a/b"), std::string("/sys/a/b"));
  CHECK_EQ(UnderRoot("/sys///", "a"), std::string("/sys/a"));
  CHECK_EQ(UnderRoot("/", "a"), std::string("/a"));
  CHECK_EQ(UnderRoot("///", "a"), std::string("/a"));
  CHECK_EQ(UnderRoot("", "a"), std::string("/a"));
  CHECK_EQ(UnderRoot("rel/", "a"), std::string("rel/a"));
}

TEST(sysfs_fixture_topology) {
  const TopologyRaw t = ReadTopology(gpucolo_test::FixturePath("sysfs"));
  CHECK(t.issues.empty());
  CHECK_EQ(t.nodes.size(), 1u);
  CHECK_EQ(t.nodes[0].node, 2.0);
  CHECK_EQ(t.nodes[0].gpu_id, 31774.0);
  CHECK_EQ(t.nodes[0].name, std::string("ip discovery"));
  CHECK(t.nodes[0].keys.size() > 10);
  CHECK_EQ(t.nodes[0].keys.size(), t.nodes[0].values.size());
  CHECK_EQ(t.nodes[0].keys[0], std::string("cpu_cores_count"));
  CHECK_EQ(t.nodes[0].values[0], std::string("0"));
}

TEST(sysfs_fixture_procs) {
  const ProcsRaw p = ReadKfdProcs(gpucolo_test::FixturePath("sysfs"), nullptr);
  CHECK(p.issues.empty());
  CHECK_EQ(p.procs, (std::vector<double>{41872, 0, 0, 3, 0, 7, 42117, 0, 3, 1, 7, 7}));
  CHECK_EQ(p.queues, (std::vector<double>{0, 0, 0, 1048576, 31774, 0, 1, 0, 1048576, 31774, 0, 2, 4, 1048576, 31774,
                                          1, 0, 0, 1048576, 31774}));
  CHECK_EQ(p.metrics.size(), 14 * kProcsMetricCols);
  // ordered by (gpu, code): vram, sdma, evicted_ms, cu_occupancy, faults, page_in, page_out
  auto metric = [&](size_t r, size_t col) { return p.metrics[r * kProcsMetricCols + col]; };
  for (size_t i = 0; i < 7; ++i) CHECK_EQ(metric(i, ProcsMetricCol::metric), double(i));
  CHECK_EQ(metric(0, ProcsMetricCol::value), 17184063488.0);
  CHECK_EQ(metric(1, ProcsMetricCol::value), 152340.0);
  CHECK_EQ(metric(3, ProcsMetricCol::value), 38.0);

  const std::vector<double> pids{42117, 1};
  const ProcsRaw one = ReadKfdProcs(gpucolo_test::FixturePath("sysfs") + "/", &pids);
  CHECK_EQ(one.procs, (std::vector<double>{42117, 0, 0, 1, 0, 7}));
}

TEST(sysfs_missing_root) {
  const TopologyRaw t = ReadTopology("/nonexistent");
  CHECK_EQ(Messages(t.issues), (std::vector<std::string>{"error|ENOENT|cannot read /nonexistent/" + kT + " (ENOENT)"}));
  const ProcsRaw p = ReadKfdProcs("/nonexistent", nullptr);
  CHECK_EQ(Messages(p.issues), (std::vector<std::string>{"error|ENOENT|cannot read /nonexistent/" + kP + " (ENOENT)"}));
  CHECK(p.procs.empty());
}

TEST(sysfs_bad_topology) {
  TempTree tree({
      {kT + "/0/gpu_id", "0\n"},
      {kT + "/0/name", "\n"},
      {kT + "/0/properties", "cpu_cores_count 64\nsimd_count 0\n"},
      {kT + "/1/gpu_id", "banana\n"},
      {kT + "/10/gpu_id", "48153\n"},
      {kT + "/10/name", "aldebaran\n"},
      {kT + "/10/properties", "simd_count 440\nnonsense\n \nx \nk v w"},
      {kT + "/2/gpu_id", "-0\n"},
      {kT + "/2/name", "y\n"},
      {kT + "/x3/gpu_id", "3\n"},
  });
  const std::string d = tree.root() + "/" + kT;
  const TopologyRaw t = ReadTopology(tree.root());
  CHECK_EQ(Messages(t.issues), (std::vector<std::string>{
                                   "error||" + d + "/1/gpu_id: expected a number, got \"banana?\"",
                                   // a gpu_id is unsigned: "-0" is no gpu_id (the node is not read further)
                                   "error||" + d + "/2/gpu_id: expected a gpu_id (a number >= 0), got \"-0?\"",
                                   "warning||" + d + "/10/properties:2: malformed property line \"nonsense\"",
                                   "warning||" + d + "/10/properties:3: malformed property line \" \"",
                                   "warning||" + d + "/10/properties:4: malformed property line \"x \"",
                               }));
  CHECK_EQ(t.nodes.size(), 2u);
  CHECK_EQ(t.nodes[0].name, std::string(""));
  CHECK_EQ(t.nodes[1].node, 10.0);
  CHECK_EQ(t.nodes[1].keys, (std::vector<std::string>{"simd_count", "k"}));
  CHECK_EQ(t.nodes[1].values, (std::vector<std::string>{"440", "v w"}));
}

TEST(sysfs_bad_procs) {
  TempTree tree({
      {kP + "/1/queues/3/type", "1"},
      {kP + "/1/queues/3/gpuid", "ff"},
      {kP + "/1/counters_7/faults", "3\n"},
      {kP + "/1/sdma_7", "-1\n"},
      {kP + "/1/vram_07", "5\n"},
      {kP + "/1/vram_7", "6\n"},
      {kP + "/1/pasid/x", ""},
      {kP + "/2/pasid", "\n"},
      {kP + "/2/queues", "not a dir"},
  });
  const std::string d = tree.root() + "/" + kP;
  const ProcsRaw p = ReadKfdProcs(tree.root(), nullptr);
  CHECK_EQ(Messages(p.issues), (std::vector<std::string>{
                                   "error|EISDIR|cannot read " + d + "/1/pasid (EISDIR)",
                                   "warning|ENOENT|cannot read " + d + "/1/queues/3/size (ENOENT)",
                                   "error||" + d + "/1/queues/3/gpuid: expected a number, got \"ff\"",
                                   "error||" + d + "/2/pasid: expected a number, got \"?\"",
                                   "error|ENOTDIR|cannot read " + d + "/2/queues (ENOTDIR)",
                               }));
  CHECK_EQ(p.procs, (std::vector<double>{1, -1, 0, 1, 0, 3, 2, -1, 1, 0, 3, 0}));
  CHECK_EQ(p.queues, (std::vector<double>{0, 3, 1, -1, -1}));
  // (gpu 7): vram, sdma, faults; vram_07 is no sysfs name ("%u" has no leading zero) and is ignored
  CHECK_EQ(p.metrics, (std::vector<double>{0, 0, 7, 6, 0, 1, 7, -1, 0, 4, 7, 3}));
}

TEST(sysfs_unreadable_file_when_not_root) {
  if (::geteuid() == 0) return;  // root reads a mode-000 file anyway
  TempTree tree({{kP + "/5/pasid", "1\n"}});
  const std::string f = tree.root() + "/" + kP + "/5/pasid";
  ::chmod(f.c_str(), 0);
  const ProcsRaw p = ReadKfdProcs(tree.root(), nullptr);
  CHECK_EQ(Messages(p.issues), (std::vector<std::string>{"error|EACCES|cannot read " + f + " (EACCES)"}));
}

TEST(sysfs_negative_gpu_id_is_an_issue_and_crlf_reads_like_lf) {
  TempTree tree({
      {kT + "/1/gpu_id", "-5\n"},
      {kT + "/1/name", "x\n"},
      {kT + "/1/properties", "simd_count 4\n"},
      {kT + "/2/gpu_id", "31774\r\n"},
      {kT + "/2/name", "ip discovery\r\n"},
      {kT + "/2/properties", "simd_count 304\r\nnum_xcc 4\r\n"},
      {kP + "/9/pasid", "0\r\n"},
      {kP + "/9/queues/0/type", "0"},
      {kP + "/9/queues/0/size", "4096"},
      {kP + "/9/queues/0/gpuid", "-1"},
      {kP + "/9/queues/1/type", "1"},
      {kP + "/9/queues/1/size", "4096\r\n"},
      {kP + "/9/queues/1/gpuid", "31774"},
  });
  const std::string d = tree.root() + "/" + kT;
  const TopologyRaw t = ReadTopology(tree.root());
  CHECK_EQ(Messages(t.issues), (std::vector<std::string>{"error||" + d + "/1/gpu_id: expected a gpu_id (a number >= 0), got \"-5?\""}));
  CHECK_EQ(t.nodes.size(), 1u);
  CHECK_EQ(t.nodes[0].gpu_id, 31774.0);
  CHECK_EQ(t.nodes[0].name, std::string("ip discovery"));
  CHECK_EQ(t.nodes[0].keys, (std::vector<std::string>{"simd_count", "num_xcc"}));
  CHECK_EQ(t.nodes[0].values, (std::vector<std::string>{"304", "4"}));
  const std::string q = tree.root() + "/" + kP + "/9/queues/0/gpuid";
  const ProcsRaw p = ReadKfdProcs(tree.root(), nullptr);
  // -1 would read as "unreadable" in the table: a negative gpuid is an issue and the column stays -1
  CHECK_EQ(Messages(p.issues), (std::vector<std::string>{"error||" + q + ": expected a gpu_id (a number >= 0), got \"-1\""}));
  CHECK_EQ(p.procs, (std::vector<double>{9, 0, 0, 2, 0, 0}));
  CHECK_EQ(p.queues, (std::vector<double>{0, 0, 0, 4096, -1, 0, 1, 1, 4096, 31774}));
}

// issue 17 item 7: a FIFO, a device or an oversize file inside a recorded tree is refused
// (ENOTREG / EFBIG), never read: opening a FIFO for a blocking read would wait for a writer forever
TEST(sysfs_fifo_device_and_oversize_files_are_refused_not_read) {
  TempTree tree({
      {kT + "/1/gpu_id", "31774\n"},
      {kT + "/1/name", "x\n"},
      {kT + "/1/properties", "simd_count 4\n"},
      {kT + "/2/name", "y\n"},
      {kT + "/2/properties", "simd_count 4\n"},
      {kT + "/3/gpu_id", "1\n"},
      {kT + "/3/properties", "simd_count 4\n"},
      {kP + "/9/pasid", "1\n"},
  });
  const std::string d = tree.root() + "/" + kT;
  CHECK_EQ(::mkfifo((d + "/2/gpu_id").c_str(), 0644), 0);
  CHECK_EQ(::symlink("/dev/zero", (d + "/3/name").c_str()), 0);
  // one byte over the 1 MiB cap
  tree.Write(kT + "/1/properties", std::string(kMaxSysfsFileBytes + 1, 'a'));
  const std::string p = tree.root() + "/" + kP + "/9";
  CHECK_EQ(::symlink("/dev/urandom", (p + "/vram_1").c_str()), 0);
  const TopologyRaw t = ReadTopology(tree.root());
  CHECK_EQ(Messages(t.issues), (std::vector<std::string>{
                                   "error|EFBIG|cannot read " + d + "/1/properties (EFBIG: larger than 1 MiB)",
                                   "error|ENOTREG|cannot read " + d + "/2/gpu_id (ENOTREG: not a regular file)",
                                   "error|ENOTREG|cannot read " + d + "/3/name (ENOTREG: not a regular file)",
                               }));
  CHECK_EQ(t.nodes.size(), 0u);
  const ProcsRaw r = ReadKfdProcs(tree.root(), nullptr);
  CHECK_EQ(Messages(r.issues), (std::vector<std::string>{"error|ENOTREG|cannot read " + p + "/vram_1 (ENOTREG: not a regular file)"}));
  CHECK_EQ(r.procs, (std::vector<double>{9, 1, 0, 0, 0, 0}));
}

TEST(input_file_reads_regular_files_to_eof_within_the_cap) {
  TempTree tree({{"a", "12345"}, {"empty", ""}});
  std::string out;
  size_t len = 99;
  CHECK_EQ(ReadInputFile(tree.root() + "/a", 5, &out, &len), 0);
  CHECK_EQ(out.substr(0, len), std::string("12345"));
  CHECK_EQ(ReadInputFile(tree.root() + "/a", 4, &out, &len), EFBIG);
  CHECK_EQ(len, size_t{0});
  CHECK_EQ(ReadInputFile(tree.root() + "/empty", 4, &out, &len), 0);
  CHECK_EQ(len, size_t{0});
  CHECK_EQ(ReadInputFile("/dev/zero", 4, &out, &len), kErrNotRegular);
  CHECK_EQ(std::string(InputErrorName(kErrNotRegular)), std::string("ENOTREG"));
  CHECK_EQ(ReadInputFile(tree.root(), 4, &out, &len), EISDIR);
  CHECK_EQ(::symlink("loop2", (tree.root() + "/loop1").c_str()), 0);
  CHECK_EQ(::symlink("loop1", (tree.root() + "/loop2").c_str()), 0);
  CHECK_EQ(ReadInputFile(tree.root() + "/loop1", 4, &out, &len), ELOOP);
  // a live pseudo-file says 4096 (or 0) in stat and holds less: read to EOF, not to the stat size
  struct stat st;
  if (::stat("/proc/self/status", &st) == 0) {
    CHECK_EQ(ReadInputFile("/proc/self/status", kMaxSysfsFileBytes, &out, &len), 0);
    CHECK(len > 0);
    CHECK(out.compare(0, 5, "Name:") == 0);
  }
}

// ---- the incremental walker (kfd/sysfs_procs.h); the TS twin and longer sequences: test/kfd-sysfs-incremental.test.ts

TEST(sysfs_incremental_walk_equals_full_walk_and_reads_only_new_queues) {
  TempTree tree({
      {kP + "/7/pasid", "3\n"},
      {kP + "/7/vram_9", "100\n"},
      {kP + "/7/queues/0/type", "0"},
      {kP + "/7/queues/0/size", "4096"},
      {kP + "/7/queues/0/gpuid", "9"},
      {kP + "/8/pasid", "4\n"},
      {kP + "/8/queues/1/type", "zz"},
  });
  ProcsWalker walker(tree.root(), true, 1);
  auto same_as_full = [&](const ProcsRaw& p) {
    const ProcsRaw full = ReadKfdProcs(tree.root(), nullptr);
    CHECK_EQ(p.procs, full.procs);
    CHECK_EQ(p.queues, full.queues);
    CHECK_EQ(p.metrics, full.metrics);
    CHECK_EQ(Messages(p.issues), Messages(full.issues));
  };
  same_as_full(walker.Read(nullptr));
  CHECK_EQ(walker.last_stats().queues_read, 2u);
  same_as_full(walker.Read(nullptr));
  // queue 0 is known; queue 1 gave an issue and is read again (and gives it again)
  CHECK_EQ(walker.last_stats().queues_read, 1u);
  CHECK_EQ(walker.last_stats().queues_reused, 1u);
  tree.Write(kP + "/7/queues/5/type", "1");
  tree.Write(kP + "/7/vram_9", "200\n");
  same_as_full(walker.Read(nullptr));
  CHECK_EQ(walker.last_stats().queues_read, 2u);
}

TEST(sysfs_incremental_counters_on_their_own_pace) {
  TempTree tree({{kP + "/7/pasid", "3\n"}, {kP + "/7/vram_9", "100\n"}});
  ProcsWalker walker(tree.root(), true, 2);
  CHECK_EQ(walker.Read(nullptr).metrics, (std::vector<double>{0, 0, 9, 100}));  // read 0: due
  tree.Write(kP + "/7/vram_9", "200\n");
  CHECK_EQ(walker.Read(nullptr).metrics, (std::vector<double>{0, 0, 9, 100}));  // read 1: repeated
  CHECK_EQ(walker.last_stats().processes_read, 0u);
  CHECK_EQ(walker.Read(nullptr).metrics, (std::vector<double>{0, 0, 9, 200}));  // read 2: due
}
