#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <unistd.h>

#include "harness.h"
#include "kfd/kfd_ioctl.h"
#include "plugins/loader.h"

TEST(kfd_version_errors) {
  auto r = gpucolo::kfd::KfdVersion("/nonexistent/kfd");
  CHECK_EQ(r.err, ENOENT);
  CHECK_EQ(std::string(r.syscall), std::string("open"));
  // a device that is not /dev/kfd: the open works, the ioctl does not
  r = gpucolo::kfd::KfdVersion("/dev/null");
  CHECK(r.err != 0);
  CHECK_EQ(std::string(r.syscall), std::string("ioctl"));
  CHECK(std::strchr(gpucolo::kfd::KfdIoctlHeaderVersion(), '.') != nullptr);
}

TEST(plugin_probe_reports_failures_as_data) {
  char tmpl[] = "/tmp/gpucolo-plugins-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  auto probes = gpucolo::plugins::ProbePlugins(dir);
  CHECK_EQ(probes.size(), 2u);
  CHECK_EQ(probes[0].name, std::string("cuda"));
  CHECK_EQ(probes[0].path, dir + "/gpucolo_cuda.so");
  CHECK(!probes[0].found && !probes[0].loaded && probes[0].error.empty());

  // not an ELF file: found, dlopen fails
  std::ofstream(dir + "/gpucolo_cuda.so") << "not a shared object";
  probes = gpucolo::plugins::ProbePlugins(dir);
  CHECK(probes[0].found);
  CHECK(!probes[0].loaded);
  CHECK(!probes[0].error.empty());
  CHECK_EQ(probes[1].name, std::string("hip"));
  CHECK(!probes[1].found);
  std::remove((dir + "/gpucolo_cuda.so").c_str());

  // real shared objects: one with the entry point (loaded), one without (error names the symbol)
  CHECK_EQ(symlink(GPUCOLO_FAKE_PLUGIN, (dir + "/gpucolo_cuda.so").c_str()), 0);
  CHECK_EQ(symlink(GPUCOLO_FAKE_PLUGIN_NO_ENTRY, (dir + "/gpucolo_hip.so").c_str()), 0);
  probes = gpucolo::plugins::ProbePlugins(dir);
  std::remove((dir + "/gpucolo_cuda.so").c_str());
  std::remove((dir + "/gpucolo_hip.so").c_str());
  std::remove(dir.c_str());
  CHECK(probes[0].found && probes[0].loaded);
  CHECK(probes[0].error.empty());
  CHECK(probes[1].found && !probes[1].loaded);
  CHECK(probes[1].error.find("gpucolo_gpu_get_api") != std::string::npos);

  CHECK(!gpucolo::plugins::SelfDir().empty());
}
