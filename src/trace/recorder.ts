/**
 * Writes trace records as JSON Lines, one complete line per write, so a killed tracer leaves a
 * valid prefix. A write that fails (disk full, closed pipe, I/O error) is remembered with its
 * errno: the tracer stops cleanly and says why, instead of crashing mid-run.
 *
 * Never through a symlink (the rule of src/write.ts): traces are taken as root, and a link
 * at the --out name is refused, not followed; only links to this process's own descriptors
 * (/dev/stdout, /dev/fd/N) and to a FIFO are written through.
 */
import fs from 'node:fs';
import path from 'node:path';
import { OutputSymlinkError, planOutput, writeAllFd } from '../write.js';
import { GpucoloError } from '../errors.js';
import type { TraceProcess, TraceRecord, TraceSample } from './schema.js';

/** A trace that cannot be opened or written: a GpucoloError whose code is the errno (ELOOP for a symlink at the name). */
export class TraceWriteError extends GpucoloError {
  constructor(message: string, code: string, path?: string) {
    super(message, { code, path });
    this.name = 'TraceWriteError';
  }
}

/** `file` with `-n` before its extension for n >= 2: trace.jsonl, trace-2.jsonl, trace-3.jsonl... */
export function numberedName(file: string, n: number): string {
  if (n <= 1) return file;
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}-${n}${ext}`;
}

export interface TraceRecorderOptions {
  /**
   * `out` is a generated name, not the user's: never open an existing file; take the first free
   * one of out, out-2, out-3... (created exclusively, so two tracers never share a file).
   */
  unique?: boolean;
  /**
   * Records written in one turn of the event loop (the samples of a batch the sampler handed
   * over together, their events and markers) go out in one write() once the turn is over
   * (setImmediate), not one each: a write and a Buffer per record was a tenth of the JS thread's
   * time per sample. Each line is still whole; close() writes what is pending first. A write that
   * fails then fails at that flush: `error` is set and onError called, once.
   */
  coalesce?: boolean;
  onError?: (err: TraceWriteError) => void;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

export class TraceRecorder {
  private fd: number;
  private readonly ownsFd: boolean;
  private failed: TraceWriteError | null = null;
  /** the file existed: it is truncated by the first write only, so a run that fails before keeps it */
  private truncatePending = false;
  /** the file was created here: removed again when nothing was written to it */
  private created = false;
  /** the file written: `out`, or with `unique` the name taken */
  readonly out: string;
  records = 0;
  bytes = 0;
  private readonly coalesce: boolean;
  private readonly onError: ((err: TraceWriteError) => void) | undefined;
  /** coalesce: lines written in this turn of the event loop, and the flush that will write them */
  private pending: string[] = [];
  private flushing: NodeJS.Immediate | null = null;

  /** `out`: a file path (created, or replaced by the first write) or '-' for stdout. */
  constructor(out: string, opts: TraceRecorderOptions = {}) {
    this.out = out;
    this.coalesce = opts.coalesce ?? false;
    this.onError = opts.onError;
    if (out === '-') {
      this.fd = 1;
      this.ownsFd = false;
      return;
    }
    let fd: number | undefined;
    let owns = true;
    try {
      for (let n = 1; fd === undefined; n++) {
        const name = opts.unique ? numberedName(out, n) : out;
        try {
          // O_EXCL: never follows a link at the name, even a dangling one
          fd = fs.openSync(name, O_WRONLY | O_CREAT | O_EXCL, 0o666);
          this.out = name;
          this.created = true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || (opts.unique && n >= 1000)) throw err;
          if (opts.unique) continue;
          // there is something at the name: a symlink is refused (OutputSymlinkError) unless it is
          // one of our own descriptors (/dev/stdout) or a FIFO; a device or FIFO is written in place
          const plan = planOutput(name);
          if (plan.kind === 'fd') {
            fd = plan.fd;
            owns = !plan.borrowed;
            break;
          }
          try {
            // a regular file: replaced by the first record. O_NOFOLLOW: a link swapped in since
            // the check is refused (ELOOP, then the check again), never written through
            fd = fs.openSync(name, O_WRONLY | O_NOFOLLOW);
            this.truncatePending = true;
          } catch (err2) {
            const code = (err2 as NodeJS.ErrnoException).code;
            if ((code !== 'ENOENT' && code !== 'ELOOP') || n >= 10) throw err2;
          }
        }
      }
    } catch (err) {
      if (err instanceof OutputSymlinkError) throw new TraceWriteError(err.message, err.code, err.path);
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new TraceWriteError(`cannot open ${out} for writing (${code})`, code, out);
    }
    this.fd = fd!;
    this.ownsFd = owns;
  }

  /** JSON of the last sample's processes (by object): a sample that repeats them reuses the text. */
  private lastProcesses: { processes: TraceSample['processes']; json: string } | null = null;
  /** JSON of each process object seen (a sample assembled per process repeats most of them) */
  private processJson = new WeakMap<TraceProcess, string>();

  /**
   * JSON.stringify(s), byte for byte, for a sample whose last keys are processes, unmatchedHqds and
   * issues (as SampleAssembler makes them). Most samples repeat the last one's processes (the
   * same object): their text, the bulk of the line with many queues, is not built again.
   */
  private sampleJson(s: TraceSample): string {
    const { processes, unmatchedHqds, issues, ...head } = s;
    let p = this.lastProcesses;
    if (p?.processes !== processes) p = this.lastProcesses = { processes, json: `[${processes.map((x) => this.jsonOf(x)).join(',')}]` };
    const h = JSON.stringify(head);
    return `${h.slice(0, -1)}${h.length > 2 ? ',' : ''}"processes":${p.json},"unmatchedHqds":${JSON.stringify(unmatchedHqds)},"issues":${JSON.stringify(issues)}}`;
  }

  private jsonOf(p: TraceProcess): string {
    let j = this.processJson.get(p);
    if (j === undefined) this.processJson.set(p, (j = JSON.stringify(p)));
    return j;
  }

  /** The first write error, if any; later writes are skipped. */
  get error(): TraceWriteError | null {
    return this.failed;
  }

  /** Writes one record (with `coalesce`: queues it for this turn's write); false once a write failed. */
  write(rec: TraceRecord): boolean {
    if (this.failed) return false;
    const line = `${rec.kind === 'sample' ? this.sampleJson(rec) : JSON.stringify(rec)}\n`;
    if (!this.coalesce) return this.writeLines(Buffer.from(line), 1);
    this.pending.push(line);
    this.flushing ??= setImmediate(() => this.flush());
    return true;
  }

  /** Writes the pending lines (coalesce) now. */
  flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
    if (this.pending.length === 0 || this.failed) return;
    const lines = this.pending;
    this.pending = [];
    if (!this.writeLines(Buffer.from(lines.join('')), lines.length)) this.onError?.(this.failed!);
  }

  private writeLines(buf: Buffer, lines: number): boolean {
    try {
      if (this.truncatePending) {
        this.truncatePending = false;
        // an existing file is replaced only now that there is something to put in it; devices
        // and FIFOs cannot be truncated and need not be
        if (fs.fstatSync(this.fd).isFile()) fs.ftruncateSync(this.fd, 0);
      }
      // stdout may be a non-blocking pipe: writeAllFd waits for the reader instead of failing
      writeAllFd(this.fd, buf);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      const where = this.out === '-' ? 'stdout' : this.out;
      const why = code === 'ENOSPC' ? 'disk full' : code === 'EPIPE' ? 'the reader closed the pipe' : code;
      this.failed = new TraceWriteError(`cannot write the trace to ${where}: ${why} (${code})`, code, this.out === '-' ? undefined : this.out);
      return false;
    }
    this.records += lines;
    this.bytes += buf.length;
    return true;
  }

  close(): void {
    this.flush();
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
      if (this.created && this.records === 0) {
        try {
          fs.rmSync(this.out, { force: true });
        } catch {
          // an empty file left behind is untidy, not wrong
        }
      }
    }
  }
}
