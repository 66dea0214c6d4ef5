/**
 * Reading input files: only regular files, each kind with a size cap.
 *
 * Everything gpucolo reads from a path (scenario, experiment, models and pipeline files, pipeline
 * items, traces, dump directories, recorded sysfs/debugfs/proc trees, result files, training logs)
 * goes through here. The file is opened with O_RDONLY | O_NONBLOCK (opening a FIFO never waits for
 * a writer), fstat()ed on that descriptor, and refused unless it is a regular file: a FIFO,
 * /dev/zero, /dev/urandom, a socket or a directory is one typed error, never a hang or a read
 * that eats memory. A regular file is read until EOF but never past its kind's cap: the live
 * /sys and /proc pseudo-files report a size of 0 or 4096 in stat whatever they hold, so the size
 * in stat is only used to refuse early, the cap is enforced on the bytes actually read.
 *
 * native/kfd/input_file.h is the C++ twin (same rule, same caps, same codes) for the readers of
 * the native core.
 */
import fs from 'node:fs';
import { GpucoloError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** What a file is read as; each kind has its own cap (INPUT_LIMITS). */
export type InputKind = 'config' | 'items' | 'journal' | 'result' | 'registry' | 'trace' | 'debugfs' | 'sysfs' | 'log';

/**
 * The cap per kind, and what the kind is called in messages. Changing a cap here changes the
 * README's "Input files" table (and native/kfd/input_file.h for debugfs and sysfs).
 */
export const INPUT_LIMITS: Readonly<Record<InputKind, { maxBytes: number; label: string }>> = {
  /** scenario, experiment, models and pipeline files (YAML or JSON), written by hand */
  config: { maxBytes: 4 * MiB, label: 'config files' },
  /** a pipeline's items: .json, .jsonl, or each file of an items directory */
  items: { maxBytes: 256 * MiB, label: 'item files' },
  /** a staged run's journal.jsonl */
  journal: { maxBytes: 256 * MiB, label: 'journals' },
  /** results.json of a run, results_*.json and run manifests of distributed */
  result: { maxBytes: 256 * MiB, label: 'result files' },
  /** a run registry (gpucolo cleanup) */
  registry: { maxBytes: 16 * MiB, label: 'registry files' },
  /** a JSON Lines trace (streamed) */
  trace: { maxBytes: 4 * GiB, label: 'traces' },
  /** debugfs kfd/mqds, hqds, rls: live, in a recorded tree, or a dump file (an 8-GPU hqds is a few MB) */
  debugfs: { maxBytes: 64 * MiB, label: 'debugfs dumps' },
  /** one sysfs or procfs value file (live or recorded): a page at most on a real host */
  sysfs: { maxBytes: 1 * MiB, label: 'sysfs and proc files' },
  /** a training log searched for metrics: a longer one is searched in its last 256 MiB */
  log: { maxBytes: 256 * MiB, label: 'training logs' },
};

/** Codes of a file that is not what a command can read (usage errors when the file was named on the command line). */
export const BAD_INPUT_CODES: ReadonlySet<string> = new Set(['ENOTREG', 'EFBIG', 'EISDIR', 'ELOOP', 'ENOTDIR', 'ENOENT', 'ENAMETOOLONG']);

/** Typed error of readInputFile and friends: `code` is the errno name, or ENOTREG (not a regular file) / EFBIG (over the cap). */
export class InputFileError extends GpucoloError {
  /** a few words on what is wrong ("a FIFO, not a regular file"), without the path */
  readonly reason: string;
  constructor(message: string, fields: { code: string; path: string; reason: string }) {
    super(message, { code: fields.code, path: fields.path });
    this.name = 'InputFileError';
    this.reason = fields.reason;
  }
}

/** Codes the regular-file rule adds: not a regular file, over the cap, a symlink loop. Always a usage error (exit 2). */
export const REFUSED_INPUT_CODES: ReadonlySet<string> = new Set(['ENOTREG', 'EFBIG', 'ELOOP']);

/** Was the file refused by the regular-file rule or its cap (or a symlink loop)? */
export function isRefusedInput(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && REFUSED_INPUT_CODES.has(code);
}

/** Is this error about the file itself (not a regular file, too large, missing, a loop, a directory)? */
export function isBadInput(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && BAD_INPUT_CODES.has(code);
}

export function formatBytes(n: number): string {
  if (n >= GiB && n % GiB === 0) return `${n / GiB} GiB`;
  if (n >= MiB) return n % MiB === 0 ? `${n / MiB} MiB` : `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return n % KiB === 0 ? `${n / KiB} KiB` : `${(n / KiB).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** "a FIFO" / "a character device" ... for a stat that is not a regular file. */
function fileType(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

const ERRNO_REASON: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'a directory, not a file',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many levels of symbolic links, a symlink loop?',
  ENAMETOOLONG: 'file name too long',
};

/** The reason words for an errno name or ENOTREG/EFBIG without more detail. */
export function inputReason(code: string, kind?: InputKind): string {
  if (code === 'ENOTREG') return 'not a regular file';
  if (code === 'EFBIG') return kind ? `larger than the ${formatBytes(INPUT_LIMITS[kind].maxBytes)} limit for ${INPUT_LIMITS[kind].label}` : 'too large';
  return ERRNO_REASON[code] ?? code;
}

/**
 * The words after a code in a KFD tree issue ("cannot read <path> (ENOTREG: not a regular file)"):
 * only for the two codes that are not errnos' usual meaning. The native readers word it the same.
 */
export function issueCodeText(code: string, kind: 'debugfs' | 'sysfs'): string {
  if (code === 'ENOTREG') return 'ENOTREG: not a regular file';
  if (code === 'EFBIG') return `EFBIG: larger than ${formatBytes(INPUT_LIMITS[kind].maxBytes)}`;
  return code;
}

export interface InputOptions {
  kind: InputKind;
  /** override the kind's cap (tests, callers with a tighter bound) */
  maxBytes?: number;
  /** what the file is, for the message: "cannot read <what> <path>: ..." (default: nothing) */
  what?: string;
}

function fail(path: string, code: string, reason: string, o: InputOptions): never {
  throw new InputFileError(`cannot read ${o.what ? `${o.what} ` : ''}${path}: ${reason}`, { code, path, reason });
}

function errnoOf(err: unknown): string {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'EIO';
}

/** A regular file or the error; `size` from fstat. */
function checkStat(st: fs.Stats, path: string, o: InputOptions, max: number): void {
  if (st.isDirectory()) fail(path, 'EISDIR', ERRNO_REASON.EISDIR, o);
  if (!st.isFile()) fail(path, 'ENOTREG', `${fileType(st)}, not a regular file`, o);
  if (st.size > max) fail(path, 'EFBIG', tooLarge(st.size, max, o), o);
}

function tooLarge(size: number | null, max: number, o: InputOptions): string {
  const limit = o.maxBytes === undefined ? `the ${formatBytes(max)} limit for ${INPUT_LIMITS[o.kind].label}` : `the ${formatBytes(max)} limit`;
  return `${size !== null ? `${formatBytes(size)}, ` : ''}larger than ${limit}`;
}

function capOf(o: InputOptions): number {
  return o.maxBytes ?? INPUT_LIMITS[o.kind].maxBytes;
}

/** Opens without blocking (a FIFO never waits for a writer) and checks what it opened: a regular file of at most `max` bytes. */
function openChecked(path: string, o: InputOptions, max = capOf(o)): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    return fail(path, code, inputReason(code), o);
  }
  try {
    const st = fs.fstatSync(fd);
    checkStat(st, path, o, max);
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Reads fd until EOF, at most max bytes; more is EFBIG. */
function readCapped(fd: number, sizeHint: number, max: number, path: string, o: InputOptions): Buffer {
  // stat's size is a hint (0 or 4096 for pseudo-files); one byte more than the cap tells "too large"
  let buf = Buffer.allocUnsafe(Math.min(max + 1, Math.max(sizeHint + 1, 8 * KiB)));
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > max) break;
      const grown = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
      buf.copy(grown, 0, 0, n);
      buf = grown;
    }
    let got: number;
    try {
      got = fs.readSync(fd, buf, n, buf.length - n, null);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EINTR') continue;
      return fail(path, code, inputReason(code), o);
    }
    if (got === 0) break;
    n += got;
  }
  if (n > max) fail(path, 'EFBIG', tooLarge(null, max, o), o);
  return buf.subarray(0, n);
}

/**
 * The bytes of an input file: a regular file of at most the kind's cap, read until EOF. Throws
 * InputFileError (code: the errno name, ENOTREG or EFBIG) naming the file.
 */
export function readInputFile(path: string, o: InputOptions): Buffer {
  const { fd, size } = openChecked(path, o);
  try {
    return readCapped(fd, size, capOf(o), path, o);
  } finally {
    fs.closeSync(fd);
  }
}

/** readInputFile as text (utf8 unless told). */
export function readInputText(path: string, o: InputOptions, encoding: BufferEncoding = 'utf8'): string {
  return readInputFile(path, o).toString(encoding);
}

/**
 * The end of an input file: the whole file when it is within the cap, else its last `maxBytes`
 * (truncated: true). For logs, where the last lines matter most. Still only regular files.
 */
export function readInputTail(path: string, o: InputOptions): { buf: Buffer; truncated: boolean } {
  const max = capOf(o);
  const { fd, size } = openChecked(path, o, Number.POSITIVE_INFINITY);
  try {
    if (size <= max) {
      try {
        return { buf: readCapped(fd, size, max, path, o), truncated: false };
      } catch (err) {
        // grew past the cap while read: take the tail below
        if (!(err instanceof InputFileError) || err.code !== 'EFBIG') throw err;
      }
    }
    const start = Math.max(0, fs.fstatSync(fd).size - max);
    const buf = Buffer.allocUnsafe(max);
    let n = 0;
    while (n < max) {
      let got: number;
      try {
        got = fs.readSync(fd, buf, n, max - n, start + n);
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'EINTR') continue;
        return fail(path, code, inputReason(code), o);
      }
      if (got === 0) break;
      n += got;
    }
    return { buf: buf.subarray(0, n), truncated: true };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * An input file opened for streaming (traces): checked like readInputFile (regular, within the
 * cap by its size) and returned as an open FileHandle with its size; the caller reads at most
 * `maxBytes` (pass `end: maxBytes - 1` to createReadStream) and closes it.
 */
export async function openInputFile(path: string, o: InputOptions): Promise<{ fh: fs.promises.FileHandle; size: number; maxBytes: number }> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    return fail(path, code, inputReason(code), o);
  }
  try {
    const st = await fh.stat();
    checkStat(st, path, o, capOf(o));
    return { fh, size: st.size, maxBytes: capOf(o) };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * What stat() says is wrong with `path` as an input file, without opening it: null when it is a
 * regular file (or does not exist: ENOENT is for the caller to word). For checks before a run
 * starts (a --models given on the command line).
 */
export function inputFileProblem(path: string, o: InputOptions): InputFileError | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return null;
    return new InputFileError(`cannot read ${o.what ? `${o.what} ` : ''}${path}: ${inputReason(code)}`, { code, path, reason: inputReason(code) });
  }
  try {
    checkStat(st, path, o, capOf(o));
    return null;
  } catch (err) {
    if (err instanceof InputFileError) return err;
    throw err;
  }
}
