#include "kfd_ioctl.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include <linux/kfd_ioctl.h>  // needs the native/compat/drm/drm.h shim on Debian

namespace gpucolo {
namespace kfd {

// The compat copies must agree with whatever system header this is built against.
static_assert(sizeof(kfd_ioctl_update_queue_args) == sizeof(uapi::UpdateQueueArgs), "update_queue args differ from <linux/kfd_ioctl.h>");
static_assert(AMDKFD_IOC_UPDATE_QUEUE == uapi::kIocUpdateQueue, "AMDKFD_IOC_UPDATE_QUEUE differs from <linux/kfd_ioctl.h>");
static_assert(KFD_MAX_QUEUE_PERCENTAGE == uapi::kMaxQueuePercentage && KFD_MAX_QUEUE_PRIORITY == uapi::kMaxQueuePriority, "queue limits");
#if KFD_IOCTL_MAJOR_VERSION > 1 || (KFD_IOCTL_MAJOR_VERSION == 1 && KFD_IOCTL_MINOR_VERSION >= 13)
static_assert(sizeof(kfd_ioctl_dbg_trap_args) == sizeof(uapi::DbgTrapArgs), "dbg_trap args differ from <linux/kfd_ioctl.h>");
static_assert(sizeof(kfd_queue_snapshot_entry) == sizeof(uapi::QueueSnapshotEntry), "snapshot entry differs from <linux/kfd_ioctl.h>");
static_assert(sizeof(kfd_runtime_info) == sizeof(uapi::RuntimeInfo), "runtime info differs from <linux/kfd_ioctl.h>");
static_assert(AMDKFD_IOC_DBG_TRAP == uapi::kIocDbgTrap, "AMDKFD_IOC_DBG_TRAP differs from <linux/kfd_ioctl.h>");
static_assert(static_cast<uint32_t>(KFD_IOC_DBG_TRAP_ENABLE) == uapi::kDbgTrapEnable &&
                  static_cast<uint32_t>(KFD_IOC_DBG_TRAP_DISABLE) == uapi::kDbgTrapDisable &&
                  static_cast<uint32_t>(KFD_IOC_DBG_TRAP_GET_QUEUE_SNAPSHOT) == uapi::kDbgTrapGetQueueSnapshot,
              "DBG_TRAP op numbers differ from <linux/kfd_ioctl.h>");
static_assert(offsetof(kfd_queue_snapshot_entry, queue_id) == offsetof(uapi::QueueSnapshotEntry, queue_id) &&
                  offsetof(kfd_queue_snapshot_entry, ring_size) == offsetof(uapi::QueueSnapshotEntry, ring_size) &&
                  offsetof(kfd_ioctl_dbg_trap_args, enable) == offsetof(uapi::DbgTrapArgs, enable),
              "snapshot entry / dbg_trap layout differs from <linux/kfd_ioctl.h>");
#endif

#define GPUCOLO_STR2(x) #x
#define GPUCOLO_STR(x) GPUCOLO_STR2(x)

const char* KfdIoctlHeaderVersion() { return GPUCOLO_STR(KFD_IOCTL_MAJOR_VERSION) "." GPUCOLO_STR(KFD_IOCTL_MINOR_VERSION); }

namespace {

/** Largest user address + 1 on x86-64 with 5-level paging (TASK_SIZE_MAX with LA57). */
constexpr uint64_t kUserAddressLimit = 0x00fffffffffff000ull;

int SysIoctl(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }

/** ioctl through fn (or the real one), retried on EINTR. */
int DoIoctl(const IoctlFn& fn, int fd, unsigned long request, void* arg) {
  int rc;
  do {
    rc = fn ? fn(fd, request, arg) : SysIoctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

/** open(O_RDWR | O_CLOEXEC), refusing embedded NULs like Node's fs. -1 with errno on failure. */
int OpenDev(const std::string& dev_path) {
  if (dev_path.find('\0') != std::string::npos) {
    // open() would silently use the prefix before the NUL
    errno = EINVAL;
    return -1;
  }
  int fd;
  do {
    fd = ::open(dev_path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool Refuse(ArgError* error, int err, const std::string& message) {
  if (error) {
    error->err = err;
    error->message = message;
  }
  return false;
}

}  // namespace

KfdVersionResult KfdVersion(const std::string& dev_path) {
  KfdVersionResult r;
  const int fd = OpenDev(dev_path);
  if (fd < 0) {
    r.err = errno;
    r.syscall = "open";
    return r;
  }
  kfd_ioctl_get_version_args args{};
  int rc;
  do {
    rc = ::ioctl(fd, AMDKFD_IOC_GET_VERSION, &args);
  } while (rc < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (rc < 0) {
    r.err = err;
    r.syscall = "ioctl";
    return r;
  }
  r.major = args.major_version;
  r.minor = args.minor_version;
  return r;
}

// ---------------------------------------------------------------------------------- UPDATE_QUEUE

bool BuildUpdateQueueArgs(uint32_t queue_id, uint64_t ring_base, uint32_t ring_size, uint32_t percentage, uint32_t priority,
                          uint32_t pm4_target_xcc, uapi::UpdateQueueArgs* args, ArgError* error) {
  if (args) *args = uapi::UpdateQueueArgs{};
  if (error) *error = ArgError{};
  // the kernel's order (kfd_ioctl_update_queue)
  if (percentage > uapi::kMaxQueuePercentage) {
    return Refuse(error, EINVAL,
                  "queue percentage " + std::to_string(percentage) + " is above KFD_MAX_QUEUE_PERCENTAGE (100): the kernel answers EINVAL");
  }
  if (pm4_target_xcc > 0xFF) {
    return Refuse(error, EINVAL,
                  "pm4_target_xcc " + std::to_string(pm4_target_xcc) +
                      " does not fit bits 8-15 of queue_percentage (0..255); the kernel would read another XCC or EINVAL");
  }
  if (priority > uapi::kMaxQueuePriority) {
    return Refuse(error, EINVAL, "queue priority " + std::to_string(priority) + " is above KFD_MAX_QUEUE_PRIORITY (15): the kernel answers EINVAL");
  }
  if (ring_base != 0 && (ring_base > kUserAddressLimit - sizeof(uint64_t))) {
    return Refuse(error, EFAULT, "ring base " + Hex(ring_base) + " is not a user-space address (access_ok fails): the kernel answers EFAULT");
  }
  if (ring_size != 0 && (ring_size & (ring_size - 1)) != 0) {
    return Refuse(error, EINVAL, "ring size " + std::to_string(ring_size) + " is neither 0 nor a power of two: the kernel answers EINVAL");
  }
  if ((ring_base & 0xFF) != 0) {
    return Refuse(error, EINVAL,
                  "ring base " + Hex(ring_base) +
                      " is not 256-byte aligned: refused by gpucolo, not the kernel (the MQD keeps ring_base >> 8, so the CP would "
                      "fetch from " +
                      Hex(ring_base & ~0xFFull) + ")");
  }
  if (args) {
    args->ring_base_address = ring_base;
    args->queue_id = queue_id;
    args->ring_size = ring_size;
    args->queue_percentage = percentage | (pm4_target_xcc << 8);
    args->queue_priority = priority;
  }
  return true;
}

IoctlResult UpdateQueue(const std::string& dev_path, const uapi::UpdateQueueArgs& args, const IoctlFn& ioctl_fn) {
  IoctlResult r;
  const int fd = OpenDev(dev_path);
  if (fd < 0) {
    r.err = errno;
    r.syscall = "open";
    return r;
  }
  // _IOW: the kernel reads a copy, so a const object is safe to pass
  uapi::UpdateQueueArgs copy = args;
  const int rc = DoIoctl(ioctl_fn, fd, uapi::kIocUpdateQueue, &copy);
  const int err = errno;
  ::close(fd);
  if (rc < 0) {
    r.err = err;
    r.syscall = "ioctl";
    r.op = "UPDATE_QUEUE";
  }
  return r;
}

// ---------------------------------------------------------------------------------- DBG_TRAP

uapi::DbgTrapArgs BuildDbgTrapEnableArgs(uint32_t pid, uint32_t dbg_fd, uapi::RuntimeInfo* rinfo, uint64_t exception_mask) {
  uapi::DbgTrapArgs a{};
  a.pid = pid;
  a.op = uapi::kDbgTrapEnable;
  a.enable.exception_mask = exception_mask;
  a.enable.rinfo_ptr = reinterpret_cast<uintptr_t>(rinfo);
  a.enable.rinfo_size = rinfo ? sizeof(uapi::RuntimeInfo) : 0;
  a.enable.dbg_fd = dbg_fd;
  return a;
}

uapi::DbgTrapArgs BuildDbgTrapDisableArgs(uint32_t pid) {
  uapi::DbgTrapArgs a{};
  a.pid = pid;
  a.op = uapi::kDbgTrapDisable;
  return a;
}

bool BuildDbgTrapQueueSnapshotArgs(uint32_t pid, void* buf, uint32_t capacity, uint32_t entry_size, uint64_t exception_mask,
                                   uapi::DbgTrapArgs* args, ArgError* error) {
  if (args) *args = uapi::DbgTrapArgs{};
  if (error) *error = ArgError{};
  if (entry_size == 0) return Refuse(error, EINVAL, "queue snapshot entry_size must be non-zero: the kernel answers EINVAL");
  if (capacity > 0 && buf == nullptr) {
    return Refuse(error, EINVAL, "queue snapshot buffer missing for " + std::to_string(capacity) + " entries (the kernel would answer EFAULT)");
  }
  if (capacity > 0 && static_cast<uint64_t>(capacity) * entry_size > (1ull << 31)) {
    return Refuse(error, EINVAL, "queue snapshot buffer of " + std::to_string(capacity) + " x " + std::to_string(entry_size) + " bytes is absurd");
  }
  if (args) {
    args->pid = pid;
    args->op = uapi::kDbgTrapGetQueueSnapshot;
    args->queue_snapshot.exception_mask = exception_mask;
    args->queue_snapshot.snapshot_buf_ptr = reinterpret_cast<uintptr_t>(buf);
    args->queue_snapshot.num_queues = capacity;
    args->queue_snapshot.entry_size = entry_size;
  }
  return true;
}

QueueSnapshotParse ParseQueueSnapshotEntries(const uint8_t* data, size_t len, uint32_t entry_size) {
  QueueSnapshotParse out;
  if (entry_size == 0) {
    out.error = "entry_size 0";
    return out;
  }
  if (data == nullptr) len = 0;
  const size_t count = len / entry_size;
  const uint32_t valid = entry_size < sizeof(uapi::QueueSnapshotEntry) ? entry_size : static_cast<uint32_t>(sizeof(uapi::QueueSnapshotEntry));
  out.entries.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    QueueSnapshotEntry e;
    e.valid_bytes = valid;
    // fields beyond the negotiated size stay 0 and are reported absent by Has()
    std::memcpy(&e.e, data + i * entry_size, valid);
    out.entries.push_back(e);
  }
  if (len % entry_size != 0) {
    out.error = std::to_string(len % entry_size) + " trailing byte(s) after " + std::to_string(count) + " entr" + (count == 1 ? "y" : "ies") +
                " of " + std::to_string(entry_size) + " bytes ignored";
  }
  return out;
}

std::string QueueSnapshotTypeName(uint32_t queue_type) {
  switch (queue_type) {
    case uapi::kQueueTypeCompute:
      return "compute-pm4";
    case uapi::kQueueTypeSdma:
      return "sdma";
    case uapi::kQueueTypeComputeAql:
      return "compute-aql";
    case uapi::kQueueTypeSdmaXgmi:
      return "sdma-xgmi";
    case uapi::kQueueTypeSdmaByEngId:
      return "sdma-by-eng-id";
    default:
      return "type-" + std::to_string(queue_type);
  }
}

QueueSnapshotSelfResult QueueSnapshotSelf(const std::string& dev_path, const IoctlFn& ioctl_fn) {
  QueueSnapshotSelfResult r;
  const int fd = OpenDev(dev_path);
  if (fd < 0) {
    r.err = errno;
    r.syscall = "open";
    return r;
  }
  int pipefd[2] = {-1, -1};
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    r.err = errno;
    r.syscall = "pipe2";
    ::close(fd);
    return r;
  }
  const uint32_t self = static_cast<uint32_t>(::getpid());
  auto fail = [&r](int err, const char* op) {
    if (r.err == 0) {
      r.err = err;
      r.syscall = "ioctl";
      r.op = op;
    }
  };

  uapi::DbgTrapArgs enable = BuildDbgTrapEnableArgs(self, static_cast<uint32_t>(pipefd[1]), &r.runtime_info, 0);
  if (DoIoctl(ioctl_fn, fd, uapi::kIocDbgTrap, &enable) < 0) {
    fail(errno, "DBG_TRAP_ENABLE");
  } else {
    r.enabled = true;
    // 1. size, 2. fetch with headroom; again while queues appear faster than we read them
    constexpr uint32_t kEntry = sizeof(uapi::QueueSnapshotEntry);
    std::vector<uint8_t> buf;
    uint32_t capacity = 0;
    for (int attempt = 0; attempt < 4; ++attempt) {
      uapi::DbgTrapArgs snap;
      ArgError aerr;
      if (!BuildDbgTrapQueueSnapshotArgs(self, buf.empty() ? nullptr : buf.data(), capacity, kEntry, 0, &snap, &aerr)) {
        fail(aerr.err, "DBG_TRAP_GET_QUEUE_SNAPSHOT");
        break;
      }
      ++r.snapshot_calls;
      if (DoIoctl(ioctl_fn, fd, uapi::kIocDbgTrap, &snap) < 0) {
        fail(errno, "DBG_TRAP_GET_QUEUE_SNAPSHOT");
        break;
      }
      const uint32_t exist = snap.queue_snapshot.num_queues;
      if (capacity > 0 && exist <= capacity) {
        uint32_t got = snap.queue_snapshot.entry_size;
        if (got == 0 || got > kEntry) got = kEntry;  // a kernel that did not write it back: our stride
        r.entry_size = got;
        QueueSnapshotParse p = ParseQueueSnapshotEntries(buf.data(), static_cast<size_t>(exist) * kEntry, kEntry);
        for (QueueSnapshotEntry& e : p.entries) {
          e.valid_bytes = got;
          // bytes beyond what KFD wrote are ours (zeroed); keep them out of the fields
          if (got < kEntry) std::memset(reinterpret_cast<uint8_t*>(&e.e) + got, 0, kEntry - got);
        }
        r.entries = std::move(p.entries);
        break;
      }
      if (capacity > 0 && attempt == 3) {
        fail(EAGAIN, "DBG_TRAP_GET_QUEUE_SNAPSHOT");
        break;
      }
      if (exist == 0) {
        r.entry_size = snap.queue_snapshot.entry_size;
        break;  // no queues: nothing to fetch
      }
      capacity = exist + 8;
      buf.assign(static_cast<size_t>(capacity) * kEntry, 0);
    }
    uapi::DbgTrapArgs disable = BuildDbgTrapDisableArgs(self);
    if (DoIoctl(ioctl_fn, fd, uapi::kIocDbgTrap, &disable) < 0) {
      r.disable_err = errno;
      fail(r.disable_err, "DBG_TRAP_DISABLE");
    } else {
      r.disabled = true;
    }
  }
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  ::close(fd);
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
