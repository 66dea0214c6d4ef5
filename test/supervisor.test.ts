/**
 * The supervisor against real processes: sh scripts with sleeping grandchildren, TERM-ignoring
 * groups, grandchildren holding pipes, spawn failures, and node scripts that use the supervisor
 * and get signaled. Graces are short (200 ms) where the group ignores SIGTERM anyway. Time is
 * asserted only as a lower bound (SIGKILL not before the grace), which a slow host cannot break;
 * everything else waits for events (an output line, a pid in /proc, a registry state) with
 * deadlines that only guard against hangs (HANG_MS), and "at once" is shown against graces of a
 * minute or an hour that a broken escalation would wait out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Supervisor, UsageError, descendants, readRunRegistry, readStat, RUNS_SCHEMA, type SupervisedChild } from '../src/supervisor/index.js';
import { HANG_MS } from './helpers/load.js';
import { alive, dead, sleep, waitFor } from './helpers/procs.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SUPERVISOR_ENTRY = path.resolve(HERE, '../src/supervisor/index.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-sup-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// every supervisor made here is stopped after its test, so a failing test leaves no sleeper behind
const made: Supervisor[] = [];
function supervisor(opts: ConstructorParameters<typeof Supervisor>[0] = {}): Supervisor {
  const s = new Supervisor({ graceMs: 200, ...opts });
  made.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((s) => s.stopAll({ graceMs: 0 })));
});

const HAS_SETSID = ['/usr/bin/setsid', '/bin/setsid', '/usr/sbin/setsid'].some((p) => fs.existsSync(p));


/** Collects a readable's text; resolves with each new chunk checked against `until`. */
function collect(stream: Readable | null): { text: () => string; ended: Promise<void> } {
  let buf = '';
  stream!.setEncoding('utf8');
  stream!.on('data', (d: string) => (buf += d));
  const ended = new Promise<void>((r) => stream!.once('close', () => r()));
  return { text: () => buf, ended };
}

/** Waits for the child to print `lines` lines and returns them (pids, "ready" markers). */
async function lines(out: { text: () => string }, n: number): Promise<string[]> {
  await waitFor(() => out.text().split('\n').length > n, HANG_MS, `${n} lines of output`);
  return out.text().split('\n').slice(0, n);
}

/** sh script: background sleeps stay in the group; prints their pids, one per line, then waits. */
const GROUP_SH = (ignoreTerm: boolean, n = 2): string[] => [
  'sh',
  '-c',
  `${ignoreTerm ? "trap '' TERM; " : ''}${Array.from({ length: n }, () => 'sleep 100 & echo $!; ').join('')}echo ready; wait`,
];

async function startGroup(sup: Supervisor, ignoreTerm: boolean, n = 2): Promise<{ child: SupervisedChild; pids: number[] }> {
  const child = sup.start({ argv: GROUP_SH(ignoreTerm, n), stdout: 'pipe' });
  const out = collect(child.stdout);
  const got = await lines(out, n + 1);
  expect(got[n]).toBe('ready');
  return { child, pids: [child.pid!, ...got.slice(0, n).map(Number)] };
}

describe('start and exit', () => {
  it('runs the child as leader of its own session and process group', async () => {
    const sup = supervisor({ graceMs: 5000 });
    const child = sup.start({ argv: ['sleep', '100'] });
    expect(child.pid).toBeGreaterThan(1);
    expect(child.pgid).toBe(child.pid);
    const st = readStat('/proc', child.pid!)!;
    expect(st.pgrp).toBe(child.pid);
    expect(st.session).toBe(child.pid);
    expect(st.pgrp).not.toBe(readStat('/proc', process.pid)!.pgrp);
    const info = await child.stop();
    expect(info.reason).toBe('stopped');
    expect(info.signal).toBe('SIGTERM');
  });

  it('reports exit codes and signals', async () => {
    const sup = supervisor();
    const three = await sup.start({ argv: ['sh', '-c', 'exit 3'] }).exited;
    expect(three).toMatchObject({ code: 3, signal: null, reason: 'exited' });
    expect(three.durationNs).toBeGreaterThan(0);
    const zero = await sup.start({ argv: ['true'] }).exited;
    expect(zero).toMatchObject({ code: 0, reason: 'exited' });
    const usr1 = await sup.start({ argv: ['sh', '-c', 'kill -USR1 $$; sleep 5'] }).exited;
    expect(usr1).toMatchObject({ code: null, signal: 'SIGUSR1', reason: 'signaled' });
  });

  it('passes argv as is: no shell sees it', async () => {
    const sup = supervisor();
    const weird = '$HOME; echo `id` && $(touch x) *';
    const child = sup.start({ argv: ['printf', '%s', weird], stdout: 'pipe' });
    const out = collect(child.stdout);
    await child.exited;
    await out.ended;
    expect(out.text()).toBe(weird);
  });

  it('merges env over process.env; undefined removes a variable', async () => {
    const sup = supervisor();
    const child = sup.start({ argv: ['sh', '-c', 'echo "$GPUCOLO_T-${HOME-unset}-${PATH:+path}"'], env: { GPUCOLO_T: 'x', HOME: undefined }, stdout: 'pipe' });
    const out = collect(child.stdout);
    await out.ended;
    expect(out.text()).toBe('x-unset-path\n');
  });

  it('feeds stdin when piped', async () => {
    const sup = supervisor();
    const child = sup.start({ argv: ['cat'], stdin: 'pipe', stdout: 'pipe' });
    const out = collect(child.stdout);
    child.stdin!.end('hello\n');
    expect(await child.exited).toMatchObject({ code: 0, reason: 'exited' });
    await out.ended;
    expect(out.text()).toBe('hello\n');
  });

  it('writes output files directly (the child holds the file, not a pipe), with append', async () => {
    const sup = supervisor();
    const file = path.join(tmp, 'out.log');
    const a = sup.start({ argv: ['sh', '-c', 'echo one; echo err >&2; exec sleep 100'], stdout: { file }, stderr: { file, append: true } });
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('err'), HANG_MS, 'both lines in the file');
    expect(fs.readlinkSync(`/proc/${a.pid}/fd/1`)).toBe(file);
    await a.stop();
    await sup.start({ argv: ['echo', 'two'], stdout: { file, append: true } }).exited;
    expect(fs.readFileSync(file, 'utf8').split('\n').sort()).toEqual(['', 'err', 'one', 'two']);
    await sup.start({ argv: ['echo', 'three'], stdout: { file } }).exited;
    expect(fs.readFileSync(file, 'utf8')).toBe('three\n');
  });
});

describe('spawn failures', () => {
  it('resolves exited with spawn-failed and one clear line, never throws', async () => {
    const sup = supervisor();
    const notExec = path.join(tmp, 'not-executable.sh');
    fs.writeFileSync(notExec, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const fileAsCwd = path.join(tmp, 'plain-file');
    fs.writeFileSync(fileAsCwd, '');
    const cases = [
      { spec: { argv: ['gpucolo-no-such-program', '--x'] }, code: 'ENOENT', error: /^spawn gpucolo-no-such-program ENOENT$/ },
      { spec: { argv: [notExec] }, code: 'EACCES', error: /EACCES/ },
      { spec: { argv: ['true'], cwd: path.join(tmp, 'no-such-dir') }, code: 'ENOENT', error: /^cwd .*no-such-dir: ENOENT \(no such directory\)$/ },
      { spec: { argv: ['true'], cwd: fileAsCwd }, code: 'ENOTDIR', error: /^cwd .*plain-file: ENOTDIR/ },
      { spec: { argv: ['true'], stdout: { file: path.join(tmp, 'no-dir', 'x.log') } }, code: 'ENOENT', error: /^open .*x\.log: ENOENT$/ },
    ];
    for (const c of cases) {
      const child = sup.start(c.spec);
      expect(child.pid).toBeUndefined();
      const info = await child.exited;
      expect(info.reason, c.spec.argv[0]).toBe('spawn-failed');
      expect(info.errorCode).toBe(c.code);
      expect(info.error).toMatch(c.error);
      expect(info.error).not.toContain('\n');
      expect(await child.stop()).toBe(info);
      expect(child.kill()).toBe(false);
    }
    expect(sup.children().map((r) => r.state)).toEqual(cases.map(() => 'spawn-failed'));
    expect(sup.children().every((r) => r.pid === null && r.error)).toBe(true);
    expect(sup.live()).toEqual([]);
  });

  it('throws a TypeError with a code for programmer errors only', () => {
    const sup = supervisor();
    for (const bad of [{ argv: [] }, { argv: [''] }, { argv: 'sleep 1' }, { argv: ['echo', 3] }, { argv: ['a\0b'] }, { argv: ['true'], stdout: 'tty' }, { argv: ['true'], stdout: { file: '' } }]) {
      let err: unknown;
      try {
        sup.start(bad as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(TypeError);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).code).toBe('ERR_INVALID_ARG_VALUE');
    }
    expect(sup.children()).toEqual([]);
  });
});

describe('stopping groups', () => {
  it('stop() ends the leader and its grandchildren with SIGTERM when they obey', async () => {
    const sup = supervisor({ graceMs: 5000 });
    const { child, pids } = await startGroup(sup, false);
    expect(pids.every(alive)).toBe(true);
    const info = await child.stop();
    expect(info).toMatchObject({ reason: 'stopped', signal: 'SIGTERM', code: null });
    expect(pids.every(dead)).toBe(true);
    expect(child.groupAlive()).toBe(false);
    expect(child.kill()).toBe(false);
  });

  it('escalates to SIGKILL only after the grace when the group ignores SIGTERM', async () => {
    const sup = supervisor({ graceMs: 500 });
    const { child, pids } = await startGroup(sup, true, 3);
    const t0 = performance.now();
    const stopping = child.stop();
    await sleep(100);
    // within the grace SIGTERM was ignored and nobody has been killed yet (on a host so loaded
    // that this check comes after the grace, there is nothing left to check)
    if (performance.now() - t0 < 500) expect(pids.every(alive)).toBe(true);
    const info = await stopping;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(495);
    expect(info).toMatchObject({ reason: 'killed', signal: 'SIGKILL', code: null });
    expect(pids.every(dead)).toBe(true);
    expect(sup.children()[0]).toMatchObject({ state: 'killed', signal: 'SIGKILL', groupAlive: false });
  });

  it('a later stop() with grace 0 escalates a running stop at once; both resolve alike', async () => {
    const sup = supervisor({ graceMs: 60_000 });
    const { child, pids } = await startGroup(sup, true);
    const slow = child.stop();
    await sleep(50); // any moment during the 60 s grace will do
    const fast = child.stop({ graceMs: 0 });
    const [a, b] = await Promise.all([slow, fast]);
    expect(a).toEqual(b);
    expect(a.reason).toBe('killed');
    expect(pids.every(dead)).toBe(true);
  });

  it('kill() signals the whole group now; a signal death not from stop() is "signaled"', async () => {
    const sup = supervisor();
    const { child, pids } = await startGroup(sup, false);
    expect(child.kill('SIGKILL')).toBe(true);
    expect(await child.exited).toMatchObject({ reason: 'signaled', signal: 'SIGKILL' });
    await waitFor(() => pids.every(dead), HANG_MS, 'group members to die');
    await waitFor(() => !child.groupAlive(), HANG_MS, 'the group to be noticed gone');
    expect(child.kill('SIGTERM')).toBe(false);
  });

  it('a child that dies by a signal nobody sent is "signaled" even when a stop was asked before its exit was handled', async () => {
    // the distributed runner's race: rank 1 SIGKILLs itself, rank 0's exit is handled first and
    // the job stops every rank; rank 1's exit, handled after that stop(), must still say
    // 'signaled' (it caused the failure), not 'stopped'
    const sup = supervisor();
    const child = sup.start({ argv: ['sh', '-c', 'kill -KILL $$'] });
    // hold the event loop until the child is a zombie: its exit is then pending, not yet handled
    const stat = `/proc/${child.pid}/stat`;
    const until = Date.now() + HANG_MS;
    while (Date.now() < until && !/^\d+ \(.*\) Z /.test(fs.readFileSync(stat, 'utf8'))) {
      // spin: no await, so the 'exit' event cannot be handled in between
    }
    const stopped = child.stop({ graceMs: 5000 });
    expect(await child.exited).toMatchObject({ reason: 'signaled', signal: 'SIGKILL', code: null });
    expect((await stopped).reason).toBe('signaled');
  });

  it('exited follows the leader, not its pipes: a grandchild holding stdout does not delay it', async () => {
    const sup = supervisor();
    // the grandchild inherits stdout and keeps it open after the leader exits
    const child = sup.start({ argv: ['sh', '-c', 'sleep 100 & echo $!; exit 5'], stdout: 'pipe' });
    const out = collect(child.stdout);
    let closed = false;
    void out.ended.then(() => (closed = true));
    const info = await child.exited;
    expect(info).toMatchObject({ code: 5, reason: 'exited' });
    const [gc] = (await lines(out, 1)).map(Number);
    expect(closed).toBe(false); // the pipe is still held...
    expect(alive(gc)).toBe(true); // ...by a grandchild that is still in the group
    expect(child.groupAlive()).toBe(true);
    expect(sup.live()).toEqual([child]);
    expect(sup.children()[0]).toMatchObject({ state: 'exited', code: 5, groupAlive: true });

    // stop() after the leader exited still reaches the group; the leader's exit stays as it was
    const stopped = await child.stop();
    expect(stopped).toMatchObject({ code: 5, reason: 'exited' });
    expect(dead(gc)).toBe(true);
    await out.ended; // and the pipe is closed once its last holder is gone
    expect(sup.children()[0]).toMatchObject({ state: 'exited', groupAlive: false });
    expect(sup.live()).toEqual([]);
  });

  it.skipIf(!HAS_SETSID)('also stops workers a launcher put in sessions of their own (setsid), SIGKILL included', async () => {
    const sup = supervisor({ graceMs: 200 });
    // like torchrun: the launcher stays in our group, its "workers" escape into new sessions
    const child = sup.start({
      argv: ['sh', '-c', "trap '' TERM; setsid sleep 100 & echo $!; setsid sh -c 'sleep 100 & wait' & echo $!; echo ready; wait"],
      stdout: 'pipe',
    });
    const out = collect(child.stdout);
    const got = await lines(out, 3);
    const workers = got.slice(0, 2).map(Number);
    await waitFor(() => workers.every((w) => readStat('/proc', w)?.session === w), HANG_MS, 'workers in their own sessions');
    // the second worker is a shell that forks its sleep after setsid: its session exists before
    // the sleep does (on a busy host, for a while), so wait for the sleep itself (it was a flake:
    // "expected [] to have a length of 1" at load average 12-16)
    const innerSleeps = (): number[] => [...descendants('/proc', [workers[1]])].filter((p) => p !== workers[1] && readStat('/proc', p)?.name === 'sleep');
    await waitFor(() => innerSleeps().length === 1, HANG_MS, 'the second worker\'s sleep');
    const innerSleep = innerSleeps();
    expect([...descendants('/proc', [workers[1]])].filter((p) => p !== workers[1])).toEqual(innerSleep);
    const all = [child.pid!, ...workers, ...innerSleep];
    expect(all.every(alive)).toBe(true);

    const info = await child.stop();
    expect(info.reason).toBe('killed'); // the TERM-ignoring leader (and first worker) needed SIGKILL
    expect(all.every(dead)).toBe(true);
    expect(sup.children()[0].otherGroups.sort((a, b) => a - b)).toEqual([...workers].sort((a, b) => a - b));
    expect(sup.children()[0].groupAlive).toBe(false);
  });

  it('notices when a group left by an exited leader empties on its own (its number is then never signaled)', async () => {
    const file = path.join(tmp, 'runs-linger.json');
    const sup = supervisor({ registryFile: file });
    // the leader exits, its sleep lingers until the test ends it (not the supervisor: "on its
    // own"). A sleep that ended by itself after 0.3 s could be gone before a busy host even
    // delivered the leader's exit, and the group never seen alive.
    const child = sup.start({ argv: ['sh', '-c', 'sleep 100 & echo $!; exit 0'], stdout: 'pipe' });
    const [gc] = (await lines(collect(child.stdout), 1)).map(Number);
    await child.exited;
    expect(readRunRegistry(file).children[0]).toMatchObject({ state: 'exited', groupAlive: true });
    process.kill(gc, 'SIGTERM');
    await waitFor(() => readRunRegistry(file).children[0].groupAlive === false, HANG_MS, 'the lingering group to be noticed gone');
    expect(sup.live()).toEqual([]);
    expect(child.kill('SIGKILL')).toBe(false);
  });

  it('stopAll() stops every live group concurrently, with per-group reasons', async () => {
    // a one-minute grace: the obeying group ends on SIGTERM with no deadline to race on a busy
    // host; the ignoring one would wait it out, and is escalated once the obeying one is gone
    const sup = supervisor({ graceMs: 60_000 });
    const obey = await startGroup(sup, false);
    const ignore = await startGroup(sup, true);
    const lingering = sup.start({ argv: ['sh', '-c', 'sleep 100 & echo $!'], stdout: 'pipe' });
    const lingerPid = Number((await lines(collect(lingering.stdout), 1))[0]);
    await lingering.exited;
    const done = sup.start({ argv: ['true'] });
    await done.exited;

    const stopping = sup.stopAll();
    await waitFor(() => obey.pids.every(dead) && dead(lingerPid), HANG_MS, 'the groups that obey SIGTERM to end');
    expect(ignore.pids.every(alive)).toBe(true); // all SIGTERMed together: these wait in their grace
    void ignore.child.stop({ graceMs: 0 });
    const results = await stopping;
    expect(results.map((r) => r.reason)).toEqual(['stopped', 'killed', 'exited']);
    expect([...obey.pids, ...ignore.pids, lingerPid].every(dead)).toBe(true);
    expect(sup.live()).toEqual([]);
    expect(sup.children().map((r) => r.state)).toEqual(['stopped', 'killed', 'exited', 'exited']);
  });
});

describe('run registry', () => {
  it('keeps records in memory when no file is given', async () => {
    const sup = supervisor();
    const c = sup.start({ argv: ['sh', '-c', 'exit 2'], name: 'two' });
    await c.exited;
    expect(sup.registryFile).toBeUndefined();
    expect(sup.children()).toEqual([expect.objectContaining({ id: 1, name: 'two', pid: c.pid, pgid: c.pid, state: 'exited', code: 2 })]);
  });

  it('writes the file on each change: start, exit, stop, spawn failure', async () => {
    const file = path.join(tmp, 'runs-a.json');
    const sup = supervisor({ registryFile: file, runId: 'run-a', graceMs: 5000 });
    expect(readRunRegistry(file)).toMatchObject({ schema: RUNS_SCHEMA, runId: 'run-a', gpucoloPid: process.pid, children: [] });

    const a = sup.start({ argv: ['sleep', '100'], name: 'sleeper', cwd: tmp });
    let doc = readRunRegistry(file);
    expect(typeof doc.gpucoloVersion).toBe('string');
    expect(Number.isNaN(Date.parse(doc.startedAt))).toBe(false);
    const rec = doc.children[0];
    expect(rec).toMatchObject({ id: 1, name: 'sleeper', pid: a.pid, pgid: a.pid, argv: ['sleep', '100'], cwd: tmp, state: 'running', code: null, signal: null, groupAlive: true });
    expect(new Date(rec.startedAt).toISOString()).toBe(rec.startedAt);
    expect(rec.startedNs).toMatch(/^\d+$/);
    expect(BigInt(rec.startedNs)).toBeLessThanOrEqual(process.hrtime.bigint());
    expect(rec.startTicks).toBe(readStat('/proc', a.pid!)!.startTicks);

    const b = sup.start({ argv: ['sh', '-c', 'exit 4'] });
    await b.exited;
    expect(readRunRegistry(file).children[1]).toMatchObject({ state: 'exited', code: 4, signal: null, groupAlive: false });

    await a.stop();
    doc = readRunRegistry(file);
    expect(doc.children[0]).toMatchObject({ state: 'stopped', signal: 'SIGTERM', groupAlive: false });
    expect(doc.children[0].durationNs).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(doc.children[0].endedAt!))).toBe(false);

    await sup.start({ argv: ['gpucolo-no-such-program'] }).exited;
    expect(readRunRegistry(file).children[2]).toMatchObject({ state: 'spawn-failed', pid: null, pgid: null, error: 'spawn gpucolo-no-such-program ENOENT' });
    expect(readRunRegistry(file).children).toEqual(sup.children());
    // no temp files left next to it
    expect(fs.readdirSync(tmp).filter((n) => n.includes('runs-a.json'))).toEqual(['runs-a.json']);
  });

  it('is replaced atomically: a concurrent reader never sees a torn or empty file', async () => {
    const file = path.join(tmp, 'runs-b.json');
    const sup = supervisor({ registryFile: file });
    // another process reads the file in a tight loop and counts what does not parse
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); let ok = 0, bad = 0;
         process.stdin.on('data', () => { console.log(JSON.stringify({ ok, bad })); process.exit(0); });
         (function loop() { for (let i = 0; i < 50; i++) { try { JSON.parse(fs.readFileSync(${JSON.stringify(file)}, 'utf8')); ok++; } catch (e) { if (e.code !== 'ENOENT') bad++; } } setImmediate(loop); })();`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout!.on('data', (d) => (out += d));
    for (let i = 0; i < 40; i++) {
      const c = sup.start({ argv: ['true'], name: `t${i}` });
      expect(() => readRunRegistry(file)).not.toThrow();
      await c.exited;
      expect(readRunRegistry(file).children).toHaveLength(i + 1);
    }
    reader.stdin!.write('x');
    await new Promise((r) => reader.once('exit', r));
    const { ok, bad } = JSON.parse(out) as { ok: number; bad: number };
    expect(bad).toBe(0);
    expect(ok).toBeGreaterThan(0);
  });

  it('reports a registry that cannot be written without failing the child', async () => {
    const errors: Error[] = [];
    const sup = supervisor({ registryFile: path.join(tmp, 'no-dir', 'runs.json'), onRegistryError: (e) => errors.push(e) });
    expect(await sup.start({ argv: ['true'] }).exited).toMatchObject({ reason: 'exited', code: 0 });
    expect(errors.length).toBeGreaterThan(0);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

// ---- gpucolo itself signaled or exiting: a node script that uses the supervisor ---------------

const SCRIPT = path.join(tmp, 'supervised.mts');
fs.writeFileSync(
  SCRIPT,
  `import { Supervisor } from ${JSON.stringify(SUPERVISOR_ENTRY)};
const [mode, registryFile, grace] = process.argv.slice(2);
const sup = new Supervisor({ graceMs: Number(grace), registryFile });
if (mode === 'handler') {
  sup.installSignalHandlers({
    onSignal: (sig, results) => {
      console.log(JSON.stringify({ sig, reasons: results.map((r) => r.reason) }));
      process.exit(42);
    },
  });
} else if (mode === 'default') {
  sup.installSignalHandlers();
}
const shells = [
  ['sh', '-c', 'sleep 100 & echo $!; sleep 100 & echo $!; wait'],
  ['sh', '-c', "trap '' TERM; sleep 100 & echo $!; wait"],
];
const pids = [];
for (const argv of shells) {
  const c = sup.start({ argv, stdout: 'pipe' });
  let buf = '';
  c.stdout.setEncoding('utf8');
  c.stdout.on('data', (d) => (buf += d));
  while (buf.split('\\n').length - 1 < argv[2].split('echo').length - 1) await new Promise((r) => setTimeout(r, 10));
  pids.push(c.pid, ...buf.trim().split('\\n').map(Number));
}
console.log(JSON.stringify({ ready: pids }));
if (mode === 'exit') process.exit(3);
if (mode === 'throw') setTimeout(() => { throw new Error('boom'); }, 10);
setInterval(() => {}, 1000);
`,
);

interface ScriptRun {
  proc: ChildProcess;
  pids: number[];
  lines: () => string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function runScript(mode: string, registryFile: string, graceMs: number): Promise<ScriptRun> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SCRIPT, mode, registryFile, String(graceMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const outLines = (): string[] => out.split('\n').filter(Boolean);
  await waitFor(() => outLines().some((l) => l.startsWith('{"ready"')) || proc.exitCode !== null, HANG_MS, `script ready (stderr: ${err})`);
  const ready = outLines().find((l) => l.startsWith('{"ready"'));
  if (!ready) throw new Error(`script failed: ${err}`);
  const pids = (JSON.parse(ready) as { ready: number[] }).ready;
  expect(pids).toHaveLength(5);
  // 'exit' and 'throw' scripts end right after printing: their groups may be gone already
  if (mode !== 'exit' && mode !== 'throw') expect(pids.every(alive)).toBe(true);
  return { proc, pids, lines: outLines, exit };
}

describe.concurrent('gpucolo signaled or exiting', () => {
  // graces of 5 s: the SIGTERM-obeying group ends within them even when the script's event loop
  // is slow to see its leader's exit on a busy host; the SIGTERM-ignoring group waits them out
  it('SIGINT: stops every group, then onSignal decides (footer, exit code)', async () => {
    const file = path.join(tmp, 'runs-sigint.json');
    const run = await runScript('handler', file, 5000);
    run.proc.kill('SIGINT');
    expect(await run.exit).toEqual({ code: 42, signal: null });
    expect(run.lines().map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual({ sig: 'SIGINT', reasons: ['stopped', 'killed'] });
    expect(run.pids.every(dead)).toBe(true);
    expect(readRunRegistry(file).children.map((c) => [c.state, c.groupAlive])).toEqual([
      ['stopped', false],
      ['killed', false],
    ]);
  });

  it('a second SIGINT while stopping SIGKILLs every group at once', async () => {
    const file = path.join(tmp, 'runs-twice.json');
    // a one-hour grace: that the script ends at all within the test timeout is the escalation
    const run = await runScript('handler', file, 3_600_000);
    run.proc.kill('SIGINT');
    // the first SIGINT was handled once the obeying group is gone; before that, a second SIGINT
    // could merge with the first one still pending (a busy host may not run the script meanwhile)
    await waitFor(() => run.pids.slice(0, 3).every(dead), HANG_MS, 'the first SIGINT to stop the obeying group');
    expect(alive(run.pids[3])).toBe(true); // the TERM-ignoring group waits out its grace...
    run.proc.kill('SIGINT'); // ...unless asked twice
    expect(await run.exit).toEqual({ code: 42, signal: null });
    expect(run.pids.every(dead)).toBe(true);
    expect(readRunRegistry(file).children[1]).toMatchObject({ state: 'killed', groupAlive: false });
  });

  it('without onSignal, gpucolo stops the groups and then dies by the signal', async () => {
    const file = path.join(tmp, 'runs-sigterm.json');
    const run = await runScript('default', file, 5000);
    run.proc.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(run.pids.every(dead)).toBe(true);
    expect(readRunRegistry(file).children.map((c) => c.state)).toEqual(['stopped', 'killed']);
  });

  it.each(['exit', 'throw'])('process %s with live groups: the exit hook SIGKILLs them synchronously', async (mode) => {
    const file = path.join(tmp, `runs-${mode}.json`);
    const run = await runScript(mode, file, 60_000);
    const { code } = await run.exit;
    expect(code).toBe(mode === 'exit' ? 3 : 1);
    await waitFor(() => run.pids.every(dead), HANG_MS, 'SIGKILLed groups to die');
    expect(readRunRegistry(file).children.map((c) => c.state)).toEqual(['killed', 'killed']);
  });
});

describe('installSignalHandlers in this process', () => {
  it('returns an unsubscribe function that removes exactly its listeners', () => {
    const sup = supervisor();
    const before = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s));
    const off = sup.installSignalHandlers({ onSignal: () => {} });
    expect(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before.map((n) => n + 1));
    off();
    expect(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before);
  });
});
