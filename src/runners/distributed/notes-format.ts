/**
 * The result files of the design notes' own scripts (baseline_multi_card.py, all_reduce_train.py,
 * ps_train.py): results_baseline_ddp.json, results_all_reduce.json, results_ps.json with
 * "method": "Baseline DDP (PyTorch)" / "Manual All-Reduce" / "Parameter Server (PS)", no
 * "schema" field, per-epoch records, a summary, and the per-step losses either at the top level
 * ("all_losses": DDP, PS) or per epoch (epochs[].all_losses: all-reduce).
 *
 * What is read: method, world_size, batch_size (per process, per worker for PS), num_workers (PS;
 * world_size - 1 when absent: rank 0 only serves in the notes' layout), start_time/end_time
 * (optional, "YYYY-MM-DD HH:MM:SS" or ISO), epochs[] (epoch, train_loss, train_accuracy,
 * train_time, train_throughput, avg_batch_time, val_loss, val_accuracy, avg_comm_time,
 * avg_comm_time_pull, avg_comm_time_push, all_losses), summary (avg_train_throughput,
 * avg_train_time_per_epoch, best_val_accuracy, final_train_accuracy, avg_comm_time*). Times are
 * seconds, throughput images/s, accuracies percent, as in the notes. Anything else is kept but
 * not used.
 *
 * The notes' examples write elided lists as a literal `[...]`; such a file is read with those
 * lists taken as absent (and the analysis says which were elided) rather than refused as
 * "not JSON", so the notes' examples can be analyzed as written.
 */
import { z } from 'zod';
import { GpucoloError } from '../../errors.js';
import type { DistMethod } from './schema.js';

/** The notes' method names: the display names of the three methods everywhere in reports and plots. */
export const METHOD_DISPLAY: Record<DistMethod, string> = {
  ddp: 'Baseline DDP (PyTorch)',
  allreduce: 'Manual All-Reduce',
  ps: 'Parameter Server (PS)',
};

/** The method of one of the notes' names (exact, or ignoring case and spacing), or null. */
export function methodOfDisplayName(name: string): DistMethod | null {
  const norm = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ').trim();
  for (const [m, d] of Object.entries(METHOD_DISPLAY) as [DistMethod, string][]) if (norm(d) === norm(name)) return m;
  return null;
}

const num = z.number().finite();
const optNum = num.nullable().optional();
const losses = z.array(num.nullable()).nullable().optional();
const timeValue = z.union([num, z.string().min(1)]).nullable().optional();

const notesEpochSchema = z.looseObject({
  epoch: z.number().int().nonnegative(),
  train_loss: optNum,
  train_accuracy: optNum,
  train_time: num.nonnegative(),
  train_throughput: num.nonnegative().nullable().optional(),
  avg_batch_time: num.nonnegative().nullable().optional(),
  val_loss: optNum,
  val_accuracy: optNum,
  avg_comm_time: optNum,
  avg_comm_time_pull: optNum,
  avg_comm_time_push: optNum,
  all_losses: losses,
});

const notesSummarySchema = z.looseObject({
  avg_train_throughput: num.nonnegative().nullable().optional(),
  avg_train_time_per_epoch: num.nonnegative().nullable().optional(),
  best_val_accuracy: optNum,
  final_train_accuracy: optNum,
  avg_comm_time: optNum,
  avg_comm_time_pull: optNum,
  avg_comm_time_push: optNum,
});

export const notesResultSchema = z.looseObject({
  method: z.string(),
  world_size: z.number().int().positive(),
  num_workers: z.number().int().nonnegative().nullable().optional(),
  batch_size: z.number().int().positive(),
  start_time: timeValue,
  end_time: timeValue,
  epochs: z.array(notesEpochSchema).min(1),
  summary: notesSummarySchema,
  all_losses: losses,
});

export type NotesResult = z.infer<typeof notesResultSchema>;

/**
 * JSON text with each literal `[...]` outside strings replaced by null; `count` says how many.
 * Only that exact placeholder (whitespace allowed inside the brackets) is touched.
 */
export function replaceElided(text: string): { text: string; count: number } {
  let out = '';
  let count = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i++;
      } else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c === '[') {
      const m = /^\[\s*\.\.\.\s*\]/.exec(text.slice(i, i + 64));
      if (m) {
        out += 'null';
        count++;
        i += m[0].length - 1;
        continue;
      }
    }
    out += c;
  }
  return { text: out, count };
}

/** Where a notes-format file said `[...]` (the lists that came back null after replaceElided). */
export function elidedPaths(raw: Record<string, unknown>): string[] {
  const out: string[] = [];
  if ('all_losses' in raw && raw.all_losses === null) out.push('all_losses');
  if (Array.isArray(raw.epochs)) {
    raw.epochs.forEach((e, i) => {
      if (e && typeof e === 'object' && 'all_losses' in e && (e as Record<string, unknown>).all_losses === null) out.push(`epochs[${i}].all_losses`);
    });
  }
  return out;
}

function issuesText(err: z.ZodError): string {
  return (
    err.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
      .join('; ') + (err.issues.length > 3 ? `; and ${err.issues.length - 3} more` : '')
  );
}

/** Validates a notes-format result; an unknown "method" names the three accepted ones. */
export function parseNotesResult(value: unknown, file = 'result'): { result: NotesResult; method: DistMethod } {
  const parsed = notesResultSchema.safeParse(value);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid result (the design notes' format, no "schema" field): ${issuesText(parsed.error)}`, { code: 'EBADRESULT', path: file });
  const method = methodOfDisplayName(parsed.data.method);
  if (!method) {
    throw new GpucoloError(`${file}: unknown "method" "${parsed.data.method}" (the notes' scripts write ${Object.values(METHOD_DISPLAY).map((d) => `"${d}"`).join(', ')})`, { code: 'EBADRESULT', path: file });
  }
  const r = parsed.data;
  if (r.num_workers !== undefined && r.num_workers !== null && r.num_workers > r.world_size) {
    throw new GpucoloError(`${file}: num_workers ${r.num_workers} > world_size ${r.world_size}`, { code: 'EBADRESULT', path: file });
  }
  return { result: r, method };
}
