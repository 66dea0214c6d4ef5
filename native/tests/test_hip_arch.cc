// gpucolo_hip.so's checks before hipInit, without HIP: the KFD topology (kfd_nodes.h) of the
// fixture tree (test/fixtures/kfd/sysfs: an MI300-class gfx942 node with 4 XCCs) and of trees
// written here, the code-object match (arch_check.h), and, when the HIP plugin was built, the
// real plugin refusing a gfx942 fixture in a child process.
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "dispatch/gpu_plugin.h"
#include "harness.h"
#include "plugins/hip/arch_check.h"
#include "plugins/hip/kfd_nodes.h"

using namespace gpucolo_plugin;

namespace {

bool Has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

std::string FixtureNodes() { return KfdNodesDir(gpucolo_test::FixturePath("sysfs")); }

/** A topology tree of its own: nodes/<n>/properties with the given lines. */
struct Tree {
  std::string root;
  std::vector<std::string> files, dirs;
  Tree() {
    char tmpl[] = "/tmp/gpucolo-kfd-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    root = tmpl;
    for (const char* d : {"/class", "/class/kfd", "/class/kfd/kfd", "/class/kfd/kfd/topology", "/class/kfd/kfd/topology/nodes"}) {
      dirs.push_back(root + d);
      mkdir(dirs.back().c_str(), 0755);
    }
  }
  void Node(int n, const std::string& properties) {
    const std::string dir = KfdNodesDir(root) + "/" + std::to_string(n);
    mkdir(dir.c_str(), 0755);
    dirs.push_back(dir);
    files.push_back(dir + "/properties");
    std::ofstream(files.back()) << properties;
  }
  std::string Nodes() const { return KfdNodesDir(root); }
  ~Tree() {
    for (const auto& f : files) std::remove(f.c_str());
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) rmdir(it->c_str());
    rmdir(root.c_str());
  }
};

const char* kCpuNode = "cpu_cores_count 64\nsimd_count 0\ngfx_target_version 0\n";

std::string GpuNode(unsigned gfx, int cus) {
  return "cpu_cores_count 0\nsimd_count " + std::to_string(cus * 4) + "\nsimd_per_cu 4\ngfx_target_version " + std::to_string(gfx) +
         "\narray_count 4\nsimd_arrays_per_engine 1\ncu_per_simd_array 28\nlocation_id 768\ndomain 0\n";
}

}  // namespace

TEST(hip_gfx_names_from_the_topology) {
  CHECK_EQ(GfxName(90402), std::string("gfx942"));
  CHECK_EQ(GfxName(90010), std::string("gfx90a"));
  CHECK_EQ(GfxName(90008), std::string("gfx908"));
  CHECK_EQ(GfxName(110000), std::string("gfx1100"));
  CHECK_EQ(GfxName(100300), std::string("gfx1030"));
  CHECK_EQ(GfxName(90500), std::string("gfx950"));
}

TEST(hip_kfd_nodes_of_the_fixture) {
  std::vector<KfdGpuNode> nodes;
  std::string err;
  CHECK(ReadKfdGpuNodes(FixtureNodes(), &nodes, &err));
  CHECK_EQ(nodes.size(), 1u);
  const KfdGpuNode& n = nodes[0];
  CHECK_EQ(n.node, 2);
  CHECK_EQ(GfxName(n.gfx_target_version), std::string("gfx942"));
  CHECK_EQ(n.ComputeUnits(), 80);
  CHECK_EQ(n.Xccs(), 4);
  CHECK_EQ(n.SesPerXcc(), 4);  // array_count 16 over 4 XCCs, 1 array per SE
  CHECK_EQ(n.ShsPerSe(), 1);
  CHECK_EQ(n.location_id, 3072u);
  CHECK(!ReadKfdGpuNodes("/nonexistent/nodes", &nodes, &err));
  CHECK(Has(err, "/nonexistent/nodes"));
}

TEST(hip_arch_matching_and_generic_targets) {
  CHECK_EQ(ParseArchList("gfx90a;gfx940"), (std::vector<std::string>{"gfx90a", "gfx940"}));
  CHECK_EQ(ParseArchList("gfx90a,gfx942:xnack-;"), (std::vector<std::string>{"gfx90a", "gfx942:xnack-"}));
  CHECK(CodeObjectRunsOn("gfx942", "gfx942"));
  CHECK(CodeObjectRunsOn("gfx942:sramecc+:xnack-", "gfx942"));
  CHECK(!CodeObjectRunsOn("gfx940", "gfx942"));  // MI300A/X code objects are not interchangeable
  CHECK(!CodeObjectRunsOn("gfx90a", "gfx942"));
  CHECK(CodeObjectRunsOn("gfx9-4-generic", "gfx942"));
  CHECK(!CodeObjectRunsOn("gfx9-generic", "gfx90a"));  // gfx90a is not in the gfx9 generic family
  CHECK(CodeObjectRunsOn("gfx11-generic", "gfx1100"));
}

TEST(hip_arch_check_refuses_a_gpu_without_a_code_object) {
  // the case: built for gfx90a;gfx940, the GPU is gfx942 (the fixture)
  const std::string why = CheckHipArchs("gfx90a,gfx940", FixtureNodes(), true);
  CHECK(Has(why, "gpucolo_hip.so was built for gfx90a;gfx940, this GPU is gfx942"));
  CHECK(Has(why, "rebuild with -DHIP_ARCHS=gfx942"));
  CHECK(Has(why, "hipErrorNoBinaryForGpu"));
  CHECK_EQ(CheckHipArchs("gfx90a;gfx942", FixtureNodes(), true), std::string());
  CHECK_EQ(CheckHipArchs("gfx9-4-generic", FixtureNodes(), true), std::string());
  // no topology (no KFD here): nothing to compare, hipInit reports "no device" by itself
  CHECK_EQ(CheckHipArchs("gfx90a", "/nonexistent/nodes", true), std::string());
}

TEST(hip_arch_check_on_a_host_with_two_gpu_kinds) {
  Tree t;
  t.Node(0, kCpuNode);
  t.Node(1, GpuNode(90010, 104));  // MI210 (gfx90a)
  t.Node(2, GpuNode(90402, 304));  // MI300X (gfx942)
  std::vector<KfdGpuNode> nodes;
  std::string err;
  CHECK(ReadKfdGpuNodes(t.Nodes(), &nodes, &err));
  CHECK_EQ(nodes.size(), 2u);  // the CPU node is not a GPU
  // every GPU must have a code object: the runtime aborts if any lacks one
  const std::string why = CheckHipArchs("gfx90a", t.Nodes(), true);
  CHECK(Has(why, "this host's GPUs without one: gfx942 (KFD node 2)"));
  CHECK(Has(why, "-DHIP_ARCHS=\"gfx90a;gfx942\""));
  CHECK_EQ(CheckHipArchs("gfx90a;gfx942", t.Nodes(), true), std::string());
  // with *_VISIBLE_DEVICES the visible subset is unknown: one GPU with a code object suffices
  CHECK_EQ(CheckHipArchs("gfx90a", t.Nodes(), false), std::string());
  CHECK(!CheckHipArchs("gfx1100", t.Nodes(), false).empty());
}

#ifdef GPUCOLO_HIP_PLUGIN_DIR
TEST(hip_plugin_refuses_before_hipinit_instead_of_aborting) {
  // a child process: the plugin decides once per process, and GPUCOLO_HIP_SYSFS_ROOT points it at
  // the gfx942 fixture while it was built for HIP_ARCHS (gfx90a;gfx940 by default)
  const std::string plugin = std::string(GPUCOLO_HIP_PLUGIN_DIR) + "/gpucolo_hip.so";
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    setenv("GPUCOLO_HIP_SYSFS_ROOT", gpucolo_test::FixturePath("sysfs").c_str(), 1);
    std::string out = "dlopen: ";
    if (void* h = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      auto get = reinterpret_cast<gpucolo_gpu_get_api_fn>(dlsym(h, GPUCOLO_GPU_GET_API));
      char e[512] = {0};
      const int rc = get()->init(e, sizeof e);
      out = std::to_string(rc) + " " + e;
    } else {
      out += dlerror();
    }
    if (write(fds[1], out.data(), out.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));  // not killed by an abort
  if (Has(got, "dlopen: ") && Has(got, "libamdhip64")) ::gpucolo_test::Skip("no HIP runtime here: " + got);
  std::printf("# hip plugin on the gfx942 fixture: %s\n", got.c_str());
  bool carries_gfx942 = false;
  for (const std::string& t : ParseArchList(GPUCOLO_HIP_ARCHS_BUILT)) carries_gfx942 = carries_gfx942 || CodeObjectRunsOn(t, "gfx942");
  if (carries_gfx942) {
    CHECK(!Has(got, "hipErrorNoBinaryForGpu"));  // nothing to refuse: hipInit ran and found no device here
    return;
  }
  CHECK(Has(got, std::to_string(GPUCOLO_ERR_UNSUPPORTED) + " hipErrorNoBinaryForGpu"));
  CHECK(Has(got, "rebuild with -DHIP_ARCHS=gfx942"));
}
#endif
