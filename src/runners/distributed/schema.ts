/**
 * The result file workloads/dist_train.py writes on rank 0 ("gpucolo.distributed-result/1"),
 * validated with zod, and the file names the runner gives each method's result.
 *
 * Times in the result are seconds (train_time, avg_batch_time, avg_comm_time*); throughput is
 * samples/s; accuracies are whatever the script reports (fractions or percent, kept as given).
 * Values a method cannot have (pull/push for all-reduce, all-reduce for PS, comm time for DDP,
 * whose all-reduce overlaps backward) are null or absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { GpucoloError } from '../../errors.js';
import { InputFileError, REFUSED_INPUT_CODES, readInputText } from '../../input-file.js';
import { elidedPaths, parseNotesResult, replaceElided, type NotesResult } from './notes-format.js';

export const DIST_RESULT_SCHEMA = 'gpucolo.distributed-result/1';
export const DIST_RUN_SCHEMA = 'gpucolo.distributed-run/1';

export const METHODS = ['ddp', 'allreduce', 'ps'] as const;
export type DistMethod = (typeof METHODS)[number];
export const PS_IMPLS = ['naive', 'flat'] as const;
export type PsImpl = (typeof PS_IMPLS)[number];
/** ps: colocated = rank 0 serves and computes (gpucolo's default); dedicated = rank 0 only serves (the design notes' layout) */
export const PS_TOPOLOGIES = ['colocated', 'dedicated'] as const;
export type PsTopologyName = (typeof PS_TOPOLOGIES)[number];

/** results_baseline_ddp.json, results_all_reduce.json, results_ps.json */
const RESULT_FILES: Record<DistMethod, string> = {
  ddp: 'results_baseline_ddp.json',
  allreduce: 'results_all_reduce.json',
  ps: 'results_ps.json',
};

/** The result file name of a method (in the run's output directory). */
export function resultFileName(method: DistMethod): string {
  const f = RESULT_FILES[method];
  if (!f) throw new GpucoloError(`unknown method "${String(method)}" (${METHODS.join(', ')})`, { code: 'EBADCONFIG' });
  return f;
}

/** The method whose standard result file this is, or null for any other name. */
export function methodOfFile(name: string): DistMethod | null {
  for (const m of METHODS) if (RESULT_FILES[m] === name) return m;
  return null;
}

/** run_<method>.json: the runner's manifest next to the result. */
export const manifestFileName = (method: DistMethod): string => `run_${method}.json`;

const num = z.number().finite();
const optNum = num.nullable().optional();
/** epoch seconds, or an ISO time */
const timeValue = z.union([num, z.string().min(1)]);

export const epochSchema = z.looseObject({
  epoch: z.number().int().nonnegative(),
  train_loss: num.nullable(),
  train_accuracy: num.nullable(),
  train_time: num.nonnegative(),
  train_throughput: num.nonnegative().nullable(),
  avg_batch_time: num.nonnegative().nullable(),
  val_loss: optNum,
  val_accuracy: optNum,
  /** s/step, step time minus comm, max over ranks */
  avg_compute_time: optNum,
  avg_comm_time: optNum,
  avg_comm_time_pull: optNum,
  avg_comm_time_push: optNum,
});

export const summarySchema = z.looseObject({
  avg_train_throughput: num.nonnegative().nullable(),
  avg_train_time_per_epoch: num.nonnegative().nullable(),
  best_val_accuracy: optNum,
  final_train_accuracy: optNum,
  avg_comm_time: optNum,
  avg_comm_time_pull: optNum,
  avg_comm_time_push: optNum,
});

export const distributedResultSchema = z.looseObject({
  schema: z.literal(DIST_RESULT_SCHEMA),
  method: z.enum(METHODS),
  ps_impl: z.string().nullable().optional(),
  /** ps: "colocated" (rank 0 serves and computes) or "dedicated" (rank 0 only serves); absent in older files = colocated */
  ps_topology: z.enum(['colocated', 'dedicated']).nullable().optional(),
  bucket_mb: num.nullable().optional(),
  model: z.string(),
  backend: z.string(),
  device: z.string(),
  world_size: z.number().int().positive(),
  /** ps: the ranks that compute (world size when colocated, world size - 1 when dedicated); null for the others */
  num_workers: z.number().int().nonnegative().nullable().optional(),
  batch_size: z.number().int().positive(),
  global_batch: z.number().int().positive(),
  lr: num,
  seed: z.number().int(),
  torch: z.string(),
  start_time: timeValue,
  end_time: timeValue,
  epochs: z.array(epochSchema),
  summary: summarySchema,
  all_losses: z.array(num.nullable()),
  steps: z.number().int().nonnegative(),
});

export type DistributedEpoch = z.infer<typeof epochSchema>;
export type DistributedSummary = z.infer<typeof summarySchema>;
export type DistributedResult = z.infer<typeof distributedResultSchema>;

function issuesText(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
    .join('; ') + (err.issues.length > 3 ? `; and ${err.issues.length - 3} more` : '');
}

/** Validates a parsed result; `file` names it in the error. */
export function parseDistributedResult(value: unknown, file = 'result'): DistributedResult {
  const parsed = distributedResultSchema.safeParse(value);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid distributed result: ${issuesText(parsed.error)}`, { code: 'EBADRESULT', path: file });
  return parsed.data;
}

/** Reads and validates a result file; every failure is a GpucoloError with one line naming it. */
export function loadDistributedResult(file: string): DistributedResult {
  const r = loadAnyResult(file);
  if (r.format !== 'gpucolo') throw new GpucoloError(`${file}: invalid distributed result: schema: expected "${DIST_RESULT_SCHEMA}" (this is the design notes' format: gpucolo distributed analyze reads it)`, { code: 'EBADRESULT', path: file });
  return r.result;
}

/** Which format a result file was in: gpucolo's own (schema field) or the design notes' scripts' (no schema field). */
export type ResultFormat = 'gpucolo' | 'notes';
export const RESULT_FORMAT_TEXT: Record<ResultFormat, string> = {
  gpucolo: `gpucolo's format (${DIST_RESULT_SCHEMA})`,
  notes: "the design notes' format (baseline_multi_card.py / all_reduce_train.py / ps_train.py)",
};

export type LoadedResult =
  | { format: 'gpucolo'; method: DistMethod; result: DistributedResult; elided: [] }
  | { format: 'notes'; method: DistMethod; result: NotesResult; elided: string[] };

/**
 * Reads a result in either format: a "schema" field means gpucolo's (validated strictly, an
 * unknown schema is refused), none means the design notes' scripts' (see notes-format.ts; a
 * literal `[...]` there is an elided list, read as absent).
 */
export function loadAnyResult(file: string): LoadedResult {
  let text: string;
  try {
    text = readInputText(file, { kind: 'result' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new GpucoloError(`${file}: cannot read (${err instanceof InputFileError && REFUSED_INPUT_CODES.has(code) ? `${code}: ${err.reason}` : code})`, { code, path: file });
  }
  let value: unknown;
  let elidedCount = 0;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // the notes' examples write elided lists as [...]: read those as absent, nothing else
    const fixed = replaceElided(text);
    let ok = false;
    if (fixed.count > 0) {
      try {
        value = JSON.parse(fixed.text);
        elidedCount = fixed.count;
        ok = true;
      } catch {
        // fall through to the original error
      }
    }
    if (!ok) throw new GpucoloError(`${file}: not JSON (${(err as Error).message.split('\n')[0]})`, { code: 'EBADRESULT', path: file });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new GpucoloError(`${file}: invalid distributed result: (top level): expected an object`, { code: 'EBADRESULT', path: file });
  const obj = value as Record<string, unknown>;
  if ('schema' in obj) {
    if (elidedCount > 0) throw new GpucoloError(`${file}: not JSON ([...] is only accepted in the design notes' format, which has no "schema" field)`, { code: 'EBADRESULT', path: file });
    const result = parseDistributedResult(value, file);
    return { format: 'gpucolo', method: result.method, result, elided: [] };
  }
  const { result, method } = parseNotesResult(value, file);
  return { format: 'notes', method, result, elided: elidedCount > 0 ? elidedPaths(obj) : [] };
}

/** Seconds between the result's start_time and end_time (epoch seconds or ISO), or null. */
export function scriptSeconds(r: Pick<DistributedResult, 'start_time' | 'end_time'>): number | null {
  const t = (v: number | string): number => (typeof v === 'number' ? v : Date.parse(v) / 1000);
  const s = t(r.end_time) - t(r.start_time);
  return Number.isFinite(s) && s >= 0 ? s : null;
}

/** results_*.json in a directory, standard names first (ddp, allreduce, ps), then the rest by name. */
export function listResultFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new GpucoloError(`${dir}: cannot read the directory (${code})`, { code, path: dir });
  }
  const found = names.filter((n) => /^results_.+\.json$/.test(n));
  const rank = (n: string): number => {
    const m = methodOfFile(n);
    return m ? METHODS.indexOf(m) : METHODS.length;
  };
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((n) => path.join(dir, n));
}
