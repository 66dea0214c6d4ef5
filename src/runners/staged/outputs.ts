/**
 * Where runStaged (runner.ts) keeps each recorded output: in memory up to budgets.cpu_memory_mb,
 * else spilled to <output_dir>/intermediate; and the predicates on journal values it needs.
 * Private to the staged runner: runner.ts re-exports the public names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode } from '../../errors.js';
import { InputFileError, readInputText } from '../../input-file.js';
import { writeFileAtomic } from '../../report/index.js';
import { makeDirs } from '../../fs-dirs.js';
import { key } from './journal.js';
import { stageInputs, type Pipeline } from './schema.js';

/** The journal value of an item that failed. */
export const isErrorOutput = (o: unknown): o is { error: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { error?: unknown }).error === 'string';
/** A spilled output: {file} relative to output_dir. */
export const isFileRef = (o: unknown): o is { file: string } =>
  !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === 1 && typeof (o as { file?: unknown }).file === 'string';

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

/**
 * Where each recorded (category, item, stage) output lives: in memory up to
 * budgets.cpu_memory_mb (JSON size), else spilled to <output_dir>/intermediate; an output leaves
 * memory as soon as no stage left to run reads it.
 */
export class StagedOutputs {
  /**
   * Every recorded (category, item, stage): a journal value ({error}, {file}, or the last stage's
   * numeric fields), IN_MEMORY (the output is in `mem`) or FREED (no reader is left).
   */
  readonly done = new Map<string, unknown>();
  private readonly mem = new Map<string, { value: unknown; bytes: number }>();
  private memBytes = 0;
  private readonly cpuBudget: number;
  spilled = 0;
  reloaded = 0;
  freed = 0;
  // PNG files (relative to output_dir) an intermediate output refers to: removed once no stage
  // left to run reads them, unless save_intermediate (the last stage's images are results: kept)
  private readonly imagesOf = new Map<string, string[]>();
  readonly stageIdx: Map<string, number>;
  readonly lastStage: string;
  readonly inputsOf: Map<string, string[]>;
  private readonly readersOf: Map<string, string[]>;
  private readonly interDir: string;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly outDir: string,
    private readonly jfile: string,
  ) {
    this.stageIdx = new Map(pipeline.stages.map((s, i) => [s.name, i]));
    this.lastStage = pipeline.stages[pipeline.stages.length - 1].name;
    this.inputsOf = new Map(pipeline.stages.map((s, i) => [s.name, stageInputs(pipeline, i)]));
    this.readersOf = new Map<string, string[]>(pipeline.stages.map((s) => [s.name, []]));
    for (const [stage, ins] of this.inputsOf) for (const s of ins) this.readersOf.get(s)!.push(stage);
    this.cpuBudget = pipeline.budgets.cpu_memory_mb * 1024 * 1024;
    this.interDir = path.join(outDir, 'intermediate');
  }

  /** Bytes of outputs held in memory now. */
  get memoryBytes(): number {
    return this.memBytes;
  }

  /** (cat, id, stage)'s output is still to be read: a reader of it has not run and can run. */
  stillRead(cat: string, id: string, stage: string): boolean {
    return this.readersOf
      .get(stage)!
      .some((r) => !this.done.has(key(cat, id, r)) && this.inputsOf.get(r)!.every((s) => !isErrorOutput(this.done.get(key(cat, id, s)))));
  }

  private keep(k: string, value: unknown, bytes: number): void {
    this.mem.set(k, { value, bytes });
    this.memBytes += bytes;
    this.done.set(k, IN_MEMORY);
  }

  private noteImages(k: string, stage: string, output: unknown): void {
    if (stage === this.lastStage || this.pipeline.budgets.save_intermediate) return;
    const files = imageFiles(output);
    if (files.length) this.imagesOf.set(k, files);
  }

  /** Frees (cat, id, stage)'s output and its images once no stage left to run reads it. */
  release(cat: string, id: string, stage: string): void {
    const k = key(cat, id, stage);
    if (this.stillRead(cat, id, stage)) return;
    for (const f of this.imagesOf.get(k) ?? []) {
      const abs = path.resolve(this.outDir, f);
      if (!path.relative(this.outDir, abs).startsWith('..')) fs.rmSync(abs, { force: true });
    }
    this.imagesOf.delete(k);
    const m = this.mem.get(k);
    if (!m) return;
    this.mem.delete(k);
    this.memBytes -= m.bytes;
    this.done.set(k, FREED);
    this.freed++;
  }

  /** Resumed records: keep in memory only what a stage left to run reads. */
  restore(records: Map<string, { output: unknown }>): void {
    for (const [k, v] of records) this.done.set(k, v.output);
    for (const [k, v] of records) {
      const o = v.output;
      if (isErrorOutput(o) || isFileRef(o)) continue;
      const [cat, id, stage] = k.split('\u0000');
      if (!this.stageIdx.has(stage)) continue;
      this.noteImages(k, stage, o);
      if (stage === this.lastStage) this.done.set(k, numericFields(o));
      else if (this.stillRead(cat, id, stage)) this.keep(k, o, Buffer.byteLength(JSON.stringify(o) ?? 'null'));
      else this.done.set(k, FREED);
    }
  }

  /** Takes a new output (or {error}) of (cat, id, stage); returns what the journal records for it. */
  store(cat: string, id: string, stage: string, output: unknown): unknown {
    const k = key(cat, id, stage);
    if (isErrorOutput(output)) {
      this.done.set(k, output);
      return output;
    }
    let jout = output;
    this.noteImages(k, stage, output);
    const json = JSON.stringify(output) ?? 'null';
    const bytes = Buffer.byteLength(json);
    const read = this.readersOf.get(stage)!.length > 0;
    const inMemory = read && this.memBytes + bytes <= this.cpuBudget;
    if ((read && !inMemory) || bytes > INLINE_OUTPUT_MAX_BYTES || this.pipeline.budgets.save_intermediate) {
      jout = { file: this.writeSpill(stage, cat, id, json) };
      if (read && !inMemory) this.spilled++;
    }
    if (inMemory) this.keep(k, output, bytes);
    else if (stage === this.lastStage) this.done.set(k, numericFields(output));
    else this.done.set(k, read ? jout : FREED);
    return jout;
  }

  private writeSpill(stage: string, cat: string, id: string, json: string): string {
    const f = path.join(this.interDir, stage, encodeURIComponent(cat), `${encodeURIComponent(id)}.json`);
    makeDirs(path.dirname(f));
    // write-temp + fsync + rename: the journal record that points here is only written after
    writeFileAtomic(f, `${json}\n`);
    return path.relative(this.outDir, f);
  }

  /** a spilled output named by the journal: only inside output_dir, as one clear error otherwise */
  private readSpill(ref: string, cat: string, id: string, stage: string): unknown {
    const { outDir, jfile } = this;
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
  }

  /** the output of (cat, id, stage), from memory, a spilled file, or the journal */
  outputOf(cat: string, id: string, stage: string): unknown {
    const k = key(cat, id, stage);
    const o = this.done.get(k);
    if (o === IN_MEMORY) return this.mem.get(k)!.value;
    if (o === FREED) throw new GpucoloError(`internal: the output of ${stage} for item "${id}" (category "${cat}") was released while still needed`, { code: 'EINTERNAL' });
    if (isFileRef(o)) {
      this.reloaded++;
      return this.readSpill(o.file, cat, id, stage);
    }
    return o;
  }

  /** What the report reads of (cat, id, stage): undefined when not done, null when done and freed. */
  reportValue(cat: string, id: string, stage: string): unknown {
    const o = this.done.get(key(cat, id, stage));
    if (o === undefined || isErrorOutput(o)) return o;
    if (o === FREED) return null; // done; not the last stage, which keeps its numbers
    try {
      return this.outputOf(cat, id, stage);
    } catch {
      return undefined;
    }
  }
}
