/** Statistics shared by analyses and reports. */
export * from './percentiles.js';
