/**
 * Reaping what a killed gpucolo left behind. Detached children survive gpucolo's death (SIGKILL,
 * OOM killer, a closed terminal without SIGHUP handling): their run registry file still names
 * them. `reapRegistries` reads registry files and stops every recorded process group that is
 * still alive AND still the one gpucolo started, with the same SIGTERM -> grace -> SIGKILL as a
 * supervisor's stop.
 *
 * "Still the same" (pids are reused):
 *  - leader alive: its /proc/<pid>/stat starttime must equal the recorded startTicks;
 *  - leader gone, group still has live members: the kernel does not hand out a pid while it is
 *    still some process's pgid, so the members are the recorded group's (no start time needed);
 *  - groups a descendant made with setsid (otherGroups): every live member must have started at
 *    or after the recorded leader (a group number reused by an older process fails this).
 * A registry whose gpucolo is still running (same pid and start time) is left alone unless
 * `force`: its supervisor is in charge of those groups.
 *
 * Safety: kill(-0) and kill(-1) mean "my own group" and "every process I may signal", pid 1 is
 * init, and group 0 holds kernel threads (and, in a container, init and everything whose session
 * began outside it). A registry naming pid or pgid <= 1 anywhere is refused as a whole
 * (readRegistryForReap), and the groups derived from a record never include 0, 1 or gpucolo's own
 * group, nor grow from pid 1 or a kernel thread.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readStat, scanStats, subtree, type PidStat } from './proctree.js';
import { RUNS_SCHEMA, RegistryFormatError, readRunRegistry, writeRegistryFile, type ChildRecord, type RunRegistryDoc } from './registry.js';
import { makeDirs } from '../fs-dirs.js';
import { GpucoloError } from '../errors.js';

/** Registry files in the default directory are named like this. */
export const REGISTRY_PREFIX = 'run-';

/**
 * Where runs record their children unless told otherwise: $XDG_RUNTIME_DIR/gpucolo (per user,
 * tmpfs, cleared at logout and boot), else <tmpdir>/gpucolo-<uid>.
 */
export function defaultRegistryDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'gpucolo');
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().uid;
  return path.join(os.tmpdir(), `gpucolo-${uid}`);
}

/** A pid or process group a registry may name: a safe integer > 1 (0, 1 and -1 mean "everyone"). */
const isSafeId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 1;

/**
 * Reads a run registry for reaping: readRunRegistry plus the checks that make it safe to signal
 * what it names. Throws RegistryFormatError (code EREGISTRYFORMAT), one line, for a child whose
 * pid, pgid or otherGroups entry is not null / an integer > 1, or whose startTicks is not a number.
 */
export function readRegistryForReap(file: string): RunRegistryDoc {
  const doc = readRunRegistry(file);
  const bad = (i: number, what: string): never => {
    throw new RegistryFormatError(`${file}: not a usable ${RUNS_SCHEMA} run registry: children[${i}].${what}: refusing to signal anything from it`, file);
  };
  doc.children.forEach((rec: Partial<ChildRecord> | null, i) => {
    if (rec === null || typeof rec !== 'object') return bad(i, 'not an object');
    for (const k of ['pid', 'pgid'] as const) {
      const v = rec[k];
      if (v !== null && !isSafeId(v)) bad(i, `${k} is ${JSON.stringify(v)} (needs null or an integer > 1)`);
    }
    if ((rec.pid === null) !== (rec.pgid === null)) bad(i, `pid ${rec.pid} with pgid ${rec.pgid}`);
    if (rec.startTicks != null && !(typeof rec.startTicks === 'number' && Number.isFinite(rec.startTicks))) bad(i, `startTicks is ${JSON.stringify(rec.startTicks)}`);
    if (rec.otherGroups !== undefined) {
      if (!Array.isArray(rec.otherGroups)) bad(i, 'otherGroups is not an array');
      rec.otherGroups.forEach((g, j) => {
        if (!isSafeId(g)) bad(i, `otherGroups[${j}] is ${JSON.stringify(g)} (needs an integer > 1)`);
      });
    }
  });
  return doc;
}

/**
 * If `file` exists, it must be a gpucolo run registry before a run may overwrite it with its own:
 * a mistyped --registry must not replace somebody's data. Throws RegistryFormatError
 * (EREGISTRYFORMAT), one line, otherwise; an absent file is fine.
 */
export function checkRegistryTarget(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw err;
  }
  const refuse = (why: string): never => {
    throw new RegistryFormatError(`registry file ${file} exists and ${why}: refusing to overwrite it (give a new path, or remove it)`, file);
  };
  if (!st.isFile()) refuse('is not a regular file');
  let doc: { schema?: unknown } | null;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { schema?: unknown } | null;
  } catch (err) {
    return refuse(err instanceof SyntaxError ? `is not a ${RUNS_SCHEMA} run registry (not JSON)` : `cannot be read (${errCode(err) ?? (err as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || doc.schema !== RUNS_SCHEMA) refuse(`is not a ${RUNS_SCHEMA} run registry`);
}

const myUid = (): number | null => (typeof process.getuid === 'function' ? process.getuid() : null);

/**
 * A registry file for run `runId` in the default directory (created, mode 0700). The directory
 * must belong to this user: in a shared temp dir another user could have made it first, and
 * registries planted there would tell cleanup what to kill.
 */
export function defaultRegistryFile(runId: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = defaultRegistryDir(env);
  makeDirs(dir, 0o700);
  const st = fs.lstatSync(dir);
  const uid = myUid();
  if (!st.isDirectory() || (uid !== null && st.uid !== uid)) {
    throw new GpucoloError(`run registry directory ${dir} is not a directory of this user (uid ${uid}): remove it, or give --registry FILE`, { code: 'EPERM', path: dir });
  }
  return path.join(dir, `${REGISTRY_PREFIX}${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/**
 * The registry files in a directory (default: the default one) that belong to this user; []
 * when it does not exist.
 */
export function listRegistryFiles(dir = defaultRegistryDir()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const uid = myUid();
  return names
    .filter((n) => n.startsWith(REGISTRY_PREFIX) && n.endsWith('.json'))
    .sort()
    .map((n) => path.join(dir, n))
    .filter((f) => {
      try {
        const st = fs.lstatSync(f);
        return st.isFile() && (uid === null || st.uid === uid);
      } catch {
        return false;
      }
    });
}

export type ReapOutcome =
  /** ended within the grace after SIGTERM */
  | 'stopped'
  /** SIGKILL was needed */
  | 'killed'
  /** nothing of it was alive */
  | 'gone'
  /** alive but not touched (owner gpucolo still running, pid reused, start time unknown) */
  | 'skipped'
  /** could not be stopped (EPERM, still alive after SIGKILL) */
  | 'failed'
  /** dryRun: alive and ours, would be stopped */
  | 'alive';

export interface ReapAction {
  file: string;
  runId: string;
  childId: number;
  name: string;
  pid: number | null;
  pgid: number | null;
  /** every group signaled for this child (its own, setsid groups of descendants) */
  groups: number[];
  outcome: ReapOutcome;
  /** one line for a person */
  detail: string;
}

export interface ReapReport {
  actions: ReapAction[];
  /** registry files read */
  files: string[];
  /** files removed because nothing recorded in them is alive any more */
  removed: string[];
  /** files that could not be read (one line each) */
  errors: string[];
}

export interface ReapOptions {
  /** SIGTERM -> SIGKILL grace, ms (default 10000) */
  graceMs?: number;
  /** how long to wait after SIGKILL (default 5000) */
  killWaitMs?: number;
  /** also stop groups of a gpucolo that is still running */
  force?: boolean;
  /** remove a file once nothing in it is alive (default false; cleanup of the default dir: true) */
  removeDone?: boolean;
  procRoot?: string;
  /** only report what is alive (outcome 'alive'); signal nothing, change no file */
  dryRun?: boolean;
}

const POLL_MS = 25;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isLive = (s: PidStat): boolean => s.state !== 'Z' && s.state !== 'X';
const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Is the gpucolo that wrote `doc` still running? */
function ownerAlive(doc: RunRegistryDoc, procRoot: string): boolean {
  if (doc.gpucoloPid === process.pid) return true;
  const st = readStat(procRoot, doc.gpucoloPid);
  if (!st || !isLive(st)) return false;
  // without a recorded start time a live pid may or may not be that gpucolo: assume it is
  return doc.gpucoloStartTicks == null || st.startTicks === doc.gpucoloStartTicks;
}

interface Target {
  action: ReapAction;
  rec: ChildRecord;
  groups: Set<number>;
}

/** Decides which of one record's groups are still the recorded ones (see the file comment). */
function targetGroups(rec: ChildRecord, stats: readonly PidStat[], procRoot: string, ownPgid: number | null): { groups: number[]; why?: string } {
  if (rec.pid === null || rec.pgid === null) return { groups: [] };
  // readRegistryForReap refuses these already; never trust one record to name init or everyone
  if (!isSafeId(rec.pid) || !isSafeId(rec.pgid)) return { groups: [], why: `pid ${rec.pid} / pgid ${rec.pgid} is not a process group gpucolo started: never signaled` };
  if (rec.pgid === ownPgid) return { groups: [], why: `process group ${rec.pgid} is gpucolo's own: never signaled` };
  const live = (g: number): PidStat[] => stats.filter((s) => s.pgrp === g && isLive(s));
  const out: number[] = [];
  let why: string | undefined;
  const leader = readStat(procRoot, rec.pid);
  if (leader && isLive(leader)) {
    if (rec.startTicks === null) why = `pid ${rec.pid} is alive but its start time was not recorded: cannot tell it is the same process`;
    else if (leader.startTicks !== rec.startTicks) why = `pid ${rec.pid} now belongs to another process (start time ${leader.startTicks}, recorded ${rec.startTicks})`;
    else out.push(rec.pgid);
  } else if (live(rec.pgid).length > 0) {
    out.push(rec.pgid);
  }
  for (const g of rec.otherGroups ?? []) {
    if (!isSafeId(g) || g === ownPgid) continue;
    const members = live(g);
    if (members.length === 0) continue;
    if (rec.startTicks !== null && members.every((m) => m.startTicks >= rec.startTicks!)) out.push(g);
    else why ??= `process group ${g} has members older than the recorded child: not ours any more`;
  }
  return { groups: out, ...(why ? { why } : {}) };
}

/**
 * The groups `groups` spread to (relatedGroups in proctree, made safe): the groups of every
 * descendant of their members, to a fixpoint; only groups > 1 other than ownPgid are ever added,
 * and pid 1, kthreadd (2) and kernel threads (pgrp 0, or children of kthreadd) are never roots.
 */
function safeRelatedGroups(stats: readonly PidStat[], groups: Iterable<number>, ownPgid: number | null): Set<number> {
  const ok = (g: number): boolean => isSafeId(g) && g !== ownPgid;
  const out = new Set([...groups].filter(ok));
  const kernelish = (s: PidStat): boolean => s.pid <= 2 || s.pgrp <= 1 || s.ppid === 2 || s.ppid === 0 || s.pid === process.pid;
  for (let size = -1; size !== out.size; ) {
    size = out.size;
    const members = stats.filter((s) => out.has(s.pgrp) && !kernelish(s)).map((s) => s.pid);
    const below = subtree(stats, members);
    for (const s of stats) if (below.has(s.pid) && ok(s.pgrp)) out.add(s.pgrp);
  }
  return out;
}

/** What reapRegistries' steps share: options with defaults, the report, the files read, /proc as last scanned, the targets. */
interface ReapState {
  opts: ReapOptions;
  procRoot: string;
  graceMs: number;
  killWaitMs: number;
  report: ReapReport;
  docs: { file: string; doc: RunRegistryDoc; owner: boolean }[];
  /** the last scan of procRoot (rescanned while waiting) */
  stats: PidStat[];
  ownPgid: number | null;
  targets: Target[];
}

/** Step 1: reads each registry file (and whether its gpucolo still runs); unreadable ones are one error line each. */
function readDocs(st: ReapState, files: readonly string[]): void {
  const { report, docs, procRoot } = st;
  for (const file of files) {
    try {
      const doc = readRegistryForReap(file);
      docs.push({ file, doc, owner: ownerAlive(doc, procRoot) });
      report.files.push(file);
    } catch (err) {
      const code = errCode(err);
      // one line each: JSON.parse quotes the text it choked on, newlines included
      const why = code === 'ENOENT' ? 'no such file' : err instanceof SyntaxError ? `not JSON (${err.message})` : (err as Error).message;
      report.errors.push(`${file}: ${why.replace(/\s*\n\s*/g, ' ').trim()}`);
    }
  }
}

/** Step 2: decides per recorded child what to stop (st.targets) or reports why not (gone, skipped). */
function collectTargets(st: ReapState): void {
  const { opts, report, docs, procRoot, ownPgid, targets } = st;
  const stats = st.stats;
  for (const { file, doc, owner } of docs) {
    for (const rec of doc.children) {
      const base = { file, runId: doc.runId, childId: rec.id, name: rec.name, pid: rec.pid, pgid: rec.pgid, groups: [] as number[] };
      if (rec.pid === null) continue; // never ran
      const { groups, why } = targetGroups(rec, stats, procRoot, ownPgid);
      if (groups.length === 0) {
        report.actions.push({ ...base, outcome: why ? 'skipped' : 'gone', detail: why ?? 'not running' });
        continue;
      }
      if (owner && !opts.force) {
        report.actions.push({ ...base, groups, outcome: 'skipped', detail: `its gpucolo (pid ${doc.gpucoloPid}) is still running; it stops its own groups (use --force to stop them anyway)` });
        continue;
      }
      // groups that descendants made since the record was written (never 0, 1 or our own)
      const all = safeRelatedGroups(stats, groups, ownPgid);
      if (all.size === 0) {
        report.actions.push({ ...base, outcome: 'skipped', detail: `process group ${groups.join(', ')} is not one gpucolo may signal` });
        continue;
      }
      targets.push({ action: { ...base, groups: [...all], outcome: 'stopped', detail: '' }, rec, groups: all });
    }
  }
}

/** Sends sig to every group of t; EPERM is noted in t's action. */
function signalTarget(t: Target, sig: NodeJS.Signals): void {
  for (const g of t.groups) {
    try {
      process.kill(-g, sig);
    } catch (err) {
      if (errCode(err) === 'EPERM') t.action.detail = `no permission to signal process group ${g} (EPERM): another user's processes`;
    }
  }
}

/** Rescans /proc (into st.stats) every POLL_MS until none of list is alive or the deadline passes; returns those alive. */
async function waitAll(st: ReapState, list: Target[], deadline: number): Promise<Target[]> {
  const alive = (t: Target): boolean => st.stats.some((s) => t.groups.has(s.pgrp) && isLive(s));
  for (;;) {
    st.stats = scanStats(st.procRoot);
    const left = list.filter(alive);
    if (left.length === 0 || performance.now() >= deadline) return left;
    await sleep(POLL_MS);
  }
}

/** Step 3: SIGTERM to all targets together, SIGKILL to those alive after the grace, then one action each. */
async function stopTargets(st: ReapState): Promise<void> {
  const { targets, graceMs, killWaitMs, report } = st;
  if (!targets.length) return;
  for (const t of targets) signalTarget(t, 'SIGTERM');
  const stubborn = await waitAll(st, targets, performance.now() + graceMs);
  for (const t of stubborn) {
    t.action.outcome = 'killed';
    signalTarget(t, 'SIGKILL');
  }
  const survivors = await waitAll(st, stubborn, performance.now() + killWaitMs);
  for (const t of targets) {
    const a = t.action;
    const g = [...t.groups].join(', ');
    if (survivors.includes(t)) {
      a.outcome = 'failed';
      const pids = st.stats.filter((s) => t.groups.has(s.pgrp) && isLive(s)).map((s) => s.pid);
      a.detail ||= `still alive ${killWaitMs} ms after SIGKILL: pid ${pids.join(' ')}`;
    } else if (a.outcome === 'killed') {
      a.detail = `process group ${g} ignored SIGTERM for ${graceMs} ms: SIGKILLed`;
    } else {
      a.detail = `process group ${g} ended after SIGTERM`;
    }
    report.actions.push(a);
  }
}

/**
 * Reads each registry file and stops the recorded groups that are still alive and still ours.
 * All targets are signaled together, so N leftovers take one grace, not N. Files are updated
 * (groupAlive false for what was stopped) and, with removeDone, removed once nothing is alive.
 */
export async function reapRegistries(files: readonly string[], opts: ReapOptions = {}): Promise<ReapReport> {
  const procRoot = opts.procRoot ?? '/proc';
  const st: ReapState = {
    opts,
    procRoot,
    graceMs: opts.graceMs ?? 10_000,
    killWaitMs: opts.killWaitMs ?? 5000,
    report: { actions: [], files: [], removed: [], errors: [] },
    docs: [],
    stats: [],
    ownPgid: null,
    targets: [],
  };
  readDocs(st, files);
  st.stats = scanStats(procRoot);
  st.ownPgid = readStat(procRoot, process.pid)?.pgrp ?? null;
  collectTargets(st);
  if (opts.dryRun) {
    for (const t of st.targets) st.report.actions.push({ ...t.action, outcome: 'alive', detail: `process group ${[...t.groups].join(', ')} still running` });
    return st.report;
  }
  await stopTargets(st);
  recordOutcomes(st);
  return st.report;
}

/** Step 4: records what is gone in each file (groupAlive false), and drops files with nothing left (removeDone). */
function recordOutcomes(st: ReapState): void {
  const { opts, report, docs } = st;
  // record what is gone, and drop files with nothing left
  for (const { file, doc, owner } of docs) {
    if (owner && !opts.force) continue;
    let changed = false;
    for (const rec of doc.children) {
      const a = report.actions.find((x) => x.file === file && x.childId === rec.id);
      if (a && (a.outcome === 'stopped' || a.outcome === 'killed' || a.outcome === 'gone') && rec.groupAlive) {
        rec.groupAlive = false;
        if (rec.state === 'running') rec.state = a.outcome === 'gone' ? rec.state : a.outcome;
        changed = true;
      }
    }
    const nothingLeft = report.actions.filter((x) => x.file === file).every((x) => x.outcome !== 'failed' && x.outcome !== 'skipped');
    try {
      if (opts.removeDone && nothingLeft) {
        fs.rmSync(file, { force: true });
        report.removed.push(file);
      } else if (changed) {
        writeRegistryFile(file, { ...doc, updatedAt: new Date().toISOString() });
      }
    } catch (err) {
      report.errors.push(`${file}: not updated: ${(err as Error).message}`);
    }
  }
}
