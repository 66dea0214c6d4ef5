/**
 * A gpucolo command run in-process for tests: the exit code (CliError's, 2 for a usage error
 * commander throws), the error message and what went to stdout; stderr is swallowed. Optionally
 * with stdout/stdin taken for terminals (`gpucolo top`).
 */
import { Command } from 'commander';
import { vi } from 'vitest';
import { distributedCommand } from '../../src/cli/distributed.js';
import { CliError } from '../../src/cli/errors.js';

export interface InProcessResult {
  code: number;
  message?: string;
  stdout: string;
}

export async function cliInProcess(command: Command, args: string[], tty: { stdout?: boolean; stdin?: boolean } = {}): Promise<InProcessResult> {
  const program = new Command('gpucolo').exitOverride();
  program.addCommand(command);
  const override = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeErr: () => {} });
    c.commands.forEach(override);
  };
  program.commands.forEach(override);
  let stdout = '';
  const spyOut = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const saved = { out: process.stdout.isTTY, in: process.stdin.isTTY };
  process.stdout.isTTY = tty.stdout ?? saved.out;
  process.stdin.isTTY = tty.stdin ?? saved.in;
  try {
    await program.parseAsync(args, { from: 'user' });
    return { code: 0, stdout };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, message: err.message, stdout };
    if ((err as { exitCode?: number }).exitCode !== undefined) return { code: 2, message: (err as Error).message, stdout };
    throw err;
  } finally {
    spyOut.mockRestore();
    spyErr.mockRestore();
    process.stdout.isTTY = saved.out;
    process.stdin.isTTY = saved.in;
  }
}

/** `gpucolo distributed ARGS` in this process. */
export const distributedCli = (args: string[]): Promise<InProcessResult> => cliInProcess(distributedCommand(), args);
