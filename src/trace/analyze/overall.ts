/**
 * Trace-wide totals: processes, distinct queues, queues per listing sample, and what the baseline
 * (the samples up to the 'baseline-end' marker) showed before the traced command began.
 */
import { countStats } from '../../stats/index.js';
import type { TraceSample } from '../schema.js';
import type { Ctx } from './context.js';
import type { OverallUsage, ProcessUsage } from './types.js';

export function overall(ctx: Ctx, processes: ProcessUsage[]): OverallUsage {
  const total = (s: TraceSample): number => s.processes.reduce((a, p) => a + p.queues.length, 0);
  let baseline: OverallUsage['baseline'] = null;
  if (ctx.baselineEndNs !== null) {
    const end = ctx.baselineEndNs;
    const bs = ctx.listing.filter((s) => s.t_ns <= end);
    const pidsWithQueues = new Set(bs.flatMap((s) => s.processes.filter((p) => p.queues.length > 0).map((p) => p.pid)));
    baseline = { endNs: end, samples: bs.length, maxQueues: countStats(bs.map(total)).max, pidsWithQueues: [...pidsWithQueues].sort((a, b) => a - b) };
  }
  return {
    processes: processes.length,
    processesWithQueues: processes.filter((p) => p.queues.length > 0).length,
    distinctQueues: processes.reduce((a, p) => a + p.queues.length, 0),
    queueCount: countStats(ctx.listing.map(total)),
    baseline,
  };
}
