/**
 * stdout for every command: a write that fails (disk full, a closed pipe, an I/O error) is not
 * lost. The first error is kept; once the command is done, main() waits for stdout to flush and
 * turns a failure into one line on stderr and exit status 1 (README "Exit codes"), for every
 * command alike: `gpucolo queues > /dev/full` and `gpucolo analyze t.jsonl | head -c 1` say that
 * their output did not arrive instead of exiting 0. (`trace --out -` writes the trace to fd 1
 * itself and stops at the first failed write; see src/trace/recorder.ts.)
 */
import { errnoCode } from '../errors.js';

let failure: NodeJS.ErrnoException | null = null;
let watched: NodeJS.WritableStream | null = null;

/** Starts keeping stdout's first write error (an 'error' listener: nothing crashes or exits on it). */
export function watchStdout(stream: NodeJS.WritableStream = process.stdout): void {
  if (watched === stream) return;
  watched = stream;
  failure = null;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    failure ??= err;
  });
}

/** The first failed write to stdout, if any so far. */
export function stdoutFailure(): NodeJS.ErrnoException | null {
  return failure;
}

/** Notes a failure seen elsewhere (a write callback, a direct write to fd 1). */
export function noteStdoutFailure(err: NodeJS.ErrnoException): void {
  failure ??= err;
}

/**
 * Waits until everything written to stdout so far has been handed to the kernel (or has failed),
 * then returns the first failure, or null. On Linux writes to files, pipes and terminals are
 * synchronous, but their errors arrive a tick later; a stream with writes still queued is waited for.
 */
export async function flushStdout(stream: NodeJS.WritableStream & { writableLength?: number; destroyed?: boolean } = process.stdout): Promise<NodeJS.ErrnoException | null> {
  if (!failure && !stream.destroyed && (stream.writableLength ?? 0) > 0) {
    await new Promise<void>((resolve) => {
      try {
        // the callback runs once every earlier write is done, with the error of a failed one (an
        // empty write only where something is queued: /dev/full refuses even zero bytes)
        stream.write('', (err?: Error | null) => {
          if (err) failure ??= err as NodeJS.ErrnoException;
          resolve();
        });
      } catch (err) {
        failure ??= err as NodeJS.ErrnoException;
        resolve();
      }
    });
  }
  // the 'error' event of a failed write is emitted after its callback
  await new Promise<void>((r) => setImmediate(r));
  return failure;
}

/** The one line for a failed write to stdout: "cannot write to stdout: the reader closed the pipe (EPIPE)". */
export function stdoutFailureText(err: NodeJS.ErrnoException): string {
  const code = errnoCode(err) ?? 'EIO';
  const why =
    code === 'EPIPE' ? 'the reader closed the pipe' : code === 'ENOSPC' ? 'no space left on device' : code === 'EIO' ? 'I/O error' : code === 'ERR_STREAM_DESTROYED' ? 'stdout was closed' : code === 'EBADF' ? 'stdout is not open' : code;
  return `cannot write to stdout: ${why} (${code})`;
}
