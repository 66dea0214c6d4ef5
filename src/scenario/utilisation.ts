/**
 * Device utilisation of a phase: the device's own counters (NVML / ROCm SMI / amdgpu sysfs,
 * sampled every 100 ms over the measured window) where one sees the GPU, else an estimate from the
 * busy time of the requests; the estimate is kept beside the counters either way. Over rounds the
 * counters are averaged weighted by each run's measured time, and the estimate comes from the
 * pooled requests.
 */
import { startSampling, type SamplingSummary } from '../energy/index.js';
import type { Form } from './schema.js';
import type { PhaseResult, TaskSamples } from './types.js';

export type Utilisation = PhaseResult['utilisation'];
export type SampledUtilisation = { value: number; source: 'nvml' | 'rocm-smi' | 'amdgpu-sysfs'; reason: string } | { reason: string };

/**
 * Device utilisation from NVML / ROCm SMI / amdgpu sysfs over a phase's measured window (sampled
 * every 100 ms after the warm-up), when one of them sees a GPU. Device 0 of the first source
 * that reports utilisation: with several GPUs set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA's device
 * 0 is NVML's.
 */
export function startUtilSampling(delayNs: number): { stop(): Promise<SamplingSummary | null> } {
  let sampling: ReturnType<typeof startSampling> | null = null;
  const timer = setTimeout(() => {
    try {
      sampling = startSampling({ intervalMs: 100, sources: ['nvml', 'rocm-smi', 'amdgpu-sysfs'] });
    } catch {
      sampling = null;
    }
  }, delayNs / 1e6);
  return {
    async stop() {
      clearTimeout(timer);
      const s = sampling as ReturnType<typeof startSampling> | null;
      return s ? s.stop() : null;
    },
  };
}

export function sampledUtilisation(summary: SamplingSummary | null): SampledUtilisation {
  if (!summary) return { reason: 'no device sampling (phase ended before its warm-up did)' };
  const hit = summary.sources.find((x) => x.kind === 'gpu' && x.available && x.utilisation !== null && x.samples >= 2);
  if (hit && (hit.name === 'nvml' || hit.name === 'rocm-smi' || hit.name === 'amdgpu-sysfs')) {
    return { value: hit.utilisation!.mean / 100, source: hit.name, reason: `${hit.name} device ${hit.device?.name ?? '?'}: mean of ${hit.samples} samples (max ${hit.utilisation!.max}%)` };
  }
  const why = summary.sources.filter((x) => x.kind === 'gpu').map((x) => `${x.name}: ${x.available ? 'no utilisation reading' : (x.reason ?? 'unavailable')}`);
  return { reason: why.join('; ') || 'no GPU source' };
}

/** The busy-time estimate: Σ service time (x the share of compute units a probe kernel's blocks occupy) / measured time. */
export function busyUtilisation(samples: TaskSamples[], blocks: Record<string, number>, computeUnits: number, measuredNs: number, form: Form, device: string | null): Utilisation {
  if (measuredNs <= 0) return { value: null, source: 'unavailable', reason: 'nothing measured' };
  if (form === 'torch' && (device === null || device === 'cpu')) return { value: null, source: 'unavailable', reason: 'workers ran on the cpu: no device to be busy' };
  let busy = 0;
  for (const s of samples) {
    const share = form === 'probe' && computeUnits > 0 ? Math.min(blocks[s.task] ?? 1, computeUnits) / computeUnits : 1;
    for (const v of s.serviceNs) busy += v * share;
  }
  const value = Math.min(1, busy / measuredNs);
  return {
    value,
    source: 'busy-time',
    reason: form === 'probe' ? 'kernel busy time x share of compute units its blocks occupy' : 'sum of model service times (overlapping requests make this an upper bound)',
  };
}

/**
 * The device's own figure where the runs sampled one (mean over the runs that did, weighted by
 * measured time), else the busy-time estimate; the estimate is kept beside it either way.
 */
export function pooledUtilisation(runs: { sampled: SampledUtilisation; measuredNs: number }[], busy: Utilisation): Utilisation {
  const hits = runs.filter((r): r is { sampled: Extract<SampledUtilisation, { value: number }>; measuredNs: number } => 'value' in r.sampled);
  if (hits.length > 0) {
    const w = hits.reduce((a, r) => a + Math.max(r.measuredNs, 1), 0);
    const value = hits.reduce((a, r) => a + r.sampled.value * Math.max(r.measuredNs, 1), 0) / w;
    const reason = hits.length === 1 ? hits[0].sampled.reason : `mean of ${hits.length} runs (${hits.map((h) => h.sampled.reason).join('; ')})`;
    return { value, source: hits[0].sampled.source, reason, busyTime: busy.value };
  }
  const why = [...new Set(runs.map((r) => r.sampled.reason))].join('; ');
  return { ...busy, reason: `${busy.reason ?? ''}${busy.reason ? '; ' : ''}device counters: ${why || 'not sampled'}` };
}
