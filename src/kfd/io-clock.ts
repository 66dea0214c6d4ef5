/**
 * Wall time spent inside file-system calls (opening, reading and closing pseudo-files, listing
 * directories), summed while `on`. The TS sampler turns it on around a sample to tell the kernel's
 * side of the read from gpucolo's own work, as the native sampler does with its thread-local clock
 * (native/kfd/input_file.h IoClock). Off, a timed call costs one branch.
 */
export const ioClock = { on: false, ns: 0 };

/** Runs fn; when the clock is on, adds its wall time to ioClock.ns (also when it throws). */
export function timedIo<T>(fn: () => T): T {
  if (!ioClock.on) return fn();
  const t0 = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    ioClock.ns += Number(process.hrtime.bigint() - t0);
  }
}
