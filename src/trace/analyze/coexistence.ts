/**
 * Co-located processes: whether two or more processes holding queues at once ever shared an MQD,
 * an active HQD slot or an SDMA RLC, and whether the device's queue total equals the sum of theirs.
 * Answers "do co-located models share anything in hardware?".
 */
import type { TraceQueue, TraceSample } from '../schema.js';
import { gpuOf, type Ctx } from './context.js';
import { capped } from './series.js';
import type { Coexistence, CoexistenceConflict, ProcessUsage } from './types.js';
import { mapChanged } from './unchanged-samples.js';

/** Device identity of a queue: its MQD on its GPU when known, else its key. */
function deviceIdentity(q: TraceQueue): string {
  return q.mqd !== null ? `${q.gpuId ?? '?'}|${q.mqd}` : `key|${q.key}`;
}

type Conflict = Omit<CoexistenceConflict, 't_ns' | 'seq'>;

function conflictsIn(ctx: Ctx, s: TraceSample, pids: Set<number>): Conflict[] {
  const holders = new Map<string, { kind: CoexistenceConflict['kind']; who: Set<string> }>();
  const hold = (kind: CoexistenceConflict['kind'], what: string, who: string): void => {
    let h = holders.get(`${kind}|${what}`);
    if (!h) holders.set(`${kind}|${what}`, (h = { kind, who: new Set() }));
    h.who.add(who);
  };
  for (const p of s.processes) {
    if (!pids.has(p.pid)) continue;
    for (const q of p.queues) {
      if (q.mqd !== null) hold('queue', `${q.gpuId ?? '?'}|${q.mqd}`, q.key);
      const node = q.node ?? gpuOf(ctx, q)?.node ?? '?';
      for (const h of q.hqds ?? []) if (h[3] === 1) hold('hqd-slot', `${node}|${h[0]}/${h[1]}/${h[2]}`, q.key);
      if (q.sdma && q.sdma[2] === 1) hold('sdma-rlc', `${q.gpuId ?? '?'}|${q.sdma[0]}/${q.sdma[1]}`, q.key);
    }
  }
  const out: Conflict[] = [];
  for (const [id, h] of holders) {
    if (h.who.size > 1) out.push({ kind: h.kind, what: id.slice(h.kind.length + 1), holders: [...h.who].sort() });
  }
  return out;
}

function sharedQids(s: TraceSample, pids: Set<number>): number[] {
  const owners = new Map<number, Set<number>>();
  for (const p of s.processes) {
    if (!pids.has(p.pid)) continue;
    for (const q of p.queues) {
      if (q.qid === null) continue;
      let o = owners.get(q.qid);
      if (!o) owners.set(q.qid, (o = new Set()));
      o.add(p.pid);
    }
  }
  return [...owners.entries()].filter(([, o]) => o.size > 1).map(([qid]) => qid);
}

/** What one sample says about processes sharing the device. */
interface TogetherFindings {
  conflicts: Conflict[];
  qids: number[];
  /** distinct device queues */
  total: number;
  /** sum of per-process counts */
  sum: number;
}

function togetherFindings(ctx: Ctx, s: TraceSample, pids: Set<number>): TogetherFindings {
  const mine = s.processes.filter((p) => pids.has(p.pid));
  return {
    conflicts: conflictsIn(ctx, s, pids),
    qids: sharedQids(s, pids),
    total: new Set(mine.flatMap((p) => p.queues.map(deviceIdentity))).size,
    sum: mine.reduce((a, p) => a + p.queues.length, 0),
  };
}

/**
 * Processes are co-located when they were alive in the same samples: of the processes that held
 * queues, those listed in one sample together with another of them. Processes that ran one after
 * the other share a trace, not a GPU.
 */
export function coexistence(ctx: Ctx, processes: ProcessUsage[]): Coexistence | null {
  const holders = new Set(processes.filter((p) => p.queues.length > 0).map((p) => p.pid));
  const alongside = new Set<number>();
  for (const s of ctx.listing) {
    const alive = s.processes.filter((p) => holders.has(p.pid));
    if (alive.length >= 2) for (const p of alive) alongside.add(p.pid);
  }
  const withQueues = processes.filter((p) => alongside.has(p.pid));
  if (withQueues.length < 2) return null;
  const pids = new Set(withQueues.map((p) => p.pid));
  const together = ctx.listing.filter((s) => s.processes.filter((p) => pids.has(p.pid) && p.queues.length > 0).length >= 2);
  const findings = mapChanged(together, (s) => togetherFindings(ctx, s, pids));
  const at = (i: number) => ({ t_ns: together[i].t_ns, seq: together[i].seq });
  const conflicts = findings.flatMap((f, i) => f.conflicts.map((c) => ({ ...at(i), ...c })));
  const qids = new Set(findings.flatMap((f) => f.qids));
  const totalMismatches = findings.flatMap((f, i) => (f.total === f.sum ? [] : [{ ...at(i), total: f.total, sum: f.sum }]));
  const steadyCounts = withQueues.map((p) => ({ pid: p.pid, count: p.queueSet.considered ? p.queueSet.modal.length : null }));
  const known = steadyCounts.filter((c) => c.count !== null);
  const [listed, conflictsOmitted] = capped(conflicts, ctx.opts.maxListed);
  const [mismatchList] = capped(totalMismatches, ctx.opts.maxListed);
  return {
    pids: [...pids],
    samplesTogether: together.length,
    queuesDisjoint: !conflicts.some((c) => c.kind === 'queue'),
    hqdSlotsDisjoint: !conflicts.some((c) => c.kind === 'hqd-slot'),
    sdmaDisjoint: !conflicts.some((c) => c.kind === 'sdma-rlc'),
    conflicts: listed,
    conflictsOmitted,
    qidsShared: [...qids].sort((a, b) => a - b),
    totalEqualsSum: totalMismatches.length === 0,
    totalMismatches: mismatchList,
    steadyCounts,
    sameSteadyCount: known.length < 2 ? null : new Set(known.map((c) => c.count)).size === 1,
  };
}
