import { Command, InvalidArgumentError } from 'commander';
import { runStudy, type StudyReport } from '../trace/index.js';
import { writeFileAtomic } from '../trace/index.js';
import { CliError } from './errors.js';
import { addSamplingOptions, samplingOptions, type TraceCliOptions } from './trace.js';
import { checkGivenRoots } from './options.js';

function runsArg(v: string): number {
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`not a number of runs: "${v}"`);
  return Number(v);
}

function markdown(r: StudyReport): string {
  const out = [`# Queue-usage study: \`${r.command.join(' ')}\``, '', `gpucolo ${r.gpucoloVersion}, ${r.runs.length} run(s).`, ''];
  for (const line of r.summary) out.push(`- ${line}`);
  out.push('', '| run | ended by | exit | processes | steady queues | types | queue ids | HQD slots | trace |', '|---|---|---|---|---|---|---|---|---|');
  for (const run of r.runs) {
    const ps = run.processes;
    out.push(
      `| ${run.index} | ${run.endedBy}${run.error ? ` (${run.error})` : ''} | ${run.exitCode ?? run.exitSignal ?? '-'} | ${ps.length} | ${ps.map((p) => p.steadyQueues).join(' / ') || '-'} | ${ps.map((p) => p.types.join(', ')).join(' / ') || '-'} | ${ps.map((p) => p.qids.join(',')).join(' / ') || '-'} | ${ps.map((p) => p.placements.join('; ')).join(' / ') || '-'} | ${run.trace} |`,
    );
  }
  return `${out.join('\n')}\n`;
}

export function studyCommand(): Command {
  const study = new Command('study').description('repeat an experiment and report how consistent it is').enablePositionalOptions();
  const qu = new Command('queue-usage')
    .description('trace the same command N times; compare its KFD processes, queue counts, ids and HQD slots across runs')
    .argument('<command...>', 'the command to study (after --)')
    .option('--runs <n>', 'number of runs', runsArg, 5)
    .option('--out-dir <dir>', 'where run-<i>.jsonl traces go', 'study-queue-usage')
    .option('--json', 'print the study report as JSON')
    .option('--md <file>', 'also write the report as Markdown');
  addSamplingOptions(qu).passThroughOptions();
  qu.action(async (command: string[], o: TraceCliOptions & { runs: number; outDir: string; json?: boolean; md?: string }) => {
    checkGivenRoots(qu);
    const ctl = new AbortController();
    const onInt = (): void => ctl.abort();
    process.once('SIGINT', onInt);
    let report: StudyReport;
    try {
      report = await runStudy({
        ...samplingOptions(o),
        command,
        runs: o.runs,
        dir: o.outDir,
        signal: ctl.signal,
        onRun: (run, total) =>
          process.stderr.write(
            `gpucolo study: run ${run.index}/${total} ended by ${run.endedBy}${run.exitCode !== null ? ` (code ${run.exitCode})` : ''}: ${run.processes.length} KFD process(es), steady queues ${run.processes.map((p) => p.steadyQueues).join('/') || '-'} -> ${run.trace}\n`,
          ),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new CliError(err.message, 2);
      throw err;
    } finally {
      process.off('SIGINT', onInt);
    }
    if (o.md) writeFileAtomic(o.md, markdown(report));
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${report.summary.join('\n')}\n`);
    // a study where no run could even be traced is a failure, not a result
    const failed = report.runs.filter((r) => r.endedBy === 'error');
    if (report.runs.length && failed.length === report.runs.length) throw new CliError(`every run failed (first: ${failed[0].error ?? 'unknown error'})`, 1);
  });
  study.addCommand(qu);
  return study;
}
