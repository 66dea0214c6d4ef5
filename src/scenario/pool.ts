/**
 * The runs of a phase (its rounds) -> its PhaseResult: the requests of every usable run pooled
 * into one sample (exact percentiles over all of them, not an average of per-round percentiles),
 * each round's own figures kept beside it in `rounds[]`, and the spread between rounds (min /
 * median / max of each round's P99 and throughput) per task.
 *
 * Co-run shares and slowdowns: the pooled co-run figures are taken against the pooled standalone
 * figures; each round's against the same round's standalone run (an extension run, which has no
 * round of its own, against the pooled standalone).
 */
import { roundSpread } from '../stats/index.js';
import { phaseFairness, taskResult } from './summarize.js';
import type { PhaseRun } from './phase-run.js';
import type { PhaseSpec } from './rounds.js';
import type { Form, Task } from './schema.js';
import type { PhaseResult, PhaseRound, RoundTask, TaskResult, TaskSamples } from './types.js';
import { busyUtilisation, pooledUtilisation } from './utilisation.js';

const usable = (r: PhaseRun): boolean => r.status === 'ok' || r.status === 'partial';

function concat(list: (Float64Array | undefined)[]): Float64Array {
  const total = list.reduce((a, x) => a + (x?.length ?? 0), 0);
  const out = new Float64Array(total);
  let at = 0;
  for (const x of list) {
    if (!x) continue;
    out.set(x, at);
    at += x.length;
  }
  return out;
}

/** One task's samples of several runs as one sample (measured time adds up). */
export function poolSamples(task: string, list: TaskSamples[]): TaskSamples {
  const error = list.find((x) => x.error !== undefined)?.error;
  return {
    task,
    issued: list.reduce((a, x) => a + x.issued, 0),
    latencyNs: concat(list.map((x) => x.latencyNs)),
    startDelayNs: concat(list.map((x) => x.startDelayNs)),
    serviceNs: concat(list.map((x) => x.serviceNs)),
    errors: list.reduce((a, x) => a + x.errors, 0),
    ...(error !== undefined ? { error } : {}),
    measuredNs: list.reduce((a, x) => a + x.measuredNs, 0),
    censoredNs: concat(list.map((x) => x.censoredNs)),
    completedAfterEnd: list.reduce((a, x) => a + (x.completedAfterEnd ?? 0), 0),
    submitLagNs: concat(list.map((x) => x.submitLagNs)),
  };
}

function samplesOf(run: PhaseRun, task: string): TaskSamples | undefined {
  return run.samples.find((x) => x.task === task);
}

function roundTask(t: TaskResult): RoundTask {
  const l = t.latencyMs;
  return {
    name: t.name,
    requests: { issued: t.requests.issued, completed: t.requests.completed, censored: t.requests.censored ?? 0, errors: t.requests.errors },
    n: l.n,
    p50: l.p50,
    p99: l.p99,
    ci50: l.ci50 ?? null,
    ci99: l.ci99,
    unsupported: l.unsupported,
    censoredAtOrAbove: l.censoredAtOrAbove ?? [],
    throughput: t.throughput,
    throughputShare: t.throughputShare,
    slowdownP99: t.slowdownP99,
    submitLagMs: t.submitLagMs ?? null,
  };
}

/** "round 2", "round 2 (extension)" */
export function runLabel(r: Pick<PhaseRun, 'round' | 'extension'>): string {
  return `round ${r.round}${r.extension ? ' (extension)' : ''}`;
}

/** Notes every run had once; the others prefixed with their run. */
function mergeNotes(runs: PhaseRun[]): string[] {
  if (runs.length === 1) return [...runs[0].notes];
  const common = runs[0].notes.filter((n) => runs.every((r) => r.notes.includes(n)));
  const out = [...common];
  for (const r of runs) for (const n of r.notes) if (!common.includes(n)) out.push(`${runLabel(r)}: ${n}`);
  return out;
}

export interface AssembleContext {
  form: Form;
  /** the device the form ran on ("cpu:0 (...)", "cuda:0", "cpu" for torch on the cpu); null when unknown */
  device: string | null;
}

/**
 * Every phase that has run at least once, in the order of `specs`, from all runs so far (so a
 * results.json written mid-run holds what was measured). Standalone phases are pooled first: the
 * co-run phases need their figures.
 */
export function assemblePhases(specs: PhaseSpec[], runs: PhaseRun[], ctx: AssembleContext): PhaseResult[] {
  const runsOf = (name: string): PhaseRun[] =>
    runs.filter((r) => r.phase.name === name).sort((a, b) => Number(a.extension) - Number(b.extension) || a.round - b.round);
  const standalonePooled = new Map<string, TaskResult>();
  const standaloneRound = new Map<string, TaskResult>(); // `${round}:${task}`
  const results = new Map<string, PhaseResult>();
  const ordered = [...specs.filter((p) => p.kind === 'standalone'), ...specs.filter((p) => p.kind === 'corun')];
  for (const spec of ordered) {
    const list = runsOf(spec.name);
    if (list.length === 0) continue;
    const phase = assemblePhase(spec, list, ctx, {
      pooled: (task) => standalonePooled.get(task) ?? null,
      round: (round, task) => standaloneRound.get(`${round}:${task}`) ?? null,
    });
    if (spec.kind === 'standalone' && (phase.status === 'ok' || phase.status === 'partial')) {
      const t = phase.tasks[0];
      standalonePooled.set(t.name, t);
    }
    if (spec.kind === 'standalone') {
      for (const r of list) {
        if (!usable(r) || r.extension) continue;
        const smp = samplesOf(r, spec.tasks[0].name);
        if (smp) standaloneRound.set(`${r.round}:${spec.tasks[0].name}`, taskResult(smp, spec.tasks[0], { workload: '', phase: 'standalone' }));
      }
    }
    results.set(spec.name, phase);
  }
  return specs.flatMap((p) => (results.has(p.name) ? [results.get(p.name)!] : []));
}

function assemblePhase(
  spec: PhaseSpec,
  runs: PhaseRun[],
  ctx: AssembleContext,
  standalone: { pooled: (task: string) => TaskResult | null; round: (round: number, task: string) => TaskResult | null },
): PhaseResult {
  const good = runs.filter(usable);
  const partial = runs.find((r) => r.status === 'partial');
  const status: PhaseResult['status'] = partial ? 'partial' : good.length ? 'ok' : runs.every((r) => r.status === 'skipped') ? 'skipped' : 'failed';
  const source = good.length ? good : [runs[0]];
  const reason = status === 'partial' ? partial!.reason : status === 'ok' ? undefined : runs.find((r) => r.reason)?.reason;
  const failedRun = runs.find((r) => r.status === 'failed' && r.stderrTail?.length);
  const corun = spec.kind === 'corun';
  const workload = (task: Task): string => source.find((r) => r.workloads[task.name])?.workloads[task.name] ?? '';

  // each run's own figures
  const rounds: PhaseRound[] = runs.map((r) => {
    const tasks =
      r.status === 'skipped'
        ? []
        : spec.tasks.flatMap((task) => {
            const smp = samplesOf(r, task.name);
            if (!smp) return [];
            const ref = corun ? (r.extension ? standalone.pooled(task.name) : standalone.round(r.round, task.name)) : null;
            return [roundTask(taskResult(smp, task, { workload: '', standalone: ref, phase: spec.kind }))];
          });
    return {
      round: r.round,
      position: r.position,
      ...(r.extension ? { extension: true } : {}),
      status: r.status,
      ...(r.reason ? { reason: r.reason } : {}),
      startedAt: r.startedAt,
      measuredS: (r.samples[0]?.measuredNs ?? r.measuredNs) / 1e9,
      host: r.host,
      tasks,
    };
  });

  // the pooled figures
  const pooled = spec.tasks.map((task) => poolSamples(task.name, source.flatMap((r) => samplesOf(r, task.name) ?? [])));
  const measuredNs = pooled[0]?.measuredNs ?? 0;
  const tasks =
    status === 'skipped'
      ? []
      : spec.tasks.map((task, i) => {
          const t = taskResult(pooled[i], task, { workload: workload(task), standalone: corun ? standalone.pooled(task.name) : null, phase: spec.kind });
          const mine = rounds.filter((r, k) => usable(runs[k])).map((r) => r.tasks.find((x) => x.name === task.name));
          t.spread = { p99: roundSpread(mine.map((x) => x?.p99)), throughput: roundSpread(mine.map((x) => x?.throughput)) };
          return t;
        });
  const first = source[0];
  const notes = mergeNotes(runs);
  for (const r of runs) if (r.status === 'failed' && good.length) notes.push(`${runLabel(r)} failed: ${r.reason ?? 'no reason recorded'} (left out of the pooled figures)`);
  for (const r of runs) if (r.status === 'partial' && runs.length > 1) notes.push(`${runLabel(r)} partial: ${r.reason ?? 'no reason recorded'}`);
  return {
    name: spec.name,
    kind: spec.kind,
    mechanism: spec.mechanism,
    status,
    ...(reason ? { reason } : {}),
    ...(failedRun?.stderrTail?.length ? { stderrTail: failedRun.stderrTail } : {}),
    measuredS: measuredNs / 1e9,
    tasks,
    utilisation:
      status === 'skipped'
        ? { value: null, source: 'unavailable', reason: 'phase skipped' }
        : pooledUtilisation(source, busyUtilisation(pooled, first.blocks, first.computeUnits, measuredNs, ctx.form, ctx.device)),
    fairness: corun && status !== 'skipped' ? phaseFairness(tasks) : null,
    notes,
    rounds,
  };
}
