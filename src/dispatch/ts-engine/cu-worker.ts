/**
 * A compute unit of the pure-TS cpu backend: one worker_thread that runs the device's block loop
 * (device.ts) until the run stops.
 *
 * Priority: like the native backend's workers it lowers its own priority to nice 19
 * (GPUCOLO_CPU_WORKER_NICE overrides) so that the host side (the engine worker, Node's event
 * loop) gets a core as soon as it wakes, as it would next to a real GPU. os.setPriority(0, n)
 * from inside the thread renices only this thread on Linux (setpriority(PRIO_PROCESS, 0) acts on
 * the calling thread there); best effort elsewhere. Unlike the native workers these threads
 * CANNOT be pinned to a CPU from JS, so the scheduler may stack two of them onto one core while
 * another core runs host threads: a CU-mask reserve is then a reserve of threads, not of cores.
 *
 * cuMain is SELF-CONTAINED (its source text is eval'd: worker-source.ts); it gets createDevice as
 * an argument.
 */
import type { createDevice as CreateDevice } from './device.js';
import type { CuWorkerData } from './layout.js';

export function cuMain(createDevice: typeof CreateDevice): void {
  const { workerData } = process.getBuiltinModule('node:worker_threads');
  const d = workerData as CuWorkerData;
  const READY = 6;
  if (d.nice > 0) {
    try {
      process.getBuiltinModule('node:os').setPriority(0, d.nice);
    } catch {
      // best effort: lowering one's own priority needs no privilege, but some hosts refuse it
    }
  }
  const dev = createDevice(d.sabI, d.sabF, d.layout, d.base);
  Atomics.add(dev.I, READY, 1);
  Atomics.notify(dev.I, READY);
  const fault =
    d.debug.throwInComputeUnit === d.worker
      ? () => {
          throw new Error('injected fault (debug.throwInComputeUnit)');
        }
      : undefined;
  dev.runComputeUnit(d.worker, fault);
}
