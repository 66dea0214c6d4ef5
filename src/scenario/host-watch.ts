/**
 * What else ran while a phase measured: CPU time other processes took from the host (and steal
 * time, load average) from /proc/stat via src/stats/host-load.ts, and, on GPU backends, other
 * processes on the GPU where the platform can tell.
 *
 * GPUs: on AMD the KFD lists every process that has the GPU open, with its queues
 * (/sys/class/kfd/kfd/proc/<pid>/queues, no root needed); a process other than gpucolo and its
 * workers with a queue there is using the GPU. On NVIDIA, NVML can list running processes, but
 * gpucolo's NVML binding (src/energy) does not expose that call, so "other processes on the GPU"
 * is said to be unknown rather than guessed.
 *
 * Both are factories so tests can inject figures instead of needing a loaded host or a GPU.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readKfdProcs } from '../kfd/index.js';
import { hostLoadWindow, type HostLoad } from '../stats/index.js';

export interface WatchContext {
  phase: string;
  /** 1-based */
  round: number;
  /** gpucolo's own processes besides this one (model workers), asked when the window opens and closes */
  ownPids: () => number[];
}

/** Starts a host-load window for one phase run; stop() gives its figures. */
export type HostLoadFactory = (ctx: WatchContext) => { stop(): HostLoad };

export const defaultHostLoad: HostLoadFactory = (ctx) => hostLoadWindow({ ownPids: ctx.ownPids });

/** Other processes on the GPU during a run, or why that cannot be told. */
export type GpuSharing = { foreign: { pid: number; queues: number }[]; source: string } | { unknown: string };

/** Checks the GPU for other processes, at the end of a run's measured window (workers still alive). */
export type GpuSharingCheck = (ctx: WatchContext & { device: 'hip' | 'cuda' }) => GpuSharing;

export const NVML_PROCESSES_UNKNOWN = "other processes on an NVIDIA GPU: unknown (gpucolo's NVML binding does not expose NVML's running-process list)";

/**
 * Processes with KFD queues that are not gpucolo's own. KFD names processes by their pid in the
 * initial pid namespace: when none of gpucolo's own pids is in the list (gpucolo runs in a
 * container), which entries are others cannot be told, and the answer is unknown.
 */
export function kfdGpuSharing(ownPids: number[], sysfsRoot = '/sys'): GpuSharing {
  const dir = path.join(sysfsRoot, 'class/kfd/kfd/proc');
  if (!fs.existsSync(dir)) return { unknown: `other processes on the GPU: unknown (no KFD process list at ${dir})` };
  let procs;
  try {
    procs = readKfdProcs({ sysfsRoot, impl: 'ts' }).procs;
  } catch (err) {
    return { unknown: `other processes on the GPU: unknown (${dir}: ${(err as Error).message.split('\n')[0]})` };
  }
  const own = new Set(ownPids);
  if (!procs.some((p) => own.has(p.pid))) {
    return { unknown: `other processes on the GPU: unknown (KFD lists ${procs.length} process(es) by host pid and none of gpucolo's own pids ${[...own].join(', ')} is among them: another pid namespace)` };
  }
  const foreign = procs.filter((p) => !own.has(p.pid) && p.queues.length > 0).map((p) => ({ pid: p.pid, queues: p.queues.length }));
  return { foreign, source: 'KFD' };
}

export const defaultGpuSharing: GpuSharingCheck = (ctx) =>
  ctx.device === 'cuda' ? { unknown: NVML_PROCESSES_UNKNOWN } : kfdGpuSharing([process.pid, ...ctx.ownPids()]);
