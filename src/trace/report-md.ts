/**
 * Markdown rendering of a QueueUsageReport: tables for people, every verdict next to the rule it
 * was reached by.
 */
import { writeFileAtomic } from '../report/index.js';
import type { CountStats, Distribution } from '../stats/index.js';
import type { GpuHqdUsage, ProcessUsage, QueueUsage, QueueUsageReport, SamplingQuality } from './analyze/index.js';

// ------------------------------------------------------------------------------------ files

/** The atomic writer of src/report (temp file + fsync + rename), re-exported for the trace module's users. */
export { writeFileAtomic };

// ------------------------------------------------------------------------------------ formatting

/** 1500000 -> "1.5 ms"; null -> "-". */
export function fmtNs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined) return '-';
  const a = Math.abs(ns);
  const p = (v: number): string => String(+v.toPrecision(4));
  if (a >= 1e9) return `${p(ns / 1e9)} s`;
  if (a >= 1e6) return `${p(ns / 1e6)} ms`;
  if (a >= 1e3) return `${p(ns / 1e3)} us`;
  return `${p(ns)} ns`;
}

/** A time since the start of the trace. */
export const fmtT = (ns: number | null | undefined): string => (ns === null || ns === undefined ? '-' : `t=${fmtNs(ns)}`);

export function fmtCount(c: CountStats): string {
  if (c.samples === 0) return '- (no samples)';
  return `${c.min} / ${+c.avg!.toFixed(2)} / ${c.max} (n=${c.samples})`;
}

export function fmtDist(d: Distribution | null, unit: (v: number | null) => string = fmtNs): string {
  if (!d || d.n === 0) return '-';
  const ci = d.p99ci ? ` [95% CI ${unit(d.p99ci[0])}..${unit(d.p99ci[1])}]` : '';
  return `p50 ${unit(d.p50)}, p99 ${unit(d.p99)}${ci}, max ${unit(d.max)} (n=${d.n})`;
}

export function fmtPriority(p: { pipe: number; queue: number; level: string | null } | null): string {
  return p ? `${p.level ?? '?'} ${p.pipe}/${p.queue}` : '-';
}

const cell = (s: string | number | boolean | null | undefined): string => String(s ?? '-').replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdTable(header: string[], rows: (string | number | boolean | null | undefined)[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

const yesNo = (b: boolean | null): string => (b === null ? '-' : b ? 'yes' : 'no');

// ------------------------------------------------------------------------------------ sections

function inputSection(r: QueueUsageReport): string[] {
  const i = r.input;
  const gpus = i.gpus.map((g) => `node ${g.node ?? '?'} gpu_id ${g.gpuId}${g.gfxTarget ? ` ${g.gfxTarget}` : ''}, ${g.numXcc} XCC`).join('; ') || '-';
  const out = [
    '## Input',
    '',
    ...mdTable(
      ['', ''],
      [
        ['trace', `\`${i.path}\` (${i.format === 'jsonl' ? `${i.traceSchema}, gpucolo ${i.tracerVersion}` : 'plain debugfs dumps'})`],
        ['started', i.startedAt],
        ['host', i.host.hostname ? `${i.host.hostname} (${i.host.kernel})` : '-'],
        ['sampler', `${i.sampler}, parser ${i.impl}, every ${fmtNs(i.intervalNs)} (debugfs every ${fmtNs(i.debugfsIntervalNs)})`],
        ['sources', `asked ${i.sources.join(', ') || '-'}; readable ${i.readable.join(', ') || '-'}`],
        ['target', `${i.target.mode}${i.target.pids.length ? ` pids ${i.target.pids.join(', ')}` : ''}${i.target.command ? ` \`${i.target.command.join(' ')}\`` : ''}`],
        ['GPUs', gpus],
        ['times', i.times],
        ['samples span', `${fmtT(i.firstSampleNs)} .. ${fmtT(i.lastSampleNs)}`],
        ['complete', i.complete === null ? 'n/a (dumps)' : i.complete ? `yes (ended by ${i.endedBy})` : 'no footer'],
      ],
    ),
  ];
  if (i.notes.length) out.push('', '**Notes**', '', ...i.notes.map((n) => `- ${n}`));
  return out;
}

function answersSection(r: QueueUsageReport): string[] {
  const out = ['## Answers', ''];
  if (r.overall.baseline) {
    const b = r.overall.baseline;
    out.push(`- Baseline (${b.samples} sample(s) up to ${fmtT(b.endNs)}): ${b.maxQueues ?? '-'} queue(s)${b.pidsWithQueues.length ? ` in pid ${b.pidsWithQueues.join(', ')}` : ''}.`);
  }
  out.push(`- ${r.overall.processes} process(es), ${r.overall.processesWithQueues} with queues; ${r.overall.distinctQueues} distinct queue(s); total per sample min/avg/max ${fmtCount(r.overall.queueCount)}.`);
  for (const p of r.processes) {
    const types = countTypes(p.queues);
    const xccs = p.queues.filter((q) => q.mapping).map((q) => `${q.mapping!.activeXccs.max ?? '?'}/${q.mapping!.numXcc ?? '?'}`);
    out.push(
      `- pid ${p.pid}: ${p.queueSet.modal.length || (p.queueCount.whilePresent.max ?? '?')} queue(s) (${types || 'none'}); queue set **${p.queueSet.verdict}**` +
        `${p.queueSet.share !== null ? ` (${pct(p.queueSet.share)} of ${p.queueSet.considered} samples)` : ''}` +
        `${xccs.length ? `; compute queues active on ${xccs.join(', ')} XCCs` : ''}.`,
    );
  }
  if (r.coexistence) {
    const c = r.coexistence;
    out.push(
      `- Co-located pids ${c.pids.join(', ')} (${c.samplesTogether} samples together): queues disjoint ${yesNo(c.queuesDisjoint)}, HQD slots disjoint ${yesNo(c.hqdSlotsDisjoint)}, total = sum ${yesNo(c.totalEqualsSum)}.`,
    );
  }
  return out;
}

const pct = (x: number): string => `${+(x * 100).toFixed(1)}%`;

function countTypes(queues: QueueUsage[]): string {
  const n = new Map<string, number>();
  for (const q of queues) n.set(q.type, (n.get(q.type) ?? 0) + 1);
  return [...n.entries()].map(([t, c]) => `${c} ${t}`).join(', ');
}

function slotsText(q: QueueUsage): string {
  if (q.sdma) return `sdma ${q.sdma.rlcs.join(' ')} (active ${q.sdma.activeSamples}/${q.sdma.samples})`;
  if (!q.mapping) return '-';
  return q.mapping.slotsUsed.join(', ') || 'never mapped';
}

function xccText(q: QueueUsage): string {
  const m = q.mapping;
  if (!m) return '-';
  const hist = Object.entries(m.activeXccs.histogram)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
  return `${m.activeXccs.min}..${m.activeXccs.max} of ${m.numXcc ?? '?'} (${hist})`;
}

function queueRow(q: QueueUsage): (string | number | null)[] {
  const prio = q.priority.changes.length ? `${fmtPriority(q.priority.initial)} -> ${fmtPriority(q.priority.final)} (${q.priority.changes.length} change(s))` : fmtPriority(q.priority.final);
  return [
    `\`${q.key}\``,
    q.qids.join(',') || '-',
    q.type,
    q.gpuId,
    prio,
    q.createdNs === null ? 'before trace' : `${fmtT(q.createdNs)} (+${fmtNs(q.timing.createdAfterStartNs)})`,
    q.destroyedNs === null ? 'alive at end' : `${fmtT(q.destroyedNs)}`,
    q.lifetimeNs !== null ? fmtNs(q.lifetimeNs) : `>= ${fmtNs(q.observedNs)}`,
    xccText(q),
    slotsText(q),
    q.mapping ? q.mapping.slotChanges : '-',
    q.mapping ? q.mapping.mismatches.length + q.mapping.mismatchesOmitted : '-',
  ];
}

function processSection(p: ProcessUsage): string[] {
  const s = p.queueSet;
  const out = [
    `### Process ${p.pid}${p.nsPid !== null ? ` (pid ${p.nsPid} in its namespace)` : ''}`,
    '',
    ...mdTable(
      ['', ''],
      [
        ['seen', `${fmtT(p.firstSeenNs)} .. ${fmtT(p.lastSeenNs)} in ${p.samplesPresent} sample(s)${p.presentAtBaseline ? ' (present at baseline)' : ''}`],
        ['started / exited', `${fmtT(p.startedNs)} / ${fmtT(p.exitedNs)}`],
        ['queues per sample min/avg/max', `${fmtCount(p.queueCount.whilePresent)} while present; ${fmtCount(p.queueCount.steady)} in the window`],
        ['queue set', `**${s.verdict}**${s.share !== null ? `: most common set in ${pct(s.share)} of ${s.considered} considered sample(s)` : ''}; ${s.distinctSets} distinct set(s)`],
        ['most common set', s.modal.map((k) => `\`${k}\``).join(' ') || '-'],
      ],
    ),
    '',
    ...mdTable(['queue', 'qid', 'type', 'GPU', 'priority', 'created (after start)', 'destroyed', 'lifetime', 'XCCs active (count:samples)', 'HQD slots', 'slot changes', 'mismatches'], p.queues.map(queueRow)),
  ];
  if (s.changes.length) {
    out.push('', `Queue set changes${s.changesOmitted ? ` (first ${s.changes.length}, ${s.changesOmitted} more)` : ''}:`, '');
    out.push(...mdTable(['time', 'seq', 'added', 'removed'], s.changes.map((c) => [fmtT(c.t_ns), c.seq, c.added.join(' ') || '-', c.removed.join(' ') || '-'])));
  }
  out.push(...lifecycleLines(p), ...mismatchLines(p), ...priorityLines(p));
  return out;
}

function lifecycleLines(p: ProcessUsage): string[] {
  const l = p.lifecycle;
  const ref = (r: { kind: string; t_ns: number } | null): string => (r ? `${r.kind} ${fmtT(r.t_ns)}` : 'none');
  const out = ['', `Lifecycle: start ${ref(l.startRef)}, stop ${ref(l.stopRef)}, exit ${ref(l.exitRef)}.`];
  if (l.creationBatches.length) {
    out.push('', ...mdTable(['created at', 'after start', 'queues'], l.creationBatches.map((b) => [fmtT(b.t_ns), fmtNs(b.afterStartNs), b.queues.join(' ')])));
  }
  if (l.allDestroyedNs !== null) {
    out.push('', `All queues gone at ${fmtT(l.allDestroyedNs)}: ${fmtNs(l.allDestroyedAfterStopNs)} after the stop signal, ${fmtNs(l.allDestroyedAfterExitNs)} after the exit.`);
  } else out.push('', `${l.queuesAtEnd} queue(s) still present at the end of the trace.`);
  return out;
}

function mismatchLines(p: ProcessUsage): string[] {
  const rows = p.queues.flatMap((q) => (q.mapping?.mismatches ?? []).map((m) => [`\`${q.key}\``, fmtT(m.t_ns), m.seq, m.kind, m.detail]));
  return rows.length ? ['', 'MQD -> HQD mismatches:', '', ...mdTable(['queue', 'time', 'seq', 'kind', 'detail'], rows)] : [];
}

function priorityLines(p: ProcessUsage): string[] {
  const rows = p.queues.flatMap((q) => q.priority.changes.map((c) => [`\`${q.key}\``, fmtT(c.t_ns), c.seq, fmtPriority(c.from), fmtPriority(c.to)]));
  return rows.length ? ['', 'Priority changes:', '', ...mdTable(['queue', 'time', 'seq', 'from', 'to'], rows)] : [];
}

function gpuSection(gpus: GpuHqdUsage[]): string[] {
  if (gpus.length === 0) return [];
  const out = ['## Active HQD slots per XCC', ''];
  for (const g of gpus) {
    out.push(`Node ${g.node ?? '?'} (gpu_id ${g.gpuId}, ${g.numXcc} XCC), ${g.samples} sample(s) with HQD data; unmatched active slots ${fmtCount(g.unmatched)}; unbalanced samples ${g.unbalancedSamples}${g.instsOutOfRange.length ? `; Inst beyond numXcc: ${g.instsOutOfRange.join(', ')}` : ''}.`, '');
    // an XCC a dump did not show is unknown in that sample: its figures are over the samples that read it
    out.push(...mdTable(['XCC (Inst)', 'samples read', 'active min / avg / max'], g.perXcc.map((x) => [x.inst, x.samples, x.samples === 0 ? '? (never read)' : fmtCount(x.active)])), '');
  }
  return out;
}

function coexistenceSection(r: QueueUsageReport): string[] {
  const c = r.coexistence;
  if (!c) return [];
  const out = [
    '## Co-located processes',
    '',
    ...mdTable(
      ['check', 'result'],
      [
        ['samples with >= 2 processes holding queues', c.samplesTogether],
        ['no MQD in two processes', yesNo(c.queuesDisjoint)],
        ['no active HQD slot held twice', yesNo(c.hqdSlotsDisjoint)],
        ['no SDMA RLC held twice', yesNo(c.sdmaDisjoint)],
        ['distinct queues == sum of per-process counts', yesNo(c.totalEqualsSum)],
        ['KFD queue ids used by several processes (ids are per process: expected)', c.qidsShared.join(', ') || 'none'],
        ['steady queue count per process', c.steadyCounts.map((s) => `${s.pid}: ${s.count ?? '-'}`).join(', ')],
        ['same steady count', yesNo(c.sameSteadyCount)],
      ],
    ),
  ];
  if (c.conflicts.length) out.push('', ...mdTable(['time', 'seq', 'kind', 'shared', 'holders'], c.conflicts.map((x) => [fmtT(x.t_ns), x.seq, x.kind, x.what, x.holders.join(' ')])));
  return out;
}

/**
 * The parse cost with what it is over: samples whose debugfs files had not changed skip parsing
 * (parse_ns 0) and are counted, not averaged in; "-" when no sample parsed anything.
 */
export function fmtParseCost(c: NonNullable<SamplingQuality['costs']>, dist: (d: Distribution) => string = fmtDist): string {
  const unchanged = `${c.unchangedSamples} unchanged`;
  if (!c.parse) return `- (no sample parsed debugfs${c.unchangedSamples ? `; ${unchanged}` : ''})`;
  return `${dist(c.parse)} over ${c.parsedSamples} parsed sample(s), ${unchanged}`;
}

/** 0.0123 -> "1.23%" */
export const fmtShare = (x: number): string => `${(100 * x).toFixed(2)}%`;

function samplingSection(s: SamplingQuality): string[] {
  const rows: (string | number)[][] = [
    ['samples', `${s.samples} (${s.debugfsSamples} read debugfs, ${s.queueListSamples} list queues), span ${fmtNs(s.spanNs)}`],
    ...(s.incompleteSamples.mqds || s.incompleteSamples.hqds
      ? [['debugfs text not whole (cut, appended, broken)', `mqds in ${s.incompleteSamples.mqds} sample(s), hqds in ${s.incompleteSamples.hqds}: what they lack is unknown, not absent`]]
      : []),
    ['jitter (actual - intended)', s.jitterNs ? fmtDist(s.jitterNs) : (s.unmeasured ?? '-')],
  ];
  if (s.costs) {
    rows.push(['read cost', fmtDist(s.costs.read)], ['parse cost', fmtParseCost(s.costs)], ['join cost', fmtDist(s.costs.join)]);
    if (s.costs.debugfsRead) rows.push(['read cost, debugfs samples', fmtDist(s.costs.debugfsRead)]);
    if (s.costs.sysfsRead) rows.push(['read cost, sysfs-only samples', fmtDist(s.costs.sysfsRead)]);
    if (s.costs.io) rows.push(['of read + parse: in file-system calls (kernel side)', fmtDist(s.costs.io)]);
    if (s.costs.readCpu) rows.push(['sampler CPU per sample', `${fmtDist(s.costs.readCpu)}${s.costs.readCpuShare !== null ? `; ${fmtShare(s.costs.readCpuShare)} of one core` : ''}`]);
    if (s.costs.cpuShare !== null) rows.push(['gpucolo CPU (sampler + JS thread)', `${fmtShare(s.costs.cpuShare)} of one core over the span`]);
    if (s.costs.ownShare !== null) rows.push(['gpucolo own work (CPU - file-system calls)', `${fmtShare(s.costs.ownShare)} of one core over the span`]);
  }
  rows.push(
    ['missed intervals', `${s.missedIntervals}${s.footerMissedIntervals !== null ? ` (footer: ${s.footerMissedIntervals})` : ''}`],
    ['sequence gaps', s.seqGaps],
    ['samples with issues', `${s.sampleIssues.samples} (${s.sampleIssues.total} issue(s))`],
    ['trace lines with problems', s.traceIssues.length + s.traceIssuesOmitted],
    ['complete', s.complete === null ? 'n/a (dumps)' : s.complete ? `yes (${s.endedBy})` : 'no footer'],
  );
  const out = ['## Sampling quality', '', ...mdTable(['', ''], rows)];
  const caveats = [...new Set([s.jitterNs, s.costs?.read].flatMap((d) => d?.caveats ?? []))];
  if (caveats.length) out.push('', ...caveats.map((c) => `- ${c}`));
  if (s.sampleIssues.top.length) out.push('', 'Most frequent sample issues:', '', ...mdTable(['count', 'issue'], s.sampleIssues.top.map((t) => [t.count, t.message])));
  if (s.traceIssues.length) out.push('', 'Trace lines with problems:', '', ...mdTable(['line', 'problem'], s.traceIssues.map((t) => [t.line, t.message])));
  if (s.sourceChanges.length) out.push('', ...mdTable(['time', 'marker', 'source', 'detail'], s.sourceChanges.map((c) => [fmtT(c.t_ns), c.marker, c.source, c.detail])));
  return out;
}

function rulesSection(r: QueueUsageReport): string[] {
  const { stableShare: _a, edgeSamples: _b, minSamples: _c, ...text } = r.rules;
  return ['## Rules', '', ...Object.entries(text).map(([k, v]) => `- **${k}**: ${v}`)];
}

/** The whole report as Markdown. */
export function renderMarkdown(r: QueueUsageReport): string {
  const lines = [
    '# Queue usage report',
    '',
    ...inputSection(r),
    '',
    ...answersSection(r),
    '',
    '## Processes',
    '',
    ...r.processes.flatMap((p) => [...processSection(p), '']),
    ...gpuSection(r.gpus),
    ...coexistenceSection(r),
    '',
    ...samplingSection(r.sampling),
    '',
    ...rulesSection(r),
    '',
    `_gpucolo ${r.gpucoloVersion}, ${r.schema}_`,
  ];
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}

/** Renders and writes the Markdown report atomically. */
export function writeMarkdownReport(r: QueueUsageReport, file: string): void {
  writeFileAtomic(file, renderMarkdown(r));
}
