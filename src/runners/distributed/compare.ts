/**
 * Several methods, one after another, with identical options (one result file each), then the
 * analysis of the directory. Every method's options are checked before the first one starts, so
 * a mistake that would only hit the third method (ps with one rank) fails at once.
 */
import path from 'node:path';
import { oneLine } from '../../errors.js';
import { analyzeDistributed, type DistributedAnalysis } from './analyze.js';
import { checkPorts, distributedSupervisor, runDistributed, validateRun, type DistributedLaunchOptions, type DistributedRunOptions, type DistributedRunResult, type DistributedTrainOptions } from './run.js';
import { METHODS, type DistMethod } from './schema.js';
import { GpucoloError } from '../../errors.js';

export interface DistributedCompareOptions extends DistributedTrainOptions, DistributedLaunchOptions {
  /** default ddp, allreduce, ps */
  methods?: DistMethod[];
  /** run analyzeDistributed on outDir at the end (default true) */
  analyze?: boolean;
  /** PNGs with the plots (default true) */
  png?: boolean;
}

export interface DistributedCompareResult {
  runs: DistributedRunResult[];
  /** null when not asked for, interrupted, or no result to analyze (see analysisError) */
  analysis: DistributedAnalysis | null;
  analysisError?: string;
  interrupted: boolean;
  /** runs that did not succeed (interrupted ones included) */
  failed: number;
}

/** With --dump-params F each method gets F with _<method> before its extension. */
const perMethod = (file: string, method: DistMethod): string => {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}_${method}${ext}`;
};

export async function compareDistributed(opts: DistributedCompareOptions): Promise<DistributedCompareResult> {
  const methods = opts.methods ?? [...METHODS];
  if (methods.length === 0) throw new GpucoloError('no methods to compare', { code: 'EBADCONFIG' });
  const dup = methods.find((m, i) => methods.indexOf(m) !== i);
  if (dup) throw new GpucoloError(`method ${dup} given twice (each method writes one result file)`, { code: 'EBADCONFIG' });
  const runOpts = (method: DistMethod): DistributedRunOptions => ({ ...opts, method, ...(opts.dumpParams ? { dumpParams: perMethod(opts.dumpParams, method) } : {}) });
  for (const m of methods) {
    const o = runOpts(m);
    await checkPorts(o, validateRun(o));
  }
  const own = opts.supervisor ? null : distributedSupervisor({ registryFile: opts.registryFile, graceMs: opts.graceMs });
  const out: DistributedCompareResult = { runs: [], analysis: null, interrupted: false, failed: 0 };
  try {
    for (const m of methods) {
      if (opts.signal?.aborted) {
        out.interrupted = true;
        break;
      }
      const r = await runDistributed({ ...runOpts(m), supervisor: own?.supervisor ?? opts.supervisor, ...(own ? { registryFile: own.registryFile } : {}) });
      out.runs.push(r);
      if (!r.ok) out.failed++;
      if (r.interrupted) {
        out.interrupted = true;
        break;
      }
    }
  } finally {
    own?.dispose();
  }
  if (opts.analyze !== false && !out.interrupted && out.runs.some((r) => r.ok)) {
    try {
      out.analysis = await analyzeDistributed(opts.outDir, { png: opts.png });
    } catch (err) {
      out.analysisError = oneLine(err);
    }
  }
  return out;
}
