/**
 * amdgpu through sysfs, no library and no root (docs/energy.md#sources):
 *
 *   <sysfs>/class/drm/card<N>/device/vendor                      "0x1002" = AMD
 *   <sysfs>/class/drm/card<N>/device/product_name                 marketing name, where the board has one
 *   <sysfs>/class/drm/card<N>/device/device                       PCI device id, the fallback name
 *   <sysfs>/class/drm/card<N>/device/gpu_busy_percent             percent
 *   <sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/power1_average  µW, the driver's average
 *   <sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/power1_input    µW, instant (newer kernels/SoCs)
 *   <sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/energy1_input   µJ, cumulative, where provided
 *   <sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/temp<K>_input   m°C (signed), one per sensor
 *   <sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/temp<K>_label   "edge", "junction", "mem"
 *
 * Temperature: the edge sensor, else junction (hotspot; MI300 has no edge sensor, so no temp1).
 * A sensor's label says which it is; without a label amdgpu's numbering does (temp1 edge, temp2
 * junction, temp3 mem). Memory and unknown sensors are not used.
 *
 * Connector entries (card0-DP-1) and render nodes are not cards. A quantity whose file is absent
 * is simply not sampled; one that exists but cannot be read or parsed when the source is opened
 * is left out with its reason. A card is a device when it reports utilisation, power or energy;
 * temperature alone does not make one. On APUs the hwmon power includes the CPU.
 */
import type { EnergyDevice, EnergySample, EnergySourceProbe, OpenedSource } from './types.js';
import {
  badText,
  cannotRead,
  listDir,
  monotonicNs,
  naturalCompare,
  parseLineFile,
  parseSignedFile,
  parseUnsignedFile,
  readText,
  underRoot,
} from './sysfs-text.js';
import { errnoCode, GpucoloError, oneLine, outOfRange } from '../errors.js';

export const AMD_PCI_VENDOR = 0x1002;
export const DRM_CLASS = 'class/drm';

/** device/vendor: "0x1002\n" -> 0x1002 */
export function parsePciVendor(text: string, path: string): number {
  const t = parseLineFile(text);
  if (!/^0x[0-9a-fA-F]{1,4}$/.test(t)) return parseUnsignedFile(text, path, 'a PCI vendor id like 0x1002');
  return parseInt(t.slice(2), 16);
}

/** device/product_name: the line, '' when the board has none */
export function parseProductName(text: string): string {
  return parseLineFile(text);
}

/** device/gpu_busy_percent: 0..100 */
export function parseGpuBusyPercent(text: string, path: string): number {
  const v = parseUnsignedFile(text, path, 'a percentage (0-100)');
  if (v > 100) throw badText(path, 'a percentage (0-100)', String(v));
  return v;
}

/** hwmon power1_average / power1_input: µW -> W */
export function parseHwmonPowerW(text: string, path: string): number {
  return parseUnsignedFile(text, path, 'power in microwatts') / 1e6;
}

/** hwmon energy1_input: µJ -> J */
export function parseHwmonEnergyJ(text: string, path: string): number {
  return parseUnsignedFile(text, path, 'energy in microjoules') / 1e6;
}

/** hwmon temp<K>_input: m°C -> °C (signed: the hwmon ABI allows readings below zero) */
export function parseHwmonTempC(text: string, path: string): number {
  return parseSignedFile(text, path, 'a temperature in millidegrees Celsius') / 1000;
}

/** hwmon temp<K>_label: the sensor's name ("edge", "junction", "mem" on amdgpu) */
export function parseHwmonTempLabel(text: string): string {
  return parseLineFile(text);
}

interface CardFiles {
  busy?: string;
  power?: string;
  energy?: string;
  temp?: string;
}

type Quantity = keyof CardFiles;
const PARSE: Record<Quantity, (text: string, path: string) => number> = {
  busy: parseGpuBusyPercent,
  power: parseHwmonPowerW,
  energy: parseHwmonEnergyJ,
  temp: parseHwmonTempC,
};

/** amdgpu's sensor numbering, for a temp<K>_input without a label */
const TEMP_BY_NUMBER: Record<number, string> = { 1: 'edge', 2: 'junction', 3: 'mem' };
/** the sensors used, preferred first */
const TEMP_PREFERENCE = ['edge', 'junction'];

/** The temp<K>_input files of a hwmon directory worth trying, preferred first (edge, then junction). */
function temperatureCandidates(hw: string): string[] {
  const listing = listDir(hw);
  if (!('names' in listing)) return [];
  const sensors: { path: string; role: string; k: number }[] = [];
  for (const n of listing.names) {
    const m = /^temp(\d+)_input$/.exec(n);
    if (!m) continue;
    const k = Number(m[1]);
    let role = '';
    try {
      role = parseHwmonTempLabel(readText(`${hw}/temp${k}_label`)).toLowerCase();
    } catch {
      // no label: amdgpu's numbering
    }
    sensors.push({ path: `${hw}/${n}`, role: role || (TEMP_BY_NUMBER[k] ?? ''), k });
  }
  return TEMP_PREFERENCE.flatMap((role) =>
    sensors
      .filter((s) => s.role === role)
      .sort((a, b) => a.k - b.k)
      .map((s) => s.path),
  );
}

/** Reads + parses once; ENOENT = absent (null), other failures = reason string. */
function tryQuantity(q: Quantity, path: string): { ok: true } | { ok: false; absent: boolean; reason: string } {
  try {
    PARSE[q](readText(path), path);
    return { ok: true };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return { ok: false, absent: true, reason: '' };
    return { ok: false, absent: false, reason: code === 'EBADTEXT' ? oneLine(err) : cannotRead(path, err) };
  }
}

function cardNumber(name: string): number | null {
  const m = /^card(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Finds the AMD cards under <sysfsRoot>/class/drm and what each can report. */
export function openAmdgpuSysfs(sysfsRoot = '/sys'): OpenedSource {
  const probe: EnergySourceProbe = { name: 'amdgpu-sysfs', kind: 'gpu', available: false, devices: [] };
  const files: CardFiles[] = [];
  const dir = underRoot(sysfsRoot, DRM_CLASS);
  const listing = listDir(dir);
  const noRead = (): EnergySample => {
    throw new GpucoloError(`amdgpu-sysfs unavailable: ${probe.reason}`, { code: 'ENOPOWER' });
  };
  if ('code' in listing) {
    probe.reason =
      listing.code === 'ENOENT' ? `no ${dir}: no DRM driver on this host (or sysfs not mounted there)` : cannotRead(dir, listing.err);
    return { probe, read: noRead };
  }
  const cards = listing.names.filter((n) => cardNumber(n) !== null).sort(naturalCompare);
  const state: CardScan = { probe, files, skipped: [], amd: 0 };
  for (const card of cards) scanCard(state, dir, card);
  settleProbe(state, dir, cards.length);
  if (!probe.available) return { probe, read: noRead };

  return {
    probe,
    read(index: number): EnergySample {
      return readCard(files, index);
    },
  };
}

/** What openAmdgpuSysfs's steps share while they walk the DRM cards. */
interface CardScan {
  probe: EnergySourceProbe;
  files: CardFiles[];
  skipped: { id: string; reason: string }[];
  /** how many cards had the AMD PCI vendor id */
  amd: number;
}

/** Step: checks one DRM card's vendor, names it and adds it as a device, or records why it is skipped. */
function scanCard(state: CardScan, dir: string, card: string): void {
  const devDir = `${dir}/${card}/device`;
  let vendor: number;
  try {
    vendor = parsePciVendor(readText(`${devDir}/vendor`), `${devDir}/vendor`);
  } catch (err) {
    state.skipped.push({ id: card, reason: errnoCode(err) === 'EBADTEXT' ? oneLine(err) : cannotRead(`${devDir}/vendor`, err) });
    return;
  }
  if (vendor !== AMD_PCI_VENDOR) return;
  state.amd++;
  const name = cardName(devDir);
  const { found, problems, hw } = findCardFiles(devDir);
  if (!found.busy && !found.power && !found.energy) {
    const what = problems.length
      ? problems.join('; ')
      : `no gpu_busy_percent${hw ? `, no power1_average/power1_input/energy1_input in ${hw}` : `, no hwmon under ${devDir}`}`;
    state.skipped.push({ id: card, reason: what });
    return;
  }
  const device: EnergyDevice = {
    index: state.probe.devices.length,
    id: card,
    name,
    files: [found.busy, found.power, found.energy, found.temp].filter((f): f is string => f !== undefined),
  };
  state.probe.devices.push(device);
  state.files.push(found);
}

/** Step: the card's product name, else "AMD GPU <device id>", else "AMD GPU". */
function cardName(devDir: string): string {
  let name = '';
  try {
    name = parseProductName(readText(`${devDir}/product_name`));
  } catch {
    // older kernels and many boards have no product_name
  }
  if (!name) {
    let id = '';
    try {
      id = parseLineFile(readText(`${devDir}/device`));
    } catch {
      // keep the plain name
    }
    name = id ? `AMD GPU ${id}` : 'AMD GPU';
  }
  return name;
}

/** Step: the first readable file per quantity among the card's candidates, and why others failed. */
function findCardFiles(devDir: string): { found: CardFiles; problems: string[]; hw: string | null } {
  // the card's hwmon: the first hwmon<M> under device/hwmon (amdgpu registers one)
  const hwmonList = listDir(`${devDir}/hwmon`);
  const hwmon =
    'names' in hwmonList ? hwmonList.names.filter((n) => /^hwmon\d+$/.test(n)).sort(naturalCompare)[0] : undefined;
  const hw = hwmon ? `${devDir}/hwmon/${hwmon}` : null;
  const candidates: [Quantity, string][] = [['busy', `${devDir}/gpu_busy_percent`]];
  if (hw) {
    candidates.push(['power', `${hw}/power1_average`], ['power', `${hw}/power1_input`], ['energy', `${hw}/energy1_input`]);
    for (const t of temperatureCandidates(hw)) candidates.push(['temp', t]);
  }
  const found: CardFiles = {};
  const problems: string[] = [];
  for (const [q, path] of candidates) {
    if (found[q]) continue;
    const r = tryQuantity(q, path);
    if (r.ok) found[q] = path;
    else if (!r.absent) problems.push(r.reason);
  }
  return { found, problems, hw };
}

/** Step: sets probe.skipped and either available or the reason no card was usable. */
function settleProbe(state: CardScan, dir: string, cardCount: number): void {
  const { probe, skipped } = state;
  if (skipped.length) probe.skipped = skipped;
  if (probe.devices.length) {
    probe.available = true;
  } else if (state.amd === 0) {
    probe.reason = `no amdgpu card in ${dir} (${cardCount} DRM card${cardCount === 1 ? '' : 's'}, none with vendor 0x1002)`;
  } else {
    probe.reason = `no readable amdgpu counters: ${skipped.map((s) => `${s.id}: ${s.reason}`).join('; ')}`;
  }
}

/** Step (per sample): reads one device's files, timestamped at the midpoint of the reads. */
function readCard(files: CardFiles[], index: number): EnergySample {
  const f = files[index];
  if (!f) throw outOfRange(`amdgpu-sysfs has no device ${index}`);
  const errors: string[] = [];
  const get = (q: Quantity): number | null => {
    const path = f[q];
    if (!path) return null;
    try {
      return PARSE[q](readText(path), path);
    } catch (err) {
      errors.push(errnoCode(err) === 'EBADTEXT' ? oneLine(err) : cannotRead(path, err));
      return null;
    }
  };
  const t0 = monotonicNs();
  const utilPercent = get('busy');
  const powerW = get('power');
  const energyJ = get('energy');
  const tempC = get('temp');
  const t1 = monotonicNs();
  const s: EnergySample = { tNs: t0 + (t1 - t0) / 2, utilPercent, powerW, energyJ, tempC };
  if (errors.length) s.errors = errors;
  return s;
}
