/**
 * `gpucolo analyze <trace.jsonl | dump-dir | ->`: the queue-usage report of a trace or of a
 * directory of plain debugfs dumps. Text summary by default, --json for the report object,
 * --md FILE for a Markdown report (written atomically).
 */
import { Command } from 'commander';
import { errnoCode, GpucoloError } from '../errors.js';
import { isRefusedInput } from '../input-file.js';
import { analyzeTrace, loadTrace, fmtCount, fmtDist, fmtNs, fmtPriority, fmtT, writeMarkdownReport, type QueueUsageReport, type Trace } from '../trace/index.js';
import { fmtParseCost, fmtShare } from '../trace/report-md.js';
import { CliError } from './errors.js';
import { table } from './table.js';

/**
 * Reads a trace for a command; unreadable or invalid input becomes a one-line CliError: exit 2 for
 * a path that is not a regular file, is over the size cap or loops (input-file.ts), else exit 1.
 */
export async function loadTraceForCli(input: string): Promise<Trace> {
  try {
    return await loadTrace(input);
  } catch (err) {
    if (err instanceof GpucoloError) throw new CliError(err.message, isRefusedInput(err) ? 2 : 1, false, err.code);
    throw err;
  }
}

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('queue usage of a trace (or of a directory of plain kfd mqds/hqds dumps): counts, stability, MQD->HQD mapping, lifecycle, sampling quality')
    .argument('<input>', 'trace.jsonl, a dump directory, or - for stdin')
    .option('--json', 'print the report object (schema gpucolo.queue-usage/1)')
    .option('--md <file>', 'also write the report as Markdown to this file')
    .action(async (input: string, o: { json?: boolean; md?: string }) => {
      const report = analyzeTrace(await loadTraceForCli(input));
      if (o.md) writeMd(report, o.md);
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderSummary(report));
    });
}

function writeMd(report: QueueUsageReport, file: string): void {
  try {
    writeMarkdownReport(report, file);
  } catch (err) {
    throw new CliError(writeFailure(file, err), 1, false, errnoCode(err));
  }
}

/** One line for a failed output write: the writer's own ("cannot write F: why (CODE)", a refused symlink), else F and the code. */
export function writeFailure(file: string, err: unknown): string {
  const msg = err instanceof Error ? err.message : '';
  if (msg.startsWith('cannot write ') && !msg.includes('\n')) return msg;
  return `cannot write ${file} (${(err as { code?: string })?.code ?? 'EIO'})`;
}

/** The text summary: one block per process, then GPUs, co-location and sampling in a few lines. */
export function renderSummary(r: QueueUsageReport): string {
  const i = r.input;
  const out: string[] = [
    `Trace ${i.path}: ${r.sampling.samples} sample(s) over ${fmtNs(r.sampling.spanNs)}, every ${fmtNs(i.intervalNs)}, sources ${i.readable.join('+') || 'none'}${i.complete === false ? ' [no footer]' : ''}`,
  ];
  for (const n of i.notes) out.push(`  note: ${n}`);
  if (r.overall.baseline) out.push(`Baseline: ${r.overall.baseline.maxQueues ?? '-'} queue(s) in ${r.overall.baseline.samples} sample(s)`);
  out.push(`Processes: ${r.overall.processes} (${r.overall.processesWithQueues} with queues), ${r.overall.distinctQueues} distinct queue(s), total per sample min/avg/max ${fmtCount(r.overall.queueCount)}`);
  for (const p of r.processes) {
    const s = p.queueSet;
    out.push('');
    out.push(`Process ${p.pid}: queues min/avg/max ${fmtCount(p.queueCount.whilePresent)}; set ${s.verdict}${s.share !== null ? ` (${+(s.share * 100).toFixed(1)}% of ${s.considered})` : ''}`);
    const rows = p.queues.map((q) => [
      q.key,
      q.type,
      q.gpuId ?? '?',
      fmtPriority(q.priority.final) + (q.priority.changes.length ? ` (${q.priority.changes.length} chg)` : ''),
      q.mapping ? `${q.mapping.activeXccs.max ?? '?'}/${q.mapping.numXcc ?? '?'}` : q.sdma ? 'sdma' : '-',
      q.mapping ? q.mapping.slotsUsed.join(' ') || 'unmapped' : q.sdma ? q.sdma.rlcs.join(' ') : '-',
      q.createdNs === null ? 'before' : `+${fmtNs(q.timing.createdAfterStartNs ?? q.createdNs)}`,
      q.destroyedNs === null ? 'alive' : fmtT(q.destroyedNs),
    ]);
    if (rows.length) out.push(...table(['QUEUE', 'TYPE', 'GPU', 'PRIORITY', 'XCCS', 'SLOTS', 'CREATED', 'DESTROYED'], rows, '  '));
    const mism = p.queues.reduce((a, q) => a + (q.mapping ? q.mapping.mismatches.length + q.mapping.mismatchesOmitted : 0), 0);
    if (mism) out.push(`  ${mism} MQD->HQD mismatch(es) (see --json or --md)`);
  }
  for (const g of r.gpus) {
    out.push('');
    // '?': an XCC no sample showed (a cut dump); its average is unknown, not 0
    const avg = g.perXcc.map((x) => (x.active.avg === null ? (g.samples > 0 ? '?' : '-') : +x.active.avg.toFixed(2))).join(' / ');
    const partly = g.perXcc.some((x) => x.samples < g.samples) ? ' (some XCCs read in fewer: see --json)' : '';
    out.push(`GPU node ${g.node ?? '?'} (${g.gpuId}, ${g.numXcc} XCC): active HQDs per XCC avg ${avg} over ${g.samples} sample(s)${partly}; unbalanced ${g.unbalancedSamples}`);
  }
  if (r.coexistence) {
    const c = r.coexistence;
    out.push('');
    out.push(`Co-located ${c.pids.join(', ')}: queues disjoint ${c.queuesDisjoint ? 'yes' : 'NO'}, HQD slots disjoint ${c.hqdSlotsDisjoint ? 'yes' : 'NO'}, total = sum ${c.totalEqualsSum ? 'yes' : 'NO'} (${c.samplesTogether} samples together)`);
  }
  const s = r.sampling;
  out.push('');
  out.push(`Sampling: jitter ${s.jitterNs ? fmtDist(s.jitterNs) : (s.unmeasured ?? '-')}`);
  if (s.costs) out.push(`  read ${fmtDist(s.costs.read)}; parse ${fmtParseCost(s.costs, (d) => `p50 ${fmtNs(d.p50)}`)}; join p50 ${fmtNs(s.costs.join.p50)}`);
  if (s.costs?.io || s.costs?.cpuShare != null) {
    const parts = [
      s.costs.io ? `in fs calls p50 ${fmtNs(s.costs.io.p50)}` : null,
      s.costs.readCpu ? `sampler CPU p50 ${fmtNs(s.costs.readCpu.p50)} per sample${s.costs.readCpuShare !== null ? ` (${fmtShare(s.costs.readCpuShare)} of a core)` : ''}` : null,
      s.costs.cpuShare !== null ? `gpucolo ${fmtShare(s.costs.cpuShare)} of a core${s.costs.ownShare !== null ? ` (own work ${fmtShare(s.costs.ownShare)}, the rest in fs calls)` : ''}` : null,
    ].filter(Boolean);
    out.push(`  ${parts.join('; ')}`);
  }
  out.push(`  missed intervals ${s.missedIntervals}, samples with issues ${s.sampleIssues.samples}, trace line problems ${s.traceIssues.length + s.traceIssuesOmitted}`);
  if (s.incompleteSamples.mqds || s.incompleteSamples.hqds) {
    out.push(`  debugfs text not whole (cut, appended, broken): mqds in ${s.incompleteSamples.mqds} sample(s), hqds in ${s.incompleteSamples.hqds}; what they lack is counted as unknown`);
  }
  return `${out.join('\n')}\n`;
}
