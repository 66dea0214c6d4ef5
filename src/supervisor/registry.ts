/**
 * The run registry: every child a supervisor started, with its pid/pgid and how it ended. Kept in
 * memory always; mirrored to a JSON file when a path is given, rewritten atomically (temp file +
 * rename) on every change, so a reader - or a later gpucolo reaping what a crashed run
 * left behind - sees either the previous or the next complete document, never a torn one.
 *
 * Writes are synchronous on purpose: the registry must also be written from process 'exit'
 * handlers, where nothing asynchronous runs, and changes are rare (a start, an exit).
 */
import { GpucoloError } from '../errors.js';
import { writeJsonAtomic } from '../write.js';
import { VERSION } from '../version.js';
import { readInputText } from '../input-file.js';
import { readStat } from './proctree.js';

export const RUNS_SCHEMA = 'gpucolo.runs/1';

/**
 * How a child's leader ended. 'stopped': we asked it to stop and the group ended within the
 * grace; 'killed': SIGKILL was needed (after the grace, or on escalation); 'signaled': a signal
 * nobody in this supervisor sent for a stop (including kill() calls); 'spawn-failed': never ran.
 */
export type ExitReason = 'exited' | 'signaled' | 'stopped' | 'killed' | 'spawn-failed';
export type ChildState = 'running' | ExitReason;

export interface ChildRecord {
  /** 1, 2, ... in start order within this supervisor */
  id: number;
  name: string;
  /** null when the spawn failed */
  pid: number | null;
  /** the child's own process group (= pid: it is started with setsid) */
  pgid: number | null;
  argv: string[];
  cwd: string;
  startedAt: string;
  /** process.hrtime.bigint() at start, as a decimal string (monotonic; same clock as traces) */
  startedNs: string;
  /** /proc/<pid>/stat starttime (clock ticks after boot); null when unknown */
  startTicks: number | null;
  state: ChildState;
  code: number | null;
  signal: string | null;
  endedAt?: string;
  durationNs?: number;
  error?: string;
  /** false once the process group(s) are known to have no live member left */
  groupAlive: boolean;
  /** process groups the child's descendants made (setsid launchers), stopped with its own */
  otherGroups: number[];
}

export interface RunRegistryDoc {
  schema: typeof RUNS_SCHEMA;
  gpucoloVersion: string;
  runId: string;
  gpucoloPid: number;
  /** /proc/<gpucoloPid>/stat starttime: tells a live gpucolo from a later process with its pid */
  gpucoloStartTicks?: number | null;
  startedAt: string;
  updatedAt: string;
  children: ChildRecord[];
}

export interface RunRegistryOptions {
  runId: string;
  /** JSON file to mirror the registry to; no file when unset */
  file?: string;
  /** called when the file cannot be written (the in-memory registry stays correct) */
  onWriteError?: (err: Error) => void;
}

/**
 * Registry files are written atomically (temp file + rename, src/write.ts) without fsync:
 * the registry guards against gpucolo crashing, not the machine (after a machine crash no child
 * is left to reap). Results are never written through this: they go through src/write.ts
 * with fsync.
 */
export function writeRegistryFile(file: string, value: unknown): void {
  writeJsonAtomic(file, value, { fsync: false });
}

/** A GpucoloError with code EREGISTRYFORMAT and the file as `path`, thrown by readRunRegistry for files that are not run registries. */
export class RegistryFormatError extends GpucoloError {
  declare readonly code: 'EREGISTRYFORMAT';
  declare readonly path: string;
  constructor(message: string, path: string) {
    super(message, { code: 'EREGISTRYFORMAT', path });
    this.name = 'RegistryFormatError';
  }
}

/** Reads a registry file (for tools and for reaping what an earlier run left). */
export function readRunRegistry(file: string): RunRegistryDoc {
  // only a regular file of at most 16 MiB (input-file.ts): a FIFO given as --registry is refused, not waited on
  const doc = JSON.parse(readInputText(file, { kind: 'registry' })) as Partial<RunRegistryDoc>;
  if (doc?.schema !== RUNS_SCHEMA || !Array.isArray(doc.children)) {
    throw new RegistryFormatError(`${file}: not a ${RUNS_SCHEMA} run registry`, file);
  }
  return doc as RunRegistryDoc;
}

/** gpucolo's own start time in clock ticks after boot (null without /proc). */
const OWN_START_TICKS: number | null = readStat('/proc', process.pid)?.startTicks ?? null;

export class RunRegistry {
  readonly runId: string;
  readonly file: string | undefined;
  readonly startedAt = new Date().toISOString();
  private readonly records: ChildRecord[] = [];
  private readonly onWriteError: (err: Error) => void;

  constructor(opts: RunRegistryOptions) {
    this.runId = opts.runId;
    this.file = opts.file;
    this.onWriteError = opts.onWriteError ?? warnOnce();
    this.flush();
  }

  /** Adds a record (its id is assigned here) and writes the file. */
  add(rec: Omit<ChildRecord, 'id'>): ChildRecord {
    const full: ChildRecord = { id: this.records.length + 1, ...rec };
    this.records.push(full);
    this.flush();
    return { ...full };
  }

  /** Merges a patch into record id and writes the file. */
  update(id: number, patch: Partial<Omit<ChildRecord, 'id'>>): void {
    const rec = this.records[id - 1];
    if (!rec) return;
    Object.assign(rec, patch);
    this.flush();
  }

  get(id: number): ChildRecord | undefined {
    const rec = this.records[id - 1];
    return rec ? structuredClone(rec) : undefined;
  }

  list(): ChildRecord[] {
    return this.records.map((r) => structuredClone(r));
  }

  doc(): RunRegistryDoc {
    return {
      schema: RUNS_SCHEMA,
      gpucoloVersion: VERSION,
      runId: this.runId,
      gpucoloPid: process.pid,
      gpucoloStartTicks: OWN_START_TICKS,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      children: this.list(),
    };
  }

  /** Rewrites the file from memory (no-op without a file); never throws. */
  flush(): void {
    if (!this.file) return;
    try {
      writeRegistryFile(this.file, this.doc());
    } catch (err) {
      this.onWriteError(err as Error);
    }
  }
}

/** Default write-error handler: one process warning per distinct error code, not one per write. */
function warnOnce(): (err: Error) => void {
  const seen = new Set<string>();
  return (err) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
    if (seen.has(code)) return;
    seen.add(code);
    process.emitWarning(`gpucolo run registry not written: ${err.message}`, { code: 'GPUCOLO_REGISTRY' });
  };
}
