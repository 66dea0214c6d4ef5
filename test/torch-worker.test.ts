/**
 * workloads/model_worker.py and the torch scenario driver against real processes. Tests that run a
 * model need PyTorch for /usr/bin/python3 (Debian: apt-get install python3-torch
 * python3-torchvision) and skip without it; the fault paths that need no torch (missing python,
 * python without torch, unknown model, mechanisms skipped up front) run everywhere with a python3.
 * Models are the built-in tiny ones on cpu; phases are ~1 s so the file stays well under a minute
 * on 2 cores (each worker imports torch, ~1.5 s). Nothing asserts speed: waits are for records,
 * with deadlines (HANG_MS) that only guard against a hang; a busy host makes the file slower only.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { taskSchema, type Task } from '../src/scenario/schema.js';
import {
  defaultWorkerPath,
  runTorchPhase,
  SM_PARTITION_REASON,
  STREAM_PRIORITY_CPU_REASON,
  THROTTLE_REASON,
  type TorchPhaseOptions,
  type TorchPhaseResult,
} from '../src/scenario/torch-driver.js';
import { HANG_MS } from './helpers/load.js';

const PY = '/usr/bin/python3';
const WORKER = defaultWorkerPath();
const HAS_PY = fs.existsSync(PY);

const torchCheck = HAS_PY ? spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } }) : null;
const hasTorch = torchCheck?.status === 0;
if (!hasTorch) {
  const why = !HAS_PY ? `${PY} is missing` : (torchCheck?.stderr ?? '').trim().split('\n').pop();
  console.warn(`torch-worker tests that run models are skipped: ${PY} cannot import torch (${why}); apt-get install python3-torch python3-torchvision`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-torch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** dead = gone, or a zombie (runs nothing, holds only its pid) */
function dead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

function task(name: string, priority: number, arrival: Record<string, unknown>, torch: Record<string, unknown>): { task: Task; workload: NonNullable<Task['torch']> } {
  const t = taskSchema.parse({ name, priority, arrival, torch });
  return { task: t, workload: t.torch! };
}

const HP = (torch: Record<string, unknown> = { model: 'tiny-mlp', device: 'cpu' }) => task('hp', 2, { kind: 'fixed-rate', rate: 20 }, torch);
const LP = (torch: Record<string, unknown> = { model: 'tiny-mlp', device: 'cpu', batch: 32 }) => task('lp', 1, { kind: 'closed-loop', concurrency: 1 }, torch);

function phase(extra: Partial<TorchPhaseOptions> & Pick<TorchPhaseOptions, 'tasks'>): Promise<TorchPhaseResult> {
  return runTorchPhase({ mechanism: 'none', reserve: 0.1, durationNs: 1e9, warmupNs: 0.2e9, python: PY, loadTimeoutMs: HANG_MS, ...extra });
}

/** A worker spoken to directly: records as they come, commands as JSON lines. */
function rawWorker(python = PY) {
  const child = spawn(python, ['-u', WORKER], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  const records: Record<string, unknown>[] = [];
  let waiter: (() => void) | null = null;
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    records.push(JSON.parse(l) as Record<string, unknown>);
    waiter?.();
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    send: (cmd: unknown) => child.stdin!.write(`${JSON.stringify(cmd)}\n`),
    /** the next record of `type` (records before it are consumed) */
    async next(type: string, timeoutMs = HANG_MS): Promise<Record<string, unknown>> {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const i = records.findIndex((r) => r.type === type);
        if (i >= 0) return records.splice(0, i + 1)[i];
        if (Date.now() > end) throw new Error(`no ${type} record within ${timeoutMs} ms; got ${JSON.stringify(records)}; stderr ${stderr}`);
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 100);
        });
      }
    },
  };
}

describe.skipIf(!HAS_PY)('model worker without torch', () => {
  it('reports an unknown model as a load error record and exits 4', async () => {
    const w = rawWorker();
    const hello = await w.next('hello');
    expect(hello.pid).toBe(w.child.pid);
    w.send({ type: 'load', model: 'resnet9000', batch: 1, input: null, mode: 'inference', device: 'cpu', dtype: 'float32', threads: null, streamPriority: null, gate: null, seed: 1 });
    const err = await w.next('error');
    expect(err).toMatchObject({ phase: 'load', code: 'EBADCONFIG' });
    expect(String(err.message)).toMatch(/unknown model "resnet9000" \(known: .*tiny-cnn/);
    expect(await w.exited).toBe(4);
  });

  it('a python that cannot import torch -> ENOTORCH record, exit 3, and a failed phase that says what to install', async () => {
    // a real interpreter without site-packages: /usr/bin/python3 -S cannot see dist-packages
    const noTorch = path.join(tmp, 'python-no-site');
    fs.writeFileSync(noTorch, `#!/bin/sh\nexec ${PY} -S "$@"\n`, { mode: 0o755 });
    const w = rawWorker(noTorch);
    await w.next('hello');
    w.send({ type: 'load', model: 'tiny-mlp', batch: 1, mode: 'inference', device: 'cpu', dtype: 'float32' });
    expect(await w.next('error')).toMatchObject({ phase: 'load', code: 'ENOTORCH' });
    expect(await w.exited).toBe(3);

    const pids: number[] = [];
    const r = await phase({ tasks: [HP()], python: noTorch, onWorkers: (p) => pids.push(...p.map((x) => x.pid)) });
    expect(r.status).toBe('failed');
    expect(r.reason).toBe(`PyTorch is not installed for ${noTorch}: apt-get install python3-torch python3-torchvision (or set GPUCOLO_PYTHON)`);
    expect(pids).toHaveLength(1);
    expect(pids.every(dead)).toBe(true);
  });
});

describe('torch phase faults found before any model runs', () => {
  it('missing python (absolute path and a name not on PATH) -> failed with the message', async () => {
    const r = await phase({ tasks: [HP()], python: '/nonexistent/python3' });
    expect(r).toMatchObject({ status: 'failed', reason: 'python not found: /nonexistent/python3 (set GPUCOLO_PYTHON)' });
    expect(r.samples.map((s) => s.task)).toEqual(['hp']);
    const r2 = await phase({ tasks: [HP()], python: 'gpucolo-no-such-python3' });
    expect(r2).toMatchObject({ status: 'failed', reason: 'python not found: gpucolo-no-such-python3 (set GPUCOLO_PYTHON)' });
  });

  it('sm-partition and throttle are skipped; xsched without its preload fails', async () => {
    expect(await phase({ tasks: [HP(), LP()], mechanism: 'sm-partition' })).toMatchObject({ status: 'skipped', reason: SM_PARTITION_REASON });
    expect(await phase({ tasks: [HP(), LP()], mechanism: 'throttle' })).toMatchObject({ status: 'skipped', reason: THROTTLE_REASON });
    const r = await phase({ tasks: [HP(), LP()], mechanism: 'xsched', xsched: { preload: '/nonexistent/libshimcuda.so', env: {} } });
    expect(r).toMatchObject({ status: 'failed', reason: 'xsched preload not found: /nonexistent/libshimcuda.so' });
  });
});

describe.skipIf(!hasTorch)('model worker and torch phases (cpu)', () => {
  it('speaks the protocol: hello, load tiny-cnn, ready, request/done on the shared monotonic clock, stop/stats', async () => {
    const w = rawWorker();
    // a second worker, loaded alongside: train mode, then SIGTERM must end it promptly
    const tw = rawWorker();
    tw.send({ type: 'load', model: 'tiny-mlp', batch: 4, mode: 'train', device: 'cpu', dtype: 'float32' });
    expect(await w.next('hello')).toMatchObject({ python: expect.stringMatching(/^3\./) });
    w.send({ type: 'load', model: 'tiny-cnn', batch: 2, input: [3, 32, 32], mode: 'inference', device: 'auto', dtype: 'float32', threads: 1, streamPriority: null, gate: null, seed: 1 });
    const ready = await w.next('ready');
    expect(ready).toMatchObject({ device: 'cpu', hip: null, streamPriority: null, input: [3, 32, 32] });
    expect(ready.torch).toMatch(/^\d+\.\d+/);
    expect(ready.memoryBytes).toBeGreaterThan(10_000);

    const intended = process.hrtime.bigint();
    w.send({ type: 'request', id: 7, intendedNs: Number(intended) });
    const doneRec = await w.next('done');
    const after = process.hrtime.bigint();
    expect(doneRec.id).toBe(7);
    const start = BigInt(doneRec.startNs as number);
    const end = BigInt(doneRec.endNs as number);
    // same CLOCK_MONOTONIC: the worker's stamps fall between our send and our receipt (how long
    // that took is the host's business)
    expect(start >= intended).toBe(true);
    expect(end >= start).toBe(true);
    expect(end <= after).toBe(true);

    // train mode is a separate worker; here: stop -> stats -> exit 0
    w.send({ type: 'stop' });
    expect(await w.next('stats')).toMatchObject({ requests: 1, errors: 0, dropped: 0, gatePauses: 0 });
    expect(await w.exited).toBe(0);

    expect(await tw.next('ready')).toMatchObject({ device: 'cpu', input: [256] });
    tw.send({ type: 'request', id: 1, intendedNs: Number(process.hrtime.bigint()) });
    expect(await tw.next('done')).toMatchObject({ id: 1 });
    // SIGTERM ends it by the signal (not a handler that finishes a training step first): an exit
    // that waited for work would end with a code, and one that never came would hit the guard
    tw.child.kill('SIGTERM');
    const code = await Promise.race([tw.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), HANG_MS).unref())]);
    expect(code, 'the train worker did not exit on SIGTERM').not.toBe('hung');
    expect(tw.child.signalCode).toBe('SIGTERM');
  });

  it('runs two tiny-mlp tasks (fixed-rate HP, closed-loop LP) and measures from the intended arrival', async () => {
    const progress = new Map<string, number>();
    const r = await phase({ tasks: [HP(), LP()], durationNs: 1.5e9, warmupNs: 0.3e9, onProgress: (p) => progress.set(p.task, p.completed) });
    expect(r.status, r.reason).toBe('ok');
    const [hp, lp] = r.samples;
    expect(hp.task).toBe('hp');
    // 20/s over a 1.8 s span, the first 0.3 s warm-up: arrivals at 300, 350, ... 1750 ms
    expect(hp.issued).toBe(30);
    expect(hp.latencyNs.length).toBe(30);
    expect(lp.issued).toBeGreaterThan(10);
    expect(lp.latencyNs.length).toBeGreaterThan(10);
    for (const s of [hp, lp]) {
      expect(s.measuredNs).toBe(1.5e9);
      expect(s.errors).toBe(0);
      expect(s.serviceNs.length).toBe(s.latencyNs.length);
      for (let i = 0; i < s.latencyNs.length; i++) {
        expect(s.latencyNs[i]).toBeGreaterThanOrEqual(s.serviceNs[i]);
        expect(s.startDelayNs[i]).toBeGreaterThanOrEqual(0);
        expect(s.latencyNs[i]).toBe(s.startDelayNs[i] + s.serviceNs[i]);
      }
    }
    expect(progress.get('hp')).toBeGreaterThanOrEqual(30);
    expect(r.workers.map((w) => [w.task, w.device])).toEqual([
      ['hp', 'cpu'],
      ['lp', 'cpu'],
    ]);
    expect(r.workers[0].memoryBytes).toBeGreaterThan(0);
  });

  it('gate: the LP worker pauses between layers while HP requests are in flight', async () => {
    const r = await phase({
      tasks: [HP({ model: 'tiny-cnn', device: 'cpu', batch: 4, input: [3, 64, 64] }), LP({ model: 'tiny-cnn', device: 'cpu', batch: 8, input: [3, 64, 64] })],
      mechanism: 'gate',
    });
    expect(r.status, r.reason).toBe('ok');
    const note = r.notes.find((n) => n.startsWith('lp: gated'));
    expect(note, r.notes.join('\n')).toBeDefined();
    expect(Number(/gated (\d+) times/.exec(note!)![1])).toBeGreaterThan(0);
    expect(r.samples[0].latencyNs.length).toBeGreaterThan(0);
  });

  // the stand-in shim is built with the C++ tests (cmake --build build-cc)
  const FAKE_XSCHED = path.resolve('build-cc/libgpucolo_fake_xsched.so');
  it.skipIf(!fs.existsSync(FAKE_XSCHED))('xsched: each worker starts with the shim preloaded and its task priority in XSCHED_AUTO_XQUEUE_PRIORITY', async () => {
    const log = path.join(tmp, 'xsched.log');
    const pid: Record<string, number> = {};
    const r = await phase({
      tasks: [HP(), LP()],
      mechanism: 'xsched',
      xsched: { preload: FAKE_XSCHED, env: { XSCHED_POLICY: 'HPF', GPUCOLO_FAKE_XSCHED_LOG: log } },
      onWorkers: (p) => p.forEach((x) => (pid[x.task] = x.pid)),
    });
    expect(r.status, r.reason).toBe('ok');
    expect(r.notes.join('\n')).toContain(`xsched: LD_PRELOAD=${FAKE_XSCHED}, XSCHED_AUTO_XQUEUE_PRIORITY hp=2, lp=1`);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    const byPid = new Map(lines.map((l) => [Number(/^pid=(\d+)/.exec(l)![1]), l]));
    expect(byPid.get(pid.hp)).toBe(`pid=${pid.hp} XSCHED_AUTO_XQUEUE=ON XSCHED_AUTO_XQUEUE_PRIORITY=2 XSCHED_POLICY=HPF`);
    expect(byPid.get(pid.lp)).toBe(`pid=${pid.lp} XSCHED_AUTO_XQUEUE=ON XSCHED_AUTO_XQUEUE_PRIORITY=1 XSCHED_POLICY=HPF`);
    expect(r.samples.every((s) => s.latencyNs.length > 0)).toBe(true);
  });

  it('stream-priority with workers on cpu is skipped, and the workers are gone', async () => {
    const pids: number[] = [];
    const r = await phase({
      tasks: [HP({ model: 'tiny-mlp', device: 'auto' }), LP({ model: 'tiny-mlp', device: 'auto' })],
      mechanism: 'stream-priority',
      onWorkers: (p) => pids.push(...p.map((x) => x.pid)),
    });
    expect(r).toMatchObject({ status: 'skipped', reason: STREAM_PRIORITY_CPU_REASON });
    expect(pids).toHaveLength(2);
    expect(pids.every(dead)).toBe(true);
  });

  it('cu-mask on cpu workers is skipped (it needs ROCm torch)', async () => {
    const r = await phase({ tasks: [HP(), LP()], mechanism: 'cu-mask' });
    expect(r.status).toBe('skipped');
    expect(r.reason).toMatch(/^cu-mask needs ROCm torch \(HSA_CU_MASK\): hp runs on cpu with torch .*, no HIP$/);
  });

  it('a load timeout or an abort while loading stops the workers', async () => {
    let pids: number[] = [];
    const r = await phase({ tasks: [HP(), LP()], loadTimeoutMs: 300, onWorkers: (p) => (pids = p.map((x) => x.pid)) });
    expect(r).toMatchObject({ status: 'failed', reason: 'timed out after 300 ms waiting for hp, lp to load' });
    expect(pids.every(dead)).toBe(true);
    const ac = new AbortController();
    const r2 = await phase({ tasks: [HP()], signal: ac.signal, onWorkers: (p) => ((pids = p.map((x) => x.pid)), setTimeout(() => ac.abort(), 200)) });
    expect(r2).toMatchObject({ status: 'partial', reason: 'aborted while the workers were loading' });
    expect(pids.every(dead)).toBe(true);
  });

  it('a worker killed mid-run fails the phase with its stderr tail; no worker survives', async () => {
    let pids: { task: string; pid: number }[] = [];
    let killed = false;
    // a 60 s phase that the kill ends early: however slowly a busy host serves the first 5 LP
    // requests, they come long before the phase would have ended on its own
    const r = await phase({
      tasks: [HP(), LP()],
      durationNs: 60e9,
      onWorkers: (p) => (pids = p),
      onProgress: (p) => {
        if (!killed && p.task === 'lp' && p.completed >= 5) {
          killed = true;
          process.kill(pids.find((x) => x.task === 'lp')!.pid, 'SIGKILL');
        }
      },
    });
    expect(killed).toBe(true);
    expect(r.status).toBe('failed');
    expect(r.reason).toBe('lp worker exited with signal SIGKILL during the run');
    expect(r.stderrTail!.some((l) => /ready: tiny-mlp inference on cpu/.test(l))).toBe(true);
    expect(r.samples.map((s) => s.task)).toEqual(['hp', 'lp']);
    expect(r.samples[0].measuredNs).toBeLessThan(60e9);
    expect(pids).toHaveLength(2);
    expect(pids.every((p) => dead(p.pid))).toBe(true);
  });

  it('abort mid-run -> partial with the samples so far; no worker survives', async () => {
    const ac = new AbortController();
    let pids: number[] = [];
    // a 60 s phase that the abort ends early (after 5 HP requests, ~0.25 s on an idle host)
    const r = await phase({
      tasks: [HP(), LP()],
      durationNs: 60e9,
      warmupNs: 0,
      signal: ac.signal,
      onWorkers: (p) => (pids = p.map((x) => x.pid)),
      onProgress: (p) => {
        if (p.task === 'hp' && p.completed >= 5) ac.abort();
      },
    });
    expect(r).toMatchObject({ status: 'partial', reason: 'aborted' });
    expect(r.samples[0].latencyNs.length).toBeGreaterThanOrEqual(5);
    expect(r.samples[0].measuredNs).toBeGreaterThan(0);
    expect(r.samples[0].measuredNs).toBeLessThan(60e9);
    expect(pids.every(dead)).toBe(true);
  });
});
