// Twin of src/kfd/rls-parser.ts; read the two side by side. Every branch below corresponds to one
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
    const size_t need = opcode == 0xa1 ? 16 : opcode == 0xa2 ? 7 : 0;  // the shortest layout (v9 MAP_PROCESS)
    if (dwords < need) {
      // kept: the decoders give null for the fields of the dwords it lacks (docs/kfd-formats.md)
      sink->AddLazy(line, Severity::kWarning, [&] {
        return "runlist dword " + std::to_string(i) + ": " + (opcode == 0xa1 ? "MAP_PROCESS" : "MAP_QUEUES") + " packet has " +
               std::to_string(dwords) + " dwords, its layout needs " + std::to_string(need) +
               ": the fields of the missing dwords are unknown";
      });
    }
    double* row = AppendRow(packets, RlsPacketCol::kCount);
    row[RlsPacketCol::node] = node_row;
    row[RlsPacketCol::dwordOffset] = static_cast<double>(i);
    row[RlsPacketCol::opcode] = static_cast<double>(opcode);
    row[RlsPacketCol::dwords] = static_cast<double>(dwords);
    i += dwords;
  }
}

namespace {

/**
 * One ParseRls call: the rows built so far and the node being read. ScanDumpText (text_scan.h)
 * calls Dump for each IB dump line and Header for any other.
 */
class RlsParser {
 public:
  RlsParser(const char* data, size_t len) : s_(reinterpret_cast<const unsigned char*>(data)), n_(len), words_(len) {}

  RlsRaw Parse() {
    r_.lines = ScanDumpText(s_, n_, *this);
    CloseNode();
    r_.words = words_.Finish();
    return std::move(r_);
  }

  // ---- the steps ScanDumpText calls
  static constexpr size_t kDumpPrefix = 2;
  bool IsDumpLine(size_t start) const {
    const int c2 = ByteAt(s_, n_, start + 2);
    return s_[start] == ' ' && ByteAt(s_, n_, start + 1) == ' ' && c2 >= 0 && kHex.v[c2] >= 0;
  }
  uint32_t* DumpWords() { return words_.Reserve(8); }
  void Dump(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead);
  void Header(size_t start, size_t end, uint64_t line_no);

 private:
  using N = RlsNodeCol;

  void CloseNode();
  void NodeHeader(size_t start, size_t end, uint64_t line_no);

  const unsigned char* s_;
  size_t n_;
  RlsRaw r_;
  IssueSink sink_{&r_};
  WordBuffer words_;
  int64_t cur_node_ = -1;
  bool skip_ = false;  // dump lines skipped silently (bad or repeated node header, orphan dump, broken dump)
  // first line of each node number and gpu_id seen, to find a node printed twice
  std::map<uint32_t, uint64_t> seen_node_, seen_gpu_;
};

void RlsParser::CloseNode() {
  if (cur_node_ < 0) return;
  double* node = &r_.nodes[static_cast<size_t>(cur_node_) * kRlsNodeCols];
  std::vector<double>& packets = r_.packets;
  node[N::wordCount] = static_cast<double>(words_.size()) - node[N::wordOffset];
  node[N::firstPacket] = static_cast<double>(packets.size() / kRlsPacketCols);
  // WalkPm4 appends to packets, not to nodes: `node` stays valid
  WalkPm4(words_.data(), static_cast<size_t>(node[N::wordOffset]), static_cast<size_t>(node[N::wordCount]),
          static_cast<double>(cur_node_), static_cast<uint64_t>(node[N::firstDumpLine]), &packets, &sink_);
  node[N::packetCount] = static_cast<double>(packets.size() / kRlsPacketCols) - node[N::firstPacket];
  cur_node_ = -1;
}

// ---- IB dump line, decoded by ScanDumpText into DumpWords() (k < 0: malformed)
void RlsParser::Dump(size_t start, size_t end, uint64_t line_no, int k, uint32_t lead) {
  if (cur_node_ < 0) {
    if (!skip_) {
      sink_.Add(line_no, Severity::kError, "runlist dump line outside a Node block");
      skip_ = true;
    }
    return;
  }
  if (skip_) return;
  if (k < 0) {
    sink_.AddLazy(line_no, Severity::kError, [&] { return "malformed runlist dump line: \"" + Snippet(s_, start, end) + "\""; });
    skip_ = true;
    return;
  }
  double* node = &r_.nodes[static_cast<size_t>(cur_node_) * kRlsNodeCols];
  const uint64_t have = (static_cast<uint64_t>(words_.size()) - static_cast<uint64_t>(node[N::wordOffset])) * 4;
  if (static_cast<uint64_t>(lead) != have) {
    sink_.AddLazy(line_no, Severity::kError, [&] {
      return "runlist dump offset 0x" + Hex8(lead) + " where 0x" + Hex8(static_cast<uint32_t>(have)) + " was expected";
    });
    skip_ = true;
    return;
  }
  if (have == 0) node[N::firstDumpLine] = static_cast<double>(line_no);
  words_.Commit(static_cast<size_t>(k));
}

void RlsParser::Header(size_t start, size_t end, uint64_t line_no) {
  if (s_[start] == 'N' && LineStartsWith(s_, start, end, "Node")) {
    NodeHeader(start, end, line_no);
    return;
  }
  if (LineIs(s_, start, end, "  No active runlist")) {
    if (cur_node_ >= 0) {
      r_.nodes[static_cast<size_t>(cur_node_) * kRlsNodeCols + N::noRunlist] = 1;
    } else if (!skip_) {
      // after a bad Node header its lines are skipped silently, like the dump lines
      sink_.Add(line_no, Severity::kError, "\"No active runlist\" outside a Node block");
    }
    return;
  }
  sink_.AddLazy(line_no, Severity::kError, [&] { return "unrecognised line: \"" + Snippet(s_, start, end) + "\""; });
}

void RlsParser::NodeHeader(size_t start, size_t end, uint64_t line_no) {
  CloseNode();
  uint32_t node, gpu;
  if (!MatchNodeHeader(s_ + start, s_ + end, &node, &gpu)) {
    sink_.AddLazy(line_no, Severity::kError, [&] {
      return "unrecognised node header (its runlist is skipped): \"" + Snippet(s_, start, end) + "\"";
    });
    skip_ = true;
    return;
  }
  uint64_t again = 0;
  auto a = seen_node_.find(node);
  if (a != seen_node_.end()) {
    again = a->second;
  } else {
    auto g = seen_gpu_.find(gpu);
    if (g != seen_gpu_.end()) again = g->second;
  }
  if (again != 0) {
    sink_.AddLazy(line_no, Severity::kError, [&] {
      return "node " + std::to_string(node) + " (gpu_id " + HexLower(gpu) + ") again, first at line " + std::to_string(again) +
             ": two dumps appended? this copy is skipped";
    });
    skip_ = true;
    return;
  }
  seen_node_.emplace(node, line_no);
  seen_gpu_.emplace(gpu, line_no);
  skip_ = false;
  cur_node_ = static_cast<int64_t>(r_.nodes.size() / kRlsNodeCols);
  // the other columns 0 until CloseNode (firstDumpLine: the first dump line)
  double* row = AppendRow(&r_.nodes, N::kCount);
  row[N::node] = node;
  row[N::gpuId] = gpu;
  row[N::line] = static_cast<double>(line_no);
  row[N::wordOffset] = static_cast<double>(words_.size());
}

}  // namespace

RlsRaw ParseRls(const char* data, size_t n) { return RlsParser(data, n).Parse(); }

}  // namespace kfd
}  // namespace gpucolo
