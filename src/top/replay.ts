/**
 * The replay data source of `gpucolo top --replay`: a trace read by src/trace/read.ts (a
 * `gpucolo trace` file, or a dump directory) shown as it stood at any time of the trace. The
 * events are the ones the tracer recorded (src/trace/events.ts derived them then). A trace holds
 * no VRAM, names or sysfs counters and no slot layout: those show as unknown, and say so.
 */
import type { Trace } from '../trace/read.js';
import type { TraceEvent } from '../trace/schema.js';
import { EVENT_TAIL, type TopSnapshot } from './state.js';
import { outOfRange } from '../errors.js';

/** left/right seek: 5 s of trace time, at least one interval */
const SEEK_NS = 5e9;

/** Index of the last element whose t_ns <= t (-1 when none). */
function lastAtOrBefore(list: { t_ns: number }[], t: number): number {
  let lo = 0;
  let hi = list.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].t_ns <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class ReplaySource {
  private readonly events: TraceEvent[];
  /** missed deadlines up to and including each sample */
  private readonly missedSoFar: number[];
  private readonly missing: string[];

  constructor(
    private readonly trace: Trace,
    private readonly file: string,
  ) {
    if (trace.samples.length === 0) throw outOfRange(`${file}: nothing to replay: the trace has no samples`, 'ERR_INVALID_ARG_VALUE');
    // the reader keeps file order; a late write could put an event after a later sample
    this.events = [...trace.events].sort((a, b) => a.t_ns - b.t_ns);
    let m = 0;
    this.missedSoFar = trace.samples.map((s) => (m += s.missed));
    this.missing = this.missingLines();
  }

  private missingLines(): string[] {
    const h = this.trace.header;
    const out = ['process names, VRAM and the sysfs counters are not recorded in a trace'];
    if (!h.readable.includes('debugfs')) out.push('the trace was recorded from sysfs only: priorities and HQD slots are unknown');
    if (this.trace.issues.length) out.push(`${this.trace.issues.length} damaged line(s) in the trace skipped, first: line ${this.trace.issues[0].line}: ${this.trace.issues[0].message}`);
    for (const n of this.trace.origin.notes) out.push(n);
    return out;
  }

  /** Time span of the trace and the seek step. */
  bounds(): { startNs: number; endNs: number; seekNs: number } {
    const s = this.trace.samples;
    return { startNs: s[0].t_ns, endNs: s[s.length - 1].t_ns, seekNs: Math.max(SEEK_NS, this.trace.header.intervalNs) };
  }

  /** The trace as it stood at `positionNs`: the last sample taken by then and the events up to it. */
  snapshotAt(positionNs: number): TopSnapshot {
    const { samples, header } = this.trace;
    const i = Math.max(0, lastAtOrBefore(samples, positionNs));
    const sample = samples[i];
    const upTo = lastAtOrBefore(this.events, sample.t_ns) + 1;
    return {
      label: `replay of ${header.host.hostname}, recorded ${header.startedAt}`,
      gpus: header.gpus,
      sample,
      slots: null,
      procs: null,
      events: this.events.slice(Math.max(0, upTo - EVENT_TAIL), upTo),
      cost: {
        sampler: 'recorded',
        intervalNs: header.intervalNs,
        readNs: sample.read_ns,
        parseNs: sample.parse_ns,
        joinNs: sample.join_ns,
        samplerCpuShare: null,
        jsCpuShare: null,
        missed: this.missedSoFar[i],
      },
      missing: this.missing,
      replay: { file: this.file, startNs: samples[0].t_ns, endNs: samples[samples.length - 1].t_ns, index: i, count: samples.length },
    };
  }
}
