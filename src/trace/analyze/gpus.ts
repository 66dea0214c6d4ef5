/**
 * Per GPU node: how many HQD slots are active on each XCC, including slots of no queue in the
 * trace. Also decides which samples carry HQD data at all, which the mapping and the Perfetto
 * export rely on.
 */
import { countStats } from '../../stats/index.js';
import type { TraceSample } from '../schema.js';
import { gpuOf, isCompute, type Ctx } from './context.js';
import type { GpuHqdUsage } from './types.js';
import { activeKnown, knowledgeOf } from './knowledge.js';
import { mapChanged } from './unchanged-samples.js';

/** An issue saying that this sample has no hqds content (unreadable file, missing dump). */
const HQDS_MISSING = /\bhqds\b.*\b(cannot read|unreadable|not read|EACCES|EPERM|ENOENT|EIO)\b|\bno hqds\b/i;

/**
 * A sample carries HQD data when it read debugfs, no compute queue in it lacks hqds, no issue
 * says hqds was missing (a sample without queues cannot show it otherwise) and its hqds text was
 * whole (not cut, not two dumps appended).
 */
export function hasHqdData(s: TraceSample): boolean {
  return (
    s.debugfs &&
    s.processes.every((p) => p.queues.every((q) => !isCompute(q) || q.hqds !== null)) &&
    !s.issues.some((m) => HQDS_MISSING.test(m)) &&
    knowledgeOf(s).hqdsWhole
  );
}

/** Active HQD slots per node and inst in one sample, and the (node, inst) pairs it did not read. */
interface SlotCounts {
  known: Map<number, Map<number, number>>;
  unmatched: Map<number, number>;
  /** nodes hqds did not show */
  unknownNodes: Set<number>;
  /** per node: Insts hqds did not show, or with a slot whose active flag was not read */
  unknownInsts: Map<number, Set<number>>;
}

/** What the sample's issues say hqds did not show, added to the counts of its state (which mapChanged may share between samples). */
function withKnowledge(ctx: Ctx, s: TraceSample, c: SlotCounts): SlotCounts {
  const k = knowledgeOf(s);
  if (k.unknownGpus.size === 0 && k.unknownInsts.size === 0) return c;
  const unknownNodes = new Set(c.unknownNodes);
  for (const gpu of k.unknownGpus) {
    const g = ctx.gpuById.get(gpu);
    if (g && g.node !== null) unknownNodes.add(g.node);
  }
  const unknownInsts = new Map([...c.unknownInsts].map(([n, set]) => [n, new Set(set)]));
  for (const [node, insts] of k.unknownInsts) {
    let u = unknownInsts.get(node);
    if (!u) unknownInsts.set(node, (u = new Set()));
    for (const i of insts) u.add(i);
  }
  return { ...c, unknownNodes, unknownInsts };
}

function activeSlotsPerXcc(ctx: Ctx, s: TraceSample): SlotCounts {
  const known = new Map<number, Map<number, number>>();
  const unknownInsts = new Map<number, Set<number>>();
  const unknownNodes = new Set<number>();
  const bump = (node: number, inst: number): void => {
    let m = known.get(node);
    if (!m) known.set(node, (m = new Map()));
    m.set(inst, (m.get(inst) ?? 0) + 1);
  };
  for (const p of s.processes) {
    for (const q of p.queues) {
      const node = q.node ?? gpuOf(ctx, q)?.node;
      if (node === undefined || node === null || q.hqds === null) continue;
      for (const h of q.hqds) {
        if (h[3] === 1) bump(node, h[0]);
        else if (!activeKnown(h)) {
          let u = unknownInsts.get(node);
          if (!u) unknownInsts.set(node, (u = new Set()));
          u.add(h[0]);
        }
      }
    }
  }
  const unmatched = new Map<number, number>();
  for (const [node, inst] of s.unmatchedHqds) {
    bump(node, inst);
    unmatched.set(node, (unmatched.get(node) ?? 0) + 1);
  }
  return { known, unmatched, unknownNodes, unknownInsts };
}

/**
 * Per GPU node: active slots per XCC over the samples that read that XCC. A node hqds did not
 * show, or an Inst it did not show, is unknown in that sample, not 0 active: it is left out of the
 * averages and of the balance check (which compares the XCCs that were read).
 */
export function gpuUsage(ctx: Ctx): GpuHqdUsage[] {
  const samples = ctx.trace.samples.filter(hasHqdData);
  const perSample = mapChanged(samples, (s) => activeSlotsPerXcc(ctx, s)).map((c, i) => withKnowledge(ctx, samples[i], c));
  return ctx.trace.header.gpus.map((g) => {
    // a GPU of unknown node (a plain dump that shows it in mqds only): hqds never showed it
    const node = g.node;
    const read = node === null ? [] : perSample.filter((ps) => !ps.unknownNodes.has(node));
    const knownAt = (ps: SlotCounts): Map<number, number> | undefined => (node === null ? undefined : ps.known.get(node));
    const seenInsts = new Set<number>();
    for (const ps of read) for (const inst of knownAt(ps)?.keys() ?? []) seenInsts.add(inst);
    const insts = [...new Set([...Array.from({ length: g.numXcc }, (_, i) => i), ...seenInsts])].sort((a, b) => a - b);
    const instRead = (ps: SlotCounts, inst: number): boolean => node !== null && !(ps.unknownInsts.get(node)?.has(inst) ?? false);
    const countsAt = (ps: SlotCounts, inst: number): number => knownAt(ps)?.get(inst) ?? 0;
    const inRange = insts.filter((i) => i < g.numXcc);
    return {
      node,
      gpuId: g.gpuId,
      numXcc: g.numXcc,
      samples: read.length,
      perXcc: insts.map((inst) => {
        const at = read.filter((ps) => instRead(ps, inst));
        return { inst, samples: at.length, active: countStats(at.map((ps) => countsAt(ps, inst))) };
      }),
      unmatched: countStats(read.map((ps) => (node === null ? 0 : (ps.unmatched.get(node) ?? 0)))),
      unbalancedSamples: read.filter((ps) => new Set(inRange.filter((i) => instRead(ps, i)).map((i) => countsAt(ps, i))).size > 1).length,
      instsOutOfRange: insts.filter((i) => i >= g.numXcc),
    };
  });
}
