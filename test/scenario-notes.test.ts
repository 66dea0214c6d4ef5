/**
 * The design notes' priority scenarios (Phase 4): "no dropped frame" and "finishes within 3 s" as
 * verdicts of their own (metric `missed`), the reference columns (standalone baseline, native =
 * corun:none) beside each mechanism, and the preemption-latency row.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario/load.js';
import { preemptionLatency, successVerdicts, taskResult } from '../src/scenario/summarize.js';
import type { Task } from '../src/scenario/schema.js';
import type { PhaseResult, Results, TaskSamples } from '../src/scenario/types.js';
import type { Quality } from '../src/stats/index.js';
import { renderMarkdown } from '../src/report/index.js';
import { ROOT } from './helpers/impls.js';

const FIXTURE = path.join(ROOT, 'test/fixtures/notes/phase4-realtime-batch.yaml');
const notes = () => ({ scenario: parseScenario(fs.readFileSync(FIXTURE, 'utf8'), FIXTURE) });

/** n requests of `ms` each, the last `late` of them `lateMs`; `unfinished` more issued that never completed. */
function samples(task: string, n: number, ms: number, o: { late?: number; lateMs?: number; unfinished?: number } = {}): TaskSamples {
  const lat = Float64Array.from({ length: n }, (_, i) => (i >= n - (o.late ?? 0) ? (o.lateMs ?? ms) : ms) * 1e6);
  return { task, issued: n + (o.unfinished ?? 0), latencyNs: lat, startDelayNs: new Float64Array(n), serviceNs: lat, errors: 0, measuredNs: 9e9 };
}

function phase(name: string, kind: PhaseResult['kind'], tasks: PhaseResult['tasks']): PhaseResult {
  return { name, kind, mechanism: kind === 'standalone' ? 'none' : name.slice('corun:'.length), status: 'ok', measuredS: 9, tasks, utilisation: { value: null, source: 'unavailable' }, fairness: null, notes: [] };
}

/** standalone: frames 20 ms, batch 400 ms (40 kernels of 10 ms); none: 30 frames late and a batch past 3 s; throttle: none late. */
function phases(tasks: Task[]): PhaseResult[] {
  const [rt, b] = tasks;
  const saRt = taskResult(samples('realtime', 500, 20), rt, { workload: 'probe' });
  const saB = taskResult(samples('batch', 3, 400), b, { workload: 'probe' });
  const co = (name: string, rtS: TaskSamples, bS: TaskSamples) =>
    phase(name, 'corun', [taskResult(rtS, rt, { workload: 'probe', standalone: saRt }), taskResult(bS, b, { workload: 'probe', standalone: saB })]);
  return [
    phase('standalone:realtime', 'standalone', [saRt]),
    phase('standalone:batch', 'standalone', [saB]),
    co('corun:none', samples('realtime', 500, 25, { late: 30, lateMs: 60 }), samples('batch', 2, 900, { late: 1, lateMs: 3500 })),
    co('corun:throttle', samples('realtime', 500, 22, { late: 10, lateMs: 38 }), samples('batch', 3, 1200)),
  ];
}

describe('the notes\' realtime + batch scenario (Test 4.3)', () => {
  it('parses as written: priorities 3 and 1, missed rows with a count bound', () => {
    const s = notes().scenario;
    expect(s.tasks.map((t) => t.priority)).toEqual([3, 1]);
    expect(s.success[1]).toMatchObject({ metric: 'missed', below: 0, label: '不掉帧 (no dropped frame)' });
    expect(s.success[2]).toMatchObject({ task: 'batch', metric: 'missed', below: 0 });
  });

  it('bad missed rows are refused with a path', () => {
    const text = fs.readFileSync(FIXTURE, 'utf8');
    const bad = (t: string): string => {
      try {
        parseScenario(t, 'bad.yaml');
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(text.replace('{ task: batch, metric: missed, below: 0', '{ task: batch, metric: missed, below: 0.5'))).toMatch(/success\.2\.below: 0\.5 is not a whole number of requests/);
    expect(bad(text.replace('{ task: batch, metric: missed, below: 0', '{ task: batch, metric: missed, below: "3ms"'))).toMatch(/success\.2\.below: .*not a whole number/);
    expect(bad(text.replace('{ task: batch, metric: missed, below: 0', '{ task: batch, metric: missed, below: -1'))).toMatch(/success\.2\.below/);
    // a task without a deadline cannot miss one
    const closed = text.replace('arrival: { kind: batch, period: 3s, deadline: 3s }', 'arrival: { kind: closed-loop }');
    expect(bad(closed)).toMatch(/success\.2\.metric: missed needs a deadline: task "batch" has closed-loop arrivals/);
  });

  it('"no dropped frame" and "finishes within 3 s" are verdicts of their own, counting frames past the deadline', () => {
    const s = notes().scenario;
    const v = successVerdicts(s.success, phases(s.tasks));
    const [p99, dropped, batch] = v;
    expect(p99.pass).toBe(true);
    expect(dropped.row).toBe('不掉帧 (no dropped frame)');
    const none = dropped.phases.find((p) => p.phase === 'corun:none')!;
    expect(none).toMatchObject({ value: 30, pass: false });
    expect(none.detail).toMatch(/^30 of 500 missed the 40 ms deadline; slowest 60 ms$/);
    expect(dropped.phases.find((p) => p.phase === 'corun:throttle')).toMatchObject({ value: 0, pass: true });
    expect(dropped).toMatchObject({ pass: true, best: 'corun:throttle' });
    // the batch that never finished counts as late too
    const bNone = batch.phases.find((p) => p.phase === 'corun:none')!;
    expect(bNone).toMatchObject({ value: 1, pass: false });
    expect(batch.phases.find((p) => p.phase === 'corun:throttle')).toMatchObject({ value: 0, pass: true });
    // an unfinished request is a miss as well
    const [rt, b] = s.tasks;
    const saB = taskResult(samples('batch', 3, 400), b, { workload: 'probe' });
    const lost = [phase('corun:none', 'corun', [taskResult(samples('realtime', 500, 20), rt, { workload: 'p' }), taskResult(samples('batch', 2, 900, { unfinished: 1 }), b, { workload: 'p', standalone: saB })])];
    const lv = successVerdicts([s.success[2]], lost)[0];
    expect(lv.phases[0]).toMatchObject({ value: 1, pass: false, detail: expect.stringMatching(/1 of 3 missed the 3000 ms deadline \(1 never finished\)/) });
  });

  it('reference columns: standalone baseline and native sharing beside the mechanisms', () => {
    const s = notes().scenario;
    const v = successVerdicts(s.success, phases(s.tasks));
    expect(v[0].reference?.standalone).toMatchObject({ phase: 'standalone:realtime', value: 20, pass: true });
    expect(v[0].reference?.native).toMatchObject({ phase: 'corun:none', value: 60, pass: false });
    expect(v[1].reference?.standalone).toMatchObject({ phase: 'standalone:realtime', value: 0, pass: true });
    // the standalone reference does not count: corun:none and throttle decide
    const onlyNone = successVerdicts([s.success[1]], phases(s.tasks).filter((p) => p.name !== 'corun:throttle'))[0];
    expect(onlyNone.pass).toBe(false);
    expect(onlyNone.reference?.standalone?.pass).toBe(true);
  });

  it('a flagged figure never passes, in the reference columns either', () => {
    const s = notes().scenario;
    const q: Quality = { verdict: 'noisy', warnings: [{ code: 'host-interference', message: 'other processes used 1.5 of 2 cores', phase: 'corun:throttle' }, { code: 'host-interference', message: 'busy', phase: 'standalone:realtime' }] };
    const v = successVerdicts(s.success, phases(s.tasks), q);
    expect(v[1].phases.find((p) => p.phase === 'corun:throttle')).toMatchObject({ pass: null, detail: expect.stringMatching(/^inconclusive: host-interference/) });
    expect(v[1].pass).toBe(false); // corun:none still judged: 30 frames dropped
    expect(v[1].reference?.standalone).toMatchObject({ pass: null, detail: expect.stringMatching(/^inconclusive: /) });
    const p = preemptionLatency(s.tasks, phases(s.tasks), 'probe', q)!;
    expect(p.phases.every((x) => x.inconclusive !== undefined)).toBe(true);
  });

  it('preemption latency: P99 added vs standalone, in ms and in LP kernels', () => {
    const s = notes().scenario;
    const p = preemptionLatency(s.tasks, phases(s.tasks), 'probe')!;
    expect(p).toMatchObject({ hpTask: 'realtime', lpTasks: ['batch'], standaloneP99Ms: 20, lpKernelMs: 10 });
    const none = p.phases.find((x) => x.phase === 'corun:none')!;
    expect(none).toMatchObject({ p99Ms: 60, addedP99Ms: 40, lpKernels: 4 });
    expect(none.detail).toBe('P99 60 ms vs 20 ms standalone: +40 ms (4.0 LP kernels of 10 ms)');
    expect(p.phases.find((x) => x.phase === 'corun:throttle')).toMatchObject({ addedP99Ms: 18, lpKernels: 1.8 });
    // torch form: kernels unknown, ms only
    const t = preemptionLatency(s.tasks, phases(s.tasks), 'torch')!;
    expect(t.lpKernelMs).toBeNull();
    expect(t.phases[0]).toMatchObject({ addedP99Ms: 40, lpKernels: null });
    // one priority level, or one task: no row
    expect(preemptionLatency(s.tasks.map((x) => ({ ...x, priority: 1 })), phases(s.tasks), 'probe')).toBeNull();
    expect(preemptionLatency([s.tasks[0]], phases(s.tasks), 'probe')).toBeNull();
    // no standalone: n.a., said why
    const noSa = preemptionLatency(s.tasks, phases(s.tasks).filter((x) => x.kind === 'corun'), 'probe')!;
    expect(noSa.standaloneP99Ms).toBeNull();
    expect(noSa.phases[0]).toMatchObject({ addedP99Ms: null, inconclusive: 'realtime has no usable standalone P99' });
  });

  it('report.md: the success table with standalone and native columns and the preemption row', () => {
    const s = notes().scenario;
    const ps = phases(s.tasks);
    const results = {
      schema: 'gpucolo.results/1',
      gpucoloVersion: '0.1.0',
      createdAt: '2026-01-28T00:00:00.000Z',
      partial: false,
      scenario: { name: s.name, source: FIXTURE, form: 'probe', config: {} },
      host: { hostname: 'h', os: 'linux', cpus: 2, node: 'v20' },
      backend: { name: 'cpu', device: null, gpu: null, why: 'test' },
      phases: ps,
      success: successVerdicts(s.success, ps),
      preemption: preemptionLatency(s.tasks, ps, 'probe'),
    } as Results;
    const md = renderMarkdown(results);
    expect(md).toContain('| row | standalone (baseline) | native (corun:none) | best phase | value | verdict | per phase |');
    expect(md).toMatch(/\| 不掉帧 \(no dropped frame\) \| 0 of 500 missed the 40 ms deadline; slowest 20 ms \(PASS\) \| 30 of 500 missed the 40 ms deadline; slowest 60 ms \(FAIL\) \| corun:throttle \|/);
    expect(md).toMatch(/\| realtime waits behind LP work \(P99 added vs standalone; LP kernel 10 ms\) \| \+0 ms \(P99 20 ms\) \| \+40 ms = 4\.0 LP kernels \| corun:throttle \| P99 38 ms vs 20 ms standalone: \+18 ms \(1\.8 LP kernels of 10 ms\) \| measured \|/);
    // a results file written before (no reference, no preemption) keeps the old table
    const old = { ...results, success: results.success.map(({ reference: _r, ...v }) => v), preemption: undefined } as Results;
    expect(renderMarkdown(old)).toContain('| row | best phase | value | verdict | per phase |');
  });
});
