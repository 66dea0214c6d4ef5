#!/usr/bin/env node
// Writes the JSON Schemas of the files users write (for editors) from the zod schemas, after
// `npm run build:ts`: schema/scenario.schema.json, experiment.schema.json, models.schema.json and
// pipeline.schema.json, and of tune.json (tune.schema.json: what `gpucolo tune` writes, for
// readers). `--check` exits 1 when a committed file differs from what the schemas give now (the
// tests run it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarioJsonSchema } from '../dist/scenario/json-schema.js';
import { experimentJsonSchema, modelsJsonSchema } from '../dist/runners/experiment/json-schema.js';
import { pipelineJsonSchema } from '../dist/runners/staged/json-schema.js';
import { tuneJsonSchema } from '../dist/tune/schema.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema');
const files = {
  'scenario.schema.json': scenarioJsonSchema(),
  'experiment.schema.json': experimentJsonSchema(),
  'models.schema.json': modelsJsonSchema(),
  'pipeline.schema.json': pipelineJsonSchema(),
  'tune.schema.json': tuneJsonSchema(),
};
const check = process.argv.includes('--check');
let stale = false;
for (const [name, schema] of Object.entries(files)) {
  const out = path.join(dir, name);
  const text = `${JSON.stringify(schema, null, 2)}\n`;
  if (check) {
    const have = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (have !== text) {
      console.error(`${out} is out of date: run npm run schema`);
      stale = true;
    }
  } else {
    fs.writeFileSync(out, text);
    console.log(`wrote ${out}`);
  }
}
if (stale) process.exit(1);
