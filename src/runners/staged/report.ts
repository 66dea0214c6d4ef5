/**
 * The evaluation report of a staged run: per category statistics of each numeric output field of
 * the last stage, counts and failures, per-stage per-item timings, swaps with their durations.
 * Written as evaluation_report_<YYYYMMDDTHHMMSSZ>.json and .md (atomic) in the output directory.
 */
import path from 'node:path';
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
