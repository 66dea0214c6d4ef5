/**
 * NVML and ROCm SMI through the native core (native/power: dlopen() of libnvidia-ml.so.1 /
 * librocm_smi64.so, units already converted to %, W, J, °C). Without the native core both are
 * unavailable with "native core not loaded: <why>"; the sysfs readers do not need it.
 */
import { loadNative, nativeReport, rebuildHint, type NativeBinding, type NativePowerBackend } from '../native.js';
import { GpucoloError, oneLine, outOfRange } from '../errors.js';
import type { EnergySample, EnergySourceProbe, OpenedSource } from './types.js';

export type NativeSmiName = NativePowerBackend['name'];

function unavailable(name: NativeSmiName, reason: string): OpenedSource {
  return {
    probe: { name, kind: 'gpu', available: false, reason, devices: [] },
    read() {
      // the code the native core gives the same failure (powerSample on an unavailable backend)
      throw new GpucoloError(`${name} unavailable: ${reason}`, { code: 'ENOPOWER' });
    },
  };
}

/**
 * Opens one backend. `binding` is for tests; by default the loaded addon. The library is opened
 * by the native core on first use; GPUCOLO_NVML_LIB / GPUCOLO_ROCM_SMI_LIB are read then (a later
 * change opens the backend again).
 */
export function openNativeSmi(name: NativeSmiName, binding: NativeBinding | null = loadNative()): OpenedSource {
  if (!binding) {
    const why = nativeReport().errors.map((e) => e.message).join('; ');
    return unavailable(name, `native core not loaded${why ? `: ${why}` : ''}`);
  }
  const { powerBackends, powerSample } = binding;
  if (typeof powerBackends !== 'function' || typeof powerSample !== 'function') {
    return unavailable(name, `the native core has no power counters (built before native/power): run ${rebuildHint()}`);
  }
  let info: NativePowerBackend | undefined;
  try {
    info = powerBackends.call(binding).find((b) => b.name === name);
  } catch (err) {
    return unavailable(name, `powerBackends failed: ${oneLine(err)}`);
  }
  if (!info) return unavailable(name, `the native core does not know ${name}`);
  if (!info.available) return unavailable(name, info.reason ?? 'unavailable');
  const probe: EnergySourceProbe = {
    name,
    kind: 'gpu',
    available: true,
    devices: info.devices.map((d) => ({ index: d.index, id: `${name}:${d.index}`, name: d.name, files: [info.library] })),
  };
  return {
    probe,
    read(index: number): EnergySample {
      const dev = probe.devices[index];
      if (!dev) throw outOfRange(`${name} has no device ${index}`);
      const s = powerSample.call(binding, name, dev.index);
      const out: EnergySample = { tNs: s.tNs, utilPercent: s.utilPercent, powerW: s.powerW, energyJ: s.energyJ, tempC: s.tempC ?? null };
      if (s.errors?.length) out.errors = s.errors;
      return out;
    },
  };
}
