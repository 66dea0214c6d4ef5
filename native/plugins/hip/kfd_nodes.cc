#include "kfd_nodes.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gpucolo_plugin {

int KfdGpuNode::SesPerXcc() const {
  if (array_count <= 0 || simd_arrays_per_engine <= 0) return 0;
  const int ses = array_count / simd_arrays_per_engine;
  // array_count counts the arrays of every XCC when they cover the node's CUs (MI300X: 32 arrays
  // of <= 10 CUs for 304 CUs over 8 XCCs), else those of one XCC
  const int xccs = Xccs();
  if (xccs > 1 && cu_per_simd_array > 0 && array_count * cu_per_simd_array >= ComputeUnits() && ses % xccs == 0)
    return ses / xccs;
  return ses;
}

std::string KfdNodesDir(const std::string& sysfs_root) {
  return (sysfs_root == "/" ? std::string() : sysfs_root) + "/class/kfd/kfd/topology/nodes";
}

std::string GfxName(uint32_t v) {
  const unsigned major = v / 10000, minor = (v / 100) % 100, stepping = v % 100;
  std::ostringstream os;
  os << "gfx" << major << std::hex << minor << stepping;
  return os.str();
}

namespace {

bool ReadNode(const std::string& path, KfdGpuNode* n) {
  std::ifstream in(path);
  if (!in) return false;
  std::string key;
  unsigned long long value = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> value)) continue;
    const int iv = static_cast<int>(value);
    if (key == "gfx_target_version") n->gfx_target_version = static_cast<uint32_t>(value);
    else if (key == "simd_count") n->simd_count = iv;
    else if (key == "simd_per_cu") n->simd_per_cu = iv;
    else if (key == "num_xcc") n->num_xcc = iv;
    else if (key == "array_count") n->array_count = iv;
    else if (key == "simd_arrays_per_engine") n->simd_arrays_per_engine = iv;
    else if (key == "cu_per_simd_array") n->cu_per_simd_array = iv;
    else if (key == "location_id") n->location_id = static_cast<uint32_t>(value);
    else if (key == "domain") n->domain = static_cast<uint32_t>(value);
  }
  return true;
}

}  // namespace

bool ReadKfdGpuNodes(const std::string& nodes_dir, std::vector<KfdGpuNode>* out, std::string* error) {
  out->clear();
  DIR* d = ::opendir(nodes_dir.c_str());
  if (d == nullptr) {
    *error = "cannot read " + nodes_dir;
    return false;
  }
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long id = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;  // ".", ".." and anything else
    KfdGpuNode n;
    n.node = static_cast<int>(id);
    if (!ReadNode(nodes_dir + "/" + e->d_name + "/properties", &n)) continue;
    if (n.gfx_target_version != 0) out->push_back(n);
  }
  ::closedir(d);
  std::sort(out->begin(), out->end(), [](const KfdGpuNode& a, const KfdGpuNode& b) { return a.node < b.node; });
  return true;
}

}  // namespace gpucolo_plugin
