/**
 * Pure-TS readers of the KFD sysfs trees (SPEC.md §3). Twins of native/kfd/sysfs_reader.cc:
 * same walk order (names sorted bytewise), same tables, same issue wording.
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
import {
  ProcMetric,
  type ProcsRaw,
  type ReadIssue,
  type TopologyNodeRaw,
  type TopologyRaw,
} from './raw.js';

/** root + '/' + rel, without normalising anything else (the native reader builds the same). */
export function underRoot(root: string, rel: string): string {
  let r = root;
  while (r.length > 1 && r.endsWith('/')) r = r.slice(0, -1);
  return r === '/' ? `/${rel}` : `${r}/${rel}`;
}

export const KFD_TOPOLOGY_NODES = 'class/kfd/kfd/topology/nodes';
export const KFD_PROC = 'class/kfd/kfd/proc';

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'EIO';
}

function cannotRead(path: string, err: unknown, severity: 'error' | 'warning' = 'error'): ReadIssue {
  const code = errCode(err);
  return { path, severity, message: `cannot read ${path} (${issueCodeText(code, 'sysfs')})`, code };
}

/** Entry names of a directory, sorted bytewise; null + issue when it cannot be listed. */
function listDir(path: string, issues: ReadIssue[]): string[] | null {
  try {
    return fs.readdirSync(path).sort(bytewise);
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

/**
 * A value file: only a regular file of at most 1 MiB (input-file.ts), read to EOF (sysfs files
 * say 4096 in stat); a FIFO or device in a recorded tree is ENOTREG, never a blocking read.
 */
function readText(path: string): string {
  return readInputFile(path, { kind: 'sysfs' }).toString('latin1');
}

const RE_NUMBER = /^-?\d{1,20}$/;

/** A directory name sysfs prints with "%u": 1..maxDigits digits, no leading zero. */
function numericName(name: string, maxDigits: number): boolean {
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

function badNumber(path: string, text: string, what = 'a number'): ReadIssue {
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return { path, severity: 'error', message: `${path}: expected ${what}, got "${shown.replace(/[^\x20-\x7e]/g, '?')}"` };
}

/** A gpu_id is unsigned: a negative one is an error, not a value (-1 would read as "unreadable"). */
const GPU_ID = 'a gpu_id (a number >= 0)';
const negative = (v: number): boolean => v < 0 || Object.is(v, -0);

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

const GPU_FILE = /^(vram|sdma)_(0|[1-9]\d{0,9})$/;
const GPU_DIR = /^(stats|counters)_(0|[1-9]\d{0,9})$/;
const DIR_FILES: Record<string, [string, number][]> = {
  stats: [
    ['cu_occupancy', ProcMetric.cuOccupancy],
    ['evicted_ms', ProcMetric.evictedMs],
  ],
  counters: [
    ['faults', ProcMetric.faults],
    ['page_in', ProcMetric.pageIn],
    ['page_out', ProcMetric.pageOut],
  ],
};

/**
 * Reads class/kfd/kfd/proc. `pids` restricts the walk (missing pids are not an error: a traced
 * process without KFD state simply has no directory).
 */
export function readKfdProcsTs(sysfsRoot: string, pids?: readonly number[]): ProcsRaw {
  const issues: ReadIssue[] = [];
  const procs: number[] = [];
  const queues: number[] = [];
  const metrics: number[] = [];
  const dir = underRoot(sysfsRoot, KFD_PROC);
  const names = listDir(dir, issues);
  if (!names) return { procs: new Float64Array(), queues: new Float64Array(), metrics: new Float64Array(), issues };
  let list = names.filter((x) => numericName(x, 10)).map(Number).sort((a, b) => a - b);
  if (pids) {
    const want = new Set(pids);
    list = list.filter((p) => want.has(p));
  }

  for (const pid of list) {
    const base = `${dir}/${pid}`;
    const mine: ReadIssue[] = [];
    let sawEnoent = false;
    const failed = (path: string, err: unknown): void => {
      const gone = errCode(err) === 'ENOENT';
      sawEnoent ||= gone;
      mine.push(cannotRead(path, err, gone ? 'warning' : 'error'));
    };
    const num = (path: string, gpuId = false): number | null => {
      let text: string;
      try {
        text = readText(path);
      } catch (err) {
        failed(path, err);
        return null;
      }
      const v = parseSysfsNumber(text);
      if (v === null) mine.push(badNumber(path, text));
      else if (gpuId && negative(v)) {
        mine.push(badNumber(path, text, GPU_ID));
        return null;
      }
      return v;
    };
    const list = (path: string): string[] | null => {
      try {
        return fs.readdirSync(path).sort(bytewise);
      } catch (err) {
        failed(path, err);
        return null;
      }
    };

    const entries = list(base);
    if (!entries) {
      issues.push(sawEnoent ? { path: base, severity: 'warning', message: `process ${pid} exited while being read` } : mine[0]);
      continue;
    }
    const row = procs.length / 6;
    const firstQueue = queues.length / 5;
    let pasid = -1;
    const mets: number[][] = [];
    for (const e of entries) {
      let m: RegExpExecArray | null;
      if (e === 'pasid') {
        pasid = num(`${base}/pasid`) ?? -1;
      } else if ((m = GPU_FILE.exec(e))) {
        const v = num(`${base}/${e}`);
        if (v !== null) mets.push([m[1] === 'vram' ? ProcMetric.vram : ProcMetric.sdma, Number(m[2]), v]);
      } else if ((m = GPU_DIR.exec(e))) {
        const sub = list(`${base}/${e}`);
        if (!sub) continue;
        for (const [file, code] of DIR_FILES[m[1]]) {
          if (!sub.includes(file)) continue;
          const v = num(`${base}/${e}/${file}`);
          if (v !== null) mets.push([code, Number(m[2]), v]);
        }
      } else if (e === 'queues') {
        const qnames = list(`${base}/queues`);
        if (!qnames) continue;
        const qids = qnames.filter((x) => numericName(x, 10)).map(Number).sort((a, b) => a - b);
        for (const qid of qids) {
          const q = `${base}/queues/${qid}`;
          const before = mine.length;
          const type = num(`${q}/type`);
          const size = num(`${q}/size`);
          const gpu = num(`${q}/gpuid`, true);
          if (mine.length > before && !fs.existsSync(q)) {
            // destroyed while we read it: one note instead of three failed reads
            mine.length = before;
            mine.push({ path: q, severity: 'warning', message: `queue ${qid} of process ${pid} vanished while being read` });
            continue;
          }
          queues.push(row, qid, type ?? -1, size ?? -1, gpu ?? -1);
        }
      }
    }
    // gone by now: it exited while we read it, whatever we managed to read is stale
    if (!fs.existsSync(base)) {
      queues.length = firstQueue * 5;
      issues.push({ path: base, severity: 'warning', message: `process ${pid} exited while being read` });
      continue;
    }
    // metrics ordered by (gpu, code) so both readers agree whatever the directory order
    mets.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const firstMetric = metrics.length / 4;
    for (const [code, gpu, v] of mets) metrics.push(row, code, gpu, v);
    procs.push(pid, pasid, firstQueue, queues.length / 5 - firstQueue, firstMetric, mets.length);
    issues.push(...mine);
  }
  return {
    procs: Float64Array.from(procs),
    queues: Float64Array.from(queues),
    metrics: Float64Array.from(metrics),
    issues,
  };
}
