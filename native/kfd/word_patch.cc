#include "word_patch.h"

#include <algorithm>
#include <cstring>

namespace gpucolo {
namespace kfd {
namespace {

/** First index >= i where the two texts differ, or len; compares a block at a time. */
size_t NextDifference(const char* a, const char* b, size_t i, size_t len) {
  constexpr size_t kBlock = 256;
  while (i + kBlock <= len && std::memcmp(a + i, b + i, kBlock) == 0) i += kBlock;
  while (i < len && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

bool PatchWords(const char* old_text, const char* new_text, size_t len, const std::vector<WordLine>& lines,
                std::vector<uint32_t>* words, std::vector<uint32_t>* changed) {
  const auto* s = reinterpret_cast<const unsigned char*>(new_text);
  size_t i = NextDifference(old_text, new_text, 0, len);
  while (i < len) {
    // the dump line this byte is in: the last one starting at or before it
    const auto it = std::upper_bound(lines.begin(), lines.end(), i, [](size_t pos, const WordLine& l) { return pos < l.start; });
    if (it == lines.begin()) return false;
    const WordLine& line = *(it - 1);
    const size_t digits = line.start + line.prefix + 10;  // word 0's hex digits
    if (i < digits) return false;                          // the prefix, the address or its colon
    const size_t j = (i - digits) / 9;
    const size_t at = digits + 9 * j;
    if (j >= line.count || i >= at + 8) return false;  // a separator, or past the line's words
    uint32_t v;
    if (!ParseHex8(s + at, &v)) return false;
    const size_t w = line.first_word + j;
    if (w >= words->size()) return false;
    (*words)[w] = v;
    changed->push_back(static_cast<uint32_t>(w));
    i = NextDifference(old_text, new_text, at + 8, len);
  }
  return true;
}

}  // namespace kfd
}  // namespace gpucolo
