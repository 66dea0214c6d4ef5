/**
 * `gpucolo doctor`: explains this host. Never fails because a GPU or a runtime is missing; it
 * reports what is there, what is not, and why.
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadNative, nativeReport, type NativeReport, type PluginProbe } from './native.js';
import { errnoCode, oneLine, readHint } from './errors.js';
import { VERSION } from './version.js';
import { kfdVersion } from './kfd/ioctl.js';
import { readKfdProcs, readTopology } from './kfd/parse.js';
import { KFD_PROC, KFD_TOPOLOGY_NODES, topLevelFailure, underRoot } from './kfd/sysfs-ts.js';
import { listBackends } from './dispatch/run.js';
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
  /** one line per finding, for people */
  summary: string[];
}

export function doctor(opts: DoctorOptions = {}): DoctorReport {
  const sysfsRoot = opts.sysfsRoot ?? '/sys';
  const debugfsRoot = opts.debugfsRoot ?? '/sys/kernel/debug';
  const dev = opts.kfdDevice ?? '/dev/kfd';
  const native = nativeReport();
  const summary: string[] = [];

  if (native.loaded) summary.push(`native core loaded (${native.file})`);
  else summary.push(`native core NOT loaded, using the pure-TS paths: ${native.errors.map((e) => e.message).join('; ')}`);

  // ---- /dev/kfd
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
    if (!native.loaded) {
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

  // ---- sysfs topology
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
    ...(top ? { code: top.code, error: top.message, hint: readHint(top.code, 'sysfs') } : {}),
  };
  if (!sysfs.ok) summary.push(`sysfs KFD topology: ${sysfs.error} (${sysfs.hint ?? ''})`);
  else {
    summary.push(`sysfs KFD topology: ${gpus.length} GPU node(s), ${sysfs.cpuNodes} CPU node(s); ${sysfs.kfdProcesses ?? '?'} KFD process(es)`);
    for (const g of gpus) {
      summary.push(`  node ${g.node}: gpu_id ${g.gpuIdHex} (${g.gpuId}) ${g.name || '?'} ${g.gfxTarget ?? '?'} num_xcc ${g.numXcc}${g.computeUnits ? `, ${g.computeUnits} CUs` : ''}`);
    }
    for (const i of topo.issues) summary.push(`  warning: ${i.message}`);
  }

  // ---- debugfs: open only (reading hqds does MMIO reads on the GPU)
  const files = {} as DoctorReport['kfd']['debugfs']['files'];
  for (const f of ['mqds', 'hqds', 'rls'] as const) {
    const path = underRoot(debugfsRoot, `kfd/${f}`);
    try {
      fs.closeSync(fs.openSync(path, 'r'));
      files[f] = { ok: true, path };
    } catch (err) {
      const code = errnoCode(err);
      files[f] = { ok: false, path, code, error: `cannot open ${path} (${code})`, hint: readHint(code, 'debugfs') };
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
  summary.push(allOk ? `debugfs kfd/{mqds,hqds,rls}: readable` : `debugfs: ${debugfs.error} (${debugfs.hint ?? 'see the error code'})`);

  // ---- GPU plugins
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
  let backends: NativeBackendInfo[];
  try {
    backends = listBackends();
  } catch (err) {
    backends = (['cpu', 'cuda', 'hip'] as const).map((name) => ({ name, available: false, reason: oneLine(err), devices: [] }));
  }
  for (const b of backends) {
    summary.push(
      b.available
        ? `dispatch backend ${b.name}${b.engine ? ` (${engineLabel(b.engine)})` : ''}: ${b.devices.map((d) => `${d.name} (${d.arch}, ${d.computeUnits} CUs, priorities ${d.priorityLeast}..${d.priorityGreatest}${d.supportsCuMask ? ', CU masks' : ''}${d.supportsSmPartition ? ', SM partitions' : ''})`).join('; ')}`
        : `dispatch backend ${b.name}: unavailable: ${b.reason}`,
    );
  }
  let scenarios: DoctorReport['scenarios'];
  try {
    const c = probeChoice('auto', backends);
    scenarios = { probe: { backend: c.backend, engine: c.engine, why: c.why, engineWhy: c.engineWhy } };
    summary.push(`scenarios (probe form) will use: ${c.backend} backend, ${engineLabel(c.engine)} (${c.engineWhy})`);
  } catch (err) {
    scenarios = { probe: { error: oneLine(err) } };
    summary.push(`scenarios (probe form) cannot run: ${oneLine(err)}`);
  }
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
  // the verdict: what gpucolo can do on this host
  if (sysfs.ok && gpus.length > 0) {
    summary.push(
      debugfs.ok
        ? 'verdict: full KFD queue introspection available (gpucolo queues)'
        : 'verdict: KFD queues visible through sysfs (ids, types, GPUs); run as root for priorities and HQD slots',
    );
  } else {
    summary.push('verdict: no AMD KFD GPU here; gpucolo queues works on recorded trees (--root DIR, e.g. examples/kfd-mi300x)');
  }

  let uid: number | null = null;
  try {
    uid = process.getuid ? process.getuid() : null;
  } catch {
    uid = null;
  }
  return {
    schema: DOCTOR_SCHEMA,
    gpucoloVersion: VERSION,
    host: { hostname: os.hostname(), platform: process.platform, arch: process.arch, kernel: os.release(), node: process.version, uid },
    native,
    kfd: { device, sysfs, debugfs },
    plugins,
    backends,
    scenarios,
    energy,
    summary,
  };
}
