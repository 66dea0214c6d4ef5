/**
 * The scenario's probe form with `blocks: fill` (issue 15, item 2): a task's "fill" is the blocks
 * that occupy every compute unit its stream gets under the phase's mechanism, as made (the whole
 * device, or its side of a CU mask), times waves; the notes say blocks x threads, resident blocks
 * per CU and the occupancy, and the partition as made. A mechanism the engine refuses is a skipped
 * phase with the reason. cpu backend, both engines, 2 workers; no timing asserts.
 */
import { describe, expect, it } from 'vitest';
import { probeMechanismProblem, runProbePhase } from '../src/scenario/probe-driver.js';
import { taskSchema, type Task } from '../src/scenario/schema.js';
import type { NativeBackendDevice } from '../src/native.js';
import { nativeLoaded } from './helpers/impls.js';

process.env.GPUCOLO_CPU_WORKERS = '2';
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const engines = nativeLoaded ? (['native', 'ts'] as const) : (['ts'] as const);

const task = (x: Record<string, unknown>): { task: Task; workload: NonNullable<Task['probe']> } => {
  const t = taskSchema.parse(x);
  return { task: t, workload: t.probe! };
};
const HP = task({ name: 'hp', priority: 2, arrival: { kind: 'fixed-rate', rate: 100 }, probe: { kernel: '200us' } });
const LP = task({ name: 'lp', priority: 1, arrival: { kind: 'closed-loop', concurrency: 1 }, probe: { kernel: '2ms', blocks: 'fill', waves: 2, threadsPerBlock: 128 } });

describe.each(engines)('probe phases with blocks: fill (%s engine)', (engine) => {
  const phase = (mechanism: 'none' | 'cu-mask' | 'sm-partition') =>
    runProbePhase({ tasks: [HP, LP], backend: 'cpu', mechanism, reserve: 0.5, throttleK: 1, durationNs: 200e6, warmupNs: 50e6, engine });

  it('fill = the stream\'s compute units as made x resident blocks per CU x waves, said in the notes', async () => {
    const none = await phase('none');
    expect(none.status, none.reason).toBe('ok');
    expect(none.blocks).toEqual({ hp: 1, lp: 4 }); // 2 workers x 1 resident x 2 waves
    expect(none.notes).toContain('fill: lp kernels of 4 x 128 threads (2 CUs x 1 resident, occupancy 100%, 2 waves)');
    const cu = await phase('cu-mask');
    expect(cu.status, cu.reason).toBe('ok');
    expect(cu.blocks).toEqual({ hp: 1, lp: 2 }); // LP's side of the mask: 1 worker
    expect(cu.notes).toEqual(
      expect.arrayContaining([
        'cu-mask: 1 of 2 compute units asked for priority 2 (ceil of 50%), 1 for the others',
        'cu-mask: made as asked',
        'fill: lp kernels of 2 x 128 threads (1 CU x 1 resident, occupancy 100%, 2 waves)',
      ]),
    );
  });

  it('a mechanism the backend lacks is a skipped phase with the reason, before anything runs', async () => {
    const r = await phase('sm-partition');
    expect(r).toMatchObject({ status: 'skipped', reason: 'sm-partition: the cpu backend has no SM partitions', engine: null });
  });
});

describe('probeMechanismProblem', () => {
  it('uses the engines\' reserve rule (ceil) and refuses CU masks that leave an XCC empty', () => {
    const dev: NativeBackendDevice = {
      name: 'MI300X',
      arch: 'gfx942',
      computeUnits: 304,
      priorityLeast: 1,
      priorityGreatest: -1,
      supportsCuMask: true,
      supportsSmPartition: false,
      timerResolutionNs: 0,
      numXcc: 8,
      cuMaskBitsPerUnit: 1,
    };
    expect(probeMechanismProblem('cu-mask', 'hip', dev, 0.01)).toMatch(/fewer than the device's 8 XCCs: KFD deals CU-mask bits round-robin over the XCCs/);
    expect(probeMechanismProblem('cu-mask', 'hip', dev, 0.1)).toBeNull();
    expect(probeMechanismProblem('gate', 'hip', dev, 0.1)).toMatch(/applies to the torch form/);
    // 0.4% of 304 = 1.2: ceil keeps 2 (round would keep 1); both need at least one either way
    expect(probeMechanismProblem('cu-mask', 'hip', { ...dev, numXcc: 1 }, 0.004)).toBeNull();
    expect(probeMechanismProblem('cu-mask', 'cpu', { ...dev, computeUnits: 2, numXcc: 1 }, 0.2)).toBeNull();
  });
});
