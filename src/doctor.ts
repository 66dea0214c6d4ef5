/**
 * `gpucolo doctor`: explains this host. Never fails because a GPU or a runtime is missing; it
 * reports what is there, what is not, and why.
 *
 * It launches nothing on a GPU: the backends' device lists come from device_info(), which the
 * plugins answer without a kernel (gpu_plugin.h), so the timer resolution shows as unknown until a
 * run has measured it. `doctor --measure` (doctorMeasure) runs a short empty-kernel series on every
 * device of every available backend: launch round trip, device time, timer resolution and the
 * device clock's drift against the host's.
 *
 * Roots other than the live /sys and /sys/kernel/debug are recorded trees (a copy of some host's
 * files): a file missing there is "not in the recorded tree", not a driver to load (sourceHint).
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadNative, nativeReport, possibleSolutions, type NativeReport, type PluginProbe } from './native.js';
import { errnoCode, GpucoloError, oneLine, readHint } from './errors.js';
import { VERSION } from './version.js';
import { kfdVersion } from './kfd/ioctl.js';
import { readKfdProcs, readTopology } from './kfd/parse.js';
import { KFD_PROC, KFD_TOPOLOGY_NODES, topLevelFailure, underRoot } from './kfd/sysfs-reader.js';
import { recorded, sourceHint } from './kfd/snapshot.js';
import { listBackends, type ClockCheck } from './dispatch/run.js';
import { probeLatency } from './dispatch/probes.js';
import { detectMps, type MpsStatus } from './dispatch/mps.js';
import { formatDuration } from './units.js';
import { engineLabel, probeChoice } from './dispatch/engine-choice.js';
import { probeEnergySources, type EnergySourceProbe } from './energy/index.js';
import type { NativeBackendInfo } from './native.js';

export const DOCTOR_SCHEMA = 'gpucolo.doctor/1';

export interface DoctorOptions {
  sysfsRoot?: string;
  debugfsRoot?: string;
  /** default /dev/kfd */
  kfdDevice?: string;
}

interface Check {
  ok: boolean;
  path: string;
  code?: string;
  error?: string;
  hint?: string;
}

export interface DoctorGpu {
  node: number;
  gpuId: number;
  gpuIdHex: string;
  name: string;
  gfxTarget: string | null;
  numXcc: number;
  computeUnits: number | null;
}

/** What `doctor --measure` found on one device: a short series of empty kernels, one in flight. */
export interface DoctorMeasurement {
  backend: 'cpu' | 'cuda' | 'hip';
  device: number;
  name: string;
  ok: boolean;
  /** why the series failed */
  error?: string;
  launches: number;
  /** complete - submit, P50, ns */
  roundTripP50Ns: number | null;
  /** device end - device start, P50, ns */
  deviceP50Ns: number | null;
  /** the device timer's resolution as the backend measured it once a stream existed; null = still unknown */
  timerResolutionNs: number | null;
  /** the device clock against the host's over the series */
  clock: ClockCheck | null;
}

export interface DoctorReport {
  schema: typeof DOCTOR_SCHEMA;
  gpucoloVersion: string;
  host: { hostname: string; platform: string; arch: string; kernel: string; node: string; uid: number | null };
  native: NativeReport;
  kfd: {
    device: Check & { present: boolean; version: { major: number; minor: number } | null };
    sysfs: Check & { gpus: DoctorGpu[]; cpuNodes: number; kfdProcesses: number | null };
    debugfs: Check & { files: Record<'mqds' | 'hqds' | 'rls', Check> };
  };
  plugins: { ok: boolean; error?: string; list: PluginProbe[] };
  /** dispatch backends (cpu built in, cuda/hip plugins) with their devices or why not; each says its engine */
  backends: NativeBackendInfo[];
  /**
   * What a scenario's probe form (backend auto) would run on here: backend and dispatch engine
   * ('ts' = the pure-TS cpu backend, coarser timings), with why; or the error that would stop it.
   */
  scenarios: { probe: { backend: 'cpu' | 'cuda' | 'hip'; engine: 'native' | 'ts'; why: string; engineWhy: string } | { error: string } };
  /** power/energy/utilisation sources (NVML, ROCm SMI, amdgpu sysfs, RAPL) with their devices or why not */
  energy: EnergySourceProbe[];
  /**
   * NVIDIA MPS: whether CUDA clients started now would share one MPS server (stream priorities of
   * separate processes then meet; without it they only order streams of one process)
   */
  mps: MpsStatus;
  /** the sysfs / debugfs roots given are recorded trees (not this host's live files) */
  recorded: { sysfs: boolean; debugfs: boolean };
  /** `doctor --measure`: one short series per device; null when not asked (doctor launches nothing then) */
  measured: DoctorMeasurement[] | null;
  /** one line per finding, for people */
  summary: string[];
}

/** What the doctor steps share: the roots it looks at and the summary lines, in order. */
interface DoctorContext {
  sysfsRoot: string;
  debugfsRoot: string;
  isRecorded: { sysfs: boolean; debugfs: boolean };
  summary: string[];
}

/** /dev/kfd: present, and the KFD ioctl interface version (which needs the native core). */
function checkKfdDevice(dev: string, nativeLoaded: boolean, summary: string[]): DoctorReport['kfd']['device'] {
  const device: DoctorReport['kfd']['device'] = { ok: false, path: dev, present: false, version: null };
  try {
    fs.statSync(dev);
    device.present = true;
  } catch (err) {
    device.code = errnoCode(err);
    device.error = `not usable (${device.code})`;
    device.hint = readHint(device.code, 'dev');
  }
  if (device.present) {
    if (!nativeLoaded) {
      device.error = 'the KFD version ioctl needs the native core';
      device.code = 'ENONATIVE';
    } else {
      try {
        device.version = kfdVersion(dev);
        device.ok = true;
      } catch (err) {
        device.code = errnoCode(err);
        device.error = oneLine(err);
        device.hint = readHint(device.code, 'dev');
      }
    }
  }
  summary.push(
    device.ok
      ? `${dev}: KFD ioctl interface ${device.version!.major}.${device.version!.minor}`
      : `${dev}: ${device.error}${device.hint ? ` (${device.hint})` : ''}`,
  );
  return device;
}

/** The sysfs KFD topology (GPU and CPU nodes) and the KFD process count. */
function checkSysfs(ctx: DoctorContext): DoctorReport['kfd']['sysfs'] {
  const { sysfsRoot, isRecorded, summary } = ctx;
  const topoDir = underRoot(sysfsRoot, KFD_TOPOLOGY_NODES);
  const topo = readTopology({ sysfsRoot });
  const top = topLevelFailure(topoDir, topo.issues);
  const gpus: DoctorGpu[] = topo.nodes
    .filter((n) => n.isGpu)
    .map((n) => ({
      node: n.node,
      gpuId: n.gpuId,
      gpuIdHex: n.gpuIdHex,
      name: n.name,
      gfxTarget: n.gpu!.gfxTarget,
      numXcc: n.gpu!.numXcc,
      computeUnits: n.gpu!.computeUnits,
    }));
  const procs = top ? null : readKfdProcs({ sysfsRoot });
  const procTop = procs ? topLevelFailure(underRoot(sysfsRoot, KFD_PROC), procs.issues) : undefined;
  const sysfs: DoctorReport['kfd']['sysfs'] = {
    ok: !top,
    path: topoDir,
    gpus,
    cpuNodes: topo.nodes.length - gpus.length,
    kfdProcesses: procs && !procTop ? procs.procs.length : null,
    ...(top ? { code: top.code, error: top.message, hint: top.code ? sourceHint(top.code, 'sysfs', isRecorded.sysfs) : undefined } : {}),
  };
  const sysfsWhat = isRecorded.sysfs ? `sysfs KFD topology (recorded tree ${sysfsRoot})` : 'sysfs KFD topology';
  if (!sysfs.ok) summary.push(`${sysfsWhat}: ${sysfs.error}${sysfs.hint ? ` (${sysfs.hint})` : ''}`);
  else {
    summary.push(`${sysfsWhat}: ${gpus.length} GPU node(s), ${sysfs.cpuNodes} CPU node(s); ${sysfs.kfdProcesses ?? '?'} KFD process(es)`);
    for (const g of gpus) {
      summary.push(`  node ${g.node}: gpu_id ${g.gpuIdHex} (${g.gpuId}) ${g.name || '?'} ${g.gfxTarget ?? '?'} num_xcc ${g.numXcc}${g.computeUnits ? `, ${g.computeUnits} CUs` : ''}`);
    }
    for (const i of topo.issues) summary.push(`  warning: ${i.message}`);
  }
  return sysfs;
}

/** debugfs kfd/{mqds,hqds,rls}: open only (reading hqds does MMIO reads on the GPU). */
function checkDebugfs(ctx: DoctorContext): DoctorReport['kfd']['debugfs'] {
  const { debugfsRoot, isRecorded, summary } = ctx;
  const files = {} as DoctorReport['kfd']['debugfs']['files'];
  for (const f of ['mqds', 'hqds', 'rls'] as const) {
    const path = underRoot(debugfsRoot, `kfd/${f}`);
    try {
      // O_NONBLOCK: a FIFO in a recorded tree must not wait for a writer; only a regular file is read later (input-file.ts)
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const regular = fs.fstatSync(fd).isFile();
      fs.closeSync(fd);
      if (!regular) throw new GpucoloError('not a regular file', { code: 'ENOTREG', path });
      files[f] = { ok: true, path };
    } catch (err) {
      const code = errnoCode(err);
      files[f] = { ok: false, path, code, error: `cannot open ${path} (${code})`, hint: code ? sourceHint(code, 'debugfs', isRecorded.debugfs) : undefined };
    }
  }
  const allOk = Object.values(files).every((c) => c.ok);
  const firstBad = Object.values(files).find((c) => !c.ok);
  const debugfs: DoctorReport['kfd']['debugfs'] = {
    ok: allOk,
    path: underRoot(debugfsRoot, 'kfd'),
    files,
    ...(firstBad ? { code: firstBad.code, error: firstBad.error, hint: firstBad.hint } : {}),
  };
  const debugfsWhat = isRecorded.debugfs ? `debugfs (recorded tree ${debugfsRoot})` : 'debugfs';
  summary.push(allOk ? `${debugfsWhat} kfd/{mqds,hqds,rls}: readable` : `${debugfsWhat}: ${debugfs.error} (${debugfs.hint ?? 'see the error code'})`);
  return debugfs;
}

/** The GPU dispatch plugins the native core finds, and whether they load. */
function checkPlugins(summary: string[]): DoctorReport['plugins'] {
  let plugins: DoctorReport['plugins'];
  const b = loadNative();
  if (!b) plugins = { ok: false, error: 'plugins are loaded by the native core, which is not loaded', list: [] };
  else {
    try {
      plugins = { ok: true, list: b.probePlugins() };
    } catch (err) {
      plugins = { ok: false, error: oneLine(err), list: [] };
    }
  }
  const found = plugins.list.filter((p) => p.found);
  summary.push(
    !plugins.ok
      ? `GPU dispatch plugins: unknown (${plugins.error})`
      : found.length === 0
        ? 'GPU dispatch plugins: none built (the cpu backend needs none)'
        : `GPU dispatch plugins: ${found
            .map((p) => `${p.name} ${!p.loaded ? `fails to load: ${p.error}` : p.initError ? `loads, runtime unusable: ${p.initError}` : `loads, ${p.deviceCount ?? '?'} device(s)`}`)
            .join('; ')}`,
  );
  return plugins;
}

/** The dispatch backends with their devices, or why each is unavailable. */
function checkBackends(summary: string[]): NativeBackendInfo[] {
  let backends: NativeBackendInfo[];
  try {
    backends = listBackends();
  } catch (err) {
    backends = (['cpu', 'cuda', 'hip'] as const).map((name) => ({ name, available: false, reason: oneLine(err), devices: [] }));
  }
  for (const b of backends) {
    summary.push(
      b.available
        ? `dispatch backend ${b.name}${b.engine ? ` (${engineLabel(b.engine)})` : ''}: ${b.devices.map((d) => `${d.name} (${deviceText(d)})`).join('; ')}`
        : `dispatch backend ${b.name}: unavailable: ${b.reason}`,
    );
  }
  if (backends.some((b) => b.name !== 'cpu' && b.available && b.devices.length > 0)) {
    summary.push('GPU timer resolution and launch round trip: not measured (gpucolo doctor --measure runs a short empty-kernel series on each device)');
  }
  return backends;
}

/** NVIDIA MPS, said when it runs, is set up, or CUDA is here. */
function checkMps(backends: NativeBackendInfo[], summary: string[]): MpsStatus {
  const mps = detectMps();
  if (mps.running || mps.control || backends.some((b) => b.name === 'cuda' && b.available)) {
    summary.push(`${mps.line}; ${mps.running ? 'stream priorities of separate CUDA processes meet in the MPS server' : 'CUDA stream priorities only order streams of one process (torch form: --torch-process single)'}`);
  }
  return mps;
}

/** What a scenario's probe form would run on here, or why it cannot. */
function checkScenarios(backends: NativeBackendInfo[], summary: string[]): DoctorReport['scenarios'] {
  try {
    const c = probeChoice('auto', backends);
    summary.push(`scenarios (probe form) will use: ${c.backend} backend, ${engineLabel(c.engine)} (${c.engineWhy})`);
    return { probe: { backend: c.backend, engine: c.engine, why: c.why, engineWhy: c.engineWhy } };
  } catch (err) {
    summary.push(`scenarios (probe form) cannot run: ${oneLine(err)}`);
    return { probe: { error: oneLine(err) } };
  }
}

/** The power/energy sources with their devices, or why each is unavailable. */
function checkEnergy(sysfsRoot: string, summary: string[]): EnergySourceProbe[] {
  let energy: EnergySourceProbe[];
  try {
    energy = probeEnergySources({ roots: { sysfs: sysfsRoot } });
  } catch (err) {
    energy = [];
    summary.push(`energy sources: unknown (${oneLine(err)})`);
  }
  for (const e of energy) {
    summary.push(
      e.available
        ? `energy source ${e.name} (${e.kind}): ${e.devices.map((d) => d.name).join('; ')}`
        : `energy source ${e.name} (${e.kind}): unavailable: ${e.reason}`,
    );
  }
  return energy;
}

/** The verdict: what gpucolo can do on this host (or with the recorded tree). */
export function doctorVerdict(
  sysfs: Pick<DoctorReport['kfd']['sysfs'], 'ok' | 'gpus' | 'hint' | 'error'>,
  debugfsOk: boolean,
  isRecorded: { sysfs: boolean; debugfs: boolean },
  sysfsRoot: string,
): string {
  if (sysfs.ok && sysfs.gpus.length > 0 && (isRecorded.sysfs || isRecorded.debugfs)) {
    return debugfsOk
      ? 'verdict: the recorded tree holds full KFD queue state (gpucolo queues --root DIR, or --sysfs-root/--debugfs-root)'
      : `verdict: the recorded tree holds KFD queues through sysfs only (ids, types, GPUs): its debugfs files are ${isRecorded.debugfs ? 'not in the recording' : 'this host\'s, not the recording\'s'}`;
  }
  if (sysfs.ok && sysfs.gpus.length > 0) {
    return debugfsOk
      ? 'verdict: full KFD queue introspection available (gpucolo queues)'
      : 'verdict: KFD queues visible through sysfs (ids, types, GPUs); run as root for priorities and HQD slots';
  }
  if (isRecorded.sysfs) return `verdict: the recorded tree ${sysfsRoot} has no KFD GPU node (${sysfs.hint ?? sysfs.error ?? 'no GPU nodes'})`;
  return 'verdict: no AMD KFD GPU here; gpucolo queues works on recorded trees (--root DIR, e.g. examples/kfd-mi300x)';
}

function currentUid(): number | null {
  try {
    return process.getuid ? process.getuid() : null;
  } catch {
    return null;
  }
}

export function doctor(opts: DoctorOptions = {}): DoctorReport {
  const ctx: DoctorContext = {
    sysfsRoot: opts.sysfsRoot ?? '/sys',
    debugfsRoot: opts.debugfsRoot ?? '/sys/kernel/debug',
    isRecorded: { sysfs: recorded(opts.sysfsRoot, '/sys'), debugfs: recorded(opts.debugfsRoot, '/sys/kernel/debug') },
    summary: [],
  };
  const { summary } = ctx;
  const native = nativeReport();
  if (native.loaded) summary.push(`native core loaded (${native.file})`);
  else {
    const fixes = possibleSolutions(native.errors);
    summary.push(`native core NOT loaded, using the pure-TS paths: ${native.errors.map((e) => e.message).join('; ')}${fixes.length ? `; possible solutions: ${fixes.join('; ')}` : ''}`);
  }

  const device = checkKfdDevice(opts.kfdDevice ?? '/dev/kfd', native.loaded, summary);
  const sysfs = checkSysfs(ctx);
  const debugfs = checkDebugfs(ctx);
  const plugins = checkPlugins(summary);
  const backends = checkBackends(summary);
  const mps = checkMps(backends, summary);
  const scenarios = checkScenarios(backends, summary);
  const energy = checkEnergy(ctx.sysfsRoot, summary);
  summary.push(doctorVerdict(sysfs, debugfs.ok, ctx.isRecorded, ctx.sysfsRoot));

  return {
    schema: DOCTOR_SCHEMA,
    gpucoloVersion: VERSION,
    host: { hostname: os.hostname(), platform: process.platform, arch: process.arch, kernel: os.release(), node: process.version, uid: currentUid() },
    native,
    kfd: { device, sysfs, debugfs },
    plugins,
    backends,
    scenarios,
    energy,
    mps,
    recorded: ctx.isRecorded,
    measured: null,
    summary,
  };
}

/** "NVIDIA H100 ... (sm_90, 132 CUs, priorities 0..-5, SM partitions, fill 8 x 256 threads per CU, timer 32ns)" */
function deviceText(d: NativeBackendInfo['devices'][number]): string {
  const parts = [d.arch, `${d.computeUnits} CUs`, `priorities ${d.priorityLeast}..${d.priorityGreatest}`];
  if (d.supportsCuMask) parts.push(`CU masks${(d.cuMaskBitsPerUnit ?? 1) > 1 ? ` (${d.cuMaskBitsPerUnit} bits per unit)` : ''}`);
  if (d.supportsSmPartition) parts.push('SM partitions');
  if ((d.numXcc ?? 0) > 1) parts.push(`${d.numXcc} XCCs x ${d.numSePerXcc || '?'} SEs`);
  if ((d.maxActiveBlocksPerCu ?? 0) > 0 && d.fillThreadsPerBlock) parts.push(`fill ${d.maxActiveBlocksPerCu} x ${d.fillThreadsPerBlock}-thread blocks per CU`);
  parts.push(d.timerResolutionNs > 0 ? `timer ${formatDuration(Math.round(d.timerResolutionNs))}` : 'timer resolution not measured');
  return parts.join(', ');
}

export interface DoctorMeasureOptions {
  /** empty-kernel series length per device (default 300 ms) */
  durationNs?: number;
  /** only these backends (default every available one) */
  backends?: readonly ('cpu' | 'cuda' | 'hip')[];
}

/**
 * `doctor --measure`: launches a short series of empty kernels (one in flight) on every device of
 * every available backend, then reads the backends again for the timer resolution the first stream
 * measured. Adds `measured` and one summary line per device to the report.
 */
export async function doctorMeasure(report: DoctorReport, o: DoctorMeasureOptions = {}): Promise<DoctorReport> {
  const durationNs = o.durationNs ?? 300e6;
  const measured: DoctorMeasurement[] = [];
  const lines: string[] = [];
  for (const b of report.backends) {
    const name = b.name as DoctorMeasurement['backend'];
    if (!b.available || (o.backends && !o.backends.includes(name))) continue;
    for (const [device, d] of b.devices.entries()) {
      const m: DoctorMeasurement = { backend: name, device, name: d.name, ok: false, launches: 0, roundTripP50Ns: null, deviceP50Ns: null, timerResolutionNs: null, clock: null };
      try {
        const r = await probeLatency({ backend: name, device, spinNs: 0, durationNs, warmupNs: Math.min(50e6, durationNs / 5), engine: b.engine });
        const p50 = (q: typeof r.roundTrip): number | null => q.quantiles.find((x) => x.p === 50)?.value ?? null;
        Object.assign(m, { ok: true, launches: r.launches, roundTripP50Ns: p50(r.roundTrip), deviceP50Ns: p50(r.device), clock: r.clock });
      } catch (err) {
        m.error = oneLine(err);
      }
      try {
        const again = listBackends({ engine: b.engine }).find((x) => x.name === b.name)?.devices[device];
        if (again && again.timerResolutionNs > 0) m.timerResolutionNs = again.timerResolutionNs;
      } catch {
        // the series said what it could
      }
      measured.push(m);
      const ns = (v: number | null): string => (v === null ? '?' : formatDuration(Math.round(v)));
      lines.push(
        m.ok
          ? `measured ${name}:${device} (${d.name}): ${m.launches} empty kernels, round trip P50 ${ns(m.roundTripP50Ns)}, on device P50 ${ns(m.deviceP50Ns)}, timer resolution ${m.timerResolutionNs ? ns(m.timerResolutionNs) : 'unknown'}, device clock drift ${m.clock?.driftNs === null || !m.clock ? 'not measured' : `${ns(Math.abs(m.clock.driftNs))}${m.clock.uncertaintyNs !== null ? ` (offset ±${ns(m.clock.uncertaintyNs)})` : ''}`}`
          : `measured ${name}:${device} (${d.name}): failed: ${m.error}`,
      );
    }
  }
  const summary = report.summary.filter((l) => !l.startsWith('GPU timer resolution and launch round trip: not measured'));
  // before the verdict (the last line)
  const at = summary.findIndex((l) => l.startsWith('verdict: '));
  summary.splice(at < 0 ? summary.length : at, 0, ...(lines.length ? lines : ['measured: no available backend to measure']));
  return { ...report, measured, summary };
}
