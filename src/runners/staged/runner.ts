/**
 * Runs a staged pipeline: items grouped by category pass through stages, each stage a model in
 * its own host process; the plan (planPipeline) decides when models are loaded and unloaded so
 * that swaps are few. Every finished (category, item, stage) is journaled, so a run that stopped
 * resumes without recomputing anything. Outputs stay in memory up to budgets.cpu_memory_mb (JSON
 * size), beyond that they spill to <output_dir>/intermediate/<stage>/<category>/<id>.json and the
 * journal holds {file} instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, oneLine } from '../../errors.js';
import { supervisorWithRegistry } from '../supervisor/index.js';
import { loadItems, type ItemCategory } from './items.js';
import { ModelHost, defaultHostScript, defaultStagedPython } from './host.js';
import { openJournal, key, type Journal } from './journal.js';
import { planPipeline, type Plan, type PlanStep } from './planner.js';
import { loadPipeline, stageInputs, type Pipeline } from './schema.js';
import { buildReport, writeReport, type StagedReport, type SwapRecord } from './report.js';

export type StagedEvent =
  | { type: 'warning'; message: string }
  | { type: 'plan'; plan: Plan; replanned: boolean }
  | { type: 'load'; stage: string; ms: number; memoryMB: number }
  | { type: 'unload'; stage: string; ms: number }
  | { type: 'item'; category: string; stage: string; item: string; ok: boolean; ms?: number; error?: string }
  | { type: 'stage-start'; category: string; stage: string; todo: number }
  | { type: 'stage-end'; category: string; stage: string; processed: number; failed: number; skipped: number };

export interface RunStagedOptions {
  /** continue from the journal (default true); false moves an existing journal and intermediates away */
  resume?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: StagedEvent) => void;
  /** per host call timeout, ms (default 600000) */
  callTimeoutMs?: number;
  /** python for the default host (default: pipeline.python, $GPUCOLO_PYTHON, python3) */
  python?: string;
  /** write the report files (default true) */
  writeReport?: boolean;
}

export interface RemainingWork {
  categories: { name: string; items: number; remaining: Record<string, number> }[];
}

/** The journal value of an item that failed. */
export const isErrorOutput = (o: unknown): o is { error: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { error?: unknown }).error === 'string';
/** A spilled output: {file} relative to output_dir. */
export const isFileRef = (o: unknown): o is { file: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { file?: unknown }).file === 'string';

export function outputDirOf(pipeline: Pipeline, dir: string): string {
  return path.resolve(dir, pipeline.budgets.output_dir);
}

/** Items not yet journaled per (category, stage); failures count as done. */
export function remainingWork(pipeline: Pipeline, cats: ItemCategory[], done: Map<string, unknown>): RemainingWork {
  return {
    categories: cats.map((c) => {
      const remaining: Record<string, number> = {};
      for (const s of pipeline.stages) remaining[s.name] = c.items.filter((it) => !done.has(key(c.name, it.id, s.name))).length;
      return { name: c.name, items: c.items.length, remaining };
    }),
  };
}

/** The plan for what is left (reads the journal without changing it when it exists). */
export function planStaged(file: string): { plan: Plan; pipeline: Pipeline; remaining: RemainingWork; warnings: string[] } {
  const { pipeline, dir } = loadPipeline(file);
  const cats = loadItems(pipeline.items, dir);
  const jfile = path.join(outputDirOf(pipeline, dir), 'journal.jsonl');
  let done = new Map<string, unknown>();
  const warnings: string[] = [];
  if (fs.existsSync(jfile)) {
    // openJournal may truncate a broken tail: read a copy
    const tmp = path.join(path.dirname(jfile), `.plan-${process.pid}-${Date.now()}.jsonl`);
    fs.copyFileSync(jfile, tmp);
    try {
      const o = openJournal(tmp);
      o.journal.close();
      done = o.done;
      warnings.push(...o.warnings.map((w) => w.split(tmp).join(jfile)));
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const remaining = remainingWork(pipeline, cats, done);
  const plan = planPipeline({
    stages: pipeline.stages.map((s, i) => ({ name: s.name, memoryMB: s.memory_mb ?? 0, inputs: stageInputs(pipeline, i) })),
    categories: remaining.categories,
    gpuMemoryMB: pipeline.budgets.gpu_memory_mb,
  });
  return { plan, pipeline, remaining, warnings };
}

class Interrupted extends Error {}

export async function runStaged(file: string, opts: RunStagedOptions = {}): Promise<StagedReport> {
  const startedAt = new Date();
  const emit = (e: StagedEvent): void => opts.onEvent?.(e);
  const { pipeline, dir, file: absFile } = loadPipeline(file);
  const cats = loadItems(pipeline.items, dir);
  const outDir = outputDirOf(pipeline, dir);
  fs.mkdirSync(outDir, { recursive: true });
  const jfile = path.join(outDir, 'journal.jsonl');
  const interDir = path.join(outDir, 'intermediate');
  if (opts.resume === false) {
    const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    if (fs.existsSync(jfile)) fs.renameSync(jfile, path.join(outDir, `journal.${stamp}.jsonl`));
    fs.rmSync(interDir, { recursive: true, force: true });
  }
  const opened = openJournal(jfile);
  const journal: Journal = opened.journal;
  const warnings = [...opened.warnings];
  for (const w of opened.warnings) emit({ type: 'warning', message: w });
  const resumedRecords = opened.done.size;
  // everything recorded: journal + this run (value = journal output)
  const done = new Map<string, unknown>();
  for (const [k, v] of opened.done) done.set(k, v.output);

  const stageIdx = new Map(pipeline.stages.map((s, i) => [s.name, i]));
  const memMB = new Map<string, number>(pipeline.stages.map((s) => [s.name, s.memory_mb ?? 0]));
  const measured = new Set<string>(pipeline.stages.filter((s) => s.memory_mb !== undefined).map((s) => s.name));
  const catByName = new Map(cats.map((c) => [c.name, c]));

  // in-memory outputs (this run), with their JSON size
  const mem = new Map<string, unknown>();
  let memBytes = 0;
  const cpuBudget = pipeline.budgets.cpu_memory_mb * 1024 * 1024;
  let spilled = 0;
  let reloaded = 0;

  const swaps: SwapRecord[] = [];
  const itemMs = new Map<string, number[]>(pipeline.stages.map((s) => [s.name, []]));
  const failures: { category: string; item: string; stage: string; error: string }[] = [];
  const skippedDeps = new Map<string, number>(); // category -> count of (item, stage) skipped for a failed input
  let status: StagedReport['status'] = 'done';
  let error: string | undefined;
  let plansMade = 0;
  let firstPlan: Plan | undefined;

  const { supervisor, dispose } = supervisorWithRegistry({ runId: `staged-${process.pid}-${startedAt.getTime()}`, graceMs: 3000 });
  const hosts = new Map<string, ModelHost>();
  const resident = new Set<string>();
  const python = opts.python ?? pipeline.python ?? defaultStagedPython();

  const aborted = (): boolean => opts.signal?.aborted === true;
  const onAbort = (): void => {
    for (const h of hosts.values()) void h.kill();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const spillPath = (stage: string, cat: string, id: string): string => path.join(interDir, stage, encodeURIComponent(cat), `${encodeURIComponent(id)}.json`);
  const writeSpill = (stage: string, cat: string, id: string, output: unknown): string => {
    const f = spillPath(stage, cat, id);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `${JSON.stringify(output)}\n`);
    return path.relative(outDir, f);
  };

  /** the output of (cat, id, stage), from memory, the journal, or a spilled file */
  const outputOf = (cat: string, id: string, stage: string): unknown => {
    const k = key(cat, id, stage);
    if (mem.has(k)) return mem.get(k);
    const o = done.get(k);
    if (isFileRef(o)) {
      reloaded++;
      return JSON.parse(fs.readFileSync(path.resolve(outDir, o.file), 'utf8')) as unknown;
    }
    return o;
  };

  const record = (cat: string, id: string, stage: string, output: unknown, ms?: number): void => {
    const k = key(cat, id, stage);
    let jout = output;
    if (!isErrorOutput(output)) {
      const size = Buffer.byteLength(JSON.stringify(output) ?? 'null');
      if (memBytes + size > cpuBudget) {
        jout = { file: writeSpill(stage, cat, id, output) };
        spilled++;
      } else {
        mem.set(k, output);
        memBytes += size;
        if (pipeline.budgets.save_intermediate) writeSpill(stage, cat, id, output);
      }
    }
    done.set(k, jout);
    journal.append({ category: cat, item: id, stage, output: jout, ms });
  };

  const stageCfg = (name: string) => pipeline.stages[stageIdx.get(name)!];

  const hostFor = async (stage: string): Promise<ModelHost> => {
    let h = hosts.get(stage);
    if (h) return h;
    const cfg = stageCfg(stage);
    const argv = cfg.model.command ?? [python, defaultHostScript()];
    h = await ModelHost.start({ supervisor, name: stage, argv, cwd: dir, timeoutMs: opts.callTimeoutMs ?? 600_000 });
    hosts.set(stage, h);
    if (cfg.model.class_path) await h.init(cfg.model.class_path, cfg.model.params ?? {}, [dir, path.dirname(defaultHostScript())]);
    return h;
  };

  const makePlan = (): Plan => {
    const rem = remainingWork(pipeline, cats, done);
    const plan = planPipeline({
      stages: pipeline.stages.map((s, i) => ({ name: s.name, memoryMB: memMB.get(s.name) ?? 0, inputs: stageInputs(pipeline, i) })),
      categories: rem.categories,
      gpuMemoryMB: pipeline.budgets.gpu_memory_mb,
      resident: [...resident],
    });
    emit({ type: 'plan', plan, replanned: plansMade > 0 });
    plansMade++;
    firstPlan ??= plan;
    return plan;
  };

  const processStep = async (step: PlanStep): Promise<void> => {
    const cat = catByName.get(step.category!)!;
    const stage = step.stage;
    const inputs = stageInputs(pipeline, stageIdx.get(stage)!);
    const todo = cat.items.filter((it) => !done.has(key(cat.name, it.id, stage)));
    emit({ type: 'stage-start', category: cat.name, stage, todo: todo.length });
    let processed = 0;
    let failed = 0;
    let skipped = 0;
    const host = await hostFor(stage);
    for (const it of todo) {
      if (aborted()) throw new Interrupted();
      const ins: Record<string, unknown> = {};
      let missing = false;
      for (const s of inputs) {
        const o = outputOf(cat.name, it.id, s);
        if (o === undefined || isErrorOutput(o)) missing = true;
        else ins[s] = o;
      }
      if (missing) {
        skipped++;
        skippedDeps.set(cat.name, (skippedDeps.get(cat.name) ?? 0) + 1);
        continue;
      }
      let r;
      try {
        r = await host.process(it.id, it.record, ins);
      } catch (err) {
        if (aborted()) throw new Interrupted();
        throw err;
      }
      if (r.ok) {
        record(cat.name, it.id, stage, r.outputs, r.ms);
        itemMs.get(stage)!.push(r.ms);
        processed++;
        emit({ type: 'item', category: cat.name, stage, item: it.id, ok: true, ms: r.ms });
      } else {
        record(cat.name, it.id, stage, { error: r.message });
        failures.push({ category: cat.name, item: it.id, stage, error: r.message });
        failed++;
        emit({ type: 'item', category: cat.name, stage, item: it.id, ok: false, error: r.message });
        if (pipeline.on_item_error === 'stop') {
          journal.flush();
          throw new GpucoloError(`stage "${stage}" failed on item "${it.id}" (category "${cat.name}"): ${r.message} (on_item_error: stop)`, { code: 'EITEM' });
        }
      }
      if (journal.pending >= 20) journal.flush();
    }
    journal.flush();
    // outputs no later stage reads can leave memory
    emit({ type: 'stage-end', category: cat.name, stage, processed, failed, skipped });
  };

  try {
    let plan = makePlan();
    let i = 0;
    while (i < plan.steps.length) {
      if (aborted()) throw new Interrupted();
      const step = plan.steps[i++];
      if (step.kind === 'load') {
        if (resident.has(step.stage)) continue;
        const h = await hostFor(step.stage);
        let r;
        try {
          r = await h.load();
        } catch (err) {
          if (aborted()) throw new Interrupted();
          throw new GpucoloError(`cannot load the model of stage "${step.stage}": ${oneLine(err).replace(/^stage "[^"]*" load: /, '')}`, { code: 'ELOAD' });
        }
        resident.add(step.stage);
        const mb = r.memoryBytes / (1024 * 1024);
        swaps.push({ kind: 'load', stage: step.stage, ms: r.ms, memoryMB: Math.round(mb * 10) / 10 });
        emit({ type: 'load', stage: step.stage, ms: r.ms, memoryMB: mb });
        if (!measured.has(step.stage)) {
          measured.add(step.stage);
          if (mb > 0) {
            memMB.set(step.stage, mb);
            plan = makePlan();
            i = 0;
          }
        }
      } else if (step.kind === 'unload') {
        if (!resident.has(step.stage)) continue;
        const h = hosts.get(step.stage)!;
        const r = await h.unload();
        resident.delete(step.stage);
        swaps.push({ kind: 'unload', stage: step.stage, ms: r.ms });
        emit({ type: 'unload', stage: step.stage, ms: r.ms });
      } else {
        await processStep(step);
      }
    }
  } catch (err) {
    if (err instanceof Interrupted || aborted()) {
      status = 'interrupted';
      error = 'interrupted';
    } else {
      status = 'stopped';
      error = oneLine(err);
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    try {
      journal.close();
    } catch (err) {
      warnings.push(`journal: ${oneLine(err)}`);
    }
    await Promise.all([...hosts.values()].map((h) => (status === 'interrupted' ? h.kill() : h.stop()).catch(() => undefined)));
    dispose();
  }

  const report = buildReport({
    pipeline,
    file: absFile,
    outputDir: outDir,
    journalFile: jfile,
    cats,
    status,
    error,
    startedAt,
    finishedAt: new Date(),
    plan: firstPlan,
    plans: plansMade,
    swaps,
    itemMs,
    failuresThisRun: failures,
    skippedForFailedInputs: Object.fromEntries(skippedDeps),
    warnings,
    resumedRecords,
    spilled,
    reloaded,
    outputOf: (c, i, s) => {
      const o = done.get(key(c, i, s));
      if (o === undefined) return undefined;
      if (isErrorOutput(o)) return o;
      try {
        return outputOf(c, i, s);
      } catch {
        return undefined;
      }
    },
  });
  if (opts.writeReport !== false) writeReport(report, outDir);
  return report;
}
