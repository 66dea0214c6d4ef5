/**
 * Derives lifecycle events by comparing each sample with what was known before. What a sample did
 * not read (hqds/priority in a sysfs-only sample) is not taken as a change: the last known value
 * stands until a sample that read it says otherwise. The first sample only sets the baseline: what
 * exists then existed before the trace.
 */
import type { TraceEvent, TraceProcess, TraceQueue, TraceSample } from './schema.js';

interface KnownQueue {
  q: TraceQueue;
  /** active slots "inst/pipe/queue" from the last sample that read hqds */
  slots: Set<string>;
  /** the hqds those slots came from: the same rows again need no new set */
  hqds: TraceQueue['hqds'];
  priority: { pipe: number; queue: number } | null;
}

const slotsOf = (q: TraceQueue): Set<string> | null =>
  q.hqds === null ? null : new Set(q.hqds.filter((h) => h[3] === 1).map((h) => `${h[0]}/${h[1]}/${h[2]}`));

/** The same slot rows (inst, pipe, queue, active), in the same order: the same active slots. */
function sameHqds(a: TraceQueue['hqds'], b: TraceQueue['hqds']): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x[0] !== y[0] || x[1] !== y[1] || x[2] !== y[2] || x[3] !== y[3]) return false;
  }
  return true;
}

export class EventDeriver {
  private known = new Map<number, Map<string, KnownQueue>>();
  private first = true;
  /** the processes of the last update: a sample that repeats them (the same object) has no event */
  private lastProcesses: TraceSample['processes'] | null = null;
  /** each pid's process object in the last update */
  private lastByPid = new Map<number, TraceProcess>();

  /** Events for this sample (in a stable order: processes, then queues, then slots). */
  update(s: TraceSample): TraceEvent[] {
    // SampleAssembler hands on an unchanged sample's processes as the very same object
    if (s.processes === this.lastProcesses) return [];
    this.lastProcesses = s.processes;
    const out: TraceEvent[] = [];
    const base = { t_ns: s.t_ns, sample: s.seq };
    const seen = new Set<number>();
    for (const p of s.processes) {
      seen.add(p.pid);
      // a process object repeated from the last sample has the same queues, slots and priorities
      if (this.lastByPid.get(p.pid) === p && this.known.has(p.pid)) continue;
      let mine = this.known.get(p.pid);
      if (!mine) {
        mine = new Map();
        this.known.set(p.pid, mine);
        if (!this.first) out.push({ kind: 'event', event: 'process-started', pid: p.pid, ...base });
      }
      const present = new Set<string>();
      for (const q of p.queues) {
        present.add(q.key);
        const id = (): Pick<TraceEvent, 'key' | 'qid' | 'type' | 'gpuId' | 'mqd'> => ({ key: q.key, qid: q.qid, type: q.type, gpuId: q.gpuId, mqd: q.mqd });
        const prio = q.priority;
        const k = mine.get(q.key);
        if (!k) {
          const slots = slotsOf(q);
          mine.set(q.key, { q, slots: slots ?? new Set(), hqds: q.hqds, priority: prio ? { pipe: prio.pipe, queue: prio.queue } : null });
          if (this.first) continue;
          out.push({ kind: 'event', event: 'queue-created', pid: p.pid, ...id(), ...base });
          for (const sl of slots ?? []) out.push(slotEvent('hqd-mapped', p.pid, id(), sl, base));
          continue;
        }
        // slots a sample did not read (hqds null) stay as they were; the same rows, the same slots
        if (q.hqds !== null && !sameHqds(q.hqds, k.hqds)) {
          const slots = slotsOf(q)!;
          if (!this.first) {
            for (const sl of k.slots) if (!slots.has(sl)) out.push(slotEvent('hqd-unmapped', p.pid, id(), sl, base));
            for (const sl of slots) if (!k.slots.has(sl)) out.push(slotEvent('hqd-mapped', p.pid, id(), sl, base));
          }
          k.slots = slots;
          k.hqds = q.hqds;
        }
        if (prio && (!k.priority || k.priority.pipe !== prio.pipe || k.priority.queue !== prio.queue)) {
          const to = { pipe: prio.pipe, queue: prio.queue };
          if (k.priority) out.push({ kind: 'event', event: 'priority-changed', pid: p.pid, ...id(), from: k.priority, to, ...base });
          k.priority = to;
        }
        k.q = q;
      }
      for (const [key, k] of mine) {
        if (present.has(key)) continue;
        out.push(...this.destroyed(p.pid, k, base));
        mine.delete(key);
      }
    }
    for (const [pid, mine] of this.known) {
      if (seen.has(pid)) continue;
      for (const k of mine.values()) out.push(...this.destroyed(pid, k, base));
      out.push({ kind: 'event', event: 'process-exited', pid, ...base });
      this.known.delete(pid);
    }
    this.first = false;
    this.lastByPid = new Map(s.processes.map((p) => [p.pid, p]));
    return out;
  }

  /**
   * The pid now belongs to another process (pid reuse between two samples): the old one ends
   * here, with its queues; the next update() sees the pid as a new process.
   */
  replaced(pid: number, t_ns: number, sample: number): TraceEvent[] {
    const mine = this.known.get(pid);
    if (!mine) return [];
    this.lastProcesses = null; // the next update must see the process start again
    this.lastByPid.delete(pid);
    const base = { t_ns, sample };
    const out: TraceEvent[] = [];
    for (const k of mine.values()) out.push(...this.destroyed(pid, k, base));
    out.push({ kind: 'event', event: 'process-exited', pid, ...base });
    this.known.delete(pid);
    return out;
  }

  private destroyed(pid: number, k: KnownQueue, base: { t_ns: number; sample: number }): TraceEvent[] {
    const id = { key: k.q.key, qid: k.q.qid, type: k.q.type, gpuId: k.q.gpuId, mqd: k.q.mqd };
    return [
      ...[...k.slots].map((sl) => slotEvent('hqd-unmapped', pid, id, sl, base)),
      { kind: 'event', event: 'queue-destroyed', pid, ...id, ...base },
    ];
  }
}

function slotEvent(
  event: 'hqd-mapped' | 'hqd-unmapped',
  pid: number,
  id: Pick<TraceEvent, 'key' | 'qid' | 'type' | 'gpuId' | 'mqd'>,
  slot: string,
  base: { t_ns: number; sample: number },
): TraceEvent {
  const [inst, pipe, queue] = slot.split('/').map(Number);
  return { kind: 'event', event, pid, ...id, inst, pipe, queue, ...base };
}
