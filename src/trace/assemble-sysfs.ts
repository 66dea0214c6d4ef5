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
import { PROCS_PROC_COLS, PROCS_QUEUE_COLS, type ProcsRaw } from '../kfd/raw.js';
import type { TraceProcess } from './schema.js';

/** Per pid: where its queue rows are in a proc table. */
function queueRows(procs: ProcsRaw): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (let r = 0; r < procs.procs.length / PROCS_PROC_COLS; r++) {
    const b = r * PROCS_PROC_COLS;
    out.set(procs.procs[b], [procs.procs[b + 2], procs.procs[b + 3]]);
  }
  return out;
}

/** The same queues (qid, type, size, gpu id) in the same order; the process row index may differ. */
function sameQueues(a: ProcsRaw, ra: [number, number], b: ProcsRaw, rb: [number, number]): boolean {
  if (ra[1] !== rb[1]) return false;
  for (let i = 0; i < ra[1]; i++) {
    const x = (ra[0] + i) * PROCS_QUEUE_COLS;
    const y = (rb[0] + i) * PROCS_QUEUE_COLS;
    for (let c = 1; c < PROCS_QUEUE_COLS; c++) if (!Object.is(a.queues[x + c], b.queues[y + c])) return false;
  }
  return true;
}

/** The rows of some processes of a proc table, as a table of their own (metrics left out: a trace does not record them). */
export function procsSubset(procs: ProcsRaw, pids: ReadonlySet<number>): ProcsRaw {
  const p: number[] = [];
  const q: number[] = [];
  for (let r = 0; r < procs.procs.length / PROCS_PROC_COLS; r++) {
    const b = r * PROCS_PROC_COLS;
    if (!pids.has(procs.procs[b])) continue;
    const first = procs.procs[b + 2];
    const count = procs.procs[b + 3];
    const row = p.length / PROCS_PROC_COLS;
    p.push(procs.procs[b], procs.procs[b + 1], q.length / PROCS_QUEUE_COLS, count, 0, 0);
    for (let i = 0; i < count; i++) {
      const x = (first + i) * PROCS_QUEUE_COLS;
      q.push(row, procs.queues[x + 1], procs.queues[x + 2], procs.queues[x + 3], procs.queues[x + 4]);
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
