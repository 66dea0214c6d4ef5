/** The JSON Schemas of experiment and models files (what a user writes: the zod input side), for editors. */
import { z } from 'zod';
import { experimentFileSchema, modelsFileSchema } from './config.js';

export function experimentJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(experimentFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...js,
    $id: 'https://github.com/gpucolo/gpucolo/schema/experiment.schema.json',
    title: 'gpucolo training experiment',
    description:
      'Training experiments run with the commands of a models file: mode default (the given hyperparameters), mutation (hyperparameters listed in mutate sampled per run, seeded, no repeated configuration) or parallel (a foreground training next to a looping background training, or several: background may be a list). Each experiment runs runs_per_config times. experiment_name is optional (files of the design notes’ mutation.py have none): the file name without its extension names the experiment then.',
  };
}

export function modelsJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(modelsFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...js,
    // the loader ignores a top-level "$schema" key: let editors accept it too
    properties: { $schema: { type: 'string' } },
    $id: 'https://github.com/gpucolo/gpucolo/schema/models.schema.json',
    title: 'gpucolo models file (training registry)',
    description:
      'Repository name -> { path (relative to this file: the working directory of its commands), models }. Per model: command (an argv array, not a shell string), hyperparameters (flag, type int|float|str|bool, default, range [lo, hi] or choices, distribution uniform|log-uniform), metrics (name -> regex whose first capture group is the value; the last match in the log wins), timeout_s, env.',
  };
}
