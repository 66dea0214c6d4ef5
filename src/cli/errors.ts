/** An error the CLI turns into one line on stderr and an exit code (see README "Exit codes"). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** the command already printed its result; only the message line remains */
    readonly printed = false,
  ) {
    super(message);
  }
}
