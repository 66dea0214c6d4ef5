/**
 * Runs the steps of `npm run gpu-check`: the gpucolo CLI in child processes (node dist/cli/cli.js
 * ... --json, or the results.json of `gpucolo run`) and the C++ floor (gpucolo_floor), each under a
 * timeout inside the whole check's time budget. Every raw output is kept under <out>/raw/ and the
 * whole record is written as raw/observations.json, which `--replay` judges again.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../native.js';
import { VERSION } from '../version.js';
import { formatDuration } from '../units.js';
import type { DoctorReport } from '../doctor.js';
import type { LatencyProbeResult, PriorityProbeResult } from '../dispatch/index.js';
import type { Results } from '../scenario/types.js';
import { EXPECT, MECHANISMS, chooseBackend, deviceOf, fillPlan, mechanismSupported, type Mechanism } from './expectations.js';
import { helpOptions, inProcessFormArgs } from './features.js';
import type { Backend, FloorResult, LatencyRound, Observations, PriorityPlan, RunForm, RunObservation, Step } from './types.js';

export interface RunnerOptions {
  backend: 'auto' | Backend;
  device: number;
  /** where summary.json goes; raw outputs in <outDir>/raw */
  outDir: string;
  /** gpucolo_floor to use (else $GPUCOLO_FLOOR, build-cc/, build/) */
  floor?: string;
  /** build gpucolo_floor with cmake when none is found */
  buildFloor: boolean;
  latencyRounds: number;
  /** per probe latency run (its warm-up is min(200 ms, a fifth)); the floor measures as long as the run does */
  latencyDurationNs: number;
  spinDurationNs: number;
  priorityDurationNs: number;
  priorityRounds: number;
  lpKernelNs: number;
  hpKernelNs: number;
  reserve: number;
  throttleK: number;
  /** hip: KFD queue priority the kfd.set-priority check sets (0..15) */
  kfdPriority: number;
  /** hip: pass --allow-debug-trap to the KFD step when the CLI has it (preempts every queue on the GPU) */
  allowDebugTrap: boolean;
  /** run the `gpucolo run inference-service` checks */
  runs: boolean;
  runDurationNs: number;
  runWarmupNs: number;
  runRounds: number;
  python?: string;
  judgeCpuTimings: boolean;
  budgetS: number;
  /** tee the children's stderr */
  verbose: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** What a GPU host runs by default (about 5 minutes on one H100, see README). */
export const DEFAULTS = {
  device: 0,
  latencyRounds: 3,
  latencyDurationNs: 1.5e9,
  spinDurationNs: 2e9,
  priorityDurationNs: 5e9,
  priorityRounds: 2,
  lpKernelNs: 2e6,
  hpKernelNs: 100e3,
  reserve: 0.1,
  throttleK: 1,
  kfdPriority: 15,
  runDurationNs: 5e9,
  runWarmupNs: 1e9,
  runRounds: 1,
  budgetS: EXPECT.budgetS,
} as const;

export const CLI_PATH = path.join(PACKAGE_ROOT, 'dist', 'cli', 'cli.js');
const STDERR_TAIL = 15;
/** a step never starts with less than this left of the budget */
const MIN_STEP_MS = 15_000;
const KILL_GRACE_MS = 10_000;

interface Exec {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  elapsedS: number;
}

/** Runs argv in its own process group; on timeout or abort SIGTERM to the group, SIGKILL after a grace. */
export function execStep(argv: string[], o: { timeoutMs: number; cwd?: string; signal?: AbortSignal; onStderr?: (s: string) => void }): Promise<Exec> {
  const t0 = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | null = null;
    const child = spawn(argv[0], argv.slice(1), { cwd: o.cwd ?? PACKAGE_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const stop = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      killTimer ??= setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, o.timeoutMs);
    const onAbort = (): void => stop();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      o.onStderr?.(d);
    });
    const done = (exitCode: number | null, signal: string | null): void => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode, signal, timedOut, stdout, stderr, elapsedS: elapsed() });
    };
    child.on('error', (err) => {
      stderr += `${err.message}\n`;
      done(null, null);
    });
    child.on('close', (code, sig) => done(code, sig));
  });
}

const tail = (s: string): string[] =>
  s
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-STDERR_TAIL);

/** The JSON a step printed: the whole stdout, else its last line (gpucolo_floor prints one line). */
export function parseJsonOutput<T>(stdout: string): { json: T | null; error?: string } {
  const text = stdout.trim();
  if (!text) return { json: null, error: 'empty stdout' };
  try {
    return { json: JSON.parse(text) as T };
  } catch (err) {
    const last = text.split('\n').pop()!;
    try {
      return { json: JSON.parse(last) as T };
    } catch {
      return { json: null, error: `not JSON: ${(err as Error).message}` };
    }
  }
}

/** Floor binaries to try, in order. */
export function floorCandidates(explicit?: string): string[] {
  return [explicit, process.env.GPUCOLO_FLOOR, path.join(PACKAGE_ROOT, 'build-cc', 'gpucolo_floor'), path.join(PACKAGE_ROOT, 'build', 'gpucolo_floor'), path.join(PACKAGE_ROOT, 'build', 'Release', 'gpucolo_floor')].filter(
    (x): x is string => !!x,
  );
}

const executable = (f: string): boolean => {
  try {
    fs.accessSync(f, fs.constants.X_OK);
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
};

/** A usable gpucolo_floor, building it with cmake (target gpucolo_floor in build-cc) when asked and possible; or why not. */
function findFloor(o: RunnerOptions, timeoutMs: number): { path: string } | { skipped: string } {
  if (o.floor) return executable(o.floor) ? { path: o.floor } : { skipped: `--floor ${o.floor} is not an executable file` };
  const found = floorCandidates().find(executable);
  if (found) return { path: found };
  const src = path.join(PACKAGE_ROOT, 'native', 'tests', 'floor.cc');
  const looked = 'no gpucolo_floor in $GPUCOLO_FLOOR, build-cc/ or build/';
  if (!o.buildFloor) return { skipped: `${looked} and --no-build-floor (build it: cmake -S . -B build-cc -DGPUCOLO_BUILD_TESTS=ON && cmake --build build-cc --target gpucolo_floor)` };
  if (!fs.existsSync(src)) return { skipped: `${looked}, and native/tests/floor.cc is not in this tree (an npm package leaves native/tests out): carry build-cc/gpucolo_floor or pass --floor` };
  if (spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status !== 0) return { skipped: `${looked}, and cmake is not on PATH to build it: carry build-cc/gpucolo_floor or pass --floor` };
  if (timeoutMs < 30_000) return { skipped: `${looked}, and the time budget leaves too little to build it` };
  const dir = path.join(PACKAGE_ROOT, 'build-cc');
  o.log(`building gpucolo_floor in ${dir} (cmake)`);
  const t0 = Date.now();
  const left = (): number => Math.max(1000, timeoutMs - (Date.now() - t0));
  if (!fs.existsSync(path.join(dir, 'CMakeCache.txt'))) {
    const c = spawnSync('cmake', ['-S', PACKAGE_ROOT, '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DGPUCOLO_BUILD_TESTS=ON'], { encoding: 'utf8', timeout: left() });
    if (c.status !== 0) return { skipped: `${looked}; configuring build-cc failed: ${tail(`${c.stderr ?? ''}${c.error?.message ?? ''}`).slice(-2).join(' | ')}` };
  }
  const b = spawnSync('cmake', ['--build', dir, '-j', String(Math.max(1, os.availableParallelism())), '--target', 'gpucolo_floor'], { encoding: 'utf8', timeout: left() });
  const bin = path.join(dir, 'gpucolo_floor');
  if (b.status !== 0 || !executable(bin)) return { skipped: `${looked}; building it failed: ${tail(`${b.stderr ?? ''}${b.stdout ?? ''}${b.error?.message ?? ''}`).slice(-2).join(' | ')}` };
  return { path: bin };
}

/** "10%" for 0.1 */
const share = (x: number): string => `${+(x * 100).toPrecision(4)}%`;

/** The state the steps of runChecks share: options, the time budget, the record being filled, the chosen backend. */
interface RunCtx {
  o: RunnerOptions;
  t0: number;
  deadline: number;
  /** <outDir>/raw */
  raw: string;
  /** steps started so far (numbers the log lines) */
  n: number;
  obs: Observations;
  /** the usable backend; doctorStep sets it (the steps after it run only when there is one) */
  B: Backend;
  dev: ReturnType<typeof deviceOf>;
  /** --backend and --device for every probe */
  common: string[];
  /** `probe priority --help` (priorityStep reads it, kfdStep too) */
  priorityHelp: string;
  /** --lp-blocks as the priority steps pass it */
  lpBlocks: string[];
}

/** ms left of the whole check's budget */
const budgetLeft = (c: RunCtx): number => c.deadline - Date.now();
/** a path as the record shows it, relative to the out dir */
const relOut = (c: RunCtx, f: string): string => path.relative(c.o.outDir, f);
/** a step that did not run, and why */
const skippedStep = <T>(name: string, why: string): Step<T> => ({ name, argv: [], exitCode: null, elapsedS: 0, stderrTail: [], json: null, skipped: why });
/** argv of the gpucolo CLI with these arguments */
const cli = (...args: string[]): string[] => [process.execPath, CLI_PATH, ...args];
/** the --help text of a CLI command */
const helpOf = async (c: RunCtx, ...args: string[]): Promise<string> => (await execStep(cli(...args, '--help'), { timeoutMs: 30_000, signal: c.o.signal })).stdout;

/** One step: a program and its arguments, its stdout parsed as JSON (or a file it wrote). */
async function runStep<T>(c: RunCtx, name: string, argv: string[], opts: { timeoutMs: number; resultFile?: string; what?: string }): Promise<Step<T>> {
  const o = c.o;
  if (o.signal?.aborted) return skippedStep(name, 'interrupted');
  if (budgetLeft(c) < MIN_STEP_MS) return skippedStep(name, `time budget (${o.budgetS} s) spent`);
  const timeoutMs = Math.min(opts.timeoutMs, budgetLeft(c));
  o.log(`[${++c.n}] ${name}${opts.what ? `: ${opts.what}` : ''}`);
  const r = await execStep(argv, { timeoutMs, signal: o.signal, onStderr: o.verbose ? (s) => process.stderr.write(s.replace(/^(?=.)/gm, '      ')) : undefined });
  const base = name.replace(/[^a-z0-9.-]+/gi, '_');
  const outFile = path.join(c.raw, `${base}.${opts.resultFile ? 'stdout.txt' : 'json'}`);
  fs.writeFileSync(outFile, r.stdout);
  if (r.stderr) fs.writeFileSync(path.join(c.raw, `${base}.stderr.txt`), r.stderr);
  let json: T | null = null;
  let parseError: string | undefined;
  if (opts.resultFile) {
    try {
      json = JSON.parse(fs.readFileSync(opts.resultFile, 'utf8')) as T;
    } catch (err) {
      parseError = `${relOut(c, opts.resultFile)}: ${(err as Error).message}`;
    }
  } else {
    const p = parseJsonOutput<T>(r.stdout);
    json = p.json;
    parseError = p.error;
  }
  o.log(`    ${r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`} after ${r.elapsedS.toFixed(1)} s`);
  return {
    name,
    argv,
    exitCode: r.exitCode,
    ...(r.signal ? { signal: r.signal } : {}),
    ...(r.timedOut ? { timedOut: true } : {}),
    elapsedS: +r.elapsedS.toFixed(3),
    stderrTail: tail(r.stderr),
    json,
    ...(json === null && parseError ? { parseError } : {}),
    file: relOut(c, opts.resultFile ?? outFile),
  };
}

/** The empty record runChecks fills in. */
function newObservations(o: RunnerOptions): Observations {
  return {
    schema: 'gpucolo.gpu-check-observations/1',
    gpucoloVersion: VERSION,
    createdAt: new Date().toISOString(),
    host: { hostname: os.hostname(), platform: process.platform, arch: process.arch, node: process.version },
    requestedBackend: o.backend,
    backend: null,
    backendWhy: '',
    judgeTimings: false,
    budgetS: o.budgetS,
    elapsedS: 0,
    doctor: skippedStep('doctor', 'not run'),
    latency: { rounds: [] },
    spin: null,
    priority: { plan: null, step: null },
    kfd: { step: null, priority: null },
    runs: [],
    runsSkipped: [],
  };
}

/** Stamps the elapsed time and writes raw/observations.json. */
function finishObservations(c: RunCtx): Observations {
  c.obs.elapsedS = +((Date.now() - c.t0) / 1000).toFixed(1);
  fs.writeFileSync(path.join(c.raw, 'observations.json'), `${JSON.stringify(c.obs, null, 2)}\n`);
  return c.obs;
}

/** Runs doctor and picks the backend: sets c.B, c.dev, c.common and returns true; or records why nothing else runs and returns false. */
async function doctorStep(c: RunCtx): Promise<boolean> {
  const { o, obs } = c;
  // doctor --measure (where this CLI has it) runs a short empty-kernel series per device: the timer resolution
  const measure = helpOptions(await helpOf(c, 'doctor')).has('--measure') ? ['--measure'] : [];
  obs.doctor = await runStep<DoctorReport>(c, 'doctor', cli('doctor', '--json', ...measure), { timeoutMs: 120_000, what: measure.length ? '--measure' : undefined });
  const choice = chooseBackend(o.backend, obs.doctor.json);
  obs.backend = choice.backend;
  obs.backendWhy = choice.why;
  obs.judgeTimings = choice.backend !== null && (choice.backend !== 'cpu' || o.judgeCpuTimings);
  const b = obs.backend;
  const dev = deviceOf(obs.doctor.json, b, o.device);
  const bInfo = b ? obs.doctor.json?.backends?.find((x) => x.name === b) : undefined;
  const unusable = !b ? choice.why : !dev ? `${b} backend unavailable: ${bInfo?.reason ?? (bInfo?.available ? `no device ${o.device}` : 'not listed by doctor')}` : null;
  if (unusable) {
    const why = `not run: no usable backend (doctor.backend says why: ${unusable.length > 100 ? `${unusable.slice(0, 97)}...` : unusable})`;
    obs.stoppedEarly = why;
    obs.kfd.skipped = why;
    obs.runsSkipped.push({ form: 'torch', reason: why });
    return false;
  }
  c.B = b!;
  c.dev = dev;
  // --device only when not 0: `probe --device 0` is refused by a CLI whose parser wants >= 1
  c.common = ['--backend', c.B, ...(o.device ? ['--device', String(o.device)] : [])];
  return true;
}

/** Empty-kernel round trips, each round interleaved with the C++ floor (odd rounds floor first). */
async function latencyStep(c: RunCtx): Promise<void> {
  const { o, obs, B } = c;
  const floor = findFloor(o, Math.min(300_000, Math.max(0, budgetLeft(c) - 4 * 60_000)));
  let floorTarget: string | null = null;
  if ('path' in floor) {
    if (B === 'cpu') floorTarget = 'cpu';
    else {
      const p = obs.doctor.json?.plugins?.list?.find((x) => x.name === B);
      floorTarget = p?.loaded ? p.path : null;
      if (!floorTarget) obs.latency.floorSkipped = `the ${B} plugin is not loaded (doctor), so gpucolo_floor has nothing to dlopen`;
    }
    obs.latency.floorBinary = floor.path;
    if (floorTarget) obs.latency.floorTarget = floorTarget;
  } else obs.latency.floorSkipped = floor.skipped;
  const warm = Math.min(200e6, o.latencyDurationNs / 5);
  const floorSeconds = ((o.latencyDurationNs - warm) / 1e9).toFixed(3);
  for (let r = 1; r <= o.latencyRounds; r++) {
    const order: LatencyRound['order'] = r % 2 === 1 ? 'floor-first' : 'engine-first';
    const runEngine = (): Promise<Step<LatencyProbeResult>> =>
      runStep<LatencyProbeResult>(c, `latency-empty-r${r}`, cli('probe', 'latency', ...c.common, '--duration', formatDuration(o.latencyDurationNs), '--json'), { timeoutMs: 60_000 + o.latencyDurationNs / 1e6, what: `round ${r}/${o.latencyRounds}, engine` });
    const runFloor = async (): Promise<Step<FloorResult> | null> =>
      floorTarget && 'path' in floor
        ? runStep<FloorResult>(c, `floor-r${r}`, [floor.path, floorTarget, '--mode', 'handoff', '--seconds', floorSeconds, '--spin', '0', '--device', String(o.device)], { timeoutMs: 60_000 + o.latencyDurationNs / 1e6, what: `round ${r}/${o.latencyRounds}, C++ floor` })
        : null;
    let engine: Step<LatencyProbeResult>;
    let fl: Step<FloorResult> | null;
    if (order === 'floor-first') {
      fl = await runFloor();
      engine = await runEngine();
    } else {
      engine = await runEngine();
      fl = await runFloor();
    }
    obs.latency.rounds.push({ round: r, order, engine, floor: fl });
  }
}

/** The 1 ms spin on the device clock. */
async function spinStep(c: RunCtx): Promise<void> {
  const o = c.o;
  c.obs.spin = await runStep<LatencyProbeResult>(c, 'latency-spin-1ms', cli('probe', 'latency', ...c.common, '--kernel', formatDuration(EXPECT.spinNs), '--duration', formatDuration(o.spinDurationNs), '--json'), { timeoutMs: 60_000 + o.spinDurationNs / 1e6 });
}

/** probe priority on a filled device, every mechanism (again with the supported ones where an older CLI threw all away); sets c.priorityHelp, c.lpBlocks. */
async function priorityStep(c: RunCtx): Promise<void> {
  const { o, obs, dev } = c;
  // LP kernels that fill the device: the CLI's own --lp-blocks fill where it has it (sized per
  // variant, for the compute units LP keeps as made), else the whole device from doctor's occupancy
  c.priorityHelp = await helpOf(c, 'probe', 'priority');
  const cliFills = /--lp-blocks\s+<[^>]*\bfill\b[^>]*>/.test(c.priorityHelp);
  const fill = fillPlan(dev);
  const lpBlocksArg = cliFills ? 'fill' : fill ? String(fill.lpBlocks) : null;
  const plan: PriorityPlan = { mechanisms: [...MECHANISMS], lpKernelNs: o.lpKernelNs, hpKernelNs: o.hpKernelNs, reserve: o.reserve, throttleK: o.throttleK, lpBlocksArg, fill };
  obs.priority.plan = plan;
  c.lpBlocks = lpBlocksArg ? ['--lp-blocks', lpBlocksArg] : [];
  const priorityArgs = (mechs: string[]): string[] =>
    cli(
      'probe',
      'priority',
      ...c.common,
      '--mechanism',
      mechs.join(','),
      '--lp-kernel',
      formatDuration(o.lpKernelNs),
      '--hp-kernel',
      formatDuration(o.hpKernelNs),
      ...c.lpBlocks,
      '--reserve',
      share(o.reserve),
      '--k',
      String(o.throttleK),
      '--duration',
      formatDuration(o.priorityDurationNs),
      '--rounds',
      String(o.priorityRounds),
      '--json',
    );
  const variants = 2 + MECHANISMS.length;
  const priorityTimeout = 120_000 + 2 * variants * o.priorityRounds * (o.priorityDurationNs / 1e6 + 2000);
  const what = `${MECHANISMS.length} mechanisms, ${o.priorityRounds} round(s) of ${variants} runs x ${formatDuration(o.priorityDurationNs)}, --lp-blocks ${lpBlocksArg ?? '(default)'}`;
  let pr = await runStep<PriorityProbeResult>(c, 'probe-priority', priorityArgs(plan.mechanisms), { timeoutMs: priorityTimeout, what });
  if (!pr.skipped && !pr.timedOut && pr.json === null) {
    // an older CLI throws the whole probe away for one mechanism the backend lacks (issue 15 item 7)
    const supported = MECHANISMS.filter((m: Mechanism) => mechanismSupported(m, dev) !== false);
    if (supported.length < MECHANISMS.length) {
      const first = pr;
      pr = await runStep<PriorityProbeResult>(c, 'probe-priority-supported', priorityArgs(supported), { timeoutMs: priorityTimeout, what: `retry with ${supported.join(', ')}` });
      plan.retriedWith = supported;
      plan.firstAttempt = `exit ${first.exitCode}: ${first.stderrTail.slice(-1).join('')}`;
    }
  }
  obs.priority.step = pr;
}

/** KFD queue priority (AMD, a CLI with --kfd-priority), else why it is skipped. */
async function kfdStep(c: RunCtx): Promise<void> {
  const { o, obs, B } = c;
  if (B !== 'hip') obs.kfd.skipped = `KFD queues are AMD's (backend ${B})`;
  else if (!obs.doctor.json?.kfd?.sysfs?.ok) obs.kfd.skipped = `no KFD on this host: ${obs.doctor.json?.kfd?.sysfs?.error ?? 'sysfs topology unreadable'}`;
  else {
    const ph = helpOptions(c.priorityHelp);
    if (!ph.has('--kfd-priority')) obs.kfd.skipped = 'this CLI has no probe priority --kfd-priority';
    else {
      const dbg = o.allowDebugTrap && ph.has('--allow-debug-trap') ? ['--allow-debug-trap'] : [];
      obs.kfd.priority = o.kfdPriority;
      obs.kfd.step = await runStep<PriorityProbeResult>(
        c,
        'probe-priority-kfd',
        cli('probe', 'priority', ...c.common, '--mechanism', 'stream-priority', '--kfd-priority', String(o.kfdPriority), ...dbg, ...c.lpBlocks, '--lp-kernel', formatDuration(o.lpKernelNs), '--duration', '3s', '--rounds', '1', '--json'),
        { timeoutMs: 120_000, what: `--kfd-priority ${o.kfdPriority}${dbg.length ? ' --allow-debug-trap' : ''}` },
      );
      if (o.allowDebugTrap && !dbg.length) obs.kfd.note = '--allow-debug-trap asked, but this CLI has no such option (ran without it)';
    }
  }
}

/** Which `gpucolo run inference-service` forms to run; records those skipped and why. */
async function runForms(c: RunCtx): Promise<{ form: RunForm; args: string[] }[]> {
  const { o, obs, B } = c;
  const forms: { form: RunForm; args: string[] }[] = [];
  if (!o.runs) obs.runsSkipped.push({ form: B === 'cpu' ? 'probe' : 'torch', reason: '--no-runs' });
  else if (B === 'cpu') {
    forms.push({ form: 'probe', args: ['--form', 'probe', '--backend', 'cpu'] });
    const why = 'cpu backend: the torch forms run PyTorch workers on the GPU; the probe form runs instead (run.probe.*)';
    obs.runsSkipped.push({ form: 'torch', reason: why }, { form: 'torch-in-process', reason: why });
  } else {
    forms.push({ form: 'torch', args: ['--form', 'torch'] });
    const inProc = inProcessFormArgs(await helpOf(c, 'run'));
    if (inProc) forms.push({ form: 'torch-in-process', args: inProc.args });
    else obs.runsSkipped.push({ form: 'torch-in-process', reason: 'this CLI has no in-process torch form (gpucolo run --help lists none)' });
  }
  return forms;
}

/** `gpucolo run inference-service` once per form, each into raw/run-<form>/ (its results.json is the step's JSON). */
async function runsStep(c: RunCtx): Promise<void> {
  const o = c.o;
  for (const f of await runForms(c)) {
    const outDir = path.join(c.raw, `run-${f.form}`);
    fs.rmSync(outDir, { recursive: true, force: true });
    const argv = cli(
      'run',
      'inference-service',
      ...f.args,
      '--out',
      outDir,
      '--duration',
      formatDuration(o.runDurationNs),
      '--warmup',
      formatDuration(o.runWarmupNs),
      '--rounds',
      String(o.runRounds),
      '--no-charts',
      ...(o.python && f.form !== 'probe' ? ['--python', o.python] : []),
    );
    const ro: RunObservation = { form: f.form, formArgs: f.args, step: await runStep<Results>(c, `run-${f.form}`, argv, { timeoutMs: 300_000, resultFile: path.join(outDir, 'results.json'), what: f.args.join(' ') }) };
    c.obs.runs.push(ro);
  }
}

/** The whole check, step by step, within o.budgetS; writes raw/observations.json and returns the record. */
export async function runChecks(o: RunnerOptions): Promise<Observations> {
  const t0 = Date.now();
  const raw = path.join(o.outDir, 'raw');
  fs.mkdirSync(raw, { recursive: true });
  // B is a placeholder until doctorStep sets it; no later step runs without that
  const c: RunCtx = { o, t0, deadline: t0 + o.budgetS * 1000, raw, n: 0, obs: newObservations(o), B: 'cpu', dev: null, common: [], priorityHelp: '', lpBlocks: [] };
  if (!(await doctorStep(c))) return finishObservations(c);
  await latencyStep(c);
  await spinStep(c);
  await priorityStep(c);
  await kfdStep(c);
  await runsStep(c);
  return finishObservations(c);
}
