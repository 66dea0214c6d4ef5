/**
 * proctree against a fixture procfs tree (status + stat files written to a temp dir) and, for the
 * parts that must match the kernel, against the real /proc with real child processes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ancestors,
  descendants,
  groupMembers,
  isDescendantOf,
  listPids,
  liveGroupMembers,
  namespacePid,
  parseStat,
  readStat,
  readStatus,
  relatedGroups,
  scanStats,
  subtree,
} from '../src/supervisor/index.js';
import { HANG_MS } from './helpers/load.js';
import { waitFor } from './helpers/procs.js';

interface FakeProc {
  pid: number;
  ppid: number;
  name?: string;
  pgrp?: number;
  state?: string;
  nspid?: number[];
  /** write only one of the two files */
  only?: 'stat' | 'status';
}

/** Writes <root>/<pid>/{status,stat} in the kernel's formats (the fields proctree reads). */
function fakeProc(procs: FakeProc[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-proc-'));
  for (const p of procs) {
    const dir = path.join(root, String(p.pid));
    fs.mkdirSync(dir);
    const name = p.name ?? `p${p.pid}`;
    const state = p.state ?? 'S';
    if (p.only !== 'stat') {
      fs.writeFileSync(
        path.join(dir, 'status'),
        `Name:\t${name}\nUmask:\t0022\nState:\t${state} (sleeping)\nTgid:\t${p.pid}\nNgid:\t0\nPid:\t${p.pid}\nPPid:\t${p.ppid}\n` +
          `TracerPid:\t0\nUid:\t0\t0\t0\t0\nNStgid:\t${(p.nspid ?? [p.pid]).join('\t')}\nNSpid:\t${(p.nspid ?? [p.pid]).join('\t')}\n` +
          `NSpgid:\t${p.pgrp ?? p.pid}\nThreads:\t1\n`,
      );
    }
    if (p.only !== 'status') {
      // 52 fields as in proc(5); starttime (field 22) = 1000 + pid
      const rest = [state, p.ppid, p.pgrp ?? p.pid, p.pgrp ?? p.pid, 0, -1, 4194560, 100, 0, 0, 0, 1, 1, 0, 0, 20, 0, 1, 0, 1000 + p.pid, 1000000, 200];
      fs.writeFileSync(path.join(dir, 'stat'), `${p.pid} (${name}) ${rest.join(' ')}${' 0'.repeat(30)}\n`);
    }
  }
  // what else lives in /proc: non-numeric entries must be ignored
  fs.mkdirSync(path.join(root, 'sys'));
  fs.writeFileSync(path.join(root, 'uptime'), '1.0 1.0\n');
  fs.symlinkSync('1', path.join(root, 'self'));
  return root;
}

// 1 ─┬─ 10 ─── 11 ─── 12 ─── 30 (in a container: NSpid 30 5)
//    │           └─── 13 (zombie)
//    ├─ 20 ─── 21 (comm with spaces and parentheses)
//    └─ 50 (status only)        40 <-> 41: a PPid cycle (bad fixture) ; 2 (kthreadd, PPid 0)
const ROOT = fakeProc([
  { pid: 1, ppid: 0, name: 'init' },
  { pid: 2, ppid: 0, name: 'kthreadd' },
  { pid: 10, ppid: 1, name: 'bash', pgrp: 10 },
  { pid: 11, ppid: 10, name: 'torchrun', pgrp: 10 },
  { pid: 12, ppid: 11, name: 'python3', pgrp: 10 },
  { pid: 13, ppid: 11, name: 'sleep', pgrp: 10, state: 'Z' },
  { pid: 30, ppid: 12, name: 'pt_main_thread', pgrp: 10, nspid: [30, 5] },
  { pid: 20, ppid: 1, name: 'other' },
  { pid: 21, ppid: 20, name: 'a) (b c)' },
  { pid: 40, ppid: 41, name: 'loop-a' },
  { pid: 41, ppid: 40, name: 'loop-b' },
  { pid: 50, ppid: 1, name: 'status-only', only: 'status' },
]);
afterAll(() => fs.rmSync(ROOT, { recursive: true, force: true }));

describe('fixture procfs', () => {
  it('readStatus gives Name, PPid, NSpid and Tgid; null for a vanished pid', () => {
    expect(readStatus(ROOT, 30)).toEqual({ pid: 30, name: 'pt_main_thread', ppid: 12, nsPids: [30, 5], tgid: 30 });
    expect(readStatus(ROOT, 12)).toMatchObject({ ppid: 11, nsPids: [12], tgid: 12 });
    expect(readStatus(ROOT, 999)).toBeNull();
    expect(readStatus(path.join(ROOT, 'no-such-root'), 1)).toBeNull();
  });

  it('namespacePid is the innermost NSpid only when it differs', () => {
    expect(namespacePid(readStatus(ROOT, 30))).toBe(5);
    expect(namespacePid(readStatus(ROOT, 12))).toBeNull();
    expect(namespacePid(null)).toBeNull();
  });

  it('ancestors walks PPid up to the kernel, bounded by maxDepth and cycles', () => {
    expect(ancestors(ROOT, 30)).toEqual([12, 11, 10, 1]);
    expect(ancestors(ROOT, 30, 2)).toEqual([12, 11]);
    expect(ancestors(ROOT, 1)).toEqual([]);
    expect(ancestors(ROOT, 999)).toEqual([]);
    expect(ancestors(ROOT, 40)).toEqual([41]);
  });

  it('isDescendantOf: self, children, grandchildren; not siblings, strangers or vanished pids', () => {
    const roots = new Set([10]);
    expect(isDescendantOf(ROOT, 10, roots)).toBe(true);
    expect(isDescendantOf(ROOT, 11, roots)).toBe(true);
    expect(isDescendantOf(ROOT, 30, roots)).toBe(true);
    expect(isDescendantOf(ROOT, 21, roots)).toBe(false);
    expect(isDescendantOf(ROOT, 1, roots)).toBe(false);
    expect(isDescendantOf(ROOT, 999, roots)).toBe(false);
    expect(isDescendantOf(ROOT, 40, new Set([7]))).toBe(false);
    expect(isDescendantOf(ROOT, 30, new Set([10]), 2)).toBe(false); // 10 is 3 levels up
  });

  it('descendants: one scan of stat, roots included when present', () => {
    expect([...descendants(ROOT, [10])].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 30]);
    expect([...descendants(ROOT, [12, 20, 999])].sort((a, b) => a - b)).toEqual([12, 20, 21, 30]);
    expect([...descendants(ROOT, [40])].sort((a, b) => a - b)).toEqual([40, 41]);
    expect(descendants(ROOT, [999]).size).toBe(0);
    expect(descendants(path.join(ROOT, 'no-such-root'), [1]).size).toBe(0);
  });

  it('parses stat lines whose comm contains spaces and parentheses', () => {
    expect(readStat(ROOT, 21)).toEqual({ pid: 21, name: 'a) (b c)', state: 'S', ppid: 20, pgrp: 21, session: 21, startTicks: 1021 });
    expect(parseStat('garbage')).toBeNull();
    expect(parseStat('12 (x) S')).toBeNull();
    expect(parseStat('12 (x) S 1 2 3')).toMatchObject({ ppid: 1, pgrp: 2, session: 3, startTicks: -1 });
    expect(readStat(ROOT, 50)).toBeNull(); // no stat file: skipped, not an error
  });

  it('lists numeric entries only and finds process group members, zombies apart', () => {
    expect(listPids(ROOT).sort((a, b) => a - b)).toEqual([1, 2, 10, 11, 12, 13, 20, 21, 30, 40, 41, 50]);
    expect(scanStats(ROOT).map((s) => s.pid).sort((a, b) => a - b)).toEqual([1, 2, 10, 11, 12, 13, 20, 21, 30, 40, 41]);
    expect(groupMembers(ROOT, 10).map((s) => s.pid).sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 30]);
    expect(liveGroupMembers(ROOT, 10).map((s) => s.pid).sort((a, b) => a - b)).toEqual([10, 11, 12, 30]);
    expect(groupMembers(ROOT, 777)).toEqual([]);
  });
});

describe('relatedGroups', () => {
  it('follows descendants of group members into the groups they made, to a fixpoint', () => {
    // group 100: launcher 100 -> worker 110 (setsid: group 110) -> 111 (group 110)
    //                                                              -> 120 (setsid again: group 120)
    // orphan 130 in group 110 (parent died, re-parented to 1) -> 131 setsid (group 131)
    // unrelated 200 (group 200), child of 1
    const stats = [
      { pid: 1, ppid: 0, pgrp: 1 },
      { pid: 100, ppid: 1, pgrp: 100 },
      { pid: 110, ppid: 100, pgrp: 110 },
      { pid: 111, ppid: 110, pgrp: 110 },
      { pid: 120, ppid: 111, pgrp: 120 },
      { pid: 130, ppid: 1, pgrp: 110 },
      { pid: 131, ppid: 130, pgrp: 131 },
      { pid: 200, ppid: 1, pgrp: 200 },
    ].map((p) => ({ ...p, name: `p${p.pid}`, state: 'S', session: p.pgrp, startTicks: 0 }));
    expect([...relatedGroups(stats, [100])].sort((a, b) => a - b)).toEqual([100, 110, 120, 131]);
    expect([...relatedGroups(stats, [200])]).toEqual([200]);
    expect([...relatedGroups(stats, [999])]).toEqual([999]);
    expect([...subtree(stats, [110])].sort((a, b) => a - b)).toEqual([110, 111, 120]);
  });
});

describe('real /proc', () => {
  it('agrees with the kernel about this process and a child + grandchild', async () => {
    const me = readStatus('/proc', process.pid)!;
    expect(me.tgid).toBe(process.pid);
    expect(me.ppid).toBe(process.ppid);
    expect(ancestors('/proc', process.pid)[0]).toBe(process.ppid);

    // sh starts a grandchild and prints its pid; both stay until we kill them
    const sh = spawn('sh', ['-c', 'sleep 100 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    try {
      const gc = await new Promise<number>((resolve) => sh.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
      // $! is known as soon as sh forked: wait until the fork has become sleep (a guard, not a speed)
      await waitFor(() => readStat('/proc', gc)?.name === 'sleep', HANG_MS, 'the grandchild to exec sleep');
      expect(readStatus('/proc', gc)!.ppid).toBe(sh.pid);
      expect(isDescendantOf('/proc', gc, new Set([process.pid]))).toBe(true);
      expect(isDescendantOf('/proc', process.pid, new Set([gc]))).toBe(false);
      const d = descendants('/proc', [process.pid]);
      expect(d.has(process.pid) && d.has(sh.pid!) && d.has(gc)).toBe(true);
      expect(liveGroupMembers('/proc', sh.pid!).map((s) => s.pid).sort((a, b) => a - b)).toEqual([sh.pid, gc].sort((a, b) => a - b));
      expect(readStat('/proc', gc)).toMatchObject({ pid: gc, name: 'sleep', ppid: sh.pid, pgrp: sh.pid });
    } finally {
      process.kill(-sh.pid!, 'SIGKILL');
    }
  });
});
