/** Statistics shared by analyses and reports. */
export type * from './types.js';
export * from './percentiles.js';
export * from './latency.js';
export * from './fairness.js';
export * from './live.js';
export * from './slo.js';
export * from './rounds.js';
export * from './quality.js';
export * from './host-load.js';
export * from './sample-size.js';
