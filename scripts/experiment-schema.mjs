#!/usr/bin/env node
// Writes schema/experiment.schema.json and schema/models.schema.json (JSON Schemas of training
// experiment files and models files, for editors) from the zod schemas in
// src/runners/experiment/config.ts (run after `npm run build:ts`). `--check` exits 1 when a
// committed file differs from what the schemas give now (the tests run it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { experimentJsonSchema, modelsJsonSchema } from '../dist/runners/experiment/json-schema.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema');
const files = [
  [path.join(dir, 'experiment.schema.json'), experimentJsonSchema()],
  [path.join(dir, 'models.schema.json'), modelsJsonSchema()],
];
const check = process.argv.includes('--check');
let stale = false;
for (const [out, schema] of files) {
  const text = `${JSON.stringify(schema, null, 2)}\n`;
  if (check) {
    const have = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (have !== text) {
      console.error(`${out} is out of date: run node scripts/experiment-schema.mjs`);
      stale = true;
    }
  } else {
    fs.writeFileSync(out, text);
    console.log(`wrote ${out}`);
  }
}
if (stale) process.exit(1);
