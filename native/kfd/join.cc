// Twin of joinQueues in src/kfd/join.ts; see join.h. The steps below carry the names of the
// sections there ("queues from mqds", "sysfs queue ids", "HQD slots -> queues", "runlist",
// "processes", buildNodes) so that a rule changed on one side is easy to find on the other.
// JS Maps iterate in insertion order and Array.prototype.sort is stable: where the TS side
// relies on either, this side keeps an insertion-ordered vector and uses std::stable_sort.
#include "join.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace gpucolo {
namespace kfd {
namespace {

constexpr double kNull = -1;
constexpr double kInfinity = std::numeric_limits<double>::infinity();
/** Number.MAX_SAFE_INTEGER - 1024: the order of sysfs queues debugfs did not show yet */
constexpr double kLateOrder = 9007199254740991.0 - 1024;
constexpr const char* kSdmaCutMessage = "ends without its SDMA RLC dumps (dump cut?)";

/** `${v}` of a JS number (integers here: pids, lines, counts). */
std::string Num(double v) {
  char b[40];
  if (v == 0) return "0";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return std::to_string(static_cast<int64_t>(v));
  if (v == std::floor(v) && std::fabs(v) < 1e21) {
    std::snprintf(b, sizeof b, "%.0f", v);
  } else {
    std::snprintf(b, sizeof b, "%.17g", v);
  }
  return b;
}

std::string Hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%x", v);
  return b;
}

/** (v >>> 0) of a table value that holds a u32. */
uint32_t U32(double v) { return static_cast<uint32_t>(static_cast<int64_t>(v)); }

/** -1 / 0 / 1 for null / false / true. */
double Tri(int v) { return v; }

struct Words {
  const uint32_t* p = nullptr;
  size_t n = 0;
  bool Has(size_t i) const { return i < n; }
};

/** A 64-bit address read as (lo, hi) dwords; not known when the dump ended before them. */
struct Addr {
  bool known = false;
  uint32_t lo = 0;
  uint32_t hi = 0;
  uint64_t Key() const { return (static_cast<uint64_t>(hi) << 32) | lo; }
  bool Same(const Addr& o) const { return known && o.known && lo == o.lo && hi == o.hi; }
};

Addr AddrOf(const Words& w, size_t lo, size_t hi) {
  if (hi < w.n && lo < w.n) return Addr{true, w.p[lo], w.p[hi]};
  return Addr{};
}

/**
 * debugfsIdentity in src/kfd/join.ts, text for text: the XCC0 MQD address of a queue that has MQD
 * blocks, else its ring (SDMA), else its mqds line ("?" when none).
 */
std::string DebugfsIdentity(bool has_blocks, const Addr& addr0, const Addr& ring, double mqds_line) {
  auto unknown = [&]() { return "unknown:" + (mqds_line < 0 ? std::string("?") : Num(mqds_line)); };
  if (has_blocks) return addr0.known ? "mqd:" + FormatAddress(addr0.lo, addr0.hi, 0) : unknown();
  return ring.known ? "ring:" + FormatAddress(ring.lo, ring.hi, 8) : unknown();
}

/** computeMqdHeaderBad in src/kfd/decode.ts: dw0 read and not the compute MQD header. */
constexpr uint32_t kComputeMqdHeader = 0xc0310800;
bool ComputeHeaderBad(const Words& w) { return w.n > 0 && w.p[0] != kComputeMqdHeader; }

/** sdmaIdsAt in src/kfd/decode.ts: dw of sdma_engine_id (128-dword layout 126, 130-dword 128), or -1. */
int SdmaIdsAt(const Words& w) { return w.n == 128 ? 126 : w.n == 130 ? 128 : -1; }

/** priorityLevel in src/kfd/decode.ts: 0 low, 1 normal, 2 high, -1 null. */
int PriorityLevel(uint32_t pipe, uint32_t queue) {
  if (pipe <= 2) return static_cast<int>(pipe);
  if (queue <= 15) return queue <= 6 ? 0 : queue <= 10 ? 1 : 2;
  return -1;
}

bool Partial(const RawCommon& r) {
  if (r.suppressed > 0) return true;
  for (const ParseIssue& i : r.issues) {
    if (i.severity == Severity::kError) return true;
  }
  return false;
}

struct Hqd {
  double inst, pipe, queue;
  int active, busy;
  double xcc;
};

struct SdmaSlot {
  bool set = false;
  double engine = 0, rlc = 0;
  int active = -1, busy = -1, matched_by = 0;
};

/** SnapshotQueue of src/kfd/join.ts. */
struct Queue {
  double qid = kNull;
  int qid_match = kQidNoSysfs;
  int source = kSourceDebugfs;
  int mqd_kind = -1;
  double sys_queue = kNull;
  int aql = -1;
  bool gpu_known = false;
  uint32_t gpu = 0;
  double node = kNull;
  double size_bytes = kNull;
  bool has_priority = false;
  uint32_t prio_pipe = 0, prio_queue = 0;
  int level = -1;
  double doorbell = kNull;
  Addr ring;
  std::vector<Addr> addrs;
  std::vector<Hqd> hqds;
  SdmaSlot sdma;
  int in_runlist = -1;
  double mqds_line = kNull;
};

/** Work in src/kfd/join.ts, with what the join reads of the queue's MQD blocks. */
struct Work {
  Queue q;
  bool from_mqds = false;
  double pid = 0;
  double order = 0;
  size_t block_count = 0;
  /** SDMA MQD dw126/127 of block 0 (sdma.engine / sdma.rlc) */
  bool engine_known = false, rlc_known = false;
  uint32_t engine = 0, rlc = 0;
};

/**
 * One HQD slot (decodeComputeHqd / decodeSdmaHqd in src/kfd/decode.ts). DecodeSlot reads what
 * every slot needs (kind, place, active, compute MQD address); AddDetails the rest, for the few
 * slots that are matched or reported: most of an hqds dump is idle slots.
 */
struct Slot {
  int kind;
  double inst, pipe, queue;
  Words regs;
  int active = -1;
  Addr mqd;
  double vmid = kNull;
  Addr ring;
  int busy = -1;
};

/** JS `(v & mask)` of two u32 ring pointers with mask = 2**e - 1 as a double. */
uint32_t RingMask(unsigned e) {
  if (e <= 31) return (1u << e) - 1;
  // 2**e - 1 is exact up to e = 53 (low 32 bits all ones); above, it rounds to 2**e, whose low 32 bits are 0
  return e <= 53 ? 0xffffffffu : 0u;
}

Slot DecodeSlot(const HqdsRaw& h, size_t row) {
  const double* s = &h.slots[row * kHqdsSlotCols];
  Slot out;
  out.kind = static_cast<int>(s[HqdsSlotCol::kind]);
  out.inst = s[HqdsSlotCol::inst] < 0 ? 0 : s[HqdsSlotCol::inst];
  out.pipe = s[HqdsSlotCol::pipe];
  out.queue = s[HqdsSlotCol::queue];
  out.regs = Words{h.words.data() + static_cast<size_t>(s[HqdsSlotCol::wordOffset]), static_cast<size_t>(s[HqdsSlotCol::wordCount])};
  const Words& r = out.regs;
  if (out.kind == kHqdSdma) {
    out.active = r.Has(0) ? (r.p[0] & 1) : -1;
  } else {
    out.active = r.Has(2) ? (r.p[2] & 1) : -1;
    out.mqd = AddrOf(r, 0, 1);
  }
  return out;
}

void AddDetails(Slot* s) {
  const Words& r = s->regs;
  if (s->kind == kHqdSdma) {
    if (r.Has(0)) s->vmid = (r.p[0] >> 24) & 0xf;
    s->ring = AddrOf(r, 1, 2);
    s->busy = r.n > 5 && s->active == 1 ? (r.p[3] != r.p[5]) : -1;
    return;
  }
  if (r.Has(3)) s->vmid = r.p[3] & 0xf;
  s->ring = AddrOf(r, 8, 9);
  if (s->active == 1 && r.Has(17) && r.n > 54) {
    const uint32_t mask = RingMask((r.p[17] & 0x3f) + 1);
    s->busy = (r.p[10] & mask) != (r.p[54] & mask);
  }
}

struct MapQueues {
  uint32_t sel, ext;
  double doorbell;
  Addr mqd;
  bool Compute() const { return ext == 0 && sel == 0; }
  /** the N of an `sdma<N>` engine; false for compute and `engine<N>` */
  bool SdmaEngine(uint32_t* n) const {
    if (ext == 0 && (sel == 2 || sel == 3)) return *n = sel - 2, true;
    if (ext != 0) return *n = (ext == 2 ? 8 : 0) + sel, true;
    return false;
  }
};

struct MapProcess {
  double pasid;
  double num_queues;
  std::vector<MapQueues> queues;
};

/** An rls node with its packets decoded (buildRls in src/kfd/build.ts). */
struct RlsView {
  double node = 0;
  uint32_t gpu = 0;
  bool has_runlist = false;
  bool whole = false;
  bool chained = false;
  std::vector<MapProcess> processes;
  std::vector<MapQueues> strays;
};

std::string EngineName(uint32_t sel, uint32_t ext) {
  if (ext == 0) {
    if (sel == 0) return "compute";
    if (sel == 2 || sel == 3) return "sdma" + Num(sel - 2);
    return "engine" + Num(sel);
  }
  return "sdma" + Num((ext == 2 ? 8 : 0) + sel);
}

RlsView DecodeRlsNode(const RlsRaw& r, size_t row) {
  const double* n = &r.nodes[row * kRlsNodeCols];
  RlsView v;
  v.node = n[RlsNodeCol::node];
  v.gpu = U32(n[RlsNodeCol::gpuId]);
  v.has_runlist = n[RlsNodeCol::noRunlist] != 1;
  const uint32_t* ib = r.words.data() + static_cast<size_t>(n[RlsNodeCol::wordOffset]);
  const size_t ib_len = static_cast<size_t>(n[RlsNodeCol::wordCount]);
  double dwords_seen = 0;
  for (size_t p = static_cast<size_t>(n[RlsNodeCol::firstPacket]); p < static_cast<size_t>(n[RlsNodeCol::firstPacket] + n[RlsNodeCol::packetCount]); ++p) {
    const double* pk = &r.packets[p * kRlsPacketCols];
    const size_t at = static_cast<size_t>(pk[RlsPacketCol::dwordOffset]);
    const size_t dwords = static_cast<size_t>(pk[RlsPacketCol::dwords]);
    dwords_seen += pk[RlsPacketCol::dwords];
    // decodeMapProcess/decodeMapQueues: a field whose dword lies past the packet or the IB is
    // unknown (kNull / an unknown Addr), never 0
    auto has = [&](size_t i) { return i < dwords && at + i < ib_len; };
    auto d = [&](size_t i) -> uint32_t { return has(i) ? ib[at + i] : 0; };
    const double opcode = pk[RlsPacketCol::opcode];
    if (opcode == 0xa1) {
      v.processes.push_back(MapProcess{has(1) ? static_cast<double>(d(1) & 0xffff) : kNull, has(13) ? static_cast<double>(d(13) >> 22) : kNull, {}});
    } else if (opcode == 0xa2) {
      // dw1 is always there: a PM4 packet has at least 2 dwords and the parsers keep only packets inside the IB
      const uint32_t ext = (d(1) >> 2) & 3;
      const uint32_t sel = (d(1) >> 26) & 7;
      MapQueues mq{sel, ext, has(2) ? static_cast<double>((d(2) >> 2) & 0x3ffffff) : kNull, has(3) && has(4) ? Addr{true, d(3), d(4)} : Addr{}};
      (v.processes.empty() ? v.strays : v.processes.back().queues).push_back(std::move(mq));
    } else if (opcode == 0xa5) {
      v.chained = true;
    }
  }
  v.whole = dwords_seen == n[RlsNodeCol::wordCount];
  return v;
}

/** byMqdAddr of src/kfd/join.ts: (gpu, MQD address) -> (work index, MQD block). */
struct MqdAddrEntry {
  uint32_t gpu;
  uint64_t addr;
  size_t work;
  size_t block;
  bool operator<(const MqdAddrEntry& o) const { return gpu != o.gpu ? gpu < o.gpu : addr < o.addr; }
};

struct XccCount {
  double inst;
  double cp_slots;
  double active_cp;
  int hiq_active;
};

/** A node's HIQ/CP slots per Inst, in the order hqds shows the Insts, and its enabled SDMA RLCs. */
struct NodeCounts {
  std::vector<XccCount> read;
  double sdma = 0;
};

/** SnapshotNode of src/kfd/join.ts. */
struct Node {
  double node = kNull;
  uint32_t gpu = 0;
  double topo_row = kNull;
  double num_xcc = kNull;
  bool stopped = false;
  double active_hqds = kNull, active_sdma = kNull, cp_slots = kNull;
  std::vector<XccCount> per_xcc;
  double queues = 0;
  bool has_runlist = false;
  bool runlist_present = false, runlist_chained = false;
  double runlist_processes = 0, runlist_map_queues = 0;
};

class Joiner {
 public:
  explicit Joiner(const JoinInput& in) : in_(in) {}

  JoinTables Run() {
    // every queue of mqds and of sysfs at most: no Work is moved by a regrowth
    work_.reserve((in_.mqds ? in_.mqds->queues.size() / kMqdsQueueCols : 0) + (in_.proc_queues ? in_.proc_queues->size() / kJoinProcQueueCols : 0));
    IndexNodesOfGpus();
    AddMqdsQueues();
    if (in_.procs) MatchSysfs();
    for (size_t i = 0; i < work_.size(); ++i) {
      if (work_[i].from_mqds && work_[i].q.mqd_kind == kMqdSdma) sdma_work_.push_back(i);
    }
    IndexMqdAddresses();
    if (in_.hqds) MatchHqds();
    for (Work& w : work_) {
      std::stable_sort(w.q.hqds.begin(), w.q.hqds.end(), [](const Hqd& a, const Hqd& b) {
        if (a.inst != b.inst) return a.inst < b.inst;
        if (a.pipe != b.pipe) return a.pipe < b.pipe;
        return a.queue < b.queue;
      });
    }
    if (in_.rls) MatchRunlist();
    EmitProcesses();
    BuildNodes();
    return std::move(out_);
  }

 private:
  size_t TopoRows() const { return in_.topology ? in_.topology->size() / kJoinTopoCols : 0; }
  size_t ProcRows() const { return in_.procs->size() / kJoinProcCols; }
  const double* SysQueue(size_t row) const { return &(*in_.proc_queues)[row * kJoinProcQueueCols]; }

  void Warn(std::string w) { out_.warnings.push_back(std::move(w)); }

  size_t Add(Work w) {
    work_.push_back(std::move(w));
    by_pid_[work_.back().pid].push_back(work_.size() - 1);
    return work_.size() - 1;
  }

  double NodeOf(uint32_t gpu) const {
    auto it = node_of_gpu_.find(gpu);
    return it == node_of_gpu_.end() ? kNull : it->second;
  }

  void IndexNodesOfGpus() {
    for (size_t t = 0; t < TopoRows(); ++t) {
      const double* tr = &(*in_.topology)[t * kJoinTopoCols];
      node_of_gpu_[U32(tr[JoinTopologyCol::gpuId])] = tr[JoinTopologyCol::node];
    }
    if (!in_.hqds) return;
    for (size_t n = 0; n < in_.hqds->nodes.size() / kHqdsNodeCols; ++n) {
      const double* r = &in_.hqds->nodes[n * kHqdsNodeCols];
      node_of_gpu_.emplace(U32(r[HqdsNodeCol::gpuId]), r[HqdsNodeCol::node]);
    }
  }

  // ---- queues from mqds
  void AddMqdsQueues() {
    if (!in_.mqds) return;
    const MqdsRaw& m = *in_.mqds;
    for (size_t p = 0; p < m.procs.size() / kMqdsProcCols; ++p) {
      const double* pr = &m.procs[p * kMqdsProcCols];
      const size_t first = static_cast<size_t>(pr[MqdsProcCol::firstQueue]);
      const size_t count = static_cast<size_t>(pr[MqdsProcCol::queueCount]);
      // mqds lists newest first; keep creation order (oldest first)
      for (size_t i = 0; i < count; ++i) Add(FromMqds(pr[MqdsProcCol::pid], first + count - 1 - i, static_cast<double>(i)));
    }
  }

  Words Block(size_t b) const {
    const double* br = &in_.mqds->blocks[b * kMqdsBlockCols];
    return Words{in_.mqds->words.data() + static_cast<size_t>(br[MqdsBlockCol::wordOffset]), static_cast<size_t>(br[MqdsBlockCol::wordCount])};
  }

  Work FromMqds(double pid, size_t row, double order) {
    const double* qr = &in_.mqds->queues[row * kMqdsQueueCols];
    Work w;
    w.from_mqds = true;
    w.pid = pid;
    w.order = order;
    w.block_count = static_cast<size_t>(qr[MqdsQueueCol::blockCount]);
    Queue& q = w.q;
    q.qid_match = in_.procs ? kQidUnmatched : kQidNoSysfs;
    q.mqd_kind = static_cast<int>(qr[MqdsQueueCol::kind]);
    q.gpu_known = qr[MqdsQueueCol::gpuId] >= 0;
    q.gpu = q.gpu_known ? U32(qr[MqdsQueueCol::gpuId]) : 0;
    q.node = q.gpu_known ? NodeOf(q.gpu) : kNull;
    q.mqds_line = qr[MqdsQueueCol::line];
    if (w.block_count == 0) return w;
    const size_t first = static_cast<size_t>(qr[MqdsQueueCol::firstBlock]);
    const Words b = Block(first);
    if (q.mqd_kind == kMqdCompute || q.mqd_kind == kMqdDiq) {
      // a block that is not a compute MQD gives no field: numbers read from it would look like data
      for (size_t i = 0; i < w.block_count; ++i) {
        const Words bi = Block(first + i);
        const bool bad = ComputeHeaderBad(bi);
        if (bad) {
          Warn("pid " + Num(pid) + ": queue at mqds line " + Num(q.mqds_line) + ": MQD block " + Num(static_cast<double>(i)) + " has header 0x" + Hex(bi.p[0]) +
               ", not the compute MQD header 0xc0310800: its fields are unknown");
        }
        q.addrs.push_back(bad ? Addr{} : AddrOf(bi, 128, 129));
      }
      if (ComputeHeaderBad(b)) return w;
      if (b.Has(181)) q.aql = b.p[181] & 1;
      if (b.Has(145)) q.size_bytes = std::ldexp(4.0, static_cast<int>((b.p[145] & 0x3f) + 1));
      if (b.Has(133) && b.Has(134)) {
        q.has_priority = true;
        q.prio_pipe = b.p[133];
        q.prio_queue = b.p[134];
        q.level = PriorityLevel(q.prio_pipe, q.prio_queue);
      }
      if (b.Has(143)) q.doorbell = (b.p[143] >> 2) & 0x3ffffff;
      q.ring = AddrOf(b, 136, 137);
    } else if (q.mqd_kind == kMqdSdma) {
      if (b.Has(0)) q.size_bytes = std::ldexp(4.0, static_cast<int>((b.p[0] >> 1) & 0x3f));
      if (b.Has(22)) q.doorbell = (b.p[22] >> 2) & 0x3ffffff;
      q.ring = AddrOf(b, 1, 2);
      // dw126/127 (128-dword struct) or dw128/129 (130-dword, older headers); other lengths: unknown
      const int ids = SdmaIdsAt(b);
      w.engine_known = w.rlc_known = ids >= 0;
      w.engine = ids >= 0 ? b.p[ids] : 0;
      w.rlc = ids >= 0 ? b.p[ids + 1] : 0;
    }
    return w;
  }

  // ---- sysfs queue ids
  Work FromSysfs(double pid, size_t sys_row, double order) const {
    const double* sq = SysQueue(sys_row);
    Work w;
    w.pid = pid;
    w.order = order;
    Queue& q = w.q;
    q.qid = sq[JoinProcQueuesCol::qid];
    q.qid_match = kQidSysfsOnly;
    q.source = kSourceSysfs;
    q.sys_queue = static_cast<double>(sys_row);
    q.gpu_known = sq[JoinProcQueuesCol::gpuId] >= 0;
    q.gpu = q.gpu_known ? U32(sq[JoinProcQueuesCol::gpuId]) : 0;
    q.node = q.gpu_known ? NodeOf(q.gpu) : kNull;
    q.size_bytes = sq[JoinProcQueuesCol::sizeBytes] < 0 ? kNull : sq[JoinProcQueuesCol::sizeBytes];
    return w;
  }

  void MergeSysfs(Queue* q, size_t sys_row, int how) const {
    const double* sq = SysQueue(sys_row);
    q->qid = sq[JoinProcQueuesCol::qid];
    q->qid_match = how;
    q->source = kSourceDebugfsSysfs;
    // sysfs tells SDMA from SDMA-XGMI, mqds does not
    q->sys_queue = static_cast<double>(sys_row);
    if (sq[JoinProcQueuesCol::sizeBytes] >= 0) q->size_bytes = sq[JoinProcQueuesCol::sizeBytes];
  }

  /** sysfsClass / mqdClass in src/kfd/join.ts: 0 compute, 1 sdma, 2 other. */
  static int SysfsClass(double type_code) {
    if (type_code == 0 || type_code == 3) return 0;
    if (type_code == 1 || type_code == 4 || type_code == 5) return 1;
    return 2;
  }
  static int MqdClass(int kind) { return kind == kMqdCompute || kind == kMqdDiq ? 0 : kind == kMqdSdma ? 1 : 2; }

  struct QueueGroup {
    bool gpu_known;
    uint32_t gpu;
    int cls;
    std::vector<size_t> sys;
    std::vector<size_t> dbg;
  };

  /** sysProcs in src/kfd/join.ts: one entry per pid, at its first row, holding its last row. */
  std::vector<std::pair<double, size_t>> SysProcs() const {
    std::vector<std::pair<double, size_t>> procs;
    std::unordered_map<double, size_t> at;
    for (size_t p = 0; p < ProcRows(); ++p) {
      const double pid = (*in_.procs)[p * kJoinProcCols + JoinProcsCol::pid];
      auto it = at.find(pid);
      if (it == at.end()) {
        at.emplace(pid, procs.size());
        procs.emplace_back(pid, p);
      } else {
        procs[it->second].second = p;
      }
    }
    return procs;
  }

  void MatchSysfs() {
    for (const auto& [pid, row] : SysProcs()) {
      sys_pids_.push_back(pid);
      const double* pr = &(*in_.procs)[row * kJoinProcCols];
      const size_t first = static_cast<size_t>(pr[JoinProcsCol::firstQueue]);
      const size_t count = static_cast<size_t>(pr[JoinProcsCol::queueCount]);
      std::vector<size_t> mine;
      if (auto it = by_pid_.find(pid); it != by_pid_.end()) mine = it->second;
      if (in_.mqds && mine.empty() && count > 0) {
        Warn("process " + Num(pid) + ": sysfs lists " + Num(static_cast<double>(count)) + " queue(s) that debugfs mqds does not show (created or destroyed between the reads?)");
      }
      if (!in_.mqds || mine.empty()) {
        for (size_t s = first; s < first + count; ++s) Add(FromSysfs(pid, s, SysQueue(s)[JoinProcQueuesCol::qid]));
        continue;
      }
      MatchGroups(pid, GroupQueues(first, count, mine));
    }
  }

  std::vector<QueueGroup> GroupQueues(size_t first, size_t count, const std::vector<size_t>& mine) const {
    std::vector<QueueGroup> groups;
    auto group = [&](bool known, uint32_t gpu, int cls) -> QueueGroup& {
      for (QueueGroup& g : groups) {
        if (g.gpu_known == known && (!known || g.gpu == gpu) && g.cls == cls) return g;
      }
      groups.push_back(QueueGroup{known, gpu, cls, {}, {}});
      return groups.back();
    };
    for (size_t s = first; s < first + count; ++s) {
      const double* sq = SysQueue(s);
      const double gpu = sq[JoinProcQueuesCol::gpuId];
      group(gpu >= 0, gpu >= 0 ? U32(gpu) : 0, SysfsClass(sq[JoinProcQueuesCol::typeCode])).sys.push_back(s);
    }
    for (size_t i : mine) group(work_[i].q.gpu_known, work_[i].q.gpu, MqdClass(work_[i].q.mqd_kind)).dbg.push_back(i);
    return groups;
  }

  /** matchQidGroup in src/kfd/join.ts: first what earlier joins established, then creation order; warns when the counts differ. */
  void MatchGroups(double pid, std::vector<QueueGroup> groups) {
    static const char* const kClassNames[] = {"compute", "sdma", "other"};
    const std::unordered_map<std::string, double>* hints = nullptr;
    if (in_.qid_hints) {
      auto it = in_.qid_hints->find(pid);
      if (it != in_.qid_hints->end()) hints = &it->second;
    }
    for (QueueGroup& g : groups) {
      std::stable_sort(g.sys.begin(), g.sys.end(),
                       [&](size_t a, size_t b) { return SysQueue(a)[JoinProcQueuesCol::qid] < SysQueue(b)[JoinProcQueuesCol::qid]; });
      std::stable_sort(g.dbg.begin(), g.dbg.end(), [&](size_t a, size_t b) { return work_[a].order < work_[b].order; });
      // 1. what earlier joins established (the same MQD/ring, that id still in sysfs)
      std::vector<size_t> sys = g.sys;
      std::vector<size_t> dbg;
      if (hints) {
        for (size_t i : g.dbg) {
          Queue& q = work_[i].q;
          auto h = hints->find(DebugfsIdentity(!q.addrs.empty(), q.addrs.empty() ? Addr{} : q.addrs[0], q.ring, q.mqds_line));
          auto s = h == hints->end() ? sys.end()
                                     : std::find_if(sys.begin(), sys.end(), [&](size_t r) { return SysQueue(r)[JoinProcQueuesCol::qid] == h->second; });
          if (s == sys.end()) {
            dbg.push_back(i);
            continue;
          }
          MergeSysfs(&q, *s, kQidHistory);
          sys.erase(s);
        }
      } else {
        dbg = g.dbg;
      }
      // 2. the rest by creation order; with different counts only the oldest pairs, as a queue
      //    created between the sysfs and the debugfs read is the newest on its side
      const size_t n = std::min(sys.size(), dbg.size());
      const int how = sys.size() == 1 && dbg.size() == 1 ? kQidUnique : kQidCreationOrder;
      for (size_t i = 0; i < n; ++i) MergeSysfs(&work_[dbg[i]].q, sys[i], how);
      if (sys.size() == dbg.size()) continue;
      Warn("process " + Num(pid) + ": " + Num(static_cast<double>(g.sys.size())) + " " + kClassNames[g.cls] + " queue(s) on gpu " +
           (g.gpu_known ? Hex(g.gpu) : "?") + " in sysfs but " + Num(static_cast<double>(g.dbg.size())) +
           " in mqds (created or destroyed between the reads?)");
      // sysfs queues debugfs did not show yet: listed from sysfs alone
      for (size_t i = n; i < sys.size(); ++i) Add(FromSysfs(pid, sys[i], kLateOrder + SysQueue(sys[i])[JoinProcQueuesCol::qid]));
    }
  }

  // ---- HQD slots -> queues
  /**
   * A sorted vector rather than a hash map: ~130 entries on an 8-GPU host, built once, looked up
   * a few dozen times; one allocation instead of one per entry. A later queue with the same
   * address wins, as Map.set does in the TS join.
   */
  void IndexMqdAddresses() {
    for (size_t i = 0; i < work_.size(); ++i) {
      const Queue& q = work_[i].q;
      if (!q.gpu_known) continue;  // a slot is looked up under its node's gpu_id, never unknown
      for (size_t b = 0; b < q.addrs.size(); ++b) {
        if (q.addrs[b].known) by_mqd_addr_.push_back(MqdAddrEntry{q.gpu, q.addrs[b].Key(), i, b});
      }
    }
    std::stable_sort(by_mqd_addr_.begin(), by_mqd_addr_.end());
    // keep the last of equal keys
    std::vector<MqdAddrEntry> unique;
    unique.reserve(by_mqd_addr_.size());
    for (size_t i = 0; i < by_mqd_addr_.size(); ++i) {
      const bool last = i + 1 == by_mqd_addr_.size() || by_mqd_addr_[i] < by_mqd_addr_[i + 1];
      if (last) unique.push_back(by_mqd_addr_[i]);
    }
    by_mqd_addr_.swap(unique);
  }

  const MqdAddrEntry* FindMqd(uint32_t gpu, const Addr& a) const {
    const MqdAddrEntry key{gpu, a.Key(), 0, 0};
    auto it = std::lower_bound(by_mqd_addr_.begin(), by_mqd_addr_.end(), key);
    return it != by_mqd_addr_.end() && it->gpu == gpu && it->addr == key.addr ? &*it : nullptr;
  }

  void PushUnmatched(double node, uint32_t gpu, const Slot& s, bool likely_stale) {
    using C = JoinUnmatchedHqdsCol;
    const bool sdma = s.kind == kHqdSdma;
    double* row = AppendRow(&out_.unmatched_hqds, C::kCount);
    row[C::node] = node;
    row[C::gpuId] = static_cast<double>(gpu);
    row[C::kind] = sdma ? 1.0 : 0.0;
    row[C::inst] = s.inst;
    row[C::pipe] = s.pipe;
    row[C::queue] = s.queue;
    row[C::mqdLo] = s.mqd.known ? static_cast<double>(s.mqd.lo) : kNull;
    row[C::mqdHi] = static_cast<double>(s.mqd.hi);
    row[C::ringLo] = s.ring.known ? static_cast<double>(s.ring.lo) : kNull;
    row[C::ringHi] = static_cast<double>(s.ring.hi);
    row[C::vmid] = s.vmid;
    row[C::busy] = Tri(s.busy);
    row[C::likelyStale] = sdma && likely_stale ? 1.0 : 0.0;
  }

  /** The Insts a node's HIQ/CP slots show, sorted, and whether a CP slot is active. */
  void NodeInsts(size_t first, size_t count, std::vector<double>* insts, bool* cp_active) const {
    const HqdsRaw& h = *in_.hqds;
    insts->clear();
    *cp_active = false;
    for (size_t row = first; row < first + count; ++row) {
      const double* sr = &h.slots[row * kHqdsSlotCols];
      if (sr[HqdsSlotCol::kind] == kHqdSdma) continue;
      const double inst = sr[HqdsSlotCol::inst] < 0 ? 0 : sr[HqdsSlotCol::inst];
      // a node has a few Insts and ~25 slots on each: dedupe before sorting
      if (std::find(insts->begin(), insts->end(), inst) == insts->end()) insts->push_back(inst);
      // CP_HQD_ACTIVE is register 2
      if (sr[HqdsSlotCol::kind] == kHqdCp && sr[HqdsSlotCol::wordCount] > 2 &&
          (h.words[static_cast<size_t>(sr[HqdsSlotCol::wordOffset]) + 2] & 1)) {
        *cp_active = true;
      }
    }
    std::sort(insts->begin(), insts->end());
  }

  /**
   * One pass over every slot: the matching of "HQD slots -> queues", and the per-XCC counts that
   * buildNodes reports later (kept in counts_, so that its warnings keep their place).
   */
  void MatchHqds() {
    const HqdsRaw& h = *in_.hqds;
    std::unordered_set<uint32_t> gpus_with_queues;
    for (const Work& w : work_) {
      if (w.q.gpu_known) gpus_with_queues.insert(w.q.gpu);
    }
    // a GPU where mqds (read whole) shows no queue and no CP slot is active is idle: an SDMA RLC
    // still enabled there is most likely left over, not a queue mqds missed
    const bool mqds_whole = in_.mqds && !Partial(*in_.mqds);
    std::vector<double> insts;
    counts_.resize(h.nodes.size() / kHqdsNodeCols);
    for (size_t n = 0; n < h.nodes.size() / kHqdsNodeCols; ++n) {
      const double* nr = &h.nodes[n * kHqdsNodeCols];
      const size_t first = static_cast<size_t>(nr[HqdsNodeCol::firstSlot]);
      const size_t count = static_cast<size_t>(nr[HqdsNodeCol::slotCount]);
      const uint32_t gpu = U32(nr[HqdsNodeCol::gpuId]);
      const double node = nr[HqdsNodeCol::node];
      bool cp_active = false;
      NodeInsts(first, count, &insts, &cp_active);
      const bool idle = mqds_whole && !gpus_with_queues.count(gpu) && !cp_active;
      NodeCounts& c = counts_[n];
      for (size_t row = first; row < first + count; ++row) {
        Slot s = DecodeSlot(h, row);
        Count(&c, s);
        if (s.kind == kHqdCp) {
          MatchCpSlot(node, gpu, s, insts);
        } else if (s.kind == kHqdSdma && s.active == 1) {
          MatchSdmaSlot(node, gpu, s, idle);
        }
      }
    }
  }

  /** What buildNodes counts of one slot: SDMA RLCs enabled, CP slots and active ones, HIQ per Inst. */
  static void Count(NodeCounts* c, const Slot& s) {
    if (s.kind == kHqdSdma) {
      if (s.active == -1) c->sdma = kNull;
      else if (s.active == 1 && c->sdma != kNull) c->sdma += 1;
      return;
    }
    auto x = std::find_if(c->read.begin(), c->read.end(), [&](const XccCount& r) { return r.inst == s.inst; });
    if (x == c->read.end()) x = c->read.insert(c->read.end(), XccCount{s.inst, 0, 0, 0});
    if (s.kind == kHqdHiq) {
      x->hiq_active = x->hiq_active == 1 || s.active == 1 ? 1 : x->hiq_active == -1 || s.active == -1 ? -1 : 0;
    } else {
      x->cp_slots += 1;
      if (s.active == -1) x->active_cp = kNull;
      else if (s.active == 1 && x->active_cp != kNull) x->active_cp += 1;
    }
  }

  void MatchCpSlot(double node, uint32_t gpu, Slot& s, const std::vector<double>& insts) {
    const auto* hit = s.mqd.known && s.mqd.Key() != 0 ? FindMqd(gpu, s.mqd) : nullptr;
    if (!hit && s.active != 1) return;
    AddDetails(&s);
    if (!hit) {
      PushUnmatched(node, gpu, s, false);
      return;
    }
    Work& w = work_[hit->work];
    w.q.hqds.push_back(Hqd{s.inst, s.pipe, s.queue, s.active, s.busy, static_cast<double>(hit->block)});
    const double pos = static_cast<double>(std::find(insts.begin(), insts.end(), s.inst) - insts.begin());
    if (s.active == 1 && pos != static_cast<double>(hit->block)) {
      Warn("node " + Num(node) + ": HQD Inst " + Num(s.inst) + " Pipe " + Num(s.pipe) + " Queue " + Num(s.queue) + " holds MQD block " +
           Num(static_cast<double>(hit->block)) + " of pid " + Num(w.pid) + "'s queue, expected block " + Num(pos));
    }
  }

  void MatchSdmaSlot(double node, uint32_t gpu, Slot& s, bool idle) {
    AddDetails(&s);
    std::vector<size_t> on_gpu;
    for (size_t i : sdma_work_) {
      if (work_[i].q.gpu_known && work_[i].q.gpu == gpu) on_gpu.push_back(i);
    }
    Work* w = nullptr;
    for (size_t i : on_gpu) {
      const Work& x = work_[i];
      if (x.engine_known && x.rlc_known && x.engine == s.pipe && x.rlc == s.queue) {
        w = &work_[i];
        break;
      }
    }
    int by = 0;
    if (w && s.ring.known && w->q.ring.known && !w->q.ring.Same(s.ring)) {
      Warn("node " + Num(node) + ": SDMA engine " + Num(s.pipe) + " RLC " + Num(s.queue) + " ring " + FormatAddress(s.ring.lo, s.ring.hi, 8) +
           " differs from its MQD's ring " + FormatAddress(w->q.ring.lo, w->q.ring.hi, 8));
    }
    if (!w && s.ring.known) {
      Work* only = nullptr;
      size_t matches = 0;
      for (size_t i : on_gpu) {
        if (work_[i].q.ring.Same(s.ring)) {
          only = &work_[i];
          ++matches;
        }
      }
      if (matches == 1) {
        w = only;
        by = 1;
      }
    }
    if (w) {
      w->q.sdma = SdmaSlot{true, s.pipe, s.queue, s.active, s.busy, by};
    } else {
      PushUnmatched(node, gpu, s, idle);
    }
  }

  // ---- runlist
  bool RunlistKeyKnown(const Work& w) const {
    if (!w.from_mqds) return false;
    if (MqdClass(w.q.mqd_kind) == 0) return !w.q.addrs.empty() && w.q.addrs[0].known;
    return w.q.mqd_kind == kMqdSdma && w.engine_known && w.q.doorbell != kNull;
  }

  /** headerPasid in src/kfd/join.ts: `0x..` or decimal, a real PASID when not the pid again. */
  static bool HeaderPasid(double pid, const std::string& field, double* out) {
    double v = 0;
    if (field.size() > 2 && field[0] == '0' && field[1] == 'x') {
      for (size_t i = 2; i < field.size(); ++i) v = v * 16 + (field[i] <= '9' ? field[i] - '0' : field[i] - 'a' + 10);
    } else {
      for (char c : field) v = v * 10 + (c - '0');
    }
    *out = v;
    return v != pid && v > 0;
  }

  std::unordered_map<double, double> PidsOfPasids() const {
    std::unordered_map<double, double> pid_of_pasid;
    if (in_.mqds) {
      const MqdsRaw& m = *in_.mqds;
      for (size_t p = 0; p < m.procs.size() / kMqdsProcCols && p < m.pasids.size(); ++p) {
        double v;
        const double pid = m.procs[p * kMqdsProcCols + MqdsProcCol::pid];
        if (HeaderPasid(pid, m.pasids[p], &v)) pid_of_pasid[v] = pid;
      }
    }
    if (in_.procs) {
      for (size_t p = 0; p < ProcRows(); ++p) {
        const double* pr = &(*in_.procs)[p * kJoinProcCols];
        if (pr[JoinProcsCol::pasid] > 0) pid_of_pasid.emplace(pr[JoinProcsCol::pasid], pr[JoinProcsCol::pid]);
      }
    }
    return pid_of_pasid;
  }

  void MatchRunlist() {
    const RlsRaw& r = *in_.rls;
    // a real PASID in the mqds header (older kernels) or in sysfs names the process of a MAP_PROCESS
    const std::unordered_map<double, double> pid_of_pasid = PidsOfPasids();
    for (size_t n = 0; n < r.nodes.size() / kRlsNodeCols; ++n) rls_.push_back(DecodeRlsNode(r, n));
    std::unordered_map<uint32_t, const RlsView*> rls_gpus;
    for (const RlsView& v : rls_) rls_gpus[v.gpu] = &v;
    for (Work& w : work_) {
      if (w.q.source == kSourceSysfs || !w.q.gpu_known) continue;
      auto it = rls_gpus.find(w.q.gpu);
      // "not found below" means "not in the runlist" only when the node's runlist was read to its
      // end and the queue has what the runlist is matched by
      w.q.in_runlist = it != rls_gpus.end() && it->second->whole && RunlistKeyKnown(w) ? 0 : -1;
    }
    for (const RlsView& node : rls_) {
      // MAP_QUEUES before any MAP_PROCESS belong to no known process (pasid -1)
      std::vector<const MapProcess*> groups;
      for (const MapProcess& mp : node.processes) groups.push_back(&mp);
      MapProcess strays{kNull, 0, node.strays};
      if (!node.strays.empty()) groups.push_back(&strays);
      for (const MapProcess* mp : groups) MatchMapProcess(node, *mp, pid_of_pasid);
    }
  }

  void PushUnmatchedRunlist(const RlsView& node, const MapProcess& mp, const MapQueues& mq) {
    out_.runlist_engines.push_back(EngineName(mq.sel, mq.ext));
    using C = JoinUnmatchedRunlistCol;
    double* row = AppendRow(&out_.unmatched_runlist, C::kCount);
    row[C::gpuId] = static_cast<double>(node.gpu);
    row[C::pasid] = mp.pasid >= 0 ? mp.pasid : kNull;
    row[C::engine] = static_cast<double>(out_.runlist_engines.size() - 1);
    row[C::doorbell] = mq.doorbell;
    row[C::mqdLo] = mq.mqd.known ? static_cast<double>(mq.mqd.lo) : kNull;
    row[C::mqdHi] = static_cast<double>(mq.mqd.hi);
  }

  void MatchMapProcess(const RlsView& node, const MapProcess& mp, const std::unordered_map<double, double>& pid_of_pasid) {
    double by_pasid = kNull;
    bool by_pasid_known = false;
    if (mp.pasid >= 0) {
      auto it = pid_of_pasid.find(mp.pasid);
      if (it != pid_of_pasid.end()) by_pasid = it->second, by_pasid_known = true;
    }
    bool pid_known = by_pasid_known;
    double pid = by_pasid;
    bool crossed = false;
    for (const MapQueues& mq : mp.queues) {
      if (!mq.Compute()) continue;
      const auto* hit = mq.mqd.known ? FindMqd(node.gpu, mq.mqd) : nullptr;
      if (!hit || hit->block != 0) {
        PushUnmatchedRunlist(node, mp, mq);
        continue;
      }
      Work& w = work_[hit->work];
      w.q.in_runlist = 1;
      if (by_pasid_known && w.pid != by_pasid && !crossed) {
        crossed = true;
        Warn("node " + Num(node.node) + ": runlist MAP_PROCESS pasid " + Num(mp.pasid) + " is pid " + Num(by_pasid) + "'s (its PASID) but maps pid " +
             Num(w.pid) + "'s queue " + FormatAddress(mq.mqd.lo, mq.mqd.hi, 0));
      }
      if (!pid_known) pid = w.pid, pid_known = true;
    }
    for (const MapQueues& mq : mp.queues) {
      if (mq.Compute()) continue;
      uint32_t engine = 0;
      const bool sdma = mq.SdmaEngine(&engine);
      // doorbell indexes are device-wide on real KFD; the engine narrows it when a synthetic or
      // odd dump repeats them, the process (from its PASID or compute queues) narrows it further
      Work* only = nullptr;
      size_t cands = 0;
      for (size_t i : sdma_work_) {
        Work& w = work_[i];
        if (w.q.gpu_known && w.q.gpu == node.gpu && mq.doorbell != kNull && w.q.doorbell == mq.doorbell && w.engine_known && sdma && w.engine == engine &&
            (!pid_known || w.pid == pid)) {
          only = &w;
          ++cands;
        }
      }
      if (cands == 1) {
        only->q.in_runlist = 1;
        if (!pid_known) pid = only->pid, pid_known = true;
      } else {
        PushUnmatchedRunlist(node, mp, mq);
      }
    }
    if (!pid_known || mp.pasid < 0) return;
    double* row = AppendRow(&runlist_of_[pid], JoinRunlistCol::kCount);
    row[JoinRunlistCol::gpuId] = static_cast<double>(node.gpu);
    row[JoinRunlistCol::pasid] = mp.pasid;
    row[JoinRunlistCol::numQueues] = mp.num_queues;
    row[JoinRunlistCol::mappedQueues] = static_cast<double>(mp.queues.size());
    // MAP_PROCESS counts every queue of the process on the device, mapped or not (0 under a debugger)
    if (in_.mqds && mp.num_queues > 0) {
      double shown = 0;
      for (const Work& w : work_) shown += w.pid == pid && w.from_mqds && w.q.gpu_known && w.q.gpu == node.gpu ? 1 : 0;
      if (shown != mp.num_queues) {
        Warn("pid " + Num(pid) + ": runlist MAP_PROCESS on gpu " + Hex(node.gpu) + " counts " + Num(mp.num_queues) + " queue(s), mqds shows " + Num(shown) +
             " (created or destroyed between the reads, or mqds cut?)");
      }
    }
  }

  // ---- processes
  void EmitQueue(const Work& w) {
    const Queue& q = w.q;
    const double first_addr = static_cast<double>(out_.addresses.size() / kJoinAddressCols);
    for (const Addr& a : q.addrs) {
      double* row = AppendRow(&out_.addresses, JoinAddressesCol::kCount);
      row[JoinAddressesCol::lo] = a.known ? a.lo : kNull;
      row[JoinAddressesCol::hi] = a.hi;
    }
    const double first_hqd = static_cast<double>(out_.hqds.size() / kJoinHqdCols);
    for (const Hqd& h : q.hqds) {
      using H = JoinHqdsCol;
      double* row = AppendRow(&out_.hqds, H::kCount);
      row[H::inst] = h.inst;
      row[H::pipe] = h.pipe;
      row[H::queue] = h.queue;
      row[H::active] = Tri(h.active);
      row[H::busy] = Tri(h.busy);
      row[H::xcc] = h.xcc;
    }
    using C = JoinQueuesCol;
    double* row = AppendRow(&out_.queues, C::kCount);
    row[C::pid] = w.pid;
    row[C::qid] = q.qid;
    row[C::qidMatch] = q.qid_match;
    row[C::source] = q.source;
    row[C::mqdKind] = q.mqd_kind;
    row[C::sysQueue] = q.sys_queue;
    row[C::aql] = Tri(q.aql);
    row[C::gpuId] = q.gpu_known ? static_cast<double>(q.gpu) : kNull;
    row[C::node] = q.node;
    row[C::sizeBytes] = q.size_bytes;
    row[C::priorityPipe] = q.has_priority ? static_cast<double>(q.prio_pipe) : kNull;
    row[C::priorityQueue] = q.prio_queue;
    row[C::priorityLevel] = q.level;
    row[C::doorbell] = q.doorbell;
    row[C::ringLo] = q.ring.known ? static_cast<double>(q.ring.lo) : kNull;
    row[C::ringHi] = q.ring.hi;
    row[C::firstAddress] = first_addr;
    row[C::addressCount] = static_cast<double>(q.addrs.size());
    row[C::firstHqd] = first_hqd;
    row[C::hqdCount] = static_cast<double>(q.hqds.size());
    row[C::sdmaEngine] = q.sdma.set ? q.sdma.engine : kNull;
    row[C::sdmaRlc] = q.sdma.rlc;
    row[C::sdmaActive] = Tri(q.sdma.active);
    row[C::sdmaBusy] = Tri(q.sdma.busy);
    row[C::sdmaMatchedBy] = q.sdma.matched_by;
    row[C::inRunlist] = Tri(q.in_runlist);
    row[C::mqdsLine] = q.mqds_line;
  }

  void EmitProcesses() {
    // a process KFD knows without queues is still a process (the kernel prints its header alone)
    std::vector<double> pids;
    for (const auto& kv : by_pid_) pids.push_back(kv.first);
    pids.insert(pids.end(), sys_pids_.begin(), sys_pids_.end());
    if (in_.mqds) {
      for (size_t p = 0; p < in_.mqds->procs.size() / kMqdsProcCols; ++p) pids.push_back(in_.mqds->procs[p * kMqdsProcCols + MqdsProcCol::pid]);
    }
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    for (double pid : pids) {
      std::vector<size_t> none;  // empty: no allocation
      auto found = by_pid_.find(pid);
      // sorted in place: by_pid_ is not read after this
      std::vector<size_t>& mine = found != by_pid_.end() ? found->second : none;
      std::stable_sort(mine.begin(), mine.end(), [&](size_t a, size_t b) {
        const double qa = work_[a].q.qid < 0 ? kInfinity : work_[a].q.qid;
        const double qb = work_[b].q.qid < 0 ? kInfinity : work_[b].q.qid;
        if (qa != qb) return qa < qb;
        return work_[a].order < work_[b].order;
      });
      const double first_queue = static_cast<double>(out_.queues.size() / kJoinQueueCols);
      for (size_t i : mine) EmitQueue(work_[i]);
      const double first_runlist = static_cast<double>(out_.runlist.size() / kJoinRunlistCols);
      double runlist_rows = 0;
      if (auto it = runlist_of_.find(pid); it != runlist_of_.end()) {
        out_.runlist.insert(out_.runlist.end(), it->second.begin(), it->second.end());
        runlist_rows = static_cast<double>(it->second.size() / kJoinRunlistCols);
      }
      double* row = AppendRow(&out_.processes, JoinProcessesCol::kCount);
      row[JoinProcessesCol::pid] = pid;
      row[JoinProcessesCol::firstQueue] = first_queue;
      row[JoinProcessesCol::queueCount] = static_cast<double>(mine.size());
      row[JoinProcessesCol::firstRunlist] = first_runlist;
      row[JoinProcessesCol::runlistCount] = runlist_rows;
    }
  }

  // ---- nodes (buildNodes in src/kfd/join.ts)
  Node& GetNode(uint32_t gpu, double node) {
    auto it = node_at_.find(gpu);
    if (it != node_at_.end()) return nodes_[it->second];
    node_at_.emplace(gpu, nodes_.size());
    Node n;
    n.node = node;
    n.gpu = gpu;
    nodes_.push_back(std::move(n));
    return nodes_.back();
  }

  /** xccsOf: topology num_xcc, else the most MQD blocks of a compute queue on the GPU (0 = null). */
  std::pair<double, const char*> XccsOf(const Node& n) const {
    if (n.num_xcc != kNull) return {n.num_xcc, "topology num_xcc"};
    auto it = blocks_on_.find(n.gpu);
    return {it == blocks_on_.end() || it->second == 0 ? kNull : it->second, "MQD blocks per compute queue"};
  }

  static XccCount UnknownXcc(double inst) { return XccCount{inst, kNull, kNull, -1}; }

  bool SdmaCut(double line) const {
    const std::string cut = kSdmaCutMessage;
    for (const ParseIssue& i : in_.hqds->issues) {
      if (static_cast<double>(i.line) == line && i.message.size() >= cut.size() && i.message.compare(i.message.size() - cut.size(), cut.size(), cut) == 0) return true;
    }
    return false;
  }

  void CountHqdsNode(size_t row) {
    const double* hr = &in_.hqds->nodes[row * kHqdsNodeCols];
    const uint32_t gpu = U32(hr[HqdsNodeCol::gpuId]);
    Node& n = GetNode(gpu, hr[HqdsNodeCol::node]);
    n.stopped = hr[HqdsNodeCol::stopped] == 1;
    if (n.stopped) {
      // the scheduler is stopped: nothing is mapped, and hqds prints no slot
      n.active_hqds = n.active_sdma = n.cp_slots = 0;
      return;
    }
    const NodeCounts& c = counts_[row];
    insts_in_hqds_[gpu] = static_cast<double>(c.read.size());
    FinishHqdsNode(&n, hr, c.read, c.sdma);
  }

  void FinishHqdsNode(Node* n, const double* hr, const std::vector<XccCount>& read, double sdma) {
    const auto want = XccsOf(*n);
    auto shows = [&](double inst) { return std::any_of(read.begin(), read.end(), [&](const XccCount& c) { return c.inst == inst; }); };
    std::vector<double> missing;
    for (double i = 0; want.first != kNull && i < want.first; ++i) {
      if (!shows(i)) missing.push_back(i);
    }
    n->per_xcc = read;
    for (double i : missing) n->per_xcc.push_back(UnknownXcc(i));
    std::stable_sort(n->per_xcc.begin(), n->per_xcc.end(), [](const XccCount& a, const XccCount& b) { return a.inst < b.inst; });
    // a node's dump ends with its SDMA RLCs; the parser says when a dump was cut before them
    n->active_sdma = SdmaCut(hr[HqdsNodeCol::line]) ? kNull : sdma;
    double cp = 0, active = 0;
    bool active_unknown = false;
    for (const XccCount& x : read) {
      cp += x.cp_slots;
      if (x.active_cp == kNull) active_unknown = true;
      else active += x.active_cp;
    }
    n->cp_slots = missing.empty() ? cp : kNull;
    n->active_hqds = missing.empty() && !active_unknown ? active : kNull;
    if (!missing.empty()) {
      std::vector<double> shown;
      for (const XccCount& x : read) shown.push_back(x.inst);
      std::sort(shown.begin(), shown.end());
      Warn("node " + Num(hr[HqdsNodeCol::node]) + " (gpu " + Hex(n->gpu) + "): hqds shows Inst " + (shown.empty() ? "none" : Join(shown)) + " of " + Num(want.first) +
           " XCC(s) (" + want.second + "): Inst " + Join(missing) + " unknown");
    } else if (n->num_xcc != kNull && static_cast<double>(read.size()) != n->num_xcc) {
      Warn("node " + Num(hr[HqdsNodeCol::node]) + " (gpu " + Hex(n->gpu) + "): hqds shows " + Num(static_cast<double>(read.size())) + " XCC(s) but topology says num_xcc " + Num(n->num_xcc));
    }
  }

  static std::string Join(const std::vector<double>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + Num(v[i]);
    return s;
  }

  void CheckMqdBlocks() {
    for (const Work& w : work_) {
      if (!w.q.gpu_known) continue;
      auto at = node_at_.find(w.q.gpu);
      Node& n = at != node_at_.end() ? nodes_[at->second] : GetNode(w.q.gpu, w.q.node);
      n.queues += 1;
      // one MQD block per XCC: checked against topology, else against the Insts hqds shows
      if (!w.from_mqds || w.q.mqd_kind != kMqdCompute || w.block_count == 0) continue;
      const double blocks = static_cast<double>(w.block_count);
      auto insts = insts_in_hqds_.find(w.q.gpu);
      auto head = [&]() { return "pid " + Num(w.pid) + ": compute queue at mqds line " + Num(w.q.mqds_line) + " has " + Num(blocks) + " MQD block(s), gpu " + Hex(w.q.gpu); };
      if (n.num_xcc != kNull && blocks != n.num_xcc) {
        Warn(head() + " has num_xcc " + Num(n.num_xcc));
      } else if (n.num_xcc == kNull && insts != insts_in_hqds_.end() && insts->second > 0 && blocks != insts->second) {
        Warn(head() + " shows " + Num(insts->second) + " Inst(s) in hqds");
      }
    }
  }

  /** nodes hqds should show but does not: their slots are unknown, not idle */
  void MarkNodesHqdsMisses() {
    std::unordered_set<uint32_t> shown;
    for (size_t r = 0; r < in_.hqds->nodes.size() / kHqdsNodeCols; ++r) shown.insert(U32(in_.hqds->nodes[r * kHqdsNodeCols + HqdsNodeCol::gpuId]));
    for (Node& n : nodes_) {
      if (shown.count(n.gpu)) continue;
      const double want = XccsOf(n).first;
      n.per_xcc.clear();
      for (double i = 0; want != kNull && i < want; ++i) n.per_xcc.push_back(UnknownXcc(i));
      double listed = 0;
      for (const Work& w : work_) listed += w.from_mqds && w.q.gpu_known && w.q.gpu == n.gpu ? 1 : 0;
      const std::string node = n.node == kNull ? "?" : Num(n.node);
      Warn(listed > 0 ? "gpu " + Hex(n.gpu) + " (node " + node + "): mqds lists " + Num(listed) + " queue(s) on it but hqds does not show it: their HQD slots are unknown"
                      : "node " + node + " (gpu " + Hex(n.gpu) + "): in the topology but not in hqds: its HQD slots are unknown");
    }
  }

  void BuildNodes() {
    for (size_t t = 0; t < TopoRows(); ++t) {
      const double* tr = &(*in_.topology)[t * kJoinTopoCols];
      Node& n = GetNode(U32(tr[JoinTopologyCol::gpuId]), tr[JoinTopologyCol::node]);
      n.topo_row = static_cast<double>(t);
      n.num_xcc = tr[JoinTopologyCol::numXcc];
    }
    for (const Work& w : work_) {
      if (!w.from_mqds || w.q.mqd_kind != kMqdCompute || !w.q.gpu_known) continue;
      double& most = blocks_on_[w.q.gpu];
      most = std::max(most, static_cast<double>(w.block_count));
    }
    if (in_.hqds) {
      for (size_t r = 0; r < in_.hqds->nodes.size() / kHqdsNodeCols; ++r) CountHqdsNode(r);
    }
    for (const RlsView& r : rls_) {
      Node& n = GetNode(r.gpu, r.node);
      n.has_runlist = true;
      n.runlist_present = r.has_runlist;
      n.runlist_processes = static_cast<double>(r.processes.size());
      double map_queues = static_cast<double>(r.strays.size());
      for (const MapProcess& p : r.processes) map_queues += static_cast<double>(p.queues.size());
      n.runlist_map_queues = map_queues;
      n.runlist_chained = r.chained;
    }
    CheckMqdBlocks();
    if (in_.hqds) MarkNodesHqdsMisses();
    EmitNodes();
  }

  void EmitNodes() {
    std::vector<const Node*> sorted;
    for (const Node& n : nodes_) sorted.push_back(&n);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Node* a, const Node* b) {
      const double na = a->node == kNull ? kInfinity : a->node;
      const double nb = b->node == kNull ? kInfinity : b->node;
      if (na != nb) return na < nb;
      return Hex(a->gpu) < Hex(b->gpu);
    });
    for (const Node* n : sorted) {
      const double first_xcc = static_cast<double>(out_.xccs.size() / kJoinXccCols);
      for (const XccCount& x : n->per_xcc) {
        double* row = AppendRow(&out_.xccs, JoinXccsCol::kCount);
        row[JoinXccsCol::inst] = x.inst;
        row[JoinXccsCol::cpSlots] = x.cp_slots;
        row[JoinXccsCol::activeCp] = x.active_cp;
        row[JoinXccsCol::hiqActive] = Tri(x.hiq_active);
      }
      EmitNode(*n, first_xcc);
    }
  }

  void EmitNode(const Node& n, double first_xcc) {
    using C = JoinNodesCol;
    double* row = AppendRow(&out_.nodes, C::kCount);
    row[C::node] = n.node;
    row[C::gpuId] = static_cast<double>(n.gpu);
    row[C::topologyRow] = n.topo_row;
    row[C::numXcc] = n.num_xcc;
    row[C::stopped] = n.stopped ? 1.0 : 0.0;
    row[C::activeHqds] = n.active_hqds;
    row[C::activeSdma] = n.active_sdma;
    row[C::cpSlots] = n.cp_slots;
    row[C::firstXcc] = first_xcc;
    row[C::xccCount] = static_cast<double>(n.per_xcc.size());
    row[C::queues] = n.queues;
    row[C::runlistPresent] = n.has_runlist ? (n.runlist_present ? 1.0 : 0.0) : kNull;
    row[C::runlistProcesses] = n.runlist_processes;
    row[C::runlistMapQueues] = n.runlist_map_queues;
    row[C::runlistChained] = n.runlist_chained ? 1.0 : 0.0;
  }

  const JoinInput& in_;
  JoinTables out_;
  std::vector<Work> work_;
  std::unordered_map<double, std::vector<size_t>> by_pid_;
  std::vector<double> sys_pids_;
  std::unordered_map<uint32_t, double> node_of_gpu_;
  std::vector<MqdAddrEntry> by_mqd_addr_;
  std::vector<size_t> sdma_work_;
  /** per hqds node row, from MatchHqds */
  std::vector<NodeCounts> counts_;
  std::vector<RlsView> rls_;
  std::unordered_map<double, std::vector<double>> runlist_of_;
  std::vector<Node> nodes_;
  std::unordered_map<uint32_t, size_t> node_at_;
  std::unordered_map<uint32_t, double> blocks_on_;
  std::unordered_map<uint32_t, double> insts_in_hqds_;
};

}  // namespace

std::string FormatAddress(uint32_t lo, uint32_t hi, unsigned shift) {
  const uint64_t v = (static_cast<uint64_t>(hi) << 32) | lo;
  char b[40];
  if (v == 0) return "0x0";
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  // only shifts of whole hex digits are used (ring bases: 8); the value may pass 64 bits
  return std::string(b) + std::string(shift / 4, '0');
}

const char* CheckJoinSysfs(const JoinInput& in) {
  auto whole = [](double v) { return v >= 0 && v == std::floor(v) && v < 9007199254740992.0; };
  if (in.topology && in.topology->size() % kJoinTopoCols != 0) return "topology: not whole rows";
  if (!in.procs) return nullptr;
  if (in.procs->size() % kJoinProcCols != 0) return "procs: not whole rows";
  const size_t queue_rows = in.proc_queues ? in.proc_queues->size() / kJoinProcQueueCols : 0;
  if (in.proc_queues && in.proc_queues->size() % kJoinProcQueueCols != 0) return "procQueues: not whole rows";
  for (size_t p = 0; p < in.procs->size(); p += kJoinProcCols) {
    const double first = (*in.procs)[p + JoinProcsCol::firstQueue];
    const double count = (*in.procs)[p + JoinProcsCol::queueCount];
    if (!whole(first) || !whole(count) || first + count > static_cast<double>(queue_rows)) return "procs: queue rows out of range";
  }
  return nullptr;
}

JoinTables JoinQueues(const JoinInput& in) { return Joiner(in).Run(); }

void LearnQidHints(const JoinTables& t, QidHints* hints) {
  using C = JoinQueuesCol;
  using A = JoinAddressesCol;
  for (size_t o = 0; o + kJoinQueueCols <= t.queues.size(); o += kJoinQueueCols) {
    const double* q = &t.queues[o];
    if (q[C::qid] < 0 || q[C::source] == kSourceSysfs) continue;
    const bool has_blocks = q[C::addressCount] > 0;
    Addr addr0;
    if (has_blocks) {
      const double* a = &t.addresses[static_cast<size_t>(q[C::firstAddress]) * kJoinAddressCols];
      if (a[A::lo] >= 0) addr0 = Addr{true, U32(a[A::lo]), U32(a[A::hi])};
    }
    Addr ring;
    if (q[C::ringLo] >= 0) ring = Addr{true, U32(q[C::ringLo]), U32(q[C::ringHi])};
    (*hints)[q[C::pid]][DebugfsIdentity(has_blocks, addr0, ring, q[C::mqdsLine])] = q[C::qid];
  }
}

}  // namespace kfd
}  // namespace gpucolo
