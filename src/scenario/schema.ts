/**
 * Scenario files (YAML or JSON), validated with zod; `npm run schema` exports the JSON Schema to
 * schema/scenario.schema.json for editors. Durations are strings with units ("20ms", "2s") or
 * numbers of milliseconds; shares are "30%" or 0.3.
 *
 * A scenario has tasks; each task has a priority (higher = more important), an arrival process,
 * an optional SLO, and its workload in one or both forms: `probe` (spin kernels on a dispatch
 * backend: runs anywhere, the cpu backend included) and `torch` (a model run by
 * workloads/model_worker.py). A run picks one form for all tasks.
 */
import { z } from 'zod';
import { MECHANISMS, type Mechanism } from '../mechanisms.js';
import { parseDuration } from '../units.js';
import { MAX_BLOCKS, MAX_DISPATCH_SPAN_NS, MAX_INFLIGHT, MAX_KERNEL_NS, MAX_REQUEST_NS, MAX_STREAMS, MAX_THREADS_PER_BLOCK, MAX_THROTTLE_K, MIN_DISPATCH_SPAN_NS } from '../limits.js';

export const SCENARIO_SCHEMA = 'gpucolo.scenario/1';

/**
 * Rounds when neither the scenario nor --rounds says: 2 keeps the main job (inference-service,
 * probe form, cpu backend: 5 phases of 11.3 s) near 2 minutes on a 2-core host, and gives every
 * phase a second measurement in another position, so drift between phases shows as spread.
 */
export const DEFAULT_ROUNDS = 2;

/** "20ms" / "1.5s" / 20 (ms) -> ns */
const durationNs = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    if (typeof v === 'number') {
      if (!(v >= 0) || !Number.isFinite(v)) {
        ctx.addIssue({ code: 'custom', message: `a duration must be >= 0 (got ${v})` });
        return z.NEVER;
      }
      return Math.round(v * 1e6);
    }
    try {
      return parseDuration(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a duration: "${v}" (e.g. 20ms, 2s, 100us)` });
      return z.NEVER;
    }
  });

const positiveDurationNs = durationNs.refine((v) => v > 0, { message: 'must be longer than 0' });

/** "60s", "1h": how a limit reads in messages. */
function limitText(ns: number): string {
  return ns >= 3600e9 && ns % 3600e9 === 0 ? `${ns / 3600e9}h` : ns >= 1e9 ? `${ns / 1e9}s` : `${ns / 1e6}ms`;
}

/** "30%" / 0.3 -> 0.3 */
const share = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const x = typeof v === 'number' ? v : /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.test(v) ? Number(/(\d+(?:\.\d+)?)/.exec(v)![1]) / 100 : Number.NaN;
  if (!(x >= 0 && x <= 1)) {
    ctx.addIssue({ code: 'custom', message: `not a share: ${JSON.stringify(v)} (e.g. "30%" or 0.3)` });
    return z.NEVER;
  }
  return x;
});

export const probeWorkloadSchema = z
  .object({
    /** device time of one request's kernel */
    kernel: positiveDurationNs
      .refine((v) => v <= MAX_KERNEL_NS, { message: `a probe kernel is at most ${limitText(MAX_KERNEL_NS)} (the dispatch engine's longest kernel)` })
      .describe(`Device time of one kernel: more than 0, at most ${limitText(MAX_KERNEL_NS)} (${MAX_KERNEL_NS / 1e6} ms).`),
    /** kernels per request, run back to back on the task's stream (a model = several layers) */
    kernels: z.number().int().min(1).max(1000).default(1),
    /**
     * blocks per kernel: 1 keeps one compute unit busy; "fill" = enough resident blocks to occupy
     * every compute unit the task's stream gets (its CUs as made x the probe kernel's resident blocks
     * per CU at threadsPerBlock, from the runtime's occupancy API)
     */
    blocks: z.union([z.number().int().min(1).max(MAX_BLOCKS), z.literal('fill')]).default(1),
    /** with blocks "fill": kernels of this many waves (blocks = waves x fill), like a big layer */
    waves: z.number().int().min(1).max(1024).default(1),
    threadsPerBlock: z.number().int().min(1).max(MAX_THREADS_PER_BLOCK).default(64),
  })
  .strict()
  .superRefine((w, ctx) => {
    const request = w.kernel * w.kernels * (w.blocks === 'fill' ? w.waves : 1);
    if (request > MAX_REQUEST_NS) {
      ctx.addIssue({
        code: 'custom',
        path: ['kernels'],
        message: `one request is ${limitText(Math.round(request / 1e9) * 1e9)} of device time (kernel x kernels${w.blocks === 'fill' ? ' x waves' : ''}), more than ${limitText(MAX_REQUEST_NS)}, the longest phase`,
      });
    }
  });

export const TORCHVISION_MODELS = [
  'resnet18',
  'resnet50',
  'mobilenet_v2',
  'vit_b_16',
  'deeplabv3_resnet50',
  'deeplabv3_mobilenet_v3_large',
  'efficientnet_b0',
] as const;
export const TRANSFORMERS_MODELS = ['whisper-base', 'bert-base-uncased', 'gpt2'] as const;
/** tiny built-in models for smoke tests: no torchvision or transformers needed */
export const BUILTIN_MODELS = ['tiny-cnn', 'tiny-mlp'] as const;
export const MODELS = [...TORCHVISION_MODELS, ...TRANSFORMERS_MODELS, ...BUILTIN_MODELS] as const;

export const torchWorkloadSchema = z
  .object({
    model: z.enum(MODELS, { error: (i) => `unknown model ${JSON.stringify(i.input)} (known: ${MODELS.join(', ')})` }),
    batch: z.number().int().min(1).max(4096).default(1),
    /** input shape without the batch dimension: [3,224,224] for images, [samples] for audio, [tokens] for text */
    input: z.array(z.number().int().min(1).max(1 << 20)).min(1).max(4).optional(),
    mode: z.enum(['inference', 'train']).default('inference'),
    /** auto: cuda (NVIDIA or ROCm) when torch sees one, else cpu */
    device: z.string().regex(/^(auto|cpu|cuda(:\d+)?)$/, 'device is auto, cpu, cuda or cuda:N').default('auto'),
    dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32'),
    /** torch intra-op threads on cpu (default: torch's own choice) */
    threads: z.number().int().min(1).max(1024).optional(),
  })
  .strict();

export const arrivalSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('poisson'), rate: z.number().positive().max(1e6), seed: z.number().int().min(0).default(1) }).strict(),
  z.object({ kind: z.literal('fixed-rate'), rate: z.number().positive().max(1e6) }).strict(),
  /** periodic frames: one request per frame, each must finish before the next frame (or `deadline`) */
  z.object({ kind: z.literal('frames'), fps: z.number().positive().max(10000), deadline: positiveDurationNs.optional() }).strict(),
  /** saturating: `concurrency` requests always outstanding */
  z.object({ kind: z.literal('closed-loop'), concurrency: z.number().int().min(1).max(Math.min(256, MAX_INFLIGHT)).default(1) }).strict(),
  /** a batch job every `period` that must finish within `deadline` (default: the period) */
  z.object({ kind: z.literal('batch'), period: positiveDurationNs, deadline: positiveDurationNs.optional() }).strict(),
  /** replay: arrival offsets from the phase start */
  z.object({ kind: z.literal('replay'), times: z.array(durationNs).min(1) }).strict(),
]);

export const sloSchema = z
  .object({
    /** latency percentile bound: { percentile: 99, below: 50ms } */
    percentile: z.number().gt(0).lt(100).optional(),
    below: positiveDurationNs.optional(),
    /** deadline misses allowed (needs a deadline: frames or batch arrivals); 0 = no dropped frame */
    maxMissRatio: z.number().min(0).max(1).optional(),
    /** throughput at least this share of the task's standalone throughput */
    minThroughputShare: share.optional(),
  })
  .strict()
  .refine((s) => (s.percentile === undefined) === (s.below === undefined), { message: 'percentile and below go together: { percentile: 99, below: 50ms }' })
  .refine((s) => s.percentile !== undefined || s.maxMissRatio !== undefined || s.minThroughputShare !== undefined, {
    message: 'an SLO needs { percentile, below }, maxMissRatio or minThroughputShare',
  });

export const taskSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'task names are 1-64 letters, digits, _ . - (they name files and phases)'),
    priority: z.number().int().min(-1000).max(1000),
    arrival: arrivalSchema,
    slo: sloSchema.optional(),
    probe: probeWorkloadSchema.optional(),
    torch: torchWorkloadSchema.optional(),
  })
  .strict()
  .refine((t) => t.probe || t.torch, { message: 'a task needs a workload: probe, torch or both' });

/** the mechanisms' names, from the registry (src/mechanisms.ts) */
export { MECHANISMS, type Mechanism };

const LATENCY_METRICS = ['p50', 'p90', 'p95', 'p99', 'p999'] as const;

/**
 * Bounds are durations for latency metrics ("30ms", or a number of ms), a whole number of requests
 * for `missed` (requests that missed their deadline: dropped frames, late batches; `below: 0` = none)
 * and shares otherwise ("30%", or 0.3).
 */
export const successRowSchema = z
  .object({
    /** what the row says, for the report (default: built from the fields) */
    label: z.string().optional(),
    task: z.string().optional(),
    metric: z.enum([...LATENCY_METRICS, 'throughputShare', 'missRatio', 'missed', 'utilisation']),
    below: z.union([z.string(), z.number()]).optional(),
    above: z.union([z.string(), z.number()]).optional(),
  })
  .strict()
  .refine((r) => (r.below === undefined) !== (r.above === undefined), { message: 'a success row has exactly one of below / above' })
  .refine((r) => (r.metric === 'utilisation') === (r.task === undefined), { message: 'utilisation rows have no task; every other metric names one' })
  .transform((r, ctx) => {
    const latency = (LATENCY_METRICS as readonly string[]).includes(r.metric);
    const conv = (v: string | number | undefined, key: 'below' | 'above'): number | undefined => {
      if (v === undefined) return undefined;
      if (r.metric === 'missed') {
        const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
        if (!Number.isInteger(n) || n < 0 || n > 1e9) {
          ctx.addIssue({ code: 'custom', path: [key], message: `${JSON.stringify(v)} is not a whole number of requests (a count for missed; below: 0 = no miss)` });
          return undefined;
        }
        return n;
      }
      const p = (latency ? positiveDurationNs : share).safeParse(v);
      if (!p.success) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${p.error.issues[0]?.message ?? 'bad bound'} (${latency ? 'a duration for latency metrics' : `a share for ${r.metric}`})` });
        return undefined;
      }
      return p.data;
    };
    return { ...r, below: conv(r.below, 'below'), above: conv(r.above, 'above') };
  });

export const scenarioSchema = z
  .object({
    schema: z.literal(SCENARIO_SCHEMA).optional(),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
    description: z.string().optional(),
    /** probe form: cpu, cuda, hip, or auto (cuda, then hip, then cpu) */
    backend: z.enum(['auto', 'cpu', 'cuda', 'hip']).default('auto'),
    /** measured time per phase */
    duration: positiveDurationNs.default(10e9).describe(`Measured time per phase; with the warm-up at least ${limitText(MIN_DISPATCH_SPAN_NS)} and at most ${limitText(MAX_DISPATCH_SPAN_NS)}.`),
    /** excluded from the statistics, at the start of each phase */
    warmup: durationNs.default(1e9),
    /**
     * every phase runs this many times, in an order rotated each round, so slow drift on the host
     * reaches every phase alike; the report pools the rounds and shows their spread
     */
    rounds: z.number().int().min(1).max(100).default(DEFAULT_ROUNDS),
    /** phases are lengthened until every task's pooled sample reaches this many requests (368 gives a P99 a 95% CI) */
    minSamples: z.number().int().min(1).max(1_000_000).optional(),
    /** co-run mechanisms besides `none` (always run) */
    mechanisms: z.array(z.enum(MECHANISMS)).default([]),
    /** spatial mechanisms: the share of compute units kept for the highest-priority task */
    reserve: share.default(0.1),
    /** throttle: low-priority kernels in flight */
    throttleK: z.number().int().min(1).max(MAX_THROTTLE_K).default(1),
    /** xsched: the shim and its environment (XSCHED_* per task priority are added) */
    xsched: z.object({ preload: z.string().min(1), env: z.record(z.string(), z.string()).default({}) }).strict().optional(),
    /**
     * torch form: one worker process per model (per-model), or every model of a phase in one
     * process (single: one context, so stream priorities between the models are real on NVIDIA
     * without MPS; cu-mask and xsched, which act on whole processes, are skipped there)
     */
    torchProcess: z.enum(['per-model', 'single']).default('per-model'),
    tasks: z.array(taskSchema).min(1).max(Math.min(16, MAX_STREAMS)),
    success: z.array(successRowSchema).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    // a phase is one dispatch run of warm-up + duration: within the engine's bounds
    const span = s.warmup + s.duration;
    if (span > MAX_DISPATCH_SPAN_NS) ctx.addIssue({ code: 'custom', path: ['duration'], message: `warmup + duration is ${limitText(Math.round(span / 1e9) * 1e9)}, more than ${limitText(MAX_DISPATCH_SPAN_NS)}, the longest phase` });
    else if (span < MIN_DISPATCH_SPAN_NS) ctx.addIssue({ code: 'custom', path: ['duration'], message: `warmup + duration must be at least ${limitText(MIN_DISPATCH_SPAN_NS)}` });
    const names = new Set<string>();
    s.tasks.forEach((t, i) => {
      if (t.probe && t.probe.kernels > 1 && t.arrival.kind === 'closed-loop' && t.arrival.concurrency > 1) {
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'probe', 'kernels'], message: 'several kernels per request run one request at a time: closed-loop concurrency must be 1' });
      }
      if (t.probe && t.probe.waves > 1 && t.probe.blocks !== 'fill') {
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'probe', 'waves'], message: 'waves apply to blocks: fill (give blocks as a number otherwise)' });
      }
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'name'], message: `duplicate task name "${t.name}"` });
      names.add(t.name);
      if (t.slo?.maxMissRatio !== undefined && t.arrival.kind !== 'frames' && t.arrival.kind !== 'batch') {
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'slo', 'maxMissRatio'], message: 'deadline misses need frames or batch arrivals (they carry the deadline)' });
      }
    });
    s.success.forEach((r, i) => {
      const t = s.tasks.find((x) => x.name === r.task);
      if (t && r.metric === 'missed' && t.arrival.kind !== 'frames' && t.arrival.kind !== 'batch') {
        ctx.addIssue({ code: 'custom', path: ['success', i, 'metric'], message: `${r.metric} needs a deadline: task "${t.name}" has ${t.arrival.kind} arrivals (frames or batch carry one)` });
      }
      if (r.task !== undefined && !names.has(r.task)) ctx.addIssue({ code: 'custom', path: ['success', i, 'task'], message: `SLO row names unknown task "${r.task}" (tasks: ${[...names].join(', ')})` });
    });
    if (s.mechanisms.includes('xsched') && !s.xsched) ctx.addIssue({ code: 'custom', path: ['xsched'], message: 'the xsched mechanism needs xsched: { preload: /path/to/libshimcuda.so }' });
  });

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;
export type Task = Scenario['tasks'][number];
export type Arrival = Task['arrival'];
export type Slo = NonNullable<Task['slo']>;
export type ProbeWorkload = NonNullable<Task['probe']>;
export type TorchWorkload = NonNullable<Task['torch']>;
export type SuccessRow = Scenario['success'][number];
export type Form = 'probe' | 'torch';

/** The deadline a task's requests carry (frames: the frame period unless given; batch: the period unless given). */
export function deadlineNs(a: Arrival): number | null {
  if (a.kind === 'frames') return a.deadline ?? Math.round(1e9 / a.fps);
  if (a.kind === 'batch') return a.deadline ?? a.period;
  return null;
}
