/**
 * Atomic result files: readers (and a crash) see either the old file or the whole new one, never
 * a torn write. The temp file lives in the target's directory so the rename stays on one file
 * system; it is fsynced before the rename and removed when anything fails. A symlink is followed
 * (the file it points to is replaced, the link stays); a device, FIFO or socket is written in place.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Node's own description of an errno ("no such file or directory"), without the temp path it names. */
function describe(err: NodeJS.ErrnoException): string {
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(err.message);
  return m ? m[1] : err.message.split('\n')[0];
}

/** Re-throws a system error as Node-shaped ({code, errno, syscall, path}) with one line naming the target. */
function writeError(file: string, err: unknown): NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : 'EIO';
  const out: NodeJS.ErrnoException = new Error(`cannot write ${file}: ${err instanceof Error ? describe(e) : String(err)} (${code})`);
  out.code = code;
  if (e?.errno !== undefined) out.errno = e.errno;
  if (e?.syscall !== undefined) out.syscall = e.syscall;
  out.path = file;
  return out;
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

/**
 * Writes `data` to `file` atomically (temp file in the same directory + fsync + rename). The
 * directory must exist. Errors keep Node's code (ENOENT, ENOSPC, EACCES) and name `file`.
 */
export interface AtomicWriteOptions {
  /**
   * fsync the data and the directory (default true). Files that only guard against gpucolo itself
   * crashing (the run registry, rewritten on every child start and exit) skip it: after a machine
   * crash there is nothing left to protect, and an fsync per change stalls the event loop on a busy disk.
   */
  fsync?: boolean;
}

/**
 * Where a write to `file` has to land: `file` itself, or, for a symlink, the file it points to
 * (followed to the end, dangling links included), so the link stays a link.
 */
function resolveTarget(file: string): { target: string; stat: fs.Stats | null } {
  let target = path.resolve(file);
  for (let hops = 0; ; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(target);
    } catch {
      return { target, stat: null }; // missing (or unreadable: the write itself reports it)
    }
    if (!st.isSymbolicLink()) return { target, stat: st };
    if (hops >= 40) throw Object.assign(new Error(`ELOOP: too many symbolic links encountered, open '${file}'`), { code: 'ELOOP', syscall: 'open' });
    target = path.resolve(path.dirname(target), fs.readlinkSync(target));
  }
}

/**
 * A device, FIFO or socket is written in place: renaming a file over it would replace the device
 * node (/dev/null, /dev/stdout) with a regular file. Errors (ENOSPC on /dev/full) are the write's.
 */
function writeInPlace(target: string, data: string | Uint8Array, sync: boolean): void {
  const fd = fs.openSync(target, 'w');
  try {
    fs.writeFileSync(fd, data);
    if (sync) {
      try {
        fs.fsyncSync(fd);
      } catch {
        // devices and pipes refuse fsync (EINVAL): nothing to make durable
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const sync = opts.fsync !== false;
  let target: string;
  let stat: fs.Stats | null;
  try {
    ({ target, stat } = resolveTarget(file));
    if (stat && !stat.isFile() && !stat.isDirectory()) {
      writeInPlace(target, data, sync);
      return;
    }
  } catch (err) {
    throw writeError(file, err);
  }
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, data);
      if (sync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // the write error is the one worth reporting
    }
    throw writeError(file, err);
  }
  if (sync) fsyncDir(dir);
}

/** `value` as 2-space JSON with a trailing newline, written atomically. */
export function writeJsonAtomic(file: string, value: unknown, opts: AtomicWriteOptions = {}): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, opts);
}
