/**
 * A run whose driver ended normally but in which a task completed no request is not "ok": its
 * figures are empty (or only censored lower bounds), so shares, slowdowns and SLOs against them
 * mean nothing. The drivers say 'ok' when the phase ran to its end; this turns that into:
 *
 *  - 'failed' when every request a task issued failed (the first error is named);
 *  - 'partial' when a task's requests were issued but none finished before the driver stopped
 *    waiting (all censored at their age then): the run measured an overload, its latency figures
 *    are lower bounds, and the reason says so; also when a task issued nothing in the measured
 *    window: a closed loop whose one request from the warm-up never finished (starved, e.g. a
 *    batch job held by the gate) looks exactly like that, so it is not called a failure.
 *
 * Other statuses (failed, skipped, partial after an abort) are left as the driver gave them.
 */
import type { PhaseStatus, TaskSamples } from './types.js';

export interface JudgedStatus {
  status: PhaseStatus;
  reason?: string;
}

/** The run's status once tasks with 0 completions are taken into account. */
export function judgeCompletions(status: PhaseStatus, reason: string | undefined, samples: readonly TaskSamples[]): JudgedStatus {
  const kept: JudgedStatus = { status, ...(reason ? { reason } : {}) };
  if (status !== 'ok') return kept;
  const failed: string[] = [];
  const starved: string[] = [];
  for (const s of samples) {
    if (s.latencyNs.length > 0) continue;
    const censored = s.censoredNs?.length ?? 0;
    if (s.issued === 0) starved.push(`${s.task}: no request completed (none was issued in the measured window: a request from before it may have been in flight throughout)`);
    else if (s.errors > 0 && censored === 0) failed.push(`${s.task}: no request completed (${s.errors} of ${s.issued} failed${s.error ? `: ${s.error}` : ''})`);
    else starved.push(`${s.task}: no request completed (${s.issued} issued, ${censored} still unfinished at the end and censored${s.errors ? `, ${s.errors} failed` : ''}: its latencies are lower bounds)`);
  }
  if (failed.length) return { status: 'failed', reason: [...failed, ...starved].join('; ') };
  if (starved.length) return { status: 'partial', reason: starved.join('; ') };
  return kept;
}
