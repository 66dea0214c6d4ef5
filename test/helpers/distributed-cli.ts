/**
 * `gpucolo distributed ...` run in-process for tests: the exit code (CliError's, 2 for a usage
 * error commander throws), the error message and what went to stdout; stderr is swallowed.
 */
import { Command } from 'commander';
import { vi } from 'vitest';
import { distributedCommand } from '../../src/cli/distributed.js';
import { CliError } from '../../src/cli/errors.js';

export async function distributedCli(args: string[]): Promise<{ code: number; message?: string; stdout: string }> {
  const program = new Command('gpucolo').exitOverride();
  program.addCommand(distributedCommand());
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  program.commands.forEach(override);
  let stdout = '';
  const spyOut = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
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
  }
}
