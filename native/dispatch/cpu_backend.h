// The "cpu" dispatch backend: always available, no GPU runtime. A pool of native worker threads
// acts as the device's compute units; streams are FIFO queues of probe kernels with a priority
// (least 0 .. greatest 15) and an optional CU mask (bit i = worker i may run the stream's blocks).
//
// Scheduling, with the semantics of GPU stream priorities:
//  - A kernel of `blocks` blocks is split into block tasks. A free worker takes the next block of
//    the highest-priority stream whose mask includes it; among streams of equal priority the one
//    whose head kernel became ready first (so equal priorities share the device in FIFO order,
//    kernel by kernel, like a hardware dispatcher without priorities).
//  - Running blocks are never preempted: a high-priority kernel waits for a worker to free up.
//  - Within a stream kernels run in order: a kernel's first block is dispatched only after every
//    block of the previous kernel on that stream finished.
//  - A block spins (busy-waits on CLOCK_MONOTONIC) until spin_ns have passed since it started.
//    An empty kernel (spin_ns 0) needs no worker: it starts and ends (same timestamp) as soon as
//    it reaches the head of its stream, inline in launch() when the stream is idle.
//  - Device timestamps are CLOCK_MONOTONIC ns: start of the kernel's first block, end of the block
//    that ended last (not the one retired last); read_device_time() is CLOCK_MONOTONIC, so the device/host offset is ~0.
//  - threads_per_block is accepted and ignored.
//
// Beyond the header's contract (gpu_plugin.h):
//  - one device (index 0); every entry point starts the worker pool if it is not running, so
//    init() is optional and idempotent; shutdown() aborts and frees every remaining stream and
//    stops the workers (a later call starts a fresh pool).
//  - poll(): 1 done, 0 in flight, GPUCOLO_ERR_INVALID for a slot never launched (or out of range).
//  - synchronize(timeout_ns): waits up to timeout_ns; 0 only checks (TIMEOUT if anything is still
//    queued or running). A timeout leaves the stream and the backend as they were.
//  - stream_destroy() is the kernel-abort path: queued kernels are dropped and running blocks of
//    the stream stop spinning at once (their slots never complete), so a kernel that would spin
//    for hours cannot hang teardown; it returns once no worker touches the stream any more.
//  - sm_count != 0 -> GPUCOLO_ERR_UNSUPPORTED (no SM partitions); a CU mask must select at least
//    one existing worker (bits past the last worker are ignored).
//
// Host/device separation on shared cores (the defaults, see CpuBackendOptions):
//  - Workers run at nice 19, each pinned to one CPU. They stand for the GPU, so host threads of
//    the process (the engine's submitters and completion poller, Node's event loop) must get a
//    core as soon as they wake, as they would next to a real GPU. Measured on a quiet 2-core VM
//    (kernel 6.18, EEVDF), 2 LP streams + a 200 Hz HP stream: with nice-0 workers the completion
//    poller's detection delay had a P99 of 1-4 ms (the woken poller waited out the spinning
//    worker's slice); at nice 19 ~40-100 us. Unpinned nice-19 workers were stacked onto one CPU
//    by the load balancer (their weight is tiny) whenever host threads ran on the other, so
//    reserved workers (CU masks) stopped being reserved; pinning fixes that.
//  - launch() and poll() take no lock: launch() hands the kernel to the workers through a
//    per-stream single-producer ring and wakes sleeping workers with a futex. A low-priority
//    worker preempted inside the device lock therefore never stalls a host thread (it did, by up
//    to 100 ms under foreign load, before the ring).
//  - The price of nice 19: under foreign CPU load the workers get little CPU and blocks overrun
//    their spin time (a block ends at its first clock check after spin_ns, however late the
//    worker runs again). Blocks spin on wall-clock time, so a briefly preempted block still ends
//    on time. Timing assertions on this backend hold on an otherwise idle host only.
#pragma once

#include "dispatch/gpu_plugin.h"

namespace gpucolo {
namespace dispatch {

/** The built-in cpu backend (a static table; never null). */
const gpucolo_gpu_api* CpuBackendApi();

struct CpuBackendOptions {
  /** worker threads = compute units; 0 = std::thread::hardware_concurrency(), at least 2 */
  int workers = 0;
  /** nice value of the worker threads, 0..19 (higher = yields sooner to host threads) */
  int worker_nice = 19;
  /** run workers under SCHED_IDLE instead (they then only get otherwise idle CPU time) */
  bool idle_priority_workers = false;
  /** pin worker i to the i-th CPU the process may use (modulo their number) */
  bool pin_workers = true;
};

/**
 * Sets the pool used from now on (mainly for tests). When the pool is running and no stream
 * exists it is stopped and restarted with the new options at once; with live streams ->
 * GPUCOLO_ERR_INVALID and nothing changes. workers < 0 or > 1024 -> GPUCOLO_ERR_INVALID.
 */
int CpuBackendConfigure(const CpuBackendOptions& options);

/** The options in effect (workers resolved to the actual count). */
CpuBackendOptions CpuBackendCurrentOptions();

/**
 * The defaults the pool starts with: CpuBackendOptions{} adjusted by the environment variables
 * GPUCOLO_CPU_WORKERS, GPUCOLO_CPU_WORKER_NICE (0..19), GPUCOLO_CPU_PIN (0/1) and
 * GPUCOLO_CPU_SCHED_IDLE (0/1); invalid values are ignored. On a host with foreign CPU load,
 * GPUCOLO_CPU_WORKER_NICE=0 keeps the workers from being starved (at the cost of ms-scale noise
 * in host-side completion times, see above).
 */
CpuBackendOptions CpuBackendDefaultOptions();

}  // namespace dispatch
}  // namespace gpucolo
