#!/usr/bin/env node
// Marks the package's bin (dist/cli/cli.js, from package.json "bin") executable after tsc wrote
// it: tsc writes 0644, and `npx gpucolo` in a checkout runs the file itself, which then fails
// with "Permission denied". Run by `prepare` and `build:ts`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const rel of Object.values(pkg.bin ?? {})) {
  const file = path.join(root, rel);
  try {
    fs.chmodSync(file, fs.statSync(file).mode | 0o111);
  } catch (err) {
    console.error(`bin-executable: cannot make ${rel} executable: ${err.code ?? err.message}`);
    process.exit(1);
  }
}
