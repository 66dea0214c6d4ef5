/**
 * Scenario files (issue 5): schema and loader errors, arrival processes, the JSON Schema export,
 * and whole runs of the canned scenarios in probe form on the cpu backend (results.json,
 * report.md, charts; a priority mechanism lowering the high-priority P99).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cannedScenarios, loadScenario, parseScenario, runScenario, type Results, type RunEvent } from '../src/scenario/index.js';
import { arrivalTimes } from '../src/scenario/arrivals.js';
import { planRun } from '../src/scenario/runner.js';
import { runProbePhase } from '../src/scenario/probe-driver.js';
import { scenarioSchema } from '../src/scenario/schema.js';
import { listBackends } from '../src/dispatch/index.js';
import { nativeLoaded, ROOT } from './helpers/impls.js';

// the cpu backend's workers run at nice 19 by default: on CI cores shared with other test files
// they would be starved; nice 0 lets them compete fairly (read when the backend's pool starts)
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-scenario-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const CLI = path.join(ROOT, 'dist/cli/cli.js');
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });

const MIN = `
name: mini
duration: 1s
warmup: 200ms
tasks:
  - name: hp
    priority: 2
    arrival: { kind: poisson, rate: 50 }
    slo: { percentile: 99, below: 50ms }
    probe: { kernel: 2ms }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 2 }
    probe: { kernel: 4ms, blocks: fill }
success:
  - { task: hp, metric: p99, below: 30ms }
  - { task: lp, metric: throughputShare, above: 30% }
`;

function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

describe('scenario schema', () => {
  it('parses the canned scenarios, with durations in ns and shares as fractions', () => {
    expect(cannedScenarios()).toEqual(['inference-service', 'multi-tenant', 'realtime-batch']);
    const { scenario, source } = loadScenario('inference-service');
    expect(source).toBe(path.join(ROOT, 'examples/scenarios/inference-service.yaml'));
    expect(scenario.tasks.map((t) => t.name)).toEqual(['resnet18', 'resnet50']);
    expect(scenario.tasks[0].slo).toEqual({ percentile: 99, below: 50e6 });
    expect(scenario.success[0]).toMatchObject({ metric: 'p99', below: 30e6 });
    expect(scenario.success[1]).toMatchObject({ metric: 'throughputShare', above: 0.3 });
    expect(scenario.tasks[1].probe).toMatchObject({ kernel: 5e6, blocks: 'fill', waves: 4, kernels: 1 });
    const rb = loadScenario('realtime-batch').scenario;
    // the design notes' realtime + batch: priorities 3 and 1, "no dropped frame" and "finishes within 3 s" as verdicts of their own
    expect(rb.tasks.map((t) => [t.name, t.priority])).toEqual([['deeplabv3', 3], ['whisper-base', 1]]);
    expect(rb.success[1]).toMatchObject({ task: 'deeplabv3', metric: 'missed', below: 0 });
    expect(rb.success[2]).toMatchObject({ task: 'whisper-base', metric: 'missed', below: 0, label: 'Whisper batch finishes within 3 s' });
  });

  it('gives path-qualified messages for bad scenarios', () => {
    const bad = (text: string): string => {
      try {
        parseScenario(text, 'bad.yaml');
      } catch (err) {
        expect((err as { code: string }).code).toBe('EBADSCENARIO');
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(MIN.replace('rate: 50', 'rate: -5'))).toMatch(/^bad\.yaml: invalid scenario: tasks\.0\.arrival\.rate: /);
    expect(bad(MIN.replace('metric: p99, below: 30ms', 'metric: p99, below: 30ms, task: nobody').replace('{ task: hp, ', '{ '))).toMatch(/success\.0\.task: SLO row names unknown task "nobody"/);
    expect(bad(MIN.replace('kernel: 2ms }', 'kernel: 2ms }\n    torch: { model: resnet9000 }'))).toMatch(/tasks\.0\.torch\.model: unknown model "resnet9000"/);
    expect(bad(MIN.replace('kernel: 2ms', 'kernel: fast'))).toMatch(/tasks\.0\.probe\.kernel: not a duration: "fast"/);
    expect(bad(MIN.replace('name: lp', 'name: hp'))).toMatch(/tasks\.1\.name: duplicate task name "hp"/);
    expect(bad(MIN.replace('    probe: { kernel: 2ms }\n', ''))).toMatch(/tasks\.0: a task needs a workload/);
    expect(bad(MIN.replace('slo: { percentile: 99, below: 50ms }', 'slo: { maxMissRatio: 0 }'))).toMatch(/tasks\.0\.slo\.maxMissRatio: deadline misses need frames or batch arrivals/);
    expect(bad(MIN.replace('above: 30%', 'above: 130%'))).toMatch(/success\.1\.above: not a share/);
    expect(bad(MIN.replace('mechanisms', 'x') + 'mechanisms: [magic]\n')).toMatch(/mechanisms\.0: /);
    expect(bad('name: [unclosed')).toMatch(/^bad\.yaml: not valid YAML at line 1/);
    expect(bad('- a list')).toMatch(/a scenario is a mapping/);
    expect(() => parseScenario('{"name": "x",', 'x.json')).toThrow(/^x\.json: not valid JSON/);
    expect(() => loadScenario('no-such-scenario')).toThrow(/no scenario file or canned scenario named "no-such-scenario" \(canned: inference-service, multi-tenant, realtime-batch\)/);
    expect(() => loadScenario(tmp)).toThrow(/a directory, not a scenario file/);
  });

  it('JSON Schema in schema/ is what the zod schema gives now', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/schemas.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const js = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/scenario.schema.json'), 'utf8'));
    expect(js.properties.tasks.type).toBe('array');
    expect(js.required).toEqual(expect.arrayContaining(['name', 'tasks']));
  });

  it('forms: asking for a form some task lacks is an error before anything runs', () => {
    const s = scenarioSchema.parse({ name: 'x', tasks: [{ name: 'a', priority: 1, arrival: { kind: 'closed-loop' }, probe: { kernel: 1 } }] });
    expect(() => planRun(s, { form: 'torch' })).toThrow(/--form torch, but task\(s\) a have no torch workload/);
    expect(planRun(s, { form: 'auto', backend: 'cpu' })).toMatchObject({ form: 'probe', backend: 'cpu' });
  });
});

describe('arrivals', () => {
  it('fixed rate, frames and batch are periodic within the span', () => {
    expect(Array.from(arrivalTimes({ kind: 'fixed-rate', rate: 10 }, 1e9)!)).toEqual([0, 1e8, 2e8, 3e8, 4e8, 5e8, 6e8, 7e8, 8e8, 9e8]);
    expect(arrivalTimes({ kind: 'frames', fps: 30 }, 1e9)!.length).toBe(30);
    expect(Array.from(arrivalTimes({ kind: 'batch', period: 3e9 }, 7e9)!)).toEqual([0, 3e9, 6e9]);
    expect(arrivalTimes({ kind: 'closed-loop', concurrency: 1 }, 1e9)).toBeNull();
    expect(Array.from(arrivalTimes({ kind: 'replay', times: [5, 1, 3e9] }, 1e9)!)).toEqual([1, 5]);
  });

  it('poisson is seeded, has the asked rate and exponential gaps', () => {
    const a = arrivalTimes({ kind: 'poisson', rate: 1000, seed: 3 }, 20e9)!;
    const b = arrivalTimes({ kind: 'poisson', rate: 1000, seed: 3 }, 20e9)!;
    const c = arrivalTimes({ kind: 'poisson', rate: 1000, seed: 4 }, 20e9)!;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a.slice(0, 10))).not.toEqual(Array.from(c.slice(0, 10)));
    expect(a.length).toBeGreaterThan(19_000);
    expect(a.length).toBeLessThan(21_000);
    const gaps = Array.from(a.slice(1), (t, i) => t - a[i]);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    const cv = Math.sqrt(gaps.reduce((x, g) => x + (g - mean) ** 2, 0) / gaps.length) / mean;
    expect(cv).toBeGreaterThan(0.9); // exponential: coefficient of variation 1
    expect(cv).toBeLessThan(1.1);
  });

  it('refuses absurd schedules', () => {
    expect(() => arrivalTimes({ kind: 'fixed-rate', rate: 1e6 }, 3600e9)).toThrow(/more than 5000000 arrivals/);
  });
});

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn('torch form tests skipped: /usr/bin/python3 cannot import torch and torchvision (apt-get install python3-torch python3-torchvision)');

describe.skipIf(!hasTorch)('runs in torch form on the cpu (Debian PyTorch)', () => {
  it('inference-service, short: real ResNet-18 and ResNet-50 workers, the gate pauses ResNet-50 between layers', async () => {
    const { scenario, source } = loadScenario('inference-service');
    const out = path.join(tmp, 'torch-inference');
    const r = await runScenario(scenario, source, { rounds: 1, outDir: out, form: 'torch', durationNs: 3e9, warmupNs: 1e9, mechanisms: ['stream-priority', 'gate'], charts: true });
    const res = r.results;
    expect(res.scenario.form).toBe('torch');
    expect(res.backend.device).toBe('cpu');
    expect(res.phases.map((p) => p.name)).toEqual(['standalone:resnet18', 'standalone:resnet50', 'corun:none', 'corun:stream-priority', 'corun:gate']);
    expect(res.phases[0].status).toBe('ok');
    expect(res.phases[3].status).toBe('skipped');
    expect(res.phases[3].reason).toMatch(/stream priorities need a GPU/);
    // ResNet-50 batch 8 on one thread of a busy 2-core host may finish no request issued inside a
    // 3 s window (4 queued ahead of it): such a run is partial with that reason, never "ok" with
    // no completions (issue #15); otherwise it is ok
    for (const p of [res.phases[1], res.phases[2], res.phases[4]]) {
      if (p.status === 'partial') expect(p.reason).toMatch(/^resnet50: no request completed \((\d+ issued, \d+ still unfinished at the end and censored|none was issued in the measured window)/);
      else expect(p.status).toBe('ok');
      const completed = p.tasks.find((t) => t.name === 'resnet50')!.requests.completed;
      if (p.status === 'partial') expect(completed).toBe(0);
      else expect(completed).toBeGreaterThan(0);
    }
    const hp = (phase: string) => res.phases.find((p) => p.name === phase)!.tasks.find((t) => t.name === 'resnet18')!;
    expect(hp('corun:none').latencyMs.n).toBeGreaterThan(10);
    // the gate really held ResNet-50 between layers while ResNet-18 requests were in flight (whether
    // that lowers ResNet-18's latency on 2 shared CI cores is timing; the probe-form test checks a mechanism's effect)
    expect(hp('corun:gate').latencyMs.n).toBeGreaterThan(10);
    const gated = /resnet50: gated (\d+) times/.exec(res.phases[4].notes.join('\n'));
    expect(gated, res.phases[4].notes.join('\n')).not.toBeNull();
    expect(Number(gated![1])).toBeGreaterThan(0);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/torch/);
  }, 240_000);
});

describe.skipIf(!nativeLoaded)('runs in probe form on the cpu backend', () => {
  it('mini: every phase, results.json, report.md and charts; verdicts carry numbers', async () => {
    const f = write('mini.yaml', MIN);
    const { scenario, source } = loadScenario(f);
    const out = path.join(tmp, 'mini-run');
    const events: string[] = [];
    const r = await runScenario(scenario, source, { rounds: 1, outDir: out, form: 'probe', backend: 'cpu', mechanisms: ['throttle', 'gate'], onEvent: (e) => events.push(e.type) });
    const res = r.results;
    expect(res.partial).toBe(false);
    expect(res.phases.map((p) => `${p.name}=${p.status}`)).toEqual(['standalone:hp=ok', 'standalone:lp=ok', 'corun:none=ok', 'corun:throttle=ok', 'corun:gate=skipped']);
    expect(res.phases[4].reason).toMatch(/gate .* applies to the torch form/);
    const none = res.phases[2];
    const hp = none.tasks.find((t) => t.name === 'hp')!;
    expect(hp.latencyMs.n).toBeGreaterThan(20);
    expect(hp.latencyMs.p99).toBeGreaterThanOrEqual(2);
    expect(hp.throughputShare).not.toBeNull();
    expect(hp.slo[0].text).toMatch(/P99 < 50 ms/);
    expect(none.utilisation.source).toBe('busy-time');
    expect(none.fairness).not.toBeNull();
    expect(res.success).toHaveLength(2);
    expect(res.success[0].phases.map((p) => p.phase)).toEqual(['corun:none', 'corun:throttle']);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    expect(saved.schema).toBe('gpucolo.results/1');
    expect(saved.phases).toHaveLength(5);
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/corun:throttle/);
    const charts = fs.readdirSync(path.join(out, 'charts'));
    expect(charts.filter((c) => c.endsWith('.svg')).length).toBeGreaterThanOrEqual(3);
    expect(charts.filter((c) => c.endsWith('.png')).length).toBeGreaterThanOrEqual(3);
    expect(events[0]).toBe('start');
    expect(events.at(-1)).toBe('report');
  });

  it.each(['inference-service', 'multi-tenant', 'realtime-batch'])('canned %s runs end to end with charts', async (name) => {
    const { scenario, source } = loadScenario(name);
    const out = path.join(tmp, `canned-${name}`);
    const r = await runScenario(scenario, source, { rounds: 1, outDir: out, form: 'probe', backend: 'cpu', durationNs: 3.2e9, warmupNs: 0 });
    const res = r.results;
    expect(res.partial).toBe(false);
    expect(res.phases.filter((p) => p.status === 'failed').map((p) => `${p.name}: ${p.reason}`)).toEqual([]);
    expect(res.phases.find((p) => p.name === 'corun:gate')?.status).toBe('skipped');
    for (const p of res.phases.filter((x) => x.status === 'ok')) for (const t of p.tasks) expect(t.requests.completed, `${p.name} ${t.name}`).toBeGreaterThan(0);
    expect(res.success.length).toBeGreaterThan(0);
    const charts = fs.readdirSync(path.join(out, 'charts'));
    for (const t of scenario.tasks) expect(charts).toContain(`latency-cdf-${t.name}.svg`);
    expect(charts).toContain('p99-by-mechanism.png');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/charts\/p99-by-mechanism\.svg/);
    // the design notes' reference columns and the preemption-latency row
    expect(md).toContain('| row | standalone (baseline) | native (corun:none) | best phase | value | verdict | per phase |');
    for (const v of res.success) expect(v.reference?.native?.phase).toBe('corun:none');
    const top = Math.max(...scenario.tasks.map((t) => t.priority));
    expect(res.preemption?.hpTask).toBe(scenario.tasks.find((t) => t.priority === top)!.name);
    expect(res.preemption?.phases.map((p) => p.phase)).toEqual(res.phases.filter((p) => p.kind === 'corun' && (p.status === 'ok' || p.status === 'partial')).map((p) => p.name));
    expect(md).toMatch(new RegExp(`\\| ${res.preemption!.hpTask} waits behind LP work \\(P99 added vs standalone`));
    if (name === 'realtime-batch') {
      const rows = res.success.map((v) => v.row);
      expect(rows).toContain('Whisper batch finishes within 3 s');
      const dropped = res.success.find((v) => v.row.startsWith('no dropped frame'))!;
      for (const p of dropped.phases) if (p.value !== null) expect(p.detail).toMatch(/\d+ of \d+ missed the 40 ms deadline/);
    }
  }, 120_000);

  it('inference-service: throttle and stream priority lower the high-priority P99 against none', { timeout: 120_000 }, async () => {
    const { scenario, source } = loadScenario('inference-service');
    // timing on shared CI cores: other test files load the CPU too, so an attempt whose numbers do
    // not show the effect is repeated (three attempts in all, like the C++ priority test)
    const misses: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const out = path.join(tmp, `inference-${attempt}`);
      const r = await runScenario(scenario, source, { rounds: 1, outDir: out, form: 'probe', backend: 'cpu', durationNs: 3e9, warmupNs: 0.5e9, mechanisms: ['stream-priority', 'throttle'], charts: false });
      const p99 = (phase: string): number => r.results.phases.find((p) => p.name === phase)!.tasks.find((t) => t.name === 'resnet18')!.latencyMs.p99!;
      const none = p99('corun:none');
      // priority dispatches HP blocks before the LP kernel's remaining waves; throttle still lets HP
      // wait behind the one LP kernel in flight (its bound), so it helps less
      const sp = p99('corun:stream-priority');
      const th = p99('corun:throttle');
      if (sp < none * 0.8 && th < none) return;
      misses.push(`attempt ${attempt}: none ${none.toFixed(1)} ms, stream-priority ${sp.toFixed(1)} ms, throttle ${th.toFixed(1)} ms`);
    }
    expect.fail(`HP P99 not lowered: ${misses.join('; ')}`);
  });

  it('stream-priority spreads three scenario priorities over the backend range', async () => {
    const { scenario } = loadScenario('multi-tenant');
    const r = await runProbePhase({ tasks: scenario.tasks.map((task) => ({ task, workload: task.probe! })), backend: 'cpu', mechanism: 'stream-priority', reserve: 0.5, throttleK: 1, durationNs: 300e6, warmupNs: 0 });
    expect(r.status).toBe('ok');
    expect(r.notes).toContain('stream priorities on cpu (range 0 (least) .. 15 (greatest)): vit_b_16 15, mobilenet_v2 8, resnet50 0');
    const t = await runProbePhase({ tasks: scenario.tasks.map((task) => ({ task, workload: task.probe! })), backend: 'cpu', mechanism: 'throttle', reserve: 0.5, throttleK: 1, durationNs: 200e6, warmupNs: 0 });
    expect(t.notes[0]).toMatch(/^throttle has two sides: priority 3 is the high-priority side, priorities 2, 1 the low-priority side together/);
  });

  it('utilisation comes from NVML where it sees a GPU (fake libnvidia-ml), busy time kept beside it', async (ctx) => {
    const fake = [path.join(ROOT, 'build/Release/libgpucolo_fake_nvml.so'), path.join(ROOT, 'build-cc/libgpucolo_fake_nvml.so')].find((f) => fs.existsSync(f));
    if (!fake) return ctx.skip('fake NVML not built (cmake --build build-cc)');
    vi.stubEnv('GPUCOLO_NVML_LIB', fake);
    try {
      const { scenario, source } = loadScenario(write('mini5.yaml', MIN));
      const r = await runScenario(scenario, source, { rounds: 1, outDir: path.join(tmp, 'nvml'), form: 'probe', backend: 'cpu', durationNs: 600e6, warmupNs: 100e6, mechanisms: [], charts: false });
      const u = r.results.phases.find((p) => p.name === 'corun:none')!.utilisation;
      expect(u.source).toBe('nvml');
      expect(u.value).toBeCloseTo(0.37, 5); // the fake reports 37 %
      expect(u.busyTime).toBeGreaterThan(0);
      expect(u.reason).toMatch(/^nvml device .*: mean of \d+ samples/);
    } finally {
      vi.unstubAllEnvs();
    }
    // without it: busy time, and the reason says what the device counters lacked
    const { scenario, source } = loadScenario(write('mini6.yaml', MIN));
    const r = await runScenario(scenario, source, { rounds: 1, outDir: path.join(tmp, 'no-nvml'), form: 'probe', backend: 'cpu', durationNs: 400e6, warmupNs: 100e6, mechanisms: [], charts: false });
    const u = r.results.phases.find((p) => p.name === 'corun:none')!.utilisation;
    expect(u.source).toBe('busy-time');
    expect(u.reason).toMatch(/device counters: nvml: /);
  });

  it('an interrupted run leaves partial results that say so', async () => {
    const f = write('mini2.yaml', MIN);
    const { scenario, source } = loadScenario(f);
    const out = path.join(tmp, 'partial');
    const ctl = new AbortController();
    const r = await runScenario(scenario, source, {
      rounds: 1,
      outDir: out,
      form: 'probe',
      backend: 'cpu',
      mechanisms: ['throttle'],
      signal: ctl.signal,
      onEvent: (e) => {
        if (e.type === 'phase-start' && e.phase === 'corun:none') setTimeout(() => ctl.abort(), 300);
      },
    });
    expect(r.results.partial).toBe(true);
    expect(r.results.phases.map((p) => p.name)).toEqual(['standalone:hp', 'standalone:lp', 'corun:none']);
    expect(r.results.phases[2].status).toBe('partial');
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    expect(saved.partial).toBe(true);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/PARTIAL/i);
  });

  it('CLI: Ctrl-C stops the run, writes partial results and exits 130', async () => {
    const f = write('mini4.yaml', MIN);
    const out = path.join(tmp, 'cli-int');
    const child = spawn(process.execPath, [CLI, 'run', f, '--out', out, '--backend', 'cpu', '--no-charts'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => {
      const wait = setInterval(() => {
        if (stdout.includes('gpucolo run mini:')) { // the first line: the run has started
          clearInterval(wait);
          setTimeout(() => {
            child.kill('SIGINT');
            resolve();
          }, 1500);
        }
      }, 50);
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted: stopping workers, writing partial results/);
    expect(stderr).toMatch(/gpucolo: interrupted: partial results in /);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    expect(saved.partial).toBe(true);
    expect(saved.phases.length).toBeLessThan(5);
    expect(saved.phases.at(-1)!.status).toBe('partial');
    expect(fs.existsSync(path.join(out, 'report.md'))).toBe(true);
  });

  it('CLI: run writes the report and says which form and backend ran; bad scenarios exit 2 before anything starts', () => {
    const f = write('mini3.yaml', MIN);
    const out = path.join(tmp, 'cli-run');
    const r = cli(['run', f, '--out', out, '--backend', 'cpu', '--mechanism', 'throttle', '--duration', '600ms', '--warmup', '100ms', '--rounds', '1', '--no-charts']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^gpucolo run mini: probe form, cpu backend; 4 phases\n/); // the short first line (src/cli/run.ts startText)
    expect(r.stdout).toMatch(/success table:/);
    expect(r.stdout).toMatch(new RegExp(`wrote ${out.replace(/[/.]/g, '\\$&')}/results\\.json`));
    expect(fs.existsSync(path.join(out, 'charts'))).toBe(false);
    const bad = cli(['run', write('bad.yaml', MIN.replace('rate: 50', 'rate: -1')), '--out', path.join(tmp, 'never')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/tasks\.0\.arrival\.rate/);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
    expect(cli(['run', 'nope']).status).toBe(2);
    // a phase longer than one dispatch run may take is refused before anything is written: the earlier run stays
    const before = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
    const huge = cli(['run', f, '--out', out, '--backend', 'cpu', '--duration', '99999h', '--no-charts']);
    expect(huge.status, huge.stderr).toBe(2);
    expect(huge.stderr.trim()).toBe('gpucolo: --warmup + --duration: a phase lasts at most 1 h (warm-up + measured time), got 5999940.0 min');
    expect(huge.stdout).toBe('');
    expect(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).toBe(before);
  });
});

describe('probe form on the pure-TS engine (no native core needed)', () => {
  // in-process the native core may be loaded: GPUCOLO_DISPATCH_ENGINE=ts asks for the TS engine
  // as GPUCOLO_NATIVE=0 would make it the only one (the CLI test below does that)
  it('runs, and results.json, report.md and the start event say which engine timed it', async () => {
    vi.stubEnv('GPUCOLO_DISPATCH_ENGINE', 'ts');
    try {
      const { scenario, source } = loadScenario(write('ts-mini.yaml', MIN));
      const out = path.join(tmp, 'ts-engine');
      const events: RunEvent[] = [];
      const r = await runScenario(scenario, source, { rounds: 1, outDir: out, form: 'probe', backend: 'cpu', durationNs: 300e6, warmupNs: 100e6, mechanisms: ['throttle'], charts: false, onEvent: (e) => events.push(e) });
      expect(events[0]).toMatchObject({ type: 'start', engine: 'ts', engineWhy: 'GPUCOLO_DISPATCH_ENGINE=ts' });
      expect(r.results.partial).toBe(false);
      expect(r.results.phases.map((p) => `${p.name}=${p.status}`)).toEqual(['standalone:hp=ok', 'standalone:lp=ok', 'corun:none=ok', 'corun:throttle=ok']);
      for (const p of r.results.phases) for (const t of p.tasks) expect(t.requests.completed, `${p.name} ${t.name}`).toBeGreaterThan(0);
      const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
      expect(saved.backend).toMatchObject({ name: 'cpu', engine: 'ts', engineWhy: 'GPUCOLO_DISPATCH_ENGINE=ts', note: expect.stringMatching(/^timings from the pure-TS cpu backend \(worker_threads, unpinned, JS timers\)/) });
      expect(saved.backend.device).toMatch(/^cpu:0 \(gpucolo pure-TS cpu backend \(\d+ worker_threads, unpinned\), \d+ compute units\)$/);
      expect(saved.phases[0].tasks[0].workload).toMatch(/ on cpu \(pure-TS engine\)$/);
      const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
      expect(md).toMatch(/Dispatch engine: \*\*pure-TS\*\* \(GPUCOLO_DISPATCH_ENGINE=ts\)/);
      expect(md).toMatch(/> \*\*Pure-TS engine\*\*: timings from the pure-TS cpu backend/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('CLI with GPUCOLO_NATIVE=0: the run completes on the pure-TS engine', () => {
    const out = path.join(tmp, 'cli-ts');
    const r = cli(['run', write('ts-cli.yaml', MIN), '--out', out, '--backend', 'cpu', '--duration', '300ms', '--warmup', '100ms', '--mechanism', 'throttle', '--rounds', '1', '--no-charts'], { GPUCOLO_NATIVE: '0' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    expect(saved.backend.engine).toBe('ts');
    expect(saved.backend.engineWhy).toBe('native core not loaded: GPUCOLO_NATIVE=0');
    expect(saved.phases.every((p) => p.status === 'ok')).toBe(true);
  });

  it('a run that fails before its first phase leaves no empty directory', async (ctx) => {
    const gone = listBackends().find((b) => b.name !== 'cpu' && !b.available);
    if (!gone) return ctx.skip('every GPU backend is available here: no backend to fail on');
    const { scenario, source } = loadScenario(write('nobackend.yaml', MIN));
    const parent = path.join(tmp, 'never-created');
    const out = path.join(parent, 'a', 'b');
    await expect(runScenario(scenario, source, { outDir: out, form: 'probe', backend: gone.name, durationNs: 100e6, warmupNs: 0, charts: false })).rejects.toMatchObject({
      code: 'ENOBACKEND',
      message: expect.stringMatching(new RegExp(`^backend ${gone.name} unavailable: `)),
    });
    expect(fs.existsSync(parent)).toBe(false);
    // an existing directory stays, untouched
    fs.mkdirSync(out, { recursive: true });
    await expect(runScenario(scenario, source, { outDir: out, form: 'probe', backend: gone.name, durationNs: 100e6, warmupNs: 0, charts: false })).rejects.toMatchObject({ code: 'ENOBACKEND' });
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
