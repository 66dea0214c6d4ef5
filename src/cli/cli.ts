#!/usr/bin/env node
/**
 * gpucolo command line. Thin: parses arguments, calls the library, prints.
 * Exit codes: 0 ok; 1 the command ran but could not do its job (nothing readable, I/O error);
 * 2 bad usage (unknown option, bad value).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { oneLine } from '../errors.js';
import { CliError } from './errors.js';
import { doctorCommand } from './doctor.js';
import { queuesCommand } from './queues.js';
import { analyzeCommand } from './analyze.js';
import { exportCommand } from './export.js';
import { traceCommand } from './trace.js';
import { studyCommand } from './study.js';
import { probeCommand } from './probe.js';
import { runCommand } from './run.js';
import { compareCommand } from './compare.js';
import { experimentCommand } from './experiment.js';
import { cleanupCommand } from './cleanup.js';
import { distributedCommand } from './distributed.js';
import { stagedCommand } from './staged.js';

export function buildProgram(): Command {
  const program = new Command('gpucolo')
    .description('see and control what AI models sharing a GPU do: KFD queues, priorities, co-location')
    .version(VERSION)
    .showHelpAfterError('(run gpucolo --help for usage)')
    .exitOverride()
    // options after a trace command (gpucolo trace -- cmd --flag) belong to that command
    .enablePositionalOptions();
  program.addCommand(doctorCommand());
  program.addCommand(queuesCommand());
  program.addCommand(analyzeCommand());
  program.addCommand(exportCommand());
  program.addCommand(traceCommand());
  program.addCommand(studyCommand());
  program.addCommand(probeCommand());
  program.addCommand(runCommand());
  program.addCommand(compareCommand());
  program.addCommand(experimentCommand());
  program.addCommand(cleanupCommand());
  program.addCommand(distributedCommand());
  program.addCommand(stagedCommand());
  // every (sub)command reports usage errors through main() instead of exiting on its own
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  program.commands.forEach(override);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version exit through here with code 0; commander already printed
      if (err.exitCode === 0) return 0;
      return 2;
    }
    if (err instanceof CliError) {
      process.stderr.write(`gpucolo: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`gpucolo: error: ${oneLine(err)}\n`);
    if (process.env.GPUCOLO_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// stdout closed early (gpucolo queues | head): not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
