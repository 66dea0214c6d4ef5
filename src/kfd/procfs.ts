/**
 * /proc/<pid>/status reader: the process name and its pid in every pid namespace (NSpid). KFD
 * prints host (init-namespace) pids; a program in a container knows itself by the last NSpid.
 */
import fs from 'node:fs';
import { underRoot } from './sysfs-ts.js';

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

/** Reads /proc/<pid>/status under procRoot; null when the process is gone or unreadable. */
export function readProcStatus(procRoot: string, pid: number): ProcStatus | null {
  try {
    return parseProcStatus(pid, fs.readFileSync(underRoot(procRoot, `${pid}/status`), 'latin1'));
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
