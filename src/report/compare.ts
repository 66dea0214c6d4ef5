/**
 * Two results.json files side by side: the same phases and tasks matched by name, P50/P99/P99.9
 * and throughput A vs B with the ratio B/A, and whether a P99 change is outside the noise (the two
 * 95% CIs do not overlap) or inside it. Phases and tasks only one file has are listed, never
 * silently dropped; success rows are compared pass against pass.
 */
import { z } from 'zod';
import { GpucoloError, errnoCode } from '../errors.js';
import { InputFileError, readInputText } from '../input-file.js';
import { RESULTS_SCHEMA, type PhaseResult, type Results, type TaskResult } from '../scenario/types.js';
import { fmtNum, fmtPass, fmtRatio } from './format.js';

export interface MetricPair {
  a: number | null;
  b: number | null;
  /** b / a; null when either is missing or a is 0 */
  ratio: number | null;
}

/** A latency percentile A vs B; `unsupported`: that file's sample is too small for the percentile. */
export interface LatencyPair extends MetricPair {
  unsupported: { a: boolean; b: boolean };
  /** the value is a censored lower bound in that file (requests unfinished when its phase stopped waiting) */
  lowerBound: { a: boolean; b: boolean };
}

/**
 * significant: the P99 CIs do not overlap; within noise: they do; no CI: a sample was too small
 * for one (or a censored value made its upper end unknown).
 */
export type P99Change = 'significant' | 'within noise' | 'no CI';

export interface CompareRow {
  phase: string;
  task: string;
  p50: LatencyPair;
  p99: LatencyPair & { ciA: [number, number] | null; ciB: [number, number] | null; change: P99Change };
  p999: LatencyPair;
  throughput: MetricPair;
}

export interface CompareMissing {
  /** which file has it */
  in: 'a' | 'b';
  phase: string;
  /** absent: the whole phase is missing from the other file */
  task?: string;
}

export interface CompareSuccess {
  row: string;
  /** undefined: the row is not in that file */
  a: boolean | null | undefined;
  b: boolean | null | undefined;
}

export interface Comparison {
  rows: CompareRow[];
  missing: CompareMissing[];
  /** phases both files have but with a different status ("corun:gate: ok in A, failed in B") */
  statusChanges: { phase: string; a: PhaseResult['status']; b: PhaseResult['status'] }[];
  success: CompareSuccess[];
  /** the per-metric table as text cells, for an aligned text table (the CLI's table()) */
  table: { header: string[]; rows: string[][] };
  /** the text around the table: what A and B are (intro), then the summary lines */
  intro: string[];
  lines: string[];
}

function pair(a: number | null | undefined, b: number | null | undefined): MetricPair {
  const x = typeof a === 'number' && Number.isFinite(a) ? a : null;
  const y = typeof b === 'number' && Number.isFinite(b) ? b : null;
  return { a: x, b: y, ratio: x !== null && y !== null && x !== 0 ? y / x : null };
}

function latencyPair(a: TaskResult, b: TaskResult, key: 'p50' | 'p99' | 'p999'): LatencyPair {
  return {
    ...pair(a.latencyMs[key], b.latencyMs[key]),
    unsupported: { a: a.latencyMs.unsupported.includes(key), b: b.latencyMs.unsupported.includes(key) },
    lowerBound: { a: (a.latencyMs.censoredAtOrAbove ?? []).includes(key), b: (b.latencyMs.censoredAtOrAbove ?? []).includes(key) },
  };
}

/** "ok", "noisy (share-above-standalone, host-interference)", "not recorded" (files from before the quality block) */
function qualityWords(r: Results): string {
  const q = r.quality;
  if (!q) return 'not recorded';
  if (q.verdict === 'ok') return 'ok';
  return `noisy (${[...new Set(q.warnings.map((w) => w.code))].join(', ')})`;
}

function p99Change(ciA: [number, number] | null, ciB: [number, number] | null): P99Change {
  if (!ciA || !ciB) return 'no CI';
  return ciA[0] <= ciB[1] && ciB[0] <= ciA[1] ? 'within noise' : 'significant';
}

function compareTask(phase: string, a: TaskResult, b: TaskResult): CompareRow {
  const ciA = a.latencyMs.unsupported.includes('p99') ? null : a.latencyMs.ci99;
  const ciB = b.latencyMs.unsupported.includes('p99') ? null : b.latencyMs.ci99;
  return {
    phase,
    task: a.name,
    p50: latencyPair(a, b, 'p50'),
    p99: { ...latencyPair(a, b, 'p99'), ciA, ciB, change: p99Change(ciA, ciB) },
    p999: latencyPair(a, b, 'p999'),
    throughput: pair(a.throughput, b.throughput),
  };
}

function describe(r: Results): string {
  return `${r.scenario.name}, ${r.scenario.form} on ${r.backend.name}${r.backend.gpu ? ` (${r.backend.gpu})` : ''}${r.backend.engine === 'ts' ? ' (pure-TS engine)' : ''}, ${r.host.hostname}, ${r.createdAt}${r.partial ? ', PARTIAL' : ''}`;
}

function tableCells(rows: CompareRow[]): Comparison['table'] {
  const out: string[][] = [];
  const ci = (c: [number, number] | null): string => (c ? `${fmtNum(c[0])}-${fmtNum(c[1])}` : '-');
  for (const r of rows) {
    const val = (v: number | null, unsupported: boolean | undefined, lowerBound: boolean | undefined): string => {
      const text = `${lowerBound && v !== null ? '>=' : ''}${fmtNum(v)}`;
      return unsupported && v !== null ? `(${text})` : text;
    };
    const metric = (label: string, m: MetricPair & Partial<LatencyPair>, note = ''): string[] => [
      r.phase,
      r.task,
      label,
      val(m.a, m.unsupported?.a, m.lowerBound?.a),
      val(m.b, m.unsupported?.b, m.lowerBound?.b),
      fmtRatio(m.ratio),
      note,
    ];
    out.push(metric('P50 ms', r.p50));
    out.push(metric('P99 ms', r.p99, `${r.p99.change}${r.p99.change === 'no CI' ? '' : ` (CI ${ci(r.p99.ciA)} vs ${ci(r.p99.ciB)})`}`));
    out.push(metric('P99.9 ms', r.p999));
    out.push(metric('throughput/s', r.throughput));
  }
  return { header: ['phase', 'task', 'metric', 'A', 'B', 'B/A', 'P99 change'], rows: out };
}

/**
 * Compares two runs. `labels` name A and B in the text (default "A" and "B"); the CLI passes
 * the file paths.
 */
export function compareResults(a: Results, b: Results, labels: { a: string; b: string } = { a: 'A', b: 'B' }): Comparison {
  const rows: CompareRow[] = [];
  const missing: CompareMissing[] = [];
  const statusChanges: Comparison['statusChanges'] = [];
  const phasesB = new Map(b.phases.map((p) => [p.name, p]));
  for (const pa of a.phases) {
    const pb = phasesB.get(pa.name);
    if (!pb) {
      missing.push({ in: 'a', phase: pa.name });
      continue;
    }
    if (pa.status !== pb.status) statusChanges.push({ phase: pa.name, a: pa.status, b: pb.status });
    const tasksB = new Map(pb.tasks.map((t) => [t.name, t]));
    for (const ta of pa.tasks) {
      const tb = tasksB.get(ta.name);
      if (tb) rows.push(compareTask(pa.name, ta, tb));
      else missing.push({ in: 'a', phase: pa.name, task: ta.name });
    }
    for (const tb of pb.tasks) if (!pa.tasks.some((t) => t.name === tb.name)) missing.push({ in: 'b', phase: pb.name, task: tb.name });
  }
  for (const pb of b.phases) if (!a.phases.some((p) => p.name === pb.name)) missing.push({ in: 'b', phase: pb.name });

  const success: CompareSuccess[] = [];
  for (const s of a.success) success.push({ row: s.row, a: s.pass, b: b.success.find((x) => x.row === s.row)?.pass });
  for (const s of b.success) if (!a.success.some((x) => x.row === s.row)) success.push({ row: s.row, a: undefined, b: s.pass });

  const intro = [`A: ${labels.a} (${describe(a)})`, `B: ${labels.b} (${describe(b)})`];
  if (a.scenario.name !== b.scenario.name) intro.push(`note: different scenarios (${a.scenario.name} vs ${b.scenario.name})`);
  if (a.quality || b.quality || a.rounds || b.rounds) {
    intro.push(`quality: A ${qualityWords(a)}, B ${qualityWords(b)}; rounds: A ${a.rounds ?? 1}, B ${b.rounds ?? 1}`);
    if (a.quality?.verdict === 'noisy' || b.quality?.verdict === 'noisy') intro.push('note: a noisy run\'s differences may be the host\'s, not the change between the runs');
  }
  const lines: string[] = [];
  const sig = rows.filter((r) => r.p99.change === 'significant').length;
  const noise = rows.filter((r) => r.p99.change === 'within noise').length;
  lines.push(`P99: ${sig} significant change(s), ${noise} within noise, ${rows.length - sig - noise} without a CI (sample too small).`);
  if (rows.some((r) => [r.p50, r.p99, r.p999].some((m) => m.unsupported.a || m.unsupported.b))) {
    lines.push('(values): the sample is too small to support that percentile.');
  }
  if (rows.some((r) => [r.p50, r.p99, r.p999].some((m) => m.lowerBound.a || m.lowerBound.b))) {
    lines.push('>=values: lower bounds (requests unfinished when the phase stopped waiting are counted at their age then).');
  }
  for (const s of statusChanges) lines.push(`${s.phase}: ${s.a} in A, ${s.b} in B`);
  for (const m of missing) lines.push(`only in ${m.in.toUpperCase()}: ${m.task === undefined ? `phase ${m.phase}` : `task ${m.task} in ${m.phase}`}`);
  const passText = (p: boolean | null | undefined): string => (p === undefined ? 'absent' : fmtPass(p));
  if (success.length) {
    lines.push('success rows (A -> B):');
    for (const s of success) lines.push(`  ${s.row}: ${passText(s.a)} -> ${passText(s.b)}${s.a !== s.b ? '  (changed)' : ''}`);
  }
  return { rows, missing, statusChanges, success, table: tableCells(rows), intro, lines };
}

// ------------------------------------------------------------------------------------ loading

const num = z.number().nullable();
/** Only what compare and the report rely on; the rest of the file is taken as written. */
const resultsShape = z.object({
  schema: z.string(),
  gpucoloVersion: z.string(),
  createdAt: z.string(),
  partial: z.boolean(),
  scenario: z.object({ name: z.string(), form: z.string() }),
  host: z.object({ hostname: z.string() }),
  backend: z.object({ name: z.string() }),
  phases: z.array(
    z.object({
      name: z.string(),
      status: z.string(),
      tasks: z.array(
        z.object({
          name: z.string(),
          throughput: z.number(),
          latencyMs: z.object({ n: z.number(), p50: num, p99: num, p999: num, ci99: z.tuple([z.number(), z.number()]).nullable(), unsupported: z.array(z.string()) }),
        }),
      ),
    }),
  ),
  success: z.array(z.object({ row: z.string(), pass: z.boolean().nullable() })),
});

function badResults(file: string, what: string): GpucoloError {
  return new GpucoloError(`${file}: ${what}`, { code: 'EBADRESULTS', path: file });
}

/**
 * Reads and checks a results.json. Errors: ENOENT (and other read errors, Node's code kept),
 * EBADRESULTS for bad JSON (with the parse position), another schema, or a wrong shape; all
 * with one line naming the file.
 */
export function loadResults(file: string): Results {
  let text: string;
  try {
    text = readInputText(file, { kind: 'result' });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    const what = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a results.json' : err instanceof InputFileError ? err.reason : (err as Error).message.split('\n')[0];
    throw new GpucoloError(`cannot read ${file}: ${what}`, { code, path: file });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw badResults(file, `not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const schema = (data as { schema?: unknown } | null)?.schema;
  if (schema !== RESULTS_SCHEMA) {
    throw badResults(file, `not a gpucolo results file (schema ${schema === undefined ? 'missing' : JSON.stringify(schema)}, expected "${RESULTS_SCHEMA}")`);
  }
  const r = resultsShape.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw badResults(file, `bad results: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  }
  return data as Results;
}
