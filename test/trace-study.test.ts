/** gpucolo study queue-usage: the same command traced N times, compared across runs. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareRuns, runStudy, studyCriteria, studyProcesses, type StudyProcess, type StudyRun } from '../src/trace/index.js';
import { analyzeTrace } from '../src/trace/analyze/index.js';
import { readDumpDir } from '../src/trace/dumps.js';
import { markdown } from '../src/cli/study.js';
import { DEBUGFS, ROOT } from './helpers/impls.js';
import { makeTree } from './helpers/tree.js';
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
    const args = ['study', 'queue-usage', '--runs', '2', '--out-dir', path.join(t.root, 'o'), '--interval', '20ms', '--baseline', '50ms', '--tail', '50ms', '--sources', 'sysfs', '--sysfs-root', t.sysfs, '--tolerance', '1', '--identify-within', '5s', '--json', '--md', md, '--', ...fakeProgram(t, [1, 1])];
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.consistency.processes[0].steadyQueues).toEqual({ values: [1, 1], consistent: true });
    expect(r.stderr).toMatch(/run 2\/2 ended by command-exit \(code 0\)/);
    expect(j.criteria).toMatchObject({ tolerance: 1, identifyWithinNs: 5e9 });
    expect(j.verdicts.overall).toBe('pass');
    const mdText = fs.readFileSync(md, 'utf8');
    expect(mdText).toMatch(/^# Queue-usage study/);
    expect(mdText).toMatch(/\| queue count consistent \(\+-1\) \| process #1 \| PASS \|/);
    expect(mdText).toMatch(/\| queues identified within 5s of start \| run 2 \| PASS \|/);
    expect(mdText).toMatch(/## Conclusions/);
    for (const badArgs of [['--tolerance', '-1'], ['--tolerance', 'x'], ['--identify-within', 'soon'], ['--interval', '61s']]) {
      const b = spawnSync(process.execPath, [cli, 'study', 'queue-usage', '--sources', 'sysfs', '--sysfs-root', t.sysfs, '--out-dir', path.join(t.root, 'o3'), ...badArgs, '--', 'true'], { encoding: 'utf8', timeout: 60_000 });
      expect(b.status, `${badArgs.join(' ')}: ${b.stderr}`).toBe(2);
    }
    const bad = spawnSync(process.execPath, [cli, 'study', 'queue-usage', '--runs', '0', '--', 'true'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    // no run could start its command: a failure, with the report still written
    const none = spawnSync(process.execPath, [cli, 'study', 'queue-usage', '--runs', '2', '--out-dir', path.join(t.root, 'o2'), '--interval', '20ms', '--baseline', '20ms', '--tail', '20ms', '--sources', 'sysfs', '--sysfs-root', t.sysfs, '--md', md, '--', '/nonexistent/gpucolo-program'], { encoding: 'utf8', timeout: 60_000 });
    expect(none.status, none.stderr).toBe(1);
    expect(none.stderr.trim().split('\n').at(-1)).toMatch(/^gpucolo: every run failed \(first: .*gpucolo-program.*\)$/);
    expect(fs.readFileSync(md, 'utf8')).toMatch(/^# Queue-usage study/);
  });
});


describe('study queue-usage: the design notes verdicts and conclusions', () => {
  it('--tolerance: counts 1 and 2 pass with +-1 (the notes), fail with 0; 1 and 3 fail with +-1', async () => {
    const t = new KfdTree();
    trees.push(t);
    const r0 = await runStudy({ ...base(t, path.join(t.root, 's0')), command: fakeProgram(t, [1, 2]), runs: 2 });
    expect(r0.criteria?.tolerance).toBe(0);
    expect(r0.verdicts?.queueCount[0]).toMatchObject({ values: [1, 2], min: 1, max: 2, verdict: 'fail' });
    const r1 = await runStudy({ ...base(t, path.join(t.root, 's1')), command: fakeProgram(t, [1, 2]), runs: 2, tolerance: 1 });
    expect(r1.verdicts?.queueCount[0]).toMatchObject({ values: [1, 2], verdict: 'pass' });
    expect(r1.summary.join('\n')).toMatch(/process #1 queue count within \+-1: PASS/);
    const r2 = await runStudy({ ...base(t, path.join(t.root, 's2')), command: fakeProgram(t, [1, 3]), runs: 2, tolerance: 1 });
    expect(r2.verdicts?.queueCount[0]).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/differ by 2 > tolerance 1/) });
    expect(r2.verdicts?.overall).toBe('fail');
  });

  it('queues identified within 5 s of start: pass per run; a tighter limit fails; conclusions name count, stability, lifecycle', async () => {
    const t = new KfdTree();
    trees.push(t);
    const r = await runStudy({ ...base(t, path.join(t.root, 's')), command: fakeProgram(t, [2, 2]), runs: 2, tolerance: 1 });
    expect(r.criteria?.identifyWithinNs).toBe(5e9);
    expect(r.verdicts?.identification.map((v) => v.verdict)).toEqual(['pass', 'pass']);
    for (const v of r.verdicts!.identification) expect(v.identifiedAfterStartNs).toBeGreaterThan(0);
    expect(r.verdicts?.overall).toBe('pass');
    const c = r.conclusions!.processes[0];
    expect(c.queueCount).toEqual({ typical: 2, min: 2, max: 2 });
    expect(c.stability).toEqual({ withinRuns: true, acrossRuns: 'pass' });
    expect(c.mapping).toBeNull(); // sysfs only: no HQD data
    expect(c.lifecycle.firstQueueAfterStartNs.min).not.toBeNull();
    expect(c.lifecycle.allDestroyedAfterExitNs.max).not.toBeNull();
    expect(c.lifecycle.resolutionNs).toBe(20e6);
    const lines = r.conclusions!.lines.join('\n');
    expect(lines).toMatch(/process #1: uses 2 queue\(s\)/);
    expect(lines).toMatch(/queue count consistent across runs; queue set stable within every run/);
    expect(lines).toMatch(/MQD -> HQD: unknown \(no HQD data/);
    expect(lines).toMatch(/queues identified within the limit: 2\/2 run\(s\)/);
    // 1 ns: no queue can be seen that early
    const tight = await runStudy({ ...base(t, path.join(t.root, 't')), command: fakeProgram(t, [2]), runs: 1, identifyWithinNs: 1 });
    expect(tight.verdicts?.identification[0]).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/> 0.00 s/) });
    // one run: nothing to compare
    expect(tight.verdicts?.queueCount[0].verdict).toBe('unknown');
  });

  it('bad criteria are refused before anything runs', async () => {
    const t = new KfdTree();
    trees.push(t);
    const dir = path.join(t.root, 'never');
    await expect(runStudy({ ...base(t, dir), command: ['true'], runs: 1, tolerance: -1 })).rejects.toThrow(/--tolerance/);
    await expect(runStudy({ ...base(t, dir), command: ['true'], runs: 1, tolerance: 1.5 })).rejects.toThrow(RangeError);
    await expect(runStudy({ ...base(t, dir), command: ['true'], runs: 1, identifyWithinNs: 0 })).rejects.toThrow(/--identify-within/);
    expect(fs.existsSync(dir)).toBe(false);
    expect(() => studyCriteria(Number.NaN)).toThrow(RangeError);
  });

  it("the notes' own dumps (exp01_results: 10 s snapshots, 4 XCCs): MQD -> HQD is 1 -> 4; identified from the first appearance", () => {
    const MQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'utf8');
    const HQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'utf8');
    const files: Record<string, string> = { 'baseline_mqd.txt': '', 'snapshot_ps_1.txt': 'python3' };
    for (let i = 1; i <= 3; i++) {
      files[`snapshot_mqd_${i}_${1738650000 + i * 10}.txt`] = MQDS;
      files[`snapshot_hqd_${i}_${1738650000 + i * 10}.txt`] = HQDS;
    }
    const run = (index: number): StudyRun => ({
      index,
      trace: 'exp01_results',
      intervalNs: 10e9,
      endedBy: 'command-exit',
      exitCode: 0,
      exitSignal: null,
      processes: studyProcesses(analyzeTrace(readDumpDir(makeTree(files, 'gpucolo-study-dumps-')))),
    });
    const runs = [run(1), run(2)];
    const p = runs[0].processes.find((x) => x.pid === 41872)!;
    expect(p.mapping).toMatchObject({ numXcc: 4, computeQueues: 2, hqdsPerMqd: [4, 4], sameSlotOnAllXccs: true });
    const r = compareRuns(['python3', 'test_model.py'], runs, studyCriteria(1));
    const c = r.conclusions!.processes.find((x) => x.ordinal === p.ordinal)!;
    expect(c.mapping).toBe('1 MQD -> 4 HQD (one per XCC of 4), same pipe/queue on every XCC');
    expect(c.queueCount.typical).toBe(3);
    // no command start in dumps: the reference is the process's first appearance (said so)
    expect(r.verdicts?.identification.map((v) => v.verdict)).toEqual(['pass', 'pass']);
    expect(r.verdicts?.identification[0].reason).toMatch(/after its first appearance in KFD/);
    expect(c.lifecycle.resolutionNs).toBe(10e9);
    const md = markdown(r);
    expect(md).toMatch(/## Verdicts: PASS/);
    expect(md).toMatch(/## Conclusions/);
    expect(md).toMatch(/\| #\d \| 3 \| compute, compute, sdma.* \| yes \| pass \| 1 MQD -> 4 HQD/);
  });

  it('a failed run: identification unknown, and a process missing in a completed run fails the count', () => {
    const proc = (steady: number): StudyProcess => ({ ordinal: 1, pid: 1, verdict: 'stable', steadyQueues: steady, types: [], qids: [], placements: [], queuesSeen: steady, identifiedAfterStartNs: 1e9 });
    const runs: StudyRun[] = [
      { index: 1, trace: 'a', endedBy: 'command-exit', exitCode: 0, exitSignal: null, processes: [proc(2)] },
      { index: 2, trace: 'b', endedBy: 'command-exit', exitCode: 0, exitSignal: null, processes: [] },
      { index: 3, trace: 'c', endedBy: 'error', exitCode: null, exitSignal: null, processes: [], error: 'boom' },
    ];
    const r = compareRuns(['x'], runs, studyCriteria(1));
    expect(r.verdicts?.queueCount[0]).toMatchObject({ values: [2, null], verdict: 'fail' });
    expect(r.verdicts?.identification.map((v) => v.verdict)).toEqual(['pass', 'fail', 'unknown']);
    expect(r.verdicts?.identification[1].reason).toBe('no queue was seen');
  });
});
