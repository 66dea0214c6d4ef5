/**
 * One snapshot of every KFD queue on the host: reads sysfs (no root) and debugfs (root), parses,
 * joins. What `gpucolo queues --json` prints. Each source that cannot be read is reported with
 * its errno and a hint, and the snapshot says which fields that leaves missing.
 */
import path from 'node:path';
import { loadNative, pickImpl, type Impl } from '../native.js';
import { errnoCode, readHint } from '../errors.js';
import { issueCodeText, readInputFile } from '../input-file.js';
import { VERSION } from '../version.js';
import { joinFromNativeTables, joinQueues, nativeJoinSysfs, packQidHints, unpackJoinTables, type JoinResult } from './join.js';
import { parseHqds, parseMqds, parseRls, readKfdProcs, readTopology } from './parse.js';
import { namespacePid, readProcStatus, type ProcStatus } from '../procfs.js';
import { KFD_PROC, KFD_TOPOLOGY_NODES, topLevelFailure, underRoot } from './sysfs-reader.js';
import type { ParseIssue, ReadIssue, Severity } from './raw.js';
import type { KfdProcs, Topology } from './types.js';

export const QUEUES_SCHEMA = 'gpucolo.queues/1';

export type SourceName = 'topology' | 'procs' | 'mqds' | 'hqds' | 'rls';

export interface SourceStatus {
  /** the file or directory read */
  path: string;
  /** read and parsed (possibly with issues) */
  ok: boolean;
  /** not asked for (e.g. --sources sysfs) */
  skipped: boolean;
  code?: string;
  error?: string;
  hint?: string;
  issues: number;
}

export interface SnapshotIssue {
  source: SourceName;
  /** file (debugfs) or path (sysfs) */
  file: string;
  line?: number;
  severity: Severity;
  message: string;
  code?: string;
}

export interface QueueSnapshot extends JoinResult {
  schema: typeof QUEUES_SCHEMA;
  gpucoloVersion: string;
  takenAt: string;
  /** parser implementation used */
  path: Impl;
  roots: { sysfs: string; debugfs: string; proc: string };
  sources: Record<SourceName, SourceStatus>;
  /** output fields that are absent because a source could not be read */
  missing: string[];
  /** some content could not be read or understood (see issues) */
  partial: boolean;
  issues: SnapshotIssue[];
}

export interface SnapshotOptions {
  /** default /sys */
  sysfsRoot?: string;
  /** default /sys/kernel/debug */
  debugfsRoot?: string;
  /** default /proc */
  procRoot?: string;
  /** only these processes */
  pids?: readonly number[];
  impl?: Impl;
  /** which sources to read (default both) */
  sources?: readonly ('sysfs' | 'debugfs')[];
}

const MISSING: Record<SourceName, string[]> = {
  topology: ['nodes[].name', 'nodes[].gfxTarget', 'nodes[].numXcc'],
  procs: ['queues[].qid', 'processes[].gpus'],
  mqds: ['queues[].priority', 'queues[].mqdAddresses', 'queues[].doorbell', 'queues[].ringBase', 'queues[].aql'],
  hqds: ['queues[].hqds', 'queues[].sdma', 'unmatchedHqds', 'nodes[].activeHqds', 'nodes[].perXcc'],
  rls: ['queues[].inRunlist', 'processes[].runlist', 'nodes[].runlist'],
};

/** The live trees; any other root given is a recorded tree (a copy of some host's files). */
const LIVE = { sysfs: '/sys', debugfs: '/sys/kernel/debug', proc: '/proc' } as const;

/** A root given explicitly that is not the live tree (a recorded tree). */
export function recorded(root: string | undefined, live: string): boolean {
  return root !== undefined && path.resolve(root) !== live;
}

/**
 * Why a source could not be read, for a person: on the live host the driver and debugfs hints; in
 * a recorded tree a missing file is simply not part of the recording (mounting debugfs or loading
 * a driver would change nothing). A permission error keeps its hint: root-owned copies need root.
 */
export function sourceHint(code: string, kind: 'debugfs' | 'sysfs', isRecorded: boolean): string | undefined {
  if (isRecorded && (code === 'ENOENT' || code === 'ENOTDIR')) return 'not in the recorded tree';
  return readHint(code, kind);
}

/** What snapshot()'s steps share: options, roots, the source statuses (in key order) and issues so far, what was read. */
interface SnapState {
  opts: SnapshotOptions;
  impl: ReturnType<typeof pickImpl>;
  roots: { sysfs: string; debugfs: string; proc: string };
  isRecorded: { sysfs: boolean; debugfs: boolean };
  want: Set<'sysfs' | 'debugfs'>;
  issues: SnapshotIssue[];
  sources: Record<SourceName, SourceStatus>;
  topology: Topology | null;
  procs: KfdProcs | null;
  dumps: DumpFiles;
  files: Partial<Record<DumpName, string>>;
}

/** Step 1: reads the sysfs side (topology, KFD processes); a source failed as a whole is a status, not issues. */
function readSysfsSide(st: SnapState): void {
  const { opts, impl, roots, isRecorded, issues, sources } = st;
  const topoPath = underRoot(roots.sysfs, KFD_TOPOLOGY_NODES);
  const procPath = underRoot(roots.sysfs, KFD_PROC);
  if (st.want.has('sysfs')) {
    const topology = readTopology({ sysfsRoot: roots.sysfs, impl });
    st.topology = topology;
    sources.topology = sysfsStatus(topoPath, topology.issues, isRecorded.sysfs);
    const procs = readKfdProcs({ sysfsRoot: roots.sysfs, impl, pids: opts.pids });
    st.procs = procs;
    sources.procs = sysfsStatus(procPath, procs.issues, isRecorded.sysfs);
    // a source that failed as a whole is a status, not an issue (a host without KFD is not "partial")
    if (sources.topology.ok) pushReadIssues(issues, 'topology', topology.issues);
    else st.topology = null;
    if (sources.procs.ok) pushReadIssues(issues, 'procs', procs.issues);
    else st.procs = null;
  } else {
    sources.topology = skipped(topoPath);
    sources.procs = skipped(procPath);
  }
}

/** Step 2: reads the debugfs dumps (kfd/mqds, hqds, rls) into st.dumps, one source status each. */
function readDebugfsDumps(st: SnapState): void {
  const { roots, isRecorded, sources, dumps, files } = st;
  for (const name of DUMP_NAMES) {
    const file = underRoot(roots.debugfs, `kfd/${name}`);
    if (!st.want.has('debugfs')) {
      sources[name] = skipped(file);
      continue;
    }
    let buf: Buffer;
    try {
      // only a regular file of at most 64 MiB: a FIFO or device in a recorded tree is refused, not read
      buf = readInputFile(file, { kind: 'debugfs' });
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      sources[name] = { path: file, ok: false, skipped: false, code, error: `cannot read ${file} (${issueCodeText(code, 'debugfs')})`, hint: sourceHint(code, 'debugfs', isRecorded.debugfs), issues: 0 };
      continue;
    }
    dumps[name] = buf;
    files[name] = file;
    // the issue count is known once parsed (below); the entry is made here to keep the key order
    sources[name] = { path: file, ok: true, skipped: false, issues: 0 };
  }
}

/** Step 3b: counts each parsed dump's issues in its source status and lists them. */
function recordParseIssues(st: SnapState, parsed: JoinedDumps['parsed']): void {
  const { sources, files, issues } = st;
  for (const name of DUMP_NAMES) {
    const p = parsed[name];
    const file = files[name];
    if (!p || file === undefined) continue;
    sources[name].issues = p.issues.length + p.suppressed;
    for (const i of p.issues) issues.push({ source: name, file, line: i.line, severity: i.severity, message: i.message });
    if (p.suppressed > 0) issues.push({ source: name, file, severity: 'error', message: `${p.suppressed} more issue(s) not listed` });
  }
}

/** Step 4: /proc: names and namespace pids of the processes KFD knows, set on joined's processes. */
function nameProcesses(st: SnapState, mqdsPids: number[], joined: JoinResult): void {
  const { opts, roots } = st;
  const pidSet = new Set<number>();
  for (const pid of mqdsPids) pidSet.add(pid);
  for (const p of st.procs?.procs ?? []) pidSet.add(p.pid);
  const status = new Map<number, ProcStatus | null>();
  const outside: string[] = [];
  for (const pid of pidSet) {
    if (opts.pids && !opts.pids.includes(pid)) continue;
    status.set(
      pid,
      readProcStatus(roots.proc, pid, (target) => outside.push(`${underRoot(roots.proc, String(pid))} leads outside ${roots.proc} (to ${target}): process ${pid}'s name and namespace pid are not read`)),
    );
  }

  for (const p of joined.processes) {
    const ps = status.get(p.pid) ?? null;
    p.nsPid = namespacePid(ps);
    p.name = ps?.name ?? null;
  }
  joined.warnings.push(...outside);
}

/** One snapshot of the KFD queues: sysfs, then the debugfs dumps parsed and joined, then /proc names. */
export function snapshot(opts: SnapshotOptions = {}): QueueSnapshot {
  const impl = pickImpl(opts.impl);
  const roots = {
    sysfs: opts.sysfsRoot ?? LIVE.sysfs,
    debugfs: opts.debugfsRoot ?? LIVE.debugfs,
    proc: opts.procRoot ?? LIVE.proc,
  };
  const st: SnapState = {
    opts,
    impl,
    roots,
    isRecorded: { sysfs: recorded(opts.sysfsRoot, LIVE.sysfs), debugfs: recorded(opts.debugfsRoot, LIVE.debugfs) },
    want: new Set(opts.sources ?? ['sysfs', 'debugfs']),
    issues: [],
    sources: {} as Record<SourceName, SourceStatus>,
    topology: null,
    procs: null,
    dumps: {},
    files: {},
  };
  readSysfsSide(st);
  readDebugfsDumps(st);
  // Step 3: parse the dumps and join them with the sysfs side
  const { parsed, mqdsPids, joined } = joinDumps(st.dumps, { topology: st.topology, procs: st.procs, pids: opts.pids, impl, files: st.files });
  recordParseIssues(st, parsed);
  nameProcesses(st, mqdsPids, joined);
  const { sources, issues } = st;
  const missing = (Object.keys(MISSING) as SourceName[]).filter((s) => !sources[s].ok).flatMap((s) => MISSING[s]);

  return {
    schema: QUEUES_SCHEMA,
    gpucoloVersion: VERSION,
    takenAt: new Date().toISOString(),
    path: impl,
    roots,
    sources,
    missing,
    partial: issues.some((i) => i.severity === 'error'),
    issues,
    ...joined,
  };
}

const DUMP_NAMES = ['mqds', 'hqds', 'rls'] as const;
export type DumpName = (typeof DUMP_NAMES)[number];

/** The bytes of debugfs kfd/{mqds,hqds,rls}; a file absent or null was not read. */
export type DumpFiles = Partial<Record<DumpName, Uint8Array | null>>;

export interface JoinDumpsOptions {
  topology?: Topology | null;
  procs?: KfdProcs | null;
  /** /proc status per pid: names and namespace pids (none: null) */
  status?: Map<number, ProcStatus | null>;
  /** only these processes */
  pids?: readonly number[];
  impl?: Impl;
  /** file names for the parsed objects of the TS path */
  files?: Partial<Record<DumpName, string>>;
  /** a trace's queue ids of earlier joins (JoinInput.qidHints): read, not changed */
  qidHints?: Map<number, Map<string, number>>;
}

export interface JoinedDumps {
  /** per file read: what its parse found wrong */
  parsed: Record<DumpName, { issues: ParseIssue[]; suppressed: number } | null>;
  /** the pids of the mqds process headers, in file order */
  mqdsPids: number[];
  joined: JoinResult;
}

/**
 * The debugfs dumps parsed and joined with the sysfs side: the part of a snapshot that grows with
 * the machine (hqds has ~165 slots per MI300-class GPU). Native: one addon call parses and joins
 * (native/kfd/join.cc), and objects are built only for the join's result, never per HQD slot or
 * MQD block; TS (and an addon without joinKfdDumps): parse, build objects, joinQueues. Both give
 * the same result (test/kfd-snapshot-native.test.ts).
 */
export function joinDumps(dumps: DumpFiles, opts: JoinDumpsOptions = {}): JoinedDumps {
  const impl = pickImpl(opts.impl);
  const native = impl === 'native' ? loadNative() : null;
  if (native?.joinKfdDumps) {
    const sys = nativeJoinSysfs(opts.topology, opts.procs);
    const hints = opts.qidHints ? packQidHints(opts.qidHints) : null;
    const r = native.joinKfdDumps(dumps.mqds ?? null, dumps.hqds ?? null, dumps.rls ?? null, sys.topology, sys.procs, sys.procQueues, hints);
    const t = unpackJoinTables(r);
    return {
      parsed: { mqds: r.mqdsFile, hqds: r.hqdsFile, rls: r.rlsFile },
      mqdsPids: Array.from(t.mqdsPids),
      joined: joinFromNativeTables(t, sys, opts),
    };
  }
  const file = opts.files ?? {};
  const mqds = dumps.mqds ? parseMqds(dumps.mqds, { impl, file: file.mqds }) : null;
  const hqds = dumps.hqds ? parseHqds(dumps.hqds, { impl, file: file.hqds }) : null;
  const rls = dumps.rls ? parseRls(dumps.rls, { impl, file: file.rls }) : null;
  return {
    parsed: { mqds, hqds, rls },
    mqdsPids: (mqds?.processes ?? []).map((p) => p.pid),
    joined: joinQueues({ mqds, hqds, rls, topology: opts.topology, procs: opts.procs, status: opts.status, pids: opts.pids, qidHints: opts.qidHints }),
  };
}

function pushReadIssues(out: SnapshotIssue[], source: SourceName, list: ReadIssue[]): void {
  for (const i of list) out.push({ source, file: i.path, severity: i.severity, message: i.message, code: i.code });
}

function skipped(path: string): SourceStatus {
  return { path, ok: false, skipped: true, issues: 0 };
}

/** A sysfs walk failed as a whole when its top directory could not be listed. */
function sysfsStatus(dir: string, list: ReadIssue[], isRecorded: boolean): SourceStatus {
  const top = topLevelFailure(dir, list);
  if (top) return { path: dir, ok: false, skipped: false, code: top.code, error: top.message, hint: sourceHint(top.code ?? 'EIO', 'sysfs', isRecorded), issues: list.length };
  return { path: dir, ok: true, skipped: false, issues: list.length };
}
