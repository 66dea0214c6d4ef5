/**
 * report.md of `gpucolo tune` and the chart of its Pareto front, from tune.json alone. The chart
 * is a spec for the project's renderer (src/report/charts.ts renderSpecs); the report links it
 * as the scenario report does (src/report/markdown.ts).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ChartSpec } from '../report/chart-specs.js';
import type { ChartLink } from '../report/markdown.js';
import { formatMs } from '../stats/index.js';
import type { TuneResult, TuneTrial } from './schema.js';

/** The sans font list of src/report/chart-specs.ts (not exported there), so PNG text stays sans. */
const FONT = 'Helvetica Neue, Helvetica, Arial, DejaVu Sans, Liberation Sans, Noto Sans, sans-serif';
const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

const trusted = (t: TuneTrial): boolean => (t.verdict === 'met' || t.verdict === 'missed' || t.verdict === 'inconclusive') && t.hpP99Ms !== null && t.lpShare !== null;

/** The P99 bounds of the high-priority latency SLOs, ms (a rule each on the chart). */
function hpBoundsMs(r: TuneResult): number[] {
  const out = new Set<number>();
  for (const t of r.trials) for (const c of t.slos) if (c.percentile === 99 && c.boundMs !== null) out.add(c.boundMs);
  return [...out];
}

/** High-priority P99 against low-priority share: every trusted trial, the front of each mechanism as a line. */
export function frontChartSpec(r: TuneResult): ChartSpec {
  const name = 'tune-front';
  const points = r.trials.filter(trusted).map((t) => ({ mechanism: t.mechanism, setting: t.label, verdict: t.verdict, p99: t.hpP99Ms, share: (t.lpShare ?? 0) * 100 }));
  if (!points.length) return { name, empty: 'no trial with trusted numbers (quality ok) to draw' };
  const front = r.mechanisms.flatMap((m) => m.front.map((f) => ({ mechanism: m.mechanism, setting: f.label, p99: f.hpP99Ms, share: f.lpShare * 100 })));
  const x = { field: 'share', type: 'quantitative', title: 'low-priority throughput, % of standalone' } as const;
  // log: tails span orders of magnitude between a protective setting and an overloaded one
  const y = { field: 'p99', type: 'quantitative', title: 'high-priority P99, ms (log)', scale: { type: 'log' } } as const;
  const color = { field: 'mechanism', type: 'nominal', title: 'mechanism' } as const;
  const layers: unknown[] = [
    { data: { values: front }, mark: { type: 'line', point: false, opacity: 0.6 }, encoding: { x, y, color, order: { field: 'share' } } },
    {
      data: { values: points },
      mark: { type: 'point', filled: true, size: 70 },
      encoding: { x, y, color, shape: { field: 'verdict', type: 'nominal', title: 'verdict', scale: { domain: ['met', 'missed', 'inconclusive'] } }, tooltip: [{ field: 'setting' }, { field: 'verdict' }] },
    },
  ];
  const bounds = hpBoundsMs(r);
  if (bounds.length) layers.push({ data: { values: bounds.map((b) => ({ p99: b })) }, mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { field: 'p99', type: 'quantitative', scale: { type: 'log' } } } });
  const spec = {
    $schema: VL_SCHEMA,
    title: { text: `${r.scenario.name}: high-priority P99 vs low-priority share`, subtitle: 'trusted trials (quality ok); lines: the Pareto front per mechanism; dashed: the P99 SLO' },
    width: 520,
    height: 320,
    config: { font: FONT },
    layer: layers,
  } as unknown as TopLevelSpec;
  return { name, spec };
}

const num = (v: number | null, digits = 1): string => (v === null ? '—' : v.toFixed(digits));
const pctText = (v: number | null): string => (v === null ? '—' : `${(v * 100).toFixed(0)}%`);
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const row = (cells: string[]): string => `| ${cells.map(cell).join(' | ')} |`;

function trialRows(r: TuneResult): string[] {
  const out = [row(['#', 'mechanism', 'setting', 'verdict', 'rounds', 'HP P99 ms', 'LP share', 'quality', 'why'])];
  out.push(`|${Array(9).fill('---').join('|')}|`);
  for (const t of r.trials) {
    const rounds = `${t.rounds}/${t.maxRounds}${t.stoppedEarly ? ' (early)' : ''}${t.budgetCut ? ' (budget)' : ''}`;
    out.push(row([String(t.id), t.mechanism, `${t.label}${t.attempt ? ` (repeat ${t.attempt})` : ''}`, t.verdict, rounds, num(t.hpP99Ms), pctText(t.lpShare), t.quality.verdict, t.why]));
  }
  return out;
}

function frontLines(r: TuneResult): string[] {
  const out: string[] = [];
  for (const m of r.mechanisms) {
    const state = m.status === 'skipped' ? `skipped: ${m.reason ?? ''}` : m.status;
    out.push(`- **${m.mechanism}** (${m.knob}, ${m.levels} level${m.levels === 1 ? '' : 's'}): ${state}; front: ${m.front.length ? m.front.map((f) => `${f.label}: P99 ${formatMs(f.hpP99Ms)} ms, LP ${pctText(f.lpShare)} (${f.verdict})`).join('; ') : 'no trusted trial'}`);
  }
  return out;
}

/** report.md of a tune. */
export function renderTuneMarkdown(r: TuneResult, chart: ChartLink | null): string {
  const lines = [`# gpucolo tune: ${r.scenario.name}`, ''];
  lines.push(`${r.backend.form} form, ${r.backend.name}${r.backend.device ? ` (${r.backend.device})` : ''}${r.backend.engine === 'ts' ? ', pure-TS engine' : ''}. Budget ${r.budget.budgetS} s, used ${r.budget.usedS.toFixed(0)} s${r.budget.ranOut ? ' — **the budget ran out**' : ''}${r.partial ? ' — **interrupted**' : ''}.`);
  lines.push(`High priority: ${r.hpTasks.join(', ')}; low priority: ${r.lpTasks.join(', ')}. Trials of up to ${r.options.maxRounds} round(s) of ${r.options.durationS} s, stopped early once every high-priority SLO is decided at ${r.options.confidence * 100}% confidence.`, '');
  lines.push('## Recommendation', '');
  if (r.recommendation) {
    const rec = r.recommendation;
    lines.push(`**${rec.mechanism}, ${rec.label}**: high-priority P99 ${num(rec.hpP99Ms)} ms, low-priority throughput ${pctText(rec.lpShare)} of standalone (trial ${rec.trial}).`, '', r.why, '', 'Paste into the scenario:', '', '```yaml', rec.yaml.trimEnd(), '```', '');
  } else {
    lines.push('None.', '', r.why, '');
  }
  lines.push('## Pareto front (high-priority P99 vs low-priority share)', '', ...frontLines(r), '');
  if (chart?.svg) lines.push(`![Pareto front](charts/${chart.svg.split('/').pop()})`, '');
  else if (chart?.error) lines.push(`(chart not drawn: ${chart.error})`, '');
  const base = r.baseline;
  lines.push('## Baseline (every task alone)', '', ...base.tasks.map((t) => `- ${t.name}: P99 ${num(t.p99Ms)} ms, ${t.throughput.toFixed(1)}/s (n=${t.n})`));
  if (base.quality?.verdict === 'noisy') lines.push(`- quality: noisy after ${base.attempts} attempt(s): ${base.quality.warnings.map((w) => w.message).join('; ')}`);
  lines.push('', '## Trials', '', ...trialRows(r), '');
  return `${lines.join('\n')}\n`;
}
