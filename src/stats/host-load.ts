/**
 * How much of the host other processes took while gpucolo measured. On the cpu backend the
 * "device" is made of host cores, and on every backend the submitting threads need a core when
 * they wake, so CPU time taken by other processes (or stolen by a hypervisor) is interference
 * that a phase-to-phase comparison would otherwise read as the effect of a mechanism.
 *
 * Measured from /proc/stat (all CPUs: busy and steal jiffies) minus this process's own CPU time
 * and that of the processes it names as its own (model workers, ranks), over the wall time of the
 * window. Jiffies are USER_HZ = 100 per second (the value on every Linux architecture gpucolo
 * builds for; Node cannot ask sysconf). Where /proc is not readable every figure is null.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { QualityWarning } from './quality.js';

const USER_HZ = 100;

interface CpuTimes {
  /** user + nice + system + irq + softirq (guest time is inside user) */
  busy: number;
  steal: number;
  total: number;
}

/** The aggregate "cpu" line of /proc/stat; null when unreadable or malformed. */
export function readCpuTimes(procRoot = '/proc'): CpuTimes | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(procRoot, 'stat'), 'utf8');
  } catch {
    return null;
  }
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.slice(0, 8).some((x) => !Number.isFinite(x))) return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** Fields 14-17 of /proc/<pid>/stat (jiffies), or null when it is gone or unreadable. */
function readStatTimes(pid: number | 'self', procRoot: string): { utime: number; stime: number; cutime: number; cstime: number } | null {
  try {
    const text = fs.readFileSync(path.join(procRoot, String(pid), 'stat'), 'utf8');
    // the command name may hold spaces and parentheses: fields start after the last ')', with the
    // state as [0], so utime/stime (fields 14/15) are [11]/[12] and cutime/cstime (16/17) [13]/[14]
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(rest[i]));
    return [utime, stime, cutime, cstime].every(Number.isFinite) ? { utime, stime, cutime, cstime } : null;
  } catch {
    return null;
  }
}

/** utime + stime of one process (all its threads), jiffies; null when it is gone or unreadable. */
export function readProcessTicks(pid: number | 'self', procRoot = '/proc'): number | null {
  const t = readStatTimes(pid, procRoot);
  return t === null ? null : t.utime + t.stime;
}

/**
 * cutime + cstime of this process, jiffies: the CPU time of the children it reaped (with that of
 * the descendants they reaped: a torchrun launcher's ranks, DataLoader workers); null when
 * unreadable.
 */
export function reapedChildrenTicks(procRoot = '/proc'): number | null {
  const t = readStatTimes('self', procRoot);
  return t === null ? null : t.cutime + t.cstime;
}

export interface HostLoad {
  wallS: number;
  cpus: number;
  /** cores' worth of CPU time used by processes that are not this one or its named own ones */
  foreignCores: number | null;
  /** cores' worth of CPU used by this process and its own ones */
  ownCores: number | null;
  /** share of all CPU time the hypervisor stole */
  stealShare: number | null;
  /** 1-minute load average at the end */
  loadAverage1: number | null;
}

export interface HostLoadOptions {
  procRoot?: string;
  /**
   * Processes whose CPU time is gpucolo's own (model workers, ranks): asked at the start and at
   * the end of the window. A process that exits inside the window takes its CPU time along, so
   * that time counts as foreign: an over-estimate, never an under-estimate.
   */
  ownPids?: () => number[];
  /**
   * Count the CPU time of children reaped inside the window as own: processes that start after
   * the window opens and are reaped before it closes (ranks, short workers) are at neither end to
   * be read, and the kernel adds their time to our cutime/cstime instead.
   */
  reapedChildren?: boolean;
}

/** Moves `childS` CPU seconds from foreign to own (a window's figures are per second of wall time). */
export function withReapedChildren(load: HostLoad, childS: number): HostLoad {
  if (load.foreignCores === null || load.ownCores === null || !(load.wallS > 0) || !(childS > 0)) return load;
  const cores = childS / load.wallS;
  return { ...load, foreignCores: Math.max(0, load.foreignCores - cores), ownCores: load.ownCores + cores };
}

function ownTicks(o: HostLoadOptions): Map<string, number> {
  const out = new Map<string, number>();
  const self = readProcessTicks('self', o.procRoot);
  if (self !== null) out.set('self', self);
  for (const pid of o.ownPids?.() ?? []) {
    const t = readProcessTicks(pid, o.procRoot);
    if (t !== null) out.set(String(pid), t);
  }
  return out;
}

/** Starts a window; stop() gives what happened on the host during it. */
export function hostLoadWindow(o: HostLoadOptions = {}): { stop(): HostLoad } {
  const t0 = process.hrtime.bigint();
  const c0 = readCpuTimes(o.procRoot);
  const own0 = ownTicks(o);
  const reaped0 = o.reapedChildren ? reapedChildrenTicks(o.procRoot) : null;
  const window = {
    stop(): HostLoad {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      const c1 = readCpuTimes(o.procRoot);
      const own1 = ownTicks(o);
      let own = 0;
      // a process first seen at the end adds nothing: its time before the window is unknown, so
      // its time inside it counts as foreign (an over-estimate, like an exited one)
      for (const [k, v] of own1) own += v - (own0.get(k) ?? v);
      let load: number | null = null;
      try {
        const l = fs.readFileSync(path.join(o.procRoot ?? '/proc', 'loadavg'), 'utf8').split(/\s+/)[0];
        load = Number.isFinite(Number(l)) ? Number(l) : null;
      } catch {
        load = null;
      }
      const base = { wallS, cpus: os.availableParallelism(), loadAverage1: load };
      if (!c0 || !c1 || !(wallS > 0) || !own0.has('self')) return { ...base, foreignCores: null, ownCores: null, stealShare: null };
      const busy = (c1.busy - c0.busy) / USER_HZ;
      const ownS = own / USER_HZ;
      const total = c1.total - c0.total;
      return {
        ...base,
        foreignCores: Math.max(0, busy - ownS) / wallS,
        ownCores: ownS / wallS,
        stealShare: total > 0 ? (c1.steal - c0.steal) / total : null,
      };
    },
  };
  return {
    stop(): HostLoad {
      const load = window.stop();
      const reaped1 = reaped0 === null ? null : reapedChildrenTicks(o.procRoot);
      return reaped0 === null || reaped1 === null ? load : withReapedChildren(load, (reaped1 - reaped0) / USER_HZ);
    },
  };
}

/** Limits above which a window's figures count as interfered with. */
export const INTERFERENCE = { foreignCores: 0.25, stealShare: 0.05 } as const;

/** 'host-interference' warnings for one measured window (none when the figures are unknown). */
export function interferenceWarnings(load: HostLoad, ctx: { phase?: string; limits?: Partial<typeof INTERFERENCE> }): QualityWarning[] {
  const lim = { ...INTERFERENCE, ...ctx.limits };
  const where = ctx.phase ? `${ctx.phase}: ` : '';
  const out: QualityWarning[] = [];
  if (load.foreignCores !== null && load.foreignCores > lim.foreignCores) {
    out.push({
      code: 'host-interference',
      ...(ctx.phase ? { phase: ctx.phase } : {}),
      message: `${where}other processes used ${load.foreignCores.toFixed(2)} of ${load.cpus} cores during the measurement (load average ${load.loadAverage1 ?? '?'})`,
    });
  }
  if (load.stealShare !== null && load.stealShare > lim.stealShare) {
    out.push({
      code: 'host-interference',
      ...(ctx.phase ? { phase: ctx.phase } : {}),
      message: `${where}the hypervisor stole ${(load.stealShare * 100).toFixed(1)}% of CPU time during the measurement`,
    });
  }
  return out;
}
