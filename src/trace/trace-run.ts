/**
 * One `gpucolo trace` run, step by step (runTrace in tracer.ts drives it): what is traced
 * (TraceTarget), the outputs (recorder, exporter), signals, the sampler and what each sample
 * becomes, the traced command, and the end (footer). Each step is a method over the run's own
 * state instead of closures over one long function's locals.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { NativeSample, SysfsWalk } from '../native.js';
import { VERSION } from '../version.js';
import { underRoot } from '../kfd/sysfs-reader.js';
import type { Topology } from '../kfd/types.js';
import { Supervisor, isDescendantOf, type ExitInfo, type SupervisedChild } from '../supervisor/index.js';
import { SampleAssembler } from './assemble.js';
import { EventDeriver } from './events.js';
import { TraceExporter, httpUrl } from './exporter.js';
import { TraceRecorder } from './recorder.js';
import { startSampler, type Sampler } from './sampler.js';
import { TRACE_SCHEMA, type TraceEvent, type TraceFooter, type TraceHeader, type TraceMarker, type TraceSample, type TraceSource } from './schema.js';
import type { TraceOptions, TraceResult } from './tracer.js';
import { ownWorkNs } from './own-work.js';

/** What runTrace decided before anything runs: sources, topology, rates. */
export interface TracePlan {
  impl: 'native' | 'ts';
  tailNs: number;
  readable: TraceSource[];
  topology: Topology | null;
  /** read debugfs every N-th sample (0 = never) */
  debugfsEvery: number;
  sysfsWalk: SysfsWalk;
  countersEvery: number;
  log: (line: string) => void;
}

/**
 * Who is traced: every KFD process, given pids, or a started command, each with its descendants
 * (decided once per pid, through /proc parent links).
 */
export class TraceTarget {
  readonly mode: 'all' | 'pids' | 'command';
  readonly roots: Set<number>;
  private readonly verdict = new Map<number, boolean>();
  constructor(
    opts: Pick<TraceOptions, 'pids' | 'command'>,
    private readonly procRoot: string,
  ) {
    this.mode = opts.command?.length ? 'command' : opts.pids?.length ? 'pids' : 'all';
    this.roots = new Set(opts.pids ?? []);
  }

  /** the assembler's filter; undefined = every KFD process */
  get keep(): ((pid: number) => boolean) | undefined {
    if (this.mode === 'all') return undefined;
    return (pid) => {
      if (this.roots.has(pid)) return true;
      const known = this.verdict.get(pid);
      if (known !== undefined) return known;
      const v = this.roots.size > 0 && isDescendantOf(this.procRoot, pid, this.roots);
      this.verdict.set(pid, v);
      return v;
    };
  }
  addRoot(pid: number): void {
    this.roots.add(pid);
    this.verdict.clear();
  }
  /** a pid gone (or reused): decide again if it shows up */
  forget(pid: number): void {
    this.verdict.delete(pid);
  }
  /** --pid mode: every traced pid has exited */
  allRootsGone(): boolean {
    return [...this.roots].every((p) => !fs.existsSync(underRoot(this.procRoot, String(p))));
  }
}

/**
 * Pid reuse: a process is its pid plus its start time (/proc/<pid>/stat). The sampler reads the
 * start time when a pid is new or its queues change (NativeSample.pidStarts, the only time a new
 * process behind an old pid can show in the data), at the sample's own time: a sample handed over
 * later, in a batch, still names the process that was there when it was taken.
 */
class PidReuse {
  private readonly startTicks = new Map<number, number>();

  /**
   * The traced pids of this sample that now belong to another process than before. Only traced
   * pids are remembered (their exit forgets them), so a long trace of one command does not keep
   * every other KFD process that came and went.
   */
  reused(s: TraceSample, starts: Float64Array | undefined): number[] {
    if (!starts) return [];
    const traced = new Set(s.processes.map((p) => p.pid));
    const out: number[] = [];
    for (let i = 0; i + 1 < starts.length; i += 2) {
      const pid = starts[i];
      const now = starts[i + 1];
      if (now < 0 || !traced.has(pid)) continue;
      const was = this.startTicks.get(pid);
      this.startTicks.set(pid, now);
      if (was !== undefined && was !== now) out.push(pid);
    }
    return out;
  }

  /** the pid's process exited: a process that gets the pid later is a new one, not a reuse */
  forget(pid: number): void {
    this.startTicks.delete(pid);
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Below this interval, and without --serve (a scrape shows the latest sample), the native thread
 * holds samples and hands them over in batches at most this old: the JS thread wakes about once
 * a second instead of once per sample (docs/tracing.md "Where the JS thread's time goes"). A
 * sample with a new process or a reused pid goes at once, so /proc is read while that process is
 * there; start times are read by the sampler at the sample's time (procRoot, NativeSample.pidStarts). The file and the status line lag by up to this much; a
 * SIGKILLed tracer loses up to this much of the end (Ctrl-C, --duration, a command's exit lose nothing).
 */
export const DELIVER_EVERY_NS = 1e9;

/**
 * The status line's CPU part: gpucolo's CPU (`usedNs`, sampling thread + JS thread) over `spanNs`
 * as a share of one core, and of it the own work, less `ioNs` in file-system calls (as
 * `gpucolo analyze` gives it); no own work where a sample lacked its fs time (null) or the calls
 * outlasted the CPU (reads that waited).
 */
export function cpuStatus(usedNs: number, spanNs: number, ioNs: number | null): string {
  const own = ownWorkNs(usedNs, ioNs);
  const pct = (ns: number): string => `${((100 * ns) / spanNs).toFixed(2)}%`;
  return `gpucolo ${pct(usedNs)} of a core${own !== null ? ` (own work ${pct(own)})` : ''}`;
}

export class TraceRun {
  readonly result: TraceResult;
  private readonly target: TraceTarget;
  private readonly sup: Supervisor;
  private readonly exporter: TraceExporter | null;
  private recorder!: TraceRecorder;
  private sampler: Sampler | null = null;
  private child: SupervisedChild | null = null;
  private childExit: ExitInfo | null = null;
  private finishing = false;
  private interrupted = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private resolveDone!: () => void;
  readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private unsubscribe: () => void = () => {};
  private readonly assembler: SampleAssembler;
  private readonly deriver = new EventDeriver();
  private readonly pidReuse: PidReuse;
  private debugfsLost = false;
  private lastStatus = 0;
  private lastStatusCpu: number | null = null;
  /** fs-call time of the samples since the last status line; null once one of them lacks it */
  private ioSinceStatus: number | null = 0;
  private targetGoneAt: number | null = null;
  /**
   * Once the trace ends: samples taken up to this time (trace clock) that arrive while the sampler
   * stops are still recorded (with TraceOptions.deliverEveryNs the native thread hands them over in batches);
   * null = none (the end was decided by a sample: the ones after it would not have been taken)
   */
  private drainUntilNs: number | null = null;
  /**
   * Markers wait here until a sample taken after them is recorded (or the footer): with samples
   * handed over in batches, a marker made now must not be written before samples taken earlier
   */
  private pendingMarkers: TraceMarker[] = [];

  constructor(
    private readonly opts: TraceOptions,
    private readonly plan: TracePlan,
  ) {
    this.target = new TraceTarget(opts, opts.procRoot);
    this.sup = new Supervisor({ graceMs: opts.graceMs ?? 5000 });
    this.exporter = opts.serve ? new TraceExporter() : null;
    this.result = { out: opts.out, samples: 0, events: 0, missedIntervals: 0, endedBy: 'duration', readable: plan.readable };
    this.assembler = new SampleAssembler({
      topology: plan.topology,
      procRoot: opts.procRoot,
      impl: plan.impl,
      keep: this.target.keep,
      // the sampler starts after this; samples (and so joins) come after it started.
      // join 'ts': no native join (and the sampler keeps the words the TS join reads)
      joinDumps: opts.join === 'ts' ? undefined : (...a) => this.sampler?.joinDumps?.(...a) ?? null,
    });
    this.pidReuse = new PidReuse();
  }

  /** --serve listens, then the trace file opens (an existing one is replaced by the first record only). */
  async openOutputs(): Promise<void> {
    if (this.exporter) {
      this.result.metrics = await this.exporter.listen(this.opts.serve!);
      this.plan.log(`gpucolo trace: Prometheus metrics on ${httpUrl(this.result.metrics.host, this.result.metrics.port, '/metrics')}`);
    }
    try {
      this.recorder = new TraceRecorder(this.opts.out, {
        unique: this.opts.outUnique,
        // a batch of samples is one write (each sample on its own: nothing to coalesce, and a
        // flush per sample would only add a turn of the event loop); a failed flush ends the trace
        coalesce: this.plan.impl === 'native' && this.deliverEveryNs() > 0,
        onError: (err) => void this.finish('error', { message: err.message, code: err.code }),
      });
    } catch (err) {
      await this.exporter?.close();
      throw err;
    }
    this.result.out = this.recorder.out;
    this.opts.onOpen?.(this.recorder.out);
  }

  /** Ctrl-C / SIGTERM / an abort signal stop the child group and end the trace with a footer. */
  installSignals(): void {
    // the supervisor stops the child group first and tells onSignal afterwards; knowing at once
    // keeps the child's exit from being taken for a normal one (tail, "sampling more")
    const noteSignal = (): void => {
      this.interrupted = true;
    };
    for (const sig of SIGNALS) process.prependListener(sig, noteSignal);
    const unsubscribeSup = this.sup.installSignalHandlers({
      onSignal: (sig: string) => {
        this.interrupted = true;
        this.marker({ marker: 'interrupted', detail: sig });
        void this.finish('interrupt');
      },
    });
    this.unsubscribe = () => {
      unsubscribeSup();
      for (const sig of SIGNALS) process.off(sig, noteSignal);
    };
    this.opts.signal?.addEventListener('abort', () => {
      this.marker({ marker: 'interrupted', detail: 'abort' });
      void this.finish('interrupt');
    });
  }

  /** Starts the sampler and writes the header (samples arrive later, asynchronously: it is always first). */
  async startSampling(): Promise<void> {
    const { opts, plan } = this;
    const header = this.header();
    try {
      this.sampler = startSampler(
        {
          sysfsRoot: opts.sysfsRoot,
          debugfsRoot: opts.debugfsRoot,
          intervalNs: opts.intervalNs,
          debugfsEvery: plan.debugfsEvery,
          impl: plan.impl,
          sysfsWalk: plan.sysfsWalk,
          countersEvery: plan.countersEvery,
          procRoot: opts.procRoot,
          deliverEveryNs: this.deliverEveryNs(),
          // the addon joins the sampler's own tables (SampleAssembler): JS needs no debugfs words
          debugfsWords: opts.join === 'ts',
        },
        (raw) => this.onSample(raw),
      );
    } catch (err) {
      this.unsubscribe();
      this.recorder.close();
      await this.exporter?.close();
      throw err;
    }
    header.sampler = this.sampler.kind;
    header.monotonicOriginNs = this.sampler.originNs.toString();
    this.recorder.write(header);
  }

  /** How long the native thread may hold samples (TraceOptions.deliverEveryNs, else DELIVER_EVERY_NS below 1 s without --serve). */
  private deliverEveryNs(): number {
    const { opts } = this;
    return opts.deliverEveryNs ?? (opts.intervalNs < DELIVER_EVERY_NS && !opts.serve ? DELIVER_EVERY_NS : 0);
  }

  /** Resolves once the trace ended; the result with the command's exit. */
  async finished(): Promise<TraceResult> {
    await this.done;
    this.unsubscribe();
    if (this.result.command && this.childExit) this.result.command.exit = this.childExit;
    return this.result;
  }

  private nowNs(): number {
    return this.sampler ? Number(process.hrtime.bigint() - this.sampler.originNs) : 0;
  }

  /** A marker at the time now, written in time order with the samples (flushMarkers). */
  private marker(m: Omit<TraceMarker, 'kind' | 't_ns'>): void {
    this.pendingMarkers.push({ kind: 'marker', t_ns: this.nowNs(), ...m });
  }

  /** Writes the waiting markers made up to `untilNs` (all of them for Infinity). */
  private flushMarkers(untilNs: number): void {
    if (this.pendingMarkers.length === 0) return;
    const later: TraceMarker[] = [];
    for (const m of this.pendingMarkers) {
      if (m.t_ns <= untilNs) this.recorder.write(m);
      else later.push(m);
    }
    this.pendingMarkers = later;
  }

  private header(): TraceHeader {
    const { opts, plan, target } = this;
    return {
      kind: 'header',
      t_ns: 0,
      schema: TRACE_SCHEMA,
      gpucoloVersion: VERSION,
      startedAt: new Date().toISOString(),
      monotonicOriginNs: '0',
      host: { hostname: os.hostname(), kernel: os.release() },
      gpus: (plan.topology?.nodes ?? [])
        .filter((n) => n.isGpu)
        .map((n) => ({ node: n.node, gpuId: n.gpuIdHex, name: n.name, gfxTarget: n.gpu!.gfxTarget, numXcc: n.gpu!.numXcc })),
      sources: opts.sources,
      readable: plan.readable,
      intervalNs: opts.intervalNs,
      debugfsIntervalNs: plan.debugfsEvery * opts.intervalNs,
      sysfsWalk: plan.sysfsWalk,
      countersIntervalNs: plan.countersEvery * opts.intervalNs,
      roots: { sysfs: opts.sysfsRoot, debugfs: opts.debugfsRoot, proc: opts.procRoot },
      impl: plan.impl,
      sampler: 'ts-timer',
      target: { mode: target.mode, pids: [...target.roots], ...(opts.command?.length ? { command: opts.command } : {}) },
      options: { durationNs: opts.durationNs, baselineNs: target.mode === 'command' ? opts.baselineNs : 0, tailNs: plan.tailNs, stopAfterNs: opts.stopAfterNs },
    };
  }

  /** A sample: assembled, its events derived, recorded, exported; then whether the trace ends. */
  private onSample(raw: NativeSample): void {
    if (this.finishing && (this.drainUntilNs === null || raw.actualNs > this.drainUntilNs)) return;
    const s = this.assembler.assemble(raw);
    // markers made before this sample was taken come first
    this.flushMarkers(s.t_ns);
    if (raw.mqds !== undefined) {
      const lost = !s.debugfs;
      // at the time of the sample that shows it (a batch arrives later than its samples were taken)
      if (lost !== this.debugfsLost) this.recorder.write({ kind: 'marker', t_ns: s.t_ns, marker: lost ? 'source-lost' : 'source-back', source: 'debugfs', detail: s.issues[0] });
      this.debugfsLost = lost;
    }
    const events = [...this.reusedPidEvents(s, raw.pidStarts), ...this.deriver.update(s)];
    for (const e of events) {
      if (e.event !== 'process-exited') continue;
      this.target.forget(e.pid);
      this.assembler.forget(e.pid);
      // gone (not replaced by a reuse, whose new start time stays): a later process there is new
      if (!s.processes.some((p) => p.pid === e.pid)) this.pidReuse.forget(e.pid);
    }
    this.recorder.write(s);
    for (const e of events) this.recorder.write(e);
    this.result.samples++;
    this.result.events += events.length;
    this.result.missedIntervals += s.missed;
    this.exporter?.update(s, events);
    if (this.recorder.error) {
      void this.finish('error', { message: this.recorder.error.message, code: this.recorder.error.code });
      return;
    }
    // a sample recorded while the trace ends (drainUntilNs) decides nothing more
    if (this.finishing) return;
    this.status(s);
    if (this.opts.durationNs !== null && s.t_ns >= this.opts.durationNs) {
      void this.finish('duration');
      return;
    }
    // --pid mode: every traced pid gone -> tail, then end
    if (this.target.mode === 'pids' && this.targetGoneAt === null && this.target.allRootsGone()) {
      this.targetGoneAt = s.t_ns;
      this.marker({ marker: 'command-exited', detail: 'every traced pid exited' });
      this.timers.push(setTimeout(() => void this.finish('target-exit'), this.plan.tailNs / 1e6));
    }
  }

  /** A pid taken over by another process is recorded as an exit and a new start. */
  private reusedPidEvents(s: TraceSample, starts: Float64Array | undefined): TraceEvent[] {
    const out: TraceEvent[] = [];
    for (const pid of this.pidReuse.reused(s, starts)) {
      out.push(...this.deriver.replaced(pid, s.t_ns, s.seq));
      this.assembler.forget(pid);
      this.target.forget(pid);
      this.plan.log(`gpucolo trace: pid ${pid} was reused by another process; recorded as an exit and a new start`);
    }
    return out;
  }

  /** The status line, about once a second, with gpucolo's own CPU since the last one. */
  private status(s: TraceSample): void {
    if (!this.opts.status) return;
    // the samples after the last line's (its own calls came before its running total)
    this.ioSinceStatus = this.ioSinceStatus === null || s.io_ns === undefined ? null : this.ioSinceStatus + s.io_ns;
    if (s.t_ns - this.lastStatus < 1e9) return;
    const nq = s.processes.reduce((a, p) => a + p.queues.length, 0);
    // thread CPU clocks: the sampling thread and the JS thread, as a share of one core
    const cpu = s.cpu_ns !== undefined && this.lastStatusCpu !== null && s.t_ns > this.lastStatus ? `, ${cpuStatus(s.cpu_ns - this.lastStatusCpu, s.t_ns - this.lastStatus, this.ioSinceStatus)}` : '';
    this.lastStatus = s.t_ns;
    this.lastStatusCpu = s.cpu_ns ?? null;
    this.ioSinceStatus = 0;
    const r = this.result;
    this.opts.status(`trace ${(s.t_ns / 1e9).toFixed(1)}s: ${r.samples} samples (${r.missedIntervals} missed)${cpu}, ${s.processes.length} process(es), ${nq} queue(s), ${r.events} event(s)`);
  }

  /** --command: the baseline, then the command under the supervisor; its exit starts the tail. */
  scheduleCommand(): void {
    if (this.target.mode !== 'command') return;
    this.marker({ marker: 'baseline-start' });
    // libuv's timers count whole milliseconds on a coarser clock than hrtime: a timer can fire a
    // fraction of a millisecond before the baseline is over on the trace's clock; wait that out
    const afterBaseline = (fn: () => void): void => {
      const left = this.opts.baselineNs - this.nowNs();
      if (left > 0) this.timers.push(setTimeout(() => afterBaseline(fn), Math.max(1, Math.ceil(left / 1e6))));
      else fn();
    };
    this.timers.push(setTimeout(() => afterBaseline(() => this.startCommand()), this.opts.baselineNs / 1e6));
  }

  private startCommand(): void {
    if (this.finishing) return;
    const { opts } = this;
    this.marker({ marker: 'baseline-end' });
    const c = this.sup.start({ argv: opts.command!, stdin: 'inherit', stdout: opts.out === '-' ? 'ignore' : 'inherit', stderr: 'inherit', name: 'traced' });
    if (c.pid === undefined) {
      // missing program, not executable, bad cwd: nothing to trace
      void c.exited.then((info: ExitInfo) => {
        this.marker({ marker: 'command-exited', code: info.code, signal: info.signal, detail: info.error ?? info.reason });
        void this.finish('error', { message: `cannot start ${opts.command![0]}: ${info.error ?? info.reason}`, code: info.errorCode });
      });
      return;
    }
    this.child = c;
    this.target.addRoot(c.pid);
    this.assembler.invalidate();
    this.result.command = { pid: c.pid, exit: null };
    this.marker({ marker: 'command-started', pid: c.pid, pgid: c.pgid, argv: opts.command });
    this.plan.log(`gpucolo trace: started ${opts.command!.join(' ')} (pid ${c.pid}, process group ${c.pgid})`);
    void c.exited.then((info) => this.commandExited(c.pid!, info));
    if (opts.stopAfterNs !== null) {
      this.timers.push(
        setTimeout(() => {
          if (this.finishing || this.childExit) return;
          this.marker({ marker: 'stop-signal', pid: c.pid, signal: 'SIGTERM' });
          void c.stop();
        }, opts.stopAfterNs / 1e6),
      );
    }
  }

  private commandExited(pid: number, info: ExitInfo): void {
    // on Ctrl-C the supervisor stops the group before the trace is told; finish() records it
    if (this.finishing || this.interrupted) return;
    this.childExit = info;
    this.result.command = { pid, exit: info };
    this.marker({ marker: 'command-exited', pid, code: info.code, signal: info.signal, detail: info.error ?? info.reason });
    this.plan.log(
      `gpucolo trace: command ${info.reason}${info.code !== null ? ` with code ${info.code}` : ''}${info.signal ? ` by ${info.signal}` : ''}${info.error ? `: ${info.error}` : ''}; sampling ${this.plan.tailNs / 1e9}s more`,
    );
    this.timers.push(setTimeout(() => void this.finish('command-exit'), this.plan.tailNs / 1e6));
  }

  /** Ends the trace once: sampler stopped, the command's group stopped, the footer written. */
  private async finish(endedBy: TraceFooter['endedBy'], error?: { message: string; code?: string }): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    // samples taken before now and still held by the native thread come in during stop()
    this.drainUntilNs = endedBy === 'duration' || this.recorder.error ? null : this.nowNs();
    for (const t of this.timers) clearTimeout(t);
    await this.sampler?.stop();
    this.drainUntilNs = null;
    if (this.child && !this.childExit) {
      const info = await this.child.stop();
      this.childExit = info;
      this.marker({ marker: 'command-exited', pid: this.child.pid, code: info.code, signal: info.signal, detail: info.reason });
    }
    await this.sup.stopAll();
    const r = this.result;
    const footer: TraceFooter = { kind: 'footer', t_ns: this.nowNs(), samples: r.samples, events: r.events, missedIntervals: r.missedIntervals, endedBy, ...(error ? { error: error.message } : {}) };
    this.flushMarkers(Infinity);
    this.recorder.write(footer);
    this.recorder.close();
    await this.exporter?.close();
    r.endedBy = endedBy;
    if (error) {
      r.error = error.message;
      r.errorCode = error.code;
    }
    this.resolveDone();
  }
}
