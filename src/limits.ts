/**
 * Limits of the dispatch engine that a scenario's probe form must stay within: the dispatch spec
 * schema (src/dispatch/run.ts) and the scenario schema (src/scenario/schema.ts, and through it
 * schema/scenario.schema.json) both use these, so a scenario that passes its schema is one the
 * engine runs, instead of failing every phase at dispatch after the run has started.
 */

/** The longest probe kernel (spin) one launch may take: 60 s. */
export const MAX_KERNEL_NS = 60e9;

/** A dispatch run (one phase: warm-up + measured time) lasts at least 1 ms ... */
export const MIN_DISPATCH_SPAN_NS = 1e6;
/** ... and at most 1 h. */
export const MAX_DISPATCH_SPAN_NS = 3600e9;

/**
 * One request's device time (kernel x kernels, x waves with blocks "fill") at most: the longest
 * phase. A longer request can never finish inside a phase, and its drain time would overflow the
 * phase's timer.
 */
export const MAX_REQUEST_NS = MAX_DISPATCH_SPAN_NS;

/** Blocks per kernel launch. */
export const MAX_BLOCKS = 1 << 20;
/** Threads per block (the CUDA and HIP limit). */
export const MAX_THREADS_PER_BLOCK = 1024;
/** Launches one stream may have in flight (closed-loop concurrency). */
export const MAX_INFLIGHT = 1024;
/** The throttle mechanism's window (low-priority kernels in flight). */
export const MAX_THROTTLE_K = 1024;
/** Streams in one dispatch run (a scenario's tasks, each one stream). */
export const MAX_STREAMS = 64;
/** Arrival rate of one stream, per second. */
export const MAX_RATE_HZ = 1e7;
