/**
 * Vega-Lite specs for the standard charts of a scenario run, built from Results alone (so a chart
 * can be redrawn from results.json later). Pure data -> spec; rendering is in charts.ts.
 *
 * Failed and skipped phases and tasks without samples are left out of the data; each chart's
 * subtitle says what was left out, so a missing line is never mistaken for a good one.
 */
import { z } from 'zod';
import type { TopLevelSpec } from 'vega-lite';
import type { PhaseResult, Results, TaskResult } from '../scenario/types.js';

/** A task's latency SLO: `percentile` (e.g. 99) of its latency must stay below `belowMs`. */
export interface LatencySlo {
  percentile: number;
  belowMs: number;
}
export type LatencySlos = Record<string, LatencySlo>;

/** One chart to draw: its file name stem and spec, or why there is nothing to draw. */
export interface ChartSpec {
  name: string;
  spec?: TopLevelSpec;
  /** set instead of `spec` when the results hold no data for this chart */
  empty?: string;
}

const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * Vega writes `font-family="sans-serif"` by default; resvg maps that to Arial and, where Arial is
 * missing, to the first system font, which on many Linux hosts is a serif. A list that names the
 * common Linux sans fonts keeps PNGs (and SVGs in browsers) in a sans face.
 */
const FONT = 'Helvetica Neue, Helvetica, Arial, DejaVu Sans, Liberation Sans, Noto Sans, sans-serif';
const CONFIG: TopLevelSpec['config'] = { font: FONT };

/** Grouped bars: wide enough that every bar of every phase stays readable. */
function groupedWidth(phases: number, tasks: number): number {
  return Math.min(1200, Math.max(420, 56 * phases * Math.max(1, tasks) + 24 * phases));
}

/** Only the part of a parsed scenario config the charts need; anything else is ignored. */
const configTaskSlo = z.object({
  name: z.string(),
  slo: z.object({ percentile: z.number().optional(), below: z.number().optional() }).optional(),
});

/**
 * Latency SLO bounds per task from results.scenario.config (the parsed scenario, where `below`
 * is in ns). Reading the config rather than the verdict text keeps the chart independent of
 * how verdicts are worded. Tasks without a percentile SLO are absent.
 */
export function sloBounds(results: Results): LatencySlos {
  const out: LatencySlos = {};
  const tasks = (results.scenario.config as { tasks?: unknown } | null | undefined)?.tasks;
  if (!Array.isArray(tasks)) return out;
  for (const t of tasks) {
    const r = configTaskSlo.safeParse(t);
    if (!r.success) continue;
    const { percentile, below } = r.data.slo ?? {};
    if (percentile !== undefined && below !== undefined && below > 0) out[r.data.name] = { percentile, belowMs: below / 1e6 };
  }
  return out;
}

/** File-name-safe chart name part (task names are already restricted, results files may not be). */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

const drawable = (p: PhaseResult): boolean => p.status !== 'failed' && p.status !== 'skipped';
const hasSamples = (t: TaskResult): boolean => t.latencyMs.n > 0;
const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** co-run without a mechanism first, then the mechanisms, then the standalone baselines. */
function phaseOrder(phases: PhaseResult[]): string[] {
  const rank = (p: PhaseResult): number => (p.name === 'corun:none' ? 0 : p.kind === 'corun' ? 1 : 2);
  return phases
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p.name);
}

/** "left out: corun:gate (failed); lp in corun:none (no samples)" or undefined. */
function leftOut(phases: PhaseResult[], task?: string): string | undefined {
  const parts: string[] = [];
  for (const p of phases) {
    // another task's standalone phase says nothing about this task's chart
    if (task !== undefined && p.kind === 'standalone' && p.name !== `standalone:${task}` && !p.tasks.some((t) => t.name === task)) continue;
    if (!drawable(p)) parts.push(`${p.name} (${p.status})`);
    else for (const t of p.tasks) if ((task === undefined || t.name === task) && !hasSamples(t)) parts.push(`${t.name} in ${p.name} (no samples)`);
  }
  return parts.length ? `left out: ${parts.join('; ')}` : undefined;
}

function title(text: string, subtitle: string[]): TopLevelSpec['title'] {
  return subtitle.length ? { text, subtitle } : text;
}

/** `latency-cdf-<task>`: the task's latency CDF, one line per phase, SLO bound as a vertical rule. */
export function latencyCdfSpec(results: Results, task: string, slo?: LatencySlo): ChartSpec {
  const name = `latency-cdf-${safeName(task)}`;
  const order = phaseOrder(results.phases);
  const points: { phase: string; ms: number; fraction: number }[] = [];
  for (const p of results.phases) {
    if (!drawable(p)) continue;
    const t = p.tasks.find((x) => x.name === task);
    if (!t || !hasSamples(t)) continue;
    // log scale: a zero or negative latency cannot be drawn (and cannot really happen)
    for (const [ms, fraction] of t.cdf) if (finite(ms) && ms > 0 && finite(fraction)) points.push({ phase: p.name, ms, fraction });
  }
  if (!points.length) return { name, empty: `no latency samples for ${task} in any phase` };
  const sub: string[] = [];
  const lo = leftOut(results.phases, task);
  if (lo) sub.push(lo);
  if (slo) sub.push(`SLO: P${slo.percentile} < ${slo.belowMs} ms (dashed black rule; each line must reach ${slo.percentile}% left of it)`);
  const layer: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [
    {
      data: { values: points },
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log scale)' },
        y: { field: 'fraction', type: 'quantitative', scale: { domain: [0, 1] }, title: 'fraction of requests' },
        color: { field: 'phase', type: 'nominal', sort: order, title: 'phase' },
      },
    },
  ];
  if (slo) {
    layer.push(
      {
        data: { values: [{ ms: slo.belowMs }] },
        mark: { type: 'rule', color: '#000000', strokeDash: [6, 4], strokeWidth: 1.5 },
        encoding: { x: { field: 'ms', type: 'quantitative' } },
      },
      {
        data: { values: [{ fraction: slo.percentile / 100 }] },
        mark: { type: 'rule', color: '#888888', strokeDash: [2, 3] },
        encoding: { y: { field: 'fraction', type: 'quantitative' } },
      },
    );
  }
  return {
    name,
    spec: { $schema: VL_SCHEMA, config: CONFIG, title: title(`${task}: latency CDF per phase`, sub), width: 560, height: 320, layer },
  };
}

/** `p99-by-mechanism`: P99 per phase (grouped by task) with its CI and the P99 SLO bounds. */
export function p99Spec(results: Results, slos: LatencySlos): ChartSpec {
  const name = 'p99-by-mechanism';
  const order = phaseOrder(results.phases);
  const rows: { phase: string; task: string; p99: number; lo: number | null; hi: number | null; supported: boolean }[] = [];
  for (const p of results.phases) {
    if (!drawable(p)) continue;
    for (const t of p.tasks) {
      if (!hasSamples(t) || !finite(t.latencyMs.p99)) continue;
      const ci = t.latencyMs.ci99;
      rows.push({
        phase: p.name,
        task: t.name,
        p99: t.latencyMs.p99,
        lo: ci && finite(ci[0]) ? ci[0] : null,
        hi: ci && finite(ci[1]) ? ci[1] : null,
        supported: !t.latencyMs.unsupported.includes('p99'),
      });
    }
  }
  if (!rows.length) return { name, empty: 'no phase has a P99' };
  const tasks = [...new Set(rows.map((r) => r.task))];
  const bounds = tasks.filter((t) => slos[t]?.percentile === 99).map((t) => ({ task: t, belowMs: slos[t].belowMs }));
  const sub: string[] = ['whiskers: 95% CI of P99; faded bars: sample too small for P99'];
  if (bounds.length) sub.push('dashed: P99 SLO bound per task');
  const lo = leftOut(results.phases);
  if (lo) sub.push(lo);
  const phases = order.filter((n) => rows.some((r) => r.phase === n));
  const x = { field: 'phase', type: 'nominal', sort: phases, title: 'phase', axis: { labelAngle: -30 } } as const;
  const color = { field: 'task', type: 'nominal', sort: tasks, title: 'task' } as const;
  const xOffset = { field: 'task', type: 'nominal', sort: tasks } as const;
  const layer: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [
    {
      data: { values: rows },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x,
            xOffset,
            color,
            y: { field: 'p99', type: 'quantitative', title: 'P99 latency (ms)' },
            opacity: { condition: { test: 'datum.supported', value: 1 }, value: 0.4 },
          },
        },
        {
          transform: [{ filter: 'datum.lo != null && datum.hi != null' }],
          mark: { type: 'rule', color: '#333333' },
          encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
        },
      ],
    },
  ];
  if (bounds.length) {
    layer.push({
      data: { values: bounds },
      mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 2 },
      encoding: { y: { field: 'belowMs', type: 'quantitative' }, color },
    });
  }
  return { name, spec: { $schema: VL_SCHEMA, config: CONFIG, title: title('P99 latency by phase', sub), width: groupedWidth(phases.length, tasks.length), height: 320, layer } };
}

/** `throughput-share`: each task's co-run throughput as a percentage of its standalone throughput. */
export function throughputShareSpec(results: Results): ChartSpec {
  const name = 'throughput-share';
  const order = phaseOrder(results.phases);
  const rows: { phase: string; task: string; pct: number }[] = [];
  for (const p of results.phases) {
    if (p.kind !== 'corun' || !drawable(p)) continue;
    for (const t of p.tasks) if (hasSamples(t) && finite(t.throughputShare)) rows.push({ phase: p.name, task: t.name, pct: t.throughputShare * 100 });
  }
  if (!rows.length) return { name, empty: 'no co-run phase has throughput shares' };
  const tasks = [...new Set(rows.map((r) => r.task))];
  const phases = order.filter((n) => rows.some((r) => r.phase === n));
  const sub = ['dashed: 100% = as fast as standalone'];
  const lo = leftOut(results.phases.filter((p) => p.kind === 'corun'));
  if (lo) sub.push(lo);
  return {
    name,
    spec: {
      $schema: VL_SCHEMA,
      config: CONFIG,
      title: title('Throughput share of standalone', sub),
      width: groupedWidth(phases.length, tasks.length),
      height: 320,
      layer: [
        {
          data: { values: rows },
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'phase', type: 'nominal', sort: phases, title: 'phase', axis: { labelAngle: -30 } },
            xOffset: { field: 'task', type: 'nominal', sort: tasks },
            color: { field: 'task', type: 'nominal', sort: tasks, title: 'task' },
            y: { field: 'pct', type: 'quantitative', title: 'throughput (% of standalone)' },
          },
        },
        {
          data: { values: [{ pct: 100 }] },
          mark: { type: 'rule', color: '#888888', strokeDash: [6, 4] },
          encoding: { y: { field: 'pct', type: 'quantitative' } },
        },
      ],
    },
  };
}

/** Every standard chart of a run: one CDF per task (in first-seen order), P99 by phase, throughput share. */
export function chartSpecs(results: Results, slos: LatencySlos = sloBounds(results)): ChartSpec[] {
  const tasks = [...new Set(results.phases.flatMap((p) => p.tasks.map((t) => t.name)))];
  return [...tasks.map((t) => latencyCdfSpec(results, t, slos[t])), p99Spec(results, slos), throughputShareSpec(results)];
}
