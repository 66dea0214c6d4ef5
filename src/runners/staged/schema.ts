/**
 * Staged pipeline files (YAML or JSON): items grouped by category pass through ordered stages,
 * each stage a model that must be loaded on the GPU. Every problem is one GpucoloError (code
 * EBADCONFIG, or the file's errno) whose message names the file and each path:
 * "stages.1.inputs.0: ...".
 */
import path from 'node:path';
import { parseConfigText, readConfigText, zodIssuesText } from '../../config-text.js';
import { z } from 'zod';
import { GpucoloError } from '../../errors.js';

export const PIPELINE_SCHEMA = 'gpucolo.pipeline/1';

const positive = z.number().positive();

const modelSchema = z
  .object({
    class_path: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'expected "package.module.ClassName"')
      .optional()
      .describe('Python class to instantiate in the model worker: "package.module.ClassName".'),
    params: z.record(z.string(), z.unknown()).optional().describe('Keyword arguments for the class.'),
    command: z.array(z.string().min(1)).min(1).optional().describe('argv of a program that serves the model (no shell).'),
  })
  .strict()
  .superRefine((m, ctx) => {
    const n = (m.class_path !== undefined ? 1 : 0) + (m.command !== undefined ? 1 : 0);
    if (n !== 1) ctx.addIssue({ code: 'custom', message: 'exactly one of class_path or command is required' });
    if (m.params !== undefined && m.command !== undefined) ctx.addIssue({ code: 'custom', path: ['params'], message: 'params go with class_path, not command' });
  });

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Where a call argument comes from: "item", "item.<field>", "<stage>", "<stage>.<field>", or {value: literal}. */
const refString = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected "item.<field>", "<stage>" or "<stage>.<field>"');
const argSource = z.union([
  refString,
  z.object({ value: z.unknown() }).strict(),
  z
    .object({ from: refString, as: z.literal('image').describe('decode a base64 string (the notes\' original_image_b64) or open an image file path into a PIL image') })
    .strict(),
]);

export const callSchema = z
  .object({
    method: z.string().regex(IDENT, 'expected a Python method name').describe("The model's own method to call per item (e.g. edit_image), instead of process(item, inputs)."),
    args: z
      .union([z.array(argSource), z.record(z.string().regex(IDENT, 'expected a Python argument name'), argSource)])
      .default([])
      .describe('Arguments: a list (positional) or a mapping argument name -> source; a source is "item.<field>", "item", "<stage>.<field>", "<stage>" (one of the inputs), {value: literal} or {from: source, as: image} (a base64 string or image path opened as a PIL image).'),
    output: z.string().min(1).optional().describe('Output field for a return value that is not a mapping (default: the method name).'),
  })
  .strict();

export const stageSchema = z
  .object({
    name: z.string().min(1).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    model: modelSchema,
    memory_mb: positive.optional().describe('Declared GPU memory of the model (MB); else measured at its first load (planned as the whole GPU budget until then).'),
    inputs: z.array(z.string().min(1)).optional().describe('Names of earlier stages whose outputs this stage reads; default: the previous stage (none for the first).'),
    call: callSchema.optional().describe("Call the model's own method (e.g. edit_image(image, instruction)) with mapped arguments; without it the model's process(item, inputs) is called."),
    image_inputs: z.enum(['image', 'path']).default('image').describe('Image inputs (PNG files an earlier stage emitted) are handed over as a PIL image (when PIL is importable; else the path) or as the absolute path.'),
  })
  .strict();

export const pipelineSchema = z
  .object({
    name: z.string().min(1),
    items: z
      .object({
        source: z.string().min(1).describe('Path relative to this file: .json (array of records, or {category: [records]}), .jsonl, or a directory of .json/.jsonl files.'),
        categoryField: z.string().min(1).default('category'),
        idField: z.string().min(1).default('id'),
        categories: z.array(z.string().min(1)).min(1).optional().describe('Categories to run, in this order (default: all, in order of appearance).'),
      })
      .strict(),
    stages: z.array(stageSchema).min(1),
    budgets: z
      .object({
        gpu_memory_mb: positive,
        cpu_memory_mb: positive.describe('Intermediate outputs kept in memory; beyond this they spill to disk.'),
        output_dir: z
          .string()
          .min(1)
          .optional()
          .describe('Relative to this file. Default: gpucolo-staged/<name> in the current directory (never next to a pipeline file that may sit inside node_modules).'),
        save_intermediate: z.boolean().default(false),
      })
      .strict(),
    on_item_error: z.enum(['skip', 'stop']).default('skip'),
    strategy: z
      .enum(['per-item', 'staged', 'auto'])
      .optional()
      .describe('per-item: each item through all stages (the notes\' single-stage order); staged: each category stage by stage, few swaps (default); auto: staged when it swaps less, else per-item. --strategy overrides.'),
    python: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Map<string, number>();
    p.stages.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `duplicate stage name "${s.name}" (also stages.${seen.get(s.name)})` });
      else seen.set(s.name, i);
    });
    p.stages.forEach((s, i) => {
      (s.inputs ?? []).forEach((inp, j) => {
        const at = seen.get(inp);
        if (at === undefined) ctx.addIssue({ code: 'custom', path: ['stages', i, 'inputs', j], message: `no stage named "${inp}"` });
        else if (at >= i) ctx.addIssue({ code: 'custom', path: ['stages', i, 'inputs', j], message: `"${inp}" is not an earlier stage` });
      });
    });
    p.stages.forEach((s, i) => {
      if (!s.call) return;
      const ins = stageInputs(p, i);
      const srcs = Array.isArray(s.call.args) ? s.call.args.map((v, j) => [String(j), v] as const) : Object.entries(s.call.args);
      for (const [k, arg] of srcs) {
        const src = typeof arg === 'string' ? arg : 'from' in arg ? arg.from : undefined;
        if (src === undefined) continue;
        const head = src.split('.')[0];
        if (head !== 'item' && !ins.includes(head)) {
          ctx.addIssue({ code: 'custom', path: ['stages', i, 'call', 'args', k], message: `"${src}": "${head}" is neither item nor an input of this stage (inputs: ${ins.join(', ') || 'none'})` });
        }
        if (src.split('.').length > 2) ctx.addIssue({ code: 'custom', path: ['stages', i, 'call', 'args', k], message: `"${src}": one field only ("<source>.<field>")` });
      }
    });
    const cats = p.items.categories;
    if (cats) {
      const dup = cats.findIndex((c, i) => cats.indexOf(c) !== i);
      if (dup >= 0) ctx.addIssue({ code: 'custom', path: ['items', 'categories', dup], message: `duplicate category "${cats[dup]}"` });
    }
  });

export type Pipeline = z.output<typeof pipelineSchema>;
export type PipelineInput = z.input<typeof pipelineSchema>;
export type StageSpec = z.output<typeof stageSchema>;

/** A stage's inputs with the default applied: the previous stage, none for the first. */
export function stageInputs(p: Pipeline, i: number): string[] {
  return p.stages[i].inputs ?? (i === 0 ? [] : [p.stages[i - 1].name]);
}

/** Parses and validates pipeline text; `file` names it in errors. */
export function parsePipeline(text: string, file: string): Pipeline {
  const data = parseConfigText(text, file, { code: 'EBADCONFIG', shape: 'a pipeline is a mapping with name, items, stages and budgets' });
  const parsed = pipelineSchema.safeParse(data);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid pipeline: ${zodIssuesText(parsed.error)}`, { code: 'EBADCONFIG', path: file });
  return parsed.data;
}

/** Reads a pipeline file; `dir` is the directory relative paths (items.source, output_dir) resolve against. */
export function loadPipeline(file: string): { pipeline: Pipeline; file: string; dir: string } {
  const text = readConfigText(file, 'pipeline file');
  const abs = path.resolve(file);
  return { pipeline: parsePipeline(text, file), file: abs, dir: path.dirname(abs) };
}
