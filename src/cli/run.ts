/**
 * gpucolo run SCENARIO: runs a scenario (canned name or file) and writes results.json, report.md
 * and charts. Exit codes: 0 ran (verdicts may still fail, and quality may be noisy: they are
 * results, not errors); 1 the run could not be done (no backend, or no co-run phase produced a
 * result: without one there is nothing the scenario asked about); 2 invalid scenario or usage;
 * 130 Ctrl-C (partial results written).
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { GpucoloError } from '../errors.js';
import { MECHANISMS, type Mechanism } from '../scenario/schema.js';
import { runScenario, type RunEvent } from '../scenario/runner.js';
import type { Results } from '../scenario/types.js';
import { CliError } from './errors.js';
import { scenarioArg } from './scenario-arg.js';
import { table } from './table.js';
import { duration, integerArg, listArg } from './options.js';
import { MAX_DISPATCH_SPAN_NS, MIN_DISPATCH_SPAN_NS } from '../limits.js';
import type { PhaseResult, TaskResult } from '../scenario/types.js';
import { onInterrupts } from './signals.js';

const mechanisms = listArg<Mechanism>('mechanism', MECHANISMS);

function stamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

type StartEvent = Extract<RunEvent, { type: 'start' }>;

/**
 * The first lines on screen: scenario, form, backend and phase count in one short line. Why the
 * other backends are unavailable is long (a driver message per backend), so it is shown only with
 * --verbose (and by gpucolo doctor); results.json keeps it whole in backend.why.
 */
export function startText(scenario: string, e: StartEvent, verbose = false): string {
  // `engine` ('native' | 'ts') and `engineWhy` are new in the start event; older events lack them
  const { engine, engineWhy } = e as { engine?: unknown; engineWhy?: unknown };
  // the head of engineWhy ("native core not loaded: <loader errors>" -> "native core not
  // loaded"; "GPUCOLO_DISPATCH_ENGINE=ts" as it is): the errors go with --verbose
  const tsWhy = typeof engineWhy === 'string' && engineWhy ? engineWhy.split(':')[0] : 'native core not loaded';
  const backend = e.form === 'torch' ? '' : `, ${e.backend} backend${engine === 'ts' ? ` (pure-TS engine: ${tsWhy})` : ''}`;
  const n = e.phases.length;
  // rounds are new in the start event; older events (and one round) say nothing about them
  const rounds = typeof (e as { rounds?: unknown }).rounds === 'number' && e.rounds > 1 ? `, ${e.rounds} rounds` : '';
  const lines = [`gpucolo run ${scenario}: ${e.form} form${backend}; ${n} phase${n === 1 ? '' : 's'}${rounds}`];
  if (verbose) {
    lines.push(`  why: ${e.why}`);
    if (typeof engine === 'string') lines.push(`  engine: ${engine}${typeof engineWhy === 'string' && engineWhy ? ` (${engineWhy})` : ''}`);
    lines.push(`  phases: ${e.phases.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

const ms = (v: number | null): string => (v === null ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** P99 for the screen: (x) when the sample cannot support it, >=x when it is a censored lower bound. */
function p99Text(t: TaskResult): string {
  const v = ms(t.latencyMs.p99);
  if ((t.latencyMs.censoredAtOrAbove ?? []).includes('p99')) return `>=${v}`;
  return t.latencyMs.unsupported.includes('p99') ? `(${v})` : v;
}

/** min–max of the rounds' own P99s, when there was more than one round */
function spreadText(t: TaskResult): string {
  const sp = t.spread?.p99;
  return sp && sp.n > 1 ? `${ms(sp.min)}–${ms(sp.max)}` : '-';
}

const verdictText = (pass: boolean | null, detail?: string): string => (pass === null ? (detail?.startsWith('inconclusive') ? 'inconclusive' : 'n.a.') : pass ? 'PASS' : 'FAIL');

/** At most this many warnings on screen; results.json and report.md carry all of them. */
const SCREEN_WARNINGS = 8;

/** The quality block on screen: verdict, then the warnings (and what could not be checked). */
export function qualityText(r: Results): string[] {
  const q = r.quality;
  if (!q) return [];
  const out = [`quality: ${q.verdict === 'ok' ? 'ok' : `NOISY (${q.warnings.length} warning${q.warnings.length === 1 ? '' : 's'}: verdicts on flagged figures are inconclusive)`}`];
  for (const w of q.warnings.slice(0, SCREEN_WARNINGS)) out.push(`  ${w.code}: ${w.message}`);
  if (q.warnings.length > SCREEN_WARNINGS) out.push(`  ... ${q.warnings.length - SCREEN_WARNINGS} more in results.json (quality.warnings) and report.md`);
  for (const u of q.unknown ?? []) out.push(`  not checked: ${u.message}`);
  return out;
}

/** The on-screen summary: quality first, per phase the tasks' P99 (with the rounds' spread) and share, then the success rows. */
export function summaryText(r: Results, files: string[]): string {
  const out: string[] = [...qualityText(r)];
  if (out.length) out.push('');
  const rows: string[][] = [];
  const rounds = r.rounds ?? 1;
  for (const ph of r.phases) {
    if (ph.status === 'skipped' || ph.status === 'failed') {
      rows.push([ph.name, ph.status.toUpperCase(), '', '', ...(rounds > 1 ? [''] : []), '', ph.reason ?? '']);
      continue;
    }
    for (const t of ph.tasks) {
      rows.push([
        ph.name,
        t.name,
        String(t.priority),
        p99Text(t),
        ...(rounds > 1 ? [spreadText(t)] : []),
        t.throughputShare === null ? `${t.throughput.toFixed(1)}/s` : `${(t.throughputShare * 100).toFixed(0)}%`,
        t.slo.map((v) => `${v.text}: ${verdictText(v.pass, v.detail)}`).join('; '),
      ]);
    }
  }
  out.push(...table(['PHASE', 'TASK', 'PRIO', 'P99 MS', ...(rounds > 1 ? [`P99 ${rounds} ROUNDS`] : []), 'THROUGHPUT', 'SLO'], rows));
  if (r.phases.some((p) => p.tasks.some((t) => (t.latencyMs.censoredAtOrAbove ?? []).includes('p99')))) {
    out.push('>=x: a lower bound (requests still unfinished when the phase stopped waiting are counted at their age then)');
  }
  if (r.success.length) {
    out.push('', 'success table:');
    out.push(...table(['ROW', 'RESULT', 'BEST PHASE'], r.success.map((v) => [v.row, v.pass === null && v.inconclusive ? 'inconclusive (see quality above)' : verdictText(v.pass), v.best ?? '-']), '  '));
  }
  if (r.partial) out.push('', 'PARTIAL: the run was interrupted; results.json holds the phases that ran');
  out.push('', ...files.map((f) => `wrote ${f}`));
  return `${out.join('\n')}\n`;
}

/** Why the run produced nothing to answer the scenario with (exit 1), or null: no co-run phase has a result. */
export function noCorunResult(phases: PhaseResult[]): string | null {
  const coruns = phases.filter((p) => p.kind === 'corun');
  if (coruns.some((p) => (p.status === 'ok' || p.status === 'partial') && p.tasks.some((t) => t.latencyMs.n > 0))) return null;
  if (!coruns.length) return 'no co-run phase ran';
  return `no co-run phase produced a result (${coruns.map((p) => `${p.name}: ${p.status}${p.reason ? ` — ${p.reason}` : p.status === 'ok' ? ' — no completed or censored request' : ''}`).join('; ')})`;
}

export function runCommand(): Command {
  return new Command('run')
    .description('run a co-location scenario (canned name or YAML/JSON file): standalone, co-run, each mechanism; writes results.json, report.md, charts')
    .argument('<scenario>', 'canned name (inference-service, multi-tenant, realtime-batch) or a scenario file')
    .option('--out <dir>', 'output directory (default gpucolo-runs/<name>-<time>)')
    .addOption(new Option('--form <form>', 'probe (spin kernels), torch (model workers) or auto').choices(['auto', 'probe', 'torch']).default('auto'))
    .addOption(new Option('--backend <name>', 'probe form backend (default: the scenario\'s, auto = cuda, hip, then cpu)').choices(['auto', 'cpu', 'cuda', 'hip']))
    .option('--duration <duration>', 'measured time per phase (overrides the scenario)', duration)
    .option('--warmup <duration>', 'warm-up per phase (overrides the scenario)', duration)
    .option('--rounds <n>', 'run every phase n times, the order rotated each round; the report pools them and shows their spread (default: the scenario\'s, else 2; the canned scenarios say 2: inference-service then takes about 2 minutes on a 2-core host without a GPU)', integerArg({ min: 1 }))
    .option('--min-samples <k>', 'lengthen phases until every task has k requests over all rounds (368 gives a P99 a 95% CI)', integerArg({ min: 1 }))
    .option('--mechanism <list>', `co-run mechanisms besides none (${MECHANISMS.join(', ')})`, mechanisms)
    .option('--python <path>', 'python with PyTorch for the torch form (default $GPUCOLO_PYTHON or /usr/bin/python3)')
    .addOption(
      new Option('--torch-process <form>', "torch form: per-model = one worker process per model; single = every model of a phase in one process, one context (NVIDIA stream priorities between processes need MPS; in one process they are real); overrides the scenario's torchProcess").choices(['per-model', 'single']),
    )
    .option('--no-charts', 'skip the SVG/PNG charts')
    .option('--json', 'print results.json to stdout at the end')
    .option('--verbose', 'also say why this form and backend (every other backend\'s reason for being unavailable) and list the phases')
    .action(runAction);
}

interface RunCli {
  out?: string;
  form: 'auto' | 'probe' | 'torch';
  backend?: 'auto' | 'cpu' | 'cuda' | 'hip';
  duration?: number;
  warmup?: number;
  rounds?: number;
  minSamples?: number;
  mechanism?: Mechanism[];
  python?: string;
  torchProcess?: 'per-model' | 'single';
  charts: boolean;
  json?: boolean;
  verbose?: boolean;
}

/** What the progress display of one `gpucolo run` holds between events. */
interface RunProgress {
  o: RunCli;
  scenarioName: string;
  tty: boolean;
  bar: SingleBar | null;
  tick: NodeJS.Timeout | null;
  /** task -> requests completed and P99 so far in this phase */
  done: Map<string, { n: number; p99Ns: number | null }>;
  runRounds: number;
}

/** Checks the --warmup/--duration overrides against the limits the scenario schema holds its own values to (src/limits.ts). */
function checkSpan(o: RunCli, scenario: { warmup: number; duration: number }): void {
  if (o.warmup !== undefined && o.warmup < 0) throw new CliError('--warmup must be >= 0', 2);
  const spanNs = (o.warmup ?? scenario.warmup) + (o.duration ?? scenario.duration);
  if (spanNs > MAX_DISPATCH_SPAN_NS) throw new CliError(`--warmup + --duration: a phase lasts at most ${MAX_DISPATCH_SPAN_NS / 3600e9} h (warm-up + measured time), got ${(spanNs / 60e9).toFixed(1)} min`, 2);
  if (spanNs < MIN_DISPATCH_SPAN_NS) throw new CliError(`--warmup + --duration: a phase lasts at least ${MIN_DISPATCH_SPAN_NS / 1e6} ms`, 2);
}

/** The requests column of the progress bar: per task, requests done (and P99). */
function requestsText(p: RunProgress): string {
  return p.done.size ? [...p.done].map(([t, x]) => `${t} ${x.n}${x.p99Ns !== null ? ` (P99 ${(x.p99Ns / 1e6).toFixed(1)} ms)` : ''}`).join(', ') : '-';
}

/** Stops the progress bar and its ticker, if any. */
function stopBar(p: RunProgress): void {
  if (p.tick) clearInterval(p.tick);
  p.tick = null;
  p.bar?.stop();
  p.bar = null;
}

/** Starts the progress bar of a phase (on a TTY). */
function startPhaseBar(p: RunProgress, e: Extract<RunEvent, { type: 'phase-start' }>): void {
  stopBar(p);
  p.done.clear();
  const t0 = Date.now();
  const total = Math.ceil(e.spanNs / 1e9);
  // older start events have no round fields
  const round = typeof e.rounds === 'number' && e.rounds > 1 ? ` round ${e.round}/${e.rounds}${e.extension ? ' (extension)' : ''}` : e.extension ? ' (extension)' : '';
  const bar = new SingleBar({ format: `[${e.index + 1}/${e.total}]${round} {phase} |{bar}| {value}/{total} s  requests: {requests}`, hideCursor: true, clearOnComplete: true, stream: process.stderr });
  p.bar = bar;
  bar.start(total, 0, { phase: e.phase.padEnd(24), requests: '-' });
  p.tick = setInterval(() => p.bar?.update(Math.min(total, Math.round((Date.now() - t0) / 1000)), { requests: requestsText(p) }), 250);
}

/** Ends a phase's bar and says a run of it that was not ok. */
function endPhase(p: RunProgress, e: Extract<RunEvent, { type: 'phase-end' }>): void {
  stopBar(p);
  // this run's status (a phase pooled over rounds may be ok while one round failed)
  const run = e.run ?? { status: e.phase.status, reason: e.phase.reason, round: 1 };
  const which = p.runRounds > 1 || e.run?.extension ? ` (round ${run.round}${e.run?.extension ? ', extension' : ''})` : '';
  // a skipped phase is skipped in every round: said once
  if (run.status !== 'ok' && !(run.status === 'skipped' && run.round > 1)) process.stderr.write(`gpucolo run: ${e.phase.name}${which}: ${run.status}${run.reason ? ` — ${run.reason}` : ''}\n`);
}

/** One run event -> the progress display (start text, bars, phase failures, chart errors). */
function onRunEvent(p: RunProgress, e: RunEvent): void {
  if (e.type === 'start') {
    p.runRounds = e.rounds ?? 1;
    // with --json stdout carries only results.json, so that it parses
    (p.o.json ? process.stderr : process.stdout).write(startText(p.scenarioName, e, p.o.verbose));
  } else if (e.type === 'phase-start' && p.tty) {
    startPhaseBar(p, e);
  } else if (e.type === 'progress') {
    p.done.set(e.task, { n: e.completed, p99Ns: e.p99Ns });
  } else if (e.type === 'phase-end') {
    endPhase(p, e);
  } else if (e.type === 'report') {
    for (const c of e.chartErrors) process.stderr.write(`gpucolo run: chart ${c}\n`);
  }
}

/** Prints the results and turns partial / all-failed / no co-run results into exit codes. */
function reportRun(r: Awaited<ReturnType<typeof runScenario>>, o: RunCli, outDir: string): void {
  process.stdout.write(o.json ? `${JSON.stringify(r.results, null, 2)}\n` : summaryText(r.results, r.files));
  if (r.results.partial) throw new CliError(`interrupted: partial results in ${outDir}`, 130);
  if (r.results.phases.length && r.results.phases.every((p) => p.status === 'failed')) throw new CliError(`every phase failed (first: ${r.results.phases[0].reason ?? 'unknown'}); see ${outDir}/report.md`, 1);
  const none = noCorunResult(r.results.phases);
  if (none) throw new CliError(`${none}; see ${outDir}/report.md`, 1);
}

/** `gpucolo run`: checks the overrides, runs the scenario with progress and SIGINT/SIGTERM handling, reports. */
async function runAction(ref: string, o: RunCli): Promise<void> {
  const { scenario, source } = scenarioArg(ref);
  if (o.torchProcess) scenario.torchProcess = o.torchProcess;
  checkSpan(o, scenario);
  const outDir = o.out ?? path.join('gpucolo-runs', `${scenario.name}-${stamp()}`);
  const p: RunProgress = { o, scenarioName: scenario.name, tty: process.stderr.isTTY === true, bar: null, tick: null, done: new Map(), runRounds: 1 };
  const ctl = new AbortController();
  const onInt = (): void => {
    if (!ctl.signal.aborted) process.stderr.write('\ngpucolo run: interrupted: stopping workers, writing partial results\n');
    ctl.abort();
  };
  const removeSignals = onInterrupts([onInt], ['SIGINT', 'SIGTERM']);
  try {
    const r = await runScenario(scenario, source, { outDir, form: o.form, backend: o.backend, durationNs: o.duration, warmupNs: o.warmup, rounds: o.rounds, minSamples: o.minSamples, mechanisms: o.mechanism, python: o.python, charts: o.charts, signal: ctl.signal, onEvent: (e) => onRunEvent(p, e) });
    stopBar(p);
    reportRun(r, o, outDir);
  } catch (err) {
    stopBar(p);
    if (err instanceof CliError) throw err;
    const e = err as GpucoloError;
    if (e.code === 'EBADSCENARIO') throw new CliError(e.message, 2, false, e.code);
    throw err;
  } finally {
    removeSignals();
  }
}
