/**
 * The start times of KFD processes, read when a sample is taken: twin of the native sampler's
 * NotePids (native/trace/sampler.cc) for the TS sampler. A process is its pid plus its start
 * time (/proc/<pid>/stat field 22): when a pid's queue rows change, or the pid is new, the start
 * time is read, so the tracer can tell a pid taken over by another process from the same process
 * creating or destroying queues. Reading it at the sample's time (not when JS gets the sample)
 * keeps it right for samples handed over in batches, up to a second later.
 */
import type { ProcsRaw } from '../kfd/raw.js';
import { PROCS_PROC_COLS, PROCS_QUEUE_COLS } from '../kfd/raw.js';
import { ProcsProcCol as P, ProcsQueueCol as Q } from '../kfd/columns.js';
import { readStat } from '../supervisor/proctree.js';
import { timedIo } from '../kfd/io-clock.js';

/** A process's queue rows without their process index (which moves when other processes come and go). */
function queueRows(procs: ProcsRaw, row: number): string {
  const first = procs.procs[row * PROCS_PROC_COLS + P.firstQueue];
  const count = procs.procs[row * PROCS_PROC_COLS + P.queueCount];
  const out: number[] = [];
  for (let q = first; q < first + count; q++) {
    const o = q * PROCS_QUEUE_COLS;
    out.push(procs.queues[o + Q.qid], procs.queues[o + Q.type], procs.queues[o + Q.size], procs.queues[o + Q.gpuId]);
  }
  return out.join(',');
}

export class PidStartReader {
  /** pid -> queue rows and start time, as the last sample showed them */
  private seen = new Map<number, { rows: string; start: number }>();
  constructor(private readonly procRoot: string) {}

  /**
   * Pairs (pid, start time; -1 unreadable) of the processes of `procs` that are new or whose
   * queue rows changed since the last call; undefined when there is none.
   */
  read(procs: ProcsRaw): Float64Array | undefined {
    const next = new Map<number, { rows: string; start: number }>();
    const starts: number[] = [];
    for (let r = 0; r < procs.procs.length / PROCS_PROC_COLS; r++) {
      const pid = procs.procs[r * PROCS_PROC_COLS + P.pid];
      const rows = queueRows(procs, r);
      const before = this.seen.get(pid);
      if (before && before.rows === rows) {
        next.set(pid, before);
        continue;
      }
      // the file's read is the kernel's side of the sample (ioClock), as in the native sampler
      const start = timedIo(() => readStat(this.procRoot, pid))?.startTicks ?? -1;
      starts.push(pid, start);
      // an unreadable stat keeps the start time known before (the process may be exiting)
      next.set(pid, { rows, start: start < 0 && before ? before.start : start });
    }
    this.seen = next;
    return starts.length ? Float64Array.from(starts) : undefined;
  }
}
