/**
 * Stream priorities across processes (issue 15, item 8). A CUDA stream priority orders only the
 * streams of one context: with one worker process per model it is real on NVIDIA only under MPS,
 * on AMD always (KFD queue priorities), and with every model in one process (torchProcess
 * 'single', workloads/model_group.py) everywhere. The phase says which, and says so plainly where
 * the priority is not real. GPU workers are stood in for by a fake worker script that speaks the
 * protocol and claims a CUDA (or ROCm) device; the single-process form also runs for real with
 * the CPU build of PyTorch when /usr/bin/python3 has it. MPS detection runs against made-up pipe
 * directories and /proc trees. No timing asserts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectMps, type MpsStatus } from '../src/dispatch/mps.js';
import { scenarioSchema, taskSchema, type Task } from '../src/scenario/schema.js';
import {
  runTorchPhase,
  SINGLE_CU_MASK_REASON,
  SINGLE_XSCHED_REASON,
  STREAM_PRIORITY_CPU_REASON,
  streamPriorityScope,
  type TorchPhaseOptions,
} from '../src/scenario/torch-driver.js';
import { HANG_MS } from './helpers/load.js';
import { ROOT } from './helpers/impls.js';

const PY = '/usr/bin/python3';
const HAS_PY = fs.existsSync(PY);
const hasTorch = HAS_PY && spawnSync(PY, ['-c', 'import torch'], { env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } }).status === 0;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-torchproc-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const NO_MPS: MpsStatus = { pipeDir: '/tmp/nvidia-mps', running: false, control: null, processes: [], line: 'MPS: not running (no control pipe in /tmp/nvidia-mps)' };
const MPS: MpsStatus = { pipeDir: '/tmp/nvidia-mps', running: true, control: '/usr/bin/nvidia-cuda-mps-control', processes: [{ pid: 7, name: 'nvidia-cuda-mps' }], line: 'MPS: running: control pipe /tmp/nvidia-mps/control' };

describe('streamPriorityScope: do the HP and LP priority streams meet?', () => {
  const cuda = (pid: number) => ({ device: 'cuda:0', hip: null, pid });
  const rocm = (pid: number) => ({ device: 'cuda:0', hip: '6.2.41133', pid });
  it('one process: real (one context)', () => {
    expect(streamPriorityScope({ form: 'single', workers: [cuda(5), cuda(5)], mps: NO_MPS })).toMatchObject({ real: true, via: 'context' });
  });
  it('separate processes on ROCm: real, KFD queue priorities apply across processes', () => {
    const s = streamPriorityScope({ form: 'per-model', workers: [rocm(5), rocm(6)], mps: NO_MPS });
    expect(s).toMatchObject({ real: true, via: 'kfd' });
    expect(s.note).toMatch(/KFD queue with its own queue priority/);
  });
  it('separate processes on NVIDIA: real under MPS, else not a real priority, with what to do', () => {
    expect(streamPriorityScope({ form: 'per-model', workers: [cuda(5), cuda(6)], mps: MPS })).toMatchObject({ real: true, via: 'mps' });
    const s = streamPriorityScope({ form: 'per-model', workers: [cuda(5), cuda(6)], mps: NO_MPS });
    expect(s).toMatchObject({ real: false, via: 'none' });
    expect(s.note).toMatch(/^not a real priority here: each model runs in its own process with its own CUDA context/);
    expect(s.note).toMatch(/--torch-process single/);
    expect(s.note).toMatch(/nvidia-cuda-mps-control -d/);
  });
});

describe('detectMps', () => {
  const mkfifo = (p: string): boolean => spawnSync('mkfifo', [p]).status === 0;
  const proc = (entries: Record<string, string>): string => {
    const root = fs.mkdtempSync(path.join(tmp, 'proc-'));
    for (const [pid, comm] of Object.entries(entries)) {
      fs.mkdirSync(path.join(root, pid));
      fs.writeFileSync(path.join(root, pid, 'comm'), `${comm}\n`);
    }
    return root;
  };

  it('not running: no control pipe in the pipe directory ($CUDA_MPS_PIPE_DIRECTORY or /tmp/nvidia-mps)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'mps-'));
    const m = detectMps({ env: { CUDA_MPS_PIPE_DIRECTORY: dir, PATH: '' }, procRoot: proc({ '1': 'init' }) });
    expect(m).toMatchObject({ pipeDir: dir, running: false, control: null, processes: [] });
    expect(m.line).toBe(`MPS: not running (no control pipe in ${dir}, from CUDA_MPS_PIPE_DIRECTORY)`);
    expect(detectMps({ env: { PATH: '' }, procRoot: proc({}) }).pipeDir).toBe('/tmp/nvidia-mps');
  });

  it.skipIf(spawnSync('mkfifo', ['--version']).status !== 0)('running: the control FIFO is there; the daemon and an installed control binary are reported', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'mps-'));
    expect(mkfifo(path.join(dir, 'control'))).toBe(true);
    const bin = fs.mkdtempSync(path.join(tmp, 'bin-'));
    fs.writeFileSync(path.join(bin, 'nvidia-cuda-mps-control'), '#!/bin/sh\n', { mode: 0o755 });
    const m = detectMps({ env: { CUDA_MPS_PIPE_DIRECTORY: dir, PATH: bin }, procRoot: proc({ '41': 'nvidia-cuda-mps', '42': 'bash' }) });
    expect(m).toMatchObject({ running: true, control: path.join(bin, 'nvidia-cuda-mps-control'), processes: [{ pid: 41, name: 'nvidia-cuda-mps' }] });
    expect(m.line).toBe(`MPS: running: control pipe ${dir}/control (nvidia-cuda-mps 41)`);
    // a pipe and no daemon in sight: a container with the host's pipe directory mounted
    expect(detectMps({ env: { CUDA_MPS_PIPE_DIRECTORY: dir, PATH: '' }, procRoot: proc({}) }).line).toMatch(/no MPS process visible here: the daemon may run outside this container/);
  });
});

// ---- phases with fake GPU workers ----------------------------------------------------------------

/** A worker that claims a GPU: ready on cuda:0 (ROCm when hip is given), 1 ms requests; the task tag makes it a group worker too. */
function fakeWorker(name: string, hip: string | null): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(
    file,
    `import json, os, sys, time
HIP = ${hip === null ? 'None' : JSON.stringify(hip)}
def emit(r):
    sys.stdout.write(json.dumps(r) + "\\n")
    sys.stdout.flush()
emit({"type": "hello", "pid": os.getpid()})
tags = []
done = {}
for line in sys.stdin:
    c = json.loads(line)
    tag = {"task": c["task"]} if "task" in c else {}
    kind = c.get("type")
    if kind == "load":
        p = c.get("streamPriority")
        tags.append(tag)
        emit({**tag, "type": "ready", "device": "cuda:0", "deviceName": "Fake GPU", "torch": "0.0", "hip": HIP, "memoryBytes": 1,
              "streamPriority": None if p is None else (-1 if p == "high" else 0), "cuCount": 8, "input": [1], "loadMs": 1, "notes": []})
    elif kind == "request":
        start = time.monotonic_ns()
        time.sleep(0.001)
        key = json.dumps(tag)
        done[key] = done.get(key, 0) + 1
        emit({**tag, "type": "done", "id": c["id"], "startNs": start, "endNs": time.monotonic_ns()})
    elif kind == "stop":
        break
for tag in tags:
    emit({**tag, "type": "stats", "requests": done.get(json.dumps(tag), 0), "errors": 0, "dropped": 0, "gatePauses": 0, "gatePausedNs": 0})
sys.stdout.flush()
os._exit(0)
`,
  );
  return file;
}

const task = (name: string, priority: number, arrival: Record<string, unknown>, torch: Record<string, unknown>): { task: Task; workload: NonNullable<Task['torch']> } => {
  const t = taskSchema.parse({ name, priority, arrival, torch });
  return { task: t, workload: t.torch! };
};
const GPU_TASKS = [task('hp', 2, { kind: 'fixed-rate', rate: 50 }, { model: 'tiny-mlp', device: 'cuda' }), task('lp', 1, { kind: 'closed-loop', concurrency: 1 }, { model: 'tiny-mlp', device: 'cuda' })];

function phase(extra: Partial<TorchPhaseOptions>) {
  return runTorchPhase({ tasks: GPU_TASKS, mechanism: 'stream-priority', reserve: 0.1, durationNs: 0.5e9, warmupNs: 0.1e9, python: PY, loadTimeoutMs: HANG_MS, ...extra });
}

describe.skipIf(!HAS_PY)('stream-priority phases on (fake) GPU workers', () => {
  it('NVIDIA, one process per model, no MPS: the phase runs and says it is not a real priority', async () => {
    const pids: number[] = [];
    const r = await phase({ workerPath: fakeWorker('nv.py', null), mps: NO_MPS, onWorkers: (p) => pids.push(...p.map((x) => x.pid)) });
    expect(r.status, r.reason).toBe('ok');
    expect(r.priorityScope).toMatchObject({ real: false, via: 'none' });
    expect(r.notes).toContain('stream priority: HP hp -1, LP lp 0');
    expect(r.notes.some((n) => n.startsWith('not a real priority here:'))).toBe(true);
    expect(new Set(pids).size).toBe(2);
    expect(r.workers.map((w) => w.process)).toEqual(['per-model', 'per-model']);
    for (const s of r.samples) expect(s.latencyNs.length).toBeGreaterThan(0);
  });

  it('NVIDIA under MPS: real, and the note names MPS', async () => {
    const r = await phase({ workerPath: fakeWorker('nv-mps.py', null), mps: MPS });
    expect(r.status, r.reason).toBe('ok');
    expect(r.priorityScope).toMatchObject({ real: true, via: 'mps' });
    expect(r.notes.some((n) => /through MPS.*control pipe \/tmp\/nvidia-mps\/control/.test(n))).toBe(true);
  });

  it('ROCm, one process per model: real (KFD queue priorities across processes), per-model kept', async () => {
    const r = await phase({ workerPath: fakeWorker('rocm.py', '6.2.41133'), mps: NO_MPS });
    expect(r.status, r.reason).toBe('ok');
    expect(r.priorityScope).toMatchObject({ real: true, via: 'kfd' });
  });

  it('one process for both models: real on NVIDIA without MPS; one pid, records routed by task', async () => {
    const pids: number[] = [];
    const r = await phase({ torchProcess: 'single', groupWorkerPath: fakeWorker('group.py', null), mps: NO_MPS, onWorkers: (p) => pids.push(...p.map((x) => x.pid)) });
    expect(r.status, r.reason).toBe('ok');
    expect(r.priorityScope).toMatchObject({ real: true, via: 'context' });
    expect(new Set(pids).size).toBe(1);
    expect(r.workers.map((w) => [w.task, w.process, w.pid])).toEqual([
      ['hp', 'single', pids[0]],
      ['lp', 'single', pids[0]],
    ]);
    expect(r.notes[0]).toMatch(/^single process: hp, lp in one model_group\.py process/);
    for (const s of r.samples) {
      expect(s.latencyNs.length).toBeGreaterThan(0);
      expect(s.issued).toBeGreaterThanOrEqual(s.latencyNs.length);
    }
  });
});

describe('the single-process form refuses what acts on whole processes', () => {
  it('cu-mask (HSA_CU_MASK) and xsched (XSCHED_AUTO_XQUEUE_PRIORITY) are skipped before any worker starts', async () => {
    expect(await phase({ torchProcess: 'single', mechanism: 'cu-mask' })).toMatchObject({ status: 'skipped', reason: SINGLE_CU_MASK_REASON, workers: [] });
    const xs = await phase({ torchProcess: 'single', mechanism: 'xsched', xsched: { preload: '/nonexistent.so', env: {} } });
    expect(xs).toMatchObject({ status: 'skipped', reason: SINGLE_XSCHED_REASON });
  });
});

describe.skipIf(!hasTorch)('the single-process form with PyTorch on the cpu', () => {
  const CPU_TASKS = [task('hp', 2, { kind: 'fixed-rate', rate: 20 }, { model: 'tiny-mlp', device: 'cpu' }), task('lp', 1, { kind: 'closed-loop', concurrency: 1 }, { model: 'tiny-mlp', device: 'cpu', batch: 16 })];

  it('both models in one model_group.py process, each measured from its intended arrival', async () => {
    const pids: number[] = [];
    const r = await runTorchPhase({ tasks: CPU_TASKS, mechanism: 'none', reserve: 0.1, durationNs: 1e9, warmupNs: 0.2e9, python: PY, loadTimeoutMs: HANG_MS, torchProcess: 'single', onWorkers: (p) => pids.push(...p.map((x) => x.pid)) });
    expect(r.status, r.reason).toBe('ok');
    expect(new Set(pids).size).toBe(1);
    expect(r.workers.every((w) => w.process === 'single' && w.device === 'cpu')).toBe(true);
    const [hp, lp] = r.samples;
    expect(hp.issued).toBeGreaterThan(0);
    expect(hp.latencyNs.length).toBeGreaterThan(0);
    expect(lp.latencyNs.length).toBeGreaterThan(0);
    for (const s of r.samples) for (const v of s.latencyNs) expect(v).toBeGreaterThan(0);
  });

  it('stream-priority with both models on the cpu is skipped (no streams there)', async () => {
    const r = await runTorchPhase({ tasks: CPU_TASKS, mechanism: 'stream-priority', reserve: 0.1, durationNs: 0.5e9, warmupNs: 0.1e9, python: PY, loadTimeoutMs: HANG_MS, torchProcess: 'single' });
    expect(r).toMatchObject({ status: 'skipped', reason: STREAM_PRIORITY_CPU_REASON });
  });
});

describe('choosing the form', () => {
  it('scenario torchProcess (default per-model) and run --torch-process single|per-model', () => {
    const base = { name: 'x', tasks: [{ name: 'a', priority: 1, arrival: { kind: 'closed-loop' }, torch: { model: 'tiny-mlp' } }] };
    expect(scenarioSchema.parse(base).torchProcess).toBe('per-model');
    expect(scenarioSchema.parse({ ...base, torchProcess: 'single' }).torchProcess).toBe('single');
    expect(() => scenarioSchema.parse({ ...base, torchProcess: 'shared' })).toThrow();
    const cli = path.join(ROOT, 'dist/cli/cli.js');
    const help = spawnSync(process.execPath, [cli, 'run', '--help'], { encoding: 'utf8' });
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--torch-process <form> torch form: per-model = one worker process per model; single = every model of a phase in one process/);
    const bad = spawnSync(process.execPath, [cli, 'run', 'inference-service', '--torch-process', 'shared'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--torch-process/);
  });
});
