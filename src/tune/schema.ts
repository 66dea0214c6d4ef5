/**
 * tune.json ("gpucolo.tune/1"), the file `gpucolo tune` writes (and rewrites after every trial),
 * as a zod schema: the type the code builds, a check for tests and readers, and the JSON Schema in
 * schema/tune.schema.json (scripts/schemas.mjs). Times are ms unless the name says otherwise; a
 * value that was not measured is null.
 */
import { z } from 'zod';
import { MECHANISMS } from '../scenario/schema.js';

export const TUNE_SCHEMA = 'gpucolo.tune/1';

const ms = z.number().finite().nonnegative();
const share = z.number().finite().nonnegative();

export const VERDICTS = ['met', 'missed', 'inconclusive', 'noisy', 'failed', 'skipped', 'interrupted'] as const;

const qualitySchema = z.object({
  verdict: z.enum(['ok', 'noisy']),
  warnings: z.array(z.object({ code: z.string(), message: z.string(), phase: z.string().optional(), task: z.string().optional(), round: z.number().int().optional() })),
});

export const settingSchema = z.object({ reserve: share.max(1).optional(), throttleK: z.number().int().min(1).optional() }).strict();

/** One SLO part of a high-priority task, as a trial judged it. */
export const sloCheckSchema = z.object({
  task: z.string(),
  /** "P99 < 50 ms", "deadline misses <= 0%", "throughput >= 30% of standalone" */
  text: z.string(),
  /** a percentile SLO's percentile and bound (ms); null for the other kinds */
  percentile: z.number().gt(0).lt(100).nullable(),
  boundMs: ms.nullable(),
  decision: z.enum(['met', 'missed', 'undecided']),
  /** requests judged, of them certainly over the bound, and censored below it (unknown); null for throughput shares */
  n: z.number().int().nonnegative().nullable(),
  over: z.number().int().nonnegative().nullable(),
  unknown: z.number().int().nonnegative().nullable(),
  /** the numbers behind the decision, one line */
  detail: z.string(),
});

export const trialTaskSchema = z.object({
  name: z.string(),
  priority: z.number().int(),
  /** requests in the latency sample (completed + censored) */
  n: z.number().int().nonnegative(),
  p50Ms: ms.nullable(),
  p99Ms: ms.nullable(),
  ci99Ms: z.tuple([ms, ms]).nullable(),
  /** the P99 is a lower bound (unfinished requests at or below its rank) */
  p99LowerBound: z.boolean(),
  throughput: z.number().finite().nonnegative(),
  throughputShare: share.nullable(),
  censored: z.number().int().nonnegative(),
});

export const trialSchema = z.object({
  /** 1-based, in the order they ran */
  id: z.number().int().min(1),
  mechanism: z.enum(MECHANISMS),
  /** 0 = the most protective setting of the knob */
  level: z.number().int().nonnegative(),
  /** 0 = first run of this setting, 1.. = repeats of a noisy one */
  attempt: z.number().int().nonnegative(),
  setting: settingSchema,
  label: z.string(),
  startedAt: z.string(),
  wallS: z.number().finite().nonnegative(),
  /** runs of the co-run phase the trial took (it stops early once the SLOs are decided) */
  rounds: z.number().int().nonnegative(),
  maxRounds: z.number().int().min(1),
  /** decided (met or missed) before its last round */
  stoppedEarly: z.boolean(),
  /** the budget ran out inside the trial before it was decided */
  budgetCut: z.boolean(),
  verdict: z.enum(VERDICTS),
  why: z.string(),
  slos: z.array(sloCheckSchema),
  hpP99Ms: ms.nullable(),
  lpShare: share.nullable(),
  tasks: z.array(trialTaskSchema),
  quality: qualitySchema,
  notes: z.array(z.string()),
});

export const frontPointSchema = z.object({ trial: z.number().int().min(1), label: z.string(), hpP99Ms: ms, lpShare: share, verdict: z.enum(VERDICTS) });

export const mechanismSummarySchema = z.object({
  mechanism: z.enum(MECHANISMS),
  knob: z.enum(['reserve', 'throttleK']),
  levels: z.number().int().min(1),
  /** done: the search ended; budget: it ran out; skipped: the backend cannot run it; interrupted; pending: not reached yet */
  status: z.enum(['pending', 'running', 'done', 'budget', 'skipped', 'interrupted']),
  reason: z.string().optional(),
  /** the boundary found: the highest level met and the lowest level above it not met */
  highestMetLevel: z.number().int().nonnegative().nullable(),
  lowestNotMetLevel: z.number().int().nonnegative().nullable(),
  /** the trial id of this mechanism's best verified setting */
  best: z.number().int().min(1).nullable(),
  front: z.array(frontPointSchema),
});

export const recommendationSchema = z.object({
  mechanism: z.enum(MECHANISMS),
  setting: settingSchema,
  label: z.string(),
  trial: z.number().int().min(1),
  hpP99Ms: ms.nullable(),
  lpShare: share.nullable(),
  /** the setting as scenario lines (YAML) */
  yaml: z.string(),
});

export const tuneResultSchema = z.object({
  schema: z.literal(TUNE_SCHEMA),
  gpucoloVersion: z.string(),
  createdAt: z.string(),
  /** true until the search has ended (rewritten after every trial) */
  partial: z.boolean(),
  scenario: z.object({ name: z.string(), source: z.string() }),
  backend: z.object({ form: z.enum(['probe', 'torch']), name: z.string(), device: z.string().nullable(), engine: z.enum(['native', 'ts']).nullable(), why: z.string() }),
  options: z.object({
    budgetS: z.number().finite().positive(),
    durationS: z.number().finite().positive(),
    warmupS: z.number().finite().nonnegative(),
    /** decided after the baseline (from its request rate) unless given; null until then */
    maxRounds: z.number().int().min(1).nullable(),
    confidence: z.number().gt(0).lt(1),
    coarse: z.number().int().min(1),
    maxRepeats: z.number().int().nonnegative(),
  }),
  hpTasks: z.array(z.string()),
  lpTasks: z.array(z.string()),
  /** every task alone, once: the low-priority shares and the co-run checks are against it */
  baseline: z.object({
    attempts: z.number().int().nonnegative(),
    tasks: z.array(z.object({ name: z.string(), n: z.number().int().nonnegative(), p99Ms: ms.nullable(), throughput: z.number().finite().nonnegative() })),
    quality: qualitySchema.nullable(),
  }),
  mechanisms: z.array(mechanismSummarySchema),
  trials: z.array(trialSchema),
  recommendation: recommendationSchema.nullable(),
  /** why this recommendation, or why none */
  why: z.string(),
  budget: z.object({ budgetS: z.number().finite().positive(), usedS: z.number().finite().nonnegative(), ranOut: z.boolean() }),
});

export type TuneResult = z.infer<typeof tuneResultSchema>;
export type TuneTrial = z.infer<typeof trialSchema>;
export type TrialTask = z.infer<typeof trialTaskSchema>;
export type SloCheck = z.infer<typeof sloCheckSchema>;
export type MechanismSummary = z.infer<typeof mechanismSummarySchema>;
export type Recommendation = z.infer<typeof recommendationSchema>;
export type FrontPointRecord = z.infer<typeof frontPointSchema>;

/** The JSON Schema of tune.json, for readers and editors. */
export function tuneJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(tuneResultSchema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...js,
    $id: 'https://github.com/gpucolo/gpucolo/schema/tune.schema.json',
    title: `gpucolo tune result (${TUNE_SCHEMA})`,
    description: 'What `gpucolo tune` found: every trial with its setting, numbers, verdict and quality, the Pareto front of high-priority P99 against low-priority throughput share per mechanism, and the recommended setting (or null, with why).',
  };
}
