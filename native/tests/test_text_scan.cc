#include <cstring>

#include "harness.h"
#include "kfd/text_scan.h"

using namespace gpucolo::kfd;

namespace {

int Dump(const std::string& line, size_t prefix, uint32_t* out, uint32_t* lead) {
  const auto* s = reinterpret_cast<const unsigned char*>(line.data());
  return ParseDumpLine(s, 0, line.size(), prefix, out, lead);
}

}  // namespace

TEST(dump_line_accepts_1_to_8_words) {
  uint32_t w[8] = {};
  uint32_t lead = 0;
  CHECK_EQ(Dump("    00000200: 017ba000 00000000 00000001 00000000 40005301 00000001 00000007 00000111", 4, w, &lead), 8);
  CHECK_EQ(lead, 0x200u);
  CHECK_EQ(w[0], 0x017ba000u);
  CHECK_EQ(w[4], 0x40005301u);
  CHECK_EQ(w[7], 0x111u);
  CHECK_EQ(Dump("  000000e0: c005a200", 2, w, &lead), 1);
  CHECK_EQ(w[0], 0xc005a200u);
  CHECK_EQ(lead, 0xe0u);
}

TEST(dump_line_rejects_malformed) {
  uint32_t w[8];
  uint32_t lead = 7;
  CHECK_EQ(Dump("    00000000:", 4, w, &lead), -1);                       // no words
  CHECK_EQ(Dump("    00000000: C0310800", 4, w, &lead), -1);              // uppercase
  CHECK_EQ(Dump("    00000000: c0310800 ", 4, w, &lead), -1);             // trailing space
  CHECK_EQ(Dump("    00000000:  c031080", 4, w, &lead), -1);              // double space
  CHECK_EQ(Dump("    0000000g: c0310800", 4, w, &lead), -1);              // bad offset
  CHECK_EQ(Dump("    00000000; c0310800", 4, w, &lead), -1);              // no colon
  CHECK_EQ(Dump("   x00000000: c0310800", 4, w, &lead), -1);             // prefix
  CHECK_EQ(Dump("  ", 4, w, &lead), -1);                                   // shorter than prefix
  std::string nine = "    00000000:";
  for (int i = 0; i < 9; ++i) nine += " 00000000";
  CHECK_EQ(Dump(nine, 4, w, &lead), -1);
  CHECK_EQ(Dump("    00000000: 0000000\r", 4, w, &lead), -1);
  CHECK_EQ(lead, 7u);  // untouched on failure
}

TEST(snippet_hex8_and_matcher) {
  const std::string raw = std::string("ab\x01\x7f\xff", 5);
  const auto* s = reinterpret_cast<const unsigned char*>(raw.data());
  CHECK_EQ(Snippet(s, 0, raw.size()), std::string("ab???"));
  const std::string long_line(45, 'x');
  CHECK_EQ(Snippet(reinterpret_cast<const unsigned char*>(long_line.data()), 0, 45), std::string(40, 'x') + "...");
  CHECK_EQ(Snippet(reinterpret_cast<const unsigned char*>(long_line.data()), 0, 40), std::string(40, 'x'));
  CHECK_EQ(Hex8(0), std::string("00000000"));
  CHECK_EQ(Hex8(0xc013a100u), std::string("c013a100"));

  auto dec = [](const char* t, uint32_t* v) {
    Matcher m(reinterpret_cast<const unsigned char*>(t), reinterpret_cast<const unsigned char*>(t) + std::strlen(t));
    return m.DecU32(v) && m.End();
  };
  uint32_t v = 0;
  CHECK(dec("4294967295", &v));
  CHECK_EQ(v, 4294967295u);
  CHECK(dec("0000000007", &v));
  CHECK_EQ(v, 7u);
  CHECK(!dec("4294967296", &v));
  CHECK(!dec("00000000007", &v));  // 11 digits
  CHECK(!dec("", &v));
  auto hex = [](const char* t, uint32_t* v) {
    Matcher m(reinterpret_cast<const unsigned char*>(t), reinterpret_cast<const unsigned char*>(t) + std::strlen(t));
    return m.Hex(v) && m.End();
  };
  CHECK(hex("ffffffff", &v));
  CHECK_EQ(v, 0xffffffffu);
  CHECK(!hex("123456789", &v));
  CHECK(!hex("7C1E", &v));
}

TEST(issue_sink_keeps_100_and_counts_the_rest) {
  RawCommon r;
  IssueSink sink(&r);
  for (int i = 1; i <= 250; ++i) sink.Add(static_cast<uint64_t>(i), Severity::kError, "x");
  CHECK_EQ(r.issues.size(), kMaxIssues);
  CHECK_EQ(r.suppressed, 150u);
  CHECK_EQ(r.issues.back().line, 100u);
}

TEST(hex8_matches_a_digit_by_digit_reference) {
  // ParseHex8 validates eight digits at once; check it against the obvious per-digit rule
  auto reference = [](const unsigned char* p, uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < 8; ++i) {
      const unsigned char c = p[i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else return false;
      v = v * 16 + static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  };
  unsigned char buf[8];
  const char* bases[] = {"00000000", "ffffffff", "c013a100", "9a9a9a9a", "0f0f0f0f"};
  for (const char* base : bases) {
    for (int pos = 0; pos < 8; ++pos) {
      for (int b = 0; b < 256; ++b) {
        std::memcpy(buf, base, 8);
        buf[pos] = static_cast<unsigned char>(b);
        uint32_t got = 0, want = 0;
        const bool ok_got = ParseHex8(buf, &got);
        const bool ok_want = reference(buf, &want);
        CHECK_EQ(ok_got, ok_want);
        if (ok_want) CHECK_EQ(got, want);
      }
    }
  }
  uint64_t state = 88172645463325252ULL;
  for (int i = 0; i < 200000; ++i) {
    for (auto& c : buf) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      c = static_cast<unsigned char>((state & 3) ? "0123456789abcdef"[(state >> 8) & 15] : (state >> 16) & 0xff);
    }
    uint32_t got = 0, want = 0;
    const bool ok_got = ParseHex8(buf, &got);
    CHECK_EQ(ok_got, reference(buf, &want));
    if (ok_got) CHECK_EQ(got, want);
  }
}

namespace {

/** A ScanDumpText parser that writes down what it is handed: "H<line>:<text>" or "D<line>:<k>:<lead hex>:<text>". */
struct Recorder {
  static constexpr size_t kDumpPrefix = 4;
  explicit Recorder(const std::string& t) : text(t) {}
  const std::string& text;
  std::vector<std::string> got;
  uint32_t words[8] = {};
  std::vector<uint32_t> all_words;

  bool IsDumpLine(size_t start) const {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    return s[start] == ' ' && ByteAt(s, text.size(), start + 1) == ' ' && ByteAt(s, text.size(), start + 2) == ' ' &&
           ByteAt(s, text.size(), start + 3) == ' ';
  }
  uint32_t* DumpWords() { return words; }
  void Dump(size_t start, size_t end, uint64_t line, int k, uint32_t lead) {
    got.push_back("D" + std::to_string(line) + ":" + std::to_string(k) + ":" + (k < 0 ? "-" : HexLower(lead)) + ":" + text.substr(start, end - start));
    for (int i = 0; i < k; ++i) all_words.push_back(words[i]);
  }
  void Header(size_t start, size_t end, uint64_t line) { got.push_back("H" + std::to_string(line) + ":" + text.substr(start, end - start)); }
};

std::vector<std::string> Scan(const std::string& text, uint64_t* lines, std::vector<uint32_t>* words = nullptr) {
  Recorder r(text);
  *lines = ScanDumpText(reinterpret_cast<const unsigned char*>(text.data()), text.size(), r);
  if (words) *words = r.all_words;
  return r.got;
}

const char kFull[] = "    00000000: 00000001 00000002 00000003 00000004 00000005 00000006 00000007 0000000a";

}  // namespace

TEST(scan_drops_the_cr_of_crlf_and_skips_blank_lines) {
  uint64_t lines = 0;
  // a CR inside a line stays; one before LF or at the very end goes; blank lines are counted, not handed on
  CHECK_EQ(Scan("a\r\n\r\nb\rc\r\nd\r", &lines), (std::vector<std::string>{"H1:a", "H3:b\rc", "H4:d"}));
  CHECK_EQ(lines, 4u);
  CHECK_EQ(Scan("", &lines), std::vector<std::string>{});
  CHECK_EQ(lines, 0u);
  CHECK_EQ(Scan("\n", &lines), std::vector<std::string>{});
  CHECK_EQ(lines, 1u);
}

TEST(scan_full_dump_lines_take_the_fast_path_with_the_same_result) {
  const std::string full = kFull;
  const std::string d = ":8:0:" + full;
  uint64_t lines = 0;
  std::vector<uint32_t> words;
  // LF, CR LF (the byte after 8 words is '\r': split by memchr), end of input with and without LF
  CHECK_EQ(Scan("P\n" + full + "\n" + full + "\r\n" + full, &lines, &words),
           (std::vector<std::string>{"H1:P", "D2" + d, "D3" + d, "D4" + d}));
  CHECK_EQ(lines, 4u);
  CHECK_EQ(words.size(), 24u);
  CHECK_EQ(words[7], 0xau);
  CHECK_EQ(words[23], 0xau);
  CHECK_EQ(Scan(full + "\n", &lines), (std::vector<std::string>{"D1" + d}));
  CHECK_EQ(lines, 1u);
}

TEST(scan_hands_on_malformed_and_short_dump_lines_whole) {
  std::string bad = kFull;
  bad[20] = 'G';  // a full-length line with a bad digit: not decoded, and not cut at the guessed end either
  std::string nine = std::string(kFull) + " 0000000b";
  std::string early = kFull;
  early[30] = '\n';  // a newline inside where a full line would be: two lines
  uint64_t lines = 0;
  CHECK_EQ(Scan(bad + "\n" + nine + "\n    00000020: 0000beef\n" + early, &lines),
           (std::vector<std::string>{"D1:-1:-:" + bad, "D2:-1:-:" + nine, "D3:1:20:    00000020: 0000beef",
                                     "D4:-1:-:" + early.substr(0, 30), "H5:" + early.substr(31)}));
  CHECK_EQ(lines, 5u);
}

TEST(dump_line_decoding_matches_a_per_digit_reference_on_random_lines) {
  // the reference: per-digit table lookups, as the TS twin reads a word
  auto ref_hex = [](const char* p, uint32_t* v) {
    uint32_t acc = 0;
    for (int i = 0; i < 8; ++i) {
      const int d = kHex.v[static_cast<unsigned char>(p[i])];
      if (d < 0) return false;
      acc = (acc << 4) | static_cast<uint32_t>(d);
    }
    *v = acc;
    return true;
  };
  uint64_t state = 0x2545f4914f6cdd1dULL;
  auto next = [&]() { return state ^= state << 13, state ^= state >> 7, state ^= state << 17, state; };
  const char kDigits[] = "0123456789abcdef";
  for (int round = 0; round < 20000; ++round) {
    const size_t k = 1 + next() % 8;
    std::string line = "    ";
    for (size_t f = 0; f <= k; ++f) {
      if (f == 1) line += ":";
      if (f >= 1) line += " ";
      for (int i = 0; i < 8; ++i) line += kDigits[next() % 16];
    }
    // one byte in four lines replaced by anything (a digit, a separator, a high byte)
    if (next() % 4 == 0) line[4 + next() % (line.size() - 4)] = static_cast<char>(next() & 0xff);
    uint32_t want[8] = {}, want_lead = 0;
    bool ok = line[12] == ':' && ref_hex(line.data() + 4, &want_lead);
    for (size_t j = 0; ok && j < k; ++j) ok = line[13 + 9 * j] == ' ' && ref_hex(line.data() + 14 + 9 * j, &want[j]);
    uint32_t got[8] = {}, lead = 0;
    const int n = Dump(line, 4, got, &lead);
    CHECK_EQ(n, ok ? static_cast<int>(k) : -1);
    if (!ok) continue;
    CHECK_EQ(lead, want_lead);
    for (size_t j = 0; j < k; ++j) CHECK_EQ(got[j], want[j]);
  }
}

TEST(hex_lower_prints_like_to_string_16) {
  CHECK_EQ(HexLower(0), std::string("0"));
  CHECK_EQ(HexLower(0x7c1e), std::string("7c1e"));
  CHECK_EQ(HexLower(0xffffffffu), std::string("ffffffff"));
}
