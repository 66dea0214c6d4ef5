/**
 * The evaluation report of a staged run: per category statistics of each numeric output field of
 * the last stage, counts and failures, per-stage per-item timings, swaps with their durations.
 * Written as evaluation_report_<YYYYMMDDTHHMMSSZ>.json and .md (atomic) in the output directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { countSwaps, type PlanStep } from './planner.js';
import { writeFileAtomic, writeJsonAtomic } from '../../report/index.js';
import type { ItemCategory } from './items.js';
import type { Plan } from './planner.js';
import type { Pipeline } from './schema.js';

export const STAGED_REPORT_SCHEMA = 'gpucolo.staged-report/1';

export interface Summary {
  n: number;
  mean: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
}

export interface SwapRecord {
  kind: 'load' | 'unload';
  stage: string;
  ms: number;
  memoryMB?: number;
}

/** Mean load and unload time per stage (ms), and where they were measured. */
export interface SwapTimes {
  source: string;
  stages: Record<string, { loadMs?: number; unloadMs?: number }>;
}

/** Mean load/unload ms per stage of a list of swaps. */
export function swapTimesOf(list: SwapRecord[], source: string): SwapTimes | null {
  const acc: Record<string, { load: number[]; unload: number[] }> = {};
  for (const s of list) {
    if (!Number.isFinite(s.ms)) continue;
    (acc[s.stage] ??= { load: [], unload: [] })[s.kind].push(s.ms);
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
  const stages: SwapTimes['stages'] = {};
  for (const [k, v] of Object.entries(acc)) {
    const loadMs = mean(v.load);
    const unloadMs = mean(v.unload);
    stages[k] = { ...(loadMs !== undefined ? { loadMs } : {}), ...(unloadMs !== undefined ? { unloadMs } : {}) };
  }
  return Object.keys(stages).length ? { source, stages } : null;
}

/** Swap times measured by the latest earlier report in `dir` (evaluation_report_*.json), or null. */
export function latestSwapTimes(dir: string): SwapTimes | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => /^evaluation_report_\d{8}T\d{6}Z\.json$/.test(f)).sort();
  } catch {
    return null;
  }
  for (const name of names.reverse()) {
    try {
      const rep = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Partial<StagedReport>;
      const t = Array.isArray(rep.swaps?.list) ? swapTimesOf(rep.swaps.list, `measured by an earlier run (${name})`) : null;
      if (t) return t;
    } catch {
      // not a report we can read: try the one before
    }
  }
  return null;
}

/** The time a plan spends on loads and unloads with these times; null when a stage it swaps has no time. */
export function swapCost(steps: PlanStep[], t: SwapTimes | null): number | null {
  if (!t) return null;
  let ms = 0;
  for (const s of steps) {
    if (s.kind === 'process') continue;
    const v = s.kind === 'load' ? t.stages[s.stage]?.loadMs : t.stages[s.stage]?.unloadMs;
    if (v === undefined) return null;
    ms += v;
  }
  return ms;
}

export interface SwapSavings {
  /** swaps: model switches (loads after a model was unloaded), the notes' count */
  perItem: { swaps: number; loads: number; unloads: number };
  staged: { swaps: number; loads: number; unloads: number };
  /** 100 * (1 - staged/perItem swaps); null when per-item does not swap */
  reductionPct: number | null;
  /** swap time of each order and the difference, from times measured before the run (null: none known) */
  predicted: { source: string; perItemMs: number | null; stagedMs: number | null; savedMs: number | null } | null;
  /** the same with the times this run measured */
  measured: { source: string; perItemMs: number | null; stagedMs: number | null; savedMs: number | null } | null;
}

/** Both orders' swaps and the time they cost, as the report shows them. */
export function swapSavings(perItem: PlanStep[], staged: PlanStep[], before: SwapTimes | null, after: SwapTimes | null): SwapSavings {
  const counts = (steps: PlanStep[]) => ({ swaps: countSwaps(steps), loads: steps.filter((s) => s.kind === 'load').length, unloads: steps.filter((s) => s.kind === 'unload').length });
  const p = counts(perItem);
  const st = counts(staged);
  const cost = (t: SwapTimes | null) => {
    if (!t) return null;
    const a = swapCost(perItem, t);
    const b = swapCost(staged, t);
    return { source: t.source, perItemMs: a, stagedMs: b, savedMs: a !== null && b !== null ? a - b : null };
  };
  return {
    perItem: p,
    staged: st,
    reductionPct: p.swaps > 0 ? Math.round(1000 * (1 - st.swaps / p.swaps)) / 10 : null,
    predicted: cost(before),
    measured: cost(after),
  };
}

/** "1.2 s", "4.5 h": a duration for people. */
export function humanMs(ms: number): string {
  const a = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (a < 1000) return `${sign}${a.toFixed(0)} ms`;
  if (a < 120_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  if (a < 7_200_000) return `${sign}${(a / 60_000).toFixed(1)} min`;
  return `${sign}${(a / 3_600_000).toFixed(1)} h`;
}

/** The notes' terms: "swaps: 540 -> 9 (98.3% fewer); time on swaps: predicted 4.5 h saved, measured 4.4 h saved". */
export function swapSavingsLine(s: SwapSavings): string {
  const pct = s.reductionPct === null ? '' : ` (${s.reductionPct.toFixed(1)}% fewer)`;
  const t = (x: SwapSavings['predicted'], what: string) =>
    x === null ? `${what}: no load/unload times known` : x.savedMs === null ? `${what}: not every model's load/unload time is known` : `${what} ${humanMs(x.savedMs)} saved (${humanMs(x.perItemMs!)} -> ${humanMs(x.stagedMs!)})`;
  return `swaps per-item -> staged: ${s.perItem.swaps} -> ${s.staged.swaps}${pct}; time on swaps: ${t(s.predicted, 'predicted')}; ${t(s.measured, 'measured')}`;
}

export interface StagedReport {
  schema: string;
  pipeline: string;
  file: string;
  outputDir: string;
  journal: string;
  status: 'done' | 'stopped' | 'interrupted';
  error?: string;
  startedAt: string;
  finishedAt: string;
  plan: { mode: string; loads: number; unloads: number; naiveLoads: number; plans: number } | null;
  /** mbMoved: the memory the models reported, summed over loads and unloads (the data a swap moves); null when none reported */
  swaps: { loads: number; unloads: number; totalMs: number; mbMoved: number | null; list: SwapRecord[] };
  stages: { name: string; processedThisRun: number; itemMs: Summary }[];
  categories: {
    name: string;
    items: number;
    completed: number;
    failed: number;
    pending: number;
    fields: Record<string, Summary>;
  }[];
  failures: { category: string; item: string; stage: string; error: string }[];
  skippedForFailedInputs: Record<string, number>;
  resumedRecords: number;
  spilled: number;
  reloaded: number;
  /** outputs released from memory once no stage left to run read them */
  freed: number;
  warnings: string[];
  files?: { json: string; md: string };
  /** added in this version (optional: older reports lack them) */
  strategy?: { requested: string; used: string; reason: string };
  swapSavings?: SwapSavings;
}

export function summarize(xs: number[]): Summary {
  if (!xs.length) return { n: 0, mean: null, median: null, min: null, max: null };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return {
    n: s.length,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2,
    min: s[0],
    max: s[s.length - 1],
  };
}

export interface BuildReportInput {
  pipeline: Pipeline;
  file: string;
  outputDir: string;
  journalFile: string;
  cats: ItemCategory[];
  status: StagedReport['status'];
  error?: string;
  startedAt: Date;
  finishedAt: Date;
  plan?: Plan;
  plans: number;
  swaps: SwapRecord[];
  itemMs: Map<string, number[]>;
  failuresThisRun: StagedReport['failures'];
  skippedForFailedInputs: Record<string, number>;
  warnings: string[];
  resumedRecords: number;
  spilled: number;
  reloaded: number;
  freed: number;
  outputOf: (category: string, item: string, stage: string) => unknown;
  strategy?: StagedReport['strategy'];
  swapSavings?: SwapSavings;
}

const isErr = (o: unknown): o is { error: string } => !!o && typeof o === 'object' && typeof (o as { error?: unknown }).error === 'string' && Object.keys(o).length === 1;

export function buildReport(r: BuildReportInput): StagedReport {
  const stages = r.pipeline.stages.map((s) => s.name);
  const last = stages[stages.length - 1];
  const failures: StagedReport['failures'] = [];
  const categories = r.cats.map((c) => {
    let completed = 0;
    let failed = 0;
    const values = new Map<string, number[]>();
    for (const it of c.items) {
      let itemFailed = false;
      for (const s of stages) {
        const o = r.outputOf(c.name, it.id, s);
        if (isErr(o)) {
          itemFailed = true;
          failures.push({ category: c.name, item: it.id, stage: s, error: o.error });
          break;
        }
      }
      if (itemFailed) {
        failed++;
        continue;
      }
      const o = r.outputOf(c.name, it.id, last);
      if (o === undefined) continue;
      completed++;
      if (o && typeof o === 'object' && !Array.isArray(o)) {
        for (const [f, v] of Object.entries(o as Record<string, unknown>)) {
          if (typeof v === 'number' && Number.isFinite(v)) {
            if (!values.has(f)) values.set(f, []);
            values.get(f)!.push(v);
          }
        }
      } else if (typeof o === 'number') {
        if (!values.has('value')) values.set('value', []);
        values.get('value')!.push(o);
      }
    }
    const fields: Record<string, Summary> = {};
    for (const [f, xs] of values) fields[f] = summarize(xs);
    return { name: c.name, items: c.items.length, completed, failed, pending: c.items.length - completed - failed, fields };
  });
  const loads = r.swaps.filter((s) => s.kind === 'load').length;
  return {
    schema: STAGED_REPORT_SCHEMA,
    pipeline: r.pipeline.name,
    file: r.file,
    outputDir: r.outputDir,
    journal: r.journalFile,
    status: r.status,
    ...(r.error !== undefined ? { error: r.error } : {}),
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
    plan: r.plan ? { mode: r.plan.mode, loads: r.plan.loads, unloads: r.plan.unloads, naiveLoads: r.plan.naiveLoads, plans: r.plans } : null,
    swaps: {
      loads,
      unloads: r.swaps.length - loads,
      totalMs: r.swaps.reduce((a, s) => a + s.ms, 0),
      mbMoved: r.swaps.some((s) => s.memoryMB !== undefined) ? Math.round(r.swaps.reduce((a, s) => a + (s.memoryMB ?? 0), 0) * 10) / 10 : null,
      list: r.swaps,
    },
    stages: stages.map((s) => ({ name: s, processedThisRun: r.itemMs.get(s)?.length ?? 0, itemMs: summarize(r.itemMs.get(s) ?? []) })),
    categories,
    failures,
    skippedForFailedInputs: r.skippedForFailedInputs,
    resumedRecords: r.resumedRecords,
    spilled: r.spilled,
    reloaded: r.reloaded,
    freed: r.freed,
    warnings: r.warnings,
    ...(r.strategy ? { strategy: r.strategy } : {}),
    ...(r.swapSavings ? { swapSavings: r.swapSavings } : {}),
  };
}

const f3 = (x: number | null): string => (x === null ? '-' : Number.isInteger(x) ? String(x) : x.toFixed(3));

export function reportMarkdown(rep: StagedReport): string {
  const L: string[] = [];
  L.push(`# Staged run: ${rep.pipeline}`, '');
  L.push(`- status: **${rep.status}**${rep.error ? ` (${rep.error})` : ''}`);
  L.push(`- pipeline file: \`${rep.file}\``);
  L.push(`- started ${rep.startedAt}, finished ${rep.finishedAt}`);
  if (rep.plan) L.push(`- plan: ${rep.plan.mode}, ${rep.plan.loads} loads planned (per-item order: ${rep.plan.naiveLoads})${rep.plan.plans > 1 ? `, re-planned ${rep.plan.plans - 1}x after measuring memory` : ''}`);
  L.push(`- swaps done: ${rep.swaps.loads} loads, ${rep.swaps.unloads} unloads, ${f3(rep.swaps.totalMs)} ms total${rep.swaps.mbMoved !== null ? `, ${f3(rep.swaps.mbMoved)} MB moved (as the models report their memory)` : ''}`);
  if (rep.strategy) L.push(`- strategy: ${rep.strategy.used} (${rep.strategy.requested === rep.strategy.used ? rep.strategy.reason : `auto: ${rep.strategy.reason}`})`);
  if (rep.swapSavings) L.push(`- ${swapSavingsLine(rep.swapSavings)}`);
  L.push(`- resumed records: ${rep.resumedRecords}; outputs spilled to disk: ${rep.spilled}, released from memory after their last reader: ${rep.freed}`, '');
  L.push('## Categories', '');
  const fields = [...new Set(rep.categories.flatMap((c) => Object.keys(c.fields)))];
  L.push(`| category | items | completed | failed | pending | ${fields.map((f) => `${f} mean | ${f} median | ${f} min | ${f} max`).join(' | ')} |`.replace(/ \|  \|$/, ' |'));
  L.push(`|---|---:|---:|---:|---:|${fields.map(() => '---:|---:|---:|---:|').join('')}`);
  for (const c of rep.categories) {
    const cells = fields.flatMap((f) => {
      const s = c.fields[f];
      return s ? [f3(s.mean), f3(s.median), f3(s.min), f3(s.max)] : ['-', '-', '-', '-'];
    });
    L.push(`| ${c.name} | ${c.items} | ${c.completed} | ${c.failed} | ${c.pending} |${cells.length ? ` ${cells.join(' | ')} |` : ''}`);
  }
  L.push('', '## Stages (this run)', '', '| stage | items | mean ms | median ms | min ms | max ms |', '|---|---:|---:|---:|---:|---:|');
  for (const s of rep.stages) L.push(`| ${s.name} | ${s.processedThisRun} | ${f3(s.itemMs.mean)} | ${f3(s.itemMs.median)} | ${f3(s.itemMs.min)} | ${f3(s.itemMs.max)} |`);
  L.push('', '## Swaps', '', '| # | kind | stage | ms | memory MB |', '|---:|---|---|---:|---:|');
  rep.swaps.list.forEach((s, i) => L.push(`| ${i + 1} | ${s.kind} | ${s.stage} | ${f3(s.ms)} | ${s.memoryMB === undefined ? '' : f3(s.memoryMB)} |`));
  if (rep.failures.length) {
    L.push('', '## Failures', '');
    for (const f of rep.failures) L.push(`- ${f.category} / ${f.item} at ${f.stage}: ${f.error}`);
  }
  if (rep.warnings.length) {
    L.push('', '## Warnings', '');
    for (const w of rep.warnings) L.push(`- ${w}`);
  }
  return `${L.join('\n')}\n`;
}

export function reportStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Writes evaluation_report_<stamp>.json and .md into `dir`; sets rep.files. */
export function writeReport(rep: StagedReport, dir: string): { json: string; md: string } {
  const stamp = reportStamp(new Date(rep.finishedAt));
  const json = path.join(dir, `evaluation_report_${stamp}.json`);
  const md = path.join(dir, `evaluation_report_${stamp}.md`);
  rep.files = { json, md };
  writeJsonAtomic(json, rep);
  writeFileAtomic(md, reportMarkdown(rep));
  return rep.files;
}
