// Re-decoding a debugfs dump in place. Between two samples of a live GPU most of kfd/hqds and
// kfd/mqds is byte for byte the same: what moves are ring pointers and status registers, i.e. a few
// 8-digit hex words, while every header, address and line stays where it was. When that is all
// that differs, the tables of the last parse hold for the new text too except for those words, so
// they are decoded again one by one instead of parsing the whole file.
//
// Only the mqds and hqds parsers qualify: in both, a word's value never changes the tables or the
// issues (structure comes from the header lines and the addresses before the colon). The rls
// parser decodes PM4 packets from its words, so it always parses in full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "text_scan.h"

namespace gpucolo {
namespace kfd {

/**
 * new_text and old_text have the same length `len`; old_text was parsed into `words`, with
 * `lines` its word map (WordLine, in text order). If every byte that differs lies inside the hex
 * digits of a word of `lines` and each such word of new_text is valid hex, sets those words in
 * *words, appends their indices to *changed (ascending) and returns true: *words is then what a
 * full parse of new_text gives. Otherwise returns false and leaves *words as it may be half
 * patched: the caller parses new_text in full.
 */
bool PatchWords(const char* old_text, const char* new_text, size_t len, const std::vector<WordLine>& lines,
                std::vector<uint32_t>* words, std::vector<uint32_t>* changed);

}  // namespace kfd
}  // namespace gpucolo
