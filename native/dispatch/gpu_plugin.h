/*
 * The C ABI every dispatch backend implements: the built-in cpu backend (native/dispatch) and the
 * GPU plugins gpucolo_cuda.so / gpucolo_hip.so (native/plugins), which the addon dlopen()s so that
 * no GPU runtime is ever linked into gpucolo.node.
 *
 * Conventions:
 *  - Functions return 0 on success, a negative gpucolo status on failure; when `err` is given
 *    they write one line of text (runtime error name + message) into it, NUL-terminated.
 *  - Times are nanoseconds. Device timestamps come from the device's own global timer
 *    (CUDA %globaltimer, HIP wall_clock64 scaled, cpu CLOCK_MONOTONIC); read_device_time() gives
 *    the same clock from the host so the engine can map device times onto host time.
 *  - A launch writes its device start/end time into a host-visible slot the stream owns (a ring
 *    of GPUCOLO_SLOTS entries); poll() reads it without synchronizing the stream.
 *  - Everything may be called from any thread. The engine calls launch() from a stream's submitter
 *    thread while its completion thread calls poll() on the same stream (always different slots):
 *    a backend must allow exactly that concurrency, nothing more is asked of it.
 *  - stream_destroy() may be called with launches still in flight (after a watchdog timeout or a
 *    cancel): it must not block on them (beyond a bounded cancel grace) and must not free memory a
 *    running kernel still writes nor destroy the context it runs in. The GPU plugins then keep the
 *    stream's resources aside and free them once its work has finished (checked at the next
 *    stream_create() and at shutdown()); they return GPUCOLO_ERR_TIMEOUT to say so. The handle
 *    is invalid for the caller either way.
 *  - device_info() must not launch work on the device: `gpucolo doctor` lists every backend's
 *    devices. Anything that needs a kernel (timer resolution, clock calibration) is measured on
 *    the first stream_create() or read_device_time() and reported as 0 (unknown) until then.
 *  - synchronize() past its timeout returns GPUCOLO_ERR_TIMEOUT. The GPU plugins then cancel the
 *    stream's running probe kernels (they check a cancel flag) so the stream is usable again; the
 *    cpu backend leaves them running (timeout 0 is a pure check there). The engine itself never
 *    calls synchronize(): it runs its own watchdog over poll(). poll() on a slot never launched
 *    returns GPUCOLO_ERR_INVALID.
 */
#ifndef GPUCOLO_GPU_PLUGIN_H
#define GPUCOLO_GPU_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: device_info gained occupancy and XCC/SE layout fields, the api gained max_active_blocks()
      and stream_info() (partition sizes as made) */
#define GPUCOLO_GPU_ABI 2
/* launch slots per stream: launches in flight on one stream must stay below this */
#define GPUCOLO_SLOTS 4096u

enum gpucolo_status {
  GPUCOLO_OK = 0,
  GPUCOLO_ERR_RUNTIME = -1,     /* the runtime reported an error (text in err) */
  GPUCOLO_ERR_NO_DEVICE = -2,   /* no device, or the index is out of range */
  GPUCOLO_ERR_UNSUPPORTED = -3, /* e.g. a CU mask on CUDA, SM partitions without green contexts */
  GPUCOLO_ERR_INVALID = -4,     /* bad argument (priority out of range, slot in use, ...) */
  GPUCOLO_ERR_TIMEOUT = -5      /* synchronize() ran past its timeout (a kernel that never ends) */
};

typedef struct gpucolo_device_info {
  char name[128];
  /* "sm_90", "gfx942", "x86_64" */
  char arch[64];
  /* SMs / CUs / worker threads */
  int compute_units;
  /* stream priority range as the runtime defines it: greatest = highest priority.
     CUDA: least 0, greatest -5 (numerically lower is higher); HIP: least 1, greatest -1; cpu: 0 / 15 */
  int priority_least;
  int priority_greatest;
  int supports_cu_mask;
  int supports_sm_partition;
  /* resolution of the device timer, ns (0 = unknown, e.g. not measured yet) */
  double timer_resolution_ns;
  /* ---- ABI 2 ---- */
  /* the runtime's limit of threads per block (cpu: 1024, threads are not simulated) */
  int max_threads_per_block;
  /* "fill": probe kernels of fill_threads_per_block threads each, max_active_blocks_per_cu of them
     resident on every CU at once (cudaOccupancyMaxActiveBlocksPerMultiprocessor /
     hipOccupancyMaxActiveBlocksPerMultiprocessor for the probe kernel; cpu: 1 per worker), so
     compute_units * max_active_blocks_per_cu blocks occupy the whole device. Other block sizes:
     max_active_blocks(). */
  int fill_threads_per_block;
  int max_active_blocks_per_cu;
  /* AMD chiplets: XCCs of the device (MI300X 8, MI308X 4; 1 on single-die GPUs, NVIDIA and cpu),
     shader engines per XCC, shader arrays per shader engine; 0 = unknown. KFD spreads CU-mask
     bits over them (see native/dispatch/cu_mask_layout.h). */
  int num_xcc;
  int num_se_per_xcc;
  int num_sh_per_se;
  /* CU-mask bits per compute unit: 1, or 2 on RDNA (gfx10+), whose compute_units counts WGPs of
     two CUs and whose KFD enables CUs in WGP pairs; 0 when CU masks are unsupported */
  int cu_mask_bits_per_unit;
} gpucolo_device_info;

/* what a stream was actually given (the driver may round a request) */
typedef struct gpucolo_stream_info {
  /* SMs of the stream's green-context partition as the driver made it (cuDevSmResourceSplitByCount
     rounds up: multiples of 8 on sm_90); 0 = the whole device */
  int sm_count;
  /* compute units the stream's work may run on: the partition's SMs, the CUs its mask selects
     (existing ones only), or all of them */
  int compute_units;
} gpucolo_stream_info;

typedef struct gpucolo_stream_opts {
  int device;
  /* in the runtime's own range (see priority_least/greatest) */
  int priority;
  /* AMD / cpu: bit i = CU (or worker) i may run this stream's work; NULL = all */
  const uint32_t* cu_mask;
  uint32_t cu_mask_words;
  /* NVIDIA green contexts: run this stream on a partition of this many SMs; 0 = whole device */
  int sm_count;
} gpucolo_stream_opts;

typedef struct gpucolo_stream gpucolo_stream;

typedef struct gpucolo_kernel {
  /* 0 = empty kernel; else every block spins until this much device time has passed since the
     block started (measured on the device timer, so no clock-rate calibration is needed) */
  uint64_t spin_ns;
  uint32_t blocks;
  uint32_t threads_per_block;
} gpucolo_kernel;

typedef struct gpucolo_gpu_api {
  int abi;
  /* "cpu", "cuda", "hip" */
  const char* backend;
  /* loads/initialises the runtime; a missing driver is an error here, not a crash */
  int (*init)(char* err, unsigned errlen);
  int (*device_count)(int* out, char* err, unsigned errlen);
  int (*device_info)(int device, gpucolo_device_info* out, char* err, unsigned errlen);
  int (*stream_create)(const gpucolo_stream_opts* opts, gpucolo_stream** out, char* err, unsigned errlen);
  int (*stream_destroy)(gpucolo_stream* s);
  /* asynchronous: enqueue one probe kernel whose device start/end times go to `slot` */
  int (*launch)(gpucolo_stream* s, const gpucolo_kernel* k, uint32_t slot, char* err, unsigned errlen);
  /* 1 = the launch in `slot` finished (times filled), 0 = not yet, < 0 = error */
  int (*poll)(gpucolo_stream* s, uint32_t slot, uint64_t* device_start_ns, uint64_t* device_end_ns);
  /* waits for every launch of the stream; GPUCOLO_ERR_TIMEOUT after timeout_ns (the watchdog) */
  int (*synchronize)(gpucolo_stream* s, uint64_t timeout_ns, char* err, unsigned errlen);
  /* the device timer as seen from the host now */
  int (*read_device_time)(int device, uint64_t* out_ns, char* err, unsigned errlen);
  /* releases everything init() acquired */
  void (*shutdown)(void);
  /* ---- ABI 2 ---- */
  /* probe kernels of threads_per_block threads that can be resident on one CU/SM at once */
  int (*max_active_blocks)(int device, uint32_t threads_per_block, int* out, char* err, unsigned errlen);
  /* what the stream was created with, as made (see gpucolo_stream_info) */
  int (*stream_info)(gpucolo_stream* s, gpucolo_stream_info* out);
} gpucolo_gpu_api;

/* the one symbol a plugin exports */
typedef const gpucolo_gpu_api* (*gpucolo_gpu_get_api_fn)(void);
#define GPUCOLO_GPU_GET_API "gpucolo_gpu_get_api"

#ifdef __cplusplus
}
#endif

#endif /* GPUCOLO_GPU_PLUGIN_H */
