/**
 * gpucolo staged plan|run: model-swap pipelines (workloads/model_host.py per stage) with a resume
 * journal. Exit codes: 0 done; 1 stopped by a failure (model load, item with on_item_error: stop);
 * 2 bad pipeline file; 130 interrupted (SIGINT/SIGTERM: hosts stopped, journal flushed).
 */
import { Command } from 'commander';
import { GpucoloError, oneLine } from '../errors.js';
import { planStaged, runStaged, type StagedEvent, type StagedReport } from '../runners/staged/index.js';
import { CliError } from './errors.js';

function badFile(err: unknown): never {
  if (err instanceof GpucoloError && (err.code === 'EBADCONFIG' || err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'EBADJOURNAL')) throw new CliError(oneLine(err), 2);
  throw err;
}

export function stagedCommand(): Command {
  const cmd = new Command('staged').description('model-swap pipelines: items by category through stages, few model loads, resumable');
  cmd
    .command('plan')
    .description('print the swap plan for what is left (reads an existing journal; runs nothing)')
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .option('--json', 'print the plan as JSON')
    .action((file: string, o: { json?: boolean }) => {
      let r;
      try {
        r = planStaged(file);
      } catch (err) {
        badFile(err);
      }
      for (const w of r.warnings) process.stderr.write(`gpucolo: warning: ${w}\n`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ plan: r.plan, remaining: r.remaining }, null, 2)}\n`);
        return;
      }
      const p = r.plan;
      const left = r.remaining.categories.reduce((a, c) => a + Object.values(c.remaining).reduce((x, y) => x + y, 0), 0);
      process.stdout.write(`pipeline ${r.pipeline.name}: mode ${p.mode}; ${left} (item, stage) pairs left\n`);
      process.stdout.write(`loads ${p.loads}, unloads ${p.unloads} (per-item order: ${p.naiveLoads} loads)\n`);
      for (const s of p.steps) process.stdout.write(`  ${s.kind.padEnd(7)} ${s.stage}${s.category !== undefined ? `  [${s.category}${s.items !== undefined ? `, ${s.items} items` : ''}]` : ''}\n`);
      for (const n of p.notes) process.stdout.write(`note: ${n}\n`);
    });
  cmd
    .command('run')
    .description('run the pipeline (resumes from <output_dir>/journal.jsonl)')
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .option('--no-resume', 'start over (moves the journal away)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: { resume: boolean; json?: boolean }) => {
      const ac = new AbortController();
      let signals = 0;
      const onSig = (): void => {
        signals++;
        if (signals === 1) {
          process.stderr.write('gpucolo: interrupted: stopping model hosts, flushing the journal\n');
          ac.abort();
        } else process.exit(130);
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      const onEvent = (e: StagedEvent): void => {
        if (e.type === 'warning') process.stderr.write(`gpucolo: warning: ${e.message}\n`);
        else if (e.type === 'plan') process.stderr.write(`${e.replanned ? 're-planned' : 'plan'}: ${e.plan.mode}, ${e.plan.loads} loads (per-item: ${e.plan.naiveLoads})\n`);
        else if (e.type === 'load') process.stderr.write(`load ${e.stage}: ${e.ms.toFixed(1)} ms, ${e.memoryMB.toFixed(0)} MB\n`);
        else if (e.type === 'unload') process.stderr.write(`unload ${e.stage}: ${e.ms.toFixed(1)} ms\n`);
        else if (e.type === 'stage-end') process.stderr.write(`${e.category} / ${e.stage}: ${e.processed} done, ${e.failed} failed, ${e.skipped} skipped\n`);
      };
      let rep: StagedReport;
      try {
        rep = await runStaged(file, { resume: o.resume, signal: ac.signal, onEvent });
      } catch (err) {
        badFile(err);
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
      if (o.json) process.stdout.write(`${JSON.stringify(rep, null, 2)}\n`);
      else {
        for (const c of rep.categories) {
          const s = c.fields.score ?? Object.values(c.fields)[0];
          process.stdout.write(`${c.name}: ${c.completed}/${c.items} done, ${c.failed} failed${s && s.mean !== null ? `, mean ${s.mean.toFixed(4)} median ${s.median!.toFixed(4)}` : ''}\n`);
        }
        process.stdout.write(`swaps: ${rep.swaps.loads} loads, ${rep.swaps.unloads} unloads; report ${rep.files?.json ?? '(not written)'}\n`);
      }
      if (rep.status === 'interrupted') throw new CliError('interrupted; run again to resume', 130, true);
      if (rep.status === 'stopped') throw new CliError(`stopped: ${rep.error}`, 1, true);
    });
  return cmd;
}
