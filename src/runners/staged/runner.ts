/**
 * Runs a staged pipeline: items grouped by category pass through stages, each stage a model in
 * its own host process; the plan (planPipeline) decides when models are loaded and unloaded so
 * that swaps are few. Every finished (category, item, stage) is journaled, so a run that stopped
 * resumes without recomputing anything. Outputs stay in memory up to budgets.cpu_memory_mb (JSON
 * size), beyond that they spill to <output_dir>/intermediate/<stage>/<category>/<id>.json and the
 * journal holds {file} instead. An output leaves memory as soon as every stage that reads it has
 * finished that item (the last stage keeps only its numeric fields, for the report): outputs.ts.
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
import { GpucoloError, oneLine } from '../../errors.js';
import { supervisorWithRegistry } from '../../supervisor/index.js';
import { loadItems, type ItemCategory } from './items.js';
import { ModelHost, defaultHostScript, defaultStagedPython } from './host.js';
import { openJournal, key, type Journal } from './journal.js';
import { countSwaps, planPerItem, planPipeline, type PerItemCategory, type Plan, type PlanStageInput, type PlanStep } from './planner.js';
import { loadPipeline, stageInputs, type Pipeline } from './schema.js';
import { buildReport, latestSwapTimes, swapSavings, swapTimesOf, writeReport, type StagedReport, type SwapRecord, type SwapTimes } from './report.js';
import { makeDirs, missingDirs, removeEmptyDirs } from '../../fs-dirs.js';
import { StagedOutputs, isErrorOutput } from './outputs.js';

export { INLINE_OUTPUT_MAX_BYTES, imageFiles, isErrorOutput, isFileRef, isImageRef } from './outputs.js';

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

/**
 * Unwinds a run when it is interrupted; noteFailure turns it into status 'interrupted', so no
 * caller sees it. Private, but a GpucoloError with the code an interrupted run has everywhere
 * else (EINTERRUPTED) so that nothing gpucolo throws lacks one (issue #20).
 */
class Interrupted extends GpucoloError {
  constructor() {
    super('interrupted', { code: 'EINTERRUPTED' });
  }
}

/** outputs/images/<category>/ as the notes have it; a category that is not a plain name is encoded. */
export function imageDirOf(category: string): string {
  const plain = category !== '.' && category !== '..' && !/[/\\\u0000]/.test(category) && category.length <= 200;
  return path.join('images', plain ? category : encodeURIComponent(category));
}

/** The journal a run appends to; with resume false an earlier journal and intermediates are moved aside first. */
function openRunJournal(outDir: string, startedAt: Date, resume: boolean | undefined, createdDirs: string[]): { opened: ReturnType<typeof openJournal>; newJournal: boolean } {
  const jfile = path.join(outDir, 'journal.jsonl');
  const interDir = path.join(outDir, 'intermediate');
  try {
    if (resume === false) {
      const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      // moved aside, never deleted: output_dir may be a directory the user keeps other things in
      if (fs.existsSync(jfile)) fs.renameSync(jfile, path.join(outDir, `journal.${stamp}.jsonl`));
      if (fs.existsSync(interDir)) fs.renameSync(interDir, path.join(outDir, `intermediate.${stamp}`));
    }
    const newJournal = !fs.existsSync(jfile);
    return { opened: openJournal(jfile), newJournal };
  } catch (err) {
    removeEmptyDirs(createdDirs);
    throw err;
  }
}

/** The model hosts of a run, one per stage, started on first use; `resident` are the loaded models. */
class StagedHosts {
  readonly hosts = new Map<string, ModelHost>();
  readonly resident = new Set<string>();
  /** what each resident model reported at its load */
  readonly loadedMB = new Map<string, number>();

  constructor(
    private readonly c: {
      pipeline: Pipeline;
      stageIdx: Map<string, number>;
      supervisor: ReturnType<typeof supervisorWithRegistry>['supervisor'];
      python: string;
      dir: string;
      absFile: string;
      outDir: string;
      callTimeoutMs?: number;
      startTimeoutMs?: number;
    },
  ) {}

  async hostFor(stage: string): Promise<ModelHost> {
    let h = this.hosts.get(stage);
    if (h) return h;
    const { pipeline, stageIdx, supervisor, python, dir, absFile, outDir } = this.c;
    const cfg = pipeline.stages[stageIdx.get(stage)!];
    const argv = cfg.model.command ?? [python, defaultHostScript()];
    h = await ModelHost.start({ supervisor, name: stage, argv, cwd: dir, timeoutMs: this.c.callTimeoutMs ?? 600_000, ...(this.c.startTimeoutMs !== undefined ? { startTimeoutMs: this.c.startTimeoutMs } : {}) });
    this.hosts.set(stage, h);
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
  }

  killAll(): void {
    for (const h of this.hosts.values()) void h.kill();
  }

  /** Stops every host (kills them when `kill`), ignoring errors. */
  async closeAll(kill: boolean): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => (kill ? h.kill() : h.stop()).catch(() => undefined)));
  }
}

/** The stage has work left in some category. */
const hasWork = (work: RemainingWork, stage: string): boolean => work.categories.some((c) => c.remaining[stage] > 0);

/** One runStaged call: its setup, the plan's steps, and the report of what happened. */
class StagedRun {
  readonly startedAt = new Date();
  readonly pipeline: Pipeline;
  readonly dir: string;
  readonly absFile: string;
  readonly cats: ItemCategory[];
  readonly outDir: string;
  readonly jfile: string;
  /** what this run creates, removed again if it fails before recording anything */
  readonly createdDirs: string[];
  readonly newJournal: boolean;
  readonly journal: Journal;
  readonly warnings: string[];
  readonly resumedRecords: number;
  recordedThisRun = 0;
  readonly outputs: StagedOutputs;
  readonly memMB = new Map<string, number>();
  readonly loadedOnce = new Set<string>();
  readonly catByName: Map<string, ItemCategory>;
  readonly swaps: SwapRecord[] = [];
  readonly itemMs: Map<string, number[]>;
  readonly failures: { category: string; item: string; stage: string; error: string }[] = [];
  readonly skippedDeps = new Map<string, number>(); // category -> count of (item, stage) skipped for a failed input
  status: StagedReport['status'] = 'done';
  error: string | undefined;
  badConfig: GpucoloError | undefined;
  plansMade = 0;
  firstPlan: Plan | undefined;
  readonly hosts: StagedHosts;
  readonly dispose: () => void;
  readonly onKill = (): void => this.hosts.killAll();
  readonly strategy: Strategy;
  // the work this run starts with, both orders of it (re-planned as memory is measured), for the report
  readonly startRemaining: RemainingWork;
  readonly startPerItem: PerItemCategory[];
  lastChoice: StrategyChoice | undefined;
  comparison: StrategyChoice | undefined;
  // load/unload times known before the run: an earlier report here (read before this run writes one), or --calibrate
  timesBefore: SwapTimes | null;
  readonly warnedNotes = new Set<string>();
  readonly calibration: SwapRecord[] = [];
  lastFlush = performance.now();

  constructor(
    file: string,
    readonly opts: RunStagedOptions,
  ) {
    const { pipeline, dir, file: absFile } = loadPipeline(file);
    this.pipeline = pipeline;
    this.dir = dir;
    this.absFile = absFile;
    this.cats = loadItems(pipeline.items, dir);
    this.outDir = outputDirOf(pipeline, dir, opts.outputDir);
    this.createdDirs = missingDirs(this.outDir);
    makeDirs(this.outDir);
    this.jfile = path.join(this.outDir, 'journal.jsonl');
    const { opened, newJournal } = openRunJournal(this.outDir, this.startedAt, opts.resume, this.createdDirs);
    this.newJournal = newJournal;
    this.journal = opened.journal;
    this.warnings = [...opened.warnings];
    for (const w of opened.warnings) this.emit({ type: 'warning', message: w });
    this.resumedRecords = opened.done.size;
    this.outputs = new StagedOutputs(pipeline, this.outDir, this.jfile);
    for (const s of pipeline.stages) if (s.memory_mb !== undefined) this.memMB.set(s.name, s.memory_mb);
    this.catByName = new Map(this.cats.map((c) => [c.name, c]));
    this.outputs.restore(opened.done);
    this.itemMs = new Map<string, number[]>(pipeline.stages.map((s) => [s.name, []]));
    const { supervisor, dispose } = supervisorWithRegistry({ runId: `staged-${process.pid}-${this.startedAt.getTime()}`, graceMs: 3000 });
    this.dispose = dispose;
    this.hosts = new StagedHosts({
      pipeline,
      stageIdx: this.outputs.stageIdx,
      supervisor,
      python: opts.python ?? pipeline.python ?? defaultStagedPython(),
      dir,
      absFile,
      outDir: this.outDir,
      ...(opts.callTimeoutMs !== undefined ? { callTimeoutMs: opts.callTimeoutMs } : {}),
      ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    });
    opts.killSignal?.addEventListener('abort', this.onKill, { once: true });
    this.strategy = opts.strategy ?? pipeline.strategy ?? 'staged';
    this.startRemaining = remainingWork(pipeline, this.cats, this.outputs.done);
    this.startPerItem = perItemWork(pipeline, this.cats, this.outputs.done);
    this.timesBefore = latestSwapTimes(this.outDir);
  }

  emit(e: StagedEvent): void {
    this.opts.onEvent?.(e);
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.emit({ type: 'warning', message });
  }

  killed(): boolean {
    return this.opts.killSignal?.aborted === true;
  }

  aborted(): boolean {
    return this.opts.signal?.aborted === true || this.killed();
  }

  flush(): void {
    this.journal.flush();
    this.lastFlush = performance.now();
  }

  record(cat: string, id: string, stage: string, output: unknown, ms?: number): void {
    const jout = this.outputs.store(cat, id, stage, output);
    this.journal.append({ category: cat, item: id, stage, output: jout, ms });
    this.recordedThisRun++;
    // every record is on disk at once when items are slow; batched when they are fast
    if (this.journal.pending >= 20 || performance.now() - this.lastFlush >= 100) this.flush();
  }

  makePlan(): Plan {
    const { pipeline, cats, memMB } = this;
    const done = this.outputs.done;
    const choice = chooseStrategy(pipeline, remainingWork(pipeline, cats, done), perItemWork(pipeline, cats, done), (s) => memMB.get(s), this.strategy, [...this.hosts.resident]);
    this.lastChoice = choice;
    this.comparison = chooseStrategy(pipeline, this.startRemaining, this.startPerItem, (s) => memMB.get(s), 'staged'); // both orders' swaps, for the report
    const plan = choice.used === 'staged' ? choice.staged : choice.perItem;
    for (const n of plan.notes) if (/more than the GPU budget/.test(n) && !this.warnedNotes.has(n)) {
      this.warnedNotes.add(n);
      this.warn(n);
    }
    this.emit({ type: 'plan', plan, replanned: this.plansMade > 0 });
    this.plansMade++;
    this.firstPlan ??= plan;
    return plan;
  }

  /** Runs a process step: the items of a category (or the one item of a per-item step) through a stage. */
  async processStep(step: PlanStep): Promise<void> {
    const cat = this.catByName.get(step.category!)!;
    const stage = step.stage;
    const done = this.outputs.done;
    const todo = cat.items.filter((it) => !done.has(key(cat.name, it.id, stage)) && (step.item === undefined || it.id === step.item));
    // per-item steps (one item each) report items only, not a stage start and end per item
    const perItem = step.item !== undefined;
    if (!perItem) this.emit({ type: 'stage-start', category: cat.name, stage, todo: todo.length });
    const counts = { processed: 0, failed: 0, skipped: 0 };
    const host = await this.hosts.hostFor(stage);
    for (const it of todo) {
      if (this.aborted()) throw new Interrupted();
      counts[await this.processItem(host, cat.name, stage, it)]++;
    }
    this.flush();
    if (!perItem) this.emit({ type: 'stage-end', category: cat.name, stage, ...counts });
  }

  /** One item through one stage; says how it went. */
  async processItem(host: ModelHost, cat: string, stage: string, it: ItemCategory['items'][number]): Promise<'processed' | 'failed' | 'skipped'> {
    const inputs = this.outputs.inputsOf.get(stage)!;
    // an input that failed (or never ran) means this stage cannot run the item; the other
    // inputs may already have left memory then, so look before reading any
    const missing = inputs.some((s) => {
      const o = this.outputs.done.get(key(cat, it.id, s));
      return o === undefined || isErrorOutput(o);
    });
    if (missing) {
      this.skippedDeps.set(cat, (this.skippedDeps.get(cat) ?? 0) + 1);
      for (const s of inputs) this.outputs.release(cat, it.id, s);
      return 'skipped';
    }
    const ins: Record<string, unknown> = {};
    for (const s of inputs) ins[s] = this.outputs.outputOf(cat, it.id, s);
    let r;
    try {
      r = await host.process(it.id, it.record, ins, { outputDir: this.outDir, dir: imageDirOf(cat), name: `${it.id}.${stage}` });
    } catch (err) {
      if (this.killed()) throw new Interrupted();
      throw err;
    }
    let outcome: 'processed' | 'failed';
    if (r.ok) {
      this.record(cat, it.id, stage, r.outputs, r.ms);
      this.itemMs.get(stage)!.push(r.ms);
      outcome = 'processed';
      this.emit({ type: 'item', category: cat, stage, item: it.id, ok: true, ms: r.ms });
    } else {
      this.record(cat, it.id, stage, { error: r.message });
      this.failures.push({ category: cat, item: it.id, stage, error: r.message });
      outcome = 'failed';
      this.emit({ type: 'item', category: cat, stage, item: it.id, ok: false, error: r.message });
      if (this.pipeline.on_item_error === 'stop') {
        this.flush();
        throw new GpucoloError(`stage "${stage}" failed on item "${it.id}" (category "${cat}"): ${r.message} (on_item_error: stop)`, { code: 'EITEM' });
      }
    }
    for (const s of inputs) this.outputs.release(cat, it.id, s);
    return outcome;
  }

  /**
   * A stage that maps its own method is checked before any work: a method the class lacks is a
   * bad pipeline file, not a failure halfway through the run.
   */
  async checkCalls(work: RemainingWork): Promise<void> {
    for (const s of this.pipeline.stages) {
      if (s.call && hasWork(work, s.name)) await this.hosts.hostFor(s.name);
    }
  }

  /** --calibrate: one load and unload of each model with work left, measured before the run. */
  async calibrate(work: RemainingWork): Promise<void> {
    const cal: SwapRecord[] = [];
    for (const s of this.pipeline.stages) {
      if (!hasWork(work, s.name)) continue;
      if (this.aborted()) throw new Interrupted();
      const h = await this.hosts.hostFor(s.name);
      let l;
      let u;
      try {
        l = await h.load();
        u = await h.unload();
      } catch (err) {
        if (this.killed()) throw new Interrupted();
        throw new GpucoloError(`cannot load the model of stage "${s.name}" (calibration): ${oneLine(err).replace(/^stage "[^"]*" (load|unload|start|init): /, '')}`, { code: 'ELOAD' });
      }
      cal.push({ kind: 'load', stage: s.name, ms: l.ms }, { kind: 'unload', stage: s.name, ms: u.ms });
      this.emit({ type: 'load', stage: s.name, ms: l.ms, memoryMB: l.memoryBytes === null ? null : l.memoryBytes / (1024 * 1024) });
      this.emit({ type: 'unload', stage: s.name, ms: u.ms });
      if (!this.memMB.has(s.name) && l.memoryBytes !== null) this.memMB.set(s.name, l.memoryBytes / (1024 * 1024));
      this.loadedOnce.add(s.name);
    }
    this.timesBefore = swapTimesOf(cal, 'measured before the run (--calibrate)') ?? this.timesBefore;
    this.calibration.push(...cal);
  }

  /** A load step; true when the load measured a model of unknown size, so the rest is to be re-planned. */
  async loadStep(stage: string): Promise<boolean> {
    const { resident, loadedMB } = this.hosts;
    if (resident.has(stage)) return false;
    let r;
    try {
      const h = await this.hosts.hostFor(stage);
      r = await h.load();
    } catch (err) {
      if (this.killed()) throw new Interrupted();
      throw new GpucoloError(`cannot load the model of stage "${stage}": ${oneLine(err).replace(/^stage "[^"]*" (load|start|init): /, '')}`, { code: 'ELOAD' });
    }
    resident.add(stage);
    const mb = r.memoryBytes === null ? undefined : r.memoryBytes / (1024 * 1024);
    const shownMB = mb !== undefined ? Math.round(mb * 10) / 10 : undefined;
    if (shownMB !== undefined) loadedMB.set(stage, shownMB);
    else loadedMB.delete(stage);
    this.swaps.push({ kind: 'load', stage, ms: r.ms, ...(shownMB !== undefined ? { memoryMB: shownMB } : {}) });
    this.emit({ type: 'load', stage, ms: r.ms, memoryMB: mb ?? null });
    const first = !this.loadedOnce.has(stage);
    this.loadedOnce.add(stage);
    if (!first || this.memMB.has(stage)) return false;
    if (mb === undefined) {
      this.warn(`stage ${stage}: the model reported no memory use (no memory() method and no CUDA): it stays planned as the whole GPU budget; set memory_mb to plan it with others`);
      return false;
    }
    this.memMB.set(stage, mb);
    return true;
  }

  async unloadStep(stage: string): Promise<void> {
    const { resident, loadedMB, hosts } = this.hosts;
    if (!resident.has(stage)) return;
    const h = hosts.get(stage)!;
    let r;
    try {
      r = await h.unload();
    } catch (err) {
      if (this.killed()) throw new Interrupted();
      throw err;
    }
    resident.delete(stage);
    const movedMB = loadedMB.get(stage);
    this.swaps.push({ kind: 'unload', stage, ms: r.ms, ...(movedMB !== undefined ? { memoryMB: movedMB } : {}) });
    this.emit({ type: 'unload', stage, ms: r.ms });
  }

  /** The plan's steps in order; re-planned from the start when a load measures a model's size. */
  async runPlan(): Promise<void> {
    let plan = this.makePlan();
    let i = 0;
    while (i < plan.steps.length) {
      if (this.aborted()) throw new Interrupted();
      const step = plan.steps[i++];
      if (step.kind === 'load') {
        if (await this.loadStep(step.stage)) {
          plan = this.makePlan();
          i = 0;
        }
      } else if (step.kind === 'unload') await this.unloadStep(step.stage);
      else await this.processStep(step);
    }
  }

  /** The whole run; an error ends it as stopped or interrupted, with the hosts and journal closed. */
  async execute(): Promise<void> {
    try {
      const work = remainingWork(this.pipeline, this.cats, this.outputs.done);
      await this.checkCalls(work);
      if (this.opts.calibrate) await this.calibrate(work);
      await this.runPlan();
    } catch (err) {
      this.noteFailure(err);
    } finally {
      this.opts.killSignal?.removeEventListener('abort', this.onKill);
      try {
        this.journal.close();
      } catch (err) {
        this.warnings.push(`journal: ${oneLine(err)}`);
      }
      await this.hosts.closeAll(this.killed());
      this.dispose();
    }
  }

  noteFailure(err: unknown): void {
    if (err instanceof GpucoloError && err.code === 'EBADCONFIG') {
      this.badConfig = err;
      this.status = 'stopped';
      this.error = oneLine(err);
    } else if (err instanceof Interrupted || this.killed()) {
      this.status = 'interrupted';
      this.error = this.killed() ? 'interrupted (model hosts killed)' : 'interrupted';
    } else {
      this.status = 'stopped';
      this.error = oneLine(err);
    }
  }

  report(): StagedReport {
    const { outputs, lastChoice, comparison } = this;
    return buildReport({
      pipeline: this.pipeline,
      file: this.absFile,
      outputDir: this.outDir,
      journalFile: this.jfile,
      cats: this.cats,
      status: this.status,
      error: this.error,
      startedAt: this.startedAt,
      finishedAt: new Date(),
      plan: this.firstPlan,
      plans: this.plansMade,
      swaps: this.swaps,
      itemMs: this.itemMs,
      failuresThisRun: this.failures,
      skippedForFailedInputs: Object.fromEntries(this.skippedDeps),
      warnings: this.warnings,
      resumedRecords: this.resumedRecords,
      spilled: outputs.spilled,
      reloaded: outputs.reloaded,
      freed: outputs.freed,
      ...(lastChoice ? { strategy: { requested: this.strategy, used: lastChoice.used, reason: lastChoice.reason } } : {}),
      ...(comparison
        ? { swapSavings: swapSavings(comparison.perItem.steps, comparison.staged.steps, this.timesBefore, swapTimesOf([...this.calibration, ...this.swaps], 'measured in this run')) }
        : {}),
      outputOf: (c, i, s) => outputs.reportValue(c, i, s),
    });
  }

  /** The report, written unless the run failed before recording anything; a bad pipeline file is thrown. */
  finish(): StagedReport {
    const report = this.report();
    // A run that failed before recording anything (a model that does not start, a broken host)
    // has nothing to resume or report beyond its error: leave no journal header, report or
    // directory of its own behind. (An interrupted run keeps them: it is resumed.)
    const nothingDone = this.status === 'stopped' && this.recordedThisRun === 0 && this.resumedRecords === 0 && this.newJournal;
    if (nothingDone) {
      fs.rmSync(this.jfile, { force: true });
      removeEmptyDirs(this.createdDirs);
    }
    if (this.badConfig) throw this.badConfig;
    if (nothingDone) {
      // nothing to write
    } else if (this.opts.writeReport !== false) writeReport(report, this.outDir);
    return report;
  }
}

export async function runStaged(file: string, opts: RunStagedOptions = {}): Promise<StagedReport> {
  const run = new StagedRun(file, opts);
  await run.execute();
  return run.finish();
}
