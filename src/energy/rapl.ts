/**
 * CPU energy from RAPL through powercap (docs/energy.md#sources):
 *
 *   <sysfs>/class/powercap/intel-rapl:<N>[:<M>]/name                  package-0, core, uncore, dram, psys
 *   <sysfs>/class/powercap/intel-rapl:<N>[:<M>]/energy_uj             µJ, cumulative
 *   <sysfs>/class/powercap/intel-rapl:<N>[:<M>]/max_energy_range_uj   µJ, where energy_uj wraps to 0
 *
 * Zones and subzones are listed as they are (a package zone includes its core subzone; dram is
 * separate): callers add what they need. energy_uj is root-only since Linux 5.10 (CVE-2020-8694),
 * so EACCES is the common answer for a normal user; containers often hide powercap entirely.
 * Modern AMD CPUs expose the same zones under the same names.
 */
import type { EnergyDevice, EnergySample, EnergySourceProbe, OpenedSource } from './types.js';
import { cannotRead, listDir, monotonicNs, naturalCompare, parseLineFile, parseUnsignedFile, readText, underRoot } from './sysfs-text.js';
import { errnoCode, GpucoloError, oneLine, outOfRange } from '../errors.js';

export const POWERCAP_CLASS = 'class/powercap';

/** energy_uj: µJ -> J */
export function parseRaplEnergyJ(text: string, path: string): number {
  return parseUnsignedFile(text, path, 'energy in microjoules') / 1e6;
}

/** max_energy_range_uj: µJ -> J */
export function parseRaplMaxEnergyRangeJ(text: string, path: string): number {
  return parseUnsignedFile(text, path, 'an energy range in microjoules') / 1e6;
}

/** name: "package-0\n" -> "package-0" */
export function parseRaplName(text: string): string {
  return parseLineFile(text);
}

/** What to do about a failed read of energy_uj. */
export function raplReadHint(code: string): string | undefined {
  if (code === 'EACCES' || code === 'EPERM') {
    return 'energy_uj is root-only since Linux 5.10 (CVE-2020-8694): run as root, or make it readable (e.g. a udev rule or tmpfiles.d chmod o+r)';
  }
  return undefined;
}

function isZone(name: string): boolean {
  return /^intel-rapl:\d+(:\d+)*$/.test(name);
}

/** Finds the RAPL zones under <sysfsRoot>/class/powercap whose energy counter can be read. */
export function openRapl(sysfsRoot = '/sys'): OpenedSource {
  const probe: EnergySourceProbe = { name: 'rapl', kind: 'cpu', available: false, devices: [] };
  const paths: string[] = [];
  const dir = underRoot(sysfsRoot, POWERCAP_CLASS);
  const listing = listDir(dir);
  const noRead = (): EnergySample => {
    throw new GpucoloError(`rapl unavailable: ${probe.reason}`, { code: 'ENOPOWER' });
  };
  if ('code' in listing) {
    probe.reason =
      listing.code === 'ENOENT'
        ? `no ${dir}: no powercap/RAPL driver here (VMs and containers often hide it)`
        : cannotRead(dir, listing.err);
    return { probe, read: noRead };
  }
  const zones = listing.names.filter(isZone).sort(naturalCompare);
  if (zones.length === 0) {
    probe.reason = `no intel-rapl:* zone in ${dir} (the intel_rapl_msr / rapl driver is not loaded)`;
    return { probe, read: noRead };
  }
  const skipped: { id: string; reason: string }[] = [];
  for (const zone of zones) {
    const zdir = `${dir}/${zone}`;
    const energyPath = `${zdir}/energy_uj`;
    try {
      parseRaplEnergyJ(readText(energyPath), energyPath);
    } catch (err) {
      skipped.push({ id: zone, reason: errnoCode(err) === 'EBADTEXT' ? oneLine(err) : cannotRead(energyPath, err, raplReadHint) });
      continue;
    }
    let name = zone;
    try {
      name = parseRaplName(readText(`${zdir}/name`)) || zone;
    } catch {
      // keep the zone id
    }
    const device: EnergyDevice = { index: probe.devices.length, id: zone, name, files: [energyPath] };
    // read it, don't assume it: wrap arithmetic needs the zone's own range
    try {
      device.energyWrapJ = parseRaplMaxEnergyRangeJ(readText(`${zdir}/max_energy_range_uj`), `${zdir}/max_energy_range_uj`);
      if (!(device.energyWrapJ > 0)) delete device.energyWrapJ;
    } catch {
      // without it a backwards step counts as a reset (SourceSummary.counterResets)
    }
    probe.devices.push(device);
    paths.push(energyPath);
  }
  if (skipped.length) probe.skipped = skipped;
  if (probe.devices.length) {
    probe.available = true;
  } else {
    // usually one reason for every zone (EACCES): say it once
    const reasons = [...new Set(skipped.map((s) => s.reason.replace(`${dir}/${s.id}/`, `${dir}/<zone>/`)))];
    probe.reason = reasons.join('; ');
    return { probe, read: noRead };
  }
  return {
    probe,
    read(index: number): EnergySample {
      const path = paths[index];
      if (path === undefined) throw outOfRange(`rapl has no device ${index}`);
      const t0 = monotonicNs();
      let energyJ: number | null = null;
      let error: string | undefined;
      try {
        energyJ = parseRaplEnergyJ(readText(path), path);
      } catch (err) {
        error = errnoCode(err) === 'EBADTEXT' ? oneLine(err) : cannotRead(path, err, raplReadHint);
      }
      const t1 = monotonicNs();
      const s: EnergySample = { tNs: t0 + (t1 - t0) / 2, utilPercent: null, powerW: null, energyJ, tempC: null };
      if (error) s.errors = [error];
      return s;
    },
  };
}
