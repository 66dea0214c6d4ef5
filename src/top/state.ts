/**
 * What `gpucolo top` knows at one moment: the assembled state a frame is built from. Both data
 * sources produce it: the live one (src/top/live.ts: the trace sampler, SampleAssembler and
 * EventDeriver of src/trace/) and a replayed trace (src/top/replay.ts). The frame
 * (src/top/frame.ts) is a pure function of this and the view state (src/top/keys.ts).
 *
 * Unknown is null, never 0: a counter the input does not hold (a trace records no VRAM) is null
 * and shows as '-'.
 */
import type { KfdProcGpuStats } from '../kfd/types.js';
import type { TraceEvent, TraceGpu, TraceSample } from '../trace/schema.js';

/** The CP slots (HQDs) an XCC has: "pipe/queue" strings, as the full hqds dump lists them. */
export type XccSlots = Map<number, Set<string>>;

/** What sysfs says about one process beyond its queues (no root needed). */
export interface TopProcessInfo {
  /** /proc/<pid>/status Name; null when unreadable */
  name: string | null;
  /** per-GPU sysfs counters (VRAM, SDMA time, evictions, CU occupancy, faults, paging) */
  gpus: KfdProcGpuStats[];
}

/** The sampler's own cost, from the last samples. */
export interface TopCost {
  /** 'native-thread' | 'ts-timer' while sampling; 'recorded' for a replayed trace */
  sampler: 'native-thread' | 'ts-timer' | 'recorded';
  intervalNs: number;
  /** reading the pseudo-files in the last sample */
  readNs: number | null;
  parseNs: number | null;
  joinNs: number | null;
  /** the sampling thread's CPU time over the last interval, as a share of one core (0.01 = 1%) */
  samplerCpuShare: number | null;
  /** the JS thread's (assembling, events, this view): native sampler only, else null */
  jsCpuShare: number | null;
  /** deadlines skipped so far */
  missed: number;
}

/** Where the replay stands (replay only). */
export interface TopReplayPosition {
  file: string;
  /** t_ns of the first and the last sample */
  startNs: number;
  endNs: number;
  /** index of the sample shown, of `count` */
  index: number;
  count: number;
}

export interface TopSnapshot {
  /** one line: what is being watched ("host /sys", "tree DIR", "replay FILE") */
  label: string;
  gpus: TraceGpu[];
  /** the last sample; null before the first one arrived */
  sample: TraceSample | null;
  /** CP slots per GPU (by gpuId) and XCC, from the full hqds dump; null when not known (no debugfs, a trace) */
  slots: Map<string, XccSlots> | null;
  /** sysfs per-process information by pid; null when not known (a trace records none) */
  procs: Map<number, TopProcessInfo> | null;
  /** lifecycle events so far, oldest first (a bounded tail) */
  events: TraceEvent[];
  cost: TopCost;
  /** what cannot be shown and why, one line each (debugfs unreadable, not recorded) */
  missing: string[];
  replay: TopReplayPosition | null;
}

/** Events kept for the ticker. */
export const EVENT_TAIL = 200;
