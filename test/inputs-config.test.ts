/**
 * Issue 17 item 8: config files (scenario, experiment, models, pipeline). A YAML alias bomb, a
 * directory or a symlink loop is one error naming the file (exit 2 on the command line); and a
 * scenario that passes its schema is one the dispatch engine runs: both schemas take their bounds
 * from src/limits.ts, so a 61 s probe kernel is refused when the file is loaded instead of failing
 * every phase at dispatch after the run started writing results.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_YAML_ALIASES, parseConfigText } from '../src/config-text.js';
import { dispatchSpecSchema } from '../src/dispatch/run.js';
import { MAX_DISPATCH_SPAN_NS, MAX_KERNEL_NS, MAX_REQUEST_NS } from '../src/limits.js';
import { loadExperiment, loadModels } from '../src/runners/experiment/config.js';
import { loadPipeline } from '../src/runners/staged/schema.js';
import { loadScenario, parseScenario } from '../src/scenario/load.js';
import { scenarioSchema, type Scenario } from '../src/scenario/schema.js';
import { HANG_MS } from './helpers/load.js';
import { ROOT } from './helpers/impls.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-config-'));
  dirs.push(d);
  return d;
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/cli.ts'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: HANG_MS });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('did not throw');
}

/** "Billion laughs": nine levels, each nine aliases of the one before (9^9 strings if expanded). */
function aliasBomb(top: string): string {
  const lines = ['lol0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i <= 9; i++) lines.push(`lol${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(',')}]`);
  return `${top}\n${lines.join('\n')}\n`;
}

describe('alias bombs, directories and symlink loops', () => {
  const d = tmp();
  const bombs = {
    scenario: path.join(d, 'scenario.yaml'),
    experiment: path.join(d, 'experiment.yaml'),
    models: path.join(d, 'models.yaml'),
    pipeline: path.join(d, 'pipeline.yaml'),
  };
  fs.writeFileSync(bombs.scenario, aliasBomb('name: bomb'));
  fs.writeFileSync(bombs.experiment, aliasBomb('experiment_name: bomb'));
  fs.writeFileSync(bombs.models, aliasBomb('# models'));
  fs.writeFileSync(bombs.pipeline, aliasBomb('name: bomb'));
  const loop = path.join(d, 'loop.yaml');
  fs.symlinkSync('loop2.yaml', loop);
  fs.symlinkSync('loop.yaml', path.join(d, 'loop2.yaml'));
  const sub = path.join(d, 'sub.yaml');
  fs.mkdirSync(sub);
  const loaders = { scenario: loadScenario, experiment: loadExperiment, models: loadModels, pipeline: loadPipeline } as const;

  it('an alias bomb is refused (not expanded) by every loader, naming the file; the bad-config code', () => {
    const codes = { scenario: 'EBADSCENARIO', experiment: 'EBADCONFIG', models: 'EBADCONFIG', pipeline: 'EBADCONFIG' };
    for (const [k, load] of Object.entries(loaders) as [keyof typeof loaders, (f: string) => unknown][]) {
      const err = thrown(() => load(bombs[k]));
      expect(err.code, k).toBe(codes[k]);
      expect(err.message, k).toBe(`${bombs[k]}: YAML aliases expand to too much data (more than ${MAX_YAML_ALIASES} alias expansions): refused as a possible "billion laughs" file`);
    }
  });

  it('ordinary aliases still work', () => {
    expect(parseConfigText('a: &x [1, 2]\nb: *x\nc: *x\n', 'f.yaml', { code: 'E', shape: 's' })).toEqual({ a: [1, 2], b: [1, 2], c: [1, 2] });
  });

  it('a directory or a symlink loop is an error naming the file, never "no scenario named"', () => {
    for (const load of Object.values(loaders) as ((f: string) => unknown)[]) {
      const e1 = thrown(() => load(sub));
      expect(e1.code).toBe('EISDIR');
      expect(e1.message).toMatch(new RegExp(`^cannot read .* ${sub}: EISDIR \\(a directory, not an? .*\\)$`));
      const e2 = thrown(() => load(loop));
      expect(e2.code).toBe('ELOOP');
      expect(e2.message).toContain(loop);
      expect(e2.message).not.toMatch(/no scenario file or canned scenario/);
    }
  });

  it('on the command line: exit 2 with one line naming the file, nothing written', () => {
    const out = path.join(d, 'out');
    for (const f of [bombs.scenario, sub, loop]) {
      const r = cli(['run', f, '--out', out]);
      expect(r.signal).toBeNull();
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(f);
    }
    for (const f of [bombs.experiment, sub, loop]) {
      const r = cli(['experiment', f, '--results', out, '--dry-run']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(f);
    }
    for (const f of [bombs.pipeline, sub, loop]) {
      const r = cli(['staged', 'plan', f]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(f);
    }
    expect(fs.existsSync(out)).toBe(false);
  });
});

/** A one-task probe scenario with the given probe fields and top-level fields. */
function scenario(probe: Record<string, unknown>, top: Record<string, unknown> = {}, arrival: Record<string, unknown> = { kind: 'closed-loop' }): unknown {
  return { name: 's', backend: 'cpu', duration: '1s', warmup: 0, ...top, tasks: [{ name: 'a', priority: 1, arrival, probe }] };
}

/** The dispatch spec a probe phase builds from a scenario (as src/scenario/probe-driver.ts does). */
function dispatchSpec(s: Scenario): unknown {
  return {
    backend: 'cpu',
    durationNs: s.warmup + s.duration,
    warmupNs: s.warmup,
    mechanism: 'throttle',
    throttleK: s.throttleK,
    watchdogNs: Math.max(10e9, ...s.tasks.map((t) => t.probe!.kernel * 20)),
    streams: s.tasks.map((t) => ({
      name: t.name,
      highPriority: true,
      kernel: { spinNs: t.probe!.kernel, blocks: t.probe!.blocks === 'fill' ? 304 * t.probe!.waves : t.probe!.blocks, threadsPerBlock: t.probe!.threadsPerBlock },
      arrival: 'closed-loop',
      inflight: t.arrival.kind === 'closed-loop' ? t.arrival.concurrency : 1,
    })),
  };
}

describe('what passes the scenario schema, the dispatch engine runs', () => {
  it('a 61 s probe kernel is refused when the scenario is loaded; 60 s passes both schemas', () => {
    const e = thrown(() => parseScenario(JSON.stringify(scenario({ kernel: '61s' })), 's.json'));
    expect(e.code).toBe('EBADSCENARIO');
    expect(e.message).toBe("s.json: invalid scenario: tasks.0.probe.kernel: a probe kernel is at most 60s (the dispatch engine's longest kernel)");
    // a bare number is milliseconds
    expect(scenarioSchema.safeParse(scenario({ kernel: 61_000 })).success).toBe(false);
    const ok = scenarioSchema.parse(scenario({ kernel: '60s' }));
    expect(ok.tasks[0].probe!.kernel).toBe(MAX_KERNEL_NS);
    expect(dispatchSpecSchema.safeParse(dispatchSpec(ok)).success).toBe(true);
    // and the engine's own bound is the same constant: one nanosecond more is refused there too
    const over = dispatchSpec(ok) as { streams: { kernel: { spinNs: number } }[] };
    over.streams[0].kernel.spinNs = MAX_KERNEL_NS + 1;
    expect(dispatchSpecSchema.safeParse(over).success).toBe(false);
  });

  it('a phase longer than the engine runs, or a request longer than a phase, is refused', () => {
    const long = scenarioSchema.safeParse(scenario({ kernel: '1ms' }, { duration: '1h', warmup: '1s' }));
    expect(long.success).toBe(false);
    expect(long.error!.issues[0]).toMatchObject({ path: ['duration'], message: 'warmup + duration is 3601s, more than 1h, the longest phase' });
    expect(scenarioSchema.safeParse(scenario({ kernel: '1ms' }, { duration: MAX_DISPATCH_SPAN_NS / 1e6, warmup: 0 })).success).toBe(true);
    const req = scenarioSchema.safeParse(scenario({ kernel: '60s', kernels: 61 }));
    expect(req.success).toBe(false);
    expect(req.error!.issues[0].message).toMatch(/^one request is 3660s of device time \(kernel x kernels\), more than 1h, the longest phase$/);
    expect(scenarioSchema.safeParse(scenario({ kernel: '60s', kernels: MAX_REQUEST_NS / MAX_KERNEL_NS })).success).toBe(true);
  });

  it('property: every probe scenario the schema accepts gives a dispatch spec the engine accepts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.record({
          kernelMs: fc.integer({ min: 1, max: 70_000_000 }).map((us) => us / 1000),
          kernels: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1000 })),
          blocks: fc.oneof(fc.integer({ min: 0, max: (1 << 20) + 2 }), fc.constant('fill' as const)),
          waves: fc.integer({ min: 1, max: 1024 }),
          threadsPerBlock: fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 0, max: 2048 })),
          durationMs: fc.oneof(fc.integer({ min: 1, max: 3_600_000 }), fc.integer({ min: 0, max: 4_000_000 })),
          warmupMs: fc.integer({ min: 0, max: 100_000 }),
          concurrency: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 2000 })),
          throttleK: fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 0, max: 2000 })),
        }),
        (v) => {
          const input = scenario(
            { kernel: v.kernelMs, kernels: v.kernels, blocks: v.blocks, ...(v.blocks === 'fill' ? { waves: v.waves } : {}), threadsPerBlock: v.threadsPerBlock },
            { duration: v.durationMs, warmup: v.warmupMs, throttleK: v.throttleK },
            { kind: 'closed-loop', concurrency: v.concurrency },
          );
          const s = scenarioSchema.safeParse(input);
          if (!s.success) return;
          accepted++;
          const spec = dispatchSpecSchema.safeParse(dispatchSpec(s.data));
          expect(spec.success, JSON.stringify(spec.error?.issues)).toBe(true);
        },
      ),
      { numRuns: 500, seed: 17 },
    );
    // the property was exercised, not vacuous
    expect(accepted).toBeGreaterThan(50);
  });

  it('the CLI refuses the 61 s kernel before anything runs: exit 2, no output directory', () => {
    const d = tmp();
    const f = path.join(d, 'k61.yaml');
    fs.writeFileSync(f, 'name: k61\nbackend: cpu\nduration: 1s\nwarmup: 0\ntasks:\n  - name: a\n    priority: 1\n    arrival: { kind: closed-loop }\n    probe: { kernel: 61s }\n');
    const out = path.join(d, 'out');
    const r = cli(['run', f, '--out', out]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe(`gpucolo: ${f}: invalid scenario: tasks.0.probe.kernel: a probe kernel is at most 60s (the dispatch engine's longest kernel)\n`);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('command-line overrides meet the same limits: run --duration past 1 h, probe kernels past 60 s are exit 2', () => {
    const out = path.join(tmp(), 'out');
    const r = cli(['run', 'inference-service', '--duration', '2h', '--out', out]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--warmup \+ --duration: a phase lasts at most 1 h/);
    expect(fs.existsSync(out)).toBe(false);
    const k = cli(['probe', 'latency', '--backend', 'cpu', '--kernel', '61s']);
    expect(k.code, k.stderr).toBe(2);
    expect(k.stderr).toMatch(/--kernel.*at most 1m|--kernel.*at most 60/);
    const lp = cli(['probe', 'priority', '--backend', 'cpu', '--lp-kernel', '2min']);
    expect(lp.code, lp.stderr).toBe(2);
  });
});
