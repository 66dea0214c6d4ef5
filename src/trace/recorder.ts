/**
 * Writes trace records as JSON Lines, one complete line per write, so a killed tracer leaves a
 * valid prefix. A write that fails (disk full, closed pipe, I/O error) is remembered with its
 * errno: the tracer stops cleanly and says why, instead of crashing mid-run.
 */
import fs from 'node:fs';
import type { TraceRecord } from './schema.js';

export class TraceWriteError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'TraceWriteError';
  }
}

export class TraceRecorder {
  private fd: number;
  private readonly ownsFd: boolean;
  private failed: TraceWriteError | null = null;
  records = 0;
  bytes = 0;

  /** `out`: a file path (created or truncated) or '-' for stdout. */
  constructor(readonly out: string) {
    if (out === '-') {
      this.fd = 1;
      this.ownsFd = false;
    } else {
      try {
        this.fd = fs.openSync(out, 'w');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        throw new TraceWriteError(`cannot open ${out} for writing (${code})`, code);
      }
      this.ownsFd = true;
    }
  }

  /** The first write error, if any; later writes are skipped. */
  get error(): TraceWriteError | null {
    return this.failed;
  }

  write(rec: TraceRecord): boolean {
    if (this.failed) return false;
    const buf = Buffer.from(`${JSON.stringify(rec)}\n`);
    try {
      let off = 0;
      while (off < buf.length) {
        try {
          off += fs.writeSync(this.fd, buf, off, buf.length - off);
        } catch (err) {
          // stdout may be a non-blocking pipe: wait for the reader instead of failing
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        }
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      const where = this.out === '-' ? 'stdout' : this.out;
      const why = code === 'ENOSPC' ? 'disk full' : code === 'EPIPE' ? 'the reader closed the pipe' : code;
      this.failed = new TraceWriteError(`cannot write the trace to ${where}: ${why} (${code})`, code);
      return false;
    }
    this.records++;
    this.bytes += buf.length;
    return true;
  }

  close(): void {
    if (this.ownsFd) {
      try {
        fs.fsyncSync(this.fd);
      } catch {
        // fsync is best effort (pipes, some file systems)
      }
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
  }
}
