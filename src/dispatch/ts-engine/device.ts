/**
 * The pure-TS cpu "device": the same scheduling as the native cpu backend
 * (native/dispatch/cpu_backend.h), over shared memory instead of C++ objects.
 *
 *  - A kernel of `blocks` blocks is split into block tasks. A free compute unit (a worker thread)
 *    takes the next block of the highest-priority stream whose CU mask includes it; among streams
 *    of equal priority, the one whose head kernel became ready first (when it was launched or
 *    when its predecessor finished, the later), ties by stream order. Running blocks are never
 *    preempted. Within a stream kernels run in order.
 *  - A block spins on the shared monotonic clock (process.hrtime) until spin ns have passed since
 *    it was dispatched (its start, stamped under the lock); an empty kernel (spin 0) needs no worker: it starts and ends at once when it
 *    reaches the head of its stream (inside launch() when the stream is idle).
 *  - Device times are the host monotonic clock, so the device/host offset is 0.
 *
 * Sharing: launch() is lock-free like the native one: each stream's job ring is written only by
 * the engine worker (the single producer), which publishes a job by storing the ring's tail; the
 * compute units pick and retire jobs under the device lock, a futex-style mutex on an Int32 word
 * (Atomics.compareExchange + Atomics.wait/notify). The ring IS the stream's queue (the native
 * inbox + deque in one): at most SLOTS-1 launches are in flight per stream, so it never overflows.
 *
 * createDevice is SELF-CONTAINED (no imports, no module-level names): its source text is eval'd in
 * the engine and compute-unit workers (worker-source.ts). Offsets come from a Layout (layout.ts).
 * Hence one long function: its steps are its inner functions, since none can live outside it.
 */
import type { Layout } from './layout.js';

export interface Device {
  I: Int32Array;
  F: Float64Array;
  /** ns after the run's base, on the clock every worker shares */
  now(): number;
  /**
   * Engine side: launch kernel `seq` of stream s (slot seq % SLOTS). null when launched, else the
   * reason (one line); an empty kernel on an idle stream completes here.
   */
  launch(s: number, seq: number, spinNs: number, blocks: number, nowNs: number): string | null;
  /** Engine side: slot state (SLOT_* of layout.ts) */
  slotState(s: number, slot: number): number;
  slotStart(s: number, slot: number): number;
  slotEnd(s: number, slot: number): number;
  /** Engine side: running blocks of the stream stop spinning, queued ones are never picked */
  abort(s: number): void;
  /** Stops every worker loop and wakes whatever sleeps. */
  stopAll(): void;
  /** Compute-unit side: the worker's loop; returns when STOP is set. */
  runComputeUnit(w: number, onFirstBlock?: () => void): void;
}

export function createDevice(sabI: SharedArrayBuffer, sabF: SharedArrayBuffer, L: Layout, base: bigint): Device {
  const I = new Int32Array(sabI);
  const F = new Float64Array(sabF);
  // constants of layout.ts, repeated: this function cannot import them
  const LOCK = 0;
  const WORK_GEN = 1;
  const SLEEPERS = 2;
  const STOP = 3;
  const ENGINE_GEN = 4;
  const TRACE_N = 7;
  const PRIORITY = 0;
  const ABORTED = 1;
  const TAIL = 2;
  const HEAD = 3;
  const OUTSTANDING = 4;
  const PENDING = 1;
  const DONE = 2;
  const SLOTMASK = L.slots - 1;
  const NS = L.streams;
  /** compute units re-check STOP at least this often while asleep (ms) */
  const SLEEP_SLICE_MS = 50;
  /** spins on a contended lock before sleeping on it */
  const LOCK_SPINS = 100;

  const now = (): number => Number(process.hrtime.bigint() - base);
  const si = (s: number): number => L.sBase + s * L.sStride;
  const fi = (s: number): number => L.fBase + s * L.fStride;

  // ---- the device lock (Drepper's futex mutex: 0 free, 1 held, 2 held and contended)
  const lock = (): void => {
    if (Atomics.compareExchange(I, LOCK, 0, 1) === 0) return;
    for (let i = 0; i < LOCK_SPINS; i++) if (Atomics.load(I, LOCK) === 0 && Atomics.compareExchange(I, LOCK, 0, 1) === 0) return;
    while (Atomics.exchange(I, LOCK, 2) !== 0) Atomics.wait(I, LOCK, 2);
  };
  const unlock = (): void => {
    if (Atomics.sub(I, LOCK, 1) !== 1) {
      Atomics.store(I, LOCK, 0);
      Atomics.notify(I, LOCK, 1);
    }
  };

  const wakeWorkers = (): void => {
    Atomics.add(I, WORK_GEN, 1);
    if (Atomics.load(I, SLEEPERS) > 0) Atomics.notify(I, WORK_GEN);
  };
  const wakeEngine = (): void => {
    Atomics.add(I, ENGINE_GEN, 1);
    Atomics.notify(I, ENGINE_GEN);
  };

  const launch = (s: number, seq: number, spinNs: number, blocks: number, t: number): string | null => {
    const b = si(s);
    const f = fi(s);
    const slot = seq & SLOTMASK;
    if (blocks < 1) return 'kernel has 0 blocks';
    if (Atomics.load(I, b + L.sSlotState + slot) === PENDING) return `slot ${slot} is still in flight`;
    if (Atomics.load(I, b + ABORTED) !== 0) return 'stream is being destroyed';
    if (spinNs === 0 && Atomics.load(I, b + OUTSTANDING) === 0) {
      // empty kernel on an idle stream (every earlier kernel's slot is done): no worker needed
      F[f + L.fSlotStart + slot] = t;
      F[f + L.fSlotEnd + slot] = t;
      Atomics.store(I, b + L.sSlotState + slot, DONE);
      return null;
    }
    Atomics.store(I, b + L.sSlotState + slot, PENDING);
    Atomics.add(I, b + OUTSTANDING, 1);
    const tail = I[b + TAIL]; // only this thread writes it
    const j = tail & SLOTMASK;
    I[b + L.sJobBlocks + j] = blocks;
    I[b + L.sJobSlot + j] = slot;
    I[b + L.sJobNext + j] = 0;
    I[b + L.sJobRunning + j] = 0;
    I[b + L.sJobDone + j] = 0;
    F[f + L.fJobSpin + j] = spinNs;
    F[f + L.fJobLaunch + j] = t;
    F[f + L.fJobStart + j] = NaN;
    F[f + L.fJobEnd + j] = 0;
    F[f + L.fJobSeq + j] = seq;
    Atomics.store(I, b + TAIL, (tail + 1) | 0); // publishes the job (seq-cst: the fields above are visible)
    wakeWorkers();
    return null;
  };

  // ---- compute-unit side; everything below runs under the lock

  /** Writes the head job's slot, pops it, counts it finished. */
  const retireHead = (s: number, start: number, end: number): void => {
    const b = si(s);
    const f = fi(s);
    const head = I[b + HEAD];
    const j = head & SLOTMASK;
    const slot = I[b + L.sJobSlot + j];
    F[f + L.fSlotStart + slot] = start;
    F[f + L.fSlotEnd + slot] = end;
    Atomics.store(I, b + L.sSlotState + slot, DONE);
    I[b + HEAD] = (head + 1) | 0;
    F[f] = end; // last finish
    Atomics.sub(I, b + OUTSTANDING, 1); // after the slot: launch() relies on it
  };

  /** Empty kernels at the head finish at once; true if any did. */
  const retireEmptyHeads = (s: number): boolean => {
    const b = si(s);
    const f = fi(s);
    let any = false;
    while (I[b + HEAD] !== Atomics.load(I, b + TAIL) && F[f + L.fJobSpin + (I[b + HEAD] & SLOTMASK)] === 0) {
      const t = now();
      retireHead(s, t, t);
      any = true;
    }
    return any;
  };

  /** The stream whose next block worker w should run, or -1. */
  const pick = (w: number): number => {
    let best = -1;
    let bestPrio = 0;
    let bestReady = 0;
    let retired = false;
    const word = w >>> 5;
    const bit = 1 << (w & 31);
    for (let s = 0; s < NS; s++) {
      const b = si(s);
      if (Atomics.load(I, b + ABORTED) !== 0) continue;
      if (retireEmptyHeads(s)) retired = true;
      const head = I[b + HEAD];
      if (head === Atomics.load(I, b + TAIL)) continue;
      if ((I[b + L.sMask + word] & bit) === 0) continue;
      const j = head & SLOTMASK;
      if (I[b + L.sJobNext + j] >= I[b + L.sJobBlocks + j]) continue;
      const f = fi(s);
      const prio = I[b + PRIORITY];
      const ready = Math.max(F[f + L.fJobLaunch + j], F[f]);
      if (best < 0 || prio > bestPrio || (prio === bestPrio && ready < bestReady)) {
        best = s;
        bestPrio = prio;
        bestReady = ready;
      }
    }
    if (retired) wakeEngine();
    return best;
  };

  /** Every block of the head of s finished: retire it and the empty kernels behind it. */
  const finishHead = (s: number): void => {
    const b = si(s);
    const f = fi(s);
    const j = I[b + HEAD] & SLOTMASK;
    retireHead(s, F[f + L.fJobStart + j], F[f + L.fJobEnd + j]);
    retireEmptyHeads(s);
    if (I[b + HEAD] !== Atomics.load(I, b + TAIL)) wakeWorkers(); // the next kernel is dispatchable
    wakeEngine();
  };

  const trace = (s: number, seq: number, block: number, w: number, start: number, end: number): void => {
    if (L.traceCapacity === 0) return;
    const k = Atomics.add(I, TRACE_N, 1);
    if (k >= L.traceCapacity) return;
    // the columns of TraceCol (layout.ts), spelled out: this function is eval'd and cannot import it
    const o = L.traceBase + k * 6;
    F[o] = s;
    F[o + 1] = seq;
    F[o + 2] = block;
    F[o + 3] = w;
    F[o + 4] = start;
    F[o + 5] = end;
  };

  const runComputeUnit = (w: number, onFirstBlock?: () => void): void => {
    const busy = L.busy + w;
    let first = true;
    lock();
    for (;;) {
      if (Atomics.load(I, STOP) !== 0) break;
      // read before picking: a launch after this load changes it, so the wait below returns at once
      const gen = Atomics.load(I, WORK_GEN);
      const s = pick(w);
      if (s < 0) {
        Atomics.add(I, SLEEPERS, 1);
        unlock();
        Atomics.wait(I, WORK_GEN, gen, SLEEP_SLICE_MS);
        Atomics.sub(I, SLEEPERS, 1);
        lock();
        continue;
      }
      const b = si(s);
      const f = fi(s);
      const j = I[b + HEAD] & SLOTMASK;
      const block = I[b + L.sJobNext + j]++;
      I[b + L.sJobRunning + j]++;
      const spin = F[f + L.fJobSpin + j];
      const seq = F[f + L.fJobSeq + j];
      I[busy] = s + 1;
      // the block starts when it is dispatched, stamped under the lock: block 0 (dispatched first)
      // then holds the kernel's start even if its worker is preempted right after the unlock,
      // and the spin, on wall-clock time, still ends spin ns after it
      const start = now();
      if (block === 0) F[f + L.fJobStart + j] = start;
      unlock();

      if (first) {
        first = false;
        onFirstBlock?.();
      }
      let t = start;
      while (t - start < spin) {
        if (Atomics.load(I, b + ABORTED) !== 0 || Atomics.load(I, STOP) !== 0) break;
        t = now();
      }
      trace(s, seq, block, w, start, t);

      lock();
      I[busy] = 0;
      if (Atomics.load(I, b + ABORTED) !== 0) continue; // its slots never complete
      I[b + L.sJobRunning + j]--;
      // the kernel ends with its latest block: a worker preempted between its spin and the lock
      // may retire the kernel after a block that ended later
      if (t > F[f + L.fJobEnd + j]) F[f + L.fJobEnd + j] = t;
      const done = ++I[b + L.sJobDone + j];
      if (done === I[b + L.sJobBlocks + j]) finishHead(s);
    }
    unlock();
  };

  return {
    I,
    F,
    now,
    launch,
    slotState: (s, slot) => Atomics.load(I, si(s) + L.sSlotState + slot),
    slotStart: (s, slot) => F[fi(s) + L.fSlotStart + slot],
    slotEnd: (s, slot) => F[fi(s) + L.fSlotEnd + slot],
    abort: (s) => {
      Atomics.store(I, si(s) + ABORTED, 1);
    },
    stopAll: () => {
      Atomics.store(I, STOP, 1);
      Atomics.add(I, WORK_GEN, 1);
      Atomics.notify(I, WORK_GEN);
      Atomics.add(I, ENGINE_GEN, 1);
      Atomics.notify(I, ENGINE_GEN);
      Atomics.notify(I, LOCK);
    },
    runComputeUnit,
  };
}
