/**
 * A root directory given on the command line that does not exist is a typo: one usage line
 * naming it (exit 2), not "the amdgpu driver is not loaded". Default roots keep the driver
 * message.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-roots-'));
const MISSING = path.join(tmp, 'typo');
const FILE = path.join(tmp, 'a-file');
fs.writeFileSync(FILE, '');

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], cwd = ROOT) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('roots given on the command line', () => {
  it.each(['--root', '--sysfs-root', '--debugfs-root', '--proc-root'])('queues %s MISSING: one line naming it, exit 2', (flag) => {
    const r = run(['queues', flag, MISSING]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`gpucolo: ${flag} ${MISSING}: no such directory\n`);
  });

  it('a root that is a file: not a directory', () => {
    const r = run(['queues', '--sysfs-root', FILE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`gpucolo: --sysfs-root ${FILE}: not a directory\n`);
  });

  it('the first bad root is named even beside good ones', () => {
    const r = run(['queues', '--sysfs-root', path.join(EXAMPLE, 'sys'), '--proc-root', MISSING]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`gpucolo: --proc-root ${MISSING}: no such directory\n`);
  });

  it('trace --root MISSING: exit 2 before any file is written', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'trace-'));
    const r = run(['trace', '--root', MISSING, '--duration', '100ms'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`gpucolo: --root ${MISSING}: no such directory\n`);
    expect(fs.readdirSync(dir)).toEqual([]);
    const d = run(['trace', '--debugfs-root', MISSING, '--out', path.join(dir, 't.jsonl'), '--duration', '100ms']);
    expect(d.code).toBe(2);
    expect(d.stderr).toBe(`gpucolo: --debugfs-root ${MISSING}: no such directory\n`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('study queue-usage --sysfs-root MISSING: exit 2, nothing run or written', () => {
    const out = path.join(tmp, 'study-out');
    const r = run(['study', 'queue-usage', '--runs', '1', '--out-dir', out, '--sysfs-root', MISSING, '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`gpucolo: --sysfs-root ${MISSING}: no such directory\n`);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('doctor --debugfs-root MISSING: exit 2 naming it; doctor with its defaults still exits 0', () => {
    const r = run(['doctor', '--debugfs-root', MISSING]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`gpucolo: --debugfs-root ${MISSING}: no such directory\n`);
    expect(run(['doctor', '--json']).code).toBe(0);
  });

  it('an existing root works as before (the bundled host tree)', () => {
    const r = run(['queues', '--root', EXAMPLE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^KFD queues: 2 process\(es\), 4 queue\(s\)/);
  });

  it('an existing root without KFD: exit 1, and the hint speaks of the recorded tree, not the driver', () => {
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const r = run(['queues', '--root', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gpucolo: no KFD data readable: cannot read .*\/sys\/class\/kfd\/kfd\/topology\/nodes \(ENOENT\) \(not in the recorded tree\)\n$/);
  });

  it.runIf(!fs.existsSync('/sys/class/kfd/kfd/topology/nodes'))('default roots on a host without KFD: the driver message, exit 1', () => {
    const r = run(['queues']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gpucolo: no KFD data readable: .*amdgpu driver/);
  });
});
