#!/usr/bin/env node
// Writes schema/pipeline.schema.json (JSON Schema of staged pipeline files, for editors) from the
// zod schema in src/runners/staged/schema.ts (run after `npm run build:ts`). `--check` exits 1
// when the committed file differs from what the schema gives now (the tests run it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipelineJsonSchema } from '../dist/runners/staged/json-schema.js';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'pipeline.schema.json');
const text = `${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`;
if (process.argv.includes('--check')) {
  const have = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (have !== text) {
    console.error(`${out} is out of date: run npm run schema`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
