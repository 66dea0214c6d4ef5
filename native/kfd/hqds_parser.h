// Parser of debugfs kfd/hqds (kfd/SPEC.md §2.1). Twin of src/kfd/hqds-ts.ts: same rules, same
// tables (column layouts in src/kfd/raw.ts), same issue wording.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "text_scan.h"

namespace gpucolo {
namespace kfd {

enum HqdSlotKind : int { kHqdHiq = 0, kHqdCp = 1, kHqdSdma = 2 };

constexpr size_t kHqdsNodeCols = 6;   // node, gpuId, line, stopped, firstSlot, slotCount
constexpr size_t kHqdsSlotCols = 10;  // node(row), kind, inst, mec, pipe|engine, queue|rlc, line, wordOffset, wordCount, firstRegisterAddress
constexpr uint64_t kHqdComputeRegs = 56;

struct HqdsRaw : RawCommon {
  std::vector<uint32_t> words;
  std::vector<double> nodes;
  std::vector<double> slots;
};

/** ^Node (\d{1,10}), gpu_id ([0-9a-f]{1,8}):$ with a u32 node number (shared with rls). */
bool MatchNodeHeader(const unsigned char* begin, const unsigned char* end, uint32_t* node, uint32_t* gpu_id);

/** Never throws on bad input (only std::bad_alloc); problems become issues. */
HqdsRaw ParseHqds(const char* data, size_t len);

}  // namespace kfd
}  // namespace gpucolo
