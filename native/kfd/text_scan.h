// Line-scanning helpers shared by the C++ parsers of the debugfs hex dumps. Twin of
// src/kfd/text-scan.ts: a rule changed there (what a dump line is, how an issue is worded) must be
// changed here too, or the native/TS parity tests fail.
//
// Input is bytes; TS reads the same bytes as latin1, so one byte here is one char there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace gpucolo {
namespace kfd {

enum class Severity : uint8_t { kError, kWarning };

inline const char* SeverityName(Severity s) { return s == Severity::kError ? "error" : "warning"; }

/** A problem found in a text file; `line` is 1-based. */
struct ParseIssue {
  uint64_t line;
  Severity severity;
  std::string message;
};

/** Issues kept per parse (MAX_ISSUES in raw.ts); the rest are only counted. */
constexpr size_t kMaxIssues = 100;

/** What every parser returns besides its tables (RawCommon in raw.ts). */
struct RawCommon {
  std::vector<ParseIssue> issues;
  uint64_t suppressed = 0;
  uint64_t lines = 0;
};

/** Collects issues, keeping the first kMaxIssues. */
class IssueSink {
 public:
  explicit IssueSink(RawCommon* out) : out_(out) {}

  void Add(uint64_t line, Severity severity, std::string message) {
    if (out_->issues.size() < kMaxIssues) {
      out_->issues.push_back(ParseIssue{line, severity, std::move(message)});
    } else {
      ++out_->suppressed;
    }
  }

  // Garbage input can produce one issue per line; building a message only to count it would
  // make a large garbage file cost far more than a good one.
  template <class MakeMessage>
  void AddLazy(uint64_t line, Severity severity, MakeMessage&& make) {
    if (out_->issues.size() < kMaxIssues) {
      out_->issues.push_back(ParseIssue{line, severity, make()});
    } else {
      ++out_->suppressed;
    }
  }

 private:
  RawCommon* out_;
};

struct HexTable {
  int8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = -1;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<int8_t>(i);
    // lowercase only: the kernel prints %08x / %x, and the TS twin rejects 'A'-'F' too
    for (int i = 0; i < 6; ++i) v['a' + i] = static_cast<int8_t>(10 + i);
  }
};
inline constexpr HexTable kHex{};

/** Eight lowercase hex digits at p[0..8) into *out; false if any is not one. */
inline bool ParseHex8(const unsigned char* p, uint32_t* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  // All eight digits at once in a 64-bit word (p[0] in the low byte): this is the inner loop of
  // every dump line, and per-byte table lookups made it most of the parse time.
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t x;
  std::memcpy(&x, p, 8);
  // With every byte < 0x80, adding (0x80 - c) sets a byte's high bit iff byte >= c, and no byte
  // carries into its neighbour (0x7f + 0x50 < 0x100).
  const uint64_t ge_0 = x + kOnes * (0x80 - '0');
  const uint64_t gt_9 = x + kOnes * (0x80 - '9' - 1);
  const uint64_t ge_a = x + kOnes * (0x80 - 'a');
  const uint64_t gt_f = x + kOnes * (0x80 - 'f' - 1);
  const uint64_t ok = ((ge_0 & ~gt_9) | (ge_a & ~gt_f)) & ~x & kHigh;
  if (ok != kHigh) return false;
  // digit value: low nibble, +9 for 'a'..'f' (bit 6 set only in letters)
  uint64_t v = (x & (kOnes * 0x0f)) + ((x >> 6) & kOnes) * 9;
  // fold nibbles pairwise; p[0] is the most significant digit
  v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffULL;
  v = ((v << 8) | (v >> 16)) & 0x0000ffff0000ffffULL;
  v = ((v << 16) | (v >> 32)) & 0x00000000ffffffffULL;
  *out = static_cast<uint32_t>(v);
  return true;
#else
  uint32_t v = 0;
  int bad = 0;
  for (int i = 0; i < 8; ++i) {
    const int d = kHex.v[p[i]];
    bad |= d;
    v = (v << 4) | static_cast<uint32_t>(d & 0xf);
  }
  *out = v;
  return bad >= 0;
#endif
}

#if defined(__SSE2__)
/**
 * Two fields of eight lowercase hex digits, at a[0..8) and b[0..8), into *out (a's value in the
 * low half, b's in the high half, so that storing *out writes a's word then b's). Returns a
 * vector with a byte set for each byte that is not such a digit (then *out is garbage): a caller
 * decoding a whole line ORs these and tests once. The dump lines are almost all of every parse,
 * and ParseHex8 spends ~30 scalar operations on one word; SSE2 (in every x86-64 CPU, so no
 * runtime dispatch) does two in fewer.
 */
inline __m128i Hex8x2(const unsigned char* a, const unsigned char* b, uint64_t* out) {
  uint64_t qa, qb;
  std::memcpy(&qa, a, 8);
  std::memcpy(&qb, b, 8);
  const __m128i x = _mm_set_epi64x(static_cast<long long>(qb), static_cast<long long>(qa));
  // signed compares: a byte >= 0x80 is negative, below '0', and fails both ranges
  const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('9' + 1), x));
  const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('a' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('f' + 1), x));
  // digit value: low nibble, +9 for 'a'..'f'
  const __m128i v = _mm_add_epi8(_mm_and_si128(x, _mm_set1_epi8(0x0f)), _mm_and_si128(letter, _mm_set1_epi8(9)));
  // each 16-bit lane holds two digits d0 + 256 * d1, d0 the more significant: times 0x1001 puts
  // 16 * d0 + d1 in its high byte (no carries: every product term lands in its own nibble)
  const __m128i bytes16 = _mm_srli_epi16(_mm_mullo_epi16(v, _mm_set1_epi16(0x1001)), 8);
  const __m128i packed = _mm_packus_epi16(bytes16, bytes16);
  // bytes a3 a2 a1 a0 b3 b2 b1 b0 (most significant first): byte-swap, then swap the halves back
  const uint64_t sw = __builtin_bswap64(static_cast<uint64_t>(_mm_cvtsi128_si64(packed)));
  *out = (sw << 32) | (sw >> 32);
  return _mm_andnot_si128(_mm_or_si128(digit, letter), _mm_set1_epi8(-1));
}
#endif

/** Byte at i, or -1 past the end (charCodeAt() gives NaN there, equal to nothing). */
inline int ByteAt(const unsigned char* s, size_t n, size_t i) { return i < n ? s[i] : -1; }

/** The first 40 bytes of a line, non-printable bytes as '?', "..." when longer. */
inline std::string Snippet(const unsigned char* s, size_t start, size_t end) {
  const size_t stop = end < start + 40 ? end : start + 40;
  std::string out;
  out.reserve(stop - start + 3);
  for (size_t i = start; i < stop; ++i) {
    const unsigned char c = s[i];
    out.push_back(c < 0x20 || c > 0x7e ? '?' : static_cast<char>(c));
  }
  if (end - start > 40) out += "...";
  return out;
}

/** %08x of v (hex8 in text-scan.ts). */
inline std::string Hex8(uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i, v >>= 4) s[i] = kDigits[v & 0xf];
  return s;
}

/** %x of v: lowercase hex without leading zeros (Number.prototype.toString(16) in TS). */
inline std::string HexLower(uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return s;
}

/**
 * Parses one hex-dump line `<prefix spaces>XXXXXXXX: w1 w2 ... wk` (1 <= k <= 8, every field
 * eight lowercase hex digits, single spaces, nothing after the last word) in s[start, end).
 * Writes the words to out[0..k) and the leading field (offset or register address) to *lead;
 * returns k, or -1 if the line is malformed. out must have room for 8 words.
 */
inline int ParseDumpLine(const unsigned char* s, size_t start, size_t end, size_t prefix,
                         uint32_t* out, uint32_t* lead) {
  // a line shorter than the prefix fails in TS on the '\n' (or end of input) after it
  if (end - start < prefix) return -1;
  for (size_t i = 0; i < prefix; ++i) {
    if (s[start + i] != ' ') return -1;
  }
  const size_t body = end - start - prefix;
  // "XXXXXXXX:" + k * " XXXXXXXX"
  if (body < 18 || (body - 9) % 9 != 0) return -1;
  const size_t k = (body - 9) / 9;
  if (k > 8) return -1;
  const unsigned char* p = s + start + prefix;
  if (p[8] != ':') return -1;
  // field i >= 1 (word i-1) has its separating space at p[9i] and its digits at p[9i + 1]
  for (size_t i = 1; i <= k; ++i) {
    if (p[9 * i] != ' ') return -1;
  }
#if defined(__SSE2__)
  // the address with word 0, then the words in pairs, a last odd one with itself; out gets
  // written before the line is known to be good (a bad line's words are never committed)
  uint64_t two;
  __m128i bad = Hex8x2(p, p + 10, &two);
  const uint32_t first = static_cast<uint32_t>(two);
  out[0] = static_cast<uint32_t>(two >> 32);
  size_t j = 1;
  for (; j + 1 < k; j += 2) {
    bad = _mm_or_si128(bad, Hex8x2(p + 9 * j + 10, p + 9 * j + 19, &two));
    std::memcpy(out + j, &two, 8);
  }
  if (j < k) {
    bad = _mm_or_si128(bad, Hex8x2(p + 9 * j + 10, p + 9 * j + 10, &two));
    out[j] = static_cast<uint32_t>(two);
  }
  if (_mm_movemask_epi8(bad) != 0) return -1;
#else
  uint32_t first;
  if (!ParseHex8(p, &first)) return -1;
  for (size_t j = 0; j < k; ++j) {
    if (!ParseHex8(p + 9 * j + 10, &out[j])) return -1;
  }
#endif
  *lead = first;
  return static_cast<int>(k);
}

/**
 * Where one dump line's words went in a parse: the line starts at byte `start`, its words are
 * words[first_word .. first_word + count), and word j's 8 hex digits are at
 * start + prefix + 10 + 9j ("<prefix spaces>XXXXXXXX:" then " XXXXXXXX" per word). A parse that
 * fills a list of these lets a later text that differs only inside those digits be re-decoded
 * word by word (word_patch.h) instead of parsed again.
 */
struct WordLine {
  size_t start;
  size_t first_word;
  uint32_t count;
  uint32_t prefix;
};

/**
 * Appends one zeroed row of `cols` columns to a flat table and returns it, to be filled column by
 * column (row[HqdsSlotCol::line] = ...). Writing in place, rather than building the row in a
 * local array and inserting it, also avoids a stall: the insert's wide loads of the just-stored
 * doubles cannot be forwarded from the stores and wait for them to retire.
 */
inline double* AppendRow(std::vector<double>* table, size_t cols) {
  const size_t at = table->size();
  table->resize(at + cols);
  return table->data() + at;
}

/**
 * A growable word array (WordBuffer in text-scan.ts). Sized once from the input length: a dump line
 * spends at least 9 bytes per word, so len/9 words never regrow on real dumps.
 */
class WordBuffer {
 public:
  explicit WordBuffer(size_t input_len) {
    const size_t bound = (input_len + 8) / 9;
    buf_.resize(bound > 64 ? bound : 64);
  }
  /** Room for n more words past size(); returns where they go. */
  uint32_t* Reserve(size_t n) {
    if (length_ + n > buf_.size()) buf_.resize(buf_.size() * 2 > length_ + n ? buf_.size() * 2 : length_ + n);
    return buf_.data() + length_;
  }
  void Commit(size_t n) { length_ += n; }
  size_t size() const { return length_; }
  const uint32_t* data() const { return buf_.data(); }
  /** The words; capacity is left as is (shrinking would copy them once more). */
  std::vector<uint32_t> Finish() {
    buf_.resize(length_);
    return std::move(buf_);
  }

 private:
  std::vector<uint32_t> buf_;
  size_t length_ = 0;
};

/**
 * Hand-written stand-in for the header regexes of the TS parsers. Each method consumes one
 * regex atom at the cursor or returns false. Every \d{1,10} / [0-9a-f]{1,8} group in those
 * regexes is followed by a non-digit, so "longest run within the bound" is exactly what the
 * backtracking regex accepts.
 */
class Matcher {
 public:
  Matcher(const unsigned char* begin, const unsigned char* end) : p_(begin), e_(end) {}

  bool Lit(const char* lit) {
    const size_t n = std::strlen(lit);
    if (static_cast<size_t>(e_ - p_) < n || std::memcmp(p_, lit, n) != 0) return false;
    p_ += n;
    return true;
  }
  /** \d{1,10} whose value passes decU32 (<= 0xffffffff). */
  bool DecU32(uint32_t* v) {
    uint64_t acc = 0;
    const unsigned char* q = p_;
    while (q < e_ && *q >= '0' && *q <= '9' && q - p_ < 11) acc = acc * 10 + (*q++ - '0');
    const ptrdiff_t len = q - p_;
    if (len < 1 || len > 10 || (q < e_ && *q >= '0' && *q <= '9') || acc > 0xffffffffULL) return false;
    *v = static_cast<uint32_t>(acc);
    p_ = q;
    return true;
  }
  /** \d{1,10} without a range check (an opaque field) */
  bool Digits() {
    const unsigned char* q = p_;
    while (q < e_ && *q >= '0' && *q <= '9') ++q;
    const ptrdiff_t len = q - p_;
    if (len < 1 || len > 10) return false;
    p_ = q;
    return true;
  }
  /** [0-9a-f]{1,8} */
  bool Hex(uint32_t* v) {
    uint32_t acc = 0;
    const unsigned char* q = p_;
    while (q < e_ && kHex.v[*q] >= 0) {
      if (q - p_ == 8) return false;
      acc = (acc << 4) | static_cast<uint32_t>(kHex.v[*q]);
      ++q;
    }
    if (q == p_) return false;
    *v = acc;
    p_ = q;
    return true;
  }
  bool End() const { return p_ == e_; }
  const unsigned char* pos() const { return p_; }

 private:
  const unsigned char* p_;
  const unsigned char* e_;
};

/** True if s[start, end) is exactly lit. */
inline bool LineIs(const unsigned char* s, size_t start, size_t end, const char* lit) {
  const size_t n = std::strlen(lit);
  return end - start == n && std::memcmp(s + start, lit, n) == 0;
}

/** True if s[start, end) starts with lit. */
inline bool LineStartsWith(const unsigned char* s, size_t start, size_t end, const char* lit) {
  const size_t n = std::strlen(lit);
  return end - start >= n && std::memcmp(s + start, lit, n) == 0;
}

/** A dump line with all 8 words: "XXXXXXXX:" + 8 * " XXXXXXXX" after its prefix. */
constexpr size_t kFullDumpBody = 9 + 8 * 9;

/**
 * The line loop every dump parser shares: split the text into '\n'-separated lines (a last line
 * without '\n' is still a line; a '\r' before the '\n' or at the end of input is not part of the
 * line, so CR LF files read like LF files), skip blank ones, and hand each line either to
 * the parser's dump-line step, already decoded by ParseDumpLine, or to its header step. Returns
 * the number of lines. The parser P provides:
 *
 *   static constexpr size_t kDumpPrefix;  // spaces before a dump line's address (4 or 2)
 *   bool IsDumpLine(size_t start);        // the parser's test on the line's first bytes
 *   uint32_t* DumpWords();                // room for 8 words, where ParseDumpLine writes them
 *   void Dump(size_t start, size_t end, uint64_t line, int k, uint32_t lead);  // k < 0: malformed
 *   void Header(size_t start, size_t end, uint64_t line);  // any other non-blank line
 *
 * IsDumpLine may look past the line's end (it sees the next line's bytes or '\n', never a byte
 * past the input): a dump line's prefix is spaces, so a test on its first bytes fails at the '\n'.
 *
 * Every dump line is decoded, also where the parser then drops it (a skipped block): the result
 * is the same, and decoding before the end of the line is known is what makes the fast path
 * possible. Almost every line of a real dump carries 8 words: when the bytes where such a line
 * would end are '\n' (or the end of input) and ParseDumpLine accepts the line, each byte before
 * it was checked to be a digit, a space or the colon, so no '\n' comes earlier and memchr would
 * find this one: the search is skipped. Any other line is split by memchr and decoded again.
 */
template <class P>
uint64_t ScanDumpText(const unsigned char* s, size_t n, P& parser) {
  constexpr size_t kFull = P::kDumpPrefix + kFullDumpBody;
  size_t pos = 0;
  uint64_t line = 0;
  while (pos < n) {
    ++line;
    const size_t start = pos;
    const bool dump = parser.IsDumpLine(start);
    uint32_t* out = nullptr;
    uint32_t lead = 0;
    if (dump) {
      out = parser.DumpWords();
      const size_t full = start + kFull;
      if (full <= n && (full == n || s[full] == '\n') && ParseDumpLine(s, start, full, P::kDumpPrefix, out, &lead) == 8) {
        pos = full + 1;
        parser.Dump(start, full, line, 8, lead);
        continue;
      }
    }
    const void* nl = std::memchr(s + start, '\n', n - start);
    const size_t e = nl ? static_cast<size_t>(static_cast<const unsigned char*>(nl) - s) : n;
    const size_t end = e > start && s[e - 1] == '\r' ? e - 1 : e;
    pos = e + 1;
    if (end == start) continue;  // blank line (never a dump line: those start with a space)
    if (dump) {
      const int k = ParseDumpLine(s, start, end, P::kDumpPrefix, out, &lead);
      parser.Dump(start, end, line, k, lead);
    } else {
      parser.Header(start, end, line);
    }
  }
  return line;
}

}  // namespace kfd
}  // namespace gpucolo
