/**
 * gpucolo tune SCENARIO: per mechanism, the knob setting that meets every high-priority SLO with
 * the most low-priority throughput (src/tune/). Writes tune.json (after every trial), report.md
 * and the chart of the Pareto front; prints the recommendation. Exit codes: 0 the search ran (the
 * recommendation may still be none: that is a result); 1 it could not do its job (no backend, no
 * mechanism that runs here, the baseline failed, the output could not be written); 2 bad usage
 * (unknown mechanism, one without a knob, a scenario without a high-priority SLO, a budget too
 * small for one trial); 130 Ctrl-C (tune.json keeps what was measured).
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { GpucoloError } from '../errors.js';
import { MECHANISMS, type Mechanism } from '../scenario/schema.js';
import { DEFAULT_BUDGET_NS, TUNABLE, knobProblem, tuneScenario, type TuneEvent, type TuneResult, type TuneTrial } from '../tune/index.js';
import { formatDuration } from '../units.js';
import { CliError } from './errors.js';
import { scenarioArg } from './scenario-arg.js';
import { duration, durationArg, integerArg, listArg } from './options.js';
import { onInterrupts } from './signals.js';

/** mechanisms to tune: known ones with a knob */
const mechanisms = listArg<Mechanism>('mechanism', MECHANISMS, { check: knobProblem });

/** "cu-mask and sm-partition (reserve), throttle (throttleK)": the tunable mechanisms by knob, from the registry */
function tunableText(): string {
  const byKnob = new Map<string, string[]>();
  for (const [m, k] of Object.entries(TUNABLE)) byKnob.set(k, [...(byKnob.get(k) ?? []), m]);
  const and = (xs: string[]): string => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}` : xs[0]);
  return [...byKnob].map(([k, ms]) => `${and(ms)} (${k})`).join(', ');
}

const positiveDuration = durationArg({ positive: true });

/** 20261206-214500 in local time: the default output directory's suffix. */
function stamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

const pct = (v: number | null): string => (v === null ? '?' : `${(v * 100).toFixed(0)}%`);
const ms = (v: number | null): string => (v === null ? '?' : `${v.toFixed(1)} ms`);

/** One line per finished trial. */
export function trialLine(t: TuneTrial): string {
  const rounds = `${t.rounds}/${t.maxRounds} round${t.maxRounds === 1 ? '' : 's'}${t.stoppedEarly ? ', stopped early' : ''}${t.budgetCut ? ', budget' : ''}`;
  return `trial ${t.id}: ${t.mechanism} ${t.label}${t.attempt ? ` (repeat ${t.attempt})` : ''}: ${t.verdict.toUpperCase()} (${rounds}) HP P99 ${ms(t.hpP99Ms)}, LP ${pct(t.lpShare)} of standalone`;
}

/** What is printed at the end: the recommendation (or why none), the fronts, the files. */
export function tuneSummaryText(r: TuneResult, files: string[]): string {
  const out: string[] = [];
  for (const m of r.mechanisms) {
    const front = m.front.map((f) => `${f.label} (P99 ${ms(f.hpP99Ms)}, LP ${pct(f.lpShare)})`).join(', ');
    const counts = new Map<string, number>();
    for (const t of r.trials) if (t.mechanism === m.mechanism) counts.set(t.verdict, (counts.get(t.verdict) ?? 0) + 1);
    const trials = [...counts].map(([v, n]) => `${n} ${v}`).join(', ');
    out.push(`${m.mechanism}: ${m.status === 'skipped' ? `skipped: ${m.reason}` : `${m.status}${trials ? ` (trials: ${trials})` : ''}${front ? `; front: ${front}` : ''}`}`);
  }
  out.push('');
  if (r.recommendation) {
    const rec = r.recommendation;
    out.push(`recommendation: ${rec.mechanism}, ${rec.label}: HP P99 ${ms(rec.hpP99Ms)}, LP ${pct(rec.lpShare)} of standalone`, `  ${r.why}`, '', 'paste into the scenario:', ...rec.yaml.trimEnd().split('\n').map((l) => `  ${l}`));
  } else {
    out.push('recommendation: none', `  ${r.why}`);
  }
  if (r.budget.ranOut) out.push('', `the budget (${r.budget.budgetS} s) ran out: the search stopped${r.recommendation ? '; the recommendation is the best setting verified before that' : ''}`);
  if (r.partial) out.push('', 'PARTIAL: interrupted; tune.json holds the trials that ran');
  out.push('', ...files.map((f) => `wrote ${f}`));
  return `${out.join('\n')}\n`;
}

interface TuneCliOptions {
  out?: string;
  mechanism?: Mechanism[];
  budget: number;
  form: 'auto' | 'probe' | 'torch';
  backend?: 'auto' | 'cpu' | 'cuda' | 'hip';
  duration?: number;
  warmup?: number;
  maxRounds?: number;
  python?: string;
  charts: boolean;
  json?: boolean;
}

/** Progress on stderr: a bar over the budget on a TTY, a line per trial otherwise. */
function progress(budgetMs: number): { onEvent: (e: TuneEvent) => void; stop: () => void } {
  const tty = process.stderr.isTTY === true;
  let bar: SingleBar | null = null;
  let tick: NodeJS.Timeout | null = null;
  let what = 'baseline';
  const t0 = Date.now();
  const total = Math.ceil(budgetMs / 1000);
  const stop = (): void => {
    if (tick) clearInterval(tick);
    tick = null;
    bar?.stop();
    bar = null;
  };
  const say = (line: string): void => {
    if (bar) bar.stop();
    process.stderr.write(`gpucolo tune: ${line}\n`);
    if (bar) bar.start(total, Math.min(total, Math.round((Date.now() - t0) / 1000)), { what });
  };
  const onEvent = (e: TuneEvent): void => {
    if (e.type === 'start') {
      const list = e.mechanisms.map((m) => (m.skipped ? `${m.mechanism} (skipped: ${m.skipped})` : `${m.mechanism} (${m.levels} level${m.levels === 1 ? '' : 's'})`)).join(', ');
      process.stderr.write(`gpucolo tune: ${e.form} form, ${e.backend}${e.device ? ` ${e.device}` : ''}; ${list}; budget ${formatDuration(e.budgetMs * 1e6)}\n`);
      if (tty) {
        bar = new SingleBar({ format: 'budget |{bar}| {value}/{total} s  {what}', hideCursor: true, clearOnComplete: true, stream: process.stderr });
        bar.start(total, 0, { what });
        tick = setInterval(() => bar?.update(Math.min(total, Math.round((Date.now() - t0) / 1000)), { what }), 500);
      }
    } else if (e.type === 'baseline') {
      what = e.again ? `baseline again: every task alone (${e.again})` : `baseline: every task alone${e.attempt ? ` (repeat ${e.attempt}: it was noisy)` : ''}`;
      if (!tty) say(what);
    } else if (e.type === 'trial-start') {
      what = `trial ${e.id}: ${e.mechanism} ${e.label}${e.attempt ? ` (repeat ${e.attempt})` : ''}`;
    } else if (e.type === 'round') {
      what = what.replace(/ round \d+\/\d+$/, '') + ` round ${e.round}/${e.maxRounds}`;
    } else if (e.type === 'trial-end') {
      say(trialLine(e.trial));
    } else if (e.type === 'done') {
      stop();
      for (const c of e.chartErrors) process.stderr.write(`gpucolo tune: chart ${c}\n`);
    }
  };
  return { onEvent, stop };
}

function exitCodeOf(e: GpucoloError): number {
  if (e.code === 'EBADUSAGE' || e.code === 'EBADSCENARIO') return 2;
  if (e.code === 'EINTERRUPTED') return 130;
  return 1;
}

export function tuneCommand(): Command {
  return new Command('tune')
    .description('find, per mechanism, the setting that meets every high-priority SLO with the most low-priority throughput (coarse search, then bisection; trials stop early once decided); writes tune.json, report.md and a chart of the Pareto front')
    .argument('<scenario>', 'canned name (inference-service, multi-tenant, realtime-batch) or a scenario file')
    .option('--mechanism <list>', `mechanisms to tune: ${tunableText()} (default: each of them the backend can run)`, mechanisms)
    .addOption(new Option('--budget <duration>', 'total wall time; the search stops when it is spent and keeps the best verified setting').argParser(positiveDuration).default(DEFAULT_BUDGET_NS, formatDuration(DEFAULT_BUDGET_NS)))
    .option('--out <dir>', 'output directory (default gpucolo-runs/tune-<name>-<time>)')
    .addOption(new Option('--form <form>', 'probe (spin kernels), torch (model workers) or auto').choices(['auto', 'probe', 'torch']).default('auto'))
    .addOption(new Option('--backend <name>', "probe form backend (default: the scenario's)").choices(['auto', 'cpu', 'cuda', 'hip']))
    .option('--duration <duration>', 'measured time per round of a trial (default: the scenario\'s duration)', positiveDuration)
    .option('--warmup <duration>', 'warm-up per round (default: the scenario\'s)', duration)
    .option('--max-rounds <n>', 'rounds a trial may take before it is inconclusive (default: what proving the HP P99 met needs at the baseline\'s rate, at most 8)', integerArg({ min: 1 }))
    .option('--python <path>', 'python with PyTorch for the torch form (default $GPUCOLO_PYTHON or /usr/bin/python3)')
    .option('--no-charts', 'skip the chart of the front')
    .option('--json', 'print tune.json to stdout at the end')
    .action(async (ref: string, o: TuneCliOptions) => {
      const { scenario, source } = scenarioArg(ref);
      const outDir = o.out ?? path.join('gpucolo-runs', `tune-${scenario.name}-${stamp()}`);
      const ctl = new AbortController();
      const onInt = (): void => {
        if (!ctl.signal.aborted) process.stderr.write('\ngpucolo tune: interrupted: stopping, tune.json keeps the trials that ran\n');
        ctl.abort();
      };
      const removeSignals = onInterrupts([onInt], ['SIGINT', 'SIGTERM']);
      const bar = progress(o.budget / 1e6);
      try {
        const r = await tuneScenario(scenario, source, {
          outDir,
          mechanisms: o.mechanism,
          budgetNs: o.budget,
          form: o.form,
          backend: o.backend,
          durationNs: o.duration,
          warmupNs: o.warmup,
          maxRounds: o.maxRounds,
          python: o.python,
          charts: o.charts,
          signal: ctl.signal,
          onEvent: bar.onEvent,
        });
        bar.stop();
        process.stdout.write(o.json ? `${JSON.stringify(r.result, null, 2)}\n` : tuneSummaryText(r.result, r.files));
        if (r.result.partial) throw new CliError(`interrupted: tune.json in ${outDir} keeps the trials that ran`, 130);
      } catch (err) {
        bar.stop();
        if (err instanceof CliError) throw err;
        if (err instanceof GpucoloError) throw new CliError(err.message, exitCodeOf(err), false, err.code);
        const e = err as NodeJS.ErrnoException;
        if (typeof e?.code === 'string') throw new CliError(e.message, 1, false, e.code);
        throw err;
      } finally {
        removeSignals();
      }
    });
}
