#include "arch_check.h"

#include <algorithm>
#include <cstring>

namespace gpucolo_plugin {

std::vector<std::string> ParseArchList(const std::string& archs) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : archs + ";") {
    if (c == ';' || c == ',' || c == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

namespace {

// LLVM AMDGPUUsage, "Generic processors": which processors a generic code object runs on
struct Generic {
  const char* name;
  const char* members;  // space-separated
};
const Generic kGenerics[] = {
    {"gfx9-generic", "gfx900 gfx902 gfx904 gfx906 gfx909 gfx90c"},
    {"gfx9-4-generic", "gfx940 gfx941 gfx942 gfx950"},
    {"gfx10-1-generic", "gfx1010 gfx1011 gfx1012 gfx1013"},
    {"gfx10-3-generic", "gfx1030 gfx1031 gfx1032 gfx1033 gfx1034 gfx1035 gfx1036"},
    {"gfx11-generic", "gfx1100 gfx1101 gfx1102 gfx1103 gfx1150 gfx1151 gfx1152 gfx1153"},
    {"gfx12-generic", "gfx1200 gfx1201"},
};

std::string Processor(const std::string& target) { return target.substr(0, target.find(':')); }

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

bool CodeObjectRunsOn(const std::string& target, const std::string& gpu) {
  const std::string proc = Processor(target);
  if (proc == gpu) return true;
  for (const Generic& g : kGenerics) {
    if (proc != g.name) continue;
    const std::string members = std::string(" ") + g.members + " ";
    return members.find(" " + gpu + " ") != std::string::npos;
  }
  return false;
}

std::string ArchMismatch(const std::string& built, const std::vector<KfdGpuNode>& gpus, bool every_gpu) {
  const std::vector<std::string> targets = ParseArchList(built);
  std::vector<std::string> missing, all;  // gfx names, each once
  std::string where;                      // "gfx942 (KFD node 2)" per GPU without a code object
  size_t runnable = 0;
  for (const KfdGpuNode& n : gpus) {
    const std::string gfx = GfxName(n.gfx_target_version);
    if (std::find(all.begin(), all.end(), gfx) == all.end()) all.push_back(gfx);
    bool ok = false;
    for (const std::string& t : targets) ok = ok || CodeObjectRunsOn(t, gfx);
    if (ok) {
      ++runnable;
      continue;
    }
    where += (where.empty() ? "" : ", ") + gfx + " (KFD node " + std::to_string(n.node) + ")";
    if (std::find(missing.begin(), missing.end(), gfx) == missing.end()) missing.push_back(gfx);
  }
  if (missing.empty() || (!every_gpu && runnable > 0)) return "";
  const std::string built_text = targets.empty() ? "no GPU arch" : Join(targets, ";");
  const std::string gpu_word = missing.size() == gpus.size() && gpus.size() == 1 ? "this GPU is " : "this host's GPUs without one: ";
  // the archs to build for: this host's (a build for other hosts can add theirs)
  return "gpucolo_hip.so was built for " + built_text + ", " + gpu_word + where +
         ": the HIP runtime would abort the process (hipErrorNoBinaryForGpu) at its first call; rebuild with -DHIP_ARCHS=" +
         (all.size() == 1 ? all[0] : "\"" + Join(all, ";") + "\"") + " and a hipcc that supports " +
         (missing.size() == 1 ? "it" : "them") +
         (std::find(missing.begin(), missing.end(), "gfx942") != missing.end() ? " (gfx942: ROCm >= 6.0)" : "");
}

std::string CheckHipArchs(const std::string& built, const std::string& nodes_dir, bool every_gpu) {
  std::vector<KfdGpuNode> gpus;
  std::string ignored;
  if (!ReadKfdGpuNodes(nodes_dir, &gpus, &ignored) || gpus.empty()) return "";
  return ArchMismatch(built, gpus, every_gpu);
}

}  // namespace gpucolo_plugin
