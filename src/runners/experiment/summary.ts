/**
 * The summary of an experiment file's runs: one table over all runs (Markdown for people, CSV
 * for spreadsheets and pandas), ordered by experiment and run index. Columns: experiment id,
 * mode, model, hyperparameters (k=v, space-separated), duration s, success, retries, one column
 * per metric found in any result (in order of first appearance), gpu energy J, cpu energy J,
 * attribution. A value that is unavailable reads "n.a." in Markdown and is an empty cell in CSV.
 * The Markdown adds the background of each parallel run (runs started, restarts; a row per
 * background when there are several), the failed
 * runs with their error, and the energy notes (what was measured, what was unavailable).
 */
import type { ExperimentResult, HyperValue, Hyperparameters } from './types.js';

const NA = 'n.a.';

function ordered(results: ExperimentResult[]): ExperimentResult[] {
  return [...results].sort((a, b) => a.experiment_index - b.experiment_index || a.run_index - b.run_index || a.experiment_id.localeCompare(b.experiment_id));
}

/** Metric names over all results, in order of first appearance. */
export function metricNames(results: ExperimentResult[]): string[] {
  const names = new Set<string>();
  for (const r of ordered(results)) for (const k of Object.keys(r.foreground_result?.performance_metrics ?? {})) names.add(k);
  return [...names];
}

function hyperText(hp: Hyperparameters | undefined): string {
  return Object.entries(hp ?? {})
    .map(([k, v]: [string, HyperValue]) => `${k}=${String(v)}`)
    .join(' ');
}

function num(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** 6 significant digits: 93.41 -> "93.41", 0.123456789 -> "0.123457", 12345.678 -> "12345.7"; null -> "n.a." */
function fmtMetric(v: number | null): string {
  return v === null ? NA : String(Number(v.toPrecision(6)));
}

function fmtFixed(v: number | null, digits: number): string {
  return v === null ? NA : v.toFixed(digits);
}

interface Row {
  id: string;
  mode: string;
  model: string;
  hyper: string;
  duration: number | null;
  success: boolean | null;
  retries: number | null;
  metrics: (number | null)[];
  gpuJ: number | null;
  cpuJ: number | null;
  attribution: string | null;
}

function rows(results: ExperimentResult[], metrics: string[]): Row[] {
  return ordered(results).map((r) => {
    const f = r.foreground_result;
    const e = f?.energy_metrics;
    return {
      id: r.experiment_id,
      mode: r.mode,
      model: f?.model ?? NA,
      hyper: hyperText(f?.hyperparameters),
      duration: num(f?.duration_seconds),
      success: typeof f?.training_success === 'boolean' ? f.training_success : null,
      retries: num(f?.retries),
      metrics: metrics.map((m) => num(f?.performance_metrics?.[m])),
      gpuJ: num(e?.gpu_energy_total_joules),
      cpuJ: num(e?.cpu_energy_total_joules),
      attribution: e?.attribution ?? null,
    };
  });
}

function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ') || ' ';
}

function table(header: string[], body: string[][]): string[] {
  return [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

const HEADER_HEAD = ['experiment', 'mode', 'model', 'hyperparameters', 'duration s', 'success', 'retries'];
const HEADER_TAIL = ['gpu energy J', 'cpu energy J', 'attribution'];

export function summaryMarkdown(results: ExperimentResult[], title: string): string {
  const metrics = metricNames(results);
  const all = rows(results, metrics);
  const ok = all.filter((r) => r.success === true).length;
  const lines: string[] = [`# ${title}`, ''];
  if (!all.length) {
    lines.push('No runs.', '');
    return lines.join('\n');
  }
  lines.push(`${all.length} run${all.length === 1 ? '' : 's'}, ${ok} succeeded.`, '');
  lines.push(
    ...table(
      [...HEADER_HEAD, ...metrics, ...HEADER_TAIL],
      all.map((r) => [
        r.id,
        r.mode,
        r.model,
        r.hyper || NA,
        fmtFixed(r.duration, 1),
        r.success === null ? NA : r.success ? 'yes' : 'no',
        r.retries === null ? NA : String(r.retries),
        ...r.metrics.map(fmtMetric),
        fmtFixed(r.gpuJ, 1),
        fmtFixed(r.cpuJ, 1),
        r.attribution ?? NA,
      ]),
    ),
    '',
  );

  const sorted = ordered(results);
  const bg = sorted.filter((r) => r.background_info);
  if (bg.length) {
    lines.push('## Background', '');
    lines.push(
      ...table(
        ['experiment', 'background', 'hyperparameters', 'runs started', 'restarts', 'note'],
        // a list of backgrounds: one row each
        bg.flatMap((r) =>
          (r.background_infos?.length ? r.background_infos : [r.background_info!]).map((b) => [r.experiment_id, `${b.repo}/${b.model}`, hyperText(b.hyperparameters) || NA, String(b.runs_started), String(b.restarts), b.note || '']),
        ),
      ),
      '',
    );
  }

  const failed = sorted.filter((r) => r.foreground_result && !r.foreground_result.training_success);
  if (failed.length) {
    lines.push('## Failed runs', '');
    for (const r of failed) {
      const f = r.foreground_result;
      lines.push(`- ${r.experiment_id}: ${(f.error_message ?? 'failed').split('\n')[0]}${f.log_file ? ` (log: ${f.log_file})` : ''}`);
    }
    lines.push('');
  }

  const notes = [...new Set(sorted.map((r) => r.foreground_result?.energy_metrics?.note).filter((n): n is string => !!n))];
  const estimates = [...new Set(sorted.map((r) => r.energy_estimate?.note).filter((n): n is string => !!n))];
  if (notes.length || estimates.length) {
    lines.push('## Energy', '');
    for (const n of [...notes, ...estimates]) lines.push(`- ${n}`);
    lines.push('');
  }
  return lines.join('\n');
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The same columns as the Markdown table (snake_case headers); unavailable values are empty cells. */
export function summaryCsv(results: ExperimentResult[]): string {
  const metrics = metricNames(results);
  const header = ['experiment_id', 'mode', 'model', 'hyperparameters', 'duration_s', 'success', 'retries', ...metrics, 'gpu_energy_j', 'cpu_energy_j', 'attribution'];
  const n = (v: number | null) => (v === null ? '' : String(v));
  const body = rows(results, metrics).map((r) => [
    r.id,
    r.mode,
    r.model,
    r.hyper,
    n(r.duration),
    r.success === null ? '' : String(r.success),
    n(r.retries),
    ...r.metrics.map(n),
    n(r.gpuJ),
    n(r.cpuJ),
    r.attribution ?? '',
  ]);
  return [header, ...body].map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}
