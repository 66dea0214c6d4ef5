/** The command line as a user runs it: built dist/cli/cli.js in a child process. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEBUGFS, ROOT, SYSFS } from './helpers/impls.js';
import { crlf, cutBeforeLine, cutMqdAtDword } from './helpers/kfd-synth.js';
import { copyTree, isRoot } from './helpers/tree.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('gpucolo CLI', () => {
  it('is built (npm test builds it first)', () => {
    expect(fs.existsSync(CLI)).toBe(true);
  });

  it('runs as the file itself, as `npx gpucolo` in a checkout does: the build marks it executable', () => {
    expect(fs.statSync(CLI).mode & 0o111).not.toBe(0);
    const r = spawnSync(CLI, ['--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
  });

  it('queues --root on the bundled example prints one table per process and the node summary', () => {
    const r = run(['queues', '--root', EXAMPLE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^KFD queues: 2 process\(es\), 4 queue\(s\)/);
    expect(r.stdout).toContain('Process 41872 (python3, pid 27 in its namespace)');
    expect(r.stdout).toMatch(/\n {2}0 +compute +7c1e +2 +normal 1\/7 +0\/0\/2 1\/0\/2 2\/0\/2 3\/0\/2 +4\/4 +yes\n/);
    expect(r.stdout).toMatch(/\n {2}1 +compute +7c1e +2 +high 2\/11 +0\/1\/2 1\/1\/2 2\/1\/2 3\/1\/2 +4\/4 +yes\n/);
    expect(r.stdout).toMatch(/\n {2}2 +sdma-xgmi +7c1e +2 +- +sdma 2\/0 +yes +yes\n/);
    expect(r.stdout).toContain('Process 42117 (pt_main_thread)');
    expect(r.stdout).toContain('Unmatched HQDs: none');
    expect(r.stdout).toMatch(/2 +7c1e +ip discovery +gfx942 +4 +4 +8\/96 +2\+2\+2\+2 +1 +2 proc, 3 queues/);
  });

  it('queues --json prints the documented object, same for both parser paths', () => {
    const a = JSON.parse(run(['queues', '--root', EXAMPLE, '--json']).stdout);
    const b = JSON.parse(run(['queues', '--root', EXAMPLE, '--json'], { GPUCOLO_NATIVE: '0' }).stdout);
    expect(a.schema).toBe('gpucolo.queues/1');
    expect(b.path).toBe('ts');
    expect(a.processes[0]).toMatchObject({
      pid: 41872,
      nsPid: 27,
      queues: [
        { qid: 0, type: 'compute', gpuId: '7c1e', node: 2, priority: { pipe: 1, queue: 7, level: 'normal' }, hqds: [{ inst: 0, pipe: 0, queue: 2, active: true }, {}, {}, {}] },
        { qid: 1, priority: { level: 'high' } },
        { qid: 2, type: 'sdma-xgmi' },
      ],
    });
    expect(a.nodes[0]).toMatchObject({ node: 2, gpuId: '7c1e', activeHqds: 8 });
    expect(a.unmatchedHqds).toEqual([]);
    const strip = (x: Record<string, unknown>) => ({ ...x, path: undefined, takenAt: undefined });
    expect(strip(a)).toEqual(strip(b));
  });

  it('--sysfs-root/--debugfs-root/--proc-root and --pid', () => {
    const r = run(['queues', '--sysfs-root', SYSFS, '--debugfs-root', DEBUGFS, '--proc-root', path.join(EXAMPLE, 'proc'), '--pid', '42117', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.processes.map((p: { pid: number }) => p.pid)).toEqual([42117]);
    expect(j.roots).toEqual({ sysfs: SYSFS, debugfs: DEBUGFS, proc: path.join(EXAMPLE, 'proc') });
  });

  // an existing directory without KFD files: a root given on the command line that does not
  // exist at all is a usage error (below)
  const EMPTY = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'gpucolo-empty-'));
  afterAll(() => fs.rmSync(EMPTY, { recursive: true, force: true }));

  it('sysfs only: works, says which fields are missing and why', () => {
    const r = run(['queues', '--sysfs-root', SYSFS, '--debugfs-root', EMPTY, '--proc-root', EMPTY]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`mqds: cannot read ${EMPTY}/kfd/mqds (ENOENT)`);
    expect(r.stdout).toMatch(/missing fields: .*queues\[\]\.priority/);
    expect(r.stdout).toMatch(/\n {2}0 +compute +7c1e +2 +- +\? +\? +\?\n/);
  });

  it('a host without KFD: exit 1 and one line that says why', () => {
    const r = run(['queues', '--root', EMPTY]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.startsWith(`gpucolo: no KFD data readable: cannot read ${EMPTY}/sys/class/kfd/kfd/topology/nodes (ENOENT)`)).toBe(true);
  });

  it('a root that does not exist is a usage error naming it, not a missing driver', () => {
    const r = run(['queues', '--root', '/nonexistent-root']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('gpucolo: --root /nonexistent-root: no such directory\n');
  });

  it('malformed debugfs input: a partial result with file:line issues, not a crash', () => {
    const tmp = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'gpucolo-cli-'));
    fs.mkdirSync(path.join(tmp, 'kfd'));
    fs.writeFileSync(path.join(tmp, 'kfd/mqds'), 'Process 5 PASID 5:\n  Compute queue on device 7c1e\n    00000000: zzzz\n');
    fs.writeFileSync(path.join(tmp, 'kfd/hqds'), '\x00\x01binary');
    fs.writeFileSync(path.join(tmp, 'kfd/rls'), '');
    const r = run(['queues', '--sysfs-root', SYSFS, '--debugfs-root', tmp, '--proc-root', EMPTY]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`error: ${tmp}/kfd/mqds:3: malformed MQD dump line: "    00000000: zzzz"`);
    expect(r.stdout).toContain(`error: ${tmp}/kfd/hqds:1: unrecognised line: "??binary"`);
    expect(r.stdout).toContain('result is PARTIAL');
    fs.rmSync(tmp, { recursive: true });
  });

  it('queues on a recorded tree with damaged dumps: ? for what was not read, the cut named, PARTIAL', () => {
    const tree = copyTree(EXAMPLE, 'gpucolo-cli-cut-');
    const dbg = path.join(tree, 'sys/kernel/debug/kfd');
    // hqds cut after Inst 1 and appended to a whole one; mqds with CR LF; rls gone from the recording
    const hqds = fs.readFileSync(path.join(dbg, 'hqds'), 'latin1');
    fs.writeFileSync(path.join(dbg, 'hqds'), cutBeforeLine(hqds, '   Inst 2, HIQ'), 'latin1');
    fs.writeFileSync(path.join(dbg, 'mqds'), crlf(fs.readFileSync(path.join(dbg, 'mqds'), 'latin1')), 'latin1');
    fs.rmSync(path.join(dbg, 'rls'));
    const r = run(['queues', '--root', tree]);
    expect(r.code).toBe(0);
    // qid 0 is seen on Inst 0 and 1 only; Insts 2 and 3 are unknown, not idle
    expect(r.stdout).toMatch(/\n {2}0 +compute +7c1e +2 +normal 1\/7 +0\/0\/2 1\/0\/2 +2\/2, 2 XCC \? +\?\n/);
    // the SDMA RLCs were cut off too: the SDMA queue's slot is unknown, not "no"
    expect(r.stdout).toMatch(/\n {2}2 +sdma-xgmi +7c1e +2 +- +\? +\? +\?\n/);
    expect(r.stdout).toMatch(/2 +7c1e +ip discovery +gfx942 +4 +4 +\?\/\? +2\+2\+\?\+\? +\? +\?/);
    expect(r.stdout).toContain('warning: node 2 (gpu 7c1e): hqds shows Inst 0,1 of 4 XCC(s) (topology num_xcc): Inst 2,3 unknown');
    expect(r.stdout).toContain(`error: ${dbg}/hqds:1: node 2 ends without its SDMA RLC dumps (dump cut?)`);
    expect(r.stdout).toContain(`rls: cannot read ${dbg}/rls (ENOENT) — not in the recorded tree`);
    expect(r.stdout).toContain('result is PARTIAL');
    const j = JSON.parse(run(['queues', '--root', tree, '--json']).stdout);
    expect(j.nodes[0]).toMatchObject({ node: 2, activeHqds: null, cpSlots: null, activeSdma: null });
    expect(j.nodes[0].perXcc[3]).toEqual({ inst: 3, cpSlots: null, activeCp: null, hiqActive: null });
    expect(j.processes[0].queues[0]).toMatchObject({ qid: 0, inRunlist: null, mqdAddresses: ['0x712000', '0x715000', '0x718000', '0x71b000'] });
    fs.rmSync(tree, { recursive: true });
  });

  it('queues: an MQD cut at dword 40 prints ? for its priority, and an idle GPU\'s enabled SDMA RLC is likely stale', () => {
    const tree = copyTree(EXAMPLE, 'gpucolo-cli-cut-');
    const dbg = path.join(tree, 'sys/kernel/debug/kfd');
    const mqds = fs.readFileSync(path.join(dbg, 'mqds'), 'latin1');
    fs.writeFileSync(path.join(dbg, 'mqds'), cutMqdAtDword(mqds, 2, 0, 40), 'latin1');
    const r = run(['queues', '--root', tree, '--pid', '41872', '--json']);
    const q0 = JSON.parse(r.stdout).processes[0].queues[0];
    expect(q0).toMatchObject({ qid: 0, mqdAddresses: [null], priority: null, doorbell: null, ringBase: null, aql: null, inRunlist: null, sizeBytes: 1048576 });
    expect(run(['queues', '--root', tree, '--pid', '41872']).stdout).toMatch(/\n {2}0 +compute +7c1e +2 +\? +- +0 +\?\n/);
    // no process has a queue any more, the SDMA RLC still has RB_ENABLE set
    fs.writeFileSync(path.join(dbg, 'mqds'), '');
    fs.rmSync(path.join(tree, 'sys/class/kfd/kfd/proc'), { recursive: true });
    const hqds = fs.readFileSync(path.join(dbg, 'hqds'), 'latin1').replace(/^( {4}[0-9a-f]{8}: [0-9a-f]{8} [0-9a-f]{8}) 00000001/gm, '$1 00000000');
    fs.writeFileSync(path.join(dbg, 'hqds'), hqds, 'latin1');
    const idle = run(['queues', '--root', tree]);
    expect(idle.stdout).toMatch(/\n {2}2 +7c1e +sdma \(likely stale registers: no queue on this GPU\) +0\/2\/0 /);
    fs.rmSync(tree, { recursive: true });
  });

  it('bad usage exits 2', () => {
    expect(run(['queues', '--pid', 'abc']).code).toBe(2);
    expect(run(['queues', '--impl', 'fortran']).code).toBe(2);
    expect(run(['no-such-command']).code).toBe(2);
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("commander's own usage errors: one line with the gpucolo: prefix, exit 2, on subcommands too", () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /^gpucolo: unknown option '--bogus' \(run gpucolo --help for usage\)$/],
      [['no-such-command'], /^gpucolo: unknown command 'no-such-command' \(run gpucolo --help for usage\)$/],
      [['queues', '--bogus'], /^gpucolo: unknown option '--bogus' \(run gpucolo queues --help for usage\)$/],
      [['queues', '--jsn'], /^gpucolo: unknown option '--jsn' \(Did you mean --json\?\) \(run gpucolo queues --help for usage\)$/],
      [['queues', '--pid', 'abc'], /^gpucolo: option '--pid <pid>' argument 'abc' is invalid\. .* \(run gpucolo queues --help for usage\)$/],
      [['distributed', 'run', '--method', 'ddp', '--out', '/nonexistent/x', '--bogus'], /^gpucolo: unknown option '--bogus' \(run gpucolo distributed run --help for usage\)$/],
      [['cleanup', '--grace'], /^gpucolo: option '--grace <s>' argument missing/],
      [['run', '--duration', '-1s', 'x'], /^gpucolo: option '--duration <duration>' argument '-1s' is invalid\. .*\(run gpucolo run --help for usage\)$/],
    ];
    for (const [args, msg] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr.split('\n'), args.join(' ')).toEqual([expect.stringMatching(msg), '']);
    }
  });

  it('doctor explains this host and exits 0 with or without a GPU', () => {
    const r = run(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gpucolo \S+ on /);
    expect(r.stdout).toMatch(/native core (loaded|NOT loaded)/);
    expect(r.stdout).toMatch(/\/dev\/kfd: /);
    expect(r.stdout).toMatch(/sysfs KFD topology: /);
    expect(r.stdout).toMatch(/debugfs/);
    expect(r.stdout).toMatch(/GPU dispatch plugins: /);
    const j = JSON.parse(run(['doctor', '--json']).stdout);
    expect(j.schema).toBe('gpucolo.doctor/1');
    expect(Object.keys(j.kfd)).toEqual(['device', 'sysfs', 'debugfs']);
  });

  it('doctor against the example tree lists its GPU with gfx target and XCC count', () => {
    const j = JSON.parse(run(['doctor', '--json', '--sysfs-root', path.join(EXAMPLE, 'sys'), '--debugfs-root', path.join(EXAMPLE, 'sys/kernel/debug'), '--kfd-device', '/nonexistent/kfd']).stdout);
    expect(j.kfd.sysfs.gpus).toEqual([{ node: 2, gpuId: 31774, gpuIdHex: '7c1e', name: 'ip discovery', gfxTarget: 'gfx942', numXcc: 4, computeUnits: 80 }]);
    expect(j.kfd.sysfs.kfdProcesses).toBe(2);
    expect(j.kfd.debugfs.ok).toBe(true);
    expect(j.kfd.device).toMatchObject({ present: false, code: 'ENOENT' });
    expect(j.kfd.device.hint).toMatch(/amdgpu/);
  });

  // debugfs is mode 0700 root: as a normal user every read is EACCES. Run as `nobody` when the
  // suite runs as root (CI), as ourselves otherwise.
  const canDrop = !isRoot || spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, '--version']).status === 0;
  it.runIf(canDrop)('permission denied on debugfs: sysfs still read, each debugfs file says to use root', () => {
    const dbg = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'gpucolo-dbg-'));
    fs.mkdirSync(path.join(dbg, 'kfd'));
    fs.copyFileSync(path.join(DEBUGFS, 'kfd/mqds'), path.join(dbg, 'kfd/mqds'));
    fs.chmodSync(dbg, 0o700);
    const args = [CLI, 'queues', '--json', '--sysfs-root', SYSFS, '--debugfs-root', dbg, '--proc-root', EMPTY];
    const r = isRoot
      ? spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, ...args], { encoding: 'utf8' })
      : spawnSync(process.execPath, args, { encoding: 'utf8' });
    fs.rmSync(dbg, { recursive: true });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const f of ['mqds', 'hqds', 'rls']) {
      expect(j.sources[f]).toMatchObject({ ok: false, code: 'EACCES', hint: expect.stringMatching(/root/) });
    }
    expect(j.sources.procs.ok).toBe(true);
    expect(j.processes.map((p: { queues: unknown[] }) => p.queues.length)).toEqual([3, 1]);
    expect(j.missing).toContain('queues[].priority');
  });
});
