/**
 * Escalating interrupts for long CLI jobs: the first SIGINT/SIGTERM/SIGHUP asks the job to stop
 * cleanly, later ones escalate (kill process groups, leave). One ladder for every command so that
 * Ctrl-C means the same everywhere.
 */
import { invalidArg } from '../errors.js';

export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Installs handlers: the n-th signal runs steps[n-1]; signals past the last step run the last one
 * again. Returns the function that removes the handlers.
 */
export function onInterrupts(steps: ((sig: NodeJS.Signals) => void)[], signals: readonly NodeJS.Signals[] = INTERRUPT_SIGNALS): () => void {
  if (!steps.length) throw invalidArg('onInterrupts: no steps');
  let n = 0;
  const handler = (sig: NodeJS.Signals): void => {
    const step = steps[Math.min(n, steps.length - 1)];
    n++;
    step(sig);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
