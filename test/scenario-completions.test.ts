/**
 * A phase in which a task completed no request is not "ok" (issue #15: a torch phase with 0
 * completions was reported ok). The rule (src/scenario/completions.ts) on made-up samples, and
 * the torch driver against a fake model worker (a python3 script that speaks the worker protocol
 * without torch: it loads at once and then fails or ignores every request). Nothing here asserts
 * speed; the fake-worker runs wait for records with the driver's own deadlines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { judgeCompletions } from '../src/scenario/completions.js';
import { taskSchema, type Task } from '../src/scenario/schema.js';
import { loadScenario, runScenario } from '../src/scenario/index.js';
import { noCorunResult } from '../src/cli/run.js';
import { runTorchPhase } from '../src/scenario/torch-driver.js';
import type { TaskSamples } from '../src/scenario/types.js';
import { HANG_MS } from './helpers/load.js';

function samples(task: string, x: { completed?: number; issued?: number; errors?: number; censored?: number; error?: string }): TaskSamples {
  const completed = x.completed ?? 0;
  return {
    task,
    issued: x.issued ?? completed + (x.errors ?? 0) + (x.censored ?? 0),
    latencyNs: new Float64Array(completed).fill(10e6),
    startDelayNs: new Float64Array(0),
    serviceNs: new Float64Array(completed).fill(9e6),
    errors: x.errors ?? 0,
    ...(x.error ? { error: x.error } : {}),
    measuredNs: 1e9,
    censoredNs: new Float64Array(x.censored ?? 0).fill(500e6),
  };
}

describe('judgeCompletions', () => {
  it('keeps ok when every task completed something', () => {
    expect(judgeCompletions('ok', undefined, [samples('hp', { completed: 10 }), samples('lp', { completed: 1, censored: 3 })])).toEqual({ status: 'ok' });
  });

  it('a task with nothing issued in the window makes the run partial (a starved closed loop looks the same), never ok', () => {
    const j = judgeCompletions('ok', undefined, [samples('hp', { completed: 10 }), samples('lp', { issued: 0 })]);
    expect(j.status).toBe('partial');
    expect(j.reason).toMatch(/^lp: no request completed \(none was issued/);
  });

  it('a task whose every request failed fails the run, naming the first error', () => {
    const j = judgeCompletions('ok', undefined, [samples('hp', { errors: 7, error: 'RuntimeError: CUDA out of memory' })]);
    expect(j).toEqual({ status: 'failed', reason: 'hp: no request completed (7 of 7 failed: RuntimeError: CUDA out of memory)' });
  });

  it('a task whose requests were all still unfinished at the end makes the run partial: its latencies are lower bounds', () => {
    const j = judgeCompletions('ok', undefined, [samples('hp', { completed: 10 }), samples('lp', { censored: 4 })]);
    expect(j.status).toBe('partial');
    expect(j.reason).toBe('lp: no request completed (4 issued, 4 still unfinished at the end and censored: its latencies are lower bounds)');
  });

  it('failed wins over partial, and both reasons are kept', () => {
    const j = judgeCompletions('ok', undefined, [samples('hp', { errors: 2 }), samples('lp', { censored: 1 })]);
    expect(j.status).toBe('failed');
    expect(j.reason).toContain('hp: no request completed (2 of 2 failed)');
    expect(j.reason).toContain('lp: no request completed (1 issued, 1 still unfinished');
  });

  it('leaves failed, skipped and aborted (partial) runs as the driver said', () => {
    const none = [samples('hp', { issued: 0 })];
    expect(judgeCompletions('failed', 'worker exited', none)).toEqual({ status: 'failed', reason: 'worker exited' });
    expect(judgeCompletions('skipped', 'no GPU', none)).toEqual({ status: 'skipped', reason: 'no GPU' });
    expect(judgeCompletions('partial', 'aborted', none)).toEqual({ status: 'partial', reason: 'aborted' });
  });
});

// ---- the torch driver with a fake worker ----------------------------------------------------------

const PY = '/usr/bin/python3';
const HAS_PY = fs.existsSync(PY);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-completions-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * A model worker without torch: ready at once; `mode` says what it does with requests: 'error'
 * fails each, 'ignore' never answers, 'by-model' answers at once for tiny-mlp (done, on the
 * driver's monotonic clock) and ignores every other model.
 */
function fakeWorker(mode: 'error' | 'ignore' | 'by-model'): string {
  const file = path.join(tmp, `fake_worker_${mode}.py`);
  fs.writeFileSync(
    file,
    `import json, os, sys, time
MODE = "${mode}"
def emit(r):
    sys.stdout.write(json.dumps(r) + "\\n"); sys.stdout.flush()
emit({"type": "hello", "pid": os.getpid(), "python": "3", "executable": sys.executable})
requests = errors = 0
model = None
for line in sys.stdin:
    cmd = json.loads(line)
    t = cmd.get("type")
    if t == "load":
        model = cmd.get("model")
        emit({"type": "ready", "device": "cpu", "deviceName": None, "torch": "fake", "hip": None, "memoryBytes": 0,
              "streamPriority": None, "cuCount": None, "input": [1], "loadMs": 0, "notes": []})
    elif t == "request":
        requests += 1
        if MODE == "error":
            errors += 1
            emit({"type": "error", "phase": "request", "id": cmd["id"], "message": "RuntimeError: fake failure"})
        elif MODE == "by-model" and model == "tiny-mlp":
            now = time.monotonic_ns()
            emit({"type": "done", "id": cmd["id"], "startNs": now, "endNs": now + 1000000})
    elif t == "stop":
        break
emit({"type": "stats", "requests": requests, "errors": errors, "dropped": 0, "gatePauses": 0, "gatePausedNs": 0})
`,
  );
  return file;
}

function task(name: string, priority: number, arrival: Record<string, unknown>): { task: Task; workload: NonNullable<Task['torch']> } {
  const t = taskSchema.parse({ name, priority, arrival, torch: { model: 'tiny-mlp', device: 'cpu' } });
  return { task: t, workload: t.torch! };
}

describe.skipIf(!HAS_PY)('torch phase with 0 completions (fake worker, no torch needed)', () => {
  const opts = { mechanism: 'none' as const, reserve: 0.1, durationNs: 0.4e9, warmupNs: 0.1e9, python: PY, loadTimeoutMs: HANG_MS };

  it('every request failed: the phase is failed with the first error, not ok', async () => {
    const r = await runTorchPhase({ ...opts, tasks: [task('hp', 2, { kind: 'fixed-rate', rate: 20 })], workerPath: fakeWorker('error') });
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/^hp: no request completed \(\d+ of \d+ failed: RuntimeError: fake failure\)$/);
    expect(r.samples[0].latencyNs.length).toBe(0);
    expect(r.samples[0].errors).toBeGreaterThan(0);
  });

  it('no request answered: the phase is partial, its requests censored (lower bounds), not ok', async () => {
    const r = await runTorchPhase({ ...opts, tasks: [task('hp', 2, { kind: 'fixed-rate', rate: 20 })], workerPath: fakeWorker('ignore') });
    expect(r.status).toBe('partial');
    expect(r.reason).toMatch(/^hp: no request completed \(\d+ issued, \d+ still unfinished at the end and censored: its latencies are lower bounds\)$/);
    const s = r.samples[0];
    expect(s.latencyNs.length).toBe(0);
    expect(s.censoredNs!.length).toBe(s.issued);
    expect(s.issued).toBeGreaterThan(0);
  });
});

describe.skipIf(!HAS_PY)('a scenario whose low-priority task completes nothing (fake workers, torch form)', () => {
  it('those phases are partial with the reason, the run goes on to its end, and the co-run still has its HP result', async () => {
    // the driver starts `<python> -u <worker>`: this "python" runs the fake worker whatever it is given
    const py = path.join(tmp, 'fake-python');
    fs.writeFileSync(py, `#!/bin/sh\nexec ${PY} ${fakeWorker('by-model')}\n`, { mode: 0o755 });
    const file = path.join(tmp, 'starved.yaml');
    fs.writeFileSync(
      file,
      `name: starved
duration: 400ms
warmup: 100ms
rounds: 1
mechanisms: []
tasks:
  - name: hp
    priority: 2
    arrival: { kind: fixed-rate, rate: 20 }
    torch: { model: tiny-mlp, device: cpu }
  - name: lp
    priority: 1
    arrival: { kind: fixed-rate, rate: 10 }
    torch: { model: tiny-cnn, device: cpu }
`,
    );
    const { scenario, source } = loadScenario(file);
    const r = await runScenario(scenario, source, { outDir: path.join(tmp, 'starved-run'), form: 'torch', python: py, charts: false });
    const res = r.results;
    expect(res.partial).toBe(false);
    expect(res.phases.map((p) => `${p.name}=${p.status}`)).toEqual(['standalone:hp=ok', 'standalone:lp=partial', 'corun:none=partial']);
    for (const p of res.phases.slice(1)) {
      expect(p.reason).toMatch(/^lp: no request completed \(\d+ issued, \d+ still unfinished at the end and censored: its latencies are lower bounds\)$/);
      const lp = p.tasks.find((t) => t.name === 'lp')!;
      expect(lp.requests.completed).toBe(0);
      expect(lp.requests.censored).toBe(lp.requests.issued);
    }
    const hp = res.phases[2].tasks.find((t) => t.name === 'hp')!;
    expect(hp.requests.completed).toBeGreaterThan(0);
    // the co-run answered for hp: not the "no co-run result" exit 1
    expect(noCorunResult(res.phases)).toBeNull();
    expect(fs.readFileSync(path.join(r.outDir, 'report.md'), 'utf8')).toContain('lp: no request completed');
  });
});
