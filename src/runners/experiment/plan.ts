/**
 * Experiments + registry -> the runs to execute, each with its hyperparameters fully resolved:
 * the registry's defaults, overridden by the experiment's values, overridden by the mutated ones
 * (drawn per run, distinct within an experiment). Everything that needs both files is checked
 * here, all at once, before anything runs: unknown repositories, models and hyperparameters
 * (listing the known ones), values of the wrong type, mutated hyperparameters with nothing to
 * sample from.
 *
 * Experiment ids: `<experiment_name>_<i>_<model>` with characters outside [A-Za-z0-9_.-] replaced
 * by `_`, plus `_run<k>`; i and k count from 0 (as experimentIndex and runIndex do). Experiment i
 * draws from its own generator, seeded from (seed, i).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError } from '../../errors.js';
import { buildArgv } from './command.js';
import { DEFAULT_TIMEOUT_S, typeName, typeWord, valueHasType, type ExperimentFile, type JobRef, type ModelEntry, type ModelsFile } from './config.js';
import { drawDistinct, mutationProblem, seededRandom } from './mutation.js';
import type { Hyperparameters, JobSpec, PlannedRun } from './types.js';

export interface PlanOptions {
  /** overrides the experiment file's seed (e.g. --seed) */
  seed?: number;
  /** the experiment file, for error messages */
  file?: string;
  /** the models file, for error messages */
  modelsFile?: string;
}

/** "[A-Za-z0-9_.-]" only: other characters become "_". */
export function sanitizeId(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** The generator of experiment `index` under `seed`: one stream per experiment. */
export function experimentRng(seed: number, index: number): () => number {
  return seededRandom(((seed >>> 0) ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

type Path = (string | number)[];

interface Resolved {
  repo: string;
  model: string;
  entry: ModelEntry;
  cwd: string;
}

function known(names: string[]): string {
  return names.length ? names.join(', ') : 'none';
}

/** What resolving an experiment's job references shares: the models file, and the problems found so far. */
interface PlanCtx {
  models: ModelsFile;
  modelsDir: string;
  /** " in <models file>" for messages, or '' */
  inModels: string;
  problems: string[];
}

/** A job's repository and model looked up in the models file, its hyperparameters and mutations checked (null when not found; problems recorded in ctx). */
function resolveRef(ctx: PlanCtx, ref: Omit<JobRef, 'mutate'> & { mutate?: string[] }, at: Path): Resolved | null {
    const { models, modelsDir, inModels } = ctx;
    const problem = (p: Path, msg: string) => ctx.problems.push(`${p.join('.')}: ${msg}`);
    const repo = Object.hasOwn(models, ref.repo) ? models[ref.repo] : undefined;
    if (!repo) {
      problem([...at, 'repo'], `unknown repository "${ref.repo}"${inModels} (known: ${known(Object.keys(models))})`);
      return null;
    }
    const entry = Object.hasOwn(repo.models, ref.model) ? repo.models[ref.model] : undefined;
    if (!entry) {
      problem([...at, 'model'], `repository ${ref.repo} has no model "${ref.model}"${inModels} (known: ${known(Object.keys(repo.models))})`);
      return null;
    }
    const specs = entry.hyperparameters;
    const names = known(Object.keys(specs));
    for (const [name, v] of Object.entries(ref.hyperparameters)) {
      const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
      if (!spec) problem([...at, 'hyperparameters', name], `model ${ref.model} of ${ref.repo} has no hyperparameter "${name}"${inModels} (known: ${names})`);
      else if (!valueHasType(v, spec.type)) problem([...at, 'hyperparameters', name], `${name} of ${ref.model} is ${typeName(spec.type)}: give ${typeWord(spec.type)} (got ${JSON.stringify(v)})`);
    }
    (ref.mutate ?? []).forEach((name, j) => {
      const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
      if (!spec) problem([...at, 'mutate', j], `model ${ref.model} of ${ref.repo} has no hyperparameter "${name}"${inModels} (known: ${names})`);
      else {
        const why = mutationProblem(name, spec);
        if (why) problem([...at, 'mutate', j], `${why} (model ${ref.model} of ${ref.repo})`);
      }
    });
    return { repo: ref.repo, model: ref.model, entry, cwd: path.resolve(modelsDir, repo.path) };
}

/** One job: its command line, hyperparameters, time limit, metrics and environment. */
function jobSpec(r: Resolved, hp: Hyperparameters): JobSpec {
  return {
    repo: r.repo,
    model: r.model,
    cwd: r.cwd,
    argv: buildArgv(r.entry, hp),
    hyperparameters: hp,
    timeoutS: r.entry.timeout_s ?? DEFAULT_TIMEOUT_S,
    metrics: { ...r.entry.metrics },
    env: { ...(r.entry.env ?? {}) },
  };
}

/** defaults < given < mutated, in the registry's order */
function fullHyperparameters(entry: ModelEntry, given: Hyperparameters, mutated: Hyperparameters): Hyperparameters {
  const out: Hyperparameters = {};
  for (const [name, spec] of Object.entries(entry.hyperparameters)) {
    out[name] = Object.hasOwn(mutated, name) ? mutated[name] : Object.hasOwn(given, name) ? given[name] : spec.default;
  }
  return out;
}

/** The foreground's mutated hyperparameters for each of the n runs of experiment i (n empty sets when it mutates nothing). */
function foregroundDraws(e: ExperimentFile['experiments'][number], i: number, fg: Resolved, n: number, seed: number, where: string, file: string | undefined): Hyperparameters[] {
  const fgRef = e.kind === 'parallel' ? e.foreground : e;
  if (!fgRef.mutate.length) return Array.from({ length: n }, () => ({}) as Hyperparameters);
  try {
    return drawDistinct(fg.entry.hyperparameters, fgRef.mutate, n, experimentRng(seed, i), fg.model);
  } catch (err) {
    const g = err as GpucoloError;
    throw new GpucoloError(`${where}: experiments.${i}${e.kind === 'parallel' ? '.foreground' : ''}.mutate: ${g.message}`, { code: g.code ?? 'EBADCONFIG', path: file, hint: g.hint });
  }
}

/** Every run of an experiment: its jobs resolved against the models file (every problem in one error), then runs_per_config runs of each experiment. */
export function planRuns(exp: ExperimentFile, models: ModelsFile, modelsDir: string, opts: PlanOptions = {}): PlannedRun[] {
  const ctx: PlanCtx = { models, modelsDir, inModels: opts.modelsFile ? ` in ${opts.modelsFile}` : '', problems: [] };
  const resolve = (ref: Omit<JobRef, 'mutate'> & { mutate?: string[] }, at: Path): Resolved | null => resolveRef(ctx, ref, at);
  const resolved = exp.experiments.map((e, i) =>
    e.kind === 'parallel'
      ? { fg: resolve(e.foreground, ['experiments', i, 'foreground']), bgs: e.backgrounds.map((b, k) => resolve(b, e.backgroundList ? ['experiments', i, 'background', k] : ['experiments', i, 'background'])) }
      : { fg: resolve(e, ['experiments', i]), bgs: [] },
  );
  const where = opts.file ?? `experiment ${exp.experiment_name}`;
  if (ctx.problems.length) throw new GpucoloError(`${where}: invalid experiment for its models file: ${ctx.problems.join('; ')}`, { code: 'EBADCONFIG', path: opts.file });

  const seed = opts.seed ?? exp.seed;
  const job = jobSpec;
  const full = fullHyperparameters;

  const runs: PlannedRun[] = [];
  exp.experiments.forEach((e, i) => {
    const { fg, bgs } = resolved[i];
    const fgRef = e.kind === 'parallel' ? e.foreground : e;
    const n = exp.runs_per_config;
    const draws = foregroundDraws(e, i, fg!, n, seed, where, opts.file);
    const base = sanitizeId(`${exp.experiment_name}_${i}_${fg!.model}`);
    for (let k = 0; k < n; k++) {
      runs.push({
        experimentIndex: i,
        runIndex: k,
        experimentId: `${base}_run${k}`,
        mode: exp.mode,
        foreground: job(fg!, full(fg!.entry, fgRef.hyperparameters, draws[k])),
        ...(() => {
          const backgrounds = e.kind === 'parallel' ? bgs.map((b, j) => job(b!, full(b!.entry, e.backgrounds[j].hyperparameters, {}))) : [];
          return { background: backgrounds[0] ?? null, backgrounds, backgroundList: e.kind === 'parallel' && e.backgroundList };
        })(),
        estimateSplit: exp.mode === 'parallel' && exp.estimate_split,
      });
    }
  });
  return runs;
}

/** Working directories of the runs that do not exist (or are not directories), each once: worth checking before hours of runs. */
export function missingRepoDirs(runs: PlannedRun[]): string[] {
  const dirs = new Set<string>();
  for (const r of runs) for (const j of [r.foreground, ...r.backgrounds]) dirs.add(j.cwd);
  return [...dirs].filter((d) => {
    try {
      return !fs.statSync(d).isDirectory();
    } catch {
      return true;
    }
  });
}
