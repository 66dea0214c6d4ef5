/**
 * The argv of one training run: the model's command, then each hyperparameter that has a value,
 * in the order the registry declares them: `flag String(value)` (String keeps every digit a
 * float has: 0.1 -> "0.1", 1e-7 -> "1e-7"); a bool as the flag alone when true, nothing when
 * false. No shell is involved: values are single argv items whatever characters they hold.
 */
import { GpucoloError } from '../../errors.js';
import type { ModelEntry } from './config.js';
import type { Hyperparameters } from './types.js';

export function buildArgv(model: ModelEntry, hp: Hyperparameters): string[] {
  const declared = model.hyperparameters;
  const unknown = Object.keys(hp).filter((k) => !Object.hasOwn(declared, k));
  if (unknown.length) {
    throw new GpucoloError(`hyperparameter(s) ${unknown.join(', ')} not declared for this model (known: ${Object.keys(declared).join(', ') || 'none'})`, { code: 'EBADCONFIG' });
  }
  const argv = [...model.command];
  for (const [name, spec] of Object.entries(declared)) {
    if (!Object.hasOwn(hp, name)) continue;
    const v = hp[name];
    if (typeof v === 'boolean') {
      if (v) argv.push(spec.flag);
    } else {
      argv.push(spec.flag, String(v));
    }
  }
  return argv;
}
