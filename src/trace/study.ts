/**
 * `gpucolo study queue-usage --runs N -- COMMAND`: runs the same traced command N times and says
 * whether what it does with queues is repeatable: how many KFD processes it makes, how many queues
 * each keeps (steady set), of which types, with which KFD ids, in which HQD slots. Processes are
 * paired across runs by order of appearance (pids differ from run to run).
 */
import path from 'node:path';
import { VERSION } from '../version.js';
import { analyzeTrace, type ProcessUsage, type QueueUsageReport } from './analyze/index.js';
import { loadTrace } from './read.js';
import { runTrace, type TraceOptions, type TraceResult } from './tracer.js';
import { makeDirs } from '../fs-dirs.js';
import { outOfRange } from '../errors.js';

export const STUDY_SCHEMA = 'gpucolo.queue-usage-study/1';

export interface StudyOptions extends Omit<TraceOptions, 'out' | 'pids' | 'command' | 'signal'> {
  command: string[];
  runs: number;
  /** where run-<i>.jsonl go (created) */
  dir: string;
  /** queue counts of the runs may differ by at most this many queues (the design notes accept +-1); default 0 */
  tolerance?: number;
  /** "queues identified within this long of the command's start" (the notes: 5 s); default 5e9 */
  identifyWithinNs?: number;
  /** called after each run */
  onRun?: (run: StudyRun, total: number) => void;
  signal?: AbortSignal;
}

/** What one KFD process of one run did, in comparable form. */
export interface StudyProcess {
  /** 1 = the first KFD process the command made, 2 = the second, ... */
  ordinal: number;
  pid: number;
  verdict: string;
  /** size of the steady (most common) queue set */
  steadyQueues: number;
  /** queue types of the steady set, sorted, e.g. ["compute", "compute", "sdma-xgmi"] */
  types: string[];
  /** KFD queue ids of the steady set, sorted (empty without sysfs) */
  qids: number[];
  /** per steady queue (in key order): the HQD slots it used, e.g. "0/2" (same on all XCCs) */
  placements: string[];
  /** queues created after the process started, total over the run */
  queuesSeen: number;
  /**
   * when every queue of the steady set had been seen, after the start reference (the command's
   * start): the time gpucolo could identify the process's queues; null when a steady queue
   * predates the trace or the trace has no start reference. An upper bound of the creation time,
   * by up to one sampling interval.
   */
  identifiedAfterStartNs?: number | null;
  /** what the start reference is: the command's start, or the process's first appearance in KFD (pid mode, dumps) */
  startRef?: 'command-started' | 'process-started' | null;
  /** the first queue seen, after the start reference */
  firstQueueAfterStartNs?: number | null;
  /** every queue destroyed, after the stop signal / after the command exited (null: unknown or not all gone) */
  allDestroyedAfterStopNs?: number | null;
  allDestroyedAfterExitNs?: number | null;
  /** MQD -> HQD: per steady compute queue with HQD data, the usual number of XCCs it was active on */
  mapping?: { numXcc: number | null; computeQueues: number; hqdsPerMqd: number[]; sameSlotOnAllXccs: boolean | null };
}

export interface StudyRun {
  index: number;
  trace: string;
  /** the run's sampling interval: the resolution of its timings */
  intervalNs?: number | null;
  endedBy: TraceResult['endedBy'];
  exitCode: number | null;
  exitSignal: string | null;
  processes: StudyProcess[];
  error?: string;
}

export interface StudyAspect<T> {
  /** one value per run */
  values: T[];
  consistent: boolean;
}

export interface StudyReport {
  schema: typeof STUDY_SCHEMA;
  gpucoloVersion: string;
  command: string[];
  runs: StudyRun[];
  consistency: {
    processCount: StudyAspect<number>;
    /** per process ordinal */
    processes: {
      ordinal: number;
      steadyQueues: StudyAspect<number | null>;
      types: StudyAspect<string | null>;
      qids: StudyAspect<string | null>;
      placements: StudyAspect<string | null>;
      stableInEveryRun: boolean;
    }[];
  };
  /** one line per finding, for people */
  summary: string[];
  /** the pass/fail criteria of the verdicts (additive to schema /1) */
  criteria?: StudyCriteria;
  verdicts?: StudyVerdicts;
  conclusions?: StudyConclusions;
}

export type Verdict = 'pass' | 'fail' | 'unknown';

export interface StudyCriteria {
  /** queue counts of all runs differ by at most this many (max - min <= tolerance) */
  tolerance: number;
  identifyWithinNs: number;
  /** the rules in words */
  rules: { queueCount: string; identification: string };
}

export interface StudyVerdicts {
  /** per process ordinal: steady queue counts of the runs within the tolerance */
  queueCount: { ordinal: number; values: (number | null)[]; min: number | null; max: number | null; verdict: Verdict; reason: string }[];
  /** per run: every queue of every command process identified within identifyWithinNs of the start */
  identification: { run: number; verdict: Verdict; identifiedAfterStartNs: number | null; reason: string }[];
  /** pass when every verdict above passes; fail when one fails; else unknown */
  overall: Verdict;
}

export interface StudyConclusions {
  processes: {
    ordinal: number;
    /** most common steady queue count over the runs, and the range */
    queueCount: { typical: number | null; min: number | null; max: number | null };
    types: string | null;
    /** same queue set through every run, and counts within the tolerance across runs */
    stability: { withinRuns: boolean; acrossRuns: Verdict };
    /** e.g. "1 MQD -> 4 HQD (one per XCC)"; null without HQD data */
    mapping: string | null;
    lifecycle: {
      firstQueueAfterStartNs: { min: number | null; max: number | null };
      identifiedAfterStartNs: { min: number | null; max: number | null };
      allDestroyedAfterStopNs: { min: number | null; max: number | null };
      allDestroyedAfterExitNs: { min: number | null; max: number | null };
      /** the coarsest sampling interval of the runs: timings are known to within it */
      resolutionNs: number | null;
    };
  }[];
  /** the notes' POC summary, one line per finding */
  lines: string[];
}

/** the most common non-zero number of active XCCs of a queue (0 when it was never mapped) */
function usualActiveXccs(h: Record<string, number>): number {
  let best = 0;
  let n = 0;
  for (const [k, c] of Object.entries(h)) if (Number(k) > 0 && (c > n || (c === n && Number(k) > best))) (best = Number(k), (n = c));
  return best;
}

function describeProcess(p: ProcessUsage, ordinal: number): StudyProcess {
  const modal = new Set(p.queueSet.modal);
  const steady = p.queues.filter((q) => modal.has(q.key)).sort((a, b) => (a.qids[0] ?? Infinity) - (b.qids[0] ?? Infinity) || a.key.localeCompare(b.key));
  const created = steady.map((q) => q.timing.createdAfterStartNs);
  const mapped = steady.filter((q) => q.mapping !== null);
  return {
    ordinal,
    pid: p.pid,
    verdict: p.queueSet.verdict,
    steadyQueues: modal.size,
    types: steady.map((q) => q.type).sort(),
    qids: steady.flatMap((q) => q.qids).sort((a, b) => a - b),
    placements: steady.map((q) => (q.mapping ? q.mapping.slotsUsed.join('|') || 'unmapped' : q.sdma ? `sdma ${q.sdma.rlcs.join('|')}` : '-')),
    queuesSeen: p.queues.length,
    identifiedAfterStartNs: steady.length && created.every((c) => c !== null) ? Math.max(...(created as number[])) : null,
    startRef: p.lifecycle.startRef ? (p.lifecycle.startRef.kind as 'command-started' | 'process-started') : null,
    firstQueueAfterStartNs: p.lifecycle.firstQueueAfterStartNs,
    allDestroyedAfterStopNs: p.lifecycle.allDestroyedAfterStopNs,
    allDestroyedAfterExitNs: p.lifecycle.allDestroyedAfterExitNs,
    mapping: {
      numXcc: mapped.find((q) => q.mapping!.numXcc !== null)?.mapping!.numXcc ?? null,
      computeQueues: steady.filter((q) => q.type.startsWith('compute')).length,
      hqdsPerMqd: mapped.map((q) => usualActiveXccs(q.mapping!.activeXccs.histogram)),
      sameSlotOnAllXccs: mapped.length ? mapped.every((q) => q.mapping!.sameSlotOnAllXccs !== false) : null,
    },
  };
}

/** The command's processes: those not already there at the baseline, by first appearance. */
export function studyProcesses(report: QueueUsageReport): StudyProcess[] {
  return report.processes
    .filter((p) => !p.presentAtBaseline)
    .sort((a, b) => a.firstSeenNs - b.firstSeenNs || a.pid - b.pid)
    .map((p, i) => describeProcess(p, i + 1));
}

function aspect<T>(values: T[]): StudyAspect<T> {
  const first = JSON.stringify(values[0]);
  return { values, consistent: values.every((v) => JSON.stringify(v) === first) };
}

const secs = (ns: number | null | undefined): string => (ns === null || ns === undefined ? '?' : `${(ns / 1e9).toFixed(ns < 10e9 ? 2 : 1)} s`);
const range = (xs: (number | null | undefined)[]): { min: number | null; max: number | null } => {
  const v = xs.filter((x): x is number => typeof x === 'number');
  return v.length ? { min: Math.min(...v), max: Math.max(...v) } : { min: null, max: null };
};
const rangeText = (r: { min: number | null; max: number | null }): string => (r.min === null ? 'unknown' : r.min === r.max ? secs(r.min) : `${secs(r.min)}..${secs(r.max)}`);

export const DEFAULT_TOLERANCE = 0;
export const DEFAULT_IDENTIFY_WITHIN_NS = 5e9;

export function studyCriteria(tolerance = DEFAULT_TOLERANCE, identifyWithinNs = DEFAULT_IDENTIFY_WITHIN_NS): StudyCriteria {
  if (!Number.isInteger(tolerance) || tolerance < 0 || tolerance > 1000) throw outOfRange(`--tolerance must be a whole number of queues, 0..1000 (got ${tolerance})`);
  if (!Number.isFinite(identifyWithinNs) || identifyWithinNs <= 0) throw outOfRange(`--identify-within must be a positive duration (got ${identifyWithinNs} ns)`);
  return {
    tolerance,
    identifyWithinNs,
    rules: {
      queueCount: `pass when the steady queue counts of every completed run differ by at most ${tolerance} (max - min <= ${tolerance}); fail when they differ more or a run lacks the process; unknown with fewer than 2 completed runs`,
      identification: `a run passes when every queue of the steady set of each of its KFD processes was seen within ${secs(identifyWithinNs)} of the command's start (first sample showing it; sampling interval = resolution); fails when one was seen later or the run showed no queue; unknown when the run failed or a time is unknown`,
    },
  };
}

function queueCountVerdicts(processes: StudyReport['consistency']['processes'], okRuns: number, c: StudyCriteria): StudyVerdicts['queueCount'] {
  return processes.map((p) => {
    const values = p.steadyQueues.values;
    const r = range(values);
    if (okRuns < 2) return { ordinal: p.ordinal, values, ...r, verdict: 'unknown' as Verdict, reason: 'fewer than 2 completed runs: nothing to compare' };
    if (values.some((v) => v === null)) return { ordinal: p.ordinal, values, ...r, verdict: 'fail' as Verdict, reason: `process #${p.ordinal} missing in ${values.filter((v) => v === null).length} run(s)` };
    const spread = r.max! - r.min!;
    return {
      ordinal: p.ordinal,
      values,
      ...r,
      verdict: (spread <= c.tolerance ? 'pass' : 'fail') as Verdict,
      reason: spread === 0 ? `${r.min} queue(s) in every run` : `${r.min}..${r.max} queues: differ by ${spread} ${spread <= c.tolerance ? '<=' : '>'} tolerance ${c.tolerance}`,
    };
  });
}

function identificationVerdict(run: StudyRun, c: StudyCriteria): StudyVerdicts['identification'][number] {
  const base = { run: run.index, identifiedAfterStartNs: null as number | null };
  if (run.error) return { ...base, verdict: 'unknown', reason: `run failed: ${run.error}` };
  const withQueues = run.processes.filter((p) => p.steadyQueues > 0);
  if (!withQueues.length) return { ...base, verdict: 'fail', reason: 'no queue was seen' };
  const times = withQueues.map((p) => p.identifiedAfterStartNs ?? null);
  const known = times.filter((t): t is number => t !== null);
  const worst = known.length ? Math.max(...known) : null;
  const refs = [...new Set(withQueues.map((p) => p.startRef).filter((x) => x))];
  const after = refs.length === 1 && refs[0] === 'process-started' ? 'its first appearance in KFD (no command start in the trace)' : 'the start';
  if (worst !== null && worst > c.identifyWithinNs) return { run: run.index, identifiedAfterStartNs: worst, verdict: 'fail', reason: `queues identified ${secs(worst)} after ${after} (> ${secs(c.identifyWithinNs)})` };
  if (known.length < times.length) return { run: run.index, identifiedAfterStartNs: worst, verdict: 'unknown', reason: 'a queue predates the trace or the start is not in it' };
  return { run: run.index, identifiedAfterStartNs: worst, verdict: 'pass', reason: `queues identified ${secs(worst)} after ${after} (<= ${secs(c.identifyWithinNs)})${run.intervalNs ? `, sampled every ${secs(run.intervalNs)}` : ''}` };
}

const combine = (vs: Verdict[]): Verdict => (vs.includes('fail') ? 'fail' : vs.length && vs.every((v) => v === 'pass') ? 'pass' : 'unknown');

function modalOf<T>(xs: T[]): T | null {
  const n = new Map<string, { v: T; c: number }>();
  for (const x of xs) {
    const k = JSON.stringify(x);
    const e = n.get(k);
    if (e) e.c++;
    else n.set(k, { v: x, c: 1 });
  }
  let best: { v: T; c: number } | null = null;
  for (const e of n.values()) if (!best || e.c > best.c) best = e;
  return best ? best.v : null;
}

function mappingText(ps: StudyProcess[]): string | null {
  const maps = ps.map((p) => p.mapping).filter((m): m is NonNullable<StudyProcess['mapping']> => !!m && m.hqdsPerMqd.length > 0);
  if (!maps.length) return null;
  const per = [...new Set(maps.flatMap((m) => m.hqdsPerMqd))].sort((a, b) => a - b);
  const xcc = [...new Set(maps.map((m) => m.numXcc).filter((x) => x !== null))];
  const same = maps.every((m) => m.sameSlotOnAllXccs !== false);
  if (per.length === 1) {
    const full = xcc.length === 1 && xcc[0] === per[0];
    return `1 MQD -> ${per[0]} HQD${full ? ` (one per XCC of ${xcc[0]})` : xcc.length === 1 ? ` (GPU has ${xcc[0]} XCCs: NOT one per XCC)` : ''}${same ? ', same pipe/queue on every XCC' : ', pipe/queue differs between XCCs'}`;
  }
  return `1 MQD -> ${per.join(' or ')} HQDs (varies between queues or runs${xcc.length === 1 ? `; GPU has ${xcc[0]} XCCs` : ''})`;
}

function conclusionsOf(runs: StudyRun[], consistency: StudyReport['consistency'], verdicts: StudyVerdicts): StudyConclusions {
  const ok = runs.filter((r) => !r.error);
  const resolution = range(ok.map((r) => r.intervalNs)).max;
  const processes = consistency.processes.map((c) => {
    const ps = ok.map((r) => r.processes.find((p) => p.ordinal === c.ordinal)).filter((p): p is StudyProcess => !!p);
    const counts = ps.map((p) => p.steadyQueues);
    return {
      ordinal: c.ordinal,
      queueCount: { typical: modalOf(counts), ...range(counts) },
      types: modalOf(ps.map((p) => p.types.join(', '))),
      stability: { withinRuns: c.stableInEveryRun, acrossRuns: verdicts.queueCount.find((v) => v.ordinal === c.ordinal)?.verdict ?? ('unknown' as Verdict) },
      mapping: mappingText(ps),
      lifecycle: {
        firstQueueAfterStartNs: range(ps.map((p) => p.firstQueueAfterStartNs)),
        identifiedAfterStartNs: range(ps.map((p) => p.identifiedAfterStartNs)),
        allDestroyedAfterStopNs: range(ps.map((p) => p.allDestroyedAfterStopNs)),
        allDestroyedAfterExitNs: range(ps.map((p) => p.allDestroyedAfterExitNs)),
        resolutionNs: resolution,
      },
    };
  });
  const lines: string[] = [];
  for (const p of processes) {
    const qc = p.queueCount;
    lines.push(
      `process #${p.ordinal}: uses ${qc.typical ?? '?'} queue(s)${qc.min !== qc.max ? ` (${qc.min}..${qc.max} over the runs)` : ''}${p.types ? ` (${p.types})` : ''}`,
      `process #${p.ordinal}: queue count ${p.stability.acrossRuns === 'pass' ? 'consistent' : p.stability.acrossRuns === 'fail' ? 'NOT consistent' : 'not compared'} across runs; queue set ${p.stability.withinRuns ? 'stable' : 'NOT stable'} within every run`,
      `process #${p.ordinal}: MQD -> HQD: ${p.mapping ?? 'unknown (no HQD data: debugfs not read)'}`,
      `process #${p.ordinal}: lifecycle: first queue ${rangeText(p.lifecycle.firstQueueAfterStartNs)} after start, all identified ${rangeText(p.lifecycle.identifiedAfterStartNs)} after start, all destroyed ${rangeText(p.lifecycle.allDestroyedAfterExitNs)} after exit${p.lifecycle.allDestroyedAfterStopNs.min !== null ? ` (${rangeText(p.lifecycle.allDestroyedAfterStopNs)} after SIGTERM)` : ''}${p.lifecycle.resolutionNs ? `; resolution ${secs(p.lifecycle.resolutionNs)}` : ''}`,
    );
  }
  if (!processes.length) lines.push('no KFD process of the command was seen');
  const ident = verdicts.identification;
  lines.push(`queues identified within the limit: ${ident.filter((v) => v.verdict === 'pass').length}/${ident.length} run(s)${ident.some((v) => v.verdict === 'fail') ? ` (failed: run ${ident.filter((v) => v.verdict === 'fail').map((v) => v.run).join(', ')})` : ''}`);
  return { processes, lines };
}

export function compareRuns(command: string[], runs: StudyRun[], criteria: StudyCriteria = studyCriteria()): StudyReport {
  const ok = runs.filter((r) => !r.error);
  const maxProcs = Math.max(0, ...ok.map((r) => r.processes.length));
  const processes = [];
  for (let o = 1; o <= maxProcs; o++) {
    const of = (r: StudyRun) => r.processes.find((p) => p.ordinal === o) ?? null;
    processes.push({
      ordinal: o,
      steadyQueues: aspect(ok.map((r) => of(r)?.steadyQueues ?? null)),
      types: aspect(ok.map((r) => of(r)?.types.join(', ') ?? null)),
      qids: aspect(ok.map((r) => (of(r) ? of(r)!.qids.join(',') : null))),
      placements: aspect(ok.map((r) => of(r)?.placements.join('; ') ?? null)),
      stableInEveryRun: ok.every((r) => of(r)?.verdict === 'stable'),
    });
  }
  const consistency = { processCount: aspect(ok.map((r) => r.processes.length)), processes };
  const summary: string[] = [];
  const failed = runs.filter((r) => r.error);
  summary.push(`${runs.length} run(s) of ${command.join(' ')}${failed.length ? `, ${failed.length} failed (${failed.map((r) => `run ${r.index}: ${r.error}`).join('; ')})` : ''}`);
  summary.push(
    consistency.processCount.consistent
      ? `KFD processes per run: ${consistency.processCount.values[0] ?? 0} in every run`
      : `KFD processes per run DIFFER: ${consistency.processCount.values.join(', ')}`,
  );
  for (const p of processes) {
    const line = (name: string, a: StudyAspect<unknown>): string =>
      a.consistent ? `${name} ${JSON.stringify(a.values[0])} in every run` : `${name} DIFFER: ${a.values.map((v) => JSON.stringify(v)).join(' / ')}`;
    summary.push(`process #${p.ordinal}: ${line('steady queues', p.steadyQueues)}; ${line('types', p.types)}; ${line('queue ids', p.qids)}; ${line('HQD slots', p.placements)}; ${p.stableInEveryRun ? 'stable within every run' : 'NOT stable within every run'}`);
  }
  const queueCount = queueCountVerdicts(processes, ok.length, criteria);
  const identification = runs.map((r) => identificationVerdict(r, criteria));
  const verdicts: StudyVerdicts = { queueCount, identification, overall: combine([...queueCount.map((v) => v.verdict), ...identification.map((v) => v.verdict)]) };
  for (const v of queueCount) summary.push(`verdict: process #${v.ordinal} queue count within +-${criteria.tolerance}: ${v.verdict.toUpperCase()} (${v.reason})`);
  for (const v of identification) summary.push(`verdict: run ${v.run} queues identified within ${secs(criteria.identifyWithinNs)} of start: ${v.verdict.toUpperCase()} (${v.reason})`);
  const conclusions = conclusionsOf(runs, consistency, verdicts);
  return { schema: STUDY_SCHEMA, gpucoloVersion: VERSION, command, runs, consistency, summary, criteria, verdicts, conclusions };
}

export async function runStudy(opts: StudyOptions): Promise<StudyReport> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 1000) throw outOfRange(`--runs must be 1..1000 (got ${opts.runs})`);
  if (!opts.command.length) throw outOfRange('a command to study is required (after --)', 'ERR_INVALID_ARG_VALUE');
  const criteria = studyCriteria(opts.tolerance, opts.identifyWithinNs);
  makeDirs(opts.dir);
  const runs: StudyRun[] = [];
  for (let i = 1; i <= opts.runs; i++) {
    if (opts.signal?.aborted) break;
    const trace = path.join(opts.dir, `run-${i}.jsonl`);
    const { onRun: _onRun, runs: _runs, dir: _dir, tolerance: _t, identifyWithinNs: _w, ...traceOpts } = opts;
    let res: TraceResult;
    try {
      res = await runTrace({ ...traceOpts, command: opts.command, out: trace, signal: opts.signal });
    } catch (err) {
      const run: StudyRun = { index: i, trace, intervalNs: opts.intervalNs, endedBy: 'error', exitCode: null, exitSignal: null, processes: [], error: (err as Error).message };
      runs.push(run);
      opts.onRun?.(run, opts.runs);
      throw err;
    }
    const run: StudyRun = {
      index: i,
      trace,
      intervalNs: opts.intervalNs,
      endedBy: res.endedBy,
      exitCode: res.command?.exit?.code ?? null,
      exitSignal: res.command?.exit?.signal ?? null,
      processes: [],
      ...(res.error ? { error: res.error } : {}),
    };
    if (!res.error) run.processes = studyProcesses(analyzeTrace(await loadTrace(trace)));
    runs.push(run);
    opts.onRun?.(run, opts.runs);
    if (res.endedBy === 'interrupt') break;
  }
  return compareRuns(opts.command, runs, criteria);
}
