/**
 * Jain's fairness index, (Σx)² / (n·Σx²), over x_i = values_i / weights_i: 1 when every x_i is
 * equal, 1/n when one party gets everything. It is scale-free, so it compares phases whose
 * absolute throughputs differ.
 *
 * For co-located tasks the caller passes each task's throughput share of its standalone run,
 * weighted by priority: the index is then 1 when shares are proportional to the weights (a
 * higher-priority task keeping a proportionally larger share is "fair"). Weights must be > 0, so
 * the caller maps priorities (which may be 0 or negative) to positive weights first.
 */
import { outOfRange } from '../errors.js';
export function jainIndex(values: number[], weights?: number[]): number | null {
  if (weights !== undefined && weights.length !== values.length) {
    throw outOfRange(`jainIndex: ${values.length} values but ${weights.length} weights`, 'ERR_INVALID_ARG_VALUE');
  }
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= 0) || !Number.isFinite(v)) throw outOfRange(`jainIndex: values[${i}] is ${v} (must be finite and >= 0)`);
    const w = weights ? weights[i] : 1;
    if (!(w > 0) || !Number.isFinite(w)) throw outOfRange(`jainIndex: weights[${i}] is ${w} (must be finite and > 0)`);
    const x = v / w;
    sum += x;
    sumSq += x * x;
  }
  if (values.length === 0 || sumSq === 0) return null;
  return (sum * sum) / (values.length * sumSq);
}
