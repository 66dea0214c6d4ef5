/**
 * Pure-TS readers of the KFD sysfs trees. Twins of native/kfd/sysfs_reader.cc and
 * native/kfd/sysfs_files.cc: same walk order (names sorted bytewise), same tables, same issue
 * wording. The proc tree is read by sysfs-procs.ts (readKfdProcsTs is its full walk).
 *
 *   <root>/class/kfd/kfd/topology/nodes/<n>/{gpu_id,name,properties}
 *   <root>/class/kfd/kfd/proc/<pid>/{pasid,vram_<gpu>,sdma_<gpu>,stats_<gpu>/*,counters_<gpu>/*,queues/<qid>/*}
 *
 * Queue files have no trailing newline; all other values end with one. A process can exit (and a
 * queue be destroyed) between listing a directory and reading its files: such a process is
 * dropped with one warning, not reported half-read.
 */
import fs from 'node:fs';
import { issueCodeText, readInputFile } from '../input-file.js';
import { timedIo } from './io-clock.js';
import { ProcsWalkerTs } from './sysfs-procs.js';
import {
  type ProcsRaw,
  type ReadIssue,
  type TopologyNodeRaw,
  type TopologyRaw,
} from './raw.js';

export { underRoot } from '../roots.js';
import { underRoot } from '../roots.js';

export const KFD_TOPOLOGY_NODES = 'class/kfd/kfd/topology/nodes';
export const KFD_PROC = 'class/kfd/kfd/proc';

export function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'EIO';
}

export function cannotRead(path: string, err: unknown, severity: 'error' | 'warning' = 'error'): ReadIssue {
  const code = errCode(err);
  return { path, severity, message: `cannot read ${path} (${issueCodeText(code, 'sysfs')})`, code };
}

/** Entry names of a directory, sorted bytewise; null + issue when it cannot be listed. */
function listDir(path: string, issues: ReadIssue[]): string[] | null {
  try {
    return readDirSorted(path);
  } catch (err) {
    issues.push(cannotRead(path, err));
    return null;
  }
}

/** The issue that says a walk failed as a whole (its top directory could not be listed), if any. */
export function topLevelFailure(dir: string, issues: readonly ReadIssue[]): ReadIssue | undefined {
  return issues.find((i) => i.path === dir && i.code !== undefined);
}

export function bytewise(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** fs.readdirSync sorted bytewise (the native reader's order); throws like readdirSync. */
export function readDirSorted(path: string): string[] {
  return timedIo(() => fs.readdirSync(path)).sort(bytewise);
}

/** fs.existsSync, timed as a file-system call. */
export function pathExists(path: string): boolean {
  return timedIo(() => fs.existsSync(path));
}

/**
 * A value file: only a regular file of at most 1 MiB (input-file.ts), read to EOF (sysfs files
 * say 4096 in stat); a FIFO or device in a recorded tree is ENOTREG, never a blocking read.
 */
export function readText(path: string): string {
  return timedIo(() => readInputFile(path, { kind: 'sysfs' })).toString('latin1');
}

const RE_NUMBER = /^-?\d{1,20}$/;

/** A directory name sysfs prints with "%u": 1..maxDigits digits, no leading zero. */
export function numericName(name: string, maxDigits: number): boolean {
  return name.length <= maxDigits && /^(0|[1-9]\d*)$/.test(name);
}

/** A value without its one trailing newline (LF or CR LF: a tree copied through Windows). */
function chompLine(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** A sysfs number: digits, one optional trailing newline. */
export function parseSysfsNumber(text: string): number | null {
  const t = chompLine(text);
  return RE_NUMBER.test(t) ? Number(t) : null;
}

export function badNumber(path: string, text: string, what = 'a number'): ReadIssue {
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return { path, severity: 'error', message: `${path}: expected ${what}, got "${shown.replace(/[^\x20-\x7e]/g, '?')}"` };
}

/** A gpu_id is unsigned: a negative one is an error, not a value (-1 would read as "unreadable"). */
export const GPU_ID = 'a gpu_id (a number >= 0)';
export const negative = (v: number): boolean => v < 0 || Object.is(v, -0);

/** Reads every topology node (CPU nodes included, gpuId 0). */
export function readTopologyTs(sysfsRoot: string): TopologyRaw {
  const issues: ReadIssue[] = [];
  const nodes: TopologyNodeRaw[] = [];
  const dir = underRoot(sysfsRoot, KFD_TOPOLOGY_NODES);
  const names = listDir(dir, issues);
  if (!names) return { nodes, issues };
  const ids = names.filter((x) => numericName(x, 9)).map(Number).sort((a, b) => a - b);
  for (const id of ids) {
    const base = `${dir}/${id}`;
    let gpuText: string;
    let name: string;
    let props: string;
    try {
      gpuText = readText(`${base}/gpu_id`);
    } catch (err) {
      issues.push(cannotRead(`${base}/gpu_id`, err));
      continue;
    }
    const gpuId = parseSysfsNumber(gpuText);
    if (gpuId === null || negative(gpuId)) {
      issues.push(badNumber(`${base}/gpu_id`, gpuText, gpuId === null ? undefined : GPU_ID));
      continue;
    }
    try {
      name = chompLine(readText(`${base}/name`));
    } catch (err) {
      issues.push(cannotRead(`${base}/name`, err));
      continue;
    }
    try {
      props = readText(`${base}/properties`);
    } catch (err) {
      issues.push(cannotRead(`${base}/properties`, err));
      continue;
    }
    const keys: string[] = [];
    const values: string[] = [];
    const lines = props.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, i) => {
      const l = line.endsWith('\r') ? line.slice(0, -1) : line;
      const sp = l.indexOf(' ');
      if (sp <= 0 || sp === l.length - 1) {
        issues.push({
          path: `${base}/properties`,
          severity: 'warning',
          message: `${base}/properties:${i + 1}: malformed property line "${l.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}"`,
        });
        return;
      }
      keys.push(l.slice(0, sp));
      values.push(l.slice(sp + 1));
    });
    nodes.push({ node: id, gpuId, name, keys, values });
  }
  return { nodes, issues };
}

/**
 * Reads class/kfd/kfd/proc, every file of it. `pids` restricts the walk (missing pids are not an
 * error: a traced process without KFD state simply has no directory).
 */
export function readKfdProcsTs(sysfsRoot: string, pids?: readonly number[]): ProcsRaw {
  return new ProcsWalkerTs(sysfsRoot, { walk: 'full' }).read(pids);
}
