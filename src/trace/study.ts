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

export const STUDY_SCHEMA = 'gpucolo.queue-usage-study/1';

export interface StudyOptions extends Omit<TraceOptions, 'out' | 'pids' | 'command' | 'signal'> {
  command: string[];
  runs: number;
  /** where run-<i>.jsonl go (created) */
  dir: string;
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
}

export interface StudyRun {
  index: number;
  trace: string;
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
}

function describeProcess(p: ProcessUsage, ordinal: number): StudyProcess {
  const modal = new Set(p.queueSet.modal);
  const steady = p.queues.filter((q) => modal.has(q.key)).sort((a, b) => (a.qids[0] ?? Infinity) - (b.qids[0] ?? Infinity) || a.key.localeCompare(b.key));
  return {
    ordinal,
    pid: p.pid,
    verdict: p.queueSet.verdict,
    steadyQueues: modal.size,
    types: steady.map((q) => q.type).sort(),
    qids: steady.flatMap((q) => q.qids).sort((a, b) => a - b),
    placements: steady.map((q) => (q.mapping ? q.mapping.slotsUsed.join('|') || 'unmapped' : q.sdma ? `sdma ${q.sdma.rlcs.join('|')}` : '-')),
    queuesSeen: p.queues.length,
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

export function compareRuns(command: string[], runs: StudyRun[]): StudyReport {
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
  return { schema: STUDY_SCHEMA, gpucoloVersion: VERSION, command, runs, consistency, summary };
}

export async function runStudy(opts: StudyOptions): Promise<StudyReport> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 1000) throw new RangeError(`--runs must be 1..1000 (got ${opts.runs})`);
  if (!opts.command.length) throw new RangeError('a command to study is required (after --)');
  makeDirs(opts.dir);
  const runs: StudyRun[] = [];
  for (let i = 1; i <= opts.runs; i++) {
    if (opts.signal?.aborted) break;
    const trace = path.join(opts.dir, `run-${i}.jsonl`);
    const { onRun: _onRun, runs: _runs, dir: _dir, ...traceOpts } = opts;
    let res: TraceResult;
    try {
      res = await runTrace({ ...traceOpts, command: opts.command, out: trace, signal: opts.signal });
    } catch (err) {
      const run: StudyRun = { index: i, trace, endedBy: 'error', exitCode: null, exitSignal: null, processes: [], error: (err as Error).message };
      runs.push(run);
      opts.onRun?.(run, opts.runs);
      throw err;
    }
    const run: StudyRun = {
      index: i,
      trace,
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
  return compareRuns(opts.command, runs);
}
