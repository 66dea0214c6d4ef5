/**
 * Host load around one distributed run. hostLoadWindow (src/stats/host-load.ts) counts this
 * process and the live pids it is given as gpucolo's own; ranks start after the window opens and
 * have exited (and been reaped) before it closes, so at neither end is there a pid to read, and
 * their CPU time would count as foreign. The kernel adds a reaped child's CPU time, with that of
 * the descendants it reaped (a torchrun launcher's ranks, DataLoader workers), to the parent's
 * cutime/cstime: the growth of ours over the window is the ranks' time, moved here from foreign to
 * own. (Worth folding into hostLoadWindow as an option; until then it lives here.)
 */
import path from 'node:path';
import { readInputText } from '../../input-file.js';
import { hostLoadWindow, type HostLoad, type HostLoadOptions } from '../../stats/index.js';

/** USER_HZ, as in src/stats/host-load.ts */
const USER_HZ = 100;

/** cutime + cstime of this process (reaped children's CPU time), jiffies; null when unreadable. */
export function reapedChildrenTicks(procRoot = '/proc'): number | null {
  try {
    const text = readInputText(path.join(procRoot, 'self', 'stat'), { kind: 'sysfs' });
    // fields after the command name (which may hold spaces and parentheses): state is [0], so
    // utime/stime (fields 14/15) are [11]/[12] and cutime/cstime (16/17) are [13]/[14]
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const cutime = Number(rest[13]);
    const cstime = Number(rest[14]);
    return Number.isFinite(cutime) && Number.isFinite(cstime) ? cutime + cstime : null;
  } catch {
    return null;
  }
}

/** Moves `childS` CPU seconds from foreign to own (a window's figures are per second of wall time). */
export function withReapedChildren(load: HostLoad, childS: number): HostLoad {
  if (load.foreignCores === null || load.ownCores === null || !(load.wallS > 0) || !(childS > 0)) return load;
  const cores = childS / load.wallS;
  return { ...load, foreignCores: Math.max(0, load.foreignCores - cores), ownCores: load.ownCores + cores };
}

/** hostLoadWindow whose own share includes the children reaped inside the window. */
export function runHostLoadWindow(o: HostLoadOptions = {}): { stop(): HostLoad } {
  const c0 = reapedChildrenTicks(o.procRoot);
  const w = hostLoadWindow(o);
  return {
    stop(): HostLoad {
      const load = w.stop();
      const c1 = reapedChildrenTicks(o.procRoot);
      return c0 === null || c1 === null ? load : withReapedChildren(load, (c1 - c0) / USER_HZ);
    },
  };
}
