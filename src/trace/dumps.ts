/**
 * Reads a directory of plain `cat` dumps left by the shell-loop experiments that came before the
 * tracer (`sudo cat /sys/kernel/debug/kfd/mqds > snapshot_mqd_$i_$(date +%s).txt` every 10 s) and
 * turns it into the same in-memory trace as readTrace, so one analysis serves both.
 *
 * Files understood (anything else is ignored):
 *   baseline_mqd.txt, baseline_hqd.txt                  sample 0, followed by a 'baseline-end' marker
 *   snapshot_mqd_<i>[_<ts>].txt, snapshot_hqd_<i>[_<ts>].txt   paired by <i>
 *   final_mqd.txt, final_hqd.txt                        the last sample (the loop's after-exit dump)
 * <ts> is unix seconds or YYYYmmdd_HHMMSS. Times: t_ns = (ts - first ts) + one interval when every
 * snapshot has a <ts> (interval = median step between them), else i x 10 s; the baseline sits at
 * t_ns 0 and the final dump one interval after the last snapshot. Those placements are assumptions
 * and are written into `origin.notes`, as is everything else the dumps cannot say (no sysfs, so no
 * queue ids; no read costs; GPUs and XCC counts inferred from the hqds dump).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode } from '../errors.js';
import { issueCodeText, readInputFile } from '../input-file.js';
import { pickImpl, type Impl } from '../native.js';
import { VERSION } from '../version.js';
import { joinQueues } from '../kfd/join.js';
import { parseHqds, parseMqds } from '../kfd/parse.js';
import type { Hqds, Mqds } from '../kfd/types.js';
import { compactQueue, uniqueKeys } from './assemble.js';
import { EventDeriver } from './events.js';
import { badTrace, type Trace } from './read.js';
import { TRACE_SCHEMA, type TraceEvent, type TraceGpu, type TraceHeader, type TraceProcess, type TraceSample } from './schema.js';

/** The shell loop's interval, used when the file names carry no time. */
export const DEFAULT_DUMP_INTERVAL_NS = 10e9;

export interface DumpFile {
  kind: 'mqd' | 'hqd';
  /** 'baseline' | 'snapshot' | 'final' */
  role: 'baseline' | 'snapshot' | 'final';
  /** snapshot number; -1 for baseline, +Infinity for final */
  index: number;
  /** unix seconds from the name, null when the name has none */
  unixSeconds: number | null;
  file: string;
}

const RE_SNAPSHOT = /^snapshot_(mqd|hqd)_(\d{1,9})(?:_(\d{8}_\d{6}|\d{1,12}))?\.txt$/;
const RE_FIXED = /^(baseline|final)_(mqd|hqd)\.txt$/;

/** Unix seconds of a file-name time stamp: plain seconds or YYYYmmdd_HHMMSS (read as UTC: only differences matter). */
export function stampSeconds(stamp: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!m) return /^\d+$/.test(stamp) ? Number(stamp) : null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
}

/** Classifies one directory entry, or null when it is not a dump this reader knows. */
export function classifyDumpName(name: string): Omit<DumpFile, 'file'> | null {
  const s = RE_SNAPSHOT.exec(name);
  if (s) return { kind: s[1] as 'mqd' | 'hqd', role: 'snapshot', index: Number(s[2]), unixSeconds: s[3] ? stampSeconds(s[3]) : null };
  const f = RE_FIXED.exec(name);
  if (f) {
    const role = f[1] as 'baseline' | 'final';
    return { kind: f[2] as 'mqd' | 'hqd', role, index: role === 'baseline' ? -1 : Infinity, unixSeconds: null };
  }
  return null;
}

/** One point in time: the mqds and/or hqds dump taken then. */
interface DumpPoint {
  role: DumpFile['role'];
  index: number;
  unixSeconds: number | null;
  mqd: string | null;
  hqd: string | null;
}

function listDumps(dir: string): DumpPoint[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot read ${dir} (${code})`, { code, path: dir });
  }
  const points = new Map<string, DumpPoint>();
  for (const name of names) {
    const c = classifyDumpName(name);
    if (!c) continue;
    const id = `${c.role}/${c.index}`;
    let p = points.get(id);
    if (!p) points.set(id, (p = { role: c.role, index: c.index, unixSeconds: null, mqd: null, hqd: null }));
    p[c.kind] = path.join(dir, name);
    // the mqds dump is taken first in the loop: its stamp names the point
    if (c.unixSeconds !== null && (p.unixSeconds === null || c.kind === 'mqd')) p.unixSeconds = c.unixSeconds;
  }
  return [...points.values()].sort((a, b) => a.index - b.index);
}

function readDump(file: string): Buffer {
  try {
    return readInputFile(file, { kind: 'debugfs' });
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot read ${file} (${issueCodeText(code, 'debugfs')})`, { code, path: file });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** t_ns of every point (same order), the interval used and how the times were obtained. */
function placeInTime(points: DumpPoint[], notes: string[]): { t: number[]; intervalNs: number; times: Trace['origin']['times'] } {
  const snaps = points.filter((p) => p.role === 'snapshot');
  const stamped = snaps.length > 0 && snaps.every((p) => p.unixSeconds !== null);
  let intervalNs = DEFAULT_DUMP_INTERVAL_NS;
  let snapT: (p: DumpPoint) => number;
  if (stamped) {
    const secs = snaps.map((p) => p.unixSeconds!);
    const steps = secs.slice(1).map((s, i) => s - secs[i]).filter((d) => d > 0);
    if (steps.length) intervalNs = median(steps) * 1e9;
    else notes.push(`one distinct snapshot time only: interval assumed ${DEFAULT_DUMP_INTERVAL_NS / 1e9} s`);
    const t0 = secs.reduce((a, b) => Math.min(a, b));
    snapT = (p) => (p.unixSeconds! - t0) * 1e9 + intervalNs;
    notes.push(`times from the file names (1 s resolution); interval ${intervalNs / 1e9} s (median step)`);
  } else {
    const first = snaps.length ? snaps[0].index : 0;
    snapT = (p) => (p.index - first + 1) * intervalNs;
    if (snaps.length) notes.push(`file names carry no times: snapshot i placed at i x ${intervalNs / 1e9} s (assumed, as in the shell loop)`);
  }
  const lastSnap = snaps.length ? snapT(snaps[snaps.length - 1]) : 0;
  const t = points.map((p) => (p.role === 'baseline' ? 0 : p.role === 'final' ? lastSnap + intervalNs : snapT(p)));
  if (points.some((p) => p.role === 'baseline') && snaps.length) notes.push('baseline time not recorded: placed one interval before the first snapshot');
  if (points.some((p) => p.role === 'final')) notes.push('final dump time not recorded: placed one interval after the last snapshot');
  return { t, intervalNs, times: stamped ? 'file-names' : 'assumed-interval' };
}

interface ParsedPoint {
  mqds: Mqds;
  hqds: Hqds | null;
  issues: string[];
}

function parsePoint(p: DumpPoint, impl: Impl): ParsedPoint {
  const issues: string[] = [];
  const mqds = parseMqds(readDump(p.mqd!), { impl, file: p.mqd! });
  const hqds = p.hqd ? parseHqds(readDump(p.hqd), { impl, file: p.hqd }) : null;
  for (const parsed of [mqds, hqds]) {
    if (!parsed) continue;
    for (const i of parsed.issues) issues.push(`${path.basename(parsed.file ?? '?')}:${i.line}: ${i.message}`);
    if (parsed.suppressed > 0) issues.push(`${path.basename(parsed.file ?? '?')}: ${parsed.suppressed} more issue(s)`);
  }
  if (!hqds) issues.push(`no hqds dump for this point: HQD slots unknown`);
  return { mqds, hqds, issues };
}

function toSample(parsed: ParsedPoint, seq: number, tNs: number): TraceSample {
  const joined = joinQueues({ mqds: parsed.mqds, hqds: parsed.hqds });
  const processes: TraceProcess[] = joined.processes.map((p) => ({
    pid: p.pid,
    nsPid: null,
    queues: uniqueKeys(p.queues.map((q) => compactQueue(p.pid, q, parsed.hqds !== null))),
  }));
  return {
    kind: 'sample',
    t_ns: tNs,
    seq,
    intended_ns: tNs,
    read_ns: 0,
    parse_ns: 0,
    join_ns: 0,
    debugfs: true,
    missed: 0,
    processes,
    unmatchedHqds: joined.unmatchedHqds.filter((h) => h.kind === 'cp').map((h) => [h.node, h.inst, h.pipe, h.queue]),
    issues: [...parsed.issues, ...joined.warnings],
  };
}

/**
 * GPUs as the hqds dumps show them: node, gpu_id and the number of distinct Inst (XCC) values;
 * GPUs only seen in mqds get their XCC count from the MQD blocks per compute queue.
 */
function gpusOf(parsed: ParsedPoint[]): TraceGpu[] {
  const gpus = new Map<string, TraceGpu>();
  for (const p of parsed) {
    for (const n of p.hqds?.nodes ?? []) {
      const insts = new Set(n.slots.filter((s) => s.kind !== 'sdma').map((s) => s.inst)).size;
      const g = gpus.get(n.gpuId);
      if (!g) gpus.set(n.gpuId, { node: n.node, gpuId: n.gpuId, name: '', gfxTarget: null, numXcc: Math.max(1, insts) });
      else g.numXcc = Math.max(g.numXcc, insts);
    }
  }
  for (const p of parsed) {
    for (const proc of p.mqds.processes) {
      for (const q of proc.queues) {
        if (q.gpuId === null || gpus.has(q.gpuId) || q.type !== 'compute') continue;
        // node unknown: hqds never showed this GPU (null, as in the queues; never a made-up number)
        gpus.set(q.gpuId, { node: null, gpuId: q.gpuId, name: '', gfxTarget: null, numXcc: Math.max(1, q.blocks.length) });
      }
    }
  }
  // known nodes in order, then the GPUs of unknown node by gpu_id
  const nodeOrder = (g: TraceGpu): number => g.node ?? Number.POSITIVE_INFINITY;
  return [...gpus.values()].sort((a, b) => (nodeOrder(a) === nodeOrder(b) ? 0 : nodeOrder(a) < nodeOrder(b) ? -1 : 1) || a.gpuId.localeCompare(b.gpuId));
}

function dumpHeader(dir: string, gpus: TraceGpu[], intervalNs: number, impl: Impl, startedAt: string): TraceHeader {
  return {
    kind: 'header',
    t_ns: 0,
    schema: TRACE_SCHEMA,
    gpucoloVersion: VERSION,
    startedAt,
    monotonicOriginNs: '0',
    host: { hostname: '', kernel: '' },
    gpus,
    sources: ['debugfs'],
    readable: ['debugfs'],
    intervalNs,
    debugfsIntervalNs: intervalNs,
    roots: { sysfs: '', debugfs: dir, proc: '' },
    impl,
    sampler: 'ts-timer',
    target: { mode: 'all', pids: [] },
    options: { durationNs: null, baselineNs: 0, tailNs: 0, stopAfterNs: null },
  };
}

/** Wall-clock time of t_ns 0: the first stamped snapshot minus one interval, else the baseline file's mtime. */
function startTime(points: DumpPoint[], intervalNs: number): string {
  const stamped = points.find((p) => p.role === 'snapshot' && p.unixSeconds !== null);
  if (stamped) return new Date(stamped.unixSeconds! * 1000 - intervalNs / 1e6).toISOString();
  const first = points[0].mqd ?? points[0].hqd!;
  return fs.statSync(first).mtime.toISOString();
}

export interface ReadDumpDirOptions {
  impl?: Impl;
}

/** Converts a directory of plain KFD dumps into a Trace (see the file comment for the rules). */
export function readDumpDir(dir: string, opts: ReadDumpDirOptions = {}): Trace {
  const impl = pickImpl(opts.impl);
  const all = listDumps(dir);
  const notes: string[] = [];
  const points = all.filter((p) => {
    if (p.mqd) return true;
    notes.push(`${p.role}${p.role === 'snapshot' ? ` ${p.index}` : ''} has an hqds dump but no mqds dump: skipped (queues unknown)`);
    return false;
  });
  if (points.length === 0) {
    const why = all.length ? 'only hqds dumps, no mqds dump' : 'no KFD dumps (baseline_mqd.txt, snapshot_mqd_<i>[_<ts>].txt, ...)';
    throw badTrace(dir, null, `not a dump directory: ${why}`);
  }
  const { t, intervalNs, times } = placeInTime(points, notes);
  const parsed = points.map((p) => parsePoint(p, impl));
  const samples = parsed.map((pp, i) => toSample(pp, i, t[i]));
  const events: TraceEvent[] = [];
  const deriver = new EventDeriver();
  for (const s of samples) events.push(...deriver.update(s));
  const hasBaseline = points[0].role === 'baseline';
  if (!hasBaseline) notes.push('no baseline dump: queues in the first snapshot count as existing before the trace');
  notes.push('no sysfs in plain dumps: queue ids unknown, queues keyed by MQD address (compute) or ring base (SDMA)');
  notes.push('GPUs and XCC counts inferred from the hqds dumps (distinct Inst values per node)');
  const header = dumpHeader(dir, gpusOf(parsed), intervalNs, impl, startTime(points, intervalNs));
  return {
    origin: { format: 'dumps', path: dir, times, costsMeasured: false, notes },
    header,
    samples,
    events,
    markers: hasBaseline ? [{ kind: 'marker', t_ns: t[0], marker: 'baseline-end' }] : [],
    footer: null,
    issues: [],
  };
}
