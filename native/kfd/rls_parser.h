// Parser of debugfs kfd/rls (docs/kfd-formats.md#rls). Twin of src/kfd/rls-parser.ts: same rules, same
// tables (column layouts in src/kfd/raw.ts), same issue wording.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "columns.h"
#include "text_scan.h"

namespace gpucolo {
namespace kfd {

// column layouts: RlsNodeCol, RlsPacketCol in columns.h
constexpr size_t kRlsNodeCols = RlsNodeCol::kCount;
constexpr size_t kRlsPacketCols = RlsPacketCol::kCount;

struct RlsRaw : RawCommon {
  std::vector<uint32_t> words;
  std::vector<double> nodes;
  std::vector<double> packets;
};

/**
 * Cuts words[start, start+count) into PM4 type-3 packets (walkPm4 in rls-parser.ts); appends
 * [node, offset, opcode, dwords] rows. Stops at the first word that is not a type-3 header or a
 * packet that runs past the end, with an issue on the dump line holding that word.
 */
void WalkPm4(const uint32_t* words, size_t start, size_t count, double node_row, uint64_t first_dump_line,
             std::vector<double>* packets, IssueSink* sink);

/** Never throws on bad input (only std::bad_alloc); problems become issues. */
RlsRaw ParseRls(const char* data, size_t len);

}  // namespace kfd
}  // namespace gpucolo
