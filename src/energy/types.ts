/** Shapes shared by the energy sources, the sampler and its summary (src/energy/index.ts). */

export type EnergySourceName = 'nvml' | 'rocm-smi' | 'amdgpu-sysfs' | 'rapl';
export const ENERGY_SOURCES: readonly EnergySourceName[] = ['nvml', 'rocm-smi', 'amdgpu-sysfs', 'rapl'];

export interface EnergyDevice {
  /** position in the source's device list (NVML / ROCm SMI: the library's device index) */
  index: number;
  /** stable name within the source: "nvml:0", "card0", "intel-rapl:0:1" */
  id: string;
  /** for people: "NVIDIA H100 80GB HBM3", "AMD Instinct MI300X", "package-0" */
  name: string;
  /** where the readings come from (sysfs readers: the files; native: the library) */
  files?: string[];
  /** the energy counter wraps to 0 after this many J (RAPL max_energy_range_uj); absent = no wrap */
  energyWrapJ?: number;
}

export interface EnergySourceProbe {
  name: EnergySourceName;
  kind: 'gpu' | 'cpu';
  available: boolean;
  /** why not, one line */
  reason?: string;
  devices: EnergyDevice[];
  /** devices found but not usable (a source stays available while one device works) */
  skipped?: { id: string; reason: string }[];
}

/** A source opened for sampling: what it found, and how to read one of its devices. */
export interface OpenedSource {
  probe: EnergySourceProbe;
  /** reads device `index` of probe.devices; a field that fails is null, with its error in `errors` */
  read(index: number): EnergySample;
}

/** One reading of one device. */
export interface EnergySample {
  /** CLOCK_MONOTONIC ns (process.hrtime.bigint() and the native core use the same clock) */
  tNs: number;
  utilPercent: number | null;
  powerW: number | null;
  /** cumulative counter, J; only differences between samples mean something */
  energyJ: number | null;
  /**
   * °C, the GPU's main sensor: NVML's GPU sensor; ROCm SMI and amdgpu hwmon: edge, else junction
   * (MI300 has no edge sensor); null for CPU zones and where no sensor is readable
   */
  tempC: number | null;
  /** fields that failed for another reason than "not supported" */
  errors?: string[];
}

export interface MeanMax {
  mean: number;
  max: number;
}

export interface SourceSummary {
  name: EnergySourceName;
  kind: 'gpu' | 'cpu';
  /** null when the source was unavailable */
  device: EnergyDevice | null;
  available: boolean;
  reason?: string;
  samples: number;
  /** reads that failed, whole or in part */
  errors: number;
  lastError?: string;
  /** time between this device's first and last sample, s */
  spanS: number;
  utilisation: MeanMax | null;
  powerW: MeanMax | null;
  /** 'sensor': the device's power reading; 'counter': energy-counter differences over time */
  powerFrom: 'sensor' | 'counter' | null;
  /** energy over the span: counter difference when the device has a counter, else power integrated over time */
  energyJ: number | null;
  energyFrom: 'counter' | 'power-integral' | null;
  /** the counter went backwards without a known wrap range (driver reload): that interval is left out */
  counterResets: number;
  /** °C over the samples that have a temperature; null when none has */
  temperatureC: MeanMax | null;
}

/** One reading of one device, with the tick it belongs to (all devices are read per tick). */
export interface RawEnergySample extends EnergySample {
  tick: number;
  source: EnergySourceName;
  kind: 'gpu' | 'cpu';
  /** device id within the source ("nvml:0", "card0", "intel-rapl:0:1") */
  device: string;
  /** device name for people ("package-0", "dram", "NVIDIA H100 80GB HBM3") */
  deviceName: string;
}

export interface SamplingSummary {
  intervalMs: number;
  /** CLOCK_MONOTONIC ns when sampling started */
  startNs: number;
  /** start() to stop(), s */
  durationS: number;
  /**
   * windows shorter than ~1 s are low-confidence: NVML power is a 1-s average on Ampere and newer,
   * energy counters step every 10-100 ms (docs/energy.md#what-is-counted)
   */
  lowConfidence: boolean;
  sources: SourceSummary[];
  /** every reading in tick order, when keepSamples was asked for */
  samples?: RawEnergySample[];
}
