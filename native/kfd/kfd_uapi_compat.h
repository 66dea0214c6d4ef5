// The KFD ioctl structs and numbers gpucolo needs beyond what Debian 12's <linux/kfd_ioctl.h>
// (KFD ioctl 1.11) declares: the 1.13+ debugger API (AMDKFD_IOC_DBG_TRAP: ENABLE, DISABLE,
// GET_QUEUE_SNAPSHOT) and, for one place to look, AMDKFD_IOC_UPDATE_QUEUE (present since 1.0).
//
// Copied field by field from the upstream uapi header include/uapi/linux/kfd_ioctl.h (KFD ioctl
// 1.17; docs/kfd-formats.md#ioctls). Own names in an own namespace, so this header never clashes with a newer
// system header; kfd_ioctl.cc checks both agree (sizes and ioctl numbers) whenever the system
// header is new enough to declare them. Self-contained: no <linux/kfd_ioctl.h>, no <drm/drm.h>,
// so the C++ tests can include it without the compat/drm shim.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gpucolo {
namespace kfd {
namespace uapi {

// ------------------------------------------------------------------------------ limits
/** kfd_ioctl_update_queue: (queue_percentage & 0xFF) > this -> -EINVAL */
constexpr uint32_t kMaxQueuePercentage = 100;  // KFD_MAX_QUEUE_PERCENTAGE
/** queue_priority > this -> -EINVAL */
constexpr uint32_t kMaxQueuePriority = 15;  // KFD_MAX_QUEUE_PRIORITY
/** ring_size below this is clamped up to it (kernels of 2025+; not an error) */
constexpr uint32_t kMinQueueRingSize = 1024;  // KFD_MIN_QUEUE_RING_SIZE

// ------------------------------------------------------------------------------ structs
/** struct kfd_ioctl_update_queue_args (AMDKFD_IOC_UPDATE_QUEUE, _IOW: nothing comes back) */
struct UpdateQueueArgs {
  uint64_t ring_base_address;  // to KFD
  uint32_t queue_id;           // to KFD
  uint32_t ring_size;          // to KFD
  /** bits 0-7 percentage, bits 8-15 pm4_target_xcc (GC 9.4.3 kernels; older kernels take the
   *  whole word as the percentage) */
  uint32_t queue_percentage;  // to KFD
  uint32_t queue_priority;    // to KFD
};

/** struct kfd_runtime_info (copied out by DBG_TRAP ENABLE to rinfo_ptr) */
struct RuntimeInfo {
  uint64_t r_debug;
  uint32_t runtime_state;  // enum kfd_dbg_runtime_state
  uint32_t ttmp_setup;
};

/** struct kfd_ioctl_dbg_trap_enable_args */
struct DbgTrapEnableArgs {
  uint64_t exception_mask;  // IN: exceptions to raise to the debugger (written to dbg_fd)
  uint64_t rinfo_ptr;       // IN: -> RuntimeInfo
  uint32_t rinfo_size;      // IN/OUT
  uint32_t dbg_fd;          // IN: an open fd of the caller (pipe/eventfd) KFD notifies
};

/** struct kfd_ioctl_dbg_trap_queue_snapshot_args */
struct DbgTrapQueueSnapshotArgs {
  uint64_t exception_mask;    // IN: exception_status bits to clear on each queue
  uint64_t snapshot_buf_ptr;  // IN: num_queues entries of entry_size bytes
  uint32_t num_queues;        // IN: capacity (0 = only count); OUT: queues that exist
  uint32_t entry_size;        // IN: stride (non-zero); OUT: min(IN, sizeof(QueueSnapshotEntry))
};

/** struct kfd_ioctl_dbg_trap_args: {pid, op, union of the per-op args (24 bytes)} */
struct DbgTrapArgs {
  uint32_t pid;  // target process (caller's pid namespace)
  uint32_t op;   // DbgTrapOp
  union {
    DbgTrapEnableArgs enable;
    DbgTrapQueueSnapshotArgs queue_snapshot;
    /** the union's full width; DISABLE uses none of it */
    uint64_t raw[3];
  };
};

/** struct kfd_queue_snapshot_entry (KFD ioctl 1.13+) */
struct QueueSnapshotEntry {
  uint64_t exception_status;
  uint64_t ring_base_address;
  uint64_t write_pointer_address;
  uint64_t read_pointer_address;
  uint64_t ctx_save_restore_address;
  uint32_t queue_id;
  uint32_t gpu_id;
  uint32_t ring_size;
  uint32_t queue_type;  // KFD_IOC_QUEUE_TYPE_*
  uint32_t ctx_save_restore_area_size;
  uint32_t reserved;
};

// ------------------------------------------------------------------------------ enums
/** enum kfd_dbg_trap_operations (the ones gpucolo uses, and the numbering around them) */
enum DbgTrapOp : uint32_t {
  kDbgTrapEnable = 0,
  kDbgTrapDisable = 1,
  kDbgTrapSendRuntimeEvent = 2,
  kDbgTrapSetExceptionsEnabled = 3,
  kDbgTrapSuspendQueues = 6,
  kDbgTrapResumeQueues = 7,
  kDbgTrapGetQueueSnapshot = 13,
  kDbgTrapGetDeviceSnapshot = 14,
};

/** KFD_IOC_QUEUE_TYPE_* as the queue snapshot reports them */
enum QueueType : uint32_t {
  kQueueTypeCompute = 0,     // PM4
  kQueueTypeSdma = 1,
  kQueueTypeComputeAql = 2,
  kQueueTypeSdmaXgmi = 3,
  kQueueTypeSdmaByEngId = 4,  // 1.17; rewritten to SDMA/SDMA_XGMI at creation, not expected here
};

/** enum kfd_dbg_runtime_state */
enum RuntimeState : uint32_t {
  kRuntimeDisabled = 0,
  kRuntimeEnabled = 1,
  kRuntimeEnabledBusy = 2,
  kRuntimeEnabledError = 3,
};

/** EC_QUEUE_NEW and KFD_EC_MASK(ecode) = 1ULL << (ecode - 1) */
constexpr uint32_t kEcQueueNew = 31;
constexpr uint64_t EcMask(uint32_t ecode) { return 1ULL << (ecode - 1); }

// ------------------------------------------------------------------------------ ioctl numbers
/** asm-generic _IOC encoding: dir << 30 | size << 16 | type << 8 | nr (x86-64, arm64) */
constexpr uint32_t IocEncode(uint32_t dir, uint32_t nr, uint32_t size) { return (dir << 30) | (size << 16) | (uint32_t('K') << 8) | nr; }
constexpr uint32_t kIocWrite = 1;
constexpr uint32_t kIocRead = 2;

constexpr uint32_t kIocUpdateQueue = IocEncode(kIocWrite, 0x07, sizeof(UpdateQueueArgs));          // AMDKFD_IOC_UPDATE_QUEUE
constexpr uint32_t kIocDbgTrap = IocEncode(kIocRead | kIocWrite, 0x26, sizeof(DbgTrapArgs));  // AMDKFD_IOC_DBG_TRAP

// ------------------------------------------------------------------------------ layout checks
// Sizes and offsets as on x86-64 with the upstream header (docs/kfd-formats.md#ioctls).
static_assert(sizeof(UpdateQueueArgs) == 24, "kfd_ioctl_update_queue_args is 24 bytes");
static_assert(offsetof(UpdateQueueArgs, queue_id) == 8 && offsetof(UpdateQueueArgs, queue_priority) == 20, "update_queue layout");
static_assert(sizeof(RuntimeInfo) == 16, "kfd_runtime_info is 16 bytes");
static_assert(sizeof(DbgTrapEnableArgs) == 24, "kfd_ioctl_dbg_trap_enable_args is 24 bytes");
static_assert(sizeof(DbgTrapQueueSnapshotArgs) == 24, "kfd_ioctl_dbg_trap_queue_snapshot_args is 24 bytes");
static_assert(sizeof(DbgTrapArgs) == 32, "kfd_ioctl_dbg_trap_args is 32 bytes");
static_assert(offsetof(DbgTrapArgs, enable) == 8 && offsetof(DbgTrapArgs, queue_snapshot) == 8, "dbg_trap union at 8");
static_assert(sizeof(QueueSnapshotEntry) == 64, "kfd_queue_snapshot_entry is 64 bytes");
static_assert(offsetof(QueueSnapshotEntry, ring_base_address) == 8 && offsetof(QueueSnapshotEntry, ctx_save_restore_address) == 32 &&
                  offsetof(QueueSnapshotEntry, queue_id) == 40 && offsetof(QueueSnapshotEntry, gpu_id) == 44 &&
                  offsetof(QueueSnapshotEntry, ring_size) == 48 && offsetof(QueueSnapshotEntry, queue_type) == 52 &&
                  offsetof(QueueSnapshotEntry, ctx_save_restore_area_size) == 56,
              "kfd_queue_snapshot_entry layout");
static_assert(kIocUpdateQueue == 0x40184b07u, "AMDKFD_IOC_UPDATE_QUEUE (docs/kfd-formats.md#ioctls)");
static_assert(kIocDbgTrap == 0xc0204b26u, "AMDKFD_IOC_DBG_TRAP (docs/kfd-formats.md#ioctls)");
static_assert(EcMask(kEcQueueNew) == 0x40000000ull, "KFD_EC_MASK(EC_QUEUE_NEW)");

}  // namespace uapi
}  // namespace kfd
}  // namespace gpucolo
