/**
 * A co-run the ENGINE refuses (issue 15, items 5 and 7), not one the device info already rules
 * out: probe priority sizes every share before the rounds, and a spec the engine refuses there (on
 * AMD: a CU mask that would leave an XCC empty, "the queue would hang") is skipped with the
 * engine's own reason while the rest is measured. The device-info check is switched off here so
 * that the cpu engine's refusal of sm-partition stands in for the HIP engine's refusal of a mask.
 */
import { describe, expect, it, vi } from 'vitest';
import { probePriority } from '../src/dispatch/probes.js';
import { runProbePhase } from '../src/scenario/probe-driver.js';
import { taskSchema } from '../src/scenario/schema.js';
import { nativeLoaded } from './helpers/impls.js';

vi.mock('../src/dispatch/fill.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/dispatch/fill.js')>();
  return { ...m, mechanismProblem: () => null };
});

process.env.GPUCOLO_CPU_WORKERS = '2';
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const engines = nativeLoaded ? (['native', 'ts'] as const) : (['ts'] as const);

describe.each(engines)('refused by the %s engine', (engine) => {
  it('probe priority: skipped with the engine\'s reason before the rounds, the rest measured', async () => {
    const seen: string[] = [];
    const r = await probePriority({
      backend: 'cpu',
      engine,
      lpKernelNs: 1e6,
      lpStreams: 1,
      hpKernelNs: 100e3,
      hpRateHz: 100,
      mechanisms: ['none', 'sm-partition'],
      reserve: 0.5,
      durationNs: 150e6,
      warmupNs: 30e6,
      rounds: 2,
      onRun: (l) => seen.push(l),
    });
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]).toMatchObject({ mechanism: 'sm-partition', reserve: 0.5 });
    expect(r.skipped[0].reason).toMatch(/^cpu dispatch( \(pure-TS engine\))? failed: mechanism sm-partition: backend 'cpu' has no SM partitions$/);
    expect(seen.some((l) => l.includes('sm-partition'))).toBe(false);
    expect(r.runs.map((x) => x.mechanism)).toEqual(['none']);
    expect(r.quality.warnings.some((w) => w.code === 'round-failed')).toBe(false);
  });

  it('scenario probe phase: a skipped phase with the engine\'s reason', async () => {
    const t = taskSchema.parse({ name: 'lp', priority: 1, arrival: { kind: 'closed-loop', concurrency: 1 }, probe: { kernel: '1ms', blocks: 'fill' } });
    const h = taskSchema.parse({ name: 'hp', priority: 2, arrival: { kind: 'fixed-rate', rate: 50 }, probe: { kernel: '100us' } });
    const r = await runProbePhase({ tasks: [h, t].map((x) => ({ task: x, workload: x.probe! })), backend: 'cpu', mechanism: 'sm-partition', reserve: 0.5, throttleK: 1, durationNs: 150e6, warmupNs: 30e6, engine });
    expect(r.status).toBe('skipped');
    expect(r.reason).toMatch(/mechanism sm-partition: backend 'cpu' has no SM partitions$/);
  });
});
