/**
 * What was analyzed: the trace's header, format, span and completeness, with remarks about the
 * input, so that a report says what its figures rest on.
 */
import type { Trace } from '../read.js';
import type { ReportInput } from './types.js';

export const completeness = (trace: Trace): boolean | null => (trace.origin.format === 'dumps' ? null : trace.footer !== null);

export function inputOf(trace: Trace): ReportInput {
  const h = trace.header;
  const s = trace.samples;
  const notes = [...trace.origin.notes];
  if (trace.origin.format === 'jsonl' && !trace.footer) notes.push('no footer: the tracer did not finish (killed or crashed); the trace is a valid prefix');
  if (trace.footer?.error) notes.push(`the tracer ended with an error: ${trace.footer.error}`);
  return {
    path: trace.origin.path,
    format: trace.origin.format,
    times: trace.origin.times,
    costsMeasured: trace.origin.costsMeasured,
    traceSchema: h.schema,
    tracerVersion: h.gpucoloVersion,
    startedAt: h.startedAt,
    host: h.host,
    sampler: h.sampler,
    impl: h.impl,
    sources: h.sources,
    readable: h.readable,
    intervalNs: h.intervalNs,
    debugfsIntervalNs: h.debugfsIntervalNs,
    target: h.target,
    gpus: h.gpus,
    firstSampleNs: s.length ? s[0].t_ns : null,
    lastSampleNs: s.length ? s[s.length - 1].t_ns : null,
    complete: completeness(trace),
    endedBy: trace.footer?.endedBy ?? null,
    notes,
  };
}
