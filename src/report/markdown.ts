/**
 * report.md of a scenario run, from Results alone: what ran, whether the success rows were met,
 * then per phase every task's latency, throughput and SLO verdicts, failed phases with their
 * stderr, and the charts. Every number the sample cannot support is shown in parentheses with a
 * note, so the report never claims more than was measured.
 */
import path from 'node:path';
import type { PhaseResult, Results, SuccessVerdict, TaskResult } from '../scenario/types.js';
import { VERSION } from '../version.js';
import { fmtNum, fmtPass, fmtPct, fmtRatio } from './format.js';

/** What markdown needs of a rendered chart (ChartFile from charts.ts fits). */
export interface ChartLink {
  name: string;
  /** path of the SVG; only its file name is used (the link is charts/<file>) */
  svg: string;
  png?: string;
  error?: string;
}

/** A table cell: no pipes or line breaks that would break the row. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function mdTable(header: string[], rows: string[][]): string[] {
  return [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

/** A fence longer than any backtick run inside, so stderr cannot close it early. */
function fenced(lines: string[]): string[] {
  const longest = Math.max(0, ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((m) => m.length))));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [fence, ...lines, fence];
}

/** Which dispatch engine timed the probe form, and why ("" for results without one: torch form, older files). */
function engineText(b: Results['backend']): string {
  if (!b.engine) return '';
  return `Dispatch engine: **${b.engine === 'ts' ? 'pure-TS' : 'native'}**${b.engineWhy ? ` (${b.engineWhy})` : ''}. `;
}

function header(r: Results): string[] {
  const { scenario: s, backend: b, host: h } = r;
  const where = [b.device, b.gpu].filter((x): x is string => !!x).join(', ');
  const hostBits = [h.os, `${h.cpus} CPUs`, `Node ${h.node}`, h.python ? `Python ${h.python}` : '', h.torch ? `torch ${h.torch}` : ''].filter(Boolean);
  const version = r.gpucoloVersion === VERSION ? `gpucolo ${r.gpucoloVersion}` : `gpucolo ${r.gpucoloVersion} (report by gpucolo ${VERSION})`;
  const out = [
    `# gpucolo report: ${s.name}`,
    '',
    `Scenario **${s.name}** (\`${s.source}\`) in **${s.form}** form on backend **${b.name}**${where ? ` (${where})` : ''}: ${b.why}. ` +
      `${engineText(b)}Host ${h.hostname} (${hostBits.join(', ')}); ${r.createdAt}; ${version}.`,
  ];
  if (b.engine === 'ts') out.push('', `> **Pure-TS engine**: ${b.note ?? 'timings from the pure-TS cpu backend'}.`);
  if (r.partial) {
    out.push('', '> **PARTIAL RESULTS**: the run stopped early (interrupted or a fatal error); phases after that point are missing or partial.');
  }
  return out;
}

function successSection(rows: SuccessVerdict[]): string[] {
  const out = ['', '## Success criteria', ''];
  if (!rows.length) return [...out, 'The scenario has no success rows.'];
  const body = rows.map((v) => {
    const best = v.best !== null ? v.phases.find((p) => p.phase === v.best) : undefined;
    const value = best ? best.detail || fmtNum(best.value) : '-';
    const perPhase = v.phases.map((p) => `${p.phase} ${fmtPass(p.pass)}`).join(', ') || 'no co-run phase to judge';
    return [v.row, v.best ?? '-', value, fmtPass(v.pass), perPhase];
  });
  return [...out, ...mdTable(['row', 'best phase', 'value', 'verdict', 'per phase'], body), '', 'A row passes when at least one co-run mechanism meets it; n.a.: the samples cannot decide.'];
}

/** A latency in ms, in parentheses when the sample is too small for that percentile. */
function pct(t: TaskResult, key: 'p50' | 'p90' | 'p99' | 'p999'): { text: string; unsupported: boolean } {
  const v = t.latencyMs[key];
  const unsupported = v !== null && t.latencyMs.unsupported.includes(key);
  return { text: unsupported ? `(${fmtNum(v)})` : fmtNum(v), unsupported };
}

function taskRow(t: TaskResult): { row: string[]; unsupported: boolean } {
  const l = t.latencyMs;
  const p50 = pct(t, 'p50');
  const p90 = pct(t, 'p90');
  const p99 = pct(t, 'p99');
  const p999 = pct(t, 'p999');
  const p99Text = !p99.unsupported && l.ci99 ? `${p99.text} [${fmtNum(l.ci99[0])}–${fmtNum(l.ci99[1])}]` : p99.text;
  const misses = t.deadline ? `${t.deadline.missed}/${t.deadline.total} (${fmtPct(t.deadline.ratio)})` : '-';
  const slo = t.slo.length ? t.slo.map((v) => `${fmtPass(v.pass)} ${v.text}`).join('; ') : '-';
  const n = t.requests.errors > 0 ? `${l.n} (${t.requests.errors} errors)` : String(l.n);
  return {
    row: [t.name, String(t.priority), n, p50.text, p90.text, p99Text, p999.text, fmtNum(l.max), fmtNum(t.throughput), fmtPct(t.throughputShare), fmtRatio(t.slowdownP99), misses, slo],
    unsupported: p50.unsupported || p90.unsupported || p99.unsupported || p999.unsupported,
  };
}

function phaseSection(p: PhaseResult): string[] {
  const out = ['', `### ${p.name}`, ''];
  out.push(`${p.status}, ${fmtNum(p.measuredS)} s measured${p.reason ? `: ${p.reason}` : ''}.`, '');
  const rows = p.tasks.map(taskRow);
  out.push(
    ...mdTable(
      ['task', 'priority', 'n', 'P50', 'P90', 'P99 [CI]', 'P99.9', 'max', 'throughput/s', 'share of standalone', 'slowdown P99', 'deadline misses', 'SLO verdicts'],
      rows.map((r) => r.row),
    ),
  );
  if (rows.some((r) => r.unsupported)) out.push('', 'Values in (parentheses): the sample is too small to support that percentile; shown for orientation only.');
  const errors = p.tasks.filter((t) => t.error).map((t) => `- ${t.name}: ${t.error}`);
  if (errors.length) out.push('', 'Errors:', ...errors);
  for (const t of p.tasks) {
    const undecided = t.slo.filter((v) => v.pass === null);
    if (undecided.length) out.push(`SLO n.a. for ${t.name}: ${undecided.map((v) => `${v.text}: ${v.detail}`).join('; ')}.`);
  }
  if (p.kind === 'corun') {
    const u = p.utilisation;
    const util = u.value !== null ? `${fmtPct(u.value)} (${u.source})` : `unavailable${u.reason ? ` (${u.reason})` : ''}`;
    out.push('', `Utilisation: ${util}. Fairness (Jain's index over priority-weighted throughput shares): ${fmtNum(p.fairness)}.`);
  }
  if (p.notes.length) out.push('', 'Notes:', ...p.notes.map((n) => `- ${n}`));
  return out;
}

function failedSection(phases: PhaseResult[]): string[] {
  if (!phases.length) return [];
  const out = ['', '## Failed and skipped phases'];
  for (const p of phases) {
    out.push('', `### ${p.name}: ${p.status}`, '', `Reason: ${p.reason ?? 'not recorded'}`);
    if (p.stderrTail?.length) out.push('', 'Last stderr lines:', '', ...fenced(p.stderrTail));
    if (p.notes.length) out.push('', 'Notes:', ...p.notes.map((n) => `- ${n}`));
  }
  return out;
}

function chartsSection(charts: ChartLink[]): string[] {
  if (!charts.length) return [];
  const out = ['', '## Charts', ''];
  for (const c of charts) {
    if (c.svg) out.push(`![${c.name}](charts/${path.basename(c.svg)})`, '');
    if (c.error) out.push(`- ${c.name}: ${c.svg ? '' : 'not drawn: '}${c.error}`, '');
  }
  return out;
}

/** The whole report as Markdown (ends with a newline). Charts are linked as charts/<name>.svg. */
export function renderMarkdown(results: Results, charts: ChartLink[] = []): string {
  const ran = results.phases.filter((p) => p.status === 'ok' || p.status === 'partial');
  const notRun = results.phases.filter((p) => p.status === 'failed' || p.status === 'skipped');
  const lines = [...header(results), ...successSection(results.success), '', '## Phases', ''];
  lines.push('Latencies in ms from the intended arrival of each request; P99 [CI]: its 95% confidence interval; share and slowdown against the standalone phase.');
  if (!ran.length) lines.push('', 'No phase completed.');
  for (const p of ran) lines.push(...phaseSection(p));
  lines.push(...failedSection(notRun), ...chartsSection(charts));
  while (lines[lines.length - 1] === '') lines.pop();
  return `${lines.join('\n')}\n`;
}
