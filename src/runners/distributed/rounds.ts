/**
 * Distributed runs in rounds: every variant (a method, or a method with its options, as the bench
 * has them) once per round, in an order rotated each round (rotatedOrder), with a host-load window
 * around each run. A comparison of methods run minutes apart on a shared host otherwise measures
 * the host: whatever drifts reaches every method alike this way, and shows up as the spread
 * between rounds (rounds-summary.ts) instead of as a difference between methods.
 */
import type { HostLoad } from '../../stats/index.js';
import { rotatedOrder } from '../../stats/index.js';
import { runHostLoadWindow } from './host-load.js';
import { runDistributed, type DistributedRunOptions, type DistributedRunResult } from './run.js';
import type { DistMethod } from './schema.js';

export interface RoundVariant {
  /** row label: the method in compare, e.g. "allreduce 25 MB buckets" in the bench */
  label: string;
  /** everything but outDir, which comes from dirOf */
  options: Omit<DistributedRunOptions, 'outDir'>;
}

/** One run of one variant in one round. */
export interface RoundRun {
  label: string;
  method: DistMethod;
  /** 1-based */
  round: number;
  /** 1-based place in its round */
  position: number;
  dir: string;
  result: DistributedRunResult;
  /** other processes' CPU during the run (the ranks count as ours) */
  hostLoad: HostLoad;
}

export interface RunRoundsOptions {
  rounds: number;
  /** the output directory of a variant's run in a round (1-based) */
  dirOf: (round: number, label: string) => string;
  /** run options per round (e.g. a --dump-params file per round); default: the variant's */
  optionsOf?: (v: RoundVariant, round: number) => Omit<DistributedRunOptions, 'outDir'>;
  signal?: AbortSignal;
  /** before each run */
  onRun?: (label: string, round: number, rounds: number) => void;
  /** the runner (tests inject one that starts nothing) */
  run?: (o: DistributedRunOptions) => Promise<DistributedRunResult>;
}

export interface RoundsOutcome {
  runs: RoundRun[];
  /** per round, the labels in the order they ran */
  order: string[][];
  interrupted: boolean;
}

/** Runs the variants in rounds, rotated; a failed run is kept (and counted by the caller), an interrupted one ends it all. */
export async function runRounds(variants: readonly RoundVariant[], o: RunRoundsOptions): Promise<RoundsOutcome> {
  const run = o.run ?? runDistributed;
  const out: RoundsOutcome = { runs: [], order: [], interrupted: false };
  all: for (let r = 1; r <= o.rounds; r++) {
    const ran: string[] = [];
    out.order.push(ran);
    for (const [i, v] of rotatedOrder(variants, r - 1).entries()) {
      if (o.signal?.aborted) {
        out.interrupted = true;
        break all;
      }
      o.onRun?.(v.label, r, o.rounds);
      ran.push(v.label);
      const dir = o.dirOf(r, v.label);
      const window = runHostLoadWindow();
      const result = await run({ ...(o.optionsOf ? o.optionsOf(v, r) : v.options), ...(o.signal ? { signal: o.signal } : {}), outDir: dir });
      out.runs.push({ label: v.label, method: v.options.method, round: r, position: i + 1, dir, result, hostLoad: window.stop() });
      if (result.interrupted) {
        out.interrupted = true;
        break all;
      }
    }
  }
  if (out.order.length && out.order[out.order.length - 1].length === 0) out.order.pop();
  return out;
}
