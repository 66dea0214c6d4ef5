/**
 * /proc/<pid>/status reader: the process name and its pid in every pid namespace (NSpid). KFD
 * prints host (init-namespace) pids; a program in a container knows itself by the last NSpid.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readInputFile } from './input-file.js';
import { underRoot } from './roots.js';

export interface ProcStatus {
  pid: number;
  name: string | null;
  ppid: number | null;
  /** pids from the outermost to the innermost namespace; [pid] when not namespaced */
  nsPids: number[];
}

/** Parses the text of /proc/<pid>/status (only the fields gpucolo uses). */
export function parseProcStatus(pid: number, text: string): ProcStatus {
  const out: ProcStatus = { pid, name: null, ppid: null, nsPids: [pid] };
  for (const line of text.split('\n')) {
    const tab = line.indexOf(':');
    if (tab < 0) continue;
    const key = line.slice(0, tab);
    const value = line.slice(tab + 1).trim();
    if (key === 'Name') out.name = value;
    else if (key === 'PPid' && /^\d+$/.test(value)) out.ppid = Number(value);
    else if (key === 'NSpid') {
      const ids = value.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
      if (ids.length > 0) out.nsPids = ids;
    }
  }
  return out;
}

/**
 * Reads /proc/<pid>/status under procRoot; null when the process is gone or unreadable. Under a
 * recorded tree (any root but the live /proc) the file must lie inside the tree: a `<pid>` that is
 * a symlink to the live /proc/<pid> (or anywhere else outside) would describe some process of this
 * host, not the recorded one, so it is not read (null) and onOutside is told where it led.
 */
export function readProcStatus(procRoot: string, pid: number, onOutside?: (target: string) => void): ProcStatus | null {
  const file = underRoot(procRoot, `${pid}/status`);
  try {
    let real = file;
    if (path.resolve(procRoot) !== '/proc') {
      const root = fs.realpathSync(procRoot);
      real = fs.realpathSync(file);
      if (!real.startsWith(root === '/' ? '/' : `${root}/`)) {
        onOutside?.(real);
        return null;
      }
    }
    return parseProcStatus(pid, readInputFile(real, { kind: 'sysfs' }).toString('latin1'));
  } catch {
    return null;
  }
}

/** The pid a process has inside its own (innermost) namespace, when it differs from the host pid. */
export function namespacePid(status: ProcStatus | null): number | null {
  if (!status || status.nsPids.length < 2) return null;
  const inner = status.nsPids[status.nsPids.length - 1];
  return inner !== status.pid ? inner : null;
}
