// Parser of debugfs kfd/mqds (docs/kfd-formats.md#mqds). Twin of src/kfd/mqds-parser.ts: same rules, same
// tables (column layouts in src/kfd/raw.ts), same issue wording.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "columns.h"
#include "text_scan.h"

namespace gpucolo {
namespace kfd {

/** Queue header kinds (MqdQueueKind in raw.ts). */
enum MqdQueueKind : int { kMqdCompute = 0, kMqdSdma = 1, kMqdDiq = 2, kMqdBadUser = 3, kMqdBadKernel = 4, kMqdWeird = 5 };

// column layouts: MqdsProcCol, MqdsQueueCol, MqdsBlockCol in columns.h
constexpr size_t kMqdsProcCols = MqdsProcCol::kCount;
constexpr size_t kMqdsQueueCols = MqdsQueueCol::kCount;
constexpr size_t kMqdsBlockCols = MqdsBlockCol::kCount;

struct MqdsRaw : RawCommon {
  std::vector<uint32_t> words;
  std::vector<double> procs;
  /** the PASID field of each process header exactly as printed */
  std::vector<std::string> pasids;
  std::vector<double> queues;
  std::vector<double> blocks;
};

/** Never throws on bad input (only std::bad_alloc); problems become issues. */
/**
 * word_lines (optional): filled with where each committed dump line's words went (WordLine in
 * text_scan.h), for re-decoding a later text in place (word_patch.h).
 */
MqdsRaw ParseMqds(const char* data, size_t len, std::vector<WordLine>* word_lines = nullptr);

}  // namespace kfd
}  // namespace gpucolo
