// The GPU nodes of the KFD topology in sysfs (<sysfs>/class/kfd/kfd/topology/nodes/N/properties),
// read without any GPU runtime: gpucolo_hip.so needs them BEFORE hipInit (which aborts the process
// when the plugin carries no code object for a GPU, see arch_check.h) and for the XCC / shader
// engine layout that hipDeviceProp_t does not give (CU masks, cu_mask_layout.h). Plain C++: the
// plugin (hipcc) and the C++ tests (fixture trees) compile it.
//
// Fields (amdkfd kfd_topology.c, node_show(); kfd_crat.c fills them):
//   gfx_target_version      major*10000 + minor*100 + stepping, 0 on CPU nodes (90402 = gfx942)
//   simd_count, simd_per_cu active CUs = simd_count / simd_per_cu
//   num_xcc                 XCCs of the node (MI300X 8 in SPX, 1 per node in CPX; absent on old kernels)
//   array_count             shader arrays (SEs x SHs; on multi-XCC nodes counted over all XCCs)
//   simd_arrays_per_engine  shader arrays per shader engine
//   cu_per_simd_array       CUs per shader array, before harvesting
//   location_id, domain     PCI bus/device/function ((bus << 8) | devfn) and PCI domain
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gpucolo_plugin {

struct KfdGpuNode {
  int node = -1;
  uint32_t gfx_target_version = 0;
  int simd_count = 0, simd_per_cu = 0;
  int num_xcc = 0;  // 0 = not reported (kernels before multi-XCC support: one XCC)
  int array_count = 0, simd_arrays_per_engine = 0, cu_per_simd_array = 0;
  uint32_t location_id = 0, domain = 0;

  int ComputeUnits() const { return simd_per_cu > 0 ? simd_count / simd_per_cu : 0; }
  int Xccs() const { return num_xcc > 0 ? num_xcc : 1; }
  /** shader engines per XCC (0 = unknown) */
  int SesPerXcc() const;
  int ShsPerSe() const { return simd_arrays_per_engine; }
};

/** <sysfs_root>/class/kfd/kfd/topology/nodes */
std::string KfdNodesDir(const std::string& sysfs_root = "/sys");

/**
 * GPU nodes (gfx_target_version != 0) of `nodes_dir`, by node number. false with *error when the
 * directory cannot be read (no KFD: no amdgpu driver, or a container without /sys/class/kfd).
 */
bool ReadKfdGpuNodes(const std::string& nodes_dir, std::vector<KfdGpuNode>* out, std::string* error);

/** "gfx942" from 90402, "gfx90a" from 90010, "gfx1100" from 110000 (minor and stepping in hex). */
std::string GfxName(uint32_t gfx_target_version);

}  // namespace gpucolo_plugin
