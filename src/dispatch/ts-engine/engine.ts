/**
 * The pure-TS measurement engine: the native engine's semantics (native/dispatch/engine.h) in ONE
 * worker thread that plays every submitter, the completion poller and the run's own thread. It
 * never needs the main event loop (which draws progress bars), and it times with the shared
 * monotonic clock (process.hrtime), Atomics.wait timeouts and short spins:
 *  - open-loop streams (fixed-rate, poisson, list): each request's INTENDED time comes from the
 *    schedule alone; it is submitted when due and there is room (slot cap, throttle). A late
 *    submission keeps its intended time, so complete - intended counts the wait (no coordinated
 *    omission). The engine sleeps until due - submitSpinNs, then spins to the due time;
 *  - closed-loop streams keep `inflight` launches outstanding; a launch is intended at the
 *    completion time of the launch whose completion made room for it (the first ones at 0);
 *  - completions: the compute units bump a generation word and notify the engine when a kernel
 *    retires, so the engine wakes on completions instead of polling on a timer; it stamps
 *    complete = now when it sees the slot done;
 *  - mechanisms none / stream-priority / cu-mask act through the stream settings (prepare.ts);
 *    throttle: low-priority launches in flight over all LP streams <= K, and no new LP launch while
 *    any HP request is pending (due and unsubmitted, or in flight). HP streams are served first in
 *    every pass, so an HP request that came due is in flight before any LP stream is considered;
 *  - end: nothing intended at or after durationNs is submitted; the backlog of requests that
 *    arrived before the end is still submitted; then the launches in flight get watchdogNs (status
 *    TIMEOUT naming the streams; arrived but unsubmitted requests counted as dropped); a cancel
 *    gives min(watchdog, 100 ms) and marks the result cancelled; the first launch error stops its
 *    stream. Every stream is aborted at the end (running blocks stop spinning).
 *
 * engineMain is SELF-CONTAINED (its source text is eval'd: worker-source.ts); it gets
 * createDevice and createSchedule as arguments. That is also why it is one long function: a step
 * split out of it would have to live inside it all the same (its inner functions are the steps).
 */
import type { createDevice as CreateDevice } from './device.js';
import type { createSchedule as CreateSchedule, Schedule } from './schedule.js';
import type { EngineOut, EngineStreamOut, EngineWorkerData } from './layout.js';

export function engineMain(createDevice: typeof CreateDevice, createSchedule: typeof CreateSchedule): void {
  const { workerData, parentPort } = process.getBuiltinModule('node:worker_threads');
  const d = workerData as EngineWorkerData;
  const { spec, prepared, layout: L, tuning, debug } = d;
  const ENGINE_GEN = 4;
  const CANCEL = 5;
  const READY = 6;
  const DONE = 2;
  const OK = 0;
  const RUNTIME = -1;
  const TIMEOUT = -5;
  const CANCEL_GRACE_NS = 100e6;
  const SLOTMASK = L.slots - 1;
  const CAP = L.slots - 1;
  const dev = createDevice(d.sabI, d.sabF, L, d.base);
  const now = dev.now;
  const I = dev.I;

  /** A growable Float64Array (results are typed arrays; pushes must not allocate per launch). */
  class Grow {
    a: Float64Array;
    n = 0;
    constructor(hint: number) {
      this.a = new Float64Array(Math.max(16, hint));
    }
    push(v: number): void {
      if (this.n === this.a.length) {
        const b = new Float64Array(this.a.length * 2);
        b.set(this.a);
        this.a = b;
      }
      this.a[this.n++] = v;
    }
    /** the first n values, NaN-padded to len */
    take(len: number): Float64Array {
      const out = new Float64Array(len).fill(NaN);
      out.set(this.a.subarray(0, Math.min(this.n, len)));
      return out;
    }
  }

  interface St {
    k: number;
    name: string;
    hp: boolean;
    throttled: boolean;
    closed: boolean;
    depth: number;
    spin: number;
    blocks: number;
    sched: Schedule | null;
    /** open loop: a request fetched from the schedule and not yet submitted, due at dueRel */
    have: boolean;
    dueRel: number;
    done: boolean;
    submitted: number;
    completed: number;
    intended: Grow;
    submit: Grow;
    warm: Grow;
    complete: Grow;
    dstart: Grow;
    dend: Grow;
    launchStatus: number;
    error: string;
    errors: number;
    dropped: number;
  }

  /** initial array sizes, as the native engine's ReserveHint (the arrays grow past them) */
  const hint = (s: EngineWorkerData['spec']['streams'][number]): number => {
    let n = 4096;
    if (s.arrival === 'list') n = s.timesNs.length;
    if ((s.arrival === 'fixed-rate' || s.arrival === 'poisson') && spec.durationNs) n = ((s.rateHz * spec.durationNs) / 1e9) * 1.2 + 16;
    if (spec.maxLaunches) n = Math.min(n, spec.maxLaunches);
    return Math.ceil(Math.min(n, 1 << 20));
  };

  const streams: St[] = spec.streams.map((s, k) => {
    const h = hint(s);
    return {
      k,
      name: prepared[k].name,
      hp: s.highPriority,
      throttled: spec.mechanism === 'throttle' && !s.highPriority,
      closed: s.arrival === 'closed-loop',
      depth: Math.min(Math.max(s.inflight, 1), CAP),
      spin: s.kernel.spinNs,
      blocks: s.kernel.blocks,
      sched: s.arrival === 'closed-loop' ? null : createSchedule(s.arrival, s.rateHz, s.seed, s.timesNs),
      have: false,
      dueRel: 0,
      done: false,
      submitted: 0,
      completed: 0,
      intended: new Grow(h),
      submit: new Grow(h),
      warm: new Grow(h),
      complete: new Grow(h),
      dstart: new Grow(h),
      dend: new Grow(h),
      launchStatus: OK,
      error: '',
      errors: 0,
      dropped: 0,
    };
  });
  // HP streams first: see the throttle note above
  const order = [...streams.filter((s) => s.hp), ...streams.filter((s) => !s.hp)];
  const hps = streams.filter((s) => s.hp);

  // the compute units are up (their nice applied) before the origin is taken
  for (;;) {
    const r = Atomics.load(I, READY);
    if (r >= L.workers) break;
    Atomics.wait(I, READY, r, 50);
  }
  parentPort!.postMessage({ type: 'started' });

  const origin = now();
  const endAbs = spec.durationNs > 0 ? origin + spec.durationNs : Infinity;
  const watchdog = spec.watchdogNs > 0 ? spec.watchdogNs : 10e9;
  if (debug.throwInEngine) throw new Error('injected fault (debug.throwInEngine)');
  let launchesMade = 0;
  let lpInflight = 0;
  let stopped = false; // the native engine's c.stop: submitters leave at once

  const hpPending = (t: number): boolean => {
    for (const h of hps) {
      if (h.have && origin + h.dueRel <= t) return true;
      if (h.submitted > h.completed) return true;
    }
    return false;
  };

  /** Room for launch `submitted` of s (a unit of the throttle window is taken here). */
  const room = (s: St, t: number): boolean => {
    if (s.submitted - s.completed >= CAP) return false;
    if (!s.throttled) return true;
    if (lpInflight >= spec.throttleK || hpPending(t)) return false;
    lpInflight++;
    return true;
  };

  const submit = (s: St, intendedAbs: number): boolean => {
    const i = s.submitted;
    const t = now();
    let err: string | null;
    if (debug.failLaunchAfter !== undefined && launchesMade >= debug.failLaunchAfter) err = 'injected launch failure (debug.failLaunchAfter)';
    else err = dev.launch(s.k, i, s.spin, s.blocks, t);
    if (err !== null) {
      if (s.throttled) lpInflight--;
      s.errors++;
      s.launchStatus = RUNTIME;
      s.error = `launch ${i}: ${err} (status ${RUNTIME})`;
      return false;
    }
    launchesMade++;
    const rel = intendedAbs - origin;
    s.intended.push(rel);
    s.submit.push(t - origin);
    s.warm.push(rel < spec.warmupNs ? 1 : 0);
    s.submitted = i + 1;
    return true;
  };

  const submitOpen = (s: St): void => {
    while (!s.done && !stopped) {
      if (!s.have) {
        if (spec.maxLaunches && s.submitted >= spec.maxLaunches) {
          s.done = true;
          return;
        }
        const t = s.sched!.next();
        if (t < 0 || (spec.durationNs > 0 && t >= spec.durationNs)) {
          s.done = true;
          return;
        }
        s.have = true;
        s.dueRel = t;
      }
      const t = now();
      if (origin + s.dueRel > t || !room(s, t)) return;
      if (!submit(s, origin + s.dueRel)) {
        s.have = false;
        s.done = true;
        return;
      }
      s.have = false;
    }
  };

  const submitClosed = (s: St): void => {
    while (!s.done && !stopped) {
      const i = s.submitted;
      if (spec.maxLaunches && i >= spec.maxLaunches) {
        s.done = true;
        return;
      }
      let intended = origin;
      if (i >= s.depth) {
        const freedBy = i - s.depth; // the launch whose completion makes room for this one
        if (s.completed <= freedBy) {
          if (now() >= endAbs) s.done = true;
          return;
        }
        intended = origin + s.complete.a[freedBy];
      }
      if (intended >= endAbs) {
        s.done = true;
        return;
      }
      if (!room(s, now())) return;
      if (!submit(s, intended)) {
        s.done = true;
        return;
      }
    }
  };

  const poll = (): boolean => {
    let progress = false;
    for (const s of streams) {
      while (s.completed < s.submitted) {
        const slot = s.completed & SLOTMASK;
        if (dev.slotState(s.k, slot) !== DONE) break;
        const t = now();
        s.dstart.push(dev.slotStart(s.k, slot) - origin); // device clock = host clock: offset 0
        s.dend.push(dev.slotEnd(s.k, slot) - origin);
        s.complete.push(t - origin);
        if (s.throttled) lpInflight--;
        s.completed++;
        progress = true;
      }
    }
    return progress;
  };

  /** c.stop of the native engine: open-loop requests that had arrived but were never submitted are dropped (counted). */
  const stopSubmitters = (t: number): void => {
    stopped = true;
    const stopRel = t - origin;
    const limit = spec.durationNs > 0 ? Math.min(stopRel, spec.durationNs) : stopRel;
    for (const s of streams) {
      if (!s.done && s.have && s.launchStatus === OK) {
        let n = s.submitted;
        let have = true;
        let due = s.dueRel;
        while (have && due < limit && (!spec.maxLaunches || n < spec.maxLaunches)) {
          s.dropped++;
          n++;
          due = s.sched!.next();
          have = due >= 0;
        }
      }
      s.have = false;
      s.done = true;
    }
  };

  const submittersDone = (): boolean => streams.every((s) => s.done);
  const allCompleted = (): boolean => streams.every((s) => s.completed >= s.submitted);

  // ---- the run
  let phase = 1;
  let deadline = Infinity;
  let cancelled = false;
  let timedOut = false;
  let submitPhaseEnd = -1;
  let completions = 0;
  for (;;) {
    const gen = Atomics.load(I, ENGINE_GEN);
    const before = launchesMade + completions;
    if (poll()) completions++;
    let t = now();
    if (!cancelled && Atomics.load(I, CANCEL) !== 0) {
      cancelled = true;
      if (phase === 2) deadline = Math.min(deadline, t + CANCEL_GRACE_NS);
      stopSubmitters(t);
    }
    if (!stopped) for (const s of order) (s.closed ? submitClosed : submitOpen)(s);
    if (poll()) completions++; // empty kernels complete inside launch()
    t = now();
    if (phase === 1 && (submittersDone() || t >= endAbs || cancelled)) {
      phase = 2;
      deadline = t + (cancelled ? Math.min(watchdog, CANCEL_GRACE_NS) : watchdog);
    }
    if (phase === 2) {
      const subsDone = submittersDone();
      if (subsDone && submitPhaseEnd < 0) submitPhaseEnd = t;
      if (subsDone && allCompleted()) break;
      if (t >= deadline) {
        timedOut = !cancelled;
        break;
      }
    }
    // something happened in this pass: its consequences (a closed loop's next launch) come first
    if (launchesMade + completions !== before) continue;
    // sleep until the next thing that time alone brings (a request coming due, the end, the
    // deadline); completions and a cancel wake the wait through ENGINE_GEN. A request already due
    // but not submitted waits for room, which only a completion makes.
    let wake = phase === 1 ? endAbs : deadline;
    if (!stopped) {
      for (const s of streams) {
        const due = origin + s.dueRel;
        if (s.have && !s.done && due > t && due < wake) wake = due;
      }
    }
    const dt = wake - now();
    if (dt > tuning.submitSpinNs) Atomics.wait(I, ENGINE_GEN, gen, Math.min(dt - tuning.submitSpinNs, tuning.waitSliceNs) / 1e6);
  }
  const tEnd = now();
  if (!stopped) stopSubmitters(tEnd);
  poll();
  for (const s of streams) dev.abort(s.k); // stream_destroy: running blocks stop spinning
  dev.stopAll();
  const elapsedNs = now() - origin;

  // ---- results, worded like the native engine's
  let status = OK;
  let error = '';
  let detail = '';
  const outs: EngineStreamOut[] = streams.map((s) => {
    const n = s.submitted;
    const done = s.completed;
    if (n > done) detail += `${detail ? '; ' : ''}'${s.name}': ${n - done} in flight, oldest submitted at ${(s.submit.a[done] / 1e6).toFixed(3)} ms`;
    if (s.dropped) detail += `${detail ? '; ' : ''}'${s.name}': ${s.dropped} arrived request(s) never submitted`;
    if (s.launchStatus !== OK && status === OK) {
      status = s.launchStatus;
      error = `stream '${s.name}': ${s.error}`;
    }
    const warm = new Uint8Array(n);
    for (let i = 0; i < n; i++) warm[i] = s.warm.a[i];
    return {
      name: s.name,
      highPriority: s.hp,
      priority: prepared[s.k].priority,
      cuMask: prepared[s.k].cuMask,
      intendedNs: s.intended.take(n),
      submitNs: s.submit.take(n),
      deviceStartNs: s.dstart.take(n),
      deviceEndNs: s.dend.take(n),
      completeNs: s.complete.take(n),
      warmup: warm,
      launches: n,
      errors: s.errors,
      error: s.error,
      dropped: s.dropped,
    };
  });
  if (timedOut) {
    status = TIMEOUT;
    error = `watchdog: launches still in flight ${(watchdog / 1e6).toFixed(1)} ms after the run ended (${detail}); gave up on them and destroyed the streams`;
  } else if (cancelled && status === OK) {
    error = detail ? `cancelled (${detail})` : 'cancelled';
  }
  const out: EngineOut = {
    type: 'result',
    status,
    error,
    cancelled,
    originNs: origin,
    submitPhaseNs: (submitPhaseEnd < 0 ? tEnd : submitPhaseEnd) - origin,
    elapsedNs,
    streams: outs,
  };
  const transfer: ArrayBuffer[] = [];
  for (const o of outs) for (const a of [o.intendedNs, o.submitNs, o.deviceStartNs, o.deviceEndNs, o.completeNs, o.warmup]) transfer.push(a.buffer as ArrayBuffer);
  parentPort!.postMessage(out, transfer);
}
