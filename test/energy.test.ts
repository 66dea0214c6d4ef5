/** src/energy: sysfs readers on fixture trees, the summary maths, the sampler, NVML/ROCm SMI fakes. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ROOT } from './helpers/impls.js';
import { copyTree, isRoot, makeTree } from './helpers/tree.js';
import { probeEnergySources, startSampling, type EnergySample, type SourceSummary } from '../src/energy/index.js';
import { openAmdgpuSysfs, parseGpuBusyPercent, parseHwmonEnergyJ, parseHwmonPowerW, parseHwmonTempC, parseHwmonTempLabel, parsePciVendor } from '../src/energy/amdgpu-sysfs.js';
import { openRapl, parseRaplEnergyJ, parseRaplMaxEnergyRangeJ, parseRaplName, raplReadHint } from '../src/energy/rapl.js';
import { summariseDevice } from '../src/energy/summary.js';
import { loadNative } from '../src/native.js';

const SYSFS = path.join(ROOT, 'test/fixtures/power/sysfs');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tmpCopy(): string {
  const d = copyTree(SYSFS, 'gpucolo-power-');
  dirs.push(d);
  return d;
}
function tmpTree(files: Record<string, string>): string {
  const d = makeTree(files, 'gpucolo-power-');
  dirs.push(d);
  return d;
}
/**
 * Runs the sampler's interval timer for `ms` of fake time: exactly ms / interval ticks, however
 * busy the host (with a real 350 ms sleep a starved event loop could run fewer). The samples keep
 * their real CLOCK_MONOTONIC stamps.
 */
function withFakeInterval<T>(fn: (advance: (ms: number) => void) => T): T {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  try {
    return fn((ms) => vi.advanceTimersByTime(ms));
  } finally {
    vi.useRealTimers();
  }
}

function codeOf(fn: () => unknown): { code?: string; message: string; path?: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string; path?: string };
  }
  throw new Error('did not throw');
}

describe('energy parsers (one per pseudo-file)', () => {
  it('convert units and reject bad text naming file and line', () => {
    expect(parseGpuBusyPercent('42\n', '/x/gpu_busy_percent')).toBe(42);
    expect(parseHwmonPowerW('187000000\n', '/x/power1_average')).toBe(187);
    expect(parseHwmonEnergyJ('123456789000\n', '/x/energy1_input')).toBeCloseTo(123456.789, 9);
    expect(parsePciVendor('0x1002\n', '/x/vendor')).toBe(0x1002);
    expect(parseRaplEnergyJ('262143000000\n', '/x/energy_uj')).toBe(262143);
    expect(parseRaplMaxEnergyRangeJ('262143328850', '/x/max_energy_range_uj')).toBeCloseTo(262143.32885, 9);
    expect(parseRaplName('package-0\n')).toBe('package-0');
    expect(parseHwmonTempC('71500\n', '/x/temp2_input')).toBe(71.5);
    expect(parseHwmonTempC('-5000\n', '/x/temp1_input')).toBe(-5); // the hwmon ABI is signed
    expect(Object.is(parseHwmonTempC('-0\n', '/x/t'), 0)).toBe(true);
    expect(parseHwmonTempLabel('junction\n')).toBe('junction');
    expect(codeOf(() => parseHwmonTempC('71.5\n', '/x/temp1_input')).message).toBe(
      '/x/temp1_input:1: expected a temperature in millidegrees Celsius, got "71.5"',
    );
    expect(codeOf(() => parseHwmonTempC('', '/x/t')).code).toBe('EBADTEXT');
    expect(codeOf(() => parseHwmonTempC('--1\n', '/x/t')).code).toBe('EBADTEXT');

    const bad = codeOf(() => parseGpuBusyPercent('busy\n', '/x/gpu_busy_percent'));
    expect(bad.code).toBe('EBADTEXT');
    expect(bad.path).toBe('/x/gpu_busy_percent');
    expect(bad.message).toBe('/x/gpu_busy_percent:1: expected a percentage (0-100), got "busy"');
    expect(codeOf(() => parseGpuBusyPercent('101\n', '/x/b')).message).toMatch(/percentage \(0-100\), got "101"/);
    expect(codeOf(() => parseHwmonPowerW('-5\n', '/x/p')).code).toBe('EBADTEXT');
    expect(codeOf(() => parseRaplEnergyJ('', '/x/e')).code).toBe('EBADTEXT');
    expect(codeOf(() => parsePciVendor('vendor\n', '/x/v')).code).toBe('EBADTEXT');
  });
});

describe('amdgpu sysfs', () => {
  it('finds the AMD cards (not connectors, render nodes or NVIDIA) and what each can report', () => {
    const { probe, read } = openAmdgpuSysfs(SYSFS);
    expect(probe.available).toBe(true);
    expect(probe.kind).toBe('gpu');
    const hw0 = `${SYSFS}/class/drm/card0/device`;
    const hw2 = `${SYSFS}/class/drm/card2/device`;
    expect(probe.devices).toEqual([
      {
        index: 0,
        id: 'card0',
        name: 'AMD Instinct MI300X',
        // MI300: no edge sensor (no temp1), so junction (temp2); never mem (temp3)
        files: [`${hw0}/gpu_busy_percent`, `${hw0}/hwmon/hwmon3/power1_average`, `${hw0}/hwmon/hwmon3/energy1_input`, `${hw0}/hwmon/hwmon3/temp2_input`],
      },
      // edge (temp1) preferred over junction and mem
      { index: 1, id: 'card2', name: 'AMD GPU 0x73bf', files: [`${hw2}/gpu_busy_percent`, `${hw2}/hwmon/hwmon5/power1_input`, `${hw2}/hwmon/hwmon5/temp1_input`] },
    ]);
    expect(probe.skipped).toBeUndefined();
    const s0 = read(0);
    expect(s0).toMatchObject({ utilPercent: 42, powerW: 187, energyJ: 123456.789, tempC: 71.5 });
    expect(s0.errors).toBeUndefined();
    expect(read(1)).toMatchObject({ utilPercent: 7, powerW: 15.25, energyJ: null, tempC: 48 });
    expect(() => read(2)).toThrow(RangeError);
  });

  it('temperature sensor: labels say which is which (edge, then junction, never mem); unlabelled: amdgpu numbering', () => {
    const card = (hwmon: Record<string, string>): string =>
      tmpTree({
        'class/drm/card0/device/vendor': '0x1002\n',
        'class/drm/card0/device/gpu_busy_percent': '3\n',
        ...Object.fromEntries(Object.entries(hwmon).map(([f, v]) => [`class/drm/card0/device/hwmon/hwmon1/${f}`, v])),
      });
    const tempOf = (root: string): { file: string | undefined; tempC: number | null } => {
      const { probe, read } = openAmdgpuSysfs(root);
      expect(probe.available).toBe(true);
      const file = probe.devices[0].files!.find((f) => /temp\d+_input$/.test(f));
      return { file: file && path.basename(file), tempC: read(0).tempC };
    };
    // labels win over the numbering: temp1 labelled junction, temp2 labelled edge -> temp2
    expect(tempOf(card({ temp1_input: '80000\n', temp1_label: 'junction\n', temp2_input: '50000\n', temp2_label: 'edge\n' }))).toEqual({ file: 'temp2_input', tempC: 50 });
    // no labels: temp1 is edge
    expect(tempOf(card({ temp1_input: '44000\n', temp2_input: '51000\n', temp3_input: '60000\n' }))).toEqual({ file: 'temp1_input', tempC: 44 });
    // no labels, no temp1: temp2 (junction)
    expect(tempOf(card({ temp2_input: '66250\n', temp3_input: '60000\n' }))).toEqual({ file: 'temp2_input', tempC: 66.25 });
    // only a memory sensor, or none: no temperature, the card stays a device
    expect(tempOf(card({ temp3_input: '60000\n', temp3_label: 'mem\n' }))).toEqual({ file: undefined, tempC: null });
    expect(tempOf(card({ power1_input: '1000000\n' }))).toEqual({ file: undefined, tempC: null });
    // an edge sensor that cannot be parsed at open: junction instead
    expect(tempOf(card({ temp1_input: 'n/a\n', temp1_label: 'edge\n', temp2_input: '70000\n', temp2_label: 'junction\n' }))).toEqual({ file: 'temp2_input', tempC: 70 });
    // temperature alone does not make a card an energy device
    const onlyTemp = tmpTree({ 'class/drm/card0/device/vendor': '0x1002\n', 'class/drm/card0/device/hwmon/hwmon1/temp1_input': '40000\n' });
    expect(openAmdgpuSysfs(onlyTemp).probe.available).toBe(false);
  });

  it('missing trees and cards without counters: unavailable with a reason', () => {
    const empty = tmpTree({ 'x/y': '' });
    const none = openAmdgpuSysfs(empty);
    expect(none.probe.available).toBe(false);
    expect(none.probe.reason).toBe(`no ${empty}/class/drm: no DRM driver on this host (or sysfs not mounted there)`);
    expect(() => none.read(0)).toThrow(/amdgpu-sysfs unavailable/);

    const nvidiaOnly = tmpTree({ 'class/drm/card0/device/vendor': '0x10de\n' });
    expect(openAmdgpuSysfs(nvidiaOnly).probe.reason).toBe(`no amdgpu card in ${nvidiaOnly}/class/drm (1 DRM card, none with vendor 0x1002)`);

    const bare = tmpTree({ 'class/drm/card0/device/vendor': '0x1002\n' });
    const b = openAmdgpuSysfs(bare).probe;
    expect(b.available).toBe(false);
    expect(b.reason).toBe(`no readable amdgpu counters: card0: no gpu_busy_percent, no hwmon under ${bare}/class/drm/card0/device`);
  });

  it('a counter that exists but cannot be read is left out with its reason; the others stay', () => {
    const root = tmpCopy();
    const busy = `${root}/class/drm/card0/device/gpu_busy_percent`;
    fs.rmSync(busy);
    fs.mkdirSync(busy); // EISDIR: what a root test can do instead of EACCES
    fs.writeFileSync(`${root}/class/drm/card2/device/gpu_busy_percent`, 'n/a\n');
    const { probe, read } = openAmdgpuSysfs(root);
    expect(probe.available).toBe(true);
    expect(probe.devices[0].files).not.toContain(busy);
    expect(read(0)).toMatchObject({ utilPercent: null, powerW: 187 });
    expect(read(1)).toMatchObject({ utilPercent: null, powerW: 15.25 });
    // a file that breaks after opening: that field is null, with its error
    fs.writeFileSync(`${root}/class/drm/card0/device/hwmon/hwmon3/power1_average`, 'garbage\n');
    const s = read(0);
    expect(s.powerW).toBeNull();
    expect(s.energyJ).toBe(123456.789);
    expect(s.errors).toEqual([`${root}/class/drm/card0/device/hwmon/hwmon3/power1_average:1: expected power in microwatts, got "garbage"`]);
    // the temperature sensor likewise: gone after opening -> null with its error, the others stay
    fs.rmSync(`${root}/class/drm/card2/device/hwmon/hwmon5/temp1_input`);
    const t = read(1);
    expect(t).toMatchObject({ powerW: 15.25, tempC: null });
    expect(t.errors).toEqual([`cannot read ${root}/class/drm/card2/device/hwmon/hwmon5/temp1_input (ENOENT)`]);
  });
});

describe('RAPL', () => {
  it('lists zones and subzones with their names and wrap ranges', () => {
    const { probe, read } = openRapl(SYSFS);
    expect(probe.available).toBe(true);
    expect(probe.kind).toBe('cpu');
    expect(probe.devices.map((d) => [d.id, d.name, d.energyWrapJ])).toEqual([
      ['intel-rapl:0', 'package-0', 262143.32885],
      ['intel-rapl:0:0', 'core', 262143.32885],
      ['intel-rapl:0:1', 'dram', 65712.999613],
      ['intel-rapl:1', 'package-1', 262143.32885],
    ]);
    expect(read(0)).toMatchObject({ utilPercent: null, powerW: null, energyJ: 262143, tempC: null });
  });

  it('handles the counter wrapping between two reads (tmp copy modified between samples)', () => {
    const root = tmpCopy();
    const { probe, read } = openRapl(root);
    const a = read(0);
    fs.writeFileSync(`${root}/class/powercap/intel-rapl:0/energy_uj`, '500000\n');
    const b = read(0);
    expect(b.energyJ).toBe(0.5);
    const sum = summariseDevice([a, b], probe.devices[0].energyWrapJ);
    // (262143.32885 - 262143) + 0.5 J
    expect(sum.energyJ).toBeCloseTo(0.82885, 6);
    expect(sum.energyFrom).toBe('counter');
    expect(sum.counterResets).toBe(0);
    expect(sum.powerFrom).toBe('counter');
    expect(sum.powerW!.mean).toBeGreaterThan(0);
  });

  it('missing powercap, no zones: unavailable with a reason', () => {
    const empty = tmpTree({ 'x/y': '' });
    expect(openRapl(empty).probe.reason).toBe(`no ${empty}/class/powercap: no powercap/RAPL driver here (VMs and containers often hide it)`);
    const noZones = tmpTree({ 'class/powercap/intel-rapl/enabled': '1\n' });
    expect(openRapl(noZones).probe.reason).toBe(`no intel-rapl:* zone in ${noZones}/class/powercap (the intel_rapl_msr / rapl driver is not loaded)`);
  });

  it('an unreadable energy_uj: zone skipped with the reason; all of them: unavailable (EISDIR stands in for EACCES under root)', () => {
    const root = tmpCopy();
    const zones = ['intel-rapl:0', 'intel-rapl:0:0', 'intel-rapl:0:1', 'intel-rapl:1'];
    const breakZone = (z: string) => {
      const f = `${root}/class/powercap/${z}/energy_uj`;
      fs.rmSync(f);
      fs.mkdirSync(f);
    };
    breakZone('intel-rapl:1');
    const one = openRapl(root).probe;
    expect(one.available).toBe(true);
    expect(one.devices.map((d) => d.id)).toEqual(zones.slice(0, 3));
    expect(one.skipped).toEqual([{ id: 'intel-rapl:1', reason: `cannot read ${root}/class/powercap/intel-rapl:1/energy_uj (EISDIR)` }]);
    zones.slice(0, 3).forEach(breakZone);
    const all = openRapl(root).probe;
    expect(all.available).toBe(false);
    expect(all.reason).toBe(`cannot read ${root}/class/powercap/<zone>/energy_uj (EISDIR)`);
  });

  it('EACCES says energy_uj needs root', () => {
    expect(raplReadHint('EACCES')).toMatch(/root-only since Linux 5\.10/);
    expect(raplReadHint('ENOENT')).toBeUndefined();
  });

  it.skipIf(isRoot)('EACCES for real when not root', () => {
    const root = tmpCopy();
    for (const z of ['intel-rapl:0', 'intel-rapl:0:0', 'intel-rapl:0:1', 'intel-rapl:1']) {
      fs.chmodSync(`${root}/class/powercap/${z}/energy_uj`, 0o000);
    }
    const p = openRapl(root).probe;
    expect(p.available).toBe(false);
    expect(p.reason).toMatch(/\(EACCES\): energy_uj is root-only/);
  });
});

describe('summariseDevice', () => {
  const s = (tS: number, f: Partial<EnergySample>): EnergySample => ({ tNs: tS * 1e9, utilPercent: null, powerW: null, energyJ: null, tempC: null, ...f });

  it('means and maxima; energy from the counter when there is one', () => {
    const out = summariseDevice([
      s(0, { utilPercent: 10, powerW: 100, energyJ: 50, tempC: 60 }),
      s(1, { utilPercent: 30, powerW: 300, energyJ: 250, tempC: 70.5 }),
      s(2, { utilPercent: 20, powerW: 200, energyJ: null, tempC: null }),
      s(3, { utilPercent: null, powerW: null, energyJ: 650, tempC: 65.5 }),
    ]);
    expect(out).toEqual({
      samples: 4,
      spanS: 3,
      utilisation: { mean: 20, max: 30 },
      powerW: { mean: 200, max: 300 },
      powerFrom: 'sensor',
      energyJ: 600,
      energyFrom: 'counter',
      counterResets: 0,
      temperatureC: { mean: 196 / 3, max: 70.5 },
    });
  });

  it('power integrated over time without a counter; a reset without a range is left out', () => {
    const p = summariseDevice([s(0, { powerW: 100 }), s(1, { powerW: 200 }), s(3, { powerW: 200 })]);
    expect(p.energyFrom).toBe('power-integral');
    expect(p.energyJ).toBe(150 + 400);
    const r = summariseDevice([s(0, { energyJ: 100 }), s(1, { energyJ: 110 }), s(2, { energyJ: 5 }), s(3, { energyJ: 25 })]);
    expect(r).toMatchObject({ energyJ: 30, energyFrom: 'counter', counterResets: 1, powerFrom: 'counter', powerW: { mean: 15, max: 20 } });
    expect(summariseDevice([s(0, { powerW: 5 })])).toMatchObject({ energyJ: null, energyFrom: null, spanS: 0 });
    expect(summariseDevice([])).toMatchObject({ samples: 0, utilisation: null, powerW: null, energyJ: null, temperatureC: null });
    expect(summariseDevice([s(0, { powerW: 5 }), s(1, { powerW: 5 })]).temperatureC).toBeNull();
  });
});

function findSource(list: SourceSummary[], name: string, id?: string): SourceSummary {
  const s = list.find((x) => x.name === name && (id === undefined || x.device?.id === id));
  if (!s) throw new Error(`no ${name} ${id ?? ''} in ${JSON.stringify(list.map((x) => [x.name, x.device?.id]))}`);
  return s;
}

describe('startSampling (sysfs sources, no native needed)', () => {
  it('samples at the interval until stop(), with the right means', async () => {
    const sum = await withFakeInterval((advance) => {
      const sampling = startSampling({ intervalMs: 50, sources: ['amdgpu-sysfs', 'rapl'], roots: { sysfs: SYSFS } });
      expect(sampling.sources.map((s) => [s.name, s.available])).toEqual([
        ['amdgpu-sysfs', true],
        ['rapl', true],
      ]);
      advance(350);
      return sampling.stop().then(async (first) => {
        expect(await sampling.stop()).toBe(first);
        return first;
      });
    });
    expect(sum.intervalMs).toBe(50);
    expect(sum.lowConfidence).toBe(true);
    expect(sum.sources).toHaveLength(2 + 4);
    const card0 = findSource(sum.sources, 'amdgpu-sysfs', 'card0');
    expect(card0.samples).toBe(1 + 7 + 1); // at the start, 7 ticks of 50 ms in 350 ms, at stop()
    expect(card0).toMatchObject({ available: true, errors: 0, utilisation: { mean: 42, max: 42 }, powerW: { mean: 187, max: 187 } });
    expect(card0).toMatchObject({ energyJ: 0, energyFrom: 'counter', powerFrom: 'sensor', temperatureC: { mean: 71.5, max: 71.5 } });
    const card2 = findSource(sum.sources, 'amdgpu-sysfs', 'card2');
    expect(card2).toMatchObject({ utilisation: { mean: 7, max: 7 }, powerW: { mean: 15.25, max: 15.25 }, energyFrom: 'power-integral', temperatureC: { mean: 48, max: 48 } });
    expect(card2.energyJ!).toBeCloseTo(15.25 * card2.spanS, 9);
    expect(card2.spanS).toBeGreaterThan(0);
    expect(card2.spanS).toBeLessThanOrEqual(sum.durationS);
    const pkg = findSource(sum.sources, 'rapl', 'intel-rapl:0');
    expect(pkg).toMatchObject({ kind: 'cpu', utilisation: null, energyJ: 0, energyFrom: 'counter', temperatureC: null });
  });

  it('unavailable sources are reported, not zeros; bad options are EINVAL', async () => {
    const empty = tmpTree({ 'x/y': '' });
    const sum = await startSampling({ intervalMs: 50, sources: ['rapl'], roots: { sysfs: empty } }).stop();
    expect(sum.sources).toEqual([
      expect.objectContaining({ name: 'rapl', available: false, device: null, samples: 0, energyJ: null, temperatureC: null, reason: expect.stringMatching(/^no .*powercap/) }),
    ]);
    expect(codeOf(() => startSampling({ intervalMs: 0 })).code).toBe('EINVAL');
    expect(codeOf(() => startSampling({ sources: ['joulemeter' as never] })).code).toBe('EINVAL');
  });
});

describe('without the native core (GPUCOLO_NATIVE=0)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('nvml and rocm-smi are unavailable with "native core not loaded"; sysfs and RAPL still work', async () => {
    vi.stubEnv('GPUCOLO_NATIVE', '0');
    vi.resetModules(); // a fresh src/native.ts, whose loader caches per module instance
    const energy = await import('../src/energy/index.js');
    const probes = energy.probeEnergySources({ roots: { sysfs: SYSFS } });
    expect(probes.map((p) => [p.name, p.available])).toEqual([
      ['nvml', false],
      ['rocm-smi', false],
      ['amdgpu-sysfs', true],
      ['rapl', true],
    ]);
    expect(probes[0].reason).toBe('native core not loaded: native core disabled by GPUCOLO_NATIVE=0');
    expect(probes[1].reason).toMatch(/^native core not loaded/);
  });
});

// the fakes are built by the plain-CMake test build (cmake -S . -B build-cc && cmake --build build-cc)
function fakeLib(name: string): string | undefined {
  return [path.join(ROOT, 'build/Release', name), path.join(ROOT, 'build-cc', name)].find((f) => fs.existsSync(f));
}
const native = process.env.GPUCOLO_NATIVE === '0' ? null : loadNative();
const FAKE_NVML = fakeLib('libgpucolo_fake_nvml.so');
const FAKE_RSMI = fakeLib('libgpucolo_fake_rocm_smi.so');
const nativeSkip = !native
  ? 'native core not loaded'
  : typeof native.powerBackends !== 'function'
    ? 'native core built before native/power'
    : !FAKE_NVML || !FAKE_RSMI
      ? 'fake NVML/ROCm SMI not built (cmake --build build-cc)'
      : '';

describe.skipIf(nativeSkip !== '')(`native NVML / ROCm SMI through fakes${nativeSkip ? ` (skipped: ${nativeSkip})` : ''}`, () => {
  afterEach(() => vi.unstubAllEnvs());

  it('powerBackends/powerSample: devices, units, null fields, error codes', () => {
    vi.stubEnv('GPUCOLO_NVML_LIB', FAKE_NVML!);
    vi.stubEnv('GPUCOLO_ROCM_SMI_LIB', FAKE_RSMI!);
    const b = native!;
    const backends = b.powerBackends!();
    expect(backends).toEqual([
      {
        name: 'nvml',
        available: true,
        library: FAKE_NVML,
        devices: [
          { index: 0, name: 'Fake NVIDIA H100 80GB HBM3' },
          { index: 1, name: 'Fake NVIDIA T4' },
        ],
      },
      {
        name: 'rocm-smi',
        available: true,
        library: FAKE_RSMI,
        devices: [
          { index: 0, name: 'Fake AMD Instinct MI300X' },
          { index: 1, name: 'Fake AMD Instinct MI210' },
        ],
      },
    ]);
    const a = b.powerSample!('nvml', 0);
    const c = b.powerSample!('nvml', 0);
    expect(a).toMatchObject({ utilPercent: 37, powerW: 123.456, tempC: 61 });
    expect(c.energyJ! - a.energyJ!).toBe(1); // +1000 mJ per call
    expect(c.tNs).toBeGreaterThanOrEqual(a.tNs);
    // temperature NOT_SUPPORTED: null, and not among the errors
    expect(b.powerSample!('nvml', 1)).toMatchObject({ utilPercent: null, powerW: 123.456, energyJ: null, tempC: null, errors: ['utilisation: Insufficient Permissions (4)'] });
    const r0 = b.powerSample!('rocm-smi', 0);
    expect(r0).toMatchObject({ utilPercent: 55, powerW: 250, tempC: 72.5 }); // no edge sensor: junction, m°C -> °C
    expect(r0.errors).toBeUndefined();
    expect(b.powerSample!('rocm-smi', 0).energyJ! - r0.energyJ!).toBeCloseTo((1000 * 15.3) / 1e6, 6); // counts x 15.3 µJ
    const r1 = b.powerSample!('rocm-smi', 1);
    expect(r1).toMatchObject({ utilPercent: null, powerW: 75.5, energyJ: null, tempC: 41 }); // edge
    expect(r1.errors).toBeUndefined();
    expect(codeOf(() => b.powerSample!('nvml', 2)).code).toBe('EINVAL');
    expect(codeOf(() => b.powerSample!('nope' as never, 0)).code).toBe('EINVAL');
    vi.stubEnv('GPUCOLO_NVML_LIB', '/nonexistent/libnvidia-ml.so.1');
    const err = codeOf(() => b.powerSample!('nvml', 0));
    expect(err.code).toBe('ENOPOWER');
    expect(err.message).toMatch(/^nvml unavailable: GPUCOLO_NVML_LIB=\/nonexistent\/libnvidia-ml\.so\.1 not found/);
    expect(probeEnergySources({ sources: ['nvml'] })[0]).toMatchObject({ available: false, reason: expect.stringMatching(/not found/) });
  });

  it('startSampling over 350 ms at 50 ms: 9 samples, counter energy, integrated power, per-field errors', async () => {
    vi.stubEnv('GPUCOLO_NVML_LIB', FAKE_NVML!);
    vi.stubEnv('GPUCOLO_ROCM_SMI_LIB', FAKE_RSMI!);
    const sum = await withFakeInterval((advance) => {
      const sampling = startSampling({ intervalMs: 50, sources: ['nvml', 'rocm-smi'] });
      expect(sampling.sources.map((s) => [s.name, s.available, s.devices.map((d) => d.id)])).toEqual([
        ['nvml', true, ['nvml:0', 'nvml:1']],
        ['rocm-smi', true, ['rocm-smi:0', 'rocm-smi:1']],
      ]);
      advance(350);
      return sampling.stop();
    });
    const n0 = findSource(sum.sources, 'nvml', 'nvml:0');
    expect(n0.samples).toBe(1 + 7 + 1); // at the start, 7 ticks of 50 ms in 350 ms, at stop()
    expect(n0).toMatchObject({ errors: 0, utilisation: { mean: 37, max: 37 }, powerW: { mean: 123.456, max: 123.456 }, energyFrom: 'counter', temperatureC: { mean: 61, max: 61 } });
    expect(n0.energyJ).toBe(n0.samples - 1); // 1 J per call of the fake
    const n1 = findSource(sum.sources, 'nvml', 'nvml:1');
    expect(n1).toMatchObject({ utilisation: null, energyFrom: 'power-integral', temperatureC: null, errors: n1.samples, lastError: 'utilisation: Insufficient Permissions (4)' });
    expect(n1.energyJ!).toBeCloseTo(123.456 * n1.spanS, 9);
    const r0 = findSource(sum.sources, 'rocm-smi', 'rocm-smi:0');
    expect(r0).toMatchObject({ utilisation: { mean: 55, max: 55 }, powerW: { mean: 250, max: 250 }, energyFrom: 'counter', temperatureC: { mean: 72.5, max: 72.5 } });
    expect(r0.energyJ!).toBeCloseTo((r0.samples - 1) * 1000 * 15.3e-6, 6);
    const r1 = findSource(sum.sources, 'rocm-smi', 'rocm-smi:1');
    expect(r1).toMatchObject({ errors: 0, utilisation: null, powerW: { mean: 75.5 }, energyFrom: 'power-integral', temperatureC: { mean: 41, max: 41 } });
  });
});
