/**
 * The two files of a training experiment, validated with zod; `node scripts/schemas.mjs`
 * exports their JSON Schemas to schema/ for editors.
 *
 * Models file (the registry; JSON or YAML): repository name -> { path, models }. `path` is
 * relative to the models file (or absolute) and is the working directory of the training
 * command. Per model: `command` (an argv array, never a shell string), `hyperparameters` in the
 * order their flags are appended, `metrics` (name -> regex, see metrics.ts), `timeout_s` (default
 * 86400) and `env`. Fields gpucolo does not know are ignored, so registries written for other
 * tools load as they are; a top-level "$schema" key is ignored too.
 *
 * A hyperparameter: `flag` (one argv item, e.g. "--lr"), `type` int | float | str | bool,
 * `default` (required: every run records the full configuration), and for mutation either
 * `range: [lo, hi]` (int: inclusive integers; float) with `distribution` uniform (default) or
 * log-uniform (needs lo > 0), or `choices: [...]`. A bool is mutated over [false, true] unless it
 * has choices. A value v is passed as `flag String(v)`; a bool as the flag alone when true and
 * nothing when false. The range and choices bound mutation only: a default or a value given in an
 * experiment may lie outside them (a script's full-length default next to a short search range).
 *
 * Experiment file (JSON or YAML; strict: unknown fields are errors, since a typo in an
 * experiment that runs for hours should not go unnoticed): see experimentFileSchema. `seed`
 * defaults to 0, so the same file draws the same configurations every time; experiment i draws
 * from its own stream (seed, i), so editing one experiment leaves the draws of the others alone.
 *
 * Names of repositories, models and hyperparameters are checked against the registry by
 * planRuns (plan.ts), where both files are known.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfigText, readConfigText, zodIssuesText } from '../../config-text.js';
import { z } from 'zod';
import { GpucoloError, errnoCode } from '../../errors.js';
import type { HyperValue } from './types.js';
import { metricRegexProblem, toJsRegexSource } from './metrics.js';

export const DEFAULT_TIMEOUT_S = 86400;
export const HYPER_TYPES = ['int', 'float', 'str', 'bool'] as const;
export type HyperType = (typeof HYPER_TYPES)[number];

/** Does `v` have hyperparameter type `t`? (an int is a float too) */
export function valueHasType(v: unknown, t: HyperType): v is HyperValue {
  switch (t) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'float':
      return typeof v === 'number' && Number.isFinite(v);
    case 'str':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
  }
}

const TYPE_WORDS: Record<HyperType, string> = { int: 'an integer', float: 'a number', str: 'a string', bool: 'true or false' };
export function typeWord(t: HyperType): string {
  return TYPE_WORDS[t];
}
/** "an int", "a float", "a str", "a bool" */
export function typeName(t: HyperType): string {
  return `${t === 'int' ? 'an' : 'a'} ${t}`;
}

const hyperValue = z.union([z.number(), z.string(), z.boolean()]);

// ---------------------------------------------------------------------------------------------
// models file

export const hyperparameterSpecSchema = z
  .object({
    /** one argv item placed before the value, e.g. "--lr" */
    flag: z
      .string()
      .min(1)
      .regex(/^\S+$/, 'a flag is one argv item such as --lr (no spaces; the value follows as its own item)'),
    type: z.enum(HYPER_TYPES),
    default: hyperValue,
    /** mutation range [lo, hi] for int (inclusive) and float */
    range: z.tuple([z.number(), z.number()]).optional(),
    /** mutation choices (picked uniformly) */
    choices: z.array(hyperValue).min(1).optional(),
    /** how a range is sampled */
    distribution: z.enum(['uniform', 'log-uniform']).default('uniform'),
  })
  .superRefine((h, ctx) => {
    const word = typeWord(h.type);
    if (!valueHasType(h.default, h.type)) ctx.addIssue({ code: 'custom', path: ['default'], message: `the default of ${typeName(h.type)} hyperparameter is ${word} (got ${JSON.stringify(h.default)})` });
    if (h.range && h.choices) ctx.addIssue({ code: 'custom', path: ['choices'], message: 'give range or choices, not both' });
    if (h.range) {
      const [lo, hi] = h.range;
      if (h.type !== 'int' && h.type !== 'float') ctx.addIssue({ code: 'custom', path: ['range'], message: `a range applies to int and float hyperparameters; give ${typeName(h.type)} hyperparameter choices` });
      else if (h.type === 'int' && !(Number.isInteger(lo) && Number.isInteger(hi))) ctx.addIssue({ code: 'custom', path: ['range'], message: `an int range has integer bounds (got [${lo}, ${hi}])` });
      else if (lo > hi) ctx.addIssue({ code: 'custom', path: ['range'], message: `range [lo, hi] needs lo <= hi (got [${lo}, ${hi}])` });
      else if (h.distribution === 'log-uniform' && !(lo > 0)) ctx.addIssue({ code: 'custom', path: ['range'], message: `a log-uniform range needs lo > 0 (got [${lo}, ${hi}])` });
    } else if (h.distribution === 'log-uniform') {
      ctx.addIssue({ code: 'custom', path: ['distribution'], message: 'log-uniform applies to a range [lo, hi] (choices are picked uniformly)' });
    }
    h.choices?.forEach((c, i) => {
      if (!valueHasType(c, h.type)) ctx.addIssue({ code: 'custom', path: ['choices', i], message: `a choice of ${typeName(h.type)} hyperparameter is ${word} (got ${JSON.stringify(c)})` });
    });
    if (h.choices && new Set(h.choices.map((c) => JSON.stringify(c))).size !== h.choices.length) ctx.addIssue({ code: 'custom', path: ['choices'], message: 'choices repeat a value' });
  });

const envValue = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));

export const modelEntrySchema = z.object({
  /** argv of the training command, run in the repository directory; the hyperparameters' flags are appended */
  command: z
    .array(z.string(), {
      error: (iss) => (typeof iss.input === 'string' ? `command is an argv array such as ["python3", "train.py"], not a shell string (got ${JSON.stringify(iss.input)})` : undefined),
    })
    .min(1, 'command needs at least the program, e.g. ["python3", "train.py"]'),
  /** name -> how it is passed, in the order the flags are appended */
  hyperparameters: z.record(z.string().min(1), hyperparameterSpecSchema).default({}),
  /** metric name -> regex whose first capture group is the value (the last match in the log wins) */
  metrics: z
    .record(z.string().min(1), z.string())
    .superRefine((m, ctx) => {
      for (const [name, src] of Object.entries(m)) {
        const problem = metricRegexProblem(src);
        if (problem) ctx.addIssue({ code: 'custom', path: [name], message: `regex of metric ${name} ${problem}` });
      }
    })
    .transform((m) => Object.fromEntries(Object.entries(m).map(([name, src]) => [name, toJsRegexSource(src)])))
    .default({}),
  /** a run longer than this is stopped and counts as failed (default 86400) */
  timeout_s: z.number().positive().optional(),
  /** extra environment for the command */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _'), envValue).optional(),
});

export const repoEntrySchema = z.object({
  /** the repository directory, relative to the models file (or absolute): the commands' working directory */
  path: z.string().min(1),
  models: z.record(z.string().min(1), modelEntrySchema).refine((m) => Object.keys(m).length > 0, { message: 'a repository lists at least one model' }),
});

export const modelsFileSchema = z
  .record(z.string().min(1), repoEntrySchema)
  .refine((m) => Object.keys(m).length > 0, { message: 'the models file lists no repository: { "<repo>": { "path": "repos/<repo>", "models": { ... } } }' });

export type ModelsFileInput = z.input<typeof modelsFileSchema>;
export type ModelsFile = z.output<typeof modelsFileSchema>;
export type RepoEntry = z.output<typeof repoEntrySchema>;
export type ModelEntry = z.output<typeof modelEntrySchema>;
export type HyperparameterSpec = z.output<typeof hyperparameterSpecSchema>;

// ---------------------------------------------------------------------------------------------
// experiment file

const hyperValues = z.record(z.string().min(1), hyperValue);
const mutateList = z
  .array(z.string().min(1))
  .min(1, 'mutate lists at least one hyperparameter (leave it out to run the given values)')
  .refine((l) => new Set(l).size === l.length, { message: 'mutate names a hyperparameter twice' });

/** the foreground job of a parallel experiment */
export const jobRefSchema = z
  .object({
    repo: z.string().min(1),
    model: z.string().min(1),
    /** values for this experiment (the registry's defaults fill the rest) */
    hyperparameters: hyperValues.optional(),
    /** hyperparameters sampled from their range or choices, per run */
    mutate: mutateList.optional(),
  })
  .strict();

/** the background job of a parallel experiment: fixed hyperparameters, restarted while the foreground runs */
export const backgroundRefSchema = z
  .object({
    repo: z.string().min(1),
    model: z.string().min(1),
    hyperparameters: hyperValues.optional(),
  })
  .strict();

/** modes default and mutation: repo, model, hyperparameters?, mutate?; mode parallel: foreground and background */
export const experimentItemSchema = z
  .object({
    repo: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    hyperparameters: hyperValues.optional(),
    mutate: mutateList.optional(),
    foreground: jobRefSchema.optional(),
    /** one background, or several (a list: each loops on its own next to the foreground) */
    background: z.union([backgroundRefSchema, z.array(backgroundRefSchema).min(1, 'a list of backgrounds names at least one')]).optional(),
  })
  .strict();

export const MODES = ['default', 'mutation', 'parallel'] as const;
export type Mode = (typeof MODES)[number];

export interface JobRef {
  repo: string;
  model: string;
  /** given values (possibly empty) */
  hyperparameters: Record<string, HyperValue>;
  /** names sampled per run (empty: none) */
  mutate: string[];
}
export interface SingleExperiment extends JobRef {
  kind: 'single';
}
export type BackgroundRef = Omit<JobRef, 'mutate'>;
export interface ParallelExperiment {
  kind: 'parallel';
  foreground: JobRef;
  /** the first (or only) background */
  background: BackgroundRef;
  /** every background, in the file's order (one when the file gives an object) */
  backgrounds: BackgroundRef[];
  /** the file gave background as a list (the results then carry background_infos) */
  backgroundList: boolean;
}
export type ExperimentSpec = SingleExperiment | ParallelExperiment;

function overlap(ref: { hyperparameters?: Record<string, unknown>; mutate?: string[] }): string[] {
  return (ref.mutate ?? []).filter((n) => ref.hyperparameters && n in ref.hyperparameters);
}

export const experimentFileSchema = z
  .object({
    /** editors' schema reference (ignored) */
    $schema: z.string().optional(),
    /** names result files and experiment ids; when absent (files of the notes' mutation.py), the file name without its extension */
    experiment_name: z.string().min(1).optional(),
    description: z.string().optional(),
    /** default: the given hyperparameters; mutation: sample `mutate` per run; parallel: foreground + looping background */
    mode: z.enum(MODES).default('default'),
    /** runs of each experiment (mutation: distinct configurations) */
    runs_per_config: z.number().int().min(1).max(100000).default(1),
    /** further attempts of a failed run */
    max_retries: z.number().int().min(0).max(100).default(0),
    /** CPU frequency governor set for the experiment, e.g. "performance" */
    governor: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'a governor is a cpufreq governor name such as performance')
      .optional(),
    /** seed of the mutation draws (0 unless given: the same file draws the same configurations) */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /** parallel mode: also run the foreground solo and an idle baseline, for an estimated energy split */
    estimate_split: z.boolean().default(false),
    /** parallel mode: seconds between starting the background and starting the foreground */
    background_start_wait_s: z.number().min(0).max(3600).default(5),
    /** parallel mode: seconds between one background run's end and the next's start */
    background_pause_s: z.number().min(0).max(3600).default(2),
    /** energy sampling interval */
    energy_interval_ms: z.number().int().min(100).max(60000).default(1000),
    experiments: z.array(experimentItemSchema).min(1, 'experiments lists at least one experiment'),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.estimate_split && f.mode !== 'parallel') ctx.addIssue({ code: 'custom', path: ['estimate_split'], message: `estimate_split applies to mode parallel (mode is ${f.mode})` });
    f.experiments.forEach((e, i) => {
      const at = (...p: (string | number)[]) => ['experiments', i, ...p];
      if (f.mode === 'parallel') {
        if (!e.foreground || !e.background) {
          ctx.addIssue({ code: 'custom', path: at(e.foreground ? 'background' : 'foreground'), message: 'mode parallel: each experiment has foreground: { repo, model, mutate | hyperparameters } and background: { repo, model, hyperparameters } (or a list of them)' });
        }
        for (const k of ['repo', 'model', 'hyperparameters', 'mutate'] as const) {
          if (e[k] !== undefined) ctx.addIssue({ code: 'custom', path: at(k), message: `mode parallel: ${k} goes inside foreground or background` });
        }
        if (e.foreground) for (const n of overlap(e.foreground)) ctx.addIssue({ code: 'custom', path: at('foreground', 'mutate'), message: `${n} is both mutated and given in hyperparameters` });
      } else {
        if (e.foreground || e.background) ctx.addIssue({ code: 'custom', path: at(e.foreground ? 'foreground' : 'background'), message: `foreground and background need mode: parallel (mode is ${f.mode})` });
        if (e.repo === undefined) ctx.addIssue({ code: 'custom', path: at('repo'), message: 'each experiment names a repo (a repository of the models file)' });
        if (e.model === undefined) ctx.addIssue({ code: 'custom', path: at('model'), message: 'each experiment names a model (of its repository in the models file)' });
        if (f.mode === 'mutation' && e.mutate === undefined) ctx.addIssue({ code: 'custom', path: at('mutate'), message: 'mode mutation: list the hyperparameters to sample, e.g. mutate: [epochs, learning_rate]' });
        if (f.mode === 'default' && e.mutate !== undefined) ctx.addIssue({ code: 'custom', path: at('mutate'), message: 'mutate needs mode: mutation (mode default runs the given hyperparameters)' });
        for (const n of overlap(e)) ctx.addIssue({ code: 'custom', path: at('mutate'), message: `${n} is both mutated and given in hyperparameters` });
      }
    });
  })
  .transform(({ experiments, experiment_name, ...rest }) => ({
    ...rest,
    /** '' until parseExperiment fills in the name derived from the file (format 'notes') */
    experiment_name: experiment_name ?? '',
    /** which format was read: 'gpucolo' (experiment_name given) or 'notes' (the notes' mutation.py files: no experiment_name) */
    format: (experiment_name === undefined ? 'notes' : 'gpucolo') as ExperimentFormat,
    experiments: experiments.map((e): ExperimentSpec => {
      if (e.foreground && e.background) {
        const list = Array.isArray(e.background);
        const backgrounds = (Array.isArray(e.background) ? e.background : [e.background]).map((b): BackgroundRef => ({ repo: b.repo, model: b.model, hyperparameters: b.hyperparameters ?? {} }));
        return {
          kind: 'parallel',
          foreground: { repo: e.foreground.repo, model: e.foreground.model, hyperparameters: e.foreground.hyperparameters ?? {}, mutate: e.foreground.mutate ?? [] },
          background: backgrounds[0],
          backgrounds,
          backgroundList: list,
        };
      }
      return { kind: 'single', repo: e.repo!, model: e.model!, hyperparameters: e.hyperparameters ?? {}, mutate: e.mutate ?? [] };
    }),
  }));

/**
 * The experiment file formats read: 'gpucolo' (experiment_name given) and 'notes' (the files of
 * the users' mutation.py, e.g. {"mode": "default", "experiments": [{repo, model, hyperparameters}]}:
 * no experiment_name, derived from the file name). Both are read with the same schema; results
 * are always written in gpucolo's format.
 */
export type ExperimentFormat = 'gpucolo' | 'notes';

/** The experiment name of a file without experiment_name: its base name without .json/.yaml/.yml. */
export function nameFromFile(file: string): string {
  return path.basename(file).replace(/\.(json|ya?ml)$/i, '') || 'experiment';
}

export type ExperimentFileInput = z.input<typeof experimentFileSchema>;
export type ExperimentFile = z.output<typeof experimentFileSchema>;

// ---------------------------------------------------------------------------------------------
// loading

function readText(file: string, what: 'models file' | 'experiment file', hint?: string): string {
  try {
    return readConfigText(file, what);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    if (code === 'ENOENT') throw new GpucoloError(`${what} not found: ${file}`, { code, path: file, hint });
    throw err;
  }
}

/** The mapping in a models or experiment file (JSON or YAML). */
function parseText(text: string, file: string, what: 'models file' | 'experiment file'): unknown {
  return parseConfigText(text, file, {
    code: 'EBADCONFIG',
    shape: what === 'models file' ? 'a models file is a mapping of repository names to { path, models }' : 'an experiment file is a mapping with experiment_name, mode and experiments',
  });
}

/** Validates models-file data (already parsed); `file` names it in errors. */
export function parseModels(data: unknown, file: string): ModelsFile {
  if (data && typeof data === 'object' && !Array.isArray(data) && '$schema' in data) {
    const { $schema: _ignored, ...rest } = data as Record<string, unknown>;
    void _ignored;
    data = rest;
  }
  const parsed = modelsFileSchema.safeParse(data);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid models file: ${zodIssuesText(parsed.error)}`, { code: 'EBADCONFIG', path: file });
  return parsed.data;
}

/**
 * A failed union (background: an object or a list) says only "Invalid input": replace it with
 * the issues of the branch that fits the value's shape (the list's when a list was given), the
 * paths made whole.
 */
function unionIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== 'invalid_union' || !i.errors.length) return [i];
    const fits = i.errors.find((branch) => !branch.every((b) => b.code === 'invalid_type' && b.path.length === 0)) ?? i.errors[0];
    return unionIssues(fits.map((b) => ({ ...b, path: [...i.path, ...b.path] }) as z.core.$ZodIssue));
  });
}

/** Validates experiment-file data (already parsed); `file` names it in errors. */
export function parseExperiment(data: unknown, file: string): ExperimentFile {
  const parsed = experimentFileSchema.safeParse(data);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid experiment file: ${zodIssuesText(new z.ZodError(unionIssues(parsed.error.issues)))}`, { code: 'EBADCONFIG', path: file });
  const exp = parsed.data;
  if (exp.format === 'notes') exp.experiment_name = nameFromFile(file);
  return exp;
}

/** The models file (registry); `dir` is its directory, against which repository paths resolve. */
export function loadModels(file: string): { models: ModelsFile; file: string; dir: string } {
  const text = readText(file, 'models file', 'give the registry with --models, or put models.json next to the experiment file');
  const models = parseModels(parseText(text, file, 'models file'), file);
  return { models, file, dir: path.dirname(path.resolve(file)) };
}

export function loadExperiment(file: string): { experiment: ExperimentFile; file: string } {
  const text = readText(file, 'experiment file');
  return { experiment: parseExperiment(parseText(text, file, 'experiment file'), file), file };
}

/**
 * Where the models file is when --models is not given: next to the experiment file, the first
 * of models.json, models.yaml, models.yml that exists (models.json when none does, so the
 * "not found" error names it).
 */
export function defaultModelsPath(experimentFile: string): string {
  const dir = path.dirname(experimentFile);
  for (const name of ['models.json', 'models.yaml', 'models.yml']) {
    const f = path.join(dir, name);
    if (fs.existsSync(f)) return f;
  }
  return path.join(dir, 'models.json');
}
