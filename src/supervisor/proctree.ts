/**
 * Process tree and process group queries over a procfs root (default /proc; tests pass fixture
 * trees). Everything tolerates processes that vanish between listing and reading: a vanished
 * pid reads as null and is skipped, never an error.
 *
 * Two files per pid are read, each for what it is cheap at:
 *  - `status` (via the shared parser in kfd/procfs) for Name, PPid, NSpid, Tgid of one pid;
 *  - `stat` (one line) for whole-system scans: ppid, process group and state of every pid.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readInputFile } from '../input-file.js';
import { parseProcStatus, namespacePid as statusNamespacePid, type ProcStatus } from '../procfs.js';

/** ProcStatus plus Tgid (the shared parser does not keep it; we wrap rather than fork it). */
export interface PidStatus extends ProcStatus {
  tgid: number | null;
}

/** The fields of /proc/<pid>/stat that process-tree and process-group questions need. */
export interface PidStat {
  pid: number;
  /** comm, without the parentheses (may contain spaces and ')') */
  name: string;
  /** R, S, D, Z (zombie), T, t, X, I ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** start time in clock ticks after boot: with the pid, identifies a process across pid reuse */
  startTicks: number;
}

const TGID_RE = /^Tgid:\s*(\d+)\s*$/m;

/** Reads <procRoot>/<pid>/status: Name, PPid, NSpid (outermost first), Tgid; null when gone. */
export function readStatus(procRoot: string, pid: number): PidStatus | null {
  let text: string;
  try {
    text = readInputFile(path.join(procRoot, String(pid), 'status'), { kind: 'sysfs' }).toString('latin1');
  } catch {
    return null;
  }
  const tgid = TGID_RE.exec(text);
  return { ...parseProcStatus(pid, text), tgid: tgid ? Number(tgid[1]) : null };
}

/** The innermost NSpid when it differs (the one parser of /proc/<pid>/status lives in kfd/procfs). */
export { statusNamespacePid as namespacePid };

/**
 * Parses one /proc/<pid>/stat line. comm is found by the LAST ')' because a program may put
 * ')' and spaces in its own name. Returns null for text that is not a stat line.
 */
export function parseStat(text: string): PidStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice num_threads itrealvalue starttime ... (proc(5) fields 3..)
  const f = text.slice(close + 2).trim().split(/\s+/);
  if (!Number.isInteger(pid) || f.length < 4) return null;
  const ppid = Number(f[1]);
  const pgrp = Number(f[2]);
  const session = Number(f[3]);
  if (![ppid, pgrp, session].every(Number.isInteger)) return null;
  const startTicks = f.length > 19 ? Number(f[19]) : NaN;
  return {
    pid,
    name: text.slice(open + 1, close),
    state: f[0],
    ppid,
    pgrp,
    session,
    startTicks: Number.isFinite(startTicks) ? startTicks : -1,
  };
}

/** Reads <procRoot>/<pid>/stat; null when the process is gone or the file is not a stat line. */
export function readStat(procRoot: string, pid: number): PidStat | null {
  try {
    return parseStat(readInputFile(path.join(procRoot, String(pid), 'stat'), { kind: 'sysfs' }).toString('latin1'));
  } catch {
    return null;
  }
}

/** Numeric entries of procRoot (processes, i.e. thread-group leaders); [] when unreadable. */
export function listPids(procRoot: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(procRoot);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const n of names) if (/^[1-9]\d{0,9}$/.test(n)) out.push(Number(n));
  return out;
}

/** One pass over <procRoot>/*\/stat; pids that vanish meanwhile are skipped. */
export function scanStats(procRoot: string): PidStat[] {
  const out: PidStat[] = [];
  for (const pid of listPids(procRoot)) {
    const s = readStat(procRoot, pid);
    if (s) out.push(s);
  }
  return out;
}

/**
 * Parent chain of pid, nearest first (parent, grandparent, ...), following status PPid. Stops at
 * pid 0 (the kernel: parent of init and kthreadd), at a vanished or unreadable pid, at a cycle
 * (only possible in a bad fixture) or after maxDepth steps. [] when pid itself is gone.
 */
export function ancestors(procRoot: string, pid: number, maxDepth = 64): number[] {
  const chain: number[] = [];
  const seen = new Set<number>([pid]);
  let cur = pid;
  while (chain.length < maxDepth) {
    const ppid = readStatus(procRoot, cur)?.ppid;
    if (ppid === null || ppid === undefined || ppid <= 0 || seen.has(ppid)) break;
    chain.push(ppid);
    seen.add(ppid);
    cur = ppid;
  }
  return chain;
}

/**
 * True when pid is one of roots or has one of them as an ancestor. Walks PPid upwards, one status
 * read per level: cheap for the occasional question ("is this new KFD process ours?"). Caveat
 * of any PPid walk: a process whose parent died was re-parented (to init or a subreaper), so an
 * orphaned grandchild no longer counts; descendants() of a live root has the same limit.
 */
export function isDescendantOf(procRoot: string, pid: number, roots: ReadonlySet<number>, maxDepth = 64): boolean {
  if (roots.has(pid)) return true;
  for (const a of ancestors(procRoot, pid, maxDepth)) if (roots.has(a)) return true;
  return false;
}

/**
 * The roots that exist plus every process below them, from ONE scan of <procRoot>/*\/stat (a
 * consistent-enough snapshot; far cheaper than a PPid walk per pid when many pids are asked).
 */
export function descendants(procRoot: string, rootPids: Iterable<number>): Set<number> {
  return subtree(scanStats(procRoot), rootPids);
}

/** descendants() over a scan already made: the roots present in it and everything below them. */
export function subtree(stats: readonly PidStat[], rootPids: Iterable<number>): Set<number> {
  const children = new Map<number, number[]>();
  const present = new Set<number>();
  for (const s of stats) {
    present.add(s.pid);
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const out = new Set<number>();
  const todo: number[] = [];
  const visit = (pid: number): void => {
    if (out.has(pid)) return;
    out.add(pid);
    todo.push(pid);
  };
  for (const r of rootPids) if (present.has(r)) visit(r);
  while (todo.length > 0) for (const c of children.get(todo.pop()!) ?? []) visit(c);
  return out;
}

/**
 * The process groups `groups` spread to: the groups of every descendant of their members, to a
 * fixpoint (members of a newly found group may have descendants in yet other groups). A launcher
 * that starts workers with setsid (torch elastic does: start_new_session=True) puts them out of
 * reach of kill(-pgid); this finds them while their parent chain is intact. Returns the input
 * groups plus the ones found.
 */
export function relatedGroups(stats: readonly PidStat[], groups: Iterable<number>): Set<number> {
  const out = new Set(groups);
  for (let size = -1; size !== out.size; ) {
    size = out.size;
    const members = stats.filter((s) => out.has(s.pgrp)).map((s) => s.pid);
    const below = subtree(stats, members);
    for (const s of stats) if (below.has(s.pid)) out.add(s.pgrp);
  }
  return out;
}

/** Members of process group pgid (zombies included; check `.state === 'Z'`), from one scan. */
export function groupMembers(procRoot: string, pgid: number): PidStat[] {
  return scanStats(procRoot).filter((s) => s.pgrp === pgid);
}

/** Members of pgid that are still running code, i.e. not zombies waiting for their reaper. */
export function liveGroupMembers(procRoot: string, pgid: number): PidStat[] {
  return groupMembers(procRoot, pgid).filter((s) => s.state !== 'Z' && s.state !== 'X');
}
