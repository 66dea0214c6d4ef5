/**
 * Reads a trace (JSON Lines, schema.ts) back into memory. Tolerant where a trace is expected to be
 * damaged — a killed tracer leaves a truncated last line, a full disk a garbage one — and strict
 * where nothing sensible can follow: without a valid header of a known schema no record can be
 * interpreted, so that is an error (code EBADTRACE) naming the file and line.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { GpucoloError, errnoCode } from '../errors.js';
import { InputFileError, inputReason, openInputFile } from '../input-file.js';
import { readDumpDir } from './dumps.js';
import {
  TRACE_SCHEMA,
  type TraceEvent,
  type TraceFooter,
  type TraceHeader,
  type TraceMarker,
  type TraceRecord,
  type TraceSample,
} from './schema.js';

/** A line of the trace that could not be used, and why. */
export interface TraceIssue {
  line: number;
  message: string;
}

/** Where a trace came from and how far its numbers can be trusted. */
export interface TraceOrigin {
  /** 'jsonl': a gpucolo trace; 'dumps': a directory of plain `cat` dumps converted by dumps.ts */
  format: 'jsonl' | 'dumps';
  path: string;
  /** how t_ns was obtained: recorded by the tracer, taken from file names, or assumed (i x interval) */
  times: 'recorded' | 'file-names' | 'assumed-interval';
  /** intended_ns, read_ns, parse_ns and join_ns are real measurements */
  costsMeasured: boolean;
  /** what the conversion had to assume, one line each */
  notes: string[];
}

/** A trace in memory: what readTrace and readDumpDir return, what analyzeTrace takes. */
export interface Trace {
  origin: TraceOrigin;
  header: TraceHeader;
  samples: TraceSample[];
  events: TraceEvent[];
  markers: TraceMarker[];
  /** null when the tracer did not finish (killed, crashed) or the input has none (dumps) */
  footer: TraceFooter | null;
  issues: TraceIssue[];
}

// ------------------------------------------------------------------------ record schemas
// They mirror schema.ts; `conforms<T>()` makes tsc fail if the two drift apart.

/** `S` when the schema's output and T are assignable both ways, else never (a compile error at the call). */
type Exact<T, S extends z.ZodType> = [T] extends [z.output<S>] ? ([z.output<S>] extends [T] ? S : never) : never;

/** Identity that fails to compile when a schema accepts more or less than the type T says. */
const conforms =
  <T>() =>
  <S extends z.ZodType<T>>(schema: S & Exact<T, S>): S =>
    schema;

const priority = z.object({ pipe: z.number().int(), queue: z.number().int(), level: z.enum(['low', 'normal', 'high']).nullable() });
const pipeQueue = z.object({ pipe: z.number().int(), queue: z.number().int() });
const int = () => z.number().int();

// node: null when unknown (a GPU only seen in mqds dumps); -1, which older readers wrote for that, reads as null
const gpuSchema = z.object({ node: int().nullable().transform((n) => (n !== null && n < 0 ? null : n)), gpuId: z.string(), name: z.string(), gfxTarget: z.string().nullable(), numXcc: int().min(1) });
const sourceSchema = z.enum(['sysfs', 'debugfs']);

export const traceHeaderSchema = conforms<TraceHeader>()(z.object({
  kind: z.literal('header'),
  t_ns: z.literal(0),
  schema: z.literal(TRACE_SCHEMA),
  gpucoloVersion: z.string(),
  startedAt: z.string(),
  monotonicOriginNs: z.string().regex(/^\d+$/),
  host: z.object({ hostname: z.string(), kernel: z.string() }),
  gpus: z.array(gpuSchema),
  sources: z.array(sourceSchema),
  readable: z.array(sourceSchema),
  intervalNs: z.number().positive(),
  debugfsIntervalNs: z.number().nonnegative(), // 0: debugfs not read
  sysfsWalk: z.enum(['incremental', 'full']).optional(),
  countersIntervalNs: z.number().positive().optional(),
  roots: z.object({ sysfs: z.string(), debugfs: z.string(), proc: z.string() }),
  impl: z.enum(['native', 'ts']),
  sampler: z.enum(['native-thread', 'ts-timer']),
  target: z.object({ mode: z.enum(['all', 'pids', 'command']), pids: z.array(int()), command: z.array(z.string()).optional() }),
  options: z.object({
    durationNs: z.number().nullable(),
    baselineNs: z.number(),
    tailNs: z.number(),
    stopAfterNs: z.number().nullable(),
  }),
}));

const queueSchema = z.object({
  key: z.string().min(1),
  qid: int().nullable(),
  type: z.string(),
  gpuId: z.string().nullable(),
  node: int().nullable(),
  priority: priority.nullable(),
  mqd: z.string().nullable(),
  // the last slot (active 0|1) is null where the dump ended before it (a cut slot)
  hqds: z.array(z.tuple([int(), int(), int(), int().nullable()])).nullable(),
  sdma: z.tuple([int(), int(), int().nullable()]).nullable(),
  inRunlist: z.boolean().nullable(),
});

const sampleSchema = conforms<TraceSample>()(z.object({
  kind: z.literal('sample'),
  t_ns: z.number(),
  seq: int(),
  intended_ns: z.number(),
  read_ns: z.number(),
  parse_ns: z.number(),
  join_ns: z.number(),
  io_ns: z.number().optional(),
  read_cpu_ns: z.number().optional(),
  cpu_ns: z.number().optional(),
  debugfs: z.boolean(),
  missed: int().min(0),
  processes: z.array(z.object({ pid: int(), nsPid: int().nullable(), queues: z.array(queueSchema) })),
  unmatchedHqds: z.array(z.tuple([int(), int(), int(), int()])),
  issues: z.array(z.string()),
}));

const eventSchema = conforms<TraceEvent>()(z.object({
  kind: z.literal('event'),
  t_ns: z.number(),
  event: z.enum(['process-started', 'process-exited', 'queue-created', 'queue-destroyed', 'hqd-mapped', 'hqd-unmapped', 'priority-changed']),
  sample: int(),
  pid: int(),
  key: z.string().optional(),
  qid: int().nullable().optional(),
  type: z.string().optional(),
  gpuId: z.string().nullable().optional(),
  mqd: z.string().nullable().optional(),
  inst: int().optional(),
  pipe: int().optional(),
  queue: int().optional(),
  from: pipeQueue.nullable().optional(),
  to: pipeQueue.nullable().optional(),
}));

const markerSchema = conforms<TraceMarker>()(z.object({
  kind: z.literal('marker'),
  t_ns: z.number(),
  marker: z.enum(['baseline-start', 'baseline-end', 'command-started', 'stop-signal', 'command-exited', 'tail-end', 'interrupted', 'source-lost', 'source-back']),
  pid: int().optional(),
  pgid: int().optional(),
  argv: z.array(z.string()).optional(),
  code: int().nullable().optional(),
  signal: z.string().nullable().optional(),
  source: sourceSchema.optional(),
  detail: z.string().optional(),
}));

const footerSchema = conforms<TraceFooter>()(z.object({
  kind: z.literal('footer'),
  t_ns: z.number(),
  samples: int().min(0),
  events: int().min(0),
  missedIntervals: int().min(0),
  endedBy: z.enum(['duration', 'command-exit', 'target-exit', 'interrupt', 'error']),
  error: z.string().optional(),
}));

const bodySchema = z.discriminatedUnion('kind', [sampleSchema, eventSchema, markerSchema, footerSchema]);

const BODY_KINDS = new Set(['sample', 'event', 'marker', 'footer']);

/** zod's first complaint as "path: message" (one line, for an issue or an error). */
function zodProblem(err: z.ZodError): string {
  const first = err.issues[0];
  if (!first) return 'invalid record';
  const where = first.path.length ? `${first.path.join('.')}: ` : '';
  const more = err.issues.length > 1 ? ` (+${err.issues.length - 1} more)` : '';
  return `${where}${first.message}${more}`;
}

export function badTrace(file: string, line: number | null, what: string): GpucoloError {
  return new GpucoloError(`${file}${line === null ? '' : `:${line}`}: ${what}`, { code: 'EBADTRACE', path: file });
}

// ------------------------------------------------------------------------ reading

/** Accumulates records line by line; the header is checked before anything else is taken. */
class TraceBuilder {
  header: TraceHeader | null = null;
  readonly samples: TraceSample[] = [];
  readonly events: TraceEvent[] = [];
  readonly markers: TraceMarker[] = [];
  footer: TraceFooter | null = null;
  readonly issues: TraceIssue[] = [];
  private lastSampleT = 0;

  constructor(private readonly file: string) {}

  take(text: string, line: number): void {
    if (text.trim() === '') return;
    if (this.header === null) {
      // a byte-order mark (an editor's save) is not part of the JSON
      this.header = this.parseHeader(text.replace(/^\uFEFF/, ''), line);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.issue(line, `not valid JSON (${describeText(text)}); a tracer killed while writing leaves a truncated last line`);
      return;
    }
    this.takeRecord(value, line);
  }

  private parseHeader(text: string, line: number): TraceHeader {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw badTrace(this.file, line, `not a gpucolo trace: the first line is not JSON (${describeText(text)})`);
    }
    const rec = value as { kind?: unknown; schema?: unknown } | null;
    if (typeof rec !== 'object' || rec === null || rec.kind !== 'header') {
      const kind = typeof rec === 'object' && rec !== null && typeof rec.kind === 'string' ? `a "${rec.kind}" record` : 'no header record';
      throw badTrace(this.file, line, `not a gpucolo trace: the first record must be the header, found ${kind}`);
    }
    if (rec.schema !== TRACE_SCHEMA) {
      throw badTrace(this.file, line, `unknown trace schema ${JSON.stringify(rec.schema ?? null)} (this gpucolo reads ${TRACE_SCHEMA})`);
    }
    const parsed = traceHeaderSchema.safeParse(value);
    if (!parsed.success) throw badTrace(this.file, line, `invalid trace header: ${zodProblem(parsed.error)}`);
    return parsed.data;
  }

  private takeRecord(value: unknown, line: number): void {
    const kind = (value as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string' || !BODY_KINDS.has(kind)) {
      this.issue(line, kind === 'header' ? 'a second header: ignored' : `unknown record kind ${JSON.stringify(kind ?? null)}: ignored`);
      return;
    }
    const parsed = bodySchema.safeParse(value);
    if (!parsed.success) {
      this.issue(line, `invalid ${kind} record: ${zodProblem(parsed.error)}`);
      return;
    }
    const rec = parsed.data as TraceRecord;
    if (this.footer !== null) this.issue(line, `${kind} record after the footer (kept)`);
    // the analysis walks samples in file order; markers and events may be written a little late
    if (rec.kind === 'sample') {
      if (rec.t_ns < this.lastSampleT) this.issue(line, `sample t_ns ${rec.t_ns} goes back in time (previous sample ${this.lastSampleT}; kept)`);
      this.lastSampleT = Math.max(this.lastSampleT, rec.t_ns);
    }
    if (rec.kind === 'sample') this.samples.push(rec);
    else if (rec.kind === 'event') this.events.push(rec);
    else if (rec.kind === 'marker') this.markers.push(rec);
    else if (rec.kind === 'footer') this.takeFooter(rec, line);
  }

  private takeFooter(rec: TraceFooter, line: number): void {
    if (this.footer === null) this.footer = rec;
    else this.issue(line, 'a second footer: ignored');
  }

  private issue(line: number, message: string): void {
    this.issues.push({ line, message });
  }

  finish(): Trace {
    if (this.header === null) throw badTrace(this.file, null, 'empty: no trace header');
    return {
      origin: { format: 'jsonl', path: this.file, times: 'recorded', costsMeasured: true, notes: [] },
      header: this.header,
      samples: this.samples,
      events: this.events,
      markers: this.markers,
      footer: this.footer,
      issues: this.issues,
    };
  }
}

/** A short, printable hint of what a bad line held. */
function describeText(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return `${text.length} chars: ${JSON.stringify(shown)}`;
}

export interface ReadTraceOptions {
  /** read from this stream instead of the file (path then only names it in messages) */
  input?: Readable;
}

/**
 * Streams a JSON Lines trace from `path` ('-' = stdin). Unreadable input rejects with Node's
 * errno code; no header, an unknown schema or an invalid header rejects with code EBADTRACE.
 * Damaged records later on become `issues` with their line number.
 */
export async function readTrace(path: string, opts: ReadTraceOptions = {}): Promise<Trace> {
  const name = path === '-' ? '<stdin>' : path;
  const input = opts.input ?? (path === '-' ? process.stdin : await openForReading(path));
  const builder = new TraceBuilder(name);
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const text of lines) builder.take(text, ++lineNo);
  } catch (err) {
    if (err instanceof GpucoloError) throw err;
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot read ${name} (${code})`, { code, path: name });
  } finally {
    lines.close();
    if (!opts.input && path !== '-') (input as fs.ReadStream).destroy();
  }
  return builder.finish();
}

/**
 * Opens first so that ENOENT/EACCES/EISDIR surface as one clear error, not a stream event. Only a
 * regular file of at most 4 GiB (input-file.ts): a FIFO or a device given as a path is refused
 * (ENOTREG) instead of read forever; stdin is `-`.
 */
/** codes whose name alone says little: the reason follows them */
const WORDED = new Set(['ENOTREG', 'EFBIG', 'ELOOP']);

async function openForReading(path: string): Promise<Readable> {
  let opened: Awaited<ReturnType<typeof openInputFile>>;
  try {
    opened = await openInputFile(path, { kind: 'trace' });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot read ${path} (${err instanceof InputFileError && WORDED.has(code) ? `${code}: ${err.reason}` : code})`, { code, path });
  }
  // never past the cap, even if the file grows while it is read
  return opened.fh.createReadStream({ encoding: 'utf8', end: opened.maxBytes - 1 });
}

/** A trace file, '-' (stdin) or a directory of plain debugfs dumps (dumps.ts), read the right way. */
export async function loadTrace(path: string): Promise<Trace> {
  if (path !== '-') {
    let isDir = false;
    try {
      isDir = fs.statSync(path).isDirectory();
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      throw new GpucoloError(`cannot read ${path} (${WORDED.has(code) ? `${code}: ${inputReason(code)}` : code})`, { code, path });
    }
    if (isDir) return readDumpDir(path);
  }
  return readTrace(path);
}
