/** The JSON Schema of staged pipeline files (what a user writes: the zod input side), for editors. */
import { z } from 'zod';
import { pipelineSchema, PIPELINE_SCHEMA } from './schema.js';

export function pipelineJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(pipelineSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...js,
    $id: 'https://github.com/gpucolo/gpucolo/schema/pipeline.schema.json',
    title: `gpucolo staged pipeline (${PIPELINE_SCHEMA})`,
    description:
      'A staged multi-model pipeline: items grouped by category pass through ordered stages, each stage a model loaded on the GPU (class_path or command); budgets bound GPU memory and the intermediate outputs kept in memory. Paths are relative to this file.',
  };
}
