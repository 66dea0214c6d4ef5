/** `gpucolo compare A B [--json]`: two scenario runs side by side (results.json or their directories). */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { errnoCode, oneLine } from '../errors.js';
import { isRefusedInput } from '../input-file.js';
import { compareResults, loadResults } from '../report/index.js';
import type { Results } from '../scenario/types.js';
import { VERSION } from '../version.js';
import { CliError } from './errors.js';
import { table } from './table.js';

/** A run directory stands for its results.json. */
function resultsPath(arg: string): string {
  try {
    if (fs.statSync(arg).isDirectory()) return path.join(arg, 'results.json');
  } catch {
    // missing: loadResults reports it with the path as given
  }
  return arg;
}

function load(arg: string): { file: string; results: Results } {
  const file = resultsPath(arg);
  try {
    return { file, results: loadResults(file) };
  } catch (err) {
    // a FIFO, a device, a file over the cap or a symlink loop: a usage error (input-file.ts)
    throw new CliError(oneLine(err), isRefusedInput(err) ? 2 : 1, false, errnoCode(err));
  }
}

export function compareCommand(): Command {
  return new Command('compare')
    .description('compare two scenario runs: P50/P99/P99.9/throughput per phase and task, B/A, and whether P99 moved beyond its confidence interval')
    .argument('<a>', 'results.json of run A, or its directory')
    .argument('<b>', 'results.json of run B, or its directory')
    .option('--json', 'print the comparison as JSON')
    .action((aArg: string, bArg: string, o: { json?: boolean }) => {
      const a = load(aArg);
      const b = load(bArg);
      const c = compareResults(a.results, b.results, { a: a.file, b: b.file });
      if (o.json) {
        const { rows, missing, statusChanges, success } = c;
        const out = { schema: 'gpucolo.compare/1', gpucoloVersion: VERSION, a: a.file, b: b.file, rows, missing, statusChanges, success };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      const lines = [...c.intro, ''];
      if (c.table.rows.length) lines.push(...table(c.table.header, c.table.rows), '');
      else lines.push('no phase and task in common', '');
      lines.push(...c.lines);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
