/**
 * `gpucolo trace`: samples KFD queues at a fixed interval and records them with derived events.
 * Modes: every KFD process; given pids (and their descendants); or a command started here (after
 * a baseline), traced with its descendants, sampled on after it exits (tail) to catch queue
 * destruction, optionally sent SIGTERM at --stop-after. The child runs under the supervisor
 * (own process group, SIGTERM -> grace -> SIGKILL), so no path leaves it behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import { pickImpl } from '../native.js';
import { VERSION } from '../version.js';
import { readTopology } from '../kfd/parse.js';
import { KFD_PROC, underRoot } from '../kfd/sysfs-ts.js';
import type { Topology } from '../kfd/types.js';
import { Supervisor, isDescendantOf, readStat, type ExitInfo, type SupervisedChild } from '../runners/supervisor/index.js';
import { SampleAssembler } from './assemble.js';
import { EventDeriver } from './events.js';
import { TraceExporter, httpUrl, parseListen } from './exporter.js';
import { TraceRecorder } from './recorder.js';
import { startSampler, type Sampler } from './sampler.js';
import { TRACE_SCHEMA, type TraceEvent, type TraceFooter, type TraceHeader, type TraceMarker, type TraceSample, type TraceSource } from './schema.js';

export const MIN_INTERVAL_NS = 10e6;
/** long studies (the design notes sample every 10 s): up to a minute; the native thread allows 60 s too */
export const MAX_INTERVAL_NS = 60e9;

/**
 * The tail actually sampled: with an interval above 1 s a short tail could end the trace before
 * any sample follows the command's exit, so it is at least one interval and 100 ms.
 */
export function effectiveTailNs(intervalNs: number, tailNs: number): number {
  return intervalNs > 1e9 ? Math.max(tailNs, intervalNs + 100e6) : tailNs;
}

export interface TraceOptions {
  intervalNs: number;
  /** stop after this long (from the start of the trace); null = until the target ends or Ctrl-C */
  durationNs: number | null;
  /** read debugfs at this interval (rounded to a multiple of intervalNs); null = default */
  debugfsIntervalNs: number | null;
  sources: TraceSource[];
  sysfsRoot: string;
  debugfsRoot: string;
  procRoot: string;
  impl?: 'native' | 'ts';
  pids?: number[];
  command?: string[];
  baselineNs: number;
  tailNs: number;
  stopAfterNs: number | null;
  /**
   * file path, or '-' for stdout. Opened once the options are checked and --serve listens; an
   * existing file is replaced by the first record only, so a run that fails before keeps it.
   */
  out: string;
  /** `out` is a generated name: never overwrite, take out-2, out-3... when taken (result.out says which) */
  outUnique?: boolean;
  /** called with the trace file's name once it is open */
  onOpen?: (out: string) => void;
  /** Prometheus endpoint, e.g. 127.0.0.1:9464 */
  serve?: string;
  graceMs?: number;
  /** progress and notices for a person (stderr in the CLI) */
  log?: (line: string) => void;
  /** status line refresh for a terminal; called about once a second */
  status?: (line: string) => void;
  /** stops the trace like Ctrl-C (library use, tests) */
  signal?: AbortSignal;
}

export interface TraceResult {
  out: string;
  samples: number;
  events: number;
  missedIntervals: number;
  endedBy: TraceFooter['endedBy'];
  error?: string;
  errorCode?: string;
  readable: TraceSource[];
  command?: { pid: number; exit: ExitInfo | null };
  metrics?: { host: string; port: number };
}

/** debugfs default: as often as sysfs down to 100 ms; reading hqds makes the kernel read GPU registers. */
export function debugfsEvery(intervalNs: number, debugfsIntervalNs: number | null): number {
  const want = debugfsIntervalNs ?? Math.max(intervalNs, 100e6);
  return Math.max(1, Math.round(want / intervalNs));
}

function canRead(path: string, dir: boolean): boolean {
  try {
    if (dir) fs.readdirSync(path);
    else {
      // O_NONBLOCK: a FIFO in a recorded tree must not wait for a writer; only a regular file counts (input-file.ts)
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const regular = fs.fstatSync(fd).isFile();
      fs.closeSync(fd);
      return regular;
    }
    return true;
  } catch {
    return false;
  }
}

export async function runTrace(opts: TraceOptions): Promise<TraceResult> {
  if (!(opts.intervalNs >= MIN_INTERVAL_NS && opts.intervalNs <= MAX_INTERVAL_NS)) {
    throw new RangeError(`--interval must be between 10ms and 60s (got ${opts.intervalNs / 1e6} ms)`);
  }
  const tailNs = effectiveTailNs(opts.intervalNs, opts.tailNs);
  if (tailNs !== opts.tailNs) {
    (opts.log ?? (() => {}))(`gpucolo trace: --tail ${opts.tailNs / 1e9}s is shorter than the ${opts.intervalNs / 1e9}s interval; sampling ${tailNs / 1e9}s after the exit so that at least one sample follows it`);
  }
  if (opts.pids?.length && opts.command?.length) throw new RangeError('give either --pid or a command, not both');
  if (opts.serve !== undefined) parseListen(opts.serve);
  const log = opts.log ?? (() => {});
  const impl = pickImpl(opts.impl);

  // ---- what can be read
  const readable: TraceSource[] = [];
  if (opts.sources.includes('sysfs') && canRead(underRoot(opts.sysfsRoot, KFD_PROC), true)) readable.push('sysfs');
  if (opts.sources.includes('debugfs')) {
    if (canRead(underRoot(opts.debugfsRoot, 'kfd/mqds'), false)) readable.push('debugfs');
    else log(`gpucolo trace: debugfs ${underRoot(opts.debugfsRoot, 'kfd')} is not readable (root only); recording sysfs only: queue ids, types, GPUs`);
  }
  if (readable.length === 0) {
    const err = new Error(`no KFD source readable (${opts.sources.join(', ')}): is the amdgpu driver loaded here? (gpucolo doctor explains)`);
    throw Object.assign(err, { code: 'ENOKFD' });
  }
  let topology: Topology | null = readable.includes('sysfs') || canRead(underRoot(opts.sysfsRoot, 'class/kfd/kfd/topology/nodes'), true) ? readTopology({ sysfsRoot: opts.sysfsRoot, impl }) : null;
  if (topology && topology.nodes.length === 0) topology = null;
  const every = readable.includes('debugfs') ? debugfsEvery(opts.intervalNs, opts.debugfsIntervalNs) : 0;

  const mode = opts.command?.length ? 'command' : opts.pids?.length ? 'pids' : 'all';

  // ---- who is traced: roots and their descendants (decided once per pid, via /proc PPid)
  const roots = new Set<number>(opts.pids ?? []);
  const verdict = new Map<number, boolean>();
  const keep =
    mode === 'all'
      ? undefined
      : (pid: number): boolean => {
          if (roots.has(pid)) return true;
          const known = verdict.get(pid);
          if (known !== undefined) return known;
          const v = roots.size > 0 && isDescendantOf(opts.procRoot, pid, roots);
          verdict.set(pid, v);
          return v;
        };

  const sup = new Supervisor({ graceMs: opts.graceMs ?? 5000 });
  const exporter = opts.serve ? new TraceExporter() : null;
  const result: TraceResult = { out: opts.out, samples: 0, events: 0, missedIntervals: 0, endedBy: 'duration', readable };
  if (exporter) {
    result.metrics = await exporter.listen(opts.serve!);
    log(`gpucolo trace: Prometheus metrics on ${httpUrl(result.metrics.host, result.metrics.port, '/metrics')}`);
  }
  let recorder: TraceRecorder;
  try {
    recorder = new TraceRecorder(opts.out, { unique: opts.outUnique });
  } catch (err) {
    await exporter?.close();
    throw err;
  }
  result.out = recorder.out;
  opts.onOpen?.(recorder.out);

  let sampler: Sampler | null = null;
  let child: SupervisedChild | null = null;
  let finishing = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const timers: NodeJS.Timeout[] = [];
  const nowNs = (): number => (sampler ? Number(process.hrtime.bigint() - sampler.originNs) : 0);
  const marker = (m: Omit<TraceMarker, 'kind' | 't_ns'>): void => {
    recorder.write({ kind: 'marker', t_ns: nowNs(), ...m });
  };

  const finish = async (endedBy: TraceFooter['endedBy'], error?: { message: string; code?: string }): Promise<void> => {
    if (finishing) return;
    finishing = true;
    for (const t of timers) clearTimeout(t);
    await sampler?.stop();
    if (child && !childExit) {
      const info = await child.stop();
      childExit = info;
      marker({ marker: 'command-exited', pid: child.pid, code: info.code, signal: info.signal, detail: info.reason });
    }
    await sup.stopAll();
    const footer: TraceFooter = {
      kind: 'footer',
      t_ns: nowNs(),
      samples: result.samples,
      events: result.events,
      missedIntervals: result.missedIntervals,
      endedBy,
      ...(error ? { error: error.message } : {}),
    };
    recorder.write(footer);
    recorder.close();
    await exporter?.close();
    result.endedBy = endedBy;
    if (error) {
      result.error = error.message;
      result.errorCode = error.code;
    }
    resolveDone();
  };

  // ---- signals: Ctrl-C / SIGTERM stop the child group and end the trace with a footer
  let childExit: ExitInfo | null = null;
  let interrupted = false;
  // the supervisor stops the child group first and tells onSignal afterwards; knowing at once
  // keeps the child's exit from being taken for a normal one (tail, "sampling more")
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const noteSignal = (): void => {
    interrupted = true;
  };
  for (const sig of SIGNALS) process.prependListener(sig, noteSignal);
  const unsubscribeSup = sup.installSignalHandlers({
    onSignal: (sig: string) => {
      interrupted = true;
      marker({ marker: 'interrupted', detail: sig });
      void finish('interrupt');
    },
  });
  const unsubscribe = (): void => {
    unsubscribeSup();
    for (const sig of SIGNALS) process.off(sig, noteSignal);
  };
  opts.signal?.addEventListener('abort', () => {
    marker({ marker: 'interrupted', detail: 'abort' });
    void finish('interrupt');
  });

  const header: TraceHeader = {
    kind: 'header',
    t_ns: 0,
    schema: TRACE_SCHEMA,
    gpucoloVersion: VERSION,
    startedAt: new Date().toISOString(),
    monotonicOriginNs: '0',
    host: { hostname: os.hostname(), kernel: os.release() },
    gpus: (topology?.nodes ?? [])
      .filter((n) => n.isGpu)
      .map((n) => ({ node: n.node, gpuId: n.gpuIdHex, name: n.name, gfxTarget: n.gpu!.gfxTarget, numXcc: n.gpu!.numXcc })),
    sources: opts.sources,
    readable,
    intervalNs: opts.intervalNs,
    debugfsIntervalNs: every * opts.intervalNs,
    roots: { sysfs: opts.sysfsRoot, debugfs: opts.debugfsRoot, proc: opts.procRoot },
    impl,
    sampler: 'ts-timer',
    target: { mode, pids: [...roots], ...(opts.command?.length ? { command: opts.command } : {}) },
    options: { durationNs: opts.durationNs, baselineNs: mode === 'command' ? opts.baselineNs : 0, tailNs, stopAfterNs: opts.stopAfterNs },
  };

  const assembler = new SampleAssembler({ topology, procRoot: opts.procRoot, impl, keep });
  const deriver = new EventDeriver();
  let debugfsLost = false;
  let lastStatus = 0;
  let targetGoneAt: number | null = null;

  // pid reuse: a process is its pid plus its start time (/proc/<pid>/stat). Checked when a pid's
  // queue set changes, the only time a new process behind an old pid can show in the data.
  const startTicks = new Map<number, number | null>();
  const lastKeys = new Map<number, string>();
  const reusedPids = (s: TraceSample): TraceEvent[] => {
    const out: TraceEvent[] = [];
    const seen = new Set<number>();
    for (const p of s.processes) {
      seen.add(p.pid);
      const keys = p.queues.map((q) => q.key).join(',');
      const before = lastKeys.get(p.pid);
      lastKeys.set(p.pid, keys);
      if (before === keys) continue;
      const now = readStat(opts.procRoot, p.pid)?.startTicks ?? null;
      const was = startTicks.get(p.pid);
      startTicks.set(p.pid, now);
      if (was != null && now !== null && was !== now) {
        out.push(...deriver.replaced(p.pid, s.t_ns, s.seq));
        assembler.forget(p.pid);
        verdict.delete(p.pid);
        log(`gpucolo trace: pid ${p.pid} was reused by another process; recorded as an exit and a new start`);
      }
    }
    for (const pid of [...lastKeys.keys()]) if (!seen.has(pid)) (lastKeys.delete(pid), startTicks.delete(pid));
    return out;
  };

  const onSample = (raw: Parameters<Parameters<typeof startSampler>[1]>[0]): void => {
    if (finishing) return;
    const s = assembler.assemble(raw);
    if (raw.mqds !== undefined) {
      const lost = !s.debugfs;
      if (lost !== debugfsLost) marker({ marker: lost ? 'source-lost' : 'source-back', source: 'debugfs', detail: s.issues[0] });
      debugfsLost = lost;
    }
    const events = [...reusedPids(s), ...deriver.update(s)];
    for (const e of events) if (e.event === 'process-exited') {
      verdict.delete(e.pid);
      assembler.forget(e.pid);
    }
    recorder.write(s);
    for (const e of events) recorder.write(e);
    result.samples++;
    result.events += events.length;
    result.missedIntervals += s.missed;
    exporter?.update(s, events);
    if (recorder.error) {
      void finish('error', { message: recorder.error.message, code: recorder.error.code });
      return;
    }
    if (opts.status && s.t_ns - lastStatus >= 1e9) {
      lastStatus = s.t_ns;
      const nq = s.processes.reduce((a, p) => a + p.queues.length, 0);
      opts.status(`trace ${(s.t_ns / 1e9).toFixed(1)}s: ${result.samples} samples, ${s.processes.length} process(es), ${nq} queue(s), ${result.events} event(s)`);
    }
    if (opts.durationNs !== null && s.t_ns >= opts.durationNs) {
      void finish('duration');
      return;
    }
    // --pid mode: every traced pid gone -> tail, then end
    if (mode === 'pids' && targetGoneAt === null && [...roots].every((p) => !fs.existsSync(underRoot(opts.procRoot, String(p))))) {
      targetGoneAt = s.t_ns;
      marker({ marker: 'command-exited', detail: 'every traced pid exited' });
      timers.push(setTimeout(() => void finish('target-exit'), tailNs / 1e6));
    }
  };

  try {
    sampler = startSampler({ sysfsRoot: opts.sysfsRoot, debugfsRoot: opts.debugfsRoot, intervalNs: opts.intervalNs, debugfsEvery: every, impl }, onSample);
  } catch (err) {
    unsubscribe();
    recorder.close();
    await exporter?.close();
    throw err;
  }
  // samples arrive asynchronously (timer or ThreadSafeFunction): the header is always first
  header.sampler = sampler.kind;
  header.monotonicOriginNs = sampler.originNs.toString();
  recorder.write(header);
  if (mode === 'command') marker({ marker: 'baseline-start' });

  if (mode === 'command') {
    // libuv's timers count whole milliseconds on a coarser clock than hrtime: a timer can fire a
    // fraction of a millisecond before the baseline is over on the trace's clock; wait that out
    const afterBaseline = (fn: () => void): void => {
      const left = opts.baselineNs - nowNs();
      if (left > 0) timers.push(setTimeout(() => afterBaseline(fn), Math.max(1, Math.ceil(left / 1e6))));
      else fn();
    };
    timers.push(
      setTimeout(() => afterBaseline(() => {
        if (finishing) return;
        marker({ marker: 'baseline-end' });
        const c = sup.start({ argv: opts.command!, stdin: 'inherit', stdout: opts.out === '-' ? 'ignore' : 'inherit', stderr: 'inherit', name: 'traced' });
        if (c.pid === undefined) {
          // missing program, not executable, bad cwd: nothing to trace
          void c.exited.then((info: ExitInfo) => {
            marker({ marker: 'command-exited', code: info.code, signal: info.signal, detail: info.error ?? info.reason });
            void finish('error', { message: `cannot start ${opts.command![0]}: ${info.error ?? info.reason}`, code: info.errorCode });
          });
          return;
        }
        child = c;
        roots.add(c.pid);
        verdict.clear();
        assembler.invalidate();
        result.command = { pid: c.pid, exit: null };
        marker({ marker: 'command-started', pid: c.pid, pgid: c.pgid, argv: opts.command });
        log(`gpucolo trace: started ${opts.command!.join(' ')} (pid ${c.pid}, process group ${c.pgid})`);
        void c.exited.then((info: ExitInfo) => {
          // on Ctrl-C the supervisor stops the group before the trace is told; finish() records it
          if (finishing || interrupted) return;
          childExit = info;
          result.command = { pid: c.pid!, exit: info };
          marker({ marker: 'command-exited', pid: c.pid, code: info.code, signal: info.signal, detail: info.error ?? info.reason });
          log(`gpucolo trace: command ${info.reason}${info.code !== null ? ` with code ${info.code}` : ''}${info.signal ? ` by ${info.signal}` : ''}${info.error ? `: ${info.error}` : ''}; sampling ${tailNs / 1e9}s more`);
          timers.push(setTimeout(() => void finish('command-exit'), tailNs / 1e6));
        });
        if (opts.stopAfterNs !== null) {
          timers.push(
            setTimeout(() => {
              if (finishing || childExit) return;
              marker({ marker: 'stop-signal', pid: c.pid, signal: 'SIGTERM' });
              void c.stop();
            }, opts.stopAfterNs / 1e6),
          );
        }
      }), opts.baselineNs / 1e6),
    );
  }

  await done;
  unsubscribe();
  if (result.command && childExit) result.command.exit = childExit;
  return result;
}
