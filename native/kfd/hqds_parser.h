// Parser of debugfs kfd/hqds (docs/kfd-formats.md#hqds). Twin of src/kfd/hqds-parser.ts: same rules, same
// tables (column layouts in src/kfd/raw.ts), same issue wording.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "columns.h"
#include "text_scan.h"

namespace gpucolo {
namespace kfd {

enum HqdSlotKind : int { kHqdHiq = 0, kHqdCp = 1, kHqdSdma = 2 };

// column layouts: HqdsNodeCol, HqdsSlotCol in columns.h
constexpr size_t kHqdsNodeCols = HqdsNodeCol::kCount;
constexpr size_t kHqdsSlotCols = HqdsSlotCol::kCount;
constexpr uint64_t kHqdComputeRegs = 56;

struct HqdsRaw : RawCommon {
  std::vector<uint32_t> words;
  std::vector<double> nodes;
  std::vector<double> slots;
};

/** ^Node (\d{1,10}), gpu_id ([0-9a-f]{1,8}):$ with a u32 node number (shared with rls). */
bool MatchNodeHeader(const unsigned char* begin, const unsigned char* end, uint32_t* node, uint32_t* gpu_id);

/** Never throws on bad input (only std::bad_alloc); problems become issues. */
/**
 * word_lines (optional): filled with where each committed dump line's words went (WordLine in
 * text_scan.h), for re-decoding a later text in place (word_patch.h).
 */
HqdsRaw ParseHqds(const char* data, size_t len, std::vector<WordLine>* word_lines = nullptr);

}  // namespace kfd
}  // namespace gpucolo
