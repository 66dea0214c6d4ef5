/**
 * The process table (a row per process with its sysfs counters, a row per queue under it) and
 * the lifecycle ticker of `gpucolo top`.
 */
import type { KfdProcGpuStats } from '../kfd/types.js';
import type { TraceEvent, TraceProcess, TraceQueue, TraceSample } from '../trace/schema.js';
import type { TopSort } from './keys.js';
import type { TopProcessInfo } from './state.js';
import { fmtBytes, fmtMs, fmtNum, fmtT, plain, tableLines, type FrameLine } from './text.js';

/** Tags A..Z, a..z by pid order (the grid marks slots with them), '#' after 52 processes. */
export function processTags(sample: TraceSample | null): Map<number, string> {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const pids = (sample?.processes ?? []).map((p) => p.pid).sort((a, b) => a - b);
  return new Map(pids.map((pid, i) => [pid, ALPHABET[i] ?? '#']));
}

/**
 * A counter summed over the process's GPUs; null (shown '-') when no GPU reports it or any GPU
 * lacks it: a partial sum would pass for the whole.
 */
function total(gpus: KfdProcGpuStats[] | undefined, field: keyof Omit<KfdProcGpuStats, 'gpuId'>): number | null {
  if (!gpus || gpus.length === 0 || gpus.some((g) => g[field] === undefined)) return null;
  return gpus.reduce((a, g) => a + (g[field] as number), 0);
}

const LEVEL_RANK = { high: 3, normal: 2, low: 1 } as const;

/** The highest priority level of a process's queues (3 high .. 1 low, 0 unknown). */
function topLevel(p: TraceProcess): number {
  return Math.max(0, ...p.queues.map((q) => (q.priority?.level ? LEVEL_RANK[q.priority.level] : 0)));
}

export function sortProcesses(list: TraceProcess[], sort: TopSort, procs: Map<number, TopProcessInfo> | null): TraceProcess[] {
  const vram = (p: TraceProcess): number => total(procs?.get(p.pid)?.gpus, 'vramBytes') ?? -1;
  const key: Record<TopSort, (a: TraceProcess, b: TraceProcess) => number> = {
    pid: () => 0,
    queues: (a, b) => b.queues.length - a.queues.length,
    vram: (a, b) => vram(b) - vram(a),
    priority: (a, b) => topLevel(b) - topLevel(a),
  };
  return [...list].sort((a, b) => key[sort](a, b) || a.pid - b.pid);
}

function typesOf(p: TraceProcess): string {
  const n = new Map<string, number>();
  for (const q of p.queues) n.set(q.type, (n.get(q.type) ?? 0) + 1);
  return [...n].map(([t, c]) => `${c} ${t}`).join(', ') || '-';
}

const gpusOf = (p: TraceProcess): string => [...new Set(p.queues.map((q) => (q.node ?? q.gpuId ?? '?').toString()))].join(',') || '-';

function processRow(p: TraceProcess, tag: string, info: TopProcessInfo | undefined, known: boolean): string[] {
  const g = info?.gpus;
  const name = known ? (info?.name ?? '?') : '-';
  return [
    tag,
    p.nsPid !== null ? `${p.pid} (${p.nsPid})` : String(p.pid),
    name.slice(0, 16),
    String(p.queues.length),
    typesOf(p),
    gpusOf(p),
    fmtBytes(total(g, 'vramBytes')),
    fmtMs(total(g, 'sdmaUs') === null ? null : total(g, 'sdmaUs')! * 1e3),
    fmtMs(total(g, 'evictedMs') === null ? null : total(g, 'evictedMs')! * 1e6),
    fmtNum(total(g, 'cuOccupancy')),
    fmtNum(total(g, 'faults')),
    `${fmtNum(total(g, 'pageIn'))}/${fmtNum(total(g, 'pageOut'))}`,
  ];
}

/** "p0 q2 x4" when every XCC uses the same pipe/queue, else the slots "inst/pipe/queue". */
function slotsText(q: TraceQueue): string {
  if (q.sdma) return `sdma ${q.sdma[0]}/${q.sdma[1]}${q.sdma[2] === null ? ' (active ?)' : q.sdma[2] ? '' : ' (inactive)'}`;
  if (q.hqds === null) return '?';
  if (q.hqds.length === 0) return 'none';
  const active = q.hqds.filter((h) => h[3] === 1).length;
  const unknown = q.hqds.filter((h) => h[3] === null).length;
  const same = q.hqds.every((h) => h[1] === q.hqds![0][1] && h[2] === q.hqds![0][2]);
  const where = same ? `p${q.hqds[0][1]} q${q.hqds[0][2]} x${q.hqds.length}` : q.hqds.map((h) => `${h[0]}/${h[1]}/${h[2]}`).join(' ');
  return `${where}, ${active} active${unknown ? `, ${unknown} ?` : ''}`;
}

function queueRow(q: TraceQueue): string {
  const prio = q.priority ? `${q.priority.level ?? '?'} ${q.priority.pipe}/${q.priority.queue}` : q.type.startsWith('sdma') ? '-' : '?';
  const runlist = q.inRunlist === null ? '?' : q.inRunlist ? 'yes' : 'no';
  const gpu = q.node !== null ? `node ${q.node}` : `gpu ${q.gpuId ?? '?'}`;
  return `    ${q.qid === null ? 'q?' : `q${q.qid}`}  ${q.type}  ${gpu}  prio ${prio}  slots ${slotsText(q)}  runlist ${runlist}`;
}

const PROCESS_HEADER = ['', 'PID', 'NAME', 'QUEUES', 'TYPES', 'GPUS', 'VRAM', 'SDMA', 'EVICTED', 'CU OCC', 'FAULTS', 'PAGE IN/OUT'];

/**
 * The process table: a header, then per process its row and one row per queue. `procs` null
 * means the sysfs counters are not known (a trace): their columns show '-'.
 */
export function processLines(list: TraceProcess[], tags: Map<number, string>, procs: Map<number, TopProcessInfo> | null): FrameLine[] {
  const rows = list.map((p) => processRow(p, tags.get(p.pid) ?? '#', procs?.get(p.pid), procs !== null));
  const table = tableLines(PROCESS_HEADER, rows);
  const out: FrameLine[] = [table[0]];
  list.forEach((p, i) => {
    out.push(table[i + 1]);
    for (const q of p.queues) out.push(plain(queueRow(q), 'dim'));
  });
  return out;
}

/** The events the ticker shows: lifecycle, not slot mapping (the grid shows that). */
const TICKER_EVENTS = new Set(['process-started', 'process-exited', 'queue-created', 'queue-destroyed', 'priority-changed']);

const pq = (x: { pipe: number; queue: number } | null | undefined): string => (x ? `${x.pipe}/${x.queue}` : '?');

function eventText(e: TraceEvent): string {
  const q = e.key !== undefined ? ` ${e.qid === null || e.qid === undefined ? e.key : `q${e.qid}`} ${e.type ?? ''}${e.gpuId ? ` gpu ${e.gpuId}` : ''}` : '';
  const change = e.event === 'priority-changed' ? ` pipe/queue priority ${pq(e.from)} -> ${pq(e.to)}` : '';
  return `${fmtT(e.t_ns)}  ${e.event.padEnd(16)} pid ${e.pid}${q}${change}`;
}

export function tickerEvents(events: TraceEvent[], filterPid: number | null): TraceEvent[] {
  return events.filter((e) => TICKER_EVENTS.has(e.event) && (filterPid === null || e.pid === filterPid));
}

/** The newest `max` events, newest last. */
export function eventLines(events: TraceEvent[], max: number): FrameLine[] {
  return events.slice(Math.max(0, events.length - max)).map((e) => plain(eventText(e), e.event.endsWith('exited') || e.event.endsWith('destroyed') ? 'warn' : undefined));
}
