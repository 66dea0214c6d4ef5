// PatchWords (kfd/word_patch.h): a text that differs from the parsed one only inside words gives,
// patched, exactly the tables of a full parse; anything else is refused (the caller parses).
#include <string>
#include <vector>

#include "harness.h"
#include "kfd/hqds_parser.h"
#include "kfd/mqds_parser.h"
#include "kfd/word_patch.h"
#include "test_util.h"

using namespace gpucolo::kfd;

namespace {

std::string Fixture(const char* name) { return gpucolo_test::ReadFixture(name); }

/** The n-th 8-hex-digit word after a colon of a register line, replaced by `with`. */
std::string ReplaceWord(std::string text, size_t n, const char* with) {
  size_t pos = 0;
  for (size_t seen = 0;; ++seen) {
    pos = text.find(": ", pos);
    if (pos == std::string::npos) throw gpucolo_test::Failure{"no such word"};
    pos += 2;
    if (seen == n) break;
  }
  text.replace(pos, 8, with);
  return text;
}

template <class Raw, class Parse>
void CheckPatchEqualsParse(const std::string& before, const std::string& after, Parse parse, size_t want_changed) {
  std::vector<WordLine> lines;
  Raw old = parse(before.data(), before.size(), &lines);
  std::vector<uint32_t> changed;
  CHECK(PatchWords(before.data(), after.data(), after.size(), lines, &old.words, &changed));
  const Raw full = parse(after.data(), after.size(), nullptr);
  CHECK_EQ(old.words, full.words);
  CHECK_EQ(changed.size(), want_changed);
}

}  // namespace

TEST(word_patch_hqds_words_only_equals_a_full_parse) {
  const std::string text = Fixture("debugfs_kfd_hqds_gc943_4xcc.txt");
  auto parse = [](const char* d, size_t n, std::vector<WordLine>* l) { return ParseHqds(d, n, l); };
  CheckPatchEqualsParse<HqdsRaw>(text, text, parse, 0);
  std::string moved = ReplaceWord(ReplaceWord(text, 3, "0000abcd"), 200, "deadbeef");
  CheckPatchEqualsParse<HqdsRaw>(text, moved, parse, 2);
}

TEST(word_patch_mqds_words_only_equals_a_full_parse) {
  const std::string text = Fixture("debugfs_kfd_mqds_gc943_4xcc.txt");
  auto parse = [](const char* d, size_t n, std::vector<WordLine>* l) { return ParseMqds(d, n, l); };
  CheckPatchEqualsParse<MqdsRaw>(text, ReplaceWord(text, 10, "00000010"), parse, 1);
}

TEST(word_patch_refuses_what_is_not_a_word) {
  const std::string text = Fixture("debugfs_kfd_hqds_gc943_4xcc.txt");
  std::vector<WordLine> lines;
  const HqdsRaw raw = ParseHqds(text.data(), text.size(), &lines);
  auto refused = [&](const std::string& after) {
    std::vector<uint32_t> words = raw.words, changed;
    return !PatchWords(text.data(), after.data(), after.size(), lines, &words, &changed);
  };
  // a register address (before the colon)
  std::string addr = text;
  const size_t colon = addr.find(": ");
  addr[colon - 1] = addr[colon - 1] == '0' ? '1' : '0';
  CHECK(refused(addr));
  // a word that is no longer hex
  CHECK(refused(ReplaceWord(text, 5, "0000zz00")));
  // a header line
  std::string header = text;
  header[header.find("Node ") + 5] = '9';
  CHECK(refused(header));
  // a separator between two words
  std::string sep = text;
  sep[sep.find(": ") + 10] = '0';
  CHECK(refused(sep));
}
