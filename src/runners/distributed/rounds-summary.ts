/**
 * What rounds of distributed runs add up to, per variant: the pooled figures (every step of every
 * round: total train time over total steps, not a mean of per-round means), each round's own
 * figures, their spread (min / median / max), and the quality block: host interference during a
 * run, a variant whose rounds disagree, a run that failed. A target comparison (the bench's) that
 * rests on a flagged value, or whose rounds fall on both sides of the target, is inconclusive.
 *
 * Written as DIR/rounds.json ("gpucolo.distributed-rounds/1"), rounds_report.txt and .md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputFileError, isRefusedInput, readInputText } from '../../input-file.js';
import { GpucoloError } from '../../errors.js';
import { fmtNum, fmtRatio, writeFileAtomic } from '../../report/index.js';
import { flagged, interferenceWarnings, qualityOf, roundSpread, spreadRatio, type HostLoad, type Quality, type QualityWarning, type RoundSpread } from '../../stats/index.js';
import { writeJsonAtomic } from '../../write.js';
import type { RoundRun } from './rounds.js';
import type { DistMethod, DistributedResult } from './schema.js';

export const DIST_ROUNDS_SCHEMA = 'gpucolo.distributed-rounds/1';
export const ROUNDS_FILES = { json: 'rounds.json', txt: 'rounds_report.txt', md: 'rounds_report.md' } as const;

/**
 * Rounds of one variant whose step times differ by more than this share disagree. 10% is the
 * finest difference the comparisons claim (all-reduce within 10% of DDP): a variant whose own
 * rounds differ more than that cannot carry a claim at that resolution. (dist_train.py writes
 * per-epoch means only; with per-step times the rounds could be held to their own intervals.)
 */
export const ROUNDS_TOLERANCE = 0.1;

/** The figures the comparison is about; ms per step, samples/s. */
export interface DistFigures {
  stepMs: number | null;
  throughput: number | null;
  /** allreduce: the timed all_reduce per step */
  allreduceMs: number | null;
  /** ps */
  pullMs: number | null;
  pushMs: number | null;
  /** pull + push + all-reduce; null when none was timed (DDP: overlapped with backward) */
  commMs: number | null;
  /** throughput / DDP's throughput (per round: the same round's DDP run) */
  speedupVsDdp: number | null;
}

export interface DistRoundFigures extends DistFigures {
  round: number;
  position: number;
  dir: string;
  ok: boolean;
  error?: string;
  /** what the pooling adds up: steps and train time (s) of every epoch, samples trained */
  steps: number;
  trainS: number;
  samples: number;
  wallS: number | null;
  scriptS: number | null;
  hostLoad: HostLoad | null;
}

export interface DistVariantSummary {
  label: string;
  method: DistMethod;
  /** DDP: the all-reduce overlaps backward and is not timed */
  overlapped: boolean;
  pooled: DistFigures;
  spread: Record<keyof DistFigures, RoundSpread | null>;
  rounds: DistRoundFigures[];
}

export interface DistributedRoundsSummary {
  schema: typeof DIST_ROUNDS_SCHEMA;
  dir: string;
  rounds: number;
  /** per round, the labels in the order they ran */
  order: string[][];
  /** the DDP variant speedups are against, or null */
  baseline: string | null;
  variants: DistVariantSummary[];
  quality: Quality;
  interrupted: boolean;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const KEYS = ['stepMs', 'throughput', 'allreduceMs', 'pullMs', 'pushMs', 'commMs', 'speedupVsDdp'] as const;

interface Totals {
  steps: number;
  trainS: number;
  samples: number;
  /** comm seconds summed over steps, per kind; null when the method has none */
  allreduceS: number | null;
  pullS: number | null;
  pushS: number | null;
}

/** Sums over the epochs of a result: steps (from the epoch's count, else its time / mean step), time, samples, comm. */
function totals(r: DistributedResult): Totals {
  const t: Totals = { steps: 0, trainS: 0, samples: 0, allreduceS: null, pullS: null, pushS: null };
  const add = (k: 'allreduceS' | 'pullS' | 'pushS', perStep: unknown, n: number): void => {
    if (finite(perStep)) t[k] = (t[k] ?? 0) + perStep * n;
  };
  for (const e of r.epochs) {
    const counted = (e as { steps?: unknown }).steps;
    const n = finite(counted) ? counted : finite(e.avg_batch_time) && e.avg_batch_time > 0 ? Math.round(e.train_time / e.avg_batch_time) : 0;
    t.steps += n;
    t.trainS += e.train_time;
    t.samples += finite(e.train_throughput) ? e.train_throughput * e.train_time : 0;
    add('allreduceS', e.avg_comm_time, n);
    add('pullS', e.avg_comm_time_pull, n);
    add('pushS', e.avg_comm_time_push, n);
  }
  return t;
}

function sum(ts: Totals[]): Totals {
  const out: Totals = { steps: 0, trainS: 0, samples: 0, allreduceS: null, pullS: null, pushS: null };
  for (const t of ts) {
    out.steps += t.steps;
    out.trainS += t.trainS;
    out.samples += t.samples;
    for (const k of ['allreduceS', 'pullS', 'pushS'] as const) if (t[k] !== null) out[k] = (out[k] ?? 0) + t[k]!;
  }
  return out;
}

function figures(t: Totals, method: DistMethod): Omit<DistFigures, 'speedupVsDdp'> {
  const perStepMs = (s: number | null): number | null => (s !== null && t.steps > 0 ? (s / t.steps) * 1000 : null);
  const allreduceMs = method === 'ps' ? null : perStepMs(t.allreduceS);
  const pullMs = perStepMs(t.pullS);
  const pushMs = perStepMs(t.pushS);
  const parts = [allreduceMs, pullMs, pushMs].filter(finite);
  return {
    stepMs: t.steps > 0 ? (t.trainS / t.steps) * 1000 : null,
    throughput: t.trainS > 0 ? t.samples / t.trainS : null,
    allreduceMs,
    pullMs,
    pushMs,
    commMs: parts.length ? parts.reduce((a, b) => a + b, 0) : null,
  };
}

const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);

/** Pools the runs of every variant; `labels` gives the rows' order (the variants as asked for). */
export function summarizeRounds(i: { dir: string; rounds: number; order: string[][]; labels: string[]; runs: RoundRun[]; interrupted: boolean }): DistributedRoundsSummary {
  const ok = (x: RoundRun): boolean => x.result.ok && x.result.result !== null;
  const methodOf = (label: string): DistMethod | undefined => i.runs.find((x) => x.label === label)?.method;
  const baseline = i.labels.find((l) => methodOf(l) === 'ddp') ?? null;
  const baseRuns = new Map(i.runs.filter((x) => x.label === baseline && ok(x)).map((x) => [x.round, figures(totals(x.result.result!), 'ddp').throughput]));
  const baseTotals = sum(i.runs.filter((x) => x.label === baseline && ok(x)).map((x) => totals(x.result.result!)));
  const baseTp = baseline ? figures(baseTotals, 'ddp').throughput : null;

  const variants = i.labels
    .filter((l) => methodOf(l) !== undefined)
    .map((label): DistVariantSummary => {
      const runs = i.runs.filter((x) => x.label === label).sort((a, b) => a.round - b.round);
      const method = runs[0].method;
      const rounds = runs.map((x): DistRoundFigures => {
        const t = ok(x) ? totals(x.result.result!) : { steps: 0, trainS: 0, samples: 0, allreduceS: null, pullS: null, pushS: null };
        const f = figures(t, method);
        return {
          round: x.round,
          position: x.position,
          dir: x.dir,
          ok: ok(x),
          ...(x.result.error ? { error: x.result.error } : {}),
          ...f,
          speedupVsDdp: ratio(f.throughput, baseRuns.get(x.round) ?? null),
          steps: t.steps,
          trainS: t.trainS,
          samples: t.samples,
          wallS: ok(x) ? x.result.wallS : null,
          scriptS: x.result.scriptS,
          hostLoad: x.hostLoad,
        };
      });
      const pooledF = figures(sum(runs.filter(ok).map((x) => totals(x.result.result!))), method);
      const pooled = { ...pooledF, speedupVsDdp: ratio(pooledF.throughput, baseTp) };
      const spread = Object.fromEntries(KEYS.map((k) => [k, roundSpread(rounds.map((x) => x[k]))])) as DistVariantSummary['spread'];
      return { label, method, overlapped: method === 'ddp' && pooled.commMs === null, pooled, spread, rounds };
    });
  const base = { schema: DIST_ROUNDS_SCHEMA, dir: i.dir, rounds: i.rounds, order: i.order, baseline, variants, interrupted: i.interrupted } as const;
  return { ...base, quality: roundsQuality(variants) };
}

const ms = (v: number): string => fmtNum(v);

/** Host interference per run, variants whose rounds disagree beyond ROUNDS_TOLERANCE, failed runs. */
export function roundsQuality(variants: DistVariantSummary[]): Quality {
  const w: QualityWarning[] = [];
  for (const v of variants) {
    for (const r of v.rounds) {
      if (!r.ok) w.push({ code: 'round-failed', phase: v.label, round: r.round, message: `${v.label} (round ${r.round}) failed: ${r.error ?? 'no result'}; the pooled figures lack it` });
      if (r.hostLoad) for (const h of interferenceWarnings(r.hostLoad, { phase: `${v.label} (round ${r.round})` })) w.push({ ...h, phase: v.label, round: r.round });
    }
    const s = v.spread.stepMs;
    const k = spreadRatio(s);
    if (s && k !== null && k > 1 + ROUNDS_TOLERANCE) {
      w.push({
        code: 'rounds-disagree',
        phase: v.label,
        message: `${v.label}: step time ${ms(s.min)}–${ms(s.max)} ms over ${s.n} rounds (${((k - 1) * 100).toFixed(0)}% apart, > ${ROUNDS_TOLERANCE * 100}%): the host changed between rounds; differences between variants smaller than that are not resolved`,
      });
    }
  }
  return qualityOf(w);
}

export type TargetVerdict = 'met' | 'not met' | 'inconclusive';

/**
 * A target on a per-round figure (a ratio of two variants in the same round): met when every
 * round meets it, not met when none does, inconclusive when the rounds fall on both sides, none
 * has the figure, or a warning names a variant it rests on — never met on a flagged value.
 */
export function targetVerdict(perRound: (number | null)[], meets: (v: number) => boolean, q: Quality, restsOn: string[]): { verdict: TargetVerdict; reason?: string } {
  const known = perRound.filter(finite);
  if (!known.length) return { verdict: 'inconclusive', reason: 'no round has the figure' };
  for (const label of restsOn) {
    const w = flagged(q, label);
    if (w) return { verdict: 'inconclusive', reason: `${w.code}: ${w.message}` };
  }
  const n = known.filter(meets).length;
  if (n === known.length) return { verdict: 'met' };
  if (n === 0) return { verdict: 'not met' };
  return { verdict: 'inconclusive', reason: `${n} of ${known.length} rounds meet it` };
}

/** Per round, a figure of variant a over the same figure of b in the same round (null where either is missing). */
export function pairedRatios(s: DistributedRoundsSummary, a: string, b: string, key: keyof DistFigures): (number | null)[] {
  const va = s.variants.find((v) => v.label === a);
  const vb = s.variants.find((v) => v.label === b);
  if (!va || !vb) return [];
  return va.rounds.map((r) => ratio(r[key], vb.rounds.find((x) => x.round === r.round)?.[key] ?? null));
}

// ---- text, Markdown, files -----------------------------------------------------------------------

/** "pooled" and "min–max" cells; "-" for a spread of fewer than two rounds. */
const cell = (v: number | null, f: (x: number) => string): string => (finite(v) ? f(v) : 'n.a.');
const spreadCell = (s: RoundSpread | null, f: (x: number) => string): string => (s && s.n > 1 ? `${f(s.min)}–${f(s.max)}` : '-');

const HEADER = ['method', 'step (ms)', 'rounds', 'samples/s', 'rounds', 'comm/step (ms)', 'rounds', 'vs DDP', 'rounds'];

function rows(s: DistributedRoundsSummary): string[][] {
  return s.variants.map((v) => [
    v.label,
    cell(v.pooled.stepMs, ms),
    spreadCell(v.spread.stepMs, ms),
    cell(v.pooled.throughput, ms),
    spreadCell(v.spread.throughput, ms),
    v.overlapped ? 'overlapped' : cell(v.pooled.commMs, ms) + (v.pooled.pullMs !== null && v.pooled.pushMs !== null ? ` (pull ${ms(v.pooled.pullMs)} + push ${ms(v.pooled.pushMs)})` : ''),
    v.overlapped ? '-' : spreadCell(v.spread.commMs, ms),
    cell(v.pooled.speedupVsDdp, fmtRatio),
    spreadCell(v.spread.speedupVsDdp, fmtRatio),
  ]);
}

function intro(s: DistributedRoundsSummary): string[] {
  const order = s.order.map((o, i) => `round ${i + 1}: ${o.join(', ')}`).join('; ');
  return [
    `${s.rounds} round(s), order rotated each round (${order})${s.interrupted ? '; interrupted: rounds incomplete' : ''}.`,
    'Pooled figures: every step of every round (total train time / total steps); rounds: min–max of the per-round figure; vs DDP: throughput over DDP\'s, per round against the same round\'s DDP run.',
  ];
}

export function qualityLines(q: Quality): string[] {
  return [`quality: ${q.verdict}${q.warnings.length ? ` (${q.warnings.length} warning${q.warnings.length > 1 ? 's' : ''})` : ''}`, ...q.warnings.map((w) => `  ${w.code}: ${w.message}`)];
}

function textTable(header: string[], body: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)];
}

export function roundsText(s: DistributedRoundsSummary): string {
  return `${['Distributed rounds', ...intro(s), '', ...textTable(HEADER, rows(s)), '', ...qualityLines(s.quality)].join('\n')}\n`;
}

export function roundsMarkdown(s: DistributedRoundsSummary): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  const lines = [
    '# Distributed rounds',
    '',
    ...intro(s),
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows(s).map((r) => `| ${r.map(esc).join(' | ')} |`),
    '',
    `Quality: **${s.quality.verdict}**`,
    ...s.quality.warnings.map((w) => `- \`${w.code}\`: ${esc(w.message)}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** DIR/rounds.json, rounds_report.txt and .md; returns their paths. */
export function writeRoundsReport(s: DistributedRoundsSummary): { json: string; txt: string; md: string } {
  const files = { json: path.join(s.dir, ROUNDS_FILES.json), txt: path.join(s.dir, ROUNDS_FILES.txt), md: path.join(s.dir, ROUNDS_FILES.md) };
  writeJsonAtomic(files.json, s);
  writeFileAtomic(files.txt, roundsText(s));
  writeFileAtomic(files.md, roundsMarkdown(s));
  return files;
}

/** DIR/rounds.json written by compare; null when the directory has none. */
export function loadRoundsSummary(dir: string): DistributedRoundsSummary | null {
  const file = path.join(path.resolve(dir), ROUNDS_FILES.json);
  if (!fs.existsSync(file)) return null;
  let v: Partial<DistributedRoundsSummary>;
  try {
    v = JSON.parse(readInputText(file, { kind: 'result' }));
  } catch (err) {
    if (err instanceof InputFileError) throw new GpucoloError(`${file}: cannot read (${err.code}: ${err.reason})`, { code: isRefusedInput(err) ? 'EBADRESULT' : err.code, path: file });
    throw new GpucoloError(`${file}: not JSON (${(err as Error).message.split('\n')[0]})`, { code: 'EBADRESULT', path: file });
  }
  if (v?.schema !== DIST_ROUNDS_SCHEMA || !Array.isArray(v.variants) || !Array.isArray(v.order) || !v.quality) {
    throw new GpucoloError(`${file}: not a ${DIST_ROUNDS_SCHEMA} file`, { code: 'EBADRESULT', path: file });
  }
  return v as DistributedRoundsSummary;
}
