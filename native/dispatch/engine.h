// The measurement engine: drives one or more streams of probe kernels on a backend
// (gpu_plugin.h) from native threads for the whole run and returns per-launch timestamps.
// No N-API here; the addon (later) only fills a RunSpec and copies the arrays out.
//
// Threads: one submitter per stream, one completion thread for all streams, and the caller's
// thread (which waits for the end of the run, cancellation and the watchdog).
//
// Times: every time in the result is host CLOCK_MONOTONIC ns relative to the run origin (taken
// right before the submitters start). Device timestamps are mapped onto host time with
// device_offset_ns (device clock - host clock), measured before the run by bracketing
// read_device_time() between two host clock reads and keeping the tightest of several tries.
// A value that does not exist (a launch that never completed, a poll error) is NaN.
//
// Arrivals and coordinated omission: open-loop streams (kFixedRate, kPoisson, kList) compute each
// request's INTENDED arrival from the schedule alone, never from completions, and submit when it
// is due. When the submitter is behind (the in-flight cap is reached, the throttle holds it, a
// launch was slow, the OS woke it late) it submits late but `intended` stays, so latency measured
// as complete - intended includes the wait. Closed-loop streams (kClosedLoop) keep `inflight`
// launches outstanding; a new launch's intended time is the completion time of the launch whose
// completion made room for it (the first `inflight` launches are intended at 0).
//
// Completion: the completion thread polls, per stream, the oldest outstanding slot (streams run
// in order) and stamps complete_ns as soon as poll() says done. Between passes that found nothing
// it pauses poll_pause_ns (nanosleep with 1 ns timer slack); 0 = pure busy-poll with a CPU pause
// instruction. Trade-off: busy-polling gives the tightest complete_ns (detection delay ~ one
// poll() call) but burns a host core for the whole run, which on the cpu backend is a core taken
// from the "device"; a pause of a few us costs a few us of detection delay per launch (visible
// as complete_ns - device_end_ns) and a fraction of a core. With a pause the thread backs off:
// 1 us after a completion, doubling up to poll_pause_ns while nothing completes. The default
// (kAutoPollPause) picks 0 for GPU backends and 20 us for the cpu backend, whose "device" is
// made of host cores. In busy mode (pause 0) closed-loop submitters also spin up to 200 us for
// their next credit before blocking, so a closed loop of short kernels pays no futex wake-up.
//
// Slots: launch i of a stream uses slot i % GPUCOLO_SLOTS and a stream never has more than
// GPUCOLO_SLOTS - 1 launches in flight, so a slot is never reused while its launch is in flight.
// The completion thread calls poll() while the stream's submitter may call launch() on the same
// stream (different slots).
//
// Mechanisms (stream settings are echoed in StreamResult.priority/cu_mask/sm_count):
//  kNone          every stream at the runtime's default priority, 0 clamped into its range
//                 (CUDA 0 = least, HIP 0 = normal, cpu 0 = least); no masks.
//  kStreamPriority high-priority streams at priority_greatest, the others at priority_least.
//  kCuMask        HP streams get CUs [0, ceil(reserve*CUs)), the others the rest; needs
//                 supports_cu_mask (else UNSUPPORTED) and a reserve leaving >= 1 CU to each side.
//                 The mask has cu_mask_bits_per_unit bits per compute unit (2 on RDNA) and is
//                 refused (INVALID) when it would leave an XCC without a CU: KFD spreads mask
//                 bits round-robin over the XCCs and such a queue hangs (cu_mask_layout.h).
//  kSmPartition   sm_count = ceil(reserve*SMs) for HP, SMs - that for the others; needs
//                 supports_sm_partition. StreamResult.sm_count is the partition the driver made
//                 (stream_info()), sm_count_requested what was asked.
//  kThrottle      gpucolo's level-1 scheduler: low-priority launches in flight are counted over
//                 ALL low-priority streams together and kept <= throttle_k, and no new LP launch
//                 is made while any HP request is pending (its intended time has passed and it
//                 has not completed). HP can then wait for at most K LP kernels already launched.
//
// End of a run: no request intended at or after duration_ns is submitted; submitters also stop
// at max_launches, at the end of a kList, at the first launch error, or on cancel. Requests that
// arrived before the end but could not be submitted yet (a throttled or full stream) are still
// submitted afterwards, so the backlog is measured, not dropped. The engine then waits for the
// launches in flight for up to watchdog_ns (from the end of the run); what is still pending
// then is given up: status GPUCOLO_ERR_TIMEOUT, `error` names the watchdog and the streams,
// unsubmitted arrivals are counted in StreamResult.dropped. Streams
// are destroyed either way (on the cpu backend that aborts running kernels). On cancel the
// outstanding launches get a short grace (min(watchdog, 100 ms)) and the result is marked
// cancelled (status stays GPUCOLO_OK unless something else failed).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dispatch/gpu_plugin.h"

namespace gpucolo {
namespace dispatch {

enum class Arrival { kClosedLoop, kFixedRate, kPoisson, kList };
enum class Mechanism { kNone, kStreamPriority, kCuMask, kSmPartition, kThrottle };

const char* ArrivalName(Arrival a);
const char* MechanismName(Mechanism m);

struct StreamSpec {
  std::string name;
  bool high_priority = false;
  /**
   * stream-priority with more than two levels: this stream's level 0..levels-1 (higher = more
   * important), spread evenly over the backend's priority range (CUDA 0..-5 on recent GPUs, HIP
   * 1..-1, cpu 0..15); -1 = two levels from high_priority. The other mechanisms still split by
   * high_priority (a reserve or a throttle has two sides).
   */
  int level = -1;
  int levels = 0;
  gpucolo_kernel kernel{0, 1, 1};
  Arrival arrival = Arrival::kClosedLoop;
  /** kFixedRate: launch i intended at i / rate_hz; kPoisson: mean rate (exponential gaps) */
  double rate_hz = 0;
  /** kClosedLoop: launches kept outstanding (0 is taken as 1; at most GPUCOLO_SLOTS - 1) */
  uint32_t inflight = 1;
  /** kPoisson: std::mt19937_64 seed (same seed, same schedule) */
  uint64_t seed = 1;
  /** kList: intended arrival times, ns after the run origin, non-decreasing */
  std::vector<uint64_t> times_ns;
};

constexpr uint64_t kAutoPollPause = std::numeric_limits<uint64_t>::max();

struct RunSpec {
  const gpucolo_gpu_api* api = nullptr;
  int device = 0;
  /** requests intended at or after this are not submitted; 0 = no limit (then every stream
      needs max_launches or a kList, or the caller must pass a cancel flag) */
  uint64_t duration_ns = 0;
  /** launches intended before this are flagged warmup = 1 (kept in the arrays) */
  uint64_t warmup_ns = 0;
  /** per stream, 0 = unbounded */
  uint64_t max_launches = 0;
  Mechanism mechanism = Mechanism::kNone;
  /** kThrottle: low-priority launches in flight, counted over all low-priority streams together */
  uint32_t throttle_k = 1;
  /** kCuMask / kSmPartition: fraction of CUs/SMs kept for high-priority streams, 0 < reserve < 1 */
  double reserve = 0;
  /** how long to wait for launches in flight after the submitters stopped; 0 = 10 s */
  uint64_t watchdog_ns = 0;
  std::vector<StreamSpec> streams;
  // ---- tuning (beyond the brief; the defaults are fine for both backends) ----
  /** completion thread pause between fruitless passes; see above */
  uint64_t poll_pause_ns = kAutoPollPause;
  /** open-loop submitters sleep until intended - submit_spin_ns, then spin to the due time */
  uint64_t submit_spin_ns = 20000;
};

struct StreamResult {
  std::string name;
  bool high_priority = false;
  /** per launch, in submission order; ns relative to the run origin */
  std::vector<double> intended_ns, submit_ns, device_start_ns, device_end_ns, complete_ns;
  std::vector<uint8_t> warmup;
  uint64_t launches = 0, errors = 0;
  /** open loop: requests that had arrived but were never submitted (cut off by the watchdog or
      a cancel while the stream was behind); they have no entry in the arrays */
  uint64_t dropped = 0;
  /** first launch/poll error of this stream, one line */
  std::string error;
  /** what the stream was created with (after the mechanism was applied) */
  int priority = 0;
  /** kCuMask: the mask passed to stream_create (cu_mask_bits_per_unit bits per compute unit) */
  std::vector<uint32_t> cu_mask;
  /** kSmPartition: SMs asked for (ceil(reserve * SMs) or the rest), and the partition the driver
      made (stream_info(); rounded up to its granularity, e.g. 14 -> 16 on sm_90, and a request
      larger than what is left takes the rest); both 0 for a stream on the whole device */
  int sm_count_requested = 0;
  int sm_count = 0;
  /** compute units the stream's work may run on (partition as made, CUs its mask enables, or all) */
  int compute_units = 0;
  /** resident probe kernels of this stream's threads_per_block per CU (max_active_blocks()), and
      the blocks that fill the stream's compute units: compute_units * that; 0 = unknown. A
      kernel of fewer blocks leaves CUs idle (it does not "fill" its share of the device). */
  int max_active_blocks_per_cu = 0;
  uint64_t fill_blocks = 0;
};

struct RunResult {
  int status = GPUCOLO_OK;
  std::string error;
  /** device clock - host clock, ns, from the tightest bracket before the run */
  double device_offset_ns = 0;
  /** width of that bracket (an upper bound on the offset's error), ns */
  double device_offset_uncertainty_ns = 0;
  /** the same measurement after the run (drift check); NaN if not measured */
  double device_offset_end_ns = std::numeric_limits<double>::quiet_NaN();
  std::vector<StreamResult> streams;
  int compute_units = 0;
  int priority_least = 0, priority_greatest = 0;
  /** from the origin to the moment the last submitter stopped, ns */
  double submit_phase_ns = 0;
  /** from the origin to the end of the drain (everything completed or given up), ns */
  double elapsed_ns = 0;
  bool cancelled = false;
  /** the completion thread's pause actually used */
  uint64_t poll_pause_ns = 0;
};

/** Runs the measurement on the calling thread's behalf (blocks until the run is over). */
RunResult Run(const RunSpec& spec, const std::atomic<bool>* cancel = nullptr);

}  // namespace dispatch
}  // namespace gpucolo
