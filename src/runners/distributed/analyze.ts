/**
 * Analysis of a directory of distributed results (results_*.json, in gpucolo's format or the design
 * notes' scripts' format, see notes-format.ts; the report says which each was): a comparison table (throughput,
 * time per epoch, accuracies, speedup vs DDP), a communication table (pull, push, all-reduce,
 * compute, per step), the runner's overhead from run_<method>.json when present, written as
 * performance_report.txt and performance_report.md, and five charts as SVG + PNG in plots/.
 *
 * Speedup vs DDP is the throughput ratio to the DDP result in the same directory ("n.a." without
 * one). DDP overlaps its all-reduce with backward, so the script reports no comm time for it: the
 * tables say "overlapped" rather than 0. Rows and plots use the notes' method names
 * (METHOD_DISPLAY); a PS result says its layout (colocated / dedicated) with a line on what it
 * means for throughput. Plots: time in ms below 1 s else s, bar labels written out (no SI
 * prefixes), accuracy ticks without trailing zeros, integer step/epoch ticks.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { GpucoloError } from '../../errors.js';
import { readInputText } from '../../input-file.js';
import { fmtNum, fmtRatio, renderSpecs, writeFileAtomic, type ChartFile, type ChartSpec } from '../../report/index.js';
import { RESULT_FORMAT_TEXT, listResultFiles, loadAnyResult, manifestFileName, methodOfFile, type DistMethod, type LoadedResult, type ResultFormat } from './schema.js';
import { METHOD_DISPLAY } from './notes-format.js';
import { makeDirs } from '../../fs-dirs.js';

export type PsTopology = 'colocated' | 'dedicated';

/** What the analysis uses of a result, the same for both formats (null where a format lacks it). */
export interface ResultData {
  method: DistMethod;
  model: string | null;
  backend: string | null;
  device: string | null;
  world_size: number;
  /** the ranks that compute (PS: world size when colocated, world size - 1 when dedicated; others: world size) */
  workers: number;
  batch_size: number;
  global_batch: number;
  steps: number | null;
  /** ps only */
  ps_topology: PsTopology | null;
  epochs: {
    epoch: number;
    val_accuracy?: number | null;
    avg_comm_time?: number | null;
    avg_comm_time_pull?: number | null;
    avg_comm_time_push?: number | null;
    avg_compute_time?: number | null;
  }[];
  summary: {
    avg_train_throughput?: number | null;
    avg_train_time_per_epoch?: number | null;
    best_val_accuracy?: number | null;
    final_train_accuracy?: number | null;
    avg_comm_time?: number | null;
    avg_comm_time_pull?: number | null;
    avg_comm_time_push?: number | null;
  };
  all_losses: (number | null)[];
}

export interface AnalyzedResult {
  /** row key: the method, or the file's stem for non-standard names (results_ps_naive.json -> ps_naive) */
  label: string;
  /** what reports and plots show: the notes' method name ("Parameter Server (PS)"), with [label] for a non-standard file name */
  displayName: string;
  method: DistMethod;
  file: string;
  /** which format the file was in */
  format: ResultFormat;
  /** notes format: the lists written as a literal [...] (read as absent) */
  elided: string[];
  result: ResultData;
  /** from run_<method>.json next to it (standard names only), when present and readable */
  run?: { launcher: string; wallS: number | null; scriptS: number | null; overheadS: number | null };
}

export interface ComparisonRow {
  label: string;
  displayName: string;
  method: DistMethod;
  worldSize: number;
  /** ranks that compute (PS dedicated: world size - 1) */
  workers: number;
  /** ps only */
  psTopology: PsTopology | null;
  /** throughput / workers: samples/s per computing rank */
  perWorkerThroughput: number | null;
  /** samples/s (summary.avg_train_throughput) */
  throughput: number | null;
  /** s */
  timePerEpochS: number | null;
  /** as the script reports it (percent) */
  bestValAccuracy: number | null;
  finalTrainAccuracy: number | null;
  /** throughput / DDP's throughput; null without a DDP result */
  speedupVsDdp: number | null;
}

export interface CommRow {
  label: string;
  displayName: string;
  method: DistMethod;
  /** ms per step; null where the method has no such phase */
  pullMs: number | null;
  pushMs: number | null;
  allreduceMs: number | null;
  /** pull + push + all-reduce; null when nothing was measured (DDP: overlapped) */
  totalMs: number | null;
  /** step time minus comm, ms (max over ranks), when the result has it */
  computeMs: number | null;
  /** true for DDP: the all-reduce overlaps backward and is not timed */
  overlapped: boolean;
}

export interface DistributedAnalysis {
  dir: string;
  results: AnalyzedResult[];
  comparison: ComparisonRow[];
  communication: CommRow[];
  /** the label of the DDP baseline, or null */
  baseline: string | null;
  text: string;
  markdown: string;
  files: { txt: string; md: string };
  plotsDir: string;
  plots: ChartFile[];
}

export interface AnalyzeOptions {
  /** also write PNGs (default true) */
  png?: boolean;
  /** draw the charts (default true) */
  plots?: boolean;
}

export const PLOT_NAMES = ['throughput_comparison', 'training_time_comparison', 'loss_curves', 'accuracy_curves', 'communication_overhead'] as const;

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
const ms = (s: number | null | undefined): number | null => (finite(s) ? s * 1000 : null);
const mean = (xs: (number | null | undefined)[]): number | null => {
  const v = xs.filter(finite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/** The results in a directory, validated; no results or a bad file is a GpucoloError naming it. */
export function loadResultsDir(dir: string): AnalyzedResult[] {
  const abs = path.resolve(dir);
  const files = listResultFiles(abs);
  if (files.length === 0) throw new GpucoloError(`${abs}: no results_*.json to analyze (run gpucolo distributed run/compare --out ${dir} first)`, { code: 'ENORESULTS', path: abs });
  return files.map((file) => {
    const loaded = loadAnyResult(file);
    const name = path.basename(file);
    const std = methodOfFile(name);
    const label = std ?? name.replace(/^results_/, '').replace(/\.json$/, '');
    const displayName = label === loaded.method ? METHOD_DISPLAY[loaded.method] : `${METHOD_DISPLAY[loaded.method]} [${label}]`;
    const out: AnalyzedResult = { label, displayName, method: loaded.method, file, format: loaded.format, elided: loaded.elided, result: resultData(loaded) };
    if (std) {
      const run = readManifest(path.join(abs, manifestFileName(std)));
      if (run) out.run = run;
    }
    return out;
  });
}

/** Both formats as the analysis sees them; the notes' files lack a few summary fields, taken from the epochs. */
export function resultData(l: LoadedResult): ResultData {
  if (l.format === 'gpucolo') {
    const r = l.result;
    const topology: PsTopology | null = r.method === 'ps' ? (r.ps_topology ?? 'colocated') : null;
    const workers = r.method === 'ps' ? (r.num_workers ?? (topology === 'dedicated' ? r.world_size - 1 : r.world_size)) : r.world_size;
    return {
      method: r.method,
      model: r.model,
      backend: r.backend,
      device: r.device,
      world_size: r.world_size,
      workers,
      batch_size: r.batch_size,
      global_batch: r.global_batch,
      steps: r.steps,
      ps_topology: topology,
      epochs: r.epochs,
      summary: r.summary,
      all_losses: r.all_losses,
    };
  }
  const r = l.result;
  const ps = l.method === 'ps';
  // the notes' layout: rank 0 only serves, num_workers = world_size - 1
  const workers = ps ? (r.num_workers ?? r.world_size - 1) : r.world_size;
  const topology: PsTopology | null = ps ? (workers === r.world_size ? 'colocated' : 'dedicated') : null;
  const losses = r.all_losses ?? (r.epochs.some((e) => Array.isArray(e.all_losses)) ? r.epochs.flatMap((e) => e.all_losses ?? []) : []);
  const vals = r.epochs.map((e) => e.val_accuracy).filter(finite);
  const s = r.summary;
  return {
    method: l.method,
    model: null,
    backend: null,
    device: null,
    world_size: r.world_size,
    workers,
    batch_size: r.batch_size,
    global_batch: r.batch_size * workers,
    steps: losses.length ? losses.length : null,
    ps_topology: topology,
    epochs: r.epochs,
    summary: {
      avg_train_throughput: s.avg_train_throughput ?? mean(r.epochs.map((e) => e.train_throughput)),
      avg_train_time_per_epoch: s.avg_train_time_per_epoch ?? mean(r.epochs.map((e) => e.train_time)),
      best_val_accuracy: s.best_val_accuracy ?? (vals.length ? Math.max(...vals) : null),
      final_train_accuracy: s.final_train_accuracy ?? r.epochs[r.epochs.length - 1].train_accuracy ?? null,
      avg_comm_time: s.avg_comm_time ?? mean(r.epochs.map((e) => e.avg_comm_time)),
      avg_comm_time_pull: s.avg_comm_time_pull ?? mean(r.epochs.map((e) => e.avg_comm_time_pull)),
      avg_comm_time_push: s.avg_comm_time_push ?? mean(r.epochs.map((e) => e.avg_comm_time_push)),
    },
    all_losses: losses,
  };
}

function readManifest(file: string): AnalyzedResult['run'] | undefined {
  try {
    const m = JSON.parse(readInputText(file, { kind: 'result' })) as Record<string, unknown>;
    const n = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    if (m.ok !== true || typeof m.launcher !== 'string') return undefined;
    return { launcher: m.launcher, wallS: n(m.wall_s), scriptS: n(m.script_s), overheadS: n(m.overhead_s) };
  } catch {
    return undefined;
  }
}

export function comparisonRows(results: AnalyzedResult[]): { rows: ComparisonRow[]; baseline: string | null } {
  const base = results.find((r) => r.method === 'ddp') ?? null;
  const baseTp = base?.result.summary.avg_train_throughput ?? null;
  const rows = results.map((r) => {
    const s = r.result.summary;
    const tp = s.avg_train_throughput ?? null;
    return {
      label: r.label,
      displayName: r.displayName,
      method: r.method,
      worldSize: r.result.world_size,
      workers: r.result.workers,
      psTopology: r.result.ps_topology,
      perWorkerThroughput: finite(tp) && r.result.workers > 0 ? tp / r.result.workers : null,
      throughput: tp,
      timePerEpochS: s.avg_train_time_per_epoch ?? null,
      bestValAccuracy: s.best_val_accuracy ?? null,
      finalTrainAccuracy: s.final_train_accuracy ?? null,
      speedupVsDdp: finite(tp) && finite(baseTp) && baseTp > 0 ? tp / baseTp : null,
    };
  });
  return { rows, baseline: base?.label ?? null };
}

export function commRows(results: AnalyzedResult[]): CommRow[] {
  return results.map((r) => {
    const s = r.result.summary;
    const e = r.result.epochs;
    // the summary is the mean over epochs; fall back to the epochs when an old file lacks it
    const pull = ms(s.avg_comm_time_pull ?? mean(e.map((x) => x.avg_comm_time_pull)));
    const push = ms(s.avg_comm_time_push ?? mean(e.map((x) => x.avg_comm_time_push)));
    const allreduce = r.method === 'ps' ? null : ms(s.avg_comm_time ?? mean(e.map((x) => x.avg_comm_time)));
    const parts = [pull, push, allreduce].filter(finite);
    return {
      label: r.label,
      displayName: r.displayName,
      method: r.method,
      pullMs: pull,
      pushMs: push,
      allreduceMs: allreduce,
      totalMs: parts.length ? parts.reduce((a, b) => a + b, 0) : null,
      computeMs: ms(mean(e.map((x) => x.avg_compute_time))),
      overlapped: r.method === 'ddp' && parts.length === 0,
    };
  });
}

// ---- text and Markdown ---------------------------------------------------------------------------

const na = (v: number | null, f: (x: number) => string = fmtNum): string => (finite(v) ? f(v) : 'n.a.');
const pct = (v: number | null): string => (finite(v) ? `${v.toFixed(2)}%` : 'n.a.');

const COMPARISON_HEADER = ['method', 'world size', 'computing ranks', 'throughput (samples/s)', 'per computing rank (samples/s)', 'time/epoch (s)', 'best val acc', 'final train acc', 'speedup vs DDP'];
const COMM_HEADER = ['method', 'pull (ms)', 'push (ms)', 'all-reduce (ms)', 'total comm/step (ms)', 'compute/step (ms)'];
const RUN_HEADER = ['method', 'format', 'model', 'backend/device', 'steps', 'global batch', 'launcher', 'wall (s)', 'in-script (s)', 'runner overhead (s)'];

function comparisonCells(rows: ComparisonRow[]): string[][] {
  return rows.map((r) => [r.displayName, String(r.worldSize), r.psTopology ? `${r.workers} (PS ${r.psTopology})` : String(r.workers), na(r.throughput), na(r.perWorkerThroughput), na(r.timePerEpochS), pct(r.bestValAccuracy), pct(r.finalTrainAccuracy), r.speedupVsDdp === null ? 'n.a.' : fmtRatio(r.speedupVsDdp)]);
}

function commCells(rows: CommRow[]): string[][] {
  return rows.map((r) => [
    r.displayName,
    na(r.pullMs),
    na(r.pushMs),
    r.overlapped ? 'overlapped' : na(r.allreduceMs),
    r.overlapped ? 'n.a. (overlapped with backward)' : na(r.totalMs),
    na(r.computeMs),
  ]);
}

function runCells(results: AnalyzedResult[]): string[][] {
  return results.map((r) => [
    r.displayName,
    r.format,
    r.result.model ?? 'n.a.',
    r.result.backend === null && r.result.device === null ? 'n.a.' : `${r.result.backend ?? 'n.a.'}/${r.result.device ?? 'n.a.'}`,
    r.result.steps === null ? 'n.a.' : String(r.result.steps),
    String(r.result.global_batch),
    r.run?.launcher ?? 'n.a.',
    r.run ? na(r.run.wallS) : 'n.a.',
    r.run ? na(r.run.scriptS) : 'n.a.',
    r.run ? na(r.run.overheadS) : 'n.a.',
  ]);
}

function textTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)];
}

function mdTable(header: string[], rows: string[][]): string[] {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  // numbers (and n.a.) right-aligned, words left
  const numeric = (i: number): boolean => rows.length > 0 && rows.every((r) => /^(n\.a\.|[-\d.]+(%|x| s)?)$/.test(r[i] ?? ''));
  return [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (numeric(i) ? ' ---: ' : ' --- ')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)];
}

/** One line per file: which format was read (and which lists were elided as [...]). */
export function readLines(results: AnalyzedResult[]): string[] {
  return results.map((r) => `Read ${path.basename(r.file)} as ${r.displayName}: ${RESULT_FORMAT_TEXT[r.format]}${r.elided.length ? `; ${r.elided.join(', ')} written as [...] (elided), read as absent` : ''}.`);
}

/** The PS layout in throughput terms, when a PS result is in the directory. */
export function topologyLines(results: AnalyzedResult[]): string[] {
  const ps = results.filter((r) => r.result.ps_topology);
  if (!ps.length) return [];
  const out: string[] = [];
  for (const r of ps) {
    const d = r.result;
    if (d.ps_topology === 'dedicated') {
      out.push(
        `${r.displayName}: dedicated PS layout (the notes' ps_train.py): rank 0 only serves, ${d.workers} of ${d.world_size} ranks compute, global batch ${d.global_batch} = ${d.batch_size} x ${d.workers} workers. ` +
          `At the same per-rank batch and step time its throughput is at most ${d.workers}/${d.world_size} = ${(d.workers / d.world_size).toFixed(2)} of a method where all ${d.world_size} ranks compute, before any communication cost; compare "per computing rank" to see the communication cost alone.`,
      );
    } else {
      out.push(`${r.displayName}: colocated PS layout (gpucolo's default): rank 0 serves and computes, all ${d.world_size} ranks compute, global batch ${d.global_batch} as DDP's: throughput differences are communication (and rank 0's extra update work).`);
    }
  }
  return out;
}

function notes(results: AnalyzedResult[], baseline: string | null): string[] {
  const out: string[] = [...readLines(results), ...topologyLines(results)];
  const baseName = results.find((r) => r.label === baseline)?.displayName ?? baseline;
  out.push(baseline ? `Speedup vs DDP = throughput / throughput of ${baseName}.` : 'Speedup vs DDP: n.a. (no DDP result in this directory).');
  out.push('Comm times are per step, max over ranks; with gloo they include waiting for the slower rank. DDP overlaps its all-reduce with backward, so none is measured for it.');
  const worlds = new Set(results.map((r) => r.result.world_size));
  const batches = new Set(results.map((r) => r.result.global_batch));
  const dedicated = results.some((r) => r.result.ps_topology === 'dedicated');
  if (worlds.size > 1 || batches.size > 1) {
    out.push(`Warning: the results differ in world size (${[...worlds].join(', ')}) or global batch (${[...batches].join(', ')}): they are not directly comparable${dedicated ? ' (a dedicated PS takes its global batch from its workers only; see "per computing rank")' : ''}.`);
  }
  if (results.some((r) => r.format === 'notes')) out.push("Files in the design notes' format: their times are as their scripts measured them (the notes' units: s, images/s, %).");
  const models = new Set(results.map((r) => r.result.model).filter((m) => m !== null));
  if (models.size > 1) out.push(`Warning: different models (${[...models].join(', ')}).`);
  return out;
}

export function reportText(results: AnalyzedResult[], comparison: ComparisonRow[], comm: CommRow[], baseline: string | null, dir: string): string {
  const lines = [
    `Distributed training performance report: ${dir}`,
    '',
    'Comparison',
    ...textTable(COMPARISON_HEADER, comparisonCells(comparison)),
    '',
    'Communication per step',
    ...textTable(COMM_HEADER, commCells(comm)),
    '',
    'Runs',
    ...textTable(RUN_HEADER, runCells(results)),
    '',
    ...notes(results, baseline),
  ];
  return `${lines.join('\n')}\n`;
}

export function reportMarkdown(results: AnalyzedResult[], comparison: ComparisonRow[], comm: CommRow[], baseline: string | null, plots: ChartFile[], dir: string): string {
  const lines = [
    '# Distributed training performance report',
    '',
    `Results: \`${dir}\` (${results.map((r) => path.basename(r.file)).join(', ')})`,
    '',
    '## Comparison',
    '',
    ...mdTable(COMPARISON_HEADER, comparisonCells(comparison)),
    '',
    '## Communication per step',
    '',
    ...mdTable(COMM_HEADER, commCells(comm)),
    '',
    '## Runs',
    '',
    ...mdTable(RUN_HEADER, runCells(results)),
    '',
    ...notes(results, baseline).map((n) => `- ${n}`),
  ];
  const drawn = plots.filter((p) => p.svg);
  if (plots.length) {
    lines.push('', '## Plots', '');
    for (const p of drawn) lines.push(`![${p.name}](${path.relative(dir, p.png ?? p.svg)})`, '');
    for (const p of plots.filter((x) => !x.svg)) lines.push(`- ${p.name}: not drawn (${p.error ?? 'unknown error'})`);
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

// ---- charts --------------------------------------------------------------------------------------

const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const CONFIG: TopLevelSpec['config'] = { font: 'Helvetica Neue, Helvetica, Arial, DejaVu Sans, Liberation Sans, Noto Sans, sans-serif' };

/**
 * Seconds in the unit that reads best for the largest value: ms below 1 s, else s. Axis titles
 * carry the unit, and bar labels are written out ("459 ms"), never an SI prefix ("459m" reads
 * as minutes).
 */
export function timeUnit(maxSeconds: number): { unit: 'ms' | 's'; factor: number } {
  return maxSeconds < 1 ? { unit: 'ms', factor: 1000 } : { unit: 's', factor: 1 };
}

/** Bar label text: plain digits (3 significant, whole numbers from 100), the unit appended. */
export function barLabel(value: number, unit: string): string {
  return `${fmtNum(value)}${unit ? ` ${unit}` : ''}`;
}

/** Axis tick formats: integers for steps and epochs, no trailing zeros for accuracy ("100", not "100.000000"). */
export const AXIS_FORMATS = { step: 'd', accuracy: '~f' } as const;

function barSpec(name: string, titleText: string, rows: { label: string; value: number; text: string }[], yTitle: string, order: string[]): ChartSpec {
  if (!rows.length) return { name, empty: `no result has ${yTitle}` };
  return {
    name,
    spec: {
      $schema: VL_SCHEMA,
      config: CONFIG,
      title: titleText,
      width: Math.max(240, 160 * rows.length),
      height: 300,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'label', type: 'nominal', sort: order, title: 'method', axis: { labelAngle: 0, labelLimit: 200 } },
            y: { field: 'value', type: 'quantitative', title: yTitle },
            color: { field: 'label', type: 'nominal', sort: order, legend: null },
          },
        },
        {
          mark: { type: 'text', dy: -6 },
          encoding: {
            x: { field: 'label', type: 'nominal', sort: order },
            y: { field: 'value', type: 'quantitative' },
            text: { field: 'text', type: 'nominal' },
          },
        },
      ],
    },
  };
}

/** The charts of an analysis: throughput and time-per-epoch bars, loss and accuracy curves, communication time bars. */
export function plotSpecs(results: AnalyzedResult[], comparison: ComparisonRow[], comm: CommRow[]): ChartSpec[] {
  // the notes' method names on every axis and legend
  const order = results.map((r) => r.displayName);
  const tp = comparison.filter((r) => finite(r.throughput)).map((r) => ({ label: r.displayName, value: r.throughput!, text: barLabel(r.throughput!, 'samples/s') }));
  const tmRows = comparison.filter((r) => finite(r.timePerEpochS));
  const tu = timeUnit(Math.max(0, ...tmRows.map((r) => r.timePerEpochS!)));
  const tm = tmRows.map((r) => ({ label: r.displayName, value: r.timePerEpochS! * tu.factor, text: barLabel(r.timePerEpochS! * tu.factor, tu.unit) }));
  return [
    barSpec('throughput_comparison', 'Training throughput', tp, 'throughput (samples/s)', order),
    barSpec('training_time_comparison', 'Training time per epoch', tm, `time per epoch (${tu.unit})`, order),
    lossCurvesSpec(results, order),
    accuracyCurvesSpec(results, order),
    commSpec(comm, order),
  ];
}

/** Exactly equal curves hide each other: a subtitle that says so instead of letting a method look missing. */
function sameCurvesNote(results: AnalyzedResult[], order: string[], key: (r: AnalyzedResult) => unknown[]): string | undefined {
  if (results.length < 2) return undefined;
  const first = JSON.stringify(key(results[0]));
  return results.every((r) => JSON.stringify(key(r)) === first) ? `identical for ${order.join(', ')}: the lines lie on top of each other` : undefined;
}

/** The training loss per step of each method (an empty chart names the files whose losses were elided as [...]). */
function lossCurvesSpec(results: AnalyzedResult[], order: string[]): ChartSpec {
  const losses: { label: string; step: number; loss: number }[] = [];
  for (const r of results) r.result.all_losses.forEach((l, i) => finite(l) && losses.push({ label: r.displayName, step: i + 1, loss: l }));
  const lossSame = sameCurvesNote(results, order, (r) => r.result.all_losses);
  const spec = curvesSpec(order, 'loss_curves', 'Training loss per step', losses, 'step', 'step', 'loss', 'training loss (global mean)', false, lossSame);
  // the notes' examples elide the losses as [...]: say so rather than "no losses"
  const elided = results.filter((r) => r.elided.some((e) => e.endsWith('all_losses'))).map((r) => path.basename(r.file));
  return spec.empty && elided.length ? { ...spec, empty: `${spec.empty} (all_losses written as [...] in ${elided.join(', ')})` } : spec;
}

/** The validation accuracy per epoch of each method. */
function accuracyCurvesSpec(results: AnalyzedResult[], order: string[]): ChartSpec {
  const acc: { label: string; epoch: number; accuracy: number }[] = [];
  for (const r of results) for (const e of r.result.epochs) if (finite(e.val_accuracy)) acc.push({ label: r.displayName, epoch: e.epoch, accuracy: e.val_accuracy });
  const accSame = sameCurvesNote(results, order, (r) => r.result.epochs.map((e) => e.val_accuracy ?? null));
  return curvesSpec(order, 'accuracy_curves', 'Validation accuracy per epoch', acc, 'epoch', 'epoch', 'accuracy', 'validation accuracy (%)', true, accSame);
}

/** A line chart with one curve per method (or an empty chart: no result has yTitle). */
function curvesSpec(order: string[], name: string, titleText: string, data: Record<string, unknown>[], x: string, xTitle: string, y: string, yTitle: string, points: boolean, subtitle?: string): ChartSpec {
  return data.length
      ? {
          name,
          spec: {
            $schema: VL_SCHEMA,
            config: CONFIG,
            title: subtitle ? { text: titleText, subtitle } : titleText,
            width: 520,
            height: 300,
            data: { values: data },
            mark: { type: 'line', point: points },
            encoding: {
              // steps and epochs are whole numbers: integer ticks only
              x: { field: x, type: 'quantitative', title: xTitle, axis: { tickMinStep: 1, format: AXIS_FORMATS.step } },
              y: { field: y, type: 'quantitative', title: yTitle, scale: { zero: false }, ...(y === 'accuracy' ? { axis: { format: AXIS_FORMATS.accuracy } } : {}) },
              color: { field: 'label', type: 'nominal', sort: order, title: 'method', legend: { labelLimit: 260 } },
              strokeDash: { field: 'label', type: 'nominal', sort: order, legend: null },
            },
          },
        }
      : { name, empty: `no result has ${yTitle}` };
}

/** Communication time per step of each method, stacked by phase (pull, push, all-reduce). */
function commSpec(comm: CommRow[], order: string[]): ChartSpec {
  const commData: { label: string; part: string; ms: number }[] = [];
  for (const c of comm) {
    if (finite(c.pullMs)) commData.push({ label: c.displayName, part: 'pull', ms: c.pullMs });
    if (finite(c.pushMs)) commData.push({ label: c.displayName, part: 'push', ms: c.pushMs });
    if (finite(c.allreduceMs)) commData.push({ label: c.displayName, part: 'all-reduce', ms: c.allreduceMs });
  }
  const overlapped = comm.filter((c) => c.overlapped).map((c) => c.displayName);
  const parts = ['pull', 'push', 'all-reduce'];
  return commData.length
      ? {
          name: 'communication_overhead',
          spec: {
            $schema: VL_SCHEMA,
            config: CONFIG,
            title: overlapped.length ? { text: 'Communication time per step', subtitle: [`${overlapped.join(', ')}: all-reduce overlapped with backward, not measured`] } : 'Communication time per step',
            width: Math.max(240, 160 * order.length),
            height: 300,
            data: { values: commData },
            mark: { type: 'bar' },
            encoding: {
              x: { field: 'label', type: 'nominal', sort: order, title: 'method', scale: { domain: order }, axis: { labelAngle: 0, labelLimit: 200 } },
              y: { field: 'ms', type: 'quantitative', title: 'ms per step', stack: 'zero' },
              color: { field: 'part', type: 'nominal', sort: parts, scale: { domain: parts }, title: 'phase' },
              order: { field: 'part', type: 'nominal', sort: 'ascending' },
            },
          },
        }
      : { name: 'communication_overhead', empty: 'no result has comm times (DDP alone: overlapped with backward)' };
}

/** Renders into <dir>/plots/<name>.svg|.png (renderSpecs writes to <x>/charts; moved from a temp dir). */
async function renderPlots(specs: ChartSpec[], dir: string, png: boolean): Promise<{ plotsDir: string; plots: ChartFile[] }> {
  const plotsDir = path.join(dir, 'plots');
  makeDirs(plotsDir);
  // a plot not drawn this time (or a PNG after --no-png) must not survive from an earlier analysis
  for (const s of specs) for (const ext of ['svg', 'png']) fs.rmSync(path.join(plotsDir, `${s.name}.${ext}`), { force: true });
  const tmp = fs.mkdtempSync(path.join(dir, '.plots-'));
  try {
    const files = await renderSpecs(specs, tmp, { png });
    for (const f of files) {
      for (const key of ['svg', 'png'] as const) {
        const src = f[key];
        if (!src) continue;
        const dst = path.join(plotsDir, path.basename(src));
        fs.renameSync(src, dst);
        f[key] = dst;
      }
    }
    return { plotsDir, plots: files };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Reads the results in `dir`, writes performance_report.txt / .md and plots/, returns it all.
 * Throws GpucoloError (one line naming the file) for a missing directory, no results, a bad file.
 */
export async function analyzeDistributed(dir: string, opts: AnalyzeOptions = {}): Promise<DistributedAnalysis> {
  const abs = path.resolve(dir);
  const results = loadResultsDir(abs);
  const { rows, baseline } = comparisonRows(results);
  const comm = commRows(results);
  const { plotsDir, plots } = opts.plots === false ? { plotsDir: path.join(abs, 'plots'), plots: [] } : await renderPlots(plotSpecs(results, rows, comm), abs, opts.png !== false);
  const text = reportText(results, rows, comm, baseline, abs);
  const markdown = reportMarkdown(results, rows, comm, baseline, plots, abs);
  const files = { txt: path.join(abs, 'performance_report.txt'), md: path.join(abs, 'performance_report.md') };
  writeFileAtomic(files.txt, text);
  writeFileAtomic(files.md, markdown);
  return { dir: abs, results, comparison: rows, communication: comm, baseline, text, markdown, files, plotsDir, plots };
}
