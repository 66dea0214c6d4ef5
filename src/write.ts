/**
 * Every file gpucolo writes as a result (results.json, report.md, charts, trace --out, analyze
 * --md, export -o, registries) goes through here. Two rules:
 *
 * Atomic: readers (and a crash) see either the old file or the whole new one, never a torn write.
 * The temp file lives in the directory of the name given, so the rename stays on one file system;
 * it is created exclusively (a link at the temp name is never followed), fsynced before the
 * rename and removed when anything fails.
 *
 * Never through a symlink: gpucolo is often run as root (debugfs), and a link planted at an
 * output name (/tmp/trace.jsonl -> /etc/shadow) must not turn that into a write anywhere else. A
 * name that is a symlink is refused (ELOOP, one line naming the link and where it points): the
 * file it points to is never opened, truncated or replaced, a dangling link creates nothing, and
 * the link stays. Two kinds of link are written through, because they cannot lead anywhere the
 * caller did not already open: links to this process's own file descriptors (/dev/stdout,
 * /dev/stderr, /dev/fd/N, /proc/self/fd/N: written to that descriptor, as a shell redirection
 * made it, without truncating or replacing anything), and links to a FIFO. Only the last
 * component is checked: directories on the way are followed, as the caller named them.
 *
 * A device, FIFO or socket named directly is written in place (renaming a file over it would
 * replace the device node with a regular file); what is opened is checked again after the open,
 * so a regular file swapped in between is closed untouched and written the atomic way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError } from './errors.js';

const { O_WRONLY, O_NOFOLLOW, O_NOCTTY, O_CREAT, O_EXCL } = fs.constants;

/** An output name that is a symlink gpucolo will not write through (see the file comment). */
export class OutputSymlinkError extends GpucoloError {
  declare readonly path: string;
  constructor(
    path: string,
    readonly target: string,
  ) {
    super(`cannot write ${path}: it is a symbolic link (to ${target}) and gpucolo never writes through one: remove the link, or name the file itself (ELOOP)`, { code: 'ELOOP', path, syscall: 'open' });
    this.name = 'OutputSymlinkError';
  }
}

/** Node's own description of an errno ("no such file or directory"), without the temp path it names. */
function describe(err: NodeJS.ErrnoException): string {
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(err.message);
  return m ? m[1] : err.message.split('\n')[0];
}

const writeErrors = new WeakSet<Error>();

/** Re-throws a system error as a GpucoloError that keeps Node's shape ({code, errno, syscall, path}), with one line naming the target. */
function writeError(file: string, err: unknown): GpucoloError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : 'EIO';
  const out = new GpucoloError(`cannot write ${file}: ${err instanceof Error ? describe(e) : String(err)} (${code})`, { code, path: file, errno: e?.errno, syscall: e?.syscall });
  writeErrors.add(out);
  return out;
}

/**
 * Did writing an output fail (this module's errors)? Its codes (ENOENT, ELOOP...) are also those
 * of an unreadable input, which the CLI treats as bad usage; a failed write is exit 1 instead.
 */
export function isWriteError(err: unknown): boolean {
  return err instanceof OutputSymlinkError || (err instanceof Error && writeErrors.has(err));
}

/** Best effort: makes the rename itself durable (not all file systems allow fsync on a directory). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // durability of the directory entry is a bonus, not a requirement
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  /**
   * fsync the data and the directory (default true). Files that only guard against gpucolo itself
   * crashing (the run registry, rewritten on every child start and exit) skip it: after a machine
   * crash there is nothing left to protect, and an fsync per change stalls the event loop on a busy disk.
   */
  fsync?: boolean;
}

/** N when `p` names one of this process's own descriptors (/proc/self/fd/N, /dev/fd/N, /proc/<pid>/task/<tid>/fd/N). */
function ownFd(p: string): number | null {
  const m = /^(.*)\/(\d+)$/.exec(p);
  if (!m || m[1] === '') return null;
  let dir: string;
  try {
    dir = fs.realpathSync(m[1]);
  } catch {
    return null;
  }
  const pid = process.pid;
  return dir === `/proc/${pid}/fd` || new RegExp(`^/proc/${pid}/task/\\d+/fd$`).test(dir) ? Number(m[2]) : null;
}

/**
 * Where a write to `file` goes (see the file comment):
 *  - `new`: a new file at the name, by temp file + rename (the name is missing, a regular file, or
 *    a directory, where the rename then fails);
 *  - `fd`: written in place to `fd`; `borrowed`: one of this process's own descriptors (never
 *    closed, truncated or fsync-required), else opened here (close it when done).
 * Throws OutputSymlinkError for any other symlink. A FIFO blocks the open until it has a reader.
 */
export type OutputPlan = { kind: 'new' } | { kind: 'fd'; fd: number; borrowed: boolean };

export function planOutput(file: string): OutputPlan {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return { kind: 'new' }; // missing (or unreadable: the write reports it)
  }
  if (!st.isSymbolicLink()) {
    if (st.isFile() || st.isDirectory()) return { kind: 'new' };
    const fd = openChecked(abs, O_WRONLY | O_NOCTTY | O_NOFOLLOW, (x) => !x.isFile() && !x.isDirectory());
    return fd === null ? { kind: 'new' } : { kind: 'fd', fd, borrowed: false };
  }
  // follow the chain by hand: a hop through this process's fd table ends it (/dev/stdout -> /proc/self/fd/1)
  let cur = abs;
  for (let hops = 0; hops < 40; hops++) {
    let link: fs.Stats;
    try {
      link = fs.lstatSync(cur);
    } catch {
      throw new OutputSymlinkError(file, cur); // dangling
    }
    if (!link.isSymbolicLink()) break;
    const fd = ownFd(cur);
    if (fd !== null) {
      try {
        fs.fstatSync(fd);
      } catch {
        throw new OutputSymlinkError(file, cur); // not open here
      }
      return { kind: 'fd', fd, borrowed: true };
    }
    let next: string;
    try {
      next = fs.readlinkSync(cur);
    } catch {
      throw new OutputSymlinkError(file, cur); // a link we may not read (another process's fd)
    }
    cur = path.resolve(path.dirname(cur), next);
  }
  let target: fs.Stats | null = null;
  try {
    target = fs.statSync(abs);
  } catch {
    // a loop or dangling: refused below
  }
  if (target?.isFIFO()) {
    const fd = openChecked(abs, O_WRONLY | O_NOCTTY, (x) => x.isFIFO());
    if (fd !== null) return { kind: 'fd', fd, borrowed: false };
  }
  throw new OutputSymlinkError(file, cur);
}

/** Opens `file` for writing (no create, no truncate) when what got opened passes `ok`; else null, closed untouched. */
function openChecked(file: string, flags: number, ok: (st: fs.Stats) => boolean): number | null {
  let fd: number;
  try {
    fd = fs.openSync(file, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // changed between the check and the open (a link now, or gone): the caller decides again
    if (code === 'ELOOP' || code === 'ENOENT') return null;
    throw err;
  }
  if (ok(fs.fstatSync(fd))) return fd;
  fs.closeSync(fd);
  return null;
}

/** Writes all of `data` to `fd`; a non-blocking pipe (stdout) is waited for, not failed (EAGAIN). */
export function writeAllFd(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
}

/**
 * Creates a temp file next to `file` (in the directory of the name given, not of a link's target),
 * exclusively: a link planted at the temp name makes this fail, it is never followed.
 */
export function createTempBeside(file: string, mode = 0o644): { fd: number; tmp: string } {
  const abs = path.resolve(file);
  for (let n = 0; ; n++) {
    const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
    try {
      return { fd: fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL, mode), tmp };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 10) throw err;
    }
  }
}

function syncFd(fd: number, required: boolean): void {
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // devices and pipes refuse fsync (EINVAL): nothing to make durable
    if (required && fs.fstatSync(fd).isFile()) throw err;
  }
}

/**
 * Writes `data` to `file` atomically (temp file in the same directory + fsync + rename). The
 * directory must exist. A symlink at `file` is refused (OutputSymlinkError, code ELOOP) unless it
 * leads to one of this process's descriptors or a FIFO; a device, FIFO or socket is written in
 * place (see the file comment). Errors keep Node's code (ENOENT, ENOSPC, EACCES) and name `file`.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const sync = opts.fsync !== false;
  let plan: OutputPlan;
  try {
    plan = planOutput(file);
  } catch (err) {
    if (err instanceof OutputSymlinkError) throw err;
    throw writeError(file, err);
  }
  if (plan.kind === 'fd') {
    try {
      writeAllFd(plan.fd, data);
      if (sync) syncFd(plan.fd, !plan.borrowed);
    } catch (err) {
      throw writeError(file, err);
    } finally {
      if (!plan.borrowed) fs.closeSync(plan.fd);
    }
    return;
  }
  const target = path.resolve(file);
  let tmp: string | null = null;
  try {
    const t = createTempBeside(target);
    tmp = t.tmp;
    try {
      writeAllFd(t.fd, data);
      if (sync) syncFd(t.fd, true);
    } finally {
      fs.closeSync(t.fd);
    }
    // rename(2) replaces the directory entry itself: a link swapped in since the check is replaced, not followed
    fs.renameSync(tmp, target);
  } catch (err) {
    if (tmp !== null) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // the write error is the one worth reporting
      }
    }
    throw writeError(file, err);
  }
  if (sync) fsyncDir(path.dirname(target));
}

/** `value` as 2-space JSON with a trailing newline, written atomically. */
export function writeJsonAtomic(file: string, value: unknown, opts: AtomicWriteOptions = {}): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, opts);
}
