/**
 * report.md of a scenario run, from Results alone: what ran, whether the success rows were met,
 * then per phase every task's latency, throughput and SLO verdicts, failed phases with their
 * stderr, and the charts. Every number the sample cannot support is shown in parentheses with a
 * note, so the report never claims more than was measured.
 */
import path from 'node:path';
import type { PhaseResult, PhaseRound, PreemptionLatency, Results, SuccessVerdict, TaskResult } from '../scenario/types.js';
import { percentileSampleSize, secondsForSamples, type RoundSpread } from '../stats/index.js';
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

const isInconclusive = (detail: string | undefined): boolean => detail?.startsWith('inconclusive') === true;

/** PASS / FAIL / n.a., or "inconclusive" when a quality warning (or a censored lower bound) left it undecided. */
function verdict(pass: boolean | null, detail?: string): string {
  return pass === null && isInconclusive(detail) ? 'inconclusive' : fmtPass(pass);
}

/** The quality block: first thing after the header, so no figure below is read without it. */
function qualitySection(r: Results): string[] {
  const q = r.quality;
  if (!q) return [];
  const rounds = r.rounds ?? 1;
  const out = ['', `## Quality: ${q.verdict === 'ok' ? '**ok**' : '**NOISY**'}`, ''];
  const how = `${rounds} round${rounds === 1 ? '' : 's'} per phase${rounds > 1 ? ', the order rotated each round; the figures pool the rounds, the spread between rounds is shown beside them' : ''}`;
  if (q.verdict === 'ok') out.push(`No warning: the co-run figures are physically possible against the standalone ones, the standalone rounds agree, nothing else was seen taking the host or the device, and the load generator kept its schedule (${how}).`);
  else out.push(`${q.warnings.length} warning(s): a success row or SLO verdict on a figure named here is **inconclusive** (no PASS or FAIL) (${how}).`, '');
  for (const w of q.warnings) out.push(`- \`${w.code}\`${w.phase ? ` (${w.phase}${w.task ? `, ${w.task}` : ''})` : ''}: ${w.message}`);
  if (q.unknown?.length) out.push('', 'Not checked:', ...q.unknown.map((u) => `- \`${u.code}\`: ${u.message}`));
  return out;
}

/** A reference cell: the figure and its verdict, "-" when there is none. */
function refCell(c: SuccessVerdict['phases'][number] | null | undefined): string {
  if (!c) return '-';
  return `${c.detail || fmtNum(c.value)} (${verdict(c.pass, c.detail)})`;
}

/** The preemption-latency row: the HP task's added P99 per co-run phase, in ms and LP kernels. */
function preemptionRow(p: PreemptionLatency, withRefs: boolean): string[] {
  const judged = p.phases.filter((x) => x.addedP99Ms !== null && !x.inconclusive);
  const best = judged.length ? judged.reduce((a, b) => (b.addedP99Ms! < a.addedP99Ms! ? b : a)) : null;
  const fig = (x: PreemptionLatency['phases'][number]): string =>
    x.addedP99Ms === null ? `n.a. (${x.detail})` : `${x.addedP99Ms >= 0 ? '+' : ''}${fmtNum(x.addedP99Ms)} ms${x.lpKernels !== null ? ` = ${x.lpKernels.toFixed(1)} LP kernels` : ''}${x.inconclusive ? ` (${x.inconclusive})` : ''}`;
  const row = `${p.hpTask} waits behind LP work (P99 added vs standalone${p.lpKernelMs !== null ? `; LP kernel ${fmtNum(p.lpKernelMs)} ms` : ''})`;
  const native = p.phases.find((x) => x.phase === 'corun:none');
  const perPhase = p.phases.map((x) => `${x.phase} ${fig(x)}`).join(', ') || 'no co-run phase';
  const refs = withRefs ? [p.standaloneP99Ms !== null ? `+0 ms (P99 ${fmtNum(p.standaloneP99Ms)} ms)` : '-', native ? fig(native) : '-'] : [];
  return [row, ...refs, best?.phase ?? '-', best ? best.detail : '-', 'measured', perPhase];
}

function successSection(rows: SuccessVerdict[], preemption?: PreemptionLatency | null): string[] {
  const out = ['', '## Success criteria', ''];
  if (!rows.length && !preemption) return [...out, 'The scenario has no success rows.'];
  // the design notes' reference columns (standalone baseline, native sharing), in results that have them
  const withRefs = rows.some((v) => v.reference !== undefined) || (!rows.length && !!preemption);
  const body = rows.map((v) => {
    const best = v.best !== null ? v.phases.find((p) => p.phase === v.best) : undefined;
    const value = best ? best.detail || fmtNum(best.value) : '-';
    const perPhase = v.phases.map((p) => `${p.phase} ${verdict(p.pass, p.detail)}`).join(', ') || 'no co-run phase to judge';
    const refs = withRefs ? [refCell(v.reference?.standalone), refCell(v.reference?.native)] : [];
    return [v.row, ...refs, v.best ?? '-', value, v.pass === null && v.inconclusive ? `inconclusive: ${v.inconclusive}` : fmtPass(v.pass), perPhase];
  });
  if (preemption) body.push(preemptionRow(preemption, withRefs));
  const undecided = rows.flatMap((v) => v.phases.filter((p) => p.pass === null && isInconclusive(p.detail)).map((p) => `- ${v.row}, ${p.phase}: ${p.detail}`));
  return [
    ...out,
    ...mdTable(['row', ...(withRefs ? ['standalone (baseline)', 'native (corun:none)'] : []), 'best phase', 'value', 'verdict', 'per phase'], body),
    '',
    'A row passes when at least one co-run mechanism meets it; n.a.: the samples cannot decide; inconclusive: a quality warning names the figure (or it is a censored lower bound on the wrong side of the bound).',
    ...(withRefs ? ['The standalone and native columns are references (the task alone; co-run with no mechanism): the standalone one is not counted in the verdict, native sharing is one of the co-run phases.'] : []),
    ...(preemption ? [`Preemption latency: the P99 ${preemption.hpTask} gains over its standalone P99 in each co-run (a difference of percentiles)${preemption.lpKernelMs !== null ? `, and that time in LP kernels (${preemption.lpKernelSource})` : ` (${preemption.lpKernelSource})`}; no bound, so no verdict.`] : []),
    ...(undecided.length ? ['', 'Inconclusive:', ...undecided] : []),
  ];
}

/** A latency in ms: in parentheses when the sample is too small for that percentile, ">=" when a censored value makes it a lower bound. */
function pct(t: TaskResult, key: 'p50' | 'p90' | 'p99' | 'p999' | 'max'): { text: string; unsupported: boolean; lowerBound: boolean } {
  const v = t.latencyMs[key];
  const unsupported = key !== 'max' && v !== null && t.latencyMs.unsupported.includes(key);
  const lowerBound = v !== null && (t.latencyMs.censoredAtOrAbove ?? []).includes(key);
  const text = `${lowerBound ? '>=' : ''}${fmtNum(v)}`;
  return { text: unsupported ? `(${text})` : text, unsupported, lowerBound };
}

/** "12.1 / 14 / 20.3" (min / median / max over rounds); "-" when fewer than two rounds had a value */
function spread(s: RoundSpread | null | undefined): string {
  return s && s.n > 1 ? `${fmtNum(s.min)} / ${fmtNum(s.median)} / ${fmtNum(s.max)}` : '-';
}

function taskRow(t: TaskResult, rounds: boolean): { row: string[]; unsupported: boolean; lowerBound: boolean } {
  const l = t.latencyMs;
  const p50 = pct(t, 'p50');
  const p90 = pct(t, 'p90');
  const p99 = pct(t, 'p99');
  const p999 = pct(t, 'p999');
  const max = pct(t, 'max');
  const p99Text = !p99.unsupported && l.ci99 ? `${p99.text} [${fmtNum(l.ci99[0])}–${fmtNum(l.ci99[1])}]` : p99.text;
  const misses = t.deadline ? `${t.deadline.missed}/${t.deadline.total} (${fmtPct(t.deadline.ratio)})` : '-';
  const slo = t.slo.length ? t.slo.map((v) => `${verdict(v.pass, v.detail)} ${v.text}`).join('; ') : '-';
  const extra = [t.requests.errors > 0 ? `${t.requests.errors} errors` : '', (t.requests.censored ?? 0) > 0 ? `${t.requests.censored} censored` : ''].filter(Boolean);
  const n = extra.length ? `${l.n} (${extra.join(', ')})` : String(l.n);
  const row = [t.name, String(t.priority), n, p50.text, p90.text, p99Text, p999.text, max.text, fmtNum(t.throughput), fmtPct(t.throughputShare), fmtRatio(t.slowdownP99), misses, slo];
  if (rounds) row.splice(6, 0, spread(t.spread?.p99));
  if (rounds) row.splice(10, 0, spread(t.spread?.throughput));
  return {
    row,
    unsupported: p50.unsupported || p90.unsupported || p99.unsupported || p999.unsupported,
    lowerBound: [p50, p90, p99, p999, max].some((x) => x.lowerBound),
  };
}

const load = (h: PhaseRound['host']): string => {
  if (!h) return '-';
  const parts = [h.foreignCores === null ? 'others ? cores' : `others ${fmtNum(h.foreignCores)} of ${h.cpus} cores`];
  if (h.stealShare !== null && h.stealShare > 0) parts.push(`steal ${fmtPct(h.stealShare)}`);
  if (h.loadAverage1 !== null) parts.push(`load ${fmtNum(h.loadAverage1)}`);
  return parts.join(', ');
};

/** Each run of the phase: where it ran in its round, its own figures per task, and what else took the host. */
function roundsTable(p: PhaseResult): string[] {
  const rs = p.rounds ?? [];
  if (rs.length < 2) return [];
  const rows = rs.map((r) => [
    `${r.round}${r.extension ? ' (extension)' : ''}`,
    String(r.position + 1),
    r.status,
    fmtNum(r.measuredS),
    r.tasks
      .map((t) => `${t.name}: n ${t.n}${t.requests.censored ? ` (${t.requests.censored} censored)` : ''}, P50 ${fmtNum(t.p50)}, P99 ${t.censoredAtOrAbove.includes('p99') ? '>=' : ''}${fmtNum(t.p99)}, ${fmtNum(t.throughput)}/s${t.throughputShare !== null ? ` (${fmtPct(t.throughputShare)})` : ''}`)
      .join('; ') || (r.reason ?? '-'),
    load(r.host),
  ]);
  return ['', 'Rounds:', '', ...mdTable(['round', 'position', 'status', 'measured s', 'per task (ms; share against the same round\'s standalone)', 'host during the run'], rows)];
}

function phaseSection(p: PhaseResult, multi: boolean): string[] {
  const out = ['', `### ${p.name}`, ''];
  const runs = p.rounds?.length ?? 1;
  out.push(`${p.status}, ${fmtNum(p.measuredS)} s measured${runs > 1 ? ` over ${runs} runs` : ''}${p.reason ? `: ${p.reason}` : ''}.`, '');
  const rows = p.tasks.map((t) => taskRow(t, multi));
  const header = ['task', 'priority', 'n', 'P50', 'P90', 'P99 [CI]', 'P99.9', 'max', 'throughput/s', 'share of standalone', 'slowdown P99', 'deadline misses', 'SLO verdicts'];
  if (multi) {
    header.splice(6, 0, 'P99 rounds min / med / max');
    header.splice(10, 0, 'throughput rounds min / med / max');
  }
  out.push(...mdTable(header, rows.map((r) => r.row)));
  if (rows.some((r) => r.unsupported)) out.push('', 'Values in (parentheses): the sample is too small to support that percentile; shown for orientation only.');
  if (rows.some((r) => r.lowerBound)) out.push('', 'Values marked >=: lower bounds. Requests still unfinished when the phase stopped waiting are in the sample at their age then (censored), so a figure at or above the rank of one can only be at least this.');
  const errors = p.tasks.filter((t) => t.error).map((t) => `- ${t.name}: ${t.error}`);
  if (errors.length) out.push('', 'Errors:', ...errors);
  for (const t of p.tasks) {
    const undecided = t.slo.filter((v) => v.pass === null);
    if (undecided.length) out.push(`SLO ${undecided.some((v) => isInconclusive(v.detail)) ? 'undecided' : 'n.a.'} for ${t.name}: ${undecided.map((v) => `${v.text}: ${v.detail}`).join('; ')}.`);
    const lag = t.submitLagMs;
    if (lag && lag.p99 !== null && lag.p99 >= 1) out.push(`${t.name}: the load generator sent requests late: P50 ${fmtNum(lag.p50)} ms, P99 ${fmtNum(lag.p99)} ms, max ${fmtNum(lag.max)} ms (${lag.n} requests).`);
  }
  if (p.kind === 'corun') {
    const u = p.utilisation;
    const util = u.value !== null ? `${fmtPct(u.value)} (${u.source})` : `unavailable${u.reason ? ` (${u.reason})` : ''}`;
    out.push('', `Utilisation: ${util}. Fairness (Jain's index over priority-weighted throughput shares): ${fmtNum(p.fairness)}.`);
  }
  if (p.notes.length) out.push('', 'Notes:', ...p.notes.map((n) => `- ${n}`));
  out.push(...roundsTable(p));
  return out;
}

/**
 * Where a P99 has no confidence interval: what it is (the k-th largest value) and how long a phase
 * must run for one at the task's rate (pooled requests per measured second).
 */
function sampleSizeSection(r: Results): string[] {
  const rounds = r.rounds ?? 1;
  const lines: string[] = [];
  let need = 0;
  for (const p of r.phases) {
    if (p.status !== 'ok' && p.status !== 'partial') continue;
    for (const t of p.tasks) {
      const n = t.latencyMs.n;
      const size = percentileSampleSize(n, 99);
      if (size.hasCi || n === 0) continue;
      need = size.needForCi;
      const perRound = p.measuredS > 0 ? secondsForSamples(size.needForCi, n / p.measuredS, rounds) : null;
      const how = perRound !== null ? `; run --duration ${perRound}s${rounds > 1 ? ` (with ${rounds} rounds)` : ''} for ${size.needForCi} samples, or --min-samples ${size.needForCi}` : '';
      lines.push(`- ${p.name}, ${t.name}: ${size.text}${how}.`);
    }
  }
  if (!lines.length) return [];
  return ['', '## Sample sizes', '', `A P99 has a 95% confidence interval from n >= ${need} requests; below that it is the k-th largest value, and two such values differ by chance far more than they seem to.`, '', ...lines];
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
  const multi = (results.rounds ?? 1) > 1;
  const lines = [...header(results), ...qualitySection(results), ...successSection(results.success, results.preemption), '', '## Phases', ''];
  lines.push(
    `Latencies in ms from the intended arrival of each request; P99 [CI]: its 95% confidence interval; share and slowdown against the standalone phase${multi ? '; pooled over the rounds, with the spread of the rounds\' own P99 and throughput (min / median / max)' : ''}.`,
  );
  if (!ran.length) lines.push('', 'No phase completed.');
  for (const p of ran) lines.push(...phaseSection(p, multi));
  lines.push(...sampleSizeSection(results), ...failedSection(notRun), ...chartsSection(charts));
  while (lines[lines.length - 1] === '') lines.pop();
  return `${lines.join('\n')}\n`;
}
