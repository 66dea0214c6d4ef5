/**
 * Tests on a shared, possibly overloaded host (a 2-core CI runner, a laptop at load average 15).
 *
 * Two kinds of tests meet a busy host:
 *  - Tests that only need something to HAPPEN (a process started, a record written, a group gone)
 *    wait for that event. Their deadline only guards against a hang: HANG_MS, never a statement
 *    about speed. On a slow host they take longer; they never fail for it.
 *  - Tests whose POINT is a timing property (a priority mechanism lowers a latency, two blocks run
 *    side by side) cannot be judged when the host does not give them their cores. They measure
 *    that first (cpuShare: what a calibration spin actually obtains) and skip with the numbers
 *    (skipUnlessCores) instead of failing; on a host that gives them their cores they still fail
 *    when the mechanism is broken.
 *
 * native/tests/host_load.h is the C++ side of the same idea.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * A deadline that only guards against a hang, for waits on events (a process to start, a file to
 * appear). 60 s: a busy 2-core host at load average 16 starts a python or node process in seconds,
 * not minutes; reaching this means something is stuck, not slow. (vitest.config.ts gives a test
 * 180 s, room for a few such waits in a row.)
 */
export const HANG_MS = 60_000;

/** /proc/loadavg's 1, 5 and 15 minute figures; null where there is none. */
export function loadAverage(): [number, number, number] | null {
  try {
    const f = fs.readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/).slice(0, 3).map(Number);
    return f.length === 3 && f.every(Number.isFinite) ? [f[0], f[1], f[2]] : null;
  } catch {
    return null;
  }
}

export interface CpuShare {
  /** spinning threads */
  threads: number;
  /** their nice level (0: the default; the cpu backend's workers run at 19) */
  nice: number;
  /** wall time of the spin, ms */
  wallMs: number;
  /** CPU time the spinning threads obtained together, ms */
  cpuMs: number;
  /** cores obtained: cpuMs / wallMs (at most `threads`) */
  cores: number;
  /** cores / threads: 1 = every thread had a core of its own the whole time */
  share: number;
  loadAverage: [number, number, number] | null;
  cpus: number;
}

// Each worker lowers its own priority to `nice` (Linux: setpriority on its thread id, found through
// /proc/thread-self; lowering needs no privilege), waits for the start flag, spins until its
// deadline and exits. The workers start before the window opens, so thread start-up never counts.
const SPIN = `
const { workerData } = require('node:worker_threads');
if (workerData.nice > 0) {
  try {
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    require('node:os').setPriority(tid, workerData.nice);
  } catch {
    // no /proc: the spin runs at the process's priority, which the result says nothing about
  }
}
const flag = new Int32Array(workerData.sab);
Atomics.wait(flag, 0, 0);
const end = process.hrtime.bigint() + BigInt(workerData.windowNs);
let x = 0;
while (process.hrtime.bigint() < end) x += Math.sqrt(x + 1);
`;

/**
 * Spins `threads` threads at nice `nice` for `windowMs` of wall time and measures the CPU time
 * they obtained (process CPU time over the window: the test process is otherwise idle while it
 * waits). On an idle host with enough cores, cores ~= threads; on a host with foreign load it is
 * what the scheduler actually gave threads of that priority, which is what a timing test's
 * threads of that priority get too (the cpu backend's workers run at nice 19: they get almost
 * nothing next to busy processes at nice 0).
 */
export async function cpuShare(threads = 2, windowMs = 300, nice = 0): Promise<CpuShare> {
  const sab = new SharedArrayBuffer(4);
  const workers = Array.from({ length: threads }, () => new Worker(SPIN, { eval: true, workerData: { sab, windowNs: windowMs * 1e6, nice } }));
  const online = workers.map((w) => new Promise<void>((r) => w.once('online', () => r())));
  const exited = workers.map((w) => new Promise<void>((r) => w.once('exit', () => r())));
  await Promise.all(online);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const flag = new Int32Array(sab);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  await Promise.all(exited);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const cores = Math.min(threads, cpuMs / wallMs);
  return { threads, nice, wallMs, cpuMs, cores, share: cores / threads, loadAverage: loadAverage(), cpus: os.availableParallelism() };
}

/** One line with the measured figures, for skip reasons and logs. */
export function describeShare(s: CpuShare): string {
  const la = s.loadAverage ? `load average ${s.loadAverage[0].toFixed(1)}` : 'no load average';
  return `${s.threads} spinning thread(s)${s.nice ? ` at nice ${s.nice}` : ''} obtained ${s.cores.toFixed(2)} core(s) over ${s.wallMs.toFixed(0)} ms (${la} on ${s.cpus} CPU(s))`;
}

/**
 * null when the host gives `threads` spinning threads at least `minShare` of a core each right
 * now, else the reason (with the numbers) why a timing test cannot be judged here.
 */
export async function busyHostReason(threads = 2, minShare = 0.8, windowMs = 300, nice = 0): Promise<string | null> {
  if (os.availableParallelism() < threads) return `this host has ${os.availableParallelism()} CPU(s); the test needs ${threads}`;
  const s = await cpuShare(threads, windowMs, nice);
  return s.share >= minShare ? null : `the host is too busy to judge a timing property: ${describeShare(s)}, below ${minShare} of a core each`;
}

/**
 * For tests whose point is a timing property: skips the test, with the measured reason printed,
 * when the host cannot give `threads` threads at nice `nice` (19 for tests of the cpu backend's
 * workers) at least `minShare` of a core each right now. Call it first in the test body:
 *   it('stream priority lowers the HP P99', async (ctx) => { await skipUnlessCores(ctx, 2, 0.85, 19); ... });
 */
export async function skipUnlessCores(ctx: { skip: (note?: string) => never }, threads = 2, minShare = 0.8, nice = 0): Promise<void> {
  const reason = await busyHostReason(threads, minShare, 300, nice);
  if (reason === null) return;
  console.warn(`SKIP: ${reason}`);
  ctx.skip(reason);
}
