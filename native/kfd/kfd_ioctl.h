// /dev/kfd ioctls. Plain C++ (no N-API): binding.cc turns failures into Node-style errors.
//
// Every ioctl here acts on the CALLER's own KFD process (kfd_ioctl(): an fd opened by another
// process gives -EBADF), except DBG_TRAP, which names a target pid; gpucolo only ever targets
// itself with it. Argument building is separate from issuing, so hosts without /dev/kfd (CI)
// can test what would be sent and every refusal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kfd_uapi_compat.h"

namespace gpucolo {
namespace kfd {

struct KfdVersionResult {
  /** 0 on success, else the errno of the failed call */
  int err = 0;
  /** "open" or "ioctl" when err != 0 */
  const char* syscall = nullptr;
  uint32_t major = 0;
  uint32_t minor = 0;
};

/**
 * AMDKFD_IOC_GET_VERSION on a fresh open(O_RDWR | O_CLOEXEC) of dev_path, closed again at once
 * (an open /dev/kfd makes this process a KFD process, visible in sysfs).
 */
KfdVersionResult KfdVersion(const std::string& dev_path);

/** KFD_IOCTL_MAJOR.MINOR of the <linux/kfd_ioctl.h> this core was compiled against. */
const char* KfdIoctlHeaderVersion();

/**
 * ioctl(2) as the functions below issue it. Tests pass a fake KFD here; the default is ::ioctl.
 * Returns -1 with errno set on failure, like the system call.
 */
using IoctlFn = std::function<int(int fd, unsigned long request, void* arg)>;

/** Why arguments were refused before any system call: the errno the kernel would answer. */
struct ArgError {
  /** EINVAL or EFAULT (as kfd_ioctl_update_queue would return); 0 = no error */
  int err = 0;
  std::string message;
};

// ------------------------------------------------------------------------------ UPDATE_QUEUE

/**
 * Fills *args for AMDKFD_IOC_UPDATE_QUEUE after the checks of kfd_ioctl_update_queue, in its
 * order (docs/kfd-formats.md#update_queue, kfd_chardev.c):
 *   1. (percentage & 0xFF) > 100                     -> EINVAL
 *   2. priority > 15 (KFD_MAX_QUEUE_PRIORITY)        -> EINVAL
 *   3. ring_base != 0 and not a user address          -> EFAULT (access_ok(ring_base, 8); checked
 *      here against the largest x86-64 user address with 5-level paging, 0x00fffffffffff000, so an
 *      address between the 4-level limit 0x7ffffffff000 and that is let through and left to the
 *      kernel)
 *   4. ring_size neither 0 nor a power of two         -> EINVAL
 * plus what does not fit the encoding: pm4_target_xcc > 255 (bits 8-15 of queue_percentage) ->
 * EINVAL, and one check of gpucolo's own, said so in the message: a ring base that is not 256-byte
 * aligned -> EINVAL (the MQD keeps ring_base >> 8, so the CP would read another address).
 * Not errors: ring_size < 1024 is clamped up to 1024 by the kernel (2025+); ring_base 0 or
 * percentage 0 makes the queue inactive (ROCr's AqlQueue::Suspend does the latter).
 * Not checkable here: whether queue_id exists (-EFAULT from pqm_update_queue_properties) and, on
 * kernels with "drm/amdkfd: Validate user queue update" (late 2025), whether [ring_base,
 * ring_base + ring_size) is a buffer mapped on the GPU (-EFAULT otherwise). Kernels before GC 9.4.3
 * support compare the whole queue_percentage with 100, so pm4_target_xcc != 0 gets EINVAL there.
 * Returns false and fills *error when refused; *args is then left zeroed.
 */
bool BuildUpdateQueueArgs(uint32_t queue_id, uint64_t ring_base, uint32_t ring_size, uint32_t percentage, uint32_t priority,
                          uint32_t pm4_target_xcc, uapi::UpdateQueueArgs* args, ArgError* error);

struct IoctlResult {
  /** 0 on success, else the errno of the failed call */
  int err = 0;
  /** "open", "pipe2" or "ioctl" when err != 0 */
  const char* syscall = nullptr;
  /** which KFD operation failed ("UPDATE_QUEUE", "DBG_TRAP_ENABLE", ...) when syscall is ioctl */
  const char* op = nullptr;
};

/**
 * open(dev_path, O_RDWR | O_CLOEXEC) + AMDKFD_IOC_UPDATE_QUEUE(args) + close.
 *
 * What it does, all of it (docs/kfd-formats.md#update_queue):
 *  - acts on a queue of the CALLER's own KFD process only: the fd opened here belongs to this
 *    process, and the kernel refuses an fd of another process (-EBADF). There is no way to change
 *    another process's queue with it.
 *  - REPLACES ring address, ring size, percentage and priority together
 *    (pqm_update_queue_properties): to change only the priority, pass the queue's current ring
 *    base and size and percentage 100 — wrong values move the queue onto another ring.
 *  - in HWS mode (the default) the kernel preempts EVERY user queue of EVERY process on that
 *    device (unmap_queues_cpsch, FILTER_DYNAMIC_QUEUES), rewrites the MQD and maps a new runlist;
 *    with a preemption timeout (queue_preemption_timeout_ms, default 9000 ms) ending in a GPU
 *    reset path if a queue does not preempt.
 *  - opening /dev/kfd makes this process a KFD process if it was not one (sysfs proc/<pid>).
 * Errors: {err, syscall "open"|"ioctl", op "UPDATE_QUEUE"}.
 */
IoctlResult UpdateQueue(const std::string& dev_path, const uapi::UpdateQueueArgs& args, const IoctlFn& ioctl_fn = nullptr);

// ------------------------------------------------------------------------------ DBG_TRAP

/** DBG_TRAP ENABLE of pid, KFD notifying through dbg_fd (an fd of the caller: pipe/eventfd). */
uapi::DbgTrapArgs BuildDbgTrapEnableArgs(uint32_t pid, uint32_t dbg_fd, uapi::RuntimeInfo* rinfo, uint64_t exception_mask = 0);

/** DBG_TRAP DISABLE of pid. */
uapi::DbgTrapArgs BuildDbgTrapDisableArgs(uint32_t pid);

/**
 * DBG_TRAP GET_QUEUE_SNAPSHOT of pid into buf (capacity entries of entry_size bytes each;
 * capacity 0 and buf null only count). exception_mask: exception_status bits KFD clears on every
 * queue it reports (0 = change nothing; a debugger that will SUSPEND passes
 * EcMask(kEcQueueNew)). Returns false with *error (EINVAL, the kernel's answer) when entry_size is
 * 0, or when capacity > 0 and buf is null.
 */
bool BuildDbgTrapQueueSnapshotArgs(uint32_t pid, void* buf, uint32_t capacity, uint32_t entry_size, uint64_t exception_mask,
                                   uapi::DbgTrapArgs* args, ArgError* error);

/** One kfd_queue_snapshot_entry as far as KFD copied it. */
struct QueueSnapshotEntry {
  /** bytes of the 64-byte entry present: min(entry_size, 64); a field is valid only when it lies
   *  wholly within them (see Has) */
  uint32_t valid_bytes = 0;
  uapi::QueueSnapshotEntry e{};
  bool Has(size_t offset, size_t size) const { return offset + size <= valid_bytes; }
  bool HasQueueId() const { return Has(offsetof(uapi::QueueSnapshotEntry, queue_id), 4); }
  bool HasRing() const {
    return Has(offsetof(uapi::QueueSnapshotEntry, ring_base_address), 8) && Has(offsetof(uapi::QueueSnapshotEntry, ring_size), 4);
  }
};

struct QueueSnapshotParse {
  std::vector<QueueSnapshotEntry> entries;
  /** empty, or what was wrong with the buffer (entry_size 0, trailing bytes) */
  std::string error;
};

/**
 * Entries of a GET_QUEUE_SNAPSHOT buffer. entry_size is the stride the buffer was laid out with
 * (the IN entry_size); KFD copies min(entry_size, 64) bytes into each slot, so with a smaller
 * negotiated size the trailing fields are absent, with a larger one the extra bytes are ignored.
 * A trailing partial entry is not parsed and reported in error; entry_size 0 parses nothing.
 */
QueueSnapshotParse ParseQueueSnapshotEntries(const uint8_t* data, size_t len, uint32_t entry_size);
inline QueueSnapshotParse ParseQueueSnapshotEntries(const std::vector<uint8_t>& buffer, uint32_t entry_size) {
  return ParseQueueSnapshotEntries(buffer.data(), buffer.size(), entry_size);
}

/** "compute-pm4", "sdma", "compute-aql", "sdma-xgmi", "sdma-by-eng-id", else "type-N" */
std::string QueueSnapshotTypeName(uint32_t queue_type);

struct QueueSnapshotSelfResult : IoctlResult {
  std::vector<QueueSnapshotEntry> entries;
  /** entry_size KFD wrote back (min(64, ours)) */
  uint32_t entry_size = 0;
  /** what ENABLE copied to rinfo: ROCr has enabled the runtime when runtime_state is 1 */
  uapi::RuntimeInfo runtime_info{};
  /** ENABLE succeeded (so DISABLE was attempted) */
  bool enabled = false;
  /** DISABLE succeeded */
  bool disabled = false;
  /** errno of a failed DISABLE (the process stays debug-enabled!), 0 otherwise */
  int disable_err = 0;
  /** GET_QUEUE_SNAPSHOT calls made (sizing call included) */
  int snapshot_calls = 0;
};

/**
 * This process's own KFD queues as KFD itself lists them (queue_id, gpu_id, ring base/size, ...):
 * open(dev_path) + pipe2 + DBG_TRAP ENABLE (target = getpid(), dbg_fd = the pipe's write end,
 * exception_mask 0) + GET_QUEUE_SNAPSHOT (first with num_queues 0 to size, then with room for
 * that many + 8, again while the count grows, at most 4 times) + DISABLE + close.
 *
 * SIDE EFFECTS (docs/kfd-formats.md#dbg_trap-queue-snapshot), which is why the JS side wants acceptSideEffects: true:
 *  - ENABLE of a runtime-enabled process (ROCr always enables the runtime) activates debug mode:
 *    GFXOFF is disabled, SPI debug is programmed per VMID, the trap handler's debug flag is set,
 *    and on GPUs with per-VMID debug (GC 9.4.2, 9.4.3 = MI200/MI300, 9.4.4, 9.5.0, >= 11) KFD
 *    refreshes the runlist: it preempts ALL queues of ALL processes on the device and maps them
 *    again. DISABLE undoes it with another such refresh. So one call preempts every queue on the
 *    device twice.
 *  - while enabled, another thread of this process that enables the ROCm runtime
 *    (AMDKFD_IOC_RUNTIME_ENABLE) blocks until the debugger — this function — would send it an
 *    EC_PROCESS_RUNTIME event; do not call this while the runtime is being initialised.
 *  - fails (and touches nothing) with EALREADY/EINVAL when the process is already being debugged
 *    (rocgdb), ENODEV on non-SOC15 GPUs, EBUSY if a queue holds GWS on a GPU without debug-GWS
 *    support, EINVAL with sched_policy=2 (no HWS).
 *  - exception_mask 0 everywhere: no exception is raised to the pipe and no queue's
 *    exception_status is cleared.
 * DISABLE is attempted after every successful ENABLE, also when the snapshot failed; a failed
 * DISABLE is reported in disable_err. Needs KFD ioctl >= 1.13.
 */
QueueSnapshotSelfResult QueueSnapshotSelf(const std::string& dev_path, const IoctlFn& ioctl_fn = nullptr);

}  // namespace kfd
}  // namespace gpucolo
