/**
 * What the dispatch engines report beyond the launch arrays (issue 15's native side): the
 * device's "fill" figures and XCC layout in listBackends(), and per run the partition / mask each
 * stream actually got, how many blocks fill it, the clock offset's drift check and the run's
 * phases. Both engines must give one result shape (the native addon through its binding, the
 * pure-TS engine by filling the same fields), so the TS side can use them without caring which ran.
 * GPU plugins are covered by the C++ tests (native/tests: fake plugins, no GPU needed).
 */
import { describe, expect, it } from 'vitest';
import { dispatchSpecSchema, startTsDispatch, tsCpuBackendInfo, type DispatchSpecInput } from '../src/dispatch/index.js';
import { loadNative, type NativeBackendDevice, type NativeDispatchResult, type NativeDispatchSpec } from '../src/native.js';
import { nativeLoaded } from './helpers/impls.js';

// two compute units on both engines (read when the native cpu backend's pool starts, which is
// after this line: every test file runs in its own process), nice 0 against the suite's load
process.env.GPUCOLO_CPU_WORKERS = '2';
process.env.GPUCOLO_CPU_WORKER_NICE ??= '0';

const MS = 1e6;

function spec(input: Omit<DispatchSpecInput, 'backend'>): NativeDispatchSpec {
  return dispatchSpecSchema.parse({ backend: 'cpu', watchdogNs: 10e9, ...input }) as NativeDispatchSpec;
}

function twoStreams(mechanism: 'none' | 'cu-mask', reserve = 0): NativeDispatchSpec {
  return spec({
    durationNs: 60e9, // ends at maxLaunches
    maxLaunches: 20,
    mechanism,
    ...(reserve ? { reserve } : {}),
    streams: [
      { name: 'hp', highPriority: true, kernel: { spinNs: 50e3, blocks: 1, threadsPerBlock: 64 }, arrival: 'closed-loop' },
      { name: 'lp', highPriority: false, kernel: { spinNs: 50e3, blocks: 2, threadsPerBlock: 128 }, arrival: 'closed-loop' },
    ],
  });
}

const runNative = (s: NativeDispatchSpec): Promise<NativeDispatchResult> => loadNative()!.startDispatch(s).done;
const runTs = (s: NativeDispatchSpec): Promise<NativeDispatchResult> => startTsDispatch(s, { workers: 2 }).done;

const DEVICE_FIELDS = ['maxThreadsPerBlock', 'fillThreadsPerBlock', 'maxActiveBlocksPerCu', 'occupancy', 'numXcc', 'numSePerXcc', 'numShPerSe', 'cuMaskBitsPerUnit'] as const;
const RESULT_FIELDS = ['deviceOffsetUncertaintyNs', 'deviceOffsetEndNs', 'cancelled', 'submitPhaseNs', 'elapsedNs'] as const;
const STREAM_FIELDS = ['dropped', 'cuMask', 'smCountRequested', 'smCount', 'computeUnits', 'maxActiveBlocksPerCu', 'fillBlocks'] as const;

function checkCpuDevice(d: NativeBackendDevice): void {
  for (const k of DEVICE_FIELDS) expect(d, k).toHaveProperty(k);
  // a cpu "compute unit" runs one block at a time, whatever its threads: one resident block fills it
  expect(d.maxActiveBlocksPerCu).toBe(1);
  expect(d.fillThreadsPerBlock).toBe(64);
  expect(d.occupancy!.map((o) => o.threadsPerBlock)).toEqual([32, 64, 128, 256, 512, 1024]);
  expect(d.occupancy!.every((o) => o.blocksPerCu === 1)).toBe(true);
  expect(d.numXcc).toBe(1);
  expect(d.cuMaskBitsPerUnit).toBe(1);
}

function checkResult(r: NativeDispatchResult, mechanism: 'none' | 'cu-mask'): void {
  expect(r.status, r.error).toBe(0);
  for (const k of RESULT_FIELDS) expect(r, k).toHaveProperty(k);
  expect(r.cancelled).toBe(false);
  expect(r.elapsedNs!).toBeGreaterThanOrEqual(r.submitPhaseNs!);
  expect(r.deviceOffsetUncertaintyNs!).toBeGreaterThanOrEqual(0);
  // the cpu device clock is the host clock: the drift check after the run finds ~ no offset
  expect(Number.isFinite(r.deviceOffsetEndNs)).toBe(true);
  expect(Math.abs(r.deviceOffsetEndNs! - r.deviceOffsetNs)).toBeLessThan(100 * MS);
  for (const s of r.streams) {
    for (const k of STREAM_FIELDS) expect(s, `${s.name}.${k}`).toHaveProperty(k);
    expect(s.launches).toBe(20);
    expect(s.dropped).toBe(0);
    expect(s.smCount).toBe(0); // the cpu backend has no SM partitions
    expect(s.smCountRequested).toBe(0);
    expect(s.maxActiveBlocksPerCu).toBe(1);
    expect(s.fillBlocks).toBe(s.computeUnits! * 1);
  }
  if (mechanism === 'none') {
    for (const s of r.streams) {
      expect(s.cuMask).toEqual([]);
      expect(s.computeUnits).toBe(r.computeUnits);
    }
  } else {
    // half of 2 workers each: HP worker 0, LP worker 1, as plain number[] words
    expect(r.streams[0].cuMask).toEqual([1]);
    expect(r.streams[1].cuMask).toEqual([2]);
    expect(r.streams.map((s) => s.computeUnits)).toEqual([1, 1]);
  }
}

describe('dispatch results: fill, partitions as made, clock drift (one shape for both engines)', () => {
  it('the pure-TS cpu backend lists the fill and layout fields', () => {
    checkCpuDevice(tsCpuBackendInfo().devices[0]);
  });

  it('the pure-TS engine fills the per-stream and per-run fields', async () => {
    checkResult(await runTs(twoStreams('none')), 'none');
    checkResult(await runTs(twoStreams('cu-mask', 0.5)), 'cu-mask');
  });

  describe.runIf(nativeLoaded)('native engine', () => {
    it('listBackends: the cpu device with its fill and layout fields, GPU backends with a reason', () => {
      const b = loadNative()!.listBackends();
      const cpu = b.find((x) => x.name === 'cpu')!;
      expect(cpu.available).toBe(true);
      expect(cpu.devices[0].computeUnits).toBe(2);
      checkCpuDevice(cpu.devices[0]);
      for (const g of b.filter((x) => x.name !== 'cpu')) {
        if (!g.available) expect(g.reason).toMatch(/\S/);
        for (const d of g.devices) for (const k of DEVICE_FIELDS) expect(d, `${g.name}.${k}`).toHaveProperty(k);
      }
    });

    it('passes the engine\'s computed fields through the binding', async () => {
      const r = await runNative(twoStreams('none'));
      checkResult(r, 'none');
      expect(r.pollPauseNs).toBe(20e3); // the cpu backend's default pause
      checkResult(await runNative(twoStreams('cu-mask', 0.5)), 'cu-mask');
    });

    it('both engines give the same keys for the same spec', async () => {
      const s = twoStreams('cu-mask', 0.5);
      const [n, t] = [await runNative(s), await runTs(s)];
      const keys = (o: object) => Object.keys(o).filter((k) => k !== 'engine' && k !== 'pollPauseNs' && k !== 'trace').sort();
      expect(keys(t)).toEqual(keys(n));
      expect(Object.keys(t.streams[0]).sort()).toEqual(Object.keys(n.streams[0]).sort());
      expect(t.streams.map((x) => [x.cuMask, x.computeUnits, x.fillBlocks])).toEqual(n.streams.map((x) => [x.cuMask, x.computeUnits, x.fillBlocks]));
    });

    it('a cancelled run says so', async () => {
      const h = loadNative()!.startDispatch(
        spec({ durationNs: 600e9, streams: [{ name: 'u', highPriority: false, kernel: { spinNs: 1 * MS, blocks: 1, threadsPerBlock: 64 }, arrival: 'closed-loop' }] }),
      );
      setTimeout(() => h.cancel(), 50);
      const r = await h.done;
      expect(r.status).toBe(0);
      expect(r.cancelled).toBe(true);
      expect(r.error).toMatch(/^cancelled/);
    });
  });
});
