/**
 * gpucolo's own work: its CPU (sampling thread + JS thread) less the wall time its samples spent
 * in file-system calls (the kernel's side of the reads), the figure the tracer's CPU budgets are
 * stated in. One rule for the status line (src/trace/trace-run.ts) and `gpucolo analyze`
 * (src/trace/analyze/sampling.ts).
 */

/**
 * `cpuNs` less `ioNs`; null where the fs time is not known (null) or exceeds the CPU: reads that
 * waited for the disk or a core, where own work cannot be told apart from the wait.
 */
export function ownWorkNs(cpuNs: number, ioNs: number | null): number | null {
  if (ioNs === null) return null;
  const own = cpuNs - ioNs;
  return own >= 0 ? own : null;
}
