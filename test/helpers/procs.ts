/** Waiting and process-liveness helpers for tests that start and stop real processes. */
import { readStat } from '../../src/supervisor/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A pid is dead when kill(pid, 0) says ESRCH - or when it is a zombie: an orphaned grandchild is
 * reaped by PID 1, which in containers can take seconds (about 2 s where this was written) or
 * never happen; a zombie runs no code and holds nothing but its pid.
 */
export function dead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const st = readStat('/proc', pid);
  return st === null || st.state === 'Z' || st.state === 'X';
}

export const alive = (pid: number): boolean => !dead(pid);
