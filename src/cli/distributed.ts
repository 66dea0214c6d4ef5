/**
 * gpucolo distributed run|compare|analyze: DDP vs hand-written all-reduce vs parameter server
 * with workloads/dist_train.py, launched by torchrun or by gpucolo's direct rank launcher,
 * supervised (process groups, run registry, timeout, a failing rank stops the job). compare runs
 * the methods interleaved over --rounds (order rotated each round) and reports the pooled figures
 * with their spread between rounds and a quality block (see runners/distributed/rounds*.ts).
 *
 * Exit codes: 0 done; 1 a run failed or timed out (manifest and logs written), or analyze found
 * nothing to read; 2 bad usage or options caught before anything started (missing data-dir/
 * pretrained, ps with one rank, port in use, unknown python), the training script rejecting its
 * arguments (every rank exits 2), or an invalid result file; 130 interrupted (SIGINT/SIGTERM:
 * every rank is stopped, SIGTERM -> grace -> SIGKILL). A second SIGINT SIGKILLs every group.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { errnoCode, GpucoloError, oneLine } from '../errors.js';
import { isRefusedInput } from '../input-file.js';
import { isWriteError } from '../write.js';
import { METHODS, PS_IMPLS, PS_TOPOLOGIES, listResultFiles, type DistMethod, type PsImpl, type PsTopologyName } from '../runners/distributed/schema.js';
import { LAUNCHERS, defaultPython, type LauncherRequest } from '../runners/distributed/launcher.js';
import { distributedSupervisor, runDistributed, type DistributedEvent, type DistributedLaunchOptions, type DistributedRunResult, type DistributedTrainOptions } from '../runners/distributed/run.js';
import { compareDistributed, type DistributedCompareResult } from '../runners/distributed/compare.js';
import { loadRoundsSummary, qualityLines, roundsText } from '../runners/distributed/rounds-summary.js';
import { analyzeDistributed, type DistributedAnalysis } from '../runners/distributed/analyze.js';
import type { Supervisor } from '../supervisor/index.js';
import { CliError } from './errors.js';
import { onInterrupts } from './signals.js';
import { durationArg, integerArg, listArg, listDefault, numberArg, secondsOption } from './options.js';
import { table } from './table.js';

/** upper bounds: a typo (100000 ranks) must not start processes until the machine gives out */
const MAX_NPROC_PER_NODE = 1024;
const MAX_NNODES = 4096;
const durationMs = durationArg({ unit: 'ms' });
const methodsArg = listArg<DistMethod>('method', METHODS);

/** Training options the CLI passes through under their own names (the script's flags). */
const TRAIN_KEYS = ['model', 'pretrained', 'dataDir', 'synthetic', 'imageSize', 'numClasses', 'trainSamples', 'valSamples', 'epochs', 'batchSize', 'workers', 'lr', 'momentum', 'backend', 'seed', 'maxSteps', 'threads', 'dumpParams'] as const satisfies readonly (keyof DistributedTrainOptions)[];

interface CommonCli extends Pick<DistributedTrainOptions, (typeof TRAIN_KEYS)[number]> {
  psImpl?: PsImpl;
  psTopology?: PsTopologyName;
  bucketMb?: number;
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  rdzvEndpoint?: string;
  masterPort?: number;
  launcher: LauncherRequest;
  timeout?: number;
  grace: number;
  exitGrace: number;
  python?: string;
  registry?: string;
  out: string;
  json?: boolean;
  /** --script-timeout (DistributedTrainOptions.scriptTimeoutS) */
  scriptTimeout?: number;
}

/** Options shared by run and compare: launching plus the training options passed through. */
function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--ps-impl <impl>', 'parameter-server implementation').choices([...PS_IMPLS]))
    .addOption(
      new Option('--ps-topology <layout>', "ps: colocated = rank 0 serves and computes (default; global batch as DDP's); dedicated = rank 0 only serves, world size - 1 workers (the design notes' ps_train.py)").choices([...PS_TOPOLOGIES]),
    )
    .option('--bucket-mb <mb>', 'allreduce bucket size in MB (0 = one all_reduce per parameter)', numberArg({ min: 0 }))
    .option('--nproc-per-node <n>', 'ranks on this node', integerArg({ min: 1, max: MAX_NPROC_PER_NODE }), 2)
    .option('--nnodes <n>', 'nodes (> 1 needs --rdzv-endpoint and torchrun)', integerArg({ min: 1, max: MAX_NNODES }))
    .option('--node-rank <r>', "this node's rank (0 .. nnodes-1)", integerArg({ min: 0 }))
    .option('--rdzv-endpoint <host:port>', 'c10d rendezvous endpoint, the same on every node')
    .option('--master-port <port>', 'direct launcher: MASTER_PORT (default: a free port)', integerArg({ min: 1, max: 65535 }))
    .addOption(new Option('--launcher <launcher>', 'auto: torchrun where it works, else direct (single node)').choices([...LAUNCHERS]).default('auto'))
    .option('--timeout <duration>', 'stop every rank after this long, per run (e.g. 30s, 10m; a bare number is seconds)', durationMs)
    .addOption(secondsOption('--grace <s>', 'seconds between SIGTERM and SIGKILL when stopping ranks', 5))
    .addOption(secondsOption('--exit-grace <s>', 'direct launcher: seconds the other ranks get to exit once one has exited 0 (then they are stopped; torch 1.13 can hang in DDP teardown)', 10))
    .option('--python <path>', `interpreter for the ranks (default $GPUCOLO_PYTHON or ${defaultPython({})})`)
    .option('--registry <file>', 'run registry file (default: per user, under $XDG_RUNTIME_DIR/gpucolo or the temp dir); gpucolo cleanup reads it')
    .requiredOption('--out <dir>', 'output directory (result files, run_<method>.json, logs/)')
    .option('--json', 'print the result as JSON')
    .option('--model <name>', 'smallcnn or a torchvision classification model', 'smallcnn')
    .option('--pretrained <file>', 'local state_dict to start from')
    .option('--data-dir <dir>', 'ImageFolder data: DIR/train and DIR/val class folders')
    .option('--synthetic', 'synthetic data generated from --seed (the default without --data-dir)')
    .option('--image-size <n>', 'image side in pixels', integerArg({ min: 1 }))
    .option('--num-classes <n>', 'classes', integerArg({ min: 2 }))
    .option('--train-samples <n>', 'training samples', integerArg({ min: 1 }))
    .option('--val-samples <n>', 'validation samples (0 = no evaluation)', integerArg({ min: 0 }))
    .option('--epochs <n>', 'epochs', integerArg({ min: 1 }))
    .option('--batch-size <n>', 'batch size per rank', integerArg({ min: 1 }))
    .option('--workers <n>', 'DataLoader workers per rank', integerArg({ min: 0 }))
    .option('--lr <f>', 'learning rate', numberArg({ min: 0, exclusive: true }))
    .option('--momentum <f>', 'SGD momentum', numberArg({ min: 0 }))
    .addOption(new Option('--backend <backend>', 'torch.distributed backend').choices(['auto', 'nccl', 'gloo']))
    .option('--seed <n>', 'seed (model init, data, order)', integerArg({ min: 0 }))
    .option('--max-steps <n>', 'steps per epoch cap (0 = all)', integerArg({ min: 0 }))
    .option('--threads <n>', 'torch threads per rank', integerArg({ min: 1 }))
    .option('--script-timeout <s>', "the script's own rendezvous/collective timeout (--timeout-s)", numberArg({ min: 0, exclusive: true }))
    .option('--dump-params <file>', 'rank 0 saves the final flattened parameters (torch.save); compare adds _<method>');
}

function trainOptions(o: CommonCli): DistributedTrainOptions {
  const t: DistributedTrainOptions = {};
  for (const k of TRAIN_KEYS) if (o[k] !== undefined) (t as Record<string, unknown>)[k] = o[k];
  // --max-steps 0 means "all": the script's default
  if (!o.maxSteps) delete t.maxSteps;
  if (o.scriptTimeout !== undefined) t.scriptTimeoutS = o.scriptTimeout;
  return t;
}

function launchOptions(o: CommonCli, supervisor: Supervisor, signal: AbortSignal, onEvent: (e: DistributedEvent) => void): DistributedLaunchOptions {
  return {
    ...(o.psImpl !== undefined ? { psImpl: o.psImpl } : {}),
    ...(o.psTopology !== undefined ? { psTopology: o.psTopology } : {}),
    ...(o.bucketMb !== undefined ? { bucketMb: o.bucketMb } : {}),
    nprocPerNode: o.nprocPerNode,
    ...(o.nnodes !== undefined ? { nnodes: o.nnodes } : {}),
    ...(o.nodeRank !== undefined ? { nodeRank: o.nodeRank } : {}),
    ...(o.rdzvEndpoint !== undefined ? { rdzvEndpoint: o.rdzvEndpoint } : {}),
    ...(o.masterPort !== undefined ? { masterPort: o.masterPort } : {}),
    launcher: o.launcher,
    ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
    ...(o.python !== undefined ? { python: o.python } : {}),
    outDir: o.out,
    graceMs: o.grace * 1000,
    exitGraceMs: o.exitGrace * 1000,
    supervisor,
    signal,
    onEvent,
  };
}

const fmtS = (s: number | null): string => (s === null ? 'n.a.' : s >= 100 ? s.toFixed(0) : s.toFixed(2));
const say = (line: string): void => {
  process.stderr.write(`gpucolo distributed: ${line}\n`);
};

/** Progress lines on stderr: launcher and why, pids, a timeout, each run's end. */
function progress(): (e: DistributedEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'launcher':
        say(`${e.method}: launcher ${e.choice.launcher}: ${e.choice.why}`);
        break;
      case 'started':
        say(`${e.method}: started ${e.launcher === 'direct' ? `${e.pids.length} rank(s)` : 'torchrun'} (pid ${e.pids.map((p) => p ?? '-').join(' ')})${e.registryFile ? `; registry ${e.registryFile}` : ''}`);
        break;
      case 'timeout':
        say(`${e.method}: timeout: stopping every rank`);
        break;
      case 'done':
        if (e.result.note) say(`${e.method}: note: ${e.result.note}`);
        break;
      case 'exit':
        break;
    }
  };
}

function runLine(r: DistributedRunResult): string {
  if (!r.ok) return `${r.method}: FAILED: ${r.error}`;
  if (!r.result) return `${r.method}: ${r.worldSize} ranks, ${r.launcher}: done in ${fmtS(r.wallS)} s${r.note ? `; ${r.note}` : ''}`;
  const s = r.result!.summary;
  const acc = s.best_val_accuracy ?? null;
  const layout = r.result.ps_topology === 'dedicated' ? ` (PS dedicated: rank 0 serves, ${r.result.num_workers} workers)` : r.method === 'ps' ? ' (PS colocated: every rank computes)' : '';
  return `${r.method}: ${r.worldSize} ranks${layout}, ${r.launcher}: ${s.avg_train_throughput !== null ? `${Math.round(s.avg_train_throughput)} samples/s` : 'n.a. samples/s'}, ${r.result!.steps} steps, best val acc ${acc !== null ? `${acc.toFixed(2)}%` : 'n.a.'}; wall ${fmtS(r.wallS)} s vs in-script ${fmtS(r.scriptS)} s (runner overhead ${fmtS(r.overheadS)} s) -> ${r.resultFile}`;
}

/** Config errors before anything started (and invalid result files) are usage errors: exit 2. */
function libError(err: unknown): never {
  // a failed output write (write.ts: a GpucoloError too) is not a usage error, and keeps the
  // generic line it had before write errors were GpucoloErrors
  if (err instanceof GpucoloError && !isWriteError(err)) {
    const usage = err.code === 'EBADCONFIG' || err.code === 'EBADRESULT' || isRefusedInput(err);
    throw new CliError(oneLine(err), usage ? 2 : 1, false, err.code);
  }
  throw err;
}

/** Exit code of a failed run: 2 when the script rejected its arguments (every rank exits 2). */
function runExitCode(r: DistributedRunResult): number {
  if (r.interrupted) return 130;
  if (!r.timedOut && r.failedExitCode === 2) return 2;
  return 1;
}

/** Signals: first one aborts (stop every rank), a second one SIGKILLs every group. */
function withSignals<T>(supervisor: Supervisor, graceS: number, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const remove = onInterrupts([
    (sig) => {
      say(`${sig}: stopping every rank (SIGTERM, ${graceS} s grace, SIGKILL)`);
      ctl.abort();
    },
    (sig) => {
      say(`${sig} again: SIGKILL to every process group`);
      supervisor.killAll();
    },
  ]);
  return body(ctl.signal).finally(remove);
}

const analysisJson = (a: DistributedAnalysis) => ({
  dir: a.dir,
  baseline: a.baseline,
  // which format each file was read in (gpucolo's or the design notes' scripts')
  read: a.results.map((r) => ({ file: r.file, label: r.label, displayName: r.displayName, method: r.method, format: r.format, elided: r.elided, psTopology: r.result.ps_topology })),
  comparison: a.comparison,
  communication: a.communication,
  files: a.files,
  plots: a.plots,
});

/** Where the analysis wrote its report and plots (and which plots failed). */
function wroteLines(a: DistributedAnalysis): string[] {
  const drawn = a.plots.filter((p) => p.svg);
  const lines = [`wrote ${a.files.txt}, ${a.files.md}`, `plots: ${drawn.length}/${a.plots.length} in ${a.plotsDir} (${drawn.flatMap((p) => [p.svg, p.png].filter(Boolean).map((f) => path.basename(f!))).join(', ')})`];
  for (const p of a.plots.filter((x) => x.error)) lines.push(`plot ${p.name}: ${p.error}`);
  return lines;
}

function printAnalysis(a: DistributedAnalysis, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(analysisJson(a), null, 2)}\n`);
    return;
  }
  process.stdout.write(a.text);
  process.stdout.write(`\n${wroteLines(a).join('\n')}\n`);
}

/** compare --json: the rounds (pooled figures, spread, quality), each round's analysis, each run in brief. */
function compareJson(res: DistributedCompareResult, dir: string): unknown {
  return {
    dir: path.resolve(dir),
    rounds: res.rounds,
    order: res.order,
    baseline: res.summary?.baseline ?? null,
    variants: res.summary?.variants ?? [],
    quality: res.summary?.quality ?? null,
    reports: res.reports,
    analyses: res.analyses.map(analysisJson),
    runs: res.roundRuns.map((x) => ({
      method: x.method,
      round: x.round,
      position: x.position,
      ok: x.result.ok,
      ...(x.result.error ? { error: x.result.error } : {}),
      launcher: x.result.launcher,
      wallS: x.result.wallS,
      scriptS: x.result.scriptS,
      overheadS: x.result.overheadS,
      resultFile: x.result.resultFile,
    })),
  };
}

/** compare's text: the analysis (one round) or where each round's went, the runs, the pooled figures with spread, the quality. */
function printCompare(res: DistributedCompareResult): void {
  const several = res.rounds > 1;
  if (!several && res.analysis) {
    process.stdout.write(res.analysis.text);
    process.stdout.write(`\n${wroteLines(res.analysis).join('\n')}\n`);
  }
  for (const a of several ? res.analyses : []) {
    const drawn = a.plots.filter((p) => p.svg).length;
    process.stdout.write(`${path.basename(a.dir)}: ${a.files.txt} (and .md), plots ${drawn}/${a.plots.length} in ${a.plotsDir}${a.plots.some((p) => p.error) ? ` (failed: ${a.plots.filter((p) => p.error).map((p) => p.name).join(', ')})` : ''}\n`);
  }
  const rows = res.roundRuns.map((x) => {
    const r = x.result;
    return [...(several ? [String(x.round)] : []), r.method, r.ok ? 'ok' : r.interrupted ? 'interrupted' : 'FAILED', r.launcher, fmtS(r.wallS), fmtS(r.scriptS), fmtS(r.overheadS)];
  });
  process.stdout.write(`\n${table([...(several ? ['round'] : []), 'method', 'status', 'launcher', 'wall (s)', 'in-script (s)', 'overhead (s)'], rows).join('\n')}\n`);
  if (!res.summary) return;
  // several rounds: the pooled table with the spread; one round: its analysis above has the figures
  process.stdout.write(`\n${several ? roundsText(res.summary) : `${qualityLines(res.summary.quality).join('\n')}\n`}`);
}

export function distributedCommand(): Command {
  const cmd = new Command('distributed').description('distributed training: DDP vs all-reduce vs parameter server (workloads/dist_train.py), supervised; compare and analyze');

  addCommonOptions(
    cmd
      .command('run')
      .description('run one method on N ranks (torchrun, or gpucolo launching the ranks directly); result, run_<method>.json manifest and logs in --out')
      .addOption(new Option('--method <method>', 'gradient synchronisation').choices([...METHODS]).makeOptionMandatory()),
  ).action(runAction);

  addCommonOptions(
    cmd
      .command('compare')
      .description('run several methods with identical options, interleaved over rounds (order rotated each round), then analyze: pooled figures with their spread between rounds and a quality block')
      .addOption(listDefault(new Option('--methods <list>', `comma-separated (${METHODS.join(',')})`).argParser(methodsArg), [...METHODS]))
      // 2: the fewest that show a spread; each round is a full run of every method
      .option('--rounds <n>', 'rounds: every method once per round, order rotated each round; round r in DIR/round-<r> when > 1', integerArg({ min: 1, max: 1000 }), 2)
      .option('--no-png', 'plots as SVG only'),
  ).action(compareAction);

  cmd
    .command('analyze')
    .description("tables (throughput, time/epoch, accuracy, speedup vs DDP; comm per step), performance_report.txt/.md and plots/ from the results_*.json in DIR: gpucolo's results or those of the design notes' scripts (no schema field); the report says which was read")
    .argument('<dir>', 'directory with results_*.json')
    .option('--json', 'print the tables as JSON')
    .option('--no-png', 'plots as SVG only')
    .option('--no-plots', 'no plots')
    .action(analyzeAction);

  return cmd;
}

/** `distributed run`: one method on N ranks under its own supervisor; prints the result line or JSON. */
async function runAction(o: CommonCli & { method: DistMethod }): Promise<void> {
    const { supervisor, dispose } = ownSupervisor(o);
    let r: DistributedRunResult;
    try {
      r = await withSignals(supervisor, o.grace, (signal) => runDistributed({ ...trainOptions(o), ...launchOptions(o, supervisor, signal, progress()), method: o.method }).catch(libError));
    } finally {
      dispose();
    }
    if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else if (r.ok) process.stdout.write(`${runLine(r)}\n`);
    if (!r.ok) throw new CliError(`${r.method}: ${r.error} (manifest ${r.manifestFile})`, runExitCode(r), o.json === true);
}

/** `distributed compare`: several methods interleaved over rounds, then analyzed; prints and sets the exit code. */
async function compareAction(o: CommonCli & { methods: DistMethod[]; png: boolean; rounds: number }): Promise<void> {
    const { supervisor, dispose } = ownSupervisor(o);
    const onEvent = progress();
    const events = (e: DistributedEvent): void => {
      onEvent(e);
      if (e.type === 'done') say(runLine(e.result));
    };
    let res;
    try {
      const onRound = (m: DistMethod, r: number, n: number): void => {
        if (n > 1) say(`round ${r}/${n}: ${m}`);
      };
      res = await withSignals(supervisor, o.grace, (signal) =>
        compareDistributed({ ...trainOptions(o), ...launchOptions(o, supervisor, signal, events), methods: o.methods, rounds: o.rounds, png: o.png, onRound }).catch(libError),
      );
    } finally {
      dispose();
    }
    if (o.json) process.stdout.write(`${JSON.stringify(compareJson(res, o.out), null, 2)}\n`);
    else printCompare(res);
    if (res.interrupted) throw new CliError(`interrupted after ${res.runs.length} run(s); results so far in ${path.resolve(o.out)}`, 130, true);
    if (res.analysisError) throw new CliError(`analyze: ${res.analysisError}`, 1, true);
    if (res.failed > 0) {
      const first = res.runs.find((r) => !r.ok)!;
      throw new CliError(`${res.failed} of ${res.runs.length} run(s) failed; first: ${first.method}: ${first.error}`, 1, true);
    }
}

/** `distributed analyze`: tables, report and plots from DIR (or the rounds summary of a multi-round compare). */
async function analyzeAction(dir: string, o: { json?: boolean; png: boolean; plots: boolean }): Promise<void> {
      let a: DistributedAnalysis;
      try {
        if (!fs.existsSync(dir)) throw new CliError(`${dir}: no such directory`, 2);
        // a compare with several rounds: the pooled figures are in rounds.json, each round in round-<r>/
        const rounds = listResultFiles(dir).length === 0 ? loadRoundsSummary(dir) : null;
        if (rounds) {
          const hint = `each round: gpucolo distributed analyze ${path.join(dir, 'round-<r>')}`;
          process.stdout.write(o.json ? `${JSON.stringify(rounds, null, 2)}\n` : `${roundsText(rounds)}\n${hint}\n`);
          return;
        }
        a = await analyzeDistributed(dir, { png: o.png, plots: o.plots });
      } catch (err) {
        if (err instanceof CliError) throw err;
        libError(err);
      }
      printAnalysis(a, o.json);
}

function ownSupervisor(o: CommonCli): { supervisor: Supervisor; dispose(): void } {
  try {
    return distributedSupervisor({ ...(o.registry ? { registryFile: o.registry } : {}), graceMs: o.grace * 1000 });
  } catch (err) {
    throw new CliError(oneLine(err), 1, false, errnoCode(err));
  }
}
