/** Staged (model-swap) pipelines: schema, items, planner, journal, model hosts, runner, report. */
export * from './schema.js';
export * from './items.js';
export * from './planner.js';
export * from './journal.js';
export * from './host.js';
export * from './runner.js';
export * from './report.js';
