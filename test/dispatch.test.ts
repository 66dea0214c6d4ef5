/** The dispatch engine from JS on the built-in cpu backend (GPU backends are skipped with their reason). */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listBackends, probeLatency, probePriority, runDispatch } from '../src/dispatch/index.js';
import { quantileOf } from '../src/stats/index.js';
import { ROOT, nativeLoaded } from './helpers/impls.js';

// the cpu backend's workers run at nice 19 by default: on CI cores shared with other test files
// they would be starved; nice 0 lets them compete fairly (read when the backend's pool starts)
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

describe('dispatch spec validation', () => {
  it('bad specs give path-qualified one-line errors', async () => {
    await expect(
      runDispatch({ backend: 'cpu', durationNs: 1e9, streams: [{ name: 'a', highPriority: true, kernel: { spinNs: 0, blocks: 1, threadsPerBlock: 1 }, arrival: 'poisson' }] }),
    ).rejects.toThrow(/bad dispatch spec: streams\.0\.rateHz: poisson arrivals need rateHz > 0/);
    await expect(
      runDispatch({ backend: 'cpu', durationNs: 1e9, mechanism: 'cu-mask', streams: [{ name: 'a', highPriority: true, kernel: { spinNs: 0, blocks: 1, threadsPerBlock: 1 }, arrival: 'closed-loop' }] }),
    ).rejects.toThrow(/reserve: cu-mask needs a reserve between 0 and 1/);
    await expect(runDispatch({ backend: 'cpu', durationNs: 10, streams: [] } as never)).rejects.toMatchObject({ code: 'EINVALIDSPEC' });
  });
});

describe.runIf(nativeLoaded)('cpu backend through the engine', () => {
  it('is listed with its workers and priority range; GPU backends say why they are unavailable', () => {
    const b = listBackends();
    expect(b.map((x) => x.name)).toEqual(['cpu', 'cuda', 'hip']);
    const cpu = b[0];
    expect(cpu.available).toBe(true);
    expect(cpu.devices[0].computeUnits).toBeGreaterThanOrEqual(2);
    expect(cpu.devices[0].supportsCuMask).toBe(true);
    for (const g of b.slice(1)) if (!g.available) expect(g.reason).toMatch(/\S/);
  });

  it('probe latency: empty-kernel round trips, latency from intended arrival', async () => {
    const r = await probeLatency({ backend: 'cpu', durationNs: 400e6, warmupNs: 50e6 });
    expect(r.launches).toBeGreaterThan(100);
    expect(r.roundTrip.min).toBeGreaterThan(0);
    expect(quantileOf(r.roundTrip, 50)).toBeLessThan(1e9);
    const spin = await probeLatency({ backend: 'cpu', spinNs: 200e3, durationNs: 300e6, warmupNs: 50e6 });
    // a spin kernel lasts at least its spin time on the device
    expect(spin.device.min).toBeGreaterThanOrEqual(200e3);
  });

  it('open-loop arrivals keep their intended times when the device is busy (no coordinated omission)', async () => {
    const run = await runDispatch({
      backend: 'cpu',
      durationNs: 600e6,
      streams: [{ name: 'slow', highPriority: true, kernel: { spinNs: 15e6, blocks: 2, threadsPerBlock: 1 }, arrival: 'fixed-rate', rateHz: 100 }],
    });
    const s = run.streams[0];
    // intended times are 10 ms apart whatever the device does; latency grows as requests queue up
    const gaps = Array.from(s.raw.intendedNs.slice(1), (t, i) => t - s.raw.intendedNs[i]);
    expect(gaps.every((g) => Math.abs(g - 10e6) < 1e3)).toBe(true);
    expect(s.latencyNs[s.n - 1]).toBeGreaterThan(s.latencyNs[0]);
  });

  it('stream priority lowers high-priority latency next to saturating low-priority streams', { timeout: 60_000 }, async () => {
    // timing on CI cores shared with other test files: an attempt that does not show the effect
    // is repeated (three in all, like the C++ priority test); the other checks hold on every attempt
    const misses: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await probePriority({
        backend: 'cpu',
        lpKernelNs: 2e6,
        lpBlocks: 2,
        lpStreams: 2,
        hpKernelNs: 100e3,
        hpRateHz: 200,
        mechanisms: ['none', 'stream-priority', 'throttle'],
        throttleK: 1,
        durationNs: 2e9,
        warmupNs: 200e6,
      });
      const byMech = (m: string) => r.runs.find((x) => x.mechanism === m)!;
      const p99 = (m: string) => quantileOf(byMech(m).hpLatency, 99)!;
      expect(byMech('none').hpLatency.n).toBeGreaterThan(200);
      expect(byMech('throttle').addedP99InLpKernels).not.toBeNull();
      expect(byMech('none').lpShare).toBeGreaterThan(0);
      expect(r.standalone[0].lpThroughput).toBeGreaterThan(0);
      if (p99('stream-priority') < p99('none')) return;
      misses.push(`attempt ${attempt}: none ${p99('none')} ns, stream-priority ${p99('stream-priority')} ns`);
    }
    expect.fail(`stream priority did not lower the HP P99: ${misses.join('; ')}`);
  });

  it('a run can be cancelled', async () => {
    const ctl = new AbortController();
    const p = runDispatch(
      { backend: 'cpu', durationNs: 60e9, streams: [{ name: 'a', highPriority: false, kernel: { spinNs: 1e6, blocks: 1, threadsPerBlock: 1 }, arrival: 'closed-loop' }] },
      { signal: ctl.signal },
    );
    setTimeout(() => ctl.abort(), 200);
    const run = await p;
    expect(run.streams[0].raw.launches).toBeGreaterThan(0);
  });

  it('CLI: probe latency --json, probe priority table, unavailable GPU backend', () => {
    // --device 0 is the default's own value: it must be accepted when given (it was refused as "not a positive integer")
    const lat = cli(['probe', 'latency', '--backend', 'cpu', '--device', '0', '--duration', '300ms', '--json']);
    expect(lat.status).toBe(0);
    expect(JSON.parse(lat.stdout).roundTrip.n).toBeGreaterThan(10);
    const bad = cli(['probe', 'latency', '--backend', 'cpu', '--device', '-1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a device index/);
    const pr = cli(['probe', 'priority', '--backend', 'cpu', '--duration', '500ms', '--rounds', '2', '--mechanism', 'none,throttle', '--sweep', 'K=1,2']);
    expect(pr.status).toBe(0);
    expect(pr.stdout).toMatch(/co-run \(HP latency from intended arrival\)/);
    expect(pr.stdout.match(/^ {2}throttle /gm)).toHaveLength(2);
    expect(pr.stdout).toMatch(/^quality: (ok|noisy)/m);
    const list = listBackends();
    const cuda = list.find((b) => b.name === 'cuda')!;
    if (!cuda.available) {
      const g = cli(['probe', 'latency', '--backend', 'cuda', '--duration', '200ms']);
      expect(g.status).toBe(1);
      expect(g.stderr.trim().split('\n')).toHaveLength(1);
      expect(g.stderr).toMatch(/^gpucolo: error: backend cuda unavailable: /);
    }
    expect(cli(['probe', 'priority', '--mechanism', 'magic']).status).toBe(2);
    const kp = cli(['probe', 'priority', '--backend', 'cpu', '--kfd-priority', '9']);
    expect(kp.status).toBe(2);
    expect(kp.stderr).toMatch(/^gpucolo: --kfd-priority acts on KFD queues, which only the hip backend creates \(backend: cpu\)\n$/);
    expect(cli(['probe', 'priority', '--backend', 'hip', '--kfd-priority', '16']).stderr).toMatch(/not a KFD queue priority: "16" \(0\.\.15\)/);
  });
});

describe('without the native core', () => {
  it('the cpu backend runs on the pure-TS engine and says so; GPU backends say they need the native core', () => {
    const r = cli(['probe', 'latency', '--backend', 'cpu', '--duration', '200ms', '--json'], { GPUCOLO_NATIVE: '0' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.engine).toBe('ts');
    expect(j.roundTrip.n).toBeGreaterThan(10);
    const g = cli(['probe', 'latency', '--backend', 'cuda', '--duration', '200ms'], { GPUCOLO_NATIVE: '0' });
    expect(g.status).toBe(1);
    expect(g.stderr).toMatch(/^gpucolo: error: backend cuda unavailable: native core not loaded\n$/);
    const asked = cli(['probe', 'latency', '--backend', 'cpu', '--duration', '200ms'], { GPUCOLO_NATIVE: '0', GPUCOLO_DISPATCH_ENGINE: 'native' });
    expect(asked.status).toBe(1);
    expect(asked.stderr).toMatch(/GPUCOLO_DISPATCH_ENGINE=native, but the native core is not loaded: GPUCOLO_NATIVE=0/);
  });
});

describe.runIf(nativeLoaded)('native and pure-TS engines side by side', () => {
  it('GPUCOLO_DISPATCH_ENGINE=ts runs the cpu backend on the TS engine in a process where the native core is loaded', () => {
    const r = cli(['probe', 'latency', '--backend', 'cpu', '--duration', '200ms', '--json'], { GPUCOLO_DISPATCH_ENGINE: 'ts' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).engine).toBe('ts');
    const n = cli(['probe', 'latency', '--backend', 'cpu', '--duration', '200ms', '--json']);
    expect(JSON.parse(n.stdout).engine).toBe('native');
  });

  it('listBackends says which engine drives each backend', () => {
    const b = listBackends();
    expect(b[0].engine).toBe('native');
    expect(listBackends({ engine: 'ts' })[0]).toMatchObject({ engine: 'ts', available: true });
    expect(b.slice(1).every((x) => x.engine === 'native')).toBe(true);
  });
});
