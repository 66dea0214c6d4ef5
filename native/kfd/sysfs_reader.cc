// Twin of src/kfd/sysfs-reader.ts (topology); the proc tree is read in sysfs_procs.cc and the file
// helpers both use live in sysfs_files.cc. Read the two sides side by side.
#include "sysfs_reader.h"

#include "sysfs_files.h"

#include <string>
#include <utility>
#include <vector>

namespace gpucolo {
namespace kfd {
namespace {

const char kTopologyNodes[] = "class/kfd/kfd/topology/nodes";

using sysfs::BadNumber;
using sysfs::CannotRead;
using sysfs::ChompedLength;
using sysfs::ListDir;
using sysfs::Negative;
using sysfs::NumericEntries;
using sysfs::ParseSysfsNumber;
using sysfs::Printable;
using sysfs::ReadFile;

}  // namespace

std::string UnderRoot(const std::string& root, const char* rel) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r == "/" ? "/" + std::string(rel) : r + "/" + rel;
}

TopologyRaw ReadTopology(const std::string& sysfs_root) {
  TopologyRaw out;
  const std::string dir = UnderRoot(sysfs_root, kTopologyNodes);
  std::vector<std::string> names;
  if (const char* code = ListDir(dir, &names)) {
    out.issues.push_back(CannotRead(dir, code));
    return out;
  }
  std::string gpu_text, name, props;
  for (uint64_t id : NumericEntries(names, 9)) {
    const std::string base = dir + "/" + std::to_string(id);
    const std::string gpu_path = base + "/gpu_id";
    if (const char* code = ReadFile(gpu_path, &gpu_text)) {
      out.issues.push_back(CannotRead(gpu_path, code));
      continue;
    }
    double gpu_id;
    if (!ParseSysfsNumber(gpu_text, &gpu_id)) {
      out.issues.push_back(BadNumber(gpu_path, gpu_text));
      continue;
    }
    if (Negative(gpu_id)) {
      out.issues.push_back(BadNumber(gpu_path, gpu_text, sysfs::kGpuId));
      continue;
    }
    const std::string name_path = base + "/name";
    if (const char* code = ReadFile(name_path, &name)) {
      out.issues.push_back(CannotRead(name_path, code));
      continue;
    }
    name.resize(ChompedLength(name));
    const std::string props_path = base + "/properties";
    if (const char* code = ReadFile(props_path, &props)) {
      out.issues.push_back(CannotRead(props_path, code));
      continue;
    }
    TopologyNodeRaw node{static_cast<double>(id), gpu_id, name, {}, {}};
    // props.split('\n') minus a final empty piece
    std::vector<std::pair<size_t, size_t>> lines;
    size_t pos = 0;
    for (;;) {
      const size_t nl = props.find('\n', pos);
      if (nl == std::string::npos) {
        lines.emplace_back(pos, props.size());
        break;
      }
      lines.emplace_back(pos, nl);
      pos = nl + 1;
    }
    if (lines.back().first == lines.back().second) lines.pop_back();
    for (size_t i = 0; i < lines.size(); ++i) {
      size_t line_end = lines[i].second;
      if (line_end > lines[i].first && props[line_end - 1] == '\r') --line_end;
      const std::string l = props.substr(lines[i].first, line_end - lines[i].first);
      const size_t sp = l.find(' ');
      if (sp == std::string::npos || sp == 0 || sp == l.size() - 1) {
        out.issues.push_back(ReadIssue{props_path, Severity::kWarning,
                                       props_path + ":" + std::to_string(i + 1) + ": malformed property line \"" +
                                           Printable(l.substr(0, 40)) + "\"",
                                       std::string()});
        continue;
      }
      node.keys.push_back(l.substr(0, sp));
      node.values.push_back(l.substr(sp + 1));
    }
    out.nodes.push_back(std::move(node));
  }
  return out;
}

}  // namespace kfd
}  // namespace gpucolo
