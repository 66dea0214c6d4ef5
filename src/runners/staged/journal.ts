/**
 * The resume journal of a staged run: JSON Lines, append-only. The first line is a header
 * {schema, gpucoloVersion, created}; every other line is one finished (category, item, stage)
 * with its output (a small JSON value or a reference such as {file: 'path'}). Records are buffered
 * and written per batch with one write + fsync, so a crash loses at most the batch in flight and
 * leaves a valid prefix; a truncated or corrupted LAST line (a write cut short) is ignored with a
 * warning, a corrupted line in the middle is an error (EBADJOURNAL) naming file and line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode, errnoText } from '../../errors.js';
import { InputFileError, readInputText } from '../../input-file.js';
import { VERSION } from '../../version.js';
import { makeDirs } from '../../fs-dirs.js';

export const JOURNAL_SCHEMA = 'gpucolo.staged-journal/1';
/** How every header line starts (JSON.stringify of {schema, ...}). */
const JOURNAL_HEADER_START = `{"schema":"${JOURNAL_SCHEMA}"`;

export interface JournalRecord {
  category: string;
  item: string;
  stage: string;
  output: unknown;
  ms?: number;
}

export interface JournalEntry {
  output: unknown;
  t: string;
}

export interface Journal {
  readonly file: string;
  append(rec: JournalRecord): void;
  /** Writes the buffered records (one write + fsync). */
  flush(): void;
  /** Records appended and not yet flushed. */
  readonly pending: number;
  /** Flushes and closes the file. */
  close(): void;
}

/** The key of one (category, item, stage) in the resume map. */
export function key(category: string, item: string, stage: string): string {
  return `${category}\u0000${item}\u0000${stage}`;
}

function bad(file: string, line: number, why: string): GpucoloError {
  return new GpucoloError(`${file}:${line}: corrupted journal line (${why}); move the file away to start over`, { code: 'EBADJOURNAL', path: file });
}

/** What openJournal's steps share: the file, what it records as done, and the warnings so far. */
interface OpenState {
  file: string;
  done: Map<string, JournalEntry>;
  warnings: string[];
  /** the existing text ('' when the file is missing) */
  text: string;
  /** bytes of text to keep: a broken tail beyond this is cut */
  keepBytes: number;
}

/** Step 1: refuses a journal path that is a symbolic link. */
function refuseSymlink(file: string): void {
  // like every other output (src/write.ts): never written through a symlink
  let isLink = false;
  try {
    isLink = fs.lstatSync(file).isSymbolicLink();
  } catch {
    isLink = false;
  }
  if (isLink) throw new GpucoloError(`cannot write journal ${file}: it is a symbolic link and gpucolo never writes through one: remove the link, or name the file itself (ELOOP)`, { code: 'ELOOP', path: file });
}

/** Step 2: reads the existing journal text; '' when the file does not exist. */
function readExisting(file: string): string {
  let text = '';
  try {
    text = readInputText(file, { kind: 'journal' });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    if (code !== 'ENOENT') throw new GpucoloError(`cannot read journal ${file}: ${err instanceof InputFileError ? `${code} (${err.reason})` : code}`, { code, path: file });
  }
  return text;
}

/** Checks line i (records a good record in st.done); returns why it is bad, undefined when good. */
function checkLine(st: OpenState, i: number, line: string, last: boolean, endsClean: boolean): string | undefined {
  let rec: unknown;
  let why: string | undefined;
  if (last && !endsClean) why = 'no newline at the end: truncated write';
  else {
    try {
      rec = JSON.parse(line);
    } catch (err) {
      why = `not JSON: ${(err as Error).message}`;
    }
  }
  if (why === undefined) {
    const r = rec as Record<string, unknown> | null;
    if (i === 0) {
      if (!r || typeof r !== 'object' || r.schema !== JOURNAL_SCHEMA) why = `expected a header with schema "${JOURNAL_SCHEMA}"`;
    } else if (!r || typeof r !== 'object' || typeof r.c !== 'string' || typeof r.i !== 'string' || typeof r.s !== 'string' || typeof r.t !== 'string' || !('o' in r)) {
      why = 'not a journal record {c, i, s, o, t}';
    } else {
      st.done.set(key(r.c, r.i, r.s), { output: r.o, t: r.t });
    }
  }
  return why;
}

/** Step 3: scans the existing lines into st.done; a bad last line (or cut header) sets keepBytes, any other throws. */
function scanLines(st: OpenState): void {
  const { file, text } = st;
  if (!text.length) return;
  const lines = text.split('\n');
  const endsClean = text.endsWith('\n');
  if (endsClean) lines.pop();
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const lineNo = i + 1;
    const last = i === lines.length - 1;
    const lineBytes = Buffer.byteLength(line) + 1;
    const why = checkLine(st, i, line, last, endsClean);
    if (why !== undefined) {
      if (!last || i === 0) {
        if (i === 0 && last && !endsClean && JOURNAL_HEADER_START.startsWith(line.slice(0, JOURNAL_HEADER_START.length))) {
          // A header cut short: nothing was recorded yet, start over. (Anything else in the
          // file is not ours: refuse rather than overwrite it.)
          st.warnings.push(`${file}:${lineNo}: ignored a truncated journal header (${why})`);
          st.keepBytes = 0;
          break;
        }
        throw bad(file, lineNo, why);
      }
      st.warnings.push(`${file}:${lineNo}: ignored the last journal line (${why}); that record will be redone`);
      st.keepBytes = offset;
      break;
    }
    offset += lineBytes;
  }
}

/** Step 4: opens the file for appending (O_NOFOLLOW) and cuts a broken tail; returns the fd. */
function openForAppend(st: OpenState): number {
  const { file } = st;
  makeDirs(path.dirname(path.resolve(file)));
  let fd: number;
  try {
    // O_NOFOLLOW: a link put there since the check is refused too
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
    // cut a broken tail so that new records start on a line of their own
    if (st.keepBytes < Buffer.byteLength(st.text)) fs.ftruncateSync(fd, st.keepBytes);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot write journal ${file}: ${errnoText(code)}`, { code, path: file });
  }
  return fd;
}

/** Opens (creating when missing) a journal; returns what it already records as done. */
export function openJournal(file: string): { journal: Journal; done: Map<string, JournalEntry>; warnings: string[] } {
  refuseSymlink(file);
  const text = readExisting(file);
  const st: OpenState = { file, done: new Map<string, JournalEntry>(), warnings: [], text, keepBytes: Buffer.byteLength(text) };
  scanLines(st);
  const fd = openForAppend(st);
  const journal = makeJournal(file, fd, st.keepBytes);
  return { journal, done: st.done, warnings: st.warnings };
}

/** Step 5: the Journal over an open fd; a fresh file (keepBytes 0) gets its header written now. */
function makeJournal(file: string, fd: number, keepBytes: number): Journal {
  let buf: string[] = [];
  if (keepBytes === 0) {
    buf.push(JSON.stringify({ schema: JOURNAL_SCHEMA, gpucoloVersion: VERSION, created: new Date().toISOString() }));
  }
  let closed = false;
  const journal: Journal = {
    file,
    append(rec) {
      if (closed) throw new GpucoloError(`journal ${file} is closed`, { code: 'ECLOSED', path: file });
      const line: Record<string, unknown> = { c: rec.category, i: rec.item, s: rec.stage, o: rec.output === undefined ? null : rec.output, t: new Date().toISOString() };
      if (rec.ms !== undefined) line.ms = rec.ms;
      buf.push(JSON.stringify(line));
    },
    flush() {
      if (closed || !buf.length) return;
      const data = Buffer.from(`${buf.join('\n')}\n`);
      buf = [];
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off);
      fs.fsyncSync(fd);
    },
    get pending() {
      return buf.length;
    },
    close() {
      if (closed) return;
      journal.flush();
      closed = true;
      fs.closeSync(fd);
    },
  };
  if (keepBytes === 0) journal.flush();
  return journal;
}
