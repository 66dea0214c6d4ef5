/**
 * Reading class/kfd/kfd/proc, whole or incrementally. Twin of native/kfd/sysfs_procs.cc (read the
 * two side by side): same walk order, same tables, same issues; the header comment there says what
 * an incremental read re-reads and what it repeats. With countersEvery 1 every read of a tree
 * equals a full walk of it.
 *
 * One difference in means, not in result: readdir() gives the native walker each entry's inode
 * for free, while Node's readdirSync gives names only, so this walker stat()s the directories it
 * knows (one call each instead of the three open/read/close of each queue file).
 */
import { KFD_PROC, badNumber, cannotRead, errCode, GPU_ID, negative, numericName, parseSysfsNumber, pathExists, readDirSorted, readText, underRoot } from './sysfs-reader.js';
import { timedIo } from './io-clock.js';
import fs from 'node:fs';
import { ProcsMetricCol as M, ProcsProcCol as P, ProcsQueueCol as Q } from './columns.js';
import { PROCS_METRIC_COLS, PROCS_PROC_COLS, PROCS_QUEUE_COLS, ProcMetric, type ProcsRaw, type ReadIssue } from './raw.js';
import type { SysfsWalk, WalkStats } from '../native.js';

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

/** qid, type, size, gpuId (-1 = unreadable) */
type QueueRow = [number, number, number, number];
/** metric code, gpuId, value */
type MetricRow = [number, number, number];
/** queues read without issues, by qid, with their directory's inode then */
type QueueMemo = Map<number, { ino: number; row: QueueRow }>;

/** One process's rows and issues, as both walks emit them. */
interface ProcRows {
  pasid: number;
  metrics: MetricRow[];
  queues: QueueRow[];
  issues: ReadIssue[];
  /** issues that came from queues */
  queueIssues: number;
  /** the directory had a queues/ entry */
  hasQueues: boolean;
}

interface KnownProcess {
  ino: number;
  /** the last full read had no issue outside the queues: pasid and counters can be repeated */
  clean: boolean;
  pasid: number;
  metrics: MetricRow[];
  queues: QueueMemo;
  /** queues/ was there (KFD makes it with the process; a recorded tree may lack it) */
  hasQueues: boolean;
}

/** The issues of one process (`mine`) and the reads that add to them. */
class Issues {
  sawEnoent = false;
  constructor(readonly mine: ReadIssue[]) {}

  failed(path: string, err: unknown): void {
    const gone = errCode(err) === 'ENOENT';
    this.sawEnoent ||= gone;
    this.mine.push(cannotRead(path, err, gone ? 'warning' : 'error'));
  }
  /** the value, or null after an issue */
  num(path: string, gpuId = false): number | null {
    let text: string;
    try {
      text = readText(path);
    } catch (err) {
      this.failed(path, err);
      return null;
    }
    const v = parseSysfsNumber(text);
    if (v === null) this.mine.push(badNumber(path, text));
    else if (gpuId && negative(v)) {
      this.mine.push(badNumber(path, text, GPU_ID));
      return null;
    }
    return v;
  }
  list(path: string): string[] | null {
    try {
      return readDirSorted(path);
    } catch (err) {
      this.failed(path, err);
      return null;
    }
  }
}

/** A directory's inode, or null when it cannot be stat()ed (then it is read as new). */
function inode(path: string): number | null {
  try {
    return timedIo(() => fs.statSync(path)).ino;
  } catch {
    return null;
  }
}

const numericIds = (names: string[]): number[] => names.filter((x) => numericName(x, 10)).map(Number).sort((a, b) => a - b);

export interface ProcsWalkerOptions {
  /** default 'incremental' */
  walk?: SysfsWalk;
  /** incremental: re-read process directories and counters every N-th read (>= 1); default 1 */
  countersEvery?: number;
}

export class ProcsWalkerTs {
  readonly incremental: boolean;
  private readonly countersEvery: number;
  private reads = 0;
  private known = new Map<number, KnownProcess>();
  private stats: WalkStats = { processes: 0, processesRead: 0, queuesRead: 0, queuesReused: 0 };

  constructor(
    private readonly sysfsRoot: string,
    opts: ProcsWalkerOptions = {},
  ) {
    this.incremental = (opts.walk ?? 'incremental') === 'incremental';
    this.countersEvery = Math.max(1, Math.floor(opts.countersEvery ?? 1));
  }

  lastStats(): WalkStats {
    return { ...this.stats };
  }

  /** One read of the proc tree; `pids` restricts it. */
  read(pids?: readonly number[] | null): ProcsRaw {
    this.stats = { processes: 0, processesRead: 0, queuesRead: 0, queuesReused: 0 };
    const out: Tables = { procs: [], queues: [], metrics: [], issues: [] };
    const dir = underRoot(this.sysfsRoot, KFD_PROC);
    let names: string[];
    try {
      names = readDirSorted(dir);
    } catch (err) {
      this.known.clear();
      return { procs: new Float64Array(), queues: new Float64Array(), metrics: new Float64Array(), issues: [cannotRead(dir, err)] };
    }
    const countersDue = this.reads++ % this.countersEvery === 0;
    const want = pids ? new Set(pids) : null;
    const next = new Map<number, KnownProcess>();
    for (const pid of numericIds(names)) {
      if (want && !want.has(pid)) continue;
      this.stats.processes++;
      const base = `${dir}/${pid}`;
      const ino = this.incremental ? inode(base) : null;
      const prev = this.incremental ? this.known.get(pid) : undefined;
      // a pid directory with another inode is another process that got the same pid
      const k = prev !== undefined && ino !== null && prev.ino === ino ? prev : null;
      const known = this.readKnown(base, pid, k, countersDue, out);
      if (known) {
        next.set(pid, known);
        continue;
      }
      const rows = emptyRows();
      const learned: QueueMemo | null = this.incremental ? new Map() : null;
      const instead = this.readProcess(base, pid, k?.queues ?? null, learned, rows);
      if (instead) {
        out.issues.push(instead);
        continue;
      }
      append(pid, rows, out);
      if (learned && ino !== null) next.set(pid, { ino, clean: rows.issues.length === rows.queueIssues, pasid: rows.pasid, metrics: rows.metrics, queues: learned, hasQueues: rows.hasQueues });
    }
    this.known = next;
    return { procs: Float64Array.from(out.procs), queues: Float64Array.from(out.queues), metrics: Float64Array.from(out.metrics), issues: out.issues };
  }

  /** A known, clean process between counter reads: its queues only. null = read it in full. */
  private readKnown(base: string, pid: number, k: KnownProcess | null, countersDue: boolean, out: Tables): KnownProcess | null {
    if (!k || !k.clean || countersDue) return null;
    const rows: ProcRows = { ...emptyRows(), pasid: k.pasid, metrics: k.metrics };
    const learned: QueueMemo = new Map();
    // queues/ unreadable (the process is exiting?): read it as a full walk would, with its issues
    if (k.hasQueues && this.readQueues(base, pid, k.queues, learned, rows, new Issues(rows.issues)) !== null) return null;
    append(pid, rows, out);
    return { ...k, queues: learned };
  }

  /** Reads <base>/queues; the error when it cannot be listed (nothing added then). */
  private readQueues(base: string, pid: number, known: QueueMemo | null, learned: QueueMemo | null, rows: ProcRows, issues: Issues): unknown {
    const dir = `${base}/queues`;
    let names: string[];
    try {
      names = readDirSorted(dir);
    } catch (err) {
      return err;
    }
    const mine = issues.mine;
    for (const qid of numericIds(names)) {
      const q = `${dir}/${qid}`;
      const ino = learned ? inode(q) : null;
      const hit = known?.get(qid);
      if (hit && ino !== null && hit.ino === ino) {
        rows.queues.push(hit.row);
        learned!.set(qid, hit);
        this.stats.queuesReused++;
        continue;
      }
      this.stats.queuesRead++;
      const before = mine.length;
      const type = issues.num(`${q}/type`);
      const size = issues.num(`${q}/size`);
      const gpu = issues.num(`${q}/gpuid`, true);
      if (mine.length > before && !pathExists(q)) {
        // destroyed while we read it: one note instead of three failed reads
        mine.length = before;
        mine.push({ path: q, severity: 'warning', message: `queue ${qid} of process ${pid} vanished while being read` });
        continue;
      }
      const row: QueueRow = [qid, type ?? -1, size ?? -1, gpu ?? -1];
      rows.queues.push(row);
      // only what read cleanly is repeated later; a queue with an issue is read again next time
      if (learned && ino !== null && mine.length === before) learned.set(qid, { ino, row });
    }
    return null;
  }

  /** A process in full (its queues from `known` where unchanged); the one issue that stands for it when it is gone or unreadable. */
  private readProcess(base: string, pid: number, known: QueueMemo | null, learned: QueueMemo | null, rows: ProcRows): ReadIssue | null {
    this.stats.processesRead++;
    const issues = new Issues(rows.issues);
    const entries = issues.list(base);
    if (!entries) return issues.sawEnoent ? { path: base, severity: 'warning', message: `process ${pid} exited while being read` } : rows.issues[0];
    for (const e of entries) {
      let m: RegExpExecArray | null;
      if (e === 'pasid') {
        rows.pasid = issues.num(`${base}/pasid`) ?? -1;
      } else if ((m = GPU_FILE.exec(e))) {
        const v = issues.num(`${base}/${e}`);
        if (v !== null) rows.metrics.push([m[1] === 'vram' ? ProcMetric.vram : ProcMetric.sdma, Number(m[2]), v]);
      } else if ((m = GPU_DIR.exec(e))) {
        const sub = issues.list(`${base}/${e}`);
        if (!sub) continue;
        for (const [file, code] of DIR_FILES[m[1]]) {
          if (!sub.includes(file)) continue;
          const v = issues.num(`${base}/${e}/${file}`);
          if (v !== null) rows.metrics.push([code, Number(m[2]), v]);
        }
      } else if (e === 'queues') {
        rows.hasQueues = true;
        const before = rows.issues.length;
        const err = this.readQueues(base, pid, known, learned, rows, issues);
        if (err !== null) issues.failed(`${base}/queues`, err);
        else rows.queueIssues += rows.issues.length - before;
      }
    }
    // gone by now: it exited while we read it, whatever we managed to read is stale
    if (!pathExists(base)) return { path: base, severity: 'warning', message: `process ${pid} exited while being read` };
    // ordered by (gpu, code) so both readers agree whatever the directory order
    rows.metrics.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    return null;
  }
}

interface Tables {
  procs: number[];
  queues: number[];
  metrics: number[];
  issues: ReadIssue[];
}

const emptyRows = (): ProcRows => ({ pasid: -1, metrics: [], queues: [], issues: [], queueIssues: 0, hasQueues: false });

/** Appends one row of `cols` columns, each set by its name (src/kfd/columns.ts). */
function pushRow(table: number[], cols: number, set: (r: number[]) => void): void {
  const r = new Array<number>(cols).fill(NaN);
  set(r);
  for (const v of r) table.push(v);
}

function append(pid: number, rows: ProcRows, out: Tables): void {
  const row = out.procs.length / PROCS_PROC_COLS;
  const firstQueue = out.queues.length / PROCS_QUEUE_COLS;
  const firstMetric = out.metrics.length / PROCS_METRIC_COLS;
  for (const [qid, type, size, gpu] of rows.queues) {
    pushRow(out.queues, PROCS_QUEUE_COLS, (r) => {
      r[Q.proc] = row;
      r[Q.qid] = qid;
      r[Q.type] = type;
      r[Q.size] = size;
      r[Q.gpuId] = gpu;
    });
  }
  for (const [code, gpu, v] of rows.metrics) {
    pushRow(out.metrics, PROCS_METRIC_COLS, (r) => {
      r[M.proc] = row;
      r[M.metric] = code;
      r[M.gpuId] = gpu;
      r[M.value] = v;
    });
  }
  pushRow(out.procs, PROCS_PROC_COLS, (r) => {
    r[P.pid] = pid;
    r[P.pasid] = rows.pasid;
    r[P.firstQueue] = firstQueue;
    r[P.queueCount] = rows.queues.length;
    r[P.firstMetric] = firstMetric;
    r[P.metricCount] = rows.metrics.length;
  });
  out.issues.push(...rows.issues);
}
