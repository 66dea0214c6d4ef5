/**
 * `gpucolo doctor` launches nothing on a GPU unless asked (issue 15, item 10): the device list
 * comes from device_info() (no kernel: the timer resolution shows as not measured), and `doctor
 * --measure` runs a short empty-kernel series on every device of every available backend (here:
 * the cpu backend). Recorded trees (roots other than the live /sys and /sys/kernel/debug) get the
 * KFD snapshot's hints ("not in the recorded tree") instead of "load the driver". MPS is reported
 * where CUDA is. A GPU backend is stood in for by a made-up listBackends() answer.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as run from '../src/dispatch/run.js';
import { doctor, doctorMeasure } from '../src/doctor.js';
import type { NativeBackendInfo } from '../src/native.js';
import { ROOT } from './helpers/impls.js';
import { H100 } from './helpers/devices.js';

vi.mock('../src/dispatch/run.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/dispatch/run.js')>();
  return { ...m, listBackends: vi.fn(m.listBackends) };
});

process.env.GPUCOLO_CPU_WORKERS = '2';
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-doctor-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const FAKE_CUDA: NativeBackendInfo = {
  name: 'cuda',
  available: true,
  engine: 'native',
  devices: [
    H100,
  ],
};

describe('doctor launches nothing unless asked', () => {
  it('without --measure: no series run, measured is null; a GPU\'s timer resolution shows as not measured, with how to measure it', () => {
    const real = run.listBackends();
    vi.mocked(run.listBackends).mockReturnValueOnce([real[0], FAKE_CUDA, real[2]]);
    const r = doctor();
    expect(r.measured).toBeNull();
    expect(r.summary.some((l) => l.startsWith('measured '))).toBe(false);
    const line = r.summary.find((l) => l.startsWith('dispatch backend cuda'))!;
    expect(line).toMatch(/NVIDIA H100 80GB HBM3 \(sm_90, 132 CUs, priorities 0\.\.-5, SM partitions, fill 32 x 64-thread blocks per CU, timer resolution not measured\)/);
    expect(r.summary).toContain('GPU timer resolution and launch round trip: not measured (gpucolo doctor --measure runs a short empty-kernel series on each device)');
    // where CUDA is, MPS is reported (stream priorities of separate processes depend on it)
    expect(r.mps.pipeDir).toBe(process.env.CUDA_MPS_PIPE_DIRECTORY || '/tmp/nvidia-mps');
    expect(r.summary.some((l) => l.startsWith('MPS: '))).toBe(true);
  });

  it('--measure: a short series per device, the timer resolution and the clock drift; the line before the verdict', async () => {
    const r = await doctorMeasure(doctor(), { durationNs: 100e6 });
    const cpu = r.measured!.find((m) => m.backend === 'cpu')!;
    expect(cpu).toMatchObject({ device: 0, ok: true });
    expect(cpu.launches).toBeGreaterThan(0);
    expect(cpu.roundTripP50Ns).toBeGreaterThan(0);
    expect(cpu.timerResolutionNs).toBeGreaterThan(0);
    expect(cpu.clock?.driftNs).toEqual(expect.any(Number));
    const at = r.summary.findIndex((l) => l.startsWith('measured cpu:0 '));
    expect(at).toBeGreaterThan(0);
    expect(r.summary[r.summary.length - 1]).toMatch(/^verdict: /);
    expect(r.summary[at]).toMatch(/empty kernels, round trip P50 .*, timer resolution .*, device clock drift /);
    expect(r.summary.some((l) => l.startsWith('GPU timer resolution and launch round trip: not measured'))).toBe(false);
  });
});

describe('recorded trees', () => {
  it('a file missing from a recorded tree is "not in the recorded tree", not a driver to load', () => {
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const r = doctor({ sysfsRoot: empty, debugfsRoot: empty, kfdDevice: '/nonexistent/kfd' });
    expect(r.recorded).toEqual({ sysfs: true, debugfs: true });
    expect(r.kfd.sysfs.hint).toBe('not in the recorded tree');
    expect(r.kfd.debugfs.files.mqds.hint).toBe('not in the recorded tree');
    expect(r.summary).toContain(`verdict: the recorded tree ${empty} has no KFD GPU node (not in the recorded tree)`);
    expect(r.summary.some((l) => /mount debugfs|amdgpu driver \(kfd\) is not loaded/.test(l))).toBe(false);
  });

  it('the bundled MI300X tree: its GPU, and a verdict about the recording, not this host', () => {
    const full = doctor({ sysfsRoot: path.join(EXAMPLE, 'sys'), debugfsRoot: path.join(EXAMPLE, 'sys/kernel/debug'), kfdDevice: '/nonexistent/kfd' });
    expect(full.kfd.sysfs.gpus[0]).toMatchObject({ gfxTarget: 'gfx942' });
    expect(full.summary[full.summary.length - 1]).toMatch(/^verdict: the recorded tree holds full KFD queue state/);
    const noDebug = doctor({ sysfsRoot: path.join(EXAMPLE, 'sys'), debugfsRoot: fs.mkdtempSync(path.join(tmp, 'dbg-')), kfdDevice: '/nonexistent/kfd' });
    expect(noDebug.summary[noDebug.summary.length - 1]).toBe('verdict: the recorded tree holds KFD queues through sysfs only (ids, types, GPUs): its debugfs files are not in the recording');
  });

  it('the live roots are not recorded trees', () => {
    expect(doctor().recorded).toEqual({ sysfs: false, debugfs: false });
  });
});

describe('CLI', () => {
  it('doctor --json has measured null; doctor --measure --json measures the cpu backend', () => {
    const env = { ...process.env, GPUCOLO_CPU_WORKER_NICE: '0' };
    const plain = spawnSync(process.execPath, [CLI, 'doctor', '--json'], { encoding: 'utf8', env });
    expect(plain.status, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).measured).toBeNull();
    const m = spawnSync(process.execPath, [CLI, 'doctor', '--measure', '--json'], { encoding: 'utf8', env, timeout: 60_000 });
    expect(m.status, m.stderr).toBe(0);
    const j = JSON.parse(m.stdout);
    expect(j.measured.find((x: { backend: string }) => x.backend === 'cpu')).toMatchObject({ ok: true });
    const help = spawnSync(process.execPath, [CLI, 'doctor', '--help'], { encoding: 'utf8' });
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/Launches nothing on a GPU unless --measure is given/i);
  });
});
