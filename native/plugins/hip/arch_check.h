// Does gpucolo_hip.so carry a code object for this host's GPUs?
//
// hipcc embeds one code object per --offload-arch (CMake HIP_ARCHS, recorded into the plugin as
// GPUCOLO_HIP_ARCHS). When none of them runs on a GPU, the HIP runtime does not return an error:
// at its first call it reports hipErrorNoBinaryForGpu ("Unable to find code object for all
// current devices!") and aborts the process, so `gpucolo doctor` or `probe` would die instead of
// saying "backend unavailable". The plugin therefore compares, before hipInit, the GPUs' gfx
// targets from the KFD topology (kfd_nodes.h) with the archs it was built for, and refuses with a
// reason. Plain C++ (no HIP): the plugin and the C++ tests compile it.
//
// Matching (LLVM AMDGPUUsage, "Processors" and "Generic processors", LLVM 19): a code object for
// gfxNNN runs on gfxNNN only; target features after ':' (xnack, sramecc) are not compared (the
// runtime picks among them); a generic target (gfx9-4-generic, ROCm >= 6.4) runs on its family.
#pragma once

#include <string>
#include <vector>

#include "kfd_nodes.h"

namespace gpucolo_plugin {

/** "gfx90a;gfx940" or "gfx90a,gfx940" -> {"gfx90a", "gfx940"} (empty items dropped). */
std::vector<std::string> ParseArchList(const std::string& archs);

/** true when a code object built for `target` ("gfx90a", "gfx90a:xnack-", "gfx9-4-generic") runs on `gpu` ("gfx90a"). */
bool CodeObjectRunsOn(const std::string& target, const std::string& gpu);

/**
 * "" when every GPU in `gpus` (every_gpu) or at least one of them (!every_gpu: the visible
 * devices are filtered by *_VISIBLE_DEVICES and cannot be mapped to nodes) has a code object in
 * `built` ("gfx90a;gfx940"); else why not, with the rebuild command.
 */
std::string ArchMismatch(const std::string& built, const std::vector<KfdGpuNode>& gpus, bool every_gpu);

/**
 * ArchMismatch for the GPUs of `nodes_dir` (kfd_nodes.h); "" also when the topology cannot be
 * read or has no GPU (then hipInit says "no device" by itself, without aborting).
 */
std::string CheckHipArchs(const std::string& built, const std::string& nodes_dir, bool every_gpu);

}  // namespace gpucolo_plugin
