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
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readStat, relatedGroups, scanStats, type PidStat } from './proctree.js';
import { readRunRegistry, writeJsonAtomic, type ChildRecord, type RunRegistryDoc } from './registry.js';
import { makeDirs } from '../../fs-dirs.js';

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
    throw Object.assign(new Error(`run registry directory ${dir} is not a directory of this user (uid ${uid}): remove it, or give --registry FILE`), { code: 'EPERM', path: dir });
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
function targetGroups(rec: ChildRecord, stats: readonly PidStat[], procRoot: string): { groups: number[]; why?: string } {
  if (rec.pid === null || rec.pgid === null) return { groups: [] };
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
    const members = live(g);
    if (members.length === 0) continue;
    if (rec.startTicks !== null && members.every((m) => m.startTicks >= rec.startTicks!)) out.push(g);
    else why ??= `process group ${g} has members older than the recorded child: not ours any more`;
  }
  return { groups: out, ...(why ? { why } : {}) };
}

/**
 * Reads each registry file and stops the recorded groups that are still alive and still ours.
 * All targets are signaled together, so N leftovers take one grace, not N. Files are updated
 * (groupAlive false for what was stopped) and, with removeDone, removed once nothing is alive.
 */
export async function reapRegistries(files: readonly string[], opts: ReapOptions = {}): Promise<ReapReport> {
  const procRoot = opts.procRoot ?? '/proc';
  const graceMs = opts.graceMs ?? 10_000;
  const killWaitMs = opts.killWaitMs ?? 5000;
  const report: ReapReport = { actions: [], files: [], removed: [], errors: [] };
  const docs: { file: string; doc: RunRegistryDoc; owner: boolean }[] = [];
  for (const file of files) {
    try {
      const doc = readRunRegistry(file);
      docs.push({ file, doc, owner: ownerAlive(doc, procRoot) });
      report.files.push(file);
    } catch (err) {
      const code = errCode(err);
      report.errors.push(code === 'ENOENT' ? `${file}: no such file` : err instanceof SyntaxError ? `${file}: not JSON (${err.message})` : `${file}: ${(err as Error).message}`);
    }
  }

  let stats = scanStats(procRoot);
  const ownPgid = readStat(procRoot, process.pid)?.pgrp ?? null;
  const targets: Target[] = [];
  for (const { file, doc, owner } of docs) {
    for (const rec of doc.children) {
      const base = { file, runId: doc.runId, childId: rec.id, name: rec.name, pid: rec.pid, pgid: rec.pgid, groups: [] as number[] };
      if (rec.pid === null) continue; // never ran
      const { groups, why } = targetGroups(rec, stats, procRoot);
      if (groups.length === 0) {
        report.actions.push({ ...base, outcome: why ? 'skipped' : 'gone', detail: why ?? 'not running' });
        continue;
      }
      if (owner && !opts.force) {
        report.actions.push({ ...base, groups, outcome: 'skipped', detail: `its gpucolo (pid ${doc.gpucoloPid}) is still running; it stops its own groups (use --force to stop them anyway)` });
        continue;
      }
      // groups that descendants made since the record was written
      const all = new Set<number>();
      for (const g of relatedGroups(stats, groups)) if (g > 1 && g !== ownPgid) all.add(g);
      targets.push({ action: { ...base, groups: [...all], outcome: 'stopped', detail: '' }, rec, groups: all });
    }
  }

  if (opts.dryRun) {
    for (const t of targets) report.actions.push({ ...t.action, outcome: 'alive', detail: `process group ${[...t.groups].join(', ')} still running` });
    return report;
  }

  const alive = (t: Target): boolean => stats.some((s) => t.groups.has(s.pgrp) && isLive(s));
  const signal = (t: Target, sig: NodeJS.Signals): void => {
    for (const g of t.groups) {
      try {
        process.kill(-g, sig);
      } catch (err) {
        if (errCode(err) === 'EPERM') t.action.detail = `no permission to signal process group ${g} (EPERM): another user's processes`;
      }
    }
  };
  const waitAll = async (list: Target[], deadline: number): Promise<Target[]> => {
    for (;;) {
      stats = scanStats(procRoot);
      const left = list.filter(alive);
      if (left.length === 0 || performance.now() >= deadline) return left;
      await sleep(POLL_MS);
    }
  };

  if (targets.length) {
    for (const t of targets) signal(t, 'SIGTERM');
    const stubborn = await waitAll(targets, performance.now() + graceMs);
    for (const t of stubborn) {
      t.action.outcome = 'killed';
      signal(t, 'SIGKILL');
    }
    const survivors = await waitAll(stubborn, performance.now() + killWaitMs);
    for (const t of targets) {
      const a = t.action;
      const g = [...t.groups].join(', ');
      if (survivors.includes(t)) {
        a.outcome = 'failed';
        const pids = stats.filter((s) => t.groups.has(s.pgrp) && isLive(s)).map((s) => s.pid);
        a.detail ||= `still alive ${killWaitMs} ms after SIGKILL: pid ${pids.join(' ')}`;
      } else if (a.outcome === 'killed') {
        a.detail = `process group ${g} ignored SIGTERM for ${graceMs} ms: SIGKILLed`;
      } else {
        a.detail = `process group ${g} ended after SIGTERM`;
      }
      report.actions.push(a);
    }
  }

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
        writeJsonAtomic(file, { ...doc, updatedAt: new Date().toISOString() });
      }
    } catch (err) {
      report.errors.push(`${file}: not updated: ${(err as Error).message}`);
    }
  }
  return report;
}
