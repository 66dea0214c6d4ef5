/**
 * Hyperparameter sampling for mutation mode, from a seeded generator (seededRandom of
 * scenario/arrivals: the same seed gives the same draws).
 *
 * - int range [lo, hi]: inclusive; uniform, or log-uniform (floor of exp(U(ln lo, ln(hi + 1))),
 *   so each integer gets the weight of its log-width)
 * - float range [lo, hi]: uniform, or log-uniform (exp(U(ln lo, ln hi))); rounded to 6
 *   significant digits (what a training log and a results table can show), kept within [lo, hi]
 * - choices: one picked uniformly
 * - bool without choices: false or true, each with probability 1/2
 * A str hyperparameter without choices, or an int/float one without range or choices, cannot be
 * mutated (an error naming it).
 */
import { GpucoloError } from '../../errors.js';
import type { HyperparameterSpec } from './config.js';
import type { HyperValue, Hyperparameters } from './types.js';

export { seededRandom } from '../../scenario/arrivals.js';

/** Fresh draws tried for one new distinct configuration before giving up. */
export const MAX_TRIES = 1000;

/** Significant digits of a sampled float. */
export const FLOAT_DIGITS = 6;

/** Why the hyperparameter cannot be mutated, or null when it can. */
export function mutationProblem(name: string, spec: HyperparameterSpec): string | null {
  if (spec.choices || spec.range) return null;
  if (spec.type === 'bool') return null;
  if (spec.type === 'str') return `${name} is a str hyperparameter without choices: give it choices to mutate it`;
  return `${name} has no range or choices to sample from: give it range: [lo, hi] or choices`;
}

/** How many distinct values mutation can give the hyperparameter (Infinity for a float range of positive width). */
export function valueCount(spec: HyperparameterSpec): number {
  if (spec.choices) return spec.choices.length;
  if (spec.range) {
    const [lo, hi] = spec.range;
    if (spec.type === 'int') return hi - lo + 1;
    return hi > lo ? Infinity : 1;
  }
  return spec.type === 'bool' ? 2 : 0;
}

function roundFloat(v: number, lo: number, hi: number): number {
  const r = Number(v.toPrecision(FLOAT_DIGITS));
  return Math.min(hi, Math.max(lo, r));
}

/** One value of one hyperparameter. */
export function sampleValue(name: string, spec: HyperparameterSpec, rng: () => number): HyperValue {
  const problem = mutationProblem(name, spec);
  if (problem) throw new GpucoloError(problem, { code: 'EBADCONFIG' });
  if (spec.choices) return spec.choices[Math.min(spec.choices.length - 1, Math.floor(rng() * spec.choices.length))];
  if (!spec.range) return rng() < 0.5; // bool
  const [lo, hi] = spec.range;
  const log = spec.distribution === 'log-uniform';
  if (spec.type === 'int') {
    const v = log ? Math.floor(Math.exp(Math.log(lo) + rng() * (Math.log(hi + 1) - Math.log(lo)))) : lo + Math.floor(rng() * (hi - lo + 1));
    return Math.min(hi, Math.max(lo, v));
  }
  const v = log ? Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo))) : lo + rng() * (hi - lo);
  return roundFloat(v, lo, hi);
}

function specOf(specs: Record<string, HyperparameterSpec>, name: string): HyperparameterSpec {
  const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
  if (!spec) throw new GpucoloError(`no hyperparameter ${name} to mutate (known: ${Object.keys(specs).join(', ') || 'none'})`, { code: 'EBADCONFIG' });
  return spec;
}

/** Values of the hyperparameters `names` (only those), drawn in the order given. */
export function sampleHyperparameters(specs: Record<string, HyperparameterSpec>, names: string[], rng: () => number): Hyperparameters {
  const out: Hyperparameters = {};
  for (const name of names) out[name] = sampleValue(name, specOf(specs, name), rng);
  return out;
}

/**
 * `count` configurations of the hyperparameters `names`, no two alike. Fails at once when fewer
 * distinct configurations exist than asked for, and after MAX_TRIES draws in a row that give
 * only configurations already drawn. `label` names the model in the error.
 */
export function drawDistinct(specs: Record<string, HyperparameterSpec>, names: string[], count: number, rng: () => number, label = 'the model'): Hyperparameters[] {
  const fail = (why: string) =>
    new GpucoloError(`cannot draw ${count} distinct configurations of ${label} from ${names.join(', ')}${why}`, {
      code: 'EBADCONFIG',
      hint: 'lower runs_per_config, widen the ranges or mutate more hyperparameters',
    });
  let space = 1;
  for (const name of names) {
    const spec = specOf(specs, name);
    const problem = mutationProblem(name, spec);
    if (problem) throw new GpucoloError(problem, { code: 'EBADCONFIG' });
    space *= valueCount(spec);
  }
  if (space < count) throw fail(` (only ${space} exist)`);
  const seen = new Set<string>();
  const out: Hyperparameters[] = [];
  while (out.length < count) {
    let fresh: Hyperparameters | null = null;
    for (let t = 0; t < MAX_TRIES && !fresh; t++) {
      const hp = sampleHyperparameters(specs, names, rng);
      const key = JSON.stringify(names.map((n) => hp[n]));
      if (!seen.has(key)) {
        seen.add(key);
        fresh = hp;
      }
    }
    if (!fresh) throw fail(` (${MAX_TRIES} draws in a row repeated the ${out.length} drawn so far)`);
    out.push(fresh);
  }
  return out;
}
