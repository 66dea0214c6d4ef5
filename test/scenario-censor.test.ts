/**
 * Requests unfinished when a phase ends stay in the latency sample, censored at their age when the
 * driver stopped waiting (issue 14): the statistics (which figures become lower bounds), the probe
 * form at a rate the backend cannot serve (both dispatch engines: GPUCOLO_NATIVE=0 runs the
 * pure-TS one), and the torch driver with a stand-in model worker (a few lines of Node that speak
 * workloads/model_worker.py's protocol, so no PyTorch is needed): censoring, the load generator's
 * own lateness, the workers' pids handed to the host-load window, and exit 1 when no co-run phase
 * has a result.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario, runScenario, type HostLoadFactory, type RunEvent } from '../src/scenario/index.js';
import { runProbePhase } from '../src/scenario/probe-driver.js';
import { censoredAges, generatorLagNs } from '../src/scenario/censor.js';
import { summarizeLatencyMs } from '../src/stats/index.js';
import { ROOT } from './helpers/impls.js';

process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-scenario-censor-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const MS = 1e6;

describe('censored latencies', () => {
  it('figures at or above the lowest censored rank are lower bounds; those below stay exact', () => {
    const exact = Float64Array.from({ length: 400 }, (_, i) => (i + 1) * MS); // 1..400 ms
    const plain = summarizeLatencyMs(exact);
    expect(plain).toMatchObject({ censored: 0, censoredAtOrAbove: [] });
    expect(plain.ci99).not.toBeNull();
    // 10 unfinished requests at ages 2 s and more: they sit above everything
    const s = summarizeLatencyMs(exact, Float64Array.from({ length: 10 }, (_, i) => (2000 + i) * MS));
    expect(s.n).toBe(410);
    expect(s.censored).toBe(10);
    expect(s.p50).toBe(205); // exact: every censored value is above it whatever its truth
    expect(s.p95).toBe(390); // rank 390, below the first censored rank (401): exact too
    expect(s.p99).toBe(2005); // rank 406: a censored value, so a lower bound
    expect(s.censoredAtOrAbove).toEqual(['p99', 'p999', 'max', 'mean']);
    expect(s.ci99).toBeNull(); // its upper end would be a lower bound
    expect(s.ci50).not.toBeNull();
    // with 4 of them, rank 400 of 404 is still the last exact value
    expect(summarizeLatencyMs(exact, Float64Array.of(2000 * MS, 2100 * MS, 2200 * MS, 2300 * MS))).toMatchObject({ p99: 400, censoredAtOrAbove: ['p999', 'max', 'mean'] });
    // one censored request young enough to rank low makes every figure above it a lower bound
    const young = summarizeLatencyMs(exact, Float64Array.of(10 * MS));
    expect(young.censoredAtOrAbove).toEqual(['p50', 'p90', 'p95', 'p99', 'p999', 'max', 'mean']);
    expect(() => summarizeLatencyMs(exact, Float64Array.of(-1))).toThrow(/censored\[0\] is -1/);
  });

  it('ages at the stop; the generator\'s lag leaves out waiting for room in the stream', () => {
    expect(Array.from(censoredAges([100, 900, 1200], 1000))).toEqual([900, 100, 0]);
    // inflight 1: launch 1 could go only when launch 0 completed (at 50); it went at 52
    const raw = { intendedNs: Float64Array.of(0, 10, 100), submitNs: Float64Array.of(1, 52, 130), completeNs: Float64Array.of(50, 90, 140), warmup: Uint8Array.of(0, 0, 0) };
    expect(Array.from(generatorLagNs(raw, 1))).toEqual([1, 2, 30]);
    expect(Array.from(generatorLagNs({ ...raw, warmup: Uint8Array.of(1, 0, 0) }, 1))).toEqual([2, 30]);
  });
});

// one 20 ms kernel per request at 300/s: the cpu backend (a compute unit or two) serves < 100/s
const OVERLOAD = `
name: overload
duration: 300ms
warmup: 0ms
rounds: 1
tasks:
  - name: x
    priority: 1
    arrival: { kind: fixed-rate, rate: 300 }
    slo: { percentile: 99, below: 100ms }
    probe: { kernel: 20ms }
`;

describe('a probe task at a rate the backend cannot serve', () => {
  const s = parseScenario(OVERLOAD, 'overload.yaml');

  it('keeps every issued request: P99 at least the backlog\'s age at the end, throughput what the window completed', async () => {
    const r = await runScenario(s, 'overload.yaml', { outDir: path.join(tmp, 'overload'), form: 'probe', backend: 'cpu', mechanisms: [], charts: false });
    const x = r.results.phases[0].tasks[0];
    expect(x.requests.issued).toBe(90);
    expect(x.requests.completed + (x.requests.censored ?? 0) + x.requests.errors).toBe(90);
    expect(x.latencyMs.n).toBe(90);
    // the last arrivals (near 297 ms) wait behind ~60 requests of 20 ms on at most a few units
    expect(x.latencyMs.p99!).toBeGreaterThanOrEqual(300);
    expect(x.throughput).toBeLessThan(150); // not the offered 300/s
    // FAIL, or inconclusive where the busy host raised a quality warning: never PASS
    expect(x.slo[0].pass).not.toBe(true);
  });

  it('a drain cut short censors what is unfinished, at its age then, and says so', async () => {
    const r = await runProbePhase({ tasks: [{ task: s.tasks[0], workload: s.tasks[0].probe! }], backend: 'cpu', mechanism: 'none', reserve: 0.1, throttleK: 1, durationNs: 300e6, warmupNs: 0, drainNs: 100e6 });
    expect(r.status).toBe('ok');
    const x = r.samples[0];
    const censored = x.censoredNs!;
    expect(censored.length).toBeGreaterThan(0);
    expect(x.issued).toBe(90);
    expect(x.latencyNs.length + censored.length).toBe(90);
    // unfinished when the driver stopped waiting (>= the 300 ms end), intended before it: never 0
    for (const a of censored) expect(a).toBeGreaterThan(0);
    expect(Math.max(...censored)).toBeGreaterThanOrEqual(200 * MS);
    expect(r.notes.join('\n')).toMatch(/drain cut off 0\.1 s after the phase end: \d+ request\(s\) still unfinished, censored/);
    const sum = summarizeLatencyMs(x.latencyNs, censored);
    expect(sum.censoredAtOrAbove).toContain('p99');
  });
});

// ---- the torch driver with a stand-in worker -------------------------------------------------

const FAKE_WORKER = `
import readline from 'node:readline';
const [serviceMs, failSeed2] = [Number(process.argv[2]), process.argv[3] === 'fail-corun'];
const now = () => Number(process.hrtime.bigint());
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
out({ type: 'hello', pid: process.pid, python: '3.11 (stand-in)' });
const queue = [];
let busy = false;
let requests = 0;
const pump = () => {
  if (busy || !queue.length) return;
  busy = true;
  const r = queue.shift();
  const startNs = now();
  setTimeout(() => { busy = false; requests++; out({ type: 'done', id: r.id, startNs, endNs: now() }); pump(); }, serviceMs);
};
const stats = () => { out({ type: 'stats', requests, errors: 0, dropped: queue.length, gatePauses: 0, gatePausedNs: 0 }); process.exit(0); };
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.type === 'load') {
    if (failSeed2 && m.seed >= 2) { out({ type: 'error', phase: 'load', code: 'ELOAD', message: 'stand-in: no co-run' }); process.exit(4); }
    out({ type: 'ready', device: 'cpu', deviceName: null, torch: '0-stand-in', hip: null, memoryBytes: 0, streamPriority: null, cuCount: null, input: [1], loadMs: 1, notes: [] });
  } else if (m.type === 'request') { queue.push(m); pump(); }
  else if (m.type === 'stop') stats();
});
rl.on('close', stats);
`;

/** A "python" that runs the stand-in worker with a service time (the driver's arguments are ignored). */
function fakePython(name: string, serviceMs: number, mode = ''): string {
  const worker = path.join(tmp, 'fake-worker.mjs');
  if (!fs.existsSync(worker)) fs.writeFileSync(worker, FAKE_WORKER);
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${worker}" ${serviceMs} ${mode}\n`, { mode: 0o755 });
  return file;
}

const TORCH = (rate: number, duration = '1s') => `
name: stand-in
duration: ${duration}
warmup: 0ms
rounds: 1
tasks:
  - name: a
    priority: 2
    arrival: { kind: fixed-rate, rate: ${rate} }
    torch: { model: tiny-mlp }
  - name: b
    priority: 1
    arrival: { kind: closed-loop, concurrency: 1 }
    torch: { model: tiny-mlp }
`;

describe('torch driver: censoring and lateness (stand-in worker)', () => {
  it('requests still pending after the drain are censored at their age then; the window hands the workers\' pids to the host-load check', async () => {
    // 100 ms per request at 50/s for 1 s: 50 sent, ~30 done by the end of the 2 s drain
    const s = parseScenario(TORCH(50), 'x.yaml');
    s.tasks = [s.tasks[0]];
    const own: number[][] = [];
    const hostLoad: HostLoadFactory = (ctx) => {
      const at = ctx.ownPids();
      return { stop: () => (own.push([...at, ...ctx.ownPids()]), { wallS: 1, cpus: 2, foreignCores: 0, ownCores: 0, stealShare: 0, loadAverage1: 0 }) };
    };
    const r = await runScenario(s, 'x.yaml', { outDir: path.join(tmp, 'torch-censor'), form: 'torch', python: fakePython('py-slow', 100), mechanisms: [], charts: false, hostLoad });
    const a = r.results.phases.find((p) => p.name === 'standalone:a')!;
    expect(a.status).toBe('ok');
    const t = a.tasks[0];
    expect(t.requests.issued).toBe(50);
    expect(t.requests.censored).toBeGreaterThan(0);
    expect(t.requests.completed + t.requests.censored!).toBe(50);
    expect(t.latencyMs.censoredAtOrAbove).toContain('p99');
    // unfinished 2 s after the end: at least 2 s old
    expect(t.latencyMs.p99!).toBeGreaterThanOrEqual(2000);
    expect(t.throughput).toBeLessThanOrEqual(11); // ~10/s done inside the window, not 50
    // the workers were alive at both edges of the window (their CPU time is ours)
    expect(own.length).toBe(2);
    for (const pids of own) expect(pids.length).toBe(2);
  });

  it('a blocked event loop makes the sends late: arrivals-behind with the figures', async () => {
    const s = parseScenario(TORCH(50), 'x.yaml');
    const block = (ms: number): void => {
      const end = Date.now() + ms;
      while (Date.now() < end);
    };
    const r = await runScenario(s, 'x.yaml', {
      outDir: path.join(tmp, 'torch-late'),
      form: 'torch',
      python: fakePython('py-fast', 1),
      mechanisms: [],
      charts: false,
      onEvent: (e: RunEvent) => {
        if (e.type === 'phase-start' && e.phase === 'corun:none') setTimeout(() => block(150), 600);
      },
    });
    const none = r.results.phases.find((p) => p.name === 'corun:none')!;
    const a = none.tasks.find((t) => t.name === 'a')!;
    expect(a.submitLagMs!.max!).toBeGreaterThanOrEqual(100);
    expect(none.tasks.find((t) => t.name === 'b')!.submitLagMs).toBeNull(); // closed loop: no schedule to be late for
    const w = r.results.quality!.warnings.find((x) => x.code === 'arrivals-behind' && x.phase === 'corun:none');
    expect(w).toMatchObject({ task: 'a', round: 1, message: expect.stringMatching(/scheduled requests were sent late: lateness P99 \d+ ms/) });
  });
});

describe('exit code', () => {
  it('gpucolo run exits 1 when no co-run phase produced a result (the standalone ones did)', () => {
    const file = path.join(tmp, 'corun-fails.yaml');
    fs.writeFileSync(file, TORCH(20, '300ms'));
    const out = path.join(tmp, 'corun-fails');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli/cli.js'), 'run', file, '--form', 'torch', '--python', fakePython('py-fail', 1, 'fail-corun'), '--out', out, '--no-charts'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/gpucolo: no co-run phase produced a result \(corun:none: failed — b: ELOAD: stand-in: no co-run\); see /);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { phases: { name: string; status: string }[]; partial: boolean };
    expect(saved.partial).toBe(false);
    expect(saved.phases.map((p) => `${p.name}=${p.status}`)).toEqual(['standalone:a=ok', 'standalone:b=ok', 'corun:none=failed']);
  }, 120_000);
});
