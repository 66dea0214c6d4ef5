// Helpers shared by the parser tests.
#pragma once

#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kfd/text_scan.h"

namespace gpucolo_test {

/** CLOCK_MONOTONIC now, ns (the clock every backend and the engine use). */
inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

/** Lines joined with '\n' (no trailing newline, like [...].join('\n') in the TS tests). */
inline std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    out += lines[i];
  }
  return out;
}

/** "line|severity|message" of every issue, for whole-list comparisons. */
inline std::vector<std::string> IssueStrings(const std::vector<gpucolo::kfd::ParseIssue>& issues) {
  std::vector<std::string> out;
  for (const auto& i : issues) out.push_back(std::to_string(i.line) + "|" + gpucolo::kfd::SeverityName(i.severity) + "|" + i.message);
  return out;
}

/** Number of '\n'-separated lines the parsers count in text. */
inline uint64_t CountLines(const std::string& text) {
  uint64_t n = 0;
  for (char c : text) n += c == '\n';
  return n + (!text.empty() && text.back() != '\n');
}

/** text without its lines that start with '#', keeping line numbering out of it */
inline std::string DropComments(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size() - 1;
    if (text[pos] != '#') out.append(text, pos, nl - pos + 1);
    pos = nl + 1;
  }
  return out;
}

}  // namespace gpucolo_test
