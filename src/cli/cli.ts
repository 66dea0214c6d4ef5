#!/usr/bin/env node
/**
 * gpucolo command line. Thin: parses arguments, calls the library, prints.
 * Exit codes: 0 ok; 1 the command ran but could not do its job (nothing readable, I/O error,
 * stdout could not be written: disk full, closed pipe); 2 bad usage (unknown option, bad value).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { oneLine } from '../errors.js';
import { CliError } from './errors.js';
import { flushStdout, stdoutFailureText, watchStdout } from './stdout.js';
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
import { tuneCommand } from './tune.js';
import { topCommand } from './top.js';

export function buildProgram(): Command {
  const program = new Command('gpucolo')
    .description('see and control what AI models sharing a GPU do: KFD queues, priorities, co-location')
    .version(VERSION)
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
  program.addCommand(tuneCommand());
  program.addCommand(topCommand());
  // every (sub)command reports usage errors through main() instead of exiting on its own, and
  // prints them like every other gpucolo error (addCommand does not pass settings down)
  const override = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ outputError: usageError(c) });
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

/** `gpucolo distributed run` for that command. */
function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/**
 * commander's own usage errors ("error: unknown option '--bogus'", with a "(Did you mean ...)"
 * line at times) as one line with the gpucolo: prefix and where to find the usage.
 */
function usageError(c: Command): (str: string, write: (str: string) => void) => void {
  return (str, write) => {
    const msg = str
      .replace(/^error:\s*/, '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' ');
    write(`gpucolo: ${msg} (run ${commandPath(c)} --help for usage)\n`);
  };
}

export async function main(argv: string[]): Promise<number> {
  watchStdout();
  const program = buildProgram();
  let code: number;
  let message: string | null = null;
  try {
    await program.parseAsync(argv, { from: 'user' });
    code = 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version exit through here with code 0; commander already printed
      code = err.exitCode === 0 ? 0 : 2;
    } else if (err instanceof CliError) {
      message = `gpucolo: ${err.message}\n`;
      code = err.exitCode;
    } else {
      message = `gpucolo: error: ${oneLine(err)}\n`;
      if (process.env.GPUCOLO_DEBUG) message += `${(err as Error).stack}\n`;
      code = 1;
    }
  }
  // output that did not arrive (disk full, closed pipe) fails every command the same way: one
  // line, exit 1 (a command's own failure is kept on that line, with its status)
  const failed = await flushStdout();
  if (failed) {
    const own = message ? `; ${message.split('\n')[0].replace(/^gpucolo: /, '')}` : '';
    process.stderr.write(`gpucolo: ${stdoutFailureText(failed)}${own}\n`);
    return code === 0 ? 1 : code;
  }
  if (message) process.stderr.write(message);
  return code;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
