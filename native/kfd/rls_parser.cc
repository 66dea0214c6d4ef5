// Twin of src/kfd/rls-ts.ts; read the two side by side. Every branch below corresponds to one
// there, in the same order, because the issue list must come out identical for any input.
#include "rls_parser.h"

#include <map>
#include <string>

#include "hqds_parser.h"

namespace gpucolo {
namespace kfd {

void WalkPm4(const uint32_t* words, size_t start, size_t count, double node_row, uint64_t first_dump_line,
             std::vector<double>* packets, IssueSink* sink) {
  size_t i = 0;
  while (i < count) {
    const uint32_t h = words[start + i];
    const uint64_t line = first_dump_line + i / 8;
    if (h >> 30 != 3) {
      sink->AddLazy(line, Severity::kError, [&] {
        return "runlist dword " + std::to_string(i) + ": 0x" + Hex8(h) + " is not a PM4 type-3 packet header";
      });
      return;
    }
    const size_t dwords = ((h >> 16) & 0x3fff) + 2;
    const uint32_t opcode = (h >> 8) & 0xff;
    if (i + dwords > count) {
      sink->AddLazy(line, Severity::kError, [&] {
        std::string name;
        switch (opcode) {
          case 0xa1: name = "MAP_PROCESS"; break;
          case 0xa2: name = "MAP_QUEUES"; break;
          case 0xa5: name = "RUN_LIST"; break;
          default: name = "opcode 0x" + Hex8(opcode).substr(6); break;
        }
        return "runlist dword " + std::to_string(i) + ": " + name + " packet needs " + std::to_string(dwords) + " dwords, only " +
               std::to_string(count - i) + " left";
      });
      return;
    }
    const double row[kRlsPacketCols] = {node_row, static_cast<double>(i), static_cast<double>(opcode), static_cast<double>(dwords)};
    packets->insert(packets->end(), row, row + kRlsPacketCols);
    i += dwords;
  }
}

RlsRaw ParseRls(const char* data, size_t n) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  RlsRaw r;
  IssueSink sink(&r);
  WordBuffer words(n);
  std::vector<double>& nodes = r.nodes;
  std::vector<double>& packets = r.packets;
  uint32_t lead = 0;

  int64_t cur_node = -1;
  bool skip = false;  // dump lines skipped silently (bad or repeated node header, orphan dump, broken dump)
  // first line of each node number and gpu_id seen, to find a node printed twice
  std::map<uint32_t, uint64_t> seen_node, seen_gpu;

  auto close_node = [&]() {
    if (cur_node < 0) return;
    const size_t nr = static_cast<size_t>(cur_node) * kRlsNodeCols;
    nodes[nr + 5] = static_cast<double>(words.size()) - nodes[nr + 4];
    nodes[nr + 6] = static_cast<double>(packets.size() / kRlsPacketCols);
    WalkPm4(words.data(), static_cast<size_t>(nodes[nr + 4]), static_cast<size_t>(nodes[nr + 5]), static_cast<double>(cur_node),
            static_cast<uint64_t>(nodes[nr + 8]), &packets, &sink);
    nodes[nr + 7] = static_cast<double>(packets.size() / kRlsPacketCols) - nodes[nr + 6];
    cur_node = -1;
  };

  LineReader lines(s, n);
  size_t start, end;
  while (lines.Next(&start, &end)) {
    const uint64_t line_no = lines.line();
    if (end == start) continue;

    const int c0 = s[start];
    const int c2 = ByteAt(s, n, start + 2);
    if (c0 == ' ' && ByteAt(s, n, start + 1) == ' ' && c2 >= 0 && kHex.v[c2] >= 0) {
      // ---- IB dump line
      if (cur_node < 0) {
        if (!skip) {
          sink.Add(line_no, Severity::kError, "runlist dump line outside a Node block");
          skip = true;
        }
        continue;
      }
      if (skip) continue;
      const size_t nr = static_cast<size_t>(cur_node) * kRlsNodeCols;
      uint32_t* out = words.Reserve(8);
      const int k = ParseDumpLine(s, start, end, 2, out, &lead);
      if (k < 0) {
        sink.AddLazy(line_no, Severity::kError, [&] { return "malformed runlist dump line: \"" + Snippet(s, start, end) + "\""; });
        skip = true;
        continue;
      }
      const uint64_t have = (static_cast<uint64_t>(words.size()) - static_cast<uint64_t>(nodes[nr + 4])) * 4;
      if (static_cast<uint64_t>(lead) != have) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "runlist dump offset 0x" + Hex8(lead) + " where 0x" + Hex8(static_cast<uint32_t>(have)) + " was expected";
        });
        skip = true;
        continue;
      }
      if (have == 0) nodes[nr + 8] = static_cast<double>(line_no);
      words.Commit(static_cast<size_t>(k));
      continue;
    }

    if (c0 == 'N' && LineStartsWith(s, start, end, "Node")) {
      close_node();
      uint32_t node, gpu;
      if (!MatchNodeHeader(s + start, s + end, &node, &gpu)) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "unrecognised node header (its runlist is skipped): \"" + Snippet(s, start, end) + "\"";
        });
        skip = true;
        continue;
      }
      uint64_t again = 0;
      auto a = seen_node.find(node);
      if (a != seen_node.end()) {
        again = a->second;
      } else {
        auto g = seen_gpu.find(gpu);
        if (g != seen_gpu.end()) again = g->second;
      }
      if (again != 0) {
        sink.AddLazy(line_no, Severity::kError, [&] {
          return "node " + std::to_string(node) + " (gpu_id " + HexLower(gpu) + ") again, first at line " + std::to_string(again) +
                 ": two dumps appended? this copy is skipped";
        });
        skip = true;
        continue;
      }
      seen_node.emplace(node, line_no);
      seen_gpu.emplace(gpu, line_no);
      skip = false;
      cur_node = static_cast<int64_t>(nodes.size() / kRlsNodeCols);
      const double row[kRlsNodeCols] = {static_cast<double>(node), static_cast<double>(gpu), static_cast<double>(line_no), 0,
                                        static_cast<double>(words.size()), 0, 0, 0, 0};
      nodes.insert(nodes.end(), row, row + kRlsNodeCols);
      continue;
    }
    if (LineIs(s, start, end, "  No active runlist")) {
      if (cur_node >= 0) {
        nodes[static_cast<size_t>(cur_node) * kRlsNodeCols + 3] = 1;
      } else if (!skip) {
        // after a bad Node header its lines are skipped silently, like the dump lines
        sink.Add(line_no, Severity::kError, "\"No active runlist\" outside a Node block");
      }
      continue;
    }
    sink.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s, start, end) + "\""; });
  }
  close_node();

  r.lines = lines.line();
  r.words = words.Finish();
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
