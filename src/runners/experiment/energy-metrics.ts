/**
 * Energy of one training run: a recording over src/energy's sources while the run executes, and
 * its mapping to the result's EnergyMetrics (snake_case, nulls for what no source measured).
 *
 * The recording reads the sources that src/energy opens (openEnergySources) on its own timer and
 * keeps every raw sample, because the results also carry the raw series (gpu_power.csv,
 * cpu_energy.csv) and the minimum GPU power, which startSampling's summary does not expose. The
 * per-device summary is src/energy's own (summariseDevice: counter differences with wrap, else
 * power integrated over time), so the figures are the ones startSampling would give.
 *
 * Rules (docs/energy.md#what-is-counted, docs/design-rules.md#unknown-is-null): an unavailable source is null plus its reason in
 * `note`, never 0; energy comes from the device's counter where it has one, else from power x
 * time, and the note says which; a window under ~1 s is flagged as low confidence. GPU
 * temperature comes from the same source and devices as GPU power (NVML's GPU sensor; ROCm SMI and
 * amdgpu hwmon: edge, else junction): the mean of the devices' means and the max of their maxima;
 * the note names devices without a reading, or says why there is none at all.
 */
import path from 'node:path';
import { oneLine } from '../../errors.js';
import { startSampling, type EnergySourceName, type RawEnergySample, type SamplingSummary, type SourceSummary } from '../../energy/index.js';
import { writeFileAtomic as writeTextAtomic } from '../../write.js';
import type { EnergyMetrics } from './types.js';
import { makeDirs } from '../../fs-dirs.js';

export interface EnergyRecordingOptions {
  /** sample period, ms (default 1000) */
  intervalMs?: number;
  /** which sources (default all of src/energy's) */
  sources?: readonly EnergySourceName[];
  /** sysfs root for amdgpu-sysfs and rapl (default /sys) */
  sysfsRoot?: string;
}

export interface EnergyRecording {
  summary: SamplingSummary;
  samples: RawEnergySample[];
  /** CLOCK_MONOTONIC ns at start (t = 0 of the CSV rows) */
  startNs: number;
  /** the sampler could not be started at all (then summary has no sources) */
  error?: string;
}

export interface EnergyRecorder {
  /** takes a last sample and summarises; later calls give the same recording */
  stop(): Promise<EnergyRecording>;
}

/**
 * Starts sampling every device of the requested sources (src/energy's sampler, keeping the raw
 * readings for the CSVs); never throws: a sampler that cannot start is an error in the recording.
 */
export function startEnergyRecording(opts: EnergyRecordingOptions = {}): EnergyRecorder {
  const intervalMs = opts.intervalMs ?? 1000;
  let sampling: ReturnType<typeof startSampling>;
  try {
    sampling = startSampling({ intervalMs, keepSamples: true, ...(opts.sources ? { sources: opts.sources } : {}), ...(opts.sysfsRoot ? { roots: { sysfs: opts.sysfsRoot } } : {}) });
  } catch (err) {
    const startNs = Number(process.hrtime.bigint());
    const error = `energy sampler not started: ${oneLine(err)}`;
    const rec: EnergyRecording = { summary: { intervalMs, startNs, durationS: 0, lowConfidence: true, sources: [] }, samples: [], startNs, error };
    return { stop: () => Promise.resolve(rec) };
  }
  let done: Promise<EnergyRecording> | null = null;
  return {
    stop(): Promise<EnergyRecording> {
      done ??= sampling.stop().then((summary) => ({ summary, samples: summary.samples ?? [], startNs: summary.startNs }));
      return done;
    },
  };
}

// ---- recording -> EnergyMetrics -----------------------------------------------------------------

/** GPU sources, preferred first: one of them is used (amdgpu-sysfs and ROCm SMI see the same GPUs). */
const GPU_ORDER: EnergySourceName[] = ['nvml', 'rocm-smi', 'amdgpu-sysfs'];

const round = (v: number | null, digits = 3): number | null => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(digits)));

function stats(values: number[]): { mean: number; max: number; min: number } | null {
  if (values.length === 0) return null;
  let sum = 0;
  let max = -Infinity;
  let min = Infinity;
  for (const v of values) {
    sum += v;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  return { mean: sum / values.length, max, min };
}

/**
 * Per tick, the power of every device of `devices` summed: the device's sensor reading, else its
 * counter difference over the interval ending at this tick. Ticks where some device has neither
 * are left out (a partial sum would read as a dip).
 */
function totalPowerSeries(samples: RawEnergySample[], devices: string[]): number[] {
  const byTick = new Map<number, Map<string, number>>();
  const prev = new Map<string, RawEnergySample>();
  for (const s of samples) {
    if (!devices.includes(s.device)) continue;
    let w = s.powerW;
    const p = prev.get(s.device);
    if (w === null && p && p.energyJ !== null && s.energyJ !== null && s.tNs > p.tNs && s.energyJ >= p.energyJ) {
      w = (s.energyJ - p.energyJ) / ((s.tNs - p.tNs) / 1e9);
    }
    prev.set(s.device, s);
    if (w === null) continue;
    let m = byTick.get(s.tick);
    if (!m) byTick.set(s.tick, (m = new Map()));
    m.set(s.device, w);
  }
  const out: number[] = [];
  for (const m of byTick.values()) if (m.size === devices.length) out.push([...m.values()].reduce((a, b) => a + b, 0));
  return out;
}

/** Per tick, the mean utilisation of the devices that report it. */
function utilSeries(samples: RawEnergySample[], devices: string[]): number[] {
  const byTick = new Map<number, number[]>();
  for (const s of samples) {
    if (!devices.includes(s.device) || s.utilPercent === null) continue;
    const l = byTick.get(s.tick);
    if (l) l.push(s.utilPercent);
    else byTick.set(s.tick, [s.utilPercent]);
  }
  return [...byTick.values()].map((l) => l.reduce((a, b) => a + b, 0) / l.length);
}

const sumOrNull = (vals: (number | null)[]): number | null => (vals.length === 0 || vals.some((v) => v === null) ? null : (vals as number[]).reduce((a, b) => a + b, 0));

function reasonsOf(summaries: SourceSummary[]): string {
  return summaries.map((s) => `${s.name}: ${s.reason ?? (s.available ? 'no device' : 'unavailable')}`).join(' / ');
}

/** All-null metrics with a note (the sampler could not run at all). */
export function unavailableEnergyMetrics(reason: string, attribution: EnergyMetrics['attribution']): EnergyMetrics {
  return {
    cpu_energy_pkg_joules: null,
    cpu_energy_ram_joules: null,
    cpu_energy_total_joules: null,
    gpu_power_avg_watts: null,
    gpu_power_max_watts: null,
    gpu_power_min_watts: null,
    gpu_energy_total_joules: null,
    gpu_temp_avg_celsius: null,
    gpu_temp_max_celsius: null,
    gpu_util_avg_percent: null,
    gpu_util_max_percent: null,
    attribution,
    note: `gpu: unavailable: ${reason}; cpu: unavailable: ${reason}`,
  };
}

/** The result's EnergyMetrics from a recording. */
export function energyMetrics(rec: EnergyRecording, attribution: EnergyMetrics['attribution']): EnergyMetrics {
  if (rec.error) return unavailableEnergyMetrics(rec.error, attribution);
  const out = unavailableEnergyMetrics('', attribution);
  const notes: string[] = [];
  const all = rec.summary.sources;

  // GPU: the first available source in preference order, all of its devices summed
  const gpuSummaries = all.filter((s) => s.kind === 'gpu');
  const gpuName = GPU_ORDER.find((n) => gpuSummaries.some((s) => s.name === n && s.available && s.device));
  if (!gpuName) {
    notes.push(`gpu: unavailable: ${gpuSummaries.length ? reasonsOf(gpuSummaries) : 'no GPU source sampled'}`);
  } else {
    const devs = gpuSummaries.filter((s) => s.name === gpuName && s.available && s.device);
    const ids = devs.map((d) => d.device!.id);
    const power = stats(totalPowerSeries(rec.samples, ids));
    const util = stats(utilSeries(rec.samples, ids));
    out.gpu_power_avg_watts = round(power?.mean ?? null);
    out.gpu_power_max_watts = round(power?.max ?? null);
    out.gpu_power_min_watts = round(power?.min ?? null);
    out.gpu_util_avg_percent = round(util?.mean ?? null);
    out.gpu_util_max_percent = round(util?.max ?? null);
    out.gpu_energy_total_joules = round(sumOrNull(devs.map((d) => d.energyJ)));
    const from = new Set(devs.map((d) => d.energyFrom));
    const energyHow =
      out.gpu_energy_total_joules === null
        ? 'energy unavailable (no counter and fewer than two power readings)'
        : from.size === 1
          ? from.has('counter')
            ? 'energy from the energy counter'
            : 'energy = power x time (no energy counter)'
          : `energy from the counter (${devs.filter((d) => d.energyFrom === 'counter').map((d) => d.device!.id).join(', ')}) and power x time (${devs.filter((d) => d.energyFrom !== 'counter').map((d) => d.device!.id).join(', ')})`;
    // temperature: per device over its samples, then across devices (a sum would mean nothing)
    const temps = devs.filter((d) => d.temperatureC !== null).map((d) => d.temperatureC!);
    out.gpu_temp_avg_celsius = temps.length ? round(temps.reduce((a, t) => a + t.mean, 0) / temps.length) : null;
    out.gpu_temp_max_celsius = temps.length ? round(Math.max(...temps.map((t) => t.max))) : null;
    const noTemp = devs.filter((d) => d.temperatureC === null).map((d) => d.device!.id);
    const tempHow =
      temps.length === 0
        ? `; temperature unavailable: ${gpuName === 'amdgpu-sysfs' ? "no readable edge or junction temp*_input in the cards' hwmon" : `${gpuName} reports no GPU temperature for these devices`}`
        : noTemp.length
          ? `; temperature from ${devs.filter((d) => d.temperatureC !== null).map((d) => d.device!.id).join(', ')} only (${noTemp.join(', ')}: no reading)`
          : '';
    const names = [...new Set(devs.map((d) => d.device!.name))].join(', ');
    const others = gpuSummaries.filter((s) => s.name !== gpuName && s.available).map((s) => s.name);
    notes.push(`gpu: ${gpuName}, ${devs.length} device(s) (${names}), ${energyHow}${power ? '' : ', no power readings'}${tempHow}${others.length ? `; not used: ${[...new Set(others)].join(', ')}` : ''}`);
    const errs = devs.filter((d) => d.errors > 0);
    if (errs.length) notes.push(`gpu read errors: ${errs.map((d) => `${d.device!.id}: ${d.errors} (${d.lastError ?? ''})`).join(', ')}`);
  }

  // CPU: RAPL package zones and DRAM zones
  const rapl = all.filter((s) => s.name === 'rapl');
  const zones = rapl.filter((s) => s.available && s.device);
  if (zones.length === 0) {
    notes.push(`cpu: unavailable: ${rapl.length ? reasonsOf(rapl) : 'rapl not sampled'}`);
  } else {
    const pkg = zones.filter((z) => /^package/i.test(z.device!.name));
    const dram = zones.filter((z) => /^dram/i.test(z.device!.name));
    out.cpu_energy_pkg_joules = pkg.length ? round(sumOrNull(pkg.map((z) => z.energyJ))) : null;
    out.cpu_energy_ram_joules = dram.length ? round(sumOrNull(dram.map((z) => z.energyJ))) : null;
    out.cpu_energy_total_joules = out.cpu_energy_pkg_joules === null ? null : round(out.cpu_energy_pkg_joules + (out.cpu_energy_ram_joules ?? 0));
    const resets = zones.reduce((a, z) => a + z.counterResets, 0);
    notes.push(
      `cpu: rapl energy counter (${zones.map((z) => z.device!.name).join(', ')})${dram.length ? '' : ', no dram zone: total = package'}${pkg.length ? '' : ', no package zone: totals unavailable'}${resets ? `, ${resets} counter reset(s) left out` : ''}`,
    );
  }
  if (rec.summary.lowConfidence) notes.push(`window ${rec.summary.durationS.toFixed(2)} s < 1 s: low confidence`);
  out.note = notes.join('; ');
  return out;
}

// ---- raw samples as CSV -------------------------------------------------------------------------

/** A recording with the phase it belongs to, for the CSV files. */
export interface LabelledRecording {
  /** 'foreground' | 'foreground_solo' | 'idle_baseline' */
  phase: string;
  attempt: number;
  rec: EnergyRecording;
}

export const GPU_CSV_HEADER = 'phase,attempt,source,device,device_name,t_s,util_percent,power_w,energy_counter_j,temp_c';
export const CPU_CSV_HEADER = 'phase,attempt,source,zone,zone_name,t_s,energy_counter_j';

const csvCell = (v: string | number | null): string => {
  if (v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/**
 * Writes <dir>/gpu_power.csv and <dir>/cpu_energy.csv (atomically): one row per raw sample, t_s
 * from the start of its recording; empty cells for readings a device does not give. A source that
 * was unavailable has no rows (its reason is in the result's energy note).
 */
export function writeEnergyCsv(dir: string, recordings: readonly LabelledRecording[]): { gpu: string; cpu: string } {
  makeDirs(dir);
  const gpu = [GPU_CSV_HEADER];
  const cpu = [CPU_CSV_HEADER];
  for (const { phase, attempt, rec } of recordings) {
    for (const s of rec.samples) {
      const t = Number(((s.tNs - rec.startNs) / 1e9).toFixed(3));
      if (s.kind === 'gpu') gpu.push([phase, attempt, s.source, s.device, s.deviceName, t, s.utilPercent, s.powerW, s.energyJ, s.tempC ?? null].map(csvCell).join(','));
      else cpu.push([phase, attempt, s.source, s.device, s.deviceName, t, s.energyJ].map(csvCell).join(','));
    }
  }
  const files = { gpu: path.join(dir, 'gpu_power.csv'), cpu: path.join(dir, 'cpu_energy.csv') };
  writeTextAtomic(files.gpu, `${gpu.join('\n')}\n`);
  writeTextAtomic(files.cpu, `${cpu.join('\n')}\n`);
  return files;
}

/**
 * The estimate's explanation with the derived deltas where both numbers exist: combined minus
 * solo (what the background added) and solo minus idle (what the foreground added over idle).
 */
export function estimateNote(combined: EnergyMetrics, solo: EnergyMetrics, idle: EnergyMetrics): string {
  const parts = ['estimate, not a measurement: energy is per device, not per process; foreground_solo = the same foreground run alone, idle_baseline = nothing started for as long as the solo run'];
  const delta = (label: string, key: 'gpu_energy_total_joules' | 'cpu_energy_total_joules'): void => {
    const c = combined[key];
    const s = solo[key];
    const i = idle[key];
    if (c === null || s === null || i === null) {
      parts.push(`${label}: not all three measured, no split`);
      return;
    }
    parts.push(`${label}: combined ${c.toFixed(1)} J, solo ${s.toFixed(1)} J, idle ${i.toFixed(1)} J -> foreground above idle ≈ ${(s - i).toFixed(1)} J, background added ≈ ${(c - s).toFixed(1)} J`);
  };
  delta('gpu', 'gpu_energy_total_joules');
  delta('cpu', 'cpu_energy_total_joules');
  return parts.join('; ');
}
