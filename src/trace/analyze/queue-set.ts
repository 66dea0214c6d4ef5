/**
 * A process's queue set over time: the stability window, the stability verdict, the changes of
 * the set and the queue counts. Answers "does a model keep the same queues while it runs?".
 */
import { countStats } from '../../stats/index.js';
import type { TraceQueue } from '../schema.js';
import type { Ctx } from './context.js';
import { lastPresentIndex, type ProcPoint } from './process-points.js';
import { capped, mode, runs } from './series.js';
import type { ProcessUsage, QueueSetChange, StabilityVerdict } from './types.js';

function keysOf(queues: readonly TraceQueue[]): string[] {
  return queues.map((q) => q.key).sort();
}

/** The window of the stability verdict and the samples considered in it (see rules.window). */
function stabilityWindow(ctx: Ctx, points: ProcPoint[], exited: boolean): { window: ProcPoint[]; considered: ProcPoint[] } {
  const firstQ = points.findIndex((p) => p.present && p.queues.length > 0);
  if (firstQ < 0) return { window: [], considered: [] };
  const last = lastPresentIndex(points);
  const window = points.slice(firstQ, last + 1);
  const edge = ctx.opts.edgeSamples;
  const trimStart = firstQ > 0 ? edge : 0;
  const trimEnd = exited ? edge : 0;
  const considered = window.length > trimStart + trimEnd ? window.slice(trimStart, window.length - trimEnd) : [];
  return { window, considered };
}

function setChanges(points: ProcPoint[]): QueueSetChange[] {
  const out: QueueSetChange[] = [];
  let prev: Set<string> | null = null;
  for (const p of points) {
    const keys = new Set(p.queues.map((q) => q.key));
    if (prev !== null) {
      const added = [...keys].filter((k) => !prev!.has(k)).sort();
      const removed = [...prev].filter((k) => !keys.has(k)).sort();
      if (added.length || removed.length) out.push({ t_ns: p.sample.t_ns, seq: p.sample.seq, added, removed });
    }
    prev = keys;
  }
  return out;
}

/** The points from just before the process appeared to just after it vanished (creation and teardown show as changes). */
function changeSpan(points: ProcPoint[]): ProcPoint[] {
  const first = points.findIndex((p) => p.present);
  const last = lastPresentIndex(points);
  return first < 0 ? [] : points.slice(Math.max(0, first - 1), last + 2);
}

export function queueSetVerdict(ctx: Ctx, points: ProcPoint[], exited: boolean): ProcessUsage['queueSet'] {
  const { window, considered } = stabilityWindow(ctx, points, exited);
  const [changes, changesOmitted] = capped(setChanges(changeSpan(points)), ctx.opts.maxListed);
  const sets = considered.map((p) => keysOf(p.queues));
  const top = mode(sets, (s) => s.join(' '));
  const distinctSets = new Set(sets.map((s) => s.join(' '))).size;
  const verdict: StabilityVerdict =
    window.length === 0 ? 'no-queues' : considered.length < ctx.opts.minSamples ? 'too-few-samples' : top!.count / considered.length >= ctx.opts.stableShare ? 'stable' : 'unstable';
  return {
    verdict,
    share: considered.length && top ? top.count / considered.length : null,
    window: window.length ? { fromNs: window[0].sample.t_ns, toNs: window[window.length - 1].sample.t_ns, samples: window.length } : null,
    considered: considered.length,
    modal: top ? top.value : [],
    distinctSets,
    changed: distinctSets > 1,
    changes,
    changesOmitted,
  };
}

export function queueCounts(ctx: Ctx, points: ProcPoint[], exited: boolean): ProcessUsage['queueCount'] {
  const present = points.filter((p) => p.present);
  const { considered } = stabilityWindow(ctx, points, exited);
  const [r, runsOmitted] = capped(
    runs(present.map((p) => ({ t: p.sample.t_ns, value: p.queues.length }))),
    ctx.opts.maxListed,
  );
  return {
    whilePresent: countStats(present.map((p) => p.queues.length)),
    steady: countStats(considered.map((p) => p.queues.length)),
    runs: r,
    runsOmitted,
  };
}
