/**
 * A sysfs-only sample (no debugfs read) assembled per process: a process whose queue rows are the
 * same as in the last sysfs-only sample keeps its trace process (the same object), and only the
 * processes that changed are built and joined again. With 64 processes of 8 queues and one queue
 * created per sample, that is one process's work instead of all of them (bench/RESULTS.md).
 *
 * It applies only where the whole-sample join could not say anything about one process that
 * depends on another: no debugfs (the join of sysfs queues is per process: their keys, types,
 * GPUs and nodes come from each queue's own row and the topology), the proc directory readable,
 * and no join warning in the last sample or in this one's partial join. Anything else returns
 * null and SampleAssembler joins the whole sample. test/trace-assemble-sysfs.test.ts checks the
 * result against a whole join on random sequences of trees.
 */
import { ProcsProcCol as P, ProcsQueueCol as Q } from '../kfd/columns.js';
import { PROCS_PROC_COLS, PROCS_QUEUE_COLS, type ProcsRaw } from '../kfd/raw.js';
import type { TraceProcess } from './schema.js';

/** Per pid: where its queue rows are in a proc table. */
function queueRows(procs: ProcsRaw): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (let r = 0; r < procs.procs.length / PROCS_PROC_COLS; r++) {
    const b = r * PROCS_PROC_COLS;
    out.set(procs.procs[b + P.pid], [procs.procs[b + P.firstQueue], procs.procs[b + P.queueCount]]);
  }
  return out;
}

/** The same queues (every column but the process row, which may differ) in the same order. */
function sameQueues(a: ProcsRaw, ra: [number, number], b: ProcsRaw, rb: [number, number]): boolean {
  if (ra[1] !== rb[1]) return false;
  for (let i = 0; i < ra[1]; i++) {
    const x = (ra[0] + i) * PROCS_QUEUE_COLS;
    const y = (rb[0] + i) * PROCS_QUEUE_COLS;
    for (let c = 0; c < PROCS_QUEUE_COLS; c++) if (c !== Q.proc && !Object.is(a.queues[x + c], b.queues[y + c])) return false;
  }
  return true;
}

/** The rows of some processes of a proc table, as a table of their own (metrics left out: a trace does not record them). */
export function procsSubset(procs: ProcsRaw, pids: ReadonlySet<number>): ProcsRaw {
  const p: number[] = [];
  const q: number[] = [];
  for (let r = 0; r < procs.procs.length / PROCS_PROC_COLS; r++) {
    const b = r * PROCS_PROC_COLS;
    if (!pids.has(procs.procs[b + P.pid])) continue;
    const first = procs.procs[b + P.firstQueue];
    const count = procs.procs[b + P.queueCount];
    const row = p.length / PROCS_PROC_COLS;
    const pr = new Array<number>(PROCS_PROC_COLS).fill(0);
    pr[P.pid] = procs.procs[b + P.pid];
    pr[P.pasid] = procs.procs[b + P.pasid];
    pr[P.firstQueue] = q.length / PROCS_QUEUE_COLS;
    pr[P.queueCount] = count;
    p.push(...pr);
    for (let i = 0; i < count; i++) {
      const x = (first + i) * PROCS_QUEUE_COLS;
      const qr = new Array<number>(PROCS_QUEUE_COLS);
      for (let c = 0; c < PROCS_QUEUE_COLS; c++) qr[c] = procs.queues[x + c];
      qr[Q.proc] = row;
      q.push(...qr);
    }
  }
  return { procs: Float64Array.from(p), queues: Float64Array.from(q), metrics: new Float64Array(), issues: [] };
}

export interface SysfsDelta {
  /** pids of this sample, in table order */
  pids: number[];
  /** the last sample's trace process of each unchanged pid that was kept */
  reused: Map<number, TraceProcess>;
  /** pids whose queues changed (or that are new) */
  changed: Set<number>;
}

/**
 * Which processes of `now` changed since `before` (both proc tables of sysfs-only samples);
 * `kept` are the trace processes of `before` by pid (the processes its sample recorded).
 */
export function sysfsDelta(now: ProcsRaw, before: ProcsRaw, kept: Map<number, TraceProcess>): SysfsDelta {
  const rowsNow = queueRows(now);
  const rowsBefore = queueRows(before);
  const delta: SysfsDelta = { pids: [...rowsNow.keys()], reused: new Map(), changed: new Set() };
  for (const [pid, rows] of rowsNow) {
    const was = rowsBefore.get(pid);
    const tp = kept.get(pid);
    if (was && tp && sameQueues(now, rows, before, was)) delta.reused.set(pid, tp);
    else delta.changed.add(pid);
  }
  return delta;
}
