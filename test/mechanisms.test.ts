/**
 * The mechanism registry (src/mechanisms.ts, issue 20): every list of mechanism names derives from
 * it, its engine ids are the C++ engine's (native/dispatch/engine.h, read as text: no addon
 * needed), and what it says each form/backend runs agrees with the skip logic that decides it
 * before anything starts (probe form: probeMechanismProblem with each backend's device flags;
 * torch form: runTorchPhase's checks that need no worker). No GPU, no worker process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  BACKENDS,
  ENGINE_MECHANISMS,
  GPU_CHECK_EXPECTATION,
  GPU_CHECK_EXPECTATIONS,
  GPU_CHECK_MECHANISMS,
  MECHANISM_KNOBS,
  MECHANISM_REGISTRY,
  MECHANISMS,
  isEngineMechanism,
  mechanismInfo,
  mechanismSupports,
  mechanismsOfForm,
  type Backend,
} from '../src/mechanisms.js';
import { MECHANISMS as SCENARIO_MECHANISMS, parseScenario } from '../src/scenario/index.js';
import { probeMechanismProblem } from '../src/scenario/probe-driver.js';
import { scenarioSchema, taskSchema, type Task } from '../src/scenario/schema.js';
import { runTorchPhase, SM_PARTITION_REASON, STREAM_PRIORITY_CPU_REASON, THROTTLE_REASON } from '../src/scenario/torch-driver.js';
import { dispatchSpecSchema } from '../src/dispatch/run.js';
import { tsCpuBackendInfo } from '../src/dispatch/ts-engine/index.js';
import { TUNABLE, knobProblem } from '../src/tune/index.js';
import { runCommand } from '../src/cli/run.js';
import { probeCommand } from '../src/cli/probe.js';
import { tuneCommand } from '../src/cli/tune.js';
import type { NativeBackendDevice } from '../src/native.js';
import { ROOT } from './helpers/impls.js';

const NAMES = MECHANISM_REGISTRY.map((m) => m.name);

const MIN = `
name: mini
duration: 1s
warmup: 200ms
tasks:
  - name: hp
    priority: 2
    arrival: { kind: poisson, rate: 50 }
    probe: { kernel: 2ms }
    torch: { model: tiny-mlp, device: cpu }
  - name: lp
    priority: 1
    arrival: { kind: closed-loop, concurrency: 2 }
    probe: { kernel: 4ms }
    torch: { model: tiny-mlp, device: cpu }
`;

function option(cmd: Command, long: string): Option {
  const o = cmd.options.find((x) => x.long === long);
  if (!o) throw new Error(`${cmd.name()}: no ${long}`);
  return o;
}
const parse = (o: Option, v: string): unknown => (o as unknown as { parseArg: (v: string, prev: unknown) => unknown }).parseArg(v, undefined);

describe('the registry', () => {
  it('names are unique, every entry is complete, the engine ones come first in id order', () => {
    expect(new Set(NAMES).size).toBe(NAMES.length);
    expect(NAMES).toEqual([...MECHANISMS]);
    for (const m of MECHANISM_REGISTRY) {
      expect(m.description.length, m.name).toBeGreaterThan(10);
      expect(m.description, m.name).not.toMatch(/\n/);
      for (const form of ['probe', 'torch'] as const) for (const b of m.support[form]) expect(BACKENDS).toContain(b);
      expect(m.support.probe.length + m.support.torch.length, `${m.name} runs somewhere`).toBeGreaterThan(0);
    }
    const ids = MECHANISM_REGISTRY.filter((m) => m.engineId !== null).map((m) => m.engineId);
    expect(ids).toEqual(ids.map((_, i) => i));
    expect([...ENGINE_MECHANISMS]).toEqual(MECHANISM_REGISTRY.filter((m) => m.engineId !== null).map((m) => m.name));
    // the engine runs the probe form, and only it
    for (const m of MECHANISM_REGISTRY) expect(m.engineId !== null, m.name).toBe(m.support.probe.length > 0);
    expect(mechanismsOfForm('probe')).toEqual([...ENGINE_MECHANISMS]);
  });

  it('lookups', () => {
    expect(mechanismInfo('throttle')?.knob).toBe('throttleK');
    expect(mechanismInfo('magic')).toBeUndefined();
    expect(isEngineMechanism('cu-mask')).toBe(true);
    expect(isEngineMechanism('gate')).toBe(false);
    expect(isEngineMechanism('magic')).toBe(false);
    expect(mechanismSupports('sm-partition', 'probe', 'cuda')).toBe(true);
    expect(mechanismSupports('sm-partition', 'torch', 'cuda')).toBe(false);
    expect(mechanismSupports('magic', 'probe', 'cpu')).toBe(false);
  });
});

describe('the native engine uses the same ids and names', () => {
  const header = fs.readFileSync(path.join(ROOT, 'native/dispatch/engine.h'), 'utf8');
  const binding = fs.readFileSync(path.join(ROOT, 'native/dispatch/binding.cc'), 'utf8');
  const engine = fs.readFileSync(path.join(ROOT, 'native/dispatch/engine.cc'), 'utf8');
  const enumBody = /enum class Mechanism\s*\{([^}]*)\}/.exec(header)?.[1];
  const enumerators = (enumBody ?? '').split(',').map((x) => x.trim()).filter(Boolean);

  it('engine.h enum class Mechanism: plain enumerators in declaration order = engineId', () => {
    expect(enumerators.length).toBeGreaterThan(0);
    for (const e of enumerators) expect(e, 'no explicit values: the id is the position').toMatch(/^k[A-Za-z]+$/);
    expect(enumerators.length).toBe(ENGINE_MECHANISMS.length);
  });

  it('each enumerator parses from (binding.cc) and prints as (engine.cc) the registry name with its id', () => {
    for (const [id, e] of enumerators.entries()) {
      const parsed = new RegExp(`if \\(m == "([^"]+)"\\) return Mechanism::${e};`).exec(binding)?.[1];
      const printed = new RegExp(`case Mechanism::${e}: return "([^"]+)";`).exec(engine)?.[1];
      expect(parsed, e).toBeDefined();
      expect(printed, e).toBe(parsed);
      expect(mechanismInfo(parsed!)?.engineId, `${parsed} is ${e} = ${id}`).toBe(id);
    }
    // nothing else parses
    const all = [...binding.matchAll(/if \(m == "([^"]+)"\) return Mechanism::/g)].map((x) => x[1]);
    expect(all).toEqual([...ENGINE_MECHANISMS]);
  });
});

describe('every list derives from the registry', () => {
  it('scenario schema: every name accepted, others refused', () => {
    expect([...SCENARIO_MECHANISMS]).toEqual(NAMES);
    for (const m of NAMES) {
      const s = parseScenario(`${MIN}mechanisms: [${m}]\n${m === 'xsched' ? 'xsched: { preload: /x/libshim.so }\n' : ''}`, `${m}.yaml`);
      expect(s.mechanisms).toEqual([m]);
    }
    expect(() => parseScenario(`${MIN}mechanisms: [magic]\n`, 'magic.yaml')).toThrow(/mechanisms\.0/);
    expect(scenarioSchema.safeParse({ name: 'x', tasks: [], mechanisms: ['magic'] }).success).toBe(false);
    // the committed JSON Schema (scripts/schemas.mjs --check keeps it current) lists the same names
    expect(fs.readFileSync(path.join(ROOT, 'schema/scenario.schema.json'), 'utf8').replace(/\s+/g, '')).toContain(JSON.stringify(NAMES));
  });

  it('dispatch spec: the engine mechanisms, no others', () => {
    const spec = (mechanism: string) => dispatchSpecSchema.safeParse({ backend: 'cpu', durationNs: 1e9, reserve: 0.5, mechanism, streams: [{ name: 'a', highPriority: true, kernel: { spinNs: 1e5, blocks: 1, threadsPerBlock: 64 } }] });
    // other fields may be refused too (this spec is minimal): look at the mechanism's own issue
    const refused = (m: string): boolean => spec(m).error?.issues.some((i) => i.path[0] === 'mechanism') ?? false;
    for (const m of NAMES) expect(refused(m), m).toBe(!isEngineMechanism(m));
    expect(refused('magic')).toBe(true);
  });

  it('gpucolo run --mechanism: every name', () => {
    const o = option(runCommand(), '--mechanism');
    expect(parse(o, NAMES.join(','))).toEqual(NAMES);
    expect(() => parse(o, 'magic')).toThrow(`unknown mechanism "magic" (${NAMES.join(', ')})`);
    expect(o.description).toContain(NAMES.join(', '));
  });

  it('gpucolo probe priority --mechanism: the engine mechanisms', () => {
    const pr = probeCommand().commands.find((c) => c.name() === 'priority')!;
    const o = option(pr, '--mechanism');
    expect(parse(o, ENGINE_MECHANISMS.join(','))).toEqual([...ENGINE_MECHANISMS]);
    for (const m of NAMES.filter((x) => !isEngineMechanism(x))) expect(() => parse(o, m)).toThrow(`unknown mechanism "${m}" (${ENGINE_MECHANISMS.join(', ')})`);
    expect(o.description).toBe(`comma list of ${ENGINE_MECHANISMS.join(', ')}`);
  });

  it('gpucolo tune --mechanism and the knobs: the mechanisms with a knob', () => {
    const tunable = MECHANISM_REGISTRY.filter((m) => m.knob !== null);
    expect(TUNABLE).toEqual(MECHANISM_KNOBS);
    expect(Object.entries(TUNABLE)).toEqual(tunable.map((m) => [m.name, m.knob]));
    const o = option(tuneCommand(), '--mechanism');
    for (const m of MECHANISM_REGISTRY) {
      if (m.knob) {
        expect(knobProblem(m.name)).toBeNull();
        expect(parse(o, m.name)).toEqual([m.name]);
        expect(o.description).toContain(`(${m.knob})`);
        expect(o.description).toContain(m.name);
      } else {
        expect(knobProblem(m.name)).toMatch(`mechanism ${m.name} has no knob to tune`);
        expect(() => parse(o, m.name)).toThrow(/has no knob/);
      }
    }
    expect(o.description).toBe('mechanisms to tune: cu-mask and sm-partition (reserve), throttle (throttleK) (default: each of them the backend can run)');
  });
});

describe('support agrees with the skip logic', () => {
  // each backend's device flags as its engine reports them: cpu (the TS engine, as the native cpu
  // backend: CU masks emulated, no SM partitions), cuda (plugin.cu with green contexts: SM
  // partitions, no CU masks), hip (plugin.hip: CU masks, no SM partitions)
  const cpu = tsCpuBackendInfo().devices[0];
  const gpu = (over: Partial<NativeBackendDevice>): NativeBackendDevice => ({ ...cpu, computeUnits: 64, numXcc: 1, ...over });
  const DEVICES: Record<Backend, NativeBackendDevice> = {
    cpu: { ...cpu, computeUnits: Math.max(cpu.computeUnits, 4) },
    cuda: gpu({ name: 'NVIDIA H100', supportsCuMask: false, supportsSmPartition: true }),
    hip: gpu({ name: 'AMD Instinct MI210', supportsCuMask: true, supportsSmPartition: false }),
  };

  it('probe form: probeMechanismProblem is null exactly where the registry lists the backend', () => {
    expect(cpu.supportsCuMask).toBe(true);
    expect(cpu.supportsSmPartition).toBe(false);
    for (const m of MECHANISM_REGISTRY) {
      for (const b of BACKENDS) {
        const why = probeMechanismProblem(m.name, b, DEVICES[b], 0.5);
        expect(why === null, `${m.name} on ${b}: ${why}`).toBe(mechanismSupports(m.name, 'probe', b));
      }
    }
  });

  it('deviceFlag: the probe form refuses the mechanism exactly when the device lacks that flag', () => {
    const FLAGS = ['supportsCuMask', 'supportsSmPartition'] as const;
    for (const m of MECHANISM_REGISTRY.filter((x) => x.engineId !== null)) {
      if (m.deviceFlag !== null) expect(FLAGS, m.name).toContain(m.deviceFlag);
      for (const b of BACKENDS) {
        const all = { ...DEVICES[b], supportsCuMask: true, supportsSmPartition: true };
        expect(probeMechanismProblem(m.name, b, all, 0.5), `${m.name} on ${b} with every flag`).toBeNull();
        for (const f of FLAGS) {
          const why = probeMechanismProblem(m.name, b, { ...all, [f]: false }, 0.5);
          expect(why !== null, `${m.name} on ${b} without ${f}: ${why}`).toBe(m.deviceFlag === f);
        }
      }
    }
  });

  it('gpuCheck: an expectation exactly for the mechanisms the probe form runs on a GPU backend', () => {
    for (const m of MECHANISM_REGISTRY) {
      const onGpu = m.support.probe.some((b) => b !== 'cpu');
      expect(m.gpuCheck !== null, m.name).toBe(onGpu);
      if (m.gpuCheck !== null) expect(GPU_CHECK_EXPECTATIONS, m.name).toContain(m.gpuCheck);
    }
    expect([...GPU_CHECK_MECHANISMS]).toEqual(MECHANISM_REGISTRY.filter((m) => m.gpuCheck !== null).map((m) => m.name));
    expect(Object.entries(GPU_CHECK_EXPECTATION)).toEqual(MECHANISM_REGISTRY.filter((m) => m.gpuCheck !== null).map((m) => [m.name, m.gpuCheck]));
    // a spatial expectation judges the LP share of a partition: the mechanism splits the device by its reserve
    for (const m of MECHANISM_REGISTRY) if (m.gpuCheck === 'spatial') expect([m.twoSided, m.knob], m.name).toEqual([true, 'reserve']);
  });

  const task = (name: string, priority: number, device: 'cpu' | 'cuda'): { task: Task; workload: NonNullable<Task['torch']> } => {
    const t = taskSchema.parse({ name, priority, arrival: { kind: 'closed-loop', concurrency: 1 }, torch: { model: 'tiny-mlp', device } });
    return { task: t, workload: t.torch! };
  };
  const phase = (mechanism: (typeof NAMES)[number], device: 'cpu' | 'cuda') =>
    runTorchPhase({ tasks: [task('hp', 2, device), task('lp', 1, device)], mechanism, reserve: 0.5, durationNs: 1e9, warmupNs: 0, workerPath: '/nonexistent/worker.py', groupWorkerPath: '/nonexistent/group.py', python: '/nonexistent/python' });

  it('torch form: a mechanism no backend runs is skipped before any worker starts', async () => {
    const none = MECHANISM_REGISTRY.filter((m) => m.support.torch.length === 0).map((m) => m.name);
    expect(none.sort()).toEqual(['sm-partition', 'throttle']);
    for (const m of none) {
      for (const d of ['cpu', 'cuda'] as const) {
        const r = await phase(m, d);
        expect(r.status, m).toBe('skipped');
        expect([SM_PARTITION_REASON, THROTTLE_REASON]).toContain(r.reason);
      }
    }
  });

  it('torch form on cpu workers: stream-priority is skipped before any worker starts; the others registered for cpu go on to start workers', async () => {
    // cu-mask (hip only) is decided once the workers report their runtime (ready.hip): not checkable without a worker
    const decidedByWorkers = ['cu-mask'];
    for (const m of MECHANISM_REGISTRY.filter((x) => x.support.torch.length > 0 && !decidedByWorkers.includes(x.name))) {
      const r = await phase(m.name, 'cpu');
      if (mechanismSupports(m.name, 'torch', 'cpu')) {
        // not skipped: it went on to look for python / the worker (missing here) or its settings
        expect(r.status, `${m.name}: ${r.reason}`).toBe('failed');
      } else {
        expect(r.status, m.name).toBe('skipped');
        expect(r.reason).toBe(STREAM_PRIORITY_CPU_REASON);
      }
    }
    expect(mechanismSupports('cu-mask', 'torch', 'cpu')).toBe(false);
    expect(mechanismSupports('cu-mask', 'torch', 'hip')).toBe(true);
  });
});
