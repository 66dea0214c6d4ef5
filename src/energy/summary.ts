/** From one device's samples to its means, maxima, energy and temperature (pure; src/energy/index.ts). */
import type { EnergySample, MeanMax, SourceSummary } from './types.js';

type DeviceFigures = Pick<
  SourceSummary,
  'samples' | 'spanS' | 'utilisation' | 'powerW' | 'powerFrom' | 'energyJ' | 'energyFrom' | 'counterResets' | 'temperatureC'
>;

function meanMax(values: number[]): MeanMax | null {
  if (values.length === 0) return null;
  let sum = 0;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v > max) max = v;
  }
  return { mean: sum / values.length, max };
}

/**
 * Energy: the difference of the device's cumulative counter over the samples that have it
 * (wrapping at `wrapJ` when the counter has a range: Δ = e1 − e0 + range when e1 < e0, which
 * assumes at most one wrap between two samples; a backwards step without a range is a reset and
 * that interval is left out). Without a counter, the power readings are integrated over time
 * (trapezoids between consecutive samples). Power: the sensor's readings; without them, counter
 * differences over time (RAPL has no power file).
 */
export function summariseDevice(samples: readonly EnergySample[], wrapJ?: number): DeviceFigures {
  const n = samples.length;
  const spanS = n >= 2 ? (samples[n - 1].tNs - samples[0].tNs) / 1e9 : 0;
  const util: number[] = [];
  const power: number[] = [];
  const temp: number[] = [];
  for (const s of samples) {
    if (s.utilPercent !== null) util.push(s.utilPercent);
    if (s.powerW !== null) power.push(s.powerW);
    // `?? null`: samples recorded before tempC existed (or from an older native core) lack it
    const t = s.tempC ?? null;
    if (t !== null) temp.push(t);
  }

  // counter differences between consecutive samples that have the counter
  let counterJ = 0;
  let intervals = 0;
  let counterS = 0;
  let maxIntervalW = -Infinity;
  let counterResets = 0;
  let prev: EnergySample | null = null;
  for (const s of samples) {
    if (s.energyJ === null) continue;
    if (prev && prev.energyJ !== null) {
      let d = s.energyJ - prev.energyJ;
      if (d < 0 && wrapJ !== undefined && wrapJ > 0) d += wrapJ;
      const dt = (s.tNs - prev.tNs) / 1e9;
      if (d < 0) {
        counterResets++;
      } else {
        counterJ += d;
        intervals++;
        counterS += dt;
        if (dt > 0 && d / dt > maxIntervalW) maxIntervalW = d / dt;
      }
    }
    prev = s;
  }

  let energyJ: number | null = null;
  let energyFrom: SourceSummary['energyFrom'] = null;
  if (intervals > 0) {
    energyJ = counterJ;
    energyFrom = 'counter';
  } else {
    let integral = 0;
    let pairs = 0;
    let last: EnergySample | null = null;
    for (const s of samples) {
      if (s.powerW === null) continue;
      if (last && last.powerW !== null) {
        integral += ((last.powerW + s.powerW) / 2) * ((s.tNs - last.tNs) / 1e9);
        pairs++;
      }
      last = s;
    }
    if (pairs > 0) {
      energyJ = integral;
      energyFrom = 'power-integral';
    }
  }

  let powerW = meanMax(power);
  let powerFrom: SourceSummary['powerFrom'] = powerW ? 'sensor' : null;
  if (!powerW && intervals > 0 && counterS > 0) {
    powerW = { mean: counterJ / counterS, max: maxIntervalW };
    powerFrom = 'counter';
  }
  return { samples: n, spanS, utilisation: meanMax(util), powerW, powerFrom, energyJ, energyFrom, counterResets, temperatureC: meanMax(temp) };
}
