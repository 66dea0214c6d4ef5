/**
 * `gpucolo cleanup --registry FILE` (issue 17, item 13): a registry with nothing left running is
 * removed, like those of the default directory; a file that is not a usable registry is one line
 * on stderr, exit 2, and nothing else. Only pids that cannot exist (beyond pid_max) are recorded:
 * nothing here can signal a real process.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNS_SCHEMA, readStat, writeRegistryFile } from '../src/supervisor/index.js';
import { ROOT } from './helpers/impls.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-cleanup-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const NO_PID = 0x7ffffff0; // beyond any pid_max: never alive
const child = (over: Record<string, unknown> = {}) => ({ id: 1, name: 'job', pid: NO_PID + 1, pgid: NO_PID + 1, argv: ['x'], cwd: '/', startedAt: '', startedNs: '0', startTicks: 1, state: 'running', code: null, signal: null, groupAlive: true, otherGroups: [], ...over });

let seq = 0;
function registry(doc: Record<string, unknown> = {}, children: unknown[] = [child()]): string {
  const f = path.join(tmp, `reg-${++seq}.json`);
  writeRegistryFile(f, { schema: RUNS_SCHEMA, gpucoloVersion: '0', runId: `r${seq}`, gpucoloPid: NO_PID, gpucoloStartTicks: 1, startedAt: '', updatedAt: '', children, ...doc });
  return f;
}

const cli = (args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath, [CLI, 'cleanup', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_RUNTIME_DIR: tmp } });

describe('cleanup --registry FILE', () => {
  it('a finished registry (its gpucolo and every child gone) is removed', () => {
    const f = registry();
    const r = cli(['--registry', f]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^nothing to clean up \(1 registry file\(s\) in .*\)$/m);
    expect(r.stdout).toMatch(/^removed 1 finished registry file\(s\)$/m);
    expect(fs.existsSync(f)).toBe(false);
    // a registry whose children never ran is finished too
    const never = registry({}, [child({ pid: null, pgid: null, startTicks: null, state: 'pending', groupAlive: false })]);
    expect(cli(['--registry', never]).status).toBe(0);
    expect(fs.existsSync(never)).toBe(false);
  });

  it('--dry-run removes nothing; a registry whose gpucolo still runs is kept', () => {
    const f = registry();
    const dry = cli(['--registry', f, '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(fs.existsSync(f)).toBe(true);
    // the test runner plays the gpucolo that still runs (same pid and start time)
    const me = readStat('/proc', process.pid);
    if (!me) return;
    const alive = registry({ gpucoloPid: process.pid, gpucoloStartTicks: me.startTicks });
    const r = cli(['--registry', alive]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(alive)).toBe(true);
    expect(r.stdout).not.toMatch(/removed/);
  });

  it('a bad registry file: one line on stderr, exit 2, nothing on stdout, the file untouched', () => {
    const notJson = path.join(tmp, 'not-json.json');
    fs.writeFileSync(notJson, 'hello\n');
    const foreign = path.join(tmp, 'foreign.json');
    fs.writeFileSync(foreign, '{"schema":"something/1","children":[]}\n');
    const unsafe = registry({}, [child({ pid: 1, pgid: 1 })]);
    const dir = fs.mkdtempSync(path.join(tmp, 'dir-'));
    const cases: [string, RegExp][] = [
      [notJson, /not-json\.json: not JSON/],
      [foreign, /foreign\.json: not a gpucolo\.runs\/1 run registry/],
      [unsafe, /children\[0\]\.pid is 1 .*refusing to signal anything from it/],
      [dir, /dir-[^:]*: /],
      [path.join(tmp, 'missing.json'), /registry file not found: .*missing\.json/],
    ];
    for (const [file, msg] of cases) {
      const before = fs.existsSync(file) && fs.statSync(file).isFile() ? fs.readFileSync(file, 'utf8') : null;
      for (const args of [['--registry', file], ['--registry', file, '--json'], ['--registry', file, '--dry-run']]) {
        const r = cli(args);
        expect([file, args.join(" "), r.status, r.stderr]).toEqual([file, args.join(" "), 2, expect.any(String)]);
        expect(r.stdout, file).toBe('');
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines, file).toHaveLength(1);
        expect(lines[0], file).toMatch(/^gpucolo: /);
        expect(lines[0], file).toMatch(msg);
      }
      if (before !== null) expect(fs.readFileSync(file, 'utf8')).toBe(before);
    }
  });
});
