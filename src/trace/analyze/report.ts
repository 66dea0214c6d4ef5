/**
 * analyzeTrace: builds the context once and assembles the report from its parts (input, rules,
 * overall, processes, GPUs, coexistence, sampling).
 */
import { VERSION } from '../../version.js';
import type { Trace } from '../read.js';
import { coexistence } from './coexistence.js';
import { buildCtx, DEFAULTS } from './context.js';
import { gpuUsage } from './gpus.js';
import { inputOf } from './input.js';
import { overall } from './overall.js';
import { allPids, processUsage } from './processes.js';
import { rulesText } from './rules.js';
import { sampling } from './sampling.js';
import { QUEUE_USAGE_SCHEMA, type AnalyzeOptions, type ProcessUsage, type QueueUsageReport } from './types.js';

/** Analyzes a trace (readTrace / readDumpDir) into a QueueUsageReport. */
export function analyzeTrace(trace: Trace, options: AnalyzeOptions = {}): QueueUsageReport {
  const opts = { ...DEFAULTS, ...options };
  const ctx = buildCtx(trace, opts);
  const processes = allPids(trace)
    .map((pid) => processUsage(ctx, pid))
    .filter((p): p is ProcessUsage => p !== null);
  return {
    schema: QUEUE_USAGE_SCHEMA,
    gpucoloVersion: VERSION,
    input: inputOf(trace),
    rules: rulesText(opts),
    overall: overall(ctx, processes),
    processes,
    gpus: gpuUsage(ctx),
    coexistence: coexistence(ctx, processes),
    sampling: sampling(ctx),
  };
}
