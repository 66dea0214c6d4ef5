/**
 * gpucolo staged plan|run: model-swap pipelines (workloads/model_host.py per stage) with a resume
 * journal. Exit codes: 0 done; 1 stopped by a failure (model load, item with on_item_error: stop);
 * 2 bad pipeline file; 130 interrupted (SIGINT/SIGTERM: the item in flight finishes and is journaled;
 * a second signal stops the model hosts at once).
 */
import { Command } from 'commander';
import { GpucoloError, oneLine } from '../errors.js';
import { isBadInput } from '../input-file.js';
import { isWriteError } from '../write.js';
import { countSwaps, humanMs, planStaged, runStaged, swapSavings, swapSavingsLine, type StagedReport, type Strategy } from '../runners/staged/index.js';
import { stagedProgress } from './staged-progress.js';
import { CliError } from './errors.js';
import { onInterrupts } from './signals.js';

// --out is relative to the current directory; output_dir in the file is relative to the file
const OUT_HELP = "output directory (default: the pipeline's budgets.output_dir, relative to the pipeline file; without one gpucolo-staged/<name> here)";

const STRATEGY_HELP = "per-item (each item through all stages: the notes' single-stage order), staged (each category stage by stage: the two-stage order, fewest swaps) or auto (staged when it swaps less); default: the pipeline's strategy, else staged";

function strategyOf(v: string | undefined): Strategy | undefined {
  if (v === undefined) return undefined;
  if (v === 'per-item' || v === 'staged' || v === 'auto') return v;
  throw new CliError(`--strategy: expected per-item, staged or auto, got "${v}"`, 2);
}

function badFile(err: unknown): never {
  // a failed output write (a GpucoloError too, with the same errno codes) stays exit 1
  if (err instanceof GpucoloError && !isWriteError(err) && (err.code === 'EBADCONFIG' || err.code === 'EBADJOURNAL' || isBadInput(err))) throw new CliError(oneLine(err), 2, false, err.code);
  throw err;
}

export function stagedCommand(): Command {
  const cmd = new Command('staged').description('model-swap pipelines: items by category through stages, few model loads, resumable');
  cmd
    .command('plan')
    .description('print the swap plan for what is left (reads an existing journal; runs nothing)')
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .option('--out <dir>', OUT_HELP)
    .option('--strategy <s>', STRATEGY_HELP)
    .option('--json', 'print the plan as JSON')
    .action(planAction);
  cmd
    .command('run')
    .description('run the pipeline (resumes from <output_dir>/journal.jsonl)')
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .option('--out <dir>', OUT_HELP)
    .option('--no-resume', 'start over (moves the journal away)')
    .option('--strategy <s>', STRATEGY_HELP)
    .option('--calibrate', 'load and unload each model once before the run, to predict the time the strategy saves on swaps')
    .option('--json', 'print the report as JSON')
    .action(runAction);
  return cmd;
}

/** `staged plan`: prints the swap plan for what is left of the pipeline. */
function planAction(file: string, o: { out?: string; json?: boolean; strategy?: string }): void {
      const strategy = strategyOf(o.strategy);
      let r;
      try {
        r = planStaged(file, { outputDir: o.out, strategy });
      } catch (err) {
        badFile(err);
      }
      const savings = swapSavings(r.choice.perItem.steps, r.choice.staged.steps, r.swapTimes, null);
      for (const w of r.warnings) process.stderr.write(`gpucolo: warning: ${w}\n`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ plan: r.plan, remaining: r.remaining, strategy: { requested: r.choice.requested, used: r.choice.used, reason: r.choice.reason }, swapSavings: savings }, null, 2)}\n`);
        return;
      }
      const p = r.plan;
      const left = r.remaining.categories.reduce((a, c) => a + Object.values(c.remaining).reduce((x, y) => x + y, 0), 0);
      process.stdout.write(`pipeline ${r.pipeline.name}: mode ${p.mode}; ${left} (item, stage) pairs left\n`);
      process.stdout.write(`loads ${p.loads}, unloads ${p.unloads} (per-item order: ${p.naiveLoads} loads)\n`);
      for (const s of p.steps) process.stdout.write(`  ${s.kind.padEnd(7)} ${s.stage}${s.category !== undefined ? `  [${s.category}${s.items !== undefined ? `, ${s.items} items` : ''}]` : ''}\n`);
      process.stdout.write(`strategy: ${r.choice.used}${r.choice.requested === 'auto' ? ` (auto: ${r.choice.reason})` : ''}\n`);
      const pred = savings.predicted;
      const t = pred === null ? 'no load/unload times measured yet (run with --calibrate, or a run here measures them)' : pred.savedMs === null ? "not every model's load/unload time is known" : `${humanMs(pred.savedMs)} saved (${humanMs(pred.perItemMs!)} -> ${humanMs(pred.stagedMs!)}; times ${pred.source})`;
      process.stdout.write(`swaps per-item -> staged: ${countSwaps(r.choice.perItem.steps)} -> ${countSwaps(r.choice.staged.steps)}${savings.reductionPct === null ? '' : ` (${savings.reductionPct.toFixed(1)}% fewer)`}; predicted time on swaps: ${t}\n`);
      for (const n of p.notes) process.stdout.write(`note: ${n}\n`);
}

/** `staged run`: runs the pipeline under the three-step interrupt handling, then prints its report. */
async function runAction(file: string, o: { out?: string; resume: boolean; json?: boolean; strategy?: string; calibrate?: boolean }): Promise<void> {
      const strategy = strategyOf(o.strategy);
      // first signal: finish the call in flight (journaled), then stop; second: kill the model
      // hosts now (that item is redone on resume); third: leave at once
      const progress = stagedProgress(process.stderr);
      const soft = new AbortController();
      const hard = new AbortController();
      const removeSignals = onInterrupts([
        (sig) => {
          progress.log(`gpucolo: ${sig}: finishing the item in flight, then stopping (again to stop the model hosts now)`);
          soft.abort();
        },
        (sig) => {
          progress.log(`gpucolo: ${sig} again: stopping the model hosts now`);
          hard.abort();
        },
        () => process.exit(130),
      ]);
      let rep: StagedReport;
      try {
        rep = await runStaged(file, { outputDir: o.out, resume: o.resume, strategy, calibrate: o.calibrate, signal: soft.signal, killSignal: hard.signal, onEvent: progress.onEvent });
      } catch (err) {
        badFile(err);
      } finally {
        progress.stop();
        removeSignals();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(rep, null, 2)}\n`);
      else {
        for (const c of rep.categories) {
          const s = c.fields.score ?? Object.values(c.fields)[0];
          process.stdout.write(`${c.name}: ${c.completed}/${c.items} done, ${c.failed} failed${s && s.mean !== null ? `, mean ${s.mean.toFixed(4)} median ${s.median!.toFixed(4)}` : ''}\n`);
        }
        if (rep.strategy) process.stdout.write(`strategy: ${rep.strategy.used}${rep.strategy.requested === 'auto' ? ` (auto: ${rep.strategy.reason})` : ''}\n`);
        if (rep.swapSavings) process.stdout.write(`${swapSavingsLine(rep.swapSavings)}\n`);
        process.stdout.write(`swaps: ${rep.swaps.loads} loads, ${rep.swaps.unloads} unloads; report ${rep.files?.json ?? '(not written)'}\n`);
      }
      if (rep.status === 'interrupted') throw new CliError('interrupted; run again to resume', 130, true);
      if (rep.status === 'stopped') throw new CliError(`stopped: ${rep.error}`, 1, true);
}
