/**
 * Several methods with identical options, in rounds: every method once per round, in an order
 * rotated each round (rounds.ts), then the analysis of each round's directory and the pooled
 * figures with their spread and quality block (rounds-summary.ts). Every method's options are
 * checked before the first one starts, so a mistake that would only hit the third method (ps
 * with one rank) fails at once.
 *
 * Layout: one round writes into DIR as a single run always did; with several, round r is a
 * complete compare directory DIR/round-<r>/ (results, manifests, logs, report, plots) and DIR
 * holds rounds.json and rounds_report.txt/.md.
 */
import path from 'node:path';
import { GpucoloError, oneLine } from '../../errors.js';
import { analyzeDistributed, type DistributedAnalysis } from './analyze.js';
import { runRounds, type RoundRun } from './rounds.js';
import { summarizeRounds, writeRoundsReport, type DistributedRoundsSummary } from './rounds-summary.js';
import { checkPorts, distributedSupervisor, validateRun, type DistributedLaunchOptions, type DistributedRunOptions, type DistributedRunResult, type DistributedTrainOptions } from './run.js';
import { METHODS, type DistMethod } from './schema.js';

export interface DistributedCompareOptions extends DistributedTrainOptions, DistributedLaunchOptions {
  /** default ddp, allreduce, ps */
  methods?: DistMethod[];
  /** rounds (default 1; the CLI's default is 2): every method once per round, order rotated each round */
  rounds?: number;
  /** run analyzeDistributed on each round's directory at the end (default true) */
  analyze?: boolean;
  /** PNGs with the plots (default true) */
  png?: boolean;
  /** before each run (round is 1-based) */
  onRound?: (method: DistMethod, round: number, rounds: number) => void;
  /** the runner (tests inject one that starts nothing) */
  run?: (o: DistributedRunOptions) => Promise<DistributedRunResult>;
}

export interface DistributedCompareResult {
  /** every run, in the order they ran */
  runs: DistributedRunResult[];
  rounds: number;
  /** per round, the methods in the order they ran */
  order: DistMethod[][];
  /** each run with its round, place in the round, directory and host load */
  roundRuns: RoundRun[];
  /** pooled figures per method with their spread and the quality block; null when nothing ran */
  summary: DistributedRoundsSummary | null;
  /** rounds.json and rounds_report.txt/.md, when written */
  reports: { json: string; txt: string; md: string } | null;
  /** one round: the analysis of outDir (null when not asked for, interrupted, or nothing to analyze; see analysisError) */
  analysis: DistributedAnalysis | null;
  /** per round directory (several rounds) */
  analyses: DistributedAnalysis[];
  analysisError?: string;
  interrupted: boolean;
  /** runs that did not succeed (interrupted ones included) */
  failed: number;
}

/** With --dump-params F each method gets F with _<method> (and _round-<r> with several rounds) before its extension. */
const perRun = (file: string, method: DistMethod, round: number | null): string => {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}_${method}${round !== null ? `_round-${round}` : ''}${ext}`;
};

/** Where round r (1-based) writes: DIR itself for a single round, DIR/round-<r> otherwise. */
export const roundDir = (outDir: string, round: number, rounds: number): string => (rounds === 1 ? outDir : path.join(outDir, `round-${round}`));

export async function compareDistributed(opts: DistributedCompareOptions): Promise<DistributedCompareResult> {
  const methods = opts.methods ?? [...METHODS];
  const rounds = opts.rounds ?? 1;
  if (methods.length === 0) throw new GpucoloError('no methods to compare', { code: 'EBADCONFIG' });
  const dup = methods.find((m, i) => methods.indexOf(m) !== i);
  if (dup) throw new GpucoloError(`method ${dup} given twice (each method writes one result file)`, { code: 'EBADCONFIG' });
  if (!Number.isInteger(rounds) || rounds < 1) throw new GpucoloError(`rounds must be an integer >= 1, got ${rounds}`, { code: 'EBADCONFIG' });
  const { methods: _m, rounds: _r, analyze: _a, png: _p, onRound: _o, run: _run, ...shared } = opts;
  const runOpts = (method: DistMethod, round: number | null): Omit<DistributedRunOptions, 'outDir'> => ({
    ...shared,
    method,
    ...(opts.dumpParams ? { dumpParams: perRun(opts.dumpParams, method, round) } : {}),
  });
  for (const m of methods) {
    const o = { ...runOpts(m, null), outDir: opts.outDir };
    await checkPorts(o, validateRun(o));
  }
  const own = opts.supervisor ? null : distributedSupervisor({ registryFile: opts.registryFile, graceMs: opts.graceMs });
  const supervised = { supervisor: own?.supervisor ?? opts.supervisor, ...(own ? { registryFile: own.registryFile } : {}) };
  let outcome;
  try {
    outcome = await runRounds(
      methods.map((m) => ({ label: m, options: runOpts(m, null) })),
      {
        rounds,
        dirOf: (r) => roundDir(opts.outDir, r, rounds),
        optionsOf: (v, r) => ({ ...runOpts(v.options.method, rounds > 1 ? r : null), ...supervised }),
        signal: opts.signal,
        onRun: (label, r, n) => opts.onRound?.(label as DistMethod, r, n),
        run: opts.run,
      },
    );
  } finally {
    own?.dispose();
  }
  const runs = outcome.runs.map((x) => x.result);
  const out: DistributedCompareResult = {
    runs,
    rounds,
    order: outcome.order as DistMethod[][],
    roundRuns: outcome.runs,
    summary: null,
    reports: null,
    analysis: null,
    analyses: [],
    interrupted: outcome.interrupted,
    failed: runs.filter((r) => !r.ok).length,
  };
  if (outcome.runs.length) {
    out.summary = summarizeRounds({ dir: path.resolve(opts.outDir), rounds, order: outcome.order, labels: methods, runs: outcome.runs, interrupted: outcome.interrupted });
    out.reports = writeRoundsReport(out.summary);
  }
  if (opts.analyze !== false && !out.interrupted) {
    const errors: string[] = [];
    for (let r = 1; r <= rounds; r++) {
      if (!outcome.runs.some((x) => x.round === r && x.result.ok)) continue;
      try {
        out.analyses.push(await analyzeDistributed(roundDir(opts.outDir, r, rounds), { png: opts.png }));
      } catch (err) {
        errors.push(rounds > 1 ? `round ${r}: ${oneLine(err)}` : oneLine(err));
      }
    }
    if (rounds === 1) out.analysis = out.analyses[0] ?? null;
    if (errors.length) out.analysisError = errors.join('; ');
  }
  return out;
}
