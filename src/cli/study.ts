import { Command } from 'commander';
import { runStudy, type StudyReport } from '../trace/index.js';
import { writeFileAtomic } from '../trace/index.js';
import { errnoCode } from '../errors.js';
import { CliError } from './errors.js';
import { addSamplingOptions, samplingOptions, type TraceCliOptions } from './trace.js';
import { checkGivenRoots, durationOption, integerArg } from './options.js';
import { formatDuration } from '../units.js';

const runsArg = integerArg({ min: 1, max: 9999, what: 'a number of runs' });
const toleranceArg = integerArg({ max: 9999, what: 'a whole number of queues' });

const ms = (ns: number | null): string => (ns === null ? '-' : formatDuration(ns));

export function markdown(r: StudyReport): string {
  const out = [`# Queue-usage study: \`${r.command.join(' ')}\``, '', `gpucolo ${r.gpucoloVersion}, ${r.runs.length} run(s).`, ''];
  for (const line of r.summary) out.push(`- ${line}`);
  out.push('', '| run | ended by | exit | processes | steady queues | types | queue ids | HQD slots | trace |', '|---|---|---|---|---|---|---|---|---|');
  for (const run of r.runs) {
    const ps = run.processes;
    out.push(
      `| ${run.index} | ${run.endedBy}${run.error ? ` (${run.error})` : ''} | ${run.exitCode ?? run.exitSignal ?? '-'} | ${ps.length} | ${ps.map((p) => p.steadyQueues).join(' / ') || '-'} | ${ps.map((p) => p.types.join(', ')).join(' / ') || '-'} | ${ps.map((p) => p.qids.join(',')).join(' / ') || '-'} | ${ps.map((p) => p.placements.join('; ')).join(' / ') || '-'} | ${run.trace} |`,
    );
  }
  if (r.verdicts && r.criteria) {
    out.push('', `## Verdicts: ${r.verdicts.overall.toUpperCase()}`, '');
    out.push(`- queue count: ${r.criteria.rules.queueCount}`, `- identification: ${r.criteria.rules.identification}`, '');
    out.push('| verdict | subject | result | detail |', '|---|---|---|---|');
    for (const v of r.verdicts.queueCount) out.push(`| queue count consistent (+-${r.criteria.tolerance}) | process #${v.ordinal} | ${v.verdict.toUpperCase()} | ${v.values.map((x) => x ?? '-').join(', ')}: ${v.reason} |`);
    for (const v of r.verdicts.identification) out.push(`| queues identified within ${formatDuration(r.criteria.identifyWithinNs)} of start | run ${v.run} | ${v.verdict.toUpperCase()} | ${ms(v.identifiedAfterStartNs)}: ${v.reason} |`);
  }
  if (r.conclusions) {
    out.push('', '## Conclusions', '');
    for (const line of r.conclusions.lines) out.push(`- ${line}`);
    if (r.conclusions.processes.length) {
      out.push('', '| process | queues | types | stable within runs | consistent across runs | MQD -> HQD | first queue after start | all identified after start | all destroyed after exit |', '|---|---|---|---|---|---|---|---|---|');
      const rg = (x: { min: number | null; max: number | null }): string => (x.min === null ? '-' : x.min === x.max ? ms(x.min) : `${ms(x.min)}..${ms(x.max)}`);
      for (const p of r.conclusions.processes) {
        const qc = p.queueCount;
        out.push(`| #${p.ordinal} | ${qc.typical ?? '-'}${qc.min !== qc.max ? ` (${qc.min}..${qc.max})` : ''} | ${p.types || '-'} | ${p.stability.withinRuns ? 'yes' : 'no'} | ${p.stability.acrossRuns} | ${p.mapping ?? 'unknown (no HQD data)'} | ${rg(p.lifecycle.firstQueueAfterStartNs)} | ${rg(p.lifecycle.identifiedAfterStartNs)} | ${rg(p.lifecycle.allDestroyedAfterExitNs)} |`);
      }
    }
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
    .option('--tolerance <n>', 'queue counts of the runs may differ by this many queues (the design notes: 1)', toleranceArg, 0)
    .addOption(durationOption('--identify-within <duration>', "verdict: every queue seen within this long of the command's start", 5e9))
    .option('--json', 'print the study report as JSON')
    .option('--md <file>', 'also write the report as Markdown');
  addSamplingOptions(qu).passThroughOptions();
  qu.action(async (command: string[], o: TraceCliOptions & { runs: number; outDir: string; json?: boolean; md?: string; tolerance: number; identifyWithin: number }) => {
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
        tolerance: o.tolerance,
        identifyWithinNs: o.identifyWithin,
        signal: ctl.signal,
        onRun: (run, total) =>
          process.stderr.write(
            `gpucolo study: run ${run.index}/${total} ended by ${run.endedBy}${run.exitCode !== null ? ` (code ${run.exitCode})` : ''}: ${run.processes.length} KFD process(es), steady queues ${run.processes.map((p) => p.steadyQueues).join('/') || '-'} -> ${run.trace}\n`,
          ),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new CliError(err.message, 2, false, errnoCode(err));
      throw err;
    } finally {
      process.off('SIGINT', onInt);
    }
    if (o.md) writeFileAtomic(o.md, markdown(report));
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${[...report.summary, ...(report.conclusions?.lines.map((l) => `conclusion: ${l}`) ?? [])].join('\n')}\n`);
    // a study where no run could even be traced is a failure, not a result
    const failed = report.runs.filter((r) => r.endedBy === 'error');
    if (report.runs.length && failed.length === report.runs.length) throw new CliError(`every run failed (first: ${failed[0].error ?? 'unknown error'})`, 1);
  });
  study.addCommand(qu);
  return study;
}
