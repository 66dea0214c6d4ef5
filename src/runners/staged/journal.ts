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

/** Opens (creating when missing) a journal; returns what it already records as done. */
export function openJournal(file: string): { journal: Journal; done: Map<string, JournalEntry>; warnings: string[] } {
  const done = new Map<string, JournalEntry>();
  const warnings: string[] = [];
  // like every other output (src/write.ts): never written through a symlink
  let isLink = false;
  try {
    isLink = fs.lstatSync(file).isSymbolicLink();
  } catch {
    isLink = false;
  }
  if (isLink) throw new GpucoloError(`cannot write journal ${file}: it is a symbolic link and gpucolo never writes through one: remove the link, or name the file itself (ELOOP)`, { code: 'ELOOP', path: file });
  let text = '';
  try {
    text = readInputText(file, { kind: 'journal' });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    if (code !== 'ENOENT') throw new GpucoloError(`cannot read journal ${file}: ${err instanceof InputFileError ? `${code} (${err.reason})` : code}`, { code, path: file });
  }
  let keepBytes = Buffer.byteLength(text);
  if (text.length) {
    const lines = text.split('\n');
    const endsClean = text.endsWith('\n');
    if (endsClean) lines.pop();
    let offset = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const lineNo = i + 1;
      const last = i === lines.length - 1;
      const lineBytes = Buffer.byteLength(line) + 1;
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
          done.set(key(r.c, r.i, r.s), { output: r.o, t: r.t });
        }
      }
      if (why !== undefined) {
        if (!last || i === 0) {
          if (i === 0 && last && !endsClean && JOURNAL_HEADER_START.startsWith(line.slice(0, JOURNAL_HEADER_START.length))) {
            // A header cut short: nothing was recorded yet, start over. (Anything else in the
            // file is not ours: refuse rather than overwrite it.)
            warnings.push(`${file}:${lineNo}: ignored a truncated journal header (${why})`);
            keepBytes = 0;
            break;
          }
          throw bad(file, lineNo, why);
        }
        warnings.push(`${file}:${lineNo}: ignored the last journal line (${why}); that record will be redone`);
        keepBytes = offset;
        break;
      }
      offset += lineBytes;
    }
  }
  makeDirs(path.dirname(path.resolve(file)));
  let fd: number;
  try {
    // O_NOFOLLOW: a link put there since the check is refused too
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
    // cut a broken tail so that new records start on a line of their own
    if (keepBytes < Buffer.byteLength(text)) fs.ftruncateSync(fd, keepBytes);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot write journal ${file}: ${errnoText(code)}`, { code, path: file });
  }
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
  return { journal, done, warnings };
}
