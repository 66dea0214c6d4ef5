/**
 * The probe form of a scenario phase: every task becomes one stream of the dispatch engine (spin
 * kernels of the task's duration on the cpu, cuda or hip backend), all in one measurement, so the
 * engine times every launch in its own threads (the native engine's, or the pure-TS engine's
 * worker_threads when the native core is not loaded: see src/dispatch/engine-choice.ts). Scheduled arrivals are handed over as a
 * `list` arrival (the same schedule the torch form would use); closed-loop tasks stay closed loop.
 *
 * Priorities: the engine has two levels, so the task(s) with the highest priority are its
 * high-priority streams and every other task is low priority (a scenario with three levels
 * runs its two lower ones at one level here; the report says so).
 *
 * The end: the engine submits the backlog of arrivals intended before the end and waits for what
 * is in flight; that drain is bounded here (drainNs(): 2 s, or longer for long requests and
 * deadlines) by cancelling the engine, so an overloaded phase neither runs into the engine's
 * watchdog (which would fail the whole phase and lose its data) nor hangs. Requests that are then
 * still unfinished, or were never submitted, are censored at their age when the driver stopped
 * waiting (censor.ts): they stay in the latency sample as lower bounds.
 */
import { runDispatch, listBackends, type DispatchRun, type DispatchSpecInput } from '../dispatch/index.js';
import { blocksPerCuAt, fillReport, fillText, mechanismProblem, reservedUnits, sizeStreams, streamShare, type StreamShare } from '../dispatch/fill.js';
import type { DispatchEngine, DispatchMechanism, NativeBackendInfo } from '../native.js';
import { isEngineMechanism, mechanismInfo, type Backend } from '../mechanisms.js';
import { arrivalTimes } from './arrivals.js';
import { censoredAges, generatorLagNs } from './censor.js';
import type { Mechanism, ProbeWorkload, Task } from './schema.js';
import type { PhaseStatus, TaskSamples } from './types.js';

export type ProbeBackend = Backend;

export interface ProbePhaseOptions {
  tasks: { task: Task; workload: ProbeWorkload }[];
  backend: ProbeBackend;
  device?: number;
  mechanism: Mechanism;
  reserve: number;
  throttleK: number;
  durationNs: number;
  warmupNs: number;
  /** force a dispatch engine (default: runDispatch's choice) */
  engine?: DispatchEngine;
  signal?: AbortSignal;
  /** how long in-flight work may drain after the phase end before it is censored (default drainNs()) */
  drainNs?: number;
}

export interface ProbePhaseResult {
  status: PhaseStatus;
  reason?: string;
  samples: TaskSamples[];
  notes: string[];
  computeUnits: number;
  /**
   * blocks each task's kernels ran with ("fill" resolved: the compute units its stream was given,
   * as made, x the probe kernel's resident blocks per CU at its block size, x waves)
   */
  blocks: Record<string, number>;
  /** the engine that measured the phase; null when it did not run */
  engine: DispatchEngine | null;
}

/** The least drain after a phase end (the torch driver waits as long: torch-driver.ts DRAIN_NS). */
export const MIN_DRAIN_NS = 2e9;

/**
 * How long the engine may drain after the end: 2 s, or two requests' device time of the slowest
 * task, or the longest deadline (a batch with a 3 s deadline is not "missed" before 3 s).
 */
export function drainNs(tasks: ProbePhaseOptions['tasks']): number {
  let d = MIN_DRAIN_NS;
  for (const { task, workload } of tasks) {
    d = Math.max(d, 2 * workload.kernel * workload.kernels * (workload.blocks === 'fill' ? workload.waves : 1));
    const a = task.arrival;
    if ((a.kind === 'frames' || a.kind === 'batch') && a.deadline !== undefined) d = Math.max(d, a.deadline);
    if (a.kind === 'batch') d = Math.max(d, a.deadline ?? a.period);
  }
  return d;
}

/** In-flight launches a scheduled stream may have (one at a time for multi-kernel requests). */
const LIST_INFLIGHT = 64;

/** The backend's device (as the engine that will drive it sees it), or null with the reason. */
export function probeDevice(backend: ProbeBackend, device = 0, engine?: DispatchEngine): { info: NativeBackendInfo; dev: NativeBackendInfo['devices'][number] } | { reason: string } {
  const info = listBackends({ engine }).find((b) => b.name === backend);
  if (!info?.available) return { reason: `backend ${backend} unavailable: ${info?.reason ?? 'unknown backend'}` };
  const dev = info.devices[device];
  if (!dev) return { reason: `backend ${backend} has no device ${device} (${info.devices.length} device(s))` };
  return { info, dev };
}

/**
 * Why a mechanism cannot run in the probe form on this backend/device, or null when it can.
 * Decided before the phase starts, so an inapplicable mechanism is a skipped phase with a reason
 * rather than an engine error.
 */
export function probeMechanismProblem(m: Mechanism, backend: ProbeBackend, dev: NativeBackendInfo['devices'][number], reserve: number): string | null {
  if (m === 'gate') return 'gate pauses separate worker processes between layers: it applies to the torch form';
  if (m === 'xsched') return 'xsched wraps the streams of separately started workers (LD_PRELOAD): it applies to the torch form';
  if (!isEngineMechanism(m)) return `unknown mechanism ${m}`;
  // the backend's support, both sides of a reserve, CU masks that would leave an XCC empty (fill.ts)
  return mechanismProblem(m, backend, dev, reserve);
}

/** "16 SMs (asked 14)" */
const madeText = (made: number, asked: number, unit: string): string => `${made} ${unit}${made !== asked ? ` (asked ${asked})` : ''}`;

function stream(t: Task, w: ProbeWorkload, prio: { high: boolean; level: number; levels: number }, blocks: number, spanNs: number): DispatchSpecInput['streams'][number] {
  const times = arrivalTimes(t.arrival, spanNs);
  const kernel = { spinNs: w.kernel, blocks, threadsPerBlock: w.threadsPerBlock };
  const base = { name: t.name, highPriority: prio.high, kernel, ...(prio.levels > 2 ? { level: prio.level, levels: prio.levels } : {}) };
  if (times === null) {
    const inflight = t.arrival.kind === 'closed-loop' ? t.arrival.concurrency : 1;
    return { ...base, arrival: 'closed-loop', inflight };
  }
  if (w.kernels === 1) {
    // enough in flight that the engine never holds back a scheduled arrival
    return { ...base, arrival: 'list', timesNs: Array.from(times), inflight: LIST_INFLIGHT };
  }
  // a request = `kernels` launches with the request's intended time, one after the other (one in
  // flight): later launches wait for earlier ones, and the wait counts, since latency is from intended
  const list: number[] = [];
  for (const x of times) for (let k = 0; k < w.kernels; k++) list.push(x);
  return { ...base, arrival: 'list', timesNs: list, inflight: 1 };
}

/**
 * Engine launches -> requests: a request is `kernels` consecutive launches (one in flight).
 * `stopNs` (ns since the run's origin) is when the driver stopped waiting: requests unfinished
 * then, or never submitted, are censored at stopNs - intended. `lagged`: whether this task's
 * submit lag says something about the load generator (not under throttle's LP hold).
 */
function samplesOf(run: DispatchRun, t: Task, w: ProbeWorkload, spanNs: number, warmupNs: number, stopNs: number, lagged: boolean): TaskSamples {
  const s = run.streams.find((x) => x.name === t.name)!;
  const raw = s.raw;
  const measuredNs = run.measuredNs;
  const k = w.kernels;
  const lat: number[] = [];
  const start: number[] = [];
  const svc: number[] = [];
  const unfinished: number[] = [];
  let afterEnd = 0;
  // launches in submission order; warm-up launches are flagged by the engine
  const idx: number[] = [];
  for (let i = 0; i < raw.intendedNs.length; i++) if (!raw.warmup[i]) idx.push(i);
  idx.sort((a, b) => raw.intendedNs[a] - raw.intendedNs[b] || raw.submitNs[a] - raw.submitNs[b]);
  let groups = 0;
  for (let g = 0; g < idx.length; g += k) {
    groups++;
    const first = idx[g];
    if (g + k > idx.length) {
      // the request's later kernels were never submitted: it never finished
      unfinished.push(raw.intendedNs[first]);
      continue;
    }
    const last = idx[g + k - 1];
    let busy = 0;
    let complete = true;
    for (let j = g; j < g + k; j++) {
      const i = idx[j];
      if (!(raw.completeNs[i] > 0)) complete = false;
      else busy += raw.deviceEndNs[i] - raw.deviceStartNs[i];
    }
    if (!complete) {
      unfinished.push(raw.intendedNs[first]);
      continue;
    }
    lat.push(raw.completeNs[last] - raw.intendedNs[first]);
    start.push(raw.deviceStartNs[first] - raw.intendedNs[first]);
    svc.push(busy);
    if (raw.completeNs[last] > spanNs) afterEnd++;
  }
  const times = arrivalTimes(t.arrival, spanNs);
  if (times) {
    // scheduled arrivals in the measured window that the engine never submitted: the latest ones
    // (one submitter per stream, in schedule order)
    const inWindow: number[] = [];
    for (const x of times) if (x >= warmupNs) inWindow.push(x);
    for (let j = groups; j < inWindow.length; j++) unfinished.push(inWindow[j]);
  }
  const issued = lat.length + unfinished.length;
  return {
    task: t.name,
    issued,
    latencyNs: Float64Array.from(lat),
    startDelayNs: Float64Array.from(start),
    serviceNs: Float64Array.from(svc),
    errors: raw.errors,
    ...(s.error ? { error: s.error } : {}),
    measuredNs,
    censoredNs: censoredAges(unfinished, stopNs),
    completedAfterEnd: afterEnd,
    submitLagNs: times && lagged ? generatorLagNs(raw, k === 1 ? LIST_INFLIGHT : 1) : new Float64Array(0),
  };
}

/**
 * What the run was given, as made: the partition (or mask) each side got, how each task's kernels
 * filled its compute units (blocks x threads, resident blocks per CU, occupancy), the device
 * clock's drift against the host's over the run.
 */
function madeNotes(o: ProbePhaseOptions, run: DispatchRun, dev: NativeBackendInfo['devices'][number], top: number): string[] {
  const notes: string[] = [];
  const shares = o.tasks.map(({ task, workload }) => {
    const s = run.streams.find((x) => x.name === task.name);
    return s ? streamShare(s.raw, workload.threadsPerBlock, dev) : null;
  });
  if (o.mechanism === 'cu-mask' || o.mechanism === 'sm-partition') {
    const cus = dev.computeUnits;
    const kept = reservedUnits(o.reserve, cus);
    const hp = shares.find((s) => s?.highPriority && s.computeUnits > 0);
    const lp = shares.find((s) => s && !s.highPriority && s.computeUnits > 0);
    const unit = o.mechanism === 'sm-partition' ? 'SMs' : 'compute units';
    if (hp || lp) {
      const rounded = (hp && hp.computeUnits !== kept) || (lp && lp.computeUnits !== cus - kept);
      if (!rounded) notes.push(`${o.mechanism}: made as asked`);
      else notes.push(
        `${o.mechanism} as made: ${hp ? madeText(hp.computeUnits, kept, unit) : '?'} for priority ${top}, ${lp ? madeText(lp.computeUnits, cus - kept, unit) : '?'} for the others, of ${cus}${rounded && o.mechanism === 'sm-partition' ? ' (the driver rounds green-context partitions up: multiples of 8 SMs on sm_90)' : ''}`,
      );
    }
  }
  o.tasks.forEach(({ task, workload }, i) => {
    const sh = shares[i];
    if (workload.blocks !== 'fill' || !sh) return;
    const blocks = run.spec.streams.find((x) => x.name === task.name)?.kernel.blocks ?? 0;
    const f = fillReport({ blocks, threadsPerBlock: workload.threadsPerBlock, concurrent: 1, computeUnits: sh.computeUnits, blocksPerCu: sh.blocksPerCu, dev, gpu: o.backend !== 'cpu' });
    notes.push(`fill: ${task.name} kernels of ${fillText(f)}`);
  });
  const c = run.clock;
  if (c.driftNs !== null && (o.backend !== 'cpu' || Math.abs(c.driftNs) > Math.max(1e3, 2 * (c.uncertaintyNs ?? 0)))) {
    notes.push(`device clock: drift over the phase ${c.driftNs >= 0 ? '+' : '-'}${Math.round(Math.abs(c.driftNs))} ns against the host clock${c.uncertaintyNs !== null ? ` (each offset known to ±${Math.round(c.uncertaintyNs)} ns)` : ''}`);
  }
  return notes;
}

function emptySamples(tasks: ProbePhaseOptions['tasks'], measuredNs: number): TaskSamples[] {
  const none = new Float64Array(0);
  return tasks.map(({ task }) => ({ task: task.name, issued: 0, latencyNs: none, startDelayNs: none, serviceNs: none, errors: 0, measuredNs }));
}

/** Runs one phase of a probe scenario: the device and mechanism checked, the streams sized, the run, its samples and notes. */
export async function runProbePhase(o: ProbePhaseOptions): Promise<ProbePhaseResult> {
  const measuredNs = o.durationNs;
  const found = probeDevice(o.backend, o.device ?? 0, o.engine);
  if ('reason' in found) return { status: 'failed', reason: found.reason, samples: emptySamples(o.tasks, measuredNs), notes: [], computeUnits: 0, blocks: {}, engine: null };
  const dev = found.dev;
  const problem = probeMechanismProblem(o.mechanism, o.backend, dev, o.reserve);
  if (problem) return { status: 'skipped', reason: problem, samples: emptySamples(o.tasks, measuredNs), notes: [], computeUnits: dev.computeUnits, blocks: {}, engine: null };
  const st = probeRunState(o, dev);
  const sized = await sizeForFill(st);
  if ('refused' in sized) return sized.refused;
  const streams = buildStreams(st, sized.shares);
  askedNotes(st);
  const sent = await dispatchWithDrain(st, streams);
  if ('failed' in sent) return sent.failed;
  return collectProbeRun(st, sent.run, sent.cutOff, sent.drain);
}

/** What runProbePhase's steps share: the device, the span, the priorities, the mechanism, the notes and blocks so far. */
interface ProbeRunState {
  o: ProbePhaseOptions;
  dev: NativeBackendInfo['devices'][number];
  measuredNs: number;
  spanNs: number;
  /** the top priority (the high-priority side) */
  top: number;
  /** distinct priorities, lowest first: a task's level is its index here */
  ranks: number[];
  spatial: boolean;
  mechanismSpec: { backend: ProbeBackend; device: number; mechanism: DispatchMechanism; throttleK: number; reserve: number };
  notes: string[];
  blocks: Record<string, number>;
}

/** The run's settings from the options: span, priorities and the mechanism's part of the dispatch spec. */
function probeRunState(o: ProbePhaseOptions, dev: ProbeRunState['dev']): ProbeRunState {
  const spatial = o.mechanism === 'cu-mask' || o.mechanism === 'sm-partition';
  return {
    o,
    dev,
    measuredNs: o.durationNs,
    spanNs: o.warmupNs + o.durationNs,
    top: Math.max(...o.tasks.map((x) => x.task.priority)),
    ranks: [...new Set(o.tasks.map((x) => x.task.priority))].sort((a, b) => a - b),
    spatial,
    mechanismSpec: {
      backend: o.backend,
      device: o.device ?? 0,
      mechanism: o.mechanism as DispatchMechanism,
      throttleK: o.throttleK,
      reserve: spatial ? o.reserve : 0,
    },
    notes: [],
    blocks: {},
  };
}

/** A task's priority as the engine takes it: high side or not, its level among the distinct priorities. */
function prioOf(st: ProbeRunState, task: Task): { high: boolean; level: number; levels: number } {
  return { high: task.priority === st.top, level: st.ranks.indexOf(task.priority), levels: st.ranks.length };
}

/** The sizing run where "fill" or a spatial split needs it; `refused` when the engine refuses the mechanism. */
async function sizeForFill(st: ProbeRunState): Promise<{ shares: StreamShare[] | null } | { refused: ProbePhaseResult }> {
  const { o, dev, spanNs } = st;
  // "fill": what each task's stream was given, as made (its share of the device under the
  // mechanism, the resident blocks per CU at its block size): one empty kernel per stream first,
  // which also finds a mechanism the engine refuses (a CU mask that would leave an XCC empty)
  let shares: StreamShare[] | null = null;
  if (o.tasks.some((x) => x.workload.blocks === 'fill') || st.spatial) {
    const sized = await sizeStreams(
      { ...st.mechanismSpec, durationNs: spanNs, streams: o.tasks.map(({ task, workload }) => stream(task, workload, prioOf(st, task), 1, spanNs)) },
      { engine: o.engine, signal: o.signal, dev },
    );
    if (sized.ok) shares = sized.streams;
    else if (sized.refused) return { refused: { status: 'skipped', reason: sized.reason, samples: emptySamples(o.tasks, st.measuredNs), notes: [], computeUnits: dev.computeUnits, blocks: {}, engine: null } };
    else st.notes.push(`sizing run failed (${sized.reason}): "fill" from the device's occupancy table and the split as asked`);
  }
  return { shares };
}

/** Each task's stream with its block count ("fill" from the sizing run, else the occupancy table), into st.blocks. */
function buildStreams(st: ProbeRunState, shares: StreamShare[] | null): DispatchSpecInput['streams'] {
  const { o, dev, top, spatial } = st;
  return o.tasks.map(({ task, workload }, i) => {
    let b = typeof workload.blocks === 'number' ? workload.blocks : 0;
    if (workload.blocks === 'fill') {
      const sh = shares?.[i];
      let fill = sh && sh.fillBlocks > 0 ? sh.fillBlocks : 0;
      if (!fill) {
        const kept = reservedUnits(o.reserve, dev.computeUnits);
        const cus = spatial ? (task.priority === top ? kept : dev.computeUnits - kept) : dev.computeUnits;
        fill = cus * (blocksPerCuAt(dev, workload.threadsPerBlock) ?? 1);
      }
      b = Math.max(1, fill) * workload.waves;
    }
    st.blocks[task.name] = b;
    return stream(task, workload, prioOf(st, task), b, st.spanNs);
  });
}

/** Notes on the mechanism as asked (two-sided, throttle's K, the spatial split asked for). */
function askedNotes(st: ProbeRunState): void {
  const { o, dev, top, ranks, notes } = st;
  if (ranks.length > 2 && mechanismInfo(o.mechanism)?.twoSided) {
    notes.push(`${o.mechanism} has two sides: priority ${top} is the high-priority side, priorities ${ranks.filter((p) => p !== top).reverse().join(', ')} the low-priority side together`);
  }
  if (o.mechanism === 'throttle') notes.push(`throttle: low-priority tasks keep at most K=${o.throttleK} kernel(s) in flight and hold while high-priority work is pending`);
  if (st.spatial) {
    // what was asked; the partition as made is noted after the run
    const kept = reservedUnits(o.reserve, dev.computeUnits);
    notes.push(`${o.mechanism}: ${kept} of ${dev.computeUnits} compute units asked for priority ${top} (ceil of ${Math.round(o.reserve * 1000) / 10}%), ${dev.computeUnits - kept} for the others`);
  }
}

/** The measured run, its drain cut off after `drain`; `failed` when the engine threw (partial when the user aborted). */
async function dispatchWithDrain(st: ProbeRunState, streams: DispatchSpecInput['streams']): Promise<{ run: DispatchRun; cutOff: boolean; drain: number } | { failed: ProbePhaseResult }> {
  const { o, spanNs, notes, dev, blocks } = st;
  const measuredNs = st.measuredNs;
  // the drain after the end is bounded by cancelling the engine (see the file comment); the
  // user's Ctrl-C cancels it too, and only that makes the phase partial
  const drain = o.drainNs ?? drainNs(o.tasks);
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) ctl.abort();
  let cutOff = false;
  const cut = setTimeout(() => {
    cutOff = true;
    ctl.abort();
  }, (spanNs + drain) / 1e6);
  let run: DispatchRun;
  try {
    run = await runDispatch(
      {
        ...st.mechanismSpec,
        durationNs: spanNs,
        warmupNs: o.warmupNs,
        watchdogNs: Math.max(10e9, ...o.tasks.map((x) => x.workload.kernel * 20)),
        streams,
      },
      { signal: ctl.signal, engine: o.engine },
    );
  } catch (err) {
    const aborted = o.signal?.aborted === true;
    return { failed: { status: aborted ? 'partial' : 'failed', reason: aborted ? 'interrupted' : (err as Error).message, samples: emptySamples(o.tasks, measuredNs), notes, computeUnits: dev.computeUnits, blocks, engine: null } };
  } finally {
    clearTimeout(cut);
    o.signal?.removeEventListener('abort', onAbort);
  }
  return { run, cutOff, drain };
}

/** From the run: the samples (censored past the stop), the notes on the drain and the mechanism as made, the status. */
function collectProbeRun(st: ProbeRunState, run: DispatchRun, cutOff: boolean, drain: number): ProbePhaseResult {
  const { o, spanNs, top, ranks, notes, dev, blocks } = st;
  // when the driver stopped waiting, on the run's clock: not before the end, and not before any
  // completion it saw (the engine was still waiting then); a lower bound of the true moment
  let stopNs = spanNs;
  for (const st of run.streams) {
    for (const v of st.raw.completeNs) if (v > stopNs) stopNs = v;
    for (const v of st.raw.submitNs) if (v > stopNs) stopNs = v;
  }
  const samples = o.tasks.map(({ task, workload }) => samplesOf(run, task, workload, spanNs, o.warmupNs, stopNs, !(o.mechanism === 'throttle' && task.priority !== top)));
  const unfinished = samples.reduce((a, x) => a + (x.censoredNs?.length ?? 0), 0);
  if (cutOff && !o.signal?.aborted) notes.push(`drain cut off ${(drain / 1e9).toFixed(1)} s after the phase end: ${unfinished} request(s) still unfinished, censored at their age then`);
  else if (unfinished > 0) notes.push(`${unfinished} request(s) unfinished when the phase stopped: censored at their age then`);
  notes.push(...madeNotes(o, run, dev, top));
  if (o.mechanism === 'stream-priority') {
    const range = `${run.priorityRange.least} (least) .. ${run.priorityRange.greatest} (greatest)`;
    notes.push(`stream priorities on ${o.backend} (range ${range}): ${run.streams.map((s) => `${s.name} ${s.raw.priority}`).join(', ')}`);
    const used = new Set(run.streams.map((s) => s.raw.priority));
    if (used.size < ranks.length) notes.push(`the backend's priority range has fewer levels than the scenario's ${ranks.length} priorities: some tasks share a stream priority`);
  }
  const failed = samples.find((s) => s.error);
  const engine = run.engine;
  if (o.signal?.aborted) return { status: 'partial', reason: 'interrupted', samples, notes, computeUnits: run.computeUnits, blocks, engine };
  if (failed) return { status: 'failed', reason: `${failed.task}: ${failed.error}`, samples, notes, computeUnits: run.computeUnits, blocks, engine };
  return { status: 'ok', samples, notes, computeUnits: run.computeUnits, blocks, engine };
}
