/** gpucolo study queue-usage: the same command traced N times, compared across runs. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runStudy } from '../src/trace/index.js';
import { ROOT } from './helpers/impls.js';
import { KfdTree } from './helpers/kfd-tree.js';

const trees: KfdTree[] = [];
afterEach(() => {
  while (trees.length) trees.pop()!.dispose();
});

/**
 * A stand-in for a GPU program: registers itself in the fake KFD sysfs with N queues (N from a
 * counter file, so runs can differ on purpose), lives a while, and goes away.
 */
function fakeProgram(t: KfdTree, queuesPerRun: number[]): string[] {
  const proc = path.join(t.sysfs, 'class/kfd/kfd/proc');
  const counter = path.join(t.root, 'run-counter');
  fs.writeFileSync(counter, '0');
  const script = path.join(t.root, 'prog.sh');
  const plan = queuesPerRun.join(' ');
  fs.writeFileSync(
    script,
    [
      'set -e',
      `i=$(cat ${counter}); echo $((i+1)) > ${counter}`,
      `n=$(echo ${plan} | cut -d' ' -f$((i+1)))`,
      `tmp=${proc}/.t$$; q=0`,
      'while [ $q -lt $n ]; do mkdir -p $tmp/queues/$q; printf 0 > $tmp/queues/$q/type; printf 4096 > $tmp/queues/$q/size; printf 31774 > $tmp/queues/$q/gpuid; q=$((q+1)); done',
      `mkdir -p $tmp; mv $tmp ${proc}/$$`,
      'sleep 0.3',
      `rm -rf ${proc}/$$`,
    ].join('\n'),
  );
  return ['sh', script];
}

const base = (t: KfdTree, dir: string) => ({
  intervalNs: 20e6,
  durationNs: null,
  debugfsIntervalNs: null,
  sources: ['sysfs' as const],
  sysfsRoot: t.sysfs,
  debugfsRoot: t.debugfs,
  procRoot: '/proc',
  baselineNs: 60e6,
  tailNs: 60e6,
  stopAfterNs: null,
  dir,
});

describe('study queue-usage', () => {
  it('identical runs are reported consistent', async () => {
    const t = new KfdTree();
    trees.push(t);
    const dir = path.join(t.root, 'study');
    const seen: number[] = [];
    const r = await runStudy({ ...base(t, dir), command: fakeProgram(t, [2, 2, 2]), runs: 3, onRun: (run) => seen.push(run.index) });
    expect(seen).toEqual([1, 2, 3]);
    expect(r.schema).toBe('gpucolo.queue-usage-study/1');
    expect(r.runs.map((x) => [x.endedBy, x.exitCode, x.processes.length])).toEqual([
      ['command-exit', 0, 1],
      ['command-exit', 0, 1],
      ['command-exit', 0, 1],
    ]);
    expect(r.consistency.processCount).toEqual({ values: [1, 1, 1], consistent: true });
    const p = r.consistency.processes[0];
    expect(p.steadyQueues).toEqual({ values: [2, 2, 2], consistent: true });
    expect(p.qids).toEqual({ values: ['0,1', '0,1', '0,1'], consistent: true });
    expect(p.types.consistent).toBe(true);
    expect(p.stableInEveryRun).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['run-1.jsonl', 'run-2.jsonl', 'run-3.jsonl']);
    expect(r.summary.join('\n')).toMatch(/steady queues 2 in every run/);
  });

  it('a run with a different queue count is called out', async () => {
    const t = new KfdTree();
    trees.push(t);
    const r = await runStudy({ ...base(t, path.join(t.root, 's')), command: fakeProgram(t, [1, 2]), runs: 2 });
    const p = r.consistency.processes[0];
    expect(p.steadyQueues).toEqual({ values: [1, 2], consistent: false });
    expect(r.summary.join('\n')).toMatch(/steady queues DIFFER: 1 \/ 2/);
  });

  it('CLI: --json, --md and bad --runs', () => {
    const t = new KfdTree();
    trees.push(t);
    const md = path.join(t.root, 'study.md');
    const cli = path.join(ROOT, 'dist/cli/cli.js');
    const args = ['study', 'queue-usage', '--runs', '2', '--out-dir', path.join(t.root, 'o'), '--interval', '20ms', '--baseline', '50ms', '--tail', '50ms', '--sources', 'sysfs', '--sysfs-root', t.sysfs, '--json', '--md', md, '--', ...fakeProgram(t, [1, 1])];
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.consistency.processes[0].steadyQueues).toEqual({ values: [1, 1], consistent: true });
    expect(r.stderr).toMatch(/run 2\/2 ended by command-exit \(code 0\)/);
    expect(fs.readFileSync(md, 'utf8')).toMatch(/^# Queue-usage study/);
    const bad = spawnSync(process.execPath, [cli, 'study', 'queue-usage', '--runs', '0', '--', 'true'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    // no run could start its command: a failure, with the report still written
    const none = spawnSync(process.execPath, [cli, 'study', 'queue-usage', '--runs', '2', '--out-dir', path.join(t.root, 'o2'), '--interval', '20ms', '--baseline', '20ms', '--tail', '20ms', '--sources', 'sysfs', '--sysfs-root', t.sysfs, '--md', md, '--', '/nonexistent/gpucolo-program'], { encoding: 'utf8', timeout: 60_000 });
    expect(none.status, none.stderr).toBe(1);
    expect(none.stderr.trim().split('\n').at(-1)).toMatch(/^gpucolo: every run failed \(first: .*gpucolo-program.*\)$/);
    expect(fs.readFileSync(md, 'utf8')).toMatch(/^# Queue-usage study/);
  });
});

