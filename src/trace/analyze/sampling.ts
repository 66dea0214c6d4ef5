/**
 * How good the sampling behind the report was: jitter, read/parse/join costs, missed intervals,
 * sequence gaps, sample and trace issues, lost and regained sources.
 */
import { distribution } from '../../stats/index.js';
import type { TraceSample } from '../schema.js';
import type { Ctx } from './context.js';
import { completeness } from './input.js';
import { knowledgeOf } from './knowledge.js';
import { capped } from './series.js';
import type { SamplingQuality } from './types.js';
import { ownWorkNs } from '../own-work.js';

function topMessages(samples: TraceSample[], max: number): { message: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const s of samples) for (const m of s.issues) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([message, count]) => ({ message, count }));
}

function seqGaps(samples: TraceSample[]): number {
  let gaps = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i].seq !== samples[i - 1].seq + 1) gaps++;
  return gaps;
}

function costs(samples: TraceSample[]): SamplingQuality['costs'] {
  const dbg = samples.filter((s) => s.debugfs);
  const sys = samples.filter((s) => !s.debugfs);
  // parse_ns is 0 where nothing was parsed: the samplers skip parsing when no debugfs file changed
  // since the sample before (and sysfs-only samples parse nothing). Those zeros are not costs: a
  // p50 of "0 ns" would only say how often nothing changed.
  const parsed = dbg.filter((s) => s.parse_ns > 0);
  return {
    read: distribution(samples.map((s) => s.read_ns)),
    parse: parsed.length ? distribution(parsed.map((s) => s.parse_ns)) : null,
    parsedSamples: parsed.length,
    unchangedSamples: dbg.length - parsed.length,
    join: distribution(samples.map((s) => s.join_ns)),
    debugfsRead: dbg.length && sys.length ? distribution(dbg.map((s) => s.read_ns)) : null,
    sysfsRead: dbg.length && sys.length ? distribution(sys.map((s) => s.read_ns)) : null,
    ...cpuCosts(samples),
  };
}

const defined = (xs: (number | undefined)[]): number[] => xs.filter((x): x is number => x !== undefined);

/** io, the sampler's CPU per sample and gpucolo's CPU share over the span, where the trace records them. */
function cpuCosts(samples: TraceSample[]): Pick<NonNullable<SamplingQuality['costs']>, 'io' | 'readCpu' | 'readCpuShare' | 'cpuShare' | 'ownShare'> {
  const io = defined(samples.map((s) => s.io_ns));
  const readCpu = defined(samples.map((s) => s.read_cpu_ns));
  const span = samples.length > 1 ? samples[samples.length - 1].t_ns - samples[0].t_ns : 0;
  // running totals: the first sample's total is the start, the last one's the end (same clock source all through)
  const withCpu = samples.filter((s) => s.cpu_ns !== undefined);
  const cpuSpan = withCpu.length > 1 ? withCpu[withCpu.length - 1].t_ns - withCpu[0].t_ns : 0;
  const cpuShare = cpuSpan > 0 ? (withCpu[withCpu.length - 1].cpu_ns! - withCpu[0].cpu_ns!) / cpuSpan : null;
  // own work: the CPU less the fs calls of the samples inside the span (the first sample's calls
  // came before its running total, the span's start); only where every sample records both
  let ownShare: number | null = null;
  if (cpuShare !== null && withCpu.length === samples.length && io.length === samples.length) {
    const own = ownWorkNs(cpuShare * cpuSpan, samples.slice(1).reduce((a, s) => a + s.io_ns!, 0));
    ownShare = own === null ? null : own / cpuSpan;
  }
  return {
    io: io.length ? distribution(io) : null,
    readCpu: readCpu.length ? distribution(readCpu) : null,
    // the first sample's read happened before the span starts: left out, like the span's start
    readCpuShare: readCpu.length === samples.length && span > 0 ? readCpu.slice(1).reduce((a, b) => a + b, 0) / span : null,
    cpuShare,
    ownShare,
  };
}

export function sampling(ctx: Ctx): SamplingQuality {
  const { trace } = ctx;
  const s = trace.samples;
  const measured = trace.origin.costsMeasured;
  const [traceIssues, traceIssuesOmitted] = capped(trace.issues, ctx.opts.maxListed);
  return {
    samples: s.length,
    debugfsSamples: s.filter((x) => x.debugfs).length,
    queueListSamples: ctx.listing.length,
    incompleteSamples: {
      mqds: s.filter((x) => x.debugfs && !knowledgeOf(x).mqdsWhole).length,
      hqds: s.filter((x) => x.debugfs && !knowledgeOf(x).hqdsWhole).length,
    },
    spanNs: s.length ? s[s.length - 1].t_ns - s[0].t_ns : null,
    jitterNs: measured ? distribution(s.map((x) => x.t_ns - x.intended_ns)) : null,
    costs: measured ? costs(s) : null,
    unmeasured: measured ? null : 'plain cat dumps record no intended times and no read/parse costs',
    missedIntervals: s.reduce((a, x) => a + x.missed, 0),
    footerMissedIntervals: trace.footer?.missedIntervals ?? null,
    seqGaps: seqGaps(s),
    sampleIssues: { samples: s.filter((x) => x.issues.length).length, total: s.reduce((a, x) => a + x.issues.length, 0), top: topMessages(s, 10) },
    traceIssues,
    traceIssuesOmitted,
    sourceChanges: trace.markers
      .filter((m) => m.marker === 'source-lost' || m.marker === 'source-back' || m.marker === 'interrupted')
      .map((m) => ({ t_ns: m.t_ns, marker: m.marker, source: m.source ?? null, detail: m.detail ?? null })),
    complete: completeness(trace),
    endedBy: trace.footer?.endedBy ?? null,
  };
}
