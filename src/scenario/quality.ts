/**
 * The quality block of a scenario run: whether its figures can be trusted, and why not. Built
 * from the pooled phases and their rounds with the shared rules of src/stats/quality.ts:
 *
 *  - impossible co-run values: a throughput share > 1.1 or a P99 slowdown < 0.8 against the
 *    standalone run, for the pooled figures and for each round's own (against the same round's
 *    standalone run). Scheduled arrivals are the same schedule in every phase (seeded), so the
 *    queueing bursts a P99 comes from recur in the co-run: a co-run round clearly below its
 *    standalone round is the host, not chance;
 *  - standalone-drift: a standalone phase whose rounds disagree beyond their own 95% CIs and by
 *    more than DRIFT_MARGIN, in P50, P95, P99 (order-statistic CIs, where the round's sample has
 *    one) or mean latency (normal CI; for a closed loop, throughput is concurrency / mean latency,
 *    so this is its throughput too). P95 and the mean catch a tail that a busy host fattened in
 *    one round when ~100 requests give P99 no CI;
 *  - host-interference: other processes' CPU time or steal time during a run whose device is the
 *    host CPU (cpu backend, torch workers on the cpu); on GPU devices the figures are recorded in
 *    rounds[].host but the submitting threads' trouble shows as arrivals-behind instead;
 *  - gpu-shared: other processes with GPU queues during a run (AMD, from KFD); an `unknown` note
 *    where that cannot be told (NVIDIA);
 *  - arrivals-behind: the load generator sent scheduled requests late (see ARRIVALS_BEHIND);
 *  - round-failed: a run of a phase failed while others did not (the pool lacks it);
 *  - too-few-samples: --min-samples asked for more than a task got.
 *
 * Censored requests (unfinished at the end) are not a warning: they are a measured overload, and
 * the figures they make lower bounds say so themselves.
 */
import {
  disjointBeyond,
  impossibleCorunValues,
  interferenceWarnings,
  qualityOf,
  quantiles,
  summarizeLatencyMs,
  type Quality,
  type QualityNote,
  type QualityWarning,
} from '../stats/index.js';
import { formatMs } from '../stats/index.js';
import type { PhaseRun } from './phase-run.js';
import { runLabel } from './pool.js';
import type { PhaseResult } from './types.js';

/** Standalone rounds must differ by more than this share of the larger value, beyond their CIs, to count as drift. */
export const DRIFT_MARGIN = 0.1;

/**
 * The load generator is behind when the P99 of its lateness exceeds both ARRIVALS_BEHIND.minNs and
 * ARRIVALS_BEHIND.share of the task's median latency in that run: a lateness small against what
 * is measured only shifts the figures by a little (and counts in them: latency is measured from
 * the intended time), a large one means the offered load was not the schedule's.
 */
export const ARRIVALS_BEHIND = { minNs: 2e6, share: 0.1 } as const;

export interface QualityContext {
  /** --min-samples, when asked */
  minSamples?: number | null;
  /** rounds asked for: with one round the round figures are the pooled ones, checked once */
  rounds: number;
}

const usable = (r: { status: string }): boolean => r.status === 'ok' || r.status === 'partial';
const ci = (c: [number, number] | null): string => (c ? `[${formatMs(c[0])}–${formatMs(c[1])}]` : '');

function impossible(phases: PhaseResult[], rounds: number): QualityWarning[] {
  const out: QualityWarning[] = [];
  for (const p of phases) {
    if (p.kind !== 'corun' || !usable(p)) continue;
    for (const t of p.tasks) out.push(...impossibleCorunValues({ phase: p.name, task: t.name, throughputShare: t.throughputShare, slowdownP99: t.slowdownP99 }));
    if (rounds < 2) continue;
    for (const r of p.rounds ?? []) {
      if (!usable(r)) continue;
      for (const t of r.tasks) {
        for (const w of impossibleCorunValues({ phase: p.name, task: t.name, throughputShare: t.throughputShare, slowdownP99: t.slowdownP99 })) {
          out.push({ ...w, round: r.round, message: `round ${r.round}: ${w.message}` });
        }
      }
    }
  }
  return out;
}

interface DriftFigures {
  round: number;
  figures: { label: string; value: number; ci: [number, number] | null }[];
}

/** The figures a standalone round is compared on, from its raw requests (ms). */
function driftFigures(run: PhaseRun, task: string): DriftFigures | null {
  const smp = run.samples.find((x) => x.task === task);
  if (!smp || smp.latencyNs.length === 0) return null;
  const sum = summarizeLatencyMs(smp.latencyNs, smp.censoredNs);
  const figures: DriftFigures['figures'] = [{ label: 'P50', value: sum.p50!, ci: sum.ci50 ?? null }];
  if (!(sum.censored ?? 0)) {
    // P95 and the mean only where nothing is censored (they would be lower bounds otherwise)
    const q = quantiles(smp.latencyNs, [95]).quantiles[0];
    figures.push({ label: 'P95', value: q.value! / 1e6, ci: q.ci ? [q.ci[0] / 1e6, q.ci[1] / 1e6] : null });
    const n = smp.latencyNs.length;
    if (n >= 30) {
      let sum2 = 0;
      for (const v of smp.latencyNs) sum2 += (v / 1e6 - sum.mean!) ** 2;
      const half = 1.96 * Math.sqrt(sum2 / (n - 1) / n);
      figures.push({ label: 'mean', value: sum.mean!, ci: [sum.mean! - half, sum.mean! + half] });
    }
  }
  figures.push({ label: 'P99', value: sum.p99!, ci: sum.ci99 });
  return { round: run.round, figures };
}

function drift(phases: PhaseResult[], runs: PhaseRun[]): QualityWarning[] {
  const out: QualityWarning[] = [];
  for (const p of phases) {
    if (p.kind !== 'standalone') continue;
    const mine = runs.filter((r) => r.phase.name === p.name && usable(r));
    for (const task of p.tasks) {
      const per = mine.map((r) => driftFigures(r, task.name)).filter((x): x is DriftFigures => x !== null);
      const pairs: string[] = [];
      for (let i = 0; i < per.length; i++) {
        for (let j = i + 1; j < per.length; j++) {
          const a = per[i];
          const b = per[j];
          const apart = a.figures.find((f) => {
            const g = b.figures.find((x) => x.label === f.label);
            return g !== undefined && disjointBeyond(f.ci, g.ci, DRIFT_MARGIN);
          });
          if (!apart) continue;
          const other = b.figures.find((x) => x.label === apart.label)!;
          pairs.push(`rounds ${a.round} and ${b.round}: ${apart.label} ${formatMs(apart.value)} ms ${ci(apart.ci)} vs ${formatMs(other.value)} ms ${ci(other.ci)}`);
        }
      }
      if (pairs.length) {
        out.push({
          code: 'standalone-drift',
          phase: p.name,
          task: task.name,
          message: `${task.name} alone differs between rounds beyond the 95% CIs and by more than ${DRIFT_MARGIN * 100}%: ${pairs.join('; ')}; the host changed, so shares and slowdowns against it are not the mechanism's`,
        });
      }
    }
  }
  return out;
}

function perRun(runs: PhaseRun[], phases: PhaseResult[]): { warnings: QualityWarning[]; unknown: QualityNote[] } {
  const warnings: QualityWarning[] = [];
  const unknown: QualityNote[] = [];
  const seen = new Set<string>();
  for (const r of runs) {
    if (r.status === 'skipped') continue;
    const label = runLabel(r);
    if (r.onCpu && r.host) {
      for (const w of interferenceWarnings(r.host, { phase: r.phase.name })) warnings.push({ ...w, round: r.round, message: `${label}: ${w.message}` });
    }
    if (r.gpu && 'foreign' in r.gpu && r.gpu.foreign.length > 0) {
      const list = r.gpu.foreign.map((f) => `pid ${f.pid} (${f.queues} queue${f.queues === 1 ? '' : 's'})`).join(', ');
      warnings.push({ code: 'gpu-shared', phase: r.phase.name, round: r.round, message: `${label}: ${r.phase.name}: other processes had queues on the GPU (${r.gpu.source}): ${list}` });
    } else if (r.gpu && 'unknown' in r.gpu && !seen.has(r.gpu.unknown)) {
      seen.add(r.gpu.unknown);
      unknown.push({ code: 'gpu-processes-unknown', message: r.gpu.unknown });
    }
    if (!usable(r)) {
      const p = phases.find((x) => x.name === r.phase.name);
      if (p && usable(p) && r.status === 'failed') warnings.push({ code: 'round-failed', phase: r.phase.name, round: r.round, message: `${label} of ${r.phase.name} failed (${r.reason ?? 'no reason recorded'}): the pooled figures lack it` });
      continue;
    }
    for (const smp of r.samples) {
      const lag = smp.submitLagNs;
      if (!lag || lag.length === 0) continue;
      const sorted = Float64Array.from(lag).sort();
      const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)];
      const lat = Float64Array.from(smp.latencyNs).sort();
      const p50 = lat.length ? lat[Math.ceil(0.5 * lat.length) - 1] : 0;
      const limit = Math.max(ARRIVALS_BEHIND.minNs, ARRIVALS_BEHIND.share * p50);
      if (p99 > limit) {
        warnings.push({
          code: 'arrivals-behind',
          phase: r.phase.name,
          task: smp.task,
          round: r.round,
          message: `${label}: ${smp.task} in ${r.phase.name}: scheduled requests were sent late: lateness P99 ${formatMs(p99 / 1e6)} ms, max ${formatMs(sorted[sorted.length - 1] / 1e6)} ms over ${sorted.length} requests (limit ${formatMs(limit / 1e6)} ms: ${ARRIVALS_BEHIND.share * 100}% of its P50 ${formatMs(p50 / 1e6)} ms, at least ${ARRIVALS_BEHIND.minNs / 1e6} ms); the offered load was not the schedule's`,
        });
      }
    }
  }
  return { warnings, unknown };
}

function tooFew(phases: PhaseResult[], minSamples: number | null | undefined): QualityWarning[] {
  if (!minSamples) return [];
  const out: QualityWarning[] = [];
  for (const p of phases) {
    if (!usable(p)) continue;
    for (const t of p.tasks) {
      if (t.latencyMs.n < minSamples) out.push({ code: 'too-few-samples', phase: p.name, task: t.name, message: `${t.name} in ${p.name}: ${t.latencyMs.n} requests, fewer than --min-samples ${minSamples}` });
    }
  }
  return out;
}

/** The quality block of a run from its pooled phases and its runs. */
export function scenarioQuality(phases: PhaseResult[], runs: PhaseRun[], ctx: QualityContext): Quality {
  const own = perRun(runs, phases);
  const q = qualityOf([...impossible(phases, ctx.rounds), ...drift(phases, runs), ...own.warnings, ...tooFew(phases, ctx.minSamples)]);
  return own.unknown.length ? { ...q, unknown: own.unknown } : q;
}
