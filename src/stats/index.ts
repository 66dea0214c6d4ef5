/** Statistics shared by analyses and reports. */
export * from './percentiles.js';
export * from './latency.js';
export * from './fairness.js';
export * from './live.js';
export * from './slo.js';
