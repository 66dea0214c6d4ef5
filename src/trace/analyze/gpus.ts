/**
 * Per GPU node: how many HQD slots are active on each XCC, including slots of no queue in the
 * trace. Also decides which samples carry HQD data at all, which the mapping and the Perfetto
 * export rely on.
 */
import { countStats } from '../../stats/index.js';
import type { TraceSample } from '../schema.js';
import { gpuOf, isCompute, type Ctx } from './context.js';
import type { GpuHqdUsage } from './types.js';
import { mapChanged } from './unchanged-samples.js';

/** An issue saying that this sample has no hqds content (unreadable file, missing dump). */
const HQDS_MISSING = /\bhqds\b.*\b(cannot read|unreadable|not read|EACCES|EPERM|ENOENT|EIO)\b|\bno hqds\b/i;

/**
 * A sample carries HQD data when it read debugfs, no compute queue in it lacks hqds and no issue
 * says hqds was missing (a sample without queues cannot show it otherwise).
 */
export function hasHqdData(s: TraceSample): boolean {
  return s.debugfs && s.processes.every((p) => p.queues.every((q) => !isCompute(q) || q.hqds !== null)) && !s.issues.some((m) => HQDS_MISSING.test(m));
}

/** Active HQD slots per node and inst in one sample. */
function activeSlotsPerXcc(ctx: Ctx, s: TraceSample): { known: Map<number, Map<number, number>>; unmatched: Map<number, number> } {
  const known = new Map<number, Map<number, number>>();
  const bump = (node: number, inst: number): void => {
    let m = known.get(node);
    if (!m) known.set(node, (m = new Map()));
    m.set(inst, (m.get(inst) ?? 0) + 1);
  };
  for (const p of s.processes) {
    for (const q of p.queues) {
      const node = q.node ?? gpuOf(ctx, q)?.node;
      if (node === undefined || q.hqds === null) continue;
      for (const h of q.hqds) if (h[3] === 1) bump(node, h[0]);
    }
  }
  const unmatched = new Map<number, number>();
  for (const [node, inst] of s.unmatchedHqds) {
    bump(node, inst);
    unmatched.set(node, (unmatched.get(node) ?? 0) + 1);
  }
  return { known, unmatched };
}

export function gpuUsage(ctx: Ctx): GpuHqdUsage[] {
  const samples = ctx.trace.samples.filter(hasHqdData);
  const perSample = mapChanged(samples, (s) => activeSlotsPerXcc(ctx, s));
  return ctx.trace.header.gpus.map((g) => {
    const seenInsts = new Set<number>();
    for (const ps of perSample) for (const inst of ps.known.get(g.node)?.keys() ?? []) seenInsts.add(inst);
    const insts = [...new Set([...Array.from({ length: g.numXcc }, (_, i) => i), ...seenInsts])].sort((a, b) => a - b);
    const countsAt = (ps: (typeof perSample)[number], inst: number): number => ps.known.get(g.node)?.get(inst) ?? 0;
    const inRange = insts.filter((i) => i < g.numXcc);
    return {
      node: g.node,
      gpuId: g.gpuId,
      numXcc: g.numXcc,
      samples: samples.length,
      perXcc: insts.map((inst) => ({ inst, active: countStats(perSample.map((ps) => countsAt(ps, inst))) })),
      unmatched: countStats(perSample.map((ps) => ps.unmatched.get(g.node) ?? 0)),
      unbalancedSamples: perSample.filter((ps) => new Set(inRange.map((i) => countsAt(ps, i))).size > 1).length,
      instsOutOfRange: insts.filter((i) => i >= g.numXcc),
    };
  });
}
