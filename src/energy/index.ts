/**
 * Device utilisation, power, energy and GPU temperature while something runs: one sampler over
 * four sources.
 *
 *   nvml          NVIDIA GPUs through libnvidia-ml (native core, dlopen())
 *   rocm-smi      AMD GPUs through librocm_smi64 (native core, dlopen())
 *   amdgpu-sysfs  AMD GPUs through sysfs: gpu_busy_percent, hwmon power/energy/temperature (pure TS)
 *   rapl          CPU packages/DRAM through powercap energy_uj (pure TS)
 *
 * A source that cannot be used is reported unavailable with its reason, never as zeros
 * (docs/energy.md#unavailable-is-said-never-zero). Sysfs roots are parameters, so everything runs against fixture trees.
 *
 *   const s = startSampling({ intervalMs: 100 });
 *   ... run the phase ...
 *   const summary = await s.stop();
 */
import { GpucoloError, oneLine } from '../errors.js';
import { openAmdgpuSysfs } from './amdgpu-sysfs.js';
import { openNativeSmi } from './native-smi.js';
import { openRapl } from './rapl.js';
import { monotonicNs } from './sysfs-text.js';
import { summariseDevice } from './summary.js';
import {
  ENERGY_SOURCES,
  type EnergySourceName,
  type EnergySourceProbe,
  type OpenedSource,
  type RawEnergySample,
  type SamplingSummary,
  type SourceSummary,
} from './types.js';

// The `energy` namespace of the package entry (src/index.ts) is this module: the sampler and the
// probes defined below, the source names and the sample and summary types. Each source's opener,
// its sysfs parsers and the summary arithmetic stay in their modules (code inside gpucolo and the
// tests import those directly): a name added here is a public API change (test/api-surface.test.ts).
export { ENERGY_SOURCES } from './types.js';
export type { EnergySourceName, EnergyDevice, EnergySourceProbe, OpenedSource, EnergySample, RawEnergySample, MeanMax, SourceSummary, SamplingSummary } from './types.js';

export interface EnergyOptions {
  /** which sources, default all four */
  sources?: readonly EnergySourceName[];
  /** sysfs root of amdgpu-sysfs and rapl, default /sys */
  roots?: { sysfs?: string };
}

export interface SamplingOptions extends EnergyOptions {
  /** default 100 */
  intervalMs?: number;
  /** keep every reading for the summary's `samples` (raw CSVs); default false */
  keepSamples?: boolean;
}

export interface EnergySampling {
  /** what was found when sampling started */
  readonly sources: EnergySourceProbe[];
  /** takes a last sample, stops the timer and summarises; later calls give the same summary */
  stop(): Promise<SamplingSummary>;
}

function checkSources(sources: readonly EnergySourceName[]): void {
  for (const s of sources) {
    if (!ENERGY_SOURCES.includes(s)) {
      throw new GpucoloError(`unknown energy source "${String(s)}" (${ENERGY_SOURCES.join(', ')})`, { code: 'EINVAL' });
    }
  }
}

/** Opens the requested sources (each one says whether it is available and why not). */
export function openEnergySources(opts: EnergyOptions = {}): OpenedSource[] {
  const sources = opts.sources ?? ENERGY_SOURCES;
  checkSources(sources);
  const sysfs = opts.roots?.sysfs ?? '/sys';
  return sources.map((name) => {
    switch (name) {
      case 'nvml':
      case 'rocm-smi':
        return openNativeSmi(name);
      case 'amdgpu-sysfs':
        return openAmdgpuSysfs(sysfs);
      case 'rapl':
        return openRapl(sysfs);
    }
  });
}

/** For `gpucolo doctor`: every source, available or not and why, with its devices. */
export function probeEnergySources(opts: EnergyOptions = {}): EnergySourceProbe[] {
  return openEnergySources(opts).map((s) => s.probe);
}

interface Track {
  source: OpenedSource;
  index: number;
  samples: RawEnergySample[];
  errors: number;
  lastError?: string;
}

/**
 * Samples every available device of the requested sources every `intervalMs` (plus once at the
 * start and once at stop()) until stop().
 *
 * Sampling runs on a JS timer (setInterval, unref'd so it never keeps the process alive), not on
 * a native thread: one sample is a few small sysfs reads or library calls, microseconds each, so
 * at 100 ms it costs far below 1% of a core and the event loop's jitter (ms) is small against the
 * interval. Each sample carries its own CLOCK_MONOTONIC time, so jitter does not bias the
 * integrals. A native sampling thread can be added later if profiling ever says so.
 */
export function startSampling(opts: SamplingOptions = {}): EnergySampling {
  const intervalMs = opts.intervalMs ?? 100;
  if (!Number.isFinite(intervalMs) || intervalMs < 1) {
    throw new GpucoloError(`intervalMs must be a number >= 1, got ${String(intervalMs)}`, { code: 'EINVAL' });
  }
  const opened = openEnergySources(opts);
  const state: SamplingState = { opened, tracks: buildTracks(opened), tick: 0 };
  const sampleAll = (): void => sampleTracks(state);

  const startNs = monotonicNs();
  sampleAll();
  const timer = state.tracks.length ? setInterval(sampleAll, intervalMs) : null;
  timer?.unref();
  let done: Promise<SamplingSummary> | null = null;

  return {
    sources: opened.map((s) => s.probe),
    stop(): Promise<SamplingSummary> {
      if (done) return done;
      if (timer) clearInterval(timer);
      sampleAll();
      const durationS = (monotonicNs() - startNs) / 1e9;
      const summary: SamplingSummary = { intervalMs, startNs, durationS, lowConfidence: durationS < 1, sources: summariseSources(state) };
      if (opts.keepSamples) summary.samples = state.tracks.flatMap((t) => t.samples).sort((a, b) => a.tick - b.tick || a.tNs - b.tNs);
      done = Promise.resolve(summary);
      return done;
    },
  };
}

/** What startSampling's steps share: the opened sources, one track per available device, the tick count. */
interface SamplingState {
  opened: OpenedSource[];
  tracks: Track[];
  tick: number;
}

/** Step: one track per device of every available source, in source then device order. */
function buildTracks(opened: OpenedSource[]): Track[] {
  const tracks: Track[] = [];
  for (const source of opened) {
    if (!source.probe.available) continue;
    source.probe.devices.forEach((_, index) => tracks.push({ source, index, samples: [], errors: 0 }));
  }
  return tracks;
}

/** Step: reads every track once (recording errors per track), then advances the tick. */
function sampleTracks(state: SamplingState): void {
  const tick = state.tick;
  for (const t of state.tracks) {
    const dev = t.source.probe.devices[t.index];
    try {
      const s = t.source.read(t.index);
      t.samples.push({ ...s, tick, source: t.source.probe.name, kind: t.source.probe.kind, device: dev.id, deviceName: dev.name });
      if (s.errors?.length) {
        t.errors++;
        t.lastError = s.errors.join('; ');
      }
    } catch (err) {
      t.errors++;
      t.lastError = oneLine(err);
    }
  }
  state.tick++;
}

/** Step: one summary per unavailable source, and one per device of each available source. */
function summariseSources(state: SamplingState): SourceSummary[] {
  const out: SourceSummary[] = [];
  for (const source of state.opened) {
    const p = source.probe;
    if (!p.available) {
      out.push({
        name: p.name,
        kind: p.kind,
        device: null,
        available: false,
        reason: p.reason,
        samples: 0,
        errors: 0,
        spanS: 0,
        utilisation: null,
        powerW: null,
        powerFrom: null,
        energyJ: null,
        energyFrom: null,
        counterResets: 0,
        temperatureC: null,
      });
      continue;
    }
    for (const t of state.tracks.filter((x) => x.source === source)) {
      const device = p.devices[t.index];
      const s: SourceSummary = {
        name: p.name,
        kind: p.kind,
        device,
        available: true,
        errors: t.errors,
        ...summariseDevice(t.samples, device.energyWrapJ),
      };
      if (t.lastError) s.lastError = t.lastError;
      out.push(s);
    }
  }
  return out;
}
