// KFD ioctls without a KFD: argument building (every refusal), snapshot entry parsing, the error
// paths of a real open()/ioctl() on a missing path and a regular file, and the call sequence of
// QueueSnapshotSelf against a fake KFD passed as its ioctl function.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"
#include "kfd/kfd_ioctl.h"

namespace {

using gpucolo::kfd::ArgError;
using gpucolo::kfd::BuildUpdateQueueArgs;
namespace uapi = gpucolo::kfd::uapi;

/** A regular file to point the ioctls at (open works, every ioctl gives ENOTTY). */
struct TempFile {
  std::string path;
  TempFile() {
    char tmpl[] = "/tmp/gpucolo-kfd-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd >= 0) {
      path = tmpl;
      ::close(fd);
    }
  }
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

uapi::UpdateQueueArgs Args(uint32_t qid, uint64_t base, uint32_t size, uint32_t pct, uint32_t prio, uint32_t xcc, ArgError* err, bool* ok) {
  uapi::UpdateQueueArgs a;
  std::memset(&a, 0xAB, sizeof a);  // must come back zeroed on refusal
  *ok = BuildUpdateQueueArgs(qid, base, size, pct, prio, xcc, &a, err);
  return a;
}

bool Zeroed(const uapi::UpdateQueueArgs& a) {
  static const uapi::UpdateQueueArgs zero{};
  return std::memcmp(&a, &zero, sizeof a) == 0;
}

/** One synthetic snapshot entry with every field distinct. */
uapi::QueueSnapshotEntry Entry(uint32_t i) {
  uapi::QueueSnapshotEntry e{};
  e.exception_status = 0x1000 + i;
  e.ring_base_address = 0x7f3a8c200000ull + (static_cast<uint64_t>(i) << 24);
  e.write_pointer_address = 0x7f3a9d4f2000ull + i * 0x100;
  e.read_pointer_address = 0x7f3a9d4f2080ull + i * 0x100;
  e.ctx_save_restore_address = 0x7f3a00000000ull + (static_cast<uint64_t>(i) << 28);
  e.queue_id = i;
  e.gpu_id = 31774;
  e.ring_size = 1048576;
  e.queue_type = i == 2 ? uapi::kQueueTypeSdmaXgmi : uapi::kQueueTypeComputeAql;
  e.ctx_save_restore_area_size = 0x2b5000;
  e.reserved = 0xdeadbeef;
  return e;
}

/** Entries laid out with stride `stride`, each holding min(stride, 64) bytes of the entry. */
std::vector<uint8_t> Buffer(uint32_t n, uint32_t stride) {
  std::vector<uint8_t> b(static_cast<size_t>(n) * stride, 0xEE);
  for (uint32_t i = 0; i < n; ++i) {
    const uapi::QueueSnapshotEntry e = Entry(i);
    std::memcpy(b.data() + static_cast<size_t>(i) * stride, &e, stride < 64 ? stride : 64);
  }
  return b;
}

/** A fake /dev/kfd: DBG_TRAP ENABLE / GET_QUEUE_SNAPSHOT / DISABLE with a list of queues. */
struct FakeKfd {
  std::vector<uapi::QueueSnapshotEntry> queues;
  /** entry size of this "kernel" (64 today; smaller for an older one) */
  uint32_t kernel_entry = 64;
  /** queues that appear on every snapshot call after the sizing one (racing queue creation) */
  uint32_t grow_per_call = 0;
  /** queues that appear once, on the first call after the sizing one */
  uint32_t grow_once = 0;
  int snapshot_calls = 0;
  int enable_errno = 0;
  int snapshot_errno = 0;
  int disable_errno = 0;
  bool enabled = false;
  std::vector<std::string> calls;
  std::vector<uint32_t> capacities;
  uint32_t last_pid = 0;
  int last_dbg_fd = -1;
  uint32_t last_rinfo_size = 0;

  int operator()(int, unsigned long request, void* arg) {
    if (request != uapi::kIocDbgTrap) {
      errno = ENOTTY;
      return -1;
    }
    auto* a = static_cast<uapi::DbgTrapArgs*>(arg);
    last_pid = a->pid;
    switch (a->op) {
      case uapi::kDbgTrapEnable: {
        calls.push_back("enable");
        if (enable_errno) return errno = enable_errno, -1;
        last_dbg_fd = static_cast<int>(a->enable.dbg_fd);
        last_rinfo_size = a->enable.rinfo_size;
        // the dbg_fd must be an open fd of the caller (the kernel fget()s it)
        if (fcntl(last_dbg_fd, F_GETFD) < 0) return errno = EBADF, -1;
        uapi::RuntimeInfo ri{0x1234, uapi::kRuntimeEnabled, 1};
        std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(a->enable.rinfo_ptr)), &ri, sizeof ri);
        enabled = true;
        return 0;
      }
      case uapi::kDbgTrapGetQueueSnapshot: {
        calls.push_back("snapshot");
        if (!enabled) return errno = EINVAL, -1;
        if (snapshot_errno) return errno = snapshot_errno, -1;
        ++snapshot_calls;
        uint32_t grow = snapshot_calls > 1 ? grow_per_call : 0;
        if (snapshot_calls == 2) grow += grow_once;
        for (uint32_t k = 0; k < grow; ++k) queues.push_back(Entry(static_cast<uint32_t>(queues.size())));
        auto& s = a->queue_snapshot;
        capacities.push_back(s.num_queues);
        if (s.entry_size == 0) return errno = EINVAL, -1;
        const uint32_t stride = s.entry_size;
        const uint32_t copy = stride < kernel_entry ? stride : kernel_entry;
        auto* out = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(s.snapshot_buf_ptr));
        for (uint32_t i = 0; i < queues.size() && i < s.num_queues; ++i) std::memcpy(out + static_cast<size_t>(i) * stride, &queues[i], copy);
        s.num_queues = static_cast<uint32_t>(queues.size());
        s.entry_size = copy;
        return 0;
      }
      case uapi::kDbgTrapDisable:
        calls.push_back("disable");
        if (disable_errno) return errno = disable_errno, -1;
        enabled = false;
        return 0;
      default:
        errno = EINVAL;
        return -1;
    }
  }
};

gpucolo::kfd::IoctlFn Bind(FakeKfd& f) {
  return [&f](int fd, unsigned long req, void* arg) { return f(fd, req, arg); };
}

}  // namespace

// ---------------------------------------------------------------------------------- UPDATE_QUEUE args

TEST(kfd_update_queue_args_valid) {
  ArgError err;
  bool ok = false;
  uapi::UpdateQueueArgs a = Args(3, 0x7f3a8b800000ull, 1048576, 100, 11, 0, &err, &ok);
  CHECK(ok);
  CHECK_EQ(err.err, 0);
  CHECK(err.message.empty());
  CHECK_EQ(a.queue_id, 3u);
  CHECK_EQ(a.ring_base_address, 0x7f3a8b800000ull);
  CHECK_EQ(a.ring_size, 1048576u);
  CHECK_EQ(a.queue_percentage, 100u);
  CHECK_EQ(a.queue_priority, 11u);

  // the exact bytes the kernel reads: u64 base, u32 id, size, percentage, priority (little endian)
  uint8_t bytes[24];
  std::memcpy(bytes, &a, sizeof bytes);
  const uint8_t want[24] = {0x00, 0x00, 0x80, 0x8b, 0x3a, 0x7f, 0, 0, 3, 0, 0, 0, 0, 0, 0x10, 0, 100, 0, 0, 0, 11, 0, 0, 0};
  CHECK(std::memcmp(bytes, want, sizeof want) == 0);

  // pm4_target_xcc goes to bits 8-15 of queue_percentage
  a = Args(0, 0x7f0000000000ull, 4096, 100, 7, 3, &err, &ok);
  CHECK(ok);
  CHECK_EQ(a.queue_percentage, 100u | (3u << 8));
  a = Args(0, 0x7f0000000000ull, 4096, 0, 0, 255, &err, &ok);
  CHECK(ok);
  CHECK_EQ(a.queue_percentage, 255u << 8);

  // limits are inclusive; what the kernel accepts (and clamps) is accepted
  CHECK((Args(1, 0x7f0000000000ull, 1024, 100, 15, 0, &err, &ok), ok));
  CHECK((Args(1, 0x7f0000000000ull, 1u << 31, 0, 0, 0, &err, &ok), ok));
  CHECK((Args(1, 0x7f0000000000ull, 256, 50, 0, 0, &err, &ok), ok));  // < 1024: clamped up by the kernel
  CHECK((Args(1, 0x7f0000000000ull, 1, 50, 0, 0, &err, &ok), ok));    // 1 = 2^0
  CHECK((Args(1, 0, 0, 0, 0, 0, &err, &ok), ok));                     // null ring: deactivates the queue
  CHECK((Args(1, 0x00fffffffffff000ull - 256, 4096, 100, 0, 0, &err, &ok), ok));
  // a null args pointer only validates
  CHECK(BuildUpdateQueueArgs(1, 0x7f0000000000ull, 4096, 100, 7, 0, nullptr, nullptr));
  CHECK(!BuildUpdateQueueArgs(1, 0x7f0000000000ull, 4096, 101, 7, 0, nullptr, nullptr));
}

TEST(kfd_update_queue_args_refusals) {
  struct Case {
    uint64_t base;
    uint32_t size, pct, prio, xcc;
    int err;
    const char* needle;
  };
  const Case cases[] = {
      {0x7f0000000000ull, 4096, 101, 7, 0, EINVAL, "percentage 101 is above KFD_MAX_QUEUE_PERCENTAGE (100): the kernel answers EINVAL"},
      {0x7f0000000000ull, 4096, 0xFFFFFFFFu, 7, 0, EINVAL, "percentage 4294967295"},
      {0x7f0000000000ull, 4096, 100, 7, 256, EINVAL, "pm4_target_xcc 256 does not fit"},
      {0x7f0000000000ull, 4096, 100, 16, 0, EINVAL, "priority 16 is above KFD_MAX_QUEUE_PRIORITY (15): the kernel answers EINVAL"},
      {0x7f0000000000ull, 4096, 100, 0xFFFFFFFFu, 0, EINVAL, "priority 4294967295"},
      {0xffff800000000000ull, 4096, 100, 7, 0, EFAULT, "ring base 0xffff800000000000 is not a user-space address (access_ok fails): the kernel answers EFAULT"},
      {0x00fffffffffff000ull, 4096, 100, 7, 0, EFAULT, "the kernel answers EFAULT"},
      {0x00fffffffffff000ull - 7, 4096, 100, 7, 0, EFAULT, "EFAULT"},
      {0x7f0000000000ull, 3, 100, 7, 0, EINVAL, "ring size 3 is neither 0 nor a power of two: the kernel answers EINVAL"},
      {0x7f0000000000ull, 1000, 100, 7, 0, EINVAL, "ring size 1000"},
      {0x7f0000000000ull, 0xFFFFFFFFu, 100, 7, 0, EINVAL, "ring size 4294967295"},
      {0x7f0000000010ull, 4096, 100, 7, 0, EINVAL, "not 256-byte aligned: refused by gpucolo, not the kernel"},
  };
  for (const Case& c : cases) {
    ArgError err;
    bool ok = true;
    const uapi::UpdateQueueArgs a = Args(9, c.base, c.size, c.pct, c.prio, c.xcc, &err, &ok);
    if (ok || err.err != c.err || err.message.find(c.needle) == std::string::npos || !Zeroed(a)) {
      gpucolo_test::Fail(__FILE__, __LINE__, std::string("case '") + c.needle + "': ok=" + (ok ? "1" : "0") + " err=" + std::to_string(err.err) + " message=" + err.message);
    }
  }
  // the kernel's order: percentage before priority before address before size
  ArgError err;
  bool ok;
  Args(0, 0xffff800000000000ull, 3, 101, 16, 0, &err, &ok);
  CHECK(err.message.find("percentage") != std::string::npos);
  Args(0, 0xffff800000000000ull, 3, 100, 16, 0, &err, &ok);
  CHECK(err.message.find("priority") != std::string::npos);
  Args(0, 0xffff800000000000ull, 3, 100, 15, 0, &err, &ok);
  CHECK_EQ(err.err, EFAULT);
  Args(0, 0x7f0000000000ull, 3, 100, 15, 0, &err, &ok);
  CHECK(err.message.find("ring size") != std::string::npos);
  // a good call after a refusal clears the error
  Args(0, 0x7f0000000000ull, 4096, 100, 15, 0, &err, &ok);
  CHECK(ok);
  CHECK_EQ(err.err, 0);
  CHECK(err.message.empty());
}

TEST(kfd_update_queue_error_paths) {
  uapi::UpdateQueueArgs a{};
  CHECK(BuildUpdateQueueArgs(2, 0x7f3a8b800000ull, 1048576, 100, 15, 0, &a, nullptr));

  auto r = gpucolo::kfd::UpdateQueue("/nonexistent/kfd", a);
  CHECK_EQ(r.err, ENOENT);
  CHECK_EQ(std::string(r.syscall), std::string("open"));
  CHECK(r.op == nullptr);

  TempFile f;
  CHECK(!f.path.empty());
  r = gpucolo::kfd::UpdateQueue(f.path, a);
  CHECK_EQ(r.err, ENOTTY);
  CHECK_EQ(std::string(r.syscall), std::string("ioctl"));
  CHECK_EQ(std::string(r.op), std::string("UPDATE_QUEUE"));

  r = gpucolo::kfd::UpdateQueue(std::string("/dev/null\0x", 11), a);
  CHECK_EQ(r.err, EINVAL);
  CHECK_EQ(std::string(r.syscall), std::string("open"));

  // what reaches ioctl(): the request number and the 24 bytes, unchanged
  unsigned long seen_req = 0;
  uapi::UpdateQueueArgs seen{};
  int calls = 0;
  r = gpucolo::kfd::UpdateQueue(f.path, a, [&](int, unsigned long req, void* arg) {
    ++calls;
    seen_req = req;
    std::memcpy(&seen, arg, sizeof seen);
    return 0;
  });
  CHECK_EQ(r.err, 0);
  CHECK(r.syscall == nullptr);
  CHECK_EQ(calls, 1);
  CHECK_EQ(seen_req, 0x40184b07ul);
  CHECK(std::memcmp(&seen, &a, sizeof a) == 0);

  // the kernel's answers come back as they are: another process's fd, a queue id that does not
  // exist / a ring that is not mapped; EINTR is retried
  for (int e : {EBADF, EFAULT, EINVAL}) {
    r = gpucolo::kfd::UpdateQueue(f.path, a, [e](int, unsigned long, void*) { return errno = e, -1; });
    CHECK_EQ(r.err, e);
    CHECK_EQ(std::string(r.op), std::string("UPDATE_QUEUE"));
  }
  calls = 0;
  r = gpucolo::kfd::UpdateQueue(f.path, a, [&calls](int, unsigned long, void*) { return ++calls < 3 ? (errno = EINTR, -1) : 0; });
  CHECK_EQ(r.err, 0);
  CHECK_EQ(calls, 3);
}

// ---------------------------------------------------------------------------------- DBG_TRAP args

TEST(kfd_dbg_trap_args) {
  uapi::RuntimeInfo ri{};
  uapi::DbgTrapArgs a = gpucolo::kfd::BuildDbgTrapEnableArgs(4242, 17, &ri, 0);
  CHECK_EQ(a.pid, 4242u);
  CHECK_EQ(a.op, 0u);
  CHECK_EQ(a.enable.exception_mask, 0ull);
  CHECK_EQ(a.enable.rinfo_ptr, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&ri)));
  CHECK_EQ(a.enable.rinfo_size, 16u);
  CHECK_EQ(a.enable.dbg_fd, 17u);
  // raw layout: pid at 0, op at 4, union at 8 (exception_mask, rinfo_ptr, rinfo_size, dbg_fd)
  uint8_t bytes[32];
  std::memcpy(bytes, &a, sizeof bytes);
  uint32_t w;
  std::memcpy(&w, bytes + 0, 4);
  CHECK_EQ(w, 4242u);
  std::memcpy(&w, bytes + 24, 4);
  CHECK_EQ(w, 16u);
  std::memcpy(&w, bytes + 28, 4);
  CHECK_EQ(w, 17u);

  a = gpucolo::kfd::BuildDbgTrapEnableArgs(1, 3, nullptr, uapi::EcMask(uapi::kEcQueueNew));
  CHECK_EQ(a.enable.rinfo_size, 0u);
  CHECK_EQ(a.enable.exception_mask, 0x40000000ull);

  a = gpucolo::kfd::BuildDbgTrapDisableArgs(77);
  CHECK_EQ(a.pid, 77u);
  CHECK_EQ(a.op, 1u);
  CHECK_EQ(a.raw[0] | a.raw[1] | a.raw[2], 0ull);

  std::vector<uint8_t> buf(4 * 64);
  ArgError err;
  CHECK(gpucolo::kfd::BuildDbgTrapQueueSnapshotArgs(77, buf.data(), 4, 64, 0, &a, &err));
  CHECK_EQ(a.op, 13u);
  CHECK_EQ(a.queue_snapshot.num_queues, 4u);
  CHECK_EQ(a.queue_snapshot.entry_size, 64u);
  CHECK_EQ(a.queue_snapshot.snapshot_buf_ptr, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(buf.data())));
  CHECK_EQ(a.queue_snapshot.exception_mask, 0ull);
  std::memcpy(&w, reinterpret_cast<uint8_t*>(&a) + 24, 4);
  CHECK_EQ(w, 4u);  // num_queues at byte 24, entry_size at 28
  std::memcpy(&w, reinterpret_cast<uint8_t*>(&a) + 28, 4);
  CHECK_EQ(w, 64u);
  // the sizing call: no buffer, capacity 0
  CHECK(gpucolo::kfd::BuildDbgTrapQueueSnapshotArgs(77, nullptr, 0, 64, 0, &a, &err));
  CHECK_EQ(a.queue_snapshot.snapshot_buf_ptr, 0ull);
  // refusals
  CHECK(!gpucolo::kfd::BuildDbgTrapQueueSnapshotArgs(77, buf.data(), 4, 0, 0, &a, &err));
  CHECK_EQ(err.err, EINVAL);
  CHECK(err.message.find("entry_size must be non-zero") != std::string::npos);
  CHECK_EQ(a.op, 0u);
  CHECK(!gpucolo::kfd::BuildDbgTrapQueueSnapshotArgs(77, nullptr, 4, 64, 0, &a, &err));
  CHECK_EQ(err.err, EINVAL);
  CHECK(!gpucolo::kfd::BuildDbgTrapQueueSnapshotArgs(77, buf.data(), 0xFFFFFFFFu, 64, 0, &a, &err));
  CHECK(err.message.find("absurd") != std::string::npos);
}

// ---------------------------------------------------------------------------------- snapshot entries

TEST(kfd_queue_snapshot_parse_64) {
  const std::vector<uint8_t> b = Buffer(3, 64);
  auto p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 64);
  CHECK(p.error.empty());
  CHECK_EQ(p.entries.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    const auto& e = p.entries[i];
    const uapi::QueueSnapshotEntry want = Entry(i);
    CHECK_EQ(e.valid_bytes, 64u);
    CHECK(e.HasQueueId() && e.HasRing());
    CHECK(std::memcmp(&e.e, &want, 64) == 0);
  }
  CHECK_EQ(p.entries[1].e.ring_base_address, 0x7f3a8d200000ull);
  CHECK_EQ(p.entries[1].e.queue_id, 1u);
  CHECK_EQ(p.entries[1].e.gpu_id, 31774u);
  CHECK_EQ(p.entries[2].e.queue_type, 3u);
  CHECK_EQ(gpucolo::kfd::QueueSnapshotTypeName(p.entries[0].e.queue_type), std::string("compute-aql"));
  CHECK_EQ(gpucolo::kfd::QueueSnapshotTypeName(0), std::string("compute-pm4"));
  CHECK_EQ(gpucolo::kfd::QueueSnapshotTypeName(1), std::string("sdma"));
  CHECK_EQ(gpucolo::kfd::QueueSnapshotTypeName(3), std::string("sdma-xgmi"));
  CHECK_EQ(gpucolo::kfd::QueueSnapshotTypeName(99), std::string("type-99"));

  // empty buffer, no entries; entry_size 0 is an error
  p = gpucolo::kfd::ParseQueueSnapshotEntries(std::vector<uint8_t>(), 64);
  CHECK(p.entries.empty() && p.error.empty());
  p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 0);
  CHECK(p.entries.empty());
  CHECK_EQ(p.error, std::string("entry_size 0"));
  p = gpucolo::kfd::ParseQueueSnapshotEntries(nullptr, 64, 64);
  CHECK(p.entries.empty());
}

TEST(kfd_queue_snapshot_parse_negotiated_sizes) {
  // smaller (an older kernel, or a tool asking for less): 48 bytes -> up to gpu_id
  std::vector<uint8_t> b = Buffer(2, 48);
  auto p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 48);
  CHECK(p.error.empty());
  CHECK_EQ(p.entries.size(), 2u);
  CHECK_EQ(p.entries[1].valid_bytes, 48u);
  CHECK(p.entries[1].HasQueueId());
  CHECK(!p.entries[1].HasRing());  // ring_size at 48..52 is missing
  CHECK_EQ(p.entries[1].e.queue_id, 1u);
  CHECK_EQ(p.entries[1].e.gpu_id, 31774u);
  CHECK_EQ(p.entries[1].e.ring_base_address, Entry(1).ring_base_address);
  CHECK_EQ(p.entries[1].e.ring_size, 0u);
  CHECK_EQ(p.entries[1].e.reserved, 0u);

  // 40 bytes: no queue id either
  b = Buffer(1, 40);
  p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 40);
  CHECK_EQ(p.entries.size(), 1u);
  CHECK(!p.entries[0].HasQueueId());
  CHECK_EQ(p.entries[0].e.ctx_save_restore_address, Entry(0).ctx_save_restore_address);

  // larger stride (a newer tool): 64 bytes of entry, the rest ignored
  b = Buffer(3, 80);
  p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 80);
  CHECK(p.error.empty());
  CHECK_EQ(p.entries.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    const uapi::QueueSnapshotEntry want = Entry(i);
    CHECK_EQ(p.entries[i].valid_bytes, 64u);
    CHECK(std::memcmp(&p.entries[i].e, &want, 64) == 0);
  }

  // a trailing partial entry is reported, not parsed
  b = Buffer(2, 64);
  b.resize(b.size() + 10);
  p = gpucolo::kfd::ParseQueueSnapshotEntries(b, 64);
  CHECK_EQ(p.entries.size(), 2u);
  CHECK_EQ(p.error, std::string("10 trailing byte(s) after 2 entries of 64 bytes ignored"));
}

// ---------------------------------------------------------------------------------- QueueSnapshotSelf

TEST(kfd_queue_snapshot_self_error_paths) {
  auto r = gpucolo::kfd::QueueSnapshotSelf("/nonexistent/kfd");
  CHECK_EQ(r.err, ENOENT);
  CHECK_EQ(std::string(r.syscall), std::string("open"));
  CHECK(!r.enabled && !r.disabled);

  // a regular file: open works, ENABLE is the first ioctl and fails; nothing to disable
  TempFile f;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path);
  CHECK_EQ(r.err, ENOTTY);
  CHECK_EQ(std::string(r.syscall), std::string("ioctl"));
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_ENABLE"));
  CHECK(!r.enabled && !r.disabled);
  CHECK_EQ(r.snapshot_calls, 0);
  CHECK(r.entries.empty());
}

TEST(kfd_queue_snapshot_self_sequence) {
  TempFile f;
  FakeKfd k;
  for (uint32_t i = 0; i < 3; ++i) k.queues.push_back(Entry(i));
  auto r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(k));
  CHECK_EQ(r.err, 0);
  CHECK(r.enabled && r.disabled);
  CHECK_EQ(r.disable_err, 0);
  CHECK_EQ(k.calls, (std::vector<std::string>{"enable", "snapshot", "snapshot", "disable"}));
  CHECK_EQ(k.capacities, (std::vector<uint32_t>{0, 11}));  // size first, then room for 3 + 8
  CHECK_EQ(k.last_pid, static_cast<uint32_t>(getpid()));
  CHECK_EQ(k.last_rinfo_size, 16u);
  CHECK(k.last_dbg_fd > 2);
  CHECK(fcntl(k.last_dbg_fd, F_GETFD) < 0);  // the pipe is closed again
  CHECK(!k.enabled);
  CHECK_EQ(r.snapshot_calls, 2);
  CHECK_EQ(r.entry_size, 64u);
  CHECK_EQ(r.runtime_info.runtime_state, 1u);
  CHECK_EQ(r.runtime_info.r_debug, 0x1234ull);
  CHECK_EQ(r.entries.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    const uapi::QueueSnapshotEntry want = Entry(i);
    CHECK(std::memcmp(&r.entries[i].e, &want, 64) == 0);
  }

  // no queues: one sizing call, nothing fetched, still disabled
  FakeKfd none;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(none));
  CHECK_EQ(r.err, 0);
  CHECK(r.entries.empty());
  CHECK_EQ(none.calls, (std::vector<std::string>{"enable", "snapshot", "disable"}));

  // queues appear between the calls: fetched again with more room
  FakeKfd growing;
  growing.queues.push_back(Entry(0));
  growing.grow_once = 10;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(growing));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(growing.capacities, (std::vector<uint32_t>{0, 9, 19}));
  CHECK_EQ(r.entries.size(), 11u);
  CHECK_EQ(r.entries[10].e.queue_id, 10u);
  CHECK_EQ(growing.calls.back(), std::string("disable"));

  // ... and give up with EAGAIN when they keep appearing faster than they are read
  FakeKfd runaway;
  runaway.queues.push_back(Entry(0));
  runaway.grow_per_call = 100;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(runaway));
  CHECK_EQ(r.err, EAGAIN);
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_GET_QUEUE_SNAPSHOT"));
  CHECK(r.disabled);
  CHECK_EQ(r.snapshot_calls, 4);

  // an older kernel with a 48-byte entry: strides by ours, fields beyond 48 absent
  FakeKfd old;
  old.kernel_entry = 48;
  old.queues.push_back(Entry(0));
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(old));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(r.entry_size, 48u);
  CHECK_EQ(r.entries.size(), 1u);
  CHECK(r.entries[0].HasQueueId() && !r.entries[0].HasRing());
  CHECK_EQ(r.entries[0].e.ring_size, 0u);
}

TEST(kfd_queue_snapshot_self_failures) {
  TempFile f;
  // already being debugged (rocgdb): ENABLE fails, DISABLE must NOT be sent (it would end the
  // other debugger's session)
  FakeKfd busy;
  busy.enable_errno = EALREADY;
  auto r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(busy));
  CHECK_EQ(r.err, EALREADY);
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_ENABLE"));
  CHECK_EQ(busy.calls, (std::vector<std::string>{"enable"}));
  CHECK(!r.enabled && !r.disabled);

  // the snapshot fails: reported, and DISABLE still sent
  FakeKfd snapfail;
  snapfail.snapshot_errno = EINVAL;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(snapfail));
  CHECK_EQ(r.err, EINVAL);
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_GET_QUEUE_SNAPSHOT"));
  CHECK_EQ(snapfail.calls, (std::vector<std::string>{"enable", "snapshot", "disable"}));
  CHECK(r.enabled && r.disabled);

  // DISABLE fails: the first error stays the reported one, disable_err says the process is left
  // debug-enabled
  FakeKfd stuck;
  stuck.queues.push_back(Entry(0));
  stuck.disable_errno = EIO;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(stuck));
  CHECK_EQ(r.err, EIO);
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_DISABLE"));
  CHECK_EQ(r.disable_err, EIO);
  CHECK(r.enabled && !r.disabled);
  CHECK_EQ(r.entries.size(), 1u);

  FakeKfd both;
  both.snapshot_errno = EFAULT;
  both.disable_errno = EIO;
  r = gpucolo::kfd::QueueSnapshotSelf(f.path, Bind(both));
  CHECK_EQ(r.err, EFAULT);
  CHECK_EQ(std::string(r.op), std::string("DBG_TRAP_GET_QUEUE_SNAPSHOT"));
  CHECK_EQ(r.disable_err, EIO);
}
