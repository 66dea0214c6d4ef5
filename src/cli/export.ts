/** `gpucolo export --perfetto <trace.jsonl | dump-dir> -o trace.json`: Chrome trace-event JSON for ui.perfetto.dev. */
import { Command } from 'commander';
import { errnoCode } from '../errors.js';
import { writePerfetto } from '../trace/index.js';
import { loadTraceForCli, writeFailure } from './analyze.js';
import { CliError } from './errors.js';

export function exportCommand(): Command {
  return new Command('export')
    .description('convert a trace (or a dump directory) for viewers: --perfetto writes Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing)')
    .requiredOption('--perfetto <input>', 'trace.jsonl, a dump directory, or - for stdin')
    .requiredOption('-o, --output <file>', 'where to write the JSON (atomically)')
    .action(async (o: { perfetto: string; output: string }) => {
      const trace = await loadTraceForCli(o.perfetto);
      let events: number;
      try {
        events = writePerfetto(trace, o.output).traceEvents.length;
      } catch (err) {
        throw new CliError(writeFailure(o.output, err), 1, false, errnoCode(err));
      }
      process.stdout.write(`wrote ${o.output}: ${events} trace events (open in https://ui.perfetto.dev)\n`);
    });
}
