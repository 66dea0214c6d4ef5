#!/usr/bin/env node
/**
 * `npm run gpu-check` (scripts/gpu-check.sh runs this file): the one-command GPU check of issue 15.
 * Runs the steps (runner.ts), judges them (expectations.ts), writes <out>/summary.json next to
 * <out>/raw/ and exits 0 (nothing failed), 1 (an expectation failed), 2 (cannot run: usage, no
 * readable --replay file), 3 (--strict and an applicable expectation was not judged) or 130
 * (interrupted). `--replay <observations.json>` judges a recorded run again without measuring.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../units.js';
import { GpucoloError } from '../errors.js';
import { evaluate } from './expectations.js';
import { DEFAULTS, runChecks, type RunnerOptions } from './runner.js';
import { buildSummary, summaryText } from './summary.js';
import type { Observations } from './types.js';

/** A bad --out or --replay: printed as one line, exit 2 (main below). A GpucoloError with code EBADUSAGE, as the gpucolo CLI's. */
class UsageError extends GpucoloError {
  constructor(message: string) {
    super(message, { code: 'EBADUSAGE' });
    this.name = 'UsageError';
  }
}

const durationArg = (v: string): number => {
  let ns: number;
  try {
    ns = parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (!(ns > 0)) throw new InvalidArgumentError('must be > 0');
  return ns;
};
const intArg = (min: number, max: number) => (v: string): number => {
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`not a whole number in ${min}..${max}: "${v}"`);
  return Number(v);
};
const shareArg = (v: string): number => {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(v.trim());
  const x = m ? Number(m[1]) / 100 : Number(v);
  if (!(x > 0 && x < 1)) throw new InvalidArgumentError(`not a share: "${v}" (e.g. 10%)`);
  return x;
};

interface CliOptions {
  backend: 'auto' | 'cpu' | 'cuda' | 'hip';
  device: number;
  out: string;
  floor?: string;
  buildFloor: boolean;
  latencyRounds: number;
  latencyDuration: number;
  spinDuration: number;
  priorityDuration: number;
  priorityRounds: number;
  lpKernel: number;
  reserve: number;
  kfdPriority: number;
  allowDebugTrap?: boolean;
  runs: boolean;
  runDuration: number;
  runWarmup: number;
  runRounds: number;
  python?: string;
  judgeCpuTimings?: boolean;
  budget: number;
  strict?: boolean;
  replay?: string;
  json?: boolean;
  verbose?: boolean;
}

export function program(): Command {
  return new Command('gpu-check')
    .description('one-command GPU check (issue 15): doctor, probe latency vs the C++ floor, probe priority with every mechanism on a filled GPU, run inference-service with torch; writes <out>/summary.json, exits 1 when an expectation fails')
    .addOption(new Option('--backend <name>', 'backend to check: auto = cuda, else hip (never cpu); cpu only on purpose (tests)').choices(['auto', 'cpu', 'cuda', 'hip']).default('auto'))
    .option('--device <n>', 'device index', intArg(0, 64), DEFAULTS.device)
    .option('--out <dir>', 'where summary.json and raw/ go', 'gpu-check')
    .option('--floor <path>', 'gpucolo_floor binary (default: $GPUCOLO_FLOOR, build-cc/gpucolo_floor, build/gpucolo_floor)')
    .option('--no-build-floor', 'do not build gpucolo_floor with cmake when none is found (the floor check is then skipped)')
    .option('--latency-rounds <n>', 'interleaved rounds of probe latency and the floor', intArg(1, 50), DEFAULTS.latencyRounds)
    .option('--latency-duration <d>', 'per probe latency run', durationArg, DEFAULTS.latencyDurationNs)
    .option('--spin-duration <d>', 'the 1 ms spin run', durationArg, DEFAULTS.spinDurationNs)
    .option('--priority-duration <d>', 'per probe priority run (each of 7 variants, each round)', durationArg, DEFAULTS.priorityDurationNs)
    .option('--priority-rounds <n>', 'probe priority rounds', intArg(1, 20), DEFAULTS.priorityRounds)
    .option('--lp-kernel <d>', 'LP kernel (one LP block spins this long)', durationArg, DEFAULTS.lpKernelNs)
    .option('--reserve <share>', 'compute units kept for HP under sm-partition / cu-mask', shareArg, DEFAULTS.reserve)
    .option('--kfd-priority <n>', 'hip: the KFD queue priority the set check gives the HP stream (0..15)', intArg(0, 15), DEFAULTS.kfdPriority)
    .option('--allow-debug-trap', 'hip: let the KFD step use the debugger queue snapshot where the CLI offers --allow-debug-trap (it preempts every queue of every process on the GPU)')
    .option('--no-runs', 'skip the gpucolo run inference-service checks')
    .option('--run-duration <d>', 'measured time per phase of gpucolo run', durationArg, DEFAULTS.runDurationNs)
    .option('--run-warmup <d>', 'warm-up per phase of gpucolo run', durationArg, DEFAULTS.runWarmupNs)
    .option('--run-rounds <n>', 'rounds of gpucolo run', intArg(1, 10), DEFAULTS.runRounds)
    .option('--python <path>', 'python with PyTorch for the torch form (default $GPUCOLO_PYTHON or /usr/bin/python3)')
    .option('--judge-cpu-timings', 'on the cpu backend, judge the GPU timing expectations too (they are recorded, not judged, by default)')
    .option('--budget <d>', 'time for the whole check; steps that would start after it are skipped', durationArg, DEFAULTS.budgetS * 1e9)
    .option('--strict', 'exit 3 when nothing failed but an expectation that applies here was not judged')
    .option('--replay <file>', 'judge a recorded raw/observations.json again instead of measuring')
    .option('--json', 'print summary.json to stdout instead of the text')
    .option('--verbose', "show the gpucolo commands' own progress (stderr)")
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(`gpu-check: ${s.replace(/^error:\s*/, '')}`) });
}

function prepareRaw(out: string): void {
  const raw = path.join(out, 'raw');
  if (fs.existsSync(raw)) {
    const ours = fs.existsSync(path.join(raw, '.gpu-check')) || fs.existsSync(path.join(raw, 'observations.json'));
    if (!ours) throw new UsageError(`${raw} exists and is not a gpu-check output; choose another --out`);
    fs.rmSync(raw, { recursive: true, force: true });
  }
  fs.mkdirSync(raw, { recursive: true });
  fs.writeFileSync(path.join(raw, '.gpu-check'), 'raw outputs of npm run gpu-check; removed by the next run with the same --out\n');
}

export async function main(argv: string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = program().parse(argv, { from: 'user' }).opts<CliOptions>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const out = path.resolve(o.out);
  let got: Gathered;
  try {
    got = o.replay ? replayObservations(o.replay, out) : await runLive(o, out);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`gpu-check: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  return writeSummary(o, out, got);
}

/** The observations to judge, where their raw files are (relative to the output directory), and whether a signal cut the run short. */
interface Gathered {
  obs: Observations;
  rawDir: string;
  interrupted: boolean;
}

/** --replay: reads an earlier run's observations file (UsageError when it is not one). */
function replayObservations(replay: string, out: string): Gathered {
  const file = path.resolve(replay);
  let obs: Observations;
  try {
    obs = JSON.parse(fs.readFileSync(file, 'utf8')) as Observations;
  } catch (err) {
    throw new UsageError(`--replay ${replay}: ${(err as Error).message}`);
  }
  if (obs?.schema !== 'gpucolo.gpu-check-observations/1') throw new UsageError(`--replay ${replay}: not a gpu-check observations file (schema ${String(obs?.schema)})`);
  fs.mkdirSync(out, { recursive: true });
  return { obs, rawDir: path.relative(out, path.dirname(file)) || '.', interrupted: false };
}

/** The runner's options from the command line. */
function runnerOptions(o: CliOptions, out: string, signal: AbortSignal): RunnerOptions {
  return {
    backend: o.backend,
    device: o.device,
    outDir: out,
    floor: o.floor,
    buildFloor: o.buildFloor,
    latencyRounds: o.latencyRounds,
    latencyDurationNs: o.latencyDuration,
    spinDurationNs: o.spinDuration,
    priorityDurationNs: o.priorityDuration,
    priorityRounds: o.priorityRounds,
    lpKernelNs: o.lpKernel,
    hpKernelNs: DEFAULTS.hpKernelNs,
    reserve: o.reserve,
    throttleK: DEFAULTS.throttleK,
    kfdPriority: o.kfdPriority,
    allowDebugTrap: !!o.allowDebugTrap,
    runs: o.runs,
    runDurationNs: o.runDuration,
    runWarmupNs: o.runWarmup,
    runRounds: o.runRounds,
    python: o.python,
    judgeCpuTimings: !!o.judgeCpuTimings,
    budgetS: o.budget / 1e9,
    verbose: !!o.verbose,
    log: (l) => process.stderr.write(`gpu-check: ${l}\n`),
    signal,
  };
}

/** Runs the checks here, SIGINT/SIGTERM stopping the running step (the summary is still written). */
async function runLive(o: CliOptions, out: string): Promise<Gathered> {
  prepareRaw(out);
  let interrupted = false;
  const ctl = new AbortController();
  const onSig = (): void => {
    if (!ctl.signal.aborted) process.stderr.write('\ngpu-check: interrupted: stopping the running step, writing the summary\n');
    interrupted = true;
    ctl.abort();
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  const ro = runnerOptions(o, out, ctl.signal);
  let obs: Observations;
  try {
    obs = await runChecks(ro);
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  if (interrupted) obs.stoppedEarly ??= 'interrupted';
  return { obs, rawDir: 'raw', interrupted };
}

/** Judges the observations, writes summary.json and prints it (JSON or text); the exit code. */
function writeSummary(o: CliOptions, out: string, got: Gathered): number {
  const { obs, rawDir, interrupted } = got;
  const checks = evaluate(obs, o.device);
  const summary = buildSummary(obs, checks, { strict: !!o.strict, rawDir, replayedFrom: o.replay ? path.resolve(o.replay) : undefined, interrupted, deviceIndex: o.device });
  const file = path.join(out, 'summary.json');
  fs.writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : summaryText(summary, path.relative(process.cwd(), file) || file));
  return summary.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gpu-check: error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
