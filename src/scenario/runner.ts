/**
 * Runs a scenario: every task standalone, all tasks co-run with `none`, then co-run with each
 * mechanism asked for; then statistics, verdicts and the report. results.json is rewritten
 * (atomically) after every phase and marked partial until the run is complete, so a crash or
 * Ctrl-C leaves a valid file with what was measured.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { GpucoloError } from '../errors.js';
import { VERSION } from '../version.js';
import { listBackends, probeChoice, TS_BACKEND_NOTE } from '../dispatch/index.js';
import type { DispatchEngine } from '../native.js';
import { startSampling, type SamplingSummary } from '../energy/index.js';
import { renderCharts, renderMarkdown, writeFileAtomic, writeJsonAtomic } from '../report/index.js';
import { runProbePhase, probeDevice, type ProbeBackend } from './probe-driver.js';
import { runTorchPhase } from './torch-driver.js';
import { taskResult, phaseFairness, successVerdicts } from './summarize.js';
import type { Form, Mechanism, Scenario, Task } from './schema.js';
import { RESULTS_SCHEMA, type PhaseResult, type PhaseStatus, type Results, type TaskResult, type TaskSamples } from './types.js';
import { lazyDir } from '../fs-dirs.js';
import { MAX_ARRIVALS, expectedArrivals } from './arrivals.js';

export interface RunScenarioOptions {
  /** auto: torch on a GPU host where PyTorch imports and every task has a torch form, else probe */
  form?: Form | 'auto';
  backend?: Scenario['backend'];
  durationNs?: number;
  warmupNs?: number;
  mechanisms?: Mechanism[];
  outDir: string;
  /** SVG + PNG charts (default true) */
  charts?: boolean;
  python?: string;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
}

export type RunEvent =
  | {
      type: 'start';
      form: Form;
      backend: string;
      why: string;
      /** the dispatch engine of the probe form ('ts': the pure-TS cpu backend, coarser timings); null for the torch form, which dispatches nothing */
      engine: DispatchEngine | null;
      /** why that engine, one line ("native core loaded", "native core not loaded (...)", "GPUCOLO_DISPATCH_ENGINE=ts"); null for the torch form */
      engineWhy: string | null;
      phases: string[];
    }
  | { type: 'phase-start'; phase: string; index: number; total: number; spanNs: number }
  | { type: 'progress'; phase: string; elapsedNs: number; completed: number; task: string; p99Ns: number | null }
  | { type: 'phase-end'; phase: PhaseResult }
  | { type: 'report'; files: string[]; chartErrors: string[] };

export interface RunScenarioResult {
  results: Results;
  outDir: string;
  files: string[];
}

interface Plan {
  form: Form;
  backend: string;
  probeBackend: ProbeBackend | null;
  why: string;
  /** probe form: the dispatch engine and why; null for the torch form */
  engine: DispatchEngine | null;
  engineWhy: string | null;
}

/** Does PyTorch import with this python? (no shell; torch imports in ~2 s) */
function pythonHasTorch(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

/** Which form and backend run, and why (said on screen and in results.json). */
export function planRun(s: Scenario, o: Pick<RunScenarioOptions, 'form' | 'backend' | 'python'>): Plan {
  const allProbe = s.tasks.every((t) => t.probe);
  const allTorch = s.tasks.every((t) => t.torch);
  const want = o.form ?? 'auto';
  const missing = (f: Form): string =>
    s.tasks
      .filter((t) => !t[f])
      .map((t) => t.name)
      .join(', ');
  if (want === 'probe' && !allProbe) throw new GpucoloError(`scenario ${s.name}: --form probe, but task(s) ${missing('probe')} have no probe workload`, { code: 'EBADSCENARIO' });
  if (want === 'torch' && !allTorch) throw new GpucoloError(`scenario ${s.name}: --form torch, but task(s) ${missing('torch')} have no torch workload`, { code: 'EBADSCENARIO' });
  if (!allProbe && !allTorch) throw new GpucoloError(`scenario ${s.name}: every task needs the same form (probe or torch); probe missing in ${missing('probe')}, torch missing in ${missing('torch')}`, { code: 'EBADSCENARIO' });
  const probe = (why: string): Plan => {
    const r = probeChoice(o.backend ?? s.backend, listBackends());
    return { form: 'probe', backend: r.backend, probeBackend: r.backend, why: `${why}; ${r.why}`, engine: r.engine, engineWhy: r.engineWhy };
  };
  const torch = (why: string): Plan => ({ form: 'torch', backend: 'torch', probeBackend: null, why, engine: null, engineWhy: null });
  if (want === 'probe') return probe('probe form as asked');
  if (want === 'torch') return torch('torch form as asked');
  // auto
  if (!allTorch) return probe('auto: the tasks have only a probe form');
  const python = o.python ?? process.env.GPUCOLO_PYTHON ?? '/usr/bin/python3';
  const gpu = listBackends().some((b) => (b.name === 'cuda' || b.name === 'hip') && b.available && b.devices.length > 0);
  if (!allProbe) return torch('auto: the tasks have only a torch form');
  if (!gpu) return probe('no GPU here, so the probe form');
  if (!pythonHasTorch(python)) return probe(`auto: PyTorch does not import with ${python}, so the probe form`);
  return torch('auto: a GPU and PyTorch are here, so the torch form');
}

function phaseNames(s: Scenario, mechanisms: Mechanism[]): { name: string; kind: 'standalone' | 'corun'; mechanism: Mechanism; tasks: Task[] }[] {
  const out: { name: string; kind: 'standalone' | 'corun'; mechanism: Mechanism; tasks: Task[] }[] = s.tasks.map((t) => ({
    name: `standalone:${t.name}`,
    kind: 'standalone' as const,
    mechanism: 'none' as const,
    tasks: [t],
  }));
  out.push({ name: 'corun:none', kind: 'corun', mechanism: 'none', tasks: s.tasks });
  for (const m of [...new Set(mechanisms)]) if (m !== 'none') out.push({ name: `corun:${m}`, kind: 'corun', mechanism: m, tasks: s.tasks });
  return out;
}

function hostInfo(): Results['host'] {
  return { hostname: os.hostname(), os: `${os.type()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length, node: process.version };
}

/** The device's own utilisation where a sampler saw it, else the busy-time estimate (kept beside it either way). */
function phaseUtilisation(sampled: ReturnType<typeof sampledUtilisation>, busy: PhaseResult['utilisation']): PhaseResult['utilisation'] {
  if ('value' in sampled) return { value: sampled.value, source: sampled.source, reason: sampled.reason, busyTime: busy.value };
  return { ...busy, reason: `${busy.reason ?? ''}${busy.reason ? '; ' : ''}device counters: ${sampled.reason}` };
}

function utilisation(samples: TaskSamples[], blocks: Record<string, number>, computeUnits: number, measuredNs: number, form: Form, device: string | null): PhaseResult['utilisation'] {
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
    reason:
      form === 'probe'
        ? 'kernel busy time x share of compute units its blocks occupy'
        : 'sum of model service times (overlapping requests make this an upper bound)',
  };
}

/**
 * Device utilisation from NVML / ROCm SMI / amdgpu sysfs over a phase's measured window (sampled
 * every 100 ms after the warm-up), when one of them sees a GPU. Device 0 of the first source
 * that reports utilisation: with several GPUs set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA's device
 * 0 is NVML's.
 */
function startUtilSampling(delayNs: number): { stop(): Promise<SamplingSummary | null> } {
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

function sampledUtilisation(summary: SamplingSummary | null): { value: number; source: 'nvml' | 'rocm-smi' | 'amdgpu-sysfs'; reason: string } | { reason: string } {
  if (!summary) return { reason: 'no device sampling (phase ended before its warm-up did)' };
  const hit = summary.sources.find((x) => x.kind === 'gpu' && x.available && x.utilisation !== null && x.samples >= 2);
  if (hit && (hit.name === 'nvml' || hit.name === 'rocm-smi' || hit.name === 'amdgpu-sysfs')) {
    return { value: hit.utilisation!.mean / 100, source: hit.name, reason: `${hit.name} device ${hit.device?.name ?? '?'}: mean of ${hit.samples} samples (max ${hit.utilisation!.max}%)` };
  }
  const why = summary.sources.filter((x) => x.kind === 'gpu').map((x) => `${x.name}: ${x.available ? 'no utilisation reading' : (x.reason ?? 'unavailable')}`);
  return { reason: why.join('; ') || 'no GPU source' };
}

/** Runs the scenario and writes results.json, report.md and charts into outDir. */
export async function runScenario(s: Scenario, source: string, o: RunScenarioOptions): Promise<RunScenarioResult> {
  const plan = planRun(s, o);
  const durationNs = o.durationNs ?? s.duration;
  const warmupNs = o.warmupNs ?? s.warmup;
  const mechanisms = o.mechanisms ?? s.mechanisms;
  const phases = phaseNames(s, mechanisms);
  // refused before anything is written: a results.json already in outDir stays as it is
  for (const t of s.tasks) {
    const n = expectedArrivals(t.arrival, warmupNs + durationNs);
    if (n > MAX_ARRIVALS) {
      throw new GpucoloError(`${source}: task "${t.name}": about ${Math.round(n).toExponential(2)} arrivals in one phase of ${(warmupNs + durationNs) / 1e9} s (warmup + duration), more than ${MAX_ARRIVALS}: lower the rate or the duration`, { code: 'EBADSCENARIO' });
    }
  }
  const resultsPath = path.join(o.outDir, 'results.json');

  let gpu: string | null = null;
  let device: string | null = null;
  if (plan.probeBackend) {
    const d = probeDevice(plan.probeBackend);
    if ('reason' in d) throw new GpucoloError(d.reason, { code: 'ENOBACKEND' });
    gpu = plan.probeBackend === 'cpu' ? null : d.dev.name;
    device = `${plan.probeBackend}:0 (${d.dev.name}, ${d.dev.computeUnits} compute units)`;
  }
  const results: Results = {
    schema: RESULTS_SCHEMA,
    gpucoloVersion: VERSION,
    createdAt: new Date().toISOString(),
    partial: true,
    scenario: { name: s.name, source, form: plan.form, config: { ...s, duration: durationNs, warmup: warmupNs, mechanisms } },
    host: hostInfo(),
    backend: {
      name: plan.backend,
      device,
      gpu,
      why: plan.why,
      ...(plan.engine ? { engine: plan.engine, engineWhy: plan.engineWhy ?? '' } : {}),
      ...(plan.engine === 'ts' ? { note: TS_BACKEND_NOTE } : {}),
    },
    phases: [],
    success: [],
  };
  o.onEvent?.({ type: 'start', form: plan.form, backend: plan.backend, why: plan.why, engine: plan.engine, engineWhy: plan.engineWhy, phases: phases.map((p) => p.name) });
  // the output directory appears with the first result: a run that fails before it leaves nothing
  const outDir = lazyDir(o.outDir);
  try {
    outDir.ensure();
    writeJsonAtomic(resultsPath, results);
  } catch (err) {
    outDir.removeIfEmpty();
    throw err;
  }

  const standalone = new Map<string, TaskResult>();
  let interrupted = false;
  for (const [index, ph] of phases.entries()) {
    if (o.signal?.aborted) {
      interrupted = true;
      break;
    }
    o.onEvent?.({ type: 'phase-start', phase: ph.name, index, total: phases.length, spanNs: warmupNs + durationNs });
    let status: PhaseStatus;
    let reason: string | undefined;
    let stderrTail: string[] | undefined;
    let samples: TaskSamples[];
    let notes: string[];
    let blocks: Record<string, number> = {};
    let computeUnits = 0;
    const workloads: Record<string, string> = {};
    const util = startUtilSampling(warmupNs);
    if (plan.form === 'probe') {
      const r = await runProbePhase({
        tasks: ph.tasks.map((task) => ({ task, workload: task.probe! })),
        backend: plan.probeBackend!,
        mechanism: ph.mechanism,
        reserve: s.reserve,
        throttleK: s.throttleK,
        durationNs,
        warmupNs,
        engine: plan.engine ?? undefined,
        signal: o.signal,
      });
      ({ status, reason, samples, notes, blocks, computeUnits } = r);
      const on = `${plan.probeBackend}${plan.engine === 'ts' ? ' (pure-TS engine)' : ''}`;
      for (const t of ph.tasks) workloads[t.name] = `probe: ${t.probe!.kernels > 1 ? `${t.probe!.kernels} x ` : ''}${t.probe!.kernel / 1e6} ms kernel, ${blocks[t.name] ?? t.probe!.blocks} block(s) on ${on}`;
    } else {
      const started = process.hrtime.bigint();
      const r = await runTorchPhase({
        tasks: ph.tasks.map((task) => ({ task, workload: task.torch! })),
        mechanism: ph.mechanism,
        reserve: s.reserve,
        xsched: s.xsched,
        durationNs,
        warmupNs,
        python: o.python,
        signal: o.signal,
        onProgress: (p) => o.onEvent?.({ type: 'progress', phase: ph.name, elapsedNs: Number(process.hrtime.bigint() - started), completed: p.completed, task: p.task, p99Ns: p.p99Ns }),
      });
      ({ status, reason, stderrTail, samples, notes } = r);
      for (const w of r.workers) {
        device ??= w.device;
        if (w.deviceName && w.device !== 'cpu') gpu ??= w.deviceName;
        if (w.torch && !results.host.torch) results.host.torch = w.torch;
      }
      results.backend.device = device;
      results.backend.gpu = gpu;
      for (const t of ph.tasks) {
        const w = r.workers.find((x) => x.task === t.name);
        workloads[t.name] = `torch: ${t.torch!.model} batch ${t.torch!.batch} ${t.torch!.mode} on ${w?.device ?? t.torch!.device}`;
      }
    }
    const measuredNs = durationNs;
    const sampled = sampledUtilisation(await util.stop());
    const tasks = ph.tasks.map((task) => {
      const smp = samples.find((x) => x.task === task.name)!;
      return taskResult(smp, task, { workload: workloads[task.name], standalone: ph.kind === 'corun' ? (standalone.get(task.name) ?? null) : null });
    });
    if (ph.kind === 'standalone' && (status === 'ok' || status === 'partial')) standalone.set(ph.tasks[0].name, tasks[0]);
    const phase: PhaseResult = {
      name: ph.name,
      kind: ph.kind,
      mechanism: ph.mechanism,
      status,
      ...(reason ? { reason } : {}),
      ...(stderrTail?.length ? { stderrTail } : {}),
      measuredS: measuredNs / 1e9,
      tasks: status === 'skipped' ? [] : tasks,
      utilisation: status === 'skipped' ? { value: null, source: 'unavailable', reason: 'phase skipped' } : phaseUtilisation(sampled, utilisation(samples, blocks, computeUnits, measuredNs, plan.form, device)),
      fairness: ph.kind === 'corun' && status !== 'skipped' ? phaseFairness(tasks) : null,
      notes,
    };
    results.phases.push(phase);
    writeJsonAtomic(resultsPath, results);
    o.onEvent?.({ type: 'phase-end', phase });
    if (status === 'partial') {
      interrupted = true;
      break;
    }
  }

  results.success = successVerdicts(s.success, results.phases);
  results.partial = interrupted;
  writeJsonAtomic(resultsPath, results);
  const files = [resultsPath];
  const chartErrors: string[] = [];
  let charts: Awaited<ReturnType<typeof renderCharts>> = [];
  if (o.charts !== false) {
    charts = await renderCharts(results, o.outDir, { png: true });
    for (const c of charts) {
      if (c.error) chartErrors.push(`${c.name}: ${c.error}`);
      if (c.svg) files.push(c.svg);
      if (c.png && !c.error) files.push(c.png);
    }
  }
  const md = path.join(o.outDir, 'report.md');
  writeFileAtomic(md, renderMarkdown(results, charts));
  files.splice(1, 0, md);
  o.onEvent?.({ type: 'report', files, chartErrors });
  return { results, outDir: o.outDir, files };
}
