import { GpucoloError } from '../errors.js';

/**
 * The code of a CliError that does not carry the one of the error it reports: by exit code
 * (2 bad usage, 130 interrupted, anything else the command failed). docs/errors.md lists them.
 */
export function cliCode(exitCode: number): string {
  if (exitCode === 2) return 'EBADUSAGE';
  if (exitCode === 130) return 'EINTERRUPTED';
  return 'EFAILED';
}

/**
 * An error the CLI turns into one line on stderr and an exit code (see README "Exit codes"). A
 * GpucoloError like every other (issue #20), with the exit code and `printed` on top; `code` is
 * the reported error's own when one is given (errno names, EBADCONFIG...), else cliCode(exitCode).
 */
export class CliError extends GpucoloError {
  constructor(
    message: string,
    readonly exitCode: number,
    /** the command already printed its result; only the message line remains */
    readonly printed = false,
    code?: string,
  ) {
    super(message, { code: code ?? cliCode(exitCode) });
    this.name = 'CliError';
  }
}
