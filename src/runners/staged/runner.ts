/**
 * Runs a staged pipeline: items grouped by category pass through stages, each stage a model in
 * its own host process; the plan (planPipeline) decides when models are loaded and unloaded so
 * that swaps are few. Every finished (category, item, stage) is journaled, so a run that stopped
 * resumes without recomputing anything. Outputs stay in memory up to budgets.cpu_memory_mb (JSON
 * size), beyond that they spill to <output_dir>/intermediate/<stage>/<category>/<id>.json and the
 * journal holds {file} instead. An output leaves memory as soon as every stage that reads it has
 * finished that item (the last stage keeps only its numeric fields, for the report).
 *
 * A stage without memory_mb is planned as taking the whole GPU budget until its first load
 * measures it (a model of unknown size is never loaded beside another); then the rest is
 * re-planned with the measured size.
 *
 * Interrupts: the first abort (opts.signal) lets the call in flight (an item, a load) finish and
 * be journaled, then stops; opts.killSignal stops the model hosts at once (the item in flight is
 * redone on resume).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode, oneLine } from '../../errors.js';
import { InputFileError, readInputText } from '../../input-file.js';
import { supervisorWithRegistry } from '../supervisor/index.js';
import { loadItems, type ItemCategory } from './items.js';
import { ModelHost, defaultHostScript, defaultStagedPython } from './host.js';
import { openJournal, key, type Journal } from './journal.js';
import { countSwaps, planPerItem, planPipeline, type PerItemCategory, type Plan, type PlanStageInput, type PlanStep } from './planner.js';
import { loadPipeline, stageInputs, type Pipeline } from './schema.js';
import { buildReport, latestSwapTimes, swapSavings, swapTimesOf, writeReport, type StagedReport, type SwapRecord, type SwapTimes } from './report.js';
import { writeFileAtomic } from '../../report/index.js';
import { makeDirs, missingDirs, removeEmptyDirs } from '../../fs-dirs.js';

export type StagedEvent =
  | { type: 'warning'; message: string }
  | { type: 'plan'; plan: Plan; replanned: boolean }
  | { type: 'load'; stage: string; ms: number; memoryMB: number | null }
  | { type: 'unload'; stage: string; ms: number }
  | { type: 'item'; category: string; stage: string; item: string; ok: boolean; ms?: number; error?: string }
  | { type: 'stage-start'; category: string; stage: string; todo: number }
  | { type: 'stage-end'; category: string; stage: string; processed: number; failed: number; skipped: number };

export interface RunStagedOptions {
  /** continue from the journal (default true); false moves an existing journal and intermediates away */
  resume?: boolean;
  /** stop after the call in flight finishes (its result is journaled) */
  signal?: AbortSignal;
  /** stop now: the model hosts are killed, the call in flight is lost */
  killSignal?: AbortSignal;
  onEvent?: (e: StagedEvent) => void;
  /** per host call timeout, ms (default 600000) */
  callTimeoutMs?: number;
  /** how long a model host gets to say hello, ms (default 30000) */
  startTimeoutMs?: number;
  /** python for the default host (default: pipeline.python, $GPUCOLO_PYTHON, python3) */
  python?: string;
  /** write the report files (default true) */
  writeReport?: boolean;
  /** output directory instead of the pipeline's budgets.output_dir (relative to the cwd) */
  outputDir?: string;
  /** processing order (default: the pipeline's strategy, else staged) */
  strategy?: Strategy;
  /** load and unload each model once before the run, to predict the time the strategy saves */
  calibrate?: boolean;
}

export type Strategy = 'per-item' | 'staged' | 'auto';

export interface RemainingWork {
  categories: { name: string; items: number; remaining: Record<string, number> }[];
}

/** The journal value of an item that failed. */
export const isErrorOutput = (o: unknown): o is { error: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { error?: unknown }).error === 'string';
/** A spilled output: {file} relative to output_dir. */
export const isFileRef = (o: unknown): o is { file: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { file?: unknown }).file === 'string';

/**
 * Where a run writes: `override` (--out) relative to the current directory, else the pipeline's
 * output_dir relative to the pipeline file (so that a resume finds its journal from anywhere),
 * else gpucolo-staged/<name> in the current directory: a default never lands next to a pipeline
 * file, which may be one of gpucolo's examples inside node_modules.
 */
export function outputDirOf(pipeline: Pipeline, dir: string, override?: string): string {
  if (override !== undefined) return path.resolve(override);
  if (pipeline.budgets.output_dir !== undefined) return path.resolve(dir, pipeline.budgets.output_dir);
  return path.resolve('gpucolo-staged', pipeline.name);
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

/**
 * Planner input for the pipeline's stages: declared or measured memory; a stage with neither is
 * planned as the whole GPU budget (it is then loaded alone until its first load measures it).
 */
export function planStages(pipeline: Pipeline, memoryMB: (stage: string) => number | undefined): { stages: PlanStageInput[]; notes: string[] } {
  const notes: string[] = [];
  const stages = pipeline.stages.map((s, i) => {
    let mb = memoryMB(s.name);
    if (mb === undefined) {
      mb = pipeline.budgets.gpu_memory_mb;
      notes.push(`stage ${s.name}: memory not declared (memory_mb) nor measured yet: planned as the whole GPU budget until its first load`);
    }
    return { name: s.name, memoryMB: mb, inputs: stageInputs(pipeline, i) };
  });
  return { stages, notes };
}

/** Per item, the stages not yet journaled. */
export function perItemWork(pipeline: Pipeline, cats: ItemCategory[], done: Map<string, unknown>): PerItemCategory[] {
  return cats.map((c) => ({
    name: c.name,
    items: c.items.map((it) => ({ id: it.id, stages: pipeline.stages.filter((s) => !done.has(key(c.name, it.id, s.name))).map((s) => s.name) })).filter((it) => it.stages.length > 0),
  }));
}

export interface StrategyChoice {
  requested: Strategy;
  used: 'per-item' | 'staged';
  reason: string;
  /** both orders for the same work, for the report */
  perItem: Plan;
  staged: Plan;
}

/** Both orders for the work left, and the one the strategy picks (auto: staged when it swaps less). */
export function chooseStrategy(
  pipeline: Pipeline,
  remaining: RemainingWork,
  perItem: PerItemCategory[],
  memoryMB: (stage: string) => number | undefined,
  requested: Strategy,
  resident?: string[],
): StrategyChoice {
  const { stages, notes } = planStages(pipeline, memoryMB);
  const budget = pipeline.budgets.gpu_memory_mb;
  const staged = planPipeline({ stages, categories: remaining.categories, gpuMemoryMB: budget, ...(resident ? { resident } : {}) });
  staged.notes.unshift(...notes);
  // the per-item order's steps without its process steps unless it runs (one per item and stage)
  const perItemPlan = (processSteps: boolean): Plan => {
    const p = planPerItem({ stages, categories: perItem, gpuMemoryMB: budget, processSteps, ...(resident ? { resident } : {}) });
    p.notes.unshift(...notes);
    return p;
  };
  let pi = perItemPlan(requested === 'per-item');
  // the staged plan's per-item figure is the one of the actual per-item plan
  staged.naiveLoads = pi.loads;
  const sw = countSwaps(staged.steps);
  const pw = countSwaps(pi.steps);
  if (requested !== 'auto') return { requested, used: requested, reason: `--strategy ${requested}`, perItem: pi, staged };
  const used = sw < pw || staged.loads < pi.loads ? 'staged' : 'per-item';
  if (used === 'per-item') pi = perItemPlan(true);
  const reason = used === 'staged' ? `staged swaps less (${pw} -> ${sw} swaps, ${pi.loads} -> ${staged.loads} loads)` : `staged would not swap less (${pw} swaps either way): per-item keeps no intermediate outputs across items`;
  return { requested, used, reason, perItem: pi, staged };
}

/** The plan for what is left (reads the journal without changing it when it exists). */
export function planStaged(
  file: string,
  opts: { outputDir?: string; strategy?: Strategy } = {},
): { plan: Plan; pipeline: Pipeline; remaining: RemainingWork; warnings: string[]; choice: StrategyChoice; swapTimes: SwapTimes | null } {
  const { pipeline, dir } = loadPipeline(file);
  const cats = loadItems(pipeline.items, dir);
  const jfile = path.join(outputDirOf(pipeline, dir, opts.outputDir), 'journal.jsonl');
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
  const choice = chooseStrategy(pipeline, remaining, perItemWork(pipeline, cats, done), (name) => pipeline.stages.find((s) => s.name === name)?.memory_mb, opts.strategy ?? pipeline.strategy ?? 'staged');
  const plan = choice.used === 'staged' ? choice.staged : choice.perItem;
  return { plan, pipeline, remaining, warnings, choice, swapTimes: latestSwapTimes(path.dirname(jfile)) };
}

class Interrupted extends Error {}

/** outputs/images/<category>/ as the notes have it; a category that is not a plain name is encoded. */
export function imageDirOf(category: string): string {
  const plain = category !== '.' && category !== '..' && !/[/\\\u0000]/.test(category) && category.length <= 200;
  return path.join('images', plain ? category : encodeURIComponent(category));
}

/** An image an earlier stage emitted, as it travels in outputs and the journal: {"$image": path relative to output_dir}. */
export const isImageRef = (o: unknown): o is { $image: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { $image?: unknown }).$image === 'string';

/** The image files an output refers to (top-level fields, or the output itself). */
export function imageFiles(o: unknown): string[] {
  if (isImageRef(o)) return [o.$image];
  if (!o || typeof o !== 'object' || Array.isArray(o)) return [];
  return Object.values(o).filter(isImageRef).map((v) => v.$image);
}

/** JSON outputs larger than this always go to a file: the journal stays small and quick to read. */
export const INLINE_OUTPUT_MAX_BYTES = 64 * 1024;

/** done-map values besides journal values: the output is in `mem`; the output left memory. */
const IN_MEMORY = Symbol('in-memory');
const FREED = Symbol('freed');

/** What the report reads of a last-stage output: its top-level finite numbers (or the number). */
function numericFields(o: unknown): unknown {
  if (typeof o === 'number') return o;
  const r: Record<string, number> = {};
  if (o && typeof o === 'object' && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && Number.isFinite(v)) r[k] = v;
  return r;
}

export async function runStaged(file: string, opts: RunStagedOptions = {}): Promise<StagedReport> {
  const startedAt = new Date();
  const emit = (e: StagedEvent): void => opts.onEvent?.(e);
  const { pipeline, dir, file: absFile } = loadPipeline(file);
  const cats = loadItems(pipeline.items, dir);
  const outDir = outputDirOf(pipeline, dir, opts.outputDir);
  // what this run creates, removed again if it fails before recording anything
  const createdDirs = missingDirs(outDir);
  makeDirs(outDir);
  const jfile = path.join(outDir, 'journal.jsonl');
  const interDir = path.join(outDir, 'intermediate');
  let opened: ReturnType<typeof openJournal>;
  let newJournal: boolean;
  try {
    if (opts.resume === false) {
      const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      // moved aside, never deleted: output_dir may be a directory the user keeps other things in
      if (fs.existsSync(jfile)) fs.renameSync(jfile, path.join(outDir, `journal.${stamp}.jsonl`));
      if (fs.existsSync(interDir)) fs.renameSync(interDir, path.join(outDir, `intermediate.${stamp}`));
    }
    newJournal = !fs.existsSync(jfile);
    opened = openJournal(jfile);
  } catch (err) {
    removeEmptyDirs(createdDirs);
    throw err;
  }
  const journal: Journal = opened.journal;
  const warnings = [...opened.warnings];
  const warn = (message: string): void => {
    warnings.push(message);
    emit({ type: 'warning', message });
  };
  for (const w of opened.warnings) emit({ type: 'warning', message: w });
  const resumedRecords = opened.done.size;
  let recordedThisRun = 0;

  const stageIdx = new Map(pipeline.stages.map((s, i) => [s.name, i]));
  const lastStage = pipeline.stages[pipeline.stages.length - 1].name;
  const inputsOf = new Map(pipeline.stages.map((s, i) => [s.name, stageInputs(pipeline, i)]));
  const readersOf = new Map<string, string[]>(pipeline.stages.map((s) => [s.name, []]));
  for (const [stage, ins] of inputsOf) for (const s of ins) readersOf.get(s)!.push(stage);
  const memMB = new Map<string, number>();
  for (const s of pipeline.stages) if (s.memory_mb !== undefined) memMB.set(s.name, s.memory_mb);
  const loadedOnce = new Set<string>();
  const catByName = new Map(cats.map((c) => [c.name, c]));

  // Every recorded (category, item, stage): a journal value ({error}, {file}, or the last stage's
  // numeric fields), IN_MEMORY (the output is in `mem`) or FREED (no reader is left).
  const done = new Map<string, unknown>();
  const mem = new Map<string, { value: unknown; bytes: number }>();
  let memBytes = 0;
  const cpuBudget = pipeline.budgets.cpu_memory_mb * 1024 * 1024;
  let spilled = 0;
  let reloaded = 0;
  let freed = 0;

  /** (cat, id, stage)'s output is still to be read: a reader of it has not run and can run. */
  const stillRead = (cat: string, id: string, stage: string): boolean =>
    readersOf.get(stage)!.some((r) => !done.has(key(cat, id, r)) && inputsOf.get(r)!.every((s) => !isErrorOutput(done.get(key(cat, id, s)))));
  const keep = (k: string, value: unknown, bytes: number): void => {
    mem.set(k, { value, bytes });
    memBytes += bytes;
    done.set(k, IN_MEMORY);
  };
  // PNG files (relative to output_dir) an intermediate output refers to: removed once no stage
  // left to run reads them, unless save_intermediate (the last stage's images are results: kept)
  const imagesOf = new Map<string, string[]>();
  const noteImages = (k: string, stage: string, output: unknown): void => {
    if (stage === lastStage || pipeline.budgets.save_intermediate) return;
    const files = imageFiles(output);
    if (files.length) imagesOf.set(k, files);
  };
  const release = (cat: string, id: string, stage: string): void => {
    const k = key(cat, id, stage);
    if (stillRead(cat, id, stage)) return;
    for (const f of imagesOf.get(k) ?? []) {
      const abs = path.resolve(outDir, f);
      if (!path.relative(outDir, abs).startsWith('..')) fs.rmSync(abs, { force: true });
    }
    imagesOf.delete(k);
    const m = mem.get(k);
    if (!m) return;
    mem.delete(k);
    memBytes -= m.bytes;
    done.set(k, FREED);
    freed++;
  };

  // Resumed records: keep in memory only what a stage left to run reads.
  for (const [k, v] of opened.done) done.set(k, v.output);
  for (const [k, v] of opened.done) {
    const o = v.output;
    if (isErrorOutput(o) || isFileRef(o)) continue;
    const [cat, id, stage] = k.split('\u0000');
    if (!stageIdx.has(stage)) continue;
    noteImages(k, stage, o);
    if (stage === lastStage) done.set(k, numericFields(o));
    else if (stillRead(cat, id, stage)) keep(k, o, Buffer.byteLength(JSON.stringify(o) ?? 'null'));
    else done.set(k, FREED);
  }

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
  const loadedMB = new Map<string, number>(); // what each resident model reported at its load
  const python = opts.python ?? pipeline.python ?? defaultStagedPython();

  const aborted = (): boolean => opts.signal?.aborted === true || killed();
  const killed = (): boolean => opts.killSignal?.aborted === true;
  const onKill = (): void => {
    for (const h of hosts.values()) void h.kill();
  };
  opts.killSignal?.addEventListener('abort', onKill, { once: true });

  const spillPath = (stage: string, cat: string, id: string): string => path.join(interDir, stage, encodeURIComponent(cat), `${encodeURIComponent(id)}.json`);
  const writeSpill = (stage: string, cat: string, id: string, json: string): string => {
    const f = spillPath(stage, cat, id);
    makeDirs(path.dirname(f));
    // write-temp + fsync + rename: the journal record that points here is only written after
    writeFileAtomic(f, `${json}\n`);
    return path.relative(outDir, f);
  };

  /** a spilled output named by the journal: only inside output_dir, as one clear error otherwise */
  const readSpill = (ref: string, cat: string, id: string, stage: string): unknown => {
    const f = path.resolve(outDir, ref);
    const what = `the output of stage ${stage} for item "${id}" (category "${cat}"), ${f}`;
    if (path.relative(outDir, f).startsWith('..') || path.isAbsolute(path.relative(outDir, f))) {
      throw new GpucoloError(`${jfile}: the journal points outside the output directory for ${what}; move the journal away to start over`, { code: 'EBADJOURNAL', path: jfile });
    }
    let text: string;
    try {
      text = readInputText(f, { kind: 'items' });
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      throw new GpucoloError(`cannot read ${what}: ${code === 'ENOENT' ? 'the file is gone' : err instanceof InputFileError ? `${code} (${err.reason})` : code} (run with --no-resume to start over)`, { code, path: f });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new GpucoloError(`cannot read ${what}: not JSON (run with --no-resume to start over)`, { code: 'EBADSPILL', path: f });
    }
  };

  /** the output of (cat, id, stage), from memory, a spilled file, or the journal */
  const outputOf = (cat: string, id: string, stage: string): unknown => {
    const k = key(cat, id, stage);
    const o = done.get(k);
    if (o === IN_MEMORY) return mem.get(k)!.value;
    if (o === FREED) throw new GpucoloError(`internal: the output of ${stage} for item "${id}" (category "${cat}") was released while still needed`, { code: 'EINTERNAL' });
    if (isFileRef(o)) {
      reloaded++;
      return readSpill(o.file, cat, id, stage);
    }
    return o;
  };

  let lastFlush = performance.now();
  const flush = (): void => {
    journal.flush();
    lastFlush = performance.now();
  };
  const record = (cat: string, id: string, stage: string, output: unknown, ms?: number): void => {
    const k = key(cat, id, stage);
    let jout = output;
    if (isErrorOutput(output)) done.set(k, output);
    else {
      noteImages(k, stage, output);
      const json = JSON.stringify(output) ?? 'null';
      const bytes = Buffer.byteLength(json);
      const read = readersOf.get(stage)!.length > 0;
      const inMemory = read && memBytes + bytes <= cpuBudget;
      if ((read && !inMemory) || bytes > INLINE_OUTPUT_MAX_BYTES || pipeline.budgets.save_intermediate) {
        jout = { file: writeSpill(stage, cat, id, json) };
        if (read && !inMemory) spilled++;
      }
      if (inMemory) keep(k, output, bytes);
      else if (stage === lastStage) done.set(k, numericFields(output));
      else done.set(k, read ? jout : FREED);
    }
    journal.append({ category: cat, item: id, stage, output: jout, ms });
    recordedThisRun++;
    // every record is on disk at once when items are slow; batched when they are fast
    if (journal.pending >= 20 || performance.now() - lastFlush >= 100) flush();
  };

  const stageCfg = (name: string) => pipeline.stages[stageIdx.get(name)!];

  const hostFor = async (stage: string): Promise<ModelHost> => {
    let h = hosts.get(stage);
    if (h) return h;
    const cfg = stageCfg(stage);
    const argv = cfg.model.command ?? [python, defaultHostScript()];
    h = await ModelHost.start({ supervisor, name: stage, argv, cwd: dir, timeoutMs: opts.callTimeoutMs ?? 600_000, ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}) });
    hosts.set(stage, h);
    if (cfg.model.class_path) await h.init(cfg.model.class_path, cfg.model.params ?? {}, [dir, path.dirname(defaultHostScript())]);
    // the default host always; a stage's own command only when it maps a method (older hosts
    // do not know "configure")
    if (cfg.call || cfg.model.class_path) {
      try {
        await h.configure({ call: cfg.call, imageInputs: cfg.image_inputs, outputDir: outDir });
      } catch (err) {
        if (err instanceof GpucoloError && err.code === 'EBADCALL') {
          throw new GpucoloError(`${absFile}: stages.${stageIdx.get(stage)}.call.method: ${err.message}`, { code: 'EBADCONFIG', path: absFile });
        }
        throw err;
      }
    }
    return h;
  };

  const strategy: Strategy = opts.strategy ?? pipeline.strategy ?? 'staged';
  // the work this run starts with, both orders of it (re-planned as memory is measured), for the report
  const startRemaining = remainingWork(pipeline, cats, done);
  const startPerItem = perItemWork(pipeline, cats, done);
  let lastChoice: StrategyChoice | undefined;
  let comparison: StrategyChoice | undefined;
  // load/unload times known before the run: an earlier report here (read before this run writes one), or --calibrate
  let timesBefore = latestSwapTimes(outDir);
  const warnedNotes = new Set<string>();
  const makePlan = (): Plan => {
    const choice = chooseStrategy(pipeline, remainingWork(pipeline, cats, done), perItemWork(pipeline, cats, done), (s) => memMB.get(s), strategy, [...resident]);
    lastChoice = choice;
    comparison = chooseStrategy(pipeline, startRemaining, startPerItem, (s) => memMB.get(s), 'staged'); // both orders' swaps, for the report
    const plan = choice.used === 'staged' ? choice.staged : choice.perItem;
    for (const n of plan.notes) if (/more than the GPU budget/.test(n) && !warnedNotes.has(n)) {
      warnedNotes.add(n);
      warn(n);
    }
    emit({ type: 'plan', plan, replanned: plansMade > 0 });
    plansMade++;
    firstPlan ??= plan;
    return plan;
  };

  const processStep = async (step: PlanStep): Promise<void> => {
    const cat = catByName.get(step.category!)!;
    const stage = step.stage;
    const inputs = inputsOf.get(stage)!;
    const todo = cat.items.filter((it) => !done.has(key(cat.name, it.id, stage)) && (step.item === undefined || it.id === step.item));
    // per-item steps (one item each) report items only, not a stage start and end per item
    const perItem = step.item !== undefined;
    if (!perItem) emit({ type: 'stage-start', category: cat.name, stage, todo: todo.length });
    let processed = 0;
    let failed = 0;
    let skipped = 0;
    const host = await hostFor(stage);
    for (const it of todo) {
      if (aborted()) throw new Interrupted();
      // an input that failed (or never ran) means this stage cannot run the item; the other
      // inputs may already have left memory then, so look before reading any
      const missing = inputs.some((s) => {
        const o = done.get(key(cat.name, it.id, s));
        return o === undefined || isErrorOutput(o);
      });
      if (missing) {
        skipped++;
        skippedDeps.set(cat.name, (skippedDeps.get(cat.name) ?? 0) + 1);
        for (const s of inputs) release(cat.name, it.id, s);
        continue;
      }
      const ins: Record<string, unknown> = {};
      for (const s of inputs) ins[s] = outputOf(cat.name, it.id, s);
      let r;
      try {
        r = await host.process(it.id, it.record, ins, { outputDir: outDir, dir: imageDirOf(cat.name), name: `${it.id}.${stage}` });
      } catch (err) {
        if (killed()) throw new Interrupted();
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
          flush();
          throw new GpucoloError(`stage "${stage}" failed on item "${it.id}" (category "${cat.name}"): ${r.message} (on_item_error: stop)`, { code: 'EITEM' });
        }
      }
      for (const s of inputs) release(cat.name, it.id, s);
    }
    flush();
    if (!perItem) emit({ type: 'stage-end', category: cat.name, stage, processed, failed, skipped });
  };

  let badConfig: GpucoloError | undefined;
  const calibration: SwapRecord[] = [];
  try {
    // a stage that maps its own method is checked before any work: a method the class lacks is
    // a bad pipeline file, not a failure halfway through the run
    const work = remainingWork(pipeline, cats, done);
    for (const s of pipeline.stages) {
      if (s.call && work.categories.some((c) => c.remaining[s.name] > 0)) await hostFor(s.name);
    }
    if (opts.calibrate) {
      // one load and unload of each model with work left, measured before the run
      const cal: SwapRecord[] = [];
      for (const s of pipeline.stages) {
        if (!work.categories.some((c) => c.remaining[s.name] > 0)) continue;
        if (aborted()) throw new Interrupted();
        const h = await hostFor(s.name);
        let l;
        let u;
        try {
          l = await h.load();
          u = await h.unload();
        } catch (err) {
          if (killed()) throw new Interrupted();
          throw new GpucoloError(`cannot load the model of stage "${s.name}" (calibration): ${oneLine(err).replace(/^stage "[^"]*" (load|unload|start|init): /, '')}`, { code: 'ELOAD' });
        }
        cal.push({ kind: 'load', stage: s.name, ms: l.ms }, { kind: 'unload', stage: s.name, ms: u.ms });
        emit({ type: 'load', stage: s.name, ms: l.ms, memoryMB: l.memoryBytes === null ? null : l.memoryBytes / (1024 * 1024) });
        emit({ type: 'unload', stage: s.name, ms: u.ms });
        if (!memMB.has(s.name) && l.memoryBytes !== null) memMB.set(s.name, l.memoryBytes / (1024 * 1024));
        loadedOnce.add(s.name);
      }
      timesBefore = swapTimesOf(cal, 'measured before the run (--calibrate)') ?? timesBefore;
      calibration.push(...cal);
    }
    let plan = makePlan();
    let i = 0;
    while (i < plan.steps.length) {
      if (aborted()) throw new Interrupted();
      const step = plan.steps[i++];
      if (step.kind === 'load') {
        if (resident.has(step.stage)) continue;
        let r;
        try {
          const h = await hostFor(step.stage);
          r = await h.load();
        } catch (err) {
          if (killed()) throw new Interrupted();
          throw new GpucoloError(`cannot load the model of stage "${step.stage}": ${oneLine(err).replace(/^stage "[^"]*" (load|start|init): /, '')}`, { code: 'ELOAD' });
        }
        resident.add(step.stage);
        const mb = r.memoryBytes === null ? undefined : r.memoryBytes / (1024 * 1024);
        const shownMB = mb !== undefined ? Math.round(mb * 10) / 10 : undefined;
        if (shownMB !== undefined) loadedMB.set(step.stage, shownMB);
        else loadedMB.delete(step.stage);
        swaps.push({ kind: 'load', stage: step.stage, ms: r.ms, ...(shownMB !== undefined ? { memoryMB: shownMB } : {}) });
        emit({ type: 'load', stage: step.stage, ms: r.ms, memoryMB: mb ?? null });
        const first = !loadedOnce.has(step.stage);
        loadedOnce.add(step.stage);
        if (first && !memMB.has(step.stage)) {
          if (mb === undefined) {
            warn(`stage ${step.stage}: the model reported no memory use (no memory() method and no CUDA): it stays planned as the whole GPU budget; set memory_mb to plan it with others`);
          } else {
            memMB.set(step.stage, mb);
            plan = makePlan();
            i = 0;
          }
        }
      } else if (step.kind === 'unload') {
        if (!resident.has(step.stage)) continue;
        const h = hosts.get(step.stage)!;
        let r;
        try {
          r = await h.unload();
        } catch (err) {
          if (killed()) throw new Interrupted();
          throw err;
        }
        resident.delete(step.stage);
        const movedMB = loadedMB.get(step.stage);
        swaps.push({ kind: 'unload', stage: step.stage, ms: r.ms, ...(movedMB !== undefined ? { memoryMB: movedMB } : {}) });
        emit({ type: 'unload', stage: step.stage, ms: r.ms });
      } else {
        await processStep(step);
      }
    }
  } catch (err) {
    if (err instanceof GpucoloError && err.code === 'EBADCONFIG') {
      badConfig = err;
      status = 'stopped';
      error = oneLine(err);
    } else if (err instanceof Interrupted || killed()) {
      status = 'interrupted';
      error = killed() ? 'interrupted (model hosts killed)' : 'interrupted';
    } else {
      status = 'stopped';
      error = oneLine(err);
    }
  } finally {
    opts.killSignal?.removeEventListener('abort', onKill);
    try {
      journal.close();
    } catch (err) {
      warnings.push(`journal: ${oneLine(err)}`);
    }
    await Promise.all([...hosts.values()].map((h) => (killed() ? h.kill() : h.stop()).catch(() => undefined)));
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
    freed,
    ...(lastChoice ? { strategy: { requested: strategy, used: lastChoice.used, reason: lastChoice.reason } } : {}),
    ...(comparison
      ? { swapSavings: swapSavings(comparison.perItem.steps, comparison.staged.steps, timesBefore, swapTimesOf([...calibration, ...swaps], 'measured in this run')) }
      : {}),
    outputOf: (c, i, s) => {
      const o = done.get(key(c, i, s));
      if (o === undefined || isErrorOutput(o)) return o;
      if (o === FREED) return null; // done; not the last stage, which keeps its numbers
      try {
        return outputOf(c, i, s);
      } catch {
        return undefined;
      }
    },
  });
  // A run that failed before recording anything (a model that does not start, a broken host)
  // has nothing to resume or report beyond its error: leave no journal header, report or
  // directory of its own behind. (An interrupted run keeps them: it is resumed.)
  const nothingDone = status === 'stopped' && recordedThisRun === 0 && resumedRecords === 0 && newJournal;
  if (nothingDone) {
    fs.rmSync(jfile, { force: true });
    removeEmptyDirs(createdDirs);
  }
  if (badConfig) throw badConfig;
  if (nothingDone) {
    // nothing to write
  } else if (opts.writeReport !== false) writeReport(report, outDir);
  return report;
}
