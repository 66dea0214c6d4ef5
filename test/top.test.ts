/**
 * gpucolo top through its command line, in-process: --once frames of the bundled example host
 * tree (examples/kfd-mi300x; both sampler implementations), sysfs only, and the bad inputs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { topCommand } from '../src/cli/top.js';
import { cliInProcess } from './helpers/cli-in-process.js';
import { IMPLS, ROOT } from './helpers/impls.js';
import { copyTree } from './helpers/tree.js';

const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');

/** `gpucolo top ARGS` in this process: exit code, the CliError's message, stdout (not a terminal unless asked). */
const topCli = (args: string[], tty: { stdout?: boolean; stdin?: boolean } = {}) =>
  cliInProcess(topCommand(), ['top', ...args], { stdout: tty.stdout ?? false, stdin: tty.stdin ?? false });

/** The grid row of pipe `pipe` as cells per XCC block: "p0 -- -- AN .. ..." -> [['--','--','AN',...], ...]. */
function gridRow(frame: string, pipe: number): string[][] {
  const line = frame.split('\n').find((l) => l.startsWith(`p${pipe} `));
  expect(line, `grid row p${pipe}`).toBeDefined();
  return line!.split(new RegExp(`\\s*p${pipe} `)).filter(Boolean).map((b) => b.trim().split(/ +/));
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
afterEach(() => vi.restoreAllMocks());

describe.each(IMPLS)('top --once on the example tree (%s sampler)', (impl) => {
  it('prints one plain-text frame: the slot grid per XCC, the process rows, no escape codes', async () => {
    const r = await topCli(['--root', EXAMPLE, '--once', '--impl', impl]);
    expect(r.code).toBe(0);
    const f = r.stdout;
    expect(f).not.toMatch(/\x1b/);
    expect(f).toMatch(/^gpucolo top - tree .*kfd-mi300x - 2 process\(es\), 4 queue\(s\) - sample 0 at t=/);
    expect(f).toContain('> GPU 1/1: node 2, gpu_id 7c1e, gfx942 ip discovery, 4 XCC: active CP slots 8 (2+2+2+2 per XCC), 0 unmatched');
    expect(f).toMatch(/^XCC 0 +XCC 1 +XCC 2 +XCC 3$/m);
    // pid 41872 (tag A) holds pipe 0 queue 2 (normal) and pipe 1 queue 2 (high) on every XCC;
    // queues 0 and 1 of each pipe are the kernel's own (absent from the hqds dump)
    const p0 = gridRow(f, 0);
    const p1 = gridRow(f, 1);
    expect(p0).toHaveLength(4);
    for (const xcc of p0) expect(xcc).toEqual(['--', '--', 'AN', '..', '..', '..', '..', '..']);
    for (const xcc of p1) expect(xcc).toEqual(['--', '--', 'AH', '..', '..', '..', '..', '..']);
    for (const xcc of gridRow(f, 3)) expect(xcc).toEqual(['--', '--', '..', '..', '..', '..', '..', '..']);
    expect(f).toContain('A pid 41872 python3;');
    // process rows with the sysfs counters, queue rows under them
    expect(f).toMatch(/\nA {2}41872 \(27\) +python3 +3 +2 compute, 1 sdma-xgmi +2 +16\.0 GiB +152ms +4ms +38 +0 +0\/0\n/);
    expect(f).toMatch(/\n {4}q0 {2}compute {2}node 2 {2}prio normal 1\/7 {2}slots p0 q2 x4, 4 active {2}runlist yes\n/);
    expect(f).toMatch(/\n {4}q1 {2}compute {2}node 2 {2}prio high 2\/11 {2}slots p1 q2 x4, 4 active {2}runlist yes\n/);
    expect(f).toMatch(/\n {4}q2 {2}sdma-xgmi {2}node 2 {2}prio - {2}slots sdma 2\/0 {2}runlist yes\n/);
    expect(f).toMatch(/\nB {2}42117 +pt_main_thread +1 +1 compute +2 +2\.0 GiB +0 +0 +0 +0 +0\/0\n/);
    expect(f).toMatch(/\n {4}q0 {2}compute {2}node 2 {2}prio normal 1\/7 {2}slots none {2}runlist no\n/);
    expect(f).toContain('none yet (the first sample is the baseline');
    expect(f).toMatch(/\nsampler (native-thread|ts-timer) every 1s: read [\d.]+(us|ms), parse /);
    expect(f).not.toContain('missing:');
  });
});

describe('top --once: what is missing without root', () => {
  it('sysfs only (debugfs not in the recorded tree): queues from sysfs, no grid, and it says why', async () => {
    const tree = copyTree(EXAMPLE, 'gpucolo-top-');
    dirs.push(tree);
    fs.rmSync(path.join(tree, 'sys/kernel/debug/kfd'), { recursive: true });
    const r = await topCli(['--root', tree, '--once']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(sysfs only)');
    expect(r.stdout).toContain('HQD slots: not known (debugfs hqds not read: it needs root)');
    expect(r.stdout).toMatch(/missing: debugfs .*kfd not readable \(not in the recorded tree\): priorities, HQD slots/);
    expect(r.stdout).toMatch(/\n {4}q0 {2}compute {2}node 2 {2}prio \? {2}slots \? {2}runlist \?\n/);
    // the sysfs counters are still there
    expect(r.stdout).toMatch(/\nA {2}41872 \(27\) +python3 +3 .*16\.0 GiB/);
  });
});

describe('top: bad inputs', () => {
  it('an interval out of 100ms..60s: exit 2, one line', async () => {
    for (const v of ['50ms', '61s']) {
      const r = await topCli(['--root', EXAMPLE, '--once', '--interval', v]);
      expect(r.code).toBe(2);
      expect(r.message).toMatch(/^--interval must be between 100ms and 60s \(got /);
    }
    expect((await topCli(['--once', '--interval', 'soon'])).code).toBe(2);
  });

  it('a --root that does not exist: exit 2; a directory without KFD files: exit 1', async () => {
    const r = await topCli(['--root', '/nonexistent/gpucolo', '--once']);
    expect(r).toMatchObject({ code: 2, message: '--root /nonexistent/gpucolo: no such directory' });
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-top-empty-'));
    dirs.push(empty);
    const e = await topCli(['--root', empty, '--once']);
    expect(e.code).toBe(1);
    expect(e.message).toMatch(/^no KFD data readable under .*: the recorded tree has no KFD files$/);
  });

  it('not a terminal without --once: refused with exit 2 and the way out', async () => {
    const r = await topCli(['--root', EXAMPLE]);
    expect(r).toMatchObject({ code: 2, message: 'top draws a full-screen view and needs a terminal (stdout is not one): use --once for one plain-text frame' });
    expect(r.stdout).toBe('');
    const s = await topCli(['--root', EXAMPLE], { stdout: true });
    expect(s.message).toContain('(stdin is not one)');
  });

  it('options that do not go together: exit 2', async () => {
    expect((await topCli(['--replay', 'x.jsonl', '--root', EXAMPLE, '--once'])).code).toBe(2);
    expect((await topCli(['--root', EXAMPLE, '--speed', '2', '--once'])).message).toBe('--speed and --at need --replay');
    expect((await topCli(['--replay', 'x.jsonl', '--speed', '0', '--once'])).code).toBe(2);
  });
});
